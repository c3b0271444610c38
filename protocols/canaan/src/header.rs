//! The "K230" firmware header the ROM checks when it boots from SD, eMMC
//! or flash (`firmware_head_s` in the vendor u-boot, "512+16 bytes").
//!
//! | offset | size | field |
//! |--------|------|-------|
//! | 0x000  | 4    | magic `K230` |
//! | 0x004  | 4    | length of what follows the header: version + payload (+16 GCM tag) |
//! | 0x008  | 4    | crypto type |
//! | 0x00C  | 516  | union (type 0: SHA-256(version ‖ payload), then zeros) |
//! | 0x210  | 4    | version (0 in every tool) |
//! | 0x214  | ...  | payload |
//!
//! All integers little-endian. Only type 0 is produced; the signed types
//! are decoded and named.

use sha2::{Digest, Sha256};

/// The magic at offset 0.
pub const MAGIC: &[u8; 4] = b"K230";
/// Size of the header proper (magic, length, type, union).
pub const HEADER_LEN: usize = 0x210;
/// Offset of the payload (after the version word).
pub const PAYLOAD_OFFSET: usize = 0x214;

/// What a file that is almost a "K230" storage image got wrong (a damaged
/// magic), so it is not sent as a raw payload by mistake.
pub fn near_miss(bytes: &[u8]) -> Option<String> {
    (bytes.len() >= PAYLOAD_OFFSET && racklet_image::near_magic(bytes, 0, MAGIC)).then(|| {
        format!(
            "a damaged K230 firmware header: the magic is \"{}\", the header has \"K230\"",
            racklet_image::escaped(&bytes[..MAGIC.len()])
        )
    })
}
/// Offset and size of the union.
const UNION_OFFSET: usize = 0x0C;
const UNION_LEN: usize = 516;

/// Why a header cannot be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{len} bytes are too short for a K230 firmware image (at least {PAYLOAD_OFFSET})")]
    TooShort { len: usize },
    #[error("no \"K230\" magic at offset 0")]
    BadMagic,
    #[error("the payload is empty")]
    EmptyPayload,
    #[error("a {len}-byte payload does not fit the header's 32-bit length field")]
    TooLarge { len: usize },
}

/// The crypto type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoType {
    /// 0: no encryption, SHA-256 integrity only.
    None,
    /// 1: SM4-CBC + SM2 in the vendor generators (u-boot's enum says GCM-only).
    Sm4Sm2,
    /// 2: AES-256-GCM + RSA-2048 in the vendor generators (u-boot's enum says SM).
    AesRsa,
    /// 3: RSA ("international") in u-boot's enum only.
    UbootRsa,
    /// Anything else.
    Other(u32),
}

impl CryptoType {
    pub fn from_u32(v: u32) -> CryptoType {
        match v {
            0 => CryptoType::None,
            1 => CryptoType::Sm4Sm2,
            2 => CryptoType::AesRsa,
            3 => CryptoType::UbootRsa,
            v => CryptoType::Other(v),
        }
    }

