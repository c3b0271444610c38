//! The whole boot in-process: `plan` and `boot` through a `Connector`
//! against racklet-sim's virtual Sophgo ROM (built from the sim's own chip
//! table through its registry) over real pseudo-terminals and the
//! serialport backend — the wire, re-enumeration, faults, several boards.
//!
//! Expected values come from the fact sheet (shared/protocols/sophgo.md) and
//! the sim's reference CRC, not from this crate.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_image::{Arch, Target, Window};
use racklet_link::testing::CollectProgress;
use racklet_link::transcript::TranscriptWriter;
use racklet_link::{Classify, Connector, FailureClass, Selector, SerialInfo, UsbId};
use racklet_sim::crc::crc16_xmodem;
use racklet_sim::models::{self, Scenario};
use racklet_sim::rom::{Verdict, VirtualRom};
use racklet_sim::serial::{PtyPair, SimSerialBus};
use racklet_sim::usb::SimUsbBus;
use racklet_sophgo::report::Sent;
use racklet_sophgo::{Core, Inputs, Options, Report, SophgoError, boot, plan};

/// A BL2: `j +32` (RISC-V `6f 00 00 02`), then a body.
fn bl2(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    v[..4].copy_from_slice(&[0x6f, 0x00, 0x00, 0x02]);
    v
}

/// A board table row as the CLI hands it over (milkv-duo-256m, milkv-duo, ...).
fn target(board: &str, soc: &str) -> Target {
    let (base, size) = if soc == "cv1800b" { (0x3BC0_0000, 0x19000) } else { (0x0C00_0000, 0x37000) };
    Target {
        board: board.into(),
        soc: soc.into(),
        arch: Some(Arch::Riscv64),
        load_address: base,
        entry: Some(base + 0x20),
        window: Window { board: board.into(), base, size, max_payload: None },
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

/// One virtual board of `soc` at `scenario.port_path` on `bus`.
fn attach(soc: &str, scenario: &Scenario, bus: &SimSerialBus) -> Box<dyn VirtualRom> {
    models::attach(soc, scenario, &SimUsbBus::new(), bus).unwrap()
}

/// Plans `inputs` for `t` and boots it on `bus`, selecting with `sel`.
fn run(
    bus: &SimSerialBus,
    t: &Target,
    inputs: &Inputs,
    sel: Option<Selector>,
    recorder: Option<TranscriptWriter>,
) -> Result<Report, SophgoError> {
    let plan = plan(inputs, t).unwrap();
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(SimUsbBus::new()), Arc::new(bus.clone()), &mut progress);
    conn.selector = sel;
    conn.recorder = recorder;
    boot(&mut conn, &plan, t, &Options::default())
}

fn started(v: Verdict) -> String {
    match v {
        Verdict::Started { summary } => summary,
        Verdict::NotStarted { why } => panic!("the virtual ROM did not start BL2: {why}"),
    }
}

#[test]
fn every_chip_boots_a_bl2_or_a_fip() {
    let d = tempfile::tempdir().unwrap();
    let raw = file(d.path(), "bl2.bin", &bl2(5000));
    let fipb = racklet_sophgo::fip::build(&bl2(5000), 0x37000).unwrap();
    let fip = file(d.path(), "fip.bin", &fipb);
    let largest = file(d.path(), "largest.bin", &bl2(0x37000));
    // (board, soc, payload, entry the sheet gives, sessions the ROM asks for)
    let cases = [
        ("milkv-duo", "cv1800b", &raw, 0x3BC0_0020u64, "0x0+0x0, 0x0+0x1000, 0x1000+0x1400"),
        ("milkv-duo-256m", "sg2002", &raw, 0x0C00_0020, "0x0+0x0, 0x0+0x1000, 0x1000+0x1400"),
        ("milkv-duo-s", "sg2000", &fip, 0x0C00_0020, "0x0+0x0, 0x0+0x1000, 0x1000+0x1400"),
        ("licheerv-nano", "sg2002", &largest, 0x0C00_0020, "0x0+0x0, 0x0+0x1000, 0x1000+0x37000"),
    ];
    std::thread::scope(|s| {
        for (board, soc, payload, entry, sessions) in cases {
            let (fip, fipb) = (&fip, &fipb);
            s.spawn(move || {
                let bus = SimSerialBus::new();
                let mut rom = attach(soc, &Scenario::at("1-1"), &bus);
                let t = target(board, soc);
                let inputs = Inputs { bin: Some(payload.clone()), ..Default::default() };
                let r = run(&bus, &t, &inputs, None, None).unwrap_or_else(|e| panic!("{board}: {e}"));
                let v = started(rom.verdict());
                assert!(v.contains(&format!("jumped to 0x{entry:x}")), "{board}: {v}");
                assert!(v.contains(sessions), "{board}: {v}");
                assert_eq!(r.sessions, 3, "{board}");
                assert_eq!(r.bl2.map(|b| b.entry), Some(entry), "{board}");
                assert_eq!(r.followed_by, "USB port 1-1");
                let names: Vec<&str> = r.stages.iter().map(|s| s.name.as_str()).collect();
                assert_eq!(names, ["probe", "param1", "BL2"], "{board}");
                if payload == fip {
                    assert_eq!(r.image, Sent::FipAsGiven { len: fipb.len(), bl2: 0x1400 });
                    assert_eq!(r.bytes_sent, fipb.len() as u64);
                }
            });
        }
    });
}

#[test]
fn the_arm_core_loads_bl2_at_its_own_address() {
    let d = tempfile::tempdir().unwrap();
    let mut body = bl2(200);
    body[..4].copy_from_slice(&[0x08, 0x00, 0x00, 0x14]); // AArch64 b +32
    let arm = file(d.path(), "arm.bin", &body);
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.core = Some("arm".into());
    let mut rom = attach("sg2002", &sc, &bus);
    let inputs = Inputs { bin: Some(arm), core: Some(Core::Arm), ..Default::default() };
    let r = run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, None).unwrap();
    assert!(started(rom.verdict()).contains("jumped to 0x40100020"));
    assert_eq!(r.facts()[0], ("chip".to_string(), "sg2002 (Arm core)".to_string()));
}

