//! What a maskrom run will send, decided before any device is touched:
//! the user's files read and checked against the board and the chip table.
//!
//! Two shapes (README "When RC4 applies"): an RKBOOT loader, whose 0x471
//! and 0x472 entries go exactly as stored, or raw blobs (a DRAM-init blob
//! and an optional usbplug, given as files or found in an rkbin checkout),
//! RC4'd when the chip table says the ROM wants it.

use std::path::{Path, PathBuf};

use racklet_image::{ImageError, Target};
use racklet_link::{Classify, FailureClass};

use crate::chips::{self, Chip};
use crate::loader::{EntryKind, Loader, LoaderError, is_rkboot, looks_like_rkboot};

/// The user's files and choices that decide what is sent.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The payload: an RKBOOT loader, or a raw usbplug (0x472 stage).
    pub bin: Option<PathBuf>,
    /// A DRAM-init blob (0x471 stage) for raw runs.
    pub dram: Option<PathBuf>,
    /// An rkbin checkout to take the DRAM-init blob and usbplug from.
    pub rkbin: Option<PathBuf>,
    /// RC4 on raw stages: `None` follows the chip table.
    pub rc4: Option<bool>,
    /// Send 0x0000 in the CRC field.
    pub zero_crc: bool,
    /// Send a loader built for another chip anyway.
    pub force: bool,
}

/// A blob to send, with the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub from: PathBuf,
    pub bytes: Vec<u8>,
}

/// The stages to send.
#[derive(Debug, Clone)]
pub enum Stages {
    /// An RKBOOT loader: its entries, sent as stored.
    Loader { from: PathBuf, file: Vec<u8>, loader: Loader },
    /// Raw blobs, RC4 per the chip table or the user's choice.
    Raw { ddr: Blob, usbplug: Option<Blob>, rc4: bool },
}

/// What will be sent, to which chip.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The board's row of the chip table.
    pub chip: &'static Chip,
    pub stages: Stages,
    /// Send a zero CRC field.
    pub zero_crc: bool,
}

impl Plan {
    /// The bytes of every 0x472 stage to send (a loader's as stored).
    pub fn usbplug_images(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match &self.stages {
            Stages::Loader { file, loader, .. } => Box::new(
                loader.of(EntryKind::Code472).filter(|e| e.size > 0).map(move |e| loader.data(file, e)),
            ),
            Stages::Raw { usbplug, .. } => Box::new(usbplug.iter().map(|u| u.bytes.as_slice())),
        }
    }

    /// True when a 0x472 stage follows the DRAM init.
    pub fn has_usbplug(&self) -> bool {
        match &self.stages {
            Stages::Loader { loader, .. } => loader.of(EntryKind::Code472).any(|e| e.size > 0),
            Stages::Raw { usbplug, .. } => usbplug.is_some(),
        }
    }
}

/// Why the inputs cannot be sent. Every variant names the file, flag or
/// board; the fix is in [`Classify::hint`].
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{board}: SoC '{soc}' is not in the Rockchip chip table")]
    UnknownSoc { board: String, soc: String },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{}: {source}", path.display())]
    Loader { path: PathBuf, source: LoaderError },
    #[error("{}: an RKBOOT loader already holds the DRAM-init and usbplug stages", path.display())]
    LoaderWithBlobs { path: PathBuf },
    #[error(
        "{}: --rc4 applies to raw blobs; a loader's entries are sent exactly as stored (already in wire form)",
        path.display()
    )]
    Rc4WithLoader { path: PathBuf },
    #[error("{}: the loader is for chip '{loader_chip}'{}, but {board} has {soc}", path.display(), loader_socs.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    WrongChip { path: PathBuf, loader_chip: String, loader_socs: Option<String>, board: String, soc: String },
    #[error("{}: the loader has no 0x471 (DRAM init) entry", path.display())]
    NoDramEntry { path: PathBuf },
    #[error(
        "{}: every 0x471 (DRAM init) entry holds 0 bytes ({}): empty entries are skipped, so there is no DRAM init to send",
        path.display(), names.join(", ")
    )]
    EmptyDramEntries { path: PathBuf, names: Vec<String> },
    #[error(
        "--zero-crc: {board} ({soc}) is not known to accept a zero CRC ({known}){}",
        loader.as_ref().map(|p| format!(", and {} does not set its CRC-off flag (header byte 0x2E)", p.display())).unwrap_or_default()
    )]
    ZeroCrcRefused { board: String, soc: String, known: String, loader: Option<PathBuf> },
    #[error("--rkbin {}: not a directory", dir.display())]
    RkbinNotADirectory { dir: PathBuf },
    #[error("--rkbin {}: no {pattern} in it (rkbin keeps blobs under bin/<family>/)", dir.display())]
    RkbinMissing { dir: PathBuf, pattern: String },
    #[error(
        "{}: not an RKBOOT loader, so it is sent as the 0x472 stage, which needs DRAM initialised first",
        path.display()
    )]
    UsbplugWithoutDram { path: PathBuf },
    #[error("nothing to send to {board}")]
    NothingToSend { board: String },
    #[error("{}: {size} bytes do not fit {board}'s SRAM for the DRAM-init stage (at most {limit} bytes)", path.display())]
    DdrTooLarge { path: PathBuf, size: u64, limit: u64, board: String },
}

