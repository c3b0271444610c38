//! Storage through the usbplug: `write`, `read`, `erase`, `reset`,
//! `partitions` (rkdeveloptool `wl`, `rl`, `ef`/`el`, `rd`, `ppt`).
//!
//! The run: find the board; when a rockusb loader already answers TEST
//! UNIT READY there, use it; otherwise bring it up from the maskrom with
//! the bring-up plan ([`crate::plan()`], `--loader RKBOOT` or raw blobs)
//! and follow it to its usbplug. Then READ FLASH INFO gives the capacity,
//! every range is checked against it (and against the GPT's partition with
//! `--partition`) before the first sector is written, and the verb runs in
//! LBA commands of the size the loader hints at ([`sectors_from_hint`]).
//!
//! Writes consume an iterator of [`Extent`]s, so any image format that can
//! say "these bytes here, this fill there, nothing there" plugs in; the raw
//! file adapter is [`RawExtents`].

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use racklet_image::Target;
use racklet_image::disk::{Content, DiskError, DiskImage, bmap_beside};
use racklet_link::{Classify, Connector, FailureClass, UsbId, UsbInfo, UsbLink};
use sha2::{Digest, Sha256};

use crate::boot::{self, Options};
use crate::report::Next;
use crate::rockusb::{
    MAX_SECTORS, RESET_MASKROM, RESET_NORMAL, Readiness, Rockusb, SECTOR, sectors_from_hint,
};
use crate::{PlanError, RockchipError};

/// One piece of an image, at a byte offset from the image's start: the
/// shared type of `racklet_image::disk`, whose readers (sparse, bmap,
/// compressed) produce them; [`RawExtents`] is this crate's raw-file one.
pub use racklet_image::disk::Extent;

/// Where an extent starts and how long it is.
fn extent_range(e: &Extent) -> (u64, u64) {
    match e {
        Extent::Data { offset, bytes } => (*offset, bytes.len() as u64),
        Extent::Fill { offset, len, .. } | Extent::Skip { offset, len } => (*offset, *len),
    }
}

/// `n` bytes of a FILL's 4-byte little-endian pattern, from its start.
fn fill_bytes(value: u32, n: usize) -> Vec<u8> {
    value.to_le_bytes().iter().copied().cycle().take(n).collect()
}

/// A raw image file as extents: `Data` pieces of `chunk` bytes.
pub struct RawExtents {
    file: File,
    path: PathBuf,
    at: u64,
    len: u64,
    chunk: usize,
}

impl RawExtents {
    /// Opens `path`; `chunk` is the size of each piece (the largest write
    /// the loader takes).
    pub fn open(path: &Path, chunk: usize) -> Result<RawExtents, StorageError> {
        let io = |source| StorageError::Image { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok(RawExtents { file, path: path.to_path_buf(), at: 0, len, chunk: chunk.max(SECTOR as usize) })
    }

    /// The image's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Iterator for RawExtents {
    type Item = Result<Extent, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.len {
            return None;
        }
        let n = (self.len - self.at).min(self.chunk as u64) as usize;
        let mut bytes = vec![0u8; n];
        if let Err(source) = self.file.read_exact(&mut bytes) {
            return Some(Err(StorageError::Image { path: self.path.clone(), source }));
        }
        let offset = self.at;
        self.at += n as u64;
        Some(Ok(Extent::Data { offset, bytes }))
    }
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub enum Verb {
    /// `write IMAGE [--at LBA | --partition NAME]`.
    Write { image: PathBuf, at: Option<u64>, partition: Option<String>, verify: bool },
    /// `read (--at LBA --size N | --partition NAME)`.
    Read { at: Option<u64>, size: Option<u64>, partition: Option<String> },
    /// `erase (--at LBA --size N | --partition NAME | --whole)`.
    Erase { at: Option<u64>, size: Option<u64>, partition: Option<String>, whole: bool },
    /// `reset [--maskrom]`.
    Reset { maskrom: bool },
    /// `partitions`.
    Partitions,
    /// `write --loader-to-storage` (rkdeveloptool `ul`): the IDB made of the
    /// RKBOOT loader `loader` (or an idbloader image given as it is) at
    /// LBA 64, where the boot ROM looks for it.
    /// `bring_up` inputs, when given, are raw blobs (`--dram`/`--usbplug`/
    /// `--rkbin`); `force` sends a loader for another chip anyway.
    LoaderToStorage { loader: PathBuf, verify: bool, force: bool },
}

/// A checked plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How to bring a board in maskrom to its usbplug (none given: the
    /// usbplug must already answer).
    pub bring_up: Option<crate::Plan>,
    pub verb: Verb,
    /// What the image puts on the medium, in bytes from its start (write):
    /// known up front for raw files, sparse images, bmaps and zstd frames
    /// that say; `None` for a gzip/xz stream (checked as it is written).
    pub image_len: Option<u64>,
    /// The image is a plain raw file (no compression, sparse or bmap).
    pub raw: bool,
    /// `LoaderToStorage`: what to write at [`crate::idb::STORAGE_LBA`].
    pub idb: Option<LoaderWrite>,
}

