# The rig's checks, sourced by /init inside the guest. Every step runs
# under a timeout; its exit status and output are printed between
#   RIG-STEP <name> exit=<status>   and   RIG-END <name>
# and judged by tests/tests/usbrig.rs on the host.

# step NAME SECONDS COMMAND...
step() {
  _n=$1; _s=$2; shift 2
  timeout "$_s" "$@" > /tmp/step.out 2>&1
  _rc=$?
  echo "RIG-STEP $_n exit=$_rc"
  cat /tmp/step.out
  echo "RIG-END $_n"
  return $_rc
}

# The USB port path a `probe wait` step printed.
port_of() { sed -n 's/.* appeared at \([^ ]*\) .*/\1/p' /tmp/step.out; }

# gadget_start NAME ARGS...: racklet-gadget in the background.
gadget_start() {
  _n=$1; shift
  racklet-gadget "$@" --name "$_n" --stop-file "/run/stop-$_n" --max-time 100 \
    > "/run/$_n.out" 2> "/run/$_n.log" &
  echo $! > "/run/$_n.pid"
}

# gadget_stop NAME: asks the gadget to stop (bounded), prints its verdict as step NAME-verdict.
gadget_stop() {
  _n=$1; _p=$(cat "/run/$_n.pid")
  touch "/run/stop-$_n"
  _i=0
  while kill -0 "$_p" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i+1)); done
  kill -9 "$_p" 2>/dev/null
  wait "$_p"; _rc=$?
  echo "RIG-STEP $_n-verdict exit=$_rc"
  cat "/run/$_n.out" "/run/$_n.log"
  echo "RIG-END $_n-verdict"
}

# 1. The loop device: a late gadget, list, transfers, a refusal, re-enumeration.
gadget_start loop usb --model loop --udc dummy_udc.0 --delay 3
step list-before 20 racklet-flash list --json --all
step wait 20 racklet-usbrig-probe wait 1209:0001 15
P=$(port_of)
step list 20 racklet-flash list --json --all
step xfer 40 racklet-usbrig-probe xfer "$P" 100000
step stall 20 racklet-usbrig-probe stall "$P"
step reenum 30 racklet-usbrig-probe reenum "$P"
step xfer-after-reenum 30 racklet-usbrig-probe xfer "$P" 4096
gadget_stop loop

# 2. Unplugged in the middle of a long bulk write: the disconnected class.
gadget_start cut usb --model loop --udc dummy_udc.1 --unplug-after 200000
step cut-wait 20 racklet-usbrig-probe wait 1209:0001 15
P=$(port_of)
step cut-stream 40 racklet-usbrig-probe stream "$P" 1048576
gadget_stop cut

# ... and in the middle of a control download (4096-byte control OUT transfers).
gadget_start cutc usb --model loop --udc dummy_udc.0 --unplug-after 50000
step cutc-wait 20 racklet-usbrig-probe wait 1209:0001 15
P=$(port_of)
step cutc-xfer 40 racklet-usbrig-probe xfer "$P" 100000
gadget_stop cutc

# 3. The ACM function: a cdc-acm tty with a port path, bytes both ways.
#    The echo model runs on a pty, as every serial ROM in racklet-sim; the
#    gadget relays it to /dev/ttyGS0.
gadget_start acm acm --model echo --udc dummy_udc.2
step acm-tty 20 sh -c 'while [ ! -e /dev/ttyACM0 ]; do sleep 0.1; done; d=$(readlink -f /sys/class/tty/ttyACM0/device); basename "$(dirname "$d")"'
A=$(tail -n 1 /tmp/step.out)
step acm-list 20 racklet-flash list --json --all
step acm 40 racklet-usbrig-probe acm "$A" 20000
step acm-reenum 40 racklet-usbrig-probe acm-reenum "$A"
gadget_stop acm

#    ... and unplugged in the middle of a write.
gadget_start acmcut acm --model echo --udc dummy_udc.2 --unplug-after 10000
step acmcut-tty 20 sh -c 'while [ ! -e /dev/ttyACM0 ]; do sleep 0.1; done; d=$(readlink -f /sys/class/tty/ttyACM0/device); basename "$(dirname "$d")"'
A=$(tail -n 1 /tmp/step.out)
step acmcut 40 racklet-usbrig-probe acm "$A" 100000
gadget_stop acmcut

# 4. Protocol checks added by the test for the protocols that have landed.
[ -f /etc/extra.sh ] && . /etc/extra.sh
