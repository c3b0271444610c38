//! `plan` and `image`: every input check, before any device is touched.

use std::path::{Path, PathBuf};

use racklet_image::{Arch, ImageError, Payload, Source, Target, Window};
use racklet_link::{Classify, FailureClass, UsbId};
use racklet_sophgo::plan::{Image, image};
use racklet_sophgo::{Core, Inputs, PlanError, fip, plan};

fn bl2(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    v[..4].copy_from_slice(&[0x6f, 0x00, 0x00, 0x02]);
    v
}

fn target(soc: &str) -> Target {
    let (base, size) = if soc == "cv1800b" { (0x3BC0_0000, 0x19000) } else { (0x0C00_0000, 0x37000) };
    Target {
        board: "the-board".into(),
        soc: soc.into(),
        arch: Some(Arch::Riscv64),
        load_address: base,
        entry: Some(base + 0x20),
        window: Window { board: "the-board".into(), base, size, max_payload: None },
        usb: vec![("rom".into(), 0x3346, 0x1000)],
        baud: None,
        max_stage: 256 << 20,
    }
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn with(bin: &Path) -> Inputs {
    Inputs { bin: Some(bin.to_path_buf()), ..Default::default() }
}

#[test]
fn a_bl2_becomes_a_fip_for_the_boot_core() {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(5000));
    let plan = plan(&with(&p), &target("sg2002")).unwrap();
    assert_eq!((plan.core, plan.bl2_base, plan.bl2_entry()), (Core::Riscv, 0x0C00_0000, 0x0C00_0020));
    assert_eq!(plan.ids, vec![UsbId::new(0x3346, 0x1000)]);
    assert!(plan.warnings.is_empty());
    let Image::Fip { bytes, info, built_from } = &plan.image else { panic!("a fip.bin") };
    assert_eq!(info.bl2_size, 5120);
    assert_eq!(&bytes[4096..4096 + 5000], &bl2(5000)[..]);
    assert_eq!(built_from.as_ref().map(|b| b.1), Some(5000));

    let arm = Inputs { core: Some(Core::Arm), ..with(&p) };
    assert_eq!(plan_ok(&arm, "sg2000").bl2_base, 0x4010_0000);
    // A raw BL2 of exactly the SRAM size fits.
    let fits = file(d.path(), "fits.bin", &bl2(0x37000));
    plan_ok(&with(&fits), "sg2002");
}

fn plan_ok(i: &Inputs, soc: &str) -> racklet_sophgo::Plan {
    plan(i, &target(soc)).unwrap_or_else(|e| panic!("{soc}: {e}"))
}

fn refused(i: &Inputs, soc: &str) -> PlanError {
    let e = plan(i, &target(soc)).expect_err("refused");
    assert_eq!(e.class(), FailureClass::BadInput, "{e}");
    e
}

#[test]
fn every_bad_input_is_refused_with_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let ok = file(d.path(), "bl2.bin", &bl2(100));
    let e = refused(&Inputs::default(), "sg2002");
    assert!(matches!(e, PlanError::NoPayload { .. }), "{e}");
    assert!(e.hint().unwrap().contains("racklet-flash maskrom the-board"), "{e}");
    assert!(matches!(refused(&Inputs { dram: Some(ok.clone()), ..with(&ok) }, "sg2002"), PlanError::Dram));
    assert!(matches!(refused(&with(&ok), "rk3568"), PlanError::UnknownSoc { .. }));
    let e = refused(&Inputs { core: Some(Core::Arm), ..with(&ok) }, "cv1800b");
    assert!(matches!(e, PlanError::NoArmCore { .. }) && e.to_string().contains("RISC-V core only"), "{e}");
    let missing = d.path().join("missing.bin");
    assert!(matches!(refused(&with(&missing), "sg2002"), PlanError::Image(ImageError::Read { .. })));
    let empty = file(d.path(), "empty.bin", &[]);
    assert!(matches!(refused(&with(&empty), "sg2002"), PlanError::Image(ImageError::Empty { .. })));
    // One byte over the SRAM: the SG200x's and the CV1800B's.
    let big = file(d.path(), "big.bin", &bl2(0x37001));
    assert!(matches!(refused(&with(&big), "sg2002"), PlanError::Image(ImageError::TooLarge { .. })));
    let duo = file(d.path(), "duo.bin", &bl2(0x19001));
    assert!(matches!(refused(&with(&duo), "cv1800b"), PlanError::Image(ImageError::TooLarge { .. })));
    // A file over the board's largest stage is refused by its size, unread.
    let mut small = target("sg2002");
    small.max_stage = 50;
    let e = plan(&with(&ok), &small).unwrap_err();
    assert!(e.to_string().contains("a stage of the-board can be"), "{e}");
    let e = plan(&Inputs { main: true, ..with(&ok) }, &small).unwrap_err();
    assert!(matches!(e, PlanError::Image(_)), "{e}");
}