/// The sectors `write --loader-to-storage` puts at LBA 64.
#[derive(Debug, Clone)]
pub struct LoaderWrite {
    pub sectors: Vec<u8>,
    /// What they are, for messages.
    pub what: String,
    /// rkdeveloptool's new-IDB layout (a "FlashHead" loader): the usbplug
    /// must say by READ CAPABILITY that it takes it.
    pub new_idb: bool,
}

/// Checks what can be checked without the board: the bring-up files, the
/// image (a readable, non-empty regular file), sizes in whole sectors.
pub fn plan(bring_up: Option<&crate::Inputs>, verb: &Verb, target: &Target) -> Result<Plan, StorageError> {
    let mut idb = None;
    let bring_up = match (bring_up, verb) {
        (_, Verb::LoaderToStorage { loader, force, .. }) => {
            let (plan, write) = loader_to_storage(loader, *force, bring_up, target)?;
            idb = Some(write);
            plan
        }
        (Some(i), _) => Some(crate::plan(i, target)?),
        (None, _) => None,
    };
    let mut image_len = None;
    let mut raw = true;
    let both = |at: &Option<u64>, p: &Option<String>| at.is_some() && p.is_some();
    match verb {
        Verb::Write { image, at, partition, .. } => {
            if both(at, partition) {
                return Err(StorageError::AtAndPartition);
            }
            let m = std::fs::metadata(image)
                .map_err(|source| StorageError::Image { path: image.clone(), source })?;
            if !m.is_file() {
                return Err(StorageError::NotAFile { path: image.clone() });
            }
            if m.len() == 0 {
                return Err(StorageError::EmptyImage { path: image.clone() });
            }
            // Raw, Android sparse, a .bmap beside it, gzip/xz/zstd: told by
            // their magic (racklet_image::disk).
            let disk = DiskImage::open(image, bmap_beside(image).as_deref())?;
            raw = disk.compression.is_none() && disk.content == Content::Raw && disk.bmap.is_none();
            image_len = disk.size;
        }
        Verb::Read { at, size, partition } | Verb::Erase { at, size, partition, .. } => {
            if both(at, partition) {
                return Err(StorageError::AtAndPartition);
            }
            let whole = matches!(verb, Verb::Erase { whole: true, .. });
            if partition.is_none() && !whole && (at.is_none() || size.is_none()) {
                return Err(StorageError::NeedRange { verb: verb_name(verb) });
            }
            if let Some(n) = size
                && (*n == 0 || n % SECTOR != 0)
            {
                return Err(StorageError::NotSectors { size: *n });
            }
        }
        Verb::Reset { .. } | Verb::Partitions | Verb::LoaderToStorage { .. } => {}
    }
    Ok(Plan { bring_up, verb: verb.clone(), image_len, raw, idb })
}

/// `--loader-to-storage`: an RKBOOT loader (the maskrom `plan()` checks it
/// is for this chip; it also brings the board up unless raw blobs are
/// given) becomes rkdeveloptool `ul`'s IDB; an idbloader image (mkimage -T
/// rksd) is written as it is, once its header says it is for this SoC (it
/// cannot bring a board up: raw blobs can, or the usbplug already answers).
fn loader_to_storage(
    path: &Path,
    force: bool,
    bring_up: Option<&crate::Inputs>,
    target: &Target,
) -> Result<(Option<crate::Plan>, LoaderWrite), StorageError> {
    let bytes = target.read_stage(path).map_err(|e| StorageError::Plan(PlanError::from(e)))?;
    if let Some(h) = crate::idb::parse(&bytes) {
        let soc = crate::idb::soc_info(&target.soc);
        let fits = soc.is_some_and(|s| h.socs.contains(&s.name));
        if !fits {
            let found = match &h.spl_hdr {
                Some(m) => format!("header {:?} marked '{m}' ({})", h.version, h.socs.join(", ")),
                None => format!("header {:?} (for {})", h.version, h.socs.join(", ")),
            };
            return Err(StorageError::IdbForOtherSoc {
                path: path.to_path_buf(),
                found,
                soc: target.soc.clone(),
            });
        }
        let what = format!("idbloader {}", path.display());
        let plan = bring_up.map(|i| crate::plan(i, target)).transpose()?;
        return Ok((plan, LoaderWrite { sectors: bytes, what, new_idb: false }));
    }
    let inputs = crate::Inputs { bin: Some(path.to_path_buf()), force, ..Default::default() };
    let mut plan = crate::plan(&inputs, target)?;
    if let Some(raw) = bring_up {
        plan = crate::plan(raw, target)?;
    }
    let loader = crate::Loader::parse(&bytes).map_err(RockchipError::from)?;
    let idb = crate::ul::idb(&loader, &bytes)
        .map_err(|source| StorageError::Ul { path: path.to_path_buf(), source })?;
    let parts = if idb.new_idb { "FlashHead + FlashData + FlashBoot" } else { "FlashData + FlashBoot" };
    let what = format!("IDB of {} ({parts}, as rkdeveloptool ul)", path.display());
    Ok((Some(plan), LoaderWrite { sectors: idb.sectors, what, new_idb: idb.new_idb }))
}

