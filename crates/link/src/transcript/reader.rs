//! The typed transcript reader: versions 0 and 1 (docs/transcripts.md).
//!
//! Version 0 is the format before the `header` record: `open` with `vid`
//! and `pid` only, `baud` where a serial port was opened, `err` as text.
//! Version 1 files start with a `header` whose `format` is 1. Both may be
//! zstd-compressed (recognised by the frame's magic number, whatever the
//! file is called).

use std::io::{BufRead, Read};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Classify, ControlSetup, FailureClass, LinkError, SerialInfo, UsbInfo};

/// The first record of a version 1 transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The transcript format (1).
    #[serde(default)]
    pub format: u32,
    /// The racklet-flash version that wrote it.
    #[serde(default)]
    pub racklet_flash: String,
    /// The board of the run, as the board table names it.
    #[serde(default)]
    pub board: Option<String>,
    /// The command line, program name first.
    #[serde(default)]
    pub argv: Vec<String>,
    /// The input files the command line names, as they were.
    #[serde(default)]
    pub inputs: Vec<InputFile>,
}

/// An input file of the recorded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// As the command line gave it.
    pub path: String,
    pub len: u64,
    pub sha256: String,
}

impl InputFile {
    /// The largest input whose SHA-256 [`InputFile::of_file`] writes down.
    pub const HASH_UP_FRONT: u64 = 256 << 20;

    /// An input read whole: its length and SHA-256.
    pub fn of_bytes(path: &Path, bytes: &[u8]) -> InputFile {
        InputFile {
            path: path.display().to_string(),
            len: bytes.len() as u64,
            sha256: super::sha256_hex(bytes),
        }
    }

    /// An input sent in pieces (a storage image): its length, and its
    /// SHA-256 when it is small enough to hash up front (up to
    /// [`InputFile::HASH_UP_FRONT`]; a multi-GiB image is not read twice:
    /// the field is then empty).
    pub fn of_file(path: &Path) -> std::io::Result<InputFile> {
        let len = std::fs::metadata(path)?.len();
        let sha256 = if len <= Self::HASH_UP_FRONT {
            let mut h = <sha2::Sha256 as sha2::Digest>::new();
            std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
            hex::encode(sha2::Digest::finalize(h))
        } else {
            String::new()
        };
        Ok(InputFile { path: path.display().to_string(), len, sha256 })
    }
}

/// The last record of a version 1 transcript: how the run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// The process exit code.
    pub exit: i32,
    /// The failure class of a failed run (`rejected`, `disconnected`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The error message of a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What kind of failure a recorded transfer had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrKind {
    Stall,
    Timeout,
    Disconnected,
    Interrupted,
    /// Anything else (an I/O error).
    Io,
}

impl ErrKind {
    /// The kind of a link error.
    pub fn of(e: &LinkError) -> ErrKind {
        match e {
            LinkError::Stall { .. } => ErrKind::Stall,
            LinkError::Timeout { .. } => ErrKind::Timeout,
            LinkError::Disconnected { .. } => ErrKind::Disconnected,
            LinkError::Interrupted => ErrKind::Interrupted,
            _ => ErrKind::Io,
        }
    }

    /// The `err_kind` field's value.
    pub fn name(self) -> &'static str {
        match self {
            ErrKind::Stall => "stall",
            ErrKind::Timeout => "timeout",
            ErrKind::Disconnected => "disconnected",
            ErrKind::Interrupted => "interrupted",
            ErrKind::Io => "io",
        }
    }

    fn parse(s: &str) -> Option<ErrKind> {
        Some(match s {
            "stall" => ErrKind::Stall,
            "timeout" => ErrKind::Timeout,
            "disconnected" => ErrKind::Disconnected,
            "interrupted" => ErrKind::Interrupted,
            "io" => ErrKind::Io,
            _ => return None,
        })
    }

    /// A version 0 record has only the text: its kind from the messages
    /// racklet-link's errors print.
    fn from_text(text: &str) -> ErrKind {
        if text.contains("stalled") {
            ErrKind::Stall
        } else if text.contains(" timed out after ") {
            ErrKind::Timeout
        } else if text.contains("disconnected") {
            ErrKind::Disconnected
        } else if text == "interrupted" {
            ErrKind::Interrupted
        } else {
            ErrKind::Io
        }
    }
}

/// A transfer's recorded failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedError {
    pub kind: ErrKind,
    /// The error as it was printed.
    pub text: String,
}

