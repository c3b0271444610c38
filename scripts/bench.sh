#!/usr/bin/env bash
# Benchmarks of racklet-flash, measured side by side in one run on this
# machine, reported as medians and ratios (docs/benchmarks.md explains each).
#
#   bash scripts/bench.sh            # everything but the criterion suites
#   bash scripts/bench.sh --criterion  # also the per-protocol criterion benches
#   bash scripts/bench.sh --fastload   # also issue 21's fastload vs XMODEM-1K (1 MiB, ~12 min) and
#                                      # maskrom visionfive2 --fast vs plain (224 KiB, ~2 min)
#
# Needs hyperfine (Debian package; installed when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null 2>&1 || apt-get install -y -qq hyperfine >/dev/null
cargo build -q --release -p racklet-flash
B=${CARGO_TARGET_DIR:-$PWD/target}/release/racklet-flash
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "== CLI cold start (hyperfine, warm page cache)"
hyperfine -N --warmup 20 --runs 200 --export-json "$work/cold.json" "$B --version" "$B boards" >/dev/null
python3 - "$work/cold.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"  {r['command'].split('/')[-1]:<32} median {r['median']*1000:.2f} ms")
PY

echo "== The README's main job on the virtual ROM (hello.elf into canmv-k230, --auto-simulate)"
# The binary alone, and through the README's own `cargo run` (warm build),
# side by side; the goal is for the binary (< 50 ms; it was 2,000 ms while the
# K230 flow waited for a next stage after PROG_START).
hello=payloads/prebuilt/canmv-k230/hello.elf
hyperfine -N --warmup 5 --runs 50 --export-json "$work/main.json" \
    "$B maskrom canmv-k230 $hello --auto-simulate" \
    "cargo run -q --release -p racklet-flash -- maskrom canmv-k230 $hello --auto-simulate" >/dev/null
python3 - "$work/main.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"  racklet-flash alone       median {r[0]['median']*1000:.1f} ms (goal < 50 ms)")
print(f"  through cargo run (warm)  median {r[1]['median']*1000:.1f} ms")
PY

echo "== Virtual USB 2.0 high-speed link: client throughput against the modelled ceiling"
# 16 MiB U-Boot FIT through the K1 fastboot flow (bulk, 512-byte packets:
# ceiling 53,248,000 B/s), 7 runs.
head -c 100000 /dev/urandom >"$work/spl.bin"
"$B" -q image bpi-f3 "$work/spl.bin" -o "$work/FSBL.bin"
{ printf '\xd0\x0d\xfe\xed'; head -c $((16 * 1024 * 1024 - 4)) /dev/urandom; } >"$work/u-boot.itb"
for _ in 1 2 3 4 5 6 7; do
    "$B" maskrom bpi-f3 "$work/FSBL.bin" --then "$work/u-boot.itb" --simulate --sim-speed high --json --stage-timeout 2s |
        python3 -c 'import json,sys; print([e["ms"] for e in map(json.loads, sys.stdin) if e.get("event")=="stage_done" and e["name"]=="u-boot.itb"][0])'
done >"$work/fb.ms"
fb=$(median <"$work/fb.ms")
python3 -c "ideal=16*1024*1024/53248000*1000; m=$fb; print(f'  fastboot 16 MiB: median {m:.0f} ms, ceiling {ideal:.1f} ms, ratio {ideal/m:.3f} (goal >= 0.98)')"
# A 512 MiB rootfs written through the TH1520's vendor U-Boot (112 MiB
# download buffer: 5 sparse pieces), 3 runs: the data phases' bytes on the
# wire against their time (issue 19).
head -c $((512 * 1024 * 1024)) /dev/urandom >"$work/rootfs.img"
for _ in 1 2 3; do
    "$B" --json write lichee-pi-4a --simulate --sim-speed high --no-reboot --partition root="$work/rootfs.img" |
        python3 -c 'import json,sys
