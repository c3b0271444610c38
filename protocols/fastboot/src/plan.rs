//! What a run will send, checked against the board before any device is
//! touched: [`plan`] reads the user's files and returns a [`Plan`] or a
//! typed [`PlanError`] (every one of them bad input, exit 2).

use std::path::{Path, PathBuf};

use racklet_image::{ImageError, Target};
use racklet_link::{Classify, FailureClass, UsbId};

use crate::k1::{self, FsblError};

/// The SoCs whose boot ROM speaks fastboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Soc {
    /// SpacemiT K1 / K1x (sheet §3).
    K1,
    /// T-Head TH1520 (sheet §4).
    Th1520,
}

impl Soc {
    /// The SoC the board table calls `name` ("k1", "th1520").
    pub fn from_name(name: &str) -> Option<Soc> {
        match name {
            "k1" => Some(Soc::K1),
            "th1520" => Some(Soc::Th1520),
            _ => None,
        }
    }

    /// The SoC's name in messages ("K1", "TH1520").
    pub fn title(self) -> &'static str {
        match self {
            Soc::K1 => "K1",
            Soc::Th1520 => "TH1520",
        }
    }

    /// The largest image the ROM's first program can hold, and where that
    /// comes from. TH1520 (review F5, read from revyos/thead-u-boot): the
    /// SPL takes `SPL_MAX_SIZE` 0x2f000 bytes and copies
    /// `CONFIG_SYS_MONITOR_LEN` = 898 KiB of U-Boot proper after it
    /// (`light-c910.h`, `spl.c:348`): 1,112,064 bytes. K1 (inferred, low
    /// confidence): FSBL.bin is loaded at the SRAM base 0xc0800000 and the
    /// SPL's BSS starts at 0xc0837000 (`k1_defconfig`): 0x37000 bytes.
    pub fn max_image(self) -> (u64, &'static str) {
        match self {
            Soc::K1 => (
                0x3_7000,
                "the K1 SPL's BSS starts at 0xc0837000, 0x37000 bytes after the FSBL's load address",
            ),
            Soc::Th1520 => (
                0x2_f000 + 898 * 1024,
                "the vendor SPL is at most 0x2f000 bytes and copies 898 KiB of U-Boot proper after it",
            ),
        }
    }

    /// How long vendor U-Boot may take to come up after the ROM's stage,
    /// unless the user says (`--stage-timeout`). TH1520: 30 s, because in
    /// USB boot mode vendor U-Boot runs `env default -a -f`, `env_save()`
    /// and `run gpt_partition` on the eMMC before it starts fastboot
    /// (revyos/thead-u-boot `light.c:2449-2456`, review F4).
    pub fn next_stage_wait(self) -> std::time::Duration {
        match self {
            Soc::K1 => std::time::Duration::from_secs(10),
            Soc::Th1520 => std::time::Duration::from_secs(30),
        }
    }

    /// The image the ROM takes, by the name users know it by.
    pub fn rom_image(self) -> &'static str {
        match self {
            Soc::K1 => "FSBL.bin",
            Soc::Th1520 => "u-boot-with-spl.bin",
        }
    }
}

/// FDT magic, big-endian: u-boot.itb is a FIT, which the K1 SPL loads and
/// checks (`spl_fastboot.c` tests `FDT_MAGIC` after `continue`; sheet §3.3).
pub const FIT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// The user's inputs that matter to a fastboot ROM.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The image the ROM takes: the K1's FSBL.bin, the TH1520's
    /// u-boot-with-spl.bin (ELF or raw).
    pub image: Option<PathBuf>,
    /// K1 only: the images after the ROM's, in order: the FSBL's
    /// (u-boot.itb or u-boot-opensbi.itb, a FIT), then at most one that
    /// vendor U-Boot stages and runs (uImage.itb), as the vendor RAM-boot
    /// script `fastboot_load.sh` does.
    pub then: Vec<PathBuf>,
    /// A DRAM-init blob. These ROMs take none (the FSBL/SPL trains DRAM), so
    /// one given is refused rather than ignored.
    pub dram: Option<PathBuf>,
    /// Whether the run waits for the board's next stage after the ROM's
    /// (`false`: the run ends once the ROM took the start).
    pub await_next: bool,
    /// How long each next stage may take to come up; `None`: the SoC's
    /// own ([`Soc::next_stage_wait`]).
    pub stage_timeout: Option<std::time::Duration>,
    /// Send an image larger than the SoC's first program can hold.
    pub force: bool,
}

