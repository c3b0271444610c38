//! Writing a board's storage through vendor U-Boot's fastboot (`racklet-flash
//! write`/`erase` on K1 and TH1520 boards): bring the board up from its
//! boot ROM when asked ([`crate::boot`]), follow it to U-Boot's fastboot
//! by USB port path, check every partition and image against what the
//! device reports before the first write, flash each partition in order
//! (images larger than one download as a series of sparse images,
//! [`crate::sparse`]), erase, and reboot unless told not to.

use std::path::PathBuf;
use std::time::Instant;

use racklet_image::Target;
use racklet_link::connect::id_list;
use racklet_link::{Classify, Connector, FailureClass, UsbId};

use crate::boot::{Endpoint, Options};
use crate::plan::{Inputs, Plan, PlanError, Soc, plan, soc_of};
use crate::report::Report;
use crate::sparse::{Encoder, ImageFile, ImageFileError, StorageEncodeError};
use crate::{FastbootError, k1};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct StorageInputs {
    /// The ROM stages, when the board is in its boot ROM: `image` is the
    /// loader (K1 FSBL.bin, TH1520 u-boot-with-spl.bin), `then` the K1's
    /// u-boot.itb. `None`: U-Boot's fastboot already answers.
    pub bring_up: Option<Inputs>,
    /// Partitions to flash, in order: (name, image).
    pub flash: Vec<(String, PathBuf)>,
    /// Partitions to erase, after flashing.
    pub erase: Vec<String>,
    /// Send `reboot` at the end.
    pub reboot: bool,
    /// The largest download (AOSP fastboot `-S`); the device's
    /// `max-download-size` when smaller.
    pub sparse_limit: Option<u64>,
}

/// Where a partition's image comes from.
#[derive(Debug)]
pub enum Source {
    /// A raw or Android sparse file as it is: sent straight from the file
    /// (one download, or pieces cut by `android-sparse-image`).
    File(ImageFile),
    /// A compressed image, or one with a bmap beside it: read as extents
    /// and sent as sparse pieces made here (only mapped data crosses the wire).
    Disk(racklet_image::disk::DiskImage),
}

impl Source {
    fn path(&self) -> &std::path::Path {
        match self {
            Source::File(f) => &f.path,
            Source::Disk(d) => &d.path,
        }
    }

    /// What it expands to, when known before reading it all.
    pub fn expanded(&self) -> Option<u64> {
        match self {
            Source::File(f) => Some(f.expanded()),
            Source::Disk(d) => d.size,
        }
    }
}

/// A storage run, checked as far as it can be without the device.
#[derive(Debug)]
pub struct StoragePlan {
    pub soc: Soc,
    pub bring_up: Option<Plan>,
    pub flash: Vec<(String, Source)>,
    pub erase: Vec<String>,
    pub reboot: bool,
    pub sparse_limit: Option<u64>,
    /// Vendor U-Boot's fastboot USB ids (TH1520: the `uboot` stage; K1: the
    /// same as its ROM's).
    pub uboot_ids: Vec<UsbId>,
}

/// Why a storage run cannot start or stopped before writing; every one
/// names the partition, file or flag.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Image(#[from] ImageFileError),
    #[error(transparent)]
    Disk(#[from] racklet_image::disk::DiskError),
    #[error(transparent)]
    Encode(#[from] crate::sparse::EncodeError),
    /// Nothing to do.
    #[error("nothing to write: give --partition NAME=FILE (or --erase NAME)")]
    Nothing,
    /// `NAME=FILE` malformed.
    #[error("--partition {given:?}: write it as NAME=FILE")]
    BadPartitionArg { given: String },
    /// The K1 bring-up cannot reach U-Boot.
    #[error(
        "the K1 reaches vendor U-Boot's fastboot through FSBL.bin and then u-boot.itb: give --loader FSBL.bin and exactly one --then u-boot.itb ({given} given)"
    )]
    K1NeedsUboot { given: usize },
    /// The device has no such partition (what U-Boot answered to
    /// `getvar:partition-size:NAME`).
    #[error("partition '{name}': the device has no such partition (it answered {answer:?})")]
    NoSuchPartition { name: String, answer: String },
    /// The image would not fit its partition.
    #[error("{}: expands to {need} bytes, but partition '{name}' holds {have}", path.display())]
    TooLargeForPartition { path: PathBuf, name: String, need: u64, have: u64 },
    /// The device found in its boot ROM where U-Boot was expected.
    #[error("the board at USB {port} is in its boot ROM, not vendor U-Boot's fastboot")]
    InRom { port: String },
    /// A fastboot step failed.
    #[error(transparent)]
    Fastboot(#[from] FastbootError),
}

