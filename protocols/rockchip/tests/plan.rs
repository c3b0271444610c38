//! `plan`: every file, format, chip and fit check before a device is
//! touched, each a typed `PlanError` of class BadInput with a hint.

mod common;

use common::{file, pattern, rk3568_loader, rkboot, target};
use racklet_link::{Classify, FailureClass};
use racklet_rockchip::plan::{PlanError, Stages, find_rkbin};
use racklet_rockchip::{Inputs, plan};

fn raw(dram: Option<&std::path::Path>, bin: Option<&std::path::Path>) -> Inputs {
    Inputs { dram: dram.map(Into::into), bin: bin.map(Into::into), ..Default::default() }
}

#[test]
fn a_loader_is_sent_as_stored_and_raw_blobs_follow_the_chip_table() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let p = plan(&Inputs { bin: Some(l.clone()), ..Default::default() }, &target("rock-3a")).unwrap();
    assert!(matches!(&p.stages, Stages::Loader { from, .. } if *from == l));
    assert!(p.has_usbplug());
    let ddr = file(d.path(), "ddr.bin", &pattern(4094, 5));
    let plug = file(d.path(), "plug.bin", &pattern(8191, 6));
    // RK3568 is a new-IDB chip: plain raw stages (sheet §1.4); RK3399 wants RC4.
    for (board, rc4) in [("rock-3a", false), ("rockpro64", true)] {
        let p = plan(&raw(Some(&ddr), Some(&plug)), &target(board)).unwrap();
        let Stages::Raw { ddr: got, usbplug, rc4: r } = &p.stages else { panic!("{board}: not raw") };
        assert_eq!((got.bytes.len(), usbplug.as_ref().map(|u| u.bytes.len()), *r), (4094, Some(8191), rc4));
    }
    // --rc4 overrides the table; --dram alone has no usbplug.
    let p = plan(&Inputs { rc4: Some(false), ..raw(Some(&ddr), None) }, &target("rockpro64")).unwrap();
    assert!(matches!(p.stages, Stages::Raw { rc4: false, usbplug: None, .. }));
    assert!(!p.has_usbplug());
}

#[test]
fn bad_usage_is_refused_with_the_fix_apart() {
    let d = tempfile::tempdir().unwrap();
    let plug = file(d.path(), "plug.bin", &pattern(100, 1));
    let big = file(d.path(), "big.bin", &pattern(0xf001, 1));
    let fits = file(d.path(), "fits.bin", &pattern(0xf000, 1));
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let t = target("rock-3a");
    let cases: Vec<(Inputs, &str, &str)> = vec![
        (raw(None, Some(&plug)), "sent as the 0x472 stage", "--dram"),
        (raw(None, None), "nothing to send to rock-3a", "--rkbin DIR"),
        (raw(Some(&big), None), "61441 bytes do not fit rock-3a's SRAM", "DRAM-init blob"),
        (
            Inputs { zero_crc: true, ..raw(Some(&plug), Some(&plug)) },
            "not known to accept a zero CRC",
            "--zero-crc",
        ),
        (Inputs { rc4: Some(true), ..raw(None, Some(&l)) }, "--rc4 applies to raw blobs", "drop --rc4"),
        (
            Inputs { dram: Some(plug.clone()), ..raw(None, Some(&l)) },
            "already holds the DRAM-init",
            "drop --dram",
        ),
    ];
    for (inputs, message, hint) in cases {
        let e = plan(&inputs, &t).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput, "{e}");
        assert!(e.to_string().contains(message), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains(hint)), "{e}: {:?}", e.hint());
    }
    // The SRAM window is the limit: exactly its size fits.
    assert!(plan(&raw(Some(&fits), None), &t).is_ok());
    // An unknown SoC is the board table's problem.
    let mut odd = target("rock-3a");
    odd.soc = "rk9999".into();
    assert!(matches!(plan(&raw(Some(&plug), None), &odd), Err(PlanError::UnknownSoc { .. })));
}

