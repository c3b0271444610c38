//! The 0x400-byte JH7110 SPL header, as StarFive's `spl_tool` writes it.
//!
//! All fields are u32 little-endian; everything not listed is zero:
//!
//! | offset | value |
//! |---|---|
//! | 0x000 | 0x240 (size of the "common header") |
//! | 0x004 | backup offset, default 0x200000 |
//! | 0x284 | version, default 0x01010101 |
//! | 0x288 | payload length in bytes |
//! | 0x28C | 0x400 (header size = payload offset) |
//! | 0x290 | CRC-32/ISO-HDLC (zlib) of the payload only |
//!
//! Source: starfive-tech/Tools `spl_tool/spl_tool.c`, checked by running it
//! (shared/protocols/starfive.md §2).

use crc::{CRC_32_ISO_HDLC, Crc};
use racklet_link::{Classify, FailureClass};

/// What is wrong with a header or the payload it describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The payload is larger than [`MAX_PAYLOAD`].
    #[error(
        "the payload is {size} bytes; at most {limit} bytes fit (the JH7110's on-chip SRAM is 256 KiB (0x40000 at 0x08000000))"
    )]
    TooLarge { size: u64, limit: u64 },
    /// The header announces more payload than the file holds.
    #[error(
        "the header announces a {claimed}-byte payload but only {have} bytes follow it: the image is truncated"
    )]
    Truncated { claimed: u64, have: u64 },
    /// The CRC-32 in the header does not match the payload.
    #[error(
        "the image header says CRC-32 0x{stored:08x} but the payload's is 0x{actual:08x}; the ROM would answer 'CRC Error, Try again'"
    )]
    Crc { stored: u32, actual: u32 },
    /// A header field cannot hold the value given.
    #[error("{field} 0x{value:x} does not fit the header's 32-bit field")]
    FieldTooWide { field: &'static str, value: u64 },
}

/// The deliberately wrong CRC `spl_tool -i` writes into an eMMC disk
/// image's header, so that the ROM falls back to the backup copy.
pub const SPL_TOOL_FIX_IMGHDR_CRC: u32 = 0x5A5A_5A5A;

impl Classify for HeaderError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        match self {
            HeaderError::Crc { stored: SPL_TOOL_FIX_IMGHDR_CRC, .. } => Some(
                "0x5a5a5a5a is the deliberately bad CRC of `spl_tool -i`, an eMMC disk-image header; it cannot boot over UART: give the bare payload (u-boot-spl.bin) instead".into(),
            ),
            HeaderError::Crc { .. } | HeaderError::Truncated { .. } => Some(
                "the image was damaged or edited after it was headed; rebuild it, or give the bare payload to have it headed here".into(),
            ),
            HeaderError::TooLarge { .. } => None,
            HeaderError::FieldTooWide { .. } => Some("give a value below 0x100000000 (0 means the default)".into()),
        }
    }
}

/// Header length; the payload follows at this offset.
pub const HEADER_LEN: usize = 0x400;
/// Value at 0x000.
pub const COMMON_HEADER_SIZE: u32 = 0x240;
/// spl_tool's default backup offset (0x004).
pub const DEFAULT_BACKUP_OFFSET: u32 = 0x20_0000;
/// spl_tool's default version (0x284).
pub const DEFAULT_VERSION: u32 = 0x0101_0101;
/// The version StarFive's own prebuilt recovery images carry.
pub const VENDOR_VERSION: u32 = 0x0101_0001;

/// What a file that is almost an spl_tool-headed image got wrong: two of
/// the header's three fixed fields (common header size 0x240 at 0x000,
/// version at 0x284, header size 0x400 at 0x28C) are right and one is not.
pub fn near_miss(bytes: &[u8]) -> Option<String> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let sofs = get(bytes, OFF_SOFS);
    let vers = get(bytes, OFF_VERS);
    let res1 = get(bytes, OFF_RES1);
    let fields = [
        ("common header size at 0x000", sofs, sofs == COMMON_HEADER_SIZE, COMMON_HEADER_SIZE),
        ("version at 0x284", vers, vers == DEFAULT_VERSION || vers == VENDOR_VERSION, DEFAULT_VERSION),
        ("header size at 0x28c", res1, res1 as usize == HEADER_LEN, HEADER_LEN as u32),
    ];
    let good = fields.iter().filter(|f| f.2).count();
    // Both size fields right is a header (whatever its version says).
    if good != 2 || (fields[0].2 && fields[2].2) {
        return None;
    }
    let bad = fields.iter().find(|f| !f.2)?;
    Some(format!(
        "a damaged JH7110 SPL header (spl_tool): the {} is 0x{:x}, the header has 0x{:x}",
        bad.0, bad.1, bad.3
    ))
}