impl From<StorageEncodeError> for StorageError {
    fn from(e: StorageEncodeError) -> Self {
        match e {
            StorageEncodeError::Encode(e) => StorageError::Encode(e),
            StorageEncodeError::Fastboot(e) => StorageError::Fastboot(e),
        }
    }
}

impl From<racklet_link::LinkError> for StorageError {
    fn from(e: racklet_link::LinkError) -> Self {
        StorageError::Fastboot(FastbootError::Link(e))
    }
}

impl Classify for StorageError {
    fn class(&self) -> FailureClass {
        match self {
            StorageError::Plan(e) => e.class(),
            StorageError::Image(e) => e.class(),
            StorageError::Disk(_) | StorageError::Encode(_) => FailureClass::BadInput,
            StorageError::Fastboot(e) => e.class(),
            StorageError::InRom { .. } => FailureClass::NotFound,
            _ => FailureClass::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StorageError::Plan(e) => e.hint(),
            StorageError::Image(e) => e.hint(),
            StorageError::Disk(e) => e.hint(),
            StorageError::Encode(_) => None,
            StorageError::Fastboot(e) => e.hint(),
            StorageError::Nothing => Some("e.g. --partition boot=boot.ext4 --partition root=root.ext4".into()),
            StorageError::BadPartitionArg { .. } => Some("e.g. --partition rootfs=rootfs.ext4".into()),
            StorageError::K1NeedsUboot { .. } => {
                Some("the FSBL alone has no storage commands; u-boot.itb is in the vendor image".into())
            }
            StorageError::NoSuchPartition { .. } => {
                Some("use a name from the board's partition table (the vendor image's GPT or partition_*.json)".into())
            }
            StorageError::TooLargeForPartition { .. } => Some("check the image and the partition table".into()),
            StorageError::InRom { .. } => {
                Some("bring it up first: --loader (K1: FSBL.bin with --then u-boot.itb; TH1520: u-boot-with-spl.bin)".into())
            }
        }
    }
}

/// Parses `NAME=FILE`.
pub fn partition_arg(s: &str) -> Result<(String, PathBuf), StorageError> {
    match s.split_once('=') {
        Some((n, f)) if !n.is_empty() && !f.is_empty() => Ok((n.to_string(), PathBuf::from(f))),
        _ => Err(StorageError::BadPartitionArg { given: s.into() }),
    }
}

