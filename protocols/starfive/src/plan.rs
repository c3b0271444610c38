//! What a boot will send, decided before any port is touched: the payload
//! as a headed image and the optional next stage. Pure: it reads the
//! user's files and checks them against the board.

use std::path::{Path, PathBuf};

use racklet_image::{ImageError, Payload, Source, Target};
use racklet_link::{Classify, FailureClass};
use serde::Serialize;

use crate::fast::{FastInputs, FastPlan};
use crate::header::{self, HEADER_LEN, Header, HeaderError, HeaderOptions};

/// The user's files.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The payload: an ELF, a raw binary or an already headed image
    /// (`u-boot-spl.bin.normal.out`).
    pub payload: Option<PathBuf>,
    /// The next stage U-Boot SPL asks for by YMODEM (`--then-ymodem FILE`),
    /// sent under its file name.
    pub next_stage: Option<PathBuf>,
    /// `--fast`: the ROM gets the fastload loader, the payload goes
    /// through it (`crate::fast`).
    pub fast: Option<FastInputs>,
}

/// What the headed image was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageKind {
    /// An input that was headed already, sent as it is (header and the
    /// payload length it announces; trailing bytes are not sent).
    Headed { version: u32, payload_len: u32, crc32: u32 },
    /// An ELF (flattened) or raw binary, wrapped in spl_tool's header.
    Wrapped { elf: bool, payload_len: usize },
}

impl std::fmt::Display for ImageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageKind::Headed { version, payload_len, crc32 } => write!(
                f,
                "headed image (version 0x{version:08x}, {payload_len}-byte payload, CRC-32 0x{crc32:08x} ok), sent as it is"
            ),
            ImageKind::Wrapped { elf, payload_len } => write!(
                f,
                "{}, {payload_len} bytes, wrapped in the spl_tool header",
                if *elf { "ELF" } else { "raw binary" }
            ),
        }
    }
}

/// The file U-Boot SPL gets by YMODEM.
#[derive(Debug, Clone)]
pub struct NextStage {
    pub path: PathBuf,
    /// The name sent in the YMODEM header block.
    pub name: String,
    pub data: Vec<u8>,
}

/// Everything a boot sends.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The payload file as given.
    pub payload: PathBuf,
    /// `header(0x400) ‖ payload`, what the ROM receives (with `--fast`, the
    /// headed loader).
    pub image: Vec<u8>,
    pub kind: ImageKind,
    /// Sizes other tools would refuse (spl_tool, oreboot): warnings, not errors.
    pub notes: Vec<String>,
    pub next: Option<NextStage>,
    /// With `--fast`: the payload the loader receives.
    pub fast: Option<FastPlan>,
}

/// Why a boot cannot be planned. Every variant is bad input.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No payload was given.
    #[error("{board} needs a payload")]
    NoPayload { board: String },
    /// A file cannot be read or used (it names the file).
    #[error(transparent)]
    Input(#[from] ImageError),
    /// A headed input whose header does not hold.
    #[error("{}: {error}", path.display())]
    Header { path: PathBuf, error: HeaderError },
    /// An ELF linked for another address than the one the ROM runs it at.
    #[error(
        "{}: the ELF loads at 0x{at:x}, but the {soc} ROM always places the payload at 0x{load:x} and jumps there",
        path.display()
    )]
    LoadAddress { path: PathBuf, at: u64, load: u64, soc: String },
    /// A storage image asked for an input that is headed already.
    #[error("{}: already a headed JH7110 image; a second header would not boot", path.display())]
    AlreadyHeaded { path: PathBuf },
    /// A header field given by the user does not fit.
    #[error(transparent)]
    Field(HeaderError),
    /// `--fast` with a next stage for U-Boot SPL: the loader starts the
    /// payload itself and asks for nothing.
    #[error(
        "--fast and --then-ymodem: the fastload loader starts the payload itself and nothing asks for a next stage by YMODEM"
    )]
    FastNextStage,
    /// A rate of 0.
    #[error("--fast-baud {baud}: not a rate")]
    FastBaud { baud: u32 },
}

