//! `plan`, the storage `image` and `describe`: every check on the user's
//! files, each failure a typed `PlanError` naming the file, with its fix
//! apart. Expected header bytes come from the sheet's layout (§2.1) and the
//! sim's reference CRC-32, not from the code under test.

use std::path::{Path, PathBuf};

use racklet_image::{Arch, ImageError, Payload, Segment, Source, Target, Window};
use racklet_link::{Classify, FailureClass};
use racklet_sim::crc::crc32_iso_hdlc;
use racklet_starfive::storage::{self, ImageOptions};
use racklet_starfive::{HeaderError, ImageKind, Inputs, PlanError, describe, plan};

/// The largest file a test reads.
const MAX_FILE: u64 = 1 << 20;

fn vf2() -> Target {
    Target {
        board: "visionfive2".into(),
        soc: "jh7110".into(),
        arch: Some(Arch::Riscv64),
        load_address: 0x0800_0000,
        entry: Some(0x0800_0000),
        window: Window { board: "visionfive2".into(), base: 0x0800_0000, size: 0x4_0000, max_payload: None },
        usb: Vec::new(),
        baud: Some(115_200),
        max_stage: MAX_FILE,
    }
}

fn headed(p: &[u8], version: u32, bofs: u32) -> Vec<u8> {
    let mut h = vec![0u8; 0x400];
    let mut put = |o: usize, v: u32| h[o..o + 4].copy_from_slice(&v.to_le_bytes());
    put(0x000, 0x240);
    put(0x004, bofs);
    put(0x284, version);
    put(0x288, p.len() as u32);
    put(0x28C, 0x400);
    put(0x290, crc32_iso_hdlc(p));
    h.extend_from_slice(p);
    h
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn payload_of(path: &str, bytes: Vec<u8>, elf_at: Option<u64>) -> Payload {
    Payload {
        path: path.into(),
        load_address: elf_at,
        entry: elf_at,
        source: match elf_at {
            Some(a) => Source::Elf {
                arch: Arch::Riscv64,
                segments: vec![Segment {
                    address: a,
                    file_size: bytes.len() as u64,
                    mem_size: bytes.len() as u64,
                }],
            },
            None => Source::Raw,
        },
        mem_size: bytes.len() as u64,
        bytes,
    }
}

fn plan_of(bytes: &[u8]) -> Result<racklet_starfive::Plan, PlanError> {
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "p.bin", bytes);
    plan(&Inputs { payload: Some(p), next_stage: None, fast: None }, &vf2())
}

#[test]
fn no_payload_names_the_board_and_the_command() {
    let e = plan(&Inputs::default(), &vf2()).unwrap_err();
    assert!(matches!(&e, PlanError::NoPayload { board } if board == "visionfive2"), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.hint().unwrap().contains("racklet-flash maskrom visionfive2 payload.bin"), "{e:?}");
}

#[test]
fn a_raw_payload_is_wrapped_in_spl_tools_default_header() {
    let p: Vec<u8> = (0u8..16).collect();
    let plan = plan_of(&p).unwrap();
    assert_eq!(plan.image, headed(&p, 0x0101_0101, 0x20_0000));
    // The sheet's worked example: CRC bytes 88 e2 ce ce at 0x290.
    assert_eq!(&plan.image[0x290..0x294], &[0x88, 0xe2, 0xce, 0xce]);
    assert_eq!(plan.kind, ImageKind::Wrapped { elf: false, payload_len: 16 });
    assert!(plan.notes.is_empty() && plan.next.is_none());
}

#[test]
fn sizes_the_sram_takes_but_other_tools_refuse_are_notes() {
    let plan = plan_of(&vec![0x13; 0x4_0000]).unwrap();
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    assert!(plan.notes[0].contains("180048"), "{:?}", plan.notes);
    // One byte more does not fit the 256 KiB SRAM.
    let e = plan_of(&vec![0x13; 0x4_0001]).unwrap_err();
    assert!(matches!(e, PlanError::Input(ImageError::TooLarge { limit: 0x4_0000, .. })), "{e}");
    assert!(e.to_string().contains("262144") && e.to_string().contains("p.bin"), "{e}");
}

