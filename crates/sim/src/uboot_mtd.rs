//! The SPI NOR behind a virtual SpacemiT K1 vendor U-Boot that boots from
//! it: the `flash mtd` table, MTD partitions found by name, erase-then-write
//! flashing, and the sizes `getvar` reports.
//!
//! Written from eshattow/spacemit-com-uboot-2022.10:
//! `drivers/fastboot/fb_spacemit.c` (`_parse_flash_config` for a
//! `"format": "mtd"` table: `SIZE@OFFK(NAME)` joined by commas, an entry
//! without an offset following the one before, `bootinfo` kept; then
//! `_write_mtd_partition`: `mtdids=<nor>=spi-dev`, `mtdparts=spi-dev:…`),
//! `drivers/fastboot/fb_mtd.c` (`fb_mtd_lookup`, `fastboot_mtd_flash_write`:
//! "invalid mtd device or partition", "download_bytes is greater than part
//! size", the whole partition erased before a raw or sparse write;
//! `fastboot_mtd_get_part_info`: "can not find mtd part") and
//! `drivers/fastboot/fb_getvar.c` (`getvar_mtd_size`: the first MTD
//! device's size as `%lldG`, `%lldM` or `%lldK`); and from U-Boot's
//! `cmd/mtdparts.c` (u-boot/u-boot: `part_parse`, `memsize_parse`,
//! `part_validate`, `part_validate_eraseblock`, `part_sort_add`), which
//! `fb_mtd_lookup` runs on `mtdparts` (`mtdparts_init`): one bad partition
//! and the device has none. The erase block is SpacemiT's documented
//! default for its NOR tables (64 KiB: "partition offsets and sizes are
//! aligned to 64KB by default", unless `CONFIG_SPI_FLASH_USE_4K_SECTORS`).
//! The revision followed is the repository's later one (an offset replaces
//! the running position, `combine_size = off`, and `_clear_env_part` erases
//! `env` after `flash mtd`); its earliest `fb_spacemit.c` added the offset
//! to the running position instead and had no `_clear_env_part`.
//! Nothing here comes from the client crate.

use crate::storage::Medium;
use crate::uboot_storage::{c_ulong, spacemit_kib};

/// The NOR of this model: 8 MiB, as on the K1 boards that boot from NOR.
pub const NOR_SIZE: u64 = 8 << 20;
/// Its erase block (uniform NOR, one erase region).
pub const ERASE_SIZE: u64 = 64 << 10;
/// `MIN_PART_SIZE` of `cmd/mtdparts.c`.
const MIN_PART_SIZE: u64 = 4096;
/// What erased NOR cells read as.
pub const ERASED: u8 = 0xff;

/// One MTD partition of `mtdparts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtdPart {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// `_parse_flash_config` for a `"format": "mtd"` table: the partition list
/// `_write_mtd_partition` puts behind `spi-dev:` in `mtdparts`. `Err` is
/// why the vendor returns before any `mtdparts` is set ("parsing config
/// fail" when the JSON or its list is missing, "offset must larger then
/// previous size and offset").
pub fn spacemit_mtd_string(json: &[u8]) -> Result<String, &'static str> {
    let text = json.split(|&b| b == 0).next().unwrap_or_default();
    let root: serde_json::Value = serde_json::from_slice(text).map_err(|_| "parsing config fail")?;
    if root.get("format").and_then(|f| f.as_str()).is_none_or(|f| !f.starts_with("mtd")) {
        return Err("not an mtd table");
    }
    let parts = root.get("partitions").and_then(|p| p.as_array()).ok_or("parsing config fail")?;
    let text_of =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut out: Vec<String> = Vec::new();
    // In KiB, as the vendor keeps it (`combine_size`).
    let mut combined = 0u64;
    for p in parts {
        let (name, offset, size) = (text_of(p, "name"), text_of(p, "offset"), text_of(p, "size"));
        let off = spacemit_kib(&offset);
        if off > 0 && off < combined {
            return Err("offset must larger then previous size and offset");
        }
        if off > 0 {
            combined = off;
        }
        out.push(format!("{size}@{combined}K({name})"));
        combined = combined.saturating_add(spacemit_kib(&size));
    }
    Ok(out.join(","))
}

/// `memsize_parse`: `simple_strtoull(p, &p, 0)` and an optional `K`, `M`,
/// `G` (either case), the rest returned.
fn memsize(s: &str) -> (u64, &str) {
    let (n, rest) = c_ulong(s);
    let n = n.unwrap_or(0);
    let shift = match rest.chars().next() {
        Some('G' | 'g') => 30,
        Some('M' | 'm') => 20,
        Some('K' | 'k') => 10,
        _ => return (n, rest),
    };
    (n.checked_shl(shift).filter(|v| v >> shift == n).unwrap_or(u64::MAX), &rest[1..])
}

