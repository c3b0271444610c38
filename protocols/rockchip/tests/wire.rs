//! Wire tests of the maskrom download, against expectations written out
//! from the fact sheet's rules (not from the encoder), and against the
//! virtual ROM in racklet-sim.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{pattern, usbplug};
use racklet_link::testing::{CancelAfter, CollectProgress, ScriptedUsb, Transfer};
use racklet_link::{
    Classify, Connector, ControlSetup, FailureClass, LinkError, NoProgress, UsbInfo, UsbLink,
};
use racklet_rockchip::frame::FrameOptions;
use racklet_rockchip::maskrom::{Timeouts, download_stage};
use racklet_rockchip::{Readiness, RockchipError, Rockusb};
use racklet_sim::crc::crc16_ccitt_false;
use racklet_sim::rockchip::{RockchipFault, RockchipRom, chip_model, rc4_xor};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::{SimUsbBus, SimUsbLink};

// ---- The sheet's rules, with the sim's reference RC4 and CRC. ----

/// Sheet §1.2 steps 1-5: the data stage of every control transfer.
fn expected(payload: &[u8], rc4: bool) -> Vec<Vec<u8>> {
    let n = payload.len();
    let mut body = payload.to_vec();
    if rc4 {
        rc4_xor(&mut body);
    }
    if n % 4096 == 4095 {
        body.push(0);
    }
    let c = crc16_ccitt_false(&body);
    body.push((c >> 8) as u8);
    body.push(c as u8);
    let mut t: Vec<Vec<u8>> = body.chunks(4096).map(|c| c.to_vec()).collect();
    if n % 4096 == 4094 {
        t.push(vec![0]);
    }
    t
}

/// The data stage of every control OUT a scripted link saw.
fn sent(link: &ScriptedUsb) -> Vec<Vec<u8>> {
    link.sent().iter().map(|d| d.to_vec()).collect()
}

/// A scripted link that also keeps the timeout of each transfer.
#[derive(Default)]
struct Timed {
    inner: ScriptedUsb,
    timeouts: Vec<Duration>,
}

impl UsbLink for Timed {
    fn info(&self) -> &UsbInfo {
        self.inner.info()
    }
    fn control_out(&mut self, s: ControlSetup, d: &[u8], t: Duration) -> Result<(), LinkError> {
        self.timeouts.push(t);
        self.inner.control_out(s, d, t)
    }
    fn control_in(&mut self, s: ControlSetup, len: u16, t: Duration) -> Result<Vec<u8>, LinkError> {
        self.inner.control_in(s, len, t)
    }
    fn bulk_out(&mut self, ep: u8, d: &[u8], t: Duration) -> Result<(), LinkError> {
        self.inner.bulk_out(ep, d, t)
    }
    fn bulk_in(&mut self, ep: u8, len: usize, t: Duration) -> Result<Vec<u8>, LinkError> {
        self.inner.bulk_in(ep, len, t)
    }
}

const SIZES: &[usize] = &[0, 1, 2, 4093, 4094, 4095, 4096, 4097, 8190, 8191, 8192, 10000];

#[test]
fn edge_sizes_match_the_sheet_rules_and_table() {
    // wLength of each transfer, from the sheet's edge table (§1.2) plus 2 and 8192.
    let table: &[(usize, &[usize])] = &[
        (0, &[2]),
        (1, &[3]),
        (2, &[4]),
        (4093, &[4095]),
        (4094, &[4096, 1]),
        (4095, &[4096, 2]),
        (4096, &[4096, 2]),
        (4097, &[4096, 3]),
        (8190, &[4096, 4096, 1]),
        (8191, &[4096, 4096, 2]),
        (8192, &[4096, 4096, 2]),
        (10000, &[4096, 4096, 1810]),
    ];
    for &(n, lens) in table {
        for rc4 in [false, true] {
            let payload = pattern(n, n as u32 + 7);
            let mut link = ScriptedUsb::new();
            let r = download_stage(
                &mut link,
                0x471,
                "ddr",
                &payload,
                FrameOptions { rc4, zero_crc: false },
                &Timeouts::default(),
                &mut NoProgress,
            )
            .unwrap();
            let got = sent(&link);
            let got_lens: Vec<usize> = got.iter().map(|d| d.len()).collect();
            assert_eq!(got_lens, lens, "n={n} rc4={rc4}");
            assert_eq!(got, expected(&payload, rc4), "n={n} rc4={rc4}");
            assert_eq!(r.transfers, lens.len());
            for t in &link.log {
                let Transfer::ControlOut { setup: s, .. } = t else { panic!("{t:?}") };
                assert_eq!((s.request_type, s.request, s.value, s.index), (0x40, 0x0c, 0, 0x471));
            }
            // The whole stage (data + CRC, and the trailer) CRCs to zero.
            let all: Vec<u8> = got.concat();
            assert_eq!(crc16_ccitt_false(&all), 0, "n={n}");
        }
    }
}

