//! A virtual Canaan K230 / K230D: the mask ROM's USB boot device and, after
//! a jump into a kburn loader, the loader's identity.
//!
//! Written from `shared/protocols/canaan-k230.md` (§1, §2, §6, §9) and the
//! device-side sources cited at each [`Chip`] field, not from the client.
//! The ROM:
//! - answers GET_CPU_INFO (vendor IN, bRequest 0) with `K230`;
//! - keeps the write pointer set by SET_DATA_ADDRESS (bRequest 1,
//!   wValue = address high half, wIndex = low half) and stores the bulk
//!   OUT bytes of EP 0x01 there, auto-incrementing;
//! - refuses (STALLs) data outside the SRAM unless DRAM has been set up,
//!   data past the end of the chip's DRAM, and data before any
//!   SET_DATA_ADDRESS;
//! - on PROG_START (bRequest 4) "jumps" and the started code does what
//!   real code there does ([`Started`]): PROG_START 0x91200000 re-enters
//!   the ROM; code holding the kburn loader's `Uboot Stage for K230`
//!   becomes the loader; code in SRAM ends as oreboot's bt0 and this
//!   repo's payloads do, with a jump back into the ROM at 0x91200000 (bt0
//!   after setting DRAM up); code in DRAM (a main stage) runs and never
//!   comes back on USB.
//!
//! What the real ROM does in the unconfirmed corners (§9) is modelled the
//! strict way: a write before SET_DATA_ADDRESS, or one that crosses out of
//! the SRAM, is a STALL; a write into the ROM's own half of the SRAM
//! (0x80200000–0x802FFFFF) overwrites the running ROM, which hangs. How the
//! ROM comes back after a stage is one of two plausible ways (review F3):
//! re-enumerating at a new address (default) or, with fault `same-address`,
//! answering again at the old one after going quiet.
//!
//! Once a kburn loader runs (code carrying its identity string, or anything
//! started in SRAM when the Scenario says `storage_loader`) the board is the
//! vendor gadget of [`crate::kburn`], over media of real sizes.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use racklet_link::usb::{EndpointInfo, EndpointKind, InterfaceInfo};
use racklet_link::{ControlSetup, UsbInfo};

use crate::kburn::{self, Kburn};
use crate::models::{Model, Scenario, SimError};
use crate::rom::{Faults, UnknownFault, Verdict, VirtualRom, parse_fault};
use crate::serial::SimSerialBus;
use crate::usb::{DeviceError, SimUsbBus, UsbDevice};

/// USB ids of the ROM and the loader (both the same, §1).
pub const K230_VID: u16 = 0x29f1;
pub const K230_PID: u16 = 0x0230;
/// The kburn loader's answer to GET_CPU_INFO (§1), and the string the
/// loader binary carries.
const LOADER_REPLY: &[u8] = b"Uboot Stage for K230";
/// Where the ROM reads its storage-boot image on the SD card (sheet §3).
const STORAGE_IMAGE: u64 = 0x10_0000;
/// Where it runs the payload (the SDK's SPL link address, sheet §3).
const STORAGE_RUN: u64 = 0x8030_0000;
/// Bus scans the board stays off the bus after a jump before it comes back.
const REENUM_TICKS: u32 = 3;

/// One SoC of the family, as the virtual board models it.
#[derive(Debug, PartialEq, Eq)]
pub struct Chip {
    /// The SoC as the board table names it.
    pub soc: &'static str,
    /// The on-chip SRAM the ROM loads into, `[start, end)`: 2 MiB at
    /// 0x80200000 (§2 "Addresses"; the K230 TRM memory map as a QEMU K230
    /// machine model writes it out: SRAM 0x80200000 + 0x200000).
    pub sram: (u64, u64),
    /// The part of the SRAM the running ROM keeps its own data and stack in,
    /// `[start, end)`: the first half, 0x80200000–0x802FFFFF (community
    /// notes from the K230 TRM, review rockchip-k230.md F4: "the BootROM
    /// uses the first half of SRAM 0x8020_0000 ~ 0x8030_0000"; the SDK's
    /// SPL is linked at 0x80300000, just past it). A download that lands
    /// there overwrites the live ROM, which stops answering.
    pub rom_sram: (u64, u64),
    /// DRAM is mapped from address 0 (oreboot's canmv-k230 bt0
    /// `mem_map.rs`, `DRAM_BASE_ADDR = 0`); this many bytes of it exist.
    pub dram_size: u64,
    /// The mask ROM's base: a jump here re-enters USB download mode
    /// (§2; oreboot's bt0 `MASK_ROM_BASE = 0x9120_0000`).
    pub rom_entry: u64,
    /// What the ROM answers to GET_CPU_INFO (§1, §2: ASCII `K230`, four
    /// bytes as the vendor simulator models it; §6: the K230D's ROM is the
    /// same).
    pub rom_reply: &'static [u8],
    /// The ROM's USB strings (§1, as lsusb lists a K230 in USB boot mode).
    pub manufacturer: &'static str,
    pub product: &'static str,
}

/// The K230: external DRAM, up to the SoC's 2 GiB DDR window
/// (0x00000000–0x7FFFFFFF in the TRM memory map; boards carry 512 MiB to
/// 2 GiB, the model does not know which board it is on).
pub static K230: Chip = Chip {
    soc: "k230",
    sram: (0x8020_0000, 0x8040_0000),
    rom_sram: (0x8020_0000, 0x8030_0000),
    dram_size: 0x8000_0000,
    rom_entry: 0x9120_0000,
    rom_reply: b"K230",
    manufacturer: "Canaan Creative Co., Ltd",
    product: "K230 USB Boot Device",
};