fn verb_name(v: &Verb) -> &'static str {
    match v {
        Verb::Write { .. } => "write",
        Verb::Read { .. } => "read",
        Verb::Erase { .. } => "erase",
        Verb::Reset { .. } => "reset",
        Verb::Partitions => "partitions",
        Verb::LoaderToStorage { .. } => "write --loader-to-storage",
    }
}

/// Everything that can go wrong in a storage verb.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Rockusb(Box<RockchipError>),
    #[error("{}: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: the image is empty", path.display())]
    EmptyImage { path: PathBuf },
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(
        "{what}: the image runs past the {room} bytes from LBA {lba} to the end of the partition or medium, after {written} bytes were written; the write is incomplete"
    )]
    Overrun { what: String, lba: u64, room: u64, written: u64 },
    #[error("--at and --partition both say where; give one")]
    AtAndPartition,
    #[error("{verb} needs --at LBA and --size N, or --partition NAME")]
    NeedRange { verb: &'static str },
    #[error("--size {size}: not a whole number of 512-byte sectors")]
    NotSectors { size: u64 },
    #[error(
        "{what}: {bytes} bytes at LBA {lba} run past the end of the {medium} ({sectors} sectors of 512 bytes); nothing was written"
    )]
    PastEnd { what: String, lba: u64, bytes: u64, medium: String, sectors: u64 },
    #[error(
        "{what}: {bytes} bytes do not fit partition '{name}' ({part_bytes} bytes at LBA {first}); nothing was written"
    )]
    TooLargeForPartition { what: String, bytes: u64, name: String, part_bytes: u64, first: u64 },
    #[error("--partition {name}: no such partition in the {medium}'s GPT ({known})")]
    NoSuchPartition { name: String, medium: String, known: String },
    #[error("--partition {name}: the {medium} has no valid GPT ({why})")]
    NoGpt { name: String, medium: String, why: String },
    #[error("the {medium} has no valid GPT: {why}")]
    NoTable { medium: String, why: String },
    #[error("{path}: extent at byte 0x{offset:x} is not on a 512-byte sector", path = path.display())]
    Unaligned { path: PathBuf, offset: u64 },
    #[error("{}: {source}", path.display())]
    Ul { path: PathBuf, source: crate::ul::UlError },
    #[error(
        "{what}: the usbplug's READ CAPABILITY does not offer the new IDB (byte 1 bit 0), which a loader with a \"FlashHead\" entry needs; nothing was written"
    )]
    NoNewIdb { what: String },
    #[error("{}: an idbloader with {found}, not for {soc}", path.display())]
    IdbForOtherSoc { path: PathBuf, found: String, soc: String },
    #[error("{} is in maskrom and no --loader was given to bring it to the usbplug", board)]
    NeedLoader { board: String },
    #[error("the 0x472 stage ran but no usbplug answered rockusb at USB port {port}")]
    NoUsbplug { port: String },
    #[error(
        "{what}: read back, SHA-256 {read} differs from the {wrote} of what was written (LBA {lba}, {bytes} bytes)"
    )]
    VerifyMismatch { what: String, lba: u64, bytes: u64, wrote: String, read: String },
    #[error("{what}: {source}")]
    Step {
        what: String,
        #[source]
        source: Box<RockchipError>,
    },
    #[error("interrupted after {done} of {total} bytes ({what}); the write is incomplete")]
    Interrupted { what: String, done: u64, total: u64 },
    #[error("keeping what was read ({done} of {total} bytes): {source}")]
    Output {
        done: u64,
        total: u64,
        #[source]
        source: std::io::Error,
    },
}

impl From<RockchipError> for StorageError {
    fn from(e: RockchipError) -> Self {
        StorageError::Rockusb(Box::new(e))
    }
}