/// Checks the inputs against the board: the bring-up images as `maskrom`
/// checks them, every image readable and (if sparse) well-formed.
pub fn plan_storage(inputs: &StorageInputs, target: &Target) -> Result<StoragePlan, StorageError> {
    let soc = soc_of(target)?;
    if inputs.flash.is_empty() && inputs.erase.is_empty() {
        return Err(StorageError::Nothing);
    }
    let bring_up = match &inputs.bring_up {
        Some(b) => {
            if soc == Soc::K1 && b.then.len() != 1 {
                return Err(StorageError::K1NeedsUboot { given: b.then.len() });
            }
            Some(plan(&Inputs { await_next: true, ..b.clone() }, target)?)
        }
        None => None,
    };
    let mut flash = Vec::new();
    for (name, path) in &inputs.flash {
        let disk =
            racklet_image::disk::DiskImage::open(path, racklet_image::disk::bmap_beside(path).as_deref())?;
        let source = if disk.compression.is_none() && disk.bmap.is_none() {
            Source::File(ImageFile::open(path)?)
        } else {
            Source::Disk(disk)
        };
        flash.push((name.clone(), source));
    }
    let stage = match soc {
        Soc::K1 => "fsbl",
        Soc::Th1520 => "uboot",
    };
    let mut uboot_ids: Vec<UsbId> =
        target.usb_ids(Some(stage)).into_iter().map(|(v, p)| UsbId::new(v, p)).collect();
    if uboot_ids.is_empty() {
        uboot_ids = target.usb_ids(Some("rom")).into_iter().map(|(v, p)| UsbId::new(v, p)).collect();
    }
    Ok(StoragePlan {
        soc,
        bring_up,
        flash,
        erase: inputs.erase.clone(),
        reboot: inputs.reboot,
        sparse_limit: inputs.sparse_limit,
        uboot_ids,
    })
}

/// One partition written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Flashed {
    pub partition: String,
    pub file: String,
    /// Bytes the partition now holds from the image (expanded).
    pub bytes: u64,
    /// Downloads it took (1, or the sparse pieces).
    pub downloads: usize,
    pub ms: u64,
}

/// What a storage run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StorageReport {
    /// The ROM stages, when the run brought the board up.
    #[serde(skip)]
    pub bring_up: Option<Report>,
    /// Vendor U-Boot's fastboot as found.
    pub uboot: String,
    /// The download limit used.
    pub limit: Option<u64>,
    pub flashed: Vec<Flashed>,
    pub erased: Vec<String>,
    pub rebooted: bool,
}

impl StorageReport {
    /// The summary, as key/value lines in the order things happened.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = self.bring_up.as_ref().map(Report::facts).unwrap_or_default();
        f.retain(|(k, _)| k != "u-boot");
        f.push(("u-boot".into(), self.uboot.clone()));
        for p in &self.flashed {
            let how = match p.downloads {
                1 => "in one download".to_string(),
                n => format!("as {n} sparse images"),
            };
            f.push((
                format!("partition {}", p.partition),
                format!("{} ({} bytes) written {how}", p.file, p.bytes),
            ));
        }
        for e in &self.erased {
            f.push((format!("partition {e}"), "erased".into()));
        }
        if self.rebooted {
            f.push(("reboot".into(), "sent".into()));
        }
        f
    }
}

