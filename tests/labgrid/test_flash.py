"""labgrid client side of tests/labgrid/run.sh.

Uses the places run.sh created and acquired on its coordinator, through
labgrid's RemotePlace and the example RackletFlashDriver, and checks:
  vf2      serial StarFive ROM behind ser2net: hello.elf is loaded (done event)
  vf2-bad  the same ROM with a corrupt-image fault: RackletFlashError "rejected"
  rock3a   NetworkRKUSBLoader: racklet-flash selects the board by the
           resource's USB path (1-3.2) on the virtual ROM (--simulate),
           then a --fault via extra_args gives "rejected" again
  vf2-strategy  docs/labgrid/strategy.py: transition("loaded") loads hello.elf
"""

import os
import sys
import time

from labgrid import Environment

env = Environment(os.path.join(os.path.dirname(os.path.abspath(__file__)), "env.yaml"))
from racklet_labgrid import RackletFlashError  # noqa: E402  the module env.yaml imported

failures = []


def check(name, cond, detail):
    print(f"{'ok  ' if cond else 'FAIL'} {name}: {detail}", flush=True)
    if not cond:
        failures.append(name)


def driver(role):
    target = env.get_target(role)
    drv = target.get_driver("RackletFlashDriver")  # activates: resource must be available
    return target, drv


# 1. serial ROM through exporter + ser2net: success
t0 = time.monotonic()
target, drv = driver("vf2")
res = drv.loader
check("vf2 resource", type(res).__name__ == "NetworkSerialPort",
      f"{type(res).__name__} {res.host}:{res.port} (exporter path {res.extra.get('path')})")
done = drv.load()
check("vf2 load", done.get("event") == "done" and done.get("ok") is True,
      f"{done.get('facts', {}).get('ROM')} [{time.monotonic() - t0:.1f}s]")
check("vf2 port", done.get("facts", {}).get("port", "").startswith("/dev/pts/"),
      f"racklet-flash ran on the bridge pty {done.get('facts', {}).get('port')}")

# 2. the faulty ROM: rejected
t0 = time.monotonic()
target, drv = driver("vf2-bad")
try:
    drv.load()
    check("vf2-bad load", False, "succeeded against a ROM that corrupts the image")
except RackletFlashError as e:
    check("vf2-bad load", e.failure_class == "rejected",
          f"RackletFlashError class {e.failure_class}: {e.message} [{time.monotonic() - t0:.1f}s]")

# 3. USB loader resource: selected by its USB path
t0 = time.monotonic()
target, drv = driver("rock3a")
res = drv.loader
check("rock3a resource", type(res).__name__ == "NetworkRKUSBLoader" and res.path == "1-3.2",
      f"{type(res).__name__} host {res.host} path {res.path}")
cmd = drv.command(res.path, "hello.elf")
check("rock3a command", cmd[cmd.index("--port") + 1] == "1-3.2", " ".join(cmd[1:]))
done = drv.load()
# the report's details, as docs/json-events.md gives them: hello.elf is no
# usbplug (it lacks the rockusb descriptor), so the 0x472 stage started and
# the run looked for a rockusb loader at the same port path: key "result"
# (a real usbplug answers under "rockusb" instead).
details = {d.get("key"): d.get("value", "") for d in done.get("details", [])}
seen = details.get("rockusb") or details.get("result", "")
check("rock3a load", done.get("event") == "done" and "USB port 1-3.2" in seen,
      f"{seen} [{time.monotonic() - t0:.1f}s]")
drv.extra_args = drv.extra_args + ["--fault", "corrupt"]
try:
    drv.load()
    check("rock3a fault", False, "succeeded with --fault corrupt")
except RackletFlashError as e:
    check("rock3a fault", e.failure_class == "rejected", f"class {e.failure_class}: {e.message}")

# 4. the example strategy: off -> loaded, through the same driver
t0 = time.monotonic()
target = env.get_target("vf2-strategy")
strategy = target.get_driver("RackletStrategy")
strategy.transition("loaded")
flash = target.get_driver("RackletFlashDriver")
last = flash.events[-1] if flash.events else {}
check("strategy loaded", strategy.status.name == "loaded" and last.get("event") == "done",
      f"status {strategy.status.name}, last event {last.get('event')} [{time.monotonic() - t0:.1f}s]")

env.cleanup()
if failures:
    print(f"labgrid test: {len(failures)} check(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("labgrid test: all checks passed")
