//! RKBOOT loaders built by the test from the fact sheet's layout (§2).

use std::time::Duration;

use racklet_link::{Classify, ControlSetup, FailureClass, LinkError, NoProgress, UsbInfo, UsbLink};
use racklet_rockchip::loader::{EntryKind, Loader, LoaderError};
use racklet_rockchip::maskrom::{Timeouts, download_loader};

/// Rockchip CRC32 (poly 0x04C10DB7, init 0, MSB first, no xorout), bit by bit.
fn crc32_ref(data: &[u8]) -> u32 {
    let mut c: u32 = 0;
    for &b in data {
        c ^= u32::from(b) << 24;
        for _ in 0..8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04c1_0db7 } else { c << 1 };
        }
    }
    c
}

/// (type, name, data, delay)
type E<'a> = (u32, &'a str, Vec<u8>, u32);

/// Header 0x66 bytes, tables back to back (471, 472, loader), data, CRC32.
fn build(tag: &[u8; 4], chip: &[u8; 4], flags: [u8; 4], entries: &[E]) -> Vec<u8> {
    let count = |t: u32| entries.iter().filter(|e| e.0 == t).count();
    let (n1, n2, n4) = (count(1), count(2), count(4));
    let t1 = 0x66;
    let t2 = t1 + 57 * n1;
    let t4 = t2 + 57 * n2;
    let mut data_off = t4 + 57 * n4;
    let mut h = vec![0u8; 0x66];
    h[0..4].copy_from_slice(tag);
    h[4..6].copy_from_slice(&0x66u16.to_le_bytes());
    h[6..10].copy_from_slice(&0x0117u32.to_le_bytes());
    h[10..14].copy_from_slice(&0x0100_0000u32.to_le_bytes());
    h[14..16].copy_from_slice(&2024u16.to_le_bytes());
    h[16..21].copy_from_slice(&[5, 6, 7, 8, 9]);
    // chip "3568" is packed big-endian into a u32 and stored LE: bytes reversed.
    h[0x15..0x19].copy_from_slice(&[chip[3], chip[2], chip[1], chip[0]]);
    h[0x19] = n1 as u8;
    h[0x1a..0x1e].copy_from_slice(&(t1 as u32).to_le_bytes());
    h[0x1e] = 57;
    h[0x1f] = n2 as u8;
    h[0x20..0x24].copy_from_slice(&(t2 as u32).to_le_bytes());
    h[0x24] = 57;
    h[0x25] = n4 as u8;
    h[0x26..0x2a].copy_from_slice(&(t4 as u32).to_le_bytes());
    h[0x2a] = 57;
    h[0x2b..0x2f].copy_from_slice(&flags);
    let mut tables = Vec::new();
    let mut data = Vec::new();
    for t in [1u32, 2, 4] {
        for (ty, name, bytes, delay) in entries.iter().filter(|e| e.0 == t) {
            let mut e = vec![57u8];
            e.extend_from_slice(&ty.to_le_bytes());
            let mut units: Vec<u16> = name.encode_utf16().collect();
            units.resize(20, 0);
            for u in units {
                e.extend_from_slice(&u.to_le_bytes());
            }
            e.extend_from_slice(&(data_off as u32).to_le_bytes());
            e.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            e.extend_from_slice(&delay.to_le_bytes());
            assert_eq!(e.len(), 57);
            tables.extend_from_slice(&e);
            data.extend_from_slice(bytes);
            data_off += bytes.len();
        }
    }
    let mut f = h;
    f.extend_from_slice(&tables);
    f.extend_from_slice(&data);
    let c = crc32_ref(&f);
    f.extend_from_slice(&c.to_le_bytes());
    f
}

fn sample() -> Vec<u8> {
    build(
        b"LDR ",
        b"3568",
        [0, 1, 1, 0],
        &[
            (1, "rk3568_ddr_1560MHz_v", vec![0x11; 2048], 1),
            (2, "rk356x_usbplug_v1", vec![0x22; 4096], 0),
            (4, "FlashBoot", vec![0x33; 2048], 0),
            (1, "UsbHead", vec![0x44; 2048], 0),
        ],
    )
}

#[test]
fn crc32_check_value() {
    assert_eq!(crc32_ref(b"123456789"), 0x889a_9615);
    assert_eq!(racklet_rockchip::rk_crc32(b"123456789"), 0x889a_9615);
}

#[test]
fn parses_a_loader_built_from_the_sheet() {
    let f = sample();
    let l = Loader::parse(&f).unwrap();
    assert_eq!(&l.tag, b"LDR ");
    assert_eq!(l.chip_code.as_deref(), Some("3568"));
    assert_eq!(l.version, 0x0117);
    assert_eq!((l.release.year, l.release.month, l.release.second), (2024, 5, 9));
    assert!(l.stored_without_rc4);
    assert!(!l.crc_disabled);
    assert_eq!(l.rc4_flag, 1);
    let names: Vec<(EntryKind, &str, u32, u32)> =
        l.entries.iter().map(|e| (e.kind, e.name.as_str(), e.size, e.delay_ms)).collect();
    assert_eq!(
        names,
        [
            (EntryKind::Code471, "rk3568_ddr_1560MHz_v", 2048, 1),
            (EntryKind::Code471, "UsbHead", 2048, 0),
            (EntryKind::Code472, "rk356x_usbplug_v1", 4096, 0),
            (EntryKind::Loader, "FlashBoot", 2048, 0),
        ]
    );
    assert_eq!(l.crc32_stored, crc32_ref(&f[..f.len() - 4]));
}

