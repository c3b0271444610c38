//! From the user's files to stages: every file read and checked before any
//! device is touched.
//!
//! The ROM can write anywhere, but DRAM only works once some code has
//! initialised it. oreboot's flow is the model: a DRAM-init stage (`bt0`) is
//! loaded into SRAM and started; it sets DRAM up and jumps back into the ROM
//! (0x91200000), which enters USB mode again; the main stage is then loaded
//! into DRAM and started. So the loads are cut into stages before the first
//! load that targets DRAM: every load before it forms stage 1, started at
//! its first load's entry and expected to come back as the ROM; the rest
//! form stage 2, started at `--run` (or its first load's entry).

use std::path::{Path, PathBuf};

use racklet_image::{ImageError, Target};
use racklet_link::{Classify, FailureClass};

use crate::{DRAM_END, ROM_SRAM_END, SRAM_BASE, SRAM_END, in_dram, in_rom_sram, in_sram};

/// What the user asked to load, as the command line gave it.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The payload (positional): an ELF goes to its load address and starts
    /// at its entry; a raw file goes to the board's load address.
    pub payload: Option<PathBuf>,
    /// `--load ADDR=FILE`, in order.
    pub loads: Vec<(u64, PathBuf)>,
    /// `--run ADDR`: the entry of the last stage.
    pub run: Option<u64>,
    /// `--dram BLOB` (a Rockchip option): refused, the K230 takes its
    /// DRAM-init stage as a `--load`.
    pub dram: Option<PathBuf>,
    /// `--force`: jump where nothing was loaded if the user says so.
    pub force: bool,
    /// The board's DRAM, from its row in the board table (`dram_size`):
    /// loads past it are refused. `None`: the SoC's 2 GiB window.
    pub dram_size: Option<u64>,
}

/// Every stage, checked, in the order they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
}

/// Why the inputs cannot be sent. Every variant names the file or option.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A file cannot be read, decoded or does not fit the board's window.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// `--dram` was given for a K230 board.
    #[error("{}: --dram is a Rockchip option", path.display())]
    DramBlob { path: PathBuf },
    /// The K230's own storage image as the payload: the USB ROM would load
    /// it whole and jump into its header.
    #[error("{}: a K230 firmware image (storage boot header); the USB boot ROM would jump into its header", path.display())]
    StorageImage { path: PathBuf },
    /// Neither a payload nor a `--load`.
    #[error("nothing to load for {board}")]
    NothingToLoad { board: String },
    /// An address or entry wider than the ROM's 32 bits.
    #[error("{name}: 0x{address:x} does not fit the ROM's 32-bit addresses")]
    AddressTooWide { name: String, address: u64 },
    /// `--run` wider than the ROM's 32 bits.
    #[error("--run 0x{run:x} does not fit the ROM's 32-bit address")]
    RunTooWide { run: u64 },
    /// An ELF given with `--load` at another address than its own.
    #[error("{}: the ELF loads at 0x{elf:x}, but --load says 0x{given:x}", path.display())]
    ElfAddress { path: PathBuf, elf: u64, given: u64 },
    /// A load with no bytes.
    #[error("{name}: the file is empty")]
    Empty { name: String },
    /// A load neither in SRAM nor in DRAM.
    #[error(
        "{name}: {len} bytes at 0x{address:08x}..0x{:x} lie neither in the SRAM (0x{SRAM_BASE:08x}..0x{SRAM_END:08x}) nor in DRAM (0x00000000..0x{DRAM_END:08x})",
        *address as u64 + *len
    )]
    OutsideMemory { name: String, address: u32, len: u64 },
    /// A load into the ROM's own part of the SRAM.
    #[error(
        "{name}: {len} bytes at 0x{address:08x} land in 0x{SRAM_BASE:08x}..0x{ROM_SRAM_END:08x}, the boot ROM's own data and stack: the download would overwrite the ROM while it runs"
    )]
    RomSram { name: String, address: u32, len: u64 },
    /// A load past the end of the board's DRAM.
    #[error(
        "{name}: {len} bytes at 0x{address:08x} run past the end of {board}'s {} MiB of DRAM (0x00000000..0x{dram_size:08x})",
        dram_size >> 20
    )]
    PastDram { name: String, address: u32, len: u64, board: String, dram_size: u64 },
    /// The first load targets DRAM, which does not work yet.
    #[error(
        "{name} loads into DRAM at 0x{address:08x}, but DRAM does not work until a DRAM-init stage has run"
    )]
    DramFirst { name: String, address: u32 },
    /// Two loads of one stage overlap.
    #[error("{a} (0x{:08x}..0x{:08x}) and {b} (0x{:08x}..0x{:08x}) overlap", a_range.0, a_range.1, b_range.0, b_range.1)]
    Overlap { a: String, a_range: (u64, u64), b: String, b_range: (u64, u64) },
    /// A stage starts where nothing was loaded (by then): the jump would run
    /// whatever the memory holds.
    #[error("{what} points at nothing that was loaded ({loaded})")]
    EntryOutsideLoads { what: String, loaded: String },
    /// A storage image of a payload linked outside the SRAM.
    #[error(
        "{}: loads at 0x{start:x}..0x{end:x}, outside {board}'s SRAM 0x{sram_base:x}..0x{sram_end:x}; the ROM boots the payload from SRAM",
        path.display()
    )]
    ImageOutsideSram { path: PathBuf, start: u64, end: u64, board: String, sram_base: u64, sram_end: u64 },
    /// A storage image of a payload linked for another address than the one
    /// the ROM runs it at.
    #[error(
        "{}: linked at 0x{start:x}, but on storage boot the ROM copies the payload to 0x{:x} and runs it there (0x80360000 is the USB download address)",
        path.display(), crate::STORAGE_LOAD
    )]
    ImageLinkedElsewhere { path: PathBuf, start: u64 },
    /// A storage image of a payload larger than the storage-boot area.
    #[error(
        "{}: {len} bytes do not fit the {max} bytes the ROM runs on storage boot (0x{:x}..0x{:x})",
        path.display(), crate::STORAGE_LOAD, crate::STORAGE_LOAD + *max
    )]
    ImageTooLarge { path: PathBuf, len: u64, board: String, max: u64 },
    /// The firmware header cannot be made.
    #[error("{}: {source}", path.display())]
    Header {
        path: PathBuf,
        #[source]
        source: crate::HeaderError,
    },
}