impl Classify for StorageError {
    fn class(&self) -> FailureClass {
        match self {
            StorageError::Plan(e) => e.class(),
            StorageError::Rockusb(e) | StorageError::Step { source: e, .. } => e.class(),
            StorageError::Image { .. }
            | StorageError::NotAFile { .. }
            | StorageError::EmptyImage { .. }
            | StorageError::Disk(_)
            | StorageError::Overrun { .. }
            | StorageError::AtAndPartition
            | StorageError::NeedRange { .. }
            | StorageError::NotSectors { .. }
            | StorageError::PastEnd { .. }
            | StorageError::TooLargeForPartition { .. }
            | StorageError::NoSuchPartition { .. }
            | StorageError::NoGpt { .. }
            | StorageError::Unaligned { .. }
            | StorageError::Ul { .. }
            | StorageError::IdbForOtherSoc { .. }
            | StorageError::NeedLoader { .. } => FailureClass::BadInput,
            StorageError::NoTable { .. } => FailureClass::Rejected,
            StorageError::NoUsbplug { .. } | StorageError::NoNewIdb { .. } => FailureClass::Rejected,
            StorageError::VerifyMismatch { .. } => FailureClass::Rejected,
            StorageError::Interrupted { .. } => FailureClass::Interrupted,
            StorageError::Output { .. } => FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StorageError::Plan(e) => e.hint(),
            StorageError::Rockusb(e) | StorageError::Step { source: e, .. } => e.hint(),
            StorageError::Disk(e) => e.hint(),
            StorageError::NeedLoader { .. } => Some(
                "give --loader rkXXXX_spl_loader_vX.bin (an RKBOOT loader built by rkbin's boot_merger)"
                    .into(),
            ),
            StorageError::NoSuchPartition { .. } | StorageError::NoGpt { .. } => {
                Some("`racklet-flash partitions BOARD` lists them; or give --at LBA".into())
            }
            StorageError::NotSectors { .. } => Some("rockusb counts in 512-byte sectors".into()),
            StorageError::NoNewIdb { .. } => Some(
                "this usbplug was built without CONFIG_ROCKCHIP_NEW_IDB: give a loader without a FlashHead entry, or an idbloader image (`racklet-flash image BOARD SPL --dram TPL -o idbloader.img`)"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// One GPT partition as the client read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partition {
    pub name: String,
    pub first_lba: u64,
    pub last_lba: u64,
}

impl Partition {
    pub fn sectors(&self) -> u64 {
        self.last_lba + 1 - self.first_lba
    }
}

fn crc32(b: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b)
}

/// Parses a primary GPT from its header sector (LBA 1) and a reader of
/// the entry array (UEFI spec §5.3: "EFI PART", header CRC32 over its own
/// size with the CRC field zero, entry array CRC32).
pub fn parse_gpt(
    header: &[u8],
    read_entries: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>, StorageError>,
) -> Result<Result<Vec<Partition>, String>, StorageError> {
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
    let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
    if header.len() < 92 || &header[0..8] != b"EFI PART" {
        return Ok(Err("no \"EFI PART\" signature at LBA 1".into()));
    }
    let hsize = le32(header, 12) as usize;
    if !(92..=header.len()).contains(&hsize) {
        return Ok(Err(format!("header size {hsize}")));
    }
    let mut h = header[..hsize].to_vec();
    h[16..20].fill(0);
    if crc32(&h) != le32(header, 16) {
        return Ok(Err("header CRC32 mismatch".into()));
    }
    let (at, n, esize) = (le64(header, 72), le32(header, 80) as usize, le32(header, 84) as usize);
    if esize < 128 || n == 0 || n > 1024 || esize > 1024 {
        return Ok(Err(format!("{n} entries of {esize} bytes")));
    }
    let bytes = read_entries(at, n * esize)?;
    // A device that returned less must not make the parser index past it.
    if bytes.len() < n * esize {
        return Ok(Err(format!("{} bytes of a {}-byte partition entry array", bytes.len(), n * esize)));
    }
    if crc32(&bytes) != le32(header, 88) {
        return Ok(Err("partition entry array CRC32 mismatch".into()));
    }
    Ok(Ok(bytes
        .chunks(esize)
        .filter(|e| e[0..16].iter().any(|&b| b != 0))
        .map(|e| {
            let units: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            Partition {
                name: String::from_utf16_lossy(&units),
                first_lba: le64(e, 32),
                last_lba: le64(e, 40),
            }
        })
        .collect()))
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub image: String,
    pub lba: u64,
    pub bytes: u64,
    /// Sectors sent in WRITE LBA commands.
    pub sectors: u64,
    pub commands: u64,
    /// SHA-256 of the image's bytes as written, when they were read back
    /// to compare (with `--no-verify` nothing is hashed: a SHA-256 is
    /// 10-20 cycles a byte without SHA instructions, and in the USB rig's
    /// one-CPU guest every one of them is taken from the transfer).
    pub sha256: Option<String>,
    pub verified: bool,
    pub ms: u64,
}

/// A finished storage verb.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub port: String,
    /// How the usbplug came to answer.
    pub usbplug: String,
    pub flash_id: String,
    pub sectors: u64,
    /// Sectors per LBA command.
    pub transfer_sectors: u16,
    pub partition: Option<Partition>,
    pub written: Option<Written>,
    /// `read`: LBA and bytes.
    pub read: Option<(u64, u64)>,
    /// `erase`: LBA and sectors.
    pub erased: Option<(u64, u64)>,
    pub reset: Option<&'static str>,
    pub partitions: Option<Vec<Partition>>,
}

impl Report {
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f = vec![("port".to_string(), self.port.clone()), ("usbplug".into(), self.usbplug.clone())];
        f.push((
            "storage".into(),
            format!(
                "{}: {} sectors of 512 bytes ({} bytes); {} sectors per transfer",
                self.flash_id,
                self.sectors,
                self.sectors * SECTOR,
                self.transfer_sectors
            ),
        ));
        if let Some(p) = &self.partition {
            f.push(("partition".into(), format!("{}: LBA {}..={}", p.name, p.first_lba, p.last_lba)));
        }
        if let Some(w) = &self.written {
            f.push((
                format!("wrote {}", w.image),
                format!(
                    "{} bytes at LBA {} ({} sectors in {} WRITE LBA commands, {} ms), {}",
                    w.bytes,
                    w.lba,
                    w.sectors,
                    w.commands,
                    w.ms,
                    match &w.sha256 {
                        Some(h) => format!("SHA-256 {h}, read back and compared"),
                        None => "not read back (--no-verify)".to_string(),
                    }
                ),
            ));
        }
        if let Some((lba, n)) = self.read {
            f.push(("read".into(), format!("{n} bytes from LBA {lba}")));
        }
        if let Some((lba, n)) = self.erased {
            f.push(("erased".into(), format!("{n} sectors from LBA {lba}")));
        }
        if let Some(r) = self.reset {
            f.push(("reset".into(), r.to_string()));
        }
        if let Some(ps) = &self.partitions {
            f.push(("partitions".into(), format!("{} in the GPT", ps.len())));
            for (i, p) in ps.iter().enumerate() {
                f.push((
                    format!("partition {}", i + 1),
                    format!(
                        "{}: LBA {}..={} ({} sectors, {} bytes)",
                        p.name,
                        p.first_lba,
                        p.last_lba,
                        p.sectors(),
                        p.sectors() * SECTOR
                    ),
                ));
            }
        }
        f
    }
}

