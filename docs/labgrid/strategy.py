"""A small labgrid strategy: power-cycle into maskrom, load with racklet-flash,
then wait for the payload's console line."""

import enum

import attr
from labgrid.factory import target_factory
from labgrid.strategy import Strategy, StrategyError
from labgrid.step import step


class Status(enum.Enum):
    unknown = 0
    off = 1
    loaded = 2


@target_factory.reg_driver
@attr.s(eq=False)
class RackletStrategy(Strategy):
    bindings = {"power": "PowerProtocol", "flash": "RackletFlashDriver", "console": "ConsoleProtocol"}
    status = attr.ib(default=Status.unknown)

    @step(args=["status"])
    def transition(self, status, *, step):
        status = Status[status] if isinstance(status, str) else status
        if status == Status.off:
            self.target.activate(self.power)
            self.power.off()
        elif status == Status.loaded:
            self.transition(Status.off)
            self.power.on()  # the board's boot switch holds it in maskrom
            self.target.activate(self.flash)
            self.flash.load()  # racklet-flash --wait covers the enumeration delay
            self.target.activate(self.console)
            self.console.expect("racklet: hello from", timeout=10)
        else:
            raise StrategyError(f"no transition to {status}")
        self.status = status
