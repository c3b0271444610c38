#!/usr/bin/env bash
# Installs the Debian packages the tests need, when they are missing
# (idempotent: apt-get runs only if something is absent). scripts/test.sh
# runs it first; run it alone to prepare a machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, with the command that shows each is there.
need=(
  "rx:lrzsz"            # real XMODEM/YMODEM peer (StarFive tests)
  "socat:socat"         # pty relays
  "fastboot:fastboot"   # real fastboot client (fastboot TCP tests)
  "rkdeveloptool:rkdeveloptool"  # real rockusb client (the USB rig, tests/usbrig)
  "mkimage:u-boot-tools"                  # U-Boot's mkimage -T rksd (protocols/rockchip/tests/idb.rs, tests/tests/rockchip_idb.rs)
  "img2simg:android-sdk-libsparse-utils"  # AOSP's sparse writer (tests/tests/disk_peers.rs)
  "bmaptool:bmap-tools"                   # bmaptool create (tests/tests/disk_peers.rs)
  "qemu-system-riscv64:qemu-system-misc"
  "qemu-system-aarch64:qemu-system-arm"
  "qemu-system-x86_64:qemu-system-x86"
  "/usr/bin/cargo:cargo-web"
  "/usr/bin/rustc:rustc-web"
  "/usr/lib/rustlib/src/rust/library/core/Cargo.toml:rust-web-src"
  "ld.lld:lld"
  "/bin/busybox:busybox-static"
  "cpio:cpio"
  "/usr/sbin/ser2net:ser2net"   # labgrid exporter's serial server (tests/labgrid)
  "/usr/bin/kill:procps"        # SIGTERM to a sim server (tests/hostile.rs)
  "gzip:gzip"                   # the system's compressors make the compressed test images
  "xz:xz-utils"                 #   (tests/tests/canaan_storage.rs, rockchip_storage.rs):
  "zstd:zstd"                   #   independent of the crates that read them
  "zsh:zsh"                     # the zsh completion script (tests/completions.rs)
  "fish:fish"                   # the fish completion script (tests/completions.rs)
  "/usr/share/python-wheels:python3-venv"  # venvs for labgrid and k230-flash (tests/labgrid, tests/k230flash)
)
missing=()
for n in "${need[@]}"; do
  cmd=${n%%:*}; pkg=${n##*:}
  if [[ $cmd == /* ]]; then [[ -e $cmd ]] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  missing+=("$pkg")
done
if ! ls /boot/vmlinuz-* >/dev/null 2>&1; then missing+=(linux-image-amd64); fi
if ((${#missing[@]})); then
  echo "installing missing packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: these Debian packages are needed and I am not root: ${missing[*]}" >&2
    echo "       run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  for i in 1 2 3; do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then break; fi
    echo "apt-get failed (try $i), retrying in 5s" >&2; sleep 5
  done
fi