#[test]
fn a_headed_input_is_checked_and_taken_as_it_is() {
    let p: Vec<u8> = (0..2000u32).map(|i| (i * 3) as u8).collect();
    let good = headed(&p, 0x0101_0001, 0x20_0000);
    let plan = plan_of(&good).unwrap();
    assert_eq!(plan.image, good);
    assert_eq!(
        plan.kind,
        ImageKind::Headed { version: 0x0101_0001, payload_len: 2000, crc32: crc32_iso_hdlc(&p) }
    );

    let mut bad = good.clone();
    bad[0x500] ^= 1;
    let e = plan_of(&bad).unwrap_err();
    assert!(
        matches!(&e, PlanError::Header { error: HeaderError::Crc { .. }, path } if path.ends_with("p.bin")),
        "{e}"
    );
    assert!(e.to_string().contains("CRC-32"), "{e}");
    assert!(e.hint().is_some());

    // spl_tool -i's deliberate CRC is named in the fix.
    let mut fixed = good.clone();
    fixed[0x290..0x294].copy_from_slice(&0x5A5A_5A5Au32.to_le_bytes());
    assert!(plan_of(&fixed).unwrap_err().hint().unwrap().contains("spl_tool -i"));

    let e = plan_of(&good[..0x400 + 100]).unwrap_err();
    assert!(
        matches!(e, PlanError::Header { error: HeaderError::Truncated { claimed: 2000, have: 100 }, .. }),
        "{e}"
    );
}

#[test]
fn files_above_the_limit_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "huge.bin", &vec![0; 2000]);
    let t = Target { max_stage: 1000, ..vf2() };
    let e = plan(&Inputs { payload: Some(p), next_stage: None, fast: None }, &t).unwrap_err();
    assert!(matches!(e, PlanError::Input(ImageError::InputTooLarge { limit: 1000, .. })), "{e}");
    assert!(e.to_string().contains("a stage of visionfive2 can be"), "{e}");
}

#[test]
fn the_next_stage_is_read_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = Inputs {
        payload: Some(file(dir.path(), "spl.bin", &[1; 100])),
        next_stage: Some(file(dir.path(), "u-boot.itb", &[2; 300])),
        fast: None,
    };
    let n = plan(&inputs, &vf2()).unwrap().next.unwrap();
    assert_eq!((n.name.as_str(), n.data.len()), ("u-boot.itb", 300));
    // A missing next stage fails before anything is sent.
    let inputs = Inputs { next_stage: Some(dir.path().join("missing.itb")), ..inputs };
    let e = plan(&inputs, &vf2()).unwrap_err();
    assert!(matches!(e, PlanError::Input(ImageError::Read { .. })), "{e}");
}

#[test]
fn an_elf_must_be_linked_for_the_load_address() {
    let code = vec![0x13u8; 64];
    let t = vf2();
    let off = payload_of("off.elf", code.clone(), Some(0x0800_1000));
    let e = racklet_starfive::plan::check_load_address(&t, &off).unwrap_err();
    assert!(e.to_string().contains("loads at 0x8001000") && e.to_string().contains("0x8000000"), "{e}");
    assert_eq!(e.hint().unwrap(), "link the payload for 0x8000000");
    assert!(
        racklet_starfive::plan::check_load_address(&t, &payload_of("ok.elf", code, Some(0x0800_0000)))
            .is_ok()
    );
}

#[test]
fn the_storage_image_takes_the_users_fields_and_refuses_what_cannot_boot() {
    let p: Vec<u8> = (0u8..16).collect();
    let t = vf2();
    let opts = ImageOptions { version: Some(0x0101_0001), backup_offset: Some(0x10_0000) };
    let s = storage::image(&payload_of("p.bin", p.clone(), None), &t, &opts).unwrap();
    assert_eq!(s.bytes, headed(&p, 0x0101_0001, 0x10_0000));
    // 0 means the default, as in spl_tool.
    let zero = ImageOptions { version: Some(0), backup_offset: Some(0) };
    assert_eq!(
        storage::image(&payload_of("p.bin", p.clone(), None), &t, &zero).unwrap().bytes,
        headed(&p, 0x0101_0101, 0x20_0000)
    );

    let wide = ImageOptions { version: Some(0x1_0000_0000), backup_offset: None };
    let e = storage::image(&payload_of("p.bin", p.clone(), None), &t, &wide).unwrap_err();
    assert!(matches!(e, PlanError::Field(HeaderError::FieldTooWide { .. })), "{e}");

    let e = storage::image(
        &payload_of("p.img", headed(&p, 0x0101_0101, 0x20_0000), None),
        &t,
        &ImageOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::AlreadyHeaded { .. }), "{e}");

    let e =
        storage::image(&payload_of("off.elf", p.clone(), Some(0x0800_1000)), &t, &ImageOptions::default())
            .unwrap_err();
    assert!(matches!(e, PlanError::LoadAddress { at: 0x0800_1000, load: 0x0800_0000, .. }), "{e}");

    let big = storage::image(&payload_of("big.bin", vec![0; 0x4_0001], None), &t, &ImageOptions::default());
    assert!(matches!(big, Err(PlanError::Input(ImageError::TooLarge { .. }))));
}

