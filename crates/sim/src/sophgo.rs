//! The Sophgo CV180x / SG200x mask ROM's USB download, as a virtual
//! CDC-ACM port on a pseudo-terminal.
//!
//! Written from `shared/protocols/sophgo.md` (the FSBL's copy of the ROM's
//! `usb_tty.c`, the ROM strings and the reference-tool transcripts), not
//! from racklet-sophgo: its own chip table ([`SOCS`]), its own CRC (the
//! reference in [`crate::crc`]), its own packet parser.
//!
//! What it models:
//! - each SoC's ROM as the sheet's §3.2 table gives it: where BL2 is loaded
//!   for the core the board is strapped to, the largest BL2, the entry at
//!   BL2_BASE + 0x20; the descriptors of §1.1 (3346:1000 "CVITEK" "USB Com
//!   Port", serial "123456789ABC"), and a VID changed by efuse;
//! - each `load_image(buf, offset, size)` call is one USB session: the ROM
//!   publishes a new pty (same USB port path, ids 3346:1000), serves it, and
//!   withdraws it at the end (re-enumeration);
//! - the sequence of requests of a cold boot: probe (size 0), param1
//!   (0, 4096), then BL2 (0x1000 + BLCP size, BL2 size) read from param1;
//! - the first session's window: a valid magic must arrive within twice
//!   `window` (open + magic; a pty cannot show the CDC open request itself),
//!   otherwise the ROM logs `USBW/...` and boots from flash;
//! - packets: token, u16be length (header included), u40be address; a
//!   packet with length 0 and address 0 is dropped without an ACK; every
//!   other packet gets a 16-byte ACK (CRC twice, 0, token, ack counter, the
//!   wanted offset and size);
//! - the checks: magic CRC 0xC283, FLAG "1NGM" at 0x0E000004 before BREAK,
//!   param1 magic and checksum over 0x10..0x800, BL2 checksum; a failed
//!   session or check is retried (the same request again), then the ROM
//!   falls back to flash;
//! - faults, chosen by name (see [`SophgoFault`]).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use racklet_link::{LinkError, SerialInfo};
use serialport::{SerialPort, TTYPort};

use crate::crc::crc16_xmodem;
use crate::models::{Model, Scenario, SimError};
use crate::rom::{Faults, Verdict, VirtualRom};
use crate::serial::{PtyPair, SimSerialBus};
use crate::usb::SimUsbBus;

/// idVendor of the ROM ("CVITEK"), sheet §1.1.
pub const VID: u16 = 0x3346;
/// idProduct of the ROM ("USB Com Port"), sheet §1.1.
pub const PID: u16 = 0x1000;
/// The ROM's window when USB_ID != 0: 1000 ms, twice (open, then magic), sheet §1.3.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(1000);
/// The ROM's window when USB_ID == 0 (the board asks for a download) and
/// the efuse `usb_polling_time` bit is clear: 10000 ms, sheet §1.3.
pub const DOWNLOAD_WINDOW: Duration = Duration::from_millis(10_000);
/// The ROM branches to BL2_BASE + 0x20 (sheet §3.2: seen in the CA53 ROM,
/// inferred for the RISC-V ROMs).
pub const BL2_ENTRY_OFFSET: u64 = 0x20;

/// The core a CV18xx/SG200x boots on (a strap on the board, sheet §1.4),
/// and so the ROM that runs and the core that runs BL2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Core {
    /// The C906 (CV1800B) or C906B (SG200x) RISC-V core.
    Riscv,
    /// The Cortex-A53 of the SG200x, strapped to Arm.
    Arm,
}

impl std::str::FromStr for Core {
    type Err = String;

    /// `riscv` or `arm`, as the board's strap is named.
    fn from_str(s: &str) -> Result<Core, String> {
        match s {
            "riscv" => Ok(Core::Riscv),
            "arm" => Ok(Core::Arm),
            _ => Err(format!("'{s}' is not a boot core of these chips (riscv, arm)")),
        }
    }
}

/// One SoC's mask ROM as the device knows itself (sheet §3.2, from sophgo/fsbl
/// `plat/cv18{0,1}x/include/{mmap.h,platform_def.h}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soc {
    /// The name the board table uses.
    pub name: &'static str,
    /// BL2_BASE of the RISC-V ROM.
    pub riscv_bl2: u64,
    /// BL2_BASE of the Arm ROM, when the chip has an Arm boot core.
    pub arm_bl2: Option<u64>,
    /// The largest BL2 the ROM loads (its SRAM).
    pub max_bl2: u32,
}

