//! Virtual StarFive JH7110 boot ROM on UART0, written from
//! shared/protocols/starfive.md §1 (never from the client crate).
//!
//! It prints `\r\n(C)StarFive\r\n`, polls with `C`, receives XMODEM-CRC in
//! 128-byte (SOH) and 1K (STX) frames, checks each frame's CRC-16 and block
//! number (NAK on a bad frame, ACK again on a duplicate, CAN CAN on a
//! sequence error), ACKs EOT, then checks the image as the ROM does: the
//! CRC-32 at 0x290 over the payload of the length at 0x288 that follows the
//! 0x400-byte header. A bad image gets `CRC Error, Try again` and more polls;
//! a good one is "loaded to 0x08000000 and started".
//!
//! What the started payload does is the payload's business, and the sim
//! cannot run RISC-V code; it recognises the one program whose behaviour
//! matters to a boot flow by its bytes: U-Boot SPL built with YMODEM support
//! ([`is_ymodem_spl`]). The board's straps are at UART (that is how the ROM
//! got the image), and the SPL reads the same straps (sheet §1.6), so it
//! prints its banner and asks for u-boot.itb with YMODEM (sheet §3.3). Any
//! other payload runs silently.
//!
//! The real ROM's timings are undocumented (sheet §9.1): the poll interval
//! here is [`POLL_INTERVAL`], a guess of the right order. The loader
//! restarts (banner again) after 2, then every 3 unanswered polls, as U-Boot's
//! JH7110 log shows (`POLLS_PER_RESTART`); after a restart what is still on
//! the line is dropped until it has been quiet for 20 ms (a guess).
//!
//! The UART runs at [`RomConfig::line_rate`] (115200 by default): bytes
//! reach the ROM one byte time apart and its answers take their wire time
//! ([`Throttled`]). The started SPL's YMODEM receiver is U-Boot's own, in
//! `starfive/spl.rs` (from `common/xyzModem.c` and `common/spl/spl_ymodem.c`, with the
//! source lines).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use racklet_link::SerialInfo;
use serialport::{SerialPort, TTYPort};

use crate::crc::{crc16_xmodem, crc32_iso_hdlc};
use crate::fastload::{Line, LoaderConfig, LoaderFault, LoaderReport, garbage};
use crate::models::{Model, Scenario, SimError};
use crate::rom::{Faults, UnknownFault, Verdict, VirtualRom, parse_fault};
use crate::serial::SimSerialBus;
use crate::usb::SimUsbBus;

mod recovery;
mod spl;
#[cfg(test)]
mod testwire;
pub use recovery::{
    FLASH_SIZE, Flash, RecoveryReport, SPL_OFFSET, SPL_ROOM, UBOOT_OFFSET, UBOOT_ROOM, Update, blank_flash,
};
pub use spl::{CHAR_TIMEOUT as SPL_CHAR_TIMEOUT, UART_FIFO};

const SOH: u8 = 0x01;
const STX: u8 = 0x02;
const EOT: u8 = 0x04;
const ACK: u8 = 0x06;
const NAK: u8 = 0x15;
const CAN: u8 = 0x18;

/// What the ROM prints after reset.
pub const BANNER: &[u8] = b"\r\n(C)StarFive\r\n";
/// Its answer to an image whose CRC-32 does not match.
pub const CRC_ERROR: &[u8] = b"CRC Error, Try again\r\n";
/// Time between two `C` polls (undocumented; "a second or less").
pub const POLL_INTERVAL: Duration = Duration::from_millis(300);
/// Where the payload is loaded and started.
pub const SRAM_BASE: u32 = 0x0800_0000;
/// The SRAM the payload must fit (256 KiB).
pub const SRAM_SIZE: usize = 0x4_0000;
/// The polls after which the ROM prints its banner again and restarts its
/// loader: two, then three and three again. U-Boot's own JH7110 log
/// (doc/board/starfive/jh7110_common.rst @6073c36, lines 334-337) shows
/// `(C)StarFive / CC / (C)StarFive / CCC` before tio sends; what sets the
/// period is not known (review sophgo-starfive.md F6).
const POLLS_PER_RESTART: [u32; 2] = [2, 3];
/// After a restart the loader sets its UART up again: what is on the line
/// is lost until it has been quiet this long (an assumption: the ROM is
/// closed).
const RESTART_QUIET: Duration = Duration::from_millis(20);
/// Longest silence inside a frame before the ROM gives up on it.
const BYTE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for the next block before the ROM restarts.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The two strings by which the sim recognises U-Boot SPL with YMODEM
/// support in a payload: the banner `preloader_console_init()` prints
/// (`"\nU-Boot " SPL_TPL_NAME " " PLAIN_VERSION " (" ...`, u-boot
/// common/spl/spl.c, compiled in with the default SPL_BANNER_PRINT), and the
/// report of `spl_ymodem_load_image()` (`"Loaded %lu bytes\n"`, u-boot
/// common/spl/spl_ymodem.c @03de305, built only with
/// CONFIG_SPL_YMODEM_SUPPORT, which starfive_visionfive2_defconfig sets:
/// sheet §3.3).
pub const SPL_SIGNATURES: [&[u8]; 2] = [b"U-Boot SPL ", b"Loaded %lu bytes"];

