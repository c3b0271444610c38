//! `.kdimg`, the vendor's multi-part storage image (PyPI k230-flash 1.4.0
//! `kdimage.md`, `kdimage.py`; sheet §4.3).
//!
//! A 512-byte little-endian header — magic 0x27CB8F93, CRC-32 of the header
//! with that field zeroed, flag, version, part count, CRC-32 of the part
//! table, then 32-byte image, 32-byte chip and 64-byte board strings —
//! followed by one 256-byte entry per part: magic 0x91DF6DA4, offset, size,
//! erase size, max size, the part flag (u32 in version 1; in version 2 and
//! later 4 bytes of padding and a u64), content offset, content size, the
//! SHA-256 of the content and a 32-byte name. Each part is written at its
//! offset, `max(content size, size)` bytes: the content, then 0xFF.
//!
//! Everything is checked before any byte goes to a device: the header and
//! table CRCs, every part's magic, its content inside the file, its SHA-256
//! (streamed), and that no two parts overlap on the medium.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crc::{CRC_32_ISO_HDLC, Crc};
use racklet_image::Description;
use sha2::{Digest, Sha256};

/// The header's magic.
pub const MAGIC: u32 = 0x27CB_8F93;
/// Each part entry's magic.
pub const PART_MAGIC: u32 = 0x91DF_6DA4;
/// Size of the header.
pub const HEADER: usize = 512;
/// Size of one part entry.
pub const ENTRY: usize = 256;
/// The vendor parser's bound on the part count (`MAX_PART_TBL_NUM`).
pub const MAX_PARTS: u32 = 512;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// What is wrong with a `.kdimg`.
#[derive(Debug, thiserror::Error)]
pub enum KdimgError {
    #[error("{len} bytes are too short for the {need}-byte {what}")]
    Short { len: u64, need: u64, what: &'static str },
    #[error("bad magic 0x{found:08x} (a .kdimg starts with 0x{MAGIC:08x})")]
    Magic { found: u32 },
    #[error("header CRC-32 0x{computed:08x} does not match the stored 0x{stored:08x} (damaged header)")]
    HeaderCrc { stored: u32, computed: u32 },
    #[error("{count} parts: more than the vendor parser's {MAX_PARTS}")]
    TooManyParts { count: u32 },
    #[error(
        "part table CRC-32 0x{computed:08x} does not match the stored 0x{stored:08x} (damaged part table)"
    )]
    TableCrc { stored: u32, computed: u32 },
    #[error("part {index}: bad magic 0x{found:08x} (0x{PART_MAGIC:08x} expected)")]
    PartMagic { index: usize, found: u32 },
    #[error(
        "part {name:?}: its content (0x{offset:x} + {size} bytes) runs past the end of the {len}-byte file"
    )]
    PastEnd { name: String, offset: u64, size: u64, len: u64 },
    #[error("part {name:?}: SHA-256 of its content is {computed}, the image says {stored} (damaged content)")]
    Sha { name: String, stored: String, computed: String },
    #[error("parts {a:?} and {b:?} overlap on the medium")]
    Overlap { a: String, b: String },
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// One part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Part {
    pub name: String,
    /// Where it goes on the medium.
    pub offset: u64,
    /// `part_size`: what it is padded to.
    pub size: u64,
    pub erase_size: u64,
    pub max_size: u64,
    pub flag: u64,
    /// Where its content is in the file, and how long.
    pub content_offset: u64,
    pub content_size: u64,
    #[serde(skip)]
    pub sha256: [u8; 32],
}

impl Part {
    /// What goes to the device: `max(content size, size)` (`writeSize`).
    pub fn write_size(&self) -> u64 {
        self.content_size.max(self.size)
    }
}

/// A parsed `.kdimg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kdimg {
    pub version: u32,
    pub flag: u32,
    pub image_info: String,
    pub chip_info: String,
    pub board_info: String,
    /// In medium order (the vendor sorts by offset).
    pub parts: Vec<Part>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// True when `bytes` start with the `.kdimg` magic.
pub fn is_kdimg(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && u32_at(bytes, 0) == MAGIC
}

