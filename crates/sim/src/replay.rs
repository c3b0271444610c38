//! Replay: a recorded transcript as a virtual device.
//!
//! The device side of a recording answers exactly as the real one did:
//! control and bulk IN data, serial bytes, stalls, timeouts and other
//! errors, disconnects, and re-enumerations (an `attach` or `open` record
//! is the device appearing at the recorded port path and address). Each
//! host transfer is compared with the next recorded one — kind, endpoint,
//! SETUP packet, length, data, or the SHA-256 where the recording kept only
//! that — and the first one that differs stops the replay with a
//! [`Divergence`]: which transfer, which line, what was recorded, what was
//! sent, and a hex diff.
//!
//! Serial replay hands out a scripted [`SerialLink`] rather than a pty: the
//! recording is what the client's own reads and writes returned, so the
//! replay answers at that level, with the recorded chunks, and can stop at
//! the exact write that differs (over a pty the chunking would depend on
//! timing, and a mismatch would surface as a later timeout).
//!
//! Time: answers come at once unless [`ReplayOptions::timing`] (then no
//! transfer completes earlier after the start than it did in the recording).
//! A transfer that timed out in the recording still takes the host's own
//! timeout: a timeout is time passing, and clients count it. Serial reads
//! that timed out are not recorded (how many there are depends on timing);
//! a read when the recording has no device data next waits the host's
//! timeout and times out. Polling that went on a little longer or stopped a
//! little sooner than recorded (more or fewer timed-out reads in a row) is
//! not a difference.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use racklet_link::transcript::reader::{
    Device, DeviceRef, End, Entry, ErrKind, Payload, Record, RecordedError, Transcript,
};
use racklet_link::{
    Classify, ControlSetup, FailureClass, LinkError, SerialBus, SerialInfo, SerialLink, UsbBus, UsbInfo,
    UsbLink,
};

/// How a replay runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Keep the recording's pace (`--replay-timing`).
    pub timing: bool,
}

/// A transcript that cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}: the transcript holds several boards of a parallel run ({ports}); replay needs one")]
    Parallel { file: String, ports: String },
    #[error("{file}: the transcript has no device in it (no `open` or `attach` record)")]
    NoDevice { file: String },
}

impl Classify for ReplayError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }
    fn hint(&self) -> Option<String> {
        match self {
            ReplayError::Parallel { .. } => Some("record one board per run (one --port) to replay it".into()),
            ReplayError::NoDevice { .. } => None,
        }
    }
}

/// The first host transfer that differed from the recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "replay of {file}: host transfer {number} differs from the recording (line {line}):\n  recorded: {recorded}\n  sent:     {sent}{}",
    diff.as_ref().map(|d| format!("\n{d}")).unwrap_or_default()
)]
pub struct Divergence {
    pub file: String,
    /// 1-based number of the host transfer (opens included).
    pub number: usize,
    /// Line of the recorded record it was compared with (the last line
    /// when the recording had ended).
    pub line: usize,
    /// The recorded transfer.
    pub recorded: String,
    /// The host's transfer.
    pub sent: String,
    /// A hex diff of the data, when both sides had data.
    pub diff: Option<String>,
}

impl Classify for Divergence {
    fn class(&self) -> FailureClass {
        FailureClass::Other
    }
    fn hint(&self) -> Option<String> {
        Some(
            "the client no longer does what it did when this transcript was recorded: if the change is \
             intended, record the capture again (docs/hardware-testing.md)"
                .into(),
        )
    }
}

