//! OS bundles: an unpacked vendor image directory that `racklet-flash
//! write <board> --bundle DIR` flashes whole, as the vendor tools do.
//!
//! Two layouts are understood:
//!
//! - **SpacemiT (K1), a Bianbu release zip unpacked**: `factory/FSBL.bin`
//!   and `u-boot.itb` (the ROM stages, as `fastboot.yaml` stages them) and
//!   one or more partition tables `partition_*.json` (spacemit-com/buildroot-ext
//!   `board/spacemit/k1/partition_universal.json`, `partition_2M.json`,
//!   `partition_flash.json`): `{"version", "format": "gpt"|"mtd",
//!   "partitions": [{"name", "offset"?, "size"?, "image"?, "hidden"?}]}`.
//!   Which tables are flashed follows titanflasher's `fastboot.yaml`
//!   (`getvar mtd-size`, `getvar blk-size`, then `partition_{size}.json`):
//!   vendor U-Boot answers `blk-size` with `universal` when it has a block
//!   device and `mtd-size` with the NOR's size (`8M`) or `NULL`
//!   (eshattow/spacemit-com-uboot-2022.10 `drivers/fastboot/fb_getvar.c`,
//!   `getvar_blk_size`/`getvar_mtd_size`); a NOR size without a table of its
//!   own takes the largest smaller one, as the Bianbu docs say the flasher
//!   does. A board booting from NOR with a block device behind it gets
//!   both, the NOR's table first (the vendor's "nor+blk" recipe: `flash
//!   mtd` and the NOR's images, then `flash gpt` and the block device's).
//!   Each table itself is flashed first (`flash gpt` or `flash mtd`: the
//!   vendor U-Boot parses the JSON, `fb_spacemit.c`), then every entry that
//!   names one image file, in table order. `hidden` is kept but changes
//!   nothing: the vendor parser does not read it, and the vendor recipe
//!   flashes the hidden `bootinfo` like the rest. An entry whose `image` is a
//!   list (`partition_flash.json`'s card-update `bootfs`) is not flashed.
//! - **RevyOS (TH1520, Lichee Pi 4A)**: `u-boot-with-spl*.bin`,
//!   `boot*.ext4`, `root*.ext4` (the RevyOS image set; Sipeed's and RevyOS's
//!   steps: `flash ram` + `reboot` with the U-Boot, then `flash uboot`,
//!   `flash boot`, `flash root`). No table: the partitions are vendor
//!   U-Boot's own.

use std::path::{Path, PathBuf};

use racklet_link::{Classify, FailureClass};

use crate::plan::Soc;

/// How a table describes its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    /// A GPT on a block device (`flash gpt`).
    Gpt,
    /// MTD partitions on SPI NOR/NAND (`flash mtd`).
    Mtd,
}

impl Format {
    /// The partition name vendor U-Boot takes the table under.
    pub fn flash_name(self) -> &'static str {
        match self {
            Format::Gpt => "gpt",
            Format::Mtd => "mtd",
        }
    }
}

/// A partition's size in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Bytes(u64),
    /// `-`: the rest of the medium.
    Rest,
}

/// One entry of a partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub offset: Option<u64>,
    pub size: Option<Size>,
    /// The one image file it is flashed with, relative to the bundle.
    pub image: Option<String>,
    pub hidden: bool,
}

/// A `partition_*.json` as read.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub format: Format,
    pub entries: Vec<Entry>,
}

