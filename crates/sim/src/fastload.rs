//! A virtual fastload loader, written from `docs/fastload.md` (never from
//! the host crate `racklet-fastload`): the device side of the stage-1 fast
//! loader that a UART boot ROM has just started.
//!
//! It speaks the framed protocol of the document (§1) on a [`Wire`]: answers
//! HELLO with INFO, changes its "divisor" on BAUD (the rate is kept in a
//! shared [`Line`], which paces the wire and garbles bytes when the rate is
//! one the adapter cannot carry), waits 1 s for SYNC and falls back, takes
//! START / DATA / END into a model of memory, answers ACK, MISSING and DONE,
//! and "jumps" on GO: it records the image and the entry, and, when
//! configured, prints what the started payload would print.
//!
//! [`Noisy`] is the bit-flipping relay of the tests: it corrupts every n-th
//! byte in each direction.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::starfive::Wire;

const MAGIC: [u8; 2] = [0xFA, 0x57];
const MAX_LEN: usize = 4096;
/// The sync pattern of SYNC and SYNC_OK (§1).
pub const SYNC_PATTERN: [u8; 8] = [0x55, 0xAA, 0x5A, 0xA5, 0x72, 0x66, 0x6C, 0x31];
/// How long the loader waits for SYNC after a rate change (§3).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(1);

// Frame types (§1).
const HELLO: u8 = 0x01;
const INFO: u8 = 0x81;
const BAUD: u8 = 0x02;
const BAUD_OK: u8 = 0x82;
const SYNC: u8 = 0x03;
const SYNC_OK: u8 = 0x83;
const START: u8 = 0x04;
const START_OK: u8 = 0x84;
const DATA: u8 = 0x05;
const ACK: u8 = 0x85;
const END: u8 = 0x06;
const DONE: u8 = 0x86;
const MISSING: u8 = 0x87;
const GO: u8 = 0x07;
const GO_OK: u8 = 0x88;
const ABORT: u8 = 0x08;
const ERROR: u8 = 0x8F;

/// CRC-32/ISO-HDLC (§1), the sim's own bit-by-bit reference (the host
/// crate uses the `crc` crate: the two are written apart).
pub fn crc32(data: &[u8]) -> u32 {
    crate::crc::crc32_iso_hdlc(data)
}

/// Builds one frame (§1).
pub fn frame(kind: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&MAGIC);
    f.push(kind);
    f.push(0);
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    f.extend_from_slice(payload);
    let c = crc32(&f[2..]);
    f.extend_from_slice(&c.to_le_bytes());
    f
}

/// The UART the loader drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartKind {
    /// 8250-type: integer divisor, rate = clock / (16 × divisor).
    Ns16550,
    /// PL011: 16.6 fractional divisor, rate = 64 × clock / (16 × div64).
    Pl011,
}

/// The serial line between host and loader: the loader's current rate, the
/// fastest rate the host's adapter carries, and the turnaround latency of
/// the adapter. Shared between the loader and the wire that paces it.
#[derive(Clone)]
pub struct Line {
    inner: Arc<Mutex<LineState>>,
}

struct LineState {
    device_baud: u32,
    adapter_max: Option<u32>,
    latency: Duration,
    paced: bool,
}

