//! Storage through the kburn loader: `write`, `read`, `erase`, `reset`.
//!
//! The K230's ROM only loads and runs. k230-flash's flow (`api.py`
//! `_flash_firmware`): find 29f1:0230; when GET_CPU_INFO says the ROM,
//! upload the loader (default 0x80360000) and start it, then wait up to 15 s
//! for a device at the same port that answers as the loader (the upload is
//! tried again, up to 3 times, when the ROM comes back instead); when it
//! says the loader, use it as it is. Then the kburn session ([`crate::kburn`]).
//!
//! [`plan`] reads and checks everything that can be checked without the
//! board (the loader fits the download window, the medium is known, a
//! `.kdimg` is intact); what needs the medium's size is checked against
//! DEV_GET_INFO before the first byte is written.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use racklet_image::disk::{Content, DiskError, DiskImage, Extent, bmap_beside};
use racklet_image::{ImageError, Target};
use racklet_link::{Classify, Connector, FailureClass, ProgressSink, UsbId, UsbInfo, UsbLink};

use crate::boot::{Back, Options, follow};
use crate::kburn::{KburnError, Medium, MediumInfo, Session};
use crate::kdimg::{self, KdimgError, PartReader};
use crate::plan::{Load, Stage};
use crate::rom::{self, DeviceStage};
use crate::{CanaanError, DEFAULT_LOAD, PID, VID, in_rom_sram, in_sram};