/// The K230D: the same die and ROM with 128 MiB of LPDDR4 in the package
/// (§6; orangecms/kendryte_boot README "D variant: 128MB DRAM in package";
/// Linux's BPI-CanMV-K230D-Zero device tree: memory 0x0 + 0x8000000).
pub static K230D: Chip = Chip {
    soc: "k230d",
    sram: (0x8020_0000, 0x8040_0000),
    rom_sram: (0x8020_0000, 0x8030_0000),
    dram_size: 0x0800_0000,
    rom_entry: 0x9120_0000,
    rom_reply: b"K230",
    manufacturer: "Canaan Creative Co., Ltd",
    product: "K230 USB Boot Device",
};

/// Every chip of the family.
pub static CHIPS: &[&Chip] = &[&K230, &K230D];

/// The chip of `soc`, by the board table's name.
pub fn chip(soc: &str) -> Option<&'static Chip> {
    CHIPS.iter().copied().find(|c| c.soc.eq_ignore_ascii_case(soc))
}

/// Ways the virtual ROM can misbehave (`--fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bulk OUT is STALLed (the ROM refuses the data).
    StallBulk,
    /// Bulk OUT is never accepted (NAK forever): the host's transfer times out.
    HangBulk,
    /// PROG_START jumps without completing its status stage.
    NoStatus,
    /// PROG_START is STALLed and nothing jumps.
    StallStart,
    /// The board is in the kburn loader stage, not the ROM.
    Loader,
    /// GET_CPU_INFO answers "K210".
    WrongCpu,
    /// An SRAM stage (a DRAM-init stage) never returns to the ROM.
    NoReturn,
    /// PROG_START is acknowledged, but the ROM does not jump.
    NoJump,
    /// The cable is pulled during the second bulk OUT chunk.
    Unplug,
    /// The ROM re-enters USB mode without leaving the bus: while started
    /// code runs the controller keeps its address and answers nothing, and
    /// back in the ROM it answers again at the same address (the second
    /// plausible re-entry, review F3: no source says whether the ROM's USB
    /// init soft-disconnects; on Windows the board even comes back at the
    /// same address after the loader, sheet §5).
    SameAddress,
    /// The first two GET_CPU_INFO after each enumeration go unanswered (a
    /// ROM not ready right after it enumerated, review F7; k230_flash
    /// `probe_device.cpp` asks 5 times, 100 ms apart, for that reason).
    SlowCpuInfo,
}

impl Faults for Fault {
    const ALL: &'static [(&'static str, Fault, &'static str)] = &[
        ("stall-bulk", Fault::StallBulk, "bulk OUT data is STALLed"),
        ("hang-bulk", Fault::HangBulk, "bulk OUT data is never accepted (timeout)"),
        ("no-status", Fault::NoStatus, "PROG_START jumps without a status stage"),
        ("stall-start", Fault::StallStart, "PROG_START is STALLed, nothing starts"),
        ("loader", Fault::Loader, "the board is in the kburn loader stage"),
        ("wrong-cpu", Fault::WrongCpu, "GET_CPU_INFO answers \"K210\""),
        ("no-return", Fault::NoReturn, "the DRAM-init stage never comes back to the ROM"),
        ("no-jump", Fault::NoJump, "PROG_START is acknowledged but nothing jumps"),
        ("unplug", Fault::Unplug, "the cable is pulled during the second bulk OUT chunk"),
        ("same-address", Fault::SameAddress, "back in the ROM after a stage, it answers at the same address"),
        ("slow-cpu-info", Fault::SlowCpuInfo, "the first two GET_CPU_INFO after enumerating go unanswered"),
    ];
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(name: &str) -> Result<Fault, UnknownFault> {
        parse_fault(name, "K230 virtual ROM")
    }
}

/// What the chip is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The mask ROM's USB boot device.
    Rom,
    /// The kburn loader (only its identity is modelled).
    Loader,
    /// Running loaded code that does not use USB.
    Running(u64),
    /// Jumped somewhere nothing was loaded.
    Crashed(u64),
    /// Gone from the bus (the cable was pulled).
    Unplugged,
    /// Still enumerated, never answering again: a download overwrote the
    /// ROM's own data in SRAM.
    Hung,
}

/// What the code a PROG_START started does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// PROG_START at the ROM's own entry: it re-enters USB mode (§2).
    Rom,
    /// The code holds the kburn loader's identity string: it is the
    /// loader, which re-enumerates under the same ids (§1, §4.1).
    Loader,
    /// Code in SRAM: it ends as every known SRAM stage does, with a jump
    /// back to the ROM (oreboot's bt0 after DRAM init, and the bsp
    /// payloads' `Exit::Jump(0x9120_0000)`), and DRAM counts as set up —
    /// the model cannot run the code to tell a DRAM-init stage from a
    /// payload that only prints.
    ReturnsToRom,
    /// Code in SRAM that never comes back (fault `no-return`).
    Hangs,
    /// Code in DRAM (a main stage): it runs and does not use USB.
    Runs,
    /// Nothing was loaded at the entry.
    Crashes,
}

/// One contiguous run of bytes written by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub address: u64,
    pub data: Vec<u8>,
}

/// One PROG_START.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub entry: u64,
    /// What came of it.
    pub started: Started,
    /// How many regions had been written before it.
    pub after_regions: usize,
}

