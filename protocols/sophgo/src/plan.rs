//! What to send, settled before a device is touched: the chip and boot
//! core, the ROM's USB ids, and the fip.bin (as given, or built from a BL2)
//! or the bytes of one `load_image` session (`--main`).

use std::path::{Path, PathBuf};

use racklet_image::{Arch, ImageError, Payload, Target};
use racklet_link::{Classify, FailureClass, UsbId};

use crate::chip::{self, BL2_ENTRY_OFFSET, Chip, Core};
use crate::fip::{self, FipError, FipInfo};

/// The user's choices that matter to a Sophgo boot.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The payload: a BL2 (ELF or raw) or a whole fip.bin.
    pub bin: Option<PathBuf>,
    /// A DRAM blob (refused: the ROM takes none).
    pub dram: Option<PathBuf>,
    /// The core the board is strapped to boot (default RISC-V).
    pub core: Option<Core>,
    /// Serve one `load_image` session of an already running BL2 (`--main`).
    pub main: bool,
    /// The ROM's USB id when efuses changed it (`--usb-id`).
    pub usb_id: Option<UsbId>,
}

/// The later parts of a whole fip.bin (`racklet-flash image ... --ddr-param
/// ...`), as `fiptool.py genfip` takes them.
#[derive(Debug, Clone, Default)]
pub struct ImageParts {
    pub blcp: Option<PathBuf>,
    pub ddr_param: Option<PathBuf>,
    pub blcp_2nd: Option<PathBuf>,
    pub blcp_2nd_runaddr: Option<u32>,
    pub monitor: Option<PathBuf>,
    pub monitor_runaddr: Option<u32>,
    pub loader_2nd: Option<PathBuf>,
    pub compress: fip::Compress,
}

/// What the loader sends.
#[derive(Debug, Clone)]
pub enum Image {
    /// A fip.bin, checked; `built_from` names the BL2 it was built from
    /// (and that BL2's length) when the user gave a BL2.
    Fip { bytes: Vec<u8>, info: FipInfo, built_from: Option<(PathBuf, usize)> },
    /// `--main`: the bytes of one `load_image` session.
    Main { bytes: Vec<u8> },
}

/// A checked plan for [`crate::boot::boot`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub chip: Chip,
    pub core: Core,
    /// The ROM's USB ids (`--usb-id`, else the board table's `rom` stage, else 3346:1000).
    pub ids: Vec<UsbId>,
    pub image: Image,
    /// Where the ROM loads BL2 for this core.
    pub bl2_base: u64,
    /// Things the user should know that do not stop the run.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Where the ROM enters BL2.
    pub fn bl2_entry(&self) -> u64 {
        self.bl2_base + BL2_ENTRY_OFFSET
    }
}

