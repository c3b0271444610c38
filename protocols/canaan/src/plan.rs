//! From loads to stages.
//!
//! The ROM can write anywhere, but DRAM only works once some code has
//! initialised it. oreboot's flow is the model: a DRAM-init stage (`bt0`) is
//! loaded into SRAM and started; it sets DRAM up and jumps back into the ROM
//! (0x91200000), which enters USB mode again; the main stage is then loaded
//! into DRAM and started. So the loads are cut into stages before the first
//! load that targets DRAM: every load before it forms stage 1, started at
//! its first load's entry and expected to come back as the ROM; the rest
//! form stage 2, started at `--run` (or its first load's entry).

use crate::{CanaanError, DRAM_END, SRAM_BASE, SRAM_END, in_dram, in_sram};

/// One file to write to memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// For messages (the file name).
    pub name: String,
    /// Where the bytes go.
    pub address: u32,
    pub bytes: Vec<u8>,
    /// Entry point the file declares (ELF), if any.
    pub entry: Option<u32>,
}

/// One PROG_START worth of loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub loads: Vec<Load>,
    /// Where PROG_START jumps.
    pub entry: u32,
    /// True when this stage must come back as the ROM (a DRAM-init stage
    /// followed by more loads).
    pub returns_to_rom: bool,
}

impl Stage {
    /// Total bytes of the stage.
    pub fn bytes(&self) -> u64 {
        self.loads.iter().map(|l| l.bytes.len() as u64).sum()
    }
}

/// Checks the loads and cuts them into stages. `run` is the entry of the
/// last stage (default: the entry of its first load, or its address).
pub fn plan_stages(loads: Vec<Load>, run: Option<u64>) -> Result<Vec<Stage>, CanaanError> {
    if loads.is_empty() {
        return Err(CanaanError::BadLoad("nothing to load: give a payload or --load ADDR=FILE".into()));
    }
    for l in &loads {
        let (a, n) = (l.address as u64, l.bytes.len() as u64);
        if n == 0 {
            return Err(CanaanError::BadLoad(format!("{}: the file is empty", l.name)));
        }
        if !in_sram(a, n) && !in_dram(a, n) {
            return Err(CanaanError::BadLoad(format!(
                "{}: {n} bytes at 0x{a:08x}..0x{:x} lie neither in the SRAM (0x{SRAM_BASE:08x}..0x{SRAM_END:08x}) nor in DRAM (0x00000000..0x{DRAM_END:08x})",
                l.name,
                a + n
            )));
        }
    }
    let run = match run {
        Some(r) => Some(u32::try_from(r).map_err(|_| {
            CanaanError::BadLoad(format!("--run 0x{r:x} does not fit the ROM's 32-bit address"))
        })?),
        None => None,
    };
    let first_dram = loads.iter().position(|l| !in_sram(l.address as u64, l.bytes.len() as u64));
    let mut groups: Vec<Vec<Load>> = match first_dram {
        Some(0) => {
            return Err(CanaanError::BadLoad(format!(
                "{} loads into DRAM at 0x{:08x}, but DRAM does not work until a DRAM-init stage has run: load that stage into SRAM first (--load 0x80360000=bt0.bin)",
                loads[0].name, loads[0].address
            )));
        }
        Some(i) => {
            let mut loads = loads;
            let rest = loads.split_off(i);
            vec![loads, rest]
        }
        None => vec![loads],
    };
    for g in &groups {
        check_overlaps(g)?;
    }
    let n = groups.len();
    let stages = groups
        .drain(..)
        .enumerate()
        .map(|(i, loads)| {
            let last = i + 1 == n;
            let own = loads[0].entry.unwrap_or(loads[0].address);
            let entry = if last { run.unwrap_or(own) } else { own };
            Stage { loads, entry, returns_to_rom: !last }
        })
        .collect();
    Ok(stages)
}

/// Checks that every stage starts inside something that was loaded (by
/// then): a jump anywhere else runs whatever the memory holds. `run` is the
/// `--run` of the command line, named in the message when it is the culprit.
pub fn check_entries(stages: &[Stage], run: Option<u64>) -> Result<(), CanaanError> {
    let mut loaded: Vec<(u64, u64, &str)> = Vec::new();
    for (i, s) in stages.iter().enumerate() {
        loaded.extend(
            s.loads
                .iter()
                .map(|l| (l.address as u64, l.address as u64 + l.bytes.len() as u64, l.name.as_str())),
        );
        let e = s.entry as u64;
        if loaded.iter().any(|(a, b, _)| *a <= e && e < *b) {
            continue;
        }
        let list = loaded
            .iter()
            .map(|(a, b, n)| format!("{n} at 0x{a:08x}..0x{b:08x}"))
            .collect::<Vec<_>>()
            .join(", ");
        let what = match run {
            Some(r) if i + 1 == stages.len() => format!("--run 0x{r:x}"),
            _ => format!("stage {}'s entry 0x{e:08x}", i + 1),
        };
        return Err(CanaanError::BadLoad(format!(
            "{what} points at nothing that was loaded ({list}); give an address inside a load, or add --force to jump there anyway"
        )));
    }
    Ok(())
}