#[test]
fn every_fault_ends_cleanly_with_its_class() {
    let d = tempfile::tempdir().unwrap();
    let payload = file(d.path(), "bl2.bin", &bl2(1500));
    // (fault, class of the failure or None when the client recovers, text the error names)
    let cases = [
        ("bad-ack-crc", None, ""),
        ("no-break-ack", None, ""),
        ("bad-ack-crc-always", Some(FailureClass::Io), "echoes CRC"),
        ("wrong-offset", Some(FailureClass::Io), "0x1000000"),
        ("vanish", Some(FailureClass::Disconnected), "disconnected"),
        // The ROM tries BL2 once and boots flash: nothing on USB says so.
        ("reject-bl2", None, "DL cancelled"),
        ("window-missed", Some(FailureClass::Disconnected), "window"),
    ];
    std::thread::scope(|s| {
        for (fault, class, needle) in cases {
            let payload = &payload;
            s.spawn(move || {
                let bus = SimSerialBus::new();
                let mut sc = Scenario::at("1-1");
                sc.fault = Some(fault.into());
                let mut rom = attach("sg2002", &sc, &bus);
                let inputs = Inputs { bin: Some(payload.clone()), ..Default::default() };
                let r = run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, None);
                match class {
                    None if needle.is_empty() => {
                        r.unwrap_or_else(|e| panic!("{fault}: {e}"));
                        assert!(started(rom.verdict()).contains("jumped to 0xc000020"), "{fault}");
                    }
                    None => {
                        // The client cannot see it; the board's own verdict says so.
                        let r = r.unwrap_or_else(|e| panic!("{fault}: {e}"));
                        assert!(r.confirmed.is_empty(), "{fault}: {:?}", r.confirmed);
                        let v = rom.verdict();
                        assert!(!v.started() && v.text().contains(needle), "{fault}: {v:?}");
                    }
                    Some(class) => {
                        let e = r.expect_err(fault);
                        assert_eq!(e.class(), class, "{fault}: {e}");
                        assert!(e.to_string().contains(needle), "{fault}: {e}");
                        assert!(!rom.verdict().started(), "{fault}: the ROM agrees nothing ran");
                    }
                }
            });
        }
    });
}

