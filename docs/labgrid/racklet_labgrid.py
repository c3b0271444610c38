"""labgrid driver for racklet-flash.

RackletFlashDriver loads a payload through a board's boot ROM with
racklet-flash, selecting the board by the USB port path of the labgrid
resource it is bound to (RKUSBLoader, USBSerialPort, or any resource with a
``path`` (sysfs name such as ``1-3.2``) or ``port`` (tty) attribute).

It relies on racklet-flash's contract for automation:
  * ``--port <path>`` selects exactly that physical port; ``--wait`` waits
    for the ROM to enumerate there; ``--stage-timeout`` bounds the
    re-enumeration between stages;
  * ``--json`` prints one event per line; the last ``done`` or ``error``
    event carries the outcome and its failure class;
  * the exit status names the failure class (see README, "Exit codes").

Register it by importing this module in your labgrid environment or
strategy (``imports: [racklet_labgrid.py]`` in the environment file).
"""

import json
import subprocess

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.step import step

# Exit codes documented in racklet-flash's README.
EXIT_CLASSES = {
    0: "done",
    1: "failed",
    2: "bad_input",
    3: "not_found",
    4: "ambiguous",
    5: "permission",
    6: "timeout",
    7: "rejected",
    8: "disconnected",
    9: "io",
    130: "interrupted",
}


class RackletFlashError(Exception):
    """racklet-flash failed; ``failure_class`` says how."""

    def __init__(self, failure_class, message):
        super().__init__(f"racklet-flash: {failure_class}: {message}")
        self.failure_class = failure_class


@target_factory.reg_driver
@attr.s(eq=False)
class RackletFlashDriver(Driver):
    """Loads and starts a payload through a boot ROM with racklet-flash.

    Args:
        board: racklet-flash board name (``racklet-flash boards``).
        image: key of the payload in the environment's ``images`` section.
        dram: optional key of a DRAM-init blob (Rockchip ``--dram``).
        wait: how long racklet-flash waits for the ROM (e.g. ``"10s"``).
        extra_args: more racklet-flash arguments, e.g. ``["--simulate"]``.
    """

    bindings = {"loader": {"RKUSBLoader", "USBSerialPort", "RawSerialPort"}}
    board = attr.ib(validator=attr.validators.instance_of(str))
    image = attr.ib(default=None)
    dram = attr.ib(default=None)
    wait = attr.ib(default="10s", validator=attr.validators.instance_of(str))
    executable = attr.ib(default="racklet-flash", validator=attr.validators.instance_of(str))
    extra_args = attr.ib(factory=list)

    def _selector(self):
        # USB loaders carry the sysfs path (1-3.2); serial ports their tty.
        for name in ("path", "port"):
            value = getattr(self.loader, name, None)
            if value:
                return str(value)
        raise ValueError(f"{self.loader} has no USB path or tty to select the board by")

    def command(self, filename, dram=None):
        cmd = [self.executable, "maskrom", self.board, filename, "--port", self._selector(),
               "--wait", self.wait, "--json"]
        if dram:
            cmd += ["--dram", dram]
        return cmd + list(self.extra_args)

    @Driver.check_active
    @step(args=["filename"], result=True)
    def load(self, filename=None):
        """Runs racklet-flash; returns the ``done`` event, raises RackletFlashError."""
        if filename is None and self.image is not None:
            filename = self.target.env.config.get_image_path(self.image)
        dram = self.target.env.config.get_image_path(self.dram) if self.dram else None
        proc = subprocess.run(self.command(filename, dram), capture_output=True, text=True, check=False)
        events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode == 0:
            return next((e for e in reversed(events) if e.get("event") == "done"), {})
        err = next((e for e in reversed(events) if e.get("event") == "error"), {})
        raise RackletFlashError(err.get("class", EXIT_CLASSES.get(proc.returncode, "failed")),
                                err.get("message", proc.stderr.strip()))
