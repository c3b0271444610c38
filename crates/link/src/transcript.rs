//! Transcripts: JSON Lines records of everything that crossed a link.
//!
//! The format is the project's own and versioned: docs/transcripts.md.
//! Version 1 starts with a `header` record (format version, racklet-flash
//! version, board, command line, input files), has an `open` record with
//! the device's descriptors, port path, address and speed at every
//! enumeration the client opened (`attach`/`detach` for the ones it only
//! saw), one record per transfer (`t` names the kind, `data` is lower-case
//! hex, a failed transfer adds `err` and `err_kind`), and ends with an `end`
//! record (the run's exit code). Version 0 (no header) is the format before
//! it; [`reader`] reads both.
//!
//! Size: host-to-device data longer than [`INLINE_MAX`] bytes is stored as
//! its SHA-256 and length ([`DataMode::Hashed`], the default); device data
//! is always stored whole (a replay must answer with it). A file named
//! `*.zst` is written zstd-compressed ([`TranscriptWriter::for_path`]).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{ControlSetup, LinkError, SerialBus, SerialInfo, SerialLink, UsbBus, UsbInfo, UsbLink, Watcher};

pub mod reader;

/// The transcript format this build writes.
pub const FORMAT: u32 = 1;

/// Host-to-device data longer than this is stored as SHA-256 and length
/// unless [`DataMode::Full`]: protocol commands (a Rockchip CBW, a fastboot
/// command, an XMODEM-128 block) stay readable, bulk payload chunks do not
/// cost twice their size in hex.
pub const INLINE_MAX: usize = 256;

/// How many leading bytes of hashed data are kept as `head` (the packet
/// header of a chunk, for bug reports).
pub const HEAD_LEN: usize = 16;

/// zstd level of `.jsonl.zst` transcripts (zstd's own default).
const ZSTD_LEVEL: i32 = 3;

/// A compressed transcript is flushed (a zstd block ended) at most this
/// often: the data reaches the file as the run goes, and small records
/// still compress well.
const ZSTD_FLUSH_EVERY: Duration = Duration::from_millis(250);

/// How host-to-device data is stored (`--record-data`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataMode {
    /// Longer than [`INLINE_MAX`]: `sha256`, `len` and `head` only.
    #[default]
    Hashed,
    /// Every byte, as hex.
    Full,
}

/// What a recording keeps (`--record-data`, `--record-redact`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordOptions {
    pub data: DataMode,
    /// Replace USB serial numbers (in descriptors, data and error texts)
    /// with stable placeholders of the same length.
    pub redact: bool,
}

/// Where the records go.
enum Out {
    Plain(Box<dyn Write + Send>),
    Zstd { enc: zstd::stream::write::Encoder<'static, Box<dyn Write + Send>>, flushed: Instant },
    Finished,
}

impl Out {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Plain(w) => {
                w.write_all(line)?;
                w.flush()
            }
            Out::Zstd { enc, flushed } => {
                enc.write_all(line)?;
                if flushed.elapsed() >= ZSTD_FLUSH_EVERY {
                    *flushed = Instant::now();
                    enc.flush()?;
                }
                Ok(())
            }
            Out::Finished => Ok(()),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match std::mem::replace(self, Out::Finished) {
            Out::Plain(mut w) => w.flush(),
            Out::Zstd { enc, .. } => enc.finish()?.flush(),
            Out::Finished => Ok(()),
        }
    }
}

/// Where the records go, and the first write that failed.
struct Sink {
    out: Out,
    error: Option<std::io::Error>,
}

struct Shared {
    sink: Mutex<Sink>,
    start: Instant,
    /// Serial numbers seen, in order: the n-th is replaced by placeholder n.
    serials: Mutex<Vec<String>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A writer dropped without `finish` still ends its zstd frame.
        let _ = self.sink.get_mut().unwrap_or_else(|e| e.into_inner()).out.finish();
    }
}

/// A shared, thread-safe transcript sink. Clones write to the same sink;
/// [`TranscriptWriter::with_port`] makes one whose records name the board.
#[derive(Clone)]
pub struct TranscriptWriter {
    shared: Arc<Shared>,
    opts: RecordOptions,
    port: Option<String>,
}

impl std::fmt::Debug for TranscriptWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TranscriptWriter")
    }
}

/// True when `path` names a compressed transcript (`*.zst`).
pub fn is_compressed_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zst"))
}

