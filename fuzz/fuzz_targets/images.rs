//! Every image container parser on the same bytes: RKBOOT loaders
//! (racklet_rockchip::Loader), StarFive SPL headers, Sophgo fip.bin, Canaan
//! K230 firmware headers, SpacemiT K1 FSBL.bin and bootinfo.
//!
//! Invariants, beyond "no panic":
//! - RKBOOT: `parse` accepts only what `parse_lenient` accepts, with the same
//!   result, a file of exactly data end + 4 bytes and a matching CRC32; every
//!   entry's data lies inside the file.
//! - The builders round-trip: whatever payload the input is, the image built
//!   from it parses and verifies, and gives the payload back (StarFive,
//!   Sophgo, Canaan, K1).
//! - Sophgo `describe` (what `info` prints) describes exactly the files that
//!   start like a fip.bin, and calls one intact exactly when it validates.
//! - A header that verifies describes a payload inside the file, and
//!   rebuilding the image from that payload gives the same header fields.
//! - `racklet_canaan::describe` (what `info` prints) describes exactly the
//!   files `ImageHeader::parse` accepts with the magic, and its checks are
//!   the header's own.
//! - StarFive's `describe` (what `info` prints) answers exactly for a
//!   parsed header, and its checks pass exactly when the header verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;

use racklet_canaan::header::{self as k230, CryptoType, ImageHeader};
use racklet_fastboot::k1;
use racklet_rockchip::loader::{HEADER_SIZE, Loader, rk_crc32};
use racklet_sophgo::fip;
use racklet_starfive::header::{self as sf, Header, HeaderOptions};

fuzz_target!(|data: &[u8]| {
    rkboot(data);
    starfive(data);
    sophgo(data);
    canaan(data);
    spacemit(data);
});