/// The virtual board.
#[derive(Debug)]
pub struct K230Rom {
    chip: &'static Chip,
    port_path: String,
    address: u8,
    mode: Mode,
    /// Pending re-enumeration: ticks left and the mode to come back in.
    pending: Option<(u32, Mode)>,
    pointer: Option<u64>,
    dram_ready: bool,
    fault: Option<Fault>,
    /// A PROG_START acknowledged without a jump (fault `no-jump`).
    ignored_start: Option<u64>,
    /// Transfers left during which the device keeps its address but answers
    /// nothing (fault `same-address`: started code runs, then the ROM is back).
    quiet: u32,
    /// GET_CPU_INFO requests left to leave unanswered (fault `slow-cpu-info`).
    cpu_info_misses: u32,
    /// The board's storage and the kburn gadget that writes it, once a
    /// loader runs.
    pub kburn: Kburn,
    /// Code started in SRAM is the kburn loader (Scenario `storage_loader`).
    storage_loader: bool,
    /// The board's UART console, when asked for ([`crate::console`]).
    console: Option<crate::console::Uart>,
    /// After a reset, the ROM booted the SD card's image: its payload's size.
    pub booted: Option<u64>,
    /// Everything written, in order.
    pub regions: Vec<Region>,
    /// Every PROG_START.
    pub jumps: Vec<Jump>,
    /// Sizes of the bulk OUT transfers, in order.
    pub bulk_sizes: Vec<usize>,
    /// What the ROM refused, in order.
    pub refusals: Vec<String>,
    /// Every request, one line each.
    pub log: Vec<String>,
}

impl K230Rom {
    /// A board with `chip` in its boot ROM at USB port `port_path`.
    pub fn new(chip: &'static Chip, port_path: &str) -> Self {
        K230Rom {
            chip,
            port_path: port_path.into(),
            address: 10,
            mode: Mode::Rom,
            pending: None,
            pointer: None,
            dram_ready: false,
            fault: None,
            ignored_start: None,
            quiet: 0,
            cpu_info_misses: 0,
            kburn: Kburn::new(None).expect("media in memory"),
            storage_loader: false,
            console: None,
            booted: None,
            regions: Vec::new(),
            jumps: Vec::new(),
            bulk_sizes: Vec::new(),
            refusals: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Injects a fault.
    pub fn with_fault(mut self, fault: Option<Fault>) -> Self {
        self.fault = fault;
        if fault == Some(Fault::Loader) {
            self.mode = Mode::Loader;
        }
        self.enumerated();
        self
    }

    /// The board's storage: `file` keeps one medium in a file
    /// (`--sim-storage`), the rest are blank and in memory.
    pub fn with_storage(
        mut self,
        file: Option<(kburn::Kind, &std::path::Path)>,
    ) -> Result<Self, crate::storage::MediumFileError> {
        self.kburn = Kburn::new(file)?;
        Ok(self)
    }

    /// Whatever the host starts in SRAM is the kburn loader (the sim cannot
    /// run the loader it is given: `--loader` files become the device).
    pub fn with_storage_loader(mut self, yes: bool) -> Self {
        self.storage_loader = yes;
        self
    }

    /// Gives the board a UART console.
    pub fn with_console(mut self, console: Option<crate::console::Uart>) -> Self {
        self.console = console;
        self
    }

    /// The tty of the board's UART console, if it has one.
    pub fn console(&self) -> Option<String> {
        self.console.as_ref().map(crate::console::Uart::path)
    }

    /// The board (re-)enumerated: what a fresh enumeration resets.
    fn enumerated(&mut self) {
        if self.fault == Some(Fault::SlowCpuInfo) {
            self.cpu_info_misses = 2;
        }
    }

    /// What the ROM finds on its boot medium after a reset: the "K230" image
    /// at byte 0x100000 of the SD card (the strap of the CanMV boards' TF
    /// slot), checked as the sheet §3 says — magic, crypto type 0, a length
    /// of version + payload, SHA-256 over them (u-boot `k230_img.c` checks
    /// the same) — with a payload that fits from 0x80300000 to the end of
    /// SRAM, where the ROM runs it (inferred from the SPL's link address).
    /// `None`: nothing bootable, so the ROM enters USB download mode.
    fn storage_boot(&self) -> Option<u64> {
        use sha2::Digest;
        let m = self.kburn.medium(kburn::Kind::Sd);
        let h = m.read(STORAGE_IMAGE, 0x210).ok()?;
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes")) as u64;
        if &h[..4] != b"K230" || u32_at(8) != 0 {
            return None;
        }
        let len = u32_at(4);
        if len < 4 || len - 4 > self.chip.sram.1 - STORAGE_RUN {
            return None;
        }
        let body = m.read(STORAGE_IMAGE + 0x210, len as usize).ok()?;
        (sha2::Sha256::digest(&body)[..] == h[0x0c..0x2c]).then_some(len - 4)
    }

    /// True while the device is enumerated but nothing serves its
    /// controller: started code runs, or the ROM hung.
    fn silent(&self) -> bool {
        self.quiet > 0
            || self.mode == Mode::Hung
            || (matches!(self.mode, Mode::Running(_) | Mode::Crashed(_)) && self.keeps_address())
    }

    /// True when the board keeps its USB address across a jump (fault
    /// `same-address`).
    fn keeps_address(&self) -> bool {
        self.fault == Some(Fault::SameAddress)
    }

    /// The chip it models.
    pub fn chip(&self) -> &'static Chip {
        self.chip
    }

    /// What the chip is doing now (a pending re-enumeration counts as done).
    pub fn mode(&self) -> &Mode {
        self.pending.as_ref().map(|p| &p.1).unwrap_or(&self.mode)
    }

    /// True once a stage has set DRAM up.
    pub fn dram_ready(&self) -> bool {
        self.dram_ready
    }

    /// The bytes at `[addr, addr+len)` if one region holds them all (the latest write wins).
    pub fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self.regions.iter().rev().find_map(|r| {
            let end = r.address + r.data.len() as u64;
            (addr >= r.address && addr + len as u64 <= end)
                .then(|| r.data[(addr - r.address) as usize..(addr - r.address) as usize + len].to_vec())
        })
    }