/// `mtdparts_init` of `mtdparts` for the device `spi-dev` of `dev_size`
/// bytes and erase block `erase`: its partitions, or `Err` with what
/// `cmd/mtdparts.c` prints when it refuses (then no partition is found).
pub fn mtdparts(mtdparts: &str, dev_size: u64, erase: u64) -> Result<Vec<MtdPart>, String> {
    let Some(list) = mtdparts.strip_prefix("spi-dev:") else {
        return Err("invalid mtd device".into());
    };
    let mut parts: Vec<MtdPart> = Vec::new();
    let mut p = list;
    let mut next_offset = 0u64;
    while !p.is_empty() && !p.starts_with(';') {
        let (size, rest) = match p.strip_prefix('-') {
            Some(rest) => (None, rest),
            None => {
                let (n, rest) = memsize(p);
                if n < MIN_PART_SIZE {
                    return Err(format!("partition size too small ({n:x})"));
                }
                (Some(n), rest)
            }
        };
        let (offset, rest) = match rest.strip_prefix('@') {
            Some(r) => {
                let (o, r) = memsize(r);
                (Some(o), r)
            }
            None => (None, rest),
        };
        let (name, rest) = match rest.strip_prefix('(') {
            Some(r) => {
                let Some(end) = r.find(')') else {
                    return Err("no closing ) found in partition name".into());
                };
                if end == 0 {
                    return Err("empty partition name".into());
                }
                (r[..end].to_string(), &r[end + 1..])
            }
            None => (String::new(), rest),
        };
        let rest = rest.strip_prefix("ro").unwrap_or(rest);
        p = match rest.chars().next() {
            Some(',') if size.is_none() => {
                return Err("no partitions allowed after a fill-up partition".into());
            }
            Some(',') => &rest[1..],
            None | Some(';') => rest,
            Some(c) => return Err(format!("unexpected character '{c}' at the end of partition")),
        };
        let offset = offset.unwrap_or(next_offset);
        // part_validate
        let size = size.unwrap_or(dev_size.saturating_sub(offset));
        let name = if name.is_empty() { format!("0x{size:08x}@0x{offset:08x}") } else { name };
        if offset > dev_size {
            return Err(format!("spi-dev: offset {offset:08x} beyond flash size {dev_size:08x}"));
        }
        let Some(end) = offset.checked_add(size).filter(|e| *e > offset) else {
            return Err(format!("nor0: partition ({name}) size too big"));
        };
        if end > dev_size {
            return Err("spi-dev: partitioning exceeds flash size".into());
        }
        if offset % erase != 0 {
            return Err(format!("nor0: partition ({name}) start offsetalignment incorrect"));
        }
        if size % erase != 0 {
            return Err(format!("nor0: partition ({name}) size alignment incorrect"));
        }
        // part_sort_add: one partition at offset 0.
        if offset == 0 && parts.iter().any(|q| q.offset == 0) {
            return Err("cannot add second partition at offset 0".into());
        }
        next_offset = end;
        parts.push(MtdPart { name, offset, size });
    }
    parts.sort_by_key(|q| q.offset);
    Ok(parts)
}

/// `getvar mtd-size`: the NOR's size as `getvar_mtd_size` prints it.
pub fn size_text(size: u64) -> String {
    if size >= 1 << 30 {
        format!("{}G", size >> 30)
    } else if size >= 1 << 20 {
        format!("{}M", size >> 20)
    } else {
        format!("{}K", size >> 10)
    }
}

/// `fb_mtd_lookup(name)`: the partition of that name, or the FAIL text a
/// lookup ends in (`mtdparts` not set or refused: none is found).
pub fn lookup(table: Option<&str>, dev_size: u64, name: &str) -> Result<MtdPart, &'static str> {
    let table = table.ok_or("invalid mtd device or partition")?;
    let parts = mtdparts(table, dev_size, ERASE_SIZE).map_err(|_| "invalid mtd device or partition")?;
    parts.into_iter().find(|p| p.name == name).ok_or("invalid mtd device or partition")
}

/// `fastboot_mtd_flash_write` of a download to partition `p`: the whole
/// partition erased, then the data written raw (a NOR's write unit is one
/// byte, so nothing is rounded) or as a sparse image. `Err` is the FAIL text.
pub fn flash(nor: &mut Medium, p: &MtdPart, data: &[u8]) -> Result<u64, &'static str> {
    if data.len() as u64 > p.size {
        return Err("download_bytes is greater than part size");
    }
    nor.erase(p.offset, p.size).map_err(|_| "failed erasing from device")?;
    if crate::uboot_storage::is_sparse_image(data) {
        return crate::uboot_storage::write_sparse(nor, p.offset, p.size, 1, data);
    }
    nor.write(p.offset, data).map_err(|_| "Failed to write mtd part")?;
    Ok(data.len() as u64)
}