const OFF_SOFS: usize = 0x000;
const OFF_BOFS: usize = 0x004;
const OFF_VERS: usize = 0x284;
const OFF_FSIZ: usize = 0x288;
const OFF_RES1: usize = 0x28C;
const OFF_CRCS: usize = 0x290;
/// Vendor-only fields seen in StarFive's recovery images (meaning unknown).
const OFF_VENDOR_SIZE: usize = 0x2D4;
const OFF_VENDOR_FLAG: usize = 0x2D8;

/// The payload limit racklet-flash enforces: the JH7110's 256 KiB SRAM,
/// which is also U-Boot's `CONFIG_SPL_MAX_SIZE`. See the crate README for why
/// not spl_tool's 180,048 bytes.
pub const MAX_PAYLOAD: u64 = 0x4_0000;
/// spl_tool refuses payloads above this (its buffer size).
pub const SPL_TOOL_MAX_PAYLOAD: u64 = 180_048;
/// oreboot cuts the whole image (header included) to this.
pub const OREBOOT_MAX_IMAGE: u64 = 0x3_B000;

/// CRC-32/ISO-HDLC, the value spl_tool's bit-reversed MSB-first loop yields.
pub const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// The two fields `spl_tool` lets the user choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderOptions {
    pub version: u32,
    pub backup_offset: u32,
}

impl Default for HeaderOptions {
    fn default() -> Self {
        HeaderOptions { version: DEFAULT_VERSION, backup_offset: DEFAULT_BACKUP_OFFSET }
    }
}

impl HeaderOptions {
    /// Options from user values, as spl_tool reads them: a value of 0 means
    /// "the default" (spl_tool's `if (!x) x = default`), and the value must
    /// fit 32 bits.
    pub fn from_user(version: Option<u64>, backup_offset: Option<u64>) -> Result<Self, HeaderError> {
        let pick = |field: &'static str, v: Option<u64>, default: u32| -> Result<u32, HeaderError> {
            match v {
                None | Some(0) => Ok(default),
                Some(v) => u32::try_from(v).map_err(|_| HeaderError::FieldTooWide { field, value: v }),
            }
        };
        Ok(HeaderOptions {
            version: pick("the version", version, DEFAULT_VERSION)?,
            backup_offset: pick("the backup offset", backup_offset, DEFAULT_BACKUP_OFFSET)?,
        })
    }
}

fn put(h: &mut [u8], off: usize, v: u32) {
    h[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The header for `payload` (no size check).
pub fn header(payload: &[u8], opts: &HeaderOptions) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    put(&mut h, OFF_SOFS, COMMON_HEADER_SIZE);
    put(&mut h, OFF_BOFS, opts.backup_offset);
    put(&mut h, OFF_VERS, opts.version);
    put(&mut h, OFF_FSIZ, payload.len() as u32);
    put(&mut h, OFF_RES1, HEADER_LEN as u32);
    put(&mut h, OFF_CRCS, CRC32.checksum(payload));
    h
}

/// Refuses payloads above [`MAX_PAYLOAD`].
pub fn check_size(len: u64) -> Result<(), HeaderError> {
    if len > MAX_PAYLOAD {
        return Err(HeaderError::TooLarge { size: len, limit: MAX_PAYLOAD });
    }
    Ok(())
}

/// Warnings for sizes that pass [`check_size`] but exceed what other tools
/// allow (the true ROM limit is not documented).
pub fn size_notes(len: u64) -> Vec<String> {
    let mut v = Vec::new();
    if len > SPL_TOOL_MAX_PAYLOAD {
        v.push(format!(
            "the payload is {len} bytes; StarFive's spl_tool refuses more than {SPL_TOOL_MAX_PAYLOAD} (images up to 225,808 bytes of payload are known to boot)"
        ));
    }
    if len + HEADER_LEN as u64 > OREBOOT_MAX_IMAGE {
        v.push(format!(
            "the image is {} bytes, above oreboot's cap of {OREBOOT_MAX_IMAGE} bytes; the ROM's real limit is not documented",
            len + HEADER_LEN as u64
        ));
    }
    v
}

/// `header ‖ payload`, refusing payloads above [`MAX_PAYLOAD`].
pub fn build_image(payload: &[u8], opts: &HeaderOptions) -> Result<Vec<u8>, HeaderError> {
    check_size(payload.len() as u64)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header(payload, opts));
    out.extend_from_slice(payload);
    Ok(out)
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub common_header_size: u32,
    pub backup_offset: u32,
    pub version: u32,
    pub payload_len: u32,
    pub header_size: u32,
    pub crc32: u32,
    /// The vendor fields at 0x2D4/0x2D8 (non-zero only in StarFive's own
    /// recovery images).
    pub vendor_fields: (u32, u32),
}

