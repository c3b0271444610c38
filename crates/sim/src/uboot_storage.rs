//! The eMMC behind a virtual vendor U-Boot's fastboot: a GPT, partitions
//! found by name, raw and Android-sparse writes, erase, and the sizes
//! `getvar partition-size` reports.
//!
//! Written from U-Boot (u-boot/u-boot @6073c36): `drivers/fastboot/fb_mmc.c`
//! (`fastboot_mmc_get_part_info`: "no such partition"; raw or sparse by the
//! download's magic), `drivers/fastboot/fb_block.c`
//! (`fastboot_block_write_raw_image`: the download rounded up to whole
//! blocks, "too large for partition"), `lib/image-sparse.c`
//! (`write_sparse_image`: the header and chunk header sizes it skips, the
//! block size a multiple of the storage's, "Bogus chunk size …", "Request
//! would exceed partition size!", "Unknown chunk type", and "sparse image
//! write failure" when the chunks do not add up to `total_blks`),
//! `drivers/fastboot/fb_getvar.c` (`partition-size` as `0x%016zx`) and the
//! GPT layout of the UEFI specification (header at LBA 1, 128-byte
//! entries, UTF-16LE names). Nothing here comes from the client crate.
//!
//! The partition layouts are the vendors': the TH1520's vendor U-Boot
//! rewrites the GPT from its `partitions` environment variable in USB boot
//! mode (`run gpt_partition`, revyos/thead-u-boot `light.c`; a Lichee Pi
//! 4A's `printenv`: `partitions=name=table,size=2031KB;name=boot,
//! size=500MiB,type=boot;name=root,size=-,type=linux`), and its `uboot`
//! name, which Sipeed's flashing steps use (`fastboot flash uboot
//! u-boot-with-spl.bin`) but no GPT lists, is taken to be the eMMC's boot0
//! hardware partition (an inference: the vendor source of that branch was
//! not read). The K1's comes from
//! SpacemiT's `partition_universal.json` (bootinfo, fsbl, env, opensbi,
//! uboot, bootfs, rootfs).

use crate::storage::Medium;

/// The block size of the eMMC's user area.
pub const BLOCK: u64 = 512;

/// One partition: its name and its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub first_lba: u64,
    pub blocks: u64,
}

impl Partition {
    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.blocks * BLOCK
    }
}

/// A partition layout: (name, size in bytes; 0 = the rest of the medium),
/// starting at `start` bytes.
#[derive(Debug)]
pub struct Layout {
    pub start: u64,
    pub parts: &'static [(&'static str, u64)],
}

const MIB: u64 = 1 << 20;

/// The Lichee Pi 4A's vendor U-Boot `partitions` (the first partition,
/// `table`, starts after the GPT at 17 KiB, 2031 KB long, so `boot` starts at 2 MiB).
pub const TH1520_LAYOUT: Layout =
    Layout { start: 17 * 1024, parts: &[("table", 2031 * 1024), ("boot", 500 * MIB), ("root", 0)] };

/// SpacemiT's `partition_universal.json` for eMMC (offsets as the vendor
/// image has them: bootinfo at 0, fsbl at 128 KiB, env at 384 KiB,
/// opensbi at 512 KiB, uboot at 640 KiB, bootfs at 4 MiB, rootfs after).
/// `bootinfo` sits in front of the GPT on a real eMMC boot partition; this
/// model keeps every part in the user area behind the GPT, starting at 1 MiB.
pub const K1_LAYOUT: Layout = Layout {
    start: MIB,
    parts: &[
        ("bootinfo", 128 * 1024),
        ("fsbl", 256 * 1024),
        ("env", 128 * 1024),
        ("opensbi", 128 * 1024),
        ("uboot", 2 * MIB),
        ("bootfs", 256 * MIB),
        ("rootfs", 0),
    ],
};

