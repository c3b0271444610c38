"""A small labgrid strategy for racklet-flash (tested with labgrid 26.0.1):
power-cycle the board into its boot ROM, load the payload with
RackletFlashDriver, then (optionally) wait for the payload's console line.

States: ``off`` and ``loaded``, e.g. ``labgrid-client -c env.yaml -s loaded
console`` or ``target.get_strategy().transition("loaded")`` in a test.
"""

import enum

import attr
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.strategy import Strategy, StrategyError, never_retry


class Status(enum.Enum):
    unknown = 0
    off = 1
    loaded = 2


@target_factory.reg_driver
@attr.s(eq=False)
class RackletStrategy(Strategy):
    """Args:
        expect: console line that proves the payload runs (None: don't check).
        expect_timeout: seconds to wait for it.
    """

    bindings = {
        "power": "PowerProtocol",
        "flash": "RackletFlashDriver",
        "console": {"ConsoleProtocol", None},
    }
    status = attr.ib(default=Status.unknown)
    expect = attr.ib(default="racklet: hello from",
                     validator=attr.validators.optional(attr.validators.instance_of(str)))
    expect_timeout = attr.ib(default=10.0, converter=float)

    @never_retry
    @step(args=["status"])
    def transition(self, status, *, step):  # pylint: disable=redefined-outer-name
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.unknown:
            raise StrategyError(f"can not transition to {status}")
        if status == self.status:
            step.skip("nothing to do")
            return
        if status == Status.off:
            if self.console:
                self.target.deactivate(self.console)
            self.target.activate(self.power)
            self.power.off()
        elif status == Status.loaded:
            self.transition(Status.off)
            self.power.on()  # the board's boot switches hold it in its boot ROM
            self.target.activate(self.flash)
            self.flash.load()  # racklet-flash --wait covers the enumeration delay
            if self.console and self.expect:
                # on UART-ROM boards the console is the ROM's port: the
                # driver's connection is closed once load() returns
                self.target.activate(self.console)
                self.console.expect(self.expect, timeout=self.expect_timeout)
        self.status = status