impl Line {
    /// A line at `baud`; `paced` makes [`Paced`] hold bytes for their wire
    /// time at the current rate.
    pub fn new(baud: u32, paced: bool) -> Self {
        Line {
            inner: Arc::new(Mutex::new(LineState {
                device_baud: baud,
                adapter_max: None,
                latency: Duration::ZERO,
                paced,
            })),
        }
    }
    /// The adapter cannot carry rates above `max`: bytes at such a rate
    /// arrive as garbage both ways (a CP2102 at 1.5 Mbaud).
    pub fn with_adapter_max(self, max: u32) -> Self {
        self.lock().adapter_max = Some(max);
        self
    }
    /// Every byte, both ways, reaches the other side at least `latency`
    /// after it was sent (an FTDI latency timer).
    pub fn with_latency(self, latency: Duration) -> Self {
        self.lock().latency = latency;
        self
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The loader's current rate.
    pub fn baud(&self) -> u32 {
        self.lock().device_baud
    }
    pub(crate) fn set_baud(&self, b: u32) {
        self.lock().device_baud = b;
    }
    /// [`Line::with_adapter_max`] on a line already in use.
    pub(crate) fn set_adapter_max(&self, max: u32) {
        self.lock().adapter_max = Some(max);
    }
    pub(crate) fn garbles(&self) -> bool {
        let s = self.lock();
        s.adapter_max.is_some_and(|m| s.device_baud > m)
    }
}

/// A wire paced by a [`Line`]: received bytes are handed over one byte time
/// (10 bits, 8N1, at the line's current rate) after another and no sooner
/// than the line's latency after they were written; sent bytes take their
/// wire time and the latency. At a rate the adapter cannot carry every byte
/// arrives as 0xFF-ish garbage.
pub struct Paced<W: Wire> {
    inner: W,
    line: Line,
    pending: VecDeque<(u8, Instant)>,
    next_free: Instant,
    tx_free: Instant,
}

impl<W: Wire> Paced<W> {
    pub fn new(inner: W, line: Line) -> Self {
        let now = Instant::now();
        Paced { inner, line, pending: VecDeque::new(), next_free: now, tx_free: now }
    }

    fn byte_time(&self) -> Duration {
        let s = self.line.lock();
        if s.paced { Duration::from_secs_f64(10.0 / s.device_baud.max(1) as f64) } else { Duration::ZERO }
    }

    fn pull(&mut self, timeout: Duration) -> std::io::Result<()> {
        let mut tmp = [0u8; 4096];
        let n = self.inner.recv(&mut tmp, timeout)?;
        let now = Instant::now();
        let bt = self.byte_time();
        let latency = self.line.lock().latency;
        let garble = self.line.garbles();
        for &b in &tmp[..n] {
            self.next_free = self.next_free.max(now) + bt;
            let b = if garble { garbage(b) } else { b };
            self.pending.push_back((b, self.next_free + latency));
        }
        Ok(())
    }
}

/// What a byte sent at the wrong rate looks like at the other end.
pub(crate) fn garbage(b: u8) -> u8 {
    (b | 0x80).rotate_left(3) ^ 0x5A
}

impl<W: Wire> Wire for Paced<W> {
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            let mut n = 0;
            while n < buf.len() && self.pending.front().is_some_and(|p| p.1 <= now) {
                buf[n] = self.pending.pop_front().map(|p| p.0).unwrap_or_default();
                n += 1;
            }
            if n > 0 {
                return Ok(n);
            }
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Ok(0);
            }
            match self.pending.front().map(|p| p.1.saturating_duration_since(now)) {
                Some(d) => {
                    self.pull(d.min(left).clamp(Duration::from_micros(1), Duration::from_millis(1)))?
                }
                None => self.pull(left)?,
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        let bt = self.byte_time();
        let latency = self.line.lock().latency;
        let now = Instant::now();
        // The transmitter is busy until the previous bytes left; these take
        // their own wire time, then the adapter's latency.
        self.tx_free = self.tx_free.max(now) + bt * data.len() as u32;
        let at = self.tx_free + latency;
        let wait = at.saturating_duration_since(now);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        if self.line.garbles() {
            let g: Vec<u8> = data.iter().map(|&b| garbage(b)).collect();
            self.inner.send(&g)
        } else {
            self.inner.send(data)
        }
    }
}

/// The bit-flipping relay: flips one bit of every `every`-th byte received
/// from the host and of every `every`-th byte sent to it.
pub struct Noisy<W: Wire> {
    inner: W,
    every: u64,
    rx_count: u64,
    tx_count: u64,
    /// How many bytes were corrupted, each way.
    pub flipped: Arc<Mutex<(u64, u64)>>,
}

impl<W: Wire> Noisy<W> {
    pub fn new(inner: W, every: u64) -> Self {
        Noisy { inner, every: every.max(2), rx_count: 0, tx_count: 0, flipped: Arc::default() }
    }
}