impl Classify for PlanError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        match self {
            PlanError::DramBlob { .. } => {
                Some("on the K230 load a DRAM-init stage with --load 0x80360000=bt0.bin".into())
            }
            PlanError::StorageImage { .. } => Some(
                "the ROM reads it from SD/eMMC at 0x100000: write it there with `racklet-flash write BOARD IMAGE --medium sd --at 0x100000 --loader loader_mmc.bin`; over USB give the payload itself; --force sends it anyway"
                    .into(),
            ),
            PlanError::NothingToLoad { board } => Some(format!(
                "give a payload (`racklet-flash maskrom {board} payload.bin`) or --load ADDR=FILE"
            )),
            PlanError::ElfAddress { path, elf, .. } => {
                Some(format!("give --load 0x{elf:x}={}", path.display()))
            }
            PlanError::DramFirst { .. } => {
                Some("load that stage into SRAM first (--load 0x80360000=bt0.bin)".into())
            }
            PlanError::ImageOutsideSram { .. } | PlanError::ImageLinkedElsewhere { .. } => Some(format!(
                "link it for 0x{:x} (the SDK's SPL is: CONFIG_SPL_TEXT_BASE=0x80300000)",
                crate::STORAGE_LOAD
            )),
            PlanError::RomSram { .. } => Some(format!(
                "load at 0x{ROM_SRAM_END:08x} or above (the vendor tools use 0x80360000; k230_flash: \"between 0x80300000 and 0x80400000\")"
            )),
            PlanError::EntryOutsideLoads { .. } => {
                Some("give an address inside a load, or add --force to jump there anyway".into())
            }
            _ => None,
        }
    }
}

fn addr32(name: &str, address: u64) -> Result<u32, PlanError> {
    u32::try_from(address).map_err(|_| PlanError::AddressTooWide { name: name.to_string(), address })
}

fn name_of(p: &Path) -> String {
    p.display().to_string()
}

