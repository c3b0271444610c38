//! The whole maskrom flow in-process: `plan` + `boot` against racklet-sim's
//! virtual ROM (its own chip models, CRC and RC4) on a simulated USB bus,
//! through a Connector: the wire, re-enumeration by port path, the usbplug,
//! faults, Ctrl-C.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Run, Setup, control_outs, file, pattern, rk3568_loader, rkboot, run, target, usbplug};
use racklet_link::testing::{CancelAfter, CollectProgress};
use racklet_link::{Classify, Connector, FailureClass, LinkError, Selector};
use racklet_rockchip::report::{Flash, Next, Source};
use racklet_rockchip::{Inputs, Options, RockchipError};
use racklet_sim::crc::crc16_ccitt_false;
use racklet_sim::models::Scenario;
use racklet_sim::rockchip::{RockchipFault, RockchipRom, chip_model, rc4_xor};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

fn facts(r: &Run) -> String {
    let report = r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    report.facts().iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

fn raw(d: &std::path::Path, ddr: &[u8], plug: Option<&[u8]>) -> Inputs {
    Inputs {
        dram: Some(file(d, "ddr.bin", ddr)),
        bin: plug.map(|p| file(d, "plug.bin", p)),
        ..Default::default()
    }
}

#[test]
fn a_loader_runs_and_the_usbplug_is_followed_to_its_new_address() {
    let d = tempfile::tempdir().unwrap();
    let loader = rk3568_loader();
    let r = run(
        &Setup::default(),
        &Inputs { bin: Some(file(d.path(), "loader.bin", &loader)), ..Default::default() },
    );
    assert!(r.verdict.started() && r.verdict.text().contains("usbplug started"), "{:?}", r.verdict);
    let report = r.result.as_ref().unwrap();
    let Next::Usbplug(u) = &report.next else { panic!("{:?}", report.next) };
    assert_eq!((u.chip_code.as_str(), u.flash_id.as_str(), u.other_chip), ("3568", "EMMC", false));
    assert!(matches!(u.flash, Flash::Info { sectors, .. } if sectors > 0));
    // Same port path, a new bus address.
    assert_eq!(u.device.port, "1-1");
    assert_ne!(u.device.address, report.maskrom.address);
    // Entries as stored: 471 entries (UsbHead, DDR) then 472, each with its
    // CRC-16/CCITT-FALSE (the sim's reference) high byte first.
    let outs = control_outs(&r.transcript);
    let idx: Vec<u64> = outs.iter().map(|(i, _)| *i).collect();
    assert_eq!(idx.iter().filter(|&&i| i == 0x471).count(), 1 + 2); // 2048 B; 6144 B → 4096 + 2050
    assert!(idx.windows(2).all(|w| w[0] <= w[1]), "{idx:x?}");
    let mut first = pattern(2048, 1);
    first.extend_from_slice(&crc16_ccitt_false(&first).to_be_bytes());
    assert_eq!(outs[0], (0x471, first));
    let f = facts(&r);
    for s in [
        "chip: RK3568 (USB 2207:350a, RC4 off)",
        "entries sent as stored",
        "472 rk356x_usbplug_v1 (0x472, 10240 B, 3 transfers",
        "rockusb: the usbplug answers at USB port 1-1",
        "chip info: 3568\n",
        "flash id: EMMC",
        "flash: 16777216 sectors (8.0 GiB), block 1024 sectors",
    ] {
        assert!(f.contains(s), "no {s:?} in\n{f}");
    }
    assert!(r.messages.iter().any(|m| m == "waiting for the usbplug at USB port 1-1..."), "{:?}", r.messages);
    assert!(
        r.messages[0]
            .starts_with("RK3568 maskrom device 2207:350a at USB port 1-1 (address 7, bcdUSB 0x0200)"),
        "{:?}",
        r.messages
    );
}

#[test]
fn raw_blobs_take_rc4_as_the_chip_table_says() {
    let d = tempfile::tempdir().unwrap();
    let r = run(&Setup::default(), &raw(d.path(), &pattern(4094, 5), Some(&usbplug(8191, 6))));
    assert!(r.verdict.started(), "{:?}", r.verdict);
    assert!(facts(&r).contains("rc4: off"));
    // RK3399 takes RC4'd raw blobs, and its DDR blob must carry the RK33 tag
    // (the sim checks it after removing RC4 with its own key schedule).
    let mut ddr = pattern(4095, 7);
    ddr[..4].copy_from_slice(b"RK33");
    let rockpro64 =
        Setup { board: "rockpro64", stage_timeout: Duration::from_millis(300), ..Setup::default() };
    let r = run(&rockpro64, &raw(d.path(), &ddr, Some(&usbplug(8191, 6))));
    assert!(r.verdict.started(), "{:?}", r.verdict);
    assert!(facts(&r).contains("rc4: on"));
    let (_, wire) = &control_outs(&r.transcript)[0];
    let mut plain = wire[..4].to_vec();
    rc4_xor(&mut plain);
    assert_eq!(plain, b"RK33");
    // RC4 forced off on a chip that wants it: the DDR blob never returns, so
    // the usbplug's first transfer times out (the real symptom, xrock #7).
    let inputs = Inputs { rc4: Some(false), ..raw(d.path(), &ddr, Some(&usbplug(8191, 6))) };
    let r = run(&rockpro64, &inputs);
    let e = r.result.unwrap_err();
    assert_eq!(e.class(), FailureClass::Timeout, "{e}");
    assert!(!r.verdict.started() && r.verdict.text().contains("RK33 tag"), "{:?}", r.verdict);
}

#[test]
fn dram_init_alone_reports_that_no_usbplug_was_sent() {
    let d = tempfile::tempdir().unwrap();
    let r = run(&Setup::default(), &raw(d.path(), &pattern(3000, 1), None));
    assert!(matches!(r.result.as_ref().unwrap().next, Next::DramOnly));
    assert!(facts(&r).contains("result: DRAM initialised; no usbplug stage was sent"));
    assert!(r.verdict.text().contains("no usbplug sent"), "{:?}", r.verdict);
}

#[test]
fn the_worked_example_goes_on_the_wire() {
    let d = tempfile::tempdir().unwrap();
    let r = run(&Setup::default(), &raw(d.path(), &[0x00, 0x01], None));
    let c = r.transcript.iter().find(|v| v["t"] == "ctrl_out").expect("a control transfer");
    // Sheet §1.2: 40 0C 0000 0471 0004 + 00 01 0d 2e.
    assert_eq!(
        (c["rt"].as_u64(), c["req"].as_u64(), c["val"].as_u64(), c["idx"].as_u64()),
        (Some(0x40), Some(0x0c), Some(0), Some(0x471))
    );
    assert_eq!(c["data"], "00010d2e");
    // RC4 on (RK3399): 6e 27 61 af. That blob has no RK33 tag: the client
    // is done, but the ROM never came back from it.
    let r = run(&Setup { board: "rockpro64", ..Setup::default() }, &raw(d.path(), &[0x00, 0x01], None));
    assert_eq!(control_outs(&r.transcript)[0].1, [0x6e, 0x27, 0x61, 0xaf]);
    assert!(r.result.is_ok());
    assert!(!r.verdict.started() && r.verdict.text().contains("does not start with the RK33 tag"));
}

#[test]
fn zero_crc_on_a_chip_that_accepts_it() {
    let d = tempfile::tempdir().unwrap();
    let inputs = Inputs { zero_crc: true, ..raw(d.path(), &pattern(5000, 1), Some(&usbplug(9000, 2))) };
    let r = run(&Setup { board: "test-3576", ..Setup::default() }, &inputs);
    assert!(r.verdict.started(), "{:?}", r.verdict);
    assert!(facts(&r).contains("crc 0000"));
    // 5000 bytes: [4096, 906]; the last 0x471 transfer ends in the zero CRC.
    let outs = control_outs(&r.transcript);
    let last471 = &outs.iter().rfind(|(i, _)| *i == 0x471).unwrap().1;
    assert_eq!(last471.len(), 5000 - 4096 + 2);
    assert!(last471.ends_with(&[0, 0]));
}

#[test]
fn every_fault_ends_in_its_class_and_never_in_a_report() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let cases = [
        ("corrupt", FailureClass::Rejected, "rejected by the ROM"),
        ("reject-usbplug", FailureClass::Rejected, "rejected by the ROM"),
        ("no-return", FailureClass::Timeout, "the usbplug did not appear at USB port 1-1 within 300ms"),
        ("dead-usbplug", FailureClass::Timeout, "does not answer TEST UNIT READY"),
        ("bad-csw", FailureClass::Io, "bad command status wrapper"),
        ("already-loader", FailureClass::Rejected, "not in maskrom"),
        ("hang", FailureClass::Timeout, "timed out"),
        ("unplug", FailureClass::Disconnected, "disconnected"),
    ];
    for (fault, class, needle) in cases {
        // A usbplug that never comes back is a failure only when one must
        // come (--expect-usbplug): otherwise the stage may be a payload.
        let s = Setup {
            fault: Some(fault),
            stage_timeout: Duration::from_millis(300),
            expect_usbplug: true,
            ..Setup::default()
        };
        let r = run(&s, &Inputs { bin: Some(l.clone()), ..Default::default() });
        let e = r.result.as_ref().err().unwrap_or_else(|| panic!("{fault}: a report"));
        assert_eq!(e.class(), class, "{fault}: {e}");
        assert!(e.to_string().contains(needle), "{fault}: {e}");
    }
    // Without --expect-usbplug a usbplug that never comes back ends the run
    // as a payload would, with a warning: its image carries rockusb.
    let s = Setup { fault: Some("no-return"), stage_timeout: Duration::from_millis(300), ..Setup::default() };
    let r = run(&s, &Inputs { bin: Some(l.clone()), ..Default::default() });
    let f = facts(&r);
    assert!(f.contains("no rockusb loader answered") && f.contains("looks like a usbplug"), "{f}");
    assert!(f.contains("--expect-usbplug"), "{f}");
    assert!(!r.verdict.started(), "{:?}", r.verdict);
    // The hints keep the fix apart.
    let s = Setup { fault: Some("already-loader"), ..Setup::default() };
    let e = run(&s, &Inputs { bin: Some(l.clone()), ..Default::default() }).result.unwrap_err();
    assert!(matches!(e, RockchipError::NotMaskrom { .. }) && e.hint().unwrap().contains("--force"), "{e}");
    // --force sends anyway, and the usbplug stalls what is not rockusb.
    let s = Setup { fault: Some("already-loader"), force: true, ..Setup::default() };
    let e = run(&s, &Inputs { bin: Some(l), ..Default::default() }).result.unwrap_err();
    assert!(matches!(e, RockchipError::Rejected { .. }), "{e}");
}

