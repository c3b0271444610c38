"""labgrid driver for racklet-flash (tested with labgrid 26.0.1).

RackletFlashDriver loads a payload through a board's boot ROM with
racklet-flash. It selects the board by the labgrid resource it is bound to:

* ``RKUSBLoader`` (local, found by udev): ``--port <USB port path>``, the
  sysfs name such as ``1-3.2`` that labgrid reports as the resource's
  ``path``;
* ``NetworkRKUSBLoader`` (exported by a remote ``labgrid-exporter``):
  racklet-flash runs on the exporter host through labgrid's SSH prefix
  (the payload is copied there with labgrid's ManagedFile) with
  ``--port <path>``; when the exporter is this host it runs directly;
* ``RawSerialPort`` / ``USBSerialPort`` (local tty): ``--port <tty>``;
* ``NetworkSerialPort`` (a serial port exported through ser2net): the driver
  connects to ser2net (RFC 2217, or raw TCP), puts a local pseudo-terminal
  in front of it for the length of the load and runs racklet-flash with
  ``--port <that pty>``.

It relies on racklet-flash's contract for automation:
  * ``--port <sel>`` selects exactly that port; ``--wait`` waits for the ROM
    to appear there; ``--stage-timeout`` bounds re-enumeration between stages;
  * ``--json`` prints one event per line; the last ``done`` or ``error``
    event carries the outcome and its failure class;
  * the exit status names the failure class (README, "Exit codes").

Register it by importing this module: ``imports: [racklet_labgrid.py]`` in
the environment file, or ``import racklet_labgrid`` in a test.
"""

import contextlib
import json
import os
import select
import socket
import subprocess
import threading
import tty

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import BootstrapProtocol
from labgrid.resource.common import NetworkResource
from labgrid.step import step
from labgrid.util.managedfile import ManagedFile

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

USB_LOADERS = {"RKUSBLoader", "NetworkRKUSBLoader"}
SERIAL_PORTS = {"RawSerialPort", "USBSerialPort", "NetworkSerialPort"}


class RackletFlashError(Exception):
    """racklet-flash failed; ``failure_class`` says how (``rejected``, ``timeout``, ...)."""

    def __init__(self, failure_class, message, events=None):
        super().__init__(f"racklet-flash: {failure_class}: {message}")
        self.failure_class = failure_class
        self.message = message
        self.events = events or []


def _is_this_host(host):
    """True when a NetworkResource's host is the machine we run on."""
    return host in {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()}


class _SerialBridge:
    """A local pseudo-terminal relayed to a labgrid NetworkSerialPort.

    ser2net (started by labgrid-exporter when the place is acquired) speaks
    RFC 2217 (or raw TCP); racklet-flash wants a tty. The bridge opens the
    network port with pyserial and copies bytes both ways between it and
    the master side of a pty whose slave path is given to racklet-flash.
    """

    def __init__(self, resource, logger):
        import serial  # pyserial, a labgrid dependency
        from labgrid.util.proxy import proxymanager

        host, port = proxymanager.get_host_and_port(resource)
        if getattr(resource, "protocol", "rfc2217") == "rfc2217":
            # as labgrid's SerialDriver: ser2net does not acknowledge modem
            # control changes on every device (ptys, some adapters)
            self.url = f"rfc2217://{host}:{port}?ign_set_control"
        else:
            self.url = f"socket://{host}:{port}/"
        self.logger = logger
        self.serial = serial.serial_for_url(self.url, baudrate=resource.speed, timeout=0.05)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo or line discipline before racklet-flash opens it
        self.path = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.error = None
        self.threads = [threading.Thread(target=self._guard, args=(f,), daemon=True)
                        for f in (self._to_network, self._from_network)]
        for t in self.threads:
            t.start()
        logger.debug("bridging %s to %s", self.path, self.url)

    def _guard(self, func):
        try:
            func()
        except Exception as e:  # pylint: disable=broad-except
            if not self.stop.is_set():
                self.error = e
                self.logger.warning("serial bridge %s: %s", self.url, e)

    def _to_network(self):
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                data = os.read(self.master, 4096)
                if data:
                    self.serial.write(data)

    def _from_network(self):
        while not self.stop.is_set():
            data = self.serial.read(max(1, self.serial.in_waiting))
            if data:
                os.write(self.master, data)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.serial.close()
        os.close(self.master)
        os.close(self.slave)


