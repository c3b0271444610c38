//! `hello`: `racklet: hello from <board> (<soc>) hart <n>` (or `core <n>`
//! on AArch64), then the board's exit: return to the ROM where the protocol
//! allows it (Rockchip), jump back into the ROM's download loop (K230),
//! power QEMU off, or park the core.
#![no_std]
#![no_main]

use racklet_bsp::{Ctx, Exit, Status};

fn main(c: &Ctx) -> Status {
    c.print("racklet: hello from ");
    c.print(c.board.name);
    c.print(" (");
    c.print(c.board.soc);
    c.print(") ");
    c.print(c.id_word());
    c.print(" ");
    c.dec(c.id as u64);
    c.print("\n");
    c.print(match c.board.exit {
        Exit::Return => "racklet: returning to the ROM\n",
        Exit::Jump(_) => "racklet: jumping back into the ROM\n",
        Exit::Park => "racklet: parking\n",
        Exit::SifiveTest(_) | Exit::PsciHvc => "racklet: powering off\n",
    });
    Status::Pass
}

racklet_bsp::payload!(main);
