//! A virtual Rockchip maskrom, written from the fact sheet
//! (shared/protocols/rockchip.md), not from the client crate.
//!
//! Maskrom state: accepts vendor control OUT transfers (0x40, 0x0C, wValue
//! 0, wIndex 0x471/0x472) of at most 4096 bytes, reassembles each stage up
//! to the first short transfer, checks the 1-byte-terminator rule and the
//! CRC-16/CCITT-FALSE (whole image incl. CRC must give 0), removes RC4 when
//! the chip uses it, checks legacy DDR blob tags, and stalls on anything
//! wrong. After a 0x472 stage that is a usbplug (its image carries the
//! rockusb interface descriptor, [`is_rockusb_loader`]) it drops off the bus
//! and comes back at the same port path with a new address as the usbplug:
//! bcdUSB 0x0200 (the trap of §5), answering rockusb CBW/CSW on bulk
//! endpoints 0x01/0x81. Any other 0x472 stage runs as a payload and no
//! rockusb device comes back.
//!
//! The usbplug's storage is a virtual eMMC of a real size (8 GiB, sparse in
//! memory, or a file with `--sim-storage`), answered as U-Boot's rockusb
//! answers it (u-boot/u-boot `drivers/usb/gadget/f_rockusb.c`, and for
//! what mainline leaves out, Rockchip's fork `f_rockusb.c` of
//! rockchip-linux/u-boot, which rkbin's usbplugs are built from):
//! 512-byte sectors; READ LBA (0x14) and WRITE LBA (0x15) with the LBA as
//! BE32 at CDB[2..6] and the sector count as BE16 at CDB[7..9], the data
//! phase `count × 512` bytes whatever the CBW's length says, a count of 0
//! or a range past the end answered with CSW status 1; ERASE LBA (0x25)
//! the same way; READ FLASH INFO (0x1A) from the fork: the capacity in
//! sectors (LE32), block size 1024, page size 4, ECC 0, access time 40,
//! manufacturer 0, CS mask 1; TEST UNIT READY's residue 0x06 << 24 (the
//! fork's "max block transfer" hint); RESET (0xFF) takes CDB[1] as the
//! reboot flag, answers its CSW and then resets: flag 3
//! (rkdeveloptool's RST_RESETMASKROM_SUBCODE) back into the maskrom,
//! anything else off the bus (the board boots what its storage holds).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use racklet_link::usb::{EndpointKind, InterfaceInfo};
use racklet_link::{ControlSetup, EndpointInfo, UsbInfo};

use crate::crc::crc16_ccitt_false;
use crate::models::{Model, Scenario, SimError};
use crate::rom::{Faults, UnknownFault, Verdict, VirtualRom, parse_fault};
use crate::serial::SimSerialBus;
use crate::storage::{Medium, MediumFileError};
use crate::usb::{DeviceError, SimUsbBus, UsbDevice};

/// Rockchip's USB vendor id.
pub const VID: u16 = 0x2207;
const KEY: [u8; 16] =
    [0x7c, 0x4e, 0x03, 0x04, 0x55, 0x05, 0x09, 0x07, 0x2d, 0x2c, 0x7b, 0x38, 0x17, 0x0d, 0x17, 0x11];
const MAX_TRANSFER: usize = 4096;
/// Bus scans the device stays away after starting the usbplug.
const DETACH_TICKS: u32 = 3;
/// TEST UNIT READY polls a `not-ready` usbplug answers with status 1.
const NOT_READY_POLLS: usize = 2;
/// The virtual eMMC's size: 8 GiB (15,269,888 sectors of a real 8 GB part
/// would do as well; a round size keeps the tests readable).
pub const EMMC_SIZE: u64 = 8 << 30;
/// The sector size of every rockusb LBA command (`blksz` of an eMMC).
pub const SECTOR: u64 = 512;
/// Rockchip's usbplug answers TEST UNIT READY with this residue: its
/// `rkusb_do_test_unit_ready` sets `0x06 << 24`, "max block xfer support"
/// (`(1 << 6) × 4096` bytes).
pub const TUR_RESIDUE: u32 = 0x06 << 24;
/// ... and, when the host asks with subcode 0xF7 and the loader has a
/// transfer buffer of at least 4 MiB, `0x0a << 24` (fact sheet §3.3; this
/// model has one).
pub const TUR_RESIDUE_BIG: u32 = 0x0a << 24;

/// What the model knows about one chip (fact sheet §4; SRAM sizes from
/// U-Boot's `arch/arm/mach-rockchip/rkcommon.c`; zero-CRC behaviour from
/// §1.3 and §8.6). Nothing here comes from the client's chip table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChipModel {
    pub soc: &'static str,
    pub pid: u16,
    /// The ROM removes RC4 from what it receives.
    pub rc4: bool,
    /// Tag a legacy DDR blob must start with (after RC4 removal).
    pub tag: Option<&'static [u8; 4]>,
    /// ASCII code reported by READ CHIP INFO ("3568"); empty where U-Boot's
    /// `chip_info.c` has no value for the chip (RK3562, RK3576, RK3528,
    /// RK3506), so the usbplug answers zeros.
    pub code: &'static str,
    /// Bytes of SRAM a 0x471 stage may use (u-boot rkcommon.c sizes).
    pub sram: Option<usize>,
    /// The ROM skips its check when the CRC field is 0x0000.
    pub zero_crc: bool,
    /// The vendor usbplug is built with CONFIG_ROCKCHIP_NEW_IDB, so READ
    /// CAPABILITY sets bit 0 of its byte 1 (rockchip-linux/u-boot
    /// f_rockusb.c `rkusb_do_read_capacity`). Set by
    /// configs/rk3528-, rk3562-, rk3568-, rk3588- and rv1106-usbplug.config
    /// (the RK3566 usbplug is the RK3568's); rv1126-usbplug.config and the
    /// older chips' loaders do not set it, and the RK3576 and RK3506 have no
    /// usbplug config there (63c55618fb), so the model says no.
    pub new_idb: bool,
}

