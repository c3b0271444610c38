//! Virtual fastboot boot ROMs: SpacemiT K1 and T-Head TH1520.
//!
//! Written from `shared/protocols/fastboot.md`, not from the client crate.
//! One device model, [`FastbootDevice`], walks through the stages of a
//! board (K1: ROM, FSBL, vendor U-Boot; TH1520: ROM, vendor U-Boot). It is
//! event driven: a host packet arrives ([`FastbootDevice::host_packet`]),
//! the host asks for the next answer ([`FastbootDevice::next_response`]).
//! The same model is served in-process as a [`UsbDevice`] and over TCP
//! ([`serve_tcp_connection`]: `FB01` handshake, u64 big-endian frames).
//!
//! What each ROM does here (sheet §3.3, §4.3, §4.5, §7):
//! - K1 ROM (361c:1001, serial `dfu-device`): answers `getvar:version-brom`
//!   with `1.0`, every other variable with FAIL; every response is
//!   NUL-terminated text followed by garbage (256 bytes in all by default,
//!   or 64, or the text alone: [`ReplyStyle`]), sent in packets of the
//!   link's speed with USB's short-packet rule; `download`
//!   then `continue` runs the FSBL (this model also checks both `AIHD`
//!   magics, which the real ROM is expected to need), then the board
//!   re-enumerates with the same VID:PID as the FSBL.
//! - K1 FSBL: `download` + `continue` of a FIT (FDT magic checked, as the
//!   SPL checks the FIT), then vendor U-Boot re-enumerates.
//! - TH1520 ROM (2345:7654, no serial): accepts `flash:<any name>` with
//!   OKAY but loads only `ram`; `reboot` (and `continue`, uncertain) jumps
//!   to it; vendor U-Boot comes back as 1234:8888.
//! - Vendor U-Boot (both): `getvar` of the usual variables (version 0.4,
//!   max-download-size 0x10000000), `download`, `flash`/`erase` of any
//!   partition, `oem` (FAIL "unrecognized command" but for the few the
//!   vendor has), `reboot`. `getvar:all` FAILs "Variable not implemented"
//!   as the vendor `fb_getvar.c` (2022.10 and older: no `all`) does;
//!   [`FastbootDevice::with_getvar_all`] makes it upstream U-Boot's, one
//!   `INFO<name>: <value>` per variable, then OKAY.
//! - K1 vendor U-Boot booted from SPI NOR ([`Boot::Nor`], `sim --medium
//!   spi-nor` or `spi-nor+nvme`): SpacemiT's `flash()`/`erase()` with the
//!   sticky `mtd` flag, the NOR of [`crate::uboot_mtd`] and an NVMe behind
//!   it; `mtd-size`, `blk-size` and `partition-size` as `fb_getvar.c`
//!   answers them in NOR boot mode.
//!
//! The chip facts (USB identities, the ROMs' variables and size limits) are
//! this model's own, in [`Chip`], [`K1`] and [`TH1520`], each cited.
//! Whether a run succeeded is the board's own [`Verdict`]: every image the
//! user meant it to run was started ([`FastbootDevice::verdict`], with the
//! number of images from [`Scenario::next_stages`]).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_link::usb::EndpointKind;
use racklet_link::{ControlSetup, EndpointInfo, InterfaceInfo, UsbInfo};

use crate::models::{Model, Scenario, SimError};
use crate::rom::{Faults, UnknownFault, Verdict, VirtualRom, parse_fault};
use crate::serial::SimSerialBus;
use crate::usb::{DeviceError, SimUsbBus, UsbDevice};

/// Which SoC's ROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Soc {
    K1,
    Th1520,
}

impl Soc {
    /// The SoC the board table calls `name`.
    pub fn from_name(name: &str) -> Option<Soc> {
        match name {
            "k1" => Some(Soc::K1),
            "th1520" => Some(Soc::Th1520),
            _ => None,
        }
    }

    /// This model's facts of the SoC.
    pub fn chip(self) -> &'static Chip {
        match self {
            Soc::K1 => &K1,
            Soc::Th1520 => &TH1520,
        }
    }
}

/// How one stage of the board shows itself on USB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub vid: u16,
    pub pid: u16,
    pub manufacturer: &'static str,
    pub product: &'static str,
    pub serial: Option<&'static str>,
    pub bcd_device: u16,
}

/// A fastboot SoC as this virtual board models it.
#[derive(Debug)]
pub struct Chip {
    /// The boot ROM's download mode.
    pub rom: Identity,
    /// K1 only: the FSBL (vendor U-Boot SPL in SRAM) with its fastboot.
    pub fsbl: Option<Identity>,
    /// Vendor U-Boot's fastboot.
    pub uboot: Identity,
    /// What the ROM answers to `getvar`; FAIL for anything else.
    pub rom_vars: &'static [(&'static str, &'static str)],
    /// What the FSBL and vendor U-Boot answer as `product`.
    pub product: &'static str,
    /// The largest download the ROM takes.
    pub rom_download_limit: usize,
    /// How the ROM frames its answers (this model's default; the real
    /// length is unmeasured, see [`ReplyStyle`]).
    pub rom_reply: ReplyStyle,
    /// The images the board runs from USB, in order (its verdict's names).
    pub chain: &'static [&'static str],
    /// Vendor U-Boot's download buffer (`max-download-size`).
    pub uboot_download_limit: usize,
    /// The eMMC behind vendor U-Boot's fastboot: its size and partitions.
    pub emmc_size: u64,
    pub layout: &'static crate::uboot_storage::Layout,
    /// Vendor U-Boot writes `layout` as the GPT every time it starts from
    /// USB (TH1520: `run gpt_partition`), rather than only on a blank eMMC.
    pub rewrites_gpt: bool,
}

/// SpacemiT K1 (sheet §3).
pub static K1: Chip = Chip {
    // §3.1: 361c:1001 with serial `dfu-device`; lsusb "DFU USB download gadget".
    rom: Identity {
        vid: 0x361c,
        pid: 0x1001,
        manufacturer: "SpacemiT",
        product: "DFU USB download gadget",
        serial: Some("dfu-device"),
        bcd_device: 0x0100,
    },
    // §3.1: the SPL and U-Boot keep 361c:1001 (k1_defconfig
    // CONFIG_USB_GADGET_VENDOR_NUM/PRODUCT_NUM); no serial in USB boot mode.
    fsbl: Some(Identity {
        vid: 0x361c,
        pid: 0x1001,
        manufacturer: "SpacemiT",
        product: "U-Boot USB download gadget",
        serial: None,
        bcd_device: 0x0100,
    }),
    uboot: Identity {
        vid: 0x361c,
        pid: 0x1001,
        manufacturer: "SpacemiT",
        product: "U-Boot USB download gadget",
        serial: None,
        bcd_device: 0x0100,
    },
    // §3.3: `getvar:version-brom` answers 1.0. boardswarm, which Collabora
    // ran against this ROM (PRs #182/#187), requires `version` and a
    // 0x-prefixed `max-download-size` before it stages anything (review
    // F7), so the ROM answers both; that `version` is U-Boot's 0.4 is this
    // model's assumption (the harder case for telling the ROM apart).
    rom_vars: &[("version-brom", "1.0"), ("version", "0.4"), ("max-download-size", "0x40000")],
    product: "k1-x",
    // §3.3: the FSBL must fit the 256 KiB of SRAM at 0xC0800000; the ROM's
    // own cap is unknown (§8).
    rom_download_limit: 0x4_0000,
    // §1.3 and fastboot-rs 5d7c3e4: NUL-terminated text followed by
    // garbage, "despite the bytes length of the response". How long is
    // unmeasured: fastboot 28.0.2 (64-byte reads) hung on the ROM while
    // platform-tools (256-byte reads) works (review F1), so this model pads
    // to 256 by default; the other plausible framings are a choice
    // ([`FastbootDevice::with_rom_reply`]).
    rom_reply: ReplyStyle::NulPadded(256),
    // k1x-deb2 `fastboot_load.sh` stages FSBL, u-boot-opensbi.itb, then
    // uImage.itb, which U-Boot's RAM-boot environment runs (`bootm`).
    chain: &["FSBL", "u-boot.itb", "uImage.itb"],
    // Sheet §3.5 / review: the vendor U-Boot download buffer is 256 MiB.
    uboot_download_limit: 0x1000_0000,
    emmc_size: 8 << 30,
    layout: &crate::uboot_storage::K1_LAYOUT,
    rewrites_gpt: false,
};

/// T-Head TH1520 (sheet §4).
pub static TH1520: Chip = Chip {
    // §4.1: 2345:7654, "T-HEAD" / "USB download gadget", no serial, bcdDevice 2.23.
    rom: Identity {
        vid: 0x2345,
        pid: 0x7654,
        manufacturer: "T-HEAD",
        product: "USB download gadget",
        serial: None,
        bcd_device: 0x0223,
    },
    fsbl: None,
    // §4.1: light_lpi4a_defconfig VENDOR_NUM 0x1234, PRODUCT_NUM 0x8888, "U-Boot-THEAD".
    uboot: Identity {
        vid: 0x1234,
        pid: 0x8888,
        manufacturer: "U-Boot-THEAD",
        product: "USB download gadget",
        serial: None,
        bcd_device: 0x0100,
    },
    // Assumption: §4.3 says the ROM answers the stock client's pre-flight
    // getvars "well enough"; `version` is one.
    rom_vars: &[("version", "0.4")],
    product: "light-lpi4a",
    // Unknown (§8: "≥ about 1 MB works"; real images are 935–1069 KB, §4.3).
    // This model takes up to 2 MiB.
    rom_download_limit: 0x20_0000,
    rom_reply: ReplyStyle::Exact,
    chain: &["ram image"],
    // Review: the TH1520 vendor U-Boot's default fastboot buffer is 112 MiB.
    uboot_download_limit: 112 << 20,
    emmc_size: 8 << 30,
    layout: &crate::uboot_storage::TH1520_LAYOUT,
    // light.c: in USB boot mode `env default -a -f; env save; run gpt_partition`.
    rewrites_gpt: true,
};

/// How a ROM frames an answer on the wire. Vendor U-Boot always sends the
/// text's own length (`fastboot_tx_write_str`); for the K1 ROM three framings
/// are plausible (review F1), and which one a real ROM uses is unmeasured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStyle {
    /// Exactly the text (strlen bytes).
    Exact,
    /// The text, a NUL, then garbage up to this many bytes.
    NulPadded(usize),
}