#[test]
fn the_usbplug_is_followed_by_port_path_not_by_ids() {
    let d = tempfile::tempdir().unwrap();
    let target = target("rock-3a");
    let plan = racklet_rockchip::plan(
        &Inputs { bin: Some(file(d.path(), "loader.bin", &rk3568_loader())), ..Default::default() },
        &target,
    )
    .unwrap();
    // Two RK3568 boards with the same ids; the run is for the one at 1-2.
    let usb = SimUsbBus::new();
    let other = usb.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", RockchipFault::None));
    let mine = usb.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "1-2", RockchipFault::None));
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(usb), Arc::new(SimSerialBus::new()), &mut progress);
    conn.selector = Some(Selector::UsbPath("1-2".into()));
    let report = racklet_rockchip::boot(&mut conn, &plan, &target, &Options::default()).unwrap();
    let Next::Usbplug(u) = &report.next else { panic!("{:?}", report.next) };
    assert_eq!((report.maskrom.port.as_str(), u.device.port.as_str()), ("1-2", "1-2"));
    assert!(mine.lock().unwrap().verdict().started());
    assert!(other.lock().unwrap().received.is_empty());
    assert!(!other.lock().unwrap().usbplug_running());
}

#[test]
fn no_board_is_not_found_and_two_are_ambiguous() {
    let d = tempfile::tempdir().unwrap();
    let target = target("rock-3a");
    let plan = racklet_rockchip::plan(&raw(d.path(), &pattern(100, 1), None), &target).unwrap();
    let usb = SimUsbBus::new();
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(usb.clone()), Arc::new(SimSerialBus::new()), &mut progress);
    let e = racklet_rockchip::boot(&mut conn, &plan, &target, &Options::default()).unwrap_err();
    assert!(matches!(e, RockchipError::Link(LinkError::NotFound { .. })), "{e}");
    assert_eq!(e.class(), FailureClass::NotFound);
    assert!(e.hint().unwrap().contains("--wait"));
    for port in ["1-1", "1-2"] {
        racklet_sim::models::attach("rk3568", &Scenario::at(port), &usb, &SimSerialBus::new()).unwrap();
    }
    let e = racklet_rockchip::boot(&mut conn, &plan, &target, &Options::default()).unwrap_err();
    assert_eq!(e.class(), FailureClass::Ambiguous, "{e}");
}