#[test]
fn a_vid_changed_by_efuse_is_found_only_with_usb_id() {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(777));
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.usb_id = Some(UsbId::new(0x1234, 0xabcd));
    let mut rom = attach("sg2002", &sc, &bus);
    let t = target("milkv-duo-256m", "sg2002");
    let e = run(&bus, &t, &Inputs { bin: Some(p.clone()), ..Default::default() }, None, None).unwrap_err();
    assert_eq!(e.class(), FailureClass::NotFound, "{e}");
    assert!(e.to_string().contains("3346:1000"), "{e}");
    assert!(e.hint().unwrap_or_default().contains("--usb-id"), "{e}");
    let inputs = Inputs { bin: Some(p), usb_id: Some(UsbId::new(0x1234, 0xabcd)), ..Default::default() };
    run(&bus, &t, &inputs, None, None).unwrap();
    started(rom.verdict());
}

#[test]
fn the_main_session_serves_a_running_bl2() {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(777));
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.running_load = Some(777);
    let mut rom = attach("sg2002", &sc, &bus);
    let inputs = Inputs { bin: Some(p), main: true, ..Default::default() };
    let r = run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, None).unwrap();
    assert_eq!((r.sessions, r.bytes_sent, r.bl2), (1, 777, None));
    let v = started(rom.verdict());
    assert!(v.contains(&format!("received 777 bytes (crc16 {:04x})", crc16_xmodem(&bl2(777)))), "{v}");
}

/// A `Write` into shared memory, to read a transcript back.
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

#[test]
fn the_wire_carries_the_sheet_packets() {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(600));
    let bus = SimSerialBus::new();
    let mut rom = attach("sg2002", &Scenario::at("1-1"), &bus);
    let out = Shared::default();
    let inputs = Inputs { bin: Some(p), ..Default::default() };
    run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, Some(TranscriptWriter::new(out.clone())))
        .unwrap();
    started(rom.verdict());
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let outs: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["t"] == "serial_out")
        .map(|v| v["data"].as_str().unwrap().to_string())
        .collect();
    // Sheet §4 (sg_boot transcript): magic, FLAG, BREAK.
    let magic = "03000a00000000002c08";
    let flag = "01000c000e000004314e474d";
    let brk = "0200080000000000";
    assert_eq!(outs[0], magic, "probe session: the magic only");
    assert_eq!(outs[1], magic);
    // param1: 17 DATA packets of 248 bytes at 0, 0xf8, ... then FLAG, BREAK.
    assert!(outs[2].starts_with("0001000000000000"));
    assert!(outs[3].starts_with("00010000000000f8"));
    assert_eq!(outs[19], flag);
    assert_eq!(outs[20], brk);
    // BL2 session: magic, 1024 bytes as 248+248+248+248+32, FLAG, BREAK.
    assert_eq!(outs[21], magic);
    assert!(outs[26].starts_with("00002800000003e0"), "{}", &outs[26][..20]);
    assert_eq!(outs[27], flag);
    assert_eq!(outs[28], brk);
    assert_eq!(outs.len(), 29);
}

#[test]
fn boards_on_one_bus_are_each_followed_by_their_port_path() {
    // Three virtual boards re-enumerate at the same time; their ptys are
    // reused among them, so only the USB port path tells them apart.
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(2000));
    let bus = SimSerialBus::new();
    let ports = ["1-1", "1-2", "3-1.4"];
    let mut roms: Vec<_> = ports.iter().map(|pp| attach("sg2002", &Scenario::at(pp), &bus)).collect();
    let t = target("milkv-duo-256m", "sg2002");
    std::thread::scope(|s| {
        for pp in ports {
            let (bus, t, p) = (&bus, &t, &p);
            s.spawn(move || {
                let inputs = Inputs { bin: Some(p.clone()), ..Default::default() };
                let r = run(bus, t, &inputs, Some(Selector::UsbPath(pp.into())), None).unwrap();
                assert_eq!(r.followed_by, format!("USB port {pp}"));
            });
        }
    });
    for rom in &mut roms {
        started(rom.verdict());
    }
}