impl Header {
    /// Decodes `bytes` when they look like a headed image: at least 0x400
    /// bytes, 0x240 at 0x000 and 0x400 at 0x28C. Returns `None` otherwise.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER_LEN {
            return None;
        }
        let h = Header {
            common_header_size: get(bytes, OFF_SOFS),
            backup_offset: get(bytes, OFF_BOFS),
            version: get(bytes, OFF_VERS),
            payload_len: get(bytes, OFF_FSIZ),
            header_size: get(bytes, OFF_RES1),
            crc32: get(bytes, OFF_CRCS),
            vendor_fields: (get(bytes, OFF_VENDOR_SIZE), get(bytes, OFF_VENDOR_FLAG)),
        };
        (h.common_header_size == COMMON_HEADER_SIZE && h.header_size as usize == HEADER_LEN).then_some(h)
    }

    /// The payload the header describes, or `None` when the file is shorter.
    pub fn payload<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        bytes.get(HEADER_LEN..HEADER_LEN.checked_add(self.payload_len as usize)?)
    }

    /// The CRC-32 of the payload as the file holds it (`None` if truncated).
    pub fn actual_crc(&self, bytes: &[u8]) -> Option<u32> {
        self.payload(bytes).map(|p| CRC32.checksum(p))
    }

    /// Checks the CRC, as the ROM will. `Ok(())` when it matches.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), HeaderError> {
        let actual = self.actual_crc(bytes).ok_or(HeaderError::Truncated {
            claimed: u64::from(self.payload_len),
            have: bytes.len().saturating_sub(HEADER_LEN) as u64,
        })?;
        if actual != self.crc32 {
            return Err(HeaderError::Crc { stored: self.crc32, actual });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_of_the_crc() {
        // The sheet: spl_tool on "123456789" writes 0xCBF43926.
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn zero_means_default_like_spl_tool() {
        assert_eq!(HeaderOptions::from_user(Some(0), Some(0)).unwrap(), HeaderOptions::default());
        assert!(matches!(
            HeaderOptions::from_user(Some(0x1_0000_0000), None),
            Err(HeaderError::FieldTooWide { .. })
        ));
    }

    #[test]
    fn parse_rejects_other_files() {
        assert!(Header::parse(&[0u8; 0x3FF]).is_none());
        assert!(Header::parse(&[0u8; 0x400]).is_none());
        let mut img = build_image(b"abc", &HeaderOptions::default()).unwrap();
        assert!(Header::parse(&img).is_some());
        img[0x28D] = 0;
        assert!(Header::parse(&img).is_none());
    }

    #[test]
    fn verify_names_the_spl_tool_i_crc() {
        let mut img = build_image(b"abcd", &HeaderOptions::default()).unwrap();
        img[0x290..0x294].copy_from_slice(&0x5A5A_5A5Au32.to_le_bytes());
        let e = Header::parse(&img).unwrap().verify(&img).unwrap_err();
        assert!(matches!(e, HeaderError::Crc { stored: 0x5A5A_5A5A, .. }), "{e}");
        assert!(e.hint().unwrap().contains("spl_tool -i"), "{e:?}");
        // Truncated: the header claims more than the file has.
        let img = build_image(b"abcd", &HeaderOptions::default()).unwrap();
        let e = Header::parse(&img[..0x402]).unwrap().verify(&img[..0x402]).unwrap_err();
        assert_eq!(e, HeaderError::Truncated { claimed: 4, have: 2 });
    }

    #[test]
    fn size_limit_is_the_sram() {
        assert!(check_size(MAX_PAYLOAD).is_ok());
        let e = check_size(MAX_PAYLOAD + 1).unwrap_err();
        assert!(e.to_string().contains("262144"), "{e}");
        assert!(size_notes(SPL_TOOL_MAX_PAYLOAD).is_empty());
        assert_eq!(size_notes(SPL_TOOL_MAX_PAYLOAD + 1).len(), 1);
        assert_eq!(size_notes(MAX_PAYLOAD).len(), 2);
    }
}