const CHIPS: &[ChipModel] = &[
    ChipModel {
        soc: "rk3568",
        pid: 0x350a,
        rc4: false,
        tag: None,
        code: "3568",
        sram: Some(0x10000 - 0x1000),
        zero_crc: false,
        new_idb: true,
    },
    ChipModel {
        soc: "rk3566",
        pid: 0x350a,
        rc4: false,
        tag: None,
        // The RK3566 usbplug is built with CONFIG_ROCKCHIP_RK3568 and its
        // chip_info.c answers 0x33353638, "3568".
        code: "3568",
        sram: Some(0x10000 - 0x1000),
        zero_crc: false,
        new_idb: true,
    },
    ChipModel {
        soc: "rk3588",
        pid: 0x350b,
        rc4: false,
        tag: None,
        code: "3588",
        sram: Some(0x100000 - 0x1000),
        zero_crc: false,
        new_idb: true,
    },
    ChipModel {
        soc: "rk3576",
        pid: 0x350e,
        rc4: false,
        tag: None,
        code: "",
        sram: None,
        zero_crc: true,
        new_idb: false,
    },
    ChipModel {
        soc: "rk3528",
        pid: 0x350c,
        rc4: false,
        tag: None,
        code: "",
        sram: None,
        zero_crc: true,
        new_idb: true,
    },
    ChipModel {
        soc: "rk3562",
        pid: 0x350d,
        rc4: false,
        tag: None,
        code: "",
        sram: None,
        zero_crc: false,
        new_idb: true,
    },
    ChipModel {
        soc: "rk3506",
        pid: 0x350f,
        rc4: false,
        tag: None,
        code: "",
        sram: None,
        zero_crc: true,
        new_idb: false,
    },
    ChipModel {
        soc: "rv1106",
        pid: 0x110c,
        rc4: false,
        tag: None,
        code: "1106",
        sram: None,
        zero_crc: true,
        new_idb: true,
    },
    ChipModel {
        soc: "rk3399",
        pid: 0x330c,
        rc4: true,
        tag: Some(b"RK33"),
        code: "330C",
        sram: Some(0x30000 - 0x2000),
        zero_crc: false,
        new_idb: false,
    },
    ChipModel {
        soc: "rk3368",
        pid: 0x330a,
        rc4: true,
        tag: Some(b"RK33"),
        code: "330A",
        sram: None,
        zero_crc: false,
        new_idb: false,
    },
    ChipModel {
        soc: "rk3328",
        pid: 0x320c,
        rc4: true,
        tag: Some(b"RK32"),
        code: "322H",
        sram: None,
        zero_crc: false,
        new_idb: false,
    },
    ChipModel {
        soc: "rk3288",
        pid: 0x320a,
        rc4: true,
        tag: Some(b"RK32"),
        code: "320A",
        sram: None,
        zero_crc: false,
        new_idb: false,
    },
    ChipModel {
        soc: "rk3308",
        pid: 0x330e,
        rc4: true,
        tag: Some(b"RK33"),
        code: "3308",
        sram: None,
        zero_crc: false,
        new_idb: false,
    },
    ChipModel {
        soc: "px30",
        pid: 0x330d,
        rc4: true,
        tag: Some(b"RK33"),
        code: "PX30",
        sram: None,
        zero_crc: false,
        new_idb: false,
    },
    ChipModel {
        soc: "rv1126",
        pid: 0x110b,
        rc4: true,
        tag: Some(b"110B"),
        code: "1126",
        sram: None,
        zero_crc: false,
        new_idb: false,
    },
];

/// The model of a SoC, by the board table's name.
pub fn chip_model(soc: &str) -> Option<ChipModel> {
    CHIPS.iter().find(|m| m.soc.eq_ignore_ascii_case(soc)).copied()
}

/// The SoC names of [`CHIPS`], for the registry.
const SOCS: [&str; CHIPS.len()] = {
    let mut names = [""; CHIPS.len()];
    let mut i = 0;
    while i < CHIPS.len() {
        names[i] = CHIPS[i].soc;
        i += 1;
    }
    names
};

/// The registry entry: every chip above, on USB.
pub static MODEL: Model =
    Model { socs: &SOCS, faults: fault_list, attach, serve: crate::serve::rockchip::run };

fn fault_list() -> Vec<(&'static str, &'static str)> {
    RockchipFault::ALL.iter().map(|(name, _, what)| (*name, *what)).collect()
}

/// The ROM as the registry hands it out: the bus holds the device, this
/// handle gives its verdict.
struct Attached(Arc<Mutex<RockchipRom>>);

impl VirtualRom for Attached {
    fn verdict(&mut self) -> Verdict {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).verdict()
    }

    fn console(&self) -> Option<String> {
        let rom = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rom.console.as_ref().map(crate::console::Uart::path)
    }
}

/// The ROM runs the stages it loads on core 0 (AArch64: "core"; the
/// model's assumption, as the payloads' table names no other).
pub const BOOT_CORE: crate::console::BootCore = crate::console::BootCore { word: "core", id: 0 };

fn attach(
    soc: &str,
    scenario: &Scenario,
    usb: &SimUsbBus,
    _serial: &SimSerialBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    let rom = RockchipRom::for_soc(soc, scenario)?;
    Ok(Box::new(Attached(usb.attach(rom))))
}

/// Ways to make the virtual ROM misbehave (`--fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RockchipFault {
    #[default]
    None,
    /// One bit of the first transfer is flipped on the way in: the CRC
    /// check fails and the ROM stalls.
    Corrupt,
    /// The ROM stalls every 0x472 transfer.
    RejectUsbplug,
    /// The DDR blob never returns (wrong blob or RC4 choice): no answers.
    Hang,
    /// After 0x472 the board never comes back on the bus.
    NoReturn,
    /// The usbplug enumerates but never answers rockusb commands.
    DeadUsbplug,
    /// The usbplug answers with a CSW whose tag does not match.
    BadCsw,
    /// The board already runs a usbplug (bcdUSB 0x0200, looks like maskrom).
    AlreadyLoader,
    /// The usbplug's eMMC fails every write (`blk_dwrite` short: CSW status 1).
    WriteFails,
    /// The usbplug's eMMC takes writes but flips a bit of the first sector
    /// of each one (what a read-back must catch).
    Corrupts,
    /// The cable is pulled during the second transfer of the first stage.
    Unplug,
    /// The ROM takes a stage that ends in the 4094 rule's 1-byte trailer but
    /// stalls the trailer's status stage (no reference tool checks it).
    StallTrailer,
    /// The usbplug answers TEST UNIT READY with CSW status 1 ("not ready",
    /// rkdeveloptool's ERR_DEVICE_UNREADY) to its first polls, as a loader
    /// still bringing up its storage does.
    NotReady,
    /// The usbplug's first CSW comes late: the host's read of it times out
    /// and it arrives in place of the next command's CSW.
    LateCsw,
}

