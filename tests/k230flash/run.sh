#!/usr/bin/env bash
# Real peer: PyPI k230-flash 1.4.0 (kendryte/k230_flash_py), unchanged,
# against the virtual K230 of `racklet-flash sim <board> --tcp`, through the
# pyusb stand-in in tests/k230flash/usb; then racklet-flash with the same
# inputs against its in-process virtual board. The storage each leaves must
# be the same bytes (compared over every data extent of either file).
#
# Cases: a raw image on the SD card at 1 MiB (a multiple of the 128 KiB
# chunk: k230-flash's zero-length packet), a raw image of 3 chunks and 4 KiB
# on the eMMC, a two-part .kdimg (v2) on the SD card, and a raw image that is
# not a whole number of 512-byte blocks, which the vendor gadget refuses
# ("WRITE ERROR, 0x0": kburn_mmc.c rounds the write up to the block) where
# racklet-flash pads the block.
#
# k230-flash is installed into a venv under $CARGO_TARGET_DIR (or target/),
# kept between runs; it needs python3 with venv and the network for the first
# run. Everything listens on 127.0.0.1 only; every process is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
die() { echo "k230-flash peer test: FAILED: $*" >&2; exit 1; }
log() { echo "k230-flash peer test: $*"; }

VERSION=1.4.0
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/k230flash-venv
stamp=$venv/.installed-k230-flash-$VERSION
if [[ ! -f $stamp ]]; then
  log "installing k230-flash $VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$target"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check "k230-flash==$VERSION" \
    || die "pip install k230-flash==$VERSION failed"
  touch "$stamp"
fi
py=$venv/bin/python
loader=$("$py" -c 'import importlib.resources as r; print(r.files("k230_flash").joinpath("loaders", "loader_mmc.bin"))')
[[ -f $loader ]] || die "no loader_mmc.bin in the k230-flash package"

if [[ -z ${RACKLET_FLASH:-} ]]; then
  timeout 900 cargo build -q -p racklet-flash
  RACKLET_FLASH=$target/debug/racklet-flash
fi
[[ -x $RACKLET_FLASH ]] || die "no racklet-flash at $RACKLET_FLASH"

work=$(mktemp -d /tmp/racklet-k230flash.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The two storage files must hold the same bytes wherever either has data.
compare() {
  "$py" - "$1" "$2" <<'PY'
import os, sys
a, b = sys.argv[1], sys.argv[2]
if os.path.getsize(a) != os.path.getsize(b):
    sys.exit(f"{a} and {b} differ in size")
def extents(p):
    out, fd, size = [], os.open(p, os.O_RDONLY), os.path.getsize(p)
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end))
        off = end
    os.close(fd)
    return out
regions = sorted(extents(a) + extents(b))
with open(a, "rb") as fa, open(b, "rb") as fb:
    for start, end in regions:
        fa.seek(start); fb.seek(start)
        left = end - start
        while left:
            n = min(left, 1 << 20)
            x, y = fa.read(n), fb.read(n)
            if x != y:
                i = next(i for i in range(n) if x[i] != y[i])
                sys.exit(f"{a} and {b} differ at byte 0x{start + (end - start - left) + i:x}")
            left -= n
print(f"same bytes over {len(regions)} data extent(s)")
PY
}

# peer NAME MEDIUM FLASH-ARGS...: k230-flash against the served virtual board.
peer() {
  local name=$1 medium=$2; shift 2
  "$RACKLET_FLASH" sim canmv-k230 --tcp 127.0.0.1:0 --sim-storage "$work/$name.peer" --medium "$medium" \
    >"$work/$name.srv" 2>"$work/$name.srv.err" &
  pids+=($!)
  local addr=""
  for _ in $(seq 100); do
    addr=$(sed -n 's|^tcp://||p' "$work/$name.srv" | head -1)
    [[ -n $addr ]] && break
    sleep 0.05
  done
  [[ -n $addr ]] || die "$name: the virtual K230 did not start: $(cat "$work/$name.srv.err")"
  (cd "$work" && RACKLET_K230_SIM=$addr PYTHONPATH=$root/tests/k230flash timeout 120 \
    "$venv/bin/k230-flash" "$@" >"$work/$name.k230flash.log" 2>&1)
}