/// The stage the board is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The boot ROM's download mode.
    Rom,
    /// K1 only: the FSBL (U-Boot SPL) in SRAM, with fastboot.
    Fsbl,
    /// Vendor U-Boot's fastboot.
    UBoot,
}

impl Stage {
    /// Short name, used in file names and logs.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Rom => "rom",
            Stage::Fsbl => "fsbl",
            Stage::UBoot => "uboot",
        }
    }
}

/// Which storage a K1 vendor U-Boot boots from: the board's boot-select
/// pins, which nothing on the wire tells (`get_boot_pin_select()` in
/// eshattow/spacemit-com-uboot-2022.10 `fb_command.c`), so the virtual
/// board is told (`sim --medium`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Boot {
    /// eMMC (or SD): `fastboot_mmc_flash_write`, the eMMC's GPT.
    #[default]
    Emmc,
    /// An 8 MiB SPI NOR ([`crate::uboot_mtd`]), with an NVMe SSD behind it
    /// (`CONFIG_FASTBOOT_SUPPORT_BLOCK_DEV_NAME` "nvme") or none.
    Nor { nvme: bool },
}

impl Boot {
    /// The boot medium by the name `--medium` takes: `emmc`, `spi-nor`
    /// (no block device), `spi-nor+nvme`.
    pub fn from_medium(name: Option<&str>) -> Option<Boot> {
        Some(match name {
            None | Some("emmc") => Boot::Emmc,
            Some("spi-nor") => Boot::Nor { nvme: false },
            Some("spi-nor+nvme") => Boot::Nor { nvme: true },
            Some(_) => return None,
        })
    }
}

/// Misbehaviour to inject, chosen by name (`--fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// FAIL to every `download`.
    FailDownload,
    /// No answer to `download` (the host times out).
    Silent,
    /// An answer with no known status to the first command.
    BadStatus,
    /// A 300-byte answer without NUL to the first command.
    LongResponse,
    /// `DATA` with one byte less than announced.
    DataSize,
    /// The device disappears when the data phase starts.
    Unplug,
    /// FAIL to `continue`, `reboot` and `flash:ram`.
    FailBoot,
    /// After `continue`/`reboot`, the next stage never appears.
    NoReenumerate,
    /// Vendor U-Boot starts its fastboot [`SLOW_UBOOT`] after the ROM's
    /// stage started it, as the TH1520's does in USB boot mode after
    /// `env default -a -f`, `env_save()` and `run gpt_partition` on a slow
    /// eMMC (revyos/thead-u-boot `light.c:2449-2456`).
    SlowUboot,
}

/// The TH1520 eMMC's boot0 hardware partition (`uboot`): 4 MiB.
const BOOT0_SIZE: u64 = 4 << 20;

/// How late vendor U-Boot comes up with [`Fault::SlowUboot`]: past the
/// 10 s a host would wait for a re-enumeration by default.
pub const SLOW_UBOOT: Duration = Duration::from_secs(12);

impl Faults for Fault {
    const ALL: &'static [(&'static str, Fault, &'static str)] = &[
        ("fail-download", Fault::FailDownload, "answer FAIL to every download"),
        ("silent", Fault::Silent, "never answer a download (the host times out)"),
        ("bad-status", Fault::BadStatus, "answer the first command with an unknown status"),
        ("long-response", Fault::LongResponse, "answer the first command with 300 bytes and no NUL"),
        ("data-size", Fault::DataSize, "answer DATA with one byte less than announced"),
        ("unplug", Fault::Unplug, "disappear when the data phase starts"),
        ("fail-boot", Fault::FailBoot, "answer FAIL to continue, reboot and flash:ram"),
        ("no-reenumerate", Fault::NoReenumerate, "never come back after continue/reboot"),
        (
            "slow-uboot",
            Fault::SlowUboot,
            "vendor U-Boot starts fastboot 12 s after the ROM started it (eMMC env and GPT rewrite)",
        ),
    ];
}

impl std::str::FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(name: &str) -> Result<Fault, UnknownFault> {
        parse_fault(name, "fastboot ROMs")
    }
}

/// One completed download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub stage: Stage,
    pub bytes: Bytes,
}

/// A download's bytes, shared between the device's record of it and its
/// download buffer (a 112 MiB image is not copied to be kept).
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(Arc<Vec<u8>>);

impl std::ops::Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl PartialEq<Vec<u8>> for Bytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        *self.0 == *other
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

/// An image the board ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The stage that started it.
    pub by: Stage,
    /// What it is ("FSBL", "u-boot.itb", "ram image").
    pub what: String,
    pub len: usize,
    /// CRC-32 (zlib) of the image.
    pub crc32: u32,
}

/// What happens once the pending answers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// Re-enumerate as this stage.
    To(Stage),
    /// Gone for good (the OS boots).
    Away,
}

/// How many bus scans or transfers a re-enumeration takes (the host polls
/// every 20 ms: about 100 ms, K1 needs "under 1 s").
const REENUM_TICKS: u32 = 5;
/// The longest command the ROMs' 64-byte buffers hold.
const COMMAND_MAX: usize = 64;
/// Bulk endpoints of the fastboot interface.
const EP_OUT: u8 = 0x01;
const EP_IN: u8 = 0x81;

fn crc32(b: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b)
}

/// A virtual fastboot board.
pub struct FastbootDevice {
    soc: Soc,
    chip: &'static Chip,
    /// Images the user sends after the ROM's (see [`Scenario::next_stages`]).
    next_stages: usize,
    stage: Stage,
    fault: Option<Fault>,
    fault_used: bool,
    port_path: String,
    address: u8,
    present: bool,
    detach_ticks: u32,
    next: Option<Stage>,
    expecting: Option<(usize, Vec<u8>)>,
    last_download: Option<Bytes>,
    ram: Option<Bytes>,
    out: VecDeque<Vec<u8>>,
    /// What is left of the answer being sent, packet by packet.
    tx: VecDeque<u8>,
    rom_reply: ReplyStyle,
    /// wMaxPacketSize of the bulk endpoints: 512 at high speed, 64 at full
    /// speed (the K1 ROM on blank media: "Force usb FS mode!", review F1).
    max_packet: usize,
    leave: Option<Leave>,
    /// When the next stage may appear (wall clock), if later than ticks say.
    back_at: Option<std::time::Instant>,
    /// The eMMC's user area behind vendor U-Boot (made blank in memory on
    /// first use unless [`FastbootDevice::with_storage`] gave one).
    emmc: Option<crate::storage::Medium>,
    /// TH1520: the eMMC's boot0 area, flashed by the name `uboot`.
    boot0: Option<crate::storage::Medium>,
    /// K1: what vendor U-Boot booted from.
    boot: Boot,
    /// K1 NOR boot: the SPI NOR and the NVMe SSD behind it.
    nor: Option<crate::storage::Medium>,
    nvme: Option<crate::storage::Medium>,
    /// K1 NOR boot: the `mtdparts` environment variable (`spi-dev:…`) that
    /// `flash mtd` set; kept in RAM here (the vendor also saves it with
    /// its environment).
    mtdparts: Option<String>,
    /// The sticky `mtd_flash` flags of `fb_command.c`'s `flash()` and
    /// `erase()` (each its own static): set by `mtd…`, cleared by `gpt…`.
    mtd_flash: bool,
    mtd_erase: bool,
    uboot_download_limit: usize,
    /// `getvar:all` answered as upstream U-Boot does (not the vendors').
    getvar_all: bool,
    /// The user's run writes storage: the verdict needs a write, and no
    /// refused one.
    storage_run: bool,
    /// The user's run only asks vendor U-Boot (`partitions`, `oem`): the
    /// verdict needs an answer from U-Boot, and no write.
    session_run: bool,
    /// Every flash or erase vendor U-Boot refused, with its FAIL text.
    pub refused_writes: Vec<String>,
    /// Every command received, with the stage that got it.
    pub log: Vec<(Stage, String)>,
    /// Every completed download.
    pub downloads: Vec<Received>,
    /// Every image the board ran.
    pub started: Vec<Started>,
    /// Every `flash:` accepted: stage, partition, bytes.
    pub flashed: Vec<(Stage, String, usize)>,
    /// The board's UART console, when asked for ([`crate::console`]).
    console: Option<crate::console::Uart>,
}