impl Faults for RockchipFault {
    const ALL: &'static [(&'static str, RockchipFault, &'static str)] = &[
        ("none", RockchipFault::None, "no fault"),
        (
            "corrupt",
            RockchipFault::Corrupt,
            "a bit of the first transfer flips: the CRC check fails, the ROM stalls",
        ),
        ("reject-usbplug", RockchipFault::RejectUsbplug, "the ROM stalls every 0x472 transfer"),
        ("hang", RockchipFault::Hang, "the DDR blob never returns: no more answers"),
        ("no-return", RockchipFault::NoReturn, "after 0x472 the board never comes back on the bus"),
        ("dead-usbplug", RockchipFault::DeadUsbplug, "the usbplug enumerates but never answers rockusb"),
        ("bad-csw", RockchipFault::BadCsw, "the usbplug answers with a CSW whose tag does not match"),
        (
            "already-loader",
            RockchipFault::AlreadyLoader,
            "the board already runs a usbplug (looks like maskrom)",
        ),
        ("write-fails", RockchipFault::WriteFails, "the usbplug's eMMC fails every WRITE LBA (CSW status 1)"),
        (
            "corrupts",
            RockchipFault::Corrupts,
            "the usbplug's eMMC flips a bit in the first sector of each WRITE LBA",
        ),
        (
            "unplug",
            RockchipFault::Unplug,
            "the cable is pulled during the second transfer of the first stage",
        ),
        (
            "stall-trailer",
            RockchipFault::StallTrailer,
            "the ROM takes a stage ending in the 1-byte trailer but stalls the trailer",
        ),
        (
            "not-ready",
            RockchipFault::NotReady,
            "the usbplug answers TEST UNIT READY with status 1 (not ready) to its first 2 polls",
        ),
        (
            "late-csw",
            RockchipFault::LateCsw,
            "the usbplug's first CSW comes after the host's read timed out (a stale CSW next)",
        ),
    ];
}

impl std::str::FromStr for RockchipFault {
    type Err = UnknownFault;

    fn from_str(name: &str) -> Result<Self, UnknownFault> {
        parse_fault(name, "Rockchip maskrom")
    }
}

/// Removes (or applies) RC4 with the ROM's key, one stream from byte 0.
pub fn rc4_xor(data: &mut [u8]) {
    let mut s: Vec<u8> = (0..=255u8).collect();
    let mut j = 0usize;
    for i in 0..256 {
        j = (j + s[i] as usize + KEY[i % KEY.len()] as usize) % 256;
        s.swap(i, j);
    }
    let (mut i, mut j) = (0usize, 0usize);
    for b in data.iter_mut() {
        i = (i + 1) % 256;
        j = (j + s[i] as usize) % 256;
        s.swap(i, j);
        *b ^= s[(s[i] as usize + s[j] as usize) % 256];
    }
}

/// The rockusb interface descriptor every rockusb loader carries in its
/// image: bLength 9, INTERFACE, any number/alternate/endpoint count, then
/// class ff, subclass 06, protocol 05. The real RK356x usbplug of rkbin
/// (`rk356x_usbplug_v1.xx.bin` in RK3568MINIALL) has `09 04 00 00 02 ff 06
/// 05` at 0x14f1a; U-Boot's `f_rockusb.c` usbplugs build it from
/// `rkusb_intf_desc` (USB_CLASS_VENDOR_SPEC, ROCKUSB_INTERFACE_SUB_CLASS 6,
/// ROCKUSB_INTERFACE_PROTOCOL 5). A payload without one (an SPL, a
/// bare-metal program) has no rockusb function to enumerate.
pub fn is_rockusb_loader(image: &[u8]) -> bool {
    image.windows(8).any(|w| w[0] == 9 && w[1] == 4 && w[5..8] == [0xff, 0x06, 0x05])
}

/// One stage the ROM accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// 0x471 or 0x472.
    pub index: u16,
    /// The payload after CRC and RC4 removal.
    pub body: Vec<u8>,
    /// Control transfers it took.
    pub transfers: usize,
    /// CRC field as received.
    pub crc: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Maskrom,
    Hung,
    Detached(u32),
    Gone,
    Usbplug,
    /// A 0x472 stage that is not a usbplug runs: it never speaks rockusb
    /// (mainline U-Boot's usb472 SPL, a bare-metal payload).
    Payload,
    /// RESET into the maskrom: off the bus, then back as the maskrom.
    Resetting(u32),
}

/// The virtual Rockchip ROM.
pub struct RockchipRom {
    chip: ChipModel,
    port_path: String,
    address: u8,
    state: State,
    fault: RockchipFault,
    /// The stage being reassembled: wIndex, bytes, transfers.
    current: Option<(u16, Vec<u8>, usize)>,
    transfers_seen: usize,
    /// Stages accepted, in order.
    pub received: Vec<Received>,
    /// Why the ROM stalled, hung or refused, in order.
    pub refusals: Vec<String>,
    /// rockusb opcodes the usbplug answered.
    pub commands: Vec<u8>,
    pending_in: VecDeque<Vec<u8>>,
    /// How much of the oldest `pending_in` answer was read already.
    in_at: usize,
    /// The next bulk IN read gets no answer (fault `late-csw`).
    hold_in: bool,
    /// The usbplug's eMMC.
    emmc: Medium,
    /// A WRITE LBA waiting for its data phase: its tag, first sector, the
    /// bytes still to come, what came so far, and whether the range is on
    /// the medium (a range off it is taken and thrown away, then failed).
    download: Option<Download>,
    /// After this CSW goes out the board resets (RESET's reboot flag).
    reset_after_csw: Option<u8>,
    /// Reboot flags of the RESETs the usbplug carried out, in order.
    pub resets: Vec<u8>,
    /// Sectors written, read and erased through rockusb.
    pub sectors_written: u64,
    pub sectors_read: u64,
    pub sectors_erased: u64,
    /// The board's UART console, when asked for ([`crate::console`]).
    console: Option<crate::console::Uart>,
}

#[derive(Debug)]
struct Download {
    tag: [u8; 4],
    lba: u64,
    left: usize,
    bytes: Vec<u8>,
    fits: bool,
}

impl RockchipRom {
    /// A board in maskrom at `port_path`.
    pub fn new(chip: ChipModel, port_path: &str, fault: RockchipFault) -> Self {
        let state = if fault == RockchipFault::AlreadyLoader { State::Usbplug } else { State::Maskrom };
        RockchipRom {
            chip,
            port_path: port_path.to_string(),
            address: 7,
            state,
            fault,
            current: None,
            transfers_seen: 0,
            received: Vec::new(),
            refusals: Vec::new(),
            commands: Vec::new(),
            pending_in: VecDeque::new(),
            in_at: 0,
            hold_in: false,
            emmc: Medium::in_memory(EMMC_SIZE, 0),
            download: None,
            reset_after_csw: None,
            resets: Vec::new(),
            sectors_written: 0,
            sectors_read: 0,
            sectors_erased: 0,
            console: None,
        }
    }

    /// Keeps the usbplug's eMMC in the file at `path` (`--sim-storage`).
    pub fn with_storage(mut self, path: &std::path::Path) -> Result<Self, MediumFileError> {
        self.emmc = Medium::in_file(path, EMMC_SIZE)?;
        Ok(self)
    }

    /// The usbplug's eMMC (a test may put a GPT on it).
    pub fn emmc(&mut self) -> &mut Medium {
        &mut self.emmc
    }

