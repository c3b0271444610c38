#!/usr/bin/env bash
# Assembles the USB rig's initramfs: busybox-static, the kernel modules the
# rig needs (with their dependencies, in load order from modules.dep), the
# programs given on the command line with their shared libraries, and /init.
#
#   build-initramfs.sh OUT_DIR KERNEL_VERSION PROGRAM... [--peer PROGRAM...]
#
# PROGRAMs are ours (the workspace's builds), copied without their debug
# information. Programs after --peer are the real peer clients from Debian
# (fastboot, rkdeveloptool), copied as they are. Each goes to /bin with the
# shared libraries ldd finds for it, at their own paths (the guest runs the
# host's kernel, so the host's libraries are the right ones).
#
# Files in OUT_DIR/data go to /data in the guest. Writes OUT_DIR/initrd.gz.
# Fails loudly when anything is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?OUT_DIR}; kver=${2:?KERNEL_VERSION}; shift 2
mods=/lib/modules/$kver
[[ -f $mods/modules.dep ]] || { echo "error: $mods/modules.dep is missing (install linux-image-amd64)" >&2; exit 1; }
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' \
  || { echo "error: $busybox is not a static busybox (install busybox-static)" >&2; exit 1; }
command -v cpio >/dev/null || { echo "error: cpio is missing (install cpio)" >&2; exit 1; }

root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,etc,lib/modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# The modules the issue names; dependencies come from modules.dep.
wanted=(configfs usb-common usbcore roles udc-core dummy_hcd libcomposite u_serial usb_f_acm usb_f_fs cdc-acm)
declare -A seen=()
order=()
dep_line() { # module file name stem -> "path: deps" line
  local stem=${1//-/[-_]}
  grep -E "(^|/)${stem}\.ko(\.xz|\.zst|\.gz)?:" "$mods/modules.dep" | head -1
}
add_path() { # module path relative to $mods; loads its dependencies first
  local path=$1
  [[ -n ${seen[$path]:-} ]] && return
  seen[$path]=1
  local line deps
  line=$(grep -E "^${path//./\\.}:" "$mods/modules.dep") || { echo "error: $path not in modules.dep" >&2; exit 1; }
  deps=${line#*:}
  # modules.dep lists the deepest dependency last: load from the end.
  local arr=($deps) i
  for ((i=${#arr[@]}-1; i>=0; i--)); do add_path "${arr[i]}"; done
  order+=("$path")
}
for m in "${wanted[@]}"; do
  line=$(dep_line "$m") || { echo "error: module $m not found in $mods/modules.dep" >&2; exit 1; }
  add_path "${line%%:*}"
done
: > "$root/etc/modules.order"
for p in "${order[@]}"; do
  name=$(basename "$p"); name=${name%%.ko*}.ko
  case $p in
    *.ko.xz) xz -dc "$mods/$p" > "$root/lib/modules/$name" ;;
    *.ko.zst) zstd -qdc "$mods/$p" > "$root/lib/modules/$name" ;;
    *.ko.gz) gzip -dc "$mods/$p" > "$root/lib/modules/$name" ;;
    *) cp "$mods/$p" "$root/lib/modules/$name" ;;
  esac
  echo "$name" >> "$root/etc/modules.order"
done

peer=0
for prog in "$@"; do
  if [[ $prog == --peer ]]; then peer=1; continue; fi
  real=$(readlink -f "$prog")
  [[ -x $real ]] || { echo "error: program $prog is missing" >&2; exit 1; }
  dest=$root/bin/$(basename "$prog")
  if ((peer)); then
    cp "$real" "$dest"
  else
    strip --strip-debug -o "$dest" "$real" || { echo "error: strip failed on $prog (install binutils)" >&2; exit 1; }
  fi
  # "name => /path (addr)" and "/lib64/ld-linux... (addr)" lines; none for a static program.
  for lib in $(ldd "$real" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp "$here/init.sh" "$root/init"
chmod +x "$root/init"
cp "$here/checks.sh" "$root/etc/checks.sh"
# Payloads the checks load (prepared by the test).
if [[ -d $out/data ]]; then cp -r "$out/data" "$root/data"; fi

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out/initrd.gz"
echo "initramfs: $out/initrd.gz ($(du -h "$out/initrd.gz" | cut -f1)), modules: ${order[*]##*/}"
