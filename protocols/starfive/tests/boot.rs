//! The whole flow in-process: `plan` and `boot` through a `Connector` on
//! racklet-sim's serial bus, against the virtual JH7110 from the sim's
//! registry (its own chip model, its own verdict), with every fault, the
//! SPL's next stage, the transcript and the failures of finding the UART.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_image::{Arch, Target, Window};
use racklet_link::testing::{CancelAfter, CollectProgress};
use racklet_link::transcript::{DataMode, RecordOptions, TranscriptWriter};
use racklet_link::{Classify, Connector, FailureClass, LinkError, ProgressSink, SerialBus};
use racklet_sim::models::{self, Scenario};
use racklet_sim::rom::{Verdict, VirtualRom};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;
use racklet_starfive::{BlockSize, ImageKind, Inputs, Options, Plan, Report, StarfiveError, boot, plan};

/// The largest file a test reads.
const MAX_FILE: u64 = 1 << 20;

/// The VisionFive 2 as the board table describes it.
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

/// A stand-in for U-Boot SPL with YMODEM support: a payload carrying the
/// banner of u-boot common/spl/spl.c (`"\nU-Boot SPL " PLAIN_VERSION ...`)
/// and the report of common/spl/spl_ymodem.c (`"Loaded %lu bytes\n"`).
fn spl(len: usize) -> Vec<u8> {
    let mut p = pattern(len, 21);
    p[100..132].copy_from_slice(b"\nU-Boot SPL 2025.10 (Oct 06 2025");
    p[len - 50..len - 32].copy_from_slice(b"Loaded %lu bytes\n\0");
    p
}

/// CRC-32 of spl_tool's header at 0x290, from the sim's reference.
fn headed(p: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 0x400];
    let mut put = |o: usize, v: u32| h[o..o + 4].copy_from_slice(&v.to_le_bytes());
    put(0x000, 0x240);
    put(0x004, 0x20_0000);
    put(0x284, 0x0101_0101);
    put(0x288, p.len() as u32);
    put(0x28C, 0x400);
    put(0x290, racklet_sim::crc::crc32_iso_hdlc(p));
    h.extend_from_slice(p);
    h
}

/// A virtual board on a simulated serial bus, and the files of one run.
struct Board {
    rom: Box<dyn VirtualRom>,
    serial: SimSerialBus,
    dir: tempfile::TempDir,
}

fn board(fault: Option<&str>) -> Board {
    let serial = SimSerialBus::new();
    let scenario = Scenario { fault: fault.map(str::to_string), ..Scenario::at("1-1") };
    let rom = models::attach("jh7110", &scenario, &SimUsbBus::new(), &serial).unwrap();
    Board { rom, serial, dir: tempfile::tempdir().unwrap() }
}

impl Board {
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn plan(&self, payload: &[u8], next: Option<&[u8]>) -> Plan {
        let inputs = Inputs {
            payload: Some(self.file("payload.bin", payload)),
            next_stage: next.map(|d| self.file("u-boot.itb", d)),
            fast: None,
        };
        plan(&inputs, &vf2()).unwrap()
    }

    fn connector<'a>(&self, progress: &'a mut dyn ProgressSink) -> Connector<'a> {
        let mut c = Connector::new(Arc::new(SimUsbBus::new()), Arc::new(self.serial.clone()), progress);
        c.stage_timeout = Duration::from_secs(3);
        c
    }

    fn boot(&self, plan: &Plan, opts: &Options) -> (Result<Report, StarfiveError>, CollectProgress) {
        let mut progress = CollectProgress::default();
        let r = boot(&mut self.connector(&mut progress), plan, &vf2(), opts);
        (r, progress)
    }
}

fn fast() -> Options {
    let mut o = Options::default();
    o.boot.xmodem.answer_timeout = Duration::from_millis(500);
    o.boot.verdict_window = Duration::from_millis(300);
    o.boot.poll_timeout = Duration::from_secs(3);
    o
}

fn fact<'a>(facts: &'a [(String, String)], key: &str) -> &'a str {
    facts
        .iter()
        .find(|f| f.0 == key)
        .map(|f| f.1.as_str())
        .unwrap_or_else(|| panic!("no fact {key}: {facts:?}"))
}

