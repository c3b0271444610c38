//! Replay tests: a client runs against a virtual device while it is
//! recorded; the same client against the replay must see the same answers
//! and pass; a changed client must be stopped at the transfer that changed.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use racklet_link::transcript::reader::{self, Transcript};
use racklet_link::transcript::{Interest, Recorder, RecordingUsbBus, TranscriptWriter};
use racklet_link::{ControlSetup, LinkError, SerialInfo, SerialLink, UsbBus, UsbInfo, UsbLink};

use super::*;
use crate::usb::{DeviceError, SimUsbBus, UsbDevice};

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
    fn transcript(&self) -> Transcript {
        reader::parse(&self.0.lock().unwrap()[..], "test.jsonl").unwrap()
    }
}

/// A two-stage board: the ROM (2207:350a) takes a control download and
/// answers a control read; a long bulk write starts the next stage, which
/// re-enumerates at the same port as 2207:0000 and answers bulk reads. A
/// bulk write starting with 0xFF is refused (STALL).
struct Board {
    stage: u8,
    address: u8,
    got: usize,
}

impl Board {
    fn new() -> Self {
        Board { stage: 1, address: 5, got: 0 }
    }
}

impl UsbDevice for Board {
    fn info(&self) -> Option<UsbInfo> {
        Some(UsbInfo {
            vid: 0x2207,
            pid: if self.stage == 1 { 0x350a } else { 0x0000 },
            bcd_usb: 0x0200,
            serial: Some("SERIAL-XYZ-1".into()),
            address: self.address,
            port_path: "3-1".into(),
            speed: Some("high".into()),
            ..Default::default()
        })
    }
    fn control_out(&mut self, _: ControlSetup, data: &[u8]) -> Result<(), DeviceError> {
        self.got += data.len();
        Ok(())
    }
    fn control_in(&mut self, _: ControlSetup, len: u16) -> Result<Vec<u8>, DeviceError> {
        Ok(format!("got {}", self.got).into_bytes().into_iter().take(len as usize).collect())
    }
    fn bulk_out(&mut self, _: u8, data: &[u8]) -> Result<(), DeviceError> {
        if data.first() == Some(&0xff) {
            return Err(DeviceError::Stall);
        }
        self.got += data.len();
        if data.len() > 1000 && self.stage == 1 {
            self.stage = 2;
            self.address += 1;
        }
        Ok(())
    }
    fn bulk_in(&mut self, _: u8, _: usize) -> Result<Vec<u8>, DeviceError> {
        if self.stage == 1 {
            return Err(DeviceError::NoAnswer);
        }
        Ok(format!("stage 2 after {}", self.got).into_bytes())
    }
}

const T: Duration = Duration::from_millis(20);

/// What the client saw, to compare between the live run and the replay.
type Seen = Vec<String>;

/// The client: download, ask, a refused write, the long write that starts
/// stage 2, follow the board to its new address, read.
fn client(bus: &dyn UsbBus, wrap: &dyn Fn(Box<dyn UsbLink>) -> Box<dyn UsbLink>, payload: &[u8]) -> Seen {
    let mut seen = Seen::new();
    let rom = bus.devices().unwrap().into_iter().find(|d| d.pid == 0x350a).expect("the ROM");
    seen.push(format!("found {} at {} addr {}", rom.id(), rom.port_path, rom.address));
    let mut l = wrap(bus.open(&rom).unwrap());
    for chunk in payload[..600].chunks(200) {
        l.control_out(ControlSetup::vendor_out(0x0c, 0, 0x471), chunk, T).unwrap();
    }
    seen.push(format!("{:?}", l.control_in(ControlSetup::vendor_in(1, 0, 0), 64, T).map(String::from_utf8)));
    seen.push(format!("{:?}", l.bulk_in(0x81, 64, T).map_err(|e| e.to_string())));
    seen.push(format!("{:?}", l.bulk_out(1, &[0xff, 1, 2], T).map_err(|e| e.to_string())));
    l.bulk_out(1, payload, T).unwrap();
    let next = loop {
        if let Some(d) = bus
            .devices()
            .unwrap()
            .into_iter()
            .find(|d| d.port_path == rom.port_path && d.address != rom.address)
        {
            break d;
        }
    };
    seen.push(format!("followed {} addr {}", next.id(), next.address));
    let mut l2 = wrap(bus.open(&next).unwrap());
    seen.push(format!("{:?}", l2.bulk_in(0x81, 512, T).map(String::from_utf8)));
    seen
}

