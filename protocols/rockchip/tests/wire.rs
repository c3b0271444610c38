//! Wire tests of the maskrom download, against expectations written out
//! from the fact sheet's rules (not from the encoder), and against the
//! virtual ROM in racklet-sim.

use std::time::Duration;

use racklet_link::UsbBus;
use racklet_link::{
    Classify, ControlSetup, FailureClass, LinkError, NoProgress, ProgressSink, UsbInfo, UsbLink,
};
use racklet_rockchip::frame::FrameOptions;
use racklet_rockchip::maskrom::{Timeouts, download_stage};
use racklet_rockchip::{RockchipError, Rockusb};
use racklet_sim::rockchip::{RockchipFault, RockchipRom, chip_model};
use racklet_sim::usb::{SimUsbBus, SimUsbLink};

// ---- The sheet's rules, written out independently of the crate. ----

/// RC4 keyed 124,78,3,4,85,5,9,7,45,44,123,56,23,13,23,17 (sheet §1.2).
fn rc4_ref(data: &mut [u8]) {
    let key = [124u8, 78, 3, 4, 85, 5, 9, 7, 45, 44, 123, 56, 23, 13, 23, 17];
    let mut s = [0usize; 256];
    for (i, v) in s.iter_mut().enumerate() {
        *v = i;
    }
    let mut j = 0;
    for i in 0..256 {
        j = (j + s[i] + key[i % 16] as usize) & 255;
        s.swap(i, j);
    }
    let (mut i, mut j) = (0, 0);
    for b in data {
        i = (i + 1) & 255;
        j = (j + s[i]) & 255;
        s.swap(i, j);
        *b ^= s[(s[i] + s[j]) & 255] as u8;
    }
}

/// CRC-16 poly 0x1021, init 0xFFFF, not reflected, no xorout.
fn crc_ref(data: &[u8]) -> u16 {
    let mut c: u32 = 0xffff;
    for &b in data {
        for bit in (0..8).rev() {
            let top = (c >> 15) & 1;
            let inb = u32::from(b >> bit) & 1;
            c = (c << 1) & 0xffff;
            if top ^ inb == 1 {
                c ^= 0x1021;
            }
        }
    }
    c as u16
}