d=[e for e in map(json.loads, sys.stdin) if e.get("event")=="stage_done"]
print(sum(e["bytes"] for e in d)/53248000*1000/sum(e["ms"] for e in d))'
done >"$work/fbw.ratio"
python3 -c "import statistics; r=[float(l) for l in open('$work/fbw.ratio')]; print(f'  fastboot write 512 MiB rootfs (5 sparse pieces): median ratio {statistics.median(r):.3f} of the ceiling (goal >= 0.98; runs {r})')"
rm -f "$work/rootfs.img"
# A 256 MiB raw image written through the Rockchip usbplug (WRITE LBA in
# the transfers its TEST UNIT READY hints at, then read back), 3 runs: each
# stage's bytes against the bulk ceiling (issue 18; goal >= 0.95).
head -c $((256 * 1024 * 1024)) /dev/urandom >"$work/rk-os.img"
for _ in 1 2 3; do
    "$B" --json write rock-3a "$work/rk-os.img" --simulate --sim-speed high --fault already-loader |
        python3 -c 'import json,sys
d={e["name"].split()[0]: e for e in map(json.loads, sys.stdin) if e.get("event")=="stage_done"}
print(" ".join(str(d[k]["bytes"]/53248000*1000/d[k]["ms"]) for k in ("write", "verify")))'
done >"$work/rkw.ratio"
python3 -c "import statistics; r=[[float(x) for x in l.split()] for l in open('$work/rkw.ratio')]; print(f'  rockusb write 256 MiB: median ratio {statistics.median(x[0] for x in r):.3f} of the ceiling, read-back {statistics.median(x[1] for x in r):.3f} (goal >= 0.95; runs {r})')"
rm -f "$work/rk-os.img"
# Rockchip usbplug through 4096-byte control transfers (SETUP + 4,032 B per
# microframe: 375 us per full transfer), 7 runs.
head -c 200000 /dev/urandom >"$work/ddr.bin"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$work/usbplug.bin"
for _ in 1 2 3 4 5 6 7; do
    "$B" maskrom rock-5b --dram "$work/ddr.bin" "$work/usbplug.bin" --simulate --sim-speed high --json 2>/dev/null |
        python3 -c 'import json,sys; print([e["ms"] for e in map(json.loads, sys.stdin) if e.get("event")=="stage_done"][1])'
done >"$work/rk.ms"
rk=$(median <"$work/rk.ms")
python3 -c "
n=4*1024*1024; full=n//4096; rest=n%4096
import math
# every 4096-byte transfer is SETUP + 2 microframes; the CRC adds 2 bytes to the last one
frames=full*(1+math.ceil(4096/4032)) + (1+math.ceil((rest+2)/4032) if rest else 1+1)
ideal=frames*0.125; m=$rk
print(f'  rockchip 4 MiB usbplug: median {m:.0f} ms, ceiling {ideal:.1f} ms, ratio {ideal/m:.3f}')"

echo "== Sophgo: a 220 KiB BL2 over the virtual CDC-ACM link, unpaced, high speed and full speed"
# --sim-speed paces the virtual ROM's link too: each OUT packet and each
# 16-byte ACK takes its bus time (lock-step: at least one (micro)frame
# each: 250 us a packet at high speed, 2 ms at full speed, where packets
# carry 56 data bytes instead of 248). 5 runs each, median of the whole run.
head -c $((0x37000 - 4)) /dev/urandom | { printf '\x6f\x00\x00\x02'; cat; } >"$work/sg-bl2.bin"
for speed in none high full; do
    for _ in 1 2 3 4 5; do
        extra=""; [ "$speed" = none ] || extra="--sim-speed $speed"
        # shellcheck disable=SC2086
        "$B" maskrom milkv-duo-256m "$work/sg-bl2.bin" --simulate $extra --json |
            python3 -c 'import json,sys; print([e["ms"] for e in map(json.loads, sys.stdin) if e.get("event")=="done"][0])'
    done >"$work/sg-$speed.ms"
done
python3 -c "
import math
def packets(chunk):
    # probe: magic; param1 and BL2: magic, DATA, FLAG, BREAK
    return 1 + (1 + math.ceil(4096/chunk) + 2) + (1 + math.ceil(0x37000/chunk) + 2)