/// Reads and checks every input file for `target` and cuts the loads into
/// stages. Touches no device.
pub fn plan(inputs: &Inputs, target: &Target) -> Result<Plan, PlanError> {
    if let Some(path) = &inputs.dram {
        return Err(PlanError::DramBlob { path: path.clone() });
    }
    let mut loads = Vec::new();
    if let Some(path) = &inputs.payload {
        // The payload goes into SRAM: check the fit against the board's window.
        let p = target.load_payload(path)?;
        if !inputs.force && crate::describe::describe(&p.bytes).is_some() {
            return Err(PlanError::StorageImage { path: path.clone() });
        }
        let at = p.load_address.unwrap_or(target.load_address);
        let name = name_of(path);
        let entry = match p.entry {
            Some(e) => Some(addr32(&name, e)?),
            None if at == target.load_address => target.entry.map(|e| addr32("entry", e)).transpose()?,
            None => None,
        };
        loads.push(Load { address: addr32(&name, at)?, name, bytes: p.bytes, entry });
    }
    for (addr, path) in &inputs.loads {
        let p = target.load_dram_stage(path)?;
        if let Some(la) = p.load_address
            && la != *addr
        {
            return Err(PlanError::ElfAddress { path: path.clone(), elf: la, given: *addr });
        }
        let name = name_of(path);
        let entry = p.entry.map(|e| addr32(&name, e)).transpose()?;
        loads.push(Load { address: addr32(&name, *addr)?, name, bytes: p.bytes, entry });
    }
    if loads.is_empty() {
        return Err(PlanError::NothingToLoad { board: target.board.clone() });
    }
    let stages = plan_stages_for(loads, inputs.run, &target.board, inputs.dram_size)?;
    if !inputs.force {
        check_entries(&stages, inputs.run)?;
    }
    Ok(Plan { stages })
}

/// Checks that every stage starts inside something that was loaded (by
/// then): a jump anywhere else runs whatever the memory holds. `run` is the
/// `--run` of the command line, named in the message when it is the culprit.
pub fn check_entries(stages: &[Stage], run: Option<u64>) -> Result<(), PlanError> {
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
        return Err(PlanError::EntryOutsideLoads { what, loaded: list });
    }
    Ok(())
}

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
pub fn plan_stages(loads: Vec<Load>, run: Option<u64>) -> Result<Vec<Stage>, PlanError> {
    plan_stages_for(loads, run, "the board", None)
}

/// [`plan_stages`] for `board`, whose DRAM holds `dram_size` bytes (`None`:
/// the SoC's whole DRAM window).
pub fn plan_stages_for(
    loads: Vec<Load>,
    run: Option<u64>,
    board: &str,
    dram_size: Option<u64>,
) -> Result<Vec<Stage>, PlanError> {
    if loads.is_empty() {
        return Err(PlanError::NothingToLoad { board: board.into() });
    }
    for l in &loads {
        let (a, n) = (l.address as u64, l.bytes.len() as u64);
        if n == 0 {
            return Err(PlanError::Empty { name: l.name.clone() });
        }
        if in_rom_sram(a, n) {
            return Err(PlanError::RomSram { name: l.name.clone(), address: l.address, len: n });
        }
        if !in_sram(a, n) && !in_dram(a, n) {
            return Err(PlanError::OutsideMemory { name: l.name.clone(), address: l.address, len: n });
        }
        if let Some(size) = dram_size
            && !in_sram(a, n)
            && a.saturating_add(n) > size
        {
            return Err(PlanError::PastDram {
                name: l.name.clone(),
                address: l.address,
                len: n,
                board: board.into(),
                dram_size: size,
            });
        }
    }
    let run = match run {
        Some(r) => Some(u32::try_from(r).map_err(|_| PlanError::RunTooWide { run: r })?),
        None => None,
    };
    let first_dram = loads.iter().position(|l| !in_sram(l.address as u64, l.bytes.len() as u64));
    let mut groups: Vec<Vec<Load>> = match first_dram {
        Some(0) => {
            return Err(PlanError::DramFirst { name: loads[0].name.clone(), address: loads[0].address });
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

fn check_overlaps(loads: &[Load]) -> Result<(), PlanError> {
    for (i, a) in loads.iter().enumerate() {
        for b in &loads[i + 1..] {
            let (a0, a1) = (a.address as u64, a.address as u64 + a.bytes.len() as u64);
            let (b0, b1) = (b.address as u64, b.address as u64 + b.bytes.len() as u64);
            if a0 < b1 && b0 < a1 {
                return Err(PlanError::Overlap {
                    a: a.name.clone(),
                    a_range: (a0, a1),
                    b: b.name.clone(),
                    b_range: (b0, b1),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(e, PlanError::OutsideMemory { .. }), "{e}");
        assert!(plan_stages(vec![load("a", 0x8030_0000, 0x10_0000)], None).is_ok());
        // The ROM's own half of the SRAM is not a load target.
        let e = plan_stages(vec![load("a", 0x8020_0000, 0x20_0000)], None).unwrap_err();
        assert!(matches!(e, PlanError::RomSram { .. }), "{e}");
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