#[test]
fn ctrl_c_stops_between_transfers() {
    let d = tempfile::tempdir().unwrap();
    let target = target("rock-3a");
    let plan = racklet_rockchip::plan(&raw(d.path(), &pattern(20000, 1), None), &target).unwrap();
    let usb = SimUsbBus::new();
    let rom = usb.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", RockchipFault::None));
    // Cancelled after the device message, the "DRAM init" message, the
    // stage start and two transfers.
    let mut cancel = CancelAfter::new(5);
    let mut conn = Connector::new(Arc::new(usb), Arc::new(SimSerialBus::new()), &mut cancel);
    let e = racklet_rockchip::boot(&mut conn, &plan, &target, &Options::default()).unwrap_err();
    assert_eq!(e.class(), FailureClass::Interrupted, "{e}");
    let rom = rom.lock().unwrap();
    assert!(rom.received.is_empty() && !rom.verdict().started(), "{:?}", rom.verdict());
}

#[test]
fn a_report_serialises_with_its_typed_facts() {
    let d = tempfile::tempdir().unwrap();
    let r = run(&Setup::default(), &raw(d.path(), &pattern(100, 1), Some(&usbplug(200, 2))));
    let report = r.result.unwrap();
    assert!(matches!(&report.source, Source::Raw { rc4: false, usbplug: Some(_), .. }));
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["maskrom"]["id"]["vid"], 0x2207);
    assert_eq!(v["stages"][1]["index"], 0x472);
    assert_eq!(v["next"]["kind"], "usbplug");
    assert_eq!(v["next"]["chip_code"], "3568");
}