impl RecordedError {
    /// The link error to give the host again: the same kind, and the same
    /// message (the operation is taken back out of the recorded text).
    /// `timeout` is the host's own timeout for a timed-out transfer.
    pub fn to_link_error(&self, timeout: Duration) -> LinkError {
        let t = &self.text;
        let cut =
            |suffix: &str| t.split_once(suffix).map(|(op, _)| op.to_string()).unwrap_or_else(|| t.clone());
        match self.kind {
            ErrKind::Stall => LinkError::Stall { op: cut(": the device stalled") },
            ErrKind::Timeout => LinkError::Timeout { op: cut(" timed out after "), after: timeout },
            ErrKind::Disconnected => LinkError::Disconnected { op: cut(": the device disconnected") },
            ErrKind::Interrupted => LinkError::Interrupted,
            ErrKind::Io => match t.split_once(": ") {
                Some((op, msg)) => LinkError::Io { op: op.to_string(), message: msg.to_string() },
                None => LinkError::Io { op: "replayed transfer".into(), message: t.clone() },
            },
        }
    }
}

/// Data the host sent: whole, or (longer than the writer's inline limit)
/// its SHA-256 and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Bytes(Vec<u8>),
    Hashed {
        /// Lower-case hex.
        sha256: String,
        len: u64,
        /// The first bytes.
        head: Vec<u8>,
    },
}

impl Payload {
    pub fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Hashed { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `data` is what was recorded (by content or by hash).
    pub fn matches(&self, data: &[u8]) -> bool {
        match self {
            Payload::Bytes(b) => b == data,
            Payload::Hashed { sha256, len, .. } => {
                *len == data.len() as u64 && super::sha256_hex(data) == *sha256
            }
        }
    }

    /// The bytes known of it: all, or the head.
    pub fn known(&self) -> &[u8] {
        match self {
            Payload::Bytes(b) => b,
            Payload::Hashed { head, .. } => head,
        }
    }
}

/// A device in an `attach` or `open` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Usb(UsbInfo),
    Serial(SerialInfo),
}

/// A device in a `detach` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRef {
    Usb { port_path: String, address: u8 },
    Serial { path: String },
}

/// One record of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Header(Header),
    /// A board device appeared on the bus (seen in a listing).
    Attach(Device),
    /// A board device left the bus.
    Detach(DeviceRef),
    /// The client opened a device (an enumeration); `baud` for a serial port.
    Open {
        device: Device,
        baud: Option<u32>,
    },
    ControlOut {
        setup: ControlSetup,
        data: Payload,
        err: Option<RecordedError>,
    },
    ControlIn {
        setup: ControlSetup,
        len: u16,
        data: Vec<u8>,
        err: Option<RecordedError>,
    },
    BulkOut {
        ep: u8,
        data: Payload,
        err: Option<RecordedError>,
    },
    /// `max`: the host's read length (version 1).
    BulkIn {
        ep: u8,
        max: Option<usize>,
        data: Vec<u8>,
        err: Option<RecordedError>,
    },
    SerialOut {
        data: Payload,
        err: Option<RecordedError>,
    },
    SerialIn {
        data: Vec<u8>,
        err: Option<RecordedError>,
    },
    Baud {
        rate: u32,
        err: Option<RecordedError>,
    },
    SerialClear {
        err: Option<RecordedError>,
    },
    End(End),
}

impl Record {
    /// The record's `t`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Header(_) => "header",
            Record::Attach(_) => "attach",
            Record::Detach(_) => "detach",
            Record::Open { .. } => "open",
            Record::ControlOut { .. } => "ctrl_out",
            Record::ControlIn { .. } => "ctrl_in",
            Record::BulkOut { .. } => "bulk_out",
            Record::BulkIn { .. } => "bulk_in",
            Record::SerialOut { .. } => "serial_out",
            Record::SerialIn { .. } => "serial_in",
            Record::Baud { .. } => "baud",
            Record::SerialClear { .. } => "serial_clear",
            Record::End(_) => "end",
        }
    }

    /// True for a transfer the host makes (what a replay matches).
    pub fn is_transfer(&self) -> bool {
        !matches!(self, Record::Header(_) | Record::Attach(_) | Record::Detach(_) | Record::End(_))
    }
}

/// A record and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the (decompressed) file.
    pub line: usize,
    /// Microseconds since the recording started (version 1).
    pub at: Option<u64>,
    /// The board of a parallel run the record belongs to.
    pub port: Option<String>,
    pub record: Record,
}