impl FastbootDevice {
    /// A board in its boot ROM, plugged in at `port_path`.
    pub fn new(soc: Soc, port_path: &str) -> Self {
        FastbootDevice {
            soc,
            chip: soc.chip(),
            next_stages: 0,
            stage: Stage::Rom,
            fault: None,
            fault_used: false,
            port_path: port_path.into(),
            address: 7,
            present: true,
            detach_ticks: 0,
            next: None,
            expecting: None,
            last_download: None,
            ram: None,
            out: VecDeque::new(),
            tx: VecDeque::new(),
            rom_reply: soc.chip().rom_reply,
            max_packet: 512,
            leave: None,
            back_at: None,
            emmc: None,
            boot0: None,
            boot: Boot::Emmc,
            nor: None,
            nvme: None,
            mtdparts: None,
            mtd_flash: false,
            mtd_erase: false,
            uboot_download_limit: soc.chip().uboot_download_limit,
            getvar_all: false,
            storage_run: false,
            session_run: false,
            refused_writes: Vec::new(),
            log: Vec::new(),
            downloads: Vec::new(),
            started: Vec::new(),
            flashed: Vec::new(),
            console: None,
        }
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

    /// Injects a fault.
    pub fn with_fault(mut self, fault: Option<Fault>) -> Self {
        self.fault = fault;
        self
    }

    /// How many images the user sends after the ROM's (K1 `--then`: 1):
    /// the verdict then needs those started too.
    pub fn with_next_stages(mut self, n: usize) -> Self {
        self.next_stages = n;
        self
    }

    /// Keeps the eMMC behind vendor U-Boot in `path` (`--sim-storage`), so
    /// a later run, or the user, sees what was written.
    ///
    /// A K1 booting from NOR ([`FastbootDevice::with_boot`], give it
    /// first) keeps the NOR in `path` and its NVMe SSD in `path` + `.nvme`.
    pub fn with_storage(mut self, path: &std::path::Path) -> Result<Self, crate::storage::MediumFileError> {
        use crate::storage::Medium;
        match self.boot {
            Boot::Emmc => self.emmc = Some(Medium::in_file(path, self.chip.emmc_size)?),
            Boot::Nor { nvme } => {
                self.nor =
                    Some(Medium::in_file_erased(path, crate::uboot_mtd::NOR_SIZE, crate::uboot_mtd::ERASED)?);
                if nvme {
                    let mut p = path.as_os_str().to_owned();
                    p.push(".nvme");
                    self.nvme = Some(Medium::in_file(std::path::Path::new(&p), self.chip.emmc_size)?);
                }
            }
        }
        Ok(self)
    }

    /// What a K1 board boots from (its boot-select pins): eMMC, or SPI NOR
    /// with or without an NVMe SSD. Media not given a file are blank, in
    /// memory (the NOR erased, 0xFF).
    pub fn with_boot(mut self, boot: Boot) -> Self {
        self.boot = boot;
        if let Boot::Nor { nvme } = boot {
            self.nor =
                Some(crate::storage::Medium::in_memory(crate::uboot_mtd::NOR_SIZE, crate::uboot_mtd::ERASED));
            self.nvme = nvme.then(|| crate::storage::Medium::in_memory(self.chip.emmc_size, 0));
        }
        self
    }

    /// The SPI NOR of a K1 booting from it.
    pub fn nor(&mut self) -> Option<&mut crate::storage::Medium> {
        self.nor.as_mut()
    }

    /// The NVMe SSD behind a K1 booting from NOR.
    pub fn nvme(&mut self) -> Option<&mut crate::storage::Medium> {
        self.nvme.as_mut()
    }

    /// A board already in vendor U-Boot's fastboot (started from its own
    /// storage, or by `fastboot usb 0` at its prompt).
    pub fn in_uboot(mut self) -> Self {
        self.stage = Stage::UBoot;
        if self.boot != Boot::Emmc {
            return self;
        }
        // Not started from USB: the GPT is rewritten only when there is none.
        let layout = self.chip.layout;
        let emmc = self.emmc();
        if crate::uboot_storage::partitions(emmc).is_empty() {
            crate::uboot_storage::write_gpt(emmc, layout);
        }
        self
    }

    /// The user's run writes storage (`racklet-flash write`/`erase`): the
    /// board's verdict is about what vendor U-Boot wrote.
    pub fn for_storage(mut self) -> Self {
        self.storage_run = true;
        self
    }

    /// The user's run asks vendor U-Boot and writes nothing (`racklet-flash
    /// partitions`, `oem`).
    pub fn for_session(mut self) -> Self {
        self.session_run = true;
        self
    }

    /// Vendor U-Boot answers `getvar:all` as upstream U-Boot does
    /// (`fastboot_getvar_all`: `INFO<name>: <value>` per listed variable,
    /// then OKAY), for tests of a U-Boot newer than the vendors'.
    pub fn with_getvar_all(mut self) -> Self {
        self.getvar_all = true;
        self
    }

    /// Vendor U-Boot's download buffer (`max-download-size`), for tests.
    pub fn with_uboot_download_limit(mut self, n: usize) -> Self {
        self.uboot_download_limit = n;
        self
    }

    /// The eMMC's user area, as vendor U-Boot left it.
    pub fn emmc(&mut self) -> &mut crate::storage::Medium {
        let size = self.chip.emmc_size;
        self.emmc.get_or_insert_with(|| crate::storage::Medium::in_memory(size, 0))
    }

    /// Vendor U-Boot starts: the GPT is the vendor layout (TH1520: always,
    /// `run gpt_partition`; K1: when the eMMC has none).
    fn uboot_starts(&mut self) {
        if self.boot != Boot::Emmc {
            return;
        }
        let (layout, rewrite) = (self.chip.layout, self.chip.rewrites_gpt);
        let emmc = self.emmc();
        if rewrite || crate::uboot_storage::partitions(emmc).is_empty() {
            crate::uboot_storage::write_gpt(emmc, layout);
        }
    }

    /// Frames the ROM's answers this way instead of the chip's default.
    pub fn with_rom_reply(mut self, style: ReplyStyle) -> Self {
        self.rom_reply = style;
        self
    }

    /// Runs the link at this speed: full speed has 64-byte bulk packets.
    pub fn with_speed(mut self, speed: crate::usb::BusSpeed) -> Self {
        self.max_packet = match speed {
            crate::usb::BusSpeed::High => 512,
            crate::usb::BusSpeed::Full => 64,
        };
        self
    }

    /// The stage now.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The SoC.
    pub fn soc(&self) -> Soc {
        self.soc
    }

    /// True while the host is sending download data.
    pub fn in_data_phase(&self) -> bool {
        self.expecting.is_some()
    }

    /// The host went away in the middle of a download: the device drops
    /// the partial data and waits for a command again (a USB device sees a
    /// reset; over TCP the next client must not have its commands taken
    /// for data).
    pub fn abort_download(&mut self) {
        self.expecting = None;
    }

    /// True when a host can reach the device now or after it re-enumerates.
    pub fn reachable(&self) -> bool {
        self.present || self.next.is_some()
    }

    /// How the board shows itself in its stage now.
    fn identity(&self) -> Identity {
        match self.stage {
            Stage::Rom => self.chip.rom,
            Stage::Fsbl => self.chip.fsbl.unwrap_or(self.chip.uboot),
            Stage::UBoot => self.chip.uboot,
        }
    }

    /// Queues an answer, framed as the stage frames it (see [`ReplyStyle`]).
    fn reply(&mut self, status: &str, text: &str) {
        let mut b = format!("{status}{text}").into_bytes();
        if let (ReplyStyle::NulPadded(pad), Stage::Rom) = (self.rom_reply, self.stage) {
            b.push(0);
            let mut x = 0x5au8;
            while b.len() < pad {
                x = x.wrapping_mul(37).wrapping_add(11);
                b.push(x);
            }
        }
        self.out.push_back(b);
    }

    fn fail(&mut self, text: &str) {
        self.reply("FAIL", text);
    }

    fn first_fault(&mut self, f: Fault) -> bool {
        if self.fault == Some(f) && !self.fault_used {
            self.fault_used = true;
            return true;
        }
        false
    }

    fn var(&self, name: &str) -> Option<String> {
        let v = match (self.stage, name) {
            (Stage::Rom, _) => return self.chip.rom_vars.iter().find(|v| v.0 == name).map(|v| v.1.into()),
            (Stage::Fsbl | Stage::UBoot, "version") => "0.4",
            // Sheet §3.5: the vendor U-Boot download buffer is 256 MiB.
            (Stage::Fsbl, "max-download-size") => "0x10000000",
            (Stage::UBoot, "max-download-size") => {
                return Some(format!("0x{:08x}", self.uboot_download_limit));
            }
            (Stage::UBoot, "product") => self.chip.product,
            (Stage::UBoot, "version-bootloader") => "U-Boot (racklet-sim)",
            (Stage::UBoot, "serialno") => "racklet-sim",
            // SpacemiT fb_getvar.c (CONFIG_SPACEMIT_FLASH), booted from
            // eMMC/SD: a block device answers `universal`, and there is no
            // MTD device to size.
            // Booted from NOR (`getvar_mtd_size`, `getvar_blk_size`): the
            // first MTD device's size, and `universal` only when the
            // block device behind it (nvme) is there.
            (Stage::UBoot, "blk-size") if self.soc == Soc::K1 => match self.boot {
                Boot::Nor { nvme: false } => "NULL",
                _ => "universal",
            },
            (Stage::UBoot, "mtd-size") if self.soc == Soc::K1 => match (self.boot, &self.nor) {
                (Boot::Nor { .. }, Some(nor)) => return Some(crate::uboot_mtd::size_text(nor.size())),
                _ => "NULL",
            },
            _ => return None,
        };
        Some(v.into())
    }

    fn all_vars(&self) -> Vec<(&'static str, String)> {
        ["version-brom", "version", "version-bootloader", "product", "serialno", "max-download-size"]
            .into_iter()
            .filter_map(|n| self.var(n).map(|v| (n, v)))
            .collect()
    }

    /// The largest download each stage takes: the ROM's (see [`Chip`]),
    /// U-Boot stages their 256 MiB buffer.
    fn download_limit(&self) -> usize {
        match self.stage {
            Stage::Rom => self.chip.rom_download_limit,
            Stage::Fsbl => 0x1000_0000,
            Stage::UBoot => self.uboot_download_limit,
        }
    }

    /// The partition `name` on vendor U-Boot's storage and its size, as
    /// `fastboot_mmc_get_part_info` finds it (`Err`: the FAIL text).
    fn partition(&self, name: &str) -> Result<(bool, u64), &'static str> {
        if self.soc == Soc::Th1520 && name == "uboot" {
            return Ok((true, BOOT0_SIZE));
        }
        let emmc = self.emmc.as_ref().ok_or("no such device")?;
        crate::uboot_storage::find(emmc, name).map(|p| (false, p.bytes()))
    }

    fn start(&mut self, what: &str, image: &[u8]) {
        // What runs prints on the board's UART.
        if let Some(c) = &mut self.console {
            c.runs(image);
        }
        self.started.push(Started {
            by: self.stage,
            what: what.into(),
            len: image.len(),
            crc32: crc32(image),
        });
    }

    /// A host packet arrived (a command, or a piece of download data).
    pub fn host_packet(&mut self, data: &[u8]) -> Result<(), DeviceError> {
        if let Some((total, buf)) = &mut self.expecting {
            if self.fault == Some(Fault::Unplug) {
                self.present = false;
                self.next = None;
                self.expecting = None;
                return Err(DeviceError::Disconnected);
            }
            if data.len() > *total - buf.len() {
                self.expecting = None;
                self.fail("more data than announced");
                return Ok(());
            }
            buf.extend_from_slice(data);
            if buf.len() == *total {
                let (_, bytes) = self.expecting.take().expect("in data phase");
                let bytes = Bytes(Arc::new(bytes));
                self.downloads.push(Received { stage: self.stage, bytes: bytes.clone() });
                self.last_download = Some(bytes);
                self.reply("OKAY", "");
            }
            return Ok(());
        }
        let cmd = String::from_utf8_lossy(data).into_owned();
        self.log.push((self.stage, cmd.clone()));
        if self.first_fault(Fault::BadStatus) {
            self.out.push_back(b"WHAT?".to_vec());
            return Ok(());
        }
        if self.first_fault(Fault::LongResponse) {
            self.out.push_back([b"OKAY".as_slice(), &[b'x'; 296]].concat());
            return Ok(());
        }
        if data.len() > COMMAND_MAX {
            self.fail("command too long");
            return Ok(());
        }
        self.command(&cmd);
        Ok(())
    }

