//! The board table: what the Rust side needs to know about each board.
//!
//! Load address and SRAM length live in the board's linker script
//! (`bsp/ld/<board>.ld`), the boot hart too (`__racklet_boot_hart`); the
//! sources for every value are in `payloads/README.md`.

use crate::{Arch, Board, Console, Exit, MemRange};

const fn dw_uart(base: usize) -> Console {
    // Synopsys DesignWare APB UART (8250), reg-shift 2, reg-io-width 4.
    Console::Uart8250 { base, stride: 4 }
}

/// Every board, by the name used in racklet-flash's board table.
pub const BOARDS: &[Board] = &[
    Board {
        name: "visionfive2",
        soc: "jh7110",
        arch: Arch::Riscv64,
        console: dw_uart(0x1000_0000),
        exit: Exit::Park,
        memtest: MemRange { base: 0x4000_0000, size: 0x10_0000 },
    },
    Board {
        name: "canmv-k230",
        soc: "k230",
        arch: Arch::Riscv64,
        console: dw_uart(0x9140_0000),
        // The mask ROM's USB loop: re-enters download mode (canaan-k230.md §2).
        exit: Exit::Jump(0x9120_0000),
        memtest: MemRange { base: 0x0100_0000, size: 0x10_0000 },
    },
    Board {
        name: "bpi-canmv-k230d-zero",
        soc: "k230d",
        arch: Arch::Riscv64,
        console: dw_uart(0x9140_0000),
        exit: Exit::Jump(0x9120_0000),
        memtest: MemRange { base: 0x0100_0000, size: 0x10_0000 },
    },
    Board {
        name: "milkv-duo-256m",
        soc: "sg2002",
        arch: Arch::Riscv64,
        console: dw_uart(0x0414_0000),
        exit: Exit::Park,
        memtest: MemRange { base: 0x8000_0000, size: 0x10_0000 },
    },
    Board {
        name: "milkv-duo-s",
        soc: "sg2000",
        arch: Arch::Riscv64,
        console: dw_uart(0x0414_0000),
        exit: Exit::Park,
        memtest: MemRange { base: 0x8000_0000, size: 0x10_0000 },
    },
    Board {
        name: "milkv-duo-s-arm",
        soc: "sg2000",
        arch: Arch::Aarch64,
        console: dw_uart(0x0414_0000),
        exit: Exit::Park,
        memtest: MemRange { base: 0x8000_0000, size: 0x10_0000 },
    },
    Board {
        name: "milkv-duo",
        soc: "cv1800b",
        arch: Arch::Riscv64,
        console: dw_uart(0x0414_0000),
        exit: Exit::Park,
        memtest: MemRange { base: 0x8000_0000, size: 0x10_0000 },
    },
    Board {
        name: "bpi-f3",
        soc: "k1",
        arch: Arch::Riscv64,
        // "spacemit,k1-uart", "intel,xscale-uart": 8250 layout, reg-shift 2.
        console: Console::Uart8250 { base: 0xD401_7000, stride: 4 },
        exit: Exit::Park,
        memtest: MemRange { base: 0x0100_0000, size: 0x10_0000 },
    },
    Board {
        name: "lichee-pi-4a",
        soc: "th1520",
        arch: Arch::Riscv64,
        console: dw_uart(0xFF_E701_4000),
        exit: Exit::Park,
        memtest: MemRange { base: 0x0100_0000, size: 0x10_0000 },
    },
    Board {
        name: "rock-3a",
        soc: "rk3568",
        arch: Arch::Aarch64,
        console: dw_uart(0xFE66_0000),
        // A 0x471 first stage that returns drops back into the ROM's USB loop
        // (rockchip.md §1.6).
        exit: Exit::Return,
        memtest: MemRange { base: 0x0100_0000, size: 0x10_0000 },
    },
    Board {
        name: "rock-5b",
        soc: "rk3588",
        arch: Arch::Aarch64,
        console: dw_uart(0xFEB5_0000),
        exit: Exit::Return,
        memtest: MemRange { base: 0x0100_0000, size: 0x10_0000 },
    },
    Board {
        name: "qemu-virt-riscv64",
        soc: "qemu-virt",
        arch: Arch::Riscv64,
        console: Console::Uart8250 { base: 0x1000_0000, stride: 1 },
        exit: Exit::SifiveTest(0x10_0000),
        memtest: MemRange { base: 0x8020_0000, size: 0x10_0000 },
    },
    Board {
        name: "qemu-virt-aarch64",
        soc: "qemu-virt",
        arch: Arch::Aarch64,
        console: Console::Pl011 { base: 0x0900_0000 },
        exit: Exit::PsciHvc,
        memtest: MemRange { base: 0x4020_0000, size: 0x10_0000 },
    },
];
