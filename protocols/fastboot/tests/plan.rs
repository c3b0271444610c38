//! Every input check of `plan` and of the `image` builder: a typed
//! `PlanError` that names the file or flag, is bad input (exit 2) and
//! carries its fix apart from the message.

use std::path::{Path, PathBuf};

use racklet_fastboot::k1::FsblError;
use racklet_fastboot::{Inputs, PlanError, Soc, k1, plan};
use racklet_image::{ImageError, Payload, Source, Target, Window};
use racklet_link::{Classify, FailureClass, UsbId};

fn target(soc: &str, usb: &[(&str, u16, u16)]) -> Target {
    let (board, load, size) = match soc {
        "th1520" => ("lichee-pi-4a", 0xff_e000_0000, 0x20_0000),
        _ => ("bpi-f3", 0xc080_0000, 0x4_0000),
    };
    Target {
        board: board.into(),
        soc: soc.into(),
        arch: racklet_image::Arch::from_name("riscv64"),
        load_address: load,
        entry: None,
        window: Window { board: board.into(), base: load, size, max_payload: None },
        usb: usb.iter().map(|(s, v, p)| (s.to_string(), *v, *p)).collect(),
        baud: None,
        max_stage: 256 << 20,
    }
}

fn k1() -> Target {
    target("k1", &[("rom", 0x361c, 0x1001), ("fsbl", 0x361c, 0x1001)])
}

fn th1520() -> Target {
    target("th1520", &[("rom", 0x2345, 0x7654), ("uboot", 0x1234, 0x8888)])
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn inputs(image: &Path) -> Inputs {
    Inputs { image: Some(image.into()), await_next: true, ..Default::default() }
}

/// The error, checked to be bad input with a message naming `needle`.
fn refused(r: Result<racklet_fastboot::Plan, PlanError>, needle: &str) -> PlanError {
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput, "{e}");
    assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
    e
}

/// Review F5: the vendor loaders hold less than the board's SRAM window, so
/// an oversized image would pass and die on the board; it is refused before
/// anything is sent (exit 2), and --force sends it anyway.
#[test]
fn images_larger_than_the_vendor_loader_holds_are_refused_up_front() {
    let d = tempfile::tempdir().unwrap();
    // TH1520: SPL 0x2f000 + 898 KiB of U-Boot proper = 1,112,064 bytes.
    let ok = file(d.path(), "ok.bin", &vec![7; 1_112_064]);
    plan(&inputs(&ok), &th1520()).unwrap();
    let big = file(d.path(), "big.bin", &vec![7; 1_112_065]);
    let e = refused(plan(&inputs(&big), &th1520()), "big.bin: 1112065 bytes is larger than the TH1520");
    assert!(e.hint().unwrap().contains("--force"), "{:?}", e.hint());
    plan(&Inputs { force: true, ..inputs(&big) }, &th1520()).unwrap();
    // K1: FSBL.bin up to the SPL's BSS at 0xc0837000.
    let fsbl = k1::build_fsbl(&vec![1; 0x3_7000 - 0x1000 - 0x100 + 32]);
    assert!(fsbl.len() > 0x3_7000);
    let f = file(d.path(), "FSBL.bin", &fsbl);
    refused(plan(&inputs(&f), &k1()), "larger than the K1 boot ROM's first stage can hold");
}

#[test]
fn at_most_two_then_images_on_the_k1() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path(), "FSBL.bin", &k1::build_fsbl(&[1; 300]));
    let itb = file(d.path(), "u-boot.itb", &[0xd0, 0x0d, 0xfe, 0xed, 9, 9]);
    let p = plan(&Inputs { then: vec![itb.clone(), itb.clone()], ..inputs(&f) }, &k1()).unwrap();
    assert_eq!(p.then.len(), 2);
    refused(
        plan(&Inputs { then: vec![itb.clone(), itb.clone(), itb], ..inputs(&f) }, &k1()),
        "3 --then images",
    );
}

#[test]
fn a_good_k1_plan_and_its_usb_ids() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path(), "FSBL.bin", &k1::build_fsbl(&[1; 300]));
    let itb = file(d.path(), "u-boot.itb", &[0xd0, 0x0d, 0xfe, 0xed, 9, 9]);
    let p = plan(&Inputs { then: vec![itb], ..inputs(&f) }, &k1()).unwrap();
    assert_eq!(p.soc, Soc::K1);
    assert_eq!(p.rom_ids, [UsbId::new(0x361c, 0x1001)]);
    assert_eq!(p.next_ids, [UsbId::new(0x361c, 0x1001)]);
    assert_eq!(p.then[0].name(), "u-boot.itb");

    // The FSBL stage's own ids, when the table gives them.
    let t = target("k1", &[("rom", 0x361c, 0x1001), ("fsbl", 0x1111, 0x2222)]);
    assert_eq!(plan(&inputs(&f), &t).unwrap().next_ids, [UsbId::new(0x1111, 0x2222)]);
    // Without an fsbl stage: the ROM's ids (all K1 stages enumerate alike, sheet §3.1).
    let t = target("k1", &[("rom", 0x361c, 0x1001)]);
    assert_eq!(plan(&inputs(&f), &t).unwrap().next_ids, [UsbId::new(0x361c, 0x1001)]);
    // Not awaited: nothing to look for.
    let p = plan(&Inputs { await_next: false, ..inputs(&f) }, &k1()).unwrap();
    assert!(p.next_ids.is_empty() && !p.await_next);
}

