//! AArch64 entry (any EL, MMU off) and core control.
//!
//! `_start` saves the ROM's callee-saved registers x19..x30 and `sp` in
//! `__racklet_rom_ctx` (a NOLOAD area outside `.bss`), sets `sp` to
//! `__stack_top`, clears `.bss` and calls `racklet_rust_entry(MPIDR_EL1)`.
//! If that returns, the ROM's registers come back and `ret` returns to the
//! ROM with x0 = 0 (a Rockchip 0x471 first stage does this). The payloads
//! are built for `aarch64-unknown-none-softfloat`, so no FP/SIMD register
//! is touched and CPACR/CPTR need no setting at any EL.

core::arch::global_asm!(
    r#"
    .section .text.entry, "ax", %progbits
    .globl _start
_start:
    adrp    x9, __racklet_rom_ctx
    add     x9, x9, :lo12:__racklet_rom_ctx
    stp     x19, x20, [x9, #0]
    stp     x21, x22, [x9, #16]
    stp     x23, x24, [x9, #32]
    stp     x25, x26, [x9, #48]
    stp     x27, x28, [x9, #64]
    stp     x29, x30, [x9, #80]
    mov     x10, sp
    str     x10, [x9, #96]

    adrp    x10, __stack_top
    add     x10, x10, :lo12:__stack_top
    mov     sp, x10

    adrp    x10, __bss_start
    add     x10, x10, :lo12:__bss_start
    adrp    x11, __bss_end
    add     x11, x11, :lo12:__bss_end
1:
    cmp     x10, x11
    b.hs    2f
    str     xzr, [x10], #8
    b       1b
2:
    mrs     x0, mpidr_el1
    bl      racklet_rust_entry

    adrp    x9, __racklet_rom_ctx
    add     x9, x9, :lo12:__racklet_rom_ctx
    ldr     x10, [x9, #96]
    mov     sp, x10
    ldp     x19, x20, [x9, #0]
    ldp     x21, x22, [x9, #16]
    ldp     x23, x24, [x9, #32]
    ldp     x25, x26, [x9, #48]
    ldp     x27, x28, [x9, #64]
    ldp     x29, x30, [x9, #80]
    mov     x0, #0
    ret
"#
);

/// The core number from MPIDR_EL1: Aff1 on multithreaded-style cores
/// (MT bit set, e.g. Cortex-A55), Aff0 otherwise (e.g. Cortex-A53).
pub fn core_id(mpidr: usize) -> usize {
    if mpidr & (1 << 24) != 0 {
        (mpidr >> 8) & 0xff
    } else {
        mpidr & 0xff
    }
}

/// Sleeps forever.
pub fn park() -> ! {
    loop {
        // SAFETY: `wfe` only waits for an event; it touches no memory.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}

/// Jumps to a ROM address, never to come back.
pub fn jump(addr: usize) -> ! {
    // SAFETY: `addr` comes from the board table: ROM code that takes over.
    unsafe { core::arch::asm!("br {0}", in(reg) addr, options(noreturn)) }
}

/// PSCI SYSTEM_OFF (function id 0x8400_0008) through `hvc`; on QEMU virt
/// without EL2/EL3 QEMU itself implements PSCI and powers the machine off.
pub fn psci_system_off() -> ! {
    // SAFETY: the call does not return when PSCI is there; if it does
    // return (no PSCI), we park.
    unsafe {
        core::arch::asm!("hvc #0", inout("x0") 0x8400_0008usize => _, options(nostack));
    }
    park()
}

/// Jumps to freshly written code at `entry` with x0 = `id`, after
/// invalidating the instruction cache so that fetch sees what was written.
pub fn enter(entry: usize, id: usize) -> ! {
    // SAFETY: `entry` is where the fastload loader just wrote an image that
    // passed its CRC-32 check; the image takes over the machine.
    unsafe {
        core::arch::asm!(
            "dsb sy",
            "ic iallu",
            "dsb sy",
            "isb",
            "br {0}",
            in(reg) entry,
            in("x0") id,
            options(noreturn)
        )
    }
}

/// The generic timer's count (`CNTPCT_EL0`), or an MMIO timer.
pub fn timer_ticks(t: &crate::Timer) -> u64 {
    match *t {
        crate::Timer::Cntpct => {
            let v: u64;
            // SAFETY: reading the physical count register has no side effects.
            unsafe { core::arch::asm!("isb", "mrs {0}, cntpct_el0", out(reg) v, options(nomem, nostack)) };
            v
        }
        crate::Timer::Mmio64 { address, .. } => {
            // SAFETY: a timer register from the board table.
            unsafe { core::ptr::read_volatile(address as *const u64) }
        }
        crate::Timer::None => 0,
    }
}

/// The generic timer's frequency (`CNTFRQ_EL0`).
pub fn cntfrq() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {0}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}