    /// A board of `soc` as the scenario asks (port path, fault).
    pub fn for_soc(soc: &str, scenario: &Scenario) -> Result<Self, SimError> {
        let chip = chip_model(soc).ok_or_else(|| SimError::UnknownSoc { soc: soc.to_string() })?;
        let fault = match &scenario.fault {
            Some(f) => f.parse()?,
            None => RockchipFault::None,
        };
        let mut rom = RockchipRom::new(chip, &scenario.port_path, fault);
        rom.console = scenario.uart(soc, BOOT_CORE)?;
        match &scenario.storage {
            None => Ok(rom),
            Some(path) => rom.with_storage(path).map_err(|e| SimError::Impossible {
                soc: soc.to_string(),
                why: format!("--sim-storage: {e}"),
            }),
        }
    }

    /// True once the usbplug runs and answers rockusb.
    pub fn usbplug_running(&self) -> bool {
        self.state == State::Usbplug
    }

    fn refuse(&mut self, why: String) -> DeviceError {
        self.refusals.push(why);
        self.current = None;
        DeviceError::Stall
    }

    /// What the ROM saw: started once a DRAM-init stage ran (and, if one
    /// was sent, the usbplug started) without any refusal.
    pub fn verdict(&self) -> Verdict {
        Verdict::from_result(self.outcome())
    }