    fn region_at(&self, addr: u64) -> Option<&Region> {
        self.regions.iter().rev().find(|r| addr >= r.address && addr < r.address + r.data.len() as u64)
    }

    fn in_sram(&self, addr: u64) -> bool {
        addr >= self.chip.sram.0 && addr < self.chip.sram.1
    }

    /// What a jump came to, in words.
    fn describe(&self, j: &Jump) -> String {
        let e = j.entry;
        match j.started {
            Started::Rom => format!("PROG_START 0x{e:08x}: back into the ROM"),
            Started::Loader => format!("jumped to 0x{e:08x} (kburn loader)"),
            Started::ReturnsToRom => {
                // A stage whose return was followed by DRAM writes served as
                // the DRAM-init stage.
                let dram_used = self.regions[j.after_regions..].iter().any(|r| !self.in_sram(r.address));
                if dram_used {
                    format!("jumped to 0x{e:08x} (DRAM init, back into the ROM)")
                } else {
                    format!("jumped to 0x{e:08x} (back into the ROM)")
                }
            }
            Started::Hangs => format!("jumped to 0x{e:08x} (an SRAM stage that never returns)"),
            Started::Runs => format!("jumped to 0x{e:08x}"),
            Started::Crashes => format!("jumped to 0x{e:08x} (nothing loaded there)"),
        }
    }

    /// What the ROM received and whether it ended with code started.
    pub fn verdict(&self) -> Verdict {
        let loads = self
            .regions
            .iter()
            .map(|r| format!("{} bytes at 0x{:08x}", r.data.len(), r.address))
            .collect::<Vec<_>>()
            .join(", ");
        let jumps = self.jumps.iter().map(|j| self.describe(j)).collect::<Vec<_>>().join("; ");
        let summary = format!("loaded {}; {}", if loads.is_empty() { "nothing" } else { &loads }, jumps);
        let not = |why: String| Verdict::NotStarted { why };
        if let Some(r) = self.refusals.first() {
            return not(format!("refused {r} ({summary})"));
        }
        if let Some(e) = self.ignored_start {
            return not(format!("PROG_START 0x{e:08x} was acknowledged but nothing jumped ({summary})"));
        }
        let summary = if self.jumps.iter().any(|j| j.started == Started::Loader) {
            match self.kburn.summary() {
                Ok(k) => match self.booted {
                    Some(n) => format!(
                        "{summary}; {k}; the ROM booted the SD card's image at 0x{STORAGE_IMAGE:x} ({n}-byte payload run at 0x{STORAGE_RUN:x})"
                    ),
                    None => format!("{summary}; {k}"),
                },
                Err(why) => return not(format!("{why} ({summary})")),
            }
        } else {
            summary
        };
        match self.jumps.last() {
            None => not(format!("no PROG_START received ({summary})")),
            Some(Jump { started: Started::Crashes, entry, .. }) => {
                not(format!("jumped to 0x{entry:08x}, where nothing was loaded"))
            }
            Some(_) => Verdict::Started { summary },
        }
    }

    fn refuse(&mut self, what: String) -> Result<(), DeviceError> {
        self.log.push(format!("STALL: {what}"));
        self.refusals.push(what);
        Err(DeviceError::Stall)
    }

    fn leave_bus(&mut self, next: Mode) {
        if self.keeps_address() && next == Mode::Rom {
            // The code runs with nobody serving the controller, then jumps
            // back into the ROM, which takes the controller as it finds it.
            self.quiet = REENUM_TICKS + 1;
            self.mode = Mode::Rom;
            return;
        }
        self.pending = Some((REENUM_TICKS, next));
    }

    /// What the code at `entry` does once started (see [`Started`]).
    fn start(&self, entry: u64) -> Started {
        if entry == self.chip.rom_entry {
            return Started::Rom;
        }
        let Some(r) = self.region_at(entry) else {
            return Started::Crashes;
        };
        if r.data.windows(LOADER_REPLY.len()).any(|w| w == LOADER_REPLY)
            || (self.storage_loader && self.in_sram(entry))
        {
            Started::Loader
        } else if !self.in_sram(entry) {
            Started::Runs
        } else if self.fault == Some(Fault::NoReturn) {
            Started::Hangs
        } else {
            Started::ReturnsToRom
        }
    }