/// One file to send, read and checked.
#[derive(Debug, Clone)]
pub struct Image {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl Image {
    /// The file name, for messages and the report.
    pub fn name(&self) -> String {
        file_name(&self.path)
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

/// Everything [`boot`](crate::boot::boot) sends, and where it looks for the board.
#[derive(Debug, Clone)]
pub struct Plan {
    pub soc: Soc,
    /// What the ROM takes (K1: FSBL.bin; TH1520: u-boot-with-spl.bin).
    pub first: Image,
    /// K1: the images after the FSBL: the FSBL's (u-boot.itb), then
    /// perhaps vendor U-Boot's (uImage.itb).
    pub then: Vec<Image>,
    /// Whether to wait for the board's next stage after the ROM's.
    pub await_next: bool,
    /// How long each next stage may take to come up.
    pub next_wait: std::time::Duration,
    /// The boot ROM's USB ids (the board's `rom` stage).
    pub rom_ids: Vec<UsbId>,
    /// The next stage's USB ids: K1 FSBL and vendor U-Boot (the `fsbl`
    /// stage, or the ROM's own: all three K1 stages enumerate as 361c:1001,
    /// sheet §3.1); TH1520 vendor U-Boot (the `uboot` stage). Empty when
    /// the next stage is not awaited.
    pub next_ids: Vec<UsbId>,
}

/// Why the inputs cannot be sent to this board. Every variant names the
/// file, flag or board-table field; [`Classify::hint`] says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The board's SoC is not one this crate knows.
    #[error("board '{board}': the fastboot protocol knows the SoCs k1 and th1520, not '{soc}'")]
    UnknownSoc { board: String, soc: String },
    /// The board table gives no USB ids for a stage the run needs.
    #[error("board '{board}': the board table has no USB ids for its '{stage}' stage")]
    NoUsbIds { board: String, stage: &'static str },
    /// No image was given.
    #[error("maskrom {board}: give the {} to load", soc.rom_image())]
    NoImage { board: String, soc: Soc },
    /// A DRAM blob was given.
    #[error("{}: --dram is for Rockchip ROMs; fastboot ROMs take no DRAM blob (the FSBL/SPL trains DRAM)", path.display())]
    DramNotTaken { path: PathBuf },
    /// A file could not be read, or does not fit the board's load window.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The K1 image is not an FSBL.bin.
    #[error("{}: {reason}", path.display())]
    NotFsbl { path: PathBuf, reason: FsblError },
    /// `--then` is not a FIT image.
    #[error(
        "{}: not a FIT image (no d00dfeed magic); the K1 FSBL loads u-boot.itb, a FIT with OpenSBI and U-Boot",
        path.display()
    )]
    NotFit { path: PathBuf },
    /// An image larger than one fastboot download can carry (a u32 size).
    #[error("{}: {len} bytes is larger than a fastboot download (4 GiB)", path.display())]
    TooLargeForDownload { path: PathBuf, len: u64 },
    /// More `--then` images than the K1 runs from USB.
    #[error(
        "{count} --then images: the K1 runs at most two after the FSBL (u-boot.itb for the FSBL, then one image vendor U-Boot stages and runs)"
    )]
    TooManyThen { count: usize },
    /// An image larger than the SoC's first program can hold.
    #[error("{}: {len} bytes is larger than the {} boot ROM's first stage can hold ({max} bytes: {why})", path.display(), soc.title())]
    TooLargeForLoader { path: PathBuf, len: u64, max: u64, soc: Soc, why: &'static str },
    /// `--then` given, but the run would not wait for the FSBL to come back.
    #[error("--then needs the FSBL to come back, and --stage-timeout 0 skips waiting for it")]
    ThenWithoutWaiting,
    /// `--then` on a TH1520 board.
    #[error(
        "--then is for K1 boards; on the TH1520 ({board}) the ROM image (u-boot-with-spl.bin) holds SPL and U-Boot together"
    )]
    ThenOnTh1520 { board: String },
    /// `image`: the input already is an FSBL.bin.
    #[error("{}: is already a K1 FSBL.bin", path.display())]
    AlreadyFsbl { path: PathBuf },
    /// `image`: an ELF linked somewhere the K1 ROM does not run it.
    #[error(
        "{}: linked at 0x{at:x}, but the K1 ROM runs the FSBL's code at 0x{code_at:x} (after the 4 KiB header at 0x{:x})",
        path.display(),
        k1::LOAD_ADDRESS
    )]
    LinkedElsewhere { path: PathBuf, at: u64, code_at: u64 },
    /// `image` for a TH1520 board: its ROM takes the file as it is.
    #[error(
        "{board}: the TH1520 ROM loads u-boot-with-spl.bin as it is (`racklet-flash maskrom {board} FILE`); there is no header to add"
    )]
    NoHeaderToAdd { board: String },
}