#[test]
fn the_zero_crc_refusal_names_the_chips_of_the_table() {
    let d = tempfile::tempdir().unwrap();
    let ddr = file(d.path(), "ddr.bin", &pattern(100, 1));
    let e = plan(&Inputs { zero_crc: true, ..raw(Some(&ddr), None) }, &target("rock-3a")).unwrap_err();
    let PlanError::ZeroCrcRefused { known, loader: None, .. } = &e else { panic!("{e:?}") };
    // Sheet §1.3/§8.6, as the table's ZeroCrc column says it.
    assert_eq!(known, &racklet_rockchip::chips::zero_crc_summary());
    for chip in ["RK3576", "RK3528", "RV1106", "RK3506", "RK3308"] {
        assert!(e.to_string().contains(chip), "{e}");
    }
    // Where the table allows it, or the loader says CRC off (0x2E = 1), it goes.
    assert!(plan(&Inputs { zero_crc: true, ..raw(Some(&ddr), None) }, &target("test-3576")).is_ok());
    let off = rkboot(b"LDR ", b"3568", [0, 1, 1, 1], &[(1, "ddr", pattern(100, 2), 0)]);
    let off = file(d.path(), "crc-off.bin", &off);
    assert!(plan(&Inputs { zero_crc: true, ..raw(None, Some(&off)) }, &target("rock-3a")).is_ok());
    let on = file(d.path(), "crc-on.bin", &rk3568_loader());
    let e = plan(&Inputs { zero_crc: true, ..raw(None, Some(&on)) }, &target("rock-3a")).unwrap_err();
    assert!(e.to_string().contains("crc-on.bin does not set its CRC-off flag"), "{e}");
}

#[test]
fn damaged_or_foreign_loaders_name_the_file_and_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let good = rk3568_loader();
    let truncated = good[..0x66 + 30].to_vec();
    let mut crc = good.clone();
    let n = crc.len();
    crc[n - 100] ^= 1;
    let mut past = good.clone();
    // The 472 entry (third record): its size field far past the end.
    let e = 0x66 + 2 * 57;
    past[e + 0x31..e + 0x35].copy_from_slice(&0x00ff_0000u32.to_le_bytes());
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"BOOX");
    for (name, bytes, needle) in [
        ("truncated.bin", truncated, "truncated RKBOOT entry table"),
        ("crc.bin", crc, "CRC32 mismatch"),
        ("past.bin", past, "past the end of the file"),
        ("magic.bin", magic, "not \"BOOT\" or \"LDR \""),
    ] {
        let p = file(d.path(), name, &bytes);
        let e = plan(&raw(None, Some(&p)), &target("rock-3a")).unwrap_err();
        assert!(matches!(e, PlanError::Loader { .. }), "{name}: {e:?}");
        assert!(e.to_string().contains(name) && e.to_string().contains(needle), "{name}: {e}");
        assert_eq!(e.class(), FailureClass::BadInput);
    }
    let other = rkboot(b"BOOT", b"330C", [0; 4], &[(1, "ddr", b"RK33xxxx".to_vec(), 1)]);
    let other = file(d.path(), "rk3399.bin", &other);
    let e = plan(&raw(None, Some(&other)), &target("rock-3a")).unwrap_err();
    assert!(e.to_string().contains("for chip '330C' (rk3399/rk3399pro), but rock-3a has rk3568"), "{e}");
    assert!(e.hint().unwrap().contains("--force"));
    // --force sends it anyway.
    assert!(plan(&Inputs { force: true, ..raw(None, Some(&other)) }, &target("rock-3a")).is_ok());
    let no471 = rkboot(b"LDR ", b"3568", [0; 4], &[(2, "plug", pattern(64, 1), 0)]);
    let no471 = file(d.path(), "no471.bin", &no471);
    let e = plan(&raw(None, Some(&no471)), &target("rock-3a")).unwrap_err();
    assert!(matches!(e, PlanError::NoDramEntry { .. }), "{e}");
    // Only empty 0x471 entries: nothing would go out as DRAM init either.
    let empty471 = rkboot(b"LDR ", b"3568", [0; 4], &[(1, "ddr", vec![], 0), (2, "plug", pattern(64, 1), 0)]);
    let empty471 = file(d.path(), "empty471.bin", &empty471);
    let e = plan(&raw(None, Some(&empty471)), &target("rock-3a")).unwrap_err();
    assert!(matches!(e, PlanError::EmptyDramEntries { .. }), "{e}");
    assert!(e.to_string().contains("every 0x471 (DRAM init) entry holds 0 bytes ('ddr')"), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
}