impl Classify for PlanError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                PlanError::UnknownSoc { .. } => {
                    "fix the board's `soc` in the board table (see `racklet-flash boards`)"
                }
                PlanError::Image(_) | PlanError::Loader { .. } => return None,
                PlanError::LoaderWithBlobs { .. } => {
                    "drop --dram/--rkbin, or give raw blobs instead of the loader"
                }
                PlanError::Rc4WithLoader { .. } => "drop --rc4",
                PlanError::WrongChip { .. } => {
                    "use the loader for the board's SoC, or add --force to send it anyway"
                }
                PlanError::NoDramEntry { .. } | PlanError::EmptyDramEntries { .. } => {
                    "rebuild the loader with boot_merger from an ini that has a [CODE471_OPTION]"
                }
                PlanError::ZeroCrcRefused { .. } => "drop --zero-crc (the CRC is then computed and sent)",
                PlanError::RkbinNotADirectory { .. } => "give the top directory of an rkbin checkout",
                PlanError::RkbinMissing { .. } => {
                    "update the rkbin checkout, or give the blobs with --dram DDR.bin [USBPLUG.bin]"
                }
                PlanError::UsbplugWithoutDram { .. } => "add --dram DDR.bin or --rkbin DIR",
                PlanError::NothingToSend { .. } => {
                    "give an RKBOOT loader, --dram DDR.bin [USBPLUG.bin], or --rkbin DIR"
                }
                PlanError::DdrTooLarge { .. } => "use the DRAM-init blob for this SoC",
            }
            .to_string(),
        )
    }
}

/// Checks every input and decides what to send; touches no device.
pub fn plan(inputs: &Inputs, target: &Target) -> Result<Plan, PlanError> {
    let chip = chips::by_soc(&target.soc)
        .ok_or_else(|| PlanError::UnknownSoc { board: target.board.clone(), soc: target.soc.clone() })?;
    let zero_crc_refused = |loader: Option<&Path>| PlanError::ZeroCrcRefused {
        board: target.board.clone(),
        soc: target.soc.clone(),
        known: chips::zero_crc_summary(),
        loader: loader.map(Path::to_path_buf),
    };
    // Every file is bounded by the board's largest stage before it is read.
    // Raw stages go to SRAM (0x471, checked below) or DRAM (0x472): the ROM
    // decides the addresses.
    let bin = match &inputs.bin {
        Some(p) => Some((p.clone(), target.read_stage(p)?)),
        None => None,
    };
    if let Some((path, bytes)) = &bin
        && (is_rkboot(bytes) || looks_like_rkboot(bytes))
    {
        let loader =
            Loader::parse(bytes).map_err(|source| PlanError::Loader { path: path.clone(), source })?;
        if inputs.dram.is_some() || inputs.rkbin.is_some() {
            return Err(PlanError::LoaderWithBlobs { path: path.clone() });
        }
        if inputs.rc4.is_some() {
            return Err(PlanError::Rc4WithLoader { path: path.clone() });
        }
        let for_chip = loader.chip_code.as_deref().and_then(chips::by_code);
        if for_chip != Some(chip) && !inputs.force {
            return Err(PlanError::WrongChip {
                path: path.clone(),
                loader_chip: loader.chip_code.clone().unwrap_or_else(|| format!("0x{:08x}", loader.chip_raw)),
                loader_socs: for_chip.map(|c| c.socs.join("/")),
                board: target.board.clone(),
                soc: target.soc.clone(),
            });
        }
        if loader.of(EntryKind::Code471).next().is_none() {
            return Err(PlanError::NoDramEntry { path: path.clone() });
        }
        // Empty entries are skipped on the wire (rkdeveloptool's rule).
        if !loader.of(EntryKind::Code471).any(|e| e.size > 0) {
            let names = loader.of(EntryKind::Code471).map(|e| format!("'{}'", e.name)).collect();
            return Err(PlanError::EmptyDramEntries { path: path.clone(), names });
        }
        loader
            .check_stages(target.window.size)
            .map_err(|source| PlanError::Loader { path: path.clone(), source })?;
        if inputs.zero_crc && !(loader.crc_disabled || chip.zero_crc_allowed()) {
            return Err(zero_crc_refused(Some(path)));
        }
        return Ok(Plan {
            chip,
            stages: Stages::Loader { from: path.clone(), file: bytes.clone(), loader },
            zero_crc: inputs.zero_crc,
        });
    }
    if inputs.zero_crc && !chip.zero_crc_allowed() {
        return Err(zero_crc_refused(None));
    }
    let read_blob = |path: &Path| -> Result<Blob, PlanError> {
        let p = target.load_dram_stage(path)?;
        Ok(Blob { from: path.to_path_buf(), bytes: p.bytes })
    };
    // The DRAM-init stage runs where the ROM copies it, the SRAM at the
    // board's load address: an ELF for it must be linked there (a raw blob
    // is only bounded by the SRAM's size, below).
    let read_ddr = |path: &Path| -> Result<Blob, PlanError> {
        let bytes = target.read_stage(path)?;
        let p = racklet_image::load_bytes(path, bytes, target.arch, &target.window)?;
        if let Some(at) = p.load_address {
            racklet_image::check_fit(path, at, p.mem_size, &target.window)?;
        }
        Ok(Blob { from: path.to_path_buf(), bytes: p.bytes })
    };
    let mut ddr = inputs.dram.as_deref().map(read_ddr).transpose()?;
    let mut usbplug = match bin {
        Some((p, bytes)) => {
            let bytes = racklet_image::load_bytes(&p, bytes, target.arch, &target.dram_window())?.bytes;
            Some(Blob { from: p, bytes })
        }
        None => None,
    };
    if let Some(dir) = &inputs.rkbin {
        if ddr.is_none() {
            ddr = Some(read_blob(&find_rkbin(dir, chip.ddr_blob(&target.soc))?)?);
        }
        if usbplug.is_none() {
            usbplug = Some(read_blob(&find_rkbin(dir, chip.usbplug_blob(&target.soc))?)?);
        }
    }
    let Some(ddr) = ddr else {
        return Err(match usbplug {
            Some(u) => PlanError::UsbplugWithoutDram { path: u.from },
            None => PlanError::NothingToSend { board: target.board.clone() },
        });
    };
    let limit = target.window.size;
    if ddr.bytes.len() as u64 > limit {
        return Err(PlanError::DdrTooLarge {
            path: ddr.from,
            size: ddr.bytes.len() as u64,
            limit,
            board: target.board.clone(),
        });
    }
    let rc4 = inputs.rc4.unwrap_or(chip.rc4);
    Ok(Plan { chip, stages: Stages::Raw { ddr, usbplug, rc4 }, zero_crc: inputs.zero_crc })
}

