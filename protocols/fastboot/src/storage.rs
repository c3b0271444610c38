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
use crate::bundle::{self, BundleError, Kind, Size, Table};
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
    /// An unpacked vendor image to flash whole ([`crate::bundle`]): it
    /// gives the ROM stages and the partitions.
    pub bundle: Option<PathBuf>,
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
    /// A SpacemiT bundle's tables: which one is flashed (and so which
    /// partitions) depends on the storage the device reports.
    pub tables: Option<(PathBuf, Vec<Table>)>,
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
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// `--bundle` with other partitions or stages.
    #[error("--bundle gives the stages and every partition; leave out {given}")]
    BundleAndMore { given: &'static str },
    /// Nothing to do.
    #[error("nothing to write: give --partition NAME=FILE (or --erase NAME)")]
    Nothing,
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
            StorageError::Bundle(e) => e.class(),
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
            StorageError::Bundle(e) => e.hint(),
            StorageError::BundleAndMore { .. } => {
                Some("flash extra partitions in a second run: write BOARD --partition NAME=FILE".into())
            }
            StorageError::Fastboot(e) => e.hint(),
            StorageError::Nothing => Some("e.g. --partition boot=boot.ext4 --partition root=root.ext4".into()),
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

/// Checks the inputs against the board: the bring-up images as `maskrom`
/// checks them, every image readable and (if sparse) well-formed.
pub fn plan_storage(inputs: &StorageInputs, target: &Target) -> Result<StoragePlan, StorageError> {
    plan_inner(inputs, target, true)
}

/// The plan of a run that only talks to vendor U-Boot (`partitions`,
/// `oem`): the bring-up checked, nothing to write.
pub fn plan_session(inputs: &StorageInputs, target: &Target) -> Result<StoragePlan, StorageError> {
    plan_inner(inputs, target, false)
}

fn plan_inner(inputs: &StorageInputs, target: &Target, writes: bool) -> Result<StoragePlan, StorageError> {
    let soc = soc_of(target)?;
    let mut inputs = inputs.clone();
    let mut tables = None;
    if let Some(dir) = &inputs.bundle {
        let given = [
            (!inputs.flash.is_empty(), "--partition"),
            (!inputs.erase.is_empty(), "--erase"),
            (inputs.bring_up.as_ref().is_some_and(|b| b.image.is_some()), "--loader"),
            (inputs.bring_up.as_ref().is_some_and(|b| !b.then.is_empty()), "--then"),
        ];
        if let Some((_, flag)) = given.iter().find(|g| g.0) {
            return Err(StorageError::BundleAndMore { given: flag });
        }
        let b = bundle::open(dir, soc)?;
        let mut up = inputs.bring_up.clone().unwrap_or_default();
        match b.kind {
            Kind::Spacemit { fsbl, uboot, tables: t } => {
                // Every image any table names is checked now (a damaged
                // sparse file is refused before the device is touched).
                for table in &t {
                    for (_, path) in bundle::steps(dir, table).into_iter().skip(1) {
                        open_source(&path)?;
                    }
                }
                up.image = Some(fsbl);
                up.then = vec![uboot];
                tables = Some((dir.clone(), t));
            }
            Kind::RevyOs { uboot, boot, root } => {
                up.image = Some(uboot.clone());
                inputs.flash = vec![("uboot".into(), uboot), ("boot".into(), boot), ("root".into(), root)];
            }
        }
        inputs.bring_up = Some(up);
    }
    if writes && inputs.flash.is_empty() && inputs.erase.is_empty() && tables.is_none() {
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
        flash.push((name.clone(), open_source(path)?));
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
        tables,
    })
}