    fn command(&mut self, cmd: &str) {
        let (verb, arg) = match cmd.split_once(':') {
            Some((v, a)) => (v, Some(a)),
            None => (cmd, None),
        };
        let uboot = self.stage == Stage::UBoot;
        match (verb, arg) {
            ("getvar", Some("all")) if self.stage != Stage::Rom && self.getvar_all => {
                for (n, v) in self.all_vars() {
                    self.reply("INFO", &format!("{n}: {v}"));
                }
                self.reply("OKAY", "");
            }
            // fb_getvar.c: partition-size/-type look the name up as
            // flashing does (fastboot_mmc_get_part_info) and FAIL with its text.
            ("getvar", Some(name))
                if uboot && (name.starts_with("partition-size:") || name.starts_with("partition-type:")) =>
            {
                let (var, part) = name.split_once(':').unwrap_or_default();
                // Booted from NOR, `getvar_get_part_info` asks the MTD
                // partitions only (`fastboot_mtd_get_part_info`).
                if let (Boot::Nor { .. }, "partition-size") = (self.boot, var) {
                    let size = self.nor.as_ref().map_or(0, |n| n.size());
                    return match crate::uboot_mtd::lookup(self.mtdparts.as_deref(), size, part) {
                        Ok(p) => self.reply("OKAY", &format!("0x{:016x}", p.size)),
                        Err(_) => self.fail("can not find mtd part"),
                    };
                }
                match self.partition(part) {
                    Ok((_, bytes)) if var == "partition-size" => {
                        self.reply("OKAY", &format!("0x{bytes:016x}"))
                    }
                    Ok(_) => self.reply("OKAY", "raw"),
                    Err(e) => self.fail(e),
                }
            }
            ("getvar", Some(name)) => match self.var(name) {
                Some(v) => self.reply("OKAY", &v),
                None => self.fail("Variable not implemented"),
            },
            ("download", Some(size)) => self.download(size),
            ("flash", Some(part)) => self.flash(part),
            ("erase", Some(part)) if uboot && matches!(self.boot, Boot::Nor { .. }) => {
                match self.nor_erase(part) {
                    Ok(()) => {
                        self.flashed.push((self.stage, format!("erase {part}"), 0));
                        self.reply("OKAY", "");
                    }
                    Err(e) => {
                        self.refused_writes.push(format!("erase:{part}: {e}"));
                        self.fail(e)
                    }
                }
            }
            ("erase", Some(part)) if uboot => match self.partition(part) {
                Ok((true, _)) => {
                    self.boot0 = None;
                    self.flashed.push((self.stage, format!("erase {part}"), 0));
                    self.reply("OKAY", "");
                }
                Ok((false, _)) => match crate::uboot_storage::erase(self.emmc(), part) {
                    Ok(_) => {
                        self.flashed.push((self.stage, format!("erase {part}"), 0));
                        self.reply("OKAY", "");
                    }
                    Err(e) => {
                        self.refused_writes.push(format!("erase:{part}: {e}"));
                        self.fail(e)
                    }
                },
                Err(e) => {
                    self.refused_writes.push(format!("erase:{part}: {e}"));
                    self.fail(e)
                }
            },
            // fb_command.c (CONFIG_FASTBOOT_CMD_OEM_FORMAT, set in
            // revyos/thead-u-boot light_lpi4a_defconfig): `oem format` runs
            // `gpt write mmc 0 $partitions`, the vendor layout here.
            ("oem format", None) if uboot && self.soc == Soc::Th1520 => {
                let layout = self.chip.layout;
                crate::uboot_storage::write_gpt(self.emmc(), layout);
                self.reply("OKAY", "");
            }
            ("continue", None) => self.continue_boot(),
            ("reboot", None) => self.reboot(),
            ("reboot-bootloader", None) if uboot => {
                self.reply("OKAY", "");
                self.leave = Some(Leave::To(Stage::UBoot));
            }
            // fastboot_handle_command: any other command, oem or not.
            _ if uboot => self.fail("unrecognized command"),
            _ => self.fail("unknown command"),
        }
    }

    fn download(&mut self, size: &str) {
        let n = match (size.len(), usize::from_str_radix(size, 16)) {
            (8, Ok(n)) => n,
            _ => return self.fail("invalid download size"),
        };
        if self.fault == Some(Fault::FailDownload) {
            return self.fail("download refused (injected fault)");
        }
        if self.fault == Some(Fault::Silent) {
            return;
        }
        if n == 0 {
            return self.fail("invalid download size");
        }
        if n > self.download_limit() {
            return self.fail("data too large");
        }
        let offer = if self.fault == Some(Fault::DataSize) { n - 1 } else { n };
        self.reply("DATA", &format!("{offer:08x}"));
        // A real device downloads into its fixed buffer; reserving what was
        // offered (at most the stage's limit, checked above) keeps the
        // model's own copying out of the bus time it models.
        self.expecting = Some((offer, Vec::with_capacity(offer)));
    }

    fn flash(&mut self, part: &str) {
        match (self.soc, self.stage) {
            (_, Stage::UBoot) => {
                let Some(img) = self.last_download.take() else {
                    return self.fail("no image downloaded");
                };
                // Where the download goes: the NOR while vendor U-Boot's mtd
                // flag says so (a K1 booted from NOR), SpacemiT's own names
                // (gpt, env, bootinfo) on a K1, else the eMMC's GPT.
                let r = if self.soc == Soc::K1 && matches!(self.boot, Boot::Nor { .. }) {
                    self.nor_flash(part, &img)
                } else if let Some(r) =
                    if self.soc == Soc::K1 { self.spacemit_flash(part, &img) } else { None }
                {
                    r
                } else {
                    match self.partition(part) {
                        Ok((true, _)) => {
                            let boot0 = self
                                .boot0
                                .get_or_insert_with(|| crate::storage::Medium::in_memory(BOOT0_SIZE, 0));
                            if img.len() as u64 > BOOT0_SIZE {
                                Err("too large for partition")
                            } else {
                                boot0.write(0, &img).map(|_| 0).map_err(|_| "failed writing to device")
                            }
                        }
                        Ok((false, _)) => crate::uboot_storage::flash(self.emmc(), part, &img),
                        Err(e) => Err(e),
                    }
                    .map(|_| "")
                };
                let len = img.len();
                self.last_download = Some(img);
                match r {
                    Ok(text) => {
                        self.flashed.push((self.stage, part.into(), len));
                        self.reply("OKAY", text);
                    }
                    Err(e) => {
                        self.refused_writes.push(format!("flash:{part}: {e}"));
                        self.fail(e)
                    }
                }
            }
            (Soc::Th1520, Stage::Rom) if !part.is_empty() => {
                let Some(img) = self.last_download.clone() else {
                    return self.fail("no image downloaded");
                };
                if part == "ram" && self.fault == Some(Fault::FailBoot) {
                    return self.fail("flash ram failed (injected fault)");
                }
                self.flashed.push((self.stage, part.into(), img.len()));
                // Any name gets OKAY; only "ram" does something (sheet §4.5).
                if part == "ram" {
                    self.ram = Some(img);
                }
                self.reply("OKAY", "");
            }
            _ => self.fail("unknown command"),
        }
    }

    /// The names SpacemiT's vendor U-Boot flashes itself rather than into
    /// a GPT partition (`fastboot_mmc_flash_write`, `fb_mmc.c` with
    /// `CONFIG_SPACEMIT_FLASH`); `None` for any other name. `Ok` is the OKAY
    /// text.
    /// - `gpt`: the download is a `partition_*.json`; `_parse_flash_config`
    ///   turns it into a `partitions` string and `gpt write mmc` writes it
    ///   ("parse gpt/mtd table okay").
    /// - `env`: `env import` of the download, then the environment written at
    ///   the env offset. This model writes the download itself to the `env`
    ///   partition (the real one writes its re-exported environment).
    /// - `bootinfo`: written to the eMMC's boot0 area. The real U-Boot writes
    ///   a bootinfo header of its own there; this model keeps the download.
    fn spacemit_flash(&mut self, part: &str, img: &[u8]) -> Option<Result<&'static str, &'static str>> {
        Some(match part {
            "gpt" => crate::uboot_storage::spacemit_gpt_string(img)
                .and_then(|t| crate::uboot_storage::gpt_write(self.emmc(), &t))
                .map(|_| "parse gpt/mtd table okay"),
            "env" => crate::uboot_storage::flash(self.emmc(), "env", img)
                .map(|_| "flash env partition okay")
                .map_err(|_| "Cannot flash env partition"),
            "bootinfo" => {
                let boot0 =
                    self.boot0.get_or_insert_with(|| crate::storage::Medium::in_memory(BOOT0_SIZE, 0));
                if img.len() as u64 > BOOT0_SIZE {
                    Err("flash mmc boot fail")
                } else {
                    boot0.write(0, img).map(|_| "").map_err(|_| "flash mmc boot fail")
                }
            }
            _ => return None,
        })
    }

    /// `flash()` of `fb_command.c` on a K1 booted from NOR: `mtd…` sets the
    /// sticky `mtd_flash`, `gpt…` clears it; while it is set the download
    /// goes to `fastboot_mtd_flash_write`, and to `fastboot_blk_flash_write`
    /// when that does not answer OKAY (or at once while it is clear). `Ok`
    /// is the OKAY text.
    fn nor_flash(&mut self, part: &str, img: &[u8]) -> Result<&'static str, &'static str> {
        if part.starts_with("mtd") {
            self.mtd_flash = true;
        }
        if part.starts_with("gpt") {
            self.mtd_flash = false;
        }
        if self.mtd_flash
            && let Ok(text) = self.mtd_flash_write(part, img)
        {
            return Ok(text);
        }
        self.blk_flash_write(part, img)
    }