impl<W: Wire> Wire for Noisy<W> {
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        let n = self.inner.recv(buf, timeout)?;
        for b in &mut buf[..n] {
            self.rx_count += 1;
            if self.rx_count.is_multiple_of(self.every) {
                *b ^= 1 << (self.rx_count % 8);
                self.flipped.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
            }
        }
        Ok(n)
    }
    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut d = data.to_vec();
        for b in &mut d {
            self.tx_count += 1;
            if self.tx_count.is_multiple_of(self.every) {
                *b ^= 1 << (self.tx_count % 8);
                self.flipped.lock().unwrap_or_else(|e| e.into_inner()).1 += 1;
            }
        }
        self.inner.send(&d)
    }
}

/// Settings of one virtual loader.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub board: String,
    pub uart: UartKind,
    /// UART input clock in Hz (0: unknown, no rate change possible).
    pub uart_clock: u32,
    /// The rate the ROM left the UART at.
    pub base_baud: u32,
    /// Where an image may go.
    pub window: (u64, u64),
    /// Where the loader itself is (an image must not overlap it).
    pub loader: (u64, u64),
    pub max_block: u16,
    pub frames_in_flight: u16,
    /// Bytes the started payload prints (at the base rate) after GO.
    pub payload_says: Option<Vec<u8>>,
    pub fault: LoaderFault,
}

/// Ways to make the virtual loader misbehave (reached through the fault of
/// the ROM that started it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoaderFault {
    #[default]
    None,
    /// One byte of the first copy of DATA block 1 is corrupted on the wire:
    /// its CRC fails, the loader drops it (§1) and never answers it.
    CorruptBlock,
    /// One byte of the image goes bad in memory after it was received: the
    /// loader's CRC-32 at END does not match START (DONE status 1, §4.5).
    CorruptMemory,
}

impl LoaderConfig {
    /// A JH7110 loader (starfive.md: UART0 at 24 MHz, ROM rate 115200; the
    /// ROM starts it at the SRAM base 0x0800_0000): images go to the SRAM
    /// after its 32 KiB (payloads/boards.toml).
    pub fn jh7110() -> Self {
        LoaderConfig {
            board: "visionfive2".into(),
            uart: UartKind::Ns16550,
            uart_clock: 24_000_000,
            base_baud: 115_200,
            window: (0x0800_8000, 0x3_8000),
            loader: (0x0800_0000, 0x0800_8000),
            max_block: 2048,
            frames_in_flight: 16,
            payload_says: None,
            fault: LoaderFault::None,
        }
    }
}

/// What the loader did.
#[derive(Debug, Clone, Default)]
pub struct LoaderReport {
    pub infos_sent: u64,
    /// Every rate change: (rate set, whether SYNC came).
    pub rate_changes: Vec<(u32, bool)>,
    /// Frames dropped for a bad CRC or length.
    pub bad_frames: u64,
    /// DATA frames for a block already received.
    pub duplicate_blocks: u64,
    pub blocks_received: u64,
    pub errors_sent: Vec<String>,
    /// Set on GO: the image in memory, where it is, and the entry jumped to.
    pub started: Option<Started>,
    /// The last DONE's status (0 good).
    pub done_status: Option<u8>,
    /// The rate the image's blocks came at (the last START's).
    pub image_baud: Option<u32>,
}

impl LoaderReport {
    /// The loader's conclusion: the image it started, or why none was.
    pub fn verdict(&self) -> Result<String, String> {
        match &self.started {
            Some(s) => Ok(format!(
                "the fastload loader took {} bytes at 0x{:08x} in {} blocks{} (CRC-32 ok, {} bad frames dropped, {} blocks received twice) and jumped to 0x{:08x}",
                s.image.len(),
                s.load,
                self.blocks_received,
                self.image_baud.map(|b| format!(" at {b} baud")).unwrap_or_default(),
                self.bad_frames,
                self.duplicate_blocks,
                s.entry
            )),
            None if self.done_status == Some(1) => Err(
                "the fastload loader's CRC-32 of the image in memory did not match START: it was not started"
                    .into(),
            ),
            None => Err(format!(
                "the fastload loader started, but no image was started through it ({} INFO sent, {} blocks received{})",
                self.infos_sent,
                self.blocks_received,
                if self.errors_sent.is_empty() {
                    String::new()
                } else {
                    format!(", errors: {}", self.errors_sent.join("; "))
                }
            )),
        }
    }
}

