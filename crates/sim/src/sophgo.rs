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
//!   param1 magic and checksum over 0x10..0x800, BL2 checksum; the ROM
//!   tries each image once over USB (`get_number_of_retries()` returns 1
//!   for USB, disassembly of both CV181x ROM images, review F3), then prints
//!   `DL cancelled. Load flash.` and boots the strapped flash;
//! - each bulk OUT request parsed as one packet (usb_tty.c `bulkOutCmpl`):
//!   512-byte requests at high speed, 64-byte ones at full speed, so a
//!   longer packet at full speed is parsed as several, its fragments as
//!   headers;
//! - the vendor FSBL after BL2 when param1 names a param2 (sophgo/fsbl
//!   `plat/cv181x/bl2/bl2_opt.c`): param2, DDR parameters, BLCP_2ND, the
//!   monitor, LOADER_2ND's header and body, each its own session through
//!   the ROM's load_image, then U-Boot's download gadget (3346:1001);
//! - the UART log (ROM and FSBL strings), on a console pty when asked;
//! - a part whose efuses disable the USB timeout (`USBC.`): the probe
//!   session ends at enumeration, without a magic;
//! - the bus time of each transfer, when the link has a timing model;
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
use crate::usb::{BusSpeed, LinkModel, SimUsbBus};

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
    /// The in-package DRAM (base, size): the FSBL refuses run addresses
    /// outside it (bl2_opt.c `IN_RANGE(..., DRAM_BASE, DRAM_SIZE)`).
    pub dram: (u64, u64),
}