/// Sheet §1.2 steps 1-5: the data stage of every control transfer.
fn expected(payload: &[u8], rc4: bool) -> Vec<Vec<u8>> {
    let n = payload.len();
    let mut body = payload.to_vec();
    if rc4 {
        rc4_ref(&mut body);
    }
    if n % 4096 == 4095 {
        body.push(0);
    }
    let c = crc_ref(&body);
    body.push((c >> 8) as u8);
    body.push(c as u8);
    let mut t: Vec<Vec<u8>> = body.chunks(4096).map(|c| c.to_vec()).collect();
    if n % 4096 == 4094 {
        t.push(vec![0]);
    }
    t
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A link that records every transfer and can fail one.
struct Rec {
    info: UsbInfo,
    sent: Vec<(ControlSetup, Vec<u8>, Duration)>,
    fail_at: Option<(usize, fn() -> LinkError)>,
}

impl Rec {
    fn new() -> Self {
        Rec { info: UsbInfo::default(), sent: Vec::new(), fail_at: None }
    }
}

impl UsbLink for Rec {
    fn info(&self) -> &UsbInfo {
        &self.info
    }
    fn control_out(&mut self, s: ControlSetup, d: &[u8], t: Duration) -> Result<(), LinkError> {
        if let Some((k, e)) = self.fail_at
            && k == self.sent.len()
        {
            return Err(e());
        }
        self.sent.push((s, d.to_vec(), t));
        Ok(())
    }
    fn control_in(&mut self, _: ControlSetup, _: u16, _: Duration) -> Result<Vec<u8>, LinkError> {
        unreachable!("maskrom uses no IN requests")
    }
    fn bulk_out(&mut self, _: u8, _: &[u8], _: Duration) -> Result<(), LinkError> {
        unreachable!()
    }
    fn bulk_in(&mut self, _: u8, _: usize, _: Duration) -> Result<Vec<u8>, LinkError> {
        unreachable!()
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
            let mut link = Rec::new();
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
            let got: Vec<Vec<u8>> = link.sent.iter().map(|s| s.1.clone()).collect();
            let got_lens: Vec<usize> = got.iter().map(|d| d.len()).collect();
            assert_eq!(got_lens, lens, "n={n} rc4={rc4}");
            assert_eq!(got, expected(&payload, rc4), "n={n} rc4={rc4}");
            assert_eq!(r.transfers, lens.len());
            for (s, _, _) in &link.sent {
                assert_eq!((s.request_type, s.request, s.value, s.index), (0x40, 0x0c, 0, 0x471));
            }
            // The whole stage (data + CRC, and the trailer) CRCs to zero.
            let all: Vec<u8> = got.concat();
            assert_eq!(crc_ref(&all), 0, "n={n}");
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
        let mut link = Rec::new();
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
        assert_eq!(link.sent.len(), 1);
        assert_eq!(link.sent[0].1, wire);
        assert_eq!(link.sent[0].0.index, 0x472);
    }
}

#[test]
fn zero_crc_sends_zeros_in_the_crc_field() {
    let mut link = Rec::new();
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
    assert_eq!(&link.sent[0].1[4094..], &[0, 0]);
    assert_eq!(link.sent[1].1, vec![0]);
}

#[test]
fn last_transfer_gets_the_long_timeout() {
    let mut link = Rec::new();
    let t = Timeouts { transfer: Duration::from_secs(5), last: Duration::from_secs(10) };
    download_stage(&mut link, 0x471, "ddr", &pattern(10000, 1), FrameOptions::default(), &t, &mut NoProgress)
        .unwrap();
    let ts: Vec<Duration> = link.sent.iter().map(|s| s.2).collect();
    assert_eq!(ts, [Duration::from_secs(10), Duration::from_secs(5), Duration::from_secs(10)]);
}

#[test]
fn failures_have_the_right_class() {
    let cases: [(fn() -> LinkError, FailureClass); 3] = [
        (|| LinkError::Stall { op: "x".into() }, FailureClass::Rejected),
        (|| LinkError::Timeout { op: "x".into(), after: Duration::from_secs(1) }, FailureClass::Timeout),
        (|| LinkError::Disconnected { op: "x".into() }, FailureClass::Disconnected),
    ];
    for (e, class) in cases {
        let mut link = Rec::new();
        link.fail_at = Some((1, e));
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

struct Cancelled;
impl ProgressSink for Cancelled {
    fn event(&mut self, _: racklet_link::ProgressEvent) {}
    fn cancelled(&self) -> bool {
        true
    }
}

#[test]
fn cancel_stops_before_the_first_transfer() {
    let mut link = Rec::new();
    let err = download_stage(
        &mut link,
        0x471,
        "ddr",
        &[1, 2, 3],
        FrameOptions::default(),
        &Timeouts::default(),
        &mut Cancelled,
    )
    .unwrap_err();
    assert!(matches!(err, RockchipError::Interrupted));
    assert_eq!(err.class(), FailureClass::Interrupted);
    assert!(link.sent.is_empty());
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
    let c = crc_ref(&wire);
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
        &pattern(9000, 2),
        FrameOptions::default(),
        &t,
        &mut NoProgress,
    )
    .unwrap();
    let cancel = || false;
    let info = racklet_link::discover::follow_usb(
        &bus,
        "2-1",
        &|d| d.vid == 0x2207,
        Some(link.info().address),
        Duration::from_secs(2),
        &cancel,
    )
    .unwrap();
    let mut plug = bus.open(&info).unwrap();
    let mut r = Rockusb::new(&mut *plug).unwrap();
    r.test_unit_ready().unwrap();
    assert_eq!(racklet_rockchip::rockusb::chip_code(&r.read_chip_info().unwrap()).as_deref(), Some("3568"));
    assert_eq!(r.read_flash_id().unwrap(), "EMMC");
    assert!(r.read_flash_info().unwrap().sectors > 0);
    assert!(rom.lock().unwrap().verdict().unwrap().contains("usbplug started"));
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
        download_stage(&mut link, 0x472, "usbplug", &[2; 64], FrameOptions::default(), &t, &mut NoProgress)
            .unwrap();
        let cancel = || false;
        let info = racklet_link::discover::follow_usb(
            &bus,
            "2-1",
            &|_| true,
            Some(link.info().address),
            Duration::from_secs(2),
            &cancel,
        )
        .unwrap();
        let mut plug = bus.open(&info).unwrap();
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