#[test]
fn rkbin_supplies_both_blobs_newest_version_per_soc() {
    let d = tempfile::tempdir().unwrap();
    let rk35 = d.path().join("bin").join("rk35");
    std::fs::create_dir_all(&rk35).unwrap();
    file(&rk35, "rk3568_ddr_1560MHz_v1.18.bin", &pattern(3000, 1));
    let newest = file(&rk35, "rk3568_ddr_1560MHz_v1.23.bin", &pattern(3001, 2));
    file(&rk35, "rk3568_ddr_1560MHz_v1.9.bin", &pattern(3002, 3));
    let plug = file(&rk35, "rk356x_usbplug_v1.17.bin", &pattern(5000, 4));
    let rk3566 = file(&rk35, "rk3566_ddr_1056MHz_v1.23.bin", &pattern(3003, 5));
    let inputs = Inputs { rkbin: Some(d.path().into()), ..Default::default() };
    let p = plan(&inputs, &target("rock-3a")).unwrap();
    let Stages::Raw { ddr, usbplug: Some(u), .. } = &p.stages else { panic!("{:?}", p.stages) };
    assert_eq!((&ddr.from, ddr.bytes.len(), &u.from), (&newest, 3001, &plug));
    // An RK3566 board takes the RK3566 blob.
    let p = plan(&inputs, &target("quartz64-a")).unwrap();
    assert!(matches!(&p.stages, Stages::Raw { ddr, .. } if ddr.from == rk3566));
    // --dram wins over rkbin's DDR blob.
    let mine = file(d.path(), "mine.bin", &pattern(10, 1));
    let p = plan(&Inputs { dram: Some(mine.clone()), ..inputs.clone() }, &target("rock-3a")).unwrap();
    assert!(matches!(&p.stages, Stages::Raw { ddr, .. } if ddr.from == mine));
    // RK3588 blobs are missing: the pattern looked for is named.
    let e = plan(&inputs, &target("rock-5b")).unwrap_err();
    assert!(e.to_string().contains("no rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v*.bin in it"), "{e}");
    let e = find_rkbin(&mine, "x_v1.0.bin").unwrap_err();
    assert!(matches!(e, PlanError::RkbinNotADirectory { .. }), "{e}");
}

#[test]
fn files_are_bounded_before_they_are_read_and_loader_stages_checked() {
    let d = tempfile::tempdir().unwrap();
    let ddr = file(d.path(), "ddr.bin", &pattern(2000, 1));
    let mut small = target("rock-3a");
    small.max_stage = 1000;
    let e = plan(&raw(Some(&ddr), None), &small).unwrap_err();
    assert!(matches!(e, PlanError::Image(_)) && e.to_string().contains("ddr.bin"), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    // A loader whose 0x471 entry cannot run from the board's SRAM.
    let big = rkboot(
        b"LDR ",
        b"3568",
        [0; 4],
        &[(1, "ddr", pattern(0xf001, 1), 0), (2, "plug", pattern(64, 2), 0)],
    );
    let big = file(d.path(), "big-loader.bin", &big);
    let e = plan(&raw(None, Some(&big)), &target("rock-3a")).unwrap_err();
    assert!(e.to_string().contains("big-loader.bin") && e.to_string().contains("61441 bytes"), "{e}");
}

/// rkbin's RK3326MINIALL.ini says NAME=RK3326, so a genuine RK3326 loader
/// carries chip code "3326" (and U-Boot's chip_info.c reports 0x33333236):
/// it is the rk3326 board's chip, not a foreign one.
#[test]
fn a_genuine_rk3326_loader_is_for_an_rk3326_board() {
    let d = tempfile::tempdir().unwrap();
    let l = rkboot(
        b"BOOT",
        b"3326",
        [0; 4],
        &[(1, "ddr", b"RK33xxxx".to_vec(), 1), (2, "plug", pattern(64, 1), 0)],
    );
    let l = file(d.path(), "rk3326.bin", &l);
    let p = plan(&raw(None, Some(&l)), &target("test-3326")).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.chip.socs.contains(&"rk3326"));
}

/// The DRAM-init stage runs in SRAM at the board's load address (the ROM
/// copies 0x471 there, sheet §1): an ELF for it must be linked there, as
/// `maskrom` and `info` both say.
#[test]
fn an_elf_for_the_dram_init_slot_must_be_linked_for_the_sram() {
    let d = tempfile::tempdir().unwrap();
    let code = pattern(600, 3);
    let here = racklet_tests::elf64(183, 0xfdcc_1000, &[(0xfdcc_1000, &code, 600)]);
    let there = racklet_tests::elf64(183, 0xff00_1000, &[(0xff00_1000, &code, 600)]);
    let here = file(d.path(), "here.elf", &here);
    let there = file(d.path(), "there.elf", &there);
    let p = plan(&raw(Some(&here), None), &target("rock-3a")).unwrap();
    let Stages::Raw { ddr, .. } = &p.stages else { panic!("not raw") };
    assert_eq!(ddr.bytes, code, "the flat image of the ELF");
    let e = plan(&raw(Some(&there), None), &target("rock-3a")).unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput, "{e}");
    assert!(e.to_string().contains("there.elf") && e.to_string().contains("0xff001000"), "{e}");
    // Linked for the SRAM of rock-5b, it fits rock-5b.
    assert!(plan(&raw(Some(&there), None), &target("rock-5b")).is_ok());
}
