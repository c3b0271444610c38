//! Whole runs in-process: `plan` and `boot` against the virtual ROMs of
//! racklet-sim (written from the fact sheet, not from this crate) on a
//! simulated USB bus, through a `Connector`: the wire, the re-enumeration
//! by port path, the faults and the board's own verdict.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use racklet_fastboot::{FastbootError, Inputs, Options, Plan, Report, Timeouts, boot, k1, plan};
use racklet_image::Target;

mod common;
use common::target;
use racklet_link::testing::{CancelAfter, CollectProgress};
use racklet_link::{Classify, Connector, FailureClass, LinkError, ProgressSink, Selector};
use racklet_sim::fastboot::{FastbootDevice, Fault, Soc, Stage};
use racklet_sim::models::{self, Scenario};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

fn noise(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed)).collect()
}

/// A FIT as far as the K1 SPL checks one: the FDT magic, then anything.
fn fit(n: usize) -> Vec<u8> {
    let mut b = noise(n, 3);
    b[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
    b
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

struct Run {
    _dir: tempfile::TempDir,
    plan: Plan,
    target: Target,
}

/// Plans a K1 run of an FSBL of `spl` bytes (and a FIT of `then` bytes).
fn k1_run(spl: usize, then: Option<usize>, await_next: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let image = Some(file(dir.path(), "FSBL.bin", &k1::build_fsbl(&noise(spl, 1))));
    let then = then.map(|n| file(dir.path(), "u-boot.itb", &fit(n))).into_iter().collect();
    let target = target("k1");
    let stage_timeout = Some(Duration::from_secs(2));
    let plan =
        plan(&Inputs { image, then, await_next, stage_timeout, ..Default::default() }, &target).unwrap();
    Run { _dir: dir, plan, target }
}

fn th1520_run(len: usize, await_next: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let image = Some(file(dir.path(), "u-boot-with-spl.bin", &noise(len, 5)));
    let target = target("th1520");
    let stage_timeout = Some(Duration::from_secs(2));
    let plan = plan(&Inputs { image, await_next, stage_timeout, ..Default::default() }, &target).unwrap();
    Run { _dir: dir, plan, target }
}

fn conn<'a>(bus: &SimUsbBus, p: &'a mut dyn ProgressSink) -> Connector<'a> {
    let mut c = Connector::new(Arc::new(bus.clone()), Arc::new(SimSerialBus::new()), p);
    c.stage_timeout = Duration::from_secs(2);
    c
}

fn run(bus: &SimUsbBus, r: &Run, opts: &Options, p: &mut dyn ProgressSink) -> Result<Report, FastbootError> {
    boot(&mut conn(bus, p), &r.plan, &r.target, opts)
}

fn keys(r: &Report) -> Vec<String> {
    r.facts().into_iter().map(|f| f.0).collect()
}

fn fact(r: &Report, k: &str) -> String {
    r.facts().into_iter().find(|f| f.0 == k).map(|f| f.1).unwrap_or_else(|| panic!("no fact {k}"))
}