/// Why the inputs cannot be sent. Every variant names the file or option.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{board}: SoC '{soc}' is not a Sophgo chip this tool knows (cv1800b, sg2000, sg2002)")]
    UnknownSoc { board: String, soc: String },
    #[error("--core arm: {board} ({chip}) boots its RISC-V core only")]
    NoArmCore { board: String, chip: &'static str },
    #[error("--dram: the Sophgo ROM takes no DRAM blob; BL2 brings DRAM up itself")]
    Dram,
    #[error("no payload given for {board}")]
    NoPayload { board: String },
    #[error("{}: not a usable fip.bin: {source}", path.display())]
    BadFip {
        path: PathBuf,
        #[source]
        source: FipError,
    },
    #[error("{}: BL2 of {size} bytes exceeds the {max} bytes the {chip} ROM loads", path.display())]
    Bl2TooLarge { path: PathBuf, size: u32, max: u64, chip: &'static str },
    #[error(
        "{}: the ELF loads at 0x{load:x}, but the {chip} ROM loads BL2 at 0x{base:x}{}",
        path.display(),
        if *core == Core::Arm { " (Arm core)" } else { "" }
    )]
    LoadAddress { path: PathBuf, load: u64, base: u64, chip: &'static str, core: Core },
    #[error(
        "{}: the ELF's entry point is 0x{entry:x}, but the ROM enters BL2 at 0x{want:x} (load address + 0x20)",
        path.display()
    )]
    Entry { path: PathBuf, entry: u64, want: u64 },
    #[error("{}: {source}", path.display())]
    Build {
        path: PathBuf,
        #[source]
        source: FipError,
    },
    /// A part that runs somewhere was given without its run address.
    #[error("{flag} needs {need}: where the FSBL puts and starts it")]
    NoRunAddress { flag: &'static str, need: &'static str },
    /// A run address outside the chip's DRAM (the FSBL panics on it).
    #[error(
        "{flag} 0x{addr:x}: {part} of {size} bytes would not lie in the {chip}'s DRAM (0x{base:x}..0x{end:x}); the FSBL stops on it"
    )]
    RunAddress {
        flag: &'static str,
        part: &'static str,
        addr: u32,
        size: usize,
        chip: &'static str,
        base: u64,
        end: u64,
    },
    /// A later part was given with a fip.bin instead of a BL2.
    #[error("{}: already a fip.bin; the parts given with it go into a fip.bin built from a BL2", path.display())]
    PartsWithFip { path: PathBuf },
    /// An Arm ELF for a chip that has an Arm boot core, without `--core arm`.
    #[error("{}: ELF for aarch64, but {board} boots its RISC-V core unless told otherwise", path.display())]
    ArmElfForRiscvCore { path: PathBuf, board: String },
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl Classify for PlanError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            PlanError::UnknownSoc { .. } => "fix the board's `soc` in the board table".into(),
            PlanError::NoArmCore { .. } => "drop --core arm: this chip has no Arm boot core".into(),
            PlanError::ArmElfForRiscvCore { .. } => {
                "add --core arm to boot the chip's Arm core (the board strapped for it), or build the payload for riscv64"
                    .into()
            }
            PlanError::Dram => "drop --dram and give BL2 (or a whole fip.bin) as the payload".into(),
            PlanError::NoPayload { board } => {
                format!("racklet-flash maskrom {board} <bl2.bin|bl2.elf|fip.bin>")
            }
            PlanError::BadFip { .. } => {
                "rebuild the fip.bin, or give BL2 and let racklet-flash build it".into()
            }
            PlanError::Build { source: FipError::NeedsDdrParam { .. }, .. } => {
                "add --ddr-param FILE (the board's DDR parameter blob)".into()
            }
            PlanError::Build { source: FipError::Loader2ndMagic { .. }, .. } => {
                "give U-Boot as its build writes it for fiptool (with the \"BL33\" header)".into()
            }
            PlanError::Build {
                source: FipError::EmptyPart { .. } | FipError::TooLarge | FipError::Compress(_),
                ..
            } => "check the part files".into(),
            PlanError::Bl2TooLarge { .. } | PlanError::Build { .. } => {
                "BL2 runs from on-chip SRAM: make it smaller (load the rest from DRAM later)".into()
            }
            PlanError::LoadAddress { base, .. } => format!("link BL2 at 0x{base:x}"),
            PlanError::Entry { want, .. } => {
                format!("put the entry code at 0x{want:x} (the first word may jump there)")
            }
            PlanError::NoRunAddress { need, .. } => {
                format!("add {need} ADDR (the board's memory map says where)")
            }
            PlanError::RunAddress { .. } => "give a run address inside the chip's DRAM".into(),
            PlanError::PartsWithFip { .. } => "give BL2 (bl2.bin) as the input, or the fip.bin alone".into(),
            PlanError::Image(_) => return None,
        })
    }
}

/// The chip of the board.
pub fn chip_of(target: &Target) -> Result<Chip, PlanError> {
    Chip::from_soc(&target.soc)
        .ok_or_else(|| PlanError::UnknownSoc { board: target.board.clone(), soc: target.soc.clone() })
}

/// The boot core, checked against the chip, and the board as that core sees it.
fn core_target(target: &Target, chip: Chip, want: Option<Core>) -> Result<(Core, Target), PlanError> {
    let core = want.unwrap_or(Core::Riscv);
    let t = chip
        .bl2_target(core, target)
        .ok_or_else(|| PlanError::NoArmCore { board: target.board.clone(), chip: chip.name() })?;
    Ok((core, t))
}