    /// A name, with the numbering conflict spelled out where there is one.
    pub fn name(self) -> String {
        match self {
            CryptoType::None => "0 (none: SHA-256 only)".into(),
            CryptoType::Sm4Sm2 => {
                "1 (SM4-CBC + SM2 signature per the vendor generators; GCM-only in u-boot's enum)".into()
            }
            CryptoType::AesRsa => {
                "2 (AES-256-GCM + RSA-2048 signature per the vendor generators; SM in u-boot's enum)".into()
            }
            CryptoType::UbootRsa => "3 (RSA in u-boot's enum; no generator produces it)".into(),
            CryptoType::Other(v) => format!("{v} (unknown)"),
        }
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHeader {
    /// The length field.
    pub length: u32,
    pub crypto: CryptoType,
    /// The raw 516-byte union.
    pub union: Vec<u8>,
    pub version: u32,
    /// Bytes present after the header (version word included).
    pub available: usize,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Builds an unencrypted (type 0) image: header, version, payload.
pub fn build_plain(payload: &[u8], version: u32) -> Result<Vec<u8>, HeaderError> {
    if payload.is_empty() {
        return Err(HeaderError::EmptyPayload);
    }
    let length =
        u32::try_from(payload.len() + 4).map_err(|_| HeaderError::TooLarge { len: payload.len() })?;
    let mut out = Vec::with_capacity(PAYLOAD_OFFSET + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut h = Sha256::new();
    h.update(version.to_le_bytes());
    h.update(payload);
    out.extend_from_slice(&h.finalize());
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

impl ImageHeader {
    /// Decodes the header of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<ImageHeader, HeaderError> {
        if !bytes.starts_with(MAGIC) {
            return Err(HeaderError::BadMagic);
        }
        if bytes.len() < PAYLOAD_OFFSET {
            return Err(HeaderError::TooShort { len: bytes.len() });
        }
        Ok(ImageHeader {
            length: u32_at(bytes, 4),
            crypto: CryptoType::from_u32(u32_at(bytes, 8)),
            union: bytes[UNION_OFFSET..UNION_OFFSET + UNION_LEN].to_vec(),
            version: u32_at(bytes, HEADER_LEN),
            available: bytes.len() - HEADER_LEN,
        })
    }

    /// True when the file holds exactly the `length` bytes the header announces.
    pub fn length_matches(&self) -> bool {
        self.length as usize == self.available
    }

    /// The payload length the header announces (without the version word).
    pub fn payload_len(&self) -> u64 {
        (self.length as u64).saturating_sub(4)
    }

    /// The SHA-256 stored in a type-0 header.
    pub fn stored_sha256(&self) -> Option<&[u8]> {
        (self.crypto == CryptoType::None).then(|| &self.union[..32])
    }

    /// For type 0: whether the stored hash matches SHA-256 over the
    /// `length` bytes after the header, and the union's tail is zero.
    /// `None` for the signed types (their keys live in OTP).
    pub fn verify(&self, bytes: &[u8]) -> Option<bool> {
        let stored = self.stored_sha256()?;
        let end = HEADER_LEN.checked_add(self.length as usize)?;
        if end > bytes.len() {
            return Some(false);
        }
        let computed = Sha256::digest(&bytes[HEADER_LEN..end]);
        Some(computed.as_slice() == stored)
    }

    /// The decoded union fields, named, as (name, value) pairs.
    pub fn fields(&self) -> Vec<(String, String)> {
        let u = &self.union;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let short = |b: &[u8]| {
            let h = hex(b);
            if h.len() > 32 {
                format!("{}…{} ({} bytes)", &h[..16], &h[h.len() - 16..], b.len())
            } else {
                h
            }
        };
        match self.crypto {
            CryptoType::None => vec![
                ("sha256 (stored)".into(), hex(&u[..32])),
                (
                    "union tail".into(),
                    if u[32..].iter().all(|&b| b == 0) { "zero" } else { "NOT zero" }.into(),
                ),
            ],
            CryptoType::Sm4Sm2 => {
                let id_len = u32_at(u, 0) as usize;
                vec![
                    ("SM2 id length".into(), id_len.to_string()),
                    ("SM2 id".into(), String::from_utf8_lossy(&u[4..4 + id_len.min(384)]).into_owned()),
                    ("SM2 public key X".into(), hex(&u[388..420])),
                    ("SM2 public key Y".into(), hex(&u[420..452])),
                    ("SM2 signature r".into(), hex(&u[452..484])),
                    ("SM2 signature s".into(), hex(&u[484..516])),
                ]
            }
            CryptoType::AesRsa => vec![
                ("RSA modulus n".into(), short(&u[..256])),
                ("RSA exponent e".into(), u32_at(u, 256).to_string()),
                ("RSA signature (of the GCM tag)".into(), short(&u[260..516])),
            ],
            CryptoType::UbootRsa | CryptoType::Other(_) => vec![("union".into(), short(u))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sheet's worked example (§3), byte for byte: 16-byte payload 00..0f.
    #[test]
    fn worked_example_is_byte_identical() {
        let payload: Vec<u8> = (0u8..16).collect();
        let img = build_plain(&payload, 0).unwrap();
        assert_eq!(img.len(), 548);
        let expect_head: [u8; 0x2c] = [
            0x4B, 0x32, 0x33, 0x30, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xD1, 0x43, 0xDB, 0x28,
            0x5B, 0xF2, 0x50, 0x3E, 0xA8, 0xBE, 0xBD, 0xC9, 0xE2, 0x50, 0x27, 0x81, 0x48, 0x11, 0xEC, 0xAF,
            0xB5, 0x31, 0x6B, 0xED, 0x53, 0x54, 0xBD, 0x65, 0xF9, 0x50, 0x95, 0xFB,
        ];
        assert_eq!(&img[..0x2c], &expect_head);
        assert!(img[0x2c..0x210].iter().all(|&b| b == 0));
        assert_eq!(&img[0x210..], &[0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        // "The resulting 548-byte image has SHA-256 024c49b6…302c."
        let h = Sha256::digest(&img);
        assert_eq!(&h[..4], &[0x02, 0x4c, 0x49, 0xb6]);
        assert_eq!(&h[30..], &[0x30, 0x2c]);
    }

    #[test]
    fn parse_and_verify() {
        let payload = vec![0x5a; 1000];
        let mut img = build_plain(&payload, 0).unwrap();
        let h = ImageHeader::parse(&img).unwrap();
        assert_eq!(h.length, 1004);
        assert_eq!(h.crypto, CryptoType::None);
        assert!(h.length_matches());
        assert_eq!(h.verify(&img), Some(true));
        // One flipped payload byte breaks the hash.
        img[PAYLOAD_OFFSET + 999] ^= 1;
        assert_eq!(ImageHeader::parse(&img).unwrap().verify(&img), Some(false));
        // Truncation: length no longer matches and the hash cannot be checked.
        let short = &img[..img.len() - 1];
        let h = ImageHeader::parse(short).unwrap();
        assert!(!h.length_matches());
        assert_eq!(h.verify(short), Some(false));
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(build_plain(&[], 0), Err(HeaderError::EmptyPayload));
        assert_eq!(ImageHeader::parse(b"K231xxxx"), Err(HeaderError::BadMagic));
        assert_eq!(ImageHeader::parse(&[b'K', b'2', b'3', b'0', 0]), Err(HeaderError::TooShort { len: 5 }));
    }

    #[test]
    fn signed_types_are_named_not_verified() {
        let mut img = build_plain(&[1, 2, 3], 0).unwrap();
        img[8] = 2;
        let h = ImageHeader::parse(&img).unwrap();
        assert_eq!(h.crypto, CryptoType::AesRsa);
        assert_eq!(h.verify(&img), None);
        assert!(h.fields().iter().any(|f| f.0 == "RSA exponent e"));
        img[8] = 1;
        let h = ImageHeader::parse(&img).unwrap();
        assert!(h.crypto.name().contains("SM4"));
        assert!(h.fields().iter().any(|f| f.0 == "SM2 public key X"));
    }
}