/// Every SoC the virtual ROM models (sheet §3.2 table).
pub static SOCS: [Soc; 3] = [
    // CV1800B: C906 only; BL2 in the VC SRAM alias 0x3BC00000, 0x19000 (100 KiB).
    Soc { name: "cv1800b", riscv_bl2: 0x3BC0_0000, arm_bl2: None, max_bl2: 0x19000 },
    // SG2000 / SG2002 (cv181x): TPU SRAM 0x0C000000, mirrored at 0x40100000 for the A53; 0x37000.
    Soc { name: "sg2000", riscv_bl2: 0x0C00_0000, arm_bl2: Some(0x4010_0000), max_bl2: 0x37000 },
    Soc { name: "sg2002", riscv_bl2: 0x0C00_0000, arm_bl2: Some(0x4010_0000), max_bl2: 0x37000 },
];

/// The model of `soc` (as the board table names it, any case).
pub fn soc(name: &str) -> Option<&'static Soc> {
    SOCS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

impl Soc {
    /// Where this SoC's ROM for `core` loads BL2; `None` when it has no such core.
    pub fn bl2_base(&self, core: Core) -> Option<u64> {
        match core {
            Core::Riscv => Some(self.riscv_bl2),
            Core::Arm => self.arm_bl2,
        }
    }
}

/// A board strapped to a core its SoC does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {soc} has no {core:?} boot core")]
pub struct NoSuchCore {
    pub soc: &'static str,
    pub core: Core,
}

const MAGIC_CRC: u16 = 0xC283;
const BOOT_SOURCE_FLAG: u64 = 0x0E00_0004;
const MGN1: [u8; 4] = [0x31, 0x4E, 0x47, 0x4D];
const RX_BUF: usize = 512;
const PARAM1_LEN: u32 = 0x1000;
/// How long the ROM takes to bring USB back after a session ends (model).
const REENUMERATE: Duration = Duration::from_millis(30);
/// How long the port stays after the BREAK ACK is queued, so it can be read.
const LINGER: Duration = Duration::from_millis(50);