fn crc32(b: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

const ENTRIES: usize = 128;
const ENTRY: usize = 128;
/// Linux filesystem data.
const TYPE_LINUX: [u8; 16] =
    [0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4];

/// Writes a primary GPT for `layout` on `medium` (protective MBR, header
/// at LBA 1, entries at LBA 2..34), as `gpt write mmc` does.
pub fn write_gpt(medium: &mut Medium, layout: &Layout) {
    let total = medium.size() / BLOCK;
    let last_usable = total.saturating_sub(34);
    let mut parts = Vec::new();
    let mut lba = layout.start / BLOCK;
    for (name, size) in layout.parts {
        let blocks = if *size == 0 { last_usable.saturating_sub(lba) + 1 } else { size.div_ceil(BLOCK) };
        parts.push((name.to_string(), lba, lba + blocks - 1));
        lba += blocks;
    }
    write_gpt_entries(medium, &parts);
}

/// Writes a primary GPT with these (name, first LBA, last LBA) entries.
fn write_gpt_entries(medium: &mut Medium, parts: &[(String, u64, u64)]) {
    let total = medium.size() / BLOCK;
    let last_usable = total.saturating_sub(34);
    let mut entries = vec![0u8; ENTRIES * ENTRY];
    for (i, (name, first, last)) in parts.iter().enumerate().take(ENTRIES) {
        let e = &mut entries[i * ENTRY..(i + 1) * ENTRY];
        e[0..16].copy_from_slice(&TYPE_LINUX);
        // Unique GUID: any non-zero bytes (U-Boot may make random ones;
        // this model's are fixed so that two runs leave the same bytes).
        e[16] = i as u8 + 1;
        e[31] = 0x5a;
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
        for (j, u) in name.encode_utf16().take(36).enumerate() {
            e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
        }
    }
    let mut h = vec![0u8; BLOCK as usize];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&1u64.to_le_bytes());
    h[32..40].copy_from_slice(&(total - 1).to_le_bytes());
    h[40..48].copy_from_slice(&34u64.to_le_bytes());
    h[48..56].copy_from_slice(&last_usable.to_le_bytes());
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(ENTRY as u32).to_le_bytes());
    h[88..92].copy_from_slice(&crc32(&entries).to_le_bytes());
    let c = crc32(&h[..92]);
    h[16..20].copy_from_slice(&c.to_le_bytes());
    let mut mbr = vec![0u8; BLOCK as usize];
    mbr[446 + 4] = 0xee;
    mbr[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&(total.min(u64::from(u32::MAX)) as u32 - 1).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let _ = medium.write(0, &mbr);
    let _ = medium.write(BLOCK, &h);
    let _ = medium.write(2 * BLOCK, &entries);
}

/// The partitions of the primary GPT on `medium`, or none when there is no
/// valid one (bad signature or CRC: U-Boot's `part_get_info_by_name` then
/// finds nothing).
pub fn partitions(medium: &Medium) -> Vec<Partition> {
    let Ok(h) = medium.read(BLOCK, BLOCK as usize) else { return Vec::new() };
    if &h[0..8] != b"EFI PART" {
        return Vec::new();
    }
    let hsize = le32(&h, 12) as usize;
    if !(92..=BLOCK as usize).contains(&hsize) {
        return Vec::new();
    }
    let mut hc = h[..hsize].to_vec();
    hc[16..20].fill(0);
    if crc32(&hc) != le32(&h, 16) {
        return Vec::new();
    }
    let (at, n, size) = (le64(&h, 72), le32(&h, 80) as usize, le32(&h, 84) as usize);
    if size < 128 || n > 1024 {
        return Vec::new();
    }
    let Ok(entries) = medium.read(at * BLOCK, n * size) else { return Vec::new() };
    if crc32(&entries) != le32(&h, 88) {
        return Vec::new();
    }
    entries
        .chunks(size)
        .filter(|e| e[0..16].iter().any(|&b| b != 0))
        .map(|e| {
            let units: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            let (first, last) = (le64(e, 32), le64(e, 40));
            Partition {
                name: String::from_utf16_lossy(&units),
                first_lba: first,
                blocks: last.saturating_sub(first) + 1,
            }
        })
        .collect()
}

