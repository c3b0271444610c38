//! The ROM client against racklet-sim's virtual K230, with transcripts.
//!
//! Expected wire shapes come from the fact sheet (§2, §7 cases s1–s3),
//! written out here, not from the client's own constants.

use std::io::Write;
use std::sync::{Arc, Mutex};

use racklet_canaan::rom::{self, RomOptions, StartStatus};
use racklet_canaan::{CanaanError, Load, plan_stages};
use racklet_link::testing::{CancelAfter, CollectProgress};
use racklet_link::transcript::{DataMode, RecordOptions, Recorder, TranscriptWriter};
use racklet_link::{Classify, FailureClass, UsbBus, UsbLink};
use racklet_sim::canaan::{Fault, K230, K230Rom, Started};
use racklet_sim::usb::SimUsbBus;
use serde_json::Value;

/// A Write that keeps what was written, for reading transcripts back.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Buf {
    fn records(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

struct Rig {
    dev: Arc<Mutex<K230Rom>>,
    link: Recorder<Box<dyn UsbLink>>,
    buf: Buf,
}

fn rig(rom: K230Rom) -> Rig {
    let bus = SimUsbBus::new();
    let dev = bus.attach(rom);
    let info = bus.devices().unwrap().remove(0);
    let buf = Buf::default();
    // Every byte in the records (not only hashes of the long ones): the tests read them.
    let w = TranscriptWriter::new(buf.clone())
        .with_options(RecordOptions { data: DataMode::Full, redact: false });
    let link = Recorder::usb(bus.open(&info).unwrap(), w);
    Rig { dev, link, buf }
}

fn stage(addr: u32, bytes: Vec<u8>) -> racklet_canaan::Stage {
    plan_stages(vec![Load { name: "payload".into(), address: addr, bytes, entry: None }], None)
        .unwrap()
        .remove(0)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A setup packet of the sheet, as 8 wire bytes, decoded to transcript fields.
fn setup_fields(wire: [u8; 8]) -> (u64, u64, u64, u64) {
    (
        wire[0] as u64,
        wire[1] as u64,
        u16::from_le_bytes([wire[2], wire[3]]) as u64,
        u16::from_le_bytes([wire[4], wire[5]]) as u64,
    )
}

fn fields(r: &Value) -> (u64, u64, u64, u64) {
    (
        r["rt"].as_u64().unwrap(),
        r["req"].as_u64().unwrap(),
        r["val"].as_u64().unwrap(),
        r["idx"].as_u64().unwrap(),
    )
}

fn bulk_sizes(recs: &[Value]) -> Vec<usize> {
    recs.iter().filter(|r| r["t"] == "bulk_out").map(|r| r["data"].as_str().unwrap().len() / 2).collect()
}

fn run(rig: &mut Rig, addr: u32, data: Vec<u8>) -> Result<StartStatus, CanaanError> {
    let mut p = CollectProgress::default();
    let opts = RomOptions::default();
    rom::expect_rom(&mut rig.link, &opts)?;
    rom::run_stage(&mut rig.link, &stage(addr, data), &opts, &mut p)
}

/// Case s1: 16 bytes at 0x80360000: GET_CPU_INFO, SET_DATA_ADDRESS, one
/// bulk transfer, (re-greet,) PROG_START, with the sheet's setup bytes.
#[test]
fn s1_sixteen_bytes_wire_sequence() {
    let mut r = rig(K230Rom::new(&K230, "1-1"));
    let payload: Vec<u8> = (0..16).collect();
    assert_eq!(run(&mut r, 0x8036_0000, payload.clone()).unwrap(), StartStatus::Acked);
    let recs = r.buf.records();
    let kinds: Vec<&str> = recs.iter().map(|r| r["t"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["open", "ctrl_in", "ctrl_out", "bulk_out", "ctrl_in", "ctrl_out"]);
    assert_eq!((recs[0]["vid"].as_u64(), recs[0]["pid"].as_u64()), (Some(0x29f1), Some(0x0230)));
    assert_eq!(fields(&recs[1]), setup_fields([0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00]));
    assert_eq!(recs[1]["len"], 0x20);
    assert_eq!(recs[1]["data"], "4b323330");
    assert_eq!(fields(&recs[2]), setup_fields([0x40, 0x01, 0x36, 0x80, 0x00, 0x00, 0x00, 0x00]));
    assert_eq!(recs[2]["data"], "");
    assert_eq!(recs[3]["ep"], 1);
    assert_eq!(recs[3]["data"], "000102030405060708090a0b0c0d0e0f");
    assert_eq!(fields(&recs[5]), setup_fields([0x40, 0x04, 0x36, 0x80, 0x00, 0x00, 0x00, 0x00]));
    let d = r.dev.lock().unwrap();
    assert_eq!(d.read(0x8036_0000, 16).unwrap(), payload);
    // The ROM jumped to the payload, which (as SRAM code does) returns to the ROM.
    assert_eq!((d.jumps[0].entry, d.jumps[0].started), (0x8036_0000, Started::ReturnsToRom));
}

/// Case s2: 2500 bytes at 0x80300000 go as 1000 + 1000 + 500, address
/// wValue 0x8030 / wIndex 0.
#[test]
fn s2_chunking_and_custom_address() {
    let mut r = rig(K230Rom::new(&K230, "1-1"));
    let data = pattern(2500);
    run(&mut r, 0x8030_0000, data.clone()).unwrap();
    let recs = r.buf.records();
    assert_eq!(bulk_sizes(&recs), [1000, 1000, 500]);
    let set = recs.iter().find(|r| r["t"] == "ctrl_out" && r["req"] == 1).unwrap();
    assert_eq!((set["val"].as_u64(), set["idx"].as_u64()), (Some(0x8030), Some(0)));
    assert_eq!(recs.iter().filter(|r| r["t"] == "ctrl_out" && r["req"] == 1).count(), 1, "address set once");
    assert_eq!(r.dev.lock().unwrap().read(0x8030_0000, 2500).unwrap(), data);
}

/// Case s3: the real loader_mmc.bin shape, 375,712 bytes = 375 × 1000 + 712.
#[test]
fn s3_loader_sized_payload() {
    let mut r = rig(K230Rom::new(&K230, "1-1"));
    let data = pattern(375_712);
    run(&mut r, 0x8036_0000, data.clone()).unwrap();
    let sizes = r.dev.lock().unwrap().bulk_sizes.clone();
    assert_eq!(sizes.len(), 376);
    assert!(sizes[..375].iter().all(|&s| s == 1000));
    assert_eq!(sizes[375], 712);
    assert_eq!(r.dev.lock().unwrap().read(0x8036_0000, data.len()).unwrap(), data);
}

/// Boundary sizes around the chunk: never a zero-length transfer.
#[test]
fn chunk_boundaries() {
    for (n, expect) in [
        (1usize, vec![1usize]),
        (999, vec![999]),
        (1000, vec![1000]),
        (1001, vec![1000, 1]),
        (2000, vec![1000, 1000]),
    ] {
        let mut r = rig(K230Rom::new(&K230, "1-1"));
        run(&mut r, 0x8036_0000, pattern(n)).unwrap();
        assert_eq!(bulk_sizes(&r.buf.records()), expect, "{n} bytes");
    }
}

/// The whole SRAM from 0x80360000 to its end fits; the ROM stores all of it.
#[test]
fn fills_sram_to_the_last_byte() {
    let n = 0x8040_0000 - 0x8036_0000;
    let mut r = rig(K230Rom::new(&K230, "1-1"));
    let mut p = CollectProgress::default();
    let opts = RomOptions { chunk: 512, ..RomOptions::default() };
    rom::run_stage(&mut r.link, &stage(0x8036_0000, pattern(n)), &opts, &mut p).unwrap();
    assert_eq!(p.bytes(), n as u64);
    assert!(r.dev.lock().unwrap().verdict().started());
    assert!(bulk_sizes(&r.buf.records()).iter().all(|&s| s == 512));
}

fn fault(f: Fault) -> Rig {
    rig(K230Rom::new(&K230, "1-1").with_fault(Some(f)))
}

#[test]
fn stall_on_bulk_is_a_refusal() {
    let mut r = fault(Fault::StallBulk);
    let e = run(&mut r, 0x8036_0000, pattern(3000)).unwrap_err();
    assert_eq!(e.class(), FailureClass::Rejected, "{e}");
    assert!(e.to_string().contains("bulk OUT of bytes 0..1000"), "{e}");
    // Nothing was started.
    assert!(!r.buf.records().iter().any(|x| x["t"] == "ctrl_out" && x["req"] == 4));
}

#[test]
fn hanging_bulk_is_a_timeout() {
    let mut r = fault(Fault::HangBulk);
    let e = run(&mut r, 0x8036_0000, pattern(10)).unwrap_err();
    assert_eq!(e.class(), FailureClass::Timeout, "{e}");
    assert!(!r.dev.lock().unwrap().verdict().started());
}

#[test]
fn prog_start_without_status_is_accepted() {
    let mut r = fault(Fault::NoStatus);
    assert_eq!(run(&mut r, 0x8036_0000, pattern(10)).unwrap(), StartStatus::NoStatus);
    assert!(r.dev.lock().unwrap().verdict().started());
}

#[test]
fn stalled_prog_start_with_rom_still_there_is_a_refusal() {
    let mut r = fault(Fault::StallStart);
    let e = run(&mut r, 0x8036_0000, pattern(10)).unwrap_err();
    assert!(matches!(e, CanaanError::StartRefused { entry: 0x8036_0000 }), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
}

#[test]
fn the_loader_stage_gets_no_rom_commands() {
    let mut r = fault(Fault::Loader);
    let e = run(&mut r, 0x8036_0000, pattern(10)).unwrap_err();
    assert!(matches!(&e, CanaanError::LoaderStage { reply } if reply == "Uboot Stage for K230"), "{e}");
    assert_eq!(e.class(), FailureClass::NotFound);
    // Only the probe crossed the link.
    let kinds: Vec<String> = r.buf.records().iter().map(|x| x["t"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["open", "ctrl_in"]);
}

#[test]
fn another_chip_is_refused() {
    let mut r = fault(Fault::WrongCpu);
    let e = run(&mut r, 0x8036_0000, pattern(10)).unwrap_err();
    assert!(matches!(&e, CanaanError::UnknownDevice { reply } if reply == "K210"), "{e}");
}

/// Ctrl-C between chunks stops before the next transfer.
#[test]
fn cancel_stops_between_chunks() {
    let mut r = rig(K230Rom::new(&K230, "1-1"));
    // Cancelled once the stage began and two chunks went out.
    let mut p = CancelAfter::new(3);
    let e = rom::run_stage(&mut r.link, &stage(0x8036_0000, pattern(5000)), &RomOptions::default(), &mut p)
        .unwrap_err();
    assert_eq!(e.class(), FailureClass::Interrupted);
    assert_eq!(bulk_sizes(&r.buf.records()), [1000, 1000]);
}