    fn outcome(&self) -> Result<String, String> {
        let ddr: Vec<&Received> = self.received.iter().filter(|r| r.index == 0x471).collect();
        let plug: Vec<&Received> = self.received.iter().filter(|r| r.index == 0x472).collect();
        let desc = |v: &[&Received]| {
            v.iter()
                .map(|r| format!("{} B in {} transfers, crc {:04x}", r.body.len(), r.transfers, r.crc))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut s = format!(
            "{} ({}): 0x471 [{}]",
            self.chip.soc,
            if self.chip.rc4 { "RC4" } else { "plain" },
            desc(&ddr)
        );
        if !plug.is_empty() {
            s.push_str(&format!(", 0x472 [{}]", desc(&plug)));
        }
        if !self.commands.is_empty() {
            s.push_str(&format!(", usbplug answered {} rockusb commands", self.commands.len()));
        }
        for (what, n) in
            [("wrote", self.sectors_written), ("read", self.sectors_read), ("erased", self.sectors_erased)]
        {
            if n > 0 {
                s.push_str(&format!(", {what} {n} sectors"));
            }
        }
        if let Some(d) = &self.download {
            return Err(format!("{s}; a WRITE LBA at sector {} was left {} bytes short", d.lba, d.left));
        }
        if !self.refusals.is_empty() {
            return Err(format!("{s}; refused: {}", self.refusals.join("; ")));
        }
        if self.state == State::Hung {
            return Err(format!("{s}; the DRAM-init stage never returned"));
        }
        if self.current.is_some() {
            return Err(format!("{s}; a stage was left unfinished"));
        }
        let reset = match self.resets.last() {
            Some(3) => Some("; reset into the maskrom"),
            Some(_) => Some("; reset (booting from its storage)"),
            None => None,
        };
        if ddr.is_empty() && self.fault == RockchipFault::AlreadyLoader && !self.commands.is_empty() {
            s.push_str("; the usbplug was already running");
            s.push_str(reset.unwrap_or(""));
            return Ok(s);
        }
        if ddr.is_empty() {
            return Err(format!("{s}; no stage was received"));
        }
        if !plug.is_empty() && self.state == State::Payload {
            s.push_str("; 0x472 payload started (not a usbplug: no rockusb in it)");
        } else if !plug.is_empty() {
            if self.state != State::Usbplug && reset.is_none() {
                return Err(format!("{s}; the usbplug never came back on the bus"));
            }
            s.push_str("; usbplug started");
            s.push_str(reset.unwrap_or(""));
        } else {
            s.push_str("; DRAM initialised, no usbplug sent");
        }
        Ok(s)
    }

    fn finish_stage(&mut self, index: u16, image: Vec<u8>, transfers: usize) -> Result<(), DeviceError> {
        if image.len() < 2 {
            return Err(self.refuse(format!("0x{index:x}: a {}-byte stage has no CRC", image.len())));
        }
        let crc = u16::from_be_bytes([image[image.len() - 2], image[image.len() - 1]]);
        let ok = crc16_ccitt_false(&image) == 0 || (crc == 0 && self.chip.zero_crc);
        if !ok {
            let want = crc16_ccitt_false(&image[..image.len() - 2]);
            return Err(
                self.refuse(format!("0x{index:x}: CRC mismatch (received {crc:04x}, computed {want:04x})"))
            );
        }
        let mut body = image[..image.len() - 2].to_vec();
        if self.chip.rc4 {
            rc4_xor(&mut body);
        }
        if body.is_empty() {
            // A 2-byte stage (only the CRC of nothing, `ff ff`) passes the
            // check; the ROM then runs the empty image, which never returns.
            // rkdeveloptool never sends one (RKDevice.cpp:522, 554).
            self.refusals.push(format!("0x{index:x}: an empty stage (only its CRC) was run"));
            self.state = State::Hung;
            self.received.push(Received { index, body, transfers, crc });
            return Ok(());
        }
        if index == 0x471 {
            if let Some(max) = self.chip.sram
                && body.len() > max
            {
                return Err(
                    self.refuse(format!("0x471: {} bytes do not fit the {max}-byte SRAM", body.len()))
                );
            }
            let header = body.starts_with(b"RKNS");
            if let Some(tag) = self.chip.tag
                && !header
                && !body.starts_with(tag)
            {
                // The real ROM jumps into garbage and is never heard from again.
                self.refusals.push(format!(
                    "0x471: the DDR blob does not start with the {} tag (wrong RC4 choice or blob)",
                    String::from_utf8_lossy(tag)
                ));
                self.state = State::Hung;
            } else if self.fault == RockchipFault::Hang && !header {
                self.state = State::Hung;
            }
        } else if !is_rockusb_loader(&body) {
            // What runs is the payload's business: without a rockusb
            // function in it, nothing answers rockusb on the bus.
            self.state = State::Payload;
        } else {
            self.state = if self.fault == RockchipFault::NoReturn {
                State::Gone
            } else {
                State::Detached(DETACH_TICKS)
            };
        }
        // What runs prints on the board's UART.
        if let Some(c) = &mut self.console
            && self.state != State::Hung
        {
            c.runs(&body);
        }
        self.received.push(Received { index, body, transfers, crc });
        Ok(())
    }

    fn rockusb_command(&mut self, cbw: &[u8]) -> Result<(), DeviceError> {
        if self.download.is_some() {
            return self.download_data(cbw);
        }
        if cbw.len() != 31 || &cbw[0..4] != b"USBC" {
            self.refusals.push(format!("rockusb: {}-byte bulk OUT is not a CBW", cbw.len()));
            return Err(DeviceError::Stall);
        }
        if self.fault == RockchipFault::DeadUsbplug {
            return Err(DeviceError::NoAnswer);
        }
        let mut tag = [cbw[4], cbw[5], cbw[6], cbw[7]];
        let want = u32::from_le_bytes([cbw[8], cbw[9], cbw[10], cbw[11]]) as usize;
        let opcode = cbw[15];
        let code: Vec<u8> = self.chip.code.bytes().rev().collect();
        let polls = self.commands.iter().filter(|&&c| c == 0x00).count();
        // CDB (from CBW byte 15): [0] opcode, [1] subcode, [2..6] BE32
        // LBA, [7..9] BE16 sector count.
        let lba = u64::from(u32::from_be_bytes([cbw[17], cbw[18], cbw[19], cbw[20]]));
        let count = u64::from(u16::from_be_bytes([cbw[22], cbw[23]]));
        let sectors = self.emmc.size() / SECTOR;
        let on_medium = count > 0 && lba + count <= sectors;
        let mut residue: Option<u32> = None;
        let (data, status): (Vec<u8>, u8) = match opcode {
            0x00 if self.fault == RockchipFault::NotReady && polls < NOT_READY_POLLS => (vec![], 1),
            0x00 => {
                residue = Some(if cbw[16] == 0xf7 { TUR_RESIDUE_BIG } else { TUR_RESIDUE });
                (vec![], 0)
            }
            0x01 => (b"EMMC ".to_vec(), 0),
            0x1a => {
                let mut d = (sectors.min(u64::from(u32::MAX)) as u32).to_le_bytes().to_vec();
                d.extend_from_slice(&1024u16.to_le_bytes());
                // page size 4, ECC bits 0, access time 40, manufacturer 0, CS mask 1
                d.extend_from_slice(&[4, 0, 40, 0, 1]);
                (d, 0)
            }
            0x14 if on_medium => {
                let d = self.emmc.read(lba * SECTOR, (count * SECTOR) as usize).expect("range checked");
                self.sectors_read += count;
                (d, 0)
            }
            0x14 => {
                self.refusals.push(format!("READ LBA: {count} sectors at {lba} (the eMMC has {sectors})"));
                (vec![], 1)
            }
            0x15 if count == 0 => {
                self.refusals.push("WRITE LBA of 0 sectors".into());
                (vec![], 1)
            }
            0x15 => {
                // The data phase comes next; the CSW after it.
                self.commands.push(opcode);
                self.download = Some(Download {
                    tag,
                    lba,
                    left: (count * SECTOR) as usize,
                    bytes: Vec::new(),
                    fits: on_medium,
                });
                return Ok(());
            }
            0x25 if on_medium => {
                self.emmc.erase(lba * SECTOR, count * SECTOR).expect("range checked");
                self.sectors_erased += count;
                (vec![], 0)
            }
            0x25 => {
                self.refusals.push(format!("ERASE LBA: {count} sectors at {lba} (the eMMC has {sectors})"));
                (vec![], 1)
            }
            0xff => {
                self.reset_after_csw = Some(cbw[16]);
                (vec![], 0)
            }
            0x1b => {
                let mut d = code;
                d.resize(16, 0);
                (d, 0)
            }
            // READ CAPABILITY (`rkusb_do_read_capacity`): as many bytes as
            // the CBW asks (up to 64 here), zeroed; byte 0 direct LBA, first-4M access and
            // the new vendor storage API (an eMMC); byte 1 bit 0 the new
            // IDB (CONFIG_ROCKCHIP_NEW_IDB), bits 1 and 2 switch storage
            // and LBA-write parity. USB 3 (bit 4) is not offered.
            0xaa => {
                let mut d = vec![0u8; want.min(64)];
                if let Some(b) = d.first_mut() {
                    *b = 0b1_0101;
                }
                if let Some(b) = d.get_mut(1) {
                    *b = 0b110 | u8::from(self.chip.new_idb);
                }
                (d, 0)
            }
            _ => (vec![], 1),
        };
        self.commands.push(opcode);
        let sent = data.len().min(want);
        if sent > 0 {
            self.pending_in.push_back(data[..sent].to_vec());
        }
        if self.fault == RockchipFault::BadCsw {
            tag[0] ^= 0xff;
        }
        let residue = residue.unwrap_or(want.saturating_sub(sent) as u32);
        self.push_csw(tag, residue, status);
        if self.fault == RockchipFault::LateCsw && self.commands.len() == 1 {
            self.hold_in = true;
        }
        Ok(())
    }

    fn push_csw(&mut self, tag: [u8; 4], residue: u32, status: u8) {
        let mut csw = b"USBS".to_vec();
        csw.extend_from_slice(&tag);
        csw.extend_from_slice(&residue.to_le_bytes());
        csw.push(status);
        self.pending_in.push_back(csw);
    }

    /// A bulk OUT in the data phase of a WRITE LBA (`rx_handler_dl_image`):
    /// the sectors go to the eMMC once all `count × 512` bytes are in, then
    /// the CSW.
    fn download_data(&mut self, data: &[u8]) -> Result<(), DeviceError> {
        let mut d = self.download.take().expect("a download runs");
        if data.len() > d.left {
            self.refusals.push(format!(
                "WRITE LBA at sector {}: {} bytes in a data phase that has {} left",
                d.lba,
                data.len(),
                d.left
            ));
            return Err(DeviceError::Stall);
        }
        d.bytes.extend_from_slice(data);
        d.left -= data.len();
        if d.left > 0 {
            self.download = Some(d);
            return Ok(());
        }
        let sectors = d.bytes.len() as u64 / SECTOR;
        let status = if !d.fits {
            self.refusals.push(format!(
                "WRITE LBA: {sectors} sectors at {} (the eMMC has {})",
                d.lba,
                self.emmc.size() / SECTOR
            ));
            1
        } else if self.fault == RockchipFault::WriteFails {
            self.refusals.push(format!("WRITE LBA at sector {}: failed (fault write-fails)", d.lba));
            1
        } else {
            if self.fault == RockchipFault::Corrupts {
                d.bytes[0] ^= 0x01;
            }
            self.emmc.write(d.lba * SECTOR, &d.bytes).expect("range checked");
            self.sectors_written += sectors;
            0
        };
        self.push_csw(d.tag, 0, status);
        Ok(())
    }
}

impl UsbDevice for RockchipRom {
    fn info(&self) -> Option<UsbInfo> {
        if matches!(self.state, State::Detached(_) | State::Gone | State::Payload | State::Resetting(_)) {
            return None;
        }
        Some(UsbInfo {
            vid: VID,
            pid: self.chip.pid,
            // Maskrom and Rockchip's usbplug both say 0x0200 (fact sheet §5).
            bcd_usb: 0x0200,
            bcd_device: 0x0100,
            manufacturer: None,
            product: None,
            serial: None,
            bus: 1,
            address: self.address,
            port_path: self.port_path.clone(),
            speed: Some("high".into()),
            interfaces: vec![InterfaceInfo {
                number: 0,
                class: 0xff,
                subclass: 0x06,
                protocol: 0x05,
                endpoints: vec![
                    EndpointInfo { address: 0x81, kind: EndpointKind::Bulk, max_packet_size: 512 },
                    EndpointInfo { address: 0x01, kind: EndpointKind::Bulk, max_packet_size: 512 },
                ],
            }],
        })
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<(), DeviceError> {
        match self.state {
            State::Hung => return Err(DeviceError::NoAnswer),
            State::Detached(_) | State::Gone | State::Payload | State::Resetting(_) => {
                return Err(DeviceError::Disconnected);
            }
            State::Usbplug => {
                self.refusals.push("control request to the usbplug (it is not the maskrom)".into());
                return Err(DeviceError::Stall);
            }
            State::Maskrom => {}
        }
        let index = setup.index;
        if setup.request_type != 0x40
            || setup.request != 0x0c
            || setup.value != 0
            || !matches!(index, 0x471 | 0x472)
        {
            return Err(self.refuse(format!("unknown control request {setup:?}")));
        }
        if data.is_empty() || data.len() > MAX_TRANSFER {
            return Err(self.refuse(format!("0x{index:x}: {}-byte transfer", data.len())));
        }
        if index == 0x472 && !self.received.iter().any(|r| r.index == 0x471) {
            return Err(self.refuse("0x472 before any 0x471 stage: DRAM is not initialised".into()));
        }
        if index == 0x472 && self.fault == RockchipFault::RejectUsbplug {
            return Err(self.refuse("0x472: refused (fault reject-usbplug)".into()));
        }
        let mut data = data.to_vec();
        self.transfers_seen += 1;
        if self.fault == RockchipFault::Unplug && self.transfers_seen == 2 {
            self.state = State::Gone;
            return Err(DeviceError::Disconnected);
        }
        if self.fault == RockchipFault::Corrupt && self.transfers_seen == 1 {
            data[0] ^= 0x01;
        }
        let (cur_index, mut bytes, transfers) = self.current.take().unwrap_or((index, Vec::new(), 0));
        if cur_index != index {
            return Err(self.refuse(format!(
                "0x{index:x} transfer in the middle of an unfinished 0x{cur_index:x} stage"
            )));
        }
        let transfers = transfers + 1;
        if data.len() == MAX_TRANSFER {
            bytes.extend_from_slice(&data);
            self.current = Some((index, bytes, transfers));
            return Ok(());
        }
        // A short transfer ends the image. A 1-byte one is only the
        // terminator: a single 00 after a whole number of 4096-byte chunks.
        if data.len() == 1 {
            if bytes.is_empty() || !bytes.len().is_multiple_of(MAX_TRANSFER) || data[0] != 0 {
                return Err(self.refuse(format!(
                    "0x{index:x}: 1-byte final transfer {:02x} after {} bytes is not the terminator (4095 rule broken?)",
                    data[0],
                    bytes.len()
                )));
            }
            self.finish_stage(index, bytes, transfers)?;
            if self.fault == RockchipFault::StallTrailer {
                return Err(DeviceError::Stall);
            }
            return Ok(());
        }
        bytes.extend_from_slice(&data);
        self.finish_stage(index, bytes, transfers)
    }

    fn control_in(&mut self, setup: ControlSetup, _len: u16) -> Result<Vec<u8>, DeviceError> {
        // The maskrom phase uses no IN requests (fact sheet §1.1).
        self.refusals.push(format!("control IN {setup:?}"));
        Err(DeviceError::Stall)
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8]) -> Result<(), DeviceError> {
        match self.state {
            State::Usbplug if ep == 0x01 => self.rockusb_command(data),
            State::Hung => Err(DeviceError::NoAnswer),
            State::Detached(_) | State::Gone | State::Payload | State::Resetting(_) => {
                Err(DeviceError::Disconnected)
            }
            // Bulk commands fail in pure maskrom (fact sheet §6).
            _ => Err(DeviceError::Stall),
        }
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize) -> Result<Vec<u8>, DeviceError> {
        match self.state {
            State::Usbplug if ep == 0x81 => {
                if std::mem::take(&mut self.hold_in) {
                    return Err(DeviceError::NoAnswer);
                }
                // Up to `max_len` of the oldest answer, from where the last
                // read left it: a 4 MiB READ LBA answer read 64 KiB at a
                // time is not copied again at every read (the device's DMA
                // walks its buffer).
                let front = self.pending_in.front().ok_or(DeviceError::NoAnswer)?;
                let end = (self.in_at + max_len).min(front.len());
                let d = if self.in_at == 0 && end == front.len() {
                    // All of it at once: handed over as it is.
                    self.pending_in.pop_front().expect("a front answer")
                } else {
                    let d = front[self.in_at..end].to_vec();
                    if end == front.len() {
                        self.pending_in.pop_front();
                        self.in_at = 0;
                    } else {
                        self.in_at = end;
                    }
                    d
                };
                // `compl_do_reset` runs once RESET's CSW has gone out.
                if self.pending_in.is_empty()
                    && let Some(flag) = self.reset_after_csw.take()
                {
                    self.resets.push(flag);
                    self.state = if flag == 3 { State::Resetting(DETACH_TICKS) } else { State::Gone };
                }
                Ok(d)
            }
            State::Hung => Err(DeviceError::NoAnswer),
            State::Detached(_) | State::Gone | State::Payload | State::Resetting(_) => {
                Err(DeviceError::Disconnected)
            }
            _ => Err(DeviceError::Stall),
        }
    }

