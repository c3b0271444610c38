//! Transcripts: JSON Lines records of everything that crossed a link.
//!
//! The format is the one in DESIGN.md: one object per transfer, `t` names
//! the kind, `data` is lower-case hex, a failed transfer adds `err`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{ControlSetup, LinkError, SerialInfo, SerialLink, UsbInfo, UsbLink};

/// Where the records go, and the first write that failed.
struct Sink {
    out: Box<dyn Write + Send>,
    error: Option<std::io::Error>,
}

/// A shared, thread-safe transcript sink. Clones write to the same sink;
/// [`TranscriptWriter::with_port`] makes one whose records name the board.
#[derive(Clone)]
pub struct TranscriptWriter {
    sink: Arc<Mutex<Sink>>,
    port: Option<String>,
}

impl std::fmt::Debug for TranscriptWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TranscriptWriter")
    }
}

impl TranscriptWriter {
    /// Writes records to `out` (the caller opens the file: see
    /// `racklet_image::output` for how racklet-flash does it).
    pub fn new(out: impl Write + Send + 'static) -> Self {
        TranscriptWriter { sink: Arc::new(Mutex::new(Sink { out: Box::new(out), error: None })), port: None }
    }

    /// A writer to the same sink whose records carry `"port": port`, so the
    /// boards of a parallel run can be told apart.
    pub fn with_port(&self, port: &str) -> Self {
        TranscriptWriter { sink: self.sink.clone(), port: Some(port.into()) }
    }

    /// Appends one record (one whole line: records of parallel jobs never
    /// interleave). After a failed write nothing more is written, and
    /// [`TranscriptWriter::finish`] reports the failure.
    pub fn record(&self, mut value: Value) {
        if let (Some(p), Value::Object(m)) = (&self.port, &mut value) {
            m.insert("port".into(), Value::String(p.clone()));
        }
        let mut s = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if s.error.is_some() {
            return;
        }
        let line = format!("{value}\n");
        if let Err(e) = s.out.write_all(line.as_bytes()).and_then(|()| s.out.flush()) {
            s.error = Some(e);
        }
    }

    /// Flushes the sink; the first write error, if any write failed.
    pub fn finish(&self) -> std::io::Result<()> {
        let mut s = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        s.out.flush()
    }
}

fn with_err<T>(mut v: Value, r: &Result<T, LinkError>) -> Value {
    if let Err(e) = r {
        v["err"] = Value::String(e.to_string());
    }
    v
}

/// Wraps a link and records every transfer.
pub struct Recorder<L> {
    inner: L,
    w: TranscriptWriter,
}

impl<L: UsbLink> Recorder<L> {
    /// Wraps a USB link; writes an `open` record first.
    pub fn usb(inner: L, w: TranscriptWriter) -> Self {
        let i = inner.info();
        w.record(json!({"t":"open","vid":i.vid,"pid":i.pid}));
        Recorder { inner, w }
    }
}

impl<L: SerialLink> Recorder<L> {
    /// Wraps a serial link.
    pub fn serial(inner: L, w: TranscriptWriter) -> Self {
        Recorder { inner, w }
    }
}

impl<L> Recorder<L> {
    /// The wrapped link.
    pub fn into_inner(self) -> L {
        self.inner
    }
}

impl<L: UsbLink> UsbLink for Recorder<L> {
    fn info(&self) -> &UsbInfo {
        self.inner.info()
    }

    fn control_out(&mut self, s: ControlSetup, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let r = self.inner.control_out(s, data, timeout);
        self.w.record(with_err(
            json!({"t":"ctrl_out","rt":s.request_type,"req":s.request,"val":s.value,"idx":s.index,"data":hex::encode(data)}),
            &r,
        ));
        r
    }

    fn control_in(&mut self, s: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let r = self.inner.control_in(s, len, timeout);
        let data = r.as_ref().map(hex::encode).unwrap_or_default();
        self.w.record(with_err(
            json!({"t":"ctrl_in","rt":s.request_type,"req":s.request,"val":s.value,"idx":s.index,"len":len,"data":data}),
            &r,
        ));
        r
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let r = self.inner.bulk_out(ep, data, timeout);
        self.w.record(with_err(json!({"t":"bulk_out","ep":ep,"data":hex::encode(data)}), &r));
        r
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let r = self.inner.bulk_in(ep, max_len, timeout);
        let data = r.as_ref().map(hex::encode).unwrap_or_default();
        self.w.record(with_err(json!({"t":"bulk_in","ep":ep,"data":data}), &r));
        r
    }
}