/// Finds a partition by name, as `fastboot_mmc_get_part_info` answers.
pub fn find(medium: &Medium, name: &str) -> Result<Partition, &'static str> {
    if name.is_empty() {
        return Err("partition not given");
    }
    partitions(medium).into_iter().find(|p| p.name == name).ok_or("no such partition")
}

/// `transfer_string_to_ul` (SpacemiT `fb_spacemit.c`): a size in KiB from
/// the text before its first `K`, `M` or `G`; 0 for `-`, for no unit, or
/// for nothing.
pub(crate) fn spacemit_kib(s: &str) -> u64 {
    if s.is_empty() || s.starts_with('-') {
        return 0;
    }
    let Some(at) = s.find(['K', 'M', 'G']) else { return 0 };
    let n = parse_c_ulong(&s[..at]).unwrap_or(0);
    // The vendor's arithmetic is 32-bit and wraps; this saturates instead,
    // so a hostile table cannot overflow the model.
    match &s[at..at + 1] {
        "K" => n,
        "M" => n.saturating_mul(1024),
        _ => n.saturating_mul(1024 * 1024),
    }
}

/// `simple_strtoul(s, &rest, 0)`: decimal, `0x` hex or leading-0 octal, up
/// to the first character that is not a digit; `None` without digits.
pub(crate) fn c_ulong(s: &str) -> (Option<u64>, &str) {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    let n = match (end, radix) {
        (0, 8) => Some(0),
        (0, _) => None,
        _ => u64::from_str_radix(&digits[..end], radix).ok(),
    };
    (n, &digits[end..])
}

fn parse_c_ulong(s: &str) -> Option<u64> {
    c_ulong(s).0
}

/// `ustrtoull(s, NULL, 0)` (U-Boot `lib/strto.c`): a number with an
/// optional binary unit `K`, `M` or `G` right after it.
fn ustrtoull(s: &str) -> u64 {
    let (n, rest) = c_ulong(s);
    let n = n.unwrap_or(0);
    match rest.chars().next() {
        Some('G') => n << 30,
        Some('M') => n << 20,
        Some('K' | 'k') => n << 10,
        _ => n,
    }
}

/// `_parse_flash_config` (SpacemiT `fb_spacemit.c`) for a `"format": "gpt"`
/// table: the `partitions` string it hands to `gpt write mmc`
/// (`name=N,start=OFF,size=SZ;`, `start` only where the entry has an
/// offset). `bootinfo` is left out (it is not a GPT partition on a block
/// device); an offset below the end of the entries before it is refused.
/// `Err` is the FAIL text.
pub fn spacemit_gpt_string(json: &[u8]) -> Result<String, &'static str> {
    // cJSON_Parse reads up to the first NUL.
    let text = json.split(|&b| b == 0).next().unwrap_or_default();
    let root: serde_json::Value = serde_json::from_slice(text).map_err(|_| "parsing config fail")?;
    if root.get("format").and_then(|f| f.as_str()).is_none_or(|f| !f.starts_with("gpt")) {
        return Err("not a gpt table");
    }
    let parts = root.get("partitions").and_then(|p| p.as_array()).ok_or("parsing config fail")?;
    let text_of =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut out = String::new();
    let mut combined = 0u64;
    for p in parts {
        let name = text_of(p, "name");
        if name.starts_with("bootinfo") {
            continue;
        }
        let (offset, size) = (text_of(p, "offset"), text_of(p, "size"));
        let off = spacemit_kib(&offset);
        if off > 0 && off < combined {
            return Err("offset must larger then previous size and offset");
        }
        if off > 0 {
            combined = off;
        }
        if offset.is_empty() {
            out.push_str(&format!("name={name},size={size};"));
        } else {
            out.push_str(&format!("name={name},start={offset},size={size};"));
        }
        combined = combined.saturating_add(spacemit_kib(&size));
    }
    Ok(out)
}