#[test]
fn k1_refusals() {
    let d = tempfile::tempdir().unwrap();
    let raw = file(d.path(), "spl.bin", &[7; 8192]);
    let short = file(d.path(), "short.bin", &[7; 100]);
    let f = file(d.path(), "FSBL.bin", &k1::build_fsbl(&[1; 300]));
    let big = file(d.path(), "big.bin", &k1::build_fsbl(&[1; 0x4_0000]));
    let t = k1();

    let e = refused(plan(&inputs(&raw), &t), "spl.bin: no 'AIHD' magic at 0x100 (header0)");
    assert!(
        matches!(&e, PlanError::NotFsbl { reason: FsblError::NoMagic { offset: 0x100, .. }, .. }),
        "{e:?}"
    );
    assert!(e.hint().unwrap().contains("racklet-flash image"), "{:?}", e.hint());
    let e = refused(plan(&inputs(&short), &t), "100 bytes is shorter");
    assert!(matches!(&e, PlanError::NotFsbl { reason: FsblError::TooShort { len: 100 }, .. }), "{e:?}");
    let e = refused(plan(&inputs(&big), &t), "big.bin");
    assert!(matches!(&e, PlanError::Image(ImageError::TooLarge { .. })), "{e:?}");
    let e = refused(plan(&Inputs { image: None, ..Default::default() }, &t), "give the FSBL.bin");
    assert!(e.hint().unwrap().contains("image bpi-f3 u-boot-spl.bin"), "{:?}", e.hint());
    refused(plan(&Inputs { dram: Some(raw.clone()), ..inputs(&f) }, &t), "--dram");
    let e = refused(plan(&Inputs { then: vec![raw.clone()], ..inputs(&f) }, &t), "not a FIT");
    assert!(matches!(&e, PlanError::NotFit { path } if path == &raw));
    let itb = file(d.path(), "u-boot.itb", &[0xd0, 0x0d, 0xfe, 0xed]);
    let e =
        refused(plan(&Inputs { then: vec![itb], await_next: false, ..inputs(&f) }, &t), "--stage-timeout 0");
    assert!(matches!(e, PlanError::ThenWithoutWaiting));
    let missing = d.path().join("missing.bin");
    let e = refused(plan(&inputs(&missing), &t), "missing.bin: cannot read");
    assert!(matches!(e, PlanError::Image(ImageError::Read { .. })));
}

#[test]
fn th1520_refusals() {
    let d = tempfile::tempdir().unwrap();
    let img = file(d.path(), "u-boot-with-spl.bin", &[3; 5000]);
    let p = plan(&inputs(&img), &th1520()).unwrap();
    assert_eq!((p.rom_ids[0], p.next_ids[0]), (UsbId::new(0x2345, 0x7654), UsbId::new(0x1234, 0x8888)));
    assert_eq!(p.first.bytes.len(), 5000);

    let e = refused(plan(&Inputs { then: vec![img.clone()], ..inputs(&img) }, &th1520()), "--then is for K1");
    assert_eq!(e.hint().as_deref(), Some("leave out --then"));
    refused(plan(&Inputs { image: None, ..Default::default() }, &th1520()), "give the u-boot-with-spl.bin");
    let big = file(d.path(), "big.bin", &vec![3; 0x20_0001]);
    let e = refused(plan(&inputs(&big), &th1520()), "big.bin");
    assert!(matches!(e, PlanError::Image(ImageError::TooLarge { .. })), "{e:?}");
    // Vendor U-Boot's ids are needed only when it is awaited.
    let rom_only = target("th1520", &[("rom", 0x2345, 0x7654)]);
    let e = refused(plan(&inputs(&img), &rom_only), "no USB ids for its 'uboot' stage");
    assert!(e.hint().unwrap().contains("stage = \"uboot\""), "{:?}", e.hint());
    assert!(plan(&Inputs { await_next: false, ..inputs(&img) }, &rom_only).is_ok());
    refused(plan(&inputs(&img), &target("th1520", &[])), "'rom' stage");
}

#[test]
fn unknown_soc() {
    let d = tempfile::tempdir().unwrap();
    let img = file(d.path(), "x.bin", &[3; 5000]);
    let t = target("rk3568", &[("rom", 0x2207, 0x350a)]);
    refused(plan(&inputs(&img), &t), "knows the SoCs k1 and th1520, not 'rk3568'");
}

fn payload(path: &Path, bytes: Vec<u8>, load_address: Option<u64>) -> Payload {
    let mem_size = bytes.len() as u64;
    Payload { path: path.into(), bytes, load_address, entry: load_address, mem_size, source: Source::Raw }
}

#[test]
fn the_image_builder() {
    let p = Path::new("u-boot-spl.bin");
    let out = racklet_fastboot::image::image(&payload(p, vec![5; 64], None), &k1()).unwrap();
    assert_eq!(k1::parse_fsbl(&out).unwrap().spl_len, 64 + 0x100);
    racklet_fastboot::image::image(&payload(p, vec![5; 64], Some(0xc080_1000)), &k1()).unwrap();

    let e = racklet_fastboot::image::image(&payload(p, vec![5; 64], Some(0xc080_0000)), &k1()).unwrap_err();
    assert!(
        e.to_string().contains("linked at 0xc0800000, but the K1 ROM runs the FSBL's code at 0xc0801000"),
        "{e}"
    );
    assert_eq!(e.hint().as_deref(), Some("link the SPL at 0xc0801000"));
    let e = racklet_fastboot::image::image(&payload(p, out, None), &k1()).unwrap_err();
    assert!(matches!(e, PlanError::AlreadyFsbl { .. }), "{e}");
    let e = racklet_fastboot::image::image(&payload(p, vec![5; 0x4_0000], None), &k1()).unwrap_err();
    assert!(matches!(e, PlanError::Image(ImageError::TooLarge { .. })), "{e}");
    let e = racklet_fastboot::image::image(&payload(p, vec![5; 64], None), &th1520()).unwrap_err();
    assert!(e.to_string().contains("as it is"), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
}
