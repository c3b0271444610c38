//! Transcripts: JSON Lines records of everything that crossed a link.
//!
//! The format is the one in DESIGN.md: one object per transfer, `t` names
//! the kind, `data` is lower-case hex, a failed transfer adds `err`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{ControlSetup, LinkError, SerialInfo, SerialLink, UsbInfo, UsbLink};

/// A shared, thread-safe transcript sink.
#[derive(Clone)]
pub struct TranscriptWriter {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for TranscriptWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TranscriptWriter")
    }
}

impl TranscriptWriter {
    /// Writes records to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        TranscriptWriter { out: Arc::new(Mutex::new(Box::new(out))) }
    }

    /// Creates (truncates) `path` and writes records there.
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let f = std::fs::File::create(path)?;
        Ok(Self::new(std::io::BufWriter::new(f)))
    }

    /// Appends one record.
    pub fn record(&self, value: Value) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A transcript is a diagnostic aid: failing to write it must not fail the flash.
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
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
}