/// `gpt write mmc 0 PARTITIONS` (U-Boot `cmd/gpt.c` `set_gpt_info`,
/// `disk/part_efi.c` `gpt_fill_pte`): sizes and starts in bytes with an
/// optional unit, `size=-` the rest of the disk (last entry only); an entry
/// without `start` follows the one before; the first follows the entry
/// array (LBA 34). `Err` is the FAIL text vendor U-Boot sends.
pub fn gpt_write(medium: &mut Medium, partitions: &str) -> Result<Vec<Partition>, &'static str> {
    let total = medium.size() / BLOCK;
    let last_usable = total.saturating_sub(34);
    let specs: Vec<&str> = partitions.split(';').filter(|t| !t.is_empty()).collect();
    if specs.is_empty() || specs.len() > ENTRIES {
        return Err("write gpt fail");
    }
    let mut parts = Vec::new();
    let mut offset = 34u64;
    for (i, spec) in specs.iter().enumerate() {
        let val =
            |key: &str| spec.split(',').find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')));
        let name = val("name").ok_or("write gpt fail")?;
        let size = match val("size").ok_or("write gpt fail")? {
            "-" => 0,
            s => ustrtoull(s) / BLOCK,
        };
        let start = val("start").map(|s| ustrtoull(s) / BLOCK).unwrap_or(0);
        let start = if start != 0 {
            offset = start + size;
            start
        } else {
            let s = offset;
            offset += size;
            s
        };
        // The header (LBA 1) and the entries (LBA 2..34) cannot be
        // overlapped ("Partition overlap").
        if start < 34 {
            return Err("write gpt fail");
        }
        if offset > last_usable + 1 {
            return Err("write gpt fail");
        }
        let last = if i == specs.len() - 1 && size == 0 {
            last_usable
        } else if size == 0 {
            return Err("write gpt fail");
        } else {
            offset - 1
        };
        parts.push((name.to_string(), start, last));
    }
    write_gpt_entries(medium, &parts);
    Ok(partitions_of(&parts))
}

fn partitions_of(parts: &[(String, u64, u64)]) -> Vec<Partition> {
    parts.iter().map(|(n, f, l)| Partition { name: n.clone(), first_lba: *f, blocks: l - f + 1 }).collect()
}

const SPARSE_MAGIC: u32 = 0xed26_ff3a;

/// `is_sparse_image`: the magic, major version 1, and header sizes at
/// least the format's (28 and 12 bytes).
fn is_sparse(data: &[u8]) -> bool {
    data.len() >= 28
        && le32(data, 0) == SPARSE_MAGIC
        && u16::from_le_bytes([data[4], data[5]]) == 1
        && u16::from_le_bytes([data[8], data[9]]) >= 28
        && u16::from_le_bytes([data[10], data[11]]) >= 12
}

/// `flash:NAME` of a download: a sparse image as `write_sparse_image`
/// writes it, anything else raw, rounded up to whole blocks (the bytes past
/// the download's end are what the download buffer holds there: zeros in
/// this model). `Err` is the FAIL text.
pub fn flash(medium: &mut Medium, name: &str, data: &[u8]) -> Result<u64, &'static str> {
    let p = find(medium, name)?;
    let start = p.first_lba * BLOCK;
    if !is_sparse(data) {
        let blocks = (data.len() as u64).div_ceil(BLOCK);
        if blocks > p.blocks {
            return Err("too large for partition");
        }
        let mut padded = data.to_vec();
        padded.resize((blocks * BLOCK) as usize, 0);
        medium.write(start, &padded).map_err(|_| "failed writing to device")?;
        return Ok(padded.len() as u64);
    }
    write_sparse(medium, start, p.bytes(), BLOCK, data)
}