fn rkboot(b: &[u8]) {
    let lenient = Loader::parse_lenient(b);
    if let Ok(l) = &lenient {
        assert!(!l.entries.is_empty());
        assert!(l.data_end >= HEADER_SIZE && l.data_end <= b.len());
        for e in &l.entries {
            assert_eq!(l.data(b, e).len(), e.size as usize);
            assert!(e.offset as usize + e.size as usize <= l.data_end);
            assert!(e.name.chars().count() <= 20);
        }
        assert_eq!(l.crc32_computed, rk_crc32(&b[..l.data_end]));
        let _ = (l.tag_str(), l.of(racklet_rockchip::EntryKind::Code471).count());
    }
    match Loader::parse(b) {
        Ok(l) => {
            assert_eq!(Ok(&l), lenient.as_ref());
            assert_eq!(b.len(), l.data_end + 4);
            assert_eq!(l.crc32_stored, l.crc32_computed);
            let stored = u32::from_le_bytes(b[l.data_end..].try_into().unwrap());
            assert_eq!(stored, rk_crc32(&b[..l.data_end]));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = racklet_rockchip::loader::looks_like_rkboot(b);
    let _ = racklet_rockchip::rockusb::chip_code(b);
    if let Some(fi) = racklet_rockchip::FlashInfo::parse(b) {
        assert_eq!(fi.bytes(), u64::from(fi.sectors) * 512);
    }
}

fn starfive(b: &[u8]) {
    // `info`'s decoder: a description exactly when the header parses, whose
    // checks all pass exactly when the header verifies (what the ROM checks).
    match racklet_starfive::describe(b) {
        Some(d) => {
            let h = Header::parse(b).expect("a described file has a header");
            assert_eq!(d.intact(), h.verify(b).is_ok());
            assert_eq!(d.payload.map(|p| p.len), Some(u64::from(h.payload_len)));
        }
        None => assert!(Header::parse(b).is_none()),
    }
    let _ = racklet_starfive::near_miss(b);
    if let Some(h) = Header::parse(b) {
        assert_eq!(h.header_size as usize, sf::HEADER_LEN);
        match h.verify(b) {
            Ok(()) => {
                let payload = h.payload(b).expect("a verified header has its payload");
                assert_eq!(payload.len(), h.payload_len as usize);
                let opts = HeaderOptions { version: h.version, backup_offset: h.backup_offset };
                let again = Header::parse(&sf::header(payload, &opts)).expect("built header parses");
                assert_eq!(Header { vendor_fields: h.vendor_fields, ..again }, h);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    // Round trip: the input as a payload.
    let opts = HeaderOptions::default();
    match sf::build_image(b, &opts) {
        Ok(img) => {
            let h = Header::parse(&img).expect("built image parses");
            h.verify(&img).expect("built image verifies");
            assert_eq!(h.payload(&img), Some(b));
            assert_eq!(h.vendor_fields, (0, 0));
        }
        Err(_) => assert!(b.len() as u64 > sf::MAX_PAYLOAD),
    }
    let _ = sf::size_notes(b.len() as u64);
}

fn sophgo(b: &[u8]) {
    if let Ok(info) = fip::parse(b) {
        assert!(info.chip_conf.len() <= fip::CHIP_CONF_LEN / 8);
        assert_eq!(info.len, b.len());
        let checks = info.checks();
        let all_ok = checks.iter().all(|c| c.1);
        match fip::validate(b) {
            Ok(v) => {
                assert_eq!(v, info);
                assert!(all_ok, "validate passed but a check failed: {checks:?}");
                let bl2 = info.bl2(b).expect("a valid fip.bin holds its BL2");
                assert_eq!(bl2.len(), info.bl2_size as usize);
                assert_eq!(fip::image_cksum(bl2), info.bl2_cksum);
            }
            Err(e) => {
                assert!(!all_ok || info.bl2_size == 0, "every check passed but validate said {e}");
            }
        }
        let _ = info.secure();
        assert_eq!(info.bl2(b).is_some(), info.bl2_cksum_computed.is_some());
    }
    // `info`: a fip.bin is described (whole or not), anything else is not.
    match racklet_sophgo::describe(b) {
        Some(d) => {
            assert!(fip::is_fip(b));
            assert_eq!(d.protocol, Some("sophgo"));
            assert_eq!(d.intact(), fip::validate(b).is_ok());
        }
        None => assert!(!fip::is_fip(b)),
    }
    let _ = racklet_sophgo::near_miss(b);
    // Round trip: the input as BL2.
    let max = 0x20000;
    match fip::build(b, max) {
        Ok(img) => {
            let info = fip::validate(&img).expect("a built fip.bin validates");
            assert_eq!(info.bl2_size as usize, fip::pad(b).len());
            assert_eq!(&img[info.bl2_offset()..info.bl2_offset() + b.len()], b);
            assert!(img[info.bl2_offset() + b.len()..].iter().all(|&x| x == 0));
            assert!(info.checks().iter().all(|c| c.1));
        }
        Err(_) => assert!(b.is_empty() || fip::pad(b).len() > max),
    }
}

fn canaan(b: &[u8]) {
    let described = racklet_canaan::describe(b);
    if let Some(d) = &described {
        let h = ImageHeader::parse(b).expect("a described image parses");
        assert_eq!(d.protocol, Some("canaan"));
        assert_eq!(d.payload.map(|p| p.len), Some(h.payload_len()));
        assert!(d.checks.iter().any(|c| c.name == "length" && c.ok == h.length_matches()));
    } else {
        assert!(!b.starts_with(k230::MAGIC) || ImageHeader::parse(b).is_err());
    }
    if let Ok(h) = ImageHeader::parse(b) {
        assert_eq!(h.union.len(), 516);
        assert_eq!(h.available, b.len() - k230::HEADER_LEN);
        let _ = (h.fields(), h.crypto.name(), h.length_matches(), h.payload_len());
        match h.verify(b) {
            Some(true) => assert_eq!(h.crypto, CryptoType::None),
            Some(false) => assert_eq!(h.crypto, CryptoType::None),
            None => assert_ne!(h.crypto, CryptoType::None),
        }
    }
    // Round trip: the input as the payload, its first 4 bytes as the version.
    let version = u32::from_le_bytes([0, 1, 2, 3].map(|i| b.get(i).copied().unwrap_or(0)));
    match k230::build_plain(b, version) {
        Ok(img) => {
            let h = ImageHeader::parse(&img).expect("built image parses");
            assert_eq!(h.verify(&img), Some(true));
            assert!(h.length_matches());
            assert_eq!(h.version, version);
            assert_eq!(h.payload_len(), b.len() as u64);
            assert_eq!(&img[k230::PAYLOAD_OFFSET..], b);
        }
        Err(_) => assert!(b.is_empty()),
    }
}

fn spacemit(b: &[u8]) {
    if let Ok(f) = k1::parse_fsbl(b) {
        assert!(f.keys.len() <= 4);
        assert_eq!(f.spl_len, b.len() - k1::SPL_OFFSET);
        if f.size_ok {
            assert_eq!(f.header1.imgsize as usize + k1::SPL_OFFSET + k1::SIGNATURE_LEN, b.len());
        }
    }
    let built = k1::build_fsbl(b);
    let f = k1::parse_fsbl(&built).expect("a built FSBL parses");
    assert!(f.size_ok && f.rotpk_hash_ok);
    assert_eq!(f.header1.imgsize as usize, b.len().div_ceil(32) * 32);
    assert_eq!(&built[k1::SPL_OFFSET..k1::SPL_OFFSET + b.len()], b);
    assert_eq!(f.keys.len(), 4);
    if let Some(bi) = k1::parse_bootinfo(b) {
        assert!(!bi.flash_type.is_empty());
        let crc = crc32fast(&b[..0x40]);
        assert_eq!(bi.crc_ok, crc == u32::from_le_bytes(b[0x40..0x44].try_into().unwrap()));
    }
}

/// CRC-32/ISO-HDLC written out bit by bit, independent of the crate.
fn crc32fast(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