#[test]
fn a_usb_uart_adapter_is_named_not_spoken_to() {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(100));
    let t = target("milkv-duo", "cv1800b");
    let inputs = Inputs { bin: Some(p), ..Default::default() };
    // An FTDI adapter on the board's console pins, listed by the system.
    let pty = PtyPair::new().unwrap();
    let bus = SimSerialBus::new();
    bus.publish(SerialInfo {
        path: pty.path.clone(),
        vid: Some(0x0403),
        pid: Some(0x6001),
        product: Some("FT232R USB UART".into()),
        port_path: Some("1-3".into()),
        ..Default::default()
    });
    let e = run(&bus, &t, &inputs, Some(Selector::parse(&pty.path).unwrap()), None).unwrap_err();
    assert!(matches!(e, SophgoError::NotTheRom { bridge: true, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.to_string().contains("0403:6001"), "{e}");
    assert!(e.hint().unwrap_or_default().contains("USB-UART adapter"), "{e}");
    // Without --port: no ROM found, and the hint names the adapter.
    let e = run(&bus, &t, &inputs, None, None).unwrap_err();
    assert!(matches!(e, SophgoError::NoRom { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::NotFound);
    let hint = e.hint().unwrap_or_default();
    assert!(hint.contains(&pty.path) && hint.contains("about 1 s"), "{hint}");
}

#[test]
fn a_served_rom_is_followed_through_its_symlink() {
    // `racklet-flash sim`: each session is a new pty behind one symlink,
    // and the client's system lists none of them.
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(900));
    let opts = racklet_sim::serve::sophgo::Options {
        soc: "sg2002".into(),
        tcp: None,
        keep: false,
        fault: None,
        tmp: d.path().to_path_buf(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let server = std::thread::spawn(move || {
        let on = move |e| {
            if let racklet_sim::serve::sophgo::Event::Ready { link } = e {
                let _ = tx.lock().unwrap().send(link);
            }
        };
        racklet_sim::serve::sophgo::serve(&opts, &|| false, &on).unwrap()
    });
    let link = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let nothing_listed = SimSerialBus::new();
    let sel = Selector::parse(link.to_str().unwrap()).unwrap();
    let inputs = Inputs { bin: Some(p), ..Default::default() };
    let r = run(&nothing_listed, &target("milkv-duo-256m", "sg2002"), &inputs, Some(sel), None).unwrap();
    assert_eq!(r.followed_by, format!("tty {}", link.display()));
    let served = server.join().unwrap();
    assert!(started(served.verdict).contains("jumped to 0xc000020"));
    let bl2_got = &served.received.iter().find(|(n, _)| *n == "bl2.bin").unwrap().1;
    assert_eq!(&bl2_got[..900], &bl2(900)[..]);
}

// ---- the chips as their sources say ---------------------------------

/// A vector the vendor fiptool.py wrote (tests/vectors/sophgo/README.md).
fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/sophgo").join(name)
}

#[test]
fn a_vendor_fip_is_served_slice_by_slice_until_u_boot_appears() {
    // bl2_opt.c: after BL2 the FSBL loads param2, the DDR parameters,
    // BLCP_2ND, the monitor and LOADER_2ND (header, then body), each as its
    // own load_image session; then U-Boot's gadget is 3346:1001.
    let bus = SimSerialBus::new();
    let mut rom = attach("sg2002", &Scenario::at("1-1"), &bus);
    let inputs = Inputs { bin: Some(vector("fip-full.bin")), ..Default::default() };
    let r = run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, None).unwrap();
    let v = started(rom.verdict());
    assert!(v.contains("3346:1001 is up"), "{v}");
    assert!(v.contains("DDR_PARAM, BLCP_2ND, MONITOR, LOADER_2ND"), "{v}");
    let names: Vec<&str> = r.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "probe",
            "param1",
            "BLCP",
            "BL2",
            "param2",
            "DDR_PARAM",
            "BLCP_2ND",
            "MONITOR",
            "LOADER_2ND header",
            "LOADER_2ND"
        ]
    );
    let fip = std::fs::read(vector("fip-full.bin")).unwrap();
    // LOADER_2ND's header session is one 512-byte block; the body is the rest of the file.
    let l = &r.stages[9];
    assert_eq!(l.offset as usize + l.size as usize, fip.len());
}