/// Parses the header and part table in `head` (at least the header and
/// the table) of a file of `file_len` bytes; the content hashes are not
/// checked here ([`verify`]).
pub fn parse(head: &[u8], file_len: u64) -> Result<Kdimg, KdimgError> {
    if head.len() < HEADER {
        return Err(KdimgError::Short { len: head.len() as u64, need: HEADER as u64, what: "header" });
    }
    let magic = u32_at(head, 0);
    if magic != MAGIC {
        return Err(KdimgError::Magic { found: magic });
    }
    let mut h = head[..HEADER].to_vec();
    let stored = u32_at(&h, 4);
    h[4..8].fill(0);
    let computed = CRC32.checksum(&h);
    if computed != stored {
        return Err(KdimgError::HeaderCrc { stored, computed });
    }
    let (flag, version, count, table_crc) = (u32_at(&h, 8), u32_at(&h, 12), u32_at(&h, 16), u32_at(&h, 20));
    if count > MAX_PARTS {
        return Err(KdimgError::TooManyParts { count });
    }
    let table_len = count as usize * ENTRY;
    if head.len() < HEADER + table_len {
        return Err(KdimgError::Short {
            len: head.len() as u64,
            need: (HEADER + table_len) as u64,
            what: "header and part table",
        });
    }
    let table = &head[HEADER..HEADER + table_len];
    let computed = CRC32.checksum(table);
    if computed != table_crc {
        return Err(KdimgError::TableCrc { stored: table_crc, computed });
    }
    let mut parts = Vec::new();
    for (index, e) in table.chunks(ENTRY).enumerate() {
        let found = u32_at(e, 0);
        if found != PART_MAGIC {
            return Err(KdimgError::PartMagic { index, found });
        }
        // v1 "<8I32s32s"; v2 "<5I4xQII32s32s".
        let (flag, rest) = if version >= 2 {
            (u64::from_le_bytes(e[24..32].try_into().expect("8 bytes")), 32)
        } else {
            (u32_at(e, 20) as u64, 24)
        };
        let part = Part {
            offset: u32_at(e, 4) as u64,
            size: u32_at(e, 8) as u64,
            erase_size: u32_at(e, 12) as u64,
            max_size: u32_at(e, 16) as u64,
            flag,
            content_offset: u32_at(e, rest) as u64,
            content_size: u32_at(e, rest + 4) as u64,
            sha256: e[rest + 8..rest + 40].try_into().expect("32 bytes"),
            name: text(&e[rest + 40..rest + 72]),
        };
        if part.content_offset + part.content_size > file_len {
            return Err(KdimgError::PastEnd {
                name: part.name,
                offset: part.content_offset,
                size: part.content_size,
                len: file_len,
            });
        }
        parts.push(part);
    }
    parts.sort_by_key(|p| p.offset);
    for w in parts.windows(2) {
        if w[0].offset + w[0].write_size() > w[1].offset {
            return Err(KdimgError::Overlap { a: w[0].name.clone(), b: w[1].name.clone() });
        }
    }
    Ok(Kdimg {
        version,
        flag,
        image_info: text(&h[24..56]),
        chip_info: text(&h[56..88]),
        board_info: text(&h[88..152]),
        parts,
    })
}

/// Opens and checks the `.kdimg` at `path`: header, table, and the SHA-256
/// of every part's content (read in bounded pieces).
pub fn open(path: &Path) -> Result<Kdimg, KdimgError> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = vec![0u8; HEADER.min(len as usize)];
    f.read_exact(&mut head)?;
    if is_kdimg(&head) && head.len() == HEADER {
        let count = u32_at(&head, 16).min(MAX_PARTS + 1) as usize;
        let want = (HEADER + count * ENTRY).min(len as usize);
        let mut rest = vec![0u8; want - HEADER];
        f.read_exact(&mut rest)?;
        head.extend_from_slice(&rest);
    }
    let img = parse(&head, len)?;
    for p in &img.parts {
        verify(&mut f, p)?;
    }
    Ok(img)
}

/// Checks the SHA-256 of `part`'s content in `f`.
pub fn verify<R: Read + Seek>(f: &mut R, part: &Part) -> Result<(), KdimgError> {
    f.seek(SeekFrom::Start(part.content_offset))?;
    let mut h = Sha256::new();
    let mut left = part.content_size;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n])?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    let computed: [u8; 32] = h.finalize().into();
    if computed != part.sha256 {
        return Err(KdimgError::Sha {
            name: part.name.clone(),
            stored: hex(&part.sha256),
            computed: hex(&computed),
        });
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A part as the device gets it: the content, then 0xFF up to
/// [`Part::write_size`] (the vendor parser's `_PaddedPartitionStream`).
pub struct PartReader {
    file: File,
    content_left: u64,
    pad_left: u64,
}

impl PartReader {
    /// Opens `part` of the image at `path`.
    pub fn open(path: &Path, part: &Part) -> std::io::Result<PartReader> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(part.content_offset))?;
        Ok(PartReader {
            file,
            content_left: part.content_size,
            pad_left: part.write_size() - part.content_size,
        })
    }
}

