//! The fast path (docs/fastload.md): `plan` with `Inputs::fast`
//! and `boot` through a `Connector` against the virtual JH7110 of the sim's
//! registry, whose ROM recognises the loader it started by its bytes and
//! then answers as the virtual fastload loader. Expected header fields come
//! from the sheet's layout (§2.1) and the sim's reference CRC-32; the
//! loader's window from docs/fastload.md §6.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use racklet_image::{Arch, ImageError, Target, Window};
use racklet_link::testing::CollectProgress;
use racklet_link::{Classify, Connector, FailureClass, ProgressEvent};
use racklet_sim::models::{self, Scenario};
use racklet_sim::rom::{Verdict, VirtualRom};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;
use racklet_starfive::fast::FastInputs;
use racklet_starfive::{Inputs, Options, Plan, PlanError, StarfiveError, boot, plan};

const WINDOW: u64 = 0x0800_8000;
const WINDOW_END: u64 = 0x0804_0000;

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
        max_stage: 1 << 22,
    }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A minimal RISC-V ELF64 with one PT_LOAD segment at `at` (from the ELF
/// specification).
fn elf(at: u64, entry: u64, body: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
    o.extend_from_slice(&[0; 8]);
    o.extend_from_slice(&2u16.to_le_bytes());
    o.extend_from_slice(&243u16.to_le_bytes());
    o.extend_from_slice(&1u32.to_le_bytes());
    o.extend_from_slice(&entry.to_le_bytes());
    o.extend_from_slice(&64u64.to_le_bytes());
    o.extend_from_slice(&0u64.to_le_bytes());
    o.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        o.extend_from_slice(&v.to_le_bytes());
    }
    o.extend_from_slice(&1u32.to_le_bytes());
    o.extend_from_slice(&5u32.to_le_bytes());
    o.extend_from_slice(&120u64.to_le_bytes());
    o.extend_from_slice(&at.to_le_bytes());
    o.extend_from_slice(&at.to_le_bytes());
    o.extend_from_slice(&(body.len() as u64).to_le_bytes());
    o.extend_from_slice(&(body.len() as u64).to_le_bytes());
    o.extend_from_slice(&8u64.to_le_bytes());
    o.extend_from_slice(body);
    o
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().unwrap())
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn plan(&self, name: &str, bytes: &[u8], fast: FastInputs) -> Result<Plan, PlanError> {
        let inputs = Inputs { payload: Some(self.file(name, bytes)), fast: Some(fast), ..Default::default() };
        plan(&inputs, &vf2())
    }
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

#[test]
fn the_rom_gets_the_built_in_loader_headed_as_any_spl_and_the_payload_waits_for_it() {
    let f = Files::new();
    let body = pattern(20_000, 3);
    let plan = f.plan("hi.elf", &elf(WINDOW, WINDOW + 0x40, &body), FastInputs::default()).unwrap();
    // What the ROM receives: spl_tool's header over the loader (sheet §2.1).
    let img = &plan.image;
    assert_eq!(u32_at(img, 0x28C), 0x400);
    let len = u32_at(img, 0x288) as usize;
    assert_eq!(img.len(), 0x400 + len);
    assert_eq!(u32_at(img, 0x290), racklet_sim::crc::crc32_iso_hdlc(&img[0x400..]));
    assert!(len <= 4096, "the loader is at most 4 KiB (docs/fastload.md): {len}");
    // ... and it is the loader the virtual board knows by its bytes.
    assert!(racklet_sim::starfive::is_fastload_loader(&img[0x400..]));
    let fp = plan.fast.as_ref().expect("a fast plan");
    assert_eq!(fp.bytes, body);
    assert_eq!((fp.load, fp.entry), (WINDOW, WINDOW + 0x40));
    // The default rate: JH7110 UART0 at 24 MHz, divisor 1 (docs/fastload.md §3).
    assert_eq!(fp.baud, 1_500_000);
}

#[test]
fn a_raw_payload_goes_to_the_window_base_and_the_rate_is_the_users() {
    let f = Files::new();
    let fast = FastInputs { baud: Some(500_000), ..Default::default() };
    let plan = f.plan("raw.bin", &pattern(5000, 1), fast).unwrap();
    let fp = plan.fast.unwrap();
    assert_eq!((fp.load, fp.entry, fp.baud), (WINDOW, WINDOW, 500_000));
}