    /// `fastboot_mtd_flash_write` (`fb_mtd.c`): `mtd…` is the table
    /// (`fastboot_oem_flash_gpt`: `mtdparts` set, then the `env` partition
    /// erased, `_clear_env_part`), `env` is `fastboot_oem_flash_env`
    /// (`env import` of the download into RAM, then the same erase), any
    /// other name an MTD partition.
    fn mtd_flash_write(&mut self, part: &str, img: &[u8]) -> Result<&'static str, &'static str> {
        let size = self.nor.as_ref().map_or(0, |n| n.size());
        if part.starts_with("mtd") {
            let t = crate::uboot_mtd::spacemit_mtd_string(img)?;
            if !t.is_empty() {
                self.mtdparts = Some(format!("spi-dev:{t}"));
            }
            self.clear_env_part()?;
            return Ok("parse gpt/mtd table okay");
        }
        if part == "env" {
            // The model takes any download as the environment (`env import`
            // would refuse one without a valid CRC or text).
            self.clear_env_part()?;
            return Ok("flash env partition okay");
        }
        let p = crate::uboot_mtd::lookup(self.mtdparts.as_deref(), size, part)?;
        let nor = self.nor.as_mut().ok_or("invalid mtd device or partition")?;
        crate::uboot_mtd::flash(nor, &p, img).map(|_| "")
    }

    /// `_clear_env_part` booted from NOR, once `mtdparts` is set: the `env`
    /// MTD partition erased ("clear env fail" when there is none).
    fn clear_env_part(&mut self) -> Result<(), &'static str> {
        let Some(table) = self.mtdparts.clone() else { return Ok(()) };
        let size = self.nor.as_ref().map_or(0, |n| n.size());
        let p = crate::uboot_mtd::lookup(Some(&table), size, "env").map_err(|_| "clear env fail")?;
        let nor = self.nor.as_mut().ok_or("clear env fail")?;
        crate::uboot_mtd::erase(nor, &p).map(|_| ()).map_err(|_| "clear env fail")
    }

    /// `fastboot_blk_flash_write` (`fb_blk.c`) on the NVMe: `bootinfo` is
    /// OKAY without a write ("blk device would not flash bootinfo except
    /// emmc"), `gpt` is the table (`_parse_flash_config`, then `gpt write
    /// nvme 0`), any other name a GPT partition of the NVMe.
    fn blk_flash_write(&mut self, part: &str, img: &[u8]) -> Result<&'static str, &'static str> {
        if part == "bootinfo" {
            return Ok("");
        }
        if part == "gpt" {
            let t = crate::uboot_storage::spacemit_gpt_string(img)?;
            let nvme = self.nvme.as_mut().ok_or("write gpt tabel fail")?;
            crate::uboot_storage::gpt_write(nvme, &t).map_err(|_| "write gpt tabel fail")?;
            return Ok("parse gpt/mtd table okay");
        }
        let nvme = self.nvme.as_mut().ok_or("can not find partition or devices")?;
        let p = crate::uboot_storage::find(nvme, part).map_err(|_| "can not find partition or devices")?;
        if img.len() as u64 > p.bytes() {
            return Err("download_bytes is greater than part size");
        }
        crate::uboot_storage::flash(nvme, part, img).map(|_| "")
    }

    /// `erase()` of `fb_command.c` booted from NOR: its own sticky flag,
    /// `fastboot_mtd_flash_erase` while set (the blk erase when that fails),
    /// else `fastboot_blk_erase`.
    fn nor_erase(&mut self, part: &str) -> Result<(), &'static str> {
        if part.starts_with("mtd") {
            self.mtd_erase = true;
        }
        if part.starts_with("gpt") {
            self.mtd_erase = false;
        }
        if self.mtd_erase {
            let size = self.nor.as_ref().map_or(0, |n| n.size());
            if let Ok(p) = crate::uboot_mtd::lookup(self.mtdparts.as_deref(), size, part)
                && let Some(nor) = self.nor.as_mut()
                && crate::uboot_mtd::erase(nor, &p).is_ok()
            {
                return Ok(());
            }
        }
        let nvme = self.nvme.as_mut().ok_or("can not find partition or devices")?;
        crate::uboot_storage::erase(nvme, part).map(|_| ()).map_err(|e| match e {
            "no such partition" | "partition not given" => "can not find partition or devices",
            _ => "failed erasing from device",
        })
    }

    fn continue_boot(&mut self) {
        if self.fault == Some(Fault::FailBoot) && self.stage != Stage::UBoot {
            return self.fail("continue failed (injected fault)");
        }
        match (self.soc, self.stage) {
            (Soc::K1, Stage::Rom) => {
                let Some(img) = self.last_download.clone() else { return self.fail("no image downloaded") };
                if img.len() < 0x1000 || &img[0x100..0x104] != b"AIHD" || &img[0xfe0..0xfe4] != b"AIHD" {
                    return self.fail("invalid image header");
                }
                self.start("FSBL", &img);
                self.reply("OKAY", "");
                self.leave = Some(Leave::To(Stage::Fsbl));
            }
            (Soc::K1, Stage::Fsbl) => {
                let Some(img) = self.last_download.clone() else { return self.fail("no image downloaded") };
                if img.len() < 4 || img[..4] != [0xd0, 0x0d, 0xfe, 0xed] {
                    return self.fail("bad FIT image");
                }
                self.start("u-boot.itb", &img);
                self.reply("OKAY", "");
                self.leave = Some(Leave::To(Stage::UBoot));
            }
            // Whether the TH1520 ROM treats continue as reboot is unknown;
            // this model does.
            (Soc::Th1520, Stage::Rom) => self.reboot(),
            // Vendor U-Boot leaves fastboot on `continue`; the K1 RAM-boot
            // environment then runs what was staged (`bootm`, review §5).
            (Soc::K1, Stage::UBoot) if self.last_download.is_some() => {
                let img = self.last_download.clone().map(|b| b.to_vec()).unwrap_or_default();
                if img.len() >= 4 && img[..4] == [0xd0, 0x0d, 0xfe, 0xed] {
                    self.start("uImage.itb", &img);
                }
                self.reply("OKAY", "");
                self.leave = Some(Leave::Away);
            }
            (_, _) => {
                self.reply("OKAY", "");
                self.leave = Some(Leave::Away);
            }
        }
    }

    fn reboot(&mut self) {
        if self.fault == Some(Fault::FailBoot) && self.stage == Stage::Rom {
            return self.fail("reboot failed (injected fault)");
        }
        self.reply("OKAY", "");
        self.leave = Some(match (self.soc, self.stage, self.ram.take()) {
            (Soc::Th1520, Stage::Rom, Some(img)) => {
                self.start("ram image", &img);
                Leave::To(Stage::UBoot)
            }
            // A reset with nothing bootable falls back to the ROM's download mode.
            _ => Leave::To(Stage::Rom),
        });
    }

    /// The next answer for the host, if any. Once the last answer after
    /// `continue`/`reboot` is taken, the device leaves the bus.
    pub fn next_response(&mut self) -> Option<Vec<u8>> {
        let r = self.out.pop_front();
        self.leave_when_answered();
        r
    }

    /// Leaves the bus once the last answer after `continue`/`reboot` is
    /// out (over USB: its last packet too).
    fn leave_when_answered(&mut self) {
        if self.out.is_empty()
            && self.tx.is_empty()
            && let Some(l) = self.leave.take()
        {
            self.present = false;
            self.expecting = None;
            self.last_download = None;
            self.next = match l {
                _ if self.fault == Some(Fault::NoReenumerate) => None,
                Leave::To(s) => Some(s),
                Leave::Away => None,
            };
            self.detach_ticks = REENUM_TICKS;
            if self.fault == Some(Fault::SlowUboot) && self.next == Some(Stage::UBoot) {
                self.back_at = Some(std::time::Instant::now() + SLOW_UBOOT);
            }
        }
    }

    /// Finishes a re-enumeration at once (TCP has no bus to poll).
    pub fn reattach_now(&mut self) {
        if !self.present && self.next.is_some() {
            self.back_at = None;
            self.detach_ticks = 1;
            self.tick_once();
        }
    }

    fn tick_once(&mut self) {
        if self.present || self.next.is_none() {
            return;
        }
        self.detach_ticks = self.detach_ticks.saturating_sub(1);
        if self.back_at.is_some_and(|t| std::time::Instant::now() < t) {
            return;
        }
        if self.detach_ticks == 0 {
            self.back_at = None;
            self.stage = self.next.take().expect("checked");
            if self.stage == Stage::UBoot {
                self.uboot_starts();
            }
            self.address = self.address.wrapping_add(1).max(1);
            self.present = true;
        }
    }

    /// The board's own conclusion: every image of the user's run was
    /// started, in order (the ROM's, then [`with_next_stages`] more).
    ///
    /// [`with_next_stages`]: FastbootDevice::with_next_stages
    pub fn verdict(&self) -> Verdict {
        if self.session_run {
            let rom_ok = (self.started.is_empty() && self.next_stages == 0) || self.rom_verdict().started();
            let asked: Vec<&str> =
                self.log.iter().filter(|l| l.0 == Stage::UBoot).map(|l| l.1.as_str()).collect();
            return match (rom_ok, asked.is_empty(), self.flashed.iter().find(|f| f.0 == Stage::UBoot)) {
                (false, _, _) => self.rom_verdict(),
                (_, _, Some(f)) => Verdict::NotStarted {
                    why: format!("vendor U-Boot wrote {} in a run that writes nothing", f.1),
                },
                (_, true, None) => Verdict::NotStarted { why: "vendor U-Boot was asked nothing".into() },
                (_, false, None) => Verdict::Started {
                    summary: format!(
                        "vendor U-Boot answered {} commands, the last {:?}",
                        asked.len(),
                        asked[asked.len() - 1]
                    ),
                },
            };
        }
        if self.storage_run {
            let rom_ok = (self.started.is_empty() && self.next_stages == 0) || self.rom_verdict().started();
            let mut wrote: Vec<String> = Vec::new();
            for f in self.flashed.iter().filter(|f| f.0 == Stage::UBoot) {
                if !wrote.contains(&f.1) {
                    wrote.push(f.1.clone());
                }
            }
            return match (rom_ok, wrote.is_empty(), self.refused_writes.is_empty()) {
                (true, false, true) => {
                    Verdict::Started { summary: format!("vendor U-Boot wrote {}", wrote.join(", ")) }
                }
                (false, _, _) => self.rom_verdict(),
                (_, true, _) => Verdict::NotStarted { why: "vendor U-Boot wrote nothing".into() },
                (_, _, false) => Verdict::NotStarted {
                    why: format!("vendor U-Boot refused {}", self.refused_writes.join("; ")),
                },
            };
        }
        self.rom_verdict()
    }

    fn rom_verdict(&self) -> Verdict {
        let want = 1 + self.next_stages;
        let chain = self.chip.chain;
        if want > chain.len() {
            return Verdict::NotStarted {
                why: format!(
                    "{} images were to be sent, but this board runs at most {} from USB ({}); {}",
                    want,
                    chain.len(),
                    chain.join(", "),
                    self.summary()
                ),
            };
        }
        let ran = chain[..want].iter().all(|w| self.started.iter().any(|s| s.what == *w));
        if ran {
            Verdict::Started { summary: self.summary() }
        } else {
            Verdict::NotStarted { why: self.summary() }
        }
    }

    /// One line on what the board received and ran.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .started
            .iter()
            .map(|s| format!("{} started {} ({} bytes, crc32 {:08x})", s.by.name(), s.what, s.len, s.crc32))
            .collect();
        if parts.is_empty() {
            parts.push(format!("nothing started; {} downloads received", self.downloads.len()));
        }
        parts.join("; ")
    }
}