# ours NAME MEDIUM WRITE-ARGS...: racklet-flash against its own virtual board.
ours() {
  local name=$1 medium=$2; shift 2
  (cd "$work" && "$RACKLET_FLASH" write canmv-k230 "$@" --medium "$medium" --loader "$loader" \
    --simulate --sim-storage "$work/$name.ours" >"$work/$name.ours.log" 2>&1) \
    || die "$name: racklet-flash failed: $(cat "$work/$name.ours.log")"
}

"$py" -c "import os; open('$work/sd.img','wb').write(os.urandom(1 << 18))"
"$py" -c "import os; open('$work/emmc.img','wb').write(os.urandom(3 * 131072 + 4096))"
"$py" -c "import os; open('$work/odd.img','wb').write(os.urandom(1000))"
# A .kdimg v2 as kdimage.md documents it, accepted by k230-flash's own parser.
"$py" - "$work/fw.kdimg" <<'PY'
import hashlib, os, struct, sys, zlib
parts = [("uboot_spl_a", 0x100000, 0x80000, os.urandom(70000)), ("rtt", 0x200000, 0x20000, os.urandom(100000))]
table, contents, at = b"", b"", 512 + 256 * len(parts)
for name, off, size, data in parts:
    e = struct.pack("<5I4xQII32s32s", 0x91DF6DA4, off, size, 0x1000, size, 0, at, len(data),
                    hashlib.sha256(data).digest(), name.encode())
    table += e.ljust(256, b"\0"); contents += data; at += len(data)
h = bytearray(struct.pack("<6I32s32s64s", 0x27CB8F93, 0, 0, 2, len(parts), zlib.crc32(table),
                          b"racklet", b"k230", b"canmv-k230").ljust(512, b"\0"))
h[4:8] = struct.pack("<I", zlib.crc32(bytes(h)))
open(sys.argv[1], "wb").write(bytes(h) + table + contents)
PY

log "case sd: 256 KiB at 0x100000 on the SD card"
peer sd sd -m SDCARD 0x100000 sd.img || die "sd: k230-flash failed: $(tail -5 "$work/sd.k230flash.log")"
ours sd sd sd.img --at 0x100000
compare "$work/sd.peer" "$work/sd.ours" || die "sd: the storage differs"

log "case emmc: 3 chunks + 4 KiB at 0x400000 on the eMMC"
peer emmc emmc -m EMMC 0x400000 emmc.img || die "emmc: k230-flash failed: $(tail -5 "$work/emmc.k230flash.log")"
ours emmc emmc emmc.img --at 0x400000
compare "$work/emmc.peer" "$work/emmc.ours" || die "emmc: the storage differs"

log "case kdimg: two parts with 0xFF padding on the SD card"
peer kdimg sd -m SDCARD fw.kdimg || die "kdimg: k230-flash failed: $(tail -5 "$work/kdimg.k230flash.log")"
ours kdimg sd fw.kdimg
compare "$work/kdimg.peer" "$work/kdimg.ours" || die "kdimg: the storage differs"

log "case odd: 1000 bytes (not a whole block)"
if peer odd sd -m SDCARD 0 odd.img; then
  die "odd: k230-flash reported success for a write the gadget refuses"
fi
grep -q "WRITE ERROR, 0x0" "$work/odd.k230flash.log" || die "odd: k230-flash failed otherwise: $(tail -5 "$work/odd.k230flash.log")"
ours odd sd odd.img --at 0
log "odd: k230-flash gets WRITE ERROR, 0x0 from the gadget; racklet-flash pads the block and writes it"

echo "k230-flash peer test: ok (4 cases)"