/// Why a bundle cannot be flashed; each names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: not a directory (--bundle takes an unpacked vendor image)", path.display())]
    NotADir { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A part the layout needs is not in the bundle.
    #[error("{}: missing from the bundle ({what})", path.display())]
    Missing { path: PathBuf, what: String },
    /// Several files could be the same part.
    #[error("{}: several files could be the {what}: {}", dir.display(), candidates.join(", "))]
    Ambiguous { dir: PathBuf, what: String, candidates: Vec<String> },
    #[error("{}: not valid JSON: {message}", path.display())]
    BadJson { path: PathBuf, message: String },
    /// A field of a table is missing or malformed.
    #[error("{}: {at}: {message}", path.display())]
    BadField { path: PathBuf, at: String, message: String },
    /// No partition table in a SpacemiT bundle.
    #[error("{}: no partition_*.json in the bundle", dir.display())]
    NoTable { dir: PathBuf },
    /// The device's storage matches none of the bundle's tables.
    #[error(
        "{}: no partition table for the device's storage (blk-size: {}, mtd-size: {}); the bundle has {}",
        dir.display(), blk.as_deref().unwrap_or("not answered"), mtd.as_deref().unwrap_or("not answered"), have.join(", ")
    )]
    NoLayout { dir: PathBuf, blk: Option<String>, mtd: Option<String>, have: Vec<String> },
    /// A NOR table's partition runs past the NOR the device reports.
    #[error(
        "{}: partition '{name}' ends at {end} bytes, past the device's {reported} NOR ({nor} bytes)",
        path.display()
    )]
    PastTheNor { path: PathBuf, name: String, end: u64, reported: String, nor: u64 },
}

impl Classify for BundleError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            BundleError::NotADir { .. } | BundleError::Missing { .. } | BundleError::NoTable { .. } => {
                "unpack the whole vendor image (Bianbu: the release .zip; RevyOS: u-boot-with-spl.bin, boot.ext4, root.ext4) into one directory".into()
            }
            BundleError::Ambiguous { .. } => "keep one image set per directory".into(),
            BundleError::BadJson { .. } | BundleError::BadField { .. } => {
                "the table is the vendor's partition_*.json; restore it from the release".into()
            }
            BundleError::NoLayout { .. } => {
                "flash the partitions one by one with --partition NAME=FILE, or use a bundle made for this storage (a NOR board needs a partition_<size>.json no larger than its NOR)".into()
            }
            BundleError::PastTheNor { .. } => {
                "use the bundle's table for this NOR size (partition_<size>.json), or fix the entry's offset and size".into()
            }
            BundleError::Read { .. } => return None,
        })
    }
}

/// A size or offset as the tables write them: `640K`, `2M`, `1G`, `80B`,
/// plain bytes, or `-` (the rest).
pub fn parse_size(s: &str) -> Option<Size> {
    let t = s.trim();
    if t == "-" {
        return Some(Size::Rest);
    }
    let (digits, shift) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 10),
        'M' | 'm' => (&t[..t.len() - 1], 20),
        'G' | 'g' => (&t[..t.len() - 1], 30),
        'B' | 'b' => (&t[..t.len() - 1], 0),
        _ => (t, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1 << shift).map(Size::Bytes)
}

fn field<'a>(
    path: &Path,
    at: &str,
    v: &'a serde_json::Value,
    key: &str,
) -> Result<Option<&'a str>, BundleError> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(BundleError::BadField {
            path: path.into(),
            at: format!("{at} \"{key}\""),
            message: format!("expected a string, found {other}"),
        }),
    }
}

