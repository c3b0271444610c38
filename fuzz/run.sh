#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30), seeded from
# fuzz/seeds/<target>/ when present.
#
#   bash fuzz/run.sh [SECONDS] [--dev]
#
# --dev builds the targets without optimisation (cargo fuzz -D): about
# 2 minutes cold instead of about 7 on 2 cores, at a few times fewer runs
# per second. CI uses it for its smoke run; the long runs of
# docs/fuzzing.md use the default optimised build. Needs cargo-fuzz (installed here when
# missing). Uses RUSTC_BOOTSTRAP=1 so the stable toolchain can build with the
# sanitizer flags cargo-fuzz needs. Exits non-zero on the first crash.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
mode=()
case ${2:-} in
  "") ;;
  --dev) mode=(--dev) ;;
  *) echo "usage: fuzz/run.sh [SECONDS] [--dev]" >&2; exit 2 ;;
esac
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
targets=$(cargo fuzz list)
# Every target must build: the runs below filter cargo-fuzz's output, which
# would hide a build error as an empty run.
cargo fuzz build "${mode[@]}"
for t in $targets; do
    mkdir -p "corpus/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    echo "== fuzz $t for ${secs}s"
    cargo fuzz run "${mode[@]}" "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$secs" -print_final_stats=1 2>&1 \
        | grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY" || true
    # cargo fuzz exits non-zero on a crash; the pipeline above hides it, so check artifacts.
    if compgen -G "artifacts/$t/crash-*" >/dev/null || compgen -G "artifacts/$t/oom-*" >/dev/null; then
        echo "fuzz target $t found a crash: see fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
echo "fuzz: every target ran ${secs}s without a crash"