/// rkdeveloptool's `DownloadBoot` sends an entry only `if (dwSize > 0)`
/// (RKDevice.cpp:522, 554); a zero-size entry would be a 2-byte stage `ff ff`
/// (the CRC of nothing) that the ROM would run.
#[test]
fn zero_size_loader_entries_are_skipped_as_rkdeveloptool_does() {
    let d = tempfile::tempdir().unwrap();
    let loader = rkboot(
        b"LDR ",
        b"3568",
        [0, 1, 1, 0],
        &[
            (1, "UsbHead", pattern(2048, 1), 1),
            (1, "empty471", vec![], 0),
            (1, "rk3568_ddr_1560MHz_v", pattern(6144, 2), 1),
            (2, "empty472", vec![], 0),
            (2, "rk356x_usbplug_v1", usbplug(10240, 3), 0),
        ],
    );
    let r =
        run(&Setup::default(), &Inputs { bin: Some(file(d.path(), "l.bin", &loader)), ..Default::default() });
    let report = r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(r.verdict.started(), "{:?}", r.verdict);
    let outs = control_outs(&r.transcript);
    assert!(outs.iter().all(|(_, data)| data.len() != 2), "an empty entry went out as a stage");
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["471 UsbHead", "471 rk3568_ddr_1560MHz_v", "472 rk356x_usbplug_v1"]);
    for e in ["empty471", "empty472"] {
        assert!(r.messages.iter().any(|m| m.contains(e) && m.contains("skipped")), "{:?}", r.messages);
    }
}

/// What real usbplugs answer to READ CHIP INFO (U-Boot `chip_info.c`): the
/// RK3566 one is built with CONFIG_ROCKCHIP_RK3568 and says "3568", which is
/// the rk3566 board's chip; RK3562/RK3576/RK3528/RK3506 have no value there
/// and answer zeros, which is no chip code at all rather than a foreign one.
#[test]
fn chip_codes_as_real_usbplugs_report_them() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let r = run(
        &Setup { board: "quartz64-a", ..Setup::default() },
        &Inputs { bin: Some(l), ..Default::default() },
    );
    let f = facts(&r);
    assert!(f.contains("chip info: 3568\n"), "{f}");
    let inputs = raw(d.path(), &pattern(5000, 1), Some(&usbplug(9000, 2)));
    let r = run(&Setup { board: "test-3576", ..Setup::default() }, &inputs);
    let f = facts(&r);
    assert!(f.contains("chip info: none reported (zero chip code"), "{f}");
    let Next::Usbplug(u) = &r.result.as_ref().unwrap().next else { panic!() };
    assert!(!u.other_chip);
}