#[test]
fn k1_rom_then_fsbl_then_uboot_at_its_own_port_path() {
    let bus = SimUsbBus::new();
    // Another K1 board in download mode on another port: never touched.
    let other = bus.attach(FastbootDevice::new(Soc::K1, "1-1"));
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "3-2").with_next_stages(1));
    let r = k1_run(190_000, Some(1_936_000), true);
    let mut p = CollectProgress::default();
    let mut c = conn(&bus, &mut p);
    c.selector = Some(Selector::UsbPath("3-2".into()));
    let report = boot(&mut c, &r.plan, &r.target, &Options::default()).unwrap();

    assert_eq!(keys(&report), ["boot ROM", "fsbl", "fsbl came back", "next image", "u-boot"]);
    assert_eq!(fact(&report, "boot ROM"), "K1 at USB 3-2 (361c:1001), version-brom 1.0");
    let fsbl = &r.plan.first.bytes;
    assert!(fact(&report, "fsbl").starts_with(&format!("FSBL.bin ({} bytes, sha256 ", fsbl.len())));
    assert!(fact(&report, "fsbl").ends_with(") started"));
    assert_eq!(fact(&report, "fsbl came back"), "USB 3-2 (361c:1001), address 8");
    assert!(fact(&report, "next image").starts_with("u-boot.itb (1936000 bytes"));
    assert_eq!(fact(&report, "u-boot"), "fastboot at USB 3-2 (361c:1001), address 9");
    assert_eq!(report.stages.len(), 2);

    let d = dev.lock().unwrap();
    assert_eq!(d.downloads[0].bytes, *fsbl);
    assert_eq!(d.downloads[1].bytes, r.plan.then[0].bytes);
    assert_eq!(d.stage(), Stage::UBoot);
    let cmds: Vec<(Stage, &str)> = d.log.iter().map(|(s, c)| (*s, c.as_str())).collect();
    // 190000 bytes of SPL padded to 32, after the 4 KiB header, with the 256-byte signature.
    assert_eq!(fsbl.len(), 0x1000 + 190_016 + 0x100);
    assert_eq!(
        cmds,
        [
            (Stage::Rom, "getvar:version-brom"),
            (Stage::Rom, "getvar:version"),
            (Stage::Rom, "getvar:max-download-size"),
            (Stage::Rom, "download:0002f740"),
            (Stage::Rom, "continue"),
            (Stage::Fsbl, "getvar:max-download-size"),
            (Stage::Fsbl, "download:001d8a80"),
            (Stage::Fsbl, "continue"),
        ]
    );
    assert!(d.verdict().started(), "{:?}", d.verdict());
    assert!(other.lock().unwrap().log.is_empty(), "the other board was touched");
    assert_eq!(p.bytes(), (fsbl.len() + 1_936_000) as u64);
}

/// The vendor RAM-boot script (k1x-deb2 `fastboot_load.sh`) stages FSBL,
/// then u-boot-opensbi.itb for the FSBL, then uImage.itb, which vendor
/// U-Boot runs when it leaves fastboot on `continue` (review §5).
#[test]
fn k1_then_twice_fsbl_uboot_then_the_kernel() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "3-2").with_next_stages(2));
    let dir = tempfile::tempdir().unwrap();
    let image = Some(file(dir.path(), "FSBL.bin", &k1::build_fsbl(&noise(5000, 1))));
    let then = vec![
        file(dir.path(), "u-boot-opensbi.itb", &fit(300_000)),
        file(dir.path(), "uImage.itb", &fit(900_001)),
    ];
    let target = target("k1");
    let inputs = Inputs {
        image,
        then,
        await_next: true,
        stage_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let r = Run { plan: plan(&inputs, &target).unwrap(), _dir: dir, target };
    let mut p = CollectProgress::default();
    let report = run(&bus, &r, &Options::default(), &mut p).unwrap();
    assert_eq!(keys(&report), ["boot ROM", "fsbl", "fsbl came back", "next image", "u-boot", "u-boot image"]);
    assert!(fact(&report, "u-boot image").starts_with("uImage.itb (900001 bytes"), "{report:?}");
    assert!(fact(&report, "u-boot image").ends_with("staged to vendor U-Boot and started"), "{report:?}");
    let d = dev.lock().unwrap();
    let started: Vec<&str> = d.started.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(started, ["FSBL", "u-boot.itb", "uImage.itb"]);
    assert_eq!(d.downloads[2].bytes, r.plan.then[1].bytes);
    assert!(d.verdict().started(), "{:?}", d.verdict());
}

/// Review F4: vendor U-Boot on the TH1520 rewrites its environment and the
/// GPT before its fastboot appears; the default wait must outlast that.
#[test]
fn th1520_waits_30_s_for_a_slow_vendor_uboot_by_default() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::Th1520, "2-1").with_fault(Some(Fault::SlowUboot)));
    let dir = tempfile::tempdir().unwrap();
    let image = Some(file(dir.path(), "u-boot-with-spl.bin", &noise(4096, 5)));
    let target = target("th1520");
    let r = Run {
        plan: plan(&Inputs { image, await_next: true, ..Default::default() }, &target).unwrap(),
        _dir: dir,
        target,
    };
    assert_eq!(r.plan.next_wait, Duration::from_secs(30));
    let mut p = CollectProgress::default();
    let t = std::time::Instant::now();
    let report = run(&bus, &r, &Options::default(), &mut p).unwrap();
    assert!(t.elapsed() >= racklet_sim::fastboot::SLOW_UBOOT, "U-Boot came up early: the fault did not hold");
    assert_eq!(keys(&report), ["boot ROM", "ram image", "u-boot"]);
    assert!(dev.lock().unwrap().verdict().started());
}

