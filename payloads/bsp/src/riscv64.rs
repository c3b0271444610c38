//! RISC-V entry (M-mode, MMU off) and core control.
//!
//! `_start` is linked first in `.text` (after the Sophgo BL2 header where a
//! board has one). Harts other than `__racklet_boot_hart` (a linker-script
//! symbol, 0 unless the board's script says otherwise) park in `wfi`
//! before touching memory. The boot hart saves the ROM's callee-saved
//! registers, `sp`, `ra` and `mtvec` in `__racklet_rom_ctx` (a NOLOAD area
//! outside `.bss`), sets `sp` to `__stack_top`, points `mtvec` at a handler
//! that prints, clears `.bss` and calls `racklet_rust_entry(mhartid)`. If
//! that returns, the ROM's registers come back and `ret` returns to the ROM.

/// The fastload loader on a board where it is loaded elsewhere than it is
/// linked to run (`run` in its fastload record; bsp/build.rs sets the cfg):
/// the boot hart copies the image from where it is to where it is linked
/// (up to `__racklet_image_end`), makes it visible to fetch, and jumps
/// there. Only PC-relative loads of literals before the jump.
#[cfg(racklet_relocate)]
macro_rules! relocate {
    () => {
        r#"
    .option push
    .option norelax
1:
    auipc   t2, 0
    ld      t3, .Lreloc_here
    beq     t2, t3, .Lreloc_done
    ld      t4, .Lreloc_delta
    sub     t2, t2, t4
    ld      t3, .Lreloc_start
    ld      t4, .Lreloc_end
2:
    ld      t5, 0(t2)
    sd      t5, 0(t3)
    addi    t2, t2, 8
    addi    t3, t3, 8
    bltu    t3, t4, 2b
    .4byte  0x0000100f
    ld      t3, .Lreloc_target
    jr      t3
    .p2align 3
.Lreloc_here:
    .dword  1b
.Lreloc_delta:
    .dword  1b - _start
.Lreloc_start:
    .dword  _start
.Lreloc_end:
    .dword  __racklet_image_end
.Lreloc_target:
    .dword  .Lreloc_done
.Lreloc_done:
    .option pop
"#
    };
}

#[cfg(not(racklet_relocate))]
macro_rules! relocate {
    () => {
        ""
    };
}

core::arch::global_asm!(concat!(
    r#"
    .section .text.entry, "ax", @progbits
    .globl _start
_start:
    csrr    t0, mhartid
    lui     t1, %hi(__racklet_boot_hart)
    addi    t1, t1, %lo(__racklet_boot_hart)
    bne     t0, t1, .Lracklet_park
"#,
    relocate!(),
    r#"
    lla     t2, __racklet_rom_ctx
    sd      ra, 0(t2)
    sd      sp, 8(t2)
    sd      gp, 16(t2)
    sd      tp, 24(t2)
    sd      s0, 32(t2)
    sd      s1, 40(t2)
    sd      s2, 48(t2)
    sd      s3, 56(t2)
    sd      s4, 64(t2)
    sd      s5, 72(t2)
    sd      s6, 80(t2)
    sd      s7, 88(t2)
    sd      s8, 96(t2)
    sd      s9, 104(t2)
    sd      s10, 112(t2)
    sd      s11, 120(t2)
    csrr    t3, mtvec
    sd      t3, 128(t2)

    mv      s0, t0
    lla     sp, __stack_top
    lla     t3, racklet_trap_entry
    csrw    mtvec, t3

    lla     t0, __bss_start
    lla     t1, __bss_end
1:
    bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    mv      a0, s0
    call    racklet_rust_entry

    lla     t2, __racklet_rom_ctx
    ld      t3, 128(t2)
    csrw    mtvec, t3
    ld      ra, 0(t2)
    ld      sp, 8(t2)
    ld      gp, 16(t2)
    ld      tp, 24(t2)
    ld      s0, 32(t2)
    ld      s1, 40(t2)
    ld      s2, 48(t2)
    ld      s3, 56(t2)
    ld      s4, 64(t2)
    ld      s5, 72(t2)
    ld      s6, 80(t2)
    ld      s7, 88(t2)
    ld      s8, 96(t2)
    ld      s9, 104(t2)
    ld      s10, 112(t2)
    ld      s11, 120(t2)
    li      a0, 0
    ret

.Lracklet_park:
    wfi
    j       .Lracklet_park

    .section .text.racklet_trap, "ax", @progbits
    .option push
    .option norelax
    .p2align 2
    .option pop
    .globl racklet_trap_entry
racklet_trap_entry:
    lla     sp, __stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    racklet_trap_rust
    j       racklet_trap_entry
"#
));

/// RISC-V reports `mhartid` as it is.
pub fn core_id(raw: usize) -> usize {
    raw
}

/// Sleeps forever.
pub fn park() -> ! {
    loop {
        // SAFETY: `wfi` only waits for an interrupt; it touches no memory.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }
}

/// Jumps to a ROM address, never to come back.
pub fn jump(addr: usize) -> ! {
    // SAFETY: `addr` comes from the board table: code in the mask ROM that
    // takes over the machine. Nothing of ours runs after it.
    unsafe { core::arch::asm!("jr {0}", in(reg) addr, options(noreturn)) }
}

/// No PSCI on RISC-V; parks instead.
pub fn psci_system_off() -> ! {
    park()
}

/// Jumps to freshly written code at `entry` with a0 = `id` (the hart) and
/// a1 = 0, after `fence.i` so that instruction fetch sees what was written.
pub fn enter(entry: usize, id: usize) -> ! {
    // SAFETY: `entry` is where the fastload loader just wrote an image that
    // passed its CRC-32 check; the image takes over the machine.
    unsafe {
        core::arch::asm!(
            // fence.i (Zifencei), spelled out: the imac target's assembler
            // does not take the mnemonic.
            ".4byte 0x0000100f",
            "jr {0}",
            in(reg) entry,
            in("a0") id,
            in("a1") 0usize,
            options(noreturn)
        )
    }
}

/// The machine timer (`mtime`, a 64-bit MMIO register in the CLINT).
pub fn timer_ticks(t: &crate::Timer) -> u64 {
    match *t {
        crate::Timer::Mmio64 { address, .. } => {
            // SAFETY: the CLINT's mtime register from the board table,
            // always mapped with the MMU off.
            unsafe { core::ptr::read_volatile(address as *const u64) }
        }
        _ => 0,
    }
}