/// Every SoC the virtual ROM models (sheet §3.2 table).
pub static SOCS: [Soc; 3] = [
    // CV1800B: C906 only; BL2 in the VC SRAM alias 0x3BC00000, 0x19000 (100 KiB).
    // DRAM: CVIMMAP_DRAM_BASE 0x80000000; 64 MiB (CV1800B), 256 MiB (SG2002), 512 MiB (SG2000).
    Soc {
        name: "cv1800b",
        riscv_bl2: 0x3BC0_0000,
        arm_bl2: None,
        max_bl2: 0x19000,
        dram: (0x8000_0000, 64 << 20),
    },
    // SG2000 / SG2002 (cv181x): TPU SRAM 0x0C000000, mirrored at 0x40100000 for the A53; 0x37000.
    Soc {
        name: "sg2000",
        riscv_bl2: 0x0C00_0000,
        arm_bl2: Some(0x4010_0000),
        max_bl2: 0x37000,
        dram: (0x8000_0000, 512 << 20),
    },
    Soc {
        name: "sg2002",
        riscv_bl2: 0x0C00_0000,
        arm_bl2: Some(0x4010_0000),
        max_bl2: 0x37000,
        dram: (0x8000_0000, 256 << 20),
    },
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
/// usb_tty.c HEADER_SIZE.
const HEADER: usize = 8;
const PARAM1_LEN: u32 = 0x1000;
/// How long the ROM takes to bring USB back after a session ends (model).
const REENUMERATE: Duration = Duration::from_millis(30);
/// How long the port stays after the BREAK ACK is queued, so it can be read.
const LINGER: Duration = Duration::from_millis(50);

fn cksum_of(data: &[u8]) -> u32 {
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
    /// The efuses disable the USB timeout (`usb_polling_time` with USB_ID
    /// low): the probe session ends at enumeration, without a magic.
    EfuseNoTimeout,
    /// The FSBL's monitor checksum check fails.
    RejectMonitor,
    /// The ROM's param1 checksum check fails (as on a part whose efuses
    /// want a signed image).
    RejectParam1,
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
        (
            "efuse-no-timeout",
            SophgoFault::EfuseNoTimeout,
            "efuses disable the USB timeout: the probe session ends at enumeration, without a magic (USBC.)",
        ),
        ("reject-monitor", SophgoFault::RejectMonitor, "the vendor FSBL's monitor checksum check fails"),
        ("reject-param1", SophgoFault::RejectParam1, "the ROM's param1 checksum check fails"),
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
    /// `get_number_of_retries()`: tries of each image before falling back
    /// to flash (1 for USB in both CV181x ROM images and the FSBL).
    pub retries: u32,
    /// The speed the board's USB link runs at.
    pub speed: Speed,
    /// The bus time each transfer takes, when modelled (`--sim-speed`).
    pub pace: Option<LinkModel>,
    /// Give the board a UART console on a pty ([`SophgoRom::console`]).
    pub console: bool,
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
            retries: 1,
            speed: Speed::High,
            pace: None,
            console: false,
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

/// The speed the ROM's USB link came up at (usb_tty.c `gadget->speed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    High,
    Full,
}

impl Speed {
    /// The bulk OUT request length the ROM posts (usb_tty.c: `transfer_size`).
    pub fn transfer_size(self) -> usize {
        match self {
            Speed::High => 512,
            Speed::Full => 64,
        }
    }

    /// sysfs-style name, as the host sees it.
    pub fn name(self) -> &'static str {
        match self {
            Speed::High => "high",
            Speed::Full => "full",
        }
    }

    fn fragments(self) -> &'static str {
        match self {
            Speed::High => "",
            Speed::Full => {
                " (full speed: every 64-byte request is parsed as a packet, so the fragments of a longer packet are read as headers)"
            }
        }
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
    /// The vendor FSBL's param2, once accepted.
    pub param2: Option<Vec<u8>>,
    /// The parts the FSBL loaded and checked (DDR_PARAM, BLCP_2ND, MONITOR, LOADER_2ND).
    pub parts: Vec<(&'static str, Vec<u8>)>,
    /// The FSBL jumped to the monitor / LOADER_2ND here.
    pub fsbl_entry: Option<u64>,
    /// U-Boot's download gadget (3346:1001) is up.
    pub uboot: bool,
    /// The load_image request (offset, size) whose session is open now.
    pub waiting: Option<(u32, u32)>,
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
    /// The host side of the board's UART, when it has one.
    console: Option<PtyPair>,
    /// Keeps U-Boot's port alive as long as the board is powered.
    _uboot: Arc<Mutex<Option<PtyPair>>>,
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
        // What sysfs says of the device's link.
        bus.set_speed(&cfg.port_path, cfg.speed.name());
        bus.publish(port_info(&cfg, &first.path));
        let console = if cfg.console { Some(PtyPair::new()?) } else { None };
        let uart = match &console {
            Some(c) => {
                let mut d = c.device.try_clone_native().map_err(|e| LinkError::io("the console pty", e))?;
                let _ = d.set_timeout(Duration::from_millis(50));
                Some(d)
            }
            None => None,
        };
        let uboot = Arc::new(Mutex::new(None));
        let mut rom = Rom {
            bus,
            pacer: Pacer { model: cfg.pace, start: Instant::now(), busy: Duration::ZERO },
            cfg,
            stop: stop.clone(),
            state: state.clone(),
            notify,
            ack_idx: 0,
            flag_dl: false,
            flag_word: [0; 4],
            bad_crc_done: false,
            first: Some(first),
            console: uart,
            uboot: uboot.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("sophgo-rom".into())
            .spawn(move || rom.run())
            .map_err(|e| LinkError::io("starting the virtual ROM", e))?;
        Ok(SophgoRom { stop, state, thread: Some(thread), console, _uboot: uboot })
    }

    /// The tty where the host reads the board's UART (its console), when
    /// the board was given one.
    pub fn console(&self) -> Option<String> {
        self.console.as_ref().map(|c| c.path.clone())
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
        if let (Some(entry), true) = (s.fsbl_entry, s.uboot) {
            let parts: Vec<&str> = s.parts.iter().map(|p| p.0).collect();
            return Verdict::Started {
                summary: format!(
                    "sessions {sessions}; BL2 (the vendor FSBL) checked, jumped to 0x{:x}; it loaded param2, {}, jumped to 0x{entry:x}; U-Boot's download gadget 3346:1001 is up",
                    s.jumped_to.unwrap_or_default(),
                    parts.join(", ")
                ),
            };
        }
        if let (Some(_), None, Some((off, size))) =
            (s.param2.as_ref().or(s.param1.as_ref()), &s.error, s.waiting)
            && s.jumped_to.is_some()
        {
            return Verdict::NotStarted {
                why: format!(
                    "BL2 (the vendor FSBL) runs, but waits for fip.bin 0x{off:x}+0x{size:x}, which nobody served: it waits forever (sessions {sessions}; log {})",
                    s.log
                ),
            };
        }
        match (s.jumped_to, &s.error) {
            (Some(_), Some(e)) => Verdict::NotStarted {
                why: format!("BL2 (the vendor FSBL) ran, but {e} (sessions {sessions}; log {})", s.log),
            },
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

    fn console(&self) -> Option<String> {
        SophgoRom::console(self)
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

/// How one `load_image` session ended.
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

/// Why a load failed, as the ROM's caller sees it (`load_image` < 0, or a
/// check after it).
enum LoadFail {
    /// The host never sent the magic in the first window: the ROM boots flash.
    Window,
    /// The ROM's state is gone (a fault, a corrupting packet, power off).
    Fatal(String),
    Stopped,
    /// The session ended without MGN1, or the bytes failed a check: the
    /// caller's retry loop goes on (and with one try for USB, gives up).
    Retry,
}

/// The virtual U-Boot's `cvi_utask` download gadget (sheet §1.1: 3346:1001).
const UBOOT_PID: u16 = 0x1001;
/// bl2.h PARAM2_SIZE, BLOCK_SIZE; "CVLD02\n\0" (mmap.h FIP_PARAM2_MAGIC1).
const PARAM2_LEN: u32 = 0x1000;
const BLOCK: u32 = 512;
const PARAM2_MAGIC: &[u8; 8] = b"CVLD02\n\0";
/// ddr.h: `struct ddr_param { uint8_t data[1024 * 16]; }`; load_ddr_param
/// clamps the size it asks for to it.
const DDR_PARAM_MAX: u32 = 16 * 1024;
/// bl2.h LOADER_2ND_MAGIC_LZMA / _LZ4 ("B3MA", "B3Z4" as stored).
const LOADER_2ND_LZMA: [u8; 4] = *b"B3MA";
const LOADER_2ND_LZ4: [u8; 4] = *b"B3Z4";

/// Sleeps out the bus time of each transfer on a virtual timeline (so
/// sleep overshoot does not add up), when the link has a timing model.
struct Pacer {
    model: Option<LinkModel>,
    start: Instant,
    busy: Duration,
}

/// The last stretch of a modelled wait that is yielded through, not slept
/// (a sleep overshoots by tens of microseconds, which would add up over
/// thousands of lock-step packets).
const SPIN: Duration = Duration::from_micros(80);

impl Pacer {
    /// One lock-step exchange: the OUT packet of `out` bytes, which arrived
    /// at `at` (time since `start`), then the 16-byte ACK back; returns when
    /// the ACK would have crossed the bus. The ROM's own work overlaps.
    fn exchange(&mut self, at: Duration, out: usize) {
        let Some(m) = self.model else { return };
        self.busy = self.busy.max(at) + m.bulk_time(out) + m.bulk_time(16);
        let left = self.busy.saturating_sub(self.start.elapsed());
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        }
        while self.start.elapsed() < self.busy {
            std::thread::yield_now();
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
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
    /// The first port, published at power-on.
    first: Option<PtyPair>,
    /// The board's UART (`--monitor`), when asked for: the log goes there.
    console: Option<TTYPort>,
    /// U-Boot's gadget, once the FSBL has started it.
    uboot: Arc<Mutex<Option<PtyPair>>>,
    pacer: Pacer,
}

impl Rom {
    fn st(&self) -> std::sync::MutexGuard<'_, RomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ROM's (and the FSBL's) UART output: kept in the state, written
    /// to the console when there is one.
    fn log(&mut self, t: &str) {
        self.st().log.push_str(t);
        if let Some(c) = &mut self.console {
            // A console nobody reads must not stall the ROM.
            let _ = c.write_all(t.as_bytes());
        }
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

    fn run(&mut self) {
        for boot in 0..self.cfg.boots.max(1) {
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
                drop(s);
                self.say("ROM: power cycle");
            }
            if self.cold_boot().is_err() {
                break;
            }
        }
        let mut s = self.st();
        s.finished = true;
        s.tty = None;
    }

    /// One `load_image(buf, offset, size)` over USB: a session of its own.
    fn load(&mut self, offset: u32, size: u32) -> Result<Vec<u8>, LoadFail> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(LoadFail::Stopped);
        }
        let pair = match self.first.take() {
            Some(p) => p,
            None => {
                // USB is re-initialised between load_image calls.
                std::thread::sleep(REENUMERATE);
                PtyPair::new().map_err(|e| LoadFail::Fatal(format!("cannot create a pty: {e}")))?
            }
        };
        match self.session(pair, offset, size) {
            End::Stopped => Err(LoadFail::Stopped),
            End::Window => Err(LoadFail::Window),
            End::Vanished(why) => Err(LoadFail::Fatal(why)),
            End::Done { flag_ok: false, .. } => Err(LoadFail::Retry),
            End::Done { buf, flag_ok: true } => Ok(buf),
        }
    }

    /// The ROM's boot, as disassembled from the CV181x mask ROM (review F3:
    /// boot loop 0xda28..0xdf90): probe, then one pass of param1 and BL2 per
    /// try, `get_number_of_retries()` tries (1 for USB, ROM 0x16b0), then
    /// `DL cancelled. Load flash.` and the strapped flash. Err when the run
    /// is over (power off, or nothing more to do this boot).
    fn cold_boot(&mut self) -> Result<(), ()> {
        self.log("C.SCS/0/0.WD.URPL.USBI.");
        if let Some((off, size)) = self.cfg.bl2_load {
            // A running BL2 of the user's calls load_image; BL2 came over
            // USB, so flagEnterDL is set.
            self.flag_dl = true;
            self.log("BE.J.");
            return match self.load(off, size) {
                Ok(buf) => {
                    self.log("USBL.");
                    self.say(&format!("ROM: load_image received {} bytes", buf.len()));
                    self.st().loaded = Some(buf);
                    Ok(())
                }
                Err(f) => self.load_failed(f, "load_image"),
            };
        }
        if self.cfg.fault == Some(SophgoFault::EfuseNoTimeout) {
            // usb_tty.c: timeout >= DISABLE_TIMEOUT sets flagEnterDL before
            // enumeration and logs USBC.; the probe (size 0) then returns as
            // soon as the port is configured, without any magic.
            self.flag_dl = true;
            self.log("USBC.");
        }
        // The probe: load_image(NULL, 0, 0).
        match self.load(0, 0) {
            Ok(_) => self.log("BS/USB."),
            Err(f) => return self.load_failed(f, "probe"),
        }
        let mut tries = 0;
        let (bl2, entry) = loop {
            if tries >= self.cfg.retries {
                return self.cancelled("the ROM", tries);
            }
            tries += 1;
            match self.rom_pass() {
                Ok(done) => break done,
                Err(LoadFail::Retry) => continue,
                Err(f) => return self.load_failed(f, "boot"),
            }
        };
        self.say(&format!("ROM: BL2 of {} bytes checked, jumping to 0x{entry:x}", bl2.len()));
        {
            let mut s = self.st();
            s.bl2 = Some(bl2);
            s.jumped_to = Some(entry);
            s.boots_done += 1;
        }
        let param2_at = self.st().param1.as_deref().map(|p| le32(p, 0xE0)).unwrap_or(0);
        if param2_at != 0 {
            // The vendor FSBL (a fip.bin that names a param2 is the vendor's
            // build: fiptool writes PARAM2_LOADADDR only with param2).
            return self.fsbl(param2_at);
        }
        Ok(())
    }

    /// One pass of the ROM's loop: param1, the BLCP when there is one, BL2.
    fn rom_pass(&mut self) -> Result<(Vec<u8>, u64), LoadFail> {
        self.log("PS.");
        let p1 = match self.load(0, PARAM1_LEN) {
            Ok(b) => b,
            Err(LoadFail::Retry) => {
                self.log("E:load param1 (-1)\n");
                return Err(LoadFail::Retry);
            }
            Err(f) => return Err(f),
        };
        let (off, size, cksum) = match self.check_param1(&p1) {
            Ok(r) => r,
            Err((line, why)) => {
                self.log(&line);
                self.say(&format!("ROM: param1 rejected: {why}"));
                return Err(LoadFail::Retry);
            }
        };
        self.log("PE.");
        self.st().param1 = Some(p1.clone());
        let blcp_size = le32(&p1, 0xC4);
        if blcp_size > 0 {
            // [INF] The ROM loads a BLCP of param1 between param1 and BL2
            // ("CS/0x%x/0x%x/0x%x." ... "CS." ... "CE.", ROM strings at
            // 0x11e5f..0x11f1c); its own session, like every load_image.
            let blcp = self.load(PARAM1_LEN, blcp_size)?;
            let (stored, computed) = (le32(&p1, 0xC0), cksum_of(&blcp));
            if stored != computed {
                self.log(&format!("E:blcp_cksum (0x{computed:x}/0x{stored:x})\n"));
                return Err(LoadFail::Retry);
            }
            self.log("CS.CE.");
        }
        self.log("BS.");
        let data = match self.load(off, size) {
            Ok(b) => b,
            Err(LoadFail::Retry) => {
                self.log("E:load BL2 (-1)\n");
                return Err(LoadFail::Retry);
            }
            Err(f) => return Err(f),
        };
        if let Err(line) = self.check_bl2(&data, cksum) {
            self.say(&format!("ROM: BL2 rejected: {}", line.trim()));
            self.log(&line);
            return Err(LoadFail::Retry);
        }
        self.log("BE.J.");
        Ok((data, self.cfg.bl2_entry()))
    }

    /// The tries ran out: the ROM (or the FSBL) prints so and boots the
    /// strapped flash (ROM string 0x11f85; bl2_opt.c load_ddr/load_rest).
    fn cancelled(&mut self, who: &str, tries: u32) -> Result<(), ()> {
        self.log(&format!("W:DL cancelled. Load flash. ({tries}).\n"));
        self.fail(format!(
            "{who} gave up after {tries} {} over USB and booted the strapped flash",
            if tries == 1 { "try" } else { "tries" }
        ));
        Err(())
    }

    fn load_failed(&mut self, f: LoadFail, what: &str) -> Result<(), ()> {
        match f {
            LoadFail::Stopped => {}
            LoadFail::Window => {
                self.log("USBW/1000.USBL.BS/EMMC.");
                self.fail(
                    "the host did not send the magic within the ROM's USB window; the ROM booted from flash"
                        .into(),
                );
            }
            LoadFail::Fatal(why) => self.fail(why),
            LoadFail::Retry => {
                let _ = self.cancelled(what, 1);
            }
        }
        Err(())
    }

    /// The vendor FSBL, from sophgo/fsbl `plat/cv181x/bl2/bl2_opt.c`: load_ddr
    /// (param2, then the DDR parameters), DDR init, load_rest (BLCP_2ND and
    /// the monitor when they have a run address, then LOADER_2ND's header
    /// and body), each through the ROM API's load_image, so each its own
    /// USB session; `p_rom_api_get_number_of_retries()` tries per group;
    /// then U-Boot, whose `cvi_utask` gadget enumerates as 3346:1001.
    fn fsbl(&mut self, param2_at: u32) -> Result<(), ()> {
        let mut tries = 0;
        let p2 = loop {
            if tries >= self.cfg.retries {
                return self.cancelled("the FSBL (load_ddr)", tries);
            }
            tries += 1;
            match self.load_ddr(param2_at) {
                Ok(p2) => break p2,
                Err(LoadFail::Retry) => continue,
                Err(f) => return self.load_failed(f, "the FSBL"),
            }
        };
        // ddr_init(): a while on real DRAM.
        std::thread::sleep(Duration::from_millis(20));
        let mut tries = 0;
        let (monitor, loader) = loop {
            if tries >= self.cfg.retries {
                return self.cancelled("the FSBL (load_rest)", tries);
            }
            tries += 1;
            match self.load_rest(&p2) {
                Ok(r) => break r,
                Err(LoadFail::Retry) => continue,
                Err(f) => return self.load_failed(f, "the FSBL"),
            }
        };
        if monitor != 0 {
            self.log(&format!("Jump to monitor at 0x{monitor:x}.\n"));
        } else {
            self.log(&format!("Jump to loader_2nd at 0x{loader:x}.\n"));
        }
        // U-Boot starts cvi_utask: a new USB device at the same port.
        let pair = PtyPair::new().map_err(|e| self.fail(format!("cannot create a pty: {e}")))?;
        let mut info = port_info(&self.cfg, &pair.path);
        info.pid = Some(UBOOT_PID);
        self.bus.publish(info);
        *self.uboot.lock().unwrap_or_else(|e| e.into_inner()) = Some(pair);
        let mut s = self.st();
        s.uboot = true;
        s.fsbl_entry = Some(if monitor != 0 { monitor } else { loader });
        Ok(())
    }

    fn load_ddr(&mut self, param2_at: u32) -> Result<Vec<u8>, LoadFail> {
        self.log(&format!("P2S/0x{PARAM2_LEN:x}/0x{param2_at:x}.\n"));
        let p2 = self.load(param2_at, PARAM2_LEN)?;
        if &p2[..8] != PARAM2_MAGIC {
            self.log("W:LP2_NOMAGIC\n");
            return Err(LoadFail::Retry);
        }
        let (stored, computed) = (le32(&p2, 8), cksum_of(&p2[12..]));
        if stored != computed {
            self.log(&format!("E:param2_cksum (0x{computed:x}/0x{stored:x})\n"));
            return Err(LoadFail::Retry);
        }
        self.log("P2E.\n");
        self.st().param2 = Some(p2.clone());
        let (load, size) = (le32(&p2, 0x14), le32(&p2, 0x18));
        self.log(&format!("DPS/0x{load:x}/0x{size:x}.\n"));
        let size = if size >= DDR_PARAM_MAX { DDR_PARAM_MAX } else { size };
        let ddr = self.load(load, size)?;
        let (stored, computed) = (le32(&p2, 0x10), cksum_of(&ddr));
        if stored != computed {
            self.log(&format!("E:ddr_param_cksum (0x{computed:x}/0x{stored:x})\n"));
            return Err(LoadFail::Retry);
        }
        self.log("DPE.\n");
        self.st().parts.push(("DDR_PARAM", ddr));
        Ok(p2)
    }

    /// load_blcp_2nd, load_monitor, load_loader_2nd; the monitor's and
    /// LOADER_2ND's entry points.
    fn load_rest(&mut self, p2: &[u8]) -> Result<(u64, u64), LoadFail> {
        let (dram, dram_size) = self.cfg.soc.dram;
        let in_dram = |a: u64| a >= dram && a <= dram + dram_size;
        let mut monitor = 0;
        for (name, tag, at, check) in
            [("BLCP_2ND", "C2", 0x20usize, "blcp_2nd"), ("MONITOR", "M", 0x30, "monitor")]
        {
            let (ck, load, size, run) = (le32(p2, at), le32(p2, at + 4), le32(p2, at + 8), le32(p2, at + 12));
            self.log(&format!("{tag}S/0x{load:x}/0x{run:x}/0x{size:x}.\n"));
            if run == 0 {
                self.log(if name == "MONITOR" { "No monitor.\n" } else { "No C906L image.\n" });
                continue;
            }
            if !in_dram(run as u64) || !in_dram(run as u64 + size as u64) {
                // bl2_opt.c: ERROR(...not in DRAM) then panic_handler().
                self.log(&format!("E:{check}_runaddr (0x{run:x}) is not in DRAM.\n"));
                return Err(LoadFail::Fatal(format!(
                    "the FSBL stopped: {name} runs at 0x{run:x}, outside DRAM"
                )));
            }
            let data = self.load(load, size)?;
            let computed = cksum_of(&data);
            if computed != ck {
                self.log(&format!("E:{check}_cksum (0x{computed:x}/0x{ck:x})\n"));
                return Err(LoadFail::Retry);
            }
            if self.cfg.fault == Some(SophgoFault::RejectMonitor) && name == "MONITOR" {
                self.log(&format!("E:{check}_cksum (0x{computed:x}/0x{:x})\n", ck ^ 1));
                return Err(LoadFail::Retry);
            }
            self.log(&format!("{tag}E.\n"));
            if name == "MONITOR" {
                monitor = run as u64;
            }
            self.st().parts.push((name, data));
        }
        let at = le32(p2, 0x44);
        self.log(&format!("L2/0x{at:x}.\n"));
        let hdr = self.load(at, BLOCK)?;
        let (magic, ck, size) = (&hdr[4..8], le32(&hdr, 8), le32(&hdr, 12));
        let runaddr = u64::from_le_bytes(hdr[16..24].try_into().unwrap_or_default());
        let reading = size.div_ceil(BLOCK).saturating_mul(BLOCK);
        self.log(&format!("L2/0x{:x}/0x{ck:x}/0x{runaddr:x}/0x{size:x}/0x{reading:x}\n", le32(&hdr, 4)));
        if magic == LOADER_2ND_LZMA || magic == LOADER_2ND_LZ4 {
            self.log(&format!("COMP/{}.\n", if magic == LOADER_2ND_LZMA { 1 } else { 2 }));
        }
        let body = self.load(at, reading)?;
        let computed = match size.checked_sub(12) {
            Some(n) if (12 + n as usize) <= body.len() => cksum_of(&body[12..12 + n as usize]),
            _ => !ck,
        };
        if computed != ck {
            self.log(&format!("E:loader_2nd_cksum (0x{computed:x}/0x{ck:x})\n"));
            return Err(LoadFail::Retry);
        }
        self.log("Loader_2nd loaded.\n");
        self.st().parts.push(("LOADER_2ND", body));
        Ok((monitor, runaddr + 32))
    }

    /// The ROM's param1 checks; the BL2 request (offset, size) and the BL2
    /// checksum param1 announces. Err: the line the ROM prints, and why.
    fn check_param1(&self, p: &[u8]) -> Result<(u32, u32, u32), (String, String)> {
        if p.len() < PARAM1_LEN as usize || &p[..8] != b"CVBL01\n\0" {
            let magic = u64::from_le_bytes(p[..8].try_into().unwrap_or_default());
            return Err((format!("E:PARAM1 magic (0x{magic:x})\n"), "magic is not CVBL01".into()));
        }
        let stored = le32(p, 0x0C);
        let mut computed = cksum_of(&p[0x10..0x800]);
        if self.cfg.fault == Some(SophgoFault::RejectParam1) {
            computed = stored ^ 0x0101;
        }
        if stored != computed {
            return Err((
                format!("E:param1_cksum (0x{computed:x}/0x{stored:x})\n"),
                format!("param1 checksum 0x{stored:08x}, computed 0x{computed:08x}"),
            ));
        }
        let blcp_size = le32(p, 0xC4);
        let bl2_cksum = le32(p, 0xD4);
        let bl2_size = le32(p, 0xD8);
        if bl2_size == 0 || bl2_size > self.cfg.soc.max_bl2 {
            return Err((format!("E:load BL2 (-{})\n", 22), format!("BL2 size {bl2_size} out of range")));
        }
        Ok((PARAM1_LEN + blcp_size, bl2_size, bl2_cksum))
    }

    /// The ROM's BL2 check against the checksum its param1 announced; Err:
    /// the line it prints (ROM string 0x11f36).
    fn check_bl2(&self, bl2: &[u8], stored: u32) -> Result<(), String> {
        let mut computed = cksum_of(bl2);
        if self.cfg.fault == Some(SophgoFault::RejectBl2) {
            computed = stored ^ 0x5a5a;
        }
        if stored != computed {
            return Err(format!("E:bl2_cksum (0x{computed:x}/0x{stored:x})\n"));
        }
        Ok(())
    }

    /// Serves one enumeration.
    fn session(&mut self, pair: PtyPair, offset: u32, size: u32) -> End {
        let PtyPair { mut device, client, path } = pair;
        self.bus.publish(port_info(&self.cfg, &path));
        {
            let mut s = self.st();
            s.tty = Some(path.clone());
            s.waiting = Some((offset, size));
        }
        self.say(&format!("tty {path}"));
        let end = if size == 0 && self.flag_dl {
            // USBC. parts: the probe returns once the port is configured.
            drop(client);
            self.until_opened(&mut device);
            self.log("USBD.");
            End::Done { buf: Vec::new(), flag_ok: true }
        } else {
            let e = self.serve(&mut device, offset, size, &path);
            drop(client);
            e
        };
        self.bus.withdraw(&path);
        {
            let mut s = self.st();
            s.tty = None;
            if !matches!(end, End::Stopped) {
                // Powered off mid-session: what it waited for stays on record.
                s.waiting = None;
            }
            s.last_activity = Some(Instant::now());
        }
        self.say(&format!("gone {path}"));
        drop(device);
        end
    }

    /// Waits (a little) for the host to open the port: a pty master reads
    /// EIO while no slave is open. The real ROM does not wait for the tty
    /// to be opened (it is "configured" at enumeration already), so this is
    /// the worst case for the host: it caught the port, and it goes.
    fn until_opened(&self, dev: &mut TTYPort) {
        let _ = dev.set_timeout(Duration::from_millis(5));
        let end = Instant::now() + Duration::from_millis(300);
        let mut b = [0u8; 64];
        while Instant::now() < end && !self.stop.load(Ordering::SeqCst) {
            match dev.read(&mut b) {
                Ok(_) => break,
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) =>
                {
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
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

    /// One completed bulk OUT request into `cmd` (usb_tty.c: the request is
    /// `transfer_size` bytes, 512 at high speed and 64 at full speed, and
    /// completes at a short packet or when full): the host's packet when it
    /// fits, else its first `transfer_size` bytes, the rest staying on the
    /// bus for the next request. Returns how many bytes arrived.
    fn read_request(
        &self,
        dev: &mut TTYPort,
        cmd: &mut [u8; RX_BUF],
        deadline: Option<Instant>,
    ) -> Result<usize, End> {
        let ts = self.cfg.speed.transfer_size();
        self.read_full(dev, &mut cmd[..HEADER], deadline)?;
        let length = u16::from_be_bytes([cmd[1], cmd[2]]) as usize;
        let want = length.clamp(HEADER, ts);
        if want > HEADER {
            self.read_full(dev, &mut cmd[HEADER..want], Some(Instant::now() + Duration::from_secs(1)))
                .map_err(|e| match e {
                    End::Window => End::Vanished("a packet's data never arrived".into()),
                    e => e,
                })?;
        }
        Ok(want)
    }

    /// usb_tty.c `bulkOutCmpl`, request by request, for one session whose
    /// load_image asked for (offset, size).
    fn serve(&mut self, dev: &mut TTYPort, offset: u32, size: u32, path: &str) -> End {
        let _ = dev.set_timeout(Duration::from_millis(20));
        let is_bl2 = self.st().param1.is_some() && self.st().jumped_to.is_none() && offset >= PARAM1_LEN;
        let offset =
            if is_bl2 && self.cfg.fault == Some(SophgoFault::WrongOffset) { 0x0100_0000 } else { offset };
        // Before the first good magic, the ROM gives the host two windows.
        let deadline = (!self.flag_dl).then(|| Instant::now() + self.cfg.window * 2);
        let mut buf = vec![0u8; size as usize];
        let mut log =
            SessionLog { offset, size, packets: 0, data_bytes: 0, flag_ok: false, tty: path.to_string() };
        let mut data_packets = 0u32;
        // cmdBuf: only its header is cleared when the request is re-armed,
        // so a short request leaves the last packet's bytes behind it.
        let mut cmd = [0u8; RX_BUF];
        let end = loop {
            let got = match self.read_request(dev, &mut cmd, deadline.filter(|_| !self.flag_dl)) {
                Ok(n) => n,
                Err(e) => break e,
            };
            let arrived = self.pacer.now();
            let token = cmd[0];
            let length = u16::from_be_bytes([cmd[1], cmd[2]]) as usize;
            let addr = u64::from_be_bytes([0, 0, 0, cmd[3], cmd[4], cmd[5], cmd[6], cmd[7]]);
            if length == 0 && addr == 0 {
                // The ROM re-arms the endpoint and sends nothing.
                cmd[..HEADER].fill(0);
                continue;
            }
            if !(HEADER..=RX_BUF).contains(&length) {
                // memcpy / crc16 over `length` bytes of a 512-byte buffer:
                // the ROM's memory is overwritten.
                break End::Vanished(format!(
                    "a request parsed as a packet of {length} bytes overran the ROM's {RX_BUF}-byte buffer: its state is corrupt{}",
                    self.cfg.speed.fragments()
                ));
            }
            self.st().last_activity = Some(Instant::now());
            let crc = crc16_xmodem(&cmd[..length]);
            let data = cmd[HEADER..length].to_vec();
            log.packets += 1;
            let mut done = None;
            match token {
                3 => {
                    if self.cfg.fault == Some(SophgoFault::WindowMissed) {
                        break End::Window;
                    }
                    self.log("USBK.");
                    if crc16_xmodem(&data) == MAGIC_CRC {
                        self.ack_idx = 0;
                        self.flag_dl = true;
                        self.flag_word = [0; 4];
                        if size == 0 {
                            done = Some(true);
                        }
                    } else {
                        self.flag_dl = false;
                        self.flag_word = [0; 4];
                        self.log("USBKF.");
                    }
                }
                0 => {
                    if size == 0 {
                        break End::Vanished("DATA sent in the probe session, whose buffer is NULL".into());
                    }
                    let a = addr as usize;
                    if a.checked_add(data.len()).is_none_or(|e| e > buf.len()) {
                        break End::Vanished(format!(
                            "DATA at 0x{a:x}+{} writes past the {}-byte buffer of this request: the ROM's memory is corrupt{}",
                            data.len(),
                            buf.len(),
                            self.cfg.speed.fragments()
                        ));
                    }
                    buf[a..a + data.len()].copy_from_slice(&data);
                    log.data_bytes += data.len() as u64;
                    data_packets += 1;
                    if is_bl2 && data_packets == 2 && self.cfg.fault == Some(SophgoFault::Vanish) {
                        break End::Vanished(
                            "the device left the bus in the middle of the BL2 session (fault vanish)".into(),
                        );
                    }
                }
                1 if addr == BOOT_SOURCE_FLAG && data.len() >= 4 => {
                    self.flag_word.copy_from_slice(&data[..4]);
                }
                2 => {
                    self.ack_idx = 0;
                    done = Some(false);
                }
                _ => {}
            }
            let mut c = crc;
            let corrupt = match self.cfg.fault {
                Some(SophgoFault::BadAckCrcAlways) => true,
                Some(SophgoFault::BadAckCrc)
                    if offset == 0
                        && size == PARAM1_LEN
                        && token == 0
                        && data_packets == 2
                        && !self.bad_crc_done =>
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
            // ack_idx++ after every ACK is built (usb_tty.c).
            self.ack_idx = self.ack_idx.wrapping_add(1);
            cmd[..HEADER].fill(0);
            self.pacer.exchange(arrived, got);
            if done == Some(false) {
                // BREAK: the ROM queues the ACK and leaves the bus.
                self.bus.withdraw(path);
                if self.cfg.fault != Some(SophgoFault::NoBreakAck) {
                    let _ = dev.write_all(&ack);
                    let _ = dev.flush();
                }
                std::thread::sleep(LINGER);
                self.log("USBL.");
                log.flag_ok = self.flag_word == MGN1;
                break End::Done { buf: std::mem::take(&mut buf), flag_ok: log.flag_ok };
            }
            let _ = dev.write_all(&ack);
            let _ = dev.flush();
            if done == Some(true) {
                // The probe returns right after ACKing the magic.
                std::thread::sleep(LINGER);
                self.log("USBD.");
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
pub static MODEL: Model = Model {
    socs: &["cv1800b", "sg2000", "sg2002"],
    faults: fault_list,
    attach: attach_model,
    serve: crate::serve::sophgo::run,
};

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
    cfg.console = scenario.console;
    if let Some(sp) = scenario.speed {
        cfg.speed = match sp {
            BusSpeed::High => Speed::High,
            BusSpeed::Full => Speed::Full,
        };
        cfg.pace = Some(sp.model());
    }
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