/// How deep `--rkbin` looks: rkbin keeps blobs in `bin/<family>/`.
const RKBIN_DEPTH: usize = 4;

/// The version in an rkbin file name `<prefix>v<major>.<minor>.bin`.
fn rkbin_version(name: &str, prefix: &str) -> Option<(u32, u32)> {
    let v = name.strip_prefix(prefix)?.strip_prefix('v')?.strip_suffix(".bin")?;
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if depth > 0 {
                walk(&p, depth - 1, out);
            }
        } else {
            out.push(p);
        }
    }
}

/// Finds the newest version of rkbin file `wanted` (e.g.
/// `rk3568_ddr_1560MHz_v1.23.bin`) anywhere under `dir`: any
/// `rk3568_ddr_1560MHz_v<major>.<minor>.bin`, the highest version wins
/// (1.23 over 1.9). A name without `_v` must be there as is.
pub fn find_rkbin(dir: &Path, wanted: &str) -> Result<PathBuf, PlanError> {
    if !dir.is_dir() {
        return Err(PlanError::RkbinNotADirectory { dir: dir.to_path_buf() });
    }
    let mut files = Vec::new();
    walk(dir, RKBIN_DEPTH, &mut files);
    let name_of = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let prefix = wanted.rfind("_v").map(|i| &wanted[..=i]);
    let best = match prefix {
        Some(prefix) => files
            .iter()
            .filter_map(|p| rkbin_version(&name_of(p), prefix).map(|v| (v, p)))
            .max_by_key(|(v, _)| *v)
            .map(|(_, p)| p.clone()),
        None => files.iter().find(|p| name_of(p) == wanted).cloned(),
    };
    best.ok_or_else(|| PlanError::RkbinMissing {
        dir: dir.to_path_buf(),
        pattern: match prefix {
            Some(prefix) => format!("{prefix}v*.bin"),
            None => wanted.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rkbin_versions_compare_as_numbers() {
        assert_eq!(rkbin_version("rk3568_ddr_1560MHz_v1.23.bin", "rk3568_ddr_1560MHz_"), Some((1, 23)));
        assert_eq!(rkbin_version("rk3568_ddr_1560MHz_v1.9.bin", "rk3568_ddr_1560MHz_"), Some((1, 9)));
        assert_eq!(rkbin_version("rk3568_ddr_1560MHz_v1.23.elf", "rk3568_ddr_1560MHz_"), None);
        assert_eq!(rkbin_version("rk3566_ddr_1056MHz_v1.23.bin", "rk3568_ddr_1560MHz_"), None);
        assert!((1, 23) > (1, 9));
    }
}