/// A whole transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// 0 (no header) or the header's `format`.
    pub version: u32,
    pub header: Option<Header>,
    /// Every record after the header, in order.
    pub entries: Vec<Entry>,
}

impl Transcript {
    /// How the recorded run ended, when the transcript says.
    pub fn end(&self) -> Option<&End> {
        self.entries.iter().rev().find_map(|e| match &e.record {
            Record::End(end) => Some(end),
            _ => None,
        })
    }
}

/// A transcript that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}, line {line}: {why}")]
    Line { file: String, line: usize, why: String },
    #[error(
        "{file}: transcript format {found} is newer than this racklet-flash reads (up to {})",
        super::FORMAT
    )]
    Newer { file: String, found: u32 },
}

impl Classify for TranscriptError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        match self {
            TranscriptError::Newer { .. } => Some("update racklet-flash to replay it".into()),
            TranscriptError::Line { .. } => {
                Some("a transcript is JSON Lines as docs/transcripts.md describes; was the file edited or cut off?".into())
            }
            TranscriptError::Io { .. } => None,
        }
    }
}

/// zstd's frame magic number.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Reads a transcript file (plain or zstd-compressed).
pub fn read_path(path: &Path) -> Result<Transcript, TranscriptError> {
    let file = path.display().to_string();
    let io = |source| TranscriptError::Io { file: file.clone(), source };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(io)?;
    let f = std::fs::File::open(path).map_err(io)?;
    if n == 4 && magic == ZSTD_MAGIC {
        let dec = zstd::stream::read::Decoder::new(f).map_err(io)?;
        parse(std::io::BufReader::new(dec), &file)
    } else {
        parse(std::io::BufReader::new(f), &file)
    }
}

/// Parses a transcript from `input`; `file` names it in errors.
pub fn parse(input: impl BufRead, file: &str) -> Result<Transcript, TranscriptError> {
    let mut t = Transcript::default();
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| TranscriptError::Line {
            file: file.into(),
            line: n,
            why: format!("cannot be read ({e})"),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let err = |why: String| TranscriptError::Line { file: file.into(), line: n, why };
        let v: Value = serde_json::from_str(&line).map_err(|e| err(format!("not JSON: {e}")))?;
        let kind = v.get("t").and_then(Value::as_str).ok_or_else(|| err("no \"t\" field".into()))?;
        if kind == "header" {
            if n != 1 || t.header.is_some() {
                return Err(err("a header must be the first record".into()));
            }
            let h: Header = serde_json::from_value(v.clone()).map_err(|e| err(format!("header: {e}")))?;
            if h.format > super::FORMAT {
                return Err(TranscriptError::Newer { file: file.into(), found: h.format });
            }
            t.version = h.format;
            t.header = Some(h);
            continue;
        }
        let record = parse_record(kind, &v, t.version).map_err(err)?;
        t.entries.push(Entry {
            line: n,
            at: v.get("at").and_then(Value::as_u64),
            port: v.get("port").and_then(Value::as_str).map(str::to_string),
            record,
        });
    }
    Ok(t)
}

fn field<'v>(v: &'v Value, name: &str) -> Result<&'v Value, String> {
    v.get(name).ok_or_else(|| format!("no \"{name}\" field"))
}

fn uint<T: TryFrom<u64>>(v: &Value, name: &str) -> Result<T, String> {
    let x = field(v, name)?.as_u64().ok_or_else(|| format!("\"{name}\" is not a number"))?;
    T::try_from(x).map_err(|_| format!("\"{name}\" is out of range ({x})"))
}

fn bytes(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = field(v, name)?.as_str().ok_or_else(|| format!("\"{name}\" is not a string"))?;
    hex::decode(s).map_err(|e| format!("\"{name}\" is not hex: {e}"))
}

fn payload(v: &Value) -> Result<Payload, String> {
    if v.get("data").is_some() {
        return Ok(Payload::Bytes(bytes(v, "data")?));
    }
    if let Some(h) = v.get("sha256") {
        let sha256 = h.as_str().ok_or("\"sha256\" is not a string")?.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err("\"sha256\" is not 64 hex digits".into());
        }
        let head = if v.get("head").is_some() { bytes(v, "head")? } else { Vec::new() };
        return Ok(Payload::Hashed { sha256, len: uint(v, "len")?, head });
    }
    Err("neither \"data\" nor \"sha256\"".into())
}

fn in_data(v: &Value) -> Result<Vec<u8>, String> {
    match v.get("data") {
        Some(_) => bytes(v, "data"),
        None if v.get("sha256").is_some() => {
            Err("device data stored only as a hash: a replay needs it whole".into())
        }
        None => Ok(Vec::new()),
    }
}

