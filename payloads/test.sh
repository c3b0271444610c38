#!/usr/bin/env bash
# Tests for the payloads (called by the main CI):
#   - build.sh builds hello and memtest for every board;
#   - every hello.bin is at most 4 KiB;
#   - every ELF has one loadable image segment at the board's load address
#     (boards.toml)
#     and its entry where the ROM jumps (load, or load + 0x20 after the
#     Sophgo BL2 header, whose first word must jump to +0x20);
#   - under qemu-system-riscv64 / qemu-system-aarch64 (-M virt) hello prints
#     its line (also with 4 harts: only the boot hart speaks) and memtest
#     passes, and QEMU powers off by itself.
# Installs missing Debian packages (qemu-system-misc, qemu-system-arm, and
# what build.sh needs). Ends with "N passed, M failed"; exits 1 on any
# failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=lib.sh
. ./lib.sh

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

need=()
command -v qemu-system-riscv64 >/dev/null 2>&1 || need+=(qemu-system-misc)
command -v qemu-system-aarch64 >/dev/null 2>&1 || need+=(qemu-system-arm)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v timeout >/dev/null 2>&1 || need+=(coreutils)
(ensure_packages "${need[@]}") || { bad "install ${need[*]}"; finish; }

# --- build -------------------------------------------------------------------
start=$(date +%s)
if ./build.sh; then
    ok "build.sh ($(($(date +%s) - start)) s)"
else
    bad "build.sh"
fi

mapfile -t lines < <(board_lines)
[ "${#lines[@]}" -gt 0 ] || { bad "board table boards.toml is empty"; finish; }
boards=$(for l in "${lines[@]}"; do echo "${l%% *}"; done)

for line in "${lines[@]}"; do
    read -r b _arch _soc origin header fastload <<<"$line"
    missing=""
    for f in hello.elf hello.bin memtest.elf memtest.bin; do
        [ -s "out/$b/$f" ] || missing+=" $f"
    done
    if [ -z "$missing" ]; then ok "build $b"; else bad "build $b: missing$missing"; continue; fi

    size=$(stat -c %s "out/$b/hello.bin")
    if [ "$size" -le 4096 ]; then ok "size $b hello.bin $size <= 4096"; else bad "size $b hello.bin $size > 4096"; fi

    if [ "$fastload" != - ]; then
        if [ -s "out/$b/fastload.bin" ]; then
            fs=$(stat -c %s "out/$b/fastload.bin")
            if [ "$fs" -le 4096 ]; then ok "size $b fastload.bin $fs <= 4096"; else bad "size $b fastload.bin $fs > 4096"; fi
            # The ROM (or QEMU) puts the loader at its load address.
            if msg=$(python3 - "out/$b/fastload.elf" "$fastload" 2>&1 <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
want = int(sys.argv[2], 16)
phoff = struct.unpack_from("<Q", d, 32)[0]
phentsize, phnum = struct.unpack_from("<HH", d, 54)
loads = []
for i in range(phnum):
    p_type, _, _, vaddr, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d, phoff + i * phentsize)
    if p_type == 1 and filesz:
        loads.append((paddr, vaddr))
assert len(loads) == 1, f"want one loadable image segment, got {loads}"
assert loads[0][0] == want, f"loaded at {loads[0][0]:#x}, boards.toml fastload.load {want:#x}"
print(f"loaded at {loads[0][0]:#x}, runs at {loads[0][1]:#x}")
EOF
            ); then ok "layout $b fastload: $msg"; else bad "layout $b fastload: ${msg##*$'\n'}"; fi
        else
            bad "build $b: missing fastload.bin"
        fi
    fi
    if [ "$header" = sophgo-bl2 ]; then head=1; else head=0; fi
    for p in hello memtest; do
        if msg=$(python3 - "out/$b/$p.elf" "out/$b/$p.bin" "$origin" "$head" 2>&1 <<'EOF'
import struct, sys
elf, binf, origin, head = sys.argv[1], sys.argv[2], int(sys.argv[3], 16), sys.argv[4] == "1"
d = open(elf, "rb").read()
assert d[:4] == b"\x7fELF" and d[4] == 2, "not ELF64"
machine = struct.unpack_from("<H", d, 18)[0]
entry, phoff = struct.unpack_from("<QQ", d, 24)
phentsize, phnum = struct.unpack_from("<HH", d, 54)
loads = []
for i in range(phnum):
    p_type, _, _, vaddr, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d, phoff + i * phentsize)
    if p_type == 1 and filesz:
        loads.append((vaddr, filesz))
