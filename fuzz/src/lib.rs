//! Shared pieces of the fuzz targets: a cursor over the fuzz input and fake
//! links (USB, serial, fastboot transport) whose answers come from it.
//!
//! Every fake ends the conversation once the input is used up (it answers
//! "disconnected"), so a run is bounded by the input length and never
//! waits on a clock. The encoders used by `examples/mkseeds.rs` live next
//! to the decoders here, so seeds and targets agree on the format.

use std::time::Duration;

use racklet_link::usb::EndpointKind;
use racklet_link::{
    ControlSetup, EndpointInfo, InterfaceInfo, LinkError, SerialInfo, SerialLink, UsbInfo, UsbLink,
};

/// Reads the fuzz input front to back; past the end every read gives zeros
/// (`take` gives an empty slice).
#[derive(Debug, Clone)]
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    /// A length-prefixed (u16) slice.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Appends a u16-length-prefixed chunk (the inverse of [`Bytes::chunk`]).
pub fn put_chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
}

fn gone(op: &str) -> LinkError {
    LinkError::Disconnected { op: op.into() }
}

/// What an answer byte means for the fake links: `ANS_OK` (0) is a plain
/// success, the others are the link's failure modes.
pub const ANS_OK: u8 = 0;
pub const ANS_STALL: u8 = 1;
pub const ANS_TIMEOUT: u8 = 2;
pub const ANS_GONE: u8 = 3;
pub const ANS_INTERRUPTED: u8 = 4;

/// Decodes one outcome byte: `Ok(())` for most values, so random inputs
/// mostly get past the link and into the protocol code.
pub fn outcome(b: &mut Bytes<'_>, op: &str) -> Result<(), LinkError> {
    if b.is_empty() {
        return Err(gone(op));
    }
    match b.u8() % 16 {
        ANS_STALL => Err(LinkError::Stall { op: op.into() }),
        ANS_TIMEOUT => Err(LinkError::Timeout { op: op.into(), after: Duration::from_millis(1) }),
        ANS_GONE => Err(gone(op)),
        ANS_INTERRUPTED => Err(LinkError::Interrupted),
        _ => Ok(()),
    }
}

/// A USB device of the given interface class with one bulk pair.
pub fn usb_info(class: (u8, u8, u8), bulk: bool) -> UsbInfo {
    let endpoints = if bulk {
        vec![
            EndpointInfo { address: 0x81, kind: EndpointKind::Bulk, max_packet_size: 512 },
            EndpointInfo { address: 0x02, kind: EndpointKind::Bulk, max_packet_size: 512 },
        ]
    } else {
        vec![EndpointInfo { address: 0x83, kind: EndpointKind::Interrupt, max_packet_size: 64 }]
    };
    UsbInfo {
        vid: 0x2207,
        pid: 0x350a,
        bcd_usb: 0x0200,
        port_path: "fuzz-1".into(),
        interfaces: vec![InterfaceInfo {
            number: 0,
            class: class.0,
            subclass: class.1,
            protocol: class.2,
            endpoints,
        }],
        ..Default::default()
    }
}

/// A USB link whose answers are read from the fuzz input: each transfer
/// takes an outcome byte, and IN transfers then a u16 length (capped at what
/// was asked for, as a real host controller does) and that many bytes.
pub struct FakeUsb<'a> {
    pub info: UsbInfo,
    pub input: Bytes<'a>,
    /// Every OUT transfer: (control setup or None for bulk, endpoint, data).
    pub outs: Vec<(Option<ControlSetup>, u8, Vec<u8>)>,
    /// The last IN answer given.
    pub last_in: Option<Vec<u8>>,
}

impl<'a> FakeUsb<'a> {
    pub fn new(info: UsbInfo, input: Bytes<'a>) -> Self {
        FakeUsb { info, input, outs: Vec::new(), last_in: None }
    }
    fn answer(&mut self, op: &str, max: usize) -> Result<Vec<u8>, LinkError> {
        outcome(&mut self.input, op)?;
        let n = (self.input.u16() as usize).min(max);
        let v = self.input.take(n).to_vec();
        self.last_in = Some(v.clone());
        Ok(v)
    }
}

impl UsbLink for FakeUsb<'_> {
    fn info(&self) -> &UsbInfo {
        &self.info
    }
    fn control_out(&mut self, setup: ControlSetup, data: &[u8], _: Duration) -> Result<(), LinkError> {
        self.outs.push((Some(setup), 0, data.to_vec()));
        outcome(&mut self.input, "control OUT")
    }
    fn control_in(&mut self, _: ControlSetup, len: u16, _: Duration) -> Result<Vec<u8>, LinkError> {
        self.answer("control IN", len as usize)
    }
    fn bulk_out(&mut self, ep: u8, data: &[u8], _: Duration) -> Result<(), LinkError> {
        self.outs.push((None, ep, data.to_vec()));
        outcome(&mut self.input, "bulk OUT")
    }
    fn bulk_in(&mut self, _: u8, max_len: usize, _: Duration) -> Result<Vec<u8>, LinkError> {
        self.answer("bulk IN", max_len)
    }
}

/// Encodes a successful IN answer for [`FakeUsb`].
pub fn usb_in(out: &mut Vec<u8>, data: &[u8]) {
    out.push(0x10);
    put_chunk(out, data);
}