/// How often the loader upload is tried when the ROM comes back instead
/// (k230-flash `LOADER_BOOT_ATTEMPTS`).
pub const LOADER_ATTEMPTS: usize = 3;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--loader FILE`: uploaded when the board is in its ROM.
    pub loader: Option<PathBuf>,
    /// `--loader-address` (default 0x80360000).
    pub loader_address: Option<u64>,
    /// `--medium`.
    pub medium: Option<String>,
}

/// The verb.
#[derive(Debug, Clone)]
pub enum Verb {
    /// `write IMAGE [--at OFFSET]`: a raw image at `at`, or a `.kdimg`'s
    /// parts at their own offsets.
    Write { image: PathBuf, at: Option<u64>, verify: bool, reboot: bool },
    /// `read --at OFFSET --size N`.
    Read { at: u64, size: u64 },
    /// `erase --at OFFSET --size N`, or the whole medium.
    Erase { at: u64, size: Option<u64> },
    /// `reset`: REBOOT.
    Reset,
}

/// One piece of a write: what goes where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The file, or the part's name.
    pub name: String,
    pub offset: u64,
    /// Bytes of the source (the file, or the part with its 0xFF padding).
    pub len: u64,
    pub source: PieceSource,
}

/// Where a piece's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceSource {
    /// A raw file; padded with zeros to the medium's block.
    Raw(PathBuf),
    /// A `.kdimg` part: its content and 0xFF (and, to the medium's block,
    /// more 0xFF).
    Part(PathBuf, kdimg::Part),
    /// A compressed, Android sparse or bmap'd image (`racklet_image::disk`):
    /// expanded on the way, written run by run; what it leaves unmapped
    /// (sparse DONT_CARE, outside the bmap) is left as it is on the medium.
    Disk { path: PathBuf, bmap: Option<PathBuf> },
}

/// A checked plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The loader stage, when one was given.
    pub loader: Option<Stage>,
    pub medium: Medium,
    pub action: Action,
}

/// What to do once the loader answers.
#[derive(Debug, Clone)]
pub enum Action {
    Write { pieces: Vec<Piece>, verify: bool, reboot: bool },
    Read { at: u64, size: u64 },
    Erase { at: u64, size: Option<u64> },
    Reset,
}

/// Why the inputs cannot be used: bad input, before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum StoragePlanError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("no --medium given for {board}")]
    NoMedium { board: String },
    #[error("--medium {given}: not a medium of the K230's kburn loader")]
    UnknownMedium { given: String },
    #[error("{}: {len} bytes at 0x{address:x} do not lie in the download window 0x80300000..0x80400000", path.display())]
    LoaderOutside { path: PathBuf, address: u64, len: u64 },
    #[error("{}: the file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Kdimg {
        path: PathBuf,
        #[source]
        source: KdimgError,
    },
    #[error("{}: a .kdimg carries its own offsets; --at {at:#x} does not apply", path.display())]
    AtWithKdimg { path: PathBuf, at: u64 },
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for StoragePlanError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        match self {
            StoragePlanError::NoMedium { .. } | StoragePlanError::UnknownMedium { .. } => {
                Some("give --medium emmc, sd, spi-nand, spi-nor or otp".into())
            }
            StoragePlanError::Disk(e) => e.hint(),
            StoragePlanError::LoaderOutside { .. } => {
                Some("the vendor loaders go to 0x80360000 (the default --loader-address)".into())
            }
            _ => None,
        }
    }
}

/// Checks the inputs of `verb` for `target`. Reads the loader (bounded),
/// and checks a `.kdimg` whole (CRCs, every part's SHA-256).
pub fn plan(inputs: &Inputs, verb: &Verb, target: &Target) -> Result<Plan, StoragePlanError> {
    let medium = match &inputs.medium {
        // REBOOT needs no medium, but the session probes one first (as
        // k230-flash's does): the SD card's, which every board has.
        None if matches!(verb, Verb::Reset) => Medium::Sd,
        None => return Err(StoragePlanError::NoMedium { board: target.board.clone() }),
        Some(m) => {
            Medium::from_name(m).ok_or_else(|| StoragePlanError::UnknownMedium { given: m.clone() })?
        }
    };
    let loader = match &inputs.loader {
        None => None,
        Some(path) => {
            let bytes = target.read_stage(path)?;
            if bytes.is_empty() {
                return Err(StoragePlanError::Empty { path: path.clone() });
            }
            let address = inputs.loader_address.unwrap_or(DEFAULT_LOAD as u64);
            let len = bytes.len() as u64;
            if !in_sram(address, len) || in_rom_sram(address, len) || address > u32::MAX as u64 {
                return Err(StoragePlanError::LoaderOutside { path: path.clone(), address, len });
            }
            let load = Load { name: path.display().to_string(), address: address as u32, bytes, entry: None };
            Some(Stage { loads: vec![load], entry: address as u32, returns_to_rom: false })
        }
    };
    let action = match verb {
        Verb::Write { image, at, verify, reboot } => {
            let pieces = pieces(image, *at)?;
            Action::Write { pieces, verify: *verify, reboot: *reboot }
        }
        Verb::Read { at, size } => Action::Read { at: *at, size: *size },
        Verb::Erase { at, size } => Action::Erase { at: *at, size: *size },
        Verb::Reset => Action::Reset,
    };
    Ok(Plan { loader, medium, action })
}

fn pieces(image: &Path, at: Option<u64>) -> Result<Vec<Piece>, StoragePlanError> {
    let io = |source| StoragePlanError::Io { path: image.to_path_buf(), source };
    let mut f = File::open(image).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic).map_err(io)?;
    if n >= 4 && kdimg::is_kdimg(&magic) {
        if let Some(at) = at {
            return Err(StoragePlanError::AtWithKdimg { path: image.to_path_buf(), at });
        }
        let k = kdimg::open(image)
            .map_err(|source| StoragePlanError::Kdimg { path: image.to_path_buf(), source })?;
        return Ok(k
            .parts
            .into_iter()
            .map(|p| Piece {
                name: p.name.clone(),
                offset: p.offset,
                len: p.write_size(),
                source: PieceSource::Part(image.to_path_buf(), p),
            })
            .collect());
    }
    if len == 0 {
        return Err(StoragePlanError::Empty { path: image.to_path_buf() });
    }
    // Compressed (gzip, xz, zstd), Android sparse, or raw with a .bmap
    // beside it: told by their magic (racklet_image::disk), expanded on the
    // way. What they expand to is known up front except for a gzip or xz
    // stream of a raw image; that one is checked against the medium as it
    // is written.
    let bmap = bmap_beside(image);
    let disk = DiskImage::open(image, bmap.as_deref())?;
    if disk.compression.is_some() || disk.content == Content::Sparse || disk.bmap.is_some() {
        return Ok(vec![Piece {
            name: image.display().to_string(),
            offset: at.unwrap_or(0),
            len: disk.size.unwrap_or(0),
            source: PieceSource::Disk { path: image.to_path_buf(), bmap: disk.bmap },
        }]);
    }
    Ok(vec![Piece {
        name: image.display().to_string(),
        offset: at.unwrap_or(0),
        len,
        source: PieceSource::Raw(image.to_path_buf()),
    }])
}

/// What went wrong with the board during a storage verb.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Boot(#[from] CanaanError),
    #[error(transparent)]
    Kburn(#[from] KburnError),
    #[error("{board} is in its boot ROM and no --loader was given to bring it to the kburn loader")]
    NeedLoader { board: String },
    #[error("the loader did not start: the boot ROM came back after {attempts} upload(s)")]
    LoaderDidNotStart { attempts: usize },
    #[error("the {medium} reports its information as not valid (DEV_GET_INFO)")]
    InfoInvalid { medium: &'static str },
    #[error(
        "{name}: {len} bytes at 0x{offset:x} run past the end of the {medium} ({capacity} bytes); nothing was written"
    )]
    TooLarge { name: String, offset: u64, len: u64, medium: &'static str, capacity: u64 },
    #[error("{name}: offset 0x{offset:x} is not on a {blk}-byte block of the {medium}; nothing was written")]
    Unaligned { name: String, offset: u64, blk: u64, medium: &'static str },
    /// A compressed image whose size was not known up front ran past the
    /// end of the medium while it was written.
    #[error(
        "{name}: expands past the end of the {medium} ({capacity} bytes): the run at 0x{offset:x} was not written; {written} bytes before it were"
    )]
    Overrun { name: String, offset: u64, capacity: u64, written: u64, medium: &'static str },
    /// A run of a sparse or bmap'd image that does not start on a block.
    #[error(
        "{name}: the data at 0x{offset:x} is not on a {blk}-byte block of the {medium}; {written} bytes before it were written"
    )]
    RunUnaligned { name: String, offset: u64, blk: u64, written: u64, medium: &'static str },
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(
        "{name}: read back, byte 0x{at:x} of the {medium} differs (written 0x{wrote:02x}, read 0x{read:02x})"
    )]
    VerifyMismatch { name: String, at: u64, wrote: u8, read: u8, medium: &'static str },
    #[error("{name}: written (WRITE DONE), but reading it back failed: {source}")]
    Unverified {
        name: String,
        #[source]
        source: KburnError,
    },
    #[error("REBOOT sent, but the loader is still on the bus at USB port {port}")]
    NoReboot { port: String },
    #[error("opening {what}: {source}")]
    Open {
        what: String,
        #[source]
        source: racklet_link::LinkError,
    },
}

impl Classify for StorageError {
    fn class(&self) -> FailureClass {
        match self {
            StorageError::Boot(e) => e.class(),
            StorageError::Kburn(e) => e.class(),
            StorageError::Unverified { source, .. } => source.class(),
            StorageError::Open { source, .. } => source.class(),
            StorageError::NeedLoader { .. }
            | StorageError::TooLarge { .. }
            | StorageError::Unaligned { .. }
            | StorageError::Overrun { .. }
            | StorageError::RunUnaligned { .. }
            | StorageError::Disk(_) => FailureClass::BadInput,
            StorageError::LoaderDidNotStart { .. } | StorageError::InfoInvalid { .. } => {
                FailureClass::Rejected
            }
            StorageError::VerifyMismatch { .. } => FailureClass::Rejected,
            StorageError::NoReboot { .. } => FailureClass::Timeout,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StorageError::Boot(e) => e.hint(),
            StorageError::Kburn(e) => e.hint(),
            StorageError::NeedLoader { .. } => Some(
                "give --loader loader_mmc.bin (eMMC, SD), loader_spi_nand.bin or loader_spi_nor.bin: the vendor's, shipped in k230-flash".into(),
            ),
            StorageError::Unverified { .. } => {
                Some("the vendor loader cannot read SPI NOR or NAND back; pass --no-verify for those".into())
            }
            StorageError::Open { source, .. } => source.hint(),
            StorageError::Disk(e) => e.hint(),
            StorageError::Overrun { .. } => {
                Some("the medium holds part of the image now: write one that fits, or erase it".into())
            }
            _ => None,
        }
    }
}

/// One piece as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub name: String,
    pub offset: u64,
    /// Bytes sent (with padding).
    pub bytes: u64,
    /// Read back and compared.
    pub verified: bool,
    pub ms: u64,
}

/// A finished storage verb.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub port: String,
    /// How the loader came to be there.
    pub loader: String,
    pub medium: Medium,
    pub info: MediumInfo,
    pub written: Vec<Written>,
    /// `read`: the bytes read; `erase`: the bytes erased.
    pub read: Option<u64>,
    pub erased: Option<u64>,
    /// REBOOT sent and the loader left the bus.
    pub rebooted: bool,
    /// Notes (a verification that cannot be done, ...).
    pub notes: Vec<String>,
}

impl Report {
    /// The facts, in order.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f = vec![("port".to_string(), self.port.clone()), ("loader".into(), self.loader.clone())];
        f.push((
            "medium".into(),
            format!(
                "{}: {} bytes, {}-byte blocks, {}-byte erase",
                self.medium.name(),
                self.info.capacity,
                self.info.blk_size,
                self.info.erase_size
            ),
        ));
        for w in &self.written {
            f.push((
                format!("wrote {}", w.name),
                format!(
                    "{} bytes at 0x{:x}, WRITE DONE{}",
                    w.bytes,
                    w.offset,
                    if w.verified { ", read back and compared" } else { "" }
                ),
            ));
        }
        if let Some(n) = self.read {
            f.push(("read".into(), format!("{n} bytes")));
        }
        if let Some(n) = self.erased {
            f.push(("erased".into(), format!("{n} bytes")));
        }
        if self.rebooted {
            f.push(("reboot".into(), "sent; the loader left the bus".into()));
        }
        for n in &self.notes {
            f.push(("note".into(), n.clone()));
        }
        f
    }
}

fn ids(target: &Target) -> Vec<UsbId> {
    let ids: Vec<UsbId> = target.usb_ids(None).into_iter().map(|(v, p)| UsbId::new(v, p)).collect();
    if ids.is_empty() { vec![UsbId::new(VID, PID)] } else { ids }
}

fn open(conn: &mut Connector, info: &UsbInfo) -> Result<Box<dyn UsbLink>, StorageError> {
    conn.open_usb(info).map_err(|source| StorageError::Open {
        what: format!("{} at USB port {}", info.id(), info.port_path),
        source,
    })
}

/// Brings the board to the kburn loader: uses it when it answers, uploads
/// the loader when the ROM does. Returns the loader's link and identity.
fn reach_loader(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<(Box<dyn UsbLink>, UsbInfo, String), StorageError> {
    let ids = ids(target);
    let ropts = &opts.rom;
    let mut info = conn.find_usb(&ids, "K230 boot ROM or kburn loader").map_err(CanaanError::Find)?;
    let mut link = open(conn, &info)?;
    match rom::identify_patiently(&mut *link, ropts, conn.progress)? {
        DeviceStage::Loader(_) => {
            return Ok((link, info, "already running (GET_CPU_INFO \"Uboot Stage for K230\")".into()));
        }
        DeviceStage::BootRom => {}
        DeviceStage::Unknown(reply) if !ropts.accept_unknown_cpu => {
            return Err(CanaanError::UnknownDevice { reply }.into());
        }
        DeviceStage::Unknown(_) => {}
    }
    let Some(stage) = &plan.loader else {
        return Err(StorageError::NeedLoader { board: target.board.clone() });
    };
    for attempt in 1..=LOADER_ATTEMPTS {
        rom::run_stage(&mut *link, stage, ropts, conn.progress)?;
        let what = "the kburn loader";
        let back = follow(conn, &info, &ids, what, link, stage.entry, ropts, opts.next_stage_wait)?;
        let (l, i, found) = match back {
            Back::NewAddress(next) => {
                let mut l = open(conn, &next)?;
                let s = rom::identify_patiently(&mut *l, ropts, conn.progress)?;
                (l, next, s)
            }
            Back::SameAddress(l, s) => (l, info.clone(), s),
        };
        (link, info) = (l, i);
        match found {
            DeviceStage::Loader(_) => {
                let how = format!(
                    "{} uploaded to 0x{:08x} and started{}",
                    stage.loads[0].name,
                    stage.entry,
                    if attempt > 1 { format!(" (attempt {attempt})") } else { String::new() }
                );
                return Ok((link, info, how));
            }
            DeviceStage::BootRom if attempt < LOADER_ATTEMPTS => {
                conn.progress.say(format!(
                    "the boot ROM came back instead of the loader; uploading it again ({}/{LOADER_ATTEMPTS})",
                    attempt + 1
                ));
            }
            DeviceStage::BootRom => return Err(StorageError::LoaderDidNotStart { attempts: attempt }),
            other => {
                return Err(CanaanError::NotBackInRom { stage: 1, found: other.describe() }.into());
            }
        }
    }
    Err(StorageError::LoaderDidNotStart { attempts: LOADER_ATTEMPTS })
}

/// Runs `plan` on the board; `out` takes the bytes of a `read`.
pub fn run(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<Report, StorageError> {
    let (mut link, info, how) = reach_loader(conn, plan, target, opts)?;
    let port = info.port_path.clone();
    let medium = plan.medium;
    let mut s = Session::new(&mut *link, &info)?;
    s.probe(medium)?;
    let mi = s.info()?;
    if !mi.valid {
        return Err(StorageError::InfoInvalid { medium: medium.name() });
    }
    let mut report = Report {
        port: port.clone(),
        loader: how,
        medium,
        info: mi,
        written: Vec::new(),
        read: None,
        erased: None,
        rebooted: false,
        notes: Vec::new(),
    };
    let blk = mi.blk_size.max(1);
    let mut reboot = false;
    match &plan.action {
        Action::Write { pieces, verify, reboot: r } => {
            reboot = *r;
            // Every piece is checked against the medium before the first
            // byte is written.
            let sized: Vec<(&Piece, u64)> = pieces.iter().map(|p| (p, p.len.div_ceil(blk) * blk)).collect();
            for (p, len) in &sized {
                if !p.offset.is_multiple_of(blk) {
                    return Err(StorageError::Unaligned {
                        name: p.name.clone(),
                        offset: p.offset,
                        blk,
                        medium: medium.name(),
                    });
                }
                if p.offset.checked_add(*len).is_none_or(|end| end > mi.capacity) {
                    return Err(StorageError::TooLarge {
                        name: p.name.clone(),
                        offset: p.offset,
                        len: *len,
                        medium: medium.name(),
                        capacity: mi.capacity,
                    });
                }
            }
            for (p, len) in sized {
                if let PieceSource::Disk { path, bmap } = &p.source {
                    let started = Instant::now();
                    let ctx = RunCtx { name: &p.name, base: p.offset, info: mi, medium, verify: *verify };
                    let bytes = write_disk(&mut s, &ctx, path, bmap.as_deref(), conn)?;
                    report.written.push(Written {
                        name: p.name.clone(),
                        offset: p.offset,
                        bytes,
                        verified: *verify,
                        ms: started.elapsed().as_millis() as u64,
                    });
                    continue;
                }
                let started = Instant::now();
                let label = format!("{} at 0x{:x}", p.name, p.offset);
                conn.progress.stage(&label, Some(len));
                let mut src = piece_reader(p, len).map_err(KburnError::Source)?;
                s.write(p.offset, len, &mut *src, conn.progress)?;
                conn.progress.done(&label);
                let mut verified = false;
                if *verify && medium == Medium::Otp {
                    report.notes.push(format!(
                        "{}: not read back: the vendor loader's OTP read is a stub (kburn_otp.c)",
                        p.name
                    ));
                } else if *verify {
                    verify_piece(&mut s, p, len, medium, conn)?;
                    verified = true;
                }
                report.written.push(Written {
                    name: p.name.clone(),
                    offset: p.offset,
                    bytes: len,
                    verified,
                    ms: started.elapsed().as_millis() as u64,
                });
            }
        }
        Action::Read { at, size } => {
            if at.checked_add(*size).is_none_or(|e| e > mi.capacity) {
                return Err(StorageError::TooLarge {
                    name: "--at/--size".into(),
                    offset: *at,
                    len: *size,
                    medium: medium.name(),
                    capacity: mi.capacity,
                });
            }
            let label = format!("{} bytes at 0x{at:x} of the {}", size, medium.name());
            conn.progress.stage(&label, Some(*size));
            s.read(*at, *size, out, conn.progress)?;
            conn.progress.done(&label);
            report.read = Some(*size);
        }
        Action::Erase { at, size } => {
            let size = size.unwrap_or(mi.capacity - at.min(&mi.capacity));
            if at.checked_add(size).is_none_or(|e| e > mi.capacity) {
                return Err(StorageError::TooLarge {
                    name: "--at/--size".into(),
                    offset: *at,
                    len: size,
                    medium: medium.name(),
                    capacity: mi.capacity,
                });
            }
            report.erased = Some(s.erase(*at, size, mi.erase_size)?);
        }
        Action::Reset => reboot = true,
    }
    if reboot {
        s.reboot()?;
        confirm_gone(conn, &info, link)?;
        report.rebooted = true;
    }
    Ok(report)
}

/// How much one WRITE_LBA of a disk image carries at most. WRITE_LBA
/// needs its size first, so the image's extents are gathered into runs of
/// contiguous bytes in memory (at most this much) and written run by run.
const RUN: usize = 16 << 20;

/// Where the runs of one disk image go.
struct RunCtx<'a> {
    name: &'a str,
    base: u64,
    info: MediumInfo,
    medium: Medium,
    verify: bool,
}

/// A progress sink for the read-back of a run: it stops when the user
/// asked to, and counts nothing (the stage counts what was written).
struct Quiet<'a>(&'a mut dyn ProgressSink);

impl ProgressSink for Quiet<'_> {
    fn event(&mut self, _: racklet_link::ProgressEvent) {}
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

/// Writes a compressed, sparse or bmap'd image: its data and fills in runs
/// at their offsets, each padded with zeros to the medium's block and (with
/// `verify`) read back and compared at once; unmapped ranges are skipped.
/// Returns the bytes written.
fn write_disk(
    s: &mut Session,
    c: &RunCtx,
    path: &Path,
    bmap: Option<&Path>,
    conn: &mut Connector,
) -> Result<u64, StorageError> {
    let disk = DiskImage::open(path, bmap)?;
    let label = format!("{} at 0x{:x}", c.name, c.base);
    conn.progress.stage(&label, disk.mapped.or(disk.size));
    let blk = c.info.blk_size.max(1);
    let mut run: Vec<u8> = Vec::new();
    let (mut start, mut written) = (0u64, 0u64);
    let mut flush = |s: &mut Session, run: &mut Vec<u8>, start: u64, conn: &mut Connector| {
        if run.is_empty() {
            return Ok::<(), StorageError>(());
        }
        let at = c.base + start;
        if !at.is_multiple_of(blk) {
            let (name, medium) = (c.name.to_string(), c.medium.name());
            return Err(StorageError::RunUnaligned { name, offset: at, blk, written, medium });
        }
        run.resize((run.len() as u64).div_ceil(blk) as usize * blk as usize, 0);
        let len = run.len() as u64;
        if at.checked_add(len).is_none_or(|end| end > c.info.capacity) {
            let (name, medium) = (c.name.to_string(), c.medium.name());
            return Err(StorageError::Overrun {
                name,
                offset: at,
                capacity: c.info.capacity,
                written,
                medium,
            });
        }
        s.write(at, len, &mut &run[..], conn.progress)?;
        if c.verify {
            let mut pos = 0usize;
            let mut mismatch = None;
            let mut cmp = |got: &[u8]| -> std::io::Result<()> {
                let want = &run[pos..pos + got.len()];
                if mismatch.is_none()
                    && let Some(i) = want.iter().zip(got).position(|(a, b)| a != b)
                {
                    mismatch = Some((at + (pos + i) as u64, want[i], got[i]));
                }
                pos += got.len();
                Ok(())
            };
            s.read(at, len, &mut cmp, &mut Quiet(&mut *conn.progress))
                .map_err(|source| StorageError::Unverified { name: c.name.to_string(), source })?;
            if let Some((at, wrote, read)) = mismatch {
                let (name, medium) = (c.name.to_string(), c.medium.name());
                return Err(StorageError::VerifyMismatch { name, at, wrote, read, medium });
            }
        }
        written += len;
        run.clear();
        Ok(())
    };
    for e in disk.extents()? {
        let e = e?;
        let offset = match &e {
            Extent::Skip { .. } => {
                flush(s, &mut run, start, conn)?;
                continue;
            }
            Extent::Data { offset, .. } | Extent::Fill { offset, .. } => *offset,
        };
        if !run.is_empty() && offset != start + run.len() as u64 {
            flush(s, &mut run, start, conn)?;
        }
        if run.is_empty() {
            start = offset;
        }
        match e {
            Extent::Data { bytes, .. } => run.extend_from_slice(&bytes),
            Extent::Fill { len, value, .. } => {
                // Appended in pieces so a run stays within RUN; the pattern
                // keeps its phase from the fill's start.
                let pat = value.to_le_bytes();
                let mut done = 0u64;
                while done < len {
                    if run.len() >= RUN {
                        flush(s, &mut run, start, conn)?;
                        start = offset + done;
                    }
                    let n = (len - done).min((RUN - run.len()) as u64);
                    run.extend((done..done + n).map(|i| pat[(i % 4) as usize]));
                    done += n;
                }
            }
            Extent::Skip { .. } => {}
        }
        if run.len() >= RUN {
            flush(s, &mut run, start, conn)?;
        }
    }
    flush(s, &mut run, start, conn)?;
    conn.progress.done(&label);
    Ok(written)
}

/// The bytes of a piece, padded to `len`: zeros after a raw file (the C++
/// tool's rule: the medium takes whole blocks), 0xFF after a part.
fn piece_reader(p: &Piece, len: u64) -> std::io::Result<Box<dyn Read>> {
    Ok(match &p.source {
        PieceSource::Disk { .. } => {
            return Err(std::io::Error::other("a disk image is written run by run (write_disk)"));
        }
        PieceSource::Raw(path) => Box::new(File::open(path)?.take(p.len).chain(std::io::repeat(0)).take(len)),
        PieceSource::Part(path, part) => {
            Box::new(PartReader::open(path, part)?.chain(std::io::repeat(0xff)).take(len))
        }
    })
}

/// Reads a written piece back and compares it with its source, piece by
/// piece.
fn verify_piece(
    s: &mut Session,
    p: &Piece,
    len: u64,
    medium: Medium,
    conn: &mut Connector,
) -> Result<(), StorageError> {
    let mut src = piece_reader(p, len).map_err(KburnError::Source)?;
    let mut at = p.offset;
    let mut mismatch: Option<(u64, u8, u8)> = None;
    let mut cmp = |got: &[u8]| -> std::io::Result<()> {
        let mut want = vec![0u8; got.len()];
        src.read_exact(&mut want)?;
        if mismatch.is_none()
            && let Some(i) = want.iter().zip(got).position(|(a, b)| a != b)
        {
            mismatch = Some((at + i as u64, want[i], got[i]));
        }
        at += got.len() as u64;
        Ok(())
    };
    let label = format!("verify {}", p.name);
    conn.progress.stage(&label, Some(len));
    s.read(p.offset, len, &mut cmp, conn.progress)
        .map_err(|source| StorageError::Unverified { name: p.name.clone(), source })?;
    conn.progress.done(&label);
    if let Some((at, wrote, read)) = mismatch {
        return Err(StorageError::VerifyMismatch {
            name: p.name.clone(),
            at,
            wrote,
            read,
            medium: medium.name(),
        });
    }
    Ok(())
}

/// After REBOOT (which answers nothing) the loader must leave the bus:
/// k230-flash waits 2 s; here the old link is watched for up to 5 s.
fn confirm_gone(
    conn: &mut Connector,
    info: &UsbInfo,
    mut link: Box<dyn UsbLink>,
) -> Result<(), StorageError> {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    let probe =
        rom::RomOptions { control_timeout: std::time::Duration::from_millis(100), ..Default::default() };
    loop {
        let listed = conn.usb.devices().map_err(|e| CanaanError::link("after REBOOT", e))?;
        let still = listed.iter().any(|d| d.port_path == info.port_path && d.address == info.address);
        if !still || !matches!(rom::identify(&mut *link, &probe), Ok(DeviceStage::Loader(_))) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StorageError::NoReboot { port: info.port_path.clone() });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