#[test]
fn worked_examples_on_the_wire() {
    for (payload, rc4, wire) in [
        (&[0u8, 1][..], false, &[0x00u8, 0x01, 0x0d, 0x2e][..]),
        (&[0, 1], true, &[0x6e, 0x27, 0x61, 0xaf]),
        (&[0], false, &[0x00, 0xe1, 0xf0]),
        (&[], false, &[0xff, 0xff]),
    ] {
        let mut link = ScriptedUsb::new();
        download_stage(
            &mut link,
            0x472,
            "x",
            payload,
            FrameOptions { rc4, zero_crc: false },
            &Timeouts::default(),
            &mut NoProgress,
        )
        .unwrap();
        assert_eq!(sent(&link), [wire]);
        assert!(matches!(&link.log[0], Transfer::ControlOut { setup, .. } if setup.index == 0x472));
    }
}

#[test]
fn zero_crc_sends_zeros_in_the_crc_field() {
    let mut link = ScriptedUsb::new();
    let p = pattern(4094, 3);
    download_stage(
        &mut link,
        0x471,
        "ddr",
        &p,
        FrameOptions { rc4: false, zero_crc: true },
        &Timeouts::default(),
        &mut NoProgress,
    )
    .unwrap();
    let sent = sent(&link);
    assert_eq!(&sent[0][4094..], &[0, 0]);
    assert_eq!(sent[1], vec![0]);
}

#[test]
fn last_transfer_gets_the_long_timeout() {
    let mut link = Timed::default();
    let t = Timeouts { transfer: Duration::from_secs(5), last: Duration::from_secs(10) };
    download_stage(&mut link, 0x471, "ddr", &pattern(10000, 1), FrameOptions::default(), &t, &mut NoProgress)
        .unwrap();
    assert_eq!(link.timeouts, [Duration::from_secs(10), Duration::from_secs(5), Duration::from_secs(10)]);
}

#[test]
fn failures_have_the_right_class() {
    let cases: [(fn() -> LinkError, FailureClass); 3] = [
        (|| LinkError::Stall { op: "x".into() }, FailureClass::Rejected),
        (|| LinkError::Timeout { op: "x".into(), after: Duration::from_secs(1) }, FailureClass::Timeout),
        (|| LinkError::Disconnected { op: "x".into() }, FailureClass::Disconnected),
    ];
    for (e, class) in cases {
        let mut link = ScriptedUsb::new().then_out(Ok(())).then_out(Err(e()));
        let err = download_stage(
            &mut link,
            0x471,
            "ddr",
            &pattern(9000, 1),
            FrameOptions::default(),
            &Timeouts::default(),
            &mut NoProgress,
        )
        .unwrap_err();
        assert_eq!(err.class(), class, "{err}");
        assert!(err.to_string().contains("transfer 2 of 3"), "{err}");
        if class == FailureClass::Rejected {
            assert!(err.to_string().contains("rejected by the ROM"), "{err}");
        }
    }
}

#[test]
fn cancel_stops_before_the_first_transfer() {
    let mut link = ScriptedUsb::new();
    let err = download_stage(
        &mut link,
        0x471,
        "ddr",
        &[1, 2, 3],
        FrameOptions::default(),
        &Timeouts::default(),
        &mut CancelAfter::new(0),
    )
    .unwrap_err();
    assert!(matches!(err, RockchipError::Interrupted));
    assert_eq!(err.class(), FailureClass::Interrupted);
    assert!(link.log.is_empty());
}

// ---- Against the virtual ROM. ----

