#!/usr/bin/env bash
# labgrid end-to-end test of docs/labgrid/racklet_labgrid.py.
#
# On 127.0.0.1 only: starts three virtual StarFive UART ROMs
# (`racklet-flash sim visionfive2`, one with --fault corrupt-image), a
# labgrid-coordinator on a free port and a labgrid-exporter exporting them
# as RawSerialPorts (plus a NetworkRKUSBLoader record for USB port 1-3.2);
# creates and acquires four places with labgrid-client; then
# test_flash.py drives racklet-flash through RemotePlace and
# RackletFlashDriver (serial: through the exporter's ser2net; USB: by the
# resource's USB path against the virtual ROM).
#
# labgrid is installed into a venv under $CARGO_TARGET_DIR (or target/),
# kept between runs. Needs python3 with venv, network for the first run
# and ser2net (Debian package ser2net). Exits non-zero on any failure; every
# process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
t_start=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - t_start) / 1000000 ))ms"; }
log() { echo "labgrid test [$(elapsed)]: $*"; }
die() { echo "labgrid test: FAILED: $*" >&2; exit 1; }

LABGRID_VERSION=26.0.1
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/labgrid-venv
stamp=$venv/.installed-labgrid-$LABGRID_VERSION

# --- labgrid, cached in a venv -------------------------------------------
if [[ ! -f $stamp ]]; then
  log "installing labgrid $LABGRID_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$target"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check "labgrid==$LABGRID_VERSION" \
    || die "pip install labgrid==$LABGRID_VERSION failed"
  touch "$stamp"
  log "labgrid installed"
fi
py=$venv/bin/python
lgc() { timeout 30 "$venv/bin/labgrid-client" "$@"; }

real_ser2net=$(command -v ser2net || echo /usr/sbin/ser2net)
[[ -x $real_ser2net ]] || die "ser2net is missing (Debian package ser2net)"

# --- racklet-flash ---------------------------------------------------------
if [[ -z ${RACKLET_FLASH:-} ]]; then
  timeout 900 cargo build -q -p racklet-flash
  RACKLET_FLASH=$target/debug/racklet-flash
fi
[[ -x $RACKLET_FLASH ]] || die "no racklet-flash at $RACKLET_FLASH"
export RACKLET_FLASH

# --- processes, all stopped on exit ----------------------------------------
work=$(mktemp -d /tmp/racklet-labgrid.XXXXXX)
pids=()
start() {  # start NAME CMD...: own process group, output in $work/NAME.log
  local name=$1; shift
  setsid "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
}
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if ((rc != 0)); then
    for f in "$work"/*.log; do echo "--- $(basename "$f")"; tail -40 "$f"; done >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}
first_line() { [[ -s $1 ]] && head -1 "$1" | grep -q '^/dev/'; }

unset LG_ENV LG_PLACE LG_STATE LG_INITIAL_STATE LG_PROXY
export LG_COORDINATOR=127.0.0.1:$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

start sim-vf2 "$RACKLET_FLASH" sim visionfive2 --keep
start sim-vf2-bad "$RACKLET_FLASH" sim visionfive2 --keep --fault corrupt-image
start sim-vf2-strategy "$RACKLET_FLASH" sim visionfive2 --keep
wait_for 10 "the virtual ROMs' ttys" first_line "$work/sim-vf2.log"
wait_for 10 "the faulty virtual ROM's tty" first_line "$work/sim-vf2-bad.log"
wait_for 10 "the third virtual ROM's tty" first_line "$work/sim-vf2-strategy.log"
export RACKLET_LG_VF2_TTY=$(head -1 "$work/sim-vf2.log")
export RACKLET_LG_VF2_BAD_TTY=$(head -1 "$work/sim-vf2-bad.log")
export RACKLET_LG_VF2_STRATEGY_TTY=$(head -1 "$work/sim-vf2-strategy.log")
log "virtual ROMs on $RACKLET_LG_VF2_TTY, $RACKLET_LG_VF2_BAD_TTY and $RACKLET_LG_VF2_STRATEGY_TTY"

# the coordinator keeps its state (places.yaml) in its working directory
start coordinator bash -c 'cd "$1" && exec "$2" --listen "$3"' _ "$work" "$venv/bin/labgrid-coordinator" "$LG_COORDINATOR"
wait_for 30 "labgrid-coordinator on $LG_COORDINATOR" lgc places
log "coordinator on $LG_COORDINATOR"

# tests/labgrid/bin/ser2net keeps the exporter's ser2net on 127.0.0.1
start exporter env PATH="$root/tests/labgrid/bin:$PATH" RACKLET_REAL_SER2NET="$real_ser2net" \
  "$venv/bin/labgrid-exporter" --name racklet-test --hostname 127.0.0.1 tests/labgrid/exporter.yaml
has_resources() { [[ $(lgc resources | grep -c '^racklet-test/') -ge 4 ]]; }
wait_for 30 "the exporter's four resources" has_resources
log "exporter resources: $(lgc resources | tr '\n' ' ')"

for p in vf2 vf2-bad vf2-strategy rock3a; do
  lgc -p "racklet-$p" create
  lgc -p "racklet-$p" add-match "racklet-test/$p/*"
  lgc -p "racklet-$p" acquire
done
log "places created and acquired"
lgc -p racklet-vf2 show | sed 's/^/    /'

log "running test_flash.py"
timeout 120 "$py" tests/labgrid/test_flash.py || die "test_flash.py exited $?"

# the virtual ROMs' own account: the payload arrived through ser2net
grep -q "session 1: .*CRC-32 0x[0-9a-f]* ok), jumped to" "$work/sim-vf2.log" \
  || die "the vf2 ROM did not report a good load"
grep -q "session 1: .*CRC-32 0x[0-9a-f]* ok), jumped to" "$work/sim-vf2-strategy.log" \
  || die "the vf2-strategy ROM did not report a good load"
grep -q "session 1: .*answered CRC Error" "$work/sim-vf2-bad.log" \
  || die "the faulty ROM did not report its CRC error"
log "virtual ROMs confirm: $(sed -n 3p "$work/sim-vf2.log")"
for p in vf2 vf2-bad vf2-strategy rock3a; do lgc -p "racklet-$p" release; done
log "passed"