/// Whether a download is an Android sparse image (`is_sparse_image`).
pub fn is_sparse_image(data: &[u8]) -> bool {
    is_sparse(data)
}

/// `write_sparse_image` of `data` into the `len` bytes at `start` of
/// `medium`, whose write unit is `unit` bytes (512 for a block device's
/// blocks; an MTD's `writesize`). `Err` is the FAIL text.
pub fn write_sparse(
    medium: &mut Medium,
    start: u64,
    len: u64,
    unit: u64,
    data: &[u8],
) -> Result<u64, &'static str> {
    if !is_sparse(data) {
        return Err("sparse image write failure");
    }
    let file_hdr = u16::from_le_bytes([data[8], data[9]]) as usize;
    let chunk_hdr = u16::from_le_bytes([data[10], data[11]]) as u64;
    let blk_sz = u64::from(le32(data, 12));
    let total_blks = le32(data, 16);
    let chunks = le32(data, 20);
    if blk_sz == 0 || blk_sz % unit != 0 {
        return Err("sparse image block size issue");
    }
    let end = start + len;
    let mut at = start;
    let mut pos = file_hdr;
    let mut total: u64 = 0;
    let mut written = 0;
    for _ in 0..chunks {
        let Some(h) = data.get(pos..pos + 12) else { return Err("sparse image write failure") };
        let (kind, chunk_sz, total_sz) =
            (u16::from_le_bytes([h[0], h[1]]), le32(h, 4), u64::from(le32(h, 8)));
        pos += chunk_hdr as usize;
        let bytes = blk_sz * u64::from(chunk_sz);
        match kind {
            0xcac1 => {
                if total_sz != chunk_hdr + bytes {
                    return Err("Bogus chunk size for chunk type Raw");
                }
                if at + bytes > end {
                    return Err("Request would exceed partition size!");
                }
                let Some(raw) = data.get(pos..pos + bytes as usize) else {
                    return Err("flash write failure");
                };
                medium.write(at, raw).map_err(|_| "flash write failure")?;
                pos += bytes as usize;
                written += bytes;
            }
            0xcac2 => {
                if total_sz != chunk_hdr + 4 {
                    return Err("Bogus chunk size for chunk type FILL");
                }
                if at + bytes > end {
                    return Err("Request would exceed partition size!");
                }
                let Some(v) = data.get(pos..pos + 4) else { return Err("flash write failure") };
                let fill: Vec<u8> = v.iter().copied().cycle().take(bytes.min(1 << 20) as usize).collect();
                let mut off = 0;
                while off < bytes {
                    let n = (bytes - off).min(fill.len() as u64) as usize;
                    medium.write(at + off, &fill[..n]).map_err(|_| "flash write failure")?;
                    off += n as u64;
                }
                pos += 4;
                written += bytes;
            }
            // DONT_CARE: skipped (`info->reserve`); CRC32: its 4 bytes skipped.
            0xcac3 => {}
            0xcac4 => {
                if total_sz != chunk_hdr + 4 {
                    return Err("Bogus chunk size for chunk type CRC32");
                }
                pos += bytes as usize;
            }
            _ => return Err("Unknown chunk type"),
        }
        if kind != 0xcac4 {
            at += bytes;
        }
        total += u64::from(chunk_sz);
    }
    if total != u64::from(total_blks) {
        return Err("sparse image write failure");
    }
    Ok(written)
}