/// What the host did, for matching and messages.
#[derive(Debug, Clone)]
enum HostOp<'a> {
    OpenUsb(&'a UsbInfo),
    OpenSerial(&'a SerialInfo, u32),
    ControlOut(ControlSetup, &'a [u8]),
    ControlIn(ControlSetup, u16),
    BulkOut(u8, &'a [u8]),
    BulkIn(u8, usize),
    SerialOut(&'a [u8]),
    Baud(u32),
    Clear,
}

impl HostOp<'_> {
    fn describe(&self) -> String {
        match self {
            HostOp::OpenUsb(i) => format!("open USB {} at {} address {}", i.id(), i.port_path, i.address),
            HostOp::OpenSerial(i, b) => format!("open serial {} at {b} baud", i.path),
            HostOp::ControlOut(s, d) => format!("ctrl_out {}, {} bytes{}", setup(s), d.len(), lead(d)),
            HostOp::ControlIn(s, len) => format!("ctrl_in {}, wLength {len}", setup(s)),
            HostOp::BulkOut(ep, d) => format!("bulk_out ep 0x{ep:02x}, {} bytes{}", d.len(), lead(d)),
            HostOp::BulkIn(ep, max) => format!("bulk_in ep 0x{ep:02x}, up to {max} bytes"),
            HostOp::SerialOut(d) => format!("serial_out {} bytes{}", d.len(), lead(d)),
            HostOp::Baud(r) => format!("baud {r}"),
            HostOp::Clear => "serial_clear".into(),
        }
    }

    fn data(&self) -> Option<&[u8]> {
        match self {
            HostOp::ControlOut(_, d) | HostOp::BulkOut(_, d) | HostOp::SerialOut(d) => Some(d),
            _ => None,
        }
    }

    /// An IN poll that may repeat (same kind and endpoint as `r`).
    fn same_poll(&self, r: &Record) -> bool {
        match (self, r) {
            (HostOp::BulkIn(ep, _), Record::BulkIn { ep: e, .. }) => ep == e,
            (HostOp::ControlIn(s, _), Record::ControlIn { setup: rs, .. }) => s == rs,
            _ => false,
        }
    }
}

fn setup(s: &ControlSetup) -> String {
    format!(
        "bmRequestType 0x{:02x} bRequest 0x{:02x} wValue 0x{:04x} wIndex 0x{:04x}",
        s.request_type, s.request, s.value, s.index
    )
}

/// The first bytes, for one-line descriptions.
fn lead(d: &[u8]) -> String {
    if d.is_empty() {
        String::new()
    } else {
        let n = d.len().min(16);
        format!(": {}{}", hex::encode(&d[..n]), if d.len() > n { "…" } else { "" })
    }
}

fn describe_payload(p: &Payload) -> String {
    match p {
        Payload::Bytes(b) => format!("{} bytes{}", b.len(), lead(b)),
        Payload::Hashed { sha256, len, head } => {
            let start =
                if head.is_empty() { String::new() } else { format!(", starting {}…", hex::encode(head)) };
            format!("{len} bytes with sha256 {sha256}{start}")
        }
    }
}

fn describe_record(r: &Record) -> String {
    let err =
        |e: &Option<RecordedError>| e.as_ref().map(|e| format!(" -> error: {}", e.text)).unwrap_or_default();
    match r {
        Record::Open { device: Device::Usb(i), .. } => {
            format!("open USB {} at {} address {}", i.id(), i.port_path, i.address)
        }
        Record::Open { device: Device::Serial(i), baud } => {
            format!("open serial {}{}", i.path, baud.map(|b| format!(" at {b} baud")).unwrap_or_default())
        }
        Record::ControlOut { setup: s, data, err: e } => {
            format!("ctrl_out {}, {}{}", setup(s), describe_payload(data), err(e))
        }
        Record::ControlIn { setup: s, len, err: e, .. } => {
            format!("ctrl_in {}, wLength {len}{}", setup(s), err(e))
        }
        Record::BulkOut { ep, data, err: e } => {
            format!("bulk_out ep 0x{ep:02x}, {}{}", describe_payload(data), err(e))
        }
        Record::BulkIn { ep, max, err: e, .. } => format!(
            "bulk_in ep 0x{ep:02x}{}{}",
            max.map(|m| format!(", up to {m} bytes")).unwrap_or_default(),
            err(e)
        ),
        Record::SerialOut { data, err: e } => format!("serial_out {}{}", describe_payload(data), err(e)),
        Record::SerialIn { data, err: e } => {
            format!("serial_in {} bytes{}{}", data.len(), lead(data), err(e))
        }
        Record::Baud { rate, .. } => format!("baud {rate}"),
        Record::SerialClear { .. } => "serial_clear".into(),
        Record::End(e) => end_text(e),
        other => other.kind().to_string(),
    }
}

fn end_text(e: &End) -> String {
    format!(
        "the end of the recording (the recorded run exited {}{})",
        e.exit,
        e.class.as_ref().map(|c| format!(", {c}")).unwrap_or_default()
    )
}

/// Rows of 16 bytes around the first difference: `-` recorded, `+` sent.
pub fn hex_diff(recorded: &[u8], sent: &[u8]) -> Option<String> {
    let first = recorded
        .iter()
        .zip(sent)
        .position(|(a, b)| a != b)
        .or_else(|| (recorded.len() != sent.len()).then(|| recorded.len().min(sent.len())))?;
    let row0 = first / 16 * 16;
    let end = (row0 + 4 * 16).min(recorded.len().max(sent.len()));
    let mut out = format!("  first difference at byte {first} (0x{first:x}):");
    let row = |d: &[u8], at: usize| {
        if at >= d.len() {
            return "(ends)".to_string();
        }
        d[at..(at + 16).min(d.len())].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
    };
    let mut at = row0;
    while at < end {
        let (a, b) = (row(recorded, at), row(sent, at));
        out.push_str(&format!("\n    -{at:08x}: {a}"));
        out.push_str(&format!("\n    +{at:08x}: {b}"));
        at += 16;
    }
    Some(out)
}

struct State {
    file: String,
    version: u32,
    entries: Vec<Entry>,
    /// The next record.
    pos: usize,
    /// Host transfers so far (the number of the next is this + 1).
    transfers: usize,
    usb: Vec<UsbInfo>,
    serial: Vec<SerialInfo>,
    divergence: Option<Divergence>,
    /// The rest of a recorded serial chunk the host read only part of.
    pending: Vec<u8>,
    /// The last record answered was a timed-out IN poll (its index).
    last_timeout: Option<usize>,
    opts: ReplayOptions,
    /// (replay clock start, recording time of the first answered record).
    clock: Option<(Instant, u64)>,
}

/// What the host is given back.
enum Answer {
    Data(Vec<u8>),
    Done,
    /// The recorded error; `timeout`: wait the host's timeout first.
    Err(LinkError, bool),
}

impl State {
    /// Applies the bus events at the front: devices come and go; an `open`
    /// next means its device is there.
    fn settle(&mut self) {
        self.settle_events(false);
    }

    /// [`State::settle`] for a bus listing: a device that went away is not
    /// listed together with the one that came back, so a client watching
    /// for the old node to leave sees it leave.
    fn settle_listing(&mut self) {
        self.settle_events(true);
    }

    fn settle_events(&mut self, listing: bool) {
        let mut removed = false;
        while let Some(e) = self.entries.get(self.pos) {
            let appears = matches!(e.record, Record::Attach(_) | Record::Open { .. });
            if listing && removed && appears {
                return;
            }
            removed |= matches!(e.record, Record::Detach(_));
            match &e.record {
                Record::Attach(Device::Usb(i)) => {
                    let i = i.clone();
                    self.usb.retain(|d| !(d.port_path == i.port_path && d.address == i.address));
                    self.usb.push(i);
                }
                Record::Attach(Device::Serial(p)) => {
                    let p = p.clone();
                    self.serial.retain(|x| x.path != p.path);
                    self.serial.push(p);
                }
                Record::Detach(DeviceRef::Usb { port_path, address }) => {
                    let (pp, a) = (port_path.clone(), *address);
                    self.usb.retain(|d| !(d.port_path == pp && d.address == a));
                }
                Record::Detach(DeviceRef::Serial { path }) => {
                    let p = path.clone();
                    self.serial.retain(|x| x.path != p);
                }
                Record::Header(_) => {}
                Record::Open { device: Device::Usb(i), .. } => {
                    if !self.usb.iter().any(|d| d.port_path == i.port_path && d.address == i.address) {
                        let i = i.clone();
                        // The board is at one place at a time: an earlier
                        // enumeration at the same port without a detach is gone.
                        self.usb.retain(|d| d.port_path != i.port_path || i.port_path.is_empty());
                        self.usb.push(i);
                    }
                    return;
                }
                Record::Open { device: Device::Serial(p), .. } => {
                    if !self.serial.iter().any(|x| x.path == p.path) {
                        let p = p.clone();
                        self.serial.push(p);
                    }
                    return;
                }
                _ => return,
            }
            self.pos += 1;
        }
    }

    fn line_here(&self) -> usize {
        self.entries.get(self.pos).or(self.entries.last()).map(|e| e.line).unwrap_or(0)
    }

    fn diverge(&mut self, op: &HostOp, recorded: Option<&Record>) -> LinkError {
        let number = self.transfers + 1;
        let (recorded_text, diff) = match recorded {
            Some(r) => {
                let diff = match (r, op.data()) {
                    (
                        Record::ControlOut { data, .. }
                        | Record::BulkOut { data, .. }
                        | Record::SerialOut { data, .. },
                        Some(sent),
                    ) => match data {
                        Payload::Bytes(b) => hex_diff(b, sent),
                        Payload::Hashed { sha256, head, len } => {
                            let mut d = format!(
                                "  sent {} bytes with sha256 {}, recorded {len} bytes with sha256 {sha256}",
                                sent.len(),
                                racklet_link::transcript::sha256_hex(sent)
                            );
                            if let Some(h) = hex_diff(head, &sent[..head.len().min(sent.len())]) {
                                d.push_str(&format!(
                                    "\n  (of the first {} bytes, the recording kept)\n{h}",
                                    head.len()
                                ));
                            }
                            Some(d)
                        }
                    },
                    _ => None,
                };
                (describe_record(r), diff)
            }
            None => ("the end of the recording".to_string(), None),
        };
        let d = Divergence {
            file: self.file.clone(),
            number,
            line: self.line_here(),
            recorded: recorded_text,
            sent: op.describe(),
            diff,
        };
        let msg = format!("host transfer {number} differs from the recording (line {})", d.line);
        self.divergence = Some(d);
        LinkError::Io { op: "replay".into(), message: msg }
    }

    /// The sleep that keeps the recording's pace, for the record at `idx`.
    fn pace(&mut self, idx: usize) -> Option<Duration> {
        if !self.opts.timing {
            return None;
        }
        let at = self.entries[idx].at?;
        let (start, t0) = *self.clock.get_or_insert((Instant::now(), at));
        let due = start + Duration::from_micros(at.saturating_sub(t0));
        Some(due.saturating_duration_since(Instant::now()))
    }

    /// Does the host's transfer `op` match record `r`? (`None`: the
    /// record is of another kind, `Some(false)`: the same kind, other
    /// contents.)
    fn matches(&self, op: &HostOp, r: &Record) -> Option<bool> {
        Some(match (op, r) {
            (HostOp::OpenUsb(i), Record::Open { device: Device::Usb(d), .. }) => {
                if self.version == 0 || d.port_path.is_empty() {
                    d.vid == i.vid && d.pid == i.pid
                } else {
                    d.port_path == i.port_path && d.address == i.address
                }
            }
            (HostOp::OpenSerial(i, b), Record::Open { device: Device::Serial(p), baud }) => {
                (p.path.is_empty() || p.path == i.path) && baud.is_none_or(|r| r == *b)
            }
            (HostOp::ControlOut(s, d), Record::ControlOut { setup, data, .. }) => {
                s == setup && data.matches(d)
            }
            (HostOp::ControlIn(s, len), Record::ControlIn { setup, len: l, .. }) => s == setup && len == l,
            (HostOp::BulkOut(ep, d), Record::BulkOut { ep: e, data, .. }) => ep == e && data.matches(d),
            (HostOp::BulkIn(ep, max), Record::BulkIn { ep: e, max: m, .. }) => {
                ep == e && m.is_none_or(|m| m == *max)
            }
            (HostOp::SerialOut(d), Record::SerialOut { data, .. }) => data.matches(d),
            (HostOp::Baud(r), Record::Baud { rate, .. }) => r == rate,
            (HostOp::Clear, Record::SerialClear { .. }) => true,
            _ => return None,
        })
    }

    fn timed_out_poll(r: &Record) -> bool {
        matches!(
            r,
            Record::BulkIn { err: Some(RecordedError { kind: ErrKind::Timeout, .. }), .. }
                | Record::ControlIn { err: Some(RecordedError { kind: ErrKind::Timeout, .. }), .. }
        )
    }

    /// Matches a host transfer with the recording and answers it.
    fn transfer(&mut self, op: HostOp, timeout: Duration) -> (Answer, Option<Duration>) {
        if let Some(d) = &self.divergence {
            let msg = format!("stopped at host transfer {} (it differed from the recording)", d.number);
            return (Answer::Err(LinkError::Io { op: "replay".into(), message: msg }, false), None);
        }
        self.settle();
        if !self.pending.is_empty()
            || matches!(self.entries.get(self.pos).map(|e| &e.record), Some(Record::SerialIn { .. }))
        {
            // Device data the host read in the recording before doing this.
            let r = self.entries.get(self.pos).map(|e| e.record.clone());
            return (Answer::Err(self.diverge(&op, r.as_ref()), false), None);
        }
        // Polling that stopped sooner than recorded: skip the timed-out
        // polls in the way.
        let mut idx = self.pos;
        while let Some(e) = self.entries.get(idx)
            && Self::timed_out_poll(&e.record)
            && self.matches(&op, &e.record) != Some(true)
        {
            idx += 1;
        }
        if idx != self.pos && self.entries.get(idx).and_then(|e| self.matches(&op, &e.record)) != Some(true) {
            idx = self.pos;
        }
        let rec = self.entries.get(idx).map(|e| e.record.clone());
        match rec.as_ref().and_then(|r| self.matches(&op, r)) {
            Some(true) => {
                let r = rec.expect("matched");
                self.pos = idx + 1;
                self.transfers += 1;
                let pace = self.pace(idx);
                let (err, data) = match &r {
                    Record::ControlIn { err, data, .. } | Record::BulkIn { err, data, .. } => {
                        (err.clone(), Some(data.clone()))
                    }
                    Record::ControlOut { err, .. }
                    | Record::BulkOut { err, .. }
                    | Record::SerialOut { err, .. }
                    | Record::Baud { err, .. }
                    | Record::SerialClear { err } => (err.clone(), None),
                    _ => (None, None),
                };
                self.last_timeout = Self::timed_out_poll(&r).then_some(idx);
                let answer = match (err, data) {
                    (Some(e), _) => Answer::Err(e.to_link_error(timeout), e.kind == ErrKind::Timeout),
                    (None, Some(d)) => Answer::Data(d),
                    (None, None) => Answer::Done,
                };
                (answer, pace)
            }
            _ => {
                // Polling that went on longer than recorded: one more timeout.
                if let Some(last) = self.last_timeout
                    && op.same_poll(&self.entries[last].record)
                {
                    let e = match &self.entries[last].record {
                        Record::BulkIn { err: Some(e), .. } | Record::ControlIn { err: Some(e), .. } => {
                            e.clone()
                        }
                        _ => unreachable!("last_timeout is a timed-out poll"),
                    };
                    self.transfers += 1;
                    return (Answer::Err(e.to_link_error(timeout), true), None);
                }
                let r = self.entries.get(self.pos).map(|e| e.record.clone());
                (Answer::Err(self.diverge(&op, r.as_ref()), false), None)
            }
        }
    }
}

/// A transcript being replayed. Its buses hand out the recorded devices;
/// [`Replay::verdict`] says, after the run, whether the host did exactly
/// what the recording shows.
#[derive(Clone)]
pub struct Replay {
    state: Arc<Mutex<State>>,
}

impl Replay {
    /// Prepares `t` (read from `file`) for replay.
    pub fn new(t: Transcript, file: &str, opts: ReplayOptions) -> Result<Replay, ReplayError> {
        let mut ports: Vec<&str> = t.entries.iter().filter_map(|e| e.port.as_deref()).collect();
        ports.sort();
        ports.dedup();
        if ports.len() > 1 {
            return Err(ReplayError::Parallel { file: file.into(), ports: ports.join(", ") });
        }
        if !t.entries.iter().any(|e| matches!(e.record, Record::Open { .. } | Record::Attach(_))) {
            return Err(ReplayError::NoDevice { file: file.into() });
        }
        let mut s = State {
            file: file.into(),
            version: t.version,
            entries: t.entries,
            pos: 0,
            transfers: 0,
            usb: Vec::new(),
            serial: Vec::new(),
            divergence: None,
            pending: Vec::new(),
            last_timeout: None,
            opts,
            clock: None,
        };
        // Version 0 wrote no port paths or addresses: give each enumeration
        // its own address at one port, as a re-enumerating board has.
        if s.version == 0 {
            let mut addr = 0u8;
            for e in &mut s.entries {
                if let Record::Open { device: Device::Usb(i), .. } = &mut e.record {
                    addr = addr.wrapping_add(1).max(1);
                    i.port_path = "replay-1".into();
                    i.address = addr;
                }
                if let Record::Open { device: Device::Serial(p), .. } = &mut e.record
                    && p.path.is_empty()
                {
                    p.path = "replay-serial".into();
                }
            }
        }
        s.settle();
        Ok(Replay { state: Arc::new(Mutex::new(s)) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The recorded USB devices as a bus.
    pub fn usb_bus(&self) -> ReplayUsbBus {
        ReplayUsbBus(self.clone())
    }

    /// The recorded serial ports as a bus.
    pub fn serial_bus(&self) -> ReplaySerialBus {
        ReplaySerialBus(self.clone())
    }

    /// The first difference, if the host's transfers differed.
    pub fn divergence(&self) -> Option<Divergence> {
        self.lock().divergence.clone()
    }

    /// After the run: how many transfers were replayed, or the first
    /// difference — including a host that stopped before the recording did.
    pub fn verdict(&self) -> Result<String, Divergence> {
        let mut s = self.lock();
        if let Some(d) = &s.divergence {
            return Err(d.clone());
        }
        s.settle();
        let rest: Vec<usize> = (s.pos..s.entries.len())
            .filter(|&i| {
                let r = &s.entries[i].record;
                r.is_transfer() && !State::timed_out_poll(r)
            })
            .collect();
        if let Some(&i) = rest.first() {
            return Err(Divergence {
                file: s.file.clone(),
                number: s.transfers + 1,
                line: s.entries[i].line,
                recorded: describe_record(&s.entries[i].record),
                sent: format!("nothing: the host stopped ({} more recorded transfers)", rest.len()),
                diff: None,
            });
        }
        if !s.pending.is_empty() {
            return Err(Divergence {
                file: s.file.clone(),
                number: s.transfers + 1,
                line: s.line_here(),
                recorded: format!("{} more bytes from the device", s.pending.len()),
                sent: "nothing: the host stopped reading".into(),
                diff: None,
            });
        }
        Ok(format!("{} host transfers as recorded", s.transfers))
    }

    /// Runs one host transfer against the recording, outside the lock for
    /// any waiting.
    fn run(&self, op: HostOp, timeout: Duration) -> Result<Option<Vec<u8>>, LinkError> {
        let (answer, pace) = self.lock().transfer(op, timeout);
        if let Some(p) = pace {
            std::thread::sleep(p);
        }
        match answer {
            Answer::Data(d) => Ok(Some(d)),
            Answer::Done => Ok(None),
            Answer::Err(e, wait) => {
                if wait {
                    // The recorded timeout: the host's own timeout passes.
                    std::thread::sleep(timeout);
                }
                Err(e)
            }
        }
    }
}

/// The recorded USB devices.
#[derive(Clone)]
pub struct ReplayUsbBus(Replay);

impl UsbBus for ReplayUsbBus {
    fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
        let mut s = self.0.lock();
        if s.divergence.is_none() {
            s.settle_listing();
        }
        Ok(s.usb.clone())
    }

    fn open(&self, info: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
        let recorded = {
            let mut s = self.0.lock();
            s.settle();
            match s.entries.get(s.pos).map(|e| e.record.clone()) {
                Some(Record::Open { device: Device::Usb(d), .. }) => Some(d),
                _ => None,
            }
        };
        self.0.run(HostOp::OpenUsb(info), Duration::ZERO)?;
        let info = recorded.unwrap_or_else(|| info.clone());
        Ok(Box::new(ReplayUsbLink { replay: self.0.clone(), info }))
    }
}

/// A link to one recorded enumeration.
pub struct ReplayUsbLink {
    replay: Replay,
    info: UsbInfo,
}

impl UsbLink for ReplayUsbLink {
    fn info(&self) -> &UsbInfo {
        &self.info
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        self.replay.run(HostOp::ControlOut(setup, data), timeout).map(|_| ())
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let mut d = self.replay.run(HostOp::ControlIn(setup, len), timeout)?.unwrap_or_default();
        d.truncate(len as usize);
        Ok(d)
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        self.replay.run(HostOp::BulkOut(ep, data), timeout).map(|_| ())
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        Ok(self.replay.run(HostOp::BulkIn(ep, max_len), timeout)?.unwrap_or_default())
    }
}

/// The recorded serial ports.
#[derive(Clone)]
pub struct ReplaySerialBus(Replay);

impl SerialBus for ReplaySerialBus {
    fn ports(&self) -> Result<Vec<SerialInfo>, LinkError> {
        let mut s = self.0.lock();
        if s.divergence.is_none() {
            s.settle_listing();
        }
        Ok(s.serial.clone())
    }

    fn open(&self, info: &SerialInfo, baud: u32) -> Result<Box<dyn SerialLink>, LinkError> {
        let recorded = {
            let mut s = self.0.lock();
            s.settle();
            match s.entries.get(s.pos).map(|e| e.record.clone()) {
                Some(Record::Open { device: Device::Serial(d), .. }) if !d.path.starts_with("replay-") => {
                    Some(d)
                }
                _ => None,
            }
        };
        self.0.run(HostOp::OpenSerial(info, baud), Duration::ZERO)?;
        let info = recorded.unwrap_or_else(|| info.clone());
        Ok(Box::new(ReplaySerialLink { replay: self.0.clone(), info }))
    }
}

/// A scripted serial link over the recording.
pub struct ReplaySerialLink {
    replay: Replay,
    info: SerialInfo,
}

impl SerialLink for ReplaySerialLink {
    fn info(&self) -> &SerialInfo {
        &self.info
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        self.replay.run(HostOp::SerialOut(data), Duration::ZERO).map(|_| ())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let op = format!("reading {}", self.info.path);
        let (got, pace) = {
            let mut s = self.replay.lock();
            if let Some(d) = &s.divergence {
                let msg = format!("stopped at host transfer {} (it differed from the recording)", d.number);
                return Err(LinkError::Io { op: "replay".into(), message: msg });
            }
            s.settle();
            if s.pending.is_empty() {
                let idx = s.pos;
                match s.entries.get(idx).map(|e| e.record.clone()) {
                    Some(Record::SerialIn { data, err }) => {
                        s.pos += 1;
                        s.transfers += 1;
                        let pace = s.pace(idx);
                        match err {
                            Some(e) => (Err(e.to_link_error(timeout)), pace),
                            None => {
                                s.pending = data;
                                (Ok(()), pace)
                            }
                        }
                    }
                    // The device said nothing before the host's next step.
                    _ => (Err(LinkError::Timeout { op, after: timeout }), None),
                }
            } else {
                (Ok(()), None)
            }
        };
        if let Some(p) = pace {
            std::thread::sleep(p);
        }
        match got {
            Ok(()) => {
                let mut s = self.replay.lock();
                let n = buf.len().min(s.pending.len());
                buf[..n].copy_from_slice(&s.pending[..n]);
                s.pending.drain(..n);
                if n == 0 {
                    drop(s);
                    return self.read(buf, timeout);
                }
                Ok(n)
            }
            Err(e @ LinkError::Timeout { .. }) => {
                std::thread::sleep(timeout);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        self.replay.run(HostOp::Baud(baud), Duration::ZERO).map(|_| ())
    }

    fn clear_input(&mut self) -> Result<(), LinkError> {
        {
            let mut s = self.replay.lock();
            s.settle();
            let next_is_clear =
                matches!(s.entries.get(s.pos).map(|e| &e.record), Some(Record::SerialClear { .. }));
            if s.version == 0 && !next_is_clear {
                // Version 0 did not record it.
                return Ok(());
            }
        }
        self.replay.run(HostOp::Clear, Duration::ZERO).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