fn cksum(data: &[u8]) -> u32 {
    0xCAFE_0000 | crc16_xmodem(data) as u32
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Ways the virtual ROM misbehaves (`--fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SophgoFault {
    /// One ACK (the 2nd DATA packet of param1) carries a wrong CRC.
    BadAckCrc,
    /// Every ACK carries a wrong CRC (what a garbled link looks like).
    BadAckCrcAlways,
    /// The BL2 session asks for an offset far past the end of fip.bin.
    WrongOffset,
    /// The device drops off the bus in the middle of the BL2 session.
    Vanish,
    /// The BREAK ACK is lost (the ROM left the bus first).
    NoBreakAck,
    /// The BL2 checksum check fails every time.
    RejectBl2,
    /// The host was too late: the ROM's window closes before the magic.
    WindowMissed,
}

impl Faults for SophgoFault {
    const ALL: &'static [(&'static str, SophgoFault, &'static str)] = &[
        ("bad-ack-crc", SophgoFault::BadAckCrc, "one ACK carries a wrong CRC (the host must resend)"),
        ("bad-ack-crc-always", SophgoFault::BadAckCrcAlways, "every ACK carries a wrong CRC"),
        ("wrong-offset", SophgoFault::WrongOffset, "the BL2 session asks for bytes past the end of fip.bin"),
        ("vanish", SophgoFault::Vanish, "the device disappears in the middle of the BL2 session"),
        ("no-break-ack", SophgoFault::NoBreakAck, "the ACK of BREAK is lost"),
        ("reject-bl2", SophgoFault::RejectBl2, "the ROM's BL2 checksum check fails every time"),
        ("window-missed", SophgoFault::WindowMissed, "the ROM's download window closes before the magic"),
    ];
}

impl std::str::FromStr for SophgoFault {
    type Err = crate::rom::UnknownFault;

    fn from_str(name: &str) -> Result<SophgoFault, Self::Err> {
        crate::rom::parse_fault(name, "Sophgo virtual ROM")
    }
}

/// How the virtual ROM is set up.
#[derive(Debug, Clone)]
pub struct SophgoRomConfig {
    /// USB port path the board is plugged into.
    pub port_path: String,
    /// The SoC (its own table, [`SOCS`]).
    pub soc: &'static Soc,
    /// The core the board is strapped to boot.
    pub core: Core,
    /// Where BL2 is loaded: the SoC's BL2_BASE for `core`.
    bl2_base: u64,
    pub fault: Option<SophgoFault>,
    /// Each of the two first-session windows.
    pub window: Duration,
    /// How often a failed request is retried before falling back to flash.
    pub retries: u32,
    /// How many cold boots to serve (`sim --keep`: many).
    pub boots: u32,
    pub vid: u16,
    pub pid: u16,
    /// Instead of a cold boot: a BL2 is already running and calls the ROM
    /// API `load_image(buf, offset, size)` with this (offset, size) (`--main`).
    pub bl2_load: Option<(u32, u32)>,
}

impl SophgoRomConfig {
    /// The ROM of `soc` strapped to `core`, at `port_path`, with the
    /// defaults of a board nobody holds in download mode (a 1 s window).
    pub fn new(soc: &'static Soc, core: Core, port_path: &str) -> Result<Self, NoSuchCore> {
        let bl2_base = soc.bl2_base(core).ok_or(NoSuchCore { soc: soc.name, core })?;
        Ok(SophgoRomConfig {
            port_path: port_path.to_string(),
            soc,
            core,
            bl2_base,
            fault: None,
            window: DEFAULT_WINDOW,
            retries: 3,
            boots: 1,
            vid: VID,
            pid: PID,
            bl2_load: None,
        })
    }

    /// Where the ROM enters BL2.
    pub fn bl2_entry(&self) -> u64 {
        self.bl2_base + BL2_ENTRY_OFFSET
    }
}

/// One served session, as the ROM saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLog {
    pub offset: u32,
    pub size: u32,
    pub packets: u32,
    pub data_bytes: u64,
    pub flag_ok: bool,
    pub tty: String,
}

/// What the virtual ROM received and did.
#[derive(Debug, Clone, Default)]
pub struct RomState {
    /// The ROM's UART log, in its own terse tokens (`USBK.`, `PS.`, `J.`...).
    pub log: String,
    pub sessions: Vec<SessionLog>,
    /// param1 as received, once accepted.
    pub param1: Option<Vec<u8>>,
    /// BL2 as received, once accepted.
    pub bl2: Option<Vec<u8>>,
    /// Where the ROM jumped.
    pub jumped_to: Option<u64>,
    /// What a running BL2's load_image call received (`bl2_load`).
    pub loaded: Option<Vec<u8>>,
    /// Why the boot did not end in a jump (window missed, fell back to flash...).
    pub error: Option<String>,
    /// The ROM thread has ended.
    pub finished: bool,
    /// Completed boots (jumps).
    pub boots_done: u32,
    /// The tty of the current enumeration, if any.
    pub tty: Option<String>,
    /// When the ROM last received a packet or ended a session.
    pub last_activity: Option<Instant>,
}

/// Callback for each line the ROM wants the operator to see (serve mode).
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// A running virtual ROM.
pub struct SophgoRom {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<RomState>>,
    thread: Option<JoinHandle<()>>,
}

impl SophgoRom {
    /// Powers the board on: the ROM starts its first session on `bus`.
    pub fn spawn(
        bus: SimSerialBus,
        cfg: SophgoRomConfig,
        notify: Option<Notify>,
    ) -> Result<SophgoRom, LinkError> {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(RomState::default()));
        // Create and publish the first port before returning, so that it is
        // listed at once (power-on enumeration).
        let first = PtyPair::new()?;
        bus.publish(port_info(&cfg, &first.path));
        let mut rom = Rom {
            bus,
            cfg,
            stop: stop.clone(),
            state: state.clone(),
            notify,
            ack_idx: 0,
            flag_dl: false,
            flag_word: [0; 4],
            bad_crc_done: false,
        };
        let thread = std::thread::Builder::new()
            .name("sophgo-rom".into())
            .spawn(move || rom.run(Some(first)))
            .map_err(|e| LinkError::io("starting the virtual ROM", e))?;
        Ok(SophgoRom { stop, state, thread: Some(thread) })
    }

    /// A snapshot of what the ROM saw so far.
    pub fn state(&self) -> RomState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until the ROM has jumped or given up, at most `timeout`.
    pub fn wait(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.state().finished {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.state().finished
    }

    /// Stops the ROM (power off) and returns what it saw.
    pub fn stop(&mut self) -> RomState {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.state()
    }

    /// What the ROM concluded: a started BL2 (or a running BL2's load
    /// received), or why not.
    fn conclude(&mut self) -> Verdict {
        // The ROM checks BL2 right after BREAK; give it a moment to finish,
        // unless it has gone quiet (waiting for a host that left).
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            let s = self.state();
            if s.finished || s.last_activity.is_none_or(|t| t.elapsed() > Duration::from_millis(300)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let s = self.stop();
        let sessions = s
            .sessions
            .iter()
            .map(|x| format!("0x{:x}+0x{:x}", x.offset, x.size))
            .collect::<Vec<_>>()
            .join(", ");
        if let (Some(l), None) = (&s.loaded, &s.error) {
            return Verdict::Started {
                summary: format!(
                    "load_image received {} bytes (crc16 {:04x}) in session {sessions}",
                    l.len(),
                    crc16_xmodem(l)
                ),
            };
        }
        match (s.jumped_to, &s.error) {
            (Some(at), None) => Verdict::Started {
                summary: format!(
                    "sessions {sessions}; BL2 of {} bytes checked, jumped to 0x{at:x}; log {}",
                    s.bl2.as_ref().map(|b| b.len()).unwrap_or(0),
                    s.log
                ),
            },
            (_, Some(e)) => Verdict::NotStarted { why: format!("{e} (sessions {sessions}; log {})", s.log) },
            (None, None) => Verdict::NotStarted {
                why: format!("the ROM never jumped to BL2 (sessions {sessions}; log {})", s.log),
            },
        }
    }
}

impl VirtualRom for SophgoRom {
    fn verdict(&mut self) -> Verdict {
        self.conclude()
    }
}

impl Drop for SophgoRom {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The port as the host sees it: the ROM's descriptors (sheet §1.1).
fn port_info(cfg: &SophgoRomConfig, path: &str) -> SerialInfo {
    SerialInfo {
        path: path.to_string(),
        vid: Some(cfg.vid),
        pid: Some(cfg.pid),
        serial: Some("123456789ABC".into()),
        manufacturer: Some("CVITEK".into()),
        product: Some("USB Com Port".into()),
        port_path: Some(cfg.port_path.clone()),
    }
}

/// What the ROM was asked to load in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Probe,
    Param1,
    /// BL2, whose checksum the accepted param1 gave (BL2_IMG_CKSUM).
    Bl2 {
        cksum: u32,
    },
    /// A running BL2's load_image call.
    Load,
}

enum End {
    /// FLAG + BREAK (or the probe's magic) arrived.
    Done { buf: Vec<u8>, flag_ok: bool },
    /// The first-session window passed without a magic.
    Window,
    /// The device left the bus (fault) or a packet broke the ROM.
    Vanished(String),
    /// Power off.
    Stopped,
}

struct Rom {
    bus: SimSerialBus,
    cfg: SophgoRomConfig,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<RomState>>,
    notify: Option<Notify>,
    /// The ROM's static ACK counter.
    ack_idx: u8,
    /// flagEnterDL: set by a good magic, never reset between sessions.
    flag_dl: bool,
    /// The word at BOOT_SOURCE_FLAG.
    flag_word: [u8; 4],
    bad_crc_done: bool,
}

impl Rom {
    fn st(&self) -> std::sync::MutexGuard<'_, RomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, t: &str) {
        self.st().log.push_str(t);
    }

    fn say(&self, line: &str) {
        if let Some(n) = &self.notify {
            n(line);
        }
    }

    fn fail(&self, why: String) {
        self.say(&format!("ROM: {why}"));
        self.st().error = Some(why);
    }

    fn run(&mut self, mut first: Option<PtyPair>) {
        'boots: for boot in 0..self.cfg.boots.max(1) {
            if boot > 0 {
                // A new power cycle: the ROM starts from scratch.
                self.ack_idx = 0;
                self.flag_dl = false;
                self.flag_word = [0; 4];
                // What the previous boot loaded stays visible (jumped_to,
                // bl2) until this one gets further.
                let mut s = self.st();
                s.error = None;
                s.log.clear();
            }
            self.log("C.SCS/0/0.WD.URPL.USBI.");
            let mut req = (Kind::Probe, 0u32, 0u32);
            if let Some((off, size)) = self.cfg.bl2_load {
                // BL2 was loaded over USB, so flagEnterDL is already set.
                self.flag_dl = true;
                self.log("BE.J.");
                req = (Kind::Load, off, size);
            }
            let mut tries = 0u32;
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    break 'boots;
                }
                let pair = match first.take() {
                    Some(p) => p,
                    None => match PtyPair::new() {
                        Ok(p) => p,
                        Err(e) => {
                            self.fail(format!("cannot create a pty: {e}"));
                            break 'boots;
                        }
                    },
                };
                let end = self.session(pair, req);
                match end {
                    End::Stopped => break 'boots,
                    End::Window => {
                        self.log("USBW/1000.BS/EMMC.");
                        self.fail("the host did not send the magic within the ROM's USB window; the ROM booted from flash".into());
                        break;
                    }
                    End::Vanished(why) => {
                        self.fail(why);
                        break;
                    }
                    End::Done { buf, flag_ok } => match req.0 {
                        Kind::Probe => {
                            self.log("USBD.BS/USB.");
                            req = (Kind::Param1, 0, PARAM1_LEN);
                        }
                        _ if !flag_ok => {
                            self.log("USBF.");
                            tries += 1;
                        }
                        Kind::Param1 => match self.check_param1(&buf) {
                            Ok((off, size, cksum)) => {
                                self.log("PS.");
                                self.st().param1 = Some(buf);
                                req = (Kind::Bl2 { cksum }, off, size);
                                tries = 0;
                            }
                            Err(e) => {
                                self.log("PE.");
                                self.say(&format!("ROM: param1 rejected: {e}"));
                                tries += 1;
                            }
                        },
                        Kind::Load => {
                            self.log("USBL.");
                            self.say(&format!("ROM: load_image received {} bytes", buf.len()));
                            self.st().loaded = Some(buf);
                            break;
                        }
                        Kind::Bl2 { cksum } => match self.check_bl2(&buf, cksum) {
                            Ok(()) => {
                                let entry = self.cfg.bl2_entry();
                                self.log("BE.J.");
                                self.say(&format!(
                                    "ROM: BL2 of {} bytes checked, jumping to 0x{entry:x}",
                                    buf.len()
                                ));
                                let mut s = self.st();
                                s.bl2 = Some(buf);
                                s.jumped_to = Some(entry);
                                s.boots_done += 1;
                                break;
                            }
                            Err(e) => {
                                self.log("BF.");
                                self.say(&format!("ROM: BL2 rejected: {e}"));
                                tries += 1;
                            }
                        },
                    },
                }
                if tries > self.cfg.retries {
                    self.log("DL cancelled. Load flash.");
                    self.fail(format!(
                        "the ROM gave up on request 0x{:x}+0x{:x} after {tries} tries and fell back to flash",
                        req.1, req.2
                    ));
                    break;
                }
                // USB is re-initialised between load_image calls.
                std::thread::sleep(REENUMERATE);
            }
            if boot + 1 < self.cfg.boots {
                self.say("ROM: power cycle");
            }
        }
        let mut s = self.st();
        s.finished = true;
        s.tty = None;
    }

    /// The ROM's param1 checks; the BL2 request (offset, size) and the BL2
    /// checksum param1 announces.
    fn check_param1(&self, p: &[u8]) -> Result<(u32, u32, u32), String> {
        if p.len() < PARAM1_LEN as usize || &p[..8] != b"CVBL01\n\0" {
            return Err("magic is not CVBL01".into());
        }
        let stored = le32(p, 0x0C);
        let computed = cksum(&p[0x10..0x800]);
        if stored != computed {
            return Err(format!("param1 checksum 0x{stored:08x}, computed 0x{computed:08x}"));
        }
        let blcp_size = le32(p, 0xC4);
        let bl2_cksum = le32(p, 0xD4);
        let bl2_size = le32(p, 0xD8);
        if bl2_size == 0 || bl2_size > self.cfg.soc.max_bl2 {
            return Err(format!("BL2 size {bl2_size} out of range"));
        }
        Ok((PARAM1_LEN + blcp_size, bl2_size, bl2_cksum))
    }

    /// The ROM's BL2 check against the checksum its param1 announced.
    fn check_bl2(&self, bl2: &[u8], stored: u32) -> Result<(), String> {
        let computed = cksum(bl2);
        if self.cfg.fault == Some(SophgoFault::RejectBl2) {
            return Err(format!("BL2 checksum check failed (fault reject-bl2; stored 0x{stored:08x})"));
        }
        if stored != computed {
            return Err(format!("BL2 checksum 0x{stored:08x}, computed 0x{computed:08x}"));
        }
        Ok(())
    }

    /// Serves one enumeration.
    fn session(&mut self, pair: PtyPair, req: (Kind, u32, u32)) -> End {
        let PtyPair { mut device, client, path } = pair;
        self.bus.publish(port_info(&self.cfg, &path));
        self.st().tty = Some(path.clone());
        self.say(&format!("tty {path}"));
        let end = self.serve(&mut device, req, &path);
        self.bus.withdraw(&path);
        {
            let mut s = self.st();
            s.tty = None;
            s.last_activity = Some(Instant::now());
        }
        self.say(&format!("gone {path}"));
        drop(client);
        drop(device);
        end
    }

    /// Reads exactly `buf.len()` bytes, polling the stop flag. `deadline`
    /// bounds the wait when the ROM has one (the first session).
    fn read_full(&self, dev: &mut TTYPort, buf: &mut [u8], deadline: Option<Instant>) -> Result<(), End> {
        let mut got = 0;
        while got < buf.len() {
            if self.stop.load(Ordering::SeqCst) {
                return Err(End::Stopped);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(End::Window);
            }
            match dev.read(&mut buf[got..]) {
                Ok(0) => std::thread::sleep(Duration::from_millis(5)),
                Ok(n) => got += n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::TimedOut
                        || e.kind() == std::io::ErrorKind::WouldBlock => {}
                // EIO on a pty master: no client has the slave open; keep waiting.
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        Ok(())
    }

    fn serve(&mut self, dev: &mut TTYPort, req: (Kind, u32, u32), path: &str) -> End {
        let _ = dev.set_timeout(Duration::from_millis(20));
        let (kind, mut offset, size) = req;
        if matches!(kind, Kind::Bl2 { .. }) && self.cfg.fault == Some(SophgoFault::WrongOffset) {
            offset = 0x0100_0000;
        }
        // Before the first good magic, the ROM gives the host two windows.
        let deadline = (!self.flag_dl).then(|| Instant::now() + self.cfg.window * 2);
        let mut buf = vec![0u8; size as usize];
        let mut log =
            SessionLog { offset, size, packets: 0, data_bytes: 0, flag_ok: false, tty: path.to_string() };
        let mut data_packets = 0u32;
        let end = loop {
            let mut hdr = [0u8; 8];
            if let Err(e) = self.read_full(dev, &mut hdr, deadline.filter(|_| !self.flag_dl)) {
                break e;
            }
            let token = hdr[0];
            let length = u16::from_be_bytes([hdr[1], hdr[2]]) as usize;
            let addr = u64::from_be_bytes([0, 0, 0, hdr[3], hdr[4], hdr[5], hdr[6], hdr[7]]);
            if length == 0 && addr == 0 {
                // The ROM re-arms the endpoint and sends nothing.
                continue;
            }
            if length > RX_BUF {
                break End::Vanished(format!(
                    "a packet of {length} bytes overflowed the ROM's {RX_BUF}-byte receive buffer"
                ));
            }
            let mut pkt = hdr.to_vec();
            if length > 8 {
                pkt.resize(length, 0);
                if let Err(e) =
                    self.read_full(dev, &mut pkt[8..], Some(Instant::now() + Duration::from_secs(1)))
                {
                    break match e {
                        End::Window => End::Vanished("a packet's data never arrived".into()),
                        e => e,
                    };
                }
            }
            self.st().last_activity = Some(Instant::now());
            let crc = crc16_xmodem(&pkt[..length.min(pkt.len())]);
            let data = &pkt[8.min(pkt.len())..];
            log.packets += 1;
            let mut done = None;
            match token {
                3 => {
                    if self.cfg.fault == Some(SophgoFault::WindowMissed) {
                        break End::Window;
                    }
                    if crc16_xmodem(data) == MAGIC_CRC {
                        self.ack_idx = 0;
                        self.flag_dl = true;
                        self.flag_word = [0; 4];
                        self.log("USBK.");
                        if kind == Kind::Probe {
                            done = Some(true);
                        }
                    } else {
                        self.flag_dl = false;
                        self.log("USBKF.");
                    }
                }
                0 => {
                    if kind == Kind::Probe {
                        break End::Vanished("DATA sent in the probe session, whose buffer is NULL".into());
                    }
                    self.ack_idx = self.ack_idx.wrapping_add(1);
                    let a = addr as usize;
                    if a + data.len() > buf.len() {
                        break End::Vanished(format!(
                            "DATA at 0x{a:x}+{} writes past the {}-byte buffer of this request",
                            data.len(),
                            buf.len()
                        ));
                    }
                    buf[a..a + data.len()].copy_from_slice(data);
                    log.data_bytes += data.len() as u64;
                    data_packets += 1;
                    if matches!(kind, Kind::Bl2 { .. })
                        && data_packets == 2
                        && self.cfg.fault == Some(SophgoFault::Vanish)
                    {
                        break End::Vanished(
                            "the device left the bus in the middle of the BL2 session (fault vanish)".into(),
                        );
                    }
                }
                1 => {
                    self.ack_idx = self.ack_idx.wrapping_add(1);
                    if addr == BOOT_SOURCE_FLAG && data.len() >= 4 {
                        self.flag_word.copy_from_slice(&data[..4]);
                    }
                }
                2 => {
                    self.ack_idx = 0;
                    done = Some(false);
                }
                _ => self.ack_idx = self.ack_idx.wrapping_add(1),
            }
            let mut c = crc;
            let corrupt = match self.cfg.fault {
                Some(SophgoFault::BadAckCrcAlways) => true,
                Some(SophgoFault::BadAckCrc)
                    if kind == Kind::Param1 && token == 0 && data_packets == 2 && !self.bad_crc_done =>
                {
                    self.bad_crc_done = true;
                    true
                }
                _ => false,
            };
            if corrupt {
                c ^= 0xFFFF;
            }
            let mut ack = [0u8; 16];
            ack[0..2].copy_from_slice(&c.to_be_bytes());
            ack[2..4].copy_from_slice(&c.to_be_bytes());
            ack[6] = token;
            ack[7] = self.ack_idx;
            ack[8..12].copy_from_slice(&offset.to_be_bytes());
            ack[12..16].copy_from_slice(&size.to_be_bytes());
            if done == Some(false) {
                // BREAK: the ROM queues the ACK and leaves the bus.
                self.bus.withdraw(path);
                if self.cfg.fault != Some(SophgoFault::NoBreakAck) {
                    let _ = dev.write_all(&ack);
                    let _ = dev.flush();
                }
                std::thread::sleep(LINGER);
                log.flag_ok = self.flag_word == MGN1;
                break End::Done { buf: std::mem::take(&mut buf), flag_ok: log.flag_ok };
            }
            let _ = dev.write_all(&ack);
            let _ = dev.flush();
            if done == Some(true) {
                // The probe returns right after ACKing the magic.
                std::thread::sleep(LINGER);
                break End::Done { buf: Vec::new(), flag_ok: true };
            }
        };
        if !matches!(end, End::Stopped) {
            self.st().sessions.push(log);
        }
        if matches!(end, End::Vanished(_) | End::Window) {
            // The host's last write has been read; let its flush finish
            // before the port disappears under it (a USB device leaves the
            // bus between transfers, not in the middle of one).
            std::thread::sleep(LINGER);
        }
        end
    }
}

/// The Sophgo family in the registry ([`crate::models`]).
pub static MODEL: Model =
    Model { socs: &["cv1800b", "sg2000", "sg2002"], faults: fault_list, attach: attach_model };

fn fault_list() -> Vec<(&'static str, &'static str)> {
    SophgoFault::ALL.iter().map(|f| (f.0, f.2)).collect()
}

/// A virtual board of `soc` on `serial`, as `--simulate` wants it: someone
/// holds it in download mode (USB_ID low), so the ROM's window is the long
/// one (sheet §1.3).
fn attach_model(
    soc: &str,
    scenario: &Scenario,
    _usb: &SimUsbBus,
    serial: &SimSerialBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    let model = self::soc(soc).ok_or_else(|| SimError::UnknownSoc { soc: soc.to_string() })?;
    let core = match scenario.core.as_deref() {
        None => Core::Riscv,
        Some(c) => c
            .parse()
            .map_err(|why| SimError::Impossible { soc: soc.to_string(), why: format!("boot: {why}") })?,
    };
    let mut cfg = SophgoRomConfig::new(model, core, &scenario.port_path).map_err(|_| {
        SimError::Impossible { soc: soc.to_string(), why: format!("boot on its {core:?} core: it has none") }
    })?;
    cfg.fault = scenario.fault.as_deref().map(str::parse).transpose()?;
    cfg.window = DOWNLOAD_WINDOW;
    if let Some(id) = scenario.usb_id {
        (cfg.vid, cfg.pid) = (id.vid, id.pid);
    }
    if let Some(len) = scenario.running_load {
        // A running BL2 calls load_image(buf, 0, len).
        cfg.bl2_load = Some((0, len));
    }
    let rom = SophgoRom::spawn(serial.clone(), cfg, None)
        .map_err(|source| SimError::Start { what: "Sophgo ROM", source })?;
    Ok(Box::new(rom))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_vectors_from_the_sheet() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_xmodem(&[0x2C, 0x08]), MAGIC_CRC);
        assert_eq!(crc16_xmodem(&[0x03, 0x00, 0x0a, 0, 0, 0, 0, 0, 0x2c, 0x08]), 0xe230);
    }

    #[test]
    fn fault_names_round_trip() {
        for (name, f, _) in SophgoFault::ALL {
            assert_eq!(name.parse::<SophgoFault>(), Ok(*f));
        }
        let e = "nope".parse::<SophgoFault>().unwrap_err();
        assert!(e.known.contains("reject-bl2"), "{e}");
    }

    #[test]
    fn window_passes_without_a_host() {
        let bus = SimSerialBus::new();
        let mut cfg = SophgoRomConfig::new(soc("sg2002").unwrap(), Core::Riscv, "1-1").unwrap();
        cfg.window = Duration::from_millis(50);
        let mut rom = SophgoRom::spawn(bus.clone(), cfg, None).unwrap();
        assert!(rom.wait(Duration::from_secs(3)));
        assert!(racklet_link::SerialBus::ports(&bus).unwrap().is_empty());
        let v = rom.verdict();
        assert!(!v.started() && v.text().contains("window"), "{v:?}");
    }

    #[test]
    fn the_strap_picks_the_rom_and_a_cv1800b_has_no_arm_rom() {
        let arm = SophgoRomConfig::new(soc("SG2000").unwrap(), Core::Arm, "1-1").unwrap();
        assert_eq!(arm.bl2_entry(), 0x4010_0020);
        let rv = SophgoRomConfig::new(soc("cv1800b").unwrap(), Core::Riscv, "1-1").unwrap();
        assert_eq!(rv.bl2_entry(), 0x3BC0_0020);
        assert!(SophgoRomConfig::new(soc("cv1800b").unwrap(), Core::Arm, "1-1").is_err());
        assert!(soc("rk3568").is_none());
    }

    #[test]
    fn the_registry_builds_what_the_scenario_asks_or_says_why_not() {
        let (usb, serial) = (SimUsbBus::new(), SimSerialBus::new());
        let mut sc = Scenario::at("1-4");
        sc.core = Some("arm".into());
        let e = crate::models::attach("cv1800b", &sc, &usb, &serial).err().expect("no Arm core");
        assert!(matches!(e, SimError::Impossible { .. }), "{e}");
        sc.core = None;
        sc.fault = Some("no-such".into());
        let e = crate::models::attach("sg2002", &sc, &usb, &serial).err().expect("unknown fault");
        assert!(matches!(e, SimError::UnknownFault(_)), "{e}");
        sc.fault = None;
        sc.usb_id = Some(racklet_link::UsbId::new(0x1234, 0xabcd));
        let rom = crate::models::attach("sg2002", &sc, &usb, &serial).unwrap();
        let ports = racklet_link::SerialBus::ports(&serial).unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!((ports[0].vid, ports[0].pid), (Some(0x1234), Some(0xabcd)));
        assert_eq!(ports[0].port_path.as_deref(), Some("1-4"));
        drop(rom);
    }
}