fn rom_link(
    soc: &str,
    fault: RockchipFault,
) -> (SimUsbBus, std::sync::Arc<std::sync::Mutex<RockchipRom>>, SimUsbLink) {
    let bus = SimUsbBus::new();
    let rom = bus.attach(RockchipRom::new(chip_model(soc).unwrap(), "2-1", fault));
    let link = SimUsbLink::open(rom.clone()).unwrap();
    (bus, rom, link)
}

#[test]
fn virtual_rom_accepts_every_edge_size_with_and_without_rc4() {
    for &n in SIZES {
        for (soc, rc4) in [("rk3568", false), ("rk3399", true)] {
            if rc4 && n < 4 {
                continue; // an RC4 chip's DDR blob must carry its 4-byte tag
            }
            let mut p = pattern(n, n as u32);
            if rc4 {
                p[..4].copy_from_slice(b"RK33");
            }
            let (_bus, rom, mut link) = rom_link(soc, RockchipFault::None);
            download_stage(
                &mut link,
                0x471,
                "ddr",
                &p,
                FrameOptions { rc4, zero_crc: false },
                &Timeouts::default(),
                &mut NoProgress,
            )
            .unwrap_or_else(|e| panic!("n={n} {soc}: {e}"));
            let rom = rom.lock().unwrap();
            assert_eq!(rom.received.len(), 1, "n={n} {soc}: {:?}", rom.refusals);
            assert_eq!(rom.received[0].body.len(), n + usize::from(n % 4096 == 4095));
            assert_eq!(&rom.received[0].body[..n], &p[..], "n={n} {soc}");
        }
    }
}

#[test]
fn virtual_rom_rejects_a_corrupted_transfer() {
    let (_bus, rom, mut link) = rom_link("rk3568", RockchipFault::Corrupt);
    let err = download_stage(
        &mut link,
        0x471,
        "ddr",
        &pattern(10000, 9),
        FrameOptions::default(),
        &Timeouts::default(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert_eq!(err.class(), FailureClass::Rejected);
    assert!(err.to_string().contains("transfer 3 of 3"), "{err}");
    assert!(rom.lock().unwrap().refusals[0].contains("CRC mismatch"));
}

#[test]
fn virtual_rom_rejects_a_missing_4095_pad() {
    // Break the 4095 rule by hand: 4095 bytes + CRC gives [4096, 1]; the ROM
    // must not take the lone CRC byte for the terminator.
    let (_bus, rom, mut link) = rom_link("rk3568", RockchipFault::None);
    let mut wire = pattern(4095, 5);
    let c = crc16_ccitt_false(&wire);
    wire.extend_from_slice(&c.to_be_bytes());
    let s = ControlSetup::vendor_out(0x0c, 0, 0x471);
    link.control_out(s, &wire[..4096], Duration::from_secs(1)).unwrap();
    let e = link.control_out(s, &wire[4096..], Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, LinkError::Stall { .. }));
    assert!(rom.lock().unwrap().refusals[0].contains("not the terminator"));
}

#[test]
fn zero_crc_is_accepted_only_where_the_chip_skips_the_check() {
    for (soc, ok) in [("rk3576", true), ("rk3568", false)] {
        let (_bus, _rom, mut link) = rom_link(soc, RockchipFault::None);
        let r = download_stage(
            &mut link,
            0x471,
            "ddr",
            &pattern(5000, 2),
            FrameOptions { rc4: false, zero_crc: true },
            &Timeouts::default(),
            &mut NoProgress,
        );
        assert_eq!(r.is_ok(), ok, "{soc}: {r:?}");
    }
}

/// Follows the board from `maskrom` to its next enumeration at the same
/// port path, through a Connector, and opens it.
fn reopen(bus: &SimUsbBus, maskrom: &UsbInfo) -> Box<dyn UsbLink> {
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(bus.clone()), Arc::new(SimSerialBus::new()), &mut progress);
    let ids = [racklet_link::UsbId::new(0x2207, maskrom.pid)];
    let info = conn.follow_usb(maskrom, &ids, "the usbplug", Duration::from_secs(2)).unwrap();
    assert_eq!(info.port_path, maskrom.port_path);
    conn.open_usb(&info).unwrap()
}