fn check_overlaps(loads: &[Load]) -> Result<(), CanaanError> {
    for (i, a) in loads.iter().enumerate() {
        for b in &loads[i + 1..] {
            let (a0, a1) = (a.address as u64, a.address as u64 + a.bytes.len() as u64);
            let (b0, b1) = (b.address as u64, b.address as u64 + b.bytes.len() as u64);
            if a0 < b1 && b0 < a1 {
                return Err(CanaanError::BadLoad(format!(
                    "{} (0x{a0:08x}..0x{a1:08x}) and {} (0x{b0:08x}..0x{b1:08x}) overlap",
                    a.name, b.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_must_point_into_a_load() {
        let load = |address: u32, n: usize| Load {
            name: format!("f{address:x}"),
            address,
            bytes: vec![1; n],
            entry: None,
        };
        let ok = plan_stages(vec![load(0x8036_0000, 16)], Some(0x8036_0008)).unwrap();
        check_entries(&ok, Some(0x8036_0008)).unwrap();
        let bad = plan_stages(vec![load(0x8036_0000, 16)], Some(0x9000_0000)).unwrap();
        let e = check_entries(&bad, Some(0x9000_0000)).unwrap_err().to_string();
        assert!(e.contains("--run 0x90000000") && e.contains("0x80360000..0x80360010"), "{e}");
        // One past the end is outside.
        let edge = plan_stages(vec![load(0x8036_0000, 16)], Some(0x8036_0010)).unwrap();
        assert!(check_entries(&edge, Some(0x8036_0010)).is_err());
        // A board-table entry of 0x1 for a raw payload.
        let mut raw = load(0x8036_0000, 16);
        raw.entry = Some(1);
        let e = check_entries(&plan_stages(vec![raw], None).unwrap(), None).unwrap_err().to_string();
        assert!(e.contains("entry 0x00000001"), "{e}");
    }

    fn load(name: &str, address: u32, len: usize) -> Load {
        Load { name: name.into(), address, bytes: vec![0xaa; len], entry: None }
    }

    #[test]
    fn one_sram_load_is_one_stage() {
        let s = plan_stages(vec![load("a", 0x8036_0000, 16)], None).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].entry, 0x8036_0000);
        assert!(!s[0].returns_to_rom);
        let s = plan_stages(vec![load("a", 0x8036_0000, 16)], Some(0x8036_0004)).unwrap();
        assert_eq!(s[0].entry, 0x8036_0004);
    }

    #[test]
    fn the_first_dram_load_cuts_the_stages() {
        let s = plan_stages(
            vec![load("bt0", 0x8036_0000, 100), load("main", 0x0800_0000, 1000)],
            Some(0x0800_0000),
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].entry, s[0].returns_to_rom), (0x8036_0000, true));
        assert_eq!((s[1].entry, s[1].returns_to_rom), (0x0800_0000, false));
        assert_eq!(s[1].loads[0].name, "main");
    }

    #[test]
    fn sram_edges() {
        // Exactly up to the end of SRAM: fine. One byte more: refused.
        let top = 0x8040_0000 - 0x8036_0000;
        assert!(plan_stages(vec![load("a", 0x8036_0000, top)], None).is_ok());
        let e = plan_stages(vec![load("a", 0x8036_0000, top + 1)], None).unwrap_err();
        assert!(matches!(e, CanaanError::BadLoad(_)), "{e}");
        assert!(plan_stages(vec![load("a", 0x8020_0000, 0x20_0000)], None).is_ok());
        assert!(plan_stages(vec![load("a", 0x801f_ffff, 1)], None).is_err());
    }

    #[test]
    fn dram_first_and_overlaps_are_refused() {
        assert!(plan_stages(vec![load("m", 0x0800_0000, 4)], None).is_err());
        assert!(plan_stages(vec![load("a", 0x8036_0000, 8), load("b", 0x8036_0004, 8)], None).is_err());
        assert!(plan_stages(vec![load("a", 0x8036_0000, 8), load("b", 0x8036_0008, 8)], None).is_ok());
        assert!(plan_stages(vec![load("a", 0x8036_0000, 0)], None).is_err());
        assert!(plan_stages(vec![], None).is_err());
        assert!(plan_stages(vec![load("a", 0x8036_0000, 8)], Some(1 << 32)).is_err());
        // Peripheral space is neither SRAM nor DRAM.
        assert!(plan_stages(vec![load("a", 0x8036_0000, 8), load("b", 0x9120_0000, 8)], None).is_err());
    }
}