impl Classify for PlanError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            PlanError::UnknownSoc { .. } => "set the board's soc to k1 or th1520 in the board table".into(),
            PlanError::NoUsbIds { stage, .. } => format!(
                "add {{ stage = \"{stage}\", vid = 0x…, pid = 0x… }} to the board's usb list in the board table"
            ),
            PlanError::NoImage { board, soc: Soc::K1 } => {
                format!(
                    "build it from u-boot-spl.bin with `racklet-flash image {board} u-boot-spl.bin -o FSBL.bin`"
                )
            }
            PlanError::NoImage { soc: Soc::Th1520, .. } => {
                "vendor U-Boot's build writes u-boot-with-spl.bin (revyos/thead-u-boot)".into()
            }
            PlanError::DramNotTaken { .. } => "leave out --dram".into(),
            PlanError::Image(_) => return None,
            PlanError::NotFsbl { reason, .. } => reason.hint().into(),
            PlanError::NotFit { .. } => {
                "give the u-boot.itb (or u-boot-opensbi.itb) of the vendor U-Boot build".into()
            }
            PlanError::TooLargeForDownload { .. } => return None,
            PlanError::TooManyThen { .. } => {
                "give --then u-boot.itb and, if you want vendor U-Boot to run it, --then uImage.itb".into()
            }
            PlanError::TooLargeForLoader { .. } => {
                "check that this is the image built for the board; --force sends it anyway".into()
            }
            PlanError::ThenWithoutWaiting => "leave out --stage-timeout 0, or --then".into(),
            PlanError::ThenOnTh1520 { .. } => "leave out --then".into(),
            PlanError::AlreadyFsbl { .. } => "send it with `racklet-flash maskrom` as it is".into(),
            PlanError::LinkedElsewhere { code_at, .. } => format!("link the SPL at 0x{code_at:x}"),
            PlanError::NoHeaderToAdd { .. } => return None,
        })
    }
}

/// The board's SoC, as this crate knows it.
pub fn soc_of(target: &Target) -> Result<Soc, PlanError> {
    Soc::from_name(&target.soc)
        .ok_or_else(|| PlanError::UnknownSoc { board: target.board.clone(), soc: target.soc.clone() })
}

/// The USB ids of the board's `stage`.
fn ids(target: &Target, stage: &str) -> Vec<UsbId> {
    target.usb_ids(Some(stage)).into_iter().map(|(v, p)| UsbId::new(v, p)).collect()
}

