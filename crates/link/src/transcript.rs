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
}