#[test]
fn describe_decodes_the_header_and_checks_what_the_rom_checks() {
    let p: Vec<u8> = (0..5000u32).map(|i| (i * 5) as u8).collect();
    let mut img = headed(&p, 0x0101_0001, 0x20_0000);
    let d = describe(&img).unwrap();
    assert_eq!(d.protocol, Some("starfive"));
    assert_eq!(d.socs, vec!["jh7110".to_string()]);
    let field = |d: &racklet_image::Description, k: &str| {
        d.fields.iter().find(|f| f.name == k).map(|f| f.value.clone())
    };
    assert_eq!(field(&d, "version").unwrap(), "0x01010001 (StarFive recovery images)");
    assert_eq!(field(&d, "payload length").unwrap(), "5000 bytes");
    assert_eq!(field(&d, "CRC-32 in header").unwrap(), format!("0x{:08x}", crc32_iso_hdlc(&p)));
    assert!(d.intact());
    // The header does not say where it loads: the board's load address applies.
    assert_eq!(d.payload.unwrap().load_address, None);
    assert_eq!(d.payload.unwrap().len, 5000);

    img[0x400 + 100] ^= 0xFF;
    let d = describe(&img).unwrap();
    assert!(!d.intact());
    assert!(field(&d, "CRC-32 of the payload").is_some());
    let d = describe(&img[..0x400 + 10]).unwrap();
    assert!(d.checks.iter().all(|c| !c.ok), "{:?}", d.checks);

    assert!(describe(&p).is_none());
    assert!(describe(&[0u8; 0x3FF]).is_none());
}

/// `recovery::plan`: the files of a flash write, each checked before the
/// port. The recovery image and the SPL must be headed (and their CRC-32
/// hold), each file fits its room in the flash (SPL 0xF0000 at 0, U-Boot
/// 0xF00000 at 0x100000: U-Boot's jh7110_common.rst layout, sheet §3.3).
#[test]
fn a_flash_write_plan_checks_every_file_before_the_port() {
    use racklet_starfive::recovery::{Part, RecoveryInputs, RecoveryPlanError, plan as rplan};
    let d = tempfile::tempdir().unwrap();
    let rec = file(d.path(), "rec.bin", &headed(&[7u8; 5000], 0x0101_0001, 0x20_0000));
    let spl = file(d.path(), "spl.out", &headed(&[9u8; 3000], 0x0101_0101, 0x20_0000));
    let itb = file(d.path(), "u-boot.itb", &[5u8; 7000]);
    let inputs = |r: Option<&PathBuf>, s: Option<&PathBuf>, u: Option<&PathBuf>| RecoveryInputs {
        recovery: r.cloned(),
        spl: s.cloned(),
        uboot: u.cloned(),
    };
    let p = rplan(&inputs(Some(&rec), Some(&spl), Some(&itb)), &vf2()).unwrap();
    assert_eq!(p.image.len(), 0x400 + 5000);
    let parts: Vec<(Part, usize)> = p.files.iter().map(|f| (f.part, f.data.len())).collect();
    assert_eq!(parts, [(Part::Spl, 0x400 + 3000), (Part::Uboot, 7000)], "the SPL first, whole");
    let bad = |r, s, u| {
        let e = rplan(&inputs(r, s, u), &vf2()).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput, "{e}");
        e
    };
    assert!(matches!(bad(None, Some(&spl), None), RecoveryPlanError::NoRecovery { .. }));
    assert!(matches!(bad(Some(&rec), None, None), RecoveryPlanError::NothingToWrite));
    let raw = file(d.path(), "raw.bin", &[1u8; 3000]);
    assert!(matches!(bad(Some(&raw), Some(&spl), None), RecoveryPlanError::RecoveryNotHeaded { .. }));
    let e = bad(Some(&rec), Some(&raw), None);
    assert!(matches!(e, RecoveryPlanError::SplNotHeaded { .. }), "{e}");
    assert!(e.hint().unwrap().contains("racklet-flash image visionfive2"), "{e}");
    let mut broken = headed(&[9u8; 3000], 0x0101_0101, 0x20_0000);
    broken[0x400 + 10] ^= 1;
    let broken = file(d.path(), "broken.out", &broken);
    let e = bad(Some(&rec), Some(&broken), None);
    assert!(matches!(e, RecoveryPlanError::Header { .. }) && e.to_string().contains("broken.out"), "{e}");
    let empty = file(d.path(), "empty.itb", &[]);
    let e = bad(Some(&rec), None, Some(&empty));
    assert!(e.to_string().contains("empty.itb"), "an empty U-Boot is refused by name: {e}");
    // One byte more than the SPL's room at 0.
    let mut big = headed(&[9u8; 3000], 0x0101_0101, 0x20_0000);
    big.resize(0xF_0001, 0);
    let big = file(d.path(), "big.out", &big);
    let e = bad(Some(&rec), Some(&big), None);
    assert!(e.to_string().contains("983040"), "the room is named: {e}");
}