/// `fastboot_mtd_flash_erase`: the partition reads as erased NOR (0xFF).
pub fn erase(nor: &mut Medium, p: &MtdPart) -> Result<u64, &'static str> {
    nor.erase(p.offset, p.size).map_err(|_| "failed erasing from device")?;
    Ok(p.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SpacemiT's `partition_2M.json` (the K1 docs' NOR table): the
    /// `mtdparts` string worked by hand from `_parse_flash_config`
    /// (offsets in KiB; "0" has no unit, so it counts as no offset), and
    /// the partitions `cmd/mtdparts.c` makes of it on an 8 MiB NOR.
    #[test]
    fn the_vendor_nor_table_makes_its_mtdparts() {
        let json = br#"{"version": "1.0", "format": "mtd", "partitions": [
            {"name": "bootinfo", "offset": "0", "size": "128K", "image": "factory/bootinfo_spinor.bin"},
            {"name": "fsbl", "offset": "128K", "size": "256K", "image": "factory/FSBL.bin"},
            {"name": "env", "offset": "384K", "size": "64K"},
            {"name": "opensbi", "offset": "448K", "size": "192K", "image": "fw_dynamic.itb"},
            {"name": "uboot", "offset": "640K", "size": "-", "image": "u-boot.itb"}]}"#;
        let t = spacemit_mtd_string(json).unwrap();
        assert_eq!(t, "128K@0K(bootinfo),256K@128K(fsbl),64K@384K(env),192K@448K(opensbi),-@640K(uboot)");
        let parts = mtdparts(&format!("spi-dev:{t}"), NOR_SIZE, ERASE_SIZE).unwrap();
        let got: Vec<(&str, u64, u64)> = parts.iter().map(|p| (p.name.as_str(), p.offset, p.size)).collect();
        assert_eq!(
            got,
            [
                ("bootinfo", 0, 128 << 10),
                ("fsbl", 128 << 10, 256 << 10),
                ("env", 384 << 10, 64 << 10),
                ("opensbi", 448 << 10, 192 << 10),
                ("uboot", 640 << 10, NOR_SIZE - (640 << 10)),
            ]
        );
        assert_eq!(size_text(NOR_SIZE), "8M");
        assert_eq!(lookup(Some(&format!("spi-dev:{t}")), NOR_SIZE, "env").unwrap().offset, 384 << 10);
        assert_eq!(lookup(None, NOR_SIZE, "env"), Err("invalid mtd device or partition"));
    }

    #[test]
    fn mtdparts_refuses_what_does_not_fit_or_align() {
        let m = |s: &str| mtdparts(&format!("spi-dev:{s}"), NOR_SIZE, ERASE_SIZE);
        assert_eq!(m("9M@0K(big)").unwrap_err(), "spi-dev: partitioning exceeds flash size");
        assert!(m("64K@9M(far)").unwrap_err().contains("beyond flash size"));
        assert!(m("100K@0K(odd)").unwrap_err().contains("size alignment incorrect"));
        assert!(m("64K@4K(odd)").unwrap_err().contains("start offsetalignment incorrect"));
        assert!(m("-@0K(a),64K@1M(b)").unwrap_err().contains("after a fill-up"));
        assert!(m("64K@0K(a),64K@0K(b)").unwrap_err().contains("second partition at offset 0"));
        assert!(m("2K@0K(a)").unwrap_err().contains("too small"));
        // An entry without an offset follows the one before.
        let p = m("64K(a),128K(b)").unwrap();
        assert_eq!((p[1].offset, p[1].size), (64 << 10, 128 << 10));
        // Absurd numbers are refused, never a panic.
        assert!(m("18446744073709551615G@0K(a)").is_err());
        let back = br#"{"format": "mtd", "partitions": [
            {"name": "a", "offset": "1M", "size": "1M"}, {"name": "b", "offset": "1536K", "size": "1M"}]}"#;
        assert_eq!(spacemit_mtd_string(back), Err("offset must larger then previous size and offset"));
    }

    #[test]
    fn a_partition_is_erased_before_it_is_written() {
        let mut nor = Medium::in_memory(NOR_SIZE, ERASED);
        let p = MtdPart { name: "fsbl".into(), offset: 128 << 10, size: 256 << 10 };
        nor.write(p.offset, &[7; 4096]).unwrap();
        assert_eq!(flash(&mut nor, &p, &[1; 100]), Ok(100));
        assert_eq!(nor.read(p.offset, 100).unwrap(), vec![1; 100]);
        assert_eq!(nor.read(p.offset + 100, 4096).unwrap(), vec![0xff; 4096], "the rest of it is erased");
        assert_eq!(
            flash(&mut nor, &p, &vec![1; (256 << 10) + 1]),
            Err("download_bytes is greater than part size")
        );
        assert_eq!(erase(&mut nor, &p), Ok(256 << 10));
        assert_eq!(nor.read(p.offset, 100).unwrap(), vec![0xff; 100]);
    }
}