    fn prog_start(&mut self, entry: u64) -> Result<(), DeviceError> {
        if self.fault == Some(Fault::StallStart) {
            return self.refuse(format!("PROG_START 0x{entry:08x}"));
        }
        if self.fault == Some(Fault::NoJump) {
            self.log.push(format!("PROG_START 0x{entry:08x} acknowledged, ignored"));
            self.ignored_start = Some(entry);
            return Ok(());
        }
        let started = self.start(entry);
        // Code that runs prints on the board's UART.
        if matches!(started, Started::Runs | Started::ReturnsToRom | Started::Hangs)
            && let (Some(c), Some(r)) = (
                self.console.as_mut(),
                self.regions
                    .iter()
                    .rev()
                    .find(|r| entry >= r.address && entry < r.address + r.data.len() as u64),
            )
        {
            c.runs(&r.data);
        }
        let jump = Jump { entry, started, after_regions: self.regions.len() };
        self.log.push(self.describe(&jump));
        self.jumps.push(jump);
        self.pointer = None;
        match started {
            Started::Rom => self.leave_bus(Mode::Rom),
            Started::Loader => {
                self.kburn.restart();
                self.leave_bus(Mode::Loader);
            }
            Started::ReturnsToRom => {
                self.dram_ready = true;
                self.leave_bus(Mode::Rom);
            }
            Started::Hangs | Started::Runs => self.mode = Mode::Running(entry),
            Started::Crashes => self.mode = Mode::Crashed(entry),
        }
        if self.fault == Some(Fault::NoStatus) {
            // The ROM jumps before the status stage: the host sees no handshake.
            return Err(DeviceError::NoAnswer);
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), DeviceError> {
        let Some(p) = self.pointer else {
            return self.refuse("bulk OUT data before any SET_DATA_ADDRESS".into());
        };
        let end = p + data.len() as u64;
        let rom = self.chip.rom_sram;
        if p < rom.1 && end > rom.0 {
            // The bytes land on the ROM's own data and stack: it stops.
            let what = format!(
                "{} bytes at 0x{p:08x}: they overwrote the boot ROM's own data in SRAM (0x{:08x}..0x{:08x}); the ROM hangs",
                data.len(),
                rom.0,
                rom.1
            );
            self.log.push(what.clone());
            self.refusals.push(what);
            self.mode = Mode::Hung;
            return Err(DeviceError::NoAnswer);
        }
        let (sram, dram_end) = (self.chip.sram, self.chip.dram_size);
        let in_sram = p >= sram.0 && end <= sram.1;
        let in_dram = end <= dram_end;
        let writable = in_sram || (in_dram && self.dram_ready);
        if !writable {
            let why = if in_dram {
                "DRAM is not initialised".to_string()
            } else if p < sram.0 {
                format!("past the end of the {}'s {} MiB of DRAM", self.chip.soc, dram_end >> 20)
            } else {
                "outside SRAM and DRAM".to_string()
            };
            return self.refuse(format!("{} bytes at 0x{p:08x} ({why})", data.len()));
        }
        match self.regions.last_mut() {
            Some(r) if r.address + r.data.len() as u64 == p => r.data.extend_from_slice(data),
            _ => self.regions.push(Region { address: p, data: data.to_vec() }),
        }
        self.pointer = Some(end);
        Ok(())
    }
}

/// A virtual K230 attached to a simulated bus, as the registry hands it out.
pub struct Attached(pub Arc<Mutex<K230Rom>>);

impl VirtualRom for Attached {
    fn verdict(&mut self) -> Verdict {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).verdict()
    }

    fn console(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).console()
    }
}

/// The K230's boot ROM runs the code it starts on the little core's hart 0
/// (the model's assumption: the ROM itself runs there, canaan-k230.md §2).
pub const BOOT_CORE: crate::console::BootCore = crate::console::BootCore { word: "hart", id: 0 };

fn faults() -> Vec<(&'static str, &'static str)> {
    Fault::ALL.iter().map(|f| (f.0, f.2)).collect()
}

fn attach(
    soc: &str,
    scenario: &Scenario,
    usb: &SimUsbBus,
    _serial: &SimSerialBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    let chip = chip(soc).ok_or_else(|| SimError::UnknownSoc { soc: soc.to_string() })?;
    let fault = scenario.fault.as_deref().map(Fault::from_str).transpose()?;
    let rom = K230Rom::new(chip, &scenario.port_path)
        .with_fault(fault)
        .with_storage_loader(scenario.storage_loader)
        .with_console(scenario.uart(soc, BOOT_CORE)?);
    let rom = match &scenario.storage {
        Some(path) => {
            let name = scenario.storage_medium.as_deref().unwrap_or("sd");
            let kind = kburn::Kind::from_name(name).ok_or_else(|| SimError::Impossible {
                soc: soc.to_string(),
                why: format!("keep a medium named '{name}' (it has emmc, sd, spi-nand, spi-nor, otp)"),
            })?;
            rom.with_storage(Some((kind, path))).map_err(|e| SimError::Impossible {
                soc: soc.to_string(),
                why: format!("keep its {name} in {e}"),
            })?
        }
        None => rom,
    };
    let dev = usb.attach(rom);
    Ok(Box::new(Attached(dev)))
}

/// The K230 family in the registry.
pub static MODEL: Model =
    Model { socs: &["k230", "k230d"], faults, attach, serve: crate::serve::canaan::run };

fn bulk(address: u8, mps: u16) -> EndpointInfo {
    EndpointInfo { address, kind: EndpointKind::Bulk, max_packet_size: mps }
}

