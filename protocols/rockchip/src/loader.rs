//! The RKBOOT merged loader container, "BOOT" and "LDR " forms (fact sheet §2).

use crc::{Algorithm, Crc, Table};

/// Size of the RKBOOT header.
pub const HEADER_SIZE: usize = 0x66;
/// Size of one entry record.
pub const ENTRY_SIZE: usize = 57;

/// Rockchip's CRC32: poly 0x04C10DB7 (not IEEE's 0x04C11DB7), init 0,
/// MSB first, no reflection, no final xor (fact sheet §2.2).
pub const RK_CRC32: Algorithm<u32> = Algorithm {
    width: 32,
    poly: 0x04c1_0db7,
    init: 0,
    refin: false,
    refout: false,
    xorout: 0,
    check: 0x889a_9615,
    residue: 0,
};

static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&RK_CRC32);

/// Rockchip's CRC32 of `data`.
pub fn rk_crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Sent with wIndex 0x471 (DRAM init, runs from SRAM).
    Code471,
    /// Sent with wIndex 0x472 (usbplug, loaded into DRAM).
    Code472,
    /// Written to storage by flashing tools; never sent by maskrom download.
    Loader,
}

impl EntryKind {
    /// Short name for listings.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Code471 => "471",
            EntryKind::Code472 => "472",
            EntryKind::Loader => "loader",
        }
    }
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// The type field as stored (1, 2 or 4).
    pub type_field: u32,
    /// Name, decoded from UTF-16LE up to the first NUL (at most 20 units).
    pub name: String,
    /// Absolute offset of the data in the file.
    pub offset: u32,
    /// Size of the data.
    pub size: u32,
    /// Delay in ms after downloading this entry.
    pub delay_ms: u32,
}

/// Release time of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// A parsed RKBOOT file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loader {
    /// `"BOOT"` or `"LDR "`.
    pub tag: [u8; 4],
    pub header_size: u16,
    pub version: u32,
    pub merger_version: u32,
    pub release: ReleaseTime,
    /// The chip field as stored.
    pub chip_raw: u32,
    /// The chip code as text when it is 4 printable characters ("3568").
    pub chip_code: Option<String>,
    /// 0x2B: `'S'` for a signed loader.
    pub sign_flag: u8,
    /// 0x2C: RC4 disabled for the on-flash IDB.
    pub rc4_flag: u8,
    /// 0x2D: 471/472 entries stored without RC4.
    pub stored_without_rc4: bool,
    /// 0x2E: CRC disabled on 471/472 transfers.
    pub crc_disabled: bool,
    pub entries: Vec<Entry>,
    /// Trailer CRC32 as stored, and as computed.
    pub crc32_stored: u32,
    pub crc32_computed: u32,
    /// End of the last entry's data (where the CRC32 sits).
    pub data_end: usize,
}

