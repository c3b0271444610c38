#!/usr/bin/env bash
# Measures the size of a --record transcript of a 64 MiB download
# (docs/transcripts.md, "Size"): the simulated K230, a 64 MiB random
# payload loaded into DRAM, recorded three ways (full data, hashed data,
# hashed and zstd-compressed), and each one replayed.
#
#   scripts/transcript-size.sh [MIB]     (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-64}
cargo build -q --release -p racklet-flash
bin=${CARGO_TARGET_DIR:-target}/release/racklet-flash
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp payloads/prebuilt/canmv-k230/hello.bin "$work/k230.bin"
head -c $((mib * 1048576)) /dev/urandom > "$work/big.bin"
cd "$work"
run=(maskrom canmv-k230 --load 0x80360000=k230.bin --load 0x1000000=big.bin --run 0x1000000)
for v in full:t-full.jsonl hashed:t.jsonl hashed:t.jsonl.zst; do
  mode=${v%%:*}; file=${v#*:}
  "$bin" "${run[@]}" --simulate --record "$file" --record-data "$mode" > /dev/null 2>&1
  bytes=$(stat -c %s "$file")
  case $file in *.zst) lines=- ;; *) lines=$(wc -l < "$file") ;; esac
  start=$(date +%s.%N)
  "$bin" "${run[@]}" --replay "$file" > /dev/null 2>&1
  took=$(echo "$(date +%s.%N) - $start" | bc)
  printf '%-8s %-20s %12d bytes  %7.2f MiB  %6s records  %5.3f bytes/byte sent  replay %.1fs\n' \
    "$mode" "$file" "$bytes" "$(echo "$bytes / 1048576" | bc -l)" "$lines" \
    "$(echo "$bytes / ($mib * 1048576)" | bc -l)" "$took"
done