impl UsbDevice for FastbootDevice {
    fn info(&self) -> Option<UsbInfo> {
        if !self.present {
            return None;
        }
        let id = self.identity();
        Some(UsbInfo {
            vid: id.vid,
            pid: id.pid,
            bcd_usb: 0x0200,
            bcd_device: id.bcd_device,
            manufacturer: Some(id.manufacturer.into()),
            product: Some(id.product.into()),
            serial: id.serial.map(Into::into),
            bus: 1,
            address: self.address,
            port_path: self.port_path.clone(),
            speed: Some(if self.max_packet == 64 { "full" } else { "high" }.into()),
            interfaces: vec![InterfaceInfo {
                number: 0,
                class: 0xff,
                subclass: 0x42,
                protocol: 0x03,
                endpoints: vec![
                    EndpointInfo {
                        address: EP_IN,
                        kind: EndpointKind::Bulk,
                        max_packet_size: self.max_packet as u16,
                    },
                    EndpointInfo {
                        address: EP_OUT,
                        kind: EndpointKind::Bulk,
                        max_packet_size: self.max_packet as u16,
                    },
                ],
            }],
        })
    }

    fn control_out(&mut self, _: ControlSetup, _: &[u8]) -> Result<(), DeviceError> {
        Err(DeviceError::Stall)
    }

    fn control_in(&mut self, _: ControlSetup, _: u16) -> Result<Vec<u8>, DeviceError> {
        Err(DeviceError::Stall)
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8]) -> Result<(), DeviceError> {
        if ep != EP_OUT {
            return Err(DeviceError::Stall);
        }
        self.host_packet(data)
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize) -> Result<Vec<u8>, DeviceError> {
        if ep != EP_IN {
            return Err(DeviceError::Stall);
        }
        // USB 2.0 §5.8.3: an IN transfer ends with a short packet (or a
        // zero-length one) or when the host's buffer is full. An answer
        // that ends on a packet boundary leaves the transfer open; the next
        // answer's bytes would join it, and with none the host times out
        // and the bytes it had are lost (usbfs cancels the URB).
        let mps = self.max_packet;
        let mut got = Vec::new();
        loop {
            if self.tx.is_empty() {
                match self.out.pop_front() {
                    Some(r) if r.is_empty() => {
                        self.leave_when_answered();
                        return Ok(got);
                    }
                    Some(r) => self.tx = r.into(),
                    None => return Err(DeviceError::NoAnswer),
                }
            }
            let n = mps.min(self.tx.len()).min(max_len - got.len());
            got.extend(self.tx.drain(..n));
            self.leave_when_answered();
            if n < mps || got.len() >= max_len {
                return Ok(got);
            }
        }
    }

    fn tick(&mut self) {
        self.tick_once();
    }
}

/// A virtual board on a simulated bus, seen from outside: its verdict.
struct Attached(Arc<Mutex<FastbootDevice>>);

impl VirtualRom for Attached {
    fn verdict(&mut self) -> Verdict {
        lock(&self.0).verdict()
    }

    fn console(&self) -> Option<String> {
        lock(&self.0).console()
    }
}

/// Both ROMs start code on hart 0 (the model's assumption; the payloads'
/// table, payloads/README.md, names no other boot hart for them).
pub const BOOT_CORE: crate::console::BootCore = crate::console::BootCore { word: "hart", id: 0 };

/// The board `scenario` describes: the model of `soc`, its fault, the
/// stages its user sends.
pub fn board(soc: &str, scenario: &Scenario) -> Result<FastbootDevice, SimError> {
    let uart = scenario.uart(soc, BOOT_CORE)?;
    let soc = Soc::from_name(soc).ok_or_else(|| SimError::UnknownSoc { soc: soc.to_string() })?;
    let fault = scenario.fault.as_deref().map(str::parse::<Fault>).transpose()?;
    let medium = scenario.storage_medium.as_deref();
    let boot = match (soc, Boot::from_medium(medium)) {
        (Soc::K1, Some(b)) | (Soc::Th1520, Some(b @ Boot::Emmc)) => b,
        _ => {
            return Err(SimError::Impossible {
                soc: format!("{soc:?}"),
                why: format!(
                    "boot from a medium named '{}' (K1: emmc, spi-nor, spi-nor+nvme; TH1520: emmc)",
                    medium.unwrap_or_default()
                ),
            });
        }
    };
    let dev = FastbootDevice::new(soc, &scenario.port_path)
        .with_boot(boot)
        .with_fault(fault)
        .with_next_stages(scenario.next_stages)
        .with_speed(scenario.speed.unwrap_or(crate::usb::BusSpeed::High))
        .with_console(uart);
    match &scenario.storage {
        Some(path) => dev.with_storage(path).map_err(|e| SimError::Impossible {
            soc: format!("{soc:?}"),
            why: format!("keep its eMMC in {e}"),
        }),
        None => Ok(dev),
    }
}

fn attach(
    soc: &str,
    scenario: &Scenario,
    usb: &SimUsbBus,
    _serial: &SimSerialBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    // A storage verb's board: brought up by the host, or already in U-Boot.
    if scenario.storage_loader || scenario.in_storage_stage {
        let attach = if scenario.asks_only { attach_session } else { attach_storage };
        return attach(soc, scenario, !scenario.in_storage_stage, usb);
    }
    Ok(Box::new(Attached(usb.attach(board(soc, scenario)?))))
}

fn faults() -> Vec<(&'static str, &'static str)> {
    Fault::ALL.iter().map(|f| (f.0, f.2)).collect()
}

/// The board of a storage run (`racklet-flash write`/`erase`): from its ROM
/// when the user brings it up (`from_rom`), else already in vendor U-Boot.
pub fn attach_storage(
    soc: &str,
    scenario: &Scenario,
    from_rom: bool,
    usb: &SimUsbBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    let dev = board(soc, scenario)?.for_storage();
    let dev = if from_rom { dev } else { dev.in_uboot() };
    Ok(Box::new(Attached(usb.attach(dev))))
}

/// Like [`attach_storage`], for a run that only asks vendor U-Boot
/// (`racklet-flash partitions`, `oem`).
pub fn attach_session(
    soc: &str,
    scenario: &Scenario,
    from_rom: bool,
    usb: &SimUsbBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    let dev = board(soc, scenario)?.for_session();
    let dev = if from_rom { dev } else { dev.in_uboot() };
    Ok(Box::new(Attached(usb.attach(dev))))
}

/// The SpacemiT K1 and T-Head TH1520 fastboot ROMs in the registry.
pub static MODEL: Model =
    Model { socs: &["k1", "th1520"], faults, attach, serve: crate::serve::fastboot::run };

/// The largest command frame accepted over TCP (the current spec's 4096).
const TCP_COMMAND_FRAME_MAX: u64 = 4096;
/// Data frames are read in pieces of at most this size.
const TCP_PIECE: usize = 1 << 20;

fn lock(dev: &Mutex<FastbootDevice>) -> std::sync::MutexGuard<'_, FastbootDevice> {
    dev.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves one TCP connection: handshake, then frames until the host
/// closes, the device leaves (`continue`/`reboot`), or nothing arrives for
/// `idle`. State stays in `dev` across connections (the Debian client
/// opens one per invocation).
pub fn serve_tcp_connection(
    dev: &Mutex<FastbootDevice>,
    stream: TcpStream,
    idle: Duration,
) -> std::io::Result<()> {
    serve_connection_with(dev, stream, idle, &|_| Ok(()))
}

/// [`serve_tcp_connection`], calling `after` on the device after every host
/// packet, before the answers go out (so what it records is done before the
/// client hears OKAY).
fn serve_connection_with(
    dev: &Mutex<FastbootDevice>,
    stream: TcpStream,
    idle: Duration,
    after: &Hook<'_>,
) -> std::io::Result<()> {
    let mut started_download = false;
    let r = serve_frames(dev, stream, idle, &mut started_download, after);
    // A client that vanished mid-download leaves no data phase behind.
    let mut d = lock(dev);
    if started_download && d.in_data_phase() {
        d.abort_download();
    }
    r
}

type Hook<'a> = dyn Fn(&mut FastbootDevice) -> std::io::Result<()> + Sync + 'a;

fn serve_frames(
    dev: &Mutex<FastbootDevice>,
    mut stream: TcpStream,
    idle: Duration,
    started_download: &mut bool,
    after: &Hook<'_>,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    // Without NODELAY an INFO then OKAY costs ~40 ms (sheet §2).
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(idle))?;
    if !lock(dev).reachable() {
        return Ok(());
    }
    let mut hello = [0u8; 4];
    stream.read_exact(&mut hello)?;
    if &hello[..2] != b"FB" || !hello[2..].iter().all(u8::is_ascii_digit) {
        return Err(Error::new(ErrorKind::InvalidData, "bad handshake"));
    }
    stream.write_all(b"FB01")?;
    loop {
        let mut len = [0u8; 8];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u64::from_be_bytes(len);
        let data_phase = lock(dev).in_data_phase();
        if data_phase {
            // Frames are arbitrary: count bytes, never assume one frame per download.
            let mut left = len;
            while left > 0 {
                let n = left.min(TCP_PIECE as u64) as usize;
                let mut buf = vec![0u8; n];
                stream.read_exact(&mut buf)?;
                left -= n as u64;
                let mut d = lock(dev);
                if d.host_packet(&buf).is_err() {
                    return Ok(()); // The device "unplugged": drop the connection.
                }
                after(&mut d)?;
            }
        } else {
            if len > TCP_COMMAND_FRAME_MAX {
                return Err(Error::new(ErrorKind::InvalidData, "command frame too long"));
            }
            let mut buf = vec![0u8; len as usize];
            stream.read_exact(&mut buf)?;
            let mut d = lock(dev);
            if d.host_packet(&buf).is_err() {
                return Ok(());
            }
            *started_download = d.in_data_phase();
            after(&mut d)?;
        }
        loop {
            let mut d = lock(dev);
            let Some(r) = d.next_response() else {
                if !d.present {
                    d.reattach_now();
                    return Ok(());
                }
                break;
            };
            drop(d);
            stream.write_all(&(r.len() as u64).to_be_bytes())?;
            stream.write_all(&r)?;
        }
    }
}