/// The ROM's USB ids: `--usb-id` (efuses may change the VID), else the
/// board table's `rom` stage, else the ROM's own 3346:1000.
fn rom_ids(inputs: &Inputs, target: &Target) -> Vec<UsbId> {
    if let Some(id) = inputs.usb_id {
        return vec![id];
    }
    let ids: Vec<UsbId> = target.usb_ids(Some("rom")).into_iter().map(|(v, p)| UsbId::new(v, p)).collect();
    if ids.is_empty() { vec![UsbId::new(crate::ROM_VID, crate::ROM_PID)] } else { ids }
}

/// Checks everything about the inputs and builds what will be sent.
pub fn plan(inputs: &Inputs, target: &Target) -> Result<Plan, PlanError> {
    let chip = chip_of(target)?;
    let (core, ct) = core_target(target, chip, inputs.core)?;
    let ids = rom_ids(inputs, target);
    if inputs.dram.is_some() {
        return Err(PlanError::Dram);
    }
    let bin = inputs.bin.as_ref().ok_or_else(|| PlanError::NoPayload { board: target.board.clone() })?;
    // Bounded by the board's largest stage, judged before reading.
    let bytes = target.read_stage(bin)?;
    let mut warnings = Vec::new();
    let image = if inputs.main {
        // A running BL2 loads it where it likes (DRAM is up by then).
        let p = racklet_image::load_bytes(bin, bytes, ct.arch, &target.dram_window())?;
        Image::Main { bytes: p.bytes }
    } else if fip::is_fip(&bytes) {
        let info = checked_fip(bin, &bytes, chip)?;
        for (part, offset, size) in info.missing() {
            warnings.push(format!(
                "{}: param2 names {part} at 0x{offset:x}+0x{size:x}, beyond the file's {} bytes: the vendor FSBL will ask for it, and it cannot be served",
                bin.display(),
                bytes.len()
            ));
        }
        Image::Fip { bytes, info, built_from: None }
    } else {
        let p = racklet_image::load_bytes(bin, bytes, ct.arch, &ct.window).map_err(|e| match e {
            ImageError::WrongArch { found: Arch::Aarch64, .. }
                if core == Core::Riscv && chip.bl2_base(Core::Arm).is_some() =>
            {
                PlanError::ArmElfForRiscvCore { path: bin.clone(), board: target.board.clone() }
            }
            e => e.into(),
        })?;
        warnings.extend(check_bl2(&ct, chip, core, &p)?);
        let f = fip::build(&p.bytes, chip.max_bl2() as usize)
            .map_err(|source| PlanError::Build { path: bin.clone(), source })?;
        let info = fip::validate(&f).map_err(|source| PlanError::Build { path: bin.clone(), source })?;
        Image::Fip { bytes: f, info, built_from: Some((bin.clone(), p.bytes.len())) }
    };
    Ok(Plan { chip, core, ids, image, bl2_base: ct.load_address, warnings })
}

/// The storage boot image (`racklet-flash image`): a fip.bin given is
/// checked and kept; a BL2 is checked for the RISC-V core and wrapped.
pub fn image(payload: &Payload, target: &Target) -> Result<Vec<u8>, PlanError> {
    let chip = chip_of(target)?;
    if fip::is_fip(&payload.bytes) {
        // Already a fip.bin: checked, never wrapped again.
        checked_fip(&payload.path, &payload.bytes, chip)?;
        return Ok(payload.bytes.clone());
    }
    let (core, ct) = core_target(target, chip, Some(Core::Riscv))?;
    check_bl2(&ct, chip, core, payload)?;
    fip::build(&payload.bytes, chip.max_bl2() as usize)
        .map_err(|source| PlanError::Build { path: payload.path.clone(), source })
}