fn ids(target: &Target) -> Vec<UsbId> {
    target.usb_ids(None).into_iter().map(|(v, p)| UsbId::new(v, p)).collect()
}

/// Is a rockusb loader answering on this link?
fn answers(link: &mut dyn UsbLink) -> bool {
    match Rockusb::new(link) {
        Ok(mut r) => {
            r.timeout = boot::LOADER_PROBE_TIMEOUT;
            matches!(r.test_unit_ready(), Ok(Readiness::Ready | Readiness::NotReady))
        }
        Err(_) => false,
    }
}

/// Brings the board to its usbplug; returns the usbplug's link, identity
/// and how it came to be there.
fn reach_usbplug(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<(Box<dyn UsbLink>, UsbInfo, String), StorageError> {
    let ids = ids(target);
    let info = conn.find_usb(&ids, "Rockchip maskrom or usbplug").map_err(RockchipError::from)?;
    let mut link = conn.open_usb(&info).map_err(RockchipError::from)?;
    if answers(&mut *link) {
        return Ok((link, info, "already running (answers TEST UNIT READY)".into()));
    }
    drop(link);
    let Some(bring_up) = &plan.bring_up else {
        return Err(StorageError::NeedLoader { board: target.board.clone() });
    };
    let report = boot::boot(conn, bring_up, target, &Options { expect_usbplug: true, ..opts.clone() })?;
    let Next::Usbplug(u) = &report.next else {
        return Err(StorageError::NoUsbplug { port: info.port_path.clone() });
    };
    let listed = conn.usb.devices().map_err(RockchipError::from)?;
    let plug = listed
        .into_iter()
        .find(|d| d.port_path == u.device.port && d.address == u.device.address)
        .ok_or_else(|| StorageError::NoUsbplug { port: u.device.port.clone() })?;
    let link = conn.open_usb(&plug).map_err(RockchipError::from)?;
    let how = match &bring_up.stages {
        crate::plan::Stages::Loader { from, .. } => {
            format!("brought up from maskrom with {}", from.display())
        }
        crate::plan::Stages::Raw { ddr, .. } => {
            format!("brought up from maskrom with {}", ddr.from.display())
        }
    };
    Ok((link, plug, how))
}

fn step(what: impl Into<String>) -> impl FnOnce(RockchipError) -> StorageError {
    let what = what.into();
    move |source| StorageError::Step { what, source: Box::new(source) }
}

/// Runs `plan`; `out` takes the bytes of a `read`.
pub fn run(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<Report, StorageError> {
    let (mut link, info, how) = reach_usbplug(conn, plan, target, opts)?;
    let mut r = Rockusb::new(&mut *link)?;
    // The loader may still bring up its storage: poll as the bring-up does.
    let deadline = Instant::now() + conn.stage_timeout;
    let hint = loop {
        match r.test_unit_ready_hint().map_err(step("TEST UNIT READY"))? {
            (Readiness::Ready, residue) => break residue,
            (Readiness::NotReady, _) if Instant::now() < deadline => std::thread::sleep(opts.ready_pause),
            (Readiness::NotReady, _) => {
                return Err(RockchipError::UsbplugNotReady {
                    port: info.port_path.clone(),
                    within: conn.stage_timeout,
                }
                .into());
            }
        }
    };
    let per = sectors_from_hint(hint);
    let flash_id = r.read_flash_id().map_err(step("READ FLASH ID"))?;
    let fi = r.read_flash_info().map_err(step("READ FLASH INFO"))?;
    let sectors = u64::from(fi.sectors);
    let medium = if flash_id.is_empty() { "storage".to_string() } else { flash_id.clone() };
    let mut report = Report {
        port: info.port_path.clone(),
        usbplug: how,
        flash_id: flash_id.clone(),
        sectors,
        transfer_sectors: per,
        partition: None,
        written: None,
        read: None,
        erased: None,
        reset: None,
        partitions: None,
    };
    let past_end = |what: &str, lba: u64, bytes: u64| StorageError::PastEnd {
        what: what.to_string(),
        lba,
        bytes,
        medium: medium.clone(),
        sectors,
    };
    let check_end = |what: &str, lba: u64, bytes: u64| -> Result<(), StorageError> {
        match lba.checked_mul(SECTOR).and_then(|b| b.checked_add(bytes)) {
            Some(end) if end <= sectors * SECTOR && lba + bytes.div_ceil(SECTOR) <= u64::from(u32::MAX) => {
                Ok(())
            }
            _ => Err(past_end(what, lba, bytes)),
        }
    };
    let find_part = |r: &mut Rockusb<'_, dyn UsbLink>, name: &str| -> Result<Partition, StorageError> {
        let parts = read_gpt(r, sectors)?.map_err(|why| StorageError::NoGpt {
            name: name.to_string(),
            medium: medium.clone(),
            why,
        })?;
        let known = parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
        parts.iter().find(|p| p.name == name).cloned().ok_or_else(|| StorageError::NoSuchPartition {
            name: name.to_string(),
            medium: medium.clone(),
            known: if known.is_empty() { "it lists none".into() } else { format!("it has {known}") },
        })
    };
    match &plan.verb {
        Verb::Write { image, at, partition, verify } => {
            let what = image.display().to_string();
            // Bytes from the LBA to the partition's or the medium's end.
            let (lba, room) = match partition {
                Some(name) => {
                    let p = find_part(&mut r, name)?;
                    let part_bytes = p.sectors() * SECTOR;
                    if let Some(n) = plan.image_len
                        && n > part_bytes
                    {
                        return Err(StorageError::TooLargeForPartition {
                            what,
                            bytes: n,
                            name: name.clone(),
                            part_bytes,
                            first: p.first_lba,
                        });
                    }
                    report.partition = Some(p.clone());
                    (p.first_lba, part_bytes)
                }
                None => {
                    let lba = at.unwrap_or(0);
                    (lba, sectors.saturating_sub(lba) * SECTOR)
                }
            };
            check_end(&what, lba, plan.image_len.unwrap_or(0))?;
            let expected = plan.image_len.unwrap_or(0);
            let w = if plan.raw {
                let chunk = usize::from(per) * SECTOR as usize;
                let extents = RawExtents::open(image, chunk)?;
                write_extents(&mut r, lba, expected, room, extents, per, *verify, &what, image, conn)?
            } else {
                let disk = DiskImage::open(image, bmap_beside(image).as_deref())?;
                let extents = disk.extents()?;
                write_extents(&mut r, lba, expected, room, extents, per, *verify, &what, image, conn)?
            };
            report.written = Some(w);
        }
        Verb::Read { at, size, partition } => {
            let (lba, bytes) = range(&mut r, *at, *size, partition.as_deref(), &find_part, &mut report)?;
            check_end("--at/--size", lba, bytes)?;
            let label = format!("read {bytes} bytes from LBA {lba}");
            conn.progress.stage(&label, Some(bytes));
            let mut done = 0u64;
            while done < bytes {
                check_cancel(conn, &label, done, bytes)?;
                let n = ((bytes - done) / SECTOR).min(u64::from(per)) as u16;
                let at = lba + done / SECTOR;
                let d = r.read_lba(at as u32, n).map_err(step(format!("READ LBA {at}")))?;
                out(&d).map_err(|source| StorageError::Output { done, total: bytes, source })?;
                done += d.len() as u64;
                conn.progress.advance(d.len() as u64);
            }
            conn.progress.done(&label);
            report.read = Some((lba, bytes));
        }
        Verb::Erase { at, size, partition, whole } => {
            let (lba, bytes) = if *whole {
                (0, sectors * SECTOR)
            } else {
                range(&mut r, *at, *size, partition.as_deref(), &find_part, &mut report)?
            };
            check_end("--at/--size", lba, bytes)?;
            let total = bytes / SECTOR;
            let label = format!("erase {total} sectors from LBA {lba}");
            conn.progress.stage(&label, Some(bytes));
            let mut done = 0u64;
            while done < total {
                check_cancel(conn, &label, done * SECTOR, bytes)?;
                let n = (total - done).min(u64::from(MAX_SECTORS)) as u16;
                let at = lba + done;
                r.erase_lba(at as u32, n).map_err(step(format!("ERASE LBA {at}")))?;
                done += u64::from(n);
                conn.progress.advance(u64::from(n) * SECTOR);
            }
            conn.progress.done(&label);
            report.erased = Some((lba, total));
        }
        Verb::Reset { maskrom } => {
            let (code, said) = if *maskrom {
                (
                    RESET_MASKROM,
                    "DEVICE RESET into maskrom (subcode 3) answered; the board restarts in its boot ROM",
                )
            } else {
                (RESET_NORMAL, "DEVICE RESET answered; the board restarts from its storage")
            };
            r.reset(code).map_err(step("DEVICE RESET"))?;
            report.reset = Some(said);
        }
        Verb::Partitions => {
            let parts = read_gpt(&mut r, sectors)?
                .map_err(|why| StorageError::NoTable { medium: medium.clone(), why })?;
            report.partitions = Some(parts);
        }
        Verb::LoaderToStorage { loader, verify, .. } => {
            // plan() made these sectors; a Plan built by hand without them
            // has nothing to write.
            let Some(LoaderWrite { sectors: bytes, what, new_idb }) = &plan.idb else {
                return Err(StorageError::EmptyImage { path: loader.clone() });
            };
            // rkdeveloptool `ul` asks first, and stops when the usbplug
            // does not take the new IDB; so does this, before any write.
            if *new_idb && !r.read_capability().map_err(step("READ CAPABILITY"))?.new_idb() {
                return Err(StorageError::NoNewIdb { what: what.clone() });
            }
            let lba = crate::idb::STORAGE_LBA;
            let len = bytes.len() as u64;
            check_end(what, lba, len)?;
            let room = sectors.saturating_sub(lba) * SECTOR;
            let one =
                std::iter::once(Ok::<Extent, StorageError>(Extent::Data { offset: 0, bytes: bytes.clone() }));
            report.written =
                Some(write_extents(&mut r, lba, len, room, one, per, *verify, what, loader, conn)?);
        }
    }
    Ok(report)
}

fn check_cancel(conn: &mut Connector, what: &str, done: u64, total: u64) -> Result<(), StorageError> {
    if conn.progress.cancelled() {
        return Err(StorageError::Interrupted { what: what.to_string(), done, total });
    }
    Ok(())
}

type FindPart<'f> = dyn Fn(&mut Rockusb<'_, dyn UsbLink>, &str) -> Result<Partition, StorageError> + 'f;

