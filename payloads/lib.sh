# Helpers shared by build.sh and test.sh (sourced, not run).

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
