//! RKBOOT loaders built by the test from the fact sheet's layout (§2).

mod common;

use common::rkboot;
use racklet_link::testing::{ScriptedUsb, Transfer};
use racklet_link::{Classify, FailureClass, NoProgress};
use racklet_rockchip::loader::{EntryKind, Loader, LoaderError};
use racklet_rockchip::maskrom::{Timeouts, download_loader};
use racklet_sim::crc::crc32_rockchip;

fn sample() -> Vec<u8> {
    rkboot(
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
    assert_eq!(crc32_rockchip(b"123456789"), 0x889a_9615);
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
    assert_eq!(l.crc32_stored, crc32_rockchip(&f[..f.len() - 4]));
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

#[test]
fn loader_entries_go_471_then_472_as_stored() {
    let f = sample();
    let l = Loader::parse(&f).unwrap();
    let mut link = ScriptedUsb::new();
    let r = download_loader(&mut link, &l, &f, false, &Timeouts::default(), &mut NoProgress).unwrap();
    assert_eq!(r.len(), 3);
    let sent: Vec<(u16, &[u8])> = link
        .log
        .iter()
        .map(|t| match t {
            Transfer::ControlOut { setup, data } => (setup.index, data.as_slice()),
            t => panic!("maskrom uses control OUT only: {t:?}"),
        })
        .collect();
    // 2048-byte entries: one 2050-byte transfer each; 4096: [4096, 2].
    let shape: Vec<(u16, usize)> = sent.iter().map(|(i, d)| (*i, d.len())).collect();
    assert_eq!(shape, [(0x471, 2050), (0x471, 2050), (0x472, 4096), (0x472, 2)]);
    let firsts: Vec<u8> = sent[..3].iter().map(|(_, d)| d[0]).collect();
    assert_eq!(firsts, [0x11, 0x44, 0x22]);
    // Bytes exactly as stored: no RC4 on loader entries.
    assert_eq!(&sent[0].1[..2048], &[0x11; 2048][..]);
}

/// The DRAM-init entries run from SRAM: a maskrom download checks them
/// against it before sending (rock-3a: 60 KiB). Empty entries are not sent
/// (rkdeveloptool skips them), so they pass the check.
#[test]
fn stages_are_checked_against_the_sram_before_sending() {
    let sram = 0xf000;
    let ok = Loader::parse(&sample()).unwrap();
    ok.check_stages(sram).unwrap();
    let big =
        rkboot(b"LDR ", b"3568", [0; 4], &[(1, "ddr", vec![0x11; 0xf001], 0), (2, "plug", vec![1; 64], 0)]);
    let e = Loader::parse(&big).unwrap().check_stages(sram).unwrap_err();
    assert!(matches!(e, LoaderError::DdrTooLarge { size: 0xf001, sram: 0xf000, .. }), "{e}");
    let empty_plug = rkboot(b"LDR ", b"3568", [0; 4], &[(1, "ddr", vec![1; 64], 0), (2, "plug", vec![], 0)]);
    Loader::parse(&empty_plug).unwrap().check_stages(sram).unwrap();
}