/// An image the loader started.
#[derive(Debug, Clone)]
pub struct Started {
    pub load: u64,
    pub entry: u64,
    pub image: Vec<u8>,
    pub crc_ok: bool,
}

/// A running virtual loader.
pub struct VirtualLoader {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<LoaderReport>>,
    handle: Option<JoinHandle<()>>,
    _client: Option<serialport::TTYPort>,
}

impl VirtualLoader {
    /// Starts the loader on `wire`, as the ROM would start it; `line` is the
    /// line whose rate it changes (pass the same one to a [`Paced`] wire).
    pub fn spawn<W: Wire + 'static>(wire: W, line: Line, cfg: LoaderConfig) -> VirtualLoader {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(LoaderReport::default()));
        let (r, st) = (report.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let _ = run_on(wire, line, cfg, Vec::new(), r, st);
        });
        VirtualLoader { stop, report, handle: Some(handle), _client: None }
    }

    /// Starts the loader on a new pseudo-terminal, unpaced; returns it and
    /// the path a host opens.
    pub fn spawn_pty(cfg: LoaderConfig) -> Result<(VirtualLoader, String), racklet_link::LinkError> {
        let crate::serial::PtyPair { device, client, path } = crate::serial::PtyPair::new()?;
        let line = Line::new(cfg.base_baud, false);
        let mut l = VirtualLoader::spawn(device, line, cfg);
        l._client = Some(client);
        Ok((l, path))
    }

    /// What happened so far.
    pub fn report(&self) -> LoaderReport {
        self.report.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until the loader jumped (or `timeout`).
    pub fn wait_started(&self, timeout: Duration) -> LoaderReport {
        let start = Instant::now();
        loop {
            let r = self.report();
            if r.started.is_some() || start.elapsed() >= timeout {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the loader and returns what it did.
    pub fn stop(mut self) -> LoaderReport {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.report()
    }
}

impl Drop for VirtualLoader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Runs the loader on `wire` in the calling thread, as a ROM that has just
/// jumped to it would: `already` is what the UART had received before the
/// loader's first read (it is in the receive FIFO). Returns when `stop` is
/// set or the wire fails.
pub(crate) fn run_on<W: Wire>(
    wire: W,
    line: Line,
    cfg: LoaderConfig,
    already: Vec<u8>,
    report: Arc<Mutex<LoaderReport>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut l = Loader {
        wire,
        line,
        rx: already.into(),
        report,
        stop,
        transfer: None,
        base_baud: cfg.base_baud,
        corrupted: false,
        cfg,
    };
    l.run()
}

struct Transfer {
    load: u64,
    entry: u64,
    len: usize,
    block: usize,
    crc: u32,
    mem: Vec<u8>,
    have: Vec<bool>,
}

impl Transfer {
    fn blocks(&self) -> usize {
        self.len.div_ceil(self.block)
    }
    fn contiguous(&self) -> u32 {
        self.have.iter().take_while(|&&h| h).count() as u32
    }
}

struct Frame {
    kind: u8,
    seq: u32,
    payload: Vec<u8>,
}

struct Loader<W: Wire> {
    wire: W,
    line: Line,
    rx: VecDeque<u8>,
    report: Arc<Mutex<LoaderReport>>,
    stop: Arc<AtomicBool>,
    transfer: Option<Transfer>,
    base_baud: u32,
    /// The fault was applied (it happens once).
    corrupted: bool,
    cfg: LoaderConfig,
}

impl<W: Wire> Loader<W> {
    fn rep(&self) -> std::sync::MutexGuard<'_, LoaderReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&mut self, kind: u8, seq: u32, payload: &[u8]) -> std::io::Result<()> {
        self.wire.send(&frame(kind, seq, payload))
    }

    fn error(&mut self, code: u8, msg: &str) -> std::io::Result<()> {
        self.rep().errors_sent.push(format!("{code}: {msg}"));
        let mut p = vec![code];
        p.extend_from_slice(msg.as_bytes());
        self.send(ERROR, 0, &p)
    }

    /// The next whole frame, or None after `timeout` (or when stopped).
    fn next_frame(&mut self, timeout: Duration) -> std::io::Result<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = self.parse() {
                return Ok(Some(f));
            }
            if self.stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut tmp = [0u8; 4096];
            let n = self.wire.recv(&mut tmp, left.min(Duration::from_millis(50)))?;
            self.rx.extend(&tmp[..n]);
        }
    }

    /// Takes one frame off the receive buffer when a whole one is there,
    /// dropping bytes before the magic and frames that fail their check.
    fn parse(&mut self) -> Option<Frame> {
        loop {
            while self.rx.len() >= 2 && !(self.rx[0] == MAGIC[0] && self.rx[1] == MAGIC[1]) {
                self.rx.pop_front();
            }
            if self.rx.len() < 10 {
                return None;
            }
            let len = u16::from_le_bytes([self.rx[8], self.rx[9]]) as usize;
            if len > MAX_LEN {
                self.rep().bad_frames += 1;
                self.rx.pop_front();
                continue;
            }
            if self.rx.len() < 14 + len {
                return None;
            }
            let mut bytes: Vec<u8> = self.rx.iter().take(14 + len).copied().collect();
            if self.cfg.fault == LoaderFault::CorruptBlock
                && !self.corrupted
                && bytes[2] == DATA
                && bytes[4..8] == 1u32.to_le_bytes()
                && len > 0
            {
                // A flipped bit on the wire, once: the frame's CRC fails.
                self.corrupted = true;
                bytes[10 + len / 2] ^= 0x08;
            }
            let want =
                u32::from_le_bytes([bytes[10 + len], bytes[11 + len], bytes[12 + len], bytes[13 + len]]);
            if crc32(&bytes[2..10 + len]) != want {
                self.rep().bad_frames += 1;
                self.rx.pop_front();
                continue;
            }
            self.rx.drain(..14 + len);
            return Some(Frame {
                kind: bytes[2],
                seq: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
                payload: bytes[10..10 + len].to_vec(),
            });
        }
    }

    fn info(&mut self) -> std::io::Result<()> {
        let c = &self.cfg;
        let mut p = Vec::new();
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&c.max_block.to_le_bytes());
        p.extend_from_slice(&c.frames_in_flight.to_le_bytes());
        p.extend_from_slice(&c.uart_clock.to_le_bytes());
        p.extend_from_slice(&self.line.baud().to_le_bytes());
        p.extend_from_slice(&c.window.0.to_le_bytes());
        p.extend_from_slice(&c.window.1.to_le_bytes());
        p.extend_from_slice(&c.loader.0.to_le_bytes());
        p.extend_from_slice(&c.loader.1.to_le_bytes());
        p.extend_from_slice(c.board.as_bytes());
        self.rep().infos_sent += 1;
        self.send(INFO, 0, &p)
    }

    /// The rate a divisor gives for `want`, with the divisor (§3).
    fn divisor(&self, want: u32) -> Option<(u32, u32)> {
        let clock = self.cfg.uart_clock as f64;
        if clock == 0.0 || want == 0 {
            return None;
        }
        let (rate, div) = match self.cfg.uart {
            UartKind::Ns16550 => {
                let d = (clock / (16.0 * want as f64)).round().max(1.0);
                (clock / (16.0 * d), d as u32)
            }
            UartKind::Pl011 => {
                let d = (64.0 * clock / (16.0 * want as f64)).round().max(64.0);
                (64.0 * clock / (16.0 * d), d as u32)
            }
        };
        if (rate - want as f64).abs() / want as f64 > 0.01 {
            return None;
        }
        Some((rate.round() as u32, div))
    }

    fn run(&mut self) -> std::io::Result<()> {
        let mut banner = format!("racklet: fastload {} ready\r\n", self.cfg.board).into_bytes();
        self.wire.send(&std::mem::take(&mut banner))?;
        while !self.stop.load(Ordering::SeqCst) {
            let Some(f) = self.next_frame(Duration::from_millis(200))? else { continue };
            if self.handle(f)? {
                break;
            }
        }
        // The payload runs: the UART stays (a closed pty would hang up the
        // host's side), and what the host sends now goes nowhere.
        let mut tmp = [0u8; 256];
        while !self.stop.load(Ordering::SeqCst) {
            self.wire.recv(&mut tmp, Duration::from_millis(50))?;
        }
        Ok(())
    }

    /// Handles one frame; true once the loader has jumped.
    fn handle(&mut self, f: Frame) -> std::io::Result<bool> {
        match f.kind {
            HELLO => {
                self.transfer = None;
                self.info()?;
            }
            BAUD if f.payload.len() >= 4 => {
                let want = u32::from_le_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]]);
                match self.divisor(want) {
                    None => self.error(3, &format!("{want} baud is not possible from this UART clock"))?,
                    Some((rate, div)) => {
                        let mut p = rate.to_le_bytes().to_vec();
                        p.extend_from_slice(&div.to_le_bytes());
                        self.send(BAUD_OK, 0, &p)?;
                        let old = self.line.baud();
                        self.line.set_baud(want);
                        self.rx.clear();
                        let synced = self.await_sync()?;
                        self.rep().rate_changes.push((want, synced));
                        if !synced {
                            self.line.set_baud(old);
                            self.rx.clear();
                            self.transfer = None;
                        }
                    }
                }
            }
            SYNC => {
                // A SYNC at the rate in use (a repeat of one already
                // answered): answer again.
                if f.payload == SYNC_PATTERN {
                    self.send(SYNC_OK, 0, &SYNC_PATTERN)?;
                }
            }
            START if f.payload.len() >= 28 => {
                let p = &f.payload;
                let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().unwrap_or_default());
                let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap_or_default());
                let (load, entry, len, block, crc) =
                    (u64_at(0), u64_at(8), u32_at(16), u32_at(20), u32_at(24));
                let (wb, ws) = self.cfg.window;
                let (lb, le) = self.cfg.loader;
                let end = load.saturating_add(len as u64);
                if block == 0 || block > self.cfg.max_block as u32 {
                    self.error(5, &format!("block size {block} (max {})", self.cfg.max_block))?;
                } else if len == 0 || load < wb || end > wb + ws {
                    self.error(2, &format!("0x{load:x}+0x{len:x} is outside the window 0x{wb:x}+0x{ws:x}"))?;
                } else if load < le && end > lb {
                    self.error(
                        2,
                        &format!("0x{load:x}+0x{len:x} overlaps the loader at 0x{lb:x}..0x{le:x}"),
                    )?;
                } else {
                    let blocks = (len as usize).div_ceil(block as usize);
                    self.transfer = Some(Transfer {
                        load,
                        entry,
                        len: len as usize,
                        block: block as usize,
                        crc,
                        mem: vec![0; len as usize],
                        have: vec![false; blocks],
                    });
                    self.rep().image_baud = Some(self.line.baud());
                    self.send(START_OK, 0, &[])?;
                }
            }
            DATA => {
                let Some(t) = self.transfer.as_mut() else {
                    self.error(4, "DATA before START")?;
                    return Ok(false);
                };
                let n = f.seq as usize;
                let off = n * t.block;
                let want_len = if n < t.blocks() { t.block.min(t.len - off) } else { 0 };
                if n >= t.blocks() || f.payload.len() != want_len {
                    self.error(1, &format!("block {n}: bad number or length {}", f.payload.len()))?;
                    return Ok(false);
                }
                t.mem[off..off + want_len].copy_from_slice(&f.payload);
                let dup = t.have[n];
                t.have[n] = true;
                let have = t.contiguous();
                {
                    let mut r = self.rep();
                    if dup {
                        r.duplicate_blocks += 1;
                    } else {
                        r.blocks_received += 1;
                    }
                }
                self.send(ACK, n as u32, &have.to_le_bytes())?;
            }
            END => {
                let Some(t) = self.transfer.as_mut() else {
                    self.error(4, "END before START")?;
                    return Ok(false);
                };
                let missing: Vec<u32> =
                    t.have.iter().enumerate().filter(|(_, h)| !**h).map(|(i, _)| i as u32).take(64).collect();
                if missing.is_empty() {
                    if self.cfg.fault == LoaderFault::CorruptMemory && !self.corrupted {
                        // A bit goes bad in memory, once.
                        self.corrupted = true;
                        t.mem[t.len / 2] ^= 0x10;
                    }
                    let got = crc32(&t.mem);
                    let status = u8::from(got != t.crc);
                    let mut p = vec![status];
                    p.extend_from_slice(&got.to_le_bytes());
                    self.rep().done_status = Some(status);
                    self.send(DONE, 0, &p)?;
                } else {
                    let mut p = t.contiguous().to_le_bytes().to_vec();
                    p.extend_from_slice(&(missing.len() as u16).to_le_bytes());
                    for m in missing {
                        p.extend_from_slice(&m.to_le_bytes());
                    }
                    self.send(MISSING, 0, &p)?;
                }
            }
            GO => {
                let ready = self.transfer.as_ref().is_some_and(|t| t.have.iter().all(|&h| h));
                if !ready {
                    self.error(4, "GO before the whole image")?;
                    return Ok(false);
                }
                let Some(t) = self.transfer.take() else { return Ok(false) };
                let crc_ok = crc32(&t.mem) == t.crc;
                if !crc_ok {
                    // The document: a bad image is never started.
                    self.error(1, "the image's CRC-32 does not match START")?;
                    self.transfer = Some(t);
                    return Ok(false);
                }
                self.send(GO_OK, 0, &t.entry.to_le_bytes())?;
                self.line.set_baud(self.base_baud);
                self.rep().started = Some(Started { load: t.load, entry: t.entry, image: t.mem, crc_ok });
                if let Some(says) = self.cfg.payload_says.clone() {
                    // The payload's first words, once the host is back at
                    // the base rate.
                    std::thread::sleep(Duration::from_millis(50));
                    self.wire.send(&says)?;
                }
                return Ok(true);
            }
            ABORT => {
                self.transfer = None;
                self.line.set_baud(self.base_baud);
            }
            _ => self.error(1, &format!("unexpected frame type 0x{:02x}", f.kind))?,
        }
        Ok(false)
    }

    /// After a rate change: waits up to [`SYNC_TIMEOUT`] for a good SYNC.
    fn await_sync(&mut self) -> std::io::Result<bool> {
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            match self.next_frame(left)? {
                Some(f) if f.kind == SYNC && f.payload == SYNC_PATTERN => {
                    self.send(SYNC_OK, 0, &SYNC_PATTERN)?;
                    return Ok(true);
                }
                Some(_) => {}
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_the_zlib_crc() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn divisors_follow_the_document() {
        let l = |uart, clock| Loader {
            wire: NoWire,
            line: Line::new(115_200, false),
            rx: VecDeque::new(),
            report: Arc::default(),
            stop: Arc::default(),
            transfer: None,
            base_baud: 115_200,
            corrupted: false,
            cfg: LoaderConfig { uart, uart_clock: clock, ..LoaderConfig::jh7110() },
        };
        let jh = l(UartKind::Ns16550, 24_000_000);
        assert_eq!(jh.divisor(1_500_000), Some((1_500_000, 1)));
        assert_eq!(jh.divisor(115_200), Some((115_385, 13)));
        assert_eq!(jh.divisor(921_600), None, "24 MHz / 16 / 2 = 750000, 19 % off");
        let pl = l(UartKind::Pl011, 24_000_000);
        assert_eq!(pl.divisor(1_500_000), Some((1_500_000, 64)));
        assert_eq!(pl.divisor(921_600), Some((923_077, 104)));
    }

    struct NoWire;
    impl Wire for NoWire {
        fn recv(&mut self, _: &mut [u8], _: Duration) -> std::io::Result<usize> {
            Ok(0)
        }
        fn send(&mut self, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
    }
}