/// TEST UNIT READY as rkdeveloptool's `TestDevice` does it (RKDevice.cpp:
/// 356-410, RKComm.cpp:645-690): CSW status 1 is "not ready", polled again
/// after 1 s for as long as it lasts; a CSW with a stale tag is skipped
/// until the matching one comes (`RKU_ClearBuffer`, RKComm.cpp:239-264, at
/// most 16 KiB); any other error is retried, 3 tries in all.
#[test]
fn test_unit_ready_polls_a_loader_that_is_not_ready_yet() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let r = run(
        &Setup { fault: Some("not-ready"), ..Setup::default() },
        &Inputs { bin: Some(l), ..Default::default() },
    );
    let report = r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(report.next, Next::Usbplug(_)), "{:?}", report.next);
    assert!(r.verdict.started(), "{:?}", r.verdict);
    assert!(r.messages.iter().any(|m| m.contains("not ready")), "{:?}", r.messages);
}

/// "Not ready" for longer than the stage timeout is a timeout, not a
/// refusal (the usbplug is there, it is just not ready).
#[test]
fn a_loader_not_ready_until_the_stage_timeout_is_a_timeout() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    // Two "not ready" answers 1 s apart cannot both fit in 300 ms.
    let s = Setup { fault: Some("not-ready"), stage_timeout: Duration::from_millis(300), ..Setup::default() };
    let e = run(&s, &Inputs { bin: Some(l), ..Default::default() }).result.unwrap_err();
    assert!(matches!(e, RockchipError::UsbplugNotReady { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
    assert!(e.hint().unwrap().contains("--stage-timeout"), "{e}");
}

#[test]
fn test_unit_ready_resyncs_on_a_late_csw() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let r = run(
        &Setup { fault: Some("late-csw"), ..Setup::default() },
        &Inputs { bin: Some(l), ..Default::default() },
    );
    let report = r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let Next::Usbplug(u) = &report.next else { panic!("{:?}", report.next) };
    assert_eq!(u.chip_code, "3568");
    assert!(r.verdict.started(), "{:?}", r.verdict);
}

/// A 0x472 stage is not always a usbplug: mainline U-Boot's
/// `u-boot-rockchip-usb472.bin`, an SPL or a bare-metal program run there
/// and never speak rockusb; xrock (main.c:95-98) and rkdeveloptool
/// (RKDevice.cpp:510-579) send it and are done. No rockusb loader at the
/// port is then the normal end, unless `--expect-usbplug` asks for one.
#[test]
fn a_0x472_payload_that_is_not_a_usbplug_is_sent_and_started() {
    let d = tempfile::tempdir().unwrap();
    let inputs = raw(d.path(), &pattern(3000, 1), Some(&pattern(9000, 2)));
    let r = run(&Setup::default(), &inputs);
    let report = r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(report.next, Next::Payload { .. }), "{:?}", report.next);
    assert!(r.verdict.started() && r.verdict.text().contains("0x472 payload started"), "{:?}", r.verdict);
    let f = facts(&r);
    assert!(f.contains("no rockusb loader answered at USB port 1-1"), "{f}");
    assert!(f.contains("normal for a payload"), "{f}");
    assert!(!f.contains("looks like a usbplug"), "{f}");
    assert!(!f.contains("chip info"), "{f}");
    // --expect-usbplug: the same run is a timeout.
    let s = Setup { expect_usbplug: true, stage_timeout: Duration::from_millis(300), ..Setup::default() };
    let r = run(&s, &inputs);
    let e = r.result.unwrap_err();
    assert!(matches!(e, RockchipError::UsbplugMissing { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
    // A real usbplug still reports its chip info.
    let r = run(&Setup::default(), &raw(d.path(), &pattern(3000, 1), Some(&usbplug(9000, 2))));
    assert!(matches!(r.result.as_ref().unwrap().next, Next::Usbplug(_)));
    assert!(facts(&r).contains("chip info: 3568"));
}
