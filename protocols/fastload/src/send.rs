//! The sender: docs/fastload.md §2–§4 over a [`SerialLink`].

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use racklet_link::{LinkError, ProgressSink, SerialLink};

use crate::FastloadError;
use crate::frame::{self, Decoder, Frame, Kind};

/// The sync pattern of SYNC and SYNC_OK (§1).
pub const SYNC_PATTERN: [u8; 8] = [0x55, 0xAA, 0x5A, 0xA5, 0x72, 0x66, 0x6C, 0x31];
/// The rates tried when none is asked for, fastest first (§3).
pub const RATES: [u32; 5] = [1_500_000, 921_600, 500_000, 460_800, 230_400];
/// How long the loader waits for SYNC before it falls back (§3).
const LOADER_SYNC_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings of one load.
#[derive(Debug, Clone)]
pub struct Options {
    /// The rate the link is at now (the ROM's), and the one it is set back
    /// to after GO.
    pub base_baud: u32,
    /// The rate for the image: `None` picks the fastest of [`RATES`] that
    /// the loader's UART clock makes exactly; the base rate means no change.
    pub baud: Option<u32>,
    /// How long to send HELLO before giving up.
    pub connect_timeout: Duration,
    /// Largest block (the loader's `max block` caps it).
    pub block: u16,
    /// Most blocks in flight (the loader's `window` caps it).
    pub window: u16,
    /// A block with no answer this long after its wire time is sent again.
    pub resend_timeout: Duration,
    /// Sends of one block before giving up.
    pub max_sends: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            base_baud: 115_200,
            baud: None,
            connect_timeout: Duration::from_secs(10),
            block: 2048,
            window: 16,
            resend_timeout: Duration::from_millis(500),
            max_sends: 10,
        }
    }
}

/// The image to load.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// Where its first byte goes; `None`: the base of the loader's image
    /// window (a raw file).
    pub load: Option<u64>,
    /// Where the loader jumps; `None`: the load address.
    pub entry: Option<u64>,
    pub bytes: &'a [u8],
}

impl<'a> Image<'a> {
    /// The image of a file as it says where it goes: an ELF (`elf`: its
    /// load address and entry) goes where it is linked, a raw binary at
    /// `load` (`None`: the base of the loader's window). An address given
    /// for an ELF is refused rather than chosen between.
    pub fn placed(
        bytes: &'a [u8],
        elf: Option<(u64, Option<u64>)>,
        load: Option<u64>,
    ) -> Result<Self, FastloadError> {
        match (elf, load) {
            (Some(_), Some(_)) => Err(FastloadError::LoadForElf),
            (Some((load, entry)), None) => Ok(Image { load: Some(load), entry, bytes }),
            (None, load) => Ok(Image { load, entry: None, bytes }),
        }
    }
}

/// What the loader said about itself (INFO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub version: u32,
    pub max_block: u16,
    pub window: u16,
    /// UART input clock in Hz, 0 when unknown.
    pub uart_clock: u32,
    pub baud: u32,
    pub image_base: u64,
    pub image_size: u64,
    pub loader_start: u64,
    pub loader_end: u64,
    pub board: String,
}

impl Info {
    /// Parses an INFO payload.
    pub fn parse(p: &[u8]) -> Option<Info> {
        if p.len() < 52 {
            return None;
        }
        let u16_at = |i: usize| u16::from_le_bytes([p[i], p[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().unwrap_or_default());
        Some(Info {
            version: u32_at(0),
            max_block: u16_at(4),
            window: u16_at(6),
            uart_clock: u32_at(8),
            baud: u32_at(12),
            image_base: u64_at(16),
            image_size: u64_at(24),
            loader_start: u64_at(32),
            loader_end: u64_at(40),
            board: String::from_utf8_lossy(&p[48..]).into_owned(),
        })
    }

    /// The fastest of [`RATES`] that an integer divisor of this clock makes
    /// within 0.5 %, if any.
    pub fn fastest_exact_rate(&self) -> Option<u32> {
        RATES.into_iter().find(|&r| exact(self.uart_clock, r))
    }
}

/// Whether `clock / (16 × d)` is within 0.5 % of `rate` for some integer d.
pub fn exact(clock: u32, rate: u32) -> bool {
    if clock == 0 || rate == 0 {
        return false;
    }
    let d = (clock as f64 / (16.0 * rate as f64)).round().max(1.0);
    let got = clock as f64 / (16.0 * d);
    (got - rate as f64).abs() / (rate as f64) <= 0.005
}

/// What a load did.
#[derive(Debug, Clone)]
pub struct Report {
    pub info: Info,
    /// The rate the image went at.
    pub baud: u32,
    /// A rate change was asked for and did not sync: the image went at the
    /// base rate.
    pub fell_back: Option<u32>,
    /// Where the image went and where it started.
    pub load: u64,
    pub entry: u64,
    pub blocks: u32,
    /// DATA frames sent more than once.
    pub resent: u64,
    /// Damaged frames from the loader that were dropped.
    pub bad_frames: u64,
    /// From the first DATA frame to DONE.
    pub data_time: Duration,
    pub crc: u32,
    /// Bytes that came after GO_OK in the same read: the payload's first
    /// output, for the console.
    pub after_go: Vec<u8>,
}

struct Conn<'l, L: SerialLink + ?Sized> {
    link: &'l mut L,
    dec: Decoder,
}

impl<L: SerialLink + ?Sized> Conn<'_, L> {
    fn send(&mut self, kind: Kind, seq: u32, payload: &[u8]) -> Result<(), LinkError> {
        self.link.write_all(&frame::encode(kind, seq, payload))
    }