    fn tick(&mut self) {
        if let State::Resetting(n) = self.state {
            if n <= 1 {
                self.state = State::Maskrom;
                self.address = self.address.wrapping_add(1).max(1);
                self.current = None;
            } else {
                self.state = State::Resetting(n - 1);
            }
        }
        if let State::Detached(n) = self.state {
            if n <= 1 {
                self.state = State::Usbplug;
                self.address = self.address.wrapping_add(1).max(1);
            } else {
                self.state = State::Detached(n - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usb::SimUsbBus;
    use racklet_link::{LinkError, UsbBus, UsbLink};
    use std::time::Duration;

    const T: Duration = Duration::from_millis(50);

    fn out(idx: u16) -> ControlSetup {
        ControlSetup { request_type: 0x40, request: 0x0c, value: 0, index: idx }
    }

    #[test]
    fn primitives_match_the_sheet() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29b1);
        assert_eq!(crc16_ccitt_false(b""), 0xffff);
        let mut z = [0u8; 8];
        rc4_xor(&mut z);
        assert_eq!(z, [0x6e, 0x26, 0x2c, 0xf3, 0xbe, 0x9f, 0x9d, 0x51]);
    }

    #[test]
    fn accepts_the_worked_example_and_stalls_a_flipped_bit() {
        let mut rom = RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", RockchipFault::None);
        rom.control_out(out(0x471), &[0x00, 0x01, 0x0d, 0x2e]).unwrap();
        assert_eq!(rom.received[0].body, vec![0, 1]);
        assert_eq!(rom.control_out(out(0x471), &[0x00, 0x01, 0x0d, 0x2f]), Err(DeviceError::Stall));
        assert!(rom.refusals[0].contains("CRC mismatch"), "{:?}", rom.refusals);
    }

    #[test]
    fn rc4_chip_decrypts_and_checks_the_tag() {
        // Worked example: 00 01 RC4'd is 6e 27, CRC 61af. Not an RK33 blob: the chip hangs.
        let mut rom = RockchipRom::new(chip_model("rk3399").unwrap(), "1-1", RockchipFault::None);
        rom.control_out(out(0x471), &[0x6e, 0x27, 0x61, 0xaf]).unwrap();
        assert_eq!(rom.received[0].body, vec![0, 1]);
        assert_eq!(rom.control_out(out(0x471), &[0, 0xe1, 0xf0]), Err(DeviceError::NoAnswer));
        assert!(!rom.verdict().started());
    }

    #[test]
    fn one_byte_final_transfer_must_be_the_terminator() {
        let mut rom = RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", RockchipFault::None);
        rom.control_out(out(0x471), &[0u8; 4096]).unwrap();
        assert_eq!(rom.control_out(out(0x471), &[1]), Err(DeviceError::Stall));
        // 472 before any accepted 471.
        assert_eq!(rom.control_out(out(0x472), &[0, 0xe1, 0xf0]), Err(DeviceError::Stall));
    }

    #[test]
    fn a_0x472_payload_without_rockusb_runs_and_leaves_the_bus() {
        let bus = SimUsbBus::new();
        let rom = bus.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "3-2", RockchipFault::None));
        let first = bus.devices().unwrap().remove(0);
        let mut link = bus.open(&first).unwrap();
        link.control_out(out(0x471), &[0x00, 0x01, 0x0d, 0x2e], T).unwrap();
        link.control_out(out(0x472), &[0x00, 0xe1, 0xf0], T).unwrap();
        for _ in 0..2 * DETACH_TICKS {
            assert!(bus.devices().unwrap().is_empty());
        }
        let v = rom.lock().unwrap().verdict();
        assert!(v.started() && v.text().contains("0x472 payload started"), "{v:?}");
        assert!(is_rockusb_loader(&[1, 9, 4, 0, 0, 2, 0xff, 6, 5, 0]));
        assert!(!is_rockusb_loader(&[9, 4, 0, 0, 2, 0xff, 6, 6]));
    }