/// `erase:NAME`: the partition reads as erased eMMC (zeros) afterwards.
pub fn erase(medium: &mut Medium, name: &str) -> Result<u64, &'static str> {
    let p = find(medium, name)?;
    medium.erase(p.first_lba * BLOCK, p.bytes()).map_err(|_| "failed to erase partition")?;
    Ok(p.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn medium() -> Medium {
        let mut m = Medium::in_memory(8 << 30, 0);
        write_gpt(&mut m, &TH1520_LAYOUT);
        m
    }

    #[test]
    fn the_vendor_layout_reads_back_from_its_gpt() {
        let m = medium();
        let p = partitions(&m);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["table", "boot", "root"]);
        assert_eq!(p[1].first_lba * BLOCK, 2 << 20, "boot starts at 2 MiB");
        assert_eq!(p[1].bytes(), 500 << 20);
        assert_eq!(p[2].first_lba + p[2].blocks, (8 << 30) / BLOCK - 33, "root runs to the last usable LBA");
        assert_eq!(find(&m, "nope"), Err("no such partition"));
        // A damaged header: no partitions, as U-Boot's CRC check has it.
        let mut m = medium();
        m.write(BLOCK + 40, &[1]).unwrap();
        assert!(partitions(&m).is_empty());
    }

    #[test]
    fn raw_writes_round_up_to_blocks_and_refuse_what_does_not_fit() {
        let mut m = medium();
        assert_eq!(flash(&mut m, "boot", &[7; 1000]), Ok(1024));
        let at = find(&m, "boot").unwrap().first_lba * BLOCK;
        assert_eq!(m.read(at, 1024).unwrap(), [[7u8; 1000].as_slice(), &[0; 24]].concat());
        assert_eq!(flash(&mut m, "table", &vec![1; 2031 * 1024 + 1]), Err("too large for partition"));
        assert_eq!(flash(&mut m, "", &[1]), Err("partition not given"));
    }

    fn sparse(blk: u32, total: u32, chunks: &[(u16, u32, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(SPARSE_MAGIC.to_le_bytes());
        b.extend([1u8, 0, 0, 0, 28, 0, 12, 0]);
        b.extend(blk.to_le_bytes());
        b.extend(total.to_le_bytes());
        b.extend((chunks.len() as u32).to_le_bytes());
        b.extend(0u32.to_le_bytes());
        for (kind, n, data) in chunks {
            b.extend(kind.to_le_bytes());
            b.extend([0, 0]);
            b.extend(n.to_le_bytes());
            b.extend((12 + data.len() as u32).to_le_bytes());
            b.extend(data);
        }
        b
    }

    #[test]
    fn sparse_images_write_raw_fill_and_skip_dont_care() {
        let mut m = medium();
        let at = find(&m, "boot").unwrap().first_lba * BLOCK;
        m.write(at + 4096, &[9; 4096]).unwrap();
        let img = sparse(
            4096,
            4,
            &[
                (0xcac1, 1, vec![1; 4096]),
                (0xcac3, 1, vec![]),
                (0xcac2, 1, vec![0xaa, 0xbb, 0xcc, 0xdd]),
                (0xcac4, 1, vec![0; 4]),
            ],
        );
        assert_eq!(flash(&mut m, "boot", &img), Ok(8192));
        assert_eq!(m.read(at, 4096).unwrap(), vec![1; 4096]);
        assert_eq!(m.read(at + 4096, 4096).unwrap(), vec![9; 4096], "DONT_CARE leaves what was there");
        assert_eq!(&m.read(at + 8192, 8).unwrap(), &[0xaa, 0xbb, 0xcc, 0xdd, 0xaa, 0xbb, 0xcc, 0xdd]);
        // The chunks must add up to total_blks; a RAW chunk's size must match.
        assert_eq!(
            flash(&mut m, "boot", &sparse(4096, 5, &[(0xcac1, 1, vec![1; 4096])])),
            Err("sparse image write failure")
        );
        assert_eq!(
            flash(&mut m, "boot", &sparse(4096, 2, &[(0xcac1, 2, vec![1; 4096])])),
            Err("Bogus chunk size for chunk type Raw")
        );
        assert_eq!(
            flash(&mut m, "boot", &sparse(1000, 1, &[(0xcac3, 1, vec![])])),
            Err("sparse image block size issue")
        );
        assert_eq!(
            flash(&mut m, "boot", &sparse(4096, 1, &[(0xcac9, 1, vec![])])),
            Err("Unknown chunk type")
        );
        assert_eq!(
            flash(&mut m, "table", &sparse(4096, 600, &[(0xcac2, 600, vec![1, 2, 3, 4])])),
            Err("Request would exceed partition size!")
        );
        assert_eq!(erase(&mut m, "boot"), Ok(500 << 20));
        assert_eq!(m.read(at, 4096).unwrap(), vec![0; 4096]);
    }

    /// SpacemiT's `partition_universal.json` (spacemit-com/buildroot-ext
    /// board/spacemit/k1), as `flash gpt` takes it: the LBAs are U-Boot's
    /// `gpt write` arithmetic worked by hand (offsets in bytes / 512; an
    /// entry without offset follows the one before).
    #[test]
    fn flash_gpt_of_the_vendor_json_makes_its_gpt() {
        let json = br#"{"version": "1.0", "format": "gpt", "partitions": [
            {"name": "bootinfo", "hidden": true, "offset": "0K", "size": "512", "image": "factory/bootinfo_sd.bin"},
            {"name": "fsbl", "hidden": false, "offset": "256K", "size": "256K", "image": "factory/FSBL.bin"},
            {"name": "env", "offset": "512K", "size": "128K", "image": "env.bin"},
            {"name": "opensbi", "size": "384K", "image": "fw_dynamic.itb"},
            {"name": "uboot", "size": "2M", "image": "u-boot.itb"},
            {"name": "bootfs", "offset": "4M", "size": "256M", "image": "bootfs.img"},
            {"name": "rootfs", "offset": "260M", "size": "-", "image": "rootfs.ext4"}]}"#;
        let t = spacemit_gpt_string(json).unwrap();
        assert_eq!(
            t,
            "name=fsbl,start=256K,size=256K;name=env,start=512K,size=128K;name=opensbi,size=384K;\
             name=uboot,size=2M;name=bootfs,start=4M,size=256M;name=rootfs,start=260M,size=-;"
        );
        let mut m = Medium::in_memory(8 << 30, 0);
        gpt_write(&mut m, &t).unwrap();
        let got: Vec<(String, u64, u64)> =
            partitions(&m).into_iter().map(|p| (p.name, p.first_lba, p.first_lba + p.blocks - 1)).collect();
        let last = (8u64 << 30) / 512 - 34;
        let want = [
            ("fsbl", 512, 1023),
            ("env", 1024, 1279),
            ("opensbi", 1280, 2047),
            ("uboot", 2048, 6143),
            ("bootfs", 8192, 532_479),
            ("rootfs", 532_480, last),
        ];
        let want: Vec<(String, u64, u64)> = want.iter().map(|(n, a, b)| (n.to_string(), *a, *b)).collect();
        assert_eq!(got, want);
        // The vendor's own refusals.
        assert_eq!(spacemit_gpt_string(b"{\"format\": "), Err("parsing config fail"));
        let back = br#"{"format": "gpt", "partitions": [
            {"name": "a", "offset": "1M", "size": "1M"}, {"name": "b", "offset": "1536K", "size": "1M"}]}"#;
        assert_eq!(spacemit_gpt_string(back), Err("offset must larger then previous size and offset"));
        assert_eq!(gpt_write(&mut m, "name=a,start=4K,size=1M;"), Err("write gpt fail"), "over the entries");
        assert_eq!(gpt_write(&mut m, "name=a,start=1M,size=16G;"), Err("write gpt fail"), "past the disk");
        assert_eq!((ustrtoull("0x10"), ustrtoull("2M"), ustrtoull("512")), (16, 2 << 20, 512));
        // Absurd numbers are refused, never a panic.
        let huge = br#"{"format": "gpt", "partitions": [
            {"name": "a", "offset": "18446744073709551615G", "size": "18446744073709551615G"},
            {"name": "b", "size": "18446744073709551615"}]}"#;
        let t = spacemit_gpt_string(huge).unwrap();
        assert_eq!(gpt_write(&mut m, &t), Err("write gpt fail"));
    }
}