/// What the TCP server has to tell: sent after every host packet (what
/// arrived) and at the end of each session (with `ended` set).
#[derive(Debug)]
pub struct TcpSession {
    pub peer: std::net::SocketAddr,
    /// True for the report that closes a session.
    pub ended: bool,
    /// Why the connection ended badly, if it did.
    pub error: Option<std::io::Error>,
    /// Commands received since the last report.
    pub commands: Vec<(Stage, String)>,
    /// Downloads completed since the last report, numbered from the
    /// server's start; the device keeps none of them afterwards.
    pub downloads: Vec<(usize, Received)>,
    /// Images started since the last report.
    pub started: Vec<Started>,
    /// The device's summary now.
    pub summary: String,
}

/// How many TCP clients are served at once; more are turned away.
pub const TCP_MAX_CLIENTS: usize = 64;

/// Serves the virtual device on `listener`. Every connection runs on its
/// own thread, so a client that idles does not hold up the next; they
/// share the one device, as clients of one board do. `report` hears what
/// arrived after every packet, before the client gets its answer (a
/// download is moved out of the device then, so a long-running server
/// keeps none), and once more when a session ends. A client that drops in
/// the middle of a download leaves the device waiting for a command.
/// Without `keep` the server ends after its first session (one run of the
/// board: connections follow each other while each started the board's
/// next stage); an error from
/// `report` ends the session, and the server with it.
pub fn serve_tcp(
    listener: &std::net::TcpListener,
    dev: &Mutex<FastbootDevice>,
    idle: Duration,
    keep: bool,
    report: &(dyn Fn(TcpSession) -> Result<(), String> + Sync),
) -> Result<(), String> {
    struct Seen {
        commands: usize,
        downloads: usize,
        started: usize,
    }
    let seen = Mutex::new(Seen { commands: 0, downloads: 0, started: 0 });
    let news = |d: &mut FastbootDevice, peer, ended, error| {
        let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
        let commands = d.log[s.commands.min(d.log.len())..].to_vec();
        let started = d.started[s.started.min(d.started.len())..].to_vec();
        let summary = d.summary();
        let downloads: Vec<(usize, Received)> =
            d.downloads.drain(..).enumerate().map(|(i, r)| (s.downloads + i, r)).collect();
        s.commands = d.log.len();
        s.started = d.started.len();
        s.downloads += downloads.len();
        TcpSession { peer, ended, error, commands, downloads, started, summary }
    };
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let session = |stream: TcpStream, peer: std::net::SocketAddr| {
        let after = |d: &mut FastbootDevice| {
            let n = news(d, peer, false, None);
            if n.commands.is_empty() && n.downloads.is_empty() && n.started.is_empty() {
                return Ok(());
            }
            report(n).map_err(|e| {
                *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
                std::io::Error::other(e)
            })
        };
        let error = serve_connection_with(dev, stream, idle, &after).err();
        let n = news(&mut lock(dev), peer, true, error);
        if let Err(e) = report(n) {
            *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    };
    let take_failure = || failed.lock().unwrap_or_else(|e| e.into_inner()).take();
    if !keep {
        // One run of the board: a connection in which the board started an
        // image and left for a next stage that takes a connection (K1: ROM
        // to FSBL to U-Boot; TH1520: ROM to U-Boot) is followed by the one
        // to that stage, as the board's next stage answers at the same
        // address (sheet §7: the connection drops on `continue`/`reboot`).
        loop {
            let (stream, peer) = listener.accept().map_err(|e| e.to_string())?;
            let before = lock(dev).started.len();
            session(stream, peer);
            if let Some(e) = take_failure() {
                return Err(e);
            }
            let d = lock(dev);
            if d.started.len() == before || !d.reachable() {
                return Ok(());
            }
        }
    }
    let active = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        loop {
            let (stream, peer) = listener.accept().map_err(|e| e.to_string())?;
            if let Some(e) = take_failure() {
                return Err(e);
            }
            if active.load(std::sync::atomic::Ordering::SeqCst) >= TCP_MAX_CLIENTS {
                drop(stream); // Turned away: too many at once.
                continue;
            }
            active.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (session, active) = (&session, &active);
            scope.spawn(move || {
                session(stream, peer);
                active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fsbl() -> Vec<u8> {
        let mut b = vec![0u8; 0x1000 + 64 + 256];
        b[0x100..0x104].copy_from_slice(b"AIHD");
        b[0xfe0..0xfe4].copy_from_slice(b"AIHD");
        b
    }

    fn run(d: &mut FastbootDevice, pkt: &[u8]) -> Vec<Vec<u8>> {
        d.host_packet(pkt).unwrap();
        std::iter::from_fn(|| d.next_response()).collect()
    }

    #[test]
    fn k1_rom_answers_with_nul_and_garbage() {
        let mut d = FastbootDevice::new(Soc::K1, "1-1");
        let r = run(&mut d, b"getvar:version-brom");
        assert_eq!(r.len(), 1);
        assert_eq!(&r[0][..8], b"OKAY1.0\0");
        assert_eq!(r[0].len(), 256);
        assert!(r[0][8..].iter().any(|&b| b != 0));
        assert!(run(&mut d, b"getvar:version")[0].starts_with(b"OKAY0.4\0"));
        assert!(run(&mut d, b"getvar:max-download-size")[0].starts_with(b"OKAY0x40000\0"));
        assert!(run(&mut d, b"getvar:serialno")[0].starts_with(b"FAILVariable not implemented\0"));
        let mut d = FastbootDevice::new(Soc::K1, "1-1").with_rom_reply(ReplyStyle::Exact);
        assert_eq!(run(&mut d, b"getvar:version-brom"), vec![b"OKAY1.0".to_vec()]);
    }

    /// What one host IN transfer of `len` bytes gets.
    fn read(d: &mut FastbootDevice, len: usize) -> Result<Vec<u8>, DeviceError> {
        UsbDevice::bulk_in(d, EP_IN, len)
    }

    #[test]
    fn in_transfers_end_on_a_short_packet_or_a_full_buffer() {
        use crate::usb::BusSpeed;
        // Full speed, 64-byte padded answer: one full packet and no short
        // one, so a 256-byte transfer never ends; a 64-byte one does.
        let mut d = FastbootDevice::new(Soc::K1, "1-1")
            .with_speed(BusSpeed::Full)
            .with_rom_reply(ReplyStyle::NulPadded(64));
        assert_eq!(d.info().unwrap().interfaces[0].endpoints[0].max_packet_size, 64);
        assert_eq!(d.info().unwrap().speed.as_deref(), Some("full"));
        d.host_packet(b"getvar:version-brom").unwrap();
        assert_eq!(read(&mut d, 256), Err(DeviceError::NoAnswer));
        d.host_packet(b"getvar:version-brom").unwrap();
        assert_eq!(read(&mut d, 64).unwrap().len(), 64);
        // Full speed, 256-byte padded: four packets fill a 256-byte buffer;
        // a 64-byte read takes one packet and leaves three for the next reads.
        let mut d = FastbootDevice::new(Soc::K1, "1-1").with_speed(BusSpeed::Full);
        d.host_packet(b"getvar:version-brom").unwrap();
        assert_eq!(read(&mut d, 256).unwrap().len(), 256);
        d.host_packet(b"getvar:version-brom").unwrap();
        let first = read(&mut d, 64).unwrap();
        assert!(first.starts_with(b"OKAY1.0\0"));
        for _ in 0..3 {
            assert_eq!(read(&mut d, 64).unwrap().len(), 64);
        }
        assert_eq!(read(&mut d, 64), Err(DeviceError::NoAnswer));
        // High speed: every framing is a short packet.
        for style in [ReplyStyle::Exact, ReplyStyle::NulPadded(64), ReplyStyle::NulPadded(256)] {
            let mut d = FastbootDevice::new(Soc::K1, "1-1").with_rom_reply(style);
            d.host_packet(b"getvar:version-brom").unwrap();
            assert!(read(&mut d, 512).unwrap().starts_with(b"OKAY1.0"), "{style:?}");
        }
    }

    #[test]
    fn k1_uboot_runs_a_staged_fit_on_continue() {
        let mut d = FastbootDevice::new(Soc::K1, "1-1").with_next_stages(2);
        d.stage = Stage::UBoot;
        let fit = [0xd0, 0x0d, 0xfe, 0xed, 1, 2, 3, 4];
        assert_eq!(run(&mut d, b"download:00000008"), vec![b"DATA00000008".to_vec()]);
        d.host_packet(&fit).unwrap();
        d.next_response();
        assert_eq!(run(&mut d, b"continue"), vec![b"OKAY".to_vec()]);
        assert_eq!(d.started.last().map(|s| s.what.as_str()), Some("uImage.itb"));
        assert!(d.info().is_none(), "U-Boot left fastboot");
    }

    /// Downloads `data` and flashes it to `part`: the answer's text.
    fn flash_as(d: &mut FastbootDevice, part: &str, data: &[u8]) -> String {
        let r = run(d, format!("download:{:08x}", data.len()).as_bytes());
        assert_eq!(r, vec![format!("DATA{:08x}", data.len()).into_bytes()]);
        d.host_packet(data).unwrap();
        assert_eq!(d.next_response(), Some(b"OKAY".to_vec()));
        let r = run(d, format!("flash:{part}").as_bytes());
        String::from_utf8(r.concat()).unwrap()
    }

    /// A K1 booted from NOR with an NVMe behind it, as `fb_command.c`'s
    /// `flash()` has it: `flash mtd` sets the sticky mtd flag, names not on
    /// the NOR fall back to the NVMe, `flash gpt` clears the flag, and
    /// `partition-size` asks the MTD partitions only (`fb_getvar.c`).
    #[test]
    fn k1_nor_boot_flashes_mtd_then_falls_back_to_the_nvme() {
        let mut d = FastbootDevice::new(Soc::K1, "1-1").with_boot(Boot::Nor { nvme: true }).in_uboot();
        assert_eq!(run(&mut d, b"getvar:mtd-size"), vec![b"OKAY8M".to_vec()]);
        assert_eq!(run(&mut d, b"getvar:blk-size"), vec![b"OKAYuniversal".to_vec()]);
        assert_eq!(run(&mut d, b"getvar:partition-size:fsbl"), vec![b"FAILcan not find mtd part".to_vec()]);
        let mtd = br#"{"format": "mtd", "partitions": [
            {"name": "bootinfo", "offset": "0", "size": "128K"},
            {"name": "fsbl", "offset": "128K", "size": "256K"},
            {"name": "env", "offset": "384K", "size": "64K"},
            {"name": "uboot", "offset": "640K", "size": "-"}]}"#;
        assert_eq!(flash_as(&mut d, "mtd", mtd), "OKAYparse gpt/mtd table okay");
        assert_eq!(run(&mut d, b"getvar:partition-size:fsbl"), vec![b"OKAY0x0000000000040000".to_vec()]);
        assert_eq!(run(&mut d, b"getvar:partition-size:uboot"), vec![b"OKAY0x0000000000760000".to_vec()]);
        assert_eq!(flash_as(&mut d, "fsbl", &[5; 100]), "OKAY");
        let nor = d.nor().unwrap();
        assert_eq!(nor.read(128 << 10, 101).unwrap(), [[5u8; 100].as_slice(), &[0xff]].concat());
        // Not on the NOR, no GPT on the NVMe yet: the blk fallback's refusal.
        assert_eq!(flash_as(&mut d, "bootfs", &[6; 10]), "FAILcan not find partition or devices");
        // `env` is imported, and its MTD partition erased.
        assert_eq!(flash_as(&mut d, "env", &[0; 10]), "OKAYflash env partition okay");
        let gpt = br#"{"format": "gpt", "partitions": [
            {"name": "bootinfo", "offset": "0K", "size": "512"},
            {"name": "fsbl", "offset": "256K", "size": "256K"},
            {"name": "bootfs", "offset": "4M", "size": "16M"},
            {"name": "rootfs", "size": "-"}]}"#;
        assert_eq!(flash_as(&mut d, "gpt", gpt), "OKAYparse gpt/mtd table okay");
        assert_eq!(flash_as(&mut d, "bootfs", &[6; 10]), "OKAY");
        // The flag is clear now: fsbl goes to the NVMe's GPT, the NOR keeps its own.
        assert_eq!(flash_as(&mut d, "fsbl", &[7; 10]), "OKAY");
        assert_eq!(flash_as(&mut d, "bootinfo", &[8; 10]), "OKAY");
        assert_eq!(d.nor().unwrap().read(128 << 10, 1).unwrap(), [5]);
        let nvme = d.nvme().unwrap();
        assert_eq!(nvme.read(4 << 20, 10).unwrap(), [6; 10]);
        assert_eq!(nvme.read(256 << 10, 10).unwrap(), [7; 10]);
        assert_eq!(nvme.read(0, 10).unwrap(), [0; 10], "bootinfo is not written to a block device");
        // flash mtd again: the NOR once more.
        assert_eq!(flash_as(&mut d, "mtd", mtd), "OKAYparse gpt/mtd table okay");
        assert_eq!(flash_as(&mut d, "fsbl", &[9; 10]), "OKAY");
        assert_eq!(d.nor().unwrap().read(128 << 10, 1).unwrap(), [9]);
        assert_eq!(
            flash_as(&mut d, "fsbl", &vec![1; (256 << 10) + 1]),
            "FAILdownload_bytes is greater than part size"
        );
        // Without an NVMe: blk-size NULL, and the fallback finds nothing.
        let mut d = FastbootDevice::new(Soc::K1, "1-1").with_boot(Boot::Nor { nvme: false }).in_uboot();
        assert_eq!(run(&mut d, b"getvar:blk-size"), vec![b"OKAYNULL".to_vec()]);
        assert_eq!(flash_as(&mut d, "gpt", gpt), "FAILwrite gpt tabel fail");
        // A table larger than the NOR: mtdparts refuses it, so no partition
        // is found (not even `env`: "clear env fail"), and the blk fallback
        // of `flash:mtd` answers last.
        let big = br#"{"format": "mtd", "partitions": [{"name": "a", "offset": "0", "size": "16M"}]}"#;
        assert_eq!(flash_as(&mut d, "mtd", big), "FAILcan not find partition or devices");
        assert_eq!(flash_as(&mut d, "a", &[1]), "FAILcan not find partition or devices");
    }

    #[test]
    fn k1_walks_rom_fsbl_uboot() {
        let mut d = FastbootDevice::new(Soc::K1, "1-1");
        let f = fsbl();
        assert!(
            run(&mut d, format!("download:{:08x}", f.len()).as_bytes())[0].starts_with(b"DATA00001140\0")
        );
        d.host_packet(&f[..100]).unwrap();
        assert!(d.next_response().is_none());
        assert!(run(&mut d, &f[100..])[0].starts_with(b"OKAY\0"));
        assert!(run(&mut d, b"continue")[0].starts_with(b"OKAY\0"));
        assert!(d.info().is_none(), "gone while re-enumerating");
        for _ in 0..REENUM_TICKS {
            d.tick();
        }
        let i = d.info().unwrap();
        assert_eq!((i.vid, i.pid, i.address), (0x361c, 0x1001, 8));
        assert_eq!(d.stage(), Stage::Fsbl);
        // Not a FIT: the SPL refuses it.
        run(&mut d, b"download:00000004");
        run(&mut d, b"abcd");
        assert_eq!(run(&mut d, b"continue"), vec![b"FAILbad FIT image".to_vec()]);
        assert_eq!(d.started.len(), 1);
    }

    #[test]
    fn th1520_fakes_other_partitions() {
        let mut d = FastbootDevice::new(Soc::Th1520, "1-1");
        run(&mut d, b"download:00000003");
        run(&mut d, b"abc");
        assert_eq!(run(&mut d, b"flash:root"), vec![b"OKAY".to_vec()]);
        // reboot without flash:ram: the ROM comes back as the ROM.
        run(&mut d, b"reboot");
        d.reattach_now();
        assert_eq!(d.stage(), Stage::Rom);
        assert!(d.started.is_empty());
        assert_eq!(d.flashed, vec![(Stage::Rom, "root".to_string(), 3)]);
    }

    #[test]
    fn faults_by_name() {
        for (name, f, _) in Fault::ALL {
            assert_eq!(name.parse::<Fault>(), Ok(*f));
        }
        let e = "nope".parse::<Fault>().unwrap_err();
        assert!(e.known.contains("no-reenumerate"), "{e}");
    }

    /// The verdict is the board's: the last image of the user's run was
    /// started (K1 with one more stage: u-boot.itb as well as the FSBL).
    #[test]
    fn verdict_counts_the_stages_the_user_sends() {
        let f = fsbl();
        let boot_fsbl = |d: &mut FastbootDevice| {
            run(d, format!("download:{:08x}", f.len()).as_bytes());
            run(d, &f);
            run(d, b"continue");
            d.reattach_now();
        };
        let mut d = FastbootDevice::new(Soc::K1, "1-1");
        boot_fsbl(&mut d);
        assert!(d.verdict().started(), "{:?}", d.verdict());
        let mut d = FastbootDevice::new(Soc::K1, "1-1").with_next_stages(1);
        boot_fsbl(&mut d);
        assert!(!d.verdict().started(), "u-boot.itb was never sent");
        run(&mut d, b"download:00000004");
        run(&mut d, &[0xd0, 0x0d, 0xfe, 0xed]);
        run(&mut d, b"continue");
        assert!(d.verdict().started(), "{:?}", d.verdict());
        assert!(d.verdict().text().contains("fsbl started u-boot.itb (4 bytes"));
        let d = FastbootDevice::new(Soc::Th1520, "1-1").with_next_stages(1);
        assert!(d.verdict().text().contains("at most 1 from USB"), "{:?}", d.verdict());
    }
}