/// The LBA range of a read or erase: `--at`/`--size`, or a partition
/// (with `--size` at most the partition).
fn range(
    r: &mut Rockusb<'_, dyn UsbLink>,
    at: Option<u64>,
    size: Option<u64>,
    partition: Option<&str>,
    find_part: &FindPart<'_>,
    report: &mut Report,
) -> Result<(u64, u64), StorageError> {
    match partition {
        Some(name) => {
            let p = find_part(r, name)?;
            let part_bytes = p.sectors() * SECTOR;
            let bytes = size.unwrap_or(part_bytes);
            if bytes > part_bytes {
                return Err(StorageError::TooLargeForPartition {
                    what: "--size".into(),
                    bytes,
                    name: name.to_string(),
                    part_bytes,
                    first: p.first_lba,
                });
            }
            let lba = p.first_lba;
            report.partition = Some(p);
            Ok((lba, bytes))
        }
        None => Ok((at.unwrap_or(0), size.unwrap_or(0))),
    }
}

/// Reads the primary GPT: the header at LBA 1, then its entry array.
fn read_gpt(
    r: &mut Rockusb<'_, dyn UsbLink>,
    sectors: u64,
) -> Result<Result<Vec<Partition>, String>, StorageError> {
    if sectors < 34 {
        return Ok(Err(format!("the medium has only {sectors} sectors")));
    }
    let header = r.read_lba(1, 1).map_err(step("READ LBA 1 (GPT header)"))?;
    parse_gpt(&header, &mut |lba, len| {
        let count = (len as u64).div_ceil(SECTOR);
        if lba + count > sectors || count > u64::from(MAX_SECTORS) {
            return Ok(Vec::new());
        }
        let mut d =
            r.read_lba(lba as u32, count as u16).map_err(step(format!("READ LBA {lba} (GPT entries)")))?;
        d.truncate(len);
        Ok(d)
    })
}