#[test]
fn a_raw_payload_is_headed_sent_in_1k_blocks_and_started() {
    let mut b = board(None);
    let p = pattern(9000, 11);
    let plan = b.plan(&p, None);
    assert_eq!(plan.image, headed(&p), "the image is spl_tool's header and the payload");
    let (r, progress) = b.boot(&plan, &fast());
    let r = r.unwrap();
    assert_eq!(progress.bytes(), 10_024, "progress covers every byte of the image");
    assert_eq!((r.rom.name, r.rom.block, r.rom.blocks), ("xmodem-1k", 1024, 10));
    assert!(r.pty, "the virtual UART is a pseudo-terminal");
    let facts = r.facts();
    assert_eq!(fact(&facts, "image"), "10024 bytes (raw binary, 9000 bytes, wrapped in the spl_tool header)");
    // A bare pty has no line rate: throughput alone. A simulated board's
    // UART paced at 115200 has one (`Options::paced`, set by --simulate).
    let t = fact(&facts, "throughput");
    assert!(t.ends_with(" B/s (a pseudo-terminal has no line rate)") && !t.contains('%'), "{t}");
    let paced = Report { paced: true, ..r.clone() }.facts();
    let t = fact(&paced, "throughput");
    assert!(t.contains("% of the 11520 B/s line rate of 115200 8N1") && !t.contains("pseudo"), "{t}");
    assert_eq!(fact(&facts, "ROM"), "no CRC error; the payload runs at 0x8000000");
    let v = b.rom.verdict();
    assert!(v.started(), "{v:?}");
    assert!(v.text().starts_with("loaded 9000 bytes at 0x08000000"), "{v:?}");
    assert!(v.text().contains("in 10 1K + 0 128-byte frames"), "{v:?}");
}

#[test]
fn xmodem_128_sends_128_byte_frames_only() {
    let mut b = board(None);
    let plan = b.plan(&pattern(9000, 11), None);
    let mut o = fast();
    o.boot.xmodem.block = BlockSize::B128;
    let r = b.boot(&plan, &o).0.unwrap();
    // 10024 bytes are 78.3 blocks of 128: 79 frames.
    assert_eq!((r.rom.name, r.rom.blocks), ("xmodem", 79));
    assert!(fact(&r.facts(), "xmodem").starts_with("79 blocks of 128 bytes"));
    assert!(b.rom.verdict().text().contains("in 0 1K + 79 128-byte frames"));
}

#[test]
fn a_headed_input_is_sent_as_it_is_without_its_trailing_bytes() {
    let mut b = board(None);
    let p = pattern(2000, 4);
    let mut file = headed(&p);
    file.extend_from_slice(&[0xEE; 300]);
    let plan = b.plan(&file, None);
    assert_eq!(plan.image, headed(&p));
    assert!(matches!(plan.kind, ImageKind::Headed { payload_len: 2000, .. }), "{:?}", plan.kind);
    let r = b.boot(&plan, &fast()).0.unwrap();
    assert!(fact(&r.facts(), "image").starts_with("3024 bytes (headed image (version 0x01010101"));
    assert!(b.rom.verdict().text().starts_with("loaded 2000 bytes"));
}

#[test]
fn faults_a_tolerant_sender_recovers_from() {
    for f in ["nak", "nak-storm", "drop-ack", "corrupt-frame"] {
        let mut b = board(Some(f));
        let plan = b.plan(&pattern(9000, 11), None);
        let r = b.boot(&plan, &fast()).0;
        assert!(r.is_ok(), "fault {f}: {:?}", r.err());
        let v = b.rom.verdict();
        assert!(v.started() && v.text().starts_with("loaded 9000 bytes"), "fault {f}: {v:?}");
    }
}

#[test]
fn faults_that_end_the_run_each_with_its_class() {
    for (f, class) in [
        ("corrupt-image", FailureClass::Rejected),
        ("silent", FailureClass::Timeout),
        ("hangup", FailureClass::Disconnected),
    ] {
        let mut b = board(Some(f));
        let plan = b.plan(&pattern(9000, 11), None);
        let e = b.boot(&plan, &fast()).0.unwrap_err();
        assert_eq!(e.class(), class, "fault {f}: {e}");
        match f {
            "corrupt-image" => assert!(
                matches!(&e, StarfiveError::RomCrcError { text } if text == "CRC Error, Try again"),
                "{e}"
            ),
            "silent" => assert!(matches!(e, StarfiveError::NoAnswer { .. }), "{e}"),
            _ => assert!(matches!(e, StarfiveError::Link(LinkError::Disconnected { .. })), "{e}"),
        }
        let v = b.rom.verdict();
        assert!(!v.started(), "fault {f}: {v:?}");
    }
}