impl Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.content_left > 0 {
            let n = (buf.len() as u64).min(self.content_left) as usize;
            let got = self.file.read(&mut buf[..n])?;
            if got == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the part's content ended early",
                ));
            }
            self.content_left -= got as u64;
            return Ok(got);
        }
        let n = (buf.len() as u64).min(self.pad_left) as usize;
        buf[..n].fill(0xff);
        self.pad_left -= n as u64;
        Ok(n)
    }
}

/// `info` for a `.kdimg`: the header and every part; the content hashes are
/// checked for the parts whose content `bytes` hold.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    if !is_kdimg(bytes) {
        return None;
    }
    let mut d = Description::new("Kendryte .kdimg storage image", "canaan");
    d.socs = crate::SOCS.iter().map(|s| s.to_string()).collect();
    match parse(bytes, bytes.len() as u64) {
        Err(e) => {
            d.field("error", e.to_string());
            d.check("header and part table", false);
        }
        Ok(img) => {
            d.check("header and part table", true);
            d.field("version", img.version.to_string());
            for (k, v) in [("image", &img.image_info), ("chip", &img.chip_info), ("board", &img.board_info)] {
                if !v.is_empty() {
                    d.field(k, v.clone());
                }
            }
            d.field("parts", img.parts.len().to_string());
            for p in &img.parts {
                d.field(
                    format!("part {}", p.name),
                    format!(
                        "at 0x{:x}: {} bytes of content, written as {} bytes (0xFF after the content), max 0x{:x}",
                        p.offset,
                        p.content_size,
                        p.write_size(),
                        p.max_size
                    ),
                );
                let mut c = std::io::Cursor::new(bytes);
                d.check(format!("sha256 {}", p.name), verify(&mut c, p).is_ok());
            }
        }
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use racklet_tests::kdimg_v2 as build;

    /// The CRC-32 the vendor parser uses is zlib's: check value of "123456789".
    #[test]
    fn the_crc_is_zlibs() {
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_built_image_parses_and_damage_is_named() {
        let img = build(&[("uboot_spl_a", 0x10_0000, 0x8_0000, b"spl"), ("rtt", 0x20_0000, 0x1000, b"rtt!")]);
        let k = parse(&img, img.len() as u64).unwrap();
        assert_eq!(k.version, 2);
        assert_eq!(k.parts.len(), 2);
        assert_eq!(k.parts[0].name, "uboot_spl_a");
        assert_eq!(k.parts[0].write_size(), 0x8_0000);
        let mut c = std::io::Cursor::new(&img[..]);
        verify(&mut c, &k.parts[1]).unwrap();
        let mut bad = img.clone();
        bad[0] ^= 1;
        assert!(matches!(parse(&bad, bad.len() as u64), Err(KdimgError::Magic { .. })));
        let mut bad = img.clone();
        bad[100] ^= 1;
        assert!(matches!(parse(&bad, bad.len() as u64), Err(KdimgError::HeaderCrc { .. })));
        let mut bad = img.clone();
        bad[HEADER + 5] ^= 1;
        assert!(matches!(parse(&bad, bad.len() as u64), Err(KdimgError::TableCrc { .. })));
        let e = parse(&img[..img.len() - 1], img.len() as u64 - 1).unwrap_err();
        assert!(matches!(e, KdimgError::PastEnd { .. }) && e.to_string().contains("rtt"), "{e}");
        let mut bad = img.clone();
        *bad.last_mut().unwrap() ^= 1;
        let k = parse(&bad, bad.len() as u64).unwrap();
        let mut c = std::io::Cursor::new(&bad[..]);
        assert!(matches!(verify(&mut c, &k.parts[1]), Err(KdimgError::Sha { .. })));
        let over = build(&[("a", 0x1000, 0x2000, b"x"), ("b", 0x2000, 0x1000, b"y")]);
        assert!(matches!(parse(&over, over.len() as u64), Err(KdimgError::Overlap { .. })));
    }

    #[test]
    fn described_for_info() {
        let img = build(&[("uboot_spl_a", 0x10_0000, 0x8_0000, b"spl")]);
        let d = describe(&img).unwrap();
        assert!(d.intact());
        assert!(d.fields.iter().any(|f| f.name == "part uboot_spl_a" && f.value.contains("at 0x100000")));
        assert!(describe(b"K230").is_none());
    }
}