/// [`image`] with the later parts of a whole fip.bin: BLCP, DDR parameters,
/// BLCP_2ND, monitor and LOADER_2ND, laid out as the vendor fiptool does.
pub fn image_parts(payload: &Payload, parts: &ImageParts, target: &Target) -> Result<Vec<u8>, PlanError> {
    let given = [&parts.blcp, &parts.ddr_param, &parts.blcp_2nd, &parts.monitor, &parts.loader_2nd];
    if given.iter().all(|p| p.is_none()) {
        return image(payload, target);
    }
    let chip = chip_of(target)?;
    if fip::is_fip(&payload.bytes) {
        return Err(PlanError::PartsWithFip { path: payload.path.clone() });
    }
    let (core, ct) = core_target(target, chip, Some(Core::Riscv))?;
    check_bl2(&ct, chip, core, payload)?;
    let read = |p: &Option<PathBuf>| p.as_ref().map(|p| target.read_stage(p)).transpose();
    let (blcp, ddr, c2, mon, ldr) = (
        read(&parts.blcp)?,
        read(&parts.ddr_param)?,
        read(&parts.blcp_2nd)?,
        read(&parts.monitor)?,
        read(&parts.loader_2nd)?,
    );
    let run =
        |data: &Option<Vec<u8>>, addr: Option<u32>, flag, need, part| -> Result<Option<u32>, PlanError> {
            let Some(d) = data else { return Ok(None) };
            let addr = addr.ok_or(PlanError::NoRunAddress { flag, need })?;
            let (base, size) = chip.dram();
            let end = addr as u64 + fip::pad(d).len() as u64;
            if (addr as u64) < base || end > base + size {
                return Err(PlanError::RunAddress {
                    flag,
                    part,
                    addr,
                    size: d.len(),
                    chip: chip.name(),
                    base,
                    end: base + size,
                });
            }
            Ok(Some(addr))
        };
    let c2_run = run(&c2, parts.blcp_2nd_runaddr, "--blcp-2nd", "--blcp-2nd-runaddr", "BLCP_2ND")?;
    let mon_run = run(&mon, parts.monitor_runaddr, "--monitor", "--monitor-runaddr", "MONITOR")?;
    let p = fip::Parts {
        bl2: &payload.bytes,
        blcp: blcp.as_deref(),
        ddr_param: ddr.as_deref(),
        blcp_2nd: c2.as_deref().zip(c2_run),
        monitor: mon.as_deref().zip(mon_run),
        loader_2nd: ldr.as_deref(),
        compress: parts.compress,
    };
    fip::build_parts(&p, chip.max_bl2() as usize)
        .map_err(|source| PlanError::Build { path: payload.path.clone(), source })
}

/// A fip.bin given as input: checked, used as it is.
fn checked_fip(path: &Path, bytes: &[u8], chip: Chip) -> Result<FipInfo, PlanError> {
    let info = fip::validate(bytes).map_err(|source| PlanError::BadFip { path: path.into(), source })?;
    if info.bl2_size as u64 > chip.max_bl2() {
        return Err(PlanError::Bl2TooLarge {
            path: path.into(),
            size: info.bl2_size,
            max: chip.max_bl2(),
            chip: chip.name(),
        });
    }
    Ok(info)
}

/// Checks a BL2 payload against where the boot core's ROM puts and enters
/// it (`ct`, from [`Chip::bl2_target`]); returns a warning when its first
/// word does not jump to +0x20.
fn check_bl2(ct: &Target, chip: Chip, core: Core, p: &Payload) -> Result<Option<String>, PlanError> {
    let base = ct.load_address;
    let entry = base + BL2_ENTRY_OFFSET;
    if let Some(load) = p.load_address
        && load != base
    {
        return Err(PlanError::LoadAddress { path: p.path.clone(), load, base, chip: chip.name(), core });
    }
    if let Some(e) = p.entry
        && e != base
        && e != entry
    {
        return Err(PlanError::Entry { path: p.path.clone(), entry: e, want: entry });
    }
    racklet_image::check_fit(&p.path, base, p.mem_size, &ct.window)?;
    Ok((!chip::jumps_to_entry(&p.bytes)).then(|| {
        format!(
            "{}: the first word is not a jump to +0x20; the ROM enters BL2 at 0x{entry:x}, so the first 32 bytes must be the BL2 header",
            p.path.display()
        )
    }))
}
