#!/usr/bin/env bash
# Builds hello and memtest for every board into out/<board>/:
#   hello.elf hello.bin memtest.elf memtest.bin
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
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
here=$(pwd)
# shellcheck source=lib.sh
. ./lib.sh

rv_target=riscv64imac-unknown-none-elf
arm_target=aarch64-unknown-none-softfloat
max_hello=4096

boards_for() { # arch (Riscv64|Aarch64) -> board names from the board table
    awk -v want="Arch::$1," '
        /name: "/ { split($0, a, "\""); name = a[2] }
        /arch: Arch::/ { if ($2 == want) print name }
    ' bsp/src/boards.rs
}

# The payloads' compiler flags are fixed by this workspace and build.sh:
# flags meant for the host crates (coverage, -D warnings, wrappers, another
# target dir) must not leak into a no_std cross build.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER \
    CARGO_BUILD_RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_BUILD_TARGET \
    CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

# --- toolchain route -------------------------------------------------------
route=debian
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed 2>/dev/null || true)
    if grep -qx "$rv_target" <<<"$installed" && grep -qx "$arm_target" <<<"$installed"; then
        route=rustup
    fi
fi

need=()
if [ "$route" = debian ]; then
    [ -x /usr/bin/rustc ] || need+=(rustc-web)
    [ -x /usr/bin/cargo ] || need+=(cargo-web)
    [ -d /usr/lib/rustlib/src/rust/library/core ] || need+=(rust-web-src)
    command -v ld.lld >/dev/null 2>&1 || need+=(lld)
fi
objcopy_tool=$(find_objcopy || true)
[ -n "$objcopy_tool" ] || need+=(llvm)
ensure_packages "${need[@]}"
objcopy_tool=${objcopy_tool:-$(find_objcopy)}

cargo_build() { # target bins...
    local target=$1; shift
    local args=(build --release --target "$target" --target-dir "$here/target")
    local b
    for b in "$@"; do args+=(--bin "$b"); done
    if [ "$route" = rustup ]; then
        cargo "${args[@]}"
    else
        local linker_var
        linker_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$target")_LINKER"
        env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 "$linker_var=ld.lld" \
            /usr/bin/cargo "${args[@]}" \
            -Zbuild-std=core,compiler_builtins \
            -Zbuild-std-features=compiler-builtins-mem
    fi
}

echo "build.sh: toolchain route: $route; objcopy: $objcopy_tool"

# --- build: one cargo invocation per architecture ---------------------------
mkdir -p out
status=0
for arch in Riscv64 Aarch64; do
    case $arch in Riscv64) target=$rv_target ;; Aarch64) target=$arm_target ;; esac
    mapfile -t boards < <(boards_for "$arch")
    bins=()
    for b in "${boards[@]}"; do bins+=("hello-$b" "memtest-$b"); done
    echo "build.sh: $target: ${boards[*]}"
    cargo_build "$target" "${bins[@]}"
    for b in "${boards[@]}"; do
        mkdir -p "out/$b"
        for p in hello memtest; do
            cp "target/$target/release/$p-$b" "out/$b/$p.elf"
            "$objcopy_tool" -O binary "out/$b/$p.elf" "out/$b/$p.bin"
        done
    done
done

# --- sizes ------------------------------------------------------------------
table=$'| board | SoC | hello.bin | memtest.bin | hello <= 4 KiB |\n|---|---|---:|---:|---|'
for arch in Riscv64 Aarch64; do
    for b in $(boards_for "$arch"); do
        soc=$(awk -v b="$b" '/name: "/ { split($0, a, "\""); n = a[2] }
                             /soc: "/ { split($0, a, "\""); if (n == b) print a[2] }' bsp/src/boards.rs)
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
done
printf '%s\n' "$table" > out/sizes.md
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
    for b in $(boards_for Riscv64) $(boards_for Aarch64); do
        case $b in qemu-virt-*) continue ;; esac
        if ! "$RACKLET_FLASH" image "$b" "out/$b/hello.bin" -o "out/$b/hello.img"; then
            echo "build.sh: racklet-flash image $b failed" >&2
            status=1
        fi
    done
fi

exit "$status"