fn payload() -> Vec<u8> {
    (0..4000u32).map(|i| (i * 13 + 1) as u8).collect()
}

fn header() -> reader::Header {
    reader::Header { racklet_flash: "test".into(), ..Default::default() }
}

/// Records the client against the virtual board.
fn record() -> (Seen, Buf) {
    let sim = SimUsbBus::new();
    sim.attach(Board::new());
    let buf = Buf::default();
    let w = TranscriptWriter::new(buf.clone());
    w.header(&header());
    let bus = RecordingUsbBus::new(Arc::new(sim), w.clone(), Interest { ids: vec![(0x2207, 0x350a)] });
    let wrap = |l: Box<dyn UsbLink>| -> Box<dyn UsbLink> { Box::new(Recorder::usb(l, w.clone())) };
    let seen = client(&bus, &wrap, &payload());
    (seen, buf)
}

fn no_wrap(l: Box<dyn UsbLink>) -> Box<dyn UsbLink> {
    l
}

#[test]
fn the_same_client_sees_the_same_answers_and_passes() {
    let (live, buf) = record();
    let replay = Replay::new(buf.transcript(), "test.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.usb_bus();
    let again = client(&bus, &no_wrap, &payload());
    assert_eq!(again, live);
    // The live run's answers, as the virtual board gave them.
    assert_eq!(live[1], "Ok(Ok(\"got 600\"))");
    assert!(live[3].contains("stalled"), "{}", live[3]);
    assert_eq!(live[4], "followed 2207:0000 addr 6");
    assert_eq!(live[5], "Ok(Ok(\"stage 2 after 4600\"))");
    // 2 opens + 3 ctrl_out + ctrl_in + 2 bulk_in + 2 bulk_out.
    assert_eq!(replay.verdict().unwrap(), "10 host transfers as recorded");
}

#[test]
fn a_changed_payload_byte_stops_the_replay_at_that_transfer() {
    let (_, buf) = record();
    let replay = Replay::new(buf.transcript(), "test.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.usb_bus();
    let mut p = payload();
    p[200 + 37] ^= 0x01; // in the second control chunk
    let rom = bus.devices().unwrap().remove(0);
    let mut l = bus.open(&rom).unwrap();
    l.control_out(ControlSetup::vendor_out(0x0c, 0, 0x471), &p[..200], T).unwrap();
    let e = l.control_out(ControlSetup::vendor_out(0x0c, 0, 0x471), &p[200..400], T).unwrap_err();
    assert!(e.to_string().contains("host transfer 3 differs"), "{e}");
    // Nothing more is answered.
    assert!(l.control_in(ControlSetup::vendor_in(1, 0, 0), 64, T).is_err());
    let d = replay.verdict().unwrap_err();
    assert_eq!(d.number, 3);
    let text = d.to_string();
    assert!(
        text.contains(
            "recorded: ctrl_out bmRequestType 0x40 bRequest 0x0c wValue 0x0000 wIndex 0x0471, 200 bytes"
        ),
        "{text}"
    );
    assert!(text.contains("first difference at byte 37 (0x25)"), "{text}");
    // The row holding byte 37: recorded vs sent, as hex.
    let row = |d: &[u8]| d[32..48].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    assert!(text.contains(&format!("-00000020: {}", row(&payload()[200..400]))), "{text}");
    assert!(text.contains(&format!("+00000020: {}", row(&p[200..400]))), "{text}");
}

#[test]
fn a_changed_hashed_write_is_caught_by_its_hash() {
    let (_, buf) = record();
    let t = buf.transcript();
    // The 4000-byte write was stored by hash only.
    assert!(t.entries.iter().any(|e| matches!(
        &e.record,
        reader::Record::BulkOut { data: reader::Payload::Hashed { len: 4000, .. }, .. }
    )));
    let replay = Replay::new(t, "test.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.usb_bus();
    let mut p = payload();
    p[3999] = !p[3999];
    let rom = bus.devices().unwrap().remove(0);
    let mut l = bus.open(&rom).unwrap();
    for chunk in p[..600].chunks(200) {
        l.control_out(ControlSetup::vendor_out(0x0c, 0, 0x471), chunk, T).unwrap();
    }
    l.control_in(ControlSetup::vendor_in(1, 0, 0), 64, T).unwrap();
    assert!(matches!(l.bulk_in(0x81, 64, T), Err(LinkError::Timeout { .. })));
    assert!(matches!(l.bulk_out(1, &[0xff, 1, 2], T), Err(LinkError::Stall { .. })));
    assert!(l.bulk_out(1, &p, T).is_err());
    let d = replay.verdict().unwrap_err();
    assert_eq!(d.number, 8);
    let text = d.to_string();
    assert!(text.contains("4000 bytes with sha256"), "{text}");
    assert!(text.contains(&racklet_link::transcript::sha256_hex(&p)), "{text}");
}

#[test]
fn a_different_request_or_endpoint_is_named() {
    let (_, buf) = record();
    let replay = Replay::new(buf.transcript(), "t.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.usb_bus();
    let rom = bus.devices().unwrap().remove(0);
    let mut l = bus.open(&rom).unwrap();
    assert!(l.bulk_out(2, &payload()[..200], T).is_err());
    let d = replay.verdict().unwrap_err();
    assert_eq!((d.number, d.line), (2, 4), "{d}");
    assert!(d.recorded.starts_with("ctrl_out bmRequestType 0x40"), "{d}");
    assert_eq!(d.sent, format!("bulk_out ep 0x02, 200 bytes: {}…", hex::encode(&payload()[..16])));
}

#[test]
fn a_host_that_stops_early_is_a_difference() {
    let (_, buf) = record();
    let replay = Replay::new(buf.transcript(), "t.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.usb_bus();
    let rom = bus.devices().unwrap().remove(0);
    let _l = bus.open(&rom).unwrap();
    let d = replay.verdict().unwrap_err();
    assert_eq!(d.number, 2);
    // The timed-out poll does not count: polling is allowed to stop sooner.
    assert!(d.sent.contains("the host stopped (8 more recorded transfers)"), "{d}");
}

#[test]
fn the_next_stage_appears_only_when_the_host_got_there() {
    let (_, buf) = record();
    let replay = Replay::new(buf.transcript(), "t.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.usb_bus();
    let first = bus.devices().unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].pid, first[0].address, first[0].port_path.as_str()), (0x350a, 5, "3-1"));
    // The descriptors as recorded.
    assert_eq!(first[0].serial.as_deref(), Some("SERIAL-XYZ-1"));
    assert_eq!(first[0].speed.as_deref(), Some("high"));
    // Opening the stage 2 device before its time is a difference.
    let early = UsbInfo { address: 6, ..first[0].clone() };
    assert!(bus.open(&early).is_err());
    assert!(replay.verdict().unwrap_err().sent.starts_with("open USB 2207:350a at 3-1 address 6"));
}

#[test]
fn recorded_timing_is_kept_only_when_asked() {
    // Two transfers recorded 300 ms apart.
    let lines = r#"{"t":"header","format":1,"racklet_flash":"0.1.0","at":0}
{"t":"open","link":"usb","vid":1,"pid":2,"port_path":"1-1","address":3,"at":0}
{"t":"bulk_in","ep":129,"max":8,"data":"01","at":1000}
{"t":"bulk_in","ep":129,"max":8,"data":"02","at":301000}
"#;
    let t = reader::parse(lines.as_bytes(), "t.jsonl").unwrap();
    for (timing, slow) in [(false, false), (true, true)] {
        let replay = Replay::new(t.clone(), "t.jsonl", ReplayOptions { timing }).unwrap();
        let bus = replay.usb_bus();
        let d = bus.devices().unwrap().remove(0);
        let mut l = bus.open(&d).unwrap();
        let start = Instant::now();
        assert_eq!(l.bulk_in(0x81, 8, T).unwrap(), [1]);
        assert_eq!(l.bulk_in(0x81, 8, T).unwrap(), [2]);
        let took = start.elapsed();
        assert_eq!(took >= Duration::from_millis(290), slow, "timing {timing}: {took:?}");
        replay.verdict().unwrap();
    }
}

#[test]
fn polling_a_little_longer_or_shorter_than_recorded_is_not_a_difference() {
    let lines = r#"{"t":"header","format":1,"racklet_flash":"0.1.0"}
{"t":"open","link":"usb","vid":1,"pid":2,"port_path":"1-1","address":3}
{"t":"bulk_in","ep":129,"max":8,"data":"","err":"bulk IN from endpoint 0x81 timed out after 20ms","err_kind":"timeout"}
{"t":"bulk_in","ep":129,"max":8,"data":"","err":"bulk IN from endpoint 0x81 timed out after 20ms","err_kind":"timeout"}
{"t":"bulk_out","ep":1,"data":"aa"}
"#;
    let t = reader::parse(lines.as_bytes(), "t.jsonl").unwrap();
    for polls in [0, 1, 2, 4] {
        let replay = Replay::new(t.clone(), "t.jsonl", ReplayOptions::default()).unwrap();
        let bus = replay.usb_bus();
        let d = bus.devices().unwrap().remove(0);
        let mut l = bus.open(&d).unwrap();
        for _ in 0..polls {
            let e = l.bulk_in(0x81, 8, T).unwrap_err();
            assert_eq!(e.to_string(), "bulk IN from endpoint 0x81 timed out after 20ms");
        }
        l.bulk_out(1, &[0xaa], T).unwrap();
        replay.verdict().unwrap_or_else(|d| panic!("{polls} polls: {d}"));
    }
}

/// A serial port for the recorder: scripted device chunks.
struct Port {
    info: SerialInfo,
    chunks: std::collections::VecDeque<Vec<u8>>,
}

impl SerialLink for Port {
    fn info(&self) -> &SerialInfo {
        &self.info
    }
    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        if data == b"bye" {
            return Err(LinkError::Disconnected { op: "writing /dev/ttyUSB7".into() });
        }
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        match self.chunks.pop_front() {
            Some(c) if !c.is_empty() => {
                buf[..c.len()].copy_from_slice(&c);
                Ok(c.len())
            }
            _ => Err(LinkError::Timeout { op: "reading /dev/ttyUSB7".into(), after: timeout }),
        }
    }
    fn set_baud(&mut self, _: u32) -> Result<(), LinkError> {
        Ok(())
    }
    fn clear_input(&mut self) -> Result<(), LinkError> {
        Ok(())
    }
}

/// A serial client: waits for "CC", sends a frame, reads the answer
/// with a small buffer, sends "bye".
fn serial_client(link: &mut dyn SerialLink, frame: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 2];
    let mut polls = Vec::new();
    while polls.len() < 2 {
        match link.read(&mut buf, Duration::from_millis(5)) {
            Ok(n) => polls.extend_from_slice(&buf[..n]),
            Err(e) => seen.push(e.to_string()),
        }
    }
    link.clear_input().unwrap();
    link.write_all(frame).unwrap();
    let mut ack = [0u8; 3];
    link.read_exact(&mut ack, Duration::from_millis(50)).unwrap();
    seen.push(String::from_utf8_lossy(&ack).to_string());
    seen.push(format!("{:?}", link.write_all(b"bye").map_err(|e| e.to_string())));
    seen
}

#[test]
fn serial_bytes_and_errors_replay_and_a_changed_frame_is_caught() {
    let info =
        SerialInfo { path: "/dev/ttyUSB7".into(), port_path: Some("1-4".into()), ..Default::default() };
    let port = Port {
        info: info.clone(),
        chunks: vec![b"C".to_vec(), vec![], b"C".to_vec(), b"ACK".to_vec()].into(),
    };
    let buf = Buf::default();
    let w = TranscriptWriter::new(buf.clone());
    w.header(&header());
    let mut rec = Recorder::serial_open(port, w, 115200);
    let frame = vec![7u8; 1029];
    let live = serial_client(&mut rec, &frame);
    assert_eq!(live.last().unwrap(), "Err(\"writing /dev/ttyUSB7: the device disconnected\")");

    let replay = Replay::new(buf.transcript(), "s.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.serial_bus();
    let ports = bus.ports().unwrap();
    assert_eq!(ports, vec![info.clone()]);
    let mut link = bus.open(&ports[0], 115200).unwrap();
    let again = serial_client(&mut *link, &frame);
    // The recording kept no timeouts: the replayed client polls without one.
    let live_data: Vec<_> = live.iter().filter(|s| !s.contains("timed out")).collect();
    assert_eq!(again.iter().collect::<Vec<_>>(), live_data);
    replay.verdict().unwrap();

    let replay = Replay::new(buf.transcript(), "s.jsonl", ReplayOptions::default()).unwrap();
    let bus = replay.serial_bus();
    let mut link = bus.open(&ports[0], 115200).unwrap();
    let mut changed = frame.clone();
    changed[1028] = 8;
    let mut b = [0u8; 2];
    link.read(&mut b, T).unwrap();
    link.read(&mut b, T).unwrap();
    link.clear_input().unwrap();
    assert!(link.write_all(&changed).is_err());
    let d = replay.verdict().unwrap_err();
    assert!(d.recorded.starts_with("serial_out 1029 bytes with sha256"), "{d}");
    assert_eq!(d.number, 5, "{d}");
}

#[test]
fn parallel_transcripts_are_refused() {
    let lines = r#"{"t":"open","vid":1,"pid":2,"port":"1-1"}
{"t":"open","vid":1,"pid":2,"port":"1-2"}
"#;
    let t = reader::parse(lines.as_bytes(), "p.jsonl").unwrap();
    let e = Replay::new(t, "p.jsonl", ReplayOptions::default()).err().unwrap();
    assert_eq!(
        e.to_string(),
        "p.jsonl: the transcript holds several boards of a parallel run (1-1, 1-2); replay needs one"
    );
}

#[test]
fn a_version_0_transcript_replays() {
    let v0 = r#"{"t":"open","vid":8711,"pid":13578}
{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"dead"}
{"t":"open","vid":8711,"pid":0}
{"t":"bulk_in","ep":129,"data":"5553425300"}
"#;
    let replay = Replay::new(
        reader::parse(v0.as_bytes(), "old.jsonl").unwrap(),
        "old.jsonl",
        ReplayOptions::default(),
    )
    .unwrap();
    let bus = replay.usb_bus();
    let rom = bus.devices().unwrap().remove(0);
    assert_eq!(rom.id(), "2207:350a");
    let mut l = bus.open(&rom).unwrap();
    l.control_out(ControlSetup::vendor_out(12, 0, 0x471), &[0xde, 0xad], T).unwrap();
    let plug = bus.devices().unwrap().into_iter().find(|d| d.address != rom.address).unwrap();
    assert_eq!((plug.id().as_str(), plug.port_path == rom.port_path), ("2207:0000", true));
    let mut l = bus.open(&plug).unwrap();
    assert_eq!(l.bulk_in(0x81, 512, T).unwrap(), b"USBS\0");
    replay.verdict().unwrap();
}

#[test]
fn hex_diff_shows_the_rows_around_the_first_difference() {
    let a: Vec<u8> = (0..40).collect();
    let mut b = a.clone();
    b[17] = 0xee;
    let d = hex_diff(&a, &b).unwrap();
    assert!(d.starts_with("  first difference at byte 17 (0x11):"), "{d}");
    assert!(d.contains("-00000010: 10 11 12 13"), "{d}");
    assert!(d.contains("+00000010: 10 ee 12 13"), "{d}");
    assert!(hex_diff(&a, &a).is_none());
    let d = hex_diff(&a, &a[..20]).unwrap();
    assert!(d.contains("first difference at byte 20") && d.contains("+00000020: (ends)"), "{d}");
}
