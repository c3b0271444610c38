//! Per-chip facts: where the ROM loads BL2 and where it enters it.

use racklet_image::{Arch, Target, Window};

/// The SoCs this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Chip {
    /// CV1800B (cv180x family, Milk-V Duo 64M): RISC-V C906 only.
    Cv1800b,
    /// SG2000 (cv181x family, Milk-V Duo S): C906B or Cortex-A53 by strap.
    Sg2000,
    /// SG2002 (cv181x family, Milk-V Duo 256M, LicheeRV Nano).
    Sg2002,
}

/// The core the ROM runs on (and so the core that runs BL2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Core {
    Riscv,
    Arm,
}

impl Core {
    /// "RISC-V" or "Arm", for messages.
    pub fn title(self) -> &'static str {
        match self {
            Core::Riscv => "RISC-V",
            Core::Arm => "Arm",
        }
    }
}

/// Offset of the BL2 entry point from its load address: the ROM branches to
/// BL2_BASE + 0x20 (confirmed in the CA53 ROM; assumed for RISC-V).
pub const BL2_ENTRY_OFFSET: u64 = 0x20;

impl Chip {
    /// The chip named in the board table (`cv1800b`, `sg2000`, `sg2002`).
    pub fn from_soc(soc: &str) -> Option<Chip> {
        match soc.to_ascii_lowercase().as_str() {
            "cv1800b" => Some(Chip::Cv1800b),
            "sg2000" => Some(Chip::Sg2000),
            "sg2002" => Some(Chip::Sg2002),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Chip::Cv1800b => "cv1800b",
            Chip::Sg2000 => "sg2000",
            Chip::Sg2002 => "sg2002",
        }
    }

    /// The cores whose ROM can boot this chip.
    pub fn has_core(self, core: Core) -> bool {
        !matches!((self, core), (Chip::Cv1800b, Core::Arm))
    }

    /// Where the ROM loads BL2 for `core`; `None` when the chip has no such boot core.
    pub fn bl2_base(self, core: Core) -> Option<u64> {
        match (self, core) {
            (Chip::Cv1800b, Core::Riscv) => Some(0x3BC0_0000),
            (Chip::Cv1800b, Core::Arm) => None,
            (_, Core::Riscv) => Some(0x0C00_0000),
            (_, Core::Arm) => Some(0x4010_0000),
        }
    }

    /// The largest BL2 the ROM loads (its SRAM window).
    pub fn max_bl2(self) -> u64 {
        match self {
            Chip::Cv1800b => 0x19000,
            Chip::Sg2000 | Chip::Sg2002 => 0x37000,
        }
    }

    /// The in-package DRAM (CVIMMAP_DRAM_BASE / _SIZE of the vendor's board
    /// memory maps): 64 MiB on the CV1800B, 256 MiB on the SG2002, 512 MiB on
    /// the SG2000, at 0x80000000. The FSBL refuses run addresses outside it.
    pub fn dram(self) -> (u64, u64) {
        let mib = match self {
            Chip::Cv1800b => 64,
            Chip::Sg2002 => 256,
            Chip::Sg2000 => 512,
        };
        (0x8000_0000, mib << 20)
    }

    /// Where the ROM jumps: BL2 base + 0x20.
    pub fn bl2_entry(self, core: Core) -> Option<u64> {
        self.bl2_base(core).map(|b| b + BL2_ENTRY_OFFSET)
    }

    /// The board as its boot core sees it: BL2's load address, entry and
    /// window for `core` (the Arm core sees the SRAM at another address and
    /// runs AArch64), with the board's other facts. `None` when the chip
    /// has no such boot core.
    pub fn bl2_target(self, core: Core, board: &Target) -> Option<Target> {
        let base = self.bl2_base(core)?;
        Some(Target {
            arch: if core == Core::Arm { Some(Arch::Aarch64) } else { board.arch },
            load_address: base,
            entry: Some(base + BL2_ENTRY_OFFSET),
            window: Window {
                board: board.window.board.clone(),
                base,
                size: self.max_bl2(),
                max_payload: board.window.max_payload.clone(),
            },
            ..board.clone()
        })
    }
}

