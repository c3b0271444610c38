//! `plan` and `image` against files: every input check happens before any
//! device is touched, each as its own typed error of class bad input.

use std::path::{Path, PathBuf};

use racklet_canaan::{Inputs, PlanError};
use racklet_image::{Target, Window};
use racklet_link::{Classify, FailureClass};

/// `canmv-k230` as the board table describes it.
fn target() -> Target {
    Target {
        board: "canmv-k230".into(),
        soc: "k230".into(),
        arch: racklet_image::Arch::from_name("riscv64"),
        load_address: 0x8036_0000,
        entry: Some(0x8036_0000),
        window: Window { board: "canmv-k230".into(), base: 0x8020_0000, size: 0x20_0000, max_payload: None },
        usb: vec![("rom".into(), 0x29f1, 0x0230)],
        baud: None,
        max_stage: 256 << 20,
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn plan(inputs: Inputs) -> Result<racklet_canaan::Plan, PlanError> {
    racklet_canaan::plan(&inputs, &target())
}

fn bad(inputs: Inputs) -> PlanError {
    let e = plan(inputs).unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput, "{e}");
    e
}

/// The SRAM ends at 0x80400000: a payload at 0x80360000 may hold exactly
/// 0x80400000 - 0x80360000 bytes; one more does not fit.
#[test]
fn the_payload_must_fit_the_sram() {
    let d = tempfile::tempdir().unwrap();
    let fit = 0x8040_0000 - 0x8036_0000;
    let p = plan(Inputs { payload: Some(write(d.path(), "fit.bin", &vec![1; fit])), ..Inputs::default() })
        .unwrap();
    assert_eq!(p.stages.len(), 1);
    assert_eq!((p.stages[0].entry, p.stages[0].bytes()), (0x8036_0000, fit as u64));
    let e = bad(Inputs { payload: Some(write(d.path(), "big.bin", &vec![1; fit + 1])), ..Inputs::default() });
    assert!(matches!(e, PlanError::Image(_)) && e.to_string().contains("do not fit"), "{e}");
}

#[test]
fn an_elf_payload_goes_where_it_is_linked() {
    let d = tempfile::tempdir().unwrap();
    let elf = racklet_tests::elf64(243, 0x8030_0010, &[(0x8030_0000, &[7; 64], 64)]);
    let p = plan(Inputs { payload: Some(write(d.path(), "p.elf", &elf)), ..Inputs::default() }).unwrap();
    let s = &p.stages[0];
    assert_eq!((s.loads[0].address, s.entry), (0x8030_0000, 0x8030_0010));
    // Built for another architecture: refused.
    let arm = racklet_tests::elf64(183, 0x8036_0000, &[(0x8036_0000, &[7; 16], 16)]);
    let e = bad(Inputs { payload: Some(write(d.path(), "arm.elf", &arm)), ..Inputs::default() });
    assert!(e.to_string().contains("aarch64"), "{e}");
}

#[test]
fn loads_are_cut_into_stages_before_the_first_dram_load() {
    let d = tempfile::tempdir().unwrap();
    let bt0 = write(d.path(), "bt0.bin", &[1; 100]);
    let main = write(d.path(), "main.bin", &[2; 1000]);
    let p = plan(Inputs {
        loads: vec![(0x8036_0000, bt0), (0x0800_0000, main)],
        run: Some(0x0800_0000),
        ..Inputs::default()
    })
    .unwrap();
    assert_eq!(p.stages.len(), 2);
    assert_eq!((p.stages[0].entry, p.stages[0].returns_to_rom), (0x8036_0000, true));
    assert_eq!((p.stages[1].entry, p.stages[1].returns_to_rom), (0x0800_0000, false));
}

#[test]
fn bad_loads_are_named() {
    let d = tempfile::tempdir().unwrap();
    let m = write(d.path(), "m.bin", &[0; 100]);
    // DRAM before any DRAM-init stage.
    let e = bad(Inputs { loads: vec![(0x0800_0000, m.clone())], ..Inputs::default() });
    assert!(matches!(e, PlanError::DramFirst { address: 0x0800_0000, .. }), "{e}");
    assert!(e.to_string().contains("DRAM-init stage") && e.hint().unwrap().contains("--load 0x80360000="));
    // Crossing the end of SRAM.
    let e = bad(Inputs { loads: vec![(0x803f_ffc0, m.clone())], ..Inputs::default() });
    assert!(matches!(e, PlanError::OutsideMemory { .. }) && e.to_string().contains("m.bin"), "{e}");
    // Overlapping loads.
    let e =
        bad(Inputs { loads: vec![(0x8036_0000, m.clone()), (0x8036_0010, m.clone())], ..Inputs::default() });
    assert!(matches!(e, PlanError::Overlap { .. }), "{e}");
    // Wider than the ROM's 32-bit addresses.
    let e = bad(Inputs { loads: vec![(0x1_8036_0000, m.clone())], ..Inputs::default() });
    assert!(matches!(e, PlanError::AddressTooWide { address: 0x1_8036_0000, .. }), "{e}");
    let e = bad(Inputs { loads: vec![(0x8036_0000, m.clone())], run: Some(1 << 32), ..Inputs::default() });
    assert!(matches!(e, PlanError::RunTooWide { .. }), "{e}");
    // An ELF given at another address than its own.
    let elf =
        write(d.path(), "e.elf", &racklet_tests::elf64(243, 0x8030_0000, &[(0x8030_0000, &[7; 16], 16)]));
    let e = bad(Inputs { loads: vec![(0x8036_0000, elf.clone())], ..Inputs::default() });
    assert!(matches!(e, PlanError::ElfAddress { elf: 0x8030_0000, given: 0x8036_0000, .. }), "{e}");
    assert_eq!(e.hint().unwrap(), format!("give --load 0x80300000={}", elf.display()));
}

#[test]
fn nothing_to_load_and_a_rockchip_option_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = bad(Inputs::default());
    assert!(matches!(e, PlanError::NothingToLoad { .. }), "{e}");
    assert!(e.hint().unwrap().contains("racklet-flash maskrom canmv-k230 payload.bin"));
    let p = write(d.path(), "p.bin", &[0; 10]);
    let e = bad(Inputs { payload: Some(p.clone()), dram: Some(p), ..Inputs::default() });
    assert!(matches!(e, PlanError::DramBlob { .. }) && e.hint().unwrap().contains("--load"), "{e}");
}

#[test]
fn the_storage_image_needs_a_payload_that_runs_from_sram() {
    let d = tempfile::tempdir().unwrap();
    let load = |name: &str, bytes: &[u8]| target().load_dram_stage(&write(d.path(), name, bytes)).unwrap();
    let img = racklet_canaan::image::image(&load("p.bin", &[0, 1, 2, 3]), &target()).unwrap();
    assert_eq!(&img[..4], b"K230");
    assert_eq!(img.len(), 0x214 + 4);
    let e = racklet_canaan::image::image(&load("big.bin", &vec![0; 0x20_0001]), &target()).unwrap_err();
    assert!(matches!(e, PlanError::ImageTooLarge { len: 0x20_0001, .. }), "{e}");
    let dram = racklet_tests::elf64(243, 0x0800_0000, &[(0x0800_0000, &[7; 16], 16)]);
    let e = racklet_canaan::image::image(&load("dram.elf", &dram), &target()).unwrap_err();
    assert!(matches!(e, PlanError::ImageOutsideSram { start: 0x0800_0000, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.hint().unwrap().contains("0x80300000"));
}