/// True when `payload` is U-Boot SPL that takes its next stage by YMODEM
/// when booted from UART: it carries both [`SPL_SIGNATURES`].
pub fn is_ymodem_spl(payload: &[u8]) -> bool {
    SPL_SIGNATURES.iter().all(|sig| payload.windows(sig.len()).any(|w| w == *sig))
}

/// The two things by which the sim recognises racklet-flash's fastload
/// loader (docs/fastload.md) in a payload: the start of the line it prints
/// when it starts (§2, `racklet: fastload <board> ready`) and the sync
/// pattern it compares every SYNC with (§1, §3). A loader carries both in
/// its read-only data; a payload that merely prints the banner does not
/// carry the pattern.
pub const FASTLOAD_SIGNATURES: [&[u8]; 2] =
    [b"racklet: fastload ", &[0x55, 0xAA, 0x5A, 0xA5, 0x72, 0x66, 0x6C, 0x31]];

/// True when `payload` is the fastload loader: it carries both
/// [`FASTLOAD_SIGNATURES`].
pub fn is_fastload_loader(payload: &[u8]) -> bool {
    FASTLOAD_SIGNATURES.iter().all(|sig| payload.windows(sig.len()).any(|w| w == *sig))
}

/// Ways to make the virtual ROM misbehave (`--fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// A spurious NAK for the first copy of every 4th block (good data).
    Nak,
    /// 12 NAKs in a row for block 2: more than the XMODEM spec's 10, as
    /// the real ROM does (sheet §1.3).
    NakStorm,
    /// The ACK of block 2 is lost once.
    DropAck,
    /// One byte of block 3 is corrupted on the wire once (the frame CRC
    /// catches it: NAK).
    CorruptFrame,
    /// One payload byte is corrupted past the frame CRC (a bad adapter with
    /// a NAK-ignoring sender): the image fails its CRC-32.
    CorruptImage,
    /// The ROM stops answering after the first block.
    Silent,
    /// The ROM prints its banner but never polls.
    NoPoll,
    /// The adapter is unplugged after block 3: the port hangs up.
    Hangup,
    /// The first copy of block 3 is answered with `C`, not NAK, and not
    /// stored (orangecms' vf2 loader has a branch for a `C` answer).
    CForBlock3,
    /// The ROM's last poll crosses block 1 on the wire: a `C` reaches the
    /// host just after block 1 was sent, and block 1 is taken and ACKed.
    PollCrossesBlock1,
    /// The ROM restarts its loader once in the middle of the first frame
    /// (banner, polls again): the frame is lost.
    RestartInBlock1,
    /// One byte of U-Boot SPL's YMODEM block 2 is corrupted on the wire
    /// once: the SPL's CRC check fails and it asks again with `C` at once
    /// (xyzModem.c, no flush after a CRC error).
    SplCorruptBlock,
    /// U-Boot SPL's ACK of YMODEM block 1 is lost on the wire once: the SPL
    /// times out on the next header, flushes until the line is quiet for
    /// 2 s, busy-waits 250 ms and asks again with `C`.
    SplDropAck,
    /// The recovery program prints its greeting but never its menu (DDR
    /// init hangs).
    RecoveryNoMenu,
    /// The recovery program's write of U-Boot to the flash fails: it says
    /// so and shows its menu again, without `updata success`.
    RecoveryUbootFails,
    /// The fastload loader the ROM started gets one byte of DATA block 1
    /// corrupted on the wire once: it drops the frame (its CRC fails).
    FastCorruptBlock,
    /// The fastload loader finds the image damaged in memory (its CRC-32
    /// at END does not match START): it answers DONE with status 1.
    FastCorruptMemory,
    /// The USB-UART adapter carries at most 921,600 baud (a CP2102): the
    /// fastload loader's 1.5 Mbaud does not sync and both fall back.
    FastNoSync,
}