#[test]
fn two_k1_roms_without_a_selector_are_ambiguous() {
    let bus = SimUsbBus::new();
    bus.attach(FastbootDevice::new(Soc::K1, "1-1"));
    bus.attach(FastbootDevice::new(Soc::K1, "1-2"));
    let e = run(&bus, &k1_run(100, None, true), &Options::default(), &mut CollectProgress::default())
        .unwrap_err();
    assert_eq!(e.class(), FailureClass::Ambiguous, "{e}");
    assert!(e.to_string().contains("--port 1-2"), "{e}");
}

#[test]
fn k1_fsbl_alone_and_without_waiting() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "1-1"));
    let report =
        run(&bus, &k1_run(1000, None, true), &Options::default(), &mut CollectProgress::default()).unwrap();
    assert_eq!(keys(&report), ["boot ROM", "fsbl", "fsbl came back"]);
    assert_eq!(dev.lock().unwrap().stage(), Stage::Fsbl);

    // --stage-timeout 0: the run ends once the ROM took the start; the
    // board still re-enumerates on its own.
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "1-1").with_fault(Some(Fault::NoReenumerate)));
    let report =
        run(&bus, &k1_run(1000, None, false), &Options::default(), &mut CollectProgress::default()).unwrap();
    assert_eq!(keys(&report), ["boot ROM", "fsbl", "next stage"]);
    assert_eq!(
        fact(&report, "next stage"),
        "not awaited: a payload other than vendor U-Boot does not come back (--follow waits for it)"
    );
    assert!(dev.lock().unwrap().verdict().started());
}

#[test]
fn th1520_ram_then_uboot() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::Th1520, "2-1.4"));
    let r = th1520_run(1_030_952, true);
    let mut p = CollectProgress::default();
    let report = run(&bus, &r, &Options::default(), &mut p).unwrap();
    assert_eq!(keys(&report), ["boot ROM", "ram image", "u-boot"]);
    assert_eq!(fact(&report, "boot ROM"), "TH1520 at USB 2-1.4 (2345:7654)");
    assert!(fact(&report, "ram image").starts_with("u-boot-with-spl.bin (1030952 bytes, sha256 "));
    assert!(fact(&report, "ram image").ends_with(") written to ram and started"));
    assert_eq!(fact(&report, "u-boot"), "fastboot at USB 2-1.4 (1234:8888), address 8");
    assert!(p.messages().iter().any(|m| m.contains("rewrites the GPT")), "{:?}", p.messages());
    let d = dev.lock().unwrap();
    let cmds: Vec<&str> = d.log.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(cmds, ["getvar:max-download-size", "download:000fbb28", "flash:ram", "reboot"]);
    assert_eq!(d.flashed, vec![(Stage::Rom, "ram".to_string(), 1_030_952)]);
    assert_eq!(d.downloads[0].bytes, r.plan.first.bytes);
    assert!(d.verdict().started());
}

/// The error and its causes, as the CLI prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out = format!("{out}: {c}");
        cause = c.source();
    }
    out
}

/// Every fault of the virtual ROMs ends in its class, with what the device
/// said; nothing claims success.
#[test]
fn every_fault_ends_in_its_class() {
    let cases = [
        (Fault::FailDownload, FailureClass::Rejected, "download refused"),
        (Fault::Silent, FailureClass::Timeout, "timed out"),
        (Fault::BadStatus, FailureClass::Io, "no known status"),
        (Fault::LongResponse, FailureClass::Io, "at most 256 bytes"),
        (Fault::DataSize, FailureClass::Rejected, "offered to take"),
        (Fault::Unplug, FailureClass::Disconnected, "disconnected"),
        (Fault::FailBoot, FailureClass::Rejected, "injected fault"),
        (Fault::NoReenumerate, FailureClass::Timeout, "at USB port 1-1 timed out after 300ms"),
    ];
    let opts = Options {
        timeouts: Timeouts { command: Duration::from_millis(200), ..Default::default() },
        ..Default::default()
    };
    for (soc, r) in [(Soc::K1, k1_run(4000, None, true)), (Soc::Th1520, th1520_run(70_000, true))] {
        for (fault, class, needle) in cases {
            let bus = SimUsbBus::new();
            bus.attach(FastbootDevice::new(soc, "1-1").with_fault(Some(fault)));
            let mut p = CollectProgress::default();
            let mut c = conn(&bus, &mut p);
            // --stage-timeout 300ms
            let plan = Plan { next_wait: Duration::from_millis(300), ..r.plan.clone() };
            let e = boot(&mut c, &plan, &r.target, &opts).unwrap_err();
            let text = chain(&e);
            assert_eq!(e.class(), class, "{soc:?} {fault:?}: {text}");
            assert!(text.contains(needle), "{soc:?} {fault:?}: {text}");
        }
    }
}