#[test]
fn damaged_loaders_name_the_problem() {
    let good = sample();
    let mut bad_magic = good.clone();
    bad_magic[0..4].copy_from_slice(b"BOOX");
    assert!(matches!(Loader::parse(&bad_magic), Err(LoaderError::BadMagic { .. })));
    assert!(racklet_rockchip::loader::looks_like_rkboot(&bad_magic));

    let truncated = good[..0x66 + 20].to_vec();
    let e = Loader::parse(&truncated).unwrap_err();
    assert!(matches!(e, LoaderError::TruncatedTable { .. }), "{e}");
    assert!(e.to_string().contains("truncated RKBOOT entry table"));

    let mut crc = good.clone();
    let n = crc.len();
    crc[n - 10] ^= 0xff;
    let e = Loader::parse(&crc).unwrap_err();
    assert!(matches!(e, LoaderError::BadCrc32 { .. }), "{e}");
    assert!(e.to_string().contains("CRC32 mismatch"));

    // Entry 0's size grows past the end of the file.
    let mut past = good.clone();
    past[0x66 + 0x31..0x66 + 0x35].copy_from_slice(&0x0010_0000u32.to_le_bytes());
    let e = Loader::parse(&past).unwrap_err();
    assert!(matches!(e, LoaderError::EntryPastEnd { .. }), "{e}");
    assert!(e.to_string().contains("past the end of the file"));

    let mut extra = good.clone();
    extra.push(0);
    assert!(matches!(Loader::parse(&extra), Err(LoaderError::BadLength { .. })));

    assert!(matches!(Loader::parse(b"LDR "), Err(LoaderError::TruncatedHeader { .. })));
    let e = LoaderError::BadCrc32 { stored: 0, computed: 1 };
    assert_eq!(racklet_rockchip::RockchipError::from(e).class(), FailureClass::BadInput);
}

struct Rec(UsbInfo, Vec<(u16, Vec<u8>)>);
impl UsbLink for Rec {
    fn info(&self) -> &UsbInfo {
        &self.0
    }
    fn control_out(&mut self, s: ControlSetup, d: &[u8], _: Duration) -> Result<(), LinkError> {
        self.1.push((s.index, d.to_vec()));
        Ok(())
    }
    fn control_in(&mut self, _: ControlSetup, _: u16, _: Duration) -> Result<Vec<u8>, LinkError> {
        unreachable!()
    }
    fn bulk_out(&mut self, _: u8, _: &[u8], _: Duration) -> Result<(), LinkError> {
        unreachable!()
    }
    fn bulk_in(&mut self, _: u8, _: usize, _: Duration) -> Result<Vec<u8>, LinkError> {
        unreachable!()
    }
}

#[test]
fn loader_entries_go_471_then_472_as_stored() {
    let f = sample();
    let l = Loader::parse(&f).unwrap();
    let mut link = Rec(UsbInfo::default(), Vec::new());
    let r = download_loader(&mut link, &l, &f, false, &Timeouts::default(), &mut NoProgress).unwrap();
    assert_eq!(r.len(), 3);
    // 2048-byte entries: one 2050-byte transfer each; 4096: [4096, 2].
    let shape: Vec<(u16, usize)> = link.1.iter().map(|(i, d)| (*i, d.len())).collect();
    assert_eq!(shape, [(0x471, 2050), (0x471, 2050), (0x472, 4096), (0x472, 2)]);
    let firsts: Vec<u8> = link.1[..3].iter().map(|(_, d)| d[0]).collect();
    assert_eq!(firsts, [0x11, 0x44, 0x22]);
    // Bytes exactly as stored: no RC4 on loader entries.
    assert_eq!(&link.1[0].1[..2048], &[0x11; 2048][..]);
}

/// The DRAM-init entries run from SRAM: a maskrom download checks them
/// against it before sending (rock-3a: 60 KiB), and refuses empty stages.
#[test]
fn stages_are_checked_against_the_sram_before_sending() {
    let sram = 0xf000;
    let ok = Loader::parse(&sample()).unwrap();
    ok.check_stages(sram).unwrap();
    let big =
        build(b"LDR ", b"3568", [0; 4], &[(1, "ddr", vec![0x11; 0xf001], 0), (2, "plug", vec![1; 64], 0)]);
    let e = Loader::parse(&big).unwrap().check_stages(sram).unwrap_err();
    assert!(matches!(e, LoaderError::DdrTooLarge { size: 0xf001, sram: 0xf000, .. }), "{e}");
    let empty = build(b"LDR ", b"3568", [0; 4], &[(1, "ddr", vec![], 0), (2, "plug", vec![1; 64], 0)]);
    let e = Loader::parse(&empty).unwrap().check_stages(sram).unwrap_err();
    assert!(matches!(e, LoaderError::EmptyEntry { kind: "471", .. }), "{e}");
    let empty_plug = build(b"LDR ", b"3568", [0; 4], &[(1, "ddr", vec![1; 64], 0), (2, "plug", vec![], 0)]);
    assert!(Loader::parse(&empty_plug).unwrap().check_stages(sram).is_err());
}
