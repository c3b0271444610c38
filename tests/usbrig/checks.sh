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

# timed NAME SECONDS COMMAND...: a step, and `RIG-TIME NAME MS` of its wall
# time in the guest (for the side-by-side speed figures of
# docs/benchmarks.md; nothing is judged by it).
timed() {
  _tn=$1
  _t0=$(cut -d' ' -f1 /proc/uptime)
  step "$@"
  _trc=$?
  _t1=$(cut -d' ' -f1 /proc/uptime)
  echo "RIG-TIME $_tn $(awk "BEGIN { printf \"%d\", ($_t1 - $_t0) * 1000 }")"
  return $_trc
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

# The payloads, as the workspace names them (under /data).
RK=payloads/prebuilt/rock-3a/hello.bin
DUO=payloads/prebuilt/milkv-duo-s/hello.bin
K230=payloads/prebuilt/canmv-k230/hello.bin
TH1520=payloads/prebuilt/lichee-pi-4a/hello.bin

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
UDC1_PORT=$P
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

# 4. The protocols' virtual ROMs (racklet-sim) as gadgets with the real
#    ROMs' ids, flashed by racklet-flash selected by USB port path. The
#    maskrom runs are recorded (--record, docs/transcripts.md) from /data,
#    with the payloads named as in the workspace, so that the host can
#    replay them and keep them as captures (tests/vectors/captures).
mkdir -p /tmp/cap

# Three ROMs at once, one per UDC: `list --json` shows each with its own port path.
gadget_start lrk usb --model rk3568 --udc dummy_udc.0
gadget_start lth usb --model th1520 --udc dummy_udc.1
gadget_start lk1 usb --model k1 --udc dummy_udc.2
step list-three-wait 20 sh -c 'for id in 2207:350a 2345:7654 361c:1001; do racklet-usbrig-probe wait $id 15 || exit 1; done'
step list-three 20 racklet-flash list --json
gadget_stop lrk
gadget_stop lth
gadget_stop lk1

# Rockchip RK3568: DRAM init (0x471) and usbplug (0x472) as 4096-byte vendor
# control transfers to the device, then the usbplug re-enumerates and
# answers rockusb over bulk. The virtual ROM takes a 0x472 stage for a
# usbplug only when it carries the rockusb interface descriptor (ff/06/05),
# as rkbin's usbplugs do, so one is appended to the payload.
gadget_start rk usb --model rk3568 --udc dummy_udc.0
step rk-wait 20 racklet-usbrig-probe wait 2207:350a 15
P=$(port_of)
# rk-usbplug.bin is hello.bin with the rockusb interface descriptor after it
# (made by the host, tests/tests/usbrig.rs), so the virtual ROM takes it for
# a usbplug; beside the recording, so the host can replay it.
step rk-maskrom 60 sh -c "cd /data && racklet-flash maskrom rock-3a rk-usbplug.bin --dram $RK --port $P --record /tmp/cap/rk-maskrom.jsonl"
gadget_stop rk

# ... with one bit flipped on the way in (fault corrupt): the CRC check fails, the ROM refuses.
gadget_start rkc usb --model rk3568 --udc dummy_udc.0 --fault corrupt
step rkc-wait 20 racklet-usbrig-probe wait 2207:350a 15
P=$(port_of)
step rkc-maskrom 60 sh -c "cd /data && racklet-flash maskrom rock-3a $RK --dram $RK --port $P --record /tmp/cap/rkc-maskrom.jsonl"
gadget_stop rkc

# Sophgo SG2000 (CDC-ACM): three sessions, each a new enumeration at the same
# port path (the one the ACM checks found for dummy_udc.2).
gadget_start duo acm --model sg2000 --udc dummy_udc.2
step duo-maskrom 60 sh -c "cd /data && racklet-flash maskrom milkv-duo-s $DUO --port $A --wait 20s --record /tmp/cap/duo-maskrom.jsonl"
gadget_stop duo

# Canaan K230: a payload loaded and started.
gadget_start k230 usb --model k230 --udc dummy_udc.0
step k230-wait 20 racklet-usbrig-probe wait 29f1:0230 15
P=$(port_of)
step k230-list 20 racklet-flash list --json
step k230-maskrom 60 sh -c "cd /data && racklet-flash maskrom canmv-k230 $K230 --port $P --stage-timeout 1s --record /tmp/cap/k230-maskrom.jsonl"
gadget_stop k230

# K230 refusing the bulk data (fault stall-bulk): the rejected class.
gadget_start k230r usb --model k230 --udc dummy_udc.0 --fault stall-bulk
step k230r-wait 20 racklet-usbrig-probe wait 29f1:0230 15
P=$(port_of)
step k230r-maskrom 60 sh -c "cd /data && racklet-flash maskrom canmv-k230 $K230 --port $P --record /tmp/cap/k230r-maskrom.jsonl"
gadget_stop k230r

# K230 unplugged in the middle of a 400 KB download: the disconnected class.
gadget_start k230cut usb --model k230 --udc dummy_udc.0 --unplug-after 100000
step k230cut-wait 20 racklet-usbrig-probe wait 29f1:0230 15
P=$(port_of)
step k230cut-maskrom 60 racklet-flash maskrom canmv-k230 /data/k230-big.bin --port "$P"
gadget_stop k230cut

# T-Head TH1520 plugged in 3 s late into dummy_udc.1 (whose port path the
# cut checks found): racklet-flash --port --wait finds it; the ROM
# stage re-enumerates as U-Boot fastboot (1234:8888) at the same port.
gadget_start th1520 usb --model th1520 --udc dummy_udc.1 --delay 3
step th1520-maskrom 60 sh -c "cd /data && racklet-flash maskrom lichee-pi-4a $TH1520 --port $UDC1_PORT --wait 20s --record /tmp/cap/th1520-maskrom.jsonl"
gadget_stop th1520

# SpacemiT K1: FSBL.bin through the ROM's fastboot; the FSBL comes back at the same port.
gadget_start k1 usb --model k1 --udc dummy_udc.2
step k1-wait 20 racklet-usbrig-probe wait 361c:1001 15
P=$(port_of)
step k1-maskrom 60 sh -c "cd /data && racklet-flash maskrom bpi-f3 FSBL.bin --port $P --record /tmp/cap/k1-maskrom.jsonl"
gadget_stop k1

# K1 answering FAIL to the download (fault fail-download): the rejected class.
gadget_start k1r usb --model k1 --udc dummy_udc.2 --fault fail-download
step k1r-wait 20 racklet-usbrig-probe wait 361c:1001 15
P=$(port_of)
step k1r-maskrom 60 sh -c "cd /data && racklet-flash maskrom bpi-f3 FSBL.bin --port $P --record /tmp/cap/k1r-maskrom.jsonl"
gadget_stop k1r

# K1 vanishing when the data phase starts (fault unplug: the model detaches,
# the gadget unbinds): the disconnected class.
gadget_start k1u usb --model k1 --udc dummy_udc.2 --fault unplug
step k1u-wait 20 racklet-usbrig-probe wait 361c:1001 15
P=$(port_of)
step k1u-maskrom 60 racklet-flash maskrom bpi-f3 /data/FSBL.bin --port "$P"
gadget_stop k1u

# 5. Debian's fastboot (AOSP 29.0.6, usb_linux.cpp over usbfs) against the
#    virtual fastboot ROMs served as real gadgets: the virtual devices must
#    satisfy the real client.
# TH1520: the ROM's answers are the text alone. flash:ram + reboot, as the
# vendor's RAM-boot instructions do it, then vendor U-Boot (1234:8888).
gadget_start fbth usb --model th1520 --udc dummy_udc.1
step fbth-wait 20 racklet-usbrig-probe wait 2345:7654 15
step fbth-devices 20 fastboot devices -l
step fbth-getvar 20 fastboot getvar version
step fbth-flash 60 fastboot flash ram /data/th1520.bin
step fbth-reboot 20 fastboot reboot
step fbth-uboot-wait 20 racklet-usbrig-probe wait 1234:8888 15
step fbth-product 20 fastboot getvar product
gadget_stop fbth

# K1: racklet-flash sends FSBL.bin to the ROM; Debian's fastboot then
# stages u-boot.itb to the FSBL (text-only answers) and continues.
gadget_start fbk1 usb --model k1 --udc dummy_udc.2
step fbk1-wait 20 racklet-usbrig-probe wait 361c:1001 15
P=$(port_of)
step fbk1-devices 20 fastboot devices
step fbk1-maskrom 60 racklet-flash maskrom bpi-f3 /data/FSBL.bin --port "$P"
step fbk1-getvar 20 fastboot getvar version
step fbk1-stage 60 fastboot stage /data/u-boot.itb
step fbk1-continue 20 fastboot continue
step fbk1-uboot-wait 20 racklet-usbrig-probe wait 361c:1001 15
step fbk1-product 20 fastboot getvar product
gadget_stop fbk1

# 6. Debian's rkdeveloptool (libusb over usbfs) against the virtual RK3568:
#    `db` sends the loader's 0x471/0x472 entries to the maskrom, the usbplug
#    comes back at the same port, then chip info, flash id, a write and a
#    read of LBAs through its virtual eMMC; racklet-flash reads back what
#    rkdeveloptool wrote through the same usbplug.
# The link alone (RACKLET_RIG_SPEED=1): bulk OUT in 1 MiB pieces to the loop
# model, by bulk_out and by queue_bulk_out, in turn.
if [ -e /data/speed.bin ]; then
  gadget_start lspeed usb --model loop --udc dummy_udc.1
  step lspeed-wait 20 racklet-usbrig-probe wait 1209:0001 15
  LP=$(port_of)
  step speed-link 120 time racklet-usbrig-probe bulk-speed "$LP" 4194304
  gadget_stop lspeed
fi

gadget_start rkd usb --model rk3568 --udc dummy_udc.0
step rkd-wait 20 racklet-usbrig-probe wait 2207:350a 15
P=$(port_of)
step rkd-ld 20 rkdeveloptool ld
step rkd-db 60 rkdeveloptool db /data/rk-loader.bin
step rkd-settle 10 sleep 3
step rkd-plug-wait 20 racklet-usbrig-probe wait 2207:350a 15
step rkd-rci 20 rkdeveloptool rci
step rkd-rid 20 rkdeveloptool rid
step rkd-wl 60 rkdeveloptool wl 64 /data/rk-image.bin
step rkd-rl 60 rkdeveloptool rl 64 200 /tmp/rk-back.bin
step rkd-cmp 20 cmp /data/rk-image.bin /tmp/rk-back.bin
step rkd-rf-read 60 racklet-flash read rock-3a --at 64 --size 102400 -o /tmp/rk-rf.bin --port "$P"
step rkd-rf-cmp 20 cmp /data/rk-image.bin /tmp/rk-rf.bin
# rkdeveloptool `ul` and racklet-flash write --loader-to-storage leave the
# same IDB at LBA 64 (156 sectors for this loader): theirs is read back,
# the range erased, ours written and read back, and the two compared.
step rkd-ul 60 rkdeveloptool ul /data/rk-ul-loader.bin
step rkd-ul-rl 60 rkdeveloptool rl 64 156 /tmp/rk-ul-theirs.bin
step rkd-ul-sha 20 sha256sum /tmp/rk-ul-theirs.bin
step rkd-ul-erase 60 racklet-flash erase rock-3a --at 64 --size 79872 --port "$P"
step rkd-ul-erased 60 rkdeveloptool rl 64 156 /tmp/rk-ul-erased.bin
step rkd-ul-erased-sha 20 sha256sum /tmp/rk-ul-erased.bin
step rkd-ul-rf 60 racklet-flash write rock-3a --loader-to-storage --loader /data/rk-ul-loader.bin --port "$P"
step rkd-ul-rf-read 60 racklet-flash read rock-3a --at 64 --size 79872 -o /tmp/rk-ul-ours.bin --port "$P"
step rkd-ul-cmp 20 cmp /tmp/rk-ul-theirs.bin /tmp/rk-ul-ours.bin
# rkdeveloptool `ef` (EraseAllBlocks: on an eMMC, ERASE LBA in 32768-sector
# chunks over the flash size) and racklet-flash erase --whole leave the
# same storage: the same 200 sectors written at the first and at the last
# LBAs, erased by each tool, read back by rkdeveloptool `rl` and compared.
END_LBA=$((16777216 - 200))
step rkd-ef-wl0 60 rkdeveloptool wl 0 /data/rk-image.bin
step rkd-ef-wlend 60 rkdeveloptool wl $END_LBA /data/rk-image.bin
step rkd-ef 120 rkdeveloptool ef
step rkd-ef-rl0 60 rkdeveloptool rl 0 200 /tmp/rk-ef-theirs0.bin
step rkd-ef-rlend 60 rkdeveloptool rl $END_LBA 200 /tmp/rk-ef-theirs-end.bin
step rkd-rf-ef-wl0 60 rkdeveloptool wl 0 /data/rk-image.bin
step rkd-rf-ef-wlend 60 rkdeveloptool wl $END_LBA /data/rk-image.bin
step rkd-rf-ef-before 60 rkdeveloptool rl 0 200 /tmp/rk-ef-before.bin
step rkd-rf-ef-before-cmp 20 cmp /data/rk-image.bin /tmp/rk-ef-before.bin
step rkd-rf-ef 120 racklet-flash erase rock-3a --whole --port "$P"
step rkd-rf-ef-rl0 60 rkdeveloptool rl 0 200 /tmp/rk-ef-ours0.bin
step rkd-rf-ef-rlend 60 rkdeveloptool rl $END_LBA 200 /tmp/rk-ef-ours-end.bin
step rkd-ef-sha 20 sha256sum /tmp/rk-ef-theirs0.bin /tmp/rk-ef-theirs-end.bin /tmp/rk-ef-ours0.bin /tmp/rk-ef-ours-end.bin
step rkd-ef-cmp 20 sh -c 'cmp /tmp/rk-ef-theirs0.bin /tmp/rk-ef-ours0.bin && cmp /tmp/rk-ef-theirs-end.bin /tmp/rk-ef-ours-end.bin'
# rkdeveloptool `ppt` and racklet-flash partitions read the same GPT (made
# by the host, tests/tests/usbrig.rs: LBA 0..34), written by rkdeveloptool.
step rkd-gpt-wl 60 rkdeveloptool wl 0 /data/rk-gpt.img
step rkd-ppt 60 rkdeveloptool ppt
step rkd-rf-ppt 60 racklet-flash --json partitions rock-3a --port "$P"
# Speed, side by side through the same usbplug (only when the host put
# /data/speed.bin there: RACKLET_RIG_SPEED=1): the same 4 MiB at the same
# LBA, rkdeveloptool `wl` against racklet-flash `write --no-verify`, then
# read back by `rl` against `read`, each three times in turn (the host
# takes medians; busybox `time` gives each run's CPU time, user + sys, which
# the 1-CPU guest takes from the gadget); and each program's start alone.
if [ -e /data/speed.bin ]; then
  timed speed-rkd-version 20 rkdeveloptool -v
  timed speed-rf-version 20 racklet-flash --version
  timed speed-rf-list 20 racklet-flash list --json
  for i in 1 2 3; do
    timed speed-rkd-wl-$i 120 time rkdeveloptool wl 4096 /data/speed.bin
    timed speed-rf-wl-$i 120 time racklet-flash --json write rock-3a /data/speed.bin --at 4096 --no-verify --port "$P"
  done
  for i in 1 2 3; do
    timed speed-rkd-rl-$i 120 time rkdeveloptool rl 4096 8192 /tmp/speed-theirs-$i.bin
    timed speed-rf-rl-$i 120 time racklet-flash --json read rock-3a --at 4096 --size 4194304 -o /tmp/speed-ours-$i.bin --port "$P"
  done
  step speed-rl-cmp 20 sh -c 'for i in 1 2 3; do cmp /data/speed.bin /tmp/speed-theirs-$i.bin && cmp /data/speed.bin /tmp/speed-ours-$i.bin || exit 1; done'
fi
gadget_stop rkd

# A usbplug unplugged in the middle of a racklet-flash write, whose CBWs
# and data phases are queued (kept in flight): the failure of a queued
# transfer still fails the write, as disconnected (exit 8), never done.
gadget_start rkcut usb --model rk3568 --fault already-loader --udc dummy_udc.0 --unplug-after 1000000
step rkcut-wait 20 racklet-usbrig-probe wait 2207:350a 15
P=$(port_of)
step rkcut-write 60 racklet-flash write rock-3a /data/cut.bin --no-verify --port "$P"
gadget_stop rkcut

# Storage through vendor U-Boot's fastboot (a TH1520 already in it): Debian's
# fastboot flashes boot as a raw image and re-sparses root within -S 1M;
# racklet-flash then writes root again the same way. The virtual U-Boot's
# verdict lists what it wrote.
gadget_start fbst usb --model th1520-uboot --udc dummy_udc.1
step fbst-wait 20 racklet-usbrig-probe wait 1234:8888 15
P=$(port_of)
step fbst-fastboot-boot 60 fastboot flash boot /data/boot.ext4
step fbst-fastboot-root 60 fastboot -S 1M flash root /data/root.ext4
step fbst-racklet 60 racklet-flash write lichee-pi-4a --port "$P" --no-reboot --sparse-limit 1M --partition root=/data/root.ext4
# Speed, side by side (RACKLET_RIG_SPEED=1): the same 4 MiB raw into boot,
# Debian's fastboot against racklet-flash, three times in turn.
if [ -e /data/speed.bin ]; then
  timed speed-fb-version 20 fastboot --version
  for i in 1 2 3; do
    timed speed-fb-flash-$i 120 time fastboot flash boot /data/speed.bin
    timed speed-rf-flash-$i 120 time racklet-flash --json write lichee-pi-4a --port "$P" --no-reboot --partition boot=/data/speed.bin
  done
fi
gadget_stop fbst

# ... and unplugged in the middle of a queued data phase: disconnected (exit 8).
gadget_start fbcut usb --model th1520-uboot --udc dummy_udc.1 --unplug-after 1000000
step fbcut-wait 20 racklet-usbrig-probe wait 1234:8888 15
P=$(port_of)
step fbcut-write 60 racklet-flash write lichee-pi-4a --port "$P" --no-reboot --partition boot=/data/cut.bin
gadget_stop fbcut

# The storage each client leaves, for the same inputs: Debian's fastboot
# (boot as a raw image, root re-sparsed within -S 1M) on one virtual eMMC,
# racklet-flash (the same two partitions, --sparse-limit 1M) on another,
# each kept in a file by the gadget (--storage); the two files compared up
# to the end of root's data (root starts at 502 MiB of the TH1520 layout:
# 17 KiB + table 2031 KiB + boot 500 MiB).
gadget_start fbeq usb --model th1520-uboot --udc dummy_udc.1 --storage /tmp/fb-theirs.img
step fbeq-wait 20 racklet-usbrig-probe wait 1234:8888 15
step fbeq-fastboot-boot 60 fastboot flash boot /data/boot.ext4
step fbeq-fastboot-root 60 fastboot -S 1M flash root /data/root.ext4
gadget_stop fbeq
gadget_start fbeq2 usb --model th1520-uboot --udc dummy_udc.1 --storage /tmp/fb-ours.img
step fbeq2-wait 20 racklet-usbrig-probe wait 1234:8888 15
P=$(port_of)
step fbeq2-racklet 60 racklet-flash write lichee-pi-4a --port "$P" --no-reboot --sparse-limit 1M --partition boot=/data/boot.ext4 --partition root=/data/root.ext4
gadget_stop fbeq2
step fbeq-cmp 60 sh -c 'cmp -n $((502 * 1048576 + $(stat -c %s /data/root.ext4))) /tmp/fb-theirs.img /tmp/fb-ours.img && echo "same storage"'
# ... and what they hold is the images (not two untouched files alike).
step fbeq-root 20 sh -c 'cmp -n $(stat -c %s /data/root.ext4) /data/root.ext4 /tmp/fb-ours.img 0 $((502 * 1048576)) && echo "root at 502 MiB"'
rm -f /tmp/fb-theirs.img /tmp/fb-ours.img

# 7. The transcripts, each as a step the host checks (sha256) and replays.
for f in /tmp/cap/*.jsonl; do
  n=$(basename "$f" .jsonl)
  step "cap-$n" 20 sh -c "sha256sum $f | cut -d' ' -f1; cat $f"
done