/// Runs `plan`: the ROM stages if planned, then every partition.
pub fn write(
    conn: &mut Connector,
    plan: &StoragePlan,
    target: &Target,
    opts: &Options,
) -> Result<StorageReport, StorageError> {
    let (mut uboot, bring_up) = match &plan.bring_up {
        Some(p) => match crate::boot::boot_to(conn, p, target, opts)? {
            (report, Some(at)) => (at, Some(report)),
            (_, None) => {
                return Err(StorageError::Fastboot(FastbootError::Link(racklet_link::LinkError::not_found(
                    "vendor U-Boot's fastboot after the ROM stages",
                ))));
            }
        },
        None => {
            let what = format!("{} vendor U-Boot fastboot ({})", plan.soc.title(), id_list(&plan.uboot_ids));
            (crate::boot::find(conn, &plan.uboot_ids, &what)?, None)
        }
    };
    let mut fb = crate::boot::open(conn, &mut uboot, opts)?;
    let progress = &mut *conn.progress;
    if plan.soc == Soc::K1 && plan.bring_up.is_none() {
        // All K1 stages are 361c:1001: the ROM is told apart by what it says.
        let id = k1::identify(&mut fb, uboot.serial(), progress)?;
        let in_rom = match &uboot {
            Endpoint::Usb(_) => id.is_rom(),
            Endpoint::Tcp { .. } => id.is_rom_over_tcp(),
        };
        if in_rom {
            return Err(StorageError::InRom { port: uboot.device().port_path });
        }
    }
    let device_max = fb.max_download_size(progress)?;
    let limit = match (device_max, plan.sparse_limit) {
        (Some(d), Some(u)) => Some(d.min(u)),
        (a, b) => a.or(b),
    };
    // Every partition and size is checked before the first write.
    let mut sizes = Vec::new();
    let mut names: Vec<&str> = plan.flash.iter().map(|(n, _)| n.as_str()).collect();
    names.extend(plan.erase.iter().map(String::as_str));
    for name in &names {
        match fb.getvar(&format!("partition-size:{name}"), progress) {
            Ok(v) => sizes.push(crate::response::parse_size(&v)),
            Err(FastbootError::Failed { message, .. }) => {
                return Err(StorageError::NoSuchPartition { name: name.to_string(), answer: message });
            }
            Err(e) => return Err(e.into()),
        }
    }
    for ((name, img), have) in plan.flash.iter().zip(&sizes) {
        if let (Some(have), Some(need)) = (have, img.expanded())
            && need > *have
        {
            return Err(StorageError::TooLargeForPartition {
                path: img.path().into(),
                name: name.clone(),
                need,
                have: *have,
            });
        }
    }
    let mut report = StorageReport {
        bring_up,
        uboot: format!("fastboot at {}", uboot.device().at_address()),
        limit,
        flashed: Vec::new(),
        erased: Vec::new(),
        rebooted: false,
    };
    for (name, source) in &plan.flash {
        let t = Instant::now();
        let file_name =
            source.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let img = match source {
            Source::File(f) => f,
            Source::Disk(disk) => {
                // A piece is built in memory: at most one download, and at
                // most 256 MiB when the device names no limit.
                let cap = limit.unwrap_or(256 << 20).min(u64::from(u32::MAX)) as u32;
                let mut enc = Encoder::new(&disk.path, cap)?;
                let mut n = 0usize;
                let mut emit = |piece: Vec<u8>| -> Result<(), FastbootError> {
                    n += 1;
                    fb.download(&format!("{name} ({file_name}, {n})"), &piece, progress)?;
                    fb.flash(name, progress)
                };
                let mut written = 0u64;
                for e in disk.extents()? {
                    let e = e?;
                    if let racklet_image::disk::Extent::Data { bytes, .. } = &e {
                        written += bytes.len() as u64;
                    }
                    enc.push(e, &mut emit)?;
                }
                enc.finish(&mut emit)?;
                report.flashed.push(Flashed {
                    partition: name.clone(),
                    file: file_name,
                    bytes: disk.size.unwrap_or(written),
                    downloads: n,
                    ms: t.elapsed().as_millis() as u64,
                });
                continue;
            }
        };
        let pieces = img.pieces(limit)?;
        let mut file = std::fs::File::open(&img.path)
            .map_err(|source| ImageFileError::Read { path: img.path.clone(), source })?;
        for (i, piece) in pieces.iter().enumerate() {
            let what = match pieces.len() {
                1 => format!("{name} ({file_name})"),
                n => format!("{name} ({file_name}, {}/{n})", i + 1),
            };
            fb.download_from(&what, piece.len(), &mut piece.reader(&mut file), progress)?;
            fb.flash(name, progress)?;
        }
        report.flashed.push(Flashed {
            partition: name.clone(),
            file: file_name,
            bytes: img.expanded(),
            downloads: pieces.len(),
            ms: t.elapsed().as_millis() as u64,
        });
    }
    for name in &plan.erase {
        fb.erase(name, progress)?;
        report.erased.push(name.clone());
    }
    if plan.reboot {
        fb.reboot(progress)?;
        report.rebooted = true;
    }
    Ok(report)
}