impl Faults for Fault {
    const ALL: &'static [(&'static str, Fault, &'static str)] = &[
        ("nak", Fault::Nak, "a spurious NAK for the first copy of every 4th block"),
        ("nak-storm", Fault::NakStorm, "12 NAKs in a row for block 2 (more than XMODEM's 10)"),
        ("drop-ack", Fault::DropAck, "the ACK of block 2 is lost once"),
        (
            "corrupt-frame",
            Fault::CorruptFrame,
            "one byte of block 3 is corrupted on the wire once (frame CRC catches it)",
        ),
        (
            "corrupt-image",
            Fault::CorruptImage,
            "one payload byte is corrupted past the frame CRC: the ROM answers CRC Error",
        ),
        ("silent", Fault::Silent, "the ROM stops answering after the first block"),
        ("no-poll", Fault::NoPoll, "the ROM prints its banner but never polls with C"),
        ("hangup", Fault::Hangup, "the adapter is unplugged after block 3 (the port hangs up)"),
        ("c-for-block-3", Fault::CForBlock3, "the first copy of block 3 is answered with C (not stored)"),
        (
            "poll-crosses-block-1",
            Fault::PollCrossesBlock1,
            "the ROM's last poll crosses block 1 on the wire (a stale C, block 1 is taken)",
        ),
        (
            "restart-in-block-1",
            Fault::RestartInBlock1,
            "the ROM restarts its loader once in the middle of the first frame (banner, polls again)",
        ),
        (
            "spl-corrupt-block",
            Fault::SplCorruptBlock,
            "one byte of U-Boot SPL's YMODEM block 2 is corrupted once (the SPL asks again with C)",
        ),
        (
            "spl-drop-ack",
            Fault::SplDropAck,
            "U-Boot SPL's ACK of YMODEM block 1 is lost once (it times out, flushes, asks with C)",
        ),
        (
            "recovery-no-menu",
            Fault::RecoveryNoMenu,
            "the recovery program prints its greeting but never its menu",
        ),
        (
            "recovery-uboot-fails",
            Fault::RecoveryUbootFails,
            "the recovery program's flash write of U-Boot fails (menu again, no updata success)",
        ),
        (
            "fast-corrupt-block",
            Fault::FastCorruptBlock,
            "one byte of the fastload loader's DATA block 1 is corrupted once (the loader drops it)",
        ),
        (
            "fast-corrupt-memory",
            Fault::FastCorruptMemory,
            "the fastload loader finds the image damaged in memory (DONE with status 1)",
        ),
        (
            "fast-no-sync",
            Fault::FastNoSync,
            "the adapter carries at most 921600 baud: the loader's rate change does not sync",
        ),
    ];
}

impl std::str::FromStr for Fault {
    type Err = UnknownFault;

    /// A fault by its name; `none` (or nothing) is no fault.
    fn from_str(name: &str) -> Result<Fault, UnknownFault> {
        match name {
            "none" | "" => Ok(Fault::None),
            _ => parse_fault(name, "virtual JH7110 ROM"),
        }
    }
}

/// The device side of the UART.
pub trait Wire: Send {
    /// Reads at least one byte; `Ok(0)` when nothing came within `timeout`.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize>;
    /// Writes every byte.
    fn send(&mut self, data: &[u8]) -> std::io::Result<()>;
}

/// A wire lent to the next program on the same UART (the loader the ROM
/// jumped to).
impl<W: Wire + ?Sized> Wire for &mut W {
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        (**self).recv(buf, timeout)
    }
    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        (**self).send(data)
    }
}

impl Wire for TTYPort {
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        self.set_timeout(timeout.max(Duration::from_millis(1)))?;
        match self.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.write_all(data)?;
        self.flush()
    }
}

/// A wire paced to a line rate: received bytes are handed over no faster
/// than the line's rate allows (10 bits a byte, 8N1), and sent bytes take
/// their wire time before they leave. A pty alone has no line rate. The
/// rate is the [`Line`]'s: a program the ROM started (the fastload loader)
/// may change it, and at a rate the adapter cannot carry the bytes arrive
/// garbled both ways.
pub struct Throttled<W: Wire> {
    inner: W,
    line: Line,
    pending: VecDeque<(u8, Instant)>,
    next_free: Instant,
}

impl<W: Wire> Throttled<W> {
    pub fn new(inner: W, baud: u32) -> Self {
        Throttled::on_line(inner, Line::new(baud, true))
    }

    /// Paced at whatever rate `line` has.
    pub fn on_line(inner: W, line: Line) -> Self {
        Throttled { inner, line, pending: VecDeque::new(), next_free: Instant::now() }
    }

    fn byte_time(&self) -> Duration {
        Duration::from_secs_f64(10.0 / self.line.baud().max(1) as f64)
    }

    fn pull(&mut self, timeout: Duration) -> std::io::Result<()> {
        let mut tmp = [0u8; 4096];
        let n = self.inner.recv(&mut tmp, timeout)?;
        let now = Instant::now();
        let bt = self.byte_time();
        let garble = self.line.garbles();
        for &b in &tmp[..n] {
            // A byte arrives one byte time after the line is free or after
            // it was written, whichever is later.
            self.next_free = self.next_free.max(now) + bt;
            let b = if garble { garbage(b) } else { b };
            self.pending.push_back((b, self.next_free));
        }
        Ok(())
    }
}

impl<W: Wire> Wire for Throttled<W> {
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
            let until_next = self.pending.front().map(|p| p.1.saturating_duration_since(now));
            match until_next {
                // Read more while the first pending byte is still on the wire.
                Some(d) => {
                    self.pull(d.min(left).max(Duration::from_micros(1)).min(Duration::from_millis(1)))?
                }
                None => self.pull(left)?,
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        // The bytes' time on the wire, before the host can see them.
        std::thread::sleep(self.byte_time() * data.len() as u32);
        if self.line.garbles() {
            let g: Vec<u8> = data.iter().map(|&b| garbage(b)).collect();
            return self.inner.send(&g);
        }
        self.inner.send(data)
    }
}

