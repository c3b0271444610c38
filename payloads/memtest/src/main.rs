//! `memtest`: a short RAM test for use after DRAM init. Tests one window
//! (the board's default in payloads/boards.toml, or RACKLET_MEMTEST_BASE /
//! RACKLET_MEMTEST_SIZE at build time) and prints one line:
//! `racklet: memtest <board> (<soc>) 0x<start>..0x<end> pass`, or
//! `... FAIL at 0x<addr> wrote 0x<w> read 0x<r>`.
//!
//! Passes: walking ones on the first word, then every 64-bit word holding
//! its own address (xor a pattern), then the complement of that.
#![no_std]
#![no_main]

use racklet_bsp::{parse_usize, Ctx, MemRange, Status};

const PATTERN: u64 = 0xA5C3_5A3C_0FF0_F00F;

const fn range(default: MemRange) -> MemRange {
    let base = match option_env!("RACKLET_MEMTEST_BASE") {
        Some(s) => parse_usize(s),
        None => default.base,
    };
    let size = match option_env!("RACKLET_MEMTEST_SIZE") {
        Some(s) => parse_usize(s),
        None => default.size,
    };
    assert!(base % 8 == 0 && size % 8 == 0 && size > 0, "memtest window must be 8-byte aligned");
    MemRange { base, size }
}

fn write(addr: usize, v: u64) {
    // SAFETY: addr lies in the memtest window, RAM that nothing else uses
    // while the test runs (the payload itself lives in SRAM).
    unsafe { core::ptr::write_volatile(addr as *mut u64, v) }
}

fn read(addr: usize) -> u64 {
    // SAFETY: as for write.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

struct Failure {
    addr: usize,
    wrote: u64,
    read: u64,
}

fn check(addr: usize, want: u64) -> Result<(), Failure> {
    let got = read(addr);
    if got == want {
        Ok(())
    } else {
        Err(Failure { addr, wrote: want, read: got })
    }
}

fn test(r: MemRange) -> Result<(), Failure> {
    let end = r.base + r.size;
    for bit in 0..64 {
        write(r.base, 1 << bit);
        check(r.base, 1 << bit)?;
    }
    for invert in [0, u64::MAX] {
        let value = |a: usize| (a as u64 ^ PATTERN) ^ invert;
        for a in (r.base..end).step_by(8) {
            write(a, value(a));
        }
        for a in (r.base..end).step_by(8) {
            check(a, value(a))?;
        }
    }
    Ok(())
}

fn main(c: &Ctx) -> Status {
    let r = range(c.board.memtest);
    c.print("racklet: memtest ");
    c.print(c.board.name);
    c.print(" (");
    c.print(c.board.soc);
    c.print(") ");
    c.hex(r.base as u64);
    c.print("..");
    c.hex((r.base + r.size) as u64);
    match test(r) {
        Ok(()) => {
            c.print(" pass\n");
            Status::Pass
        }
        Err(f) => {
            c.print(" FAIL at ");
            c.hex(f.addr as u64);
            c.print(" wrote ");
            c.hex(f.wrote);
            c.print(" read ");
            c.hex(f.read);
            c.print("\n");
            Status::Fail
        }
    }
}

racklet_bsp::payload!(main);