/// Why a loader file is unusable. Every message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoaderError {
    #[error("not an RKBOOT loader: the file starts with {found:02x?}, not \"BOOT\" or \"LDR \"")]
    BadMagic { found: Vec<u8> },
    #[error("truncated RKBOOT header: {len} bytes, the header needs {HEADER_SIZE}")]
    TruncatedHeader { len: usize },
    #[error("RKBOOT header size field is 0x{0:x}, expected 0x66")]
    BadHeaderSize(u16),
    #[error("RKBOOT {table} entry table: entry size {size}, expected {ENTRY_SIZE}")]
    BadEntrySize { table: &'static str, size: u8 },
    #[error(
        "truncated RKBOOT entry table: {table} entry {index} at 0x{offset:x} runs past the end of the file ({len} bytes)"
    )]
    TruncatedTable { table: &'static str, index: usize, offset: usize, len: usize },
    #[error(
        "RKBOOT entry '{name}' points past the end of the file: data at 0x{offset:x}+{size} but the file has {len} bytes"
    )]
    EntryPastEnd { name: String, offset: u32, size: u32, len: usize },
    #[error("RKBOOT entry '{name}' has type {type_field} in the {table} table")]
    BadEntryType { name: String, type_field: u32, table: &'static str },
    #[error("RKBOOT file has no entries")]
    NoEntries,
    #[error("RKBOOT file is {len} bytes; its data ends at 0x{end:x}, so the CRC32 should end the file at {}", end + 4)]
    BadLength { end: usize, len: usize },
    #[error("RKBOOT CRC32 mismatch: stored 0x{stored:08x}, computed 0x{computed:08x} (damaged file)")]
    BadCrc32 { stored: u32, computed: u32 },
    #[error(
        "RKBOOT 471 entry '{name}' is {size} bytes, but the ROM runs it from {sram} bytes of SRAM: the DRAM-init blob is for another chip, or the file is damaged"
    )]
    DdrTooLarge { name: String, size: u32, sram: u64 },
}

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// True when `bytes` have the shape of an RKBOOT header (header size 0x66
/// and 57-byte entry records) whatever the tag says: a loader whose magic
/// was damaged, rather than a raw blob.
pub fn looks_like_rkboot(b: &[u8]) -> bool {
    b.len() >= HEADER_SIZE
        && u16le(b, 4) as usize == HEADER_SIZE
        && b[0x1e] as usize == ENTRY_SIZE
        && (b[0x1f] == 0 || b[0x24] as usize == ENTRY_SIZE)
}

/// True when `bytes` start with an RKBOOT tag.
pub fn is_rkboot(bytes: &[u8]) -> bool {
    bytes.starts_with(b"BOOT") || bytes.starts_with(b"LDR ")
}

/// What a file that is almost an RKBOOT loader got wrong: a tag one byte
/// off "BOOT"/"LDR ", or a loader's header layout under another tag.
pub fn near_miss(bytes: &[u8]) -> Option<String> {
    if is_rkboot(bytes) || bytes.len() < 4 {
        return None;
    }
    let near = racklet_image::near_magic(bytes, 0, b"BOOT") || racklet_image::near_magic(bytes, 0, b"LDR ");
    (near || looks_like_rkboot(bytes)).then(|| {
        format!(
            "a damaged RKBOOT loader: the tag is \"{}\", a loader has \"BOOT\" or \"LDR \"",
            racklet_image::escaped(&bytes[..4])
        )
    })
}