fn required_ids(target: &Target, stage: &'static str) -> Result<Vec<UsbId>, PlanError> {
    let v = ids(target, stage);
    if v.is_empty() {
        return Err(PlanError::NoUsbIds { board: target.board.clone(), stage });
    }
    Ok(v)
}

fn fits_a_download(path: &Path, bytes: &[u8]) -> Result<(), PlanError> {
    if u32::try_from(bytes.len()).is_err() {
        return Err(PlanError::TooLargeForDownload { path: path.into(), len: bytes.len() as u64 });
    }
    Ok(())
}

fn fits_the_loader(soc: Soc, path: &Path, bytes: &[u8], force: bool) -> Result<(), PlanError> {
    let (max, why) = soc.max_image();
    let len = bytes.len() as u64;
    if len > max && !force {
        return Err(PlanError::TooLargeForLoader { path: path.into(), len, max, soc, why });
    }
    Ok(())
}

/// Reads and checks every input against the board: files no larger than
/// the board's largest stage (judged before reading), the right format for
/// the SoC's ROM (an FSBL.bin that passes its integrity checks for the K1,
/// a FIT for its `--then`), the fit in the board's load window, flags that
/// do not apply. Nothing is sent.
pub fn plan(inputs: &Inputs, target: &Target) -> Result<Plan, PlanError> {
    let soc = soc_of(target)?;
    let path =
        inputs.image.as_ref().ok_or_else(|| PlanError::NoImage { board: target.board.clone(), soc })?;
    if let Some(d) = &inputs.dram {
        return Err(PlanError::DramNotTaken { path: d.clone() });
    }
    let rom_ids = required_ids(target, "rom")?;
    match soc {
        Soc::K1 => {
            let bytes = target.read_stage(path)?;
            k1::check_fsbl(&bytes).map_err(|reason| PlanError::NotFsbl { path: path.clone(), reason })?;
            racklet_image::check_fit(path, target.load_address, bytes.len() as u64, &target.window)?;
            fits_the_loader(soc, path, &bytes, inputs.force)?;
            if inputs.then.len() > 2 {
                return Err(PlanError::TooManyThen { count: inputs.then.len() });
            }
            if !inputs.then.is_empty() && !inputs.await_next {
                return Err(PlanError::ThenWithoutWaiting);
            }
            let mut then = Vec::new();
            for p in &inputs.then {
                let b = target.read_stage(p)?;
                if b.len() < 4 || b[..4] != FIT_MAGIC {
                    return Err(PlanError::NotFit { path: p.clone() });
                }
                fits_a_download(p, &b)?;
                then.push(Image { path: p.clone(), bytes: b });
            }
            let next_ids = match inputs.await_next {
                false => Vec::new(),
                true => {
                    Some(ids(target, "fsbl")).filter(|v| !v.is_empty()).unwrap_or_else(|| rom_ids.clone())
                }
            };
            Ok(Plan {
                soc,
                first: Image { path: path.clone(), bytes },
                then,
                await_next: inputs.await_next,
                next_wait: inputs.stage_timeout.unwrap_or(soc.next_stage_wait()),
                rom_ids,
                next_ids,
            })
        }
        Soc::Th1520 => {
            if !inputs.then.is_empty() {
                return Err(PlanError::ThenOnTh1520 { board: target.board.clone() });
            }
            let p = target.load_payload(path)?;
            fits_a_download(path, &p.bytes)?;
            fits_the_loader(soc, path, &p.bytes, inputs.force)?;
            let next_ids = if inputs.await_next { required_ids(target, "uboot")? } else { Vec::new() };
            Ok(Plan {
                soc,
                first: Image { path: path.clone(), bytes: p.bytes },
                then: Vec::new(),
                await_next: inputs.await_next,
                next_wait: inputs.stage_timeout.unwrap_or(soc.next_stage_wait()),
                rom_ids,
                next_ids,
            })
        }
    }
}