#[test]
fn a_fip_is_checked_as_given() {
    let d = tempfile::tempdir().unwrap();
    let good = fip::build(&bl2(300), 0x37000).unwrap();
    let p = file(d.path(), "fip.bin", &good);
    let Image::Fip { bytes, built_from: None, .. } = plan_ok(&with(&p), "sg2000").image else {
        panic!("the fip.bin as given")
    };
    assert_eq!(bytes, good);

    let mut bad = good.clone();
    bad[0x1000 + 40] ^= 0xFF; // a BL2 byte
    let e = refused(&with(&file(d.path(), "bad.bin", &bad)), "sg2000");
    assert!(e.to_string().contains("BL2 checksum"), "{e}");
    let mut bad = good;
    bad[0x100] ^= 1; // inside param1's checksummed range
    let e = refused(&with(&file(d.path(), "bad2.bin", &bad)), "sg2000");
    assert!(e.to_string().contains("param1 checksum"), "{e}");
    // A fip.bin for the SG200x's SRAM does not fit the CV1800B's.
    let big = file(d.path(), "sg.bin", &fip::build(&bl2(0x1A000), 0x37000).unwrap());
    assert!(matches!(refused(&with(&big), "cv1800b"), PlanError::Bl2TooLarge { size: 0x1A000, .. }));
}

#[test]
fn ids_come_from_usb_id_the_table_or_the_rom() {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(100));
    let id = UsbId::new(0x1234, 0xabcd);
    assert_eq!(plan_ok(&Inputs { usb_id: Some(id), ..with(&p) }, "sg2002").ids, vec![id]);
    let mut t = target("sg2002");
    t.usb = vec![("rom".into(), 0x3346, 0x1001), ("uboot".into(), 0x3346, 0x1002)];
    assert_eq!(plan(&with(&p), &t).unwrap().ids, vec![UsbId::new(0x3346, 0x1001)]);
    t.usb.clear();
    assert_eq!(plan(&with(&p), &t).unwrap().ids, vec![UsbId::new(0x3346, 0x1000)]);
}

#[test]
fn a_bl2_that_does_not_jump_over_its_header_is_warned_about() {
    let d = tempfile::tempdir().unwrap();
    let mut body = bl2(100);
    body[..4].copy_from_slice(&[0x13, 0, 0, 0]); // nop
    let p = file(d.path(), "bl2.bin", &body);
    let plan = plan_ok(&with(&p), "sg2002");
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].contains("0xc000020"), "{:?}", plan.warnings);
}

#[test]
fn the_storage_image_keeps_a_fip_and_wraps_a_bl2() {
    let raw = |bytes: Vec<u8>| Payload {
        path: "in.bin".into(),
        mem_size: bytes.len() as u64,
        bytes,
        load_address: None,
        entry: None,
        source: Source::Raw,
    };
    let f = fip::build(&bl2(300), 0x37000).unwrap();
    assert_eq!(image(&raw(f.clone()), &target("sg2002")).unwrap(), f);
    let built = image(&raw(bl2(300)), &target("cv1800b")).unwrap();
    let info = fip::validate(&built).unwrap();
    assert_eq!(info.bl2(&built).map(|b| &b[..300]), Some(&bl2(300)[..]));
    let e = image(&raw(bl2(0x19001)), &target("cv1800b")).unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput);
}

/// An Arm ELF on a chip with an Arm boot core (SG2000/SG2002), without
/// `--core arm`: the fix is the flag, not a rebuild for RISC-V (ux review
/// §15). On the CV1800B, which has no Arm core, the ELF is simply wrong.
#[test]
fn an_arm_elf_without_core_arm_is_pointed_at_the_flag() {
    let d = tempfile::tempdir().unwrap();
    let elf = racklet_tests::elf64(183, 0x4010_0000, &[(0x4010_0000, &bl2(2000), 2000)]);
    let p = file(d.path(), "bl2-arm.elf", &elf);
    let e = refused(&with(&p), "sg2000");
    assert!(e.to_string().contains("bl2-arm.elf") && e.to_string().contains("aarch64"), "{e}");
    assert!(e.hint().is_some_and(|h| h.contains("--core arm")), "{e}: {:?}", e.hint());
    // With the flag it is planned for the Arm core.
    assert_eq!(plan_ok(&Inputs { core: Some(Core::Arm), ..with(&p) }, "sg2000").core, Core::Arm);
    let e = refused(&with(&p), "cv1800b");
    assert!(e.hint().is_none_or(|h| !h.contains("--core arm")), "{e}: {:?}", e.hint());
}