#[test]
fn a_slice_outside_the_file_is_reported_as_such() {
    // The vendor image cut after its monitor: the FSBL then asks for
    // LOADER_2ND's header, which the file does not hold.
    let d = tempfile::tempdir().unwrap();
    let full = std::fs::read(vector("fip-full.bin")).unwrap();
    let i = racklet_sophgo::fip::parse(&full).unwrap();
    let mon = &i.param2.as_ref().unwrap().monitor;
    let cut = file(d.path(), "cut.bin", &full[..(mon.offset + mon.size) as usize]);
    let bus = SimSerialBus::new();
    let mut rom = attach("sg2002", &Scenario::at("1-1"), &bus);
    let inputs = Inputs { bin: Some(cut), ..Default::default() };
    let e = run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, None).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("LOADER_2ND") && text.contains("outside"), "{text}");
    let v = rom.verdict();
    assert!(!v.started() && v.text().contains("waits for fip.bin"), "{v:?}");
}

#[test]
fn the_rom_tries_bl2_once_then_boots_flash_and_nothing_is_claimed() {
    // get_number_of_retries() is 1 over USB: a rejected BL2 is not asked for
    // again; the ROM prints "DL cancelled. Load flash." and boots flash.
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(1500));
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.fault = Some("reject-bl2".into());
    let mut rom = attach("sg2002", &sc, &bus);
    let t0 = std::time::Instant::now();
    let inputs = Inputs { bin: Some(p), ..Default::default() };
    let r = run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, None).unwrap();
    let v = rom.verdict();
    assert!(v.text().contains("DL cancelled") && v.text().contains("1 try"), "{v:?}");
    // Without a console the client cannot know: it says so and claims nothing.
    let facts = r.facts();
    let get = |k: &str| facts.iter().find(|f| f.0 == k).map(|f| f.1.clone()).unwrap_or_default();
    assert!(get("not confirmed").contains("BL2"), "{facts:?}");
    assert!(!get("confirmed").contains("entered"), "{facts:?}");
    // And no wait for a ROM that will not come back.
    assert!(t0.elapsed() < Duration::from_millis(1400), "{:?}", t0.elapsed());
}

#[test]
fn full_speed_links_get_packets_of_64_bytes() {
    // usb_tty.c: at full speed the ROM posts 64-byte OUT requests and parses
    // each as a packet.
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(3000));
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.speed = Some(racklet_sim::usb::BusSpeed::Full);
    let mut rom = attach("sg2002", &sc, &bus);
    let out = Shared::default();
    let inputs = Inputs { bin: Some(p), ..Default::default() };
    run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, Some(TranscriptWriter::new(out.clone())))
        .unwrap_or_else(|e| panic!("{e}"));
    started(rom.verdict());
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["t"] == "serial_out" {
            let n = v["len"].as_u64().unwrap_or_else(|| v["data"].as_str().unwrap().len() as u64 / 2);
            assert!(n <= 64, "a {n}-byte packet on a full-speed link");
        }
    }
}

#[test]
fn a_part_without_usb_timeout_is_followed_past_its_magicless_probe() {
    // usb_tty.c: efuses that disable the timeout set flagEnterDL before
    // enumeration (USBC.), and the probe returns once the port is configured.
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(700));
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.fault = Some("efuse-no-timeout".into());
    let mut rom = attach("sg2002", &sc, &bus);
    let inputs = Inputs { bin: Some(p), ..Default::default() };
    run(&bus, &target("milkv-duo-256m", "sg2002"), &inputs, None, None).unwrap_or_else(|e| panic!("{e}"));
    let v = started(rom.verdict());
    assert!(v.contains("USBC.") && v.contains("jumped to 0xc000020"), "{v}");
}