/// A serial port whose incoming bytes come from the fuzz input. Each time
/// the host reads with nothing pending, one control byte decides: a link
/// failure (see [`outcome`]), a "smart" answer built by `echo` from the last
/// thing the host wrote (for checksummed protocols random bytes would never
/// get past), or a run of up to 255 raw bytes.
pub struct FakeSerial<'a> {
    pub info: SerialInfo,
    pub input: Bytes<'a>,
    pending: std::collections::VecDeque<u8>,
    /// Everything written, one entry per `write_all`.
    pub written: Vec<Vec<u8>>,
    pub echo: Option<Echo<'a>>,
}

/// Builds a smart answer from the last packet written and the input.
pub type Echo<'a> = fn(&[u8], &mut Bytes<'a>) -> Vec<u8>;

/// Control byte (mod 16) asking [`FakeSerial`] for its smart answer.
pub const SER_ECHO: u8 = 5;
/// Control byte (mod 16) for a run of raw bytes (any value 6..16 does).
pub const SER_RAW: u8 = 6;

impl<'a> FakeSerial<'a> {
    pub fn new(input: Bytes<'a>) -> Self {
        FakeSerial {
            info: SerialInfo { path: "/dev/fuzz0".into(), ..Default::default() },
            input,
            pending: Default::default(),
            written: Vec::new(),
            echo: None,
        }
    }
}

impl SerialLink for FakeSerial<'_> {
    fn info(&self) -> &SerialInfo {
        &self.info
    }
    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        self.written.push(data.to_vec());
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8], _timeout: Duration) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pending.is_empty() {
            let before = self.input.len();
            let mut probe = self.input.clone();
            let r = outcome(&mut probe, "reading");
            let c = self.input.u8() % 16;
            debug_assert!(self.input.len() < before || before == 0);
            r?;
            if c == SER_ECHO {
                if let (Some(f), Some(last)) = (self.echo, self.written.last()) {
                    let v = f(last, &mut self.input);
                    self.pending.extend(v);
                }
            } else {
                let n = self.input.u8() as usize;
                let raw = self.input.take(n);
                self.pending.extend(raw);
            }
            if self.pending.is_empty() {
                return Err(LinkError::Timeout { op: "reading".into(), after: Duration::from_millis(1) });
            }
        }
        let n = buf.len().min(self.pending.len());
        for (d, s) in buf.iter_mut().zip(self.pending.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }
    fn set_baud(&mut self, _baud: u32) -> Result<(), LinkError> {
        Ok(())
    }
    fn clear_input(&mut self) -> Result<(), LinkError> {
        self.pending.clear();
        Ok(())
    }
}

/// Encodes raw serial bytes for [`FakeSerial`] (in runs of at most 255).
pub fn serial_raw(out: &mut Vec<u8>, data: &[u8]) {
    for c in data.chunks(255) {
        out.push(SER_RAW);
        out.push(c.len() as u8);
        out.extend_from_slice(c);
    }
}

/// A fastboot transport whose answers come from the fuzz input: `send`
/// takes an outcome byte, `recv` an outcome byte and a u16-prefixed packet
/// (cut to `max`).
pub struct FakeTransport<'a> {
    pub input: Bytes<'a>,
    pub sent: Vec<Vec<u8>>,
    /// Every packet handed to the client.
    pub recvd: Vec<Vec<u8>>,
    /// For each sent packet, how many packets had been received before it.
    pub marks: Vec<usize>,
}

impl<'a> FakeTransport<'a> {
    pub fn new(input: Bytes<'a>) -> Self {
        FakeTransport { input, sent: Vec::new(), recvd: Vec::new(), marks: Vec::new() }
    }
}

impl racklet_fastboot::Transport for FakeTransport<'_> {
    fn send(&mut self, data: &[u8], _: Duration) -> Result<(), racklet_fastboot::FastbootError> {
        self.sent.push(data.to_vec());
        self.marks.push(self.recvd.len());
        Ok(outcome(&mut self.input, "send")?)
    }
    fn recv(&mut self, max: usize, _: Duration) -> Result<Vec<u8>, racklet_fastboot::FastbootError> {
        outcome(&mut self.input, "recv")?;
        let n = (self.input.u16() as usize).min(max);
        let v = self.input.take(n).to_vec();
        self.recvd.push(v.clone());
        Ok(v)
    }
    fn describe(&self) -> String {
        "fuzz transport".into()
    }
}

/// Encodes one fastboot answer packet for [`FakeTransport`].
pub fn fb_answer(out: &mut Vec<u8>, packet: &[u8]) {
    out.push(0x10);
    put_chunk(out, packet);
}

/// A little-endian ELF64 executable (ELF specification): `segs` are
/// (physical address, file offset into `data`, file size, memory size) of
/// PT_LOAD segments, which may share or overrun `data`; `data` follows the
/// program headers.
pub fn elf64_raw(machine: u16, entry: u64, segs: &[(u64, u64, u64, u64)], data: &[u8]) -> Vec<u8> {
    let phoff = 64u64;
    let data_off = phoff + 56 * segs.len() as u64;
    let mut out = Vec::with_capacity(data_off as usize + data.len());
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&phoff.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, segs.len() as u16, 64, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (addr, offset, filesz, memsz) in segs {
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&5u32.to_le_bytes());
        out.extend_from_slice(&(data_off + offset).to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&filesz.to_le_bytes());
        out.extend_from_slice(&memsz.to_le_bytes());
        out.extend_from_slice(&8u64.to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}
