# Helpers shared by build.sh and test.sh (sourced, not run from elsewhere:
# paths are relative to payloads/).

rv_target=riscv64imac-unknown-none-elf
arm_target=aarch64-unknown-none-softfloat

# Prints one line per board of boards.toml, in table order:
#   name arch soc load header fastload
# (arch riscv64|aarch64; load in hex; header "-" when none; fastload: the
# fastload loader's address in hex, "-" for a board without one).
# python3's tomllib reads the table, so no script parses it by hand.
board_lines() {
    python3 - boards.toml <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    table = tomllib.load(f)
for b in table["board"]:
    print(b["name"], b["arch"], b["soc"], hex(b["load"]), b.get("header", "-"),
          hex(b["fastload"]["load"]) if "fastload" in b else "-")
PY
}

# The cross target of an architecture from boards.toml.
target_for() { # arch
    case $1 in
        riscv64) echo "$rv_target" ;;
        aarch64) echo "$arm_target" ;;
        *) echo "payloads: unknown arch $1 in boards.toml" >&2; return 1 ;;
    esac
}

# Prints the first objcopy that can write a flat binary for both RISC-V and
# AArch64 ELF files: rust-objcopy, llvm-objcopy, llvm-objcopy-NN.
find_objcopy() {
    local c
    for c in rust-objcopy llvm-objcopy; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    done
    for c in /usr/bin/llvm-objcopy-*; do
        if [ -x "$c" ]; then echo "$c"; return 0; fi
    done
    return 1
}

# Installs the given Debian packages when there are any; does nothing
# otherwise. Needs root (apt-get update, then install).
ensure_packages() {
    [ "$#" -gt 0 ] || return 0
    local pkgs=("$@")
    echo "payloads: installing missing Debian packages: ${pkgs[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "payloads: not root; install them first: sudo apt-get install -y ${pkgs[*]}" >&2
        exit 1
    fi
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends)
    export DEBIAN_FRONTEND=noninteractive
    "${apt[@]}" update -qq
    if "${apt[@]}" install -qq "${pkgs[@]}"; then
        return 0
    fi
    # qemu-system-* from the distribution conflicts with a newer qemu-utils
    # from elsewhere (e.g. backports): take qemu-utils from the same release.
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ -n "$codename" ] && dpkg -s qemu-utils >/dev/null 2>&1; then
        echo "payloads: retrying with qemu-utils/$codename" >&2
        "${apt[@]}" install -qq --allow-downgrades "${pkgs[@]}" "qemu-utils/$codename"
    else
        return 1
    fi
}

# Replaces the lines between "<!-- NAME:begin -->" and "<!-- NAME:end -->"
# in FILE with the contents of SRC.
replace_section() { # file name src
    local file=$1 name=$2 src=$3
    grep -q "<!-- $name:begin -->" "$file" || return 0
    awk -v b="<!-- $name:begin -->" -v e="<!-- $name:end -->" -v src="$src" '
        $0 == b { print; while ((getline line < src) > 0) print line; skip = 1; next }
        $0 == e { skip = 0 }
        !skip { print }
    ' "$file" > "$file.tmp" && mv "$file.tmp" "$file"
}

# Chooses the toolchain route (rustup targets when both are installed, else
# Debian's rustc-web with -Zbuild-std), installs what is missing, and sets
# $route and $objcopy_tool.
setup_toolchain() {
    # The payloads' compiler flags are fixed by this workspace and these
    # scripts: flags meant for the host crates (coverage, -D warnings,
    # wrappers, another target dir) must not leak into a no_std cross build.
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER \
        CARGO_BUILD_RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_BUILD_TARGET \
        CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

    route=debian
    if command -v rustup >/dev/null 2>&1; then
        local installed
        installed=$(rustup target list --installed 2>/dev/null || true)
        if grep -qx "$rv_target" <<<"$installed" && grep -qx "$arm_target" <<<"$installed"; then
            route=rustup
        fi
    fi

    local need=()
    if [ "$route" = debian ]; then
        [ -x /usr/bin/rustc ] || need+=(rustc-web)
        [ -x /usr/bin/cargo ] || need+=(cargo-web)
        [ -d /usr/lib/rustlib/src/rust/library/core ] || need+=(rust-web-src)
        command -v ld.lld >/dev/null 2>&1 || need+=(lld)
    fi
    if ! python3 -c "import tomllib" >/dev/null 2>&1; then
        need+=(python3) # 3.11 or newer: tomllib reads boards.toml
    fi
    objcopy_tool=$(find_objcopy || true)
    [ -n "$objcopy_tool" ] || need+=(llvm)
    ensure_packages "${need[@]}"
    objcopy_tool=${objcopy_tool:-$(find_objcopy)}
}

# Builds the named binaries for one board and target, in one cargo
# invocation, into payloads/target. Call setup_toolchain first.
cargo_build() { # board target bins...
    local board=$1 target=$2
    shift 2
    export RACKLET_BOARD=$board
    local args=(build --release --target "$target" --target-dir "$PWD/target")
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
