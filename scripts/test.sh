#!/usr/bin/env bash
# The one entry point that runs every test of racklet-flash.
#
# 1. Installs the system packages the tests need, when they are missing
#    (idempotent: apt-get runs only if something is absent).
# 2. Runs every Rust test of the workspace.
# 3. Runs the labgrid test (tests/labgrid/run.sh).
# 4. Runs the payload workspace's tests (cross builds + QEMU), when present.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, with the command that shows each is there.
need=(
  "rx:lrzsz"            # real XMODEM/YMODEM peer (StarFive tests)
  "socat:socat"         # pty relays
  "fastboot:fastboot"   # real fastboot client (fastboot TCP tests)
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

export CARGO_TERM_COLOR=never
# The end-to-end tests (package racklet-tests) run the built binaries, which
# `cargo test` alone does not build for another package: build them first.
cargo build --workspace --bins
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee /tmp/racklet-cargo-test.log
cargo test --workspace --doc 2>&1 | tail -3
# The slow tier: the README's main job, verbatim, from a clean clone.
cargo test -p racklet-tests --test readme -- --ignored

# labgrid: coordinator + exporter on 127.0.0.1 driving racklet-flash
# (installs labgrid from PyPI into target/labgrid-venv on the first run)
bash tests/labgrid/run.sh

# The payload workspace: cross builds, QEMU runs, and each board's hello
# through racklet-flash (`info` fit checks, `image`, `maskrom --simulate`).
cargo build -q -p racklet-flash
RACKLET_FLASH="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/racklet-flash" bash payloads/test.sh