#[cfg(test)]
mod tcp_server {
    use super::*;
    use std::io::{Read, Write};

    fn frame(s: &mut TcpStream, b: &[u8]) {
        s.write_all(&(b.len() as u64).to_be_bytes()).unwrap();
        s.write_all(b).unwrap();
    }

    fn answer(s: &mut TcpStream) -> String {
        let mut n = [0u8; 8];
        s.read_exact(&mut n).unwrap();
        let mut b = vec![0u8; u64::from_be_bytes(n) as usize];
        s.read_exact(&mut b).unwrap();
        String::from_utf8_lossy(&b).into_owned()
    }

    /// The server hands every download to its report and keeps none; a
    /// client that drops mid-download leaves no data phase behind.
    #[test]
    fn downloads_leave_the_device_and_dropped_downloads_are_forgotten() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let dev = Mutex::new(FastbootDevice::new(Soc::Th1520, "tcp"));
        let got: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        let report = |s: TcpSession| {
            got.lock().unwrap().extend(s.downloads.iter().map(|(_, r)| r.bytes.len()));
            Ok(())
        };
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(b"FB01").unwrap();
                let mut h = [0u8; 4];
                c.read_exact(&mut h).unwrap();
                frame(&mut c, b"download:00000010");
                assert!(answer(&mut c).starts_with("DATA"));
                frame(&mut c, &[1u8; 16]);
                assert_eq!(answer(&mut c), "OKAY");
                frame(&mut c, b"download:00000100");
                assert!(answer(&mut c).starts_with("DATA"));
                frame(&mut c, &[2u8; 8]);
            });
            serve_tcp(&l, &dev, Duration::from_secs(5), false, &report).unwrap();
        });
        assert_eq!(*got.lock().unwrap(), vec![16]);
        let d = dev.lock().unwrap();
        assert!(d.downloads.is_empty());
        assert!(!d.in_data_phase());
    }
}