assert len(loads) == 1, f"want one loadable image segment, got {[(hex(a), n) for a, n in loads]}"
vaddr, filesz = loads[0]
assert vaddr == origin, f"image at {vaddr:#x}, boards.toml load {origin:#x}"
want = origin + (0x20 if head else 0)
assert entry == want, f"entry {entry:#x}, want {want:#x}"
img = open(binf, "rb").read()
assert len(img) == filesz, f".bin is {len(img)} bytes, segment {filesz}"
if head:
    word = struct.unpack_from("<I", img, 0)[0]
    jump = {243: 0x0200006F, 183: 0x14000008}[machine]  # RISC-V j +32, AArch64 b +32
    assert word == jump, f"header word 0 is {word:#010x}, want {jump:#010x}"
    assert img[4:0x20] == bytes(0x1C), "header bytes 4..0x20 not zero"
print(f"load {vaddr:#x} entry {entry:#x}" + (" after BL2 header" if head else ""))
EOF
        ); then
            ok "layout $b $p: $msg"
        else
            bad "layout $b $p: ${msg##*$'\n'}"
        fi
    done
done

# --- racklet-flash info: the file each board's maskrom takes fits it ----------
# (when RACKLET_FLASH names the binary; scripts/test.sh sets it). `info
# --board` says "fits" only when `maskrom` would take the file (as the
# payload, or through --dram on Rockchip boards), so these are the files the
# maskrom runs below send.
if [ -n "${RACKLET_FLASH:-}" ]; then
    for b in $boards; do
        case $b in qemu-virt-* | milkv-duo-s-arm) continue ;; esac
        case $b in
            rock-*) files=(hello.elf hello.bin) ;;  # through --dram
            bpi-f3) files=(hello.img) ;;            # FSBL.bin
            *) files=(hello.elf) ;;
        esac
        for f in "${files[@]}"; do
            [ -e "out/$b/$f" ] || continue
            if msg=$("$RACKLET_FLASH" info --board "$b" "out/$b/$f" 2>&1); then
                ok "info $b/$f: $(grep -m1 'fits' <<<"$msg" | sed 's/^ *//')"
            else
                bad "info $b/$f: ${msg##*$'\n'}"
            fi
        done
    done
fi

# --- each board's hello through racklet-flash into its virtual ROM -----------
if [ -n "${RACKLET_FLASH:-}" ]; then
    for b in $boards; do
        case $b in
            qemu-virt-* | milkv-duo-s-arm) continue ;;
            rock-*) args=(--dram "out/$b/hello.bin") ;;           # the DRAM-init stage slot
            bpi-f3) args=("out/$b/hello.img") ;;                  # FSBL.bin
            *) args=("out/$b/hello.elf") ;;
        esac
        # No waiting for a next stage the payload never starts, except on
        # Sophgo, whose ROM re-enumerates between its own sessions.
        case $b in milkv-* | licheerv-*) st=10s ;; *) st=0 ;; esac
        if msg=$(timeout 60 "$RACKLET_FLASH" maskrom "$b" "${args[@]}" --simulate --stage-timeout "$st" 2>&1); then
            ok "maskrom $b --simulate: $(grep -m1 '^virtual ROM' <<<"$msg")"
        else
            bad "maskrom $b --simulate: ${msg##*$'\n'}"
        fi
    done
fi

# --- QEMU --------------------------------------------------------------------
run_qemu() { # name line-regex count qemu-args...
    run_qemu_rc 0 30 "$@"
}