/// SHA-256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl TranscriptWriter {
    fn with_out(out: Out) -> Self {
        TranscriptWriter {
            shared: Arc::new(Shared {
                sink: Mutex::new(Sink { out, error: None }),
                start: Instant::now(),
                serials: Mutex::new(Vec::new()),
            }),
            opts: RecordOptions::default(),
            port: None,
        }
    }

    /// Writes records to `out`, uncompressed (the caller opens the file:
    /// see `racklet_image::output` for how racklet-flash does it, and
    /// [`TranscriptWriter::for_path`] for compression by name).
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self::with_out(Out::Plain(Box::new(out)))
    }

    /// Writes records to `out`, zstd-compressed.
    pub fn zstd(out: impl Write + Send + 'static) -> std::io::Result<Self> {
        let enc = zstd::stream::write::Encoder::new(Box::new(out) as Box<dyn Write + Send>, ZSTD_LEVEL)?;
        Ok(Self::with_out(Out::Zstd { enc, flushed: Instant::now() }))
    }

    /// Writes records to `out`, an already opened file at `path`:
    /// zstd-compressed when the name ends in `.zst`.
    pub fn for_path(path: &Path, out: impl Write + Send + 'static) -> std::io::Result<Self> {
        if is_compressed_name(path) { Self::zstd(out) } else { Ok(Self::new(out)) }
    }

    /// Creates (truncates) `path` and writes records there (compressed when
    /// the name ends in `.zst`).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::File::create(path)?;
        Self::for_path(path, std::io::BufWriter::new(f))
    }

    /// The same writer with these options (set before it is shared).
    pub fn with_options(mut self, opts: RecordOptions) -> Self {
        self.opts = opts;
        self
    }

    /// A writer to the same sink whose records carry `"port": port`, so the
    /// boards of a parallel run can be told apart.
    pub fn with_port(&self, port: &str) -> Self {
        TranscriptWriter { port: Some(port.into()), ..self.clone() }
    }

    /// The options records are written with.
    pub fn options(&self) -> RecordOptions {
        self.opts
    }

    /// Appends one record (one whole line: records of parallel jobs never
    /// interleave), stamped with `at` (microseconds since the writer was
    /// made) unless it has one. After a failed write nothing more is
    /// written, and [`TranscriptWriter::finish`] reports the failure.
    pub fn record(&self, mut value: Value) {
        if let Value::Object(m) = &mut value {
            if !m.contains_key("at") {
                m.insert("at".into(), json!(self.shared.start.elapsed().as_micros() as u64));
            }
            if let Some(p) = &self.port {
                m.insert("port".into(), Value::String(p.clone()));
            }
        }
        let line = line_of(&value);
        let mut s = self.shared.sink.lock().unwrap_or_else(|e| e.into_inner());
        if s.error.is_some() {
            return;
        }
        if let Err(e) = s.out.write_line(line.as_bytes()) {
            s.error = Some(e);
        }
    }

    /// Writes the `header` record: the first of a version 1 transcript.
    pub fn header(&self, h: &reader::Header) {
        let mut h = h.clone();
        h.format = FORMAT;
        if self.opts.redact {
            h.argv = h.argv.iter().map(|a| self.redact_text(a)).collect();
        }
        let mut v = serde_json::to_value(&h).unwrap_or_else(|_| json!({}));
        v["t"] = json!("header");
        v["at"] = json!(0);
        self.record(v);
    }

    /// Writes the `end` record: how the run ended.
    pub fn end(&self, end: &reader::End) {
        let mut v = serde_json::to_value(end).unwrap_or_else(|_| json!({}));
        v["t"] = json!("end");
        if self.opts.redact
            && let Some(m) = v.get("message").and_then(Value::as_str)
        {
            v["message"] = json!(self.redact_text(m));
        }
        self.record(v);
    }

    /// Flushes and ends the file (the zstd frame of a compressed one); the
    /// first write error, if any write failed. Records written afterwards
    /// are dropped.
    pub fn finish(&self) -> std::io::Result<()> {
        let mut s = self.shared.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        s.out.finish()
    }

    /// Learns a serial number to redact (a `--port vid:pid:SERIAL` before
    /// any device was seen).
    pub fn learn_serial(&self, serial: &str) {
        if self.opts.redact && !serial.is_empty() {
            self.placeholder(serial);
        }
    }

    /// The placeholder of `serial`: the same length, the same for every
    /// occurrence in this transcript (`REDACTED1xxxxxxx`, or digits when
    /// the serial is shorter).
    fn placeholder(&self, serial: &str) -> String {
        let mut s = self.shared.serials.lock().unwrap_or_else(|e| e.into_inner());
        let n = match s.iter().position(|x| x == serial) {
            Some(i) => i + 1,
            None => {
                s.push(serial.to_string());
                s.len()
            }
        };
        placeholder_for(n, serial.len())
    }

    /// `text` with every known serial number replaced.
    fn redact_text(&self, text: &str) -> String {
        if !self.opts.redact {
            return text.to_string();
        }
        let known = self.shared.serials.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = text.to_string();
        for (i, s) in known.iter().enumerate() {
            if !s.is_empty() {
                out = out.replace(s.as_str(), &placeholder_for(i + 1, s.len()));
            }
        }
        out
    }

    /// `data` with every known serial number (ASCII or UTF-16LE, as in a
    /// string descriptor) replaced, when redacting.
    fn redact_bytes<'d>(&self, data: &'d [u8]) -> std::borrow::Cow<'d, [u8]> {
        if !self.opts.redact {
            return data.into();
        }
        let known = self.shared.serials.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out: Option<Vec<u8>> = None;
        for (i, s) in known.iter().enumerate() {
            // Very short serials would match random payload bytes.
            if s.len() < 4 {
                continue;
            }
            let ph = placeholder_for(i + 1, s.len());
            let utf16 = |x: &str| x.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
            for (from, to) in [(s.as_bytes().to_vec(), ph.as_bytes().to_vec()), (utf16(s), utf16(&ph))] {
                let buf = out.get_or_insert_with(|| data.to_vec());
                replace_all(buf, &from, &to);
            }
        }
        match out {
            Some(v) if v != data => v.into(),
            _ => data.into(),
        }
    }

    /// The data fields of a record: `data` as hex, or `sha256`, `len` and
    /// `head` for long host-to-device data (`to_device`) when hashing.
    fn data_fields(&self, m: &mut Map<String, Value>, data: &[u8], to_device: bool) {
        let data = self.redact_bytes(data);
        if to_device && self.opts.data == DataMode::Hashed && data.len() > INLINE_MAX {
            m.insert("sha256".into(), json!(sha256_hex(&data)));
            m.insert("len".into(), json!(data.len()));
            m.insert("head".into(), json!(hex::encode(&data[..HEAD_LEN])));
        } else {
            m.insert("data".into(), json!(hex::encode(&data)));
        }
    }

    /// Adds `err` and `err_kind` for a failed transfer.
    fn err_fields<T>(&self, m: &mut Map<String, Value>, r: &Result<T, LinkError>) {
        if let Err(e) = r {
            m.insert("err".into(), json!(self.redact_text(&e.to_string())));
            m.insert("err_kind".into(), json!(reader::ErrKind::of(e).name()));
        }
    }

    /// A USB device's facts as record fields (serial redacted when asked).
    fn usb_fields(&self, info: &UsbInfo) -> Map<String, Value> {
        let mut info = info.clone();
        if self.opts.redact
            && let Some(s) = &info.serial
        {
            info.serial = Some(self.placeholder(s));
        }
        match serde_json::to_value(&info) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// A serial port's facts as record fields.
    fn serial_fields(&self, info: &SerialInfo) -> Map<String, Value> {
        let mut info = info.clone();
        if self.opts.redact
            && let Some(s) = &info.serial
        {
            info.serial = Some(self.placeholder(s));
        }
        match serde_json::to_value(&info) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    fn write(&self, t: &str, link: Option<&str>, mut m: Map<String, Value>) {
        m.insert("t".into(), json!(t));
        if let Some(l) = link {
            m.insert("link".into(), json!(l));
        }
        self.record(Value::Object(m));
    }
}

/// One record as a line, `t` and `at` first (easier to read and grep).
fn line_of(v: &Value) -> String {
    let Value::Object(m) = v else { return format!("{v}\n") };
    let mut parts = Vec::with_capacity(m.len());
    for k in ["t", "at"] {
        if let Some(x) = m.get(k) {
            parts.push(format!("{}:{x}", Value::String(k.into())));
        }
    }
    for (k, x) in m {
        if k != "t" && k != "at" {
            parts.push(format!("{}:{x}", Value::String(k.clone())));
        }
    }
    format!("{{{}}}\n", parts.join(","))
}

/// Placeholder number `n` of length `len`.
fn placeholder_for(n: usize, len: usize) -> String {
    let base = format!("REDACTED{n}");
    if len >= base.len() {
        format!("{base:x<len$}")
    } else {
        let digits = format!("{n:0>len$}");
        digits[digits.len() - len..].to_string()
    }
}

/// Replaces every occurrence of `from` in `buf` by `to` (same length).
fn replace_all(buf: &mut [u8], from: &[u8], to: &[u8]) {
    debug_assert_eq!(from.len(), to.len());
    if from.is_empty() || from.len() > buf.len() {
        return;
    }
    let mut i = 0;
    while i + from.len() <= buf.len() {
        if &buf[i..i + from.len()] == from {
            buf[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

/// Wraps a link and records every transfer.
pub struct Recorder<L> {
    inner: L,
    w: TranscriptWriter,
}

impl<L: UsbLink> Recorder<L> {
    /// Wraps a USB link; writes an `open` record (the device's
    /// descriptors, port path, address and speed) first.
    pub fn usb(inner: L, w: TranscriptWriter) -> Self {
        let m = w.usb_fields(inner.info());
        w.write("open", Some("usb"), m);
        Recorder { inner, w }
    }
}

impl<L: SerialLink> Recorder<L> {
    /// Wraps a serial link without an `open` record (the caller writes one).
    pub fn serial(inner: L, w: TranscriptWriter) -> Self {
        Recorder { inner, w }
    }

    /// Wraps a serial link just opened at `baud`; writes an `open` record
    /// (the tty, its USB facts and the rate) first.
    pub fn serial_open(inner: L, w: TranscriptWriter, baud: u32) -> Self {
        let mut m = w.serial_fields(inner.info());
        m.insert("baud".into(), json!(baud));
        w.write("open", Some("serial"), m);
        Recorder { inner, w }
    }
}

impl<L> Recorder<L> {
    /// The wrapped link.
    pub fn into_inner(self) -> L {
        self.inner
    }
}

fn setup_fields(s: &ControlSetup) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("rt".into(), json!(s.request_type));
    m.insert("req".into(), json!(s.request));
    m.insert("val".into(), json!(s.value));
    m.insert("idx".into(), json!(s.index));
    m
}

impl<L: UsbLink> UsbLink for Recorder<L> {
    fn info(&self) -> &UsbInfo {
        self.inner.info()
    }

    fn control_out(&mut self, s: ControlSetup, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let r = self.inner.control_out(s, data, timeout);
        let mut m = setup_fields(&s);
        self.w.data_fields(&mut m, data, true);
        self.w.err_fields(&mut m, &r);
        self.w.write("ctrl_out", None, m);
        r
    }

    fn control_in(&mut self, s: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let r = self.inner.control_in(s, len, timeout);
        let mut m = setup_fields(&s);
        m.insert("len".into(), json!(len));
        self.w.data_fields(&mut m, r.as_deref().unwrap_or_default(), false);
        self.w.err_fields(&mut m, &r);
        self.w.write("ctrl_in", None, m);
        r
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let r = self.inner.bulk_out(ep, data, timeout);
        let mut m = Map::new();
        m.insert("ep".into(), json!(ep));
        self.w.data_fields(&mut m, data, true);
        self.w.err_fields(&mut m, &r);
        self.w.write("bulk_out", None, m);
        r
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let r = self.inner.bulk_in(ep, max_len, timeout);
        let mut m = Map::new();
        m.insert("ep".into(), json!(ep));
        m.insert("max".into(), json!(max_len));
        self.w.data_fields(&mut m, r.as_deref().unwrap_or_default(), false);
        self.w.err_fields(&mut m, &r);
        self.w.write("bulk_in", None, m);
        r
    }
}

impl<L: SerialLink> SerialLink for Recorder<L> {
    fn info(&self) -> &SerialInfo {
        self.inner.info()
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        let r = self.inner.write_all(data);
        let mut m = Map::new();
        self.w.data_fields(&mut m, data, true);
        self.w.err_fields(&mut m, &r);
        self.w.write("serial_out", None, m);
        r
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        let r = self.inner.read(buf, timeout);
        let mut m = Map::new();
        match &r {
            Ok(n) => self.w.data_fields(&mut m, &buf[..*n], false),
            // Timeouts while polling are normal on serial ROMs, and how many
            // there are depends on timing: record real failures only.
            Err(LinkError::Timeout { .. }) => return r,
            Err(_) => {
                m.insert("data".into(), json!(""));
                self.w.err_fields(&mut m, &r);
            }
        }
        self.w.write("serial_in", None, m);
        r
    }

    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        let r = self.inner.set_baud(baud);
        let mut m = Map::new();
        m.insert("rate".into(), json!(baud));
        self.w.err_fields(&mut m, &r);
        self.w.write("baud", None, m);
        r
    }

    fn clear_input(&mut self) -> Result<(), LinkError> {
        let r = self.inner.clear_input();
        let mut m = Map::new();
        self.w.err_fields(&mut m, &r);
        self.w.write("serial_clear", None, m);
        r
    }

    fn latency_timer(&self) -> Option<Duration> {
        self.inner.latency_timer()
    }

    fn set_latency_timer(&mut self, to: Duration) -> Result<(), LinkError> {
        self.inner.set_latency_timer(to)
    }
}

/// Which devices a recording bus writes `attach`/`detach` records for: the
/// board's own ids, and anything at a port path where one of them was seen
/// (the next stage of a board that follows it by port path). Other devices
/// on the user's bus (a keyboard, a webcam) are none of the transcript's
/// business.
#[derive(Debug, Clone, Default)]
pub struct Interest {
    pub ids: Vec<(u16, u16)>,
}

/// A USB bus that records the board's devices coming and going, so a
/// replay shows a stage the client followed but never opened.
pub struct RecordingUsbBus {
    inner: Arc<dyn UsbBus>,
    w: TranscriptWriter,
    interest: Interest,
    /// (port path, address) present at the last listing.
    present: Mutex<Vec<(String, u8)>>,
    ports: Mutex<HashSet<String>>,
}

impl RecordingUsbBus {
    pub fn new(inner: Arc<dyn UsbBus>, w: TranscriptWriter, interest: Interest) -> Self {
        RecordingUsbBus {
            inner,
            w,
            interest,
            present: Mutex::new(Vec::new()),
            ports: Mutex::new(HashSet::new()),
        }
    }
}

impl UsbBus for RecordingUsbBus {
    fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
        let list = self.inner.devices()?;
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        let mut now = Vec::new();
        for d in &list {
            let ours = self.interest.ids.contains(&(d.vid, d.pid)) || ports.contains(&d.port_path);
            if !ours {
                continue;
            }
            ports.insert(d.port_path.clone());
            let key = (d.port_path.clone(), d.address);
            if !present.contains(&key) {
                self.w.write("attach", Some("usb"), self.w.usb_fields(d));
            }
            now.push(key);
        }
        for (pp, addr) in present.iter() {
            if !now.iter().any(|(p, a)| p == pp && a == addr) {
                let mut m = Map::new();
                m.insert("port_path".into(), json!(pp));
                m.insert("address".into(), json!(addr));
                self.w.write("detach", Some("usb"), m);
            }
        }
        *present = now;
        Ok(list)
    }

    fn open(&self, info: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
        self.inner.open(info)
    }

    fn watch(&self) -> Box<dyn Watcher> {
        self.inner.watch()
    }
}

/// A serial bus that records the board's ports coming and going (ports of
/// the board's USB ids, or at a USB port path where one was seen).
pub struct RecordingSerialBus {
    inner: Arc<dyn SerialBus>,
    w: TranscriptWriter,
    interest: Interest,
    present: Mutex<Vec<String>>,
    ports: Mutex<HashSet<String>>,
}

impl RecordingSerialBus {
    pub fn new(inner: Arc<dyn SerialBus>, w: TranscriptWriter, interest: Interest) -> Self {
        RecordingSerialBus {
            inner,
            w,
            interest,
            present: Mutex::new(Vec::new()),
            ports: Mutex::new(HashSet::new()),
        }
    }
}

impl SerialBus for RecordingSerialBus {
    fn ports(&self) -> Result<Vec<SerialInfo>, LinkError> {
        let list = self.inner.ports()?;
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        let mut now = Vec::new();
        for p in &list {
            let by_id = p.vid.zip(p.pid).is_some_and(|id| self.interest.ids.contains(&id));
            let by_port = p.port_path.as_ref().is_some_and(|pp| ports.contains(pp));
            if !by_id && !by_port {
                continue;
            }
            if let Some(pp) = &p.port_path {
                ports.insert(pp.clone());
            }
            if !present.contains(&p.path) {
                self.w.write("attach", Some("serial"), self.w.serial_fields(p));
            }
            now.push(p.path.clone());
        }
        for path in present.iter() {
            if !now.contains(path) {
                let mut m = Map::new();
                m.insert("path".into(), json!(path));
                self.w.write("detach", Some("serial"), m);
            }
        }
        *present = now;
        Ok(list)
    }

    fn open(&self, info: &SerialInfo, baud: u32) -> Result<Box<dyn SerialLink>, LinkError> {
        self.inner.open(info, baud)
    }

    fn link_speed(&self, info: &SerialInfo) -> Option<String> {
        self.inner.link_speed(info)
    }
}

#[cfg(test)]
mod tests;