/// Reads and checks one table.
pub fn read_table(path: &Path) -> Result<Table, BundleError> {
    let bytes = std::fs::read(path).map_err(|source| BundleError::Read { path: path.into(), source })?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| BundleError::BadJson { path: path.into(), message: e.to_string() })?;
    let bad = |at: &str, message: String| BundleError::BadField { path: path.into(), at: at.into(), message };
    let format = match field(path, "the table", &v, "format")? {
        Some("gpt") => Format::Gpt,
        Some("mtd") => Format::Mtd,
        Some(f) => return Err(bad("\"format\"", format!("{f:?} is neither \"gpt\" nor \"mtd\""))),
        None => return Err(bad("\"format\"", "missing".into())),
    };
    let Some(parts) = v.get("partitions").and_then(|p| p.as_array()) else {
        return Err(bad("\"partitions\"", "missing or not a list".into()));
    };
    let mut entries = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let at = format!("partition {}", i + 1);
        let Some(name) = field(path, &at, p, "name")?.filter(|n| !n.is_empty()) else {
            return Err(bad(&at, "has no \"name\"".into()));
        };
        let at = format!("partition {:?}", name);
        let size_of = |key: &str| -> Result<Option<Size>, BundleError> {
            match field(path, &at, p, key)? {
                None => Ok(None),
                Some(s) => parse_size(s).map(Some).ok_or_else(|| {
                    bad(&format!("{at} \"{key}\""), format!("{s:?} is not a size (write 640K, 2M, - )"))
                }),
            }
        };
        let offset = match size_of("offset")? {
            Some(Size::Bytes(b)) => Some(b),
            Some(Size::Rest) => {
                return Err(bad(&format!("{at} \"offset\""), "\"-\" is not an offset".into()));
            }
            None => None,
        };
        let size = size_of("size")?;
        let image = match p.get("image") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let hidden = p.get("hidden").and_then(|h| h.as_bool()).unwrap_or(false);
        entries.push(Entry { name: name.into(), offset, size, image, hidden });
    }
    Ok(Table { path: path.into(), format, entries })
}

/// What a bundle holds.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A Bianbu image: the two ROM stages and its tables.
    Spacemit { fsbl: PathBuf, uboot: PathBuf, tables: Vec<Table> },
    /// A RevyOS image set.
    RevyOs { uboot: PathBuf, boot: PathBuf, root: PathBuf },
}

/// A bundle, checked: every part present.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub kind: Kind,
}

fn need(dir: &Path, rel: &str, what: &str) -> Result<PathBuf, BundleError> {
    let p = dir.join(rel);
    if p.is_file() { Ok(p) } else { Err(BundleError::Missing { path: p, what: what.into() }) }
}

/// The one file in `dir` named `prefix…suffix` (the exact name first).
fn one_of(dir: &Path, exact: &str, prefix: &str, suffix: &str, what: &str) -> Result<PathBuf, BundleError> {
    if dir.join(exact).is_file() {
        return Ok(dir.join(exact));
    }
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| BundleError::Read { path: dir.into(), source })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    found.sort();
    match found.len() {
        0 => Err(BundleError::Missing { path: dir.join(exact), what: what.into() }),
        1 => Ok(dir.join(&found[0])),
        _ => Err(BundleError::Ambiguous { dir: dir.into(), what: what.into(), candidates: found }),
    }
}

/// Opens the bundle at `dir` for a board of `soc`: every part the layout
/// needs, every table well-formed, and every image a table names present.
pub fn open(dir: &Path, soc: Soc) -> Result<Bundle, BundleError> {
    if !dir.is_dir() {
        return Err(BundleError::NotADir { path: dir.into() });
    }
    let kind = match soc {
        Soc::K1 => {
            let fsbl = need(dir, "factory/FSBL.bin", "the FSBL the boot ROM runs")?;
            let uboot = need(dir, "u-boot.itb", "the U-Boot the FSBL runs")?;
            let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|source| BundleError::Read { path: dir.into(), source })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("partition_") && n.ends_with(".json"))
                })
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(BundleError::NoTable { dir: dir.into() });
            }
            let mut tables = Vec::new();
            for p in names {
                let t = read_table(&p)?;
                for e in &t.entries {
                    if let Some(img) = &e.image {
                        let what = format!("the image of partition '{}' in {}", e.name, table_name(&t));
                        need(dir, img, &what)?;
                    }
                }
                tables.push(t);
            }
            Kind::Spacemit { fsbl, uboot, tables }
        }
        Soc::Th1520 => Kind::RevyOs {
            uboot: one_of(
                dir,
                "u-boot-with-spl.bin",
                "u-boot-with-spl",
                ".bin",
                "the U-Boot (u-boot-with-spl.bin)",
            )?,
            boot: one_of(dir, "boot.ext4", "boot", ".ext4", "the boot partition image (boot.ext4)")?,
            root: one_of(dir, "root.ext4", "root", ".ext4", "the root partition image (root.ext4)")?,
        },
    };
    Ok(Bundle { dir: dir.into(), kind })
}