impl Loader {
    /// Parses the structure without judging the CRC32 or the file length
    /// (so `info` can show a damaged file); [`Loader::parse`] checks both.
    pub fn parse_lenient(b: &[u8]) -> Result<Loader, LoaderError> {
        if !is_rkboot(b) {
            return Err(LoaderError::BadMagic { found: b[..b.len().min(4)].to_vec() });
        }
        if b.len() < HEADER_SIZE {
            return Err(LoaderError::TruncatedHeader { len: b.len() });
        }
        let header_size = u16le(b, 4);
        if header_size as usize != HEADER_SIZE {
            return Err(LoaderError::BadHeaderSize(header_size));
        }
        let chip_raw = u32le(b, 0x15);
        let le = chip_raw.to_le_bytes();
        // Stored as a big-endian packing of the 4 chars, written LE: reverse.
        let code: Vec<u8> = le.iter().rev().copied().collect();
        let chip_code =
            code.iter().all(|c| c.is_ascii_alphanumeric()).then(|| String::from_utf8_lossy(&code).into());
        let tables = [
            ("471", EntryKind::Code471, 1u32, b[0x19], u32le(b, 0x1a) as usize, b[0x1e]),
            ("472", EntryKind::Code472, 2, b[0x1f], u32le(b, 0x20) as usize, b[0x24]),
            ("loader", EntryKind::Loader, 4, b[0x25], u32le(b, 0x26) as usize, b[0x2a]),
        ];
        let mut entries = Vec::new();
        let mut data_end = HEADER_SIZE;
        for (table, kind, want_type, count, off, esize) in tables {
            if count > 0 && esize as usize != ENTRY_SIZE {
                return Err(LoaderError::BadEntrySize { table, size: esize });
            }
            for i in 0..count as usize {
                let o = off + i * ENTRY_SIZE;
                if o + ENTRY_SIZE > b.len() {
                    return Err(LoaderError::TruncatedTable { table, index: i, offset: o, len: b.len() });
                }
                let e = &b[o..o + ENTRY_SIZE];
                let units: Vec<u16> = (0..20).map(|k| u16le(e, 5 + 2 * k)).take_while(|&u| u != 0).collect();
                let name = String::from_utf16_lossy(&units);
                let type_field = u32le(e, 1);
                if type_field != want_type {
                    return Err(LoaderError::BadEntryType { name, type_field, table });
                }
                let (offset, size, delay_ms) = (u32le(e, 0x2d), u32le(e, 0x31), u32le(e, 0x35));
                let end = offset as usize + size as usize;
                if end > b.len() {
                    return Err(LoaderError::EntryPastEnd { name, offset, size, len: b.len() });
                }
                data_end = data_end.max(end).max(o + ENTRY_SIZE);
                entries.push(Entry { kind, type_field, name, offset, size, delay_ms });
            }
        }
        if entries.is_empty() {
            return Err(LoaderError::NoEntries);
        }
        let (crc32_stored, crc32_computed) = if data_end + 4 <= b.len() {
            (u32le(b, data_end), rk_crc32(&b[..data_end]))
        } else {
            (0, rk_crc32(&b[..data_end]))
        };
        Ok(Loader {
            tag: [b[0], b[1], b[2], b[3]],
            header_size,
            version: u32le(b, 6),
            merger_version: u32le(b, 0x0a),
            release: ReleaseTime {
                year: u16le(b, 0x0e),
                month: b[0x10],
                day: b[0x11],
                hour: b[0x12],
                minute: b[0x13],
                second: b[0x14],
            },
            chip_raw,
            chip_code,
            sign_flag: b[0x2b],
            rc4_flag: b[0x2c],
            stored_without_rc4: b[0x2d] == 1,
            crc32_stored,
            crc32_computed,
            crc_disabled: b[0x2e] == 1,
            entries,
            data_end,
        })
    }

    /// Parses and checks a loader: structure, file length (data end + 4)
    /// and the trailer CRC32.
    pub fn parse(b: &[u8]) -> Result<Loader, LoaderError> {
        let l = Self::parse_lenient(b)?;
        l.check_length(b.len())?;
        l.check_crc()?;
        Ok(l)
    }

    /// The file length must be the data end plus the CRC32.
    pub fn check_length(&self, len: usize) -> Result<(), LoaderError> {
        if len != self.data_end + 4 {
            return Err(LoaderError::BadLength { end: self.data_end, len });
        }
        Ok(())
    }

    /// The trailer CRC32 must match.
    pub fn check_crc(&self) -> Result<(), LoaderError> {
        if self.crc32_stored != self.crc32_computed {
            return Err(LoaderError::BadCrc32 { stored: self.crc32_stored, computed: self.crc32_computed });
        }
        Ok(())
    }

    /// Checks what a maskrom download would send: every 0x471 entry (the
    /// DRAM init, run from SRAM) holds code that fits the `sram_size` bytes
    /// of SRAM. Empty entries are not sent (rkdeveloptool skips them), so
    /// they pass.
    pub fn check_stages(&self, sram_size: u64) -> Result<(), LoaderError> {
        for e in self.entries.iter().filter(|e| e.kind != EntryKind::Loader) {
            if e.kind == EntryKind::Code471 && u64::from(e.size) > sram_size {
                return Err(LoaderError::DdrTooLarge { name: e.name.clone(), size: e.size, sram: sram_size });
            }
        }
        Ok(())
    }

    /// "BOOT" or "LDR ".
    pub fn tag_str(&self) -> String {
        String::from_utf8_lossy(&self.tag).into()
    }

    /// The entries of one kind, in file order.
    pub fn of(&self, kind: EntryKind) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.kind == kind)
    }

    /// The bytes of an entry (already checked to lie inside the file).
    pub fn data<'a>(&self, file: &'a [u8], e: &Entry) -> &'a [u8] {
        &file[e.offset as usize..e.offset as usize + e.size as usize]
    }
}