/// A board with a UART console (`--monitor`), booted while reading it.
fn run_watching(fault: Option<&str>, payload: &Path) -> (Result<Report, SophgoError>, Verdict) {
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.fault = fault.map(Into::into);
    sc.console = true;
    let mut rom = attach("sg2002", &sc, &bus);
    let tty = rom.console().expect("the board has a console");
    let mut console = racklet_link::serial_backend::SerialPortLink::open(
        SerialInfo { path: tty, ..Default::default() },
        115_200,
    )
    .unwrap();
    let t = target("milkv-duo-256m", "sg2002");
    let plan = plan(&Inputs { bin: Some(payload.to_path_buf()), ..Default::default() }, &t).unwrap();
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(SimUsbBus::new()), Arc::new(bus.clone()), &mut progress);
    conn.stage_timeout = Duration::from_secs(2);
    let r = racklet_sophgo::boot_watching(&mut conn, &plan, &t, &Options::default(), Some(&mut console));
    (r, rom.verdict())
}

#[test]
fn the_console_tells_an_entered_bl2_from_a_rejected_one() {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(900));
    // Accepted: BE.J. on the ROM's UART.
    let (r, v) = run_watching(None, &p);
    let r = r.unwrap();
    assert!(v.started());
    assert!(r.confirmed.iter().any(|c| c.contains("BE.J.") && c.contains("0xc000020")), "{:?}", r.confirmed);
    assert!(r.unconfirmed.is_empty(), "{:?}", r.unconfirmed);
    assert!(r.console.contains("PE.") && r.console.contains("BE.J."), "{}", r.console);
    // Rejected: the ROM's checksum line, then the fallback to flash.
    let (r, v) = run_watching(Some("reject-bl2"), &p);
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::Rejected, "{e}");
    assert!(e.to_string().contains("BL2") && e.to_string().contains("bl2_cksum"), "{e}");
    assert!(!v.started());
}

#[test]
fn a_rejected_param1_is_named_not_blamed_on_the_stage_timeout() {
    // The ROM tries param1 once, then boots its flash: it never asks for BL2.
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "bl2.bin", &bl2(900));
    let bus = SimSerialBus::new();
    let mut sc = Scenario::at("1-1");
    sc.fault = Some("reject-param1".into());
    let mut rom = attach("sg2002", &sc, &bus);
    let t = target("milkv-duo-256m", "sg2002");
    let plan = plan(&Inputs { bin: Some(p.clone()), ..Default::default() }, &t).unwrap();
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(SimUsbBus::new()), Arc::new(bus.clone()), &mut progress);
    conn.stage_timeout = Duration::from_secs(1);
    let e = boot(&mut conn, &plan, &t, &Options::default()).unwrap_err();
    assert!(matches!(e, SophgoError::NoBl2Request { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
    assert!(e.to_string().contains("rejected param1"), "{e}");
    assert!(!e.hint().unwrap_or_default().contains("stage-timeout"), "{e:?}");
    assert!(rom.verdict().text().contains("DL cancelled"));
    // With the console, the ROM's own line says why.
    let (r, _) = run_watching(Some("reject-param1"), &p);
    let e = r.unwrap_err();
    assert!(e.to_string().contains("param1_cksum"), "{e}");
}

#[test]
fn the_console_names_the_fsbl_stage_it_rejected() {
    let (r, v) = run_watching(Some("reject-monitor"), &vector("fip-full.bin"));
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::Rejected, "{e}");
    assert!(e.to_string().contains("MONITOR") && e.to_string().contains("monitor_cksum"), "{e}");
    assert!(!v.started() && v.text().contains("DL cancelled"), "{v:?}");
    // And the whole vendor boot, confirmed step by step.
    let (r, v) = run_watching(None, &vector("fip-full.bin"));
    let r = r.unwrap();
    assert!(v.started(), "{v:?}");
    assert!(r.uboot.is_some() && r.unconfirmed.is_empty(), "{:?} / {:?}", r.confirmed, r.unconfirmed);
    assert!(r.console.contains("Loader_2nd loaded.") && r.console.contains("Jump to monitor at 0x80000000"));
}