/// Settings of one virtual ROM.
#[derive(Debug, Clone)]
pub struct RomConfig {
    pub fault: Fault,
    pub poll_interval: Duration,
    /// The UART's line rate: bytes reach the ROM (and the SPL after it) no
    /// faster than this, and its answers take their wire time
    /// ([`Throttled`]). `None`: as fast as the pty goes.
    pub line_rate: Option<u32>,
    /// The image the host sends is StarFive's recovery program
    /// (`jh7110-recovery-*.bin`), which writes this QSPI flash
    /// (`starfive/recovery.rs`). The sim cannot run what it is given, so
    /// the board is told (Scenario `storage_loader`). `None`: a started
    /// payload is what its bytes say (U-Boot SPL, or silent).
    pub recovery: Option<Flash>,
    /// A lab rack power-cycles the board between runs (`sim --keep`): once
    /// the line has been quiet this long after a payload started, the
    /// board is reset and its ROM starts again (banner, polls). `None`: the
    /// payload runs until the ROM is stopped, as a board nobody resets.
    pub power_cycle_when_quiet: Option<Duration>,
}

impl Default for RomConfig {
    fn default() -> Self {
        RomConfig {
            fault: Fault::None,
            poll_interval: POLL_INTERVAL,
            line_rate: Some(115_200),
            recovery: None,
            power_cycle_when_quiet: None,
        }
    }
}

/// One XMODEM session as the ROM saw it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Everything received (padding included).
    pub received: Vec<u8>,
    pub frames_128: u64,
    pub frames_1k: u64,
    pub naks_sent: u64,
    pub duplicates: u64,
    /// `Ok(description)` when the payload was started; `Err(why)` otherwise.
    pub verdict: Result<String, String>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            received: Vec::new(),
            frames_128: 0,
            frames_1k: 0,
            naks_sent: 0,
            duplicates: 0,
            verdict: Err("incomplete".into()),
        }
    }
}

/// What the SPL stage received by YMODEM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YmodemFile {
    pub name: String,
    pub data: Vec<u8>,
    pub ended_batch: bool,
}

/// Where U-Boot SPL is with its next stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplStage {
    /// It asked (banner, `Trying to boot from UART`, polls) and nothing came.
    Waiting,
    /// The YMODEM header block of `name` came; the transfer is not over.
    Receiving { name: String },
    /// The transfer ended: the file, or why it failed.
    Done(Result<YmodemFile, String>),
}

/// Everything the ROM did so far.
#[derive(Debug, Clone, Default)]
pub struct RomReport {
    pub sessions: Vec<Session>,
    /// What the started payload did when it is U-Boot SPL with YMODEM
    /// support ([`is_ymodem_spl`]); `None` for any other payload.
    pub spl: Option<SplStage>,
    /// Bytes the SPL's UART FIFO dropped while it busy-waited.
    pub fifo_dropped: u64,
    /// What the recovery program did, once it started.
    pub recovery: Option<RecoveryReport>,
    /// The board was told the host sends the recovery program (a storage
    /// verb): a run that never started it did not write the flash.
    pub expects_recovery: bool,
    /// What the fastload loader did, when the payload was that loader
    /// ([`is_fastload_loader`]).
    pub fastload: Option<LoaderReport>,
}

impl RomReport {
    /// The ROM's conclusion: Ok when the last session started a payload
    /// and, when that payload is the SPL and a YMODEM transfer began, the
    /// SPL got the whole file and the end of the batch.
    pub fn verdict(&self) -> Result<String, String> {
        let s = self.sessions.last().ok_or("the virtual ROM received no image")?;
        let mut v = s.verdict.clone()?;
        v = format!(
            "{v} ({} bytes in {} 1K + {} 128-byte frames, {} NAKs sent)",
            s.received.len(),
            s.frames_1k,
            s.frames_128,
            s.naks_sent
        );
        if let Some(r) = &self.recovery {
            return match r.verdict() {
                Ok(w) => Ok(format!("{v}; {w}")),
                Err(e) => Err(format!("{v}; {e}")),
            };
        }
        if self.expects_recovery {
            let what = if self.spl.is_some() { "U-Boot SPL" } else { "a payload" };
            return Err(format!(
                "{v}; it was {what}, not the recovery program: the SPI flash was not written"
            ));
        }
        if let Some(l) = &self.fastload {
            return match l.verdict() {
                Ok(w) => Ok(format!("{v}; {w}")),
                Err(e) => Err(format!("{v}; {e}")),
            };
        }
        match &self.spl {
            None => {}
            Some(SplStage::Waiting) => {
                v.push_str("; U-Boot SPL started and asks for its next stage by YMODEM")
            }
            Some(SplStage::Receiving { name }) => {
                return Err(format!("{v}; the SPL's YMODEM transfer of {name} broke off"));
            }
            Some(SplStage::Done(Ok(f))) if f.ended_batch => {
                v.push_str(&format!("; SPL loaded {} ({} bytes) by YMODEM", f.name, f.data.len()));
                if self.fifo_dropped > 0 {
                    v.push_str(&format!(
                        " ({} bytes were lost to its UART FIFO while it busy-waited)",
                        self.fifo_dropped
                    ));
                }
            }
            Some(SplStage::Done(Ok(f))) => {
                return Err(format!("{v}; the YMODEM batch of {} was not ended", f.name));
            }
            Some(SplStage::Done(Err(e))) => return Err(format!("{v}; the SPL's YMODEM receive failed: {e}")),
        }
        Ok(v)
    }
}