impl Classify for PlanError {
    fn class(&self) -> FailureClass {
        match self {
            // Ctrl-C while a file was read.
            PlanError::Input(ImageError::Interrupted { .. }) => FailureClass::Interrupted,
            _ => FailureClass::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            PlanError::NoPayload { board } => {
                Some(format!("racklet-flash maskrom {board} payload.bin|payload.elf|payload.img"))
            }
            PlanError::Input(_) => None,
            PlanError::Header { error, .. } | PlanError::Field(error) => error.hint(),
            PlanError::LoadAddress { load, .. } => Some(format!("link the payload for 0x{load:x}")),
            PlanError::FastNextStage => Some(
                "drop --then-ymodem (with --fast the payload goes through the loader), or drop --fast to boot U-Boot SPL and feed it its next stage".into(),
            ),
            PlanError::FastBaud { .. } => Some(format!(
                "leave --fast-baud out for {} baud, the fastest exact rate of JH7110 UART0",
                crate::fast::FAST_BAUD
            )),
            PlanError::AlreadyHeaded { .. } => Some(
                "`racklet-flash info` decodes it; give the bare payload (an ELF or a raw binary) to head it"
                    .into(),
            ),
        }
    }
}

/// The ROM copies the payload to the board's load address and jumps there:
/// an ELF linked elsewhere would run at the wrong address.
pub fn check_load_address(target: &Target, p: &Payload) -> Result<(), PlanError> {
    match p.load_address {
        Some(at) if at != target.load_address => Err(PlanError::LoadAddress {
            path: p.path.clone(),
            at,
            load: target.load_address,
            soc: target.soc.clone(),
        }),
        _ => Ok(()),
    }
}

/// The payload file as the image the ROM receives: a headed input is taken
/// as it is after its CRC and size are checked, anything else is loaded
/// (ELF or raw), checked against the board's SRAM and load address, and
/// wrapped in spl_tool's default header. Every file is bounded by the
/// target's `max_stage` before it is read.
pub(crate) fn headed_image(path: &Path, target: &Target) -> Result<(Vec<u8>, ImageKind), PlanError> {
    let bytes = target.read_stage(path)?;
    headed_image_of(path, bytes, target)
}

/// [`headed_image`] of bytes already read (`path` names them).
pub(crate) fn headed_image_of(
    path: &Path,
    bytes: Vec<u8>,
    target: &Target,
) -> Result<(Vec<u8>, ImageKind), PlanError> {
    let bad_header = |error| PlanError::Header { path: path.to_path_buf(), error };
    if let Some(h) = Header::parse(&bytes) {
        h.verify(&bytes).map_err(bad_header)?;
        header::check_size(u64::from(h.payload_len)).map_err(bad_header)?;
        let end = HEADER_LEN + h.payload_len as usize;
        let kind = ImageKind::Headed { version: h.version, payload_len: h.payload_len, crc32: h.crc32 };
        return Ok((bytes[..end].to_vec(), kind));
    }
    let p = target.payload_from(path, bytes)?;
    check_load_address(target, &p)?;
    let image = header::build_image(&p.bytes, &HeaderOptions::default()).map_err(bad_header)?;
    let kind = ImageKind::Wrapped { elf: matches!(p.source, Source::Elf { .. }), payload_len: p.bytes.len() };
    Ok((image, kind))
}

/// Plans a boot of `target` from the user's files. Every input is read and
/// checked here, before any port is touched.
pub fn plan(inputs: &Inputs, target: &Target) -> Result<Plan, PlanError> {
    let payload =
        inputs.payload.clone().ok_or_else(|| PlanError::NoPayload { board: target.board.clone() })?;
    if let Some(f) = &inputs.fast {
        if inputs.next_stage.is_some() {
            return Err(PlanError::FastNextStage);
        }
        let (image, kind, fast) = crate::fast::plan(&payload, f, target)?;
        let notes = header::size_notes((image.len() - HEADER_LEN) as u64);
        return Ok(Plan { payload, image, kind, notes, next: None, fast: Some(fast) });
    }
    let (image, kind) = headed_image(&payload, target)?;
    let next = match &inputs.next_stage {
        Some(p) => Some(NextStage {
            path: p.clone(),
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "u-boot.itb".into()),
            data: target.read_stage(p)?,
        }),
        None => None,
    };
    let notes = header::size_notes((image.len() - HEADER_LEN) as u64);
    Ok(Plan { payload, image, kind, notes, next, fast: None })
}