#[test]
fn a_rom_that_never_polls_is_a_timeout_naming_what_it_printed() {
    let b = board(Some("no-poll"));
    let plan = b.plan(&pattern(100, 1), None);
    let mut progress = CollectProgress::default();
    let mut conn = b.connector(&mut progress);
    conn.wait = Some(Duration::from_secs(1));
    let e = boot(&mut conn, &plan, &vf2(), &fast()).unwrap_err();
    assert!(matches!(e, StarfiveError::NoPoll { waited, .. } if waited == Duration::from_secs(1)), "{e}");
    assert!(e.to_string().contains("the port printed: (C)StarFive"), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
    assert!(e.hint().unwrap().contains("boot-mode switches"));
}

#[test]
fn u_boot_spl_takes_its_next_stage_by_ymodem() {
    let mut b = board(None);
    let itb = pattern(3000, 12);
    let plan = b.plan(&spl(9000), Some(&itb));
    let (r, progress) = b.boot(&plan, &fast());
    let r = r.unwrap();
    assert_eq!(progress.bytes(), 10_024 + 3000);
    let facts = r.facts();
    assert!(fact(&facts, "SPL said").contains("Trying to boot from UART"), "{facts:?}");
    assert_eq!(fact(&facts, "ymodem").split(',').next().unwrap(), "u-boot.itb: 3000 bytes in 3 blocks");
    assert!(!facts.iter().any(|f| f.0 == "ROM"), "{facts:?}");
    let v = b.rom.verdict();
    assert!(v.text().contains("SPL loaded u-boot.itb (3000 bytes) by YMODEM"), "{v:?}");
}

#[test]
fn a_payload_that_is_not_an_spl_never_asks_for_a_next_stage() {
    // Device-side: only U-Boot SPL with YMODEM support asks. Any other
    // payload runs silently, and waiting for its request is a timeout.
    let mut b = board(None);
    let plan = b.plan(&pattern(9000, 11), Some(&pattern(3000, 12)));
    let mut progress = CollectProgress::default();
    let mut conn = b.connector(&mut progress);
    conn.stage_timeout = Duration::from_secs(1);
    let e = boot(&mut conn, &plan, &vf2(), &fast()).unwrap_err();
    assert!(matches!(e, StarfiveError::NoNextStageRequest { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
    // The ROM did start the payload.
    let v = b.rom.verdict();
    assert_eq!(v, Verdict::Started { summary: v.text().to_string() });
    assert!(!v.text().contains("SPL"), "{v:?}");
}

#[test]
fn an_spl_without_a_next_stage_is_left_asking_for_one() {
    let mut b = board(None);
    let plan = b.plan(&spl(5000), None);
    let r = b.boot(&plan, &fast()).0.unwrap();
    assert!(fact(&r.facts(), "ROM").contains("U-Boot SPL"), "{:?}", r.facts());
    let v = b.rom.verdict();
    assert!(v.started() && v.text().contains("asks for its next stage by YMODEM"), "{v:?}");
}

#[test]
fn the_transcript_shows_the_frames_on_the_wire() {
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let b = board(None);
    let plan = b.plan(&pattern(100, 1), None);
    let buf = Shared::default();
    let mut progress = CollectProgress::default();
    let mut conn = b.connector(&mut progress);
    // Every byte as hex (by default long writes are kept as their hash).
    let full = RecordOptions { data: DataMode::Full, ..Default::default() };
    conn.recorder = Some(TranscriptWriter::new(buf.clone()).with_options(full));
    boot(&mut conn, &plan, &vf2(), &fast()).unwrap();
    drop(conn);
    let t = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let outs: Vec<serde_json::Value> = t
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["t"] == "serial_out")
        .collect();
    // 1124 bytes: one STX frame (1029 bytes) and one SOH tail (133), then EOT.
    let frame1 = outs[0]["data"].as_str().unwrap();
    assert_eq!(frame1.len(), 2 * 1029);
    assert!(frame1.starts_with("0201fe40020000"), "{}", &frame1[..16]);
    assert!(outs[1]["data"].as_str().unwrap().starts_with("0102fd"));
    assert_eq!(outs[1]["data"].as_str().unwrap().len(), 2 * 133);
    assert_eq!(outs.last().unwrap()["data"], "04");
    let open =
        t.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|v| v["t"] == "open");
    assert_eq!(open.unwrap()["baud"], 115_200, "{t}");
}

#[test]
fn no_uart_is_not_found_and_several_are_ambiguous() {
    let b = Board { rom: Box::new(NoRom), serial: SimSerialBus::new(), dir: tempfile::tempdir().unwrap() };
    let plan = b.plan(&pattern(100, 1), None);
    let e = b.boot(&plan, &fast()).0.unwrap_err();
    assert!(
        matches!(&e, StarfiveError::Link(LinkError::NotFound { what, waited: None, .. }) if what == racklet_starfive::boot::UART),
        "{e}"
    );
    assert_eq!(e.class(), FailureClass::NotFound);
    let two = board(None);
    let _other = models::attach("jh7110", &Scenario::at("1-2"), &SimUsbBus::new(), &two.serial).unwrap();
    assert_eq!(two.serial.ports().unwrap().len(), 2);
    let e = two.boot(&plan, &fast()).0.unwrap_err();
    assert_eq!(e.class(), FailureClass::Ambiguous, "{e}");
}

#[test]
fn ctrl_c_stops_between_blocks() {
    let mut b = board(None);
    let plan = b.plan(&pattern(20_000, 3), None);
    let mut cancel = CancelAfter::new(4);
    let e = boot(&mut b.connector(&mut cancel), &plan, &vf2(), &fast()).unwrap_err();
    assert!(matches!(e, StarfiveError::Link(LinkError::Interrupted)), "{e}");
    assert_eq!(e.class(), FailureClass::Interrupted);
    assert!(!b.rom.verdict().started());
}

struct NoRom;

impl VirtualRom for NoRom {
    fn verdict(&mut self) -> Verdict {
        Verdict::NotStarted { why: "no board".into() }
    }
}