/// A running virtual ROM.
pub struct StarfiveRom {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<RomReport>>,
    /// The fastload loader's own report, once the ROM started one.
    fastload: Arc<Mutex<LoaderReport>>,
    handle: Option<JoinHandle<()>>,
    /// The client side of the ROM's pty, kept open while the ROM lives.
    _client: Option<TTYPort>,
}

impl StarfiveRom {
    /// Starts the ROM on `wire`, as at power-on, paced to
    /// [`RomConfig::line_rate`].
    pub fn spawn<W: Wire + 'static>(wire: W, cfg: RomConfig) -> StarfiveRom {
        match cfg.line_rate {
            Some(baud) => {
                let line = Line::new(baud, true);
                StarfiveRom::spawn_unpaced(Throttled::on_line(wire, line.clone()), line, cfg)
            }
            None => StarfiveRom::spawn_unpaced(wire, Line::new(115_200, false), cfg),
        }
    }

    fn spawn_unpaced<W: Wire + 'static>(wire: W, line: Line, cfg: RomConfig) -> StarfiveRom {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(RomReport {
            expects_recovery: cfg.recovery.is_some(),
            ..RomReport::default()
        }));
        let fastload = Arc::new(Mutex::new(LoaderReport::default()));
        let mut rom = Rom {
            rx: Rx { wire, buf: VecDeque::new() },
            cfg,
            stop: stop.clone(),
            report: report.clone(),
            fastload: fastload.clone(),
            line,
            corrupted: false,
            restarted: false,
        };
        let handle = std::thread::spawn(move || {
            let _ = rom.run();
        });
        StarfiveRom { stop, report, fastload, handle: Some(handle), _client: None }
    }

    /// Starts the ROM on a new pseudo-terminal; returns it and the path a
    /// client opens.
    pub fn spawn_pty(cfg: RomConfig) -> Result<(StarfiveRom, String), racklet_link::LinkError> {
        let crate::serial::PtyPair { device, client, path } = crate::serial::PtyPair::new()?;
        let mut rom = StarfiveRom::spawn(device, cfg);
        rom._client = Some(client);
        Ok((rom, path))
    }

    /// What happened so far.
    pub fn report(&self) -> RomReport {
        let mut r = self.report.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if r.fastload.is_some() {
            r.fastload = Some(self.fastload.lock().unwrap_or_else(|e| e.into_inner()).clone());
        }
        r
    }

    /// Waits until `n` sessions ended (or `timeout`).
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> RomReport {
        let start = Instant::now();
        loop {
            let r = self.report();
            if r.sessions.len() >= n || start.elapsed() >= timeout {
                return r;
            }
            // Polling a mutex-held report; the ROM thread updates it.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the ROM and returns what it did.
    pub fn stop(mut self) -> RomReport {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.report()
    }
}

impl Drop for StarfiveRom {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Rx<W: Wire> {
    wire: W,
    buf: VecDeque<u8>,
}

impl<W: Wire> Rx<W> {
    fn byte(&mut self, timeout: Duration) -> std::io::Result<Option<u8>> {
        if let Some(b) = self.buf.pop_front() {
            return Ok(Some(b));
        }
        let mut tmp = [0u8; 2048];
        let n = self.wire.recv(&mut tmp, timeout)?;
        self.buf.extend(&tmp[..n]);
        Ok(self.buf.pop_front())
    }
}

enum Stop {
    Stopped,
    Io,
}

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Self {
        Stop::Io
    }
}

/// How a frame ended.
enum Got {
    Block {
        n: u8,
        data: Vec<u8>,
    },
    Eot,
    /// A bad frame (NAK sent).
    Bad,
    /// Nothing for the block timeout.
    Nothing,
    Cancelled,
}

struct Rom<W: Wire> {
    rx: Rx<W>,
    cfg: RomConfig,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<RomReport>>,
    /// The report of the fastload loader this ROM may start.
    fastload: Arc<Mutex<LoaderReport>>,
    /// The UART's line: its rate paces the wire.
    line: Line,
    corrupted: bool,
    /// The [`Fault::RestartInBlock1`] restart happened.
    restarted: bool,
}

impl<W: Wire> Rom<W> {
    /// The shared report, for an update.
    fn report(&self) -> std::sync::MutexGuard<'_, RomReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> Result<(), Stop> {
        if self.stop.load(Ordering::SeqCst) { Err(Stop::Stopped) } else { Ok(()) }
    }

    fn send(&mut self, b: &[u8]) -> Result<(), Stop> {
        Ok(self.rx.wire.send(b)?)
    }

    /// Waits for a byte in slices, so a stop request is seen.
    fn byte(&mut self, timeout: Duration) -> Result<Option<u8>, Stop> {
        let start = Instant::now();
        loop {
            self.stopped()?;
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            if let Some(b) = self.rx.byte(left.min(Duration::from_millis(50)))? {
                return Ok(Some(b));
            }
        }
    }

    fn run(&mut self) -> Result<(), Stop> {
        let mut banner = true;
        loop {
            if banner {
                self.send(BANNER)?;
            }
            banner = true;
            let first = self.poll()?;
            let session = self.receive(first, true)?;
            let Some(mut session) = session else {
                // The loader restarts: what is still on the line is lost.
                while self.byte(RESTART_QUIET)?.is_some() {}
                continue;
            };
            let started = session.verdict.is_ok();
            if !started {
                self.send(CRC_ERROR)?;
            }
            self.report().sessions.push(std::mem::take(&mut session));
            if started {
                // U-Boot SPL is known by its bytes; anything else is the
                // recovery program when the board was told so.
                if self.report().spl.is_some() {
                    // It notes its result in the report itself.
                    self.spl_ymodem()?;
                } else if self.report().fastload.is_some() {
                    self.fastload()?;
                } else if let Some(flash) = self.cfg.recovery.clone() {
                    self.recovery(flash)?;
                }
                // The payload runs; the ROM is gone until the next reset.
                let Some(quiet) = self.cfg.power_cycle_when_quiet else {
                    loop {
                        self.byte(Duration::from_secs(3600))?;
                    }
                };
                while self.byte(quiet)?.is_some() {}
                // Power-cycled: a new boot, with nothing of the last one
                // but the sessions seen.
                let mut r = self.report();
                (r.spl, r.recovery, r.fastload, r.fifo_dropped) = (None, None, None, 0);
                drop(r);
                self.restarted = false;
                self.corrupted = false;
            }
            // After a CRC error the ROM polls again, without a new banner.
            banner = false;
        }
    }

    /// Polls with `C` until a frame starts; returns its first byte.
    fn poll(&mut self) -> Result<u8, Stop> {
        let mut polls = 0u32;
        let mut restarts = 0usize;
        loop {
            if self.cfg.fault != Fault::NoPoll {
                self.send(b"C")?;
            }
            polls += 1;
            let until = Instant::now() + self.cfg.poll_interval;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.byte(left)? {
                    Some(b @ (SOH | STX)) if self.cfg.fault != Fault::NoPoll => return Ok(b),
                    // Anything else before a transfer is line noise.
                    _ => {}
                }
            }
            if polls == POLLS_PER_RESTART[restarts.min(1)] {
                // The loader restarts (nothing was under way).
                self.send(BANNER)?;
                restarts += 1;
                polls = 0;
            }
        }
    }

    fn frame(&mut self, first: u8) -> Result<Got, Stop> {
        let len = if first == STX { 1024 } else { 128 };
        let mut f = Vec::with_capacity(len + 4);
        while f.len() < len + 4 {
            match self.byte(BYTE_TIMEOUT)? {
                Some(b) => f.push(b),
                None => {
                    self.send(&[NAK])?;
                    return Ok(Got::Bad);
                }
            }
        }
        if self.cfg.fault == Fault::CorruptFrame && !self.corrupted && f[0] == 3 {
            // A flipped bit on the wire, once: the frame CRC must catch it.
            self.corrupted = true;
            f[7] ^= 0x10;
        }
        let (n, nn) = (f[0], f[1]);
        let data = f[2..2 + len].to_vec();
        let crc = u16::from_be_bytes([f[2 + len], f[3 + len]]);
        if n != 255 - nn || crc16_xmodem(&data) != crc {
            return Ok(Got::Bad);
        }
        Ok(Got::Block { n, data })
    }

    fn next(&mut self) -> Result<Got, Stop> {
        loop {
            match self.byte(BLOCK_TIMEOUT)? {
                None => return Ok(Got::Nothing),
                Some(b @ (SOH | STX)) => return self.frame(b),
                Some(EOT) => return Ok(Got::Eot),
                Some(CAN) => return Ok(Got::Cancelled),
                Some(_) => {}
            }
        }
    }

    /// Receives one XMODEM transfer whose first byte was `first`. `None`
    /// when the transfer broke off (the ROM restarts). With `image`, what
    /// arrived is checked as the ROM checks a boot image; without, it is
    /// taken as it is (the recovery program's receiver).
    fn receive(&mut self, first: u8, image: bool) -> Result<Option<Session>, Stop> {
        let mut s = Session::default();
        let mut expected: u8 = 1;
        let mut block: u64 = 0;
        let mut pending = Some(first);
        let mut storm = 0;
        let mut dropped = false;
        let mut seen_first_copy: Vec<u8> = Vec::new();
        loop {
            let got = match pending.take() {
                Some(_) if self.cfg.fault == Fault::RestartInBlock1 && !self.restarted => {
                    // A restart 100 bytes into the first frame.
                    self.restarted = true;
                    for _ in 0..100 {
                        self.byte(BYTE_TIMEOUT)?;
                    }
                    return Ok(None);
                }
                Some(b) if self.cfg.fault == Fault::PollCrossesBlock1 && !self.restarted => {
                    self.restarted = true;
                    self.send(b"C")?;
                    self.frame(b)?
                }
                Some(b) => self.frame(b)?,
                None => self.next()?,
            };
            match got {
                Got::Block { n, data } => {
                    if data.len() == 1024 {
                        s.frames_1k += 1;
                    } else {
                        s.frames_128 += 1;
                    }
                    if n == expected {
                        let this = block + 1;
                        let first_copy = !seen_first_copy.contains(&n);
                        seen_first_copy.push(n);
                        if seen_first_copy.len() > 8 {
                            seen_first_copy.remove(0);
                        }
                        let nak = match self.cfg.fault {
                            Fault::Nak => first_copy && this.is_multiple_of(4),
                            Fault::NakStorm if this == 2 && storm < 12 => {
                                storm += 1;
                                true
                            }
                            _ => false,
                        };
                        if nak {
                            s.naks_sent += 1;
                            self.send(&[NAK])?;
                            continue;
                        }
                        if self.cfg.fault == Fault::CForBlock3 && this == 3 && first_copy {
                            self.send(b"C")?;
                            continue;
                        }
                        s.received.extend_from_slice(&data);
                        expected = expected.wrapping_add(1);
                        block = this;
                        if self.cfg.fault == Fault::Silent {
                            // Gone quiet: read and drop everything from now on.
                            loop {
                                self.byte(Duration::from_secs(3600))?;
                            }
                        }
                        if self.cfg.fault == Fault::Hangup && this == 3 {
                            // Unplugged: the ROM thread ends and closes the pty master.
                            return Err(Stop::Io);
                        }
                        if self.cfg.fault == Fault::DropAck && this == 2 && !dropped {
                            dropped = true;
                            continue;
                        }
                        self.send(&[ACK])?;
                    } else if n == expected.wrapping_sub(1) {
                        // The sender missed our ACK and sent the block again.
                        s.duplicates += 1;
                        self.send(&[ACK])?;
                    } else {
                        self.send(&[CAN, CAN])?;
                        s.verdict = Err(format!("block number {n} where {expected} was expected"));
                        return Ok(Some(s));
                    }
                }
                Got::Bad => {
                    s.naks_sent += 1;
                    self.send(&[NAK])?;
                }
                Got::Eot => {
                    self.send(&[ACK])?;
                    s.verdict = if image {
                        self.check(&mut s.received)
                    } else {
                        Ok(format!("{} bytes received", s.received.len()))
                    };
                    return Ok(Some(s));
                }
                Got::Nothing | Got::Cancelled => return Ok(None),
            }
        }
    }

    /// The ROM's image check (sheet §1.4, §2.1). A started payload that is
    /// U-Boot SPL is noted in the report: it runs next.
    fn check(&self, img: &mut [u8]) -> Result<String, String> {
        if img.len() < 0x400 {
            return Err(format!("{} bytes received, less than the 0x400-byte header", img.len()));
        }
        let u32_at = |o: usize| u32::from_le_bytes([img[o], img[o + 1], img[o + 2], img[o + 3]]);
        let (size, hdr, crc) = (u32_at(0x288) as usize, u32_at(0x28C) as usize, u32_at(0x290));
        if hdr != 0x400 {
            return Err(format!("header size field 0x{hdr:x}, not 0x400"));
        }
        if size > SRAM_SIZE {
            return Err(format!("payload of {size} bytes does not fit the 256 KiB SRAM"));
        }
        if hdr + size > img.len() {
            return Err(format!("the header announces {size} bytes, {} arrived", img.len() - hdr));
        }
        if self.cfg.fault == Fault::CorruptImage && size > 0 {
            img[hdr + size / 2] ^= 0x01;
        }
        let actual = crc32_iso_hdlc(&img[hdr..hdr + size]);
        if actual != crc {
            return Err(format!("CRC-32 of the payload 0x{actual:08x}, header says 0x{crc:08x}"));
        }
        if is_ymodem_spl(&img[hdr..hdr + size]) {
            self.report().spl = Some(SplStage::Waiting);
        } else if is_fastload_loader(&img[hdr..hdr + size]) {
            self.report().fastload = Some(LoaderReport::default());
        }
        Ok(format!(
            "loaded {size} bytes at 0x{SRAM_BASE:08x} (CRC-32 0x{crc:08x} ok), jumped to 0x{SRAM_BASE:08x}"
        ))
    }
}