#[test]
fn what_does_not_fit_the_loaders_window_is_bad_input_naming_the_file() {
    let f = Files::new();
    let big = pattern((WINDOW_END - WINDOW + 1) as usize, 2);
    let e = f.plan("big.bin", &big, FastInputs::default()).unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(matches!(e, PlanError::Input(ImageError::TooLarge { .. })), "{e:?}");
    assert!(e.to_string().contains("big.bin"), "{e}");
    // The window's last byte is still in.
    assert!(f.plan("edge.bin", &big[1..], FastInputs::default()).is_ok());
    // Over the loader itself, at the SRAM base.
    let e = f.plan("low.elf", &elf(0x0800_0000, 0x0800_0000, &pattern(4000, 4)), FastInputs::default());
    let e = e.unwrap_err();
    assert!(matches!(e, PlanError::Input(ImageError::OutsideWindow { .. })), "{e:?}");
    assert!(e.to_string().contains("low.elf") && e.to_string().contains("0x8008000"), "{e}");
    // Past the window's end.
    let e =
        f.plan("high.elf", &elf(WINDOW_END - 100, WINDOW_END - 100, &pattern(200, 4)), FastInputs::default());
    assert_eq!(e.unwrap_err().class(), FailureClass::BadInput);
}

#[test]
fn a_next_stage_or_a_rate_that_is_not_a_rate_is_refused() {
    let f = Files::new();
    let inputs = Inputs {
        payload: Some(f.file("raw.bin", &pattern(5000, 1))),
        next_stage: Some(f.file("u-boot.itb", &pattern(300, 1))),
        fast: Some(FastInputs::default()),
    };
    let e = plan(&inputs, &vf2()).unwrap_err();
    assert!(matches!(e, PlanError::FastNextStage), "{e:?}");
    assert!(e.to_string().contains("--then-ymodem") && e.hint().is_some(), "{e}");
    let e =
        f.plan("raw.bin", &pattern(50, 1), FastInputs { baud: Some(0), ..Default::default() }).unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput, "{e}");
}

#[test]
fn another_loader_file_is_headed_and_sent_instead() {
    let f = Files::new();
    let mine = pattern(3000, 9);
    let fast = FastInputs { loader: Some(f.file("my-loader.bin", &mine)), ..Default::default() };
    let plan = f.plan("raw.bin", &pattern(100, 1), fast).unwrap();
    assert_eq!(&plan.image[0x400..], &mine[..]);
}

fn board(fault: Option<&str>) -> (Box<dyn VirtualRom>, SimSerialBus) {
    let serial = SimSerialBus::new();
    let scenario = Scenario { fault: fault.map(str::to_string), ..Scenario::at("1-1") };
    (models::attach("jh7110", &scenario, &SimUsbBus::new(), &serial).unwrap(), serial)
}

fn run(
    plan: &Plan,
    serial: &SimSerialBus,
) -> (Result<racklet_starfive::Report, StarfiveError>, CollectProgress) {
    let mut progress = CollectProgress::default();
    let mut c = Connector::new(Arc::new(SimUsbBus::new()), Arc::new(serial.clone()), &mut progress);
    c.stage_timeout = Duration::from_secs(3);
    let opts = Options { paced: true, ..Default::default() };
    let r = boot(&mut c, plan, &vf2(), &opts);
    drop(c);
    (r, progress)
}

#[test]
fn boot_sends_the_loader_then_the_payload_on_the_same_port() {
    let f = Files::new();
    let body = pattern(20_000, 3);
    let plan = f.plan("hi.elf", &elf(WINDOW, WINDOW + 0x40, &body), FastInputs::default()).unwrap();
    let (mut rom, serial) = board(None);
    let (r, progress) = run(&plan, &serial);
    let r = r.unwrap();
    let stages: Vec<&str> = progress
        .events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::StageStart { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(stages, ["xmodem-1k", "fastload"]);
    let fr = r.fast.as_ref().expect("a fast report");
    assert_eq!((fr.bytes, fr.load, fr.entry, fr.baud), (20_000, WINDOW, WINDOW + 0x40, 1_500_000));
    assert_eq!(r.rom.bytes as usize, plan.image.len());
    match rom.verdict() {
        Verdict::Started { summary: what } => {
            assert!(what.contains("the fastload loader took 20000 bytes at 0x08008000"), "{what}");
            assert!(what.contains("at 1500000 baud") && what.contains("jumped to 0x08008040"), "{what}");
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn a_loader_that_finds_the_image_damaged_is_rejected() {
    let f = Files::new();
    let plan = f.plan("raw.bin", &pattern(9000, 3), FastInputs::default()).unwrap();
    let (mut rom, serial) = board(Some("fast-corrupt-memory"));
    let (r, _) = run(&plan, &serial);
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::Rejected, "{e}");
    assert!(!matches!(rom.verdict(), Verdict::Started { .. }));
}