/// How many extents the reader thread may have ready ahead of the bus.
const READ_AHEAD: usize = 2;

/// Writes `extents` from `lba` (the image's byte 0 at the sector `lba`),
/// in WRITE LBA commands of at most `per` sectors, none past `room` bytes
/// (`total`: the bytes expected, 0 when unknown); then, with `verify`,
/// reads every written range back and compares SHA-256. The extents are
/// read (and hashed) on a thread of their own, [`READ_AHEAD`] ahead, so
/// the file and the hash never hold up the bus; the read-back is hashed
/// the same way.
#[allow(clippy::too_many_arguments)]
pub fn write_extents<E, I>(
    r: &mut Rockusb<'_, dyn UsbLink>,
    lba: u64,
    total: u64,
    room: u64,
    extents: I,
    per: u16,
    verify: bool,
    what: &str,
    path: &Path,
    conn: &mut Connector,
) -> Result<Written, StorageError>
where
    I: Iterator<Item = Result<Extent, E>> + Send,
    E: Send,
    StorageError: From<E>,
{
    let started = Instant::now();
    let label = format!("write {what} at LBA {lba}");
    conn.progress.stage(&label, (total > 0).then_some(total));
    let max = usize::from(per) * SECTOR as usize;
    // Written ranges (byte offset in the image, length), merged when contiguous.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let (mut sectors, mut commands, mut done) = (0u64, 0u64, 0u64);
    let mut send = |r: &mut Rockusb<'_, dyn UsbLink>, offset: u64, data: &[u8]| -> Result<(), StorageError> {
        let whole = (data.len() as u64).is_multiple_of(SECTOR);
        let padded;
        let buf: &[u8] = if whole {
            data
        } else {
            let mut v = data.to_vec();
            v.resize((data.len() as u64).div_ceil(SECTOR) as usize * SECTOR as usize, 0);
            padded = v;
            &padded
        };
        for (i, piece) in buf.chunks(max).enumerate() {
            let at = lba + offset / SECTOR + (i * max) as u64 / SECTOR;
            r.write_lba(at as u32, piece).map_err(step(format!("WRITE LBA {at} ({what})")))?;
            sectors += piece.len() as u64 / SECTOR;
            commands += 1;
        }
        Ok(())
    };
    let wrote = std::thread::scope(|s| -> Result<String, StorageError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Extent, E>>(READ_AHEAD);
        let reader = s.spawn(move || {
            let mut hash = Sha256::new();
            for e in extents {
                match &e {
                    _ if !verify => {}
                    Ok(Extent::Data { bytes, .. }) => hash.update(bytes),
                    Ok(Extent::Fill { len, value, .. }) => {
                        let block = fill_bytes(*value, 4096);
                        let mut left = *len;
                        while left > 0 {
                            let n = left.min(block.len() as u64) as usize;
                            hash.update(&block[..n]);
                            left -= n as u64;
                        }
                    }
                    _ => {}
                }
                let stop = e.is_err();
                if tx.send(e).is_err() || stop {
                    break;
                }
            }
            hex(&hash.finalize())
        });
        for e in rx.iter() {
            let e = e?;
            if conn.progress.cancelled() {
                return Err(StorageError::Interrupted { what: label.clone(), done, total });
            }
            let (offset, len) = extent_range(&e);
            if len == 0 {
                continue;
            }
            if !offset.is_multiple_of(SECTOR) {
                return Err(StorageError::Unaligned { path: path.to_path_buf(), offset });
            }
            if offset.checked_add(len).is_none_or(|end| end > room) {
                return Err(StorageError::Overrun { what: what.to_string(), lba, room, written: done });
            }
            match &e {
                Extent::Data { bytes, .. } => send(r, offset, bytes)?,
                Extent::Fill { value, .. } => {
                    // `max` is whole sectors, so every piece starts the
                    // pattern afresh where the fill's own phase has it.
                    let block = fill_bytes(*value, max);
                    let mut at = 0;
                    while at < len {
                        let n = (len - at).min(max as u64) as usize;
                        send(r, offset + at, &block[..n])?;
                        at += n as u64;
                    }
                }
                Extent::Skip { .. } => {}
            }
            if !matches!(e, Extent::Skip { .. }) {
                match ranges.last_mut() {
                    Some((o, l)) if *o + *l == offset => *l += len,
                    _ => ranges.push((offset, len)),
                }
            }
            done += len;
            conn.progress.advance(len);
        }
        Ok(reader.join().expect("the image reader thread"))
    })?;
    conn.progress.done(&label);
    if verify {
        let label = format!("verify {what}");
        let bytes: u64 = ranges.iter().map(|(_, l)| l).sum();
        conn.progress.stage(&label, Some(bytes));
        let read = std::thread::scope(|s| -> Result<String, StorageError> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(READ_AHEAD);
            let hasher = s.spawn(move || {
                let mut back = Sha256::new();
                for d in rx.iter() {
                    back.update(&d);
                }
                hex(&back.finalize())
            });
            for (offset, len) in &ranges {
                let mut got = 0u64;
                while got < *len {
                    let n = (len - got).div_ceil(SECTOR).min(u64::from(per));
                    let at = lba + (offset + got) / SECTOR;
                    let mut d = r
                        .read_lba(at as u32, n as u16)
                        .map_err(step(format!("READ LBA {at} (verify {what})")))?;
                    let keep = (len - got).min(d.len() as u64) as usize;
                    d.truncate(keep);
                    got += keep as u64;
                    conn.progress.advance(keep as u64);
                    if tx.send(d).is_err() {
                        break;
                    }
                }
            }
            drop(tx);
            Ok(hasher.join().expect("the read-back hasher thread"))
        })?;
        conn.progress.done(&label);
        if read != wrote {
            return Err(StorageError::VerifyMismatch { what: what.to_string(), lba, bytes, wrote, read });
        }
    }
    let end = ranges.last().map_or(0, |(o, l)| o + l);
    Ok(Written {
        image: what.to_string(),
        lba,
        bytes: total.max(end),
        sectors,
        commands,
        sha256: verify.then_some(wrote),
        verified: verify,
        ms: started.elapsed().as_millis() as u64,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