impl<W: Wire> Rom<W> {
    /// The fastload loader runs: on the same UART, at the rate the ROM left
    /// it at, with what is already in the receive FIFO; the JH7110 model of
    /// the virtual loader (UART0 at 24 MHz, its image window in the SRAM).
    fn fastload(&mut self) -> Result<(), Stop> {
        let fault = match self.cfg.fault {
            Fault::FastCorruptBlock => LoaderFault::CorruptBlock,
            Fault::FastCorruptMemory => LoaderFault::CorruptMemory,
            _ => LoaderFault::None,
        };
        if self.cfg.fault == Fault::FastNoSync {
            self.line.set_adapter_max(921_600);
        }
        let cfg = LoaderConfig { fault, base_baud: self.line.baud(), ..LoaderConfig::jh7110() };
        let already: Vec<u8> = self.rx.buf.drain(..).collect();
        crate::fastload::run_on(
            &mut self.rx.wire,
            self.line.clone(),
            cfg,
            already,
            self.fastload.clone(),
            self.stop.clone(),
        )?;
        self.stopped()
    }
}

/// The sim's JH7110 board (the chip model): the ROM above on UART0, behind
/// a USB-UART adapter. The adapter is an FTDI FT232R (VID 0x0403, PID
/// 0x6001), the "genuine FTDI" that works with the ROM (sheet §1.3); it is
/// what a serial port listing shows for the virtual board.
pub fn adapter(path: &str, port_path: Option<String>) -> SerialInfo {
    SerialInfo {
        path: path.to_string(),
        vid: Some(0x0403),
        pid: Some(0x6001),
        serial: None,
        manufacturer: Some("FTDI".into()),
        product: Some("FT232R USB UART (virtual JH7110 UART0)".into()),
        port_path,
    }
}

