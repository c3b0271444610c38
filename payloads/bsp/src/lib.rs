//! Board support for the racklet-flash payloads.
//!
//! One module per architecture (`riscv64`, `aarch64`) holds the entry
//! assembly: park the non-boot harts, save the ROM's registers, set the
//! stack, clear `.bss`, call Rust, and (where the board allows it) return
//! to the ROM.
//!
//! The board is chosen at build time: `build.rs` reads `payloads/boards.toml`
//! for the board named by `RACKLET_BOARD` and generates [`BOARD`] (UART, how
//! to finish, a default DRAM window for memtest) and the linker script
//! (load address, SRAM length, boot hart, header). A payload binary says
//! `racklet_bsp::payload!(main);`; `build.sh` builds it once per board.
#![no_std]

pub mod uart;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "riscv64")]
pub mod riscv64;

#[cfg(target_arch = "aarch64")]
use aarch64 as arch;
#[cfg(target_arch = "riscv64")]
use riscv64 as arch;

pub use uart::Console;

include!(concat!(env!("OUT_DIR"), "/board.rs"));

/// Instruction set a board's payload is built for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Riscv64,
    Aarch64,
}

impl Arch {
    /// The architecture this crate is being compiled for.
    pub const TARGET: Arch = if cfg!(target_arch = "aarch64") { Arch::Aarch64 } else { Arch::Riscv64 };
}

/// What a payload does once it is finished.
#[derive(Clone, Copy)]
pub enum Exit {
    /// Return to the caller (the ROM) with the ROM's registers restored.
    Return,
    /// Jump to a ROM address that re-enters the download loop.
    Jump(usize),
    /// Sleep forever (`wfi` / `wfe`).
    Park,
    /// QEMU's SiFive test device at this address: power off with a status.
    SifiveTest(usize),
    /// PSCI SYSTEM_OFF through `hvc` (QEMU virt without EL2/EL3).
    PsciHvc,
}

/// A timer the fastload loader measures its timeouts with.
#[derive(Clone, Copy)]
pub enum Timer {
    /// A free-running 64-bit MMIO counter (RISC-V CLINT `mtime`) at `hz`.
    Mmio64 { address: usize, hz: u64 },
    /// The AArch64 generic timer (`CNTPCT_EL0` at `CNTFRQ_EL0`).
    Cntpct,
    /// None known.
    None,
}

impl Timer {
    /// The current count.
    pub fn ticks(&self) -> u64 {
        arch::timer_ticks(self)
    }

    /// Counts per second (0 when there is no timer).
    pub fn hz(&self) -> u64 {
        match *self {
            Timer::Mmio64 { hz, .. } => hz,
            #[cfg(target_arch = "aarch64")]
            Timer::Cntpct => aarch64::cntfrq(),
            #[cfg(not(target_arch = "aarch64"))]
            Timer::Cntpct => 0,
            Timer::None => 0,
        }
    }
}

/// Jumps to an image just written to memory: makes it visible to
/// instruction fetch, then branches with the hart/core number in a0/x0.
pub fn enter(entry: usize, id: usize) -> ! {
    arch::enter(entry, id)
}

/// A RAM window (for memtest).
#[derive(Clone, Copy)]
pub struct MemRange {
    pub base: usize,
    pub size: usize,
}

/// One board.
#[derive(Clone, Copy)]
pub struct Board {
    pub name: &'static str,
    pub soc: &'static str,
    pub arch: Arch,
    pub console: Console,
    pub exit: Exit,
    /// Default memtest window (overridden at build time by
    /// RACKLET_MEMTEST_BASE / RACKLET_MEMTEST_SIZE).
    pub memtest: MemRange,
}

/// How a payload's `main` ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
}

/// Parses a build-time number: `0x` hex or decimal, `_` allowed.
pub const fn parse_usize(s: &str) -> usize {
    let b = s.as_bytes();
    let (mut i, radix) =
        if b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') { (2, 16) } else { (0, 10) };
    let mut v: usize = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        let d = match c {
            b'0'..=b'9' => (c - b'0') as usize,
            b'a'..=b'f' if radix == 16 => (c - b'a' + 10) as usize,
            b'A'..=b'F' if radix == 16 => (c - b'A' + 10) as usize,
            b'_' => continue,
            _ => panic!("bad number in a RACKLET_* build variable"),
        };
        v = v * radix + d;
    }
    v
}

/// The console of a board, with its boot-hart id: what `main` gets.
pub struct Ctx {
    pub board: &'static Board,
    /// RISC-V `mhartid`, or the AArch64 core number from MPIDR_EL1.
    pub id: usize,
}

