//! Tests of the transcript writer and reader. Expected records are written
//! out from docs/transcripts.md, not produced by the writer.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::reader::{self, Device, ErrKind, Payload, Record};
use super::*;
use crate::usb::{EndpointInfo, EndpointKind, InterfaceInfo};

/// A writer the test can read back.
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

impl Shared {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// The records without their `at` stamps.
fn unstamped(lines: Vec<Value>) -> Vec<Value> {
    lines
        .into_iter()
        .map(|mut v| {
            assert!(v["at"].is_u64(), "every record has an `at`: {v}");
            v.as_object_mut().unwrap().remove("at");
            v
        })
        .collect()
}

/// A K230 boot ROM as the kernel describes it.
fn k230_info(serial: Option<&str>) -> UsbInfo {
    UsbInfo {
        vid: 0x29f1,
        pid: 0x0230,
        bcd_usb: 0x0200,
        bcd_device: 0x0100,
        manufacturer: Some("Canaan".into()),
        product: Some("K230 USB Boot Device".into()),
        serial: serial.map(str::to_string),
        bus: 1,
        address: 5,
        port_path: "1-3.2".into(),
        speed: Some("high".into()),
        interfaces: vec![InterfaceInfo {
            number: 0,
            class: 0xff,
            subclass: 0,
            protocol: 0,
            endpoints: vec![
                EndpointInfo { address: 0x01, kind: EndpointKind::Bulk, max_packet_size: 512 },
                EndpointInfo { address: 0x81, kind: EndpointKind::Bulk, max_packet_size: 512 },
            ],
        }],
    }
}

/// A fake USB link with scripted answers.
struct Fake(UsbInfo, Vec<u8>);
impl UsbLink for Fake {
    fn info(&self) -> &UsbInfo {
        &self.0
    }
    fn control_out(&mut self, _: ControlSetup, _: &[u8], _: Duration) -> Result<(), LinkError> {
        Ok(())
    }
    fn control_in(&mut self, _: ControlSetup, len: u16, _: Duration) -> Result<Vec<u8>, LinkError> {
        Ok(self.1.iter().copied().take(len as usize).collect())
    }
    fn bulk_out(&mut self, _: u8, _: &[u8], _: Duration) -> Result<(), LinkError> {
        Err(LinkError::Stall { op: "bulk OUT to endpoint 0x01".into() })
    }
    fn bulk_in(&mut self, _: u8, _: usize, _: Duration) -> Result<Vec<u8>, LinkError> {
        Ok(vec![0xAB, 0xCD])
    }
}

#[test]
fn usb_records_carry_the_descriptors_and_the_v1_fields() {
    let buf = Shared::default();
    let w = TranscriptWriter::new(buf.clone());
    let mut r = Recorder::usb(Fake(k230_info(Some("0123456789AB")), b"K230".to_vec()), w);
    let t = Duration::from_millis(1);
    r.control_out(ControlSetup::vendor_out(12, 0, 0x471), &[0xDE, 0xAD], t).unwrap();
    r.control_in(ControlSetup::vendor_in(0, 0, 0), 4, t).unwrap();
    assert!(r.bulk_out(1, &[1, 2, 0xFF], t).is_err());
    r.bulk_in(0x81, 64, t).unwrap();
    let lines = unstamped(buf.lines());
    assert_eq!(lines.len(), 5);
    // docs/transcripts.md, "open".
    assert_eq!(
        lines[0],
        json!({"t":"open","link":"usb","vid":10737,"pid":560,"bcd_usb":512,"bcd_device":256,
               "manufacturer":"Canaan","product":"K230 USB Boot Device","serial":"0123456789AB",
               "bus":1,"address":5,"port_path":"1-3.2","speed":"high",
               "interfaces":[{"number":0,"class":255,"subclass":0,"protocol":0,"endpoints":[
                   {"address":1,"kind":"bulk","max_packet_size":512},
                   {"address":129,"kind":"bulk","max_packet_size":512}]}]})
    );
    assert_eq!(lines[1], json!({"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"dead"}));
    assert_eq!(lines[2], json!({"t":"ctrl_in","rt":192,"req":0,"val":0,"idx":0,"len":4,"data":"4b323330"}));
    assert_eq!(
        lines[3],
        json!({"t":"bulk_out","ep":1,"data":"0102ff",
               "err":"bulk OUT to endpoint 0x01: the device stalled the transfer (it refused the request or the data)",
               "err_kind":"stall"})
    );
    assert_eq!(lines[4], json!({"t":"bulk_in","ep":129,"max":64,"data":"abcd"}));
}

#[test]
fn long_host_data_is_stored_by_hash_unless_full() {
    let big: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    // SHA-256 of that pattern, computed by coreutils' sha256sum, not by the code under test.
    let want = "d010f6d76d0eb4dce5d5b5b34014a8a157ec4380a66c24d7d455a9bf652db14a";
    let buf = Shared::default();
    let w = TranscriptWriter::new(buf.clone());
    let mut r = Recorder::usb(Fake(k230_info(None), big.clone()), w);
    let t = Duration::from_millis(1);
    r.control_out(ControlSetup::vendor_out(12, 0, 0x471), &big, t).unwrap();
    r.control_out(ControlSetup::vendor_out(12, 0, 0x471), &big[..INLINE_MAX], t).unwrap();
    // Device data is always whole: a replay answers with it.
    r.control_in(ControlSetup::vendor_in(1, 0, 0), 4096, t).unwrap();
    let lines = unstamped(buf.lines());
    let hashed = &lines[1];
    assert_eq!(hashed["len"], 4096);
    assert!(hashed.get("data").is_none(), "{hashed}");
    assert_eq!(hashed["head"], "00070e151c232a31383f464d545b6269");
    assert_eq!(hashed["sha256"], want);
    assert_eq!(lines[2]["data"].as_str().unwrap().len(), 2 * INLINE_MAX);
    assert_eq!(lines[3]["data"].as_str().unwrap(), hex::encode(&big));

    let buf = Shared::default();
    let w = TranscriptWriter::new(buf.clone())
        .with_options(RecordOptions { data: DataMode::Full, redact: false });
    let mut r = Recorder::usb(Fake(k230_info(None), vec![]), w);
    r.control_out(ControlSetup::vendor_out(12, 0, 0x471), &big, t).unwrap();
    assert_eq!(buf.lines()[1]["data"].as_str().unwrap(), hex::encode(&big));
}

#[test]
fn the_hash_is_the_sha256_of_the_bytes() {
    // "abc": FIPS 180-2 appendix B.1.
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let p = Payload::Hashed {
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        len: 3,
        head: vec![],
    };
    assert!(p.matches(b"abc"));
    assert!(!p.matches(b"abd"));
}

#[test]
fn redaction_replaces_serials_with_stable_placeholders_of_the_same_length() {
    let buf = Shared::default();
    let w =
        TranscriptWriter::new(buf.clone()).with_options(RecordOptions { redact: true, ..Default::default() });
    let serial = "0123456789AB";
    // The device answers its serial in ASCII and as a string descriptor (UTF-16LE).
    let mut answer = b"SN=0123456789AB;".to_vec();
    answer.extend("0123456789AB".encode_utf16().flat_map(u16::to_le_bytes));
    let t = Duration::from_millis(1);
    let mut r = Recorder::usb(Fake(k230_info(Some(serial)), answer.clone()), w.clone());
    r.control_in(ControlSetup::vendor_in(1, 0, 0), 200, t).unwrap();
    // The same board re-enumerates: the same placeholder.
    let mut info2 = k230_info(Some(serial));
    info2.address = 6;
    let mut r2 = Recorder::usb(Fake(info2, vec![]), w.clone());
    assert!(r2.bulk_out(1, b"x", t).is_err());
    // Another board: another placeholder.
    let _r3 = Recorder::usb(Fake(k230_info(Some("FFFF0000")), vec![]), w);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains(serial), "{text}");
    let lines = buf.lines();
    assert_eq!(lines[0]["serial"], "REDACTED1xxx");
    assert_eq!(lines[2]["serial"], "REDACTED1xxx");
    assert_eq!(lines[4]["serial"], "00000002");
    let data = hex::decode(lines[1]["data"].as_str().unwrap()).unwrap();
    assert_eq!(data.len(), answer.len());
    assert_eq!(&data[..16], b"SN=REDACTED1xxx;");
    let utf16: Vec<u8> = "REDACTED1xxx".encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(&data[16..], &utf16[..]);
}

#[test]
fn redaction_of_the_command_line() {
    let buf = Shared::default();
    let w =
        TranscriptWriter::new(buf.clone()).with_options(RecordOptions { redact: true, ..Default::default() });
    w.learn_serial("ABCDEF123");
    w.header(&reader::Header {
        racklet_flash: "0.1.0".into(),
        board: Some("canmv-k230".into()),
        argv: vec!["racklet-flash".into(), "--port".into(), "29f1:0230:ABCDEF123".into()],
        ..Default::default()
    });
    let l = &buf.lines()[0];
    assert_eq!(l["argv"][2], "29f1:0230:REDACTED1");
    assert_eq!(l["format"], 1);
    assert_eq!(l["t"], "header");
}

#[test]
fn placeholders() {
    assert_eq!(placeholder_for(1, 12), "REDACTED1xxx");
    assert_eq!(placeholder_for(2, 9), "REDACTED2");
    assert_eq!(placeholder_for(3, 4), "0003");
    assert_eq!(placeholder_for(12, 1), "2");
}

/// A fake serial link that answers every read with "C".
struct FakeSerial(SerialInfo);
impl SerialLink for FakeSerial {
    fn info(&self) -> &SerialInfo {
        &self.0
    }
    fn write_all(&mut self, _: &[u8]) -> Result<(), LinkError> {
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8], _: Duration) -> Result<usize, LinkError> {
        buf[0] = b'C';
        Ok(1)
    }
    fn set_baud(&mut self, _: u32) -> Result<(), LinkError> {
        Ok(())
    }
    fn clear_input(&mut self) -> Result<(), LinkError> {
        Ok(())
    }
}

#[test]
fn serial_records() {
    let buf = Shared::default();
    let info = SerialInfo {
        path: "/dev/ttyACM0".into(),
        vid: Some(0x3346),
        pid: Some(0x1000),
        serial: None,
        manufacturer: None,
        product: Some("USB Com Port".into()),
        port_path: Some("1-2".into()),
    };
    let mut r = Recorder::serial_open(FakeSerial(info), TranscriptWriter::new(buf.clone()), 115200);
    r.set_baud(921600).unwrap();
    r.write_all(&[0x01, 0x02]).unwrap();
    let mut b = [0u8; 4];
    r.read(&mut b, Duration::from_millis(1)).unwrap();
    r.clear_input().unwrap();
    let lines = unstamped(buf.lines());
    assert_eq!(
        lines[0],
        json!({"t":"open","link":"serial","path":"/dev/ttyACM0","vid":13126,"pid":4096,"serial":null,
               "manufacturer":null,"product":"USB Com Port","port_path":"1-2","baud":115200})
    );
    assert_eq!(lines[1], json!({"t":"baud","rate":921600}));
    assert_eq!(lines[2], json!({"t":"serial_out","data":"0102"}));
    assert_eq!(lines[3], json!({"t":"serial_in","data":"43"}));
    assert_eq!(lines[4], json!({"t":"serial_clear"}));
}

#[test]
fn a_zst_name_writes_zstd_and_the_reader_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl.zst");
    let w = TranscriptWriter::create(&path).unwrap();
    w.header(&reader::Header { racklet_flash: "0.1.0".into(), ..Default::default() });
    let mut r = Recorder::usb(Fake(k230_info(None), vec![]), w.clone());
    r.bulk_in(0x81, 64, Duration::from_millis(1)).unwrap();
    w.end(&reader::End { exit: 0, ..Default::default() });
    w.finish().unwrap();
    let raw = std::fs::read(&path).unwrap();
    // zstd's frame magic (RFC 8878 §3.1.1).
    assert_eq!(&raw[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    let t = reader::read_path(&path).unwrap();
    assert_eq!(t.version, 1);
    assert_eq!(t.entries.len(), 3);
    assert!(
        matches!(&t.entries[1].record, Record::BulkIn { ep: 0x81, max: Some(64), data, err: None } if data == &[0xab, 0xcd])
    );
    assert_eq!(t.end().unwrap().exit, 0);
}

#[test]
fn version_0_transcripts_stay_readable() {
    // Lines as the recorder before format 1 wrote them (the old DESIGN.md format).
    let v0 = r#"{"t":"open","vid":8711,"pid":13578}
{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"dead"}
{"t":"ctrl_in","rt":192,"req":1,"val":0,"idx":0,"len":4,"data":"4b323330"}
{"t":"bulk_out","ep":1,"data":"0102ff","err":"bulk OUT: the device stalled the transfer (it refused the request or the data)"}
{"t":"bulk_in","ep":129,"data":"","err":"bulk IN from endpoint 0x81 timed out after 5s"}
{"t":"baud","rate":115200}
{"t":"serial_out","data":"0102"}
{"t":"serial_in","data":"","err":"reading /dev/ttyUSB0: the device disconnected"}
"#;
    let t = reader::parse(v0.as_bytes(), "old.jsonl").unwrap();
    assert_eq!(t.version, 0);
    assert!(t.header.is_none());
    let r: Vec<&Record> = t.entries.iter().map(|e| &e.record).collect();
    assert!(
        matches!(r[0], Record::Open { device: Device::Usb(i), baud: None } if i.vid == 0x2207 && i.pid == 0x350a)
    );
    assert!(
        matches!(r[1], Record::ControlOut { data: Payload::Bytes(d), err: None, .. } if d == &[0xde, 0xad])
    );
    assert!(matches!(r[3], Record::BulkOut { err: Some(e), .. } if e.kind == ErrKind::Stall));
    assert!(matches!(r[4], Record::BulkIn { err: Some(e), max: None, .. } if e.kind == ErrKind::Timeout));
    assert!(matches!(r[5], Record::Open { device: Device::Serial(_), baud: Some(115200) }));
    assert!(matches!(r[7], Record::SerialIn { err: Some(e), .. } if e.kind == ErrKind::Disconnected));
    assert_eq!(t.entries[4].line, 5);
    // The error comes back as the same error.
    if let Record::BulkIn { err: Some(e), .. } = r[4] {
        let le = e.to_link_error(Duration::from_secs(5));
        assert_eq!(le.to_string(), "bulk IN from endpoint 0x81 timed out after 5s");
    }
}

#[test]
fn bad_transcripts_name_the_line() {
    let e =
        reader::parse("{\"t\":\"open\",\"vid\":1,\"pid\":2}\nnot json\n".as_bytes(), "x.jsonl").unwrap_err();
    assert!(e.to_string().starts_with("x.jsonl, line 2: not JSON"), "{e}");
    let e =
        reader::parse("{\"t\":\"bulk_out\",\"ep\":1,\"data\":\"zz\"}\n".as_bytes(), "x.jsonl").unwrap_err();
    assert!(e.to_string().contains("line 1: \"data\" is not hex"), "{e}");
    let e = reader::parse("{\"t\":\"header\",\"format\":9}\n".as_bytes(), "x.jsonl").unwrap_err();
    assert!(matches!(e, reader::TranscriptError::Newer { found: 9, .. }), "{e}");
    let e = reader::parse("{\"t\":\"warp\"}\n".as_bytes(), "x.jsonl").unwrap_err();
    assert!(e.to_string().contains("unknown record type 'warp'"), "{e}");
    assert_eq!(crate::Classify::class(&e), crate::FailureClass::BadInput);
}

/// A bus whose listing the test sets.
#[derive(Default)]
struct ListBus(Mutex<Vec<UsbInfo>>);
impl UsbBus for ListBus {
    fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn open(&self, _: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
        Err(LinkError::not_found("x"))
    }
}

#[test]
fn the_recording_bus_writes_the_boards_devices_coming_and_going() {
    let buf = Shared::default();
    let inner = Arc::new(ListBus::default());
    let keyboard =
        UsbInfo { vid: 0x046d, pid: 0xc31c, port_path: "1-1".into(), address: 2, ..Default::default() };
    let rom = UsbInfo { vid: 0x2207, pid: 0x350a, port_path: "1-3".into(), address: 7, ..Default::default() };
    // The next stage: other ids, the same port.
    let plug =
        UsbInfo { vid: 0x2207, pid: 0x0000, port_path: "1-3".into(), address: 8, ..Default::default() };
    let bus = RecordingUsbBus::new(
        inner.clone(),
        TranscriptWriter::new(buf.clone()),
        Interest { ids: vec![(0x2207, 0x350a)] },
    );
    *inner.0.lock().unwrap() = vec![keyboard.clone(), rom.clone()];
    assert_eq!(bus.devices().unwrap().len(), 2);
    bus.devices().unwrap();
    *inner.0.lock().unwrap() = vec![keyboard.clone(), plug.clone()];
    bus.devices().unwrap();
    let lines = unstamped(buf.lines());
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!((lines[0]["t"].as_str(), lines[0]["address"].as_u64()), (Some("attach"), Some(7)));
    assert_eq!((lines[1]["t"].as_str(), lines[1]["address"].as_u64()), (Some("attach"), Some(8)));
    assert_eq!(lines[2], json!({"t":"detach","link":"usb","port_path":"1-3","address":7}));
}

#[test]
fn records_start_with_their_type_and_time() {
    let buf = Shared::default();
    let w = TranscriptWriter::new(buf.clone());
    w.record(json!({"rate": 9600, "t": "baud", "at": 5}));
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text, "{\"t\":\"baud\",\"at\":5,\"rate\":9600}\n");
}

/// A sink that fails once `room` bytes are written, like a full disk.
struct Full(usize);
impl Write for Full {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if b.len() > self.0 {
            return Err(std::io::Error::other("no space left on device"));
        }
        self.0 -= b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_is_reported_by_finish() {
    let w = TranscriptWriter::new(Full(40));
    w.record(json!({"t":"baud","at":1,"rate":115200}));
    w.record(json!({"t":"serial_out","at":2,"data":"00112233445566778899"}));
    let e = w.finish().unwrap_err();
    assert!(e.to_string().contains("no space"), "{e}");
}

#[test]
fn port_writers_tag_their_records() {
    let buf = Shared::default();
    let w = TranscriptWriter::new(buf.clone());
    let (a, b) = (w.with_port("1-1"), w.with_port("1-2"));
    a.record(json!({"t":"open","vid":1,"pid":2}));
    b.record(json!({"t":"open","vid":1,"pid":2}));
    w.record(json!({"t":"baud","rate":9600}));
    let lines = unstamped(buf.lines());
    assert_eq!(lines[0], json!({"t":"open","vid":1,"pid":2,"port":"1-1"}));
    assert_eq!(lines[1]["port"], "1-2");
    assert!(lines[2].get("port").is_none());
}