impl UsbDevice for K230Rom {
    fn info(&self) -> Option<UsbInfo> {
        if self.pending.is_some() {
            return None;
        }
        let base = UsbInfo {
            vid: K230_VID,
            pid: K230_PID,
            bcd_usb: 0x0200,
            bus: 1,
            address: self.address,
            port_path: self.port_path.clone(),
            speed: Some("high".into()),
            ..Default::default()
        };
        let rom_like = match self.mode {
            Mode::Rom | Mode::Hung => true,
            // Code that does not use USB runs; a controller nobody reset
            // stays enumerated as it was.
            Mode::Running(_) | Mode::Crashed(_) => self.keeps_address(),
            Mode::Loader | Mode::Unplugged => false,
        };
        if rom_like {
            return Some(UsbInfo {
                manufacturer: Some(self.chip.manufacturer.into()),
                product: Some(self.chip.product.into()),
                // Class triple unconfirmed (§9.3); the endpoints are documented.
                interfaces: vec![InterfaceInfo {
                    number: 0,
                    class: 0xff,
                    subclass: 0,
                    protocol: 0,
                    endpoints: vec![bulk(0x01, 512), bulk(0x81, 512)],
                }],
                ..base
            });
        }
        match self.mode {
            Mode::Rom => Some(UsbInfo {
                manufacturer: Some(self.chip.manufacturer.into()),
                product: Some(self.chip.product.into()),
                // Class triple unconfirmed (§9.3); the endpoints are documented.
                interfaces: vec![InterfaceInfo {
                    number: 0,
                    class: 0xff,
                    subclass: 0,
                    protocol: 0,
                    endpoints: vec![bulk(0x01, 512), bulk(0x81, 512)],
                }],
                ..base
            }),
            Mode::Loader => Some(UsbInfo {
                manufacturer: Some("Kendryte".into()),
                product: Some("Canaan KBURN".into()),
                serial: Some("K230-LOADER".into()),
                interfaces: vec![InterfaceInfo {
                    number: 0,
                    class: 0xff,
                    subclass: 0x02,
                    protocol: 0,
                    endpoints: vec![bulk(0x81, 512), bulk(0x02, 512)],
                }],
                ..base
            }),
            Mode::Running(_) | Mode::Crashed(_) | Mode::Unplugged | Mode::Hung => None,
        }
    }

    fn tick(&mut self) {
        if self.quiet > 0 {
            self.quiet -= 1;
            if self.quiet == 0 {
                self.log.push(format!("back in the ROM, answering again at address {}", self.address));
                self.enumerated();
            }
            return;
        }
        if let Some((left, _)) = &mut self.pending {
            if *left > 0 {
                *left -= 1;
                return;
            }
            let (_, mode) = self.pending.take().expect("checked above");
            self.mode = mode;
            self.address = self.address.wrapping_add(1).max(1);
            self.log.push(format!("re-enumerated as {:?} at address {}", self.mode, self.address));
            self.enumerated();
        }
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<(), DeviceError> {
        let addr = ((setup.value as u64) << 16) | setup.index as u64;
        self.log.push(format!(
            "ctrl OUT rt=0x{:02x} req={} val=0x{:04x} idx=0x{:04x} len={}",
            setup.request_type,
            setup.request,
            setup.value,
            setup.index,
            data.len()
        ));
        if self.silent() {
            return Err(DeviceError::NoAnswer);
        }
        if self.mode != Mode::Rom {
            return Err(DeviceError::Stall);
        }
        if setup.request_type != 0x40 {
            return self.refuse(format!("control OUT with bmRequestType 0x{:02x}", setup.request_type));
        }
        match setup.request {
            1 => {
                self.pointer = Some(addr);
                Ok(())
            }
            // SET_DATA_LENGTH: defined, never needed; accepted and ignored.
            2 => Ok(()),
            4 => self.prog_start(addr),
            r => self.refuse(format!("vendor request {r}")),
        }
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16) -> Result<Vec<u8>, DeviceError> {
        self.log.push(format!(
            "ctrl IN rt=0x{:02x} req={} val=0x{:04x} len={len}",
            setup.request_type, setup.request, setup.value
        ));
        if self.silent() {
            return Err(DeviceError::NoAnswer);
        }
        if setup.request_type != 0xC0 || setup.request != 0 {
            return Err(DeviceError::Stall);
        }
        if self.mode == Mode::Rom && self.cpu_info_misses > 0 {
            self.cpu_info_misses -= 1;
            return Err(DeviceError::NoAnswer);
        }
        let mut reply = match self.mode {
            Mode::Rom if self.fault == Some(Fault::WrongCpu) => b"K210".to_vec(),
            Mode::Rom => self.chip.rom_reply.to_vec(),
            Mode::Loader if self.kburn.crashed => return Err(DeviceError::NoAnswer),
            // f_kburn.c `kburn_handle_setup`.
            Mode::Loader => self.kburn.setup(setup.value, setup.index, len),
            _ => return Err(DeviceError::Disconnected),
        };
        // A device answers at most wLength bytes.
        reply.truncate(len as usize);
        Ok(reply)
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8]) -> Result<(), DeviceError> {
        if self.silent() {
            return Err(DeviceError::NoAnswer);
        }
        if self.mode == Mode::Loader {
            if ep != kburn::EP_OUT {
                return Err(DeviceError::Stall);
            }
            let r = self.kburn.bulk_out(data).map_err(|_| DeviceError::NoAnswer);
            if self.kburn.rebooted {
                // The chip resets: the ROM finds nothing to boot on USB's
                // behalf and enters USB download mode again.
                self.log.push("kburn REBOOT: the chip resets".into());
                self.dram_ready = false;
                self.pointer = None;
                match self.storage_boot() {
                    Some(n) => {
                        self.log.push(format!("the ROM boots the SD card's image ({n}-byte payload)"));
                        self.booted = Some(n);
                        self.pending = Some((REENUM_TICKS, Mode::Running(STORAGE_RUN)));
                    }
                    None => self.leave_bus(Mode::Rom),
                }
            }
            return r;
        }
        if self.mode != Mode::Rom || ep != 0x01 {
            return Err(DeviceError::Stall);
        }
        match self.fault {
            Some(Fault::StallBulk) => return self.refuse(format!("{} bytes of bulk OUT data", data.len())),
            Some(Fault::HangBulk) => return Err(DeviceError::NoAnswer),
            Some(Fault::Unplug) if self.bulk_sizes.len() == 1 => {
                self.mode = Mode::Unplugged;
                return Err(DeviceError::Disconnected);
            }
            _ => {}
        }
        self.bulk_sizes.push(data.len());
        self.write(data)
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize) -> Result<Vec<u8>, DeviceError> {
        if self.mode == Mode::Loader && !self.silent() {
            if ep != kburn::EP_IN {
                return Err(DeviceError::Stall);
            }
            return self.kburn.bulk_in(max_len).ok_or(DeviceError::NoAnswer);
        }
        // No host reads EP 0x81 of the ROM; nothing is ever queued there.
        Err(DeviceError::NoAnswer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(req: u8, addr: u32) -> ControlSetup {
        ControlSetup::vendor_out(req, (addr >> 16) as u16, addr as u16)
    }

    fn reenumerate(r: &mut K230Rom) {
        for _ in 0..=REENUM_TICKS {
            r.tick();
        }
    }

    fn load(r: &mut K230Rom, addr: u32, data: &[u8]) -> Result<(), DeviceError> {
        r.control_out(out(1, addr), &[])?;
        r.bulk_out(1, data)
    }

    #[test]
    fn rom_stores_data_and_jumps() {
        let mut r = K230Rom::new(&K230, "1-1");
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32).unwrap(), b"K230");
        assert_eq!(r.bulk_out(1, b"x"), Err(DeviceError::Stall), "data before an address");
        r.refusals.clear();
        r.control_out(out(1, 0x8036_0000), &[]).unwrap();
        r.bulk_out(1, &[1, 2, 3]).unwrap();
        r.bulk_out(1, &[4]).unwrap();
        assert_eq!(r.read(0x8036_0000, 4).unwrap(), vec![1, 2, 3, 4]);
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        assert_eq!(r.jumps[0].entry, 0x8036_0000);
        assert!(r.info().is_none(), "the ROM left the bus for the payload");
        assert!(r.verdict().started(), "{:?}", r.verdict());
    }

