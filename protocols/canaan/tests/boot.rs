//! Whole runs in-process: `plan` and `boot` through a `Connector` against
//! racklet-sim's virtual K230 on a simulated USB bus — the wire, the
//! re-enumeration between stages, the faults.
//!
//! Expected wire values are written out from the fact sheet
//! (shared/protocols/canaan-k230.md §2, §7), not taken from the client; the
//! board facts are those of `canmv-k230` in the board table.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_canaan::report::{Chip, NextStage};
use racklet_canaan::{CanaanError, DeviceStage, Inputs, Options, Report, RomOptions};
use racklet_image::{Target, Window};
use racklet_link::testing::CollectProgress;
use racklet_link::transcript::{DataMode, RecordOptions, TranscriptWriter};
use racklet_link::{Classify, Connector, FailureClass, Selector};
use racklet_sim::canaan::{Fault, K230, K230Rom};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;
use serde_json::Value;

fn target() -> Target {
    Target {
        board: "canmv-k230".into(),
        soc: "k230".into(),
        arch: racklet_image::Arch::from_name("riscv64"),
        load_address: 0x8036_0000,
        entry: Some(0x8036_0000),
        window: Window { board: "canmv-k230".into(), base: 0x8020_0000, size: 0x20_0000, max_payload: None },
        usb: vec![("rom".into(), 0x29f1, 0x0230), ("loader".into(), 0x29f1, 0x0230)],
        baud: None,
        max_stage: 256 << 20,
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A simulated bus with virtual boards, and a place for the transcript.
struct Rig {
    usb: SimUsbBus,
    boards: Vec<Arc<Mutex<K230Rom>>>,
    dir: tempfile::TempDir,
}

impl Rig {
    /// One K230 at port 1-1, with `fault`.
    fn new(fault: Option<Fault>) -> Rig {
        let mut r = Rig::empty();
        r.plug("1-1", fault);
        r
    }

    fn empty() -> Rig {
        Rig { usb: SimUsbBus::new(), boards: Vec::new(), dir: tempfile::tempdir().unwrap() }
    }

    fn plug(&mut self, port: &str, fault: Option<Fault>) {
        self.boards.push(self.usb.attach(K230Rom::new(&K230, port).with_fault(fault)));
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        write(self.dir.path(), name, bytes)
    }

    fn board(&self, i: usize) -> std::sync::MutexGuard<'_, K230Rom> {
        self.boards[i].lock().unwrap()
    }

    /// Plans `inputs` and boots them with `opts`, at the port `sel` selects.
    fn run_at(
        &self,
        sel: Option<&str>,
        inputs: &Inputs,
        opts: &Options,
    ) -> (Result<Report, CanaanError>, CollectProgress) {
        let plan = racklet_canaan::plan(inputs, &target()).expect("a valid plan");
        let mut progress = CollectProgress::default();
        let mut conn =
            Connector::new(Arc::new(self.usb.clone()), Arc::new(SimSerialBus::new()), &mut progress);
        conn.selector = sel.map(|s| Selector::parse(s).unwrap());
        conn.stage_timeout = Duration::from_millis(300);
        let file = std::fs::File::create(self.dir.path().join("t.jsonl")).unwrap();
        // Every byte (not the hashes of long writes): the tests read them.
        let full = RecordOptions { data: DataMode::Full, redact: false };
        conn.recorder = Some(TranscriptWriter::new(file).with_options(full));
        let r = racklet_canaan::boot(&mut conn, &plan, &target(), opts);
        (r, progress)
    }

    fn run(&self, inputs: &Inputs, opts: &Options) -> Result<Report, CanaanError> {
        self.run_at(None, inputs, opts).0
    }

    fn transcript(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("t.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn payload(p: PathBuf) -> Inputs {
    Inputs { payload: Some(p), ..Inputs::default() }
}

fn follow() -> Options {
    Options { follow: true, ..Options::default() }
}

/// oreboot's two stages: bt0 into SRAM, the main stage into DRAM at 0x08000000.
fn bt0_and_main(r: &Rig, bt0: &[u8], main: &[u8]) -> Inputs {
    Inputs {
        loads: vec![(0x8036_0000, r.file("bt0.bin", bt0)), (0x0800_0000, r.file("main.bin", main))],
        run: Some(0x0800_0000),
        ..Inputs::default()
    }
}

fn bulk_sizes(t: &[Value]) -> Vec<usize> {
    t.iter().filter(|r| r["t"] == "bulk_out").map(|r| r["data"].as_str().unwrap().len() / 2).collect()
}

/// (wValue, wIndex) of every vendor control OUT with bRequest `req`.
fn requests(t: &[Value], req: u64) -> Vec<(u64, u64)> {
    t.iter()
        .filter(|r| r["t"] == "ctrl_out" && r["req"] == req && r["rt"] == 0x40)
        .map(|r| (r["val"].as_u64().unwrap(), r["idx"].as_u64().unwrap()))
        .collect()
}

fn fact(report: &Report, key: &str) -> String {
    report.facts().into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default()
}

/// Sheet §2, case s2: a 2500-byte payload goes out as 1000 + 1000 + 500
/// after one SET_DATA_ADDRESS(0x80360000) = `40 01 36 80 00 00 00 00`,
/// then PROG_START(0x80360000) = `40 04 36 80 00 00 00 00`; the run ends
/// once the ROM took it.
#[test]
fn a_raw_payload_on_the_wire() {
    let r = Rig::new(None);
    let report = r.run(&payload(r.file("p.bin", &pattern(2500))), &Options::default()).unwrap();
    assert_eq!(report.port, "1-1");
    assert_eq!(report.chip, Chip::BootRom);
    assert_eq!(report.next, None);
    assert_eq!(
        fact(&report, "payload"),
        "2500 bytes in 1 file(s), started at 0x80360000, PROG_START acknowledged"
    );
    let t = r.transcript();
    assert_eq!(t[0]["t"], "open");
    assert_eq!((t[0]["vid"].as_u64(), t[0]["pid"].as_u64()), (Some(0x29f1), Some(0x0230)));
    // GET_CPU_INFO: C0 00 00 00 00 00 20 00, reply "K230".
    assert_eq!(
        (t[1]["t"].as_str(), t[1]["rt"].as_u64(), t[1]["req"].as_u64()),
        (Some("ctrl_in"), Some(0xc0), Some(0))
    );
    assert_eq!(t[1]["len"], 32);
    assert_eq!(t[1]["data"], "4b323330");
    assert_eq!(requests(&t, 1), [(0x8036, 0x0000)]);
    assert_eq!(bulk_sizes(&t), [1000, 1000, 500]);
    assert_eq!(requests(&t, 4), [(0x8036, 0x0000)]);
    let sent: String =
        t.iter().filter(|r| r["t"] == "bulk_out").map(|r| r["data"].as_str().unwrap()).collect();
    assert_eq!(sent, pattern(2500).iter().map(|b| format!("{b:02x}")).collect::<String>());
    // PROG_START is the last transfer: nothing is awaited after it.
    assert_eq!(t.last().unwrap()["req"], 4, "{:?}", t.last());
    let v = r.board(0).verdict();
    assert!(v.text().starts_with("loaded 2500 bytes at 0x80360000; jumped to 0x80360000"), "{v:?}");
    assert!(v.started());
}

#[test]
fn an_elf_goes_to_its_load_address_and_starts_at_its_entry() {
    let r = Rig::new(None);
    let elf = racklet_tests::elf64(243, 0x8030_0010, &[(0x8030_0000, &pattern(64), 64)]);
    r.run(&payload(r.file("p.elf", &elf)), &Options::default()).unwrap();
    let t = r.transcript();
    assert_eq!(requests(&t, 1), [(0x8030, 0x0000)]);
    assert_eq!(requests(&t, 4), [(0x8030, 0x0010)]);
    assert_eq!(bulk_sizes(&t), [64]);
}

#[test]
fn the_loader_stage_gets_no_rom_commands() {
    let r = Rig::new(Some(Fault::Loader));
    let e = r.run(&payload(r.file("p.bin", &pattern(64))), &Options::default()).unwrap_err();
    assert!(matches!(&e, CanaanError::LoaderStage { reply } if reply == "Uboot Stage for K230"), "{e}");
    assert_eq!(e.class(), FailureClass::NotFound);
    assert!(e.to_string().contains("kburn loader"), "{e}");
    let kinds: Vec<String> = r.transcript().iter().map(|x| x["t"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["open", "ctrl_in"]);
}

/// Every fault ends with its class, and never with a report of success.
/// With `follow` the client itself finds that no jump happened (without
/// it, only the virtual ROM's verdict would).
#[test]
fn faults_end_with_their_class() {
    for (fault, class, needle) in [
        (Fault::StallBulk, FailureClass::Rejected, "stalled"),
        (Fault::HangBulk, FailureClass::Timeout, "timed out"),
        (Fault::StallStart, FailureClass::Rejected, "PROG_START 0x80360000 was refused"),
        (Fault::WrongCpu, FailureClass::Rejected, "K210"),
        (Fault::NoJump, FailureClass::Rejected, "did not start"),
        (Fault::Unplug, FailureClass::Disconnected, "disconnected"),
    ] {
        let r = Rig::new(Some(fault));
        let e = r.run(&payload(r.file("p.bin", &pattern(3000))), &follow()).unwrap_err();
        assert_eq!(e.class(), class, "{fault:?}: {e}");
        assert!(e.to_string().contains(needle), "{fault:?}: {e}");
        assert!(!r.board(0).verdict().started(), "{fault:?}");
    }
    // Tolerated: the ROM jumps before the status stage of PROG_START.
    let r = Rig::new(Some(Fault::NoStatus));
    let report = r.run(&payload(r.file("p.bin", &pattern(3000))), &Options::default()).unwrap();
    assert!(fact(&report, "payload").contains("no status stage"), "{report:?}");
    assert!(r.board(0).verdict().started());
    // --force sends ROM commands to a chip that does not say "K230".
    let r = Rig::new(Some(Fault::WrongCpu));
    let opts =
        Options { rom: RomOptions { accept_unknown_cpu: true, ..RomOptions::default() }, follow: false };
    let report = r.run(&payload(r.file("p.bin", &pattern(3000))), &opts).unwrap();
    assert_eq!(report.chip, Chip::Unknown { reply: "K210".into() });
    assert!(r.board(0).verdict().started());
}

/// oreboot's flow: bt0 into SRAM, run; the board comes back as the ROM (at
/// the same port, a new address) and is opened again; the main stage into
/// DRAM at 0x08000000, run there.
#[test]
fn dram_init_then_main_stage_across_reenumeration() {
    let r = Rig::new(None);
    let inputs = bt0_and_main(&r, &pattern(1500), &pattern(4096));
    let (report, progress) = r.run_at(None, &inputs, &Options::default());
    let report = report.unwrap();
    assert!(
        fact(&report, "stage 1").starts_with("1500 bytes in 1 file(s), started at 0x80360000"),
        "{report:?}"
    );
    assert!(
        fact(&report, "stage 2").starts_with("4096 bytes in 1 file(s), started at 0x08000000"),
        "{report:?}"
    );
    assert!(progress.messages().contains(&"the boot ROM is back; DRAM is up"), "{:?}", progress.messages());
    let t = r.transcript();
    assert_eq!(t.iter().filter(|r| r["t"] == "open").count(), 2, "re-opened after re-enumeration");
    assert_eq!(requests(&t, 1), [(0x8036, 0), (0x0800, 0)]);
    assert_eq!(requests(&t, 4), [(0x8036, 0), (0x0800, 0)]);
    assert_eq!(bulk_sizes(&t), [1000, 500, 1000, 1000, 1000, 1000, 96]);
    let v = r.board(0).verdict();
    assert!(v.started(), "{v:?}");
    assert!(v.text().contains("jumped to 0x80360000 (DRAM init, back into the ROM)"), "{v:?}");
    assert!(v.text().ends_with("jumped to 0x08000000"), "{v:?}");
}

#[test]
fn a_dram_init_stage_that_never_returns_times_out() {
    let r = Rig::new(Some(Fault::NoReturn));
    let e = r.run(&bt0_and_main(&r, &pattern(100), &pattern(100)), &Options::default()).unwrap_err();
    assert!(matches!(e, CanaanError::NoNextStage { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
    assert!(e.to_string().contains("did not appear at USB port 1-1"), "{e}");
    assert!(e.hint().unwrap().contains("--stage-timeout"));
    // A ROM that acknowledges PROG_START but stays put: the stage never ran.
    let r = Rig::new(Some(Fault::NoJump));
    let e = r.run(&bt0_and_main(&r, &pattern(100), &pattern(100)), &Options::default()).unwrap_err();
    assert!(matches!(e, CanaanError::NoJump { entry: 0x8036_0000 }), "{e}");
    assert!(e.to_string().contains("PROG_START 0x80360000 went through"), "{e}");
}

/// A first stage that comes back as something else than the ROM (here, it
/// holds the kburn loader) cannot take the next stage.
#[test]
fn a_first_stage_that_comes_back_as_the_loader_is_not_back_in_rom() {
    let r = Rig::new(None);
    let mut bt0 = pattern(500);
    bt0.extend_from_slice(b"Uboot Stage for K230");
    let e = r.run(&bt0_and_main(&r, &bt0, &pattern(100)), &Options::default()).unwrap_err();
    assert!(
        matches!(&e, CanaanError::NotBackInRom { stage: 1, found } if found.contains("kburn loader")),
        "{e}"
    );
    assert_eq!(e.class(), FailureClass::Rejected);
    assert!(e.hint().unwrap().contains("0x91200000"));
}

/// With `follow`, what comes up next is reported: the kburn loader for a
/// payload that is the loader, the boot ROM again for an SRAM payload
/// (SRAM stages return to 0x91200000).
#[test]
fn the_next_stage_is_reported_when_followed() {
    let r = Rig::new(None);
    let mut loader = pattern(5000);
    loader.extend_from_slice(b"Uboot Stage for K230");
    let report = r.run(&payload(r.file("loader.bin", &loader)), &follow()).unwrap();
    assert_eq!(
        report.next,
        Some(NextStage::Answered { stage: DeviceStage::Loader("Uboot Stage for K230".into()) })
    );
    let next = fact(&report, "next stage");
    assert!(next.contains("kburn loader") && next.contains("at USB port 1-1"), "{next}");

    let r = Rig::new(None);
    let report = r.run(&payload(r.file("hello.bin", &pattern(1278))), &follow()).unwrap();
    assert_eq!(report.next, Some(NextStage::Answered { stage: DeviceStage::BootRom }));
    assert!(fact(&report, "next stage").starts_with("the K230 boot ROM at USB port 1-1"));
}

/// `follow` asks for a next stage: a main stage that never comes up on
/// USB is then a timeout, not a success.
#[test]
fn following_a_stage_that_stays_off_usb_is_a_timeout() {
    let r = Rig::new(None);
    let e = r.run(&bt0_and_main(&r, &pattern(700), &pattern(700)), &follow()).unwrap_err();
    assert!(matches!(&e, CanaanError::NoNextStage { what, .. } if what == "the next stage on USB"), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
    assert!(r.board(0).verdict().started(), "the main stage did run");
}

/// Across re-enumeration the board is followed by its USB port path, so
/// another K230 on the bus never gets a stage.
#[test]
fn the_board_is_followed_by_its_port_path() {
    let mut r = Rig::empty();
    r.plug("1-1", None);
    r.plug("1-2", None);
    let inputs = bt0_and_main(&r, &pattern(100), &pattern(200));
    let (report, _) = r.run_at(Some("1-2"), &inputs, &Options::default());
    assert_eq!(report.unwrap().port, "1-2");
    assert!(r.board(0).regions.is_empty(), "the board at 1-1 was not touched");
    assert_eq!(r.board(1).jumps.len(), 2);
}

#[test]
fn no_board_is_not_found_and_two_are_ambiguous() {
    let r = Rig::empty();
    let inputs = payload(r.file("p.bin", &pattern(10)));
    let e = r.run(&inputs, &Options::default()).unwrap_err();
    assert!(matches!(e, CanaanError::Find(_)), "{e}");
    assert_eq!(e.class(), FailureClass::NotFound);
    assert!(e.hint().unwrap().contains("--wait"));
    let mut r = r;
    r.plug("1-1", None);
    r.plug("1-2", None);
    let e = r.run(&inputs, &Options::default()).unwrap_err();
    assert_eq!(e.class(), FailureClass::Ambiguous, "{e}");
    assert!(e.to_string().contains("1-1") && e.to_string().contains("1-2"), "{e}");
}