@target_factory.reg_driver
@attr.s(eq=False)
class RackletFlashDriver(Driver, BootstrapProtocol):
    """Loads and starts a payload through a boot ROM with racklet-flash.

    Args:
        board: racklet-flash board name (``racklet-flash boards``).
        image: key of the payload in the environment's ``images`` section.
        dram: optional key of a DRAM-init blob (Rockchip ``--dram``).
        wait: how long racklet-flash waits for the ROM (e.g. ``"10s"``).
        extra_args: more racklet-flash arguments, e.g. ``["--simulate"]``.
        timeout: seconds before the racklet-flash process is killed.

    The executable is the environment's ``tools: racklet-flash:`` entry, or
    ``racklet-flash`` from PATH.
    """

    bindings = {"loader": USB_LOADERS | SERIAL_PORTS}
    board = attr.ib(validator=attr.validators.instance_of(str))
    image = attr.ib(default=None)
    dram = attr.ib(default=None)
    wait = attr.ib(default="10s", validator=attr.validators.instance_of(str))
    extra_args = attr.ib(factory=list, validator=attr.validators.instance_of(list))
    timeout = attr.ib(default=300.0, converter=float)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        env = self.target.env if self.target else None
        self.tool = env.config.get_tool("racklet-flash") if env else "racklet-flash"
        self.events = []

    def on_activate(self):
        pass

    def on_deactivate(self):
        pass

    def _remote(self):
        """True when racklet-flash must run on the exporter host over SSH."""
        if not isinstance(self.loader, NetworkResource) or type(self.loader).__name__ not in USB_LOADERS:
            return False
        return not _is_this_host(self.loader.host) or bool(
            (getattr(self.loader, "extra", None) or {}).get("proxy_required"))

    @contextlib.contextmanager
    def _port(self):
        """Yields the --port value for the bound resource."""
        kind = type(self.loader).__name__
        if kind == "NetworkSerialPort":
            bridge = _SerialBridge(self.loader, self.logger)
            try:
                yield bridge.path
            finally:
                bridge.close()
            if bridge.error:
                raise RackletFlashError("io", f"serial bridge to {bridge.url}: {bridge.error}")
        elif kind in USB_LOADERS:
            if not self.loader.path:
                raise RackletFlashError("not_found", f"{self.loader} has no USB port path (not attached?)")
            yield str(self.loader.path)
        else:  # local tty
            port = getattr(self.loader, "port", None) or getattr(self.loader, "path", None)
            if not port:
                raise RackletFlashError("not_found", f"{self.loader} has no tty")
            yield str(port)

    def command(self, port, filename, dram=None):
        """The racklet-flash command line (without any SSH prefix)."""
        cmd = [self.tool, "maskrom", self.board, filename, "--port", port,
               "--wait", self.wait, "--json"]
        if dram:
            cmd += ["--dram", dram]
        return cmd + [str(a) for a in self.extra_args]

    def _file(self, path, remote):
        if not remote:
            return path
        mf = ManagedFile(path, self.loader)
        mf.sync_to_resource()
        return mf.get_remote_path()

    @Driver.check_active
    @step(args=["filename"], result=True)
    def load(self, filename=None):
        """Runs racklet-flash; returns the ``done`` event, raises RackletFlashError."""
        config = self.target.env.config if self.target.env else None
        if filename is None and self.image is not None:
            filename = config.get_image_path(self.image)
        if filename is None:
            raise ValueError("no payload: pass a filename or set the driver's image")
        dram = config.get_image_path(self.dram) if self.dram else None
        remote = self._remote()
        filename = self._file(filename, remote)
        dram = self._file(dram, True) if dram and remote else dram

        with self._port() as port:
            cmd = self.command(port, filename, dram)
            if remote:
                cmd = self.loader.wrap_command(cmd)
            self.logger.info("running %s", " ".join(cmd))
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                      timeout=self.timeout)
            except subprocess.TimeoutExpired as e:
                raise RackletFlashError("timeout", f"racklet-flash ran longer than {self.timeout}s") from e

        self.events = []
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass
        if proc.stderr.strip():
            self.logger.debug("racklet-flash stderr: %s", proc.stderr.strip())
        if proc.returncode == 0:
            return next((e for e in reversed(self.events) if e.get("event") == "done"), {})
        err = next((e for e in reversed(self.events) if e.get("event") == "error"), {})
        raise RackletFlashError(err.get("class", EXIT_CLASSES.get(proc.returncode, "failed")),
                                err.get("message") or proc.stderr.strip()
                                or f"exit status {proc.returncode}", self.events)