hs, fs = packets(248) * 0.250, packets(56) * 2.0
m = {s: sorted(map(float, open('$work/sg-%s.ms' % s)))[2] for s in ('none', 'high', 'full')}
# The unpaced run is the model's own fixed costs (re-enumeration, the ROM's
# linger after BREAK) and the client's work: paced = unpaced + bus time at best.
print(f'  unpaced median {m[\"none\"]:.0f} ms (no wait after BL2: the flow ends when it is sent)')
for s, bus in (('high', hs), ('full', fs)):
    print(f'  {s} speed median {m[s]:.0f} ms = unpaced + {m[s]-m[\"none\"]:.0f} ms; modelled bus time {bus:.0f} ms, ratio {bus/(m[s]-m[\"none\"]):.3f}')"

echo "== Parallel boards: 8 virtual K230 boards against 1 (high-speed model, 600 kB each)"
head -c 600000 /dev/urandom >"$work/k230.bin"
ports=""
for i in 1 2 3 4 5 6 7 8; do ports="$ports --port 1-$i"; done
hyperfine -N --warmup 3 --runs 30 --export-json "$work/par.json" \
    "$B -q maskrom canmv-k230 $work/k230.bin --simulate --sim-speed high --stage-timeout 0" \
    "$B -q maskrom canmv-k230 $work/k230.bin --simulate --sim-speed high --stage-timeout 0 $ports" >/dev/null
python3 - "$work/par.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
one, eight = r[0]["median"], r[1]["median"]
print(f"  1 board median {one*1000:.1f} ms, 8 boards median {eight*1000:.1f} ms, ratio {eight/one:.3f} (goal <= 1.1)")
PY

if [ "${1:-}" = "--criterion" ]; then
    echo "== criterion suites (medians in each crate's README)"
    cargo bench -q -p racklet-rockchip -p racklet-canaan -p racklet-fastboot -p racklet-starfive 2>&1 |
        grep -E "^[a-zA-Z].*time:|thrpt:" || true
fi

if [ "${1:-}" = "--fastload" ]; then
    echo "== fastload vs XMODEM-1K, 1 MiB through a paced pty relay (0 and 16 ms turnaround)"
    FASTLOAD_BENCH_RUNS=${FASTLOAD_BENCH_RUNS:-3} cargo bench -q -p racklet-fastload --bench fastload_vs_xmodem 2>&1 |
        grep -E "^(fastload|  latency)" || true
    echo "== maskrom visionfive2: --fast vs plain XMODEM-1K, the same 224 KiB image through the virtual board's paced UART"
    # The largest image both paths take: the loader's image window (0x38000
    # bytes, docs/fastload.md §6; the ROM alone takes up to 256 KiB). The
    # virtual UART is paced at the rate in use (115200, then the loader's).
    head -c $((0x38000)) /dev/urandom >"$work/vf2.bin"
    for mode in plain fast; do
        for _ in 1 2 3; do
            extra=""; [ "$mode" = fast ] && extra="--fast"
            # shellcheck disable=SC2086
            "$B" --json maskrom visionfive2 "$work/vf2.bin" --simulate $extra 2>/dev/null |
                python3 -c 'import json,sys
ev=list(map(json.loads, sys.stdin))
st={e["name"]: e["ms"] for e in ev if e.get("event")=="stage_done"}
print(" ".join(str(x) for x in [[e["ms"] for e in ev if e.get("event")=="done"][0], st.get("xmodem-1k", 0), st.get("fastload", 0)]))'
        done >"$work/vf2-$mode.ms"
    done
    python3 - "$work/vf2-plain.ms" "$work/vf2-fast.ms" <<'PY'
import statistics, sys
runs = [[list(map(float, l.split())) for l in open(f)] for f in sys.argv[1:]]
med = [[statistics.median(r[i] for r in rs) for i in range(3)] for rs in runs]
(p, px, _), (f, fx, ff) = med
print(f"  plain XMODEM-1K: run median {p:.0f} ms (the XMODEM stage {px:.0f} ms)")
print(f"  --fast:          run median {f:.0f} ms (loader by XMODEM {fx:.0f} ms, fastload {ff:.0f} ms = {0x38000/ff*1000:.0f} B/s, {0x38000/ff*1000/150000:.3f} of 1.5 Mbaud)")
print(f"  ratio: {p/f:.1f}x the whole run, {px/(fx+ff):.1f}x the transfer stages (runs: plain {runs[0]}, fast {runs[1]})")
PY
fi