#[test]
fn usbplug_answers_rockusb_after_reenumeration() {
    let (bus, rom, mut link) = rom_link("rk3568", RockchipFault::None);
    let t = Timeouts::default();
    download_stage(&mut link, 0x471, "ddr", &pattern(3000, 1), FrameOptions::default(), &t, &mut NoProgress)
        .unwrap();
    download_stage(
        &mut link,
        0x472,
        "usbplug",
        &usbplug(9000, 2),
        FrameOptions::default(),
        &t,
        &mut NoProgress,
    )
    .unwrap();
    let mut plug = reopen(&bus, link.info());
    let mut r = Rockusb::new(&mut *plug).unwrap();
    r.test_unit_ready().unwrap();
    assert_eq!(racklet_rockchip::rockusb::chip_code(&r.read_chip_info().unwrap()).as_deref(), Some("3568"));
    assert_eq!(r.read_flash_id().unwrap(), "EMMC");
    assert!(r.read_flash_info().unwrap().sectors > 0);
    let v = rom.lock().unwrap().verdict();
    assert!(v.started() && v.text().contains("usbplug started"), "{v:?}");
}

#[test]
fn bad_csw_and_dead_usbplug_fail_cleanly() {
    for (fault, class) in
        [(RockchipFault::BadCsw, FailureClass::Io), (RockchipFault::DeadUsbplug, FailureClass::Timeout)]
    {
        let (bus, _rom, mut link) = rom_link("rk3568", fault);
        let t = Timeouts::default();
        download_stage(&mut link, 0x471, "ddr", &[1; 64], FrameOptions::default(), &t, &mut NoProgress)
            .unwrap();
        download_stage(
            &mut link,
            0x472,
            "usbplug",
            &usbplug(64, 2),
            FrameOptions::default(),
            &t,
            &mut NoProgress,
        )
        .unwrap();
        let mut plug = reopen(&bus, link.info());
        let e = Rockusb::new(&mut *plug).unwrap().test_unit_ready().unwrap_err();
        assert_eq!(e.class(), class, "{fault:?}: {e}");
    }
}

#[test]
fn cbw_layout_matches_the_sheet() {
    // §3.2: "USBC", tag LE, length LE, flags, LUN, CDB length, opcode.
    let c = racklet_rockchip::rockusb::cbw(0x0403_0201, 16, true, 6, 0x1b);
    let mut want = vec![0x55, 0x53, 0x42, 0x43, 1, 2, 3, 4, 16, 0, 0, 0, 0x80, 0, 6, 0x1b];
    want.resize(31, 0);
    assert_eq!(c.to_vec(), want);
}