/// True when BL2's first word jumps over its 32-byte header to +0x20, in
/// one of the forms every known BL2 uses: RISC-V `jal x0, 32`
/// (`6f 00 00 02`), compressed `c.j 32` (`05 a0`), AArch64 `b +32`
/// (`08 00 00 14`). A BL2 that starts so works whether the ROM enters at
/// +0 or +0x20.
pub fn jumps_to_entry(bl2: &[u8]) -> bool {
    bl2.starts_with(&[0x6f, 0x00, 0x00, 0x02])
        || bl2.starts_with(&[0x05, 0xa0])
        || bl2.starts_with(&[0x08, 0x00, 0x00, 0x14])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_per_chip_and_core() {
        assert_eq!(Chip::Cv1800b.bl2_base(Core::Riscv), Some(0x3BC00000));
        assert_eq!(Chip::Cv1800b.bl2_entry(Core::Riscv), Some(0x3BC00020));
        assert_eq!(Chip::Cv1800b.bl2_base(Core::Arm), None);
        assert!(!Chip::Cv1800b.has_core(Core::Arm));
        for c in [Chip::Sg2000, Chip::Sg2002] {
            assert_eq!(c.bl2_base(Core::Riscv), Some(0x0C000000));
            assert_eq!(c.bl2_entry(Core::Arm), Some(0x40100020));
            assert_eq!(c.max_bl2(), 0x37000);
        }
        assert_eq!(Chip::from_soc("SG2002"), Some(Chip::Sg2002));
        assert_eq!(Chip::from_soc("rk3568"), None);
    }

    #[test]
    fn the_arm_core_sees_bl2_elsewhere_and_runs_aarch64() {
        let board = Target {
            board: "duo-256m".into(),
            soc: "sg2002".into(),
            arch: Some(Arch::Riscv64),
            load_address: 0x0C00_0000,
            entry: Some(0x0C00_0020),
            window: Window { board: "duo-256m".into(), base: 0x0C00_0000, size: 0x37000, max_payload: None },
            usb: vec![("rom".into(), 0x3346, 0x1000)],
            baud: None,
            max_stage: 256 << 20,
        };
        let arm = Chip::Sg2002.bl2_target(Core::Arm, &board).unwrap();
        assert_eq!(arm.arch, Some(Arch::Aarch64));
        assert_eq!((arm.load_address, arm.entry), (0x4010_0000, Some(0x4010_0020)));
        assert_eq!((arm.window.base, arm.window.size), (0x4010_0000, 0x37000));
        assert_eq!(arm.usb, board.usb);
        let rv = Chip::Sg2002.bl2_target(Core::Riscv, &board).unwrap();
        assert_eq!(rv.arch, Some(Arch::Riscv64));
        assert_eq!(rv.window.base, 0x0C00_0000);
        assert!(Chip::Cv1800b.bl2_target(Core::Arm, &board).is_none());
    }

    #[test]
    fn jump_forms() {
        // RISC-V J-type: imm[20|10:1|11|19:12] rd=0 opcode 0x6f; offset 32 sets imm[5] (bit 25).
        let jal: u32 = (1 << 25) | 0x6f;
        assert!(jumps_to_entry(&jal.to_le_bytes()));
        // c.j: funct3 101, offset[5] at bit 2, op 01.
        let cj: u16 = (0b101 << 13) | (1 << 2) | 0b01;
        assert!(jumps_to_entry(&cj.to_le_bytes()));
        // AArch64 B: 0b000101 << 26 | imm26 (32 / 4 = 8).
        let b: u32 = (0b000101 << 26) | 8;
        assert!(jumps_to_entry(&b.to_le_bytes()));
        assert!(!jumps_to_entry(&[0x13, 0, 0, 0]));
        assert!(!jumps_to_entry(&[]));
    }
}