impl Ctx {
    pub fn print(&self, s: &str) {
        self.board.console.write_str(s);
    }
    pub fn hex(&self, v: u64) {
        self.board.console.write_hex(v);
    }
    pub fn dec(&self, v: u64) {
        self.board.console.write_dec(v);
    }
    /// "hart" on RISC-V, "core" on AArch64.
    pub fn id_word(&self) -> &'static str {
        match self.board.arch {
            Arch::Riscv64 => "hart",
            Arch::Aarch64 => "core",
        }
    }
}

/// Called by the entry assembly (through `payload!`) on the boot hart with
/// a fresh stack and a zeroed `.bss`. Returns only for `Exit::Return`.
pub fn run(board: &'static Board, raw_id: usize, main: fn(&Ctx) -> Status) {
    let ctx = Ctx { board, id: arch::core_id(raw_id) };
    let status = main(&ctx);
    finish(board, status);
}

fn finish(board: &Board, status: Status) {
    match board.exit {
        Exit::Return => {}
        Exit::Jump(addr) => arch::jump(addr),
        Exit::Park => arch::park(),
        Exit::SifiveTest(_) | Exit::PsciHvc => power_off(board, status),
    }
}

/// After a panic or trap: on QEMU, power off (with a failure status where
/// the machine has one) so a test does not hang; elsewhere, park.
fn stop(board: &Board) -> ! {
    match board.exit {
        Exit::SifiveTest(_) | Exit::PsciHvc => power_off(board, Status::Fail),
        _ => arch::park(),
    }
}

fn power_off(board: &Board, status: Status) -> ! {
    match board.exit {
        Exit::SifiveTest(addr) => {
            // FINISHER_PASS, or FINISHER_FAIL with exit code 1.
            let code = match status {
                Status::Pass => 0x5555,
                Status::Fail => (1 << 16) | 0x3333,
            };
            uart::mmio_write32(addr, code);
            arch::park()
        }
        Exit::PsciHvc => arch::psci_system_off(),
        _ => arch::park(),
    }
}

/// The panic handler body: prints the location and message, then stops
/// (parks; powers QEMU off with a failure status).
pub fn panic(board: &Board, info: &core::panic::PanicInfo) -> ! {
    let c = &board.console;
    c.write_str("\nracklet: panic");
    if let Some(loc) = info.location() {
        c.write_str(" at ");
        c.write_str(loc.file());
        c.write_str(":");
        c.write_dec(loc.line() as u64);
    }
    if let Some(msg) = info.message().as_str() {
        c.write_str(": ");
        c.write_str(msg);
    }
    c.write_str("\n");
    stop(board)
}

/// After a trap, without a word: powers QEMU off with a failure status, or
/// parks.
pub fn stop_quietly(board: &Board) -> ! {
    stop(board)
}

/// An unexpected trap (RISC-V): prints the cause, then stops as a panic does.
pub fn trap(board: &Board, cause: usize, epc: usize, tval: usize) -> ! {
    let c = &board.console;
    c.write_str("\nracklet: trap mcause=");
    c.write_hex(cause as u64);
    c.write_str(" mepc=");
    c.write_hex(epc as u64);
    c.write_str(" mtval=");
    c.write_hex(tval as u64);
    c.write_str("\n");
    stop(board)
}

/// Glue for a payload binary: defines the Rust entry, the panic handler and
/// the trap handler for the board it is built for ([`BOARD`]).
///
/// `main` is a `fn(&racklet_bsp::Ctx) -> racklet_bsp::Status`.
#[macro_export]
macro_rules! payload {
    // The fastload loader's variant: a trap parks without printing (the
    // printing code would not fit its 4 KiB); panics still print.
    ($main:path, quiet_traps) => {
        static BOARD: $crate::Board = $crate::BOARD;

        #[no_mangle]
        extern "C" fn racklet_rust_entry(raw_id: usize) {
            $crate::run(&BOARD, raw_id, $main);
        }

        #[no_mangle]
        extern "C" fn racklet_trap_rust(_cause: usize, _epc: usize, _tval: usize) -> ! {
            $crate::stop_quietly(&BOARD)
        }

        #[panic_handler]
        fn racklet_panic(info: &core::panic::PanicInfo) -> ! {
            $crate::panic(&BOARD, info)
        }
    };
    ($main:path) => {
        static BOARD: $crate::Board = $crate::BOARD;

        #[no_mangle]
        extern "C" fn racklet_rust_entry(raw_id: usize) {
            $crate::run(&BOARD, raw_id, $main);
        }

        #[no_mangle]
        extern "C" fn racklet_trap_rust(cause: usize, epc: usize, tval: usize) -> ! {
            $crate::trap(&BOARD, cause, epc, tval)
        }

        #[panic_handler]
        fn racklet_panic(info: &core::panic::PanicInfo) -> ! {
            $crate::panic(&BOARD, info)
        }
    };
}