    #[test]
    fn an_empty_stage_hangs_the_rom() {
        let mut rom = RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", RockchipFault::None);
        rom.control_out(out(0x471), &[0xff, 0xff]).unwrap();
        assert_eq!(rom.control_out(out(0x471), &[0x00, 0x01, 0x0d, 0x2e]), Err(DeviceError::NoAnswer));
        let v = rom.verdict();
        assert!(!v.started() && v.text().contains("empty stage"), "{v:?}");
    }

    #[test]
    fn a_stalled_trailer_still_ends_the_stage() {
        let mut rom = RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", RockchipFault::StallTrailer);
        let mut image = vec![0u8; 4094];
        let c = crc16_ccitt_false(&image);
        image.extend_from_slice(&c.to_be_bytes());
        rom.control_out(out(0x471), &image).unwrap();
        assert_eq!(rom.control_out(out(0x471), &[0]), Err(DeviceError::Stall));
        assert_eq!(rom.received.len(), 1);
        assert!(rom.verdict().started(), "{:?}", rom.verdict());
    }

    #[test]
    fn the_registry_attaches_every_chip_with_its_faults() {
        for soc in SOCS {
            let bus = SimUsbBus::new();
            let mut rom =
                crate::models::attach(soc, &Scenario::at("2-3"), &bus, &SimSerialBus::new()).unwrap();
            let d = racklet_link::UsbBus::devices(&bus).unwrap();
            assert_eq!((d.len(), d[0].vid, d[0].port_path.as_str()), (1, VID, "2-3"), "{soc}");
            assert_eq!(d[0].pid, chip_model(soc).unwrap().pid);
            // Nothing sent: not started.
            assert!(!rom.verdict().started());
        }
        let bad = Scenario { fault: Some("gremlins".into()), ..Scenario::at("1-1") };
        let e = crate::models::attach("rk3568", &bad, &SimUsbBus::new(), &SimSerialBus::new()).err().unwrap();
        assert!(e.to_string().contains("unknown fault 'gremlins'"), "{e}");
        assert!(matches!(
            crate::models::attach("rk9999", &Scenario::at("1-1"), &SimUsbBus::new(), &SimSerialBus::new()),
            Err(SimError::UnknownSoc { .. })
        ));
        assert_eq!("bad-csw".parse::<RockchipFault>().unwrap(), RockchipFault::BadCsw);
    }