/// A virtual JH7110 attached to a simulated serial bus.
pub struct AttachedRom {
    rom: Option<StarfiveRom>,
}

impl VirtualRom for AttachedRom {
    fn verdict(&mut self) -> Verdict {
        match self.rom.take() {
            Some(rom) => Verdict::from_result(rom.stop().verdict()),
            None => Verdict::NotStarted { why: "the verdict was already taken".into() },
        }
    }
}

fn attach(
    _soc: &str,
    scenario: &Scenario,
    _usb: &SimUsbBus,
    serial: &SimSerialBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    let fault = scenario.fault.as_deref().unwrap_or("none").parse::<Fault>()?;
    // Under a storage verb what the host starts is the recovery program;
    // --sim-storage keeps its flash between runs.
    let recovery = match (&scenario.storage, scenario.storage_loader) {
        (_, false) => None,
        (None, true) => Some(blank_flash()),
        (Some(path), true) => {
            let m = crate::storage::Medium::in_file(path, FLASH_SIZE).map_err(|e| SimError::Impossible {
                soc: "jh7110".into(),
                why: format!("keep its SPI flash in {e}"),
            })?;
            Some(Arc::new(Mutex::new(m)))
        }
    };
    let (rom, path) = StarfiveRom::spawn_pty(RomConfig { fault, recovery, ..Default::default() })
        .map_err(|source| SimError::Start { what: "JH7110 ROM", source })?;
    serial.publish(adapter(&path, Some(scenario.port_path.clone())));
    Ok(Box::new(AttachedRom { rom: Some(rom) }))
}