/// A table's file name.
pub fn table_name(t: &Table) -> String {
    t.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The size a NOR table is for: `partition_2M.json` → 2 MiB.
fn nor_size(t: &Table) -> Option<u64> {
    let n = table_name(t);
    let s = n.strip_prefix("partition_")?.strip_suffix(".json")?;
    match parse_size(s)? {
        Size::Bytes(b) if b > 0 && t.format == Format::Mtd => Some(b),
        _ => None,
    }
}

/// The tables for the device's storage, in the order they are flashed, as
/// titanflasher picks them from `getvar mtd-size` and `getvar blk-size`. A
/// NOR size (the board boots from its NOR) picks `partition_{size}.json` or
/// the largest NOR table below it (there must be one: the vendor docs say
/// the flasher finds no table otherwise); when the device also reports a
/// block device (`universal`), its `partition_universal.json` follows, as
/// the vendor's NOR + block recipe flashes the NOR's table and images,
/// then the block device's. Without a NOR, a block device picks
/// `partition_universal.json` alone.
pub fn pick<'a>(
    dir: &Path,
    tables: &'a [Table],
    blk: Option<&str>,
    mtd: Option<&str>,
) -> Result<Vec<&'a Table>, BundleError> {
    fn named(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty() && *v != "NULL")
    }
    let none = || BundleError::NoLayout {
        dir: dir.into(),
        blk: blk.map(Into::into),
        mtd: mtd.map(Into::into),
        have: tables.iter().map(table_name).collect(),
    };
    let blk_table =
        named(blk).and_then(|b| tables.iter().find(|t| table_name(t) == format!("partition_{b}.json")));
    match named(mtd).map(parse_size) {
        Some(Some(Size::Bytes(have))) => {
            let nor = tables
                .iter()
                .filter(|t| nor_size(t).is_some_and(|s| s <= have))
                .max_by_key(|t| nor_size(t))
                .ok_or_else(none)?;
            Ok(std::iter::once(nor).chain(blk_table).collect())
        }
        Some(_) => Err(none()),
        None => blk_table.map(|t| vec![t]).ok_or_else(none),
    }
}

/// Each entry of an MTD table with its offset and size in bytes on a NOR of
/// `nor` bytes, laid out as `mtdparts` lays them out: an entry without an
/// offset follows the one before, `-` runs to the end of the NOR. An entry
/// that ends past the NOR is refused (`reported` is the device's
/// `mtd-size` answer, for the message).
pub fn nor_layout(table: &Table, nor: u64, reported: &str) -> Result<Vec<(String, u64, u64)>, BundleError> {
    let mut out = Vec::new();
    let mut next = 0u64;
    for e in &table.entries {
        let offset = e.offset.unwrap_or(next);
        let size = match e.size {
            Some(Size::Bytes(b)) => b,
            Some(Size::Rest) => nor.saturating_sub(offset),
            // `mtdparts` refuses a partition of size 0 ("partition size too small").
            None => {
                return Err(BundleError::BadField {
                    path: table.path.clone(),
                    at: format!("partition {:?} \"size\"", e.name),
                    message: "missing (an MTD partition needs a size, or - for the rest)".into(),
                });
            }
        };
        let end = offset.saturating_add(size);
        if end > nor || offset >= nor {
            return Err(BundleError::PastTheNor {
                path: table.path.clone(),
                name: e.name.clone(),
                end,
                reported: reported.into(),
                nor,
            });
        }
        out.push((e.name.clone(), offset, size));
        next = end;
    }
    Ok(out)
}