    #[test]
    fn usbplug_comes_back_and_speaks_rockusb() {
        let bus = SimUsbBus::new();
        let rom = bus.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "3-2", RockchipFault::None));
        let first = bus.devices().unwrap().remove(0);
        let mut link = bus.open(&first).unwrap();
        link.control_out(out(0x471), &[0x00, 0x01, 0x0d, 0x2e], T).unwrap();
        let mut plug = vec![0x09, 0x04, 0x00, 0x00, 0x02, 0xff, 0x06, 0x05, 0x00];
        plug.extend_from_slice(&crc16_ccitt_false(&plug).to_be_bytes());
        link.control_out(out(0x472), &plug, T).unwrap();
        assert!(matches!(link.control_out(out(0x472), &[0], T), Err(LinkError::Disconnected { .. })));
        let mut again = bus.devices().unwrap();
        for _ in 0..DETACH_TICKS {
            again = bus.devices().unwrap();
        }
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].port_path, "3-2");
        assert_ne!(again[0].address, first.address);
        let mut plug = bus.open(&again[0]).unwrap();
        let mut cbw = [0u8; 31];
        cbw[..4].copy_from_slice(b"USBC");
        cbw[4..8].copy_from_slice(&[1, 2, 3, 4]);
        cbw[8] = 16;
        cbw[12] = 0x80;
        cbw[14] = 6;
        cbw[15] = 0x1b;
        plug.bulk_out(1, &cbw, T).unwrap();
        assert_eq!(&plug.bulk_in(0x81, 512, T).unwrap()[..4], b"8653");
        let csw = plug.bulk_in(0x81, 512, T).unwrap();
        assert_eq!(csw, [b'U', b'S', b'B', b'S', 1, 2, 3, 4, 0, 0, 0, 0, 0]);
        let rom = rom.lock().unwrap();
        let v = rom.verdict();
        assert!(v.started() && v.text().contains("usbplug started"), "{v:?}");
    }

    /// A CBW as the fact sheet lays it out (§3.2): LE data length, flags,
    /// CDB length 10, opcode, subcode, BE32 LBA, BE16 count.
    fn lba_cbw(tag: u8, opcode: u8, sub: u8, lba: u32, count: u16, data_len: u32, dir_in: bool) -> [u8; 31] {
        let mut c = [0u8; 31];
        c[..4].copy_from_slice(b"USBC");
        c[4] = tag;
        c[8..12].copy_from_slice(&data_len.to_le_bytes());
        c[12] = if dir_in { 0x80 } else { 0 };
        c[14] = 10;
        c[15] = opcode;
        c[16] = sub;
        c[17..21].copy_from_slice(&lba.to_be_bytes());
        c[22..24].copy_from_slice(&count.to_be_bytes());
        c
    }

    fn csw_status(link: &mut dyn UsbLink, tag: u8) -> (u32, u8) {
        let csw = link.bulk_in(0x81, 512, T).unwrap();
        assert_eq!((csw.len(), &csw[..4], csw[4]), (13, &b"USBS"[..], tag), "{csw:02x?}");
        (u32::from_le_bytes([csw[8], csw[9], csw[10], csw[11]]), csw[12])
    }

    #[test]
    fn the_usbplug_reads_writes_and_erases_its_emmc_as_f_rockusb_does() {
        let bus = SimUsbBus::new();
        let rom =
            bus.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "1-4", RockchipFault::AlreadyLoader));
        let dev = bus.devices().unwrap().remove(0);
        let mut l = bus.open(&dev).unwrap();
        // TEST UNIT READY: the fork's transfer-size hint in the residue.
        l.bulk_out(1, &lba_cbw(1, 0x00, 0, 0, 0, 0, true), T).unwrap();
        assert_eq!(csw_status(&mut *l, 1), (0x0600_0000, 0));
        // ... the big-buffer one when asked with subcode 0xF7.
        l.bulk_out(1, &lba_cbw(1, 0x00, 0xf7, 0, 0, 0, true), T).unwrap();
        assert_eq!(csw_status(&mut *l, 1), (0x0a00_0000, 0));
        // READ FLASH INFO: 8 GiB in 512-byte sectors, block 1024, page 4.
        let mut c = lba_cbw(2, 0x1a, 0, 0, 0, 11, true);
        c[14] = 6;
        l.bulk_out(1, &c, T).unwrap();
        let info = l.bulk_in(0x81, 512, T).unwrap();
        assert_eq!(info, [0, 0, 0, 0x01, 0x00, 0x04, 4, 0, 40, 0, 1], "16,777,216 sectors");
        assert_eq!(csw_status(&mut *l, 2), (0, 0));
        // WRITE LBA: 3 sectors at LBA 0x40, the data phase in two bulk OUTs.
        let data: Vec<u8> = (0..3 * 512).map(|i| (i % 251) as u8).collect();
        l.bulk_out(1, &lba_cbw(3, 0x15, 0, 0x40, 3, 3 * 512, false), T).unwrap();
        l.bulk_out(1, &data[..1000], T).unwrap();
        l.bulk_out(1, &data[1000..], T).unwrap();
        assert_eq!(csw_status(&mut *l, 3), (0, 0));
        assert_eq!(rom.lock().unwrap().emmc().read(0x40 * 512, 3 * 512).unwrap(), data);
        // READ LBA gives them back.
        l.bulk_out(1, &lba_cbw(4, 0x14, 0, 0x41, 2, 2 * 512, true), T).unwrap();
        assert_eq!(l.bulk_in(0x81, 2 * 512, T).unwrap(), data[512..]);
        assert_eq!(csw_status(&mut *l, 4), (0, 0));
        // ERASE LBA: the sector reads as erased eMMC (zeros).
        l.bulk_out(1, &lba_cbw(5, 0x25, 0, 0x41, 1, 0, false), T).unwrap();
        assert_eq!(csw_status(&mut *l, 5), (0, 0));
        assert_eq!(rom.lock().unwrap().emmc().read(0x41 * 512, 512).unwrap(), vec![0; 512]);
        // Past the end, or no sectors: CSW status 1, nothing touched.
        let last = (EMMC_SIZE / 512) as u32;
        l.bulk_out(1, &lba_cbw(6, 0x14, 0, last, 1, 512, true), T).unwrap();
        assert_eq!(csw_status(&mut *l, 6).1, 1);
        l.bulk_out(1, &lba_cbw(7, 0x25, 0, last - 1, 2, 0, false), T).unwrap();
        assert_eq!(csw_status(&mut *l, 7).1, 1);
        l.bulk_out(1, &lba_cbw(8, 0x15, 0, 0, 0, 0, false), T).unwrap();
        assert_eq!(csw_status(&mut *l, 8).1, 1);
        // RESET with flag 3 (maskrom): the CSW, then off the bus and back as the maskrom.
        l.bulk_out(1, &lba_cbw(9, 0xff, 3, 0, 0, 0, false), T).unwrap();
        assert_eq!(csw_status(&mut *l, 9), (0, 0));
        assert!(bus.devices().unwrap().is_empty());
        let mut back = Vec::new();
        for _ in 0..DETACH_TICKS {
            back = bus.devices().unwrap();
        }
        assert_eq!(back.len(), 1);
        let mut m = bus.open(&back[0]).unwrap();
        m.control_out(out(0x471), &[0x00, 0x01, 0x0d, 0x2e], T).unwrap();
        let rom = rom.lock().unwrap();
        assert_eq!(rom.resets, [3]);
        assert_eq!((rom.sectors_written, rom.sectors_read, rom.sectors_erased), (3, 2, 1));
        assert_eq!(rom.refusals.len(), 3, "{:?}", rom.refusals);
    }

    #[test]
    fn the_emmc_is_sparse_and_can_live_in_a_file() {
        let rom = RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", RockchipFault::None);
        assert_eq!(rom.emmc.size(), EMMC_SIZE);
        assert_eq!(rom.emmc.resident(), 0);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("emmc.img");
        let scenario = Scenario { storage: Some(p.clone()), ..Scenario::at("1-1") };
        let mut rom = RockchipRom::for_soc("rk3568", &scenario).unwrap();
        rom.emmc().write(512, b"EFI PART").unwrap();
        let rom = RockchipRom::for_soc("rk3568", &scenario).unwrap();
        assert_eq!(rom.emmc.read(512, 8).unwrap(), b"EFI PART");
    }

    #[test]
    fn a_write_lba_left_short_is_not_a_finished_run() {
        let bus = SimUsbBus::new();
        let rom =
            bus.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "1-4", RockchipFault::AlreadyLoader));
        let dev = bus.devices().unwrap().remove(0);
        let mut l = bus.open(&dev).unwrap();
        l.bulk_out(1, &lba_cbw(1, 0x15, 0, 0, 2, 1024, false), T).unwrap();
        l.bulk_out(1, &[0u8; 512], T).unwrap();
        let v = rom.lock().unwrap().verdict();
        assert!(!v.started() && v.text().contains("left 512 bytes short"), "{v:?}");
    }
}