run_qemu_rc() { # want-exit-status timeout name line-regex count qemu-args...
    local want_rc=$1 secs=$2 name=$3 want=$4 count=$5
    shift 5
    local out rc got
    out=$(timeout "$secs" "$@" </dev/null 2>&1)
    rc=$?
    out=${out//$'\r'/}
    got=$(grep -cE "$want" <<<"$out")
    if [ "$rc" -eq "$want_rc" ] && [ "$got" -eq "$count" ]; then
        ok "qemu $name: $(grep -E "$want" <<<"$out" | head -1)"
    else
        bad "qemu $name: exit $rc, $got matching lines (want $count); output:"
        sed 's/^/    /' <<<"$out"
    fi
}

rv=out/qemu-virt-riscv64
arm=out/qemu-virt-aarch64
# -nic none: no default NIC, so no network option ROM (efi-virtio.rom, from
# ipxe-qemu, which --no-install-recommends leaves out) is needed.
rvq=(qemu-system-riscv64 -M virt -bios none -nographic -monitor none -nic none)
armq=(qemu-system-aarch64 -M virt -cpu cortex-a53 -nographic -monitor none -nic none)

run_qemu "riscv64 hello" '^racklet: hello from qemu-virt-riscv64 \(qemu-virt\) hart 0$' 1 \
    "${rvq[@]}" -kernel "$rv/hello.elf"
run_qemu "riscv64 hello, 4 harts" '^racklet: hello from qemu-virt-riscv64 \(qemu-virt\) hart [0-9]+$' 1 \
    "${rvq[@]}" -smp 4 -kernel "$rv/hello.elf"
run_qemu "riscv64 memtest" '^racklet: memtest qemu-virt-riscv64 \(qemu-virt\) 0x[0-9a-f]+\.\.0x[0-9a-f]+ pass$' 1 \
    "${rvq[@]}" -kernel "$rv/memtest.elf"
run_qemu "aarch64 hello" '^racklet: hello from qemu-virt-aarch64 \(qemu-virt\) core 0$' 1 \
    "${armq[@]}" -kernel "$arm/hello.elf"
run_qemu "aarch64 memtest" '^racklet: memtest qemu-virt-aarch64 \(qemu-virt\) 0x[0-9a-f]+\.\.0x[0-9a-f]+ pass$' 1 \
    "${armq[@]}" -kernel "$arm/memtest.elf"

# --- panic and trap handlers --------------------------------------------------
# --- prebuilt copies (the README's main job uses them) ------------------------
# The build is reproducible, so the shipped copies must equal a fresh build.
for d in prebuilt/*/; do
    b=$(basename "$d")
    for f in hello.elf hello.bin fastload.elf; do
        [ "$f" != fastload.elf ] || [ -e "prebuilt/$b/$f" ] || [ -e "out/$b/$f" ] || continue
        if cmp -s "prebuilt/$b/$f" "out/$b/$f"; then
            ok "prebuilt $b/$f equals a fresh build"
        else
            bad "prebuilt $b/$f differs from a fresh build (toolchain $(cat prebuilt/RUSTC_VERSION) was used for it); run ./build.sh --update-prebuilt"
        fi
    done
done

# memtest for qemu-virt-riscv64 built with a bad window: a size that is not a
# multiple of 8 panics; a window in unmapped space (0x200) traps. Both print,
# then power QEMU off through the SiFive test device with status 1 (on real
# boards they park). The next build.sh
# rebuilds the normal memtest (the window is a tracked build variable).
setup_toolchain >/dev/null
mkdir -p out/selftest
selftest() { # name env-assignments...
    local name=$1
    shift
    if env "$@" bash -c '. ./lib.sh; setup_toolchain >/dev/null; cargo_build qemu-virt-riscv64 "$rv_target" memtest' \
        >"out/selftest/$name.log" 2>&1; then
        cp "target/$rv_target/release/memtest" "out/selftest/$name.elf"
    else
        bad "build $name self-test (out/selftest/$name.log)"
        return 1
    fi
}
# The board comes from boards.toml through RACKLET_BOARD: a board of the other
# architecture, or none, is a build error that says what to do.
if msg=$(bash -c '. ./lib.sh; setup_toolchain >/dev/null; cargo_build rock-3a "$rv_target" hello' 2>&1); then
    bad "rock-3a (aarch64) built for $rv_target"
elif grep -q "board rock-3a is aarch64, but this build targets riscv64" <<<"$msg"; then
    ok "a board built for the other architecture is refused"
else
    bad "rock-3a for $rv_target failed without the arch message: ${msg##*$'\n'}"
fi
if msg=$(bash -c '. ./lib.sh; setup_toolchain >/dev/null; cargo_build no-such-board "$rv_target" hello' 2>&1); then
    bad "an unknown RACKLET_BOARD built"
elif grep -q "RACKLET_BOARD=no-such-board: no such board" <<<"$msg"; then
    ok "an unknown RACKLET_BOARD is refused"
else
    bad "unknown RACKLET_BOARD failed without the message: ${msg##*$'\n'}"
fi

if selftest panic RACKLET_MEMTEST_SIZE=0x3; then
    run_qemu_rc 1 30 "riscv64 panic handler" \
        '^racklet: panic at [^ ]*memtest/src/main\.rs:[0-9]+: memtest window must be 8-byte aligned$' 1 \
        "${rvq[@]}" -kernel out/selftest/panic.elf
fi
if selftest trap RACKLET_MEMTEST_BASE=0x200 RACKLET_MEMTEST_SIZE=0x100; then
    run_qemu_rc 1 30 "riscv64 trap handler" \
        '^racklet: trap mcause=0x7 mepc=0x8[0-9a-f]+ mtval=0x200$' 1 \
        "${rvq[@]}" -kernel out/selftest/trap.elf
fi

finish
