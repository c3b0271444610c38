#!/usr/bin/env bash
# Builds hello and memtest for every board of boards.toml into out/<board>/:
#   hello.elf hello.bin memtest.elf memtest.bin
# (one cargo invocation per board: RACKLET_BOARD=<board>, see bsp/build.rs),
# and for the boards with a fastload record fastload.elf and fastload.bin
# (RACKLET_LAYOUT=fastload; also at most 4 KiB)
# checks that every hello.bin is at most 4 KiB, and writes the sizes into
# README.md (section "Sizes").
#
# Toolchain: rustup targets riscv64imac-unknown-none-elf and
# aarch64-unknown-none-softfloat when both are installed; otherwise Debian's
# rustc-web, cargo-web, rust-web-src and lld, with RUSTC_BOOTSTRAP=1,
# -Zbuild-std=core,compiler_builtins (compiler-builtins-mem) and ld.lld.
# Missing Debian packages are installed (as root) with apt-get.
#
# Environment:
#   RACKLET_FLASH=/path/to/racklet-flash   also make out/<board>/hello.img
#       with `racklet-flash image <board> out/<board>/hello.bin -o ...`
#       (the image the ROM wants: headed JH7110 image, Sophgo fip.bin, ...);
#       skipped for the qemu-virt boards.
#   RACKLET_MEMTEST_BASE / RACKLET_MEMTEST_SIZE   memtest window (hex or
#       decimal) instead of each board's default.
#   RACKLET_PAYLOADS_NO_README=1   do not rewrite README.md.
#
# Option --update-prebuilt: copy every hello.{elf,bin} (and fastload.elf)
# into prebuilt/<board>/
# (the copies the README's main-job command uses; test.sh checks them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=lib.sh
. ./lib.sh

max_hello=4096

setup_toolchain

echo "build.sh: toolchain route: $route; objcopy: $objcopy_tool"

# --- build: one cargo invocation per board ----------------------------------
# The board table (boards.toml) names the boards; racklet-bsp's build.rs
# turns RACKLET_BOARD into the memory map and the board const.
mapfile -t lines < <(board_lines)
[ "${#lines[@]}" -gt 0 ] || { echo "build.sh: no boards in boards.toml" >&2; exit 1; }
mkdir -p out
status=0
table=$'| board | SoC | hello.bin | memtest.bin | hello <= 4 KiB |\n|---|---|---:|---:|---|'
fastload_sizes=$'\n| board | fastload.bin (at most 4096) |\n|---|---:|'
for line in "${lines[@]}"; do
    read -r b arch soc _load _header fastload <<<"$line"
    target=$(target_for "$arch")
    echo "build.sh: $b ($target)"
    cargo_build "$b" "$target" hello memtest
    mkdir -p "out/$b"
    for p in hello memtest; do
        cp "target/$target/release/$p" "out/$b/$p.elf"
        "$objcopy_tool" -O binary "out/$b/$p.elf" "out/$b/$p.bin"
    done
    if [ "$fastload" != - ]; then
        # The loader: its own layout (RACKLET_LAYOUT=fastload, bsp/build.rs).
        RACKLET_LAYOUT=fastload cargo_build "$b" "$target" fastload
        cp "target/$target/release/fastload" "out/$b/fastload.elf"
        "$objcopy_tool" -O binary "out/$b/fastload.elf" "out/$b/fastload.bin"
        fs=$(stat -c %s "out/$b/fastload.bin")
        echo "build.sh: $b fastload.bin $fs bytes"
        if [ "$fs" -gt "$max_hello" ]; then
            status=1
            echo "build.sh: out/$b/fastload.bin is $fs bytes, over $max_hello" >&2
        fi
        fastload_sizes+=$'\n'"| $b | $fs |"
    else
        rm -f "out/$b/fastload.elf" "out/$b/fastload.bin"
    fi
    hs=$(stat -c %s "out/$b/hello.bin")
    ms=$(stat -c %s "out/$b/memtest.bin")
    ok=yes
    if [ "$hs" -gt "$max_hello" ]; then
        ok=NO
        status=1
        echo "build.sh: out/$b/hello.bin is $hs bytes, over $max_hello" >&2
    fi
    table+=$'\n'"| $b | $soc | $hs | $ms | $ok |"
done

# --- sizes ------------------------------------------------------------------
printf '%s\n%s\n' "$table" "$fastload_sizes" > out/sizes.md
echo "$table"
if [ "${RACKLET_PAYLOADS_NO_README:-}" != 1 ]; then
    replace_section README.md sizes out/sizes.md
fi

# --- ROM images through racklet-flash (optional) -----------------------------
if [ -n "${RACKLET_FLASH:-}" ]; then
    if [ ! -x "$RACKLET_FLASH" ]; then
        echo "build.sh: RACKLET_FLASH=$RACKLET_FLASH is not an executable" >&2
        exit 1
    fi
    for line in "${lines[@]}"; do
        read -r b _ <<<"$line"
        # Only ROMs that want a wrapped image: JH7110 (spl_tool header),
        # Sophgo (fip.bin), K1 (FSBL.bin), K230 (storage header). Rockchip
        # and TH1520 ROMs load the raw binary; the Arm side of the Duo S is
        # not a board of its own in racklet-flash's table.
        case $b in qemu-virt-* | rock-* | lichee-pi-4a | milkv-duo-s-arm) continue ;; esac
        if ! "$RACKLET_FLASH" image "$b" "out/$b/hello.bin" -o "out/$b/hello.img" --force; then
            echo "build.sh: racklet-flash image $b failed" >&2
            status=1
        fi
    done
fi

if [ "${1:-}" = "--update-prebuilt" ]; then
    for d in out/*/; do
        b=$(basename "$d")
        [ -s "out/$b/hello.elf" ] || continue
        mkdir -p "prebuilt/$b"
        cp "out/$b/hello.elf" "out/$b/hello.bin" "prebuilt/$b/"
        if [ -s "out/$b/fastload.elf" ]; then cp "out/$b/fastload.elf" "prebuilt/$b/"; fi
    done
    rustc_cmd=$(command -v rustc)
    [ "$route" = debian ] && rustc_cmd=/usr/bin/rustc
    "$rustc_cmd" --version >prebuilt/RUSTC_VERSION
    echo "build.sh: prebuilt/ updated"
fi

exit "$status"