/// A partition image as it will be sent: straight from the file, or read
/// as extents (compressed, or with a bmap beside it).
fn open_source(path: &std::path::Path) -> Result<Source, StorageError> {
    let disk = racklet_image::disk::DiskImage::open(path, racklet_image::disk::bmap_beside(path).as_deref())?;
    Ok(if disk.compression.is_none() && disk.bmap.is_none() {
        Source::File(ImageFile::open(path)?)
    } else {
        Source::Disk(disk)
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
    /// The bundle table it belongs to, when a bundle flashes two (a NOR's
    /// and its block device's: both have `fsbl`, `uboot`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
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
    /// A bundle's partition table, when one was flashed, and why it was the one.
    pub table: Option<String>,
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
        if let Some(t) = &self.table {
            f.push(("partition table".into(), t.clone()));
        }
        for p in &self.flashed {
            let how = match p.downloads {
                1 => "in one download".to_string(),
                n => format!("as {n} sparse images"),
            };
            let key = match &p.table {
                Some(t) => format!("partition {} ({t})", p.partition),
                None => format!("partition {}", p.partition),
            };
            f.push((key, format!("{} ({} bytes) written {how}", p.file, p.bytes)));
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

pub(crate) type UbootFastboot = crate::boot::AnyFastboot;

/// The ROM stages if planned, then vendor U-Boot's fastboot found (by
/// port path after the stages, or at the same `--port tcp:` address) and
/// opened: the client, where it is, and the stages' report.
pub(crate) fn reach_uboot(
    conn: &mut Connector,
    plan: &StoragePlan,
    target: &Target,
    opts: &Options,
) -> Result<(UbootFastboot, Endpoint, Option<Report>), StorageError> {
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
    if plan.soc == Soc::K1 && plan.bring_up.is_none() {
        // All K1 stages are 361c:1001: the ROM is told apart by what it says.
        let id = k1::identify(&mut fb, uboot.serial(), &mut *conn.progress)?;
        let in_rom = match &uboot {
            Endpoint::Usb(_) => id.is_rom(),
            Endpoint::Tcp { .. } => id.is_rom_over_tcp(),
        };
        if in_rom {
            return Err(StorageError::InRom { port: uboot.device().port_path });
        }
    }
    Ok((fb, uboot, bring_up))
}

/// Runs `plan`: the ROM stages if planned, then every partition.
pub fn write(
    conn: &mut Connector,
    plan: &StoragePlan,
    target: &Target,
    opts: &Options,
) -> Result<StorageReport, StorageError> {
    let (mut fb, uboot, bring_up) = reach_uboot(conn, plan, target, opts)?;
    let progress = &mut *conn.progress;
    let device_max = fb.max_download_size(progress)?;
    let limit = match (device_max, plan.sparse_limit) {
        (Some(d), Some(u)) => Some(d.min(u)),
        (a, b) => a.or(b),
    };
    // A bundle's tables are picked by the storage the device reports, and
    // every image is checked against its table's size before the first write.
    let mut owned: Vec<(String, Option<Size>, bool, Option<String>)> = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    let mut picked = None;
    let device_checked = plan.tables.is_none();
    if let Some((dir, tables)) = &plan.tables {
        let blk = fb.getvar_opt("blk-size", progress)?;
        let mtd = fb.getvar_opt("mtd-size", progress)?;
        let chosen = bundle::pick(dir, tables, blk.as_deref(), mtd.as_deref())?;
        let names: Vec<String> = chosen.iter().map(|t| bundle::table_name(t)).collect();
        picked = Some(format!(
            "{} (the device reports blk-size {}, mtd-size {})",
            names.join(", then "),
            blk.as_deref().unwrap_or("(none)"),
            mtd.as_deref().unwrap_or("(none)")
        ));
        // The NOR's size, when the board boots from one (vendor U-Boot's
        // `mtd-size` is then its size, else NULL).
        let nor = match mtd.as_deref().map(str::trim).and_then(bundle::parse_size) {
            Some(Size::Bytes(b)) => Some(b),
            _ => None,
        };
        for table in &chosen {
            let layout = match (table.format, nor) {
                (bundle::Format::Mtd, Some(n)) => {
                    Some(bundle::nor_layout(table, n, mtd.as_deref().unwrap_or(""))?)
                }
                _ => None,
            };
            let label = (chosen.len() > 1).then(|| bundle::table_name(table));
            for (i, (name, path)) in bundle::steps(dir, table).into_iter().enumerate() {
                // Booted from NOR, vendor U-Boot answers OKAY to a block
                // device's `bootinfo` without writing it (fb_blk.c: "blk
                // device would not flash bootinfo except emmc"): not sent,
                // so it is never reported written.
                if i > 0 && nor.is_some() && table.format == bundle::Format::Gpt && name == "bootinfo" {
                    continue;
                }
                let size = match (i, &layout) {
                    (0, _) => None,
                    (_, Some(l)) => l.iter().find(|p| p.0 == name).map(|p| Size::Bytes(p.2)),
                    (_, None) => table.entries.iter().find(|e| e.name == name).and_then(|e| e.size),
                };
                // An entry without a size is looked up after its table is
                // flashed; booted from NOR, `partition-size` names MTD
                // partitions only (fb_getvar.c), so a block device's fit is
                // left to vendor U-Boot ("download_bytes is greater than
                // part size").
                let known = matches!(size, Some(Size::Bytes(_)));
                let blk_behind_nor = nor.is_some() && table.format == bundle::Format::Gpt;
                let ask = i > 0 && !known && !VENDOR_SPECIAL.contains(&name.as_str()) && !blk_behind_nor;
                sources.push(open_source(&path)?);
                owned.push((name, size, ask, label.clone()));
            }
        }
    }
    let flash: Vec<Step> = if device_checked {
        plan.flash
            .iter()
            .map(|(n, s)| Step { name: n.clone(), source: s, size: None, ask: false, table: None })
            .collect()
    } else {
        owned
            .into_iter()
            .zip(&sources)
            .map(|((name, size, ask, table), source)| Step { name, source, size, ask, table })
            .collect()
    };
    for st in &flash {
        if let Some(Size::Bytes(have)) = st.size {
            check_fits(&st.name, st.source, Some(have))?;
        }
    }
    // Every partition and size the device has is checked before the first
    // write (a bundle's partitions are made by its table: checked as each
    // comes, when the table gives no size).
    let mut names: Vec<&str> =
        if device_checked { flash.iter().map(|st| st.name.as_str()).collect() } else { Vec::new() };
    names.extend(plan.erase.iter().map(String::as_str));
    let mut sizes = Vec::new();
    for name in &names {
        sizes.push(partition_size(&mut fb, name, progress)?);
    }
    for (st, have) in flash.iter().zip(&sizes) {
        check_fits(&st.name, st.source, *have)?;
    }
    let mut report = StorageReport {
        bring_up,
        uboot: format!("fastboot at {}", uboot.device().at_address()),
        limit,
        table: picked,
        flashed: Vec::new(),
        erased: Vec::new(),
        rebooted: false,
    };
    for st in &flash {
        if st.ask {
            let have = partition_size(&mut fb, &st.name, progress)?;
            check_fits(&st.name, st.source, have)?;
        }
        let mut done = flash_one(&mut fb, &st.name, st.source, limit, progress)?;
        done.table = st.table.clone();
        report.flashed.push(done);
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

/// One partition of a run, in order: its name, image, the size its table
/// gives (bundles), whether to ask the device its size first, and the
/// table it comes from when a bundle flashes two.
struct Step<'a> {
    name: String,
    source: &'a Source,
    size: Option<Size>,
    ask: bool,
    table: Option<String>,
}

/// Names the K1 vendor U-Boot flashes by itself rather than into a GPT
/// partition (`fb_mmc.c`: `env`, `bootinfo`; the tables under `gpt`/`mtd`).
const VENDOR_SPECIAL: &[&str] = &["gpt", "mtd", "env", "bootinfo"];

/// `getvar:partition-size:NAME`; a FAIL is "no such partition".
fn partition_size(
    fb: &mut UbootFastboot,
    name: &str,
    progress: &mut dyn racklet_link::ProgressSink,
) -> Result<Option<u64>, StorageError> {
    match fb.getvar(&format!("partition-size:{name}"), progress) {
        Ok(v) => Ok(crate::response::parse_size(&v)),
        Err(FastbootError::Failed { message, .. }) => {
            Err(StorageError::NoSuchPartition { name: name.to_string(), answer: message })
        }
        Err(e) => Err(e.into()),
    }
}

fn check_fits(name: &str, img: &Source, have: Option<u64>) -> Result<(), StorageError> {
    match (have, img.expanded()) {
        (Some(have), Some(need)) if need > have => {
            Err(StorageError::TooLargeForPartition { path: img.path().into(), name: name.into(), need, have })
        }
        _ => Ok(()),
    }
}

/// Flashes one partition: in one download, or as sparse pieces within `limit`.
fn flash_one(
    fb: &mut UbootFastboot,
    name: &str,
    source: &Source,
    limit: Option<u64>,
    progress: &mut dyn racklet_link::ProgressSink,
) -> Result<Flashed, StorageError> {
    let t = Instant::now();
    let file_name = source.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
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
            return Ok(Flashed {
                partition: name.into(),
                file: file_name,
                bytes: disk.size.unwrap_or(written),
                downloads: n,
                ms: t.elapsed().as_millis() as u64,
                table: None,
            });
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
    Ok(Flashed {
        partition: name.into(),
        file: file_name,
        bytes: img.expanded(),
        downloads: pieces.len(),
        ms: t.elapsed().as_millis() as u64,
        table: None,
    })
}