#[test]
fn a_k1_board_past_its_rom_is_refused_unless_forced() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "1-1"));
    run(&bus, &k1_run(1000, Some(500), true), &Options::default(), &mut CollectProgress::default()).unwrap();
    assert_eq!(dev.lock().unwrap().stage(), Stage::UBoot);

    // The board is in vendor U-Boot now, with the ROM's VID:PID.
    let r = k1_run(1000, None, false);
    let e = run(&bus, &r, &Options::default(), &mut CollectProgress::default()).unwrap_err();
    assert!(
        matches!(&e, FastbootError::WrongStage { version, serial: None, .. } if version.as_deref() == Some("0.4")),
        "{e}"
    );
    assert_eq!(e.class(), FailureClass::NotFound);
    assert!(e.hint().unwrap().contains("hold FDL"), "{:?}", e.hint());
    assert_eq!(dev.lock().unwrap().downloads.len(), 2, "nothing was sent to U-Boot");

    // --force: no identification, the image goes to whatever answers.
    let opts = Options { force: true, ..Default::default() };
    let report = run(&bus, &r, &opts, &mut CollectProgress::default()).unwrap();
    assert!(!report.identified);
    assert_eq!(keys(&report), ["fsbl", "next stage"]);
    assert_eq!(dev.lock().unwrap().downloads.len(), 3);
}

#[test]
fn no_board_is_not_found_and_a_cancel_stops_before_the_download() {
    let r = k1_run(1000, None, true);
    let e = run(&SimUsbBus::new(), &r, &Options::default(), &mut CollectProgress::default()).unwrap_err();
    assert!(matches!(&e, FastbootError::Link(LinkError::NotFound { .. })), "{e}");
    assert!(e.to_string().contains("K1 boot ROM (361c:1001)"), "{e}");
    assert!(e.hint().is_some());

    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "1-1"));
    let e = run(&bus, &r, &Options::default(), &mut CancelAfter::new(0)).unwrap_err();
    assert_eq!(e.class(), FailureClass::Interrupted, "{e}");
    assert!(dev.lock().unwrap().downloads.is_empty());
}

/// The verdict comes from the sim's registry: with `--then` the board must
/// have started u-boot.itb too, not only the FSBL.
#[test]
fn the_registry_board_judges_the_stages_the_user_sends() {
    for (then, started) in [(Some(600), true), (None, false)] {
        let bus = SimUsbBus::new();
        let scenario = Scenario { port_path: "1-1".into(), next_stages: 1, ..Default::default() };
        let mut rom = models::attach("k1", &scenario, &bus, &SimSerialBus::new()).unwrap();
        let r = k1_run(1000, then, true);
        run(&bus, &r, &Options::default(), &mut CollectProgress::default()).unwrap();
        let v = rom.verdict();
        assert_eq!(v.started(), started, "{v:?}");
    }
    let bus = SimUsbBus::new();
    let scenario =
        Scenario { port_path: "1-1".into(), fault: Some("fail-boot".into()), ..Default::default() };
    let mut rom = models::attach("th1520", &scenario, &bus, &SimSerialBus::new()).unwrap();
    let e = run(&bus, &th1520_run(5000, true), &Options::default(), &mut CollectProgress::default());
    assert!(e.is_err());
    assert!(!rom.verdict().started());
    let unknown = Scenario { fault: Some("nope".into()), ..Scenario::at("1-1") };
    let e = models::attach("k1", &unknown, &bus, &SimSerialBus::new()).err().unwrap();
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.to_string().contains("silent"), "{e}");
}