    /// The rule for started code: SRAM code comes back as the ROM (as
    /// bt0 and the bsp payloads do) and leaves DRAM set up; DRAM code runs
    /// and stays off the bus.
    #[test]
    fn sram_stages_return_to_the_rom_and_dram_stages_run() {
        let mut r = K230Rom::new(&K230, "1-1");
        load(&mut r, 0x0800_0000, &[0; 4]).unwrap_err();
        assert!(r.refusals[0].contains("DRAM is not initialised"), "{:?}", r.refusals);
        r.refusals.clear();
        load(&mut r, 0x8036_0000, &[0x13; 8]).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        assert_eq!(r.jumps[0].started, Started::ReturnsToRom);
        assert!(r.info().is_none(), "off the bus while re-enumerating");
        reenumerate(&mut r);
        let info = r.info().unwrap();
        assert_eq!(info.address, 11);
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32).unwrap(), b"K230");
        assert!(r.dram_ready());
        load(&mut r, 0x0800_0000, &[5; 4]).unwrap();
        r.control_out(out(4, 0x0800_0000), &[]).unwrap();
        assert_eq!(r.mode(), &Mode::Running(0x0800_0000));
        reenumerate(&mut r);
        assert!(r.info().is_none(), "a main stage in DRAM does not come back on USB");
        let v = r.verdict();
        assert!(v.started(), "{v:?}");
        assert!(v.text().contains("jumped to 0x80360000 (DRAM init, back into the ROM)"), "{v:?}");
        assert!(v.text().ends_with("; jumped to 0x08000000"), "{v:?}");
    }

    #[test]
    fn an_sram_stage_alone_is_a_started_payload() {
        let mut r = K230Rom::new(&K230, "1-1");
        load(&mut r, 0x8036_0000, &[0x13; 1278]).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        reenumerate(&mut r);
        assert_eq!(r.mode(), &Mode::Rom);
        assert_eq!(
            r.verdict(),
            Verdict::Started {
                summary: "loaded 1278 bytes at 0x80360000; jumped to 0x80360000 (back into the ROM)".into()
            }
        );
    }

    #[test]
    fn no_return_hangs_in_sram() {
        let mut r = K230Rom::new(&K230, "1-1").with_fault(Some(Fault::NoReturn));
        load(&mut r, 0x8036_0000, &[0x13; 8]).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        reenumerate(&mut r);
        assert!(r.info().is_none());
        assert!(!r.dram_ready());
        assert_eq!(r.jumps[0].started, Started::Hangs);
    }

    #[test]
    fn k230d_has_128_mib_of_dram() {
        for (chip, ok) in [(&K230, true), (&K230D, false)] {
            let mut r = K230Rom::new(chip, "1-1");
            load(&mut r, 0x8036_0000, &[0x13; 8]).unwrap();
            r.control_out(out(4, 0x8036_0000), &[]).unwrap();
            reenumerate(&mut r);
            // oreboot's main stage address is the first byte past the K230D's DRAM.
            assert_eq!(load(&mut r, 0x0800_0000, &[5; 4]).is_ok(), ok, "{}", chip.soc);
            assert!(load(&mut r, 0x07ff_fffc, &[5; 4]).is_ok(), "{}", chip.soc);
        }
        let mut r = K230Rom::new(&K230D, "1-1");
        r.dram_ready = true;
        load(&mut r, 0x07ff_fffc, &[0; 8]).unwrap_err();
        assert!(r.refusals[0].contains("past the end of the k230d's 128 MiB of DRAM"), "{:?}", r.refusals);
    }

    #[test]
    fn writes_crossing_out_of_sram_are_refused() {
        let mut r = K230Rom::new(&K230, "1-1");
        r.control_out(out(1, 0x803f_fffc), &[]).unwrap();
        r.bulk_out(1, &[0; 4]).unwrap();
        assert_eq!(r.bulk_out(1, &[0; 1]), Err(DeviceError::Stall));
        assert!(!r.verdict().started());
    }

    #[test]
    fn loader_code_comes_back_as_the_loader() {
        let mut r = K230Rom::new(&K230, "1-1");
        let mut code = vec![0u8; 64];
        code.extend_from_slice(b"Uboot Stage for K230");
        load(&mut r, 0x8036_0000, &code).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        reenumerate(&mut r);
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32).unwrap(), b"Uboot Stage for K230");
        // f_kburn.c answers the mark only for wValue = wIndex = 0: a
        // version probe (wValue 1) gets a zero-length data stage.
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 1, 0), 4).unwrap(), Vec::<u8>::new());
        assert_eq!(r.info().unwrap().interfaces[0].endpoints[1].address, 0x02);
    }

    /// A download into the ROM's own half of the SRAM overwrites the live
    /// ROM (review F4): it hangs, stays enumerated and never answers again.
    #[test]
    fn a_write_into_the_roms_own_sram_hangs_the_rom() {
        let mut r = K230Rom::new(&K230, "1-1");
        assert_eq!(load(&mut r, 0x802f_fffc, &[0; 8]), Err(DeviceError::NoAnswer));
        assert!(r.refusals[0].contains("overwrote the boot ROM's own data"), "{:?}", r.refusals);
        assert!(r.info().is_some(), "still enumerated");
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32), Err(DeviceError::NoAnswer));
        assert!(!r.verdict().started());
        // Just past it is the download area.
        let mut r = K230Rom::new(&K230, "1-1");
        load(&mut r, 0x8030_0000, &[0; 8]).unwrap();
    }

    /// The other plausible re-entry (review F3): the board keeps its
    /// address; while the payload runs EP0 goes unanswered, then the ROM
    /// answers "K230" again at the same address.
    #[test]
    fn same_address_reentry_goes_quiet_then_answers_again() {
        let mut r = K230Rom::new(&K230, "1-1").with_fault(Some(Fault::SameAddress));
        load(&mut r, 0x8036_0000, &[0x13; 8]).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        assert_eq!(r.info().unwrap().address, 10, "no new enumeration");
        r.tick();
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32), Err(DeviceError::NoAnswer));
        reenumerate(&mut r);
        assert_eq!(r.info().unwrap().address, 10);
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32).unwrap(), b"K230");
        assert!(r.dram_ready());
        // A main stage in DRAM runs; the controller stays as it was, silent.
        load(&mut r, 0x0800_0000, &[5; 4]).unwrap();
        r.control_out(out(4, 0x0800_0000), &[]).unwrap();
        reenumerate(&mut r);
        assert_eq!(r.info().unwrap().address, 10);
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32), Err(DeviceError::NoAnswer));
        assert!(r.verdict().started());
    }

    #[test]
    fn slow_cpu_info_misses_twice_after_each_enumeration() {
        let mut r = K230Rom::new(&K230, "1-1").with_fault(Some(Fault::SlowCpuInfo));
        let ask = |r: &mut K230Rom| r.control_in(ControlSetup::vendor_in(0, 0, 0), 32);
        assert_eq!(ask(&mut r), Err(DeviceError::NoAnswer));
        assert_eq!(ask(&mut r), Err(DeviceError::NoAnswer));
        assert_eq!(ask(&mut r).unwrap(), b"K230");
        load(&mut r, 0x8036_0000, &[0x13; 8]).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        reenumerate(&mut r);
        assert_eq!(ask(&mut r), Err(DeviceError::NoAnswer), "again after re-enumerating");
    }

    #[test]
    fn faults_parse_by_name() {
        for (name, f, _) in Fault::ALL {
            assert_eq!(name.parse::<Fault>(), Ok(*f));
        }
        let e = "nope".parse::<Fault>().unwrap_err();
        assert!(e.known.contains("stall-bulk") && e.to_string().contains("K230"), "{e}");
    }

    #[test]
    fn the_registry_attaches_both_socs_and_checks_faults() {
        use racklet_link::UsbBus;
        for soc in ["k230", "k230d"] {
            let usb = SimUsbBus::new();
            let scenario = Scenario { fault: Some("no-jump".into()), ..Scenario::at("1-2") };
            let mut rom = crate::models::attach(soc, &scenario, &usb, &SimSerialBus::new()).unwrap();
            let d = usb.devices().unwrap();
            assert_eq!((d.len(), d[0].vid, d[0].pid, d[0].port_path.as_str()), (1, 0x29f1, 0x0230, "1-2"));
            assert!(!rom.verdict().started(), "nothing was sent");
        }
        let bad = Scenario { fault: Some("nonsense".into()), ..Scenario::at("1-1") };
        let e = crate::models::attach("k230", &bad, &SimUsbBus::new(), &SimSerialBus::new()).err().unwrap();
        assert!(matches!(e, SimError::UnknownFault(_)), "{e}");
    }
}