fn recorded_err(v: &Value) -> Result<Option<RecordedError>, String> {
    let Some(e) = v.get("err") else { return Ok(None) };
    let text = e.as_str().ok_or("\"err\" is not a string")?.to_string();
    let kind = match v.get("err_kind").and_then(Value::as_str) {
        Some(k) => ErrKind::parse(k).ok_or_else(|| format!("unknown err_kind '{k}'"))?,
        None => ErrKind::from_text(&text),
    };
    Ok(Some(RecordedError { kind, text }))
}

fn setup(v: &Value) -> Result<ControlSetup, String> {
    Ok(ControlSetup {
        request_type: uint(v, "rt")?,
        request: uint(v, "req")?,
        value: uint(v, "val")?,
        index: uint(v, "idx")?,
    })
}

/// A device record's fields without the record's own (`t`, `at`, ...).
fn device_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        for k in ["t", "at", "link", "port", "baud"] {
            m.remove(k);
        }
    }
    v
}

fn device(v: &Value, version: u32) -> Result<Device, String> {
    let link = v.get("link").and_then(Value::as_str).unwrap_or("usb");
    let fields = device_fields(v);
    match link {
        "usb" => {
            let info: UsbInfo = serde_json::from_value(fields).map_err(|e| format!("USB device: {e}"))?;
            if version >= 1 && info.port_path.is_empty() {
                return Err("a USB device without \"port_path\"".into());
            }
            Ok(Device::Usb(info))
        }
        "serial" => {
            Ok(Device::Serial(serde_json::from_value(fields).map_err(|e| format!("serial port: {e}"))?))
        }
        other => Err(format!("unknown link '{other}'")),
    }
}

fn parse_record(kind: &str, v: &Value, version: u32) -> Result<Record, String> {
    Ok(match kind {
        "attach" => Record::Attach(device(v, version)?),
        "detach" => match v.get("link").and_then(Value::as_str).unwrap_or("usb") {
            "serial" => Record::Detach(DeviceRef::Serial {
                path: field(v, "path")?.as_str().ok_or("\"path\" is not a string")?.to_string(),
            }),
            _ => Record::Detach(DeviceRef::Usb {
                port_path: field(v, "port_path")?
                    .as_str()
                    .ok_or("\"port_path\" is not a string")?
                    .to_string(),
                address: uint(v, "address")?,
            }),
        },
        "open" => Record::Open {
            device: device(v, version)?,
            baud: v.get("baud").map(|_| uint(v, "baud")).transpose()?,
        },
        // Version 0 wrote `baud` where a serial port was opened (and
        // nothing else of it).
        "baud" if version == 0 => {
            Record::Open { device: Device::Serial(SerialInfo::default()), baud: Some(uint(v, "rate")?) }
        }
        "baud" => Record::Baud { rate: uint(v, "rate")?, err: recorded_err(v)? },
        "ctrl_out" => Record::ControlOut { setup: setup(v)?, data: payload(v)?, err: recorded_err(v)? },
        "ctrl_in" => Record::ControlIn {
            setup: setup(v)?,
            len: uint(v, "len")?,
            data: in_data(v)?,
            err: recorded_err(v)?,
        },
        "bulk_out" => Record::BulkOut { ep: uint(v, "ep")?, data: payload(v)?, err: recorded_err(v)? },
        "bulk_in" => Record::BulkIn {
            ep: uint(v, "ep")?,
            max: v.get("max").map(|_| uint(v, "max")).transpose()?,
            data: in_data(v)?,
            err: recorded_err(v)?,
        },
        "serial_out" => Record::SerialOut { data: payload(v)?, err: recorded_err(v)? },
        "serial_in" => Record::SerialIn { data: in_data(v)?, err: recorded_err(v)? },
        "serial_clear" => Record::SerialClear { err: recorded_err(v)? },
        "end" => Record::End(serde_json::from_value(v.clone()).map_err(|e| format!("end: {e}"))?),
        other => return Err(format!("unknown record type '{other}'")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_file_is_written_down_by_length_and_sha256() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("img");
        std::fs::write(&p, b"abc").unwrap();
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let f = InputFile::of_file(&p).unwrap();
        assert_eq!((f.len, f.sha256.as_str()), (3, abc));
        assert_eq!(InputFile::of_bytes(&p, b"abc"), f);
        assert!(InputFile::of_file(&d.path().join("missing")).is_err());
    }
}