fn faults() -> Vec<(&'static str, &'static str)> {
    Fault::ALL.iter().map(|f| (f.0, f.2)).collect()
}

/// The JH7110 in the registry ([`crate::models::MODELS`]).
pub static MODEL: Model = Model { socs: &["jh7110"], faults, attach, serve: crate::serve::starfive::run };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_crc() {
        // The 16-byte payload 00..0f of sheet §2.2: CRC-32 0xCECEE288.
        assert_eq!(crc32_iso_hdlc(&(0u8..16).collect::<Vec<u8>>()), 0xCECE_E288);
    }

    #[test]
    fn fault_names_round_trip() {
        for (name, fault, _) in Fault::ALL {
            assert_eq!(name.parse::<Fault>().unwrap(), *fault);
            assert_ne!(*fault, Fault::None);
        }
        assert_eq!("none".parse::<Fault>().unwrap(), Fault::None);
        assert!("bogus".parse::<Fault>().unwrap_err().to_string().contains("nak-storm"));
    }

    #[test]
    fn the_fastload_loader_is_recognised_by_its_banner_and_sync_pattern() {
        // The prebuilt loader the ROM is given (payloads/prebuilt), whole.
        let elf = include_bytes!("../../../payloads/prebuilt/visionfive2/fastload.elf");
        assert!(is_fastload_loader(elf));
        let mut p = vec![0x13u8; 4000];
        p[200..224].copy_from_slice(b"racklet: fastload  ready");
        assert!(!is_fastload_loader(&p), "a banner alone is a payload that prints it");
        p[3000..3008].copy_from_slice(&[0x55, 0xAA, 0x5A, 0xA5, 0x72, 0x66, 0x6C, 0x31]);
        assert!(is_fastload_loader(&p));
        assert!(!is_fastload_loader(&p[..2000]));
        assert!(!is_ymodem_spl(&p) && !is_fastload_loader(b""));
    }

    #[test]
    fn u_boot_spl_is_recognised_by_its_banner_and_ymodem_loader() {
        let mut spl = vec![0x13u8; 4000];
        spl[100..125].copy_from_slice(b"\nU-Boot SPL 2025.10 (Oct ");
        assert!(!is_ymodem_spl(&spl), "an SPL without YMODEM support does not ask for it");
        spl[3000..3018].copy_from_slice(b"Loaded %lu bytes\n\0");
        assert!(is_ymodem_spl(&spl));
        assert!(!is_ymodem_spl(&spl[..2000]));
        assert!(!is_ymodem_spl(b""));
    }
}