impl<L: SerialLink> SerialLink for Recorder<L> {
    fn info(&self) -> &SerialInfo {
        self.inner.info()
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        let r = self.inner.write_all(data);
        self.w.record(with_err(json!({"t":"serial_out","data":hex::encode(data)}), &r));
        r
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        let r = self.inner.read(buf, timeout);
        match &r {
            Ok(n) => self.w.record(json!({"t":"serial_in","data":hex::encode(&buf[..*n])})),
            // Timeouts while polling are normal on serial ROMs; record real failures only.
            Err(LinkError::Timeout { .. }) => {}
            Err(_) => self.w.record(with_err(json!({"t":"serial_in","data":""}), &r)),
        }
        r
    }

    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        let r = self.inner.set_baud(baud);
        self.w.record(with_err(json!({"t":"baud","rate":baud}), &r));
        r
    }

    fn clear_input(&mut self) -> Result<(), LinkError> {
        self.inner.clear_input()
    }

    fn latency_timer(&self) -> Option<Duration> {
        self.inner.latency_timer()
    }

    fn set_latency_timer(&mut self, to: Duration) -> Result<(), LinkError> {
        self.inner.set_latency_timer(to)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::Value;

    use super::*;

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

    /// A fake USB link with scripted answers.
    struct Fake(UsbInfo);
    impl UsbLink for Fake {
        fn info(&self) -> &UsbInfo {
            &self.0
        }
        fn control_out(&mut self, _: ControlSetup, _: &[u8], _: Duration) -> Result<(), LinkError> {
            Ok(())
        }
        fn control_in(&mut self, _: ControlSetup, _: u16, _: Duration) -> Result<Vec<u8>, LinkError> {
            Ok(b"K230".to_vec())
        }
        fn bulk_out(&mut self, _: u8, _: &[u8], _: Duration) -> Result<(), LinkError> {
            Err(LinkError::Stall { op: "bulk OUT".into() })
        }
        fn bulk_in(&mut self, _: u8, _: usize, _: Duration) -> Result<Vec<u8>, LinkError> {
            Ok(vec![0xAB, 0xCD])
        }
    }

    #[test]
    fn usb_records_use_the_design_md_field_names() {
        let buf = Shared::default();
        let w = TranscriptWriter::new(buf.clone());
        let info = UsbInfo { vid: 0x2207, pid: 0x350a, ..Default::default() };
        let mut r = Recorder::usb(Fake(info), w);
        let t = Duration::from_millis(1);
        r.control_out(ControlSetup::vendor_out(12, 0, 0x471), &[0xDE, 0xAD], t).unwrap();
        r.control_in(ControlSetup::vendor_in(0, 0, 0), 4, t).unwrap();
        assert!(r.bulk_out(1, &[1, 2, 0xFF], t).is_err());
        r.bulk_in(0x81, 64, t).unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 5);
        // Expected objects written out from DESIGN.md's transcript section.
        assert_eq!(lines[0], serde_json::json!({"t":"open","vid":8711,"pid":13578}));
        assert_eq!(
            lines[1],
            serde_json::json!({"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"dead"})
        );
        assert_eq!(
            lines[2],
            serde_json::json!({"t":"ctrl_in","rt":192,"req":0,"val":0,"idx":0,"len":4,"data":"4b323330"})
        );
        assert_eq!(lines[3]["t"], "bulk_out");
        assert_eq!(lines[3]["ep"], 1);
        assert_eq!(lines[3]["data"], "0102ff");
        assert!(lines[3]["err"].as_str().unwrap().contains("stalled"));
        assert_eq!(lines[4], serde_json::json!({"t":"bulk_in","ep":129,"data":"abcd"}));
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
        let mut r = Recorder::serial(FakeSerial(SerialInfo::default()), TranscriptWriter::new(buf.clone()));
        r.set_baud(115200).unwrap();
        r.write_all(&[0x01, 0x02]).unwrap();
        let mut b = [0u8; 4];
        r.read(&mut b, Duration::from_millis(1)).unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0], serde_json::json!({"t":"baud","rate":115200}));
        assert_eq!(lines[1], serde_json::json!({"t":"serial_out","data":"0102"}));
        assert_eq!(lines[2], serde_json::json!({"t":"serial_in","data":"43"}));
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
        w.record(serde_json::json!({"t":"baud","rate":115200}));
        w.finish().unwrap();
        w.record(serde_json::json!({"t":"serial_out","data":"00112233445566778899"}));
        let e = w.finish().unwrap_err();
        assert!(e.to_string().contains("no space"), "{e}");
    }

    #[test]
    fn port_writers_tag_their_records() {
        let buf = Shared::default();
        let w = TranscriptWriter::new(buf.clone());
        let (a, b) = (w.with_port("1-1"), w.with_port("1-2"));
        a.record(serde_json::json!({"t":"open","vid":1,"pid":2}));
        b.record(serde_json::json!({"t":"open","vid":1,"pid":2}));
        w.record(serde_json::json!({"t":"baud","rate":9600}));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0], serde_json::json!({"t":"open","vid":1,"pid":2,"port":"1-1"}));
        assert_eq!(lines[1]["port"], "1-2");
        assert!(lines[2].get("port").is_none());
    }
}