/// No reference tool depends on the ROM's answer to the 4094 rule's 1-byte
/// trailer: xrock ignores it (rock.c:170-174), rkdeveloptool reports its own
/// successful trailer as a failure (RKComm.cpp:867-876). A stall or timeout
/// there is said, not fatal.
#[test]
fn the_trailer_s_answer_is_not_fatal() {
    for e in [
        LinkError::Stall { op: "x".into() },
        LinkError::Timeout { op: "x".into(), after: Duration::from_secs(1) },
    ] {
        let mut link = ScriptedUsb::new().then_out(Ok(())).then_out(Err(e));
        let mut progress = CollectProgress::default();
        let r = download_stage(
            &mut link,
            0x471,
            "ddr",
            &pattern(4094, 1),
            FrameOptions::default(),
            &Timeouts::default(),
            &mut progress,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sent(&link), expected(&pattern(4094, 1), false));
        assert_eq!(r.transfers, 2);
        assert!(r.trailer_error.as_deref().is_some_and(|w| w.contains("trailer")), "{r:?}");
    }
    // Only the trailer: the same error on a data transfer stays fatal.
    let mut link = ScriptedUsb::new().then_out(Err(LinkError::Stall { op: "x".into() }));
    let e = download_stage(
        &mut link,
        0x471,
        "ddr",
        &pattern(4094, 1),
        FrameOptions::default(),
        &Timeouts::default(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert_eq!(e.class(), FailureClass::Rejected, "{e}");
}

/// The same against the virtual ROM with a stalled trailer: the stage
/// ended with its 4096-byte transfer, so the ROM took it.
#[test]
fn virtual_rom_that_stalls_the_trailer_still_takes_the_stage() {
    let (_bus, rom, mut link) = rom_link("rk3568", RockchipFault::StallTrailer);
    let r = download_stage(
        &mut link,
        0x471,
        "ddr",
        &pattern(4094, 1),
        FrameOptions::default(),
        &Timeouts::default(),
        &mut NoProgress,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.trailer_error.is_some(), "{r:?}");
    let rom = rom.lock().unwrap();
    assert_eq!(rom.received.len(), 1);
    assert_eq!(rom.received[0].body, pattern(4094, 1));
}

/// A scripted link with the rockusb interface (ff/06/05, bulk 0x81/0x01).
fn rockusb_link(replies: Vec<Vec<u8>>) -> ScriptedUsb {
    use racklet_link::EndpointInfo;
    use racklet_link::usb::{EndpointKind, InterfaceInfo};
    let mut l = ScriptedUsb::new();
    l.info.interfaces = vec![InterfaceInfo {
        number: 0,
        class: 0xff,
        subclass: 0x06,
        protocol: 0x05,
        endpoints: vec![
            EndpointInfo { address: 0x81, kind: EndpointKind::Bulk, max_packet_size: 512 },
            EndpointInfo { address: 0x01, kind: EndpointKind::Bulk, max_packet_size: 512 },
        ],
    }];
    for r in replies {
        l = l.reply(Ok(r));
    }
    l
}

/// A CSW as `f_rockusb.c` sends it: "USBS", the CBW's tag, residue, status.
fn csw(tag: u32, status: u8) -> Vec<u8> {
    let mut c = b"USBS".to_vec();
    c.extend_from_slice(&tag.to_le_bytes());
    c.extend_from_slice(&[0; 4]);
    c.push(status);
    c
}

/// rkdeveloptool's RKU_TestDeviceReady (RKComm.cpp:645-690): status 1 is
/// "not ready"; a CSW with another tag is read past until the matching one
/// (RKU_ClearBuffer, at most MAX_CLEAR_LEN = 16 KiB, RKComm.h:95).
#[test]
fn test_unit_ready_statuses_and_stale_csws() {
    // The session's first tag is 0x52434b01.
    let first = 0x5243_4b01;
    for (status, want) in [(0u8, Readiness::Ready), (1, Readiness::NotReady)] {
        let mut l = rockusb_link(vec![csw(first, status)]);
        assert_eq!(Rockusb::new(&mut l).unwrap().test_unit_ready().unwrap(), want, "status {status}");
    }
    let mut l = rockusb_link(vec![csw(first, 2)]);
    let e = Rockusb::new(&mut l).unwrap().test_unit_ready().unwrap_err();
    assert!(matches!(e, RockchipError::CommandFailed { status: 2, .. }), "{e}");
    // A late CSW of an earlier attempt, then this command's own.
    let mut l = rockusb_link(vec![csw(first - 1, 0), csw(first, 0)]);
    assert_eq!(Rockusb::new(&mut l).unwrap().test_unit_ready().unwrap(), Readiness::Ready);
    // The same in a data phase: the stale CSW is skipped, the data read.
    let mut info = b"8653".to_vec();
    info.resize(16, 0);
    let mut l = rockusb_link(vec![csw(first - 1, 0), info, csw(first, 0)]);
    assert_eq!(&Rockusb::new(&mut l).unwrap().read_chip_info().unwrap()[..4], b"8653");
    // Only stale CSWs: the drain stops past 16 KiB, as an I/O error.
    let flood: Vec<Vec<u8>> = (0..2000).map(|_| csw(first - 1, 0)).collect();
    let mut l = rockusb_link(flood);
    let e = Rockusb::new(&mut l).unwrap().test_unit_ready().unwrap_err();
    assert_eq!(e.class(), FailureClass::Io, "{e}");
    assert!(e.to_string().contains("16384"), "{e}");
    let reads = l.log.iter().filter(|t| matches!(t, Transfer::BulkIn { .. })).count();
    assert_eq!(reads, 16 * 1024 / 13 + 1, "reads past 16 KiB then stops");
    // A stale CSW and then nothing: no matching CSW, also an I/O error.
    let mut l = rockusb_link(vec![csw(first - 1, 0)]);
    let e = Rockusb::new(&mut l).unwrap().test_unit_ready().unwrap_err();
    assert_eq!(e.class(), FailureClass::Io, "{e}");
    assert!(e.to_string().contains("stale"), "{e}");
}