/// What is flashed for `table`, in order: the table itself under
/// `gpt`/`mtd`, then each entry with one image.
pub fn steps(dir: &Path, table: &Table) -> Vec<(String, PathBuf)> {
    let mut s = vec![(table.format.flash_name().to_string(), table.path.clone())];
    s.extend(table.entries.iter().filter_map(|e| e.image.as_ref().map(|i| (e.name.clone(), dir.join(i)))));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIVERSAL: &str = r#"{"version": "1.0", "format": "gpt", "partitions": [
        {"name": "bootinfo", "hidden": true, "offset": "0K", "size": "512", "image": "factory/bootinfo_sd.bin"},
        {"name": "fsbl", "offset": "256K", "size": "256K", "image": "factory/FSBL.bin"},
        {"name": "env", "offset": "512K", "size": "128K", "image": "env.bin"},
        {"name": "opensbi", "size": "384K", "image": "fw_dynamic.itb"},
        {"name": "uboot", "size": "2M", "image": "u-boot.itb"},
        {"name": "bootfs", "offset": "4M", "size": "256M", "image": "bootfs.ext4"},
        {"name": "rootfs", "offset": "260M", "size": "-", "image": "rootfs.ext4"}]}"#;
    const NOR: &str = r#"{"version": "1.0", "format": "mtd", "partitions": [
        {"name": "bootinfo", "offset": "0", "size": "64K", "image": "factory/bootinfo_spinor.bin"},
        {"name": "env", "offset": "512K", "size": "128K"},
        {"name": "uboot", "offset": "1M", "size": "1M", "image": "u-boot.itb"}]}"#;

    fn bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("factory")).unwrap();
        for (n, body) in files {
            std::fs::write(d.path().join(n), body).unwrap();
        }
        d
    }

    const K1_FILES: &[(&str, &str)] = &[
        ("factory/FSBL.bin", "f"),
        ("factory/bootinfo_sd.bin", "b"),
        ("factory/bootinfo_spinor.bin", "n"),
        ("env.bin", "e"),
        ("fw_dynamic.itb", "o"),
        ("u-boot.itb", "u"),
        ("bootfs.ext4", "bf"),
        ("rootfs.ext4", "rf"),
        ("partition_universal.json", UNIVERSAL),
        ("partition_2M.json", NOR),
    ];

    #[test]
    fn the_vendor_table_reads_with_its_sizes_and_images() {
        let d = bundle(K1_FILES);
        let t = read_table(&d.path().join("partition_universal.json")).unwrap();
        assert_eq!(t.format, Format::Gpt);
        assert_eq!(t.entries.len(), 7);
        assert_eq!(t.entries[0].size, Some(Size::Bytes(512)));
        assert!(t.entries[0].hidden);
        assert_eq!(t.entries[2].offset, Some(512 << 10));
        assert_eq!(t.entries[3].offset, None);
        assert_eq!(t.entries[6].size, Some(Size::Rest));
        let names: Vec<String> = steps(d.path(), &t).into_iter().map(|s| s.0).collect();
        assert_eq!(names, ["gpt", "bootinfo", "fsbl", "env", "opensbi", "uboot", "bootfs", "rootfs"]);
        assert_eq!(parse_size("80B"), Some(Size::Bytes(80)));
        assert_eq!(parse_size("1G"), Some(Size::Bytes(1 << 30)));
        assert_eq!(parse_size("12Q"), None);
    }

    #[test]
    fn the_layout_follows_the_reported_storage() {
        let d = bundle(K1_FILES);
        let Kind::Spacemit { tables, .. } = open(d.path(), Soc::K1).unwrap().kind else { panic!() };
        let pick_name = |blk, mtd| {
            pick(d.path(), &tables, blk, mtd).map(|t| t.into_iter().map(table_name).collect::<Vec<_>>())
        };
        // eMMC/SD boot: blk-size "universal", mtd-size "NULL".
        assert_eq!(pick_name(Some("universal"), Some("NULL")).unwrap(), ["partition_universal.json"]);
        // An 8 MiB NOR takes the largest NOR table that fits it.
        assert_eq!(pick_name(Some("NULL"), Some("8M")).unwrap(), ["partition_2M.json"]);
        // A NOR with a block device behind it: the NOR's table, then the block device's.
        assert_eq!(
            pick_name(Some("universal"), Some("8M")).unwrap(),
            ["partition_2M.json", "partition_universal.json"]
        );
        // A NOR smaller than every NOR table: no layout, block device or not.
        assert!(matches!(pick_name(Some("NULL"), Some("1M")), Err(BundleError::NoLayout { .. })));
        assert!(matches!(pick_name(Some("universal"), Some("1M")), Err(BundleError::NoLayout { .. })));
        assert!(matches!(pick_name(None, None), Err(BundleError::NoLayout { .. })));
        // The NOR table laid out on an 8 MiB NOR: an entry without a size
        // runs to its end; one past it is refused.
        let nor = tables.iter().find(|t| t.format == Format::Mtd).unwrap();
        let l = nor_layout(nor, 8 << 20, "8M").unwrap();
        assert_eq!(l[1], ("env".to_string(), 512 << 10, 128 << 10));
        assert!(matches!(nor_layout(nor, 1536 << 10, "1536K"), Err(BundleError::PastTheNor { .. })));
    }

    #[test]
    fn a_broken_bundle_names_the_file_and_the_problem() {
        let d = bundle(&K1_FILES[..K1_FILES.len() - 1]);
        std::fs::remove_file(d.path().join("rootfs.ext4")).unwrap();
        let e = open(d.path(), Soc::K1).unwrap_err().to_string();
        assert!(e.contains("rootfs.ext4: missing from the bundle"), "{e}");
        assert!(e.contains("partition 'rootfs' in partition_universal.json"), "{e}");
        let d = bundle(&[
            ("factory/FSBL.bin", "f"),
            ("u-boot.itb", "u"),
            ("partition_universal.json", "{\"format\": "),
        ]);
        let e = open(d.path(), Soc::K1).unwrap_err().to_string();
        assert!(e.contains("partition_universal.json: not valid JSON"), "{e}");
        let d = bundle(&[
            ("factory/FSBL.bin", "f"),
            ("u-boot.itb", "u"),
            ("partition_universal.json", r#"{"format": "gpt", "partitions": [{"name": "a", "size": "2X"}]}"#),
        ]);
        let e = open(d.path(), Soc::K1).unwrap_err().to_string();
        assert!(e.contains("partition \"a\" \"size\": \"2X\" is not a size"), "{e}");
        let d = bundle(&[("u-boot.itb", "u")]);
        assert!(open(d.path(), Soc::K1).unwrap_err().to_string().contains("FSBL.bin: missing"));
        assert!(matches!(open(&d.path().join("u-boot.itb"), Soc::K1), Err(BundleError::NotADir { .. })));
    }

    #[test]
    fn a_revyos_set_is_found_by_its_names() {
        let d = bundle(&[
            ("u-boot-with-spl-lpi4a-16g.bin", "u"),
            ("boot-lpi4a-20240720.ext4", "b"),
            ("root-lpi4a-20240720.ext4", "r"),
        ]);
        let Kind::RevyOs { uboot, boot, root } = open(d.path(), Soc::Th1520).unwrap().kind else { panic!() };
        assert!(uboot.ends_with("u-boot-with-spl-lpi4a-16g.bin"));
        assert!(boot.ends_with("boot-lpi4a-20240720.ext4") && root.ends_with("root-lpi4a-20240720.ext4"));
        std::fs::write(d.path().join("root-other.ext4"), "r").unwrap();
        assert!(matches!(open(d.path(), Soc::Th1520), Err(BundleError::Ambiguous { .. })));
        std::fs::write(d.path().join("root.ext4"), "r").unwrap();
        assert!(open(d.path(), Soc::Th1520).is_ok(), "the exact name wins");
    }
}