    /// The next good frame within `timeout`, or None.
    fn recv(&mut self, timeout: Duration) -> Result<Option<Frame>, LinkError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        let mut polled = false;
        loop {
            if let Some(f) = self.dec.next_frame() {
                return Ok(Some(f));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // A zero timeout still looks once at what has arrived.
            if left.is_zero() && polled {
                return Ok(None);
            }
            polled = true;
            match self.link.read(&mut buf, left) {
                Ok(n) => self.dec.push(&buf[..n]),
                Err(LinkError::Timeout { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `kind` until an answer of one of `want` (or ERROR) comes;
    /// `tries` sends, `each` apart.
    fn ask(
        &mut self,
        step: &str,
        kind: Kind,
        payload: &[u8],
        want: &[Kind],
        tries: u32,
        each: Duration,
    ) -> Result<Frame, FastloadError> {
        for _ in 0..tries {
            self.send(kind, 0, payload)?;
            let until = Instant::now() + each;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                let Some(f) = self.recv(left)? else { break };
                match f.kind() {
                    Some(k) if want.contains(&k) => return Ok(f),
                    Some(Kind::Error) => return Err(refused(step, &f)),
                    // Answers to earlier requests (a repeated ACK, INFO).
                    _ => {}
                }
            }
        }
        Err(FastloadError::NoAnswer { step: step.into(), tries })
    }

    /// HELLO every 100 ms until INFO, for `within`.
    fn hello(&mut self, within: Duration) -> Result<Option<Info>, FastloadError> {
        let start = Instant::now();
        while start.elapsed() < within {
            self.send(Kind::Hello, 0, &1u32.to_le_bytes())?;
            let until = Instant::now() + Duration::from_millis(100);
            loop {
                let left = until.saturating_duration_since(Instant::now());
                let Some(f) = self.recv(left)? else { break };
                if f.kind() == Some(Kind::Info) {
                    let info = Info::parse(&f.payload).ok_or_else(|| FastloadError::Protocol {
                        what: "an INFO too short to read".into(),
                    })?;
                    return Ok(Some(info));
                }
            }
        }
        Ok(None)
    }
}

fn refused(step: &str, f: &Frame) -> FastloadError {
    let code = f.payload.first().copied().unwrap_or(0);
    let message = String::from_utf8_lossy(f.payload.get(1..).unwrap_or_default()).into_owned();
    FastloadError::Refused { step: step.into(), code, message }
}

fn le32(p: &[u8], at: usize) -> Option<u32> {
    p.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Loads `image` through the fastload loader on `link` and starts it:
/// handshake, rate change (with fallback), blocks, final check, GO. On
/// success the link is back at `opts.base_baud`, where the payload prints.
///
/// This is the call for a link the ROM's XMODEM stage has just used to load
/// the loader (keep it open and call this), and for a loader that is
/// already running.
pub fn send_image<L: SerialLink + ?Sized>(
    link: &mut L,
    image: Image<'_>,
    opts: &Options,
    progress: &mut dyn ProgressSink,
) -> Result<Report, FastloadError> {
    if image.bytes.is_empty() {
        return Err(FastloadError::Empty);
    }
    let port = link.info().path.clone();
    let mut c = Conn { link, dec: Decoder::new() };

    // §2: handshake.
    progress.check_cancel()?;
    let info = c
        .hello(opts.connect_timeout)?
        .ok_or(FastloadError::NoLoader { port: port.clone(), waited: opts.connect_timeout })?;
    progress.say(format!(
        "fastload loader on {} ({}): image window 0x{:x} + 0x{:x}, UART clock {} Hz",
        port, info.board, info.image_base, info.image_size, info.uart_clock
    ));
    let load = image.load.unwrap_or(info.image_base);
    let entry = image.entry.unwrap_or(load);
    check_fit(load, image.bytes.len() as u64, &info)?;

    // §3: rate change.
    let want = match opts.baud {
        Some(b) => Some(b),
        None => info.fastest_exact_rate(),
    }
    .filter(|&b| b != opts.base_baud);
    let mut baud = opts.base_baud;
    let mut fell_back = None;
    if let Some(b) = want {
        progress.check_cancel()?;
        if change_rate(&mut c, b, opts)? {
            baud = b;
            progress.say(format!("fastload: {b} baud"));
        } else {
            fell_back = Some(b);
            progress.say(format!("fastload: {b} baud did not sync; staying at {}", opts.base_baud));
        }
    }

    // §4: the image.
    let block = opts.block.min(info.max_block).max(1) as usize;
    let window = opts.window.min(info.window).max(1) as usize;
    let crc = frame::crc32(image.bytes);
    let mut start = Vec::with_capacity(28);
    start.extend_from_slice(&load.to_le_bytes());
    start.extend_from_slice(&entry.to_le_bytes());
    start.extend_from_slice(&(image.bytes.len() as u32).to_le_bytes());
    start.extend_from_slice(&(block as u32).to_le_bytes());
    start.extend_from_slice(&crc.to_le_bytes());
    c.ask("START", Kind::Start, &start, &[Kind::StartOk], 5, Duration::from_millis(500))?;

    let t0 = Instant::now();
    progress.stage("fastload", Some(image.bytes.len() as u64));
    let blocks = image.bytes.len().div_ceil(block) as u32;
    let mut w = Window::new(image.bytes, block, blocks, window, baud, opts);
    let result = (|| -> Result<(), FastloadError> {
        loop {
            w.run(&mut c, progress)?;
            // §4.5: END, then MISSING or DONE.
            let f = c.ask("END", Kind::End, &[], &[Kind::Done, Kind::Missing], 10, opts.resend_timeout)?;
            if f.kind() == Some(Kind::Done) {
                let got = le32(&f.payload, 1).unwrap_or(0);
                if f.payload.first() != Some(&0) || got != crc {
                    return Err(FastloadError::ImageCrc { want: crc, got });
                }
                return Ok(());
            }
            let n = f.payload.get(4..6).map(|b| u16::from_le_bytes([b[0], b[1]])).unwrap_or(0) as usize;
            for i in 0..n {
                if let Some(b) = le32(&f.payload, 6 + 4 * i) {
                    w.mark_missing(b);
                }
            }
        }
    })();
    if let Err(e) = result {
        // Best effort: the loader forgets the transfer and goes back to its
        // first rate; nothing runs.
        let _ = c.send(Kind::Abort, 0, &[]);
        let _ = c.link.set_baud(opts.base_baud);
        return Err(e);
    }
    let data_time = t0.elapsed();
    progress.done("fastload");

    // §4.6: GO.
    let f = c.ask("GO", Kind::Go, &[], &[Kind::GoOk], 5, Duration::from_millis(500))?;
    let said = f.payload.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    if said != Some(entry) {
        return Err(FastloadError::Protocol { what: format!("GO_OK with entry {said:x?}, not 0x{entry:x}") });
    }
    c.link.set_baud(opts.base_baud)?;
    progress.say(format!("fastload: started at 0x{entry:x}"));
    let after_go = c.dec.take_rest();
    Ok(Report {
        info,
        baud,
        fell_back,
        load,
        entry,
        blocks,
        resent: w.resent,
        bad_frames: c.dec.bad,
        data_time,
        crc,
        after_go,
    })
}

fn check_fit(load: u64, len: u64, info: &Info) -> Result<(), FastloadError> {
    let end = load.checked_add(len);
    let inside = end.is_some_and(|e| load >= info.image_base && e <= info.image_base + info.image_size);
    let overlaps = end.is_some_and(|e| load < info.loader_end && e > info.loader_start);
    if !inside || overlaps || len > u32::MAX as u64 {
        return Err(FastloadError::DoesNotFit {
            load,
            len,
            base: info.image_base,
            size: info.image_size,
            loader_start: info.loader_start,
            loader_end: info.loader_end,
        });
    }
    Ok(())
}

/// §3: BAUD, BAUD_OK, switch, SYNC until SYNC_OK; on failure back to the
/// base rate and HELLO. True when the new rate holds.
fn change_rate<L: SerialLink + ?Sized>(
    c: &mut Conn<'_, L>,
    b: u32,
    opts: &Options,
) -> Result<bool, FastloadError> {
    for _ in 0..2 {
        c.send(Kind::Baud, 0, &b.to_le_bytes())?;
        let sent = Instant::now();
        let mut ok = false;
        let until = sent + Duration::from_millis(300);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Some(f) = c.recv(left)? else { break };
            match f.kind() {
                Some(Kind::BaudOk) => {
                    ok = true;
                    break;
                }
                Some(Kind::Error) => return Err(refused(&format!("{b} baud"), &f)),
                _ => {}
            }
        }
        if ok {
            let switched = Instant::now();
            c.link.set_baud(b)?;
            std::thread::sleep(Duration::from_millis(10));
            c.link.clear_input()?;
            c.dec.clear();
            let until = switched + Duration::from_millis(500);
            while Instant::now() < until {
                c.send(Kind::Sync, 0, &SYNC_PATTERN)?;
                let next = Instant::now() + Duration::from_millis(50);
                while let Some(f) = c.recv(next.saturating_duration_since(Instant::now()))? {
                    if f.kind() == Some(Kind::SyncOk) && f.payload == SYNC_PATTERN {
                        return Ok(true);
                    }
                }
            }
            // Fallback: the loader goes back after its 1 s; meet it there.
            c.link.set_baud(opts.base_baud)?;
            sleep_until(switched + LOADER_SYNC_TIMEOUT + Duration::from_millis(200));
        } else {
            // No BAUD_OK: either BAUD was lost (the loader is still at the
            // base rate) or BAUD_OK was (it switched and will come back).
            sleep_until(sent + LOADER_SYNC_TIMEOUT + Duration::from_millis(200));
        }
        c.link.clear_input()?;
        c.dec.clear();
        if c.hello(Duration::from_secs(3))?.is_none() {
            return Err(FastloadError::NoAnswer {
                step: format!("HELLO after the failed switch to {b} baud"),
                tries: 30,
            });
        }
        if ok {
            // It synced nowhere: this rate does not get through.
            return Ok(false);
        }
    }
    Ok(false)
}

fn sleep_until(t: Instant) {
    let d = t.saturating_duration_since(Instant::now());
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// §4.2–§4.4: the blocks in flight.
struct Window<'a> {
    bytes: &'a [u8],
    block: usize,
    blocks: u32,
    window: usize,
    acked: Vec<bool>,
    sends: Vec<u32>,
    /// Order number and time of each block's last send.
    last_tx: Vec<(u64, Instant)>,
    tx_order: u64,
    outstanding: BTreeSet<u32>,
    resend: VecDeque<u32>,
    next_new: u32,
    have: u32,
    resent: u64,
    byte_time: Duration,
    opts: Options,
}

impl<'a> Window<'a> {
    fn new(bytes: &'a [u8], block: usize, blocks: u32, window: usize, baud: u32, opts: &Options) -> Self {
        let now = Instant::now();
        Window {
            bytes,
            block,
            blocks,
            window,
            acked: vec![false; blocks as usize],
            sends: vec![0; blocks as usize],
            last_tx: vec![(0, now); blocks as usize],
            tx_order: 0,
            outstanding: BTreeSet::new(),
            resend: VecDeque::new(),
            next_new: 0,
            have: 0,
            resent: 0,
            byte_time: Duration::from_secs_f64(10.0 / baud.max(1) as f64),
            opts: opts.clone(),
        }
    }

    fn all_acked(&self) -> bool {
        self.have >= self.blocks
    }

    fn mark_missing(&mut self, b: u32) {
        if (b as usize) < self.acked.len() && self.acked[b as usize] {
            self.acked[b as usize] = false;
            self.have = self.have.min(b);
        }
        if (b as usize) < self.acked.len() && !self.resend.contains(&b) {
            self.outstanding.remove(&b);
            self.resend.push_back(b);
        }
    }

    fn ack(&mut self, b: u32, progress: &mut dyn ProgressSink) {
        if (b as usize) < self.acked.len() && !self.acked[b as usize] {
            self.acked[b as usize] = true;
            let len = self.block.min(self.bytes.len() - b as usize * self.block);
            progress.advance(len as u64);
        }
        self.outstanding.remove(&b);
    }

    fn send_block<L: SerialLink + ?Sized>(
        &mut self,
        c: &mut Conn<'_, L>,
        b: u32,
    ) -> Result<(), FastloadError> {
        let i = b as usize;
        if self.sends[i] >= self.opts.max_sends {
            return Err(FastloadError::TooManySends { block: b, blocks: self.blocks, sends: self.sends[i] });
        }
        if self.sends[i] > 0 {
            self.resent += 1;
        }
        self.sends[i] += 1;
        self.tx_order += 1;
        let off = i * self.block;
        let end = (off + self.block).min(self.bytes.len());
        c.send(Kind::Data, b, &self.bytes[off..end])?;
        self.last_tx[i] = (self.tx_order, Instant::now());
        self.outstanding.insert(b);
        Ok(())
    }

    /// Sends until every block has an ACK.
    fn run<L: SerialLink + ?Sized>(
        &mut self,
        c: &mut Conn<'_, L>,
        progress: &mut dyn ProgressSink,
    ) -> Result<(), FastloadError> {
        let frame_time = self.byte_time * (self.block + frame::OVERHEAD) as u32;
        while !self.all_acked() {
            progress.check_cancel()?;
            // Fill the window: lost blocks first, then new ones.
            while self.outstanding.len() < self.window {
                let next = loop {
                    match self.resend.pop_front() {
                        Some(b) if self.acked[b as usize] => continue,
                        Some(b) => break Some(b),
                        None => break None,
                    }
                };
                let b = match next {
                    Some(b) => b,
                    None if self.next_new < self.blocks => {
                        self.next_new += 1;
                        self.next_new - 1
                    }
                    None => break,
                };
                self.send_block(c, b)?;
            }
            // Answers.
            let wait = if self.outstanding.len() >= self.window || self.next_new >= self.blocks {
                frame_time.max(Duration::from_millis(2))
            } else {
                Duration::ZERO
            };
            let mut got = c.recv(wait)?;
            while let Some(f) = got {
                if f.kind() == Some(Kind::Ack) {
                    let b = f.seq;
                    let have = le32(&f.payload, 0).unwrap_or(0).min(self.blocks);
                    self.ack(b, progress);
                    for x in self.have..have {
                        self.ack(x, progress);
                    }
                    self.have = self.have.max(have);
                    while (self.have as usize) < self.acked.len() && self.acked[self.have as usize] {
                        self.have += 1;
                    }
                    // Bytes arrive in order: unanswered blocks sent before
                    // this one were lost (§4.4).
                    if (b as usize) < self.last_tx.len() {
                        let order = self.last_tx[b as usize].0;
                        let lost: Vec<u32> = self
                            .outstanding
                            .iter()
                            .copied()
                            .filter(|&x| self.last_tx[x as usize].0 < order)
                            .collect();
                        for x in lost {
                            self.outstanding.remove(&x);
                            self.resend.push_back(x);
                        }
                    }
                } else if f.kind() == Some(Kind::Error) {
                    return Err(refused("DATA", &f));
                }
                got = c.recv(Duration::ZERO)?;
            }
            // Timeouts: answers that never came.
            let now = Instant::now();
            let limit = self.opts.resend_timeout + frame_time * self.window as u32;
            let late: Vec<u32> = self
                .outstanding
                .iter()
                .copied()
                .filter(|&x| now.duration_since(self.last_tx[x as usize].1) > limit)
                .collect();
            for x in late {
                self.outstanding.remove(&x);
                self.resend.push_back(x);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod placement {
    use super::*;

    #[test]
    fn an_elf_goes_where_it_is_linked_and_a_raw_file_where_it_is_told() {
        let b = [1u8, 2, 3];
        let elf = Image::placed(&b, Some((0x8020_0000, Some(0x8020_0010))), None).unwrap();
        assert_eq!((elf.load, elf.entry), (Some(0x8020_0000), Some(0x8020_0010)));
        let raw = Image::placed(&b, None, Some(0x8030_0000)).unwrap();
        assert_eq!((raw.load, raw.entry), (Some(0x8030_0000), None));
        let base = Image::placed(&b, None, None).unwrap();
        assert_eq!((base.load, base.entry), (None, None));
        let e = Image::placed(&b, Some((0x8020_0000, None)), Some(0x8030_0000)).unwrap_err();
        assert!(matches!(e, FastloadError::LoadForElf), "{e}");
        assert_eq!(racklet_link::Classify::class(&e), racklet_link::FailureClass::BadInput);
    }
}
