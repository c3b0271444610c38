//! racklet-canaan: the Canaan Kendryte K230 / K230D USB boot ROM and the
//! "K230" firmware header.
//!
//! - [`plan`]: the user's files and options ([`plan::Inputs`]) checked and
//!   cut into stages ([`plan::Plan`]), splitting before the first DRAM load
//!   as oreboot does; touches no device.
//! - [`boot`]: the whole run through a [`racklet_link::Connector`]: find the
//!   ROM, identify it, run each stage, follow a stage that returns to the
//!   ROM by its USB port path, and (asked) the next stage; a typed
//!   [`report::Report`].
//! - [`rom`]: the mask-ROM requests (GET_CPU_INFO, SET_DATA_ADDRESS, raw
//!   bulk OUT on EP 0x01, PROG_START), generic over any [`racklet_link::UsbLink`].
//! - [`storage`]: `write`, `read`, `erase`, `reset` through the kburn
//!   loader ([`kburn`], k230-flash's wire), `.kdimg` images ([`kdimg`]).
//! - [`header`]: the 528-byte "K230" header the ROM checks on storage boot;
//!   [`image`] builds the storage image, [`describe`] decodes one for `info`.
//!
//! The facts and their sources are in the crate README.

pub mod boot;
pub mod describe;
pub mod header;
pub mod image;
pub mod kburn;
pub mod kdimg;
pub mod plan;
pub mod report;
pub mod request;
pub mod rom;
pub mod storage;

use std::time::Duration;

use racklet_link::{Classify, FailureClass, LinkError};

pub use boot::{Options, boot};
pub use describe::{describe, near_miss};
pub use header::{CryptoType, HeaderError, ImageHeader};
pub use plan::{Inputs, Load, Plan, PlanError, Stage, check_entries, plan, plan_stages};
pub use report::Report;
pub use rom::{DeviceStage, RomOptions, StartStatus};

/// The SoCs this crate boots, as the board table names them.
pub const SOCS: &[&str] = &["k230", "k230d"];

/// The stage names a board's USB identities may carry (`[[usb]] stage`):
/// the boot ROM, and the loader a stage that returns to the ROM leaves.
pub const USB_STAGES: &[&str] = &["rom", "loader"];

/// USB vendor id of the K230 boot ROM and of the kburn loader.
pub const VID: u16 = 0x29f1;
/// USB product id of the K230 boot ROM and of the kburn loader.
pub const PID: u16 = 0x0230;

/// Start of the 2 MiB on-chip SRAM.
pub const SRAM_BASE: u32 = 0x8020_0000;
/// End of the part of the SRAM the running ROM keeps its own data and stack
/// in (`SRAM_BASE..ROM_SRAM_END`, community notes from the K230 TRM: "the
/// BootROM uses the first half of SRAM"; the SDK's SPL is linked at
/// 0x80300000). A download there overwrites the live ROM.
pub const ROM_SRAM_END: u32 = 0x8030_0000;
/// One past the end of the SRAM.
pub const SRAM_END: u32 = 0x8040_0000;
/// Default load and entry address of a ROM download.
pub const DEFAULT_LOAD: u32 = 0x8036_0000;
/// Jumping here re-enters the mask ROM's USB mode (oreboot's bt0 does it
/// after DRAM init).
pub const ROM_REENTRY: u32 = 0x9120_0000;
/// Where oreboot loads its main stage, in DRAM.
pub const DRAM_MAIN: u32 = 0x0800_0000;
/// End of the DRAM window (DRAM is mapped from 0; boards carry 128 MiB to
/// 2 GiB, the window is 2 GiB).
pub const DRAM_END: u32 = 0x8000_0000;
/// Where the ROM copies a storage-boot payload (the SPL link address;
/// inferred, see the README).
pub const STORAGE_LOAD: u64 = 0x8030_0000;
/// The most a storage-boot payload can hold: from [`STORAGE_LOAD`] to the
/// end of the SRAM.
pub const STORAGE_MAX: u64 = SRAM_END as u64 - STORAGE_LOAD;
/// Where the ROM reads the storage-boot image on an SD card or eMMC (byte
/// offset; sheet §3). Community images keep a second copy at
/// [`STORAGE_BACKUP_OFFSET`].
pub const STORAGE_OFFSET: u64 = 0x10_0000;
/// The second copy's offset in community SD images (GPT "uboot_spl_2").
pub const STORAGE_BACKUP_OFFSET: u64 = 0x18_0000;

/// True when `[addr, addr+len)` lies inside the SRAM.
pub fn in_sram(addr: u64, len: u64) -> bool {
    addr >= SRAM_BASE as u64 && addr.saturating_add(len) <= SRAM_END as u64
}

/// True when `[addr, addr+len)` lies inside the DRAM window.
pub fn in_dram(addr: u64, len: u64) -> bool {
    addr.saturating_add(len) <= DRAM_END as u64
}

/// True when `[addr, addr+len)` touches the ROM's own part of the SRAM.
pub fn in_rom_sram(addr: u64, len: u64) -> bool {
    addr < ROM_SRAM_END as u64 && addr.saturating_add(len) > SRAM_BASE as u64
}

/// What went wrong on the wire or with the board.
#[derive(Debug, thiserror::Error)]
pub enum CanaanError {
    /// The board's boot ROM was not found (none, several, the wrong kind of
    /// `--port`, no USB bus at all).
    #[error(transparent)]
    Find(LinkError),
    /// A transfer, a wait or an open failed.
    #[error("{step}: {source}")]
    Link {
        step: String,
        #[source]
        source: LinkError,
    },
    /// The device is the kburn loader, not the boot ROM.
    #[error(
        "the device answered GET_CPU_INFO with {reply:?}: it is the K230 kburn loader (vendor u-boot), not the boot ROM"
    )]
    LoaderStage { reply: String },
    /// GET_CPU_INFO answered something that is neither the ROM nor the loader.
    #[error("the device answered GET_CPU_INFO with {reply:?}, not \"K230\": it is not a K230 boot ROM")]
    UnknownDevice { reply: String },
    /// After a DRAM-init stage the board came back in another stage than the ROM.
    #[error("after stage {stage} the board came back as {found}, not as the boot ROM")]
    NotBackInRom { stage: usize, found: String },
    /// Nothing came up at the board's USB port in time after a stage.
    #[error("{what} did not appear at USB port {port} within {}", racklet_link::error::fmt_duration(*.waited))]
    NoNextStage { what: String, port: String, waited: Duration },
    /// PROG_START was refused and the ROM is still there: the jump did not happen.
    #[error(
        "PROG_START 0x{entry:08x} was refused (STALL) and the boot ROM is still waiting: the payload did not start"
    )]
    StartRefused { entry: u32 },
    /// PROG_START went through, but the ROM still answers at the same address.
    #[error(
        "PROG_START 0x{entry:08x} went through, but the boot ROM still answers at the same USB address: the payload did not start"
    )]
    NoJump { entry: u32 },
    /// A write that would run past the ROM's 32-bit address space.
    #[error("{len} bytes at 0x{address:08x} run past the 32-bit address space")]
    PastAddressSpace { address: u32, len: usize },
}

impl CanaanError {
    pub(crate) fn link(step: impl Into<String>, source: LinkError) -> Self {
        CanaanError::Link { step: step.into(), source }
    }
}

impl Classify for CanaanError {
    fn class(&self) -> FailureClass {
        match self {
            CanaanError::Find(source) | CanaanError::Link { source, .. } => source.class(),
            // No boot ROM was found: the board is attached, but in another stage.
            CanaanError::LoaderStage { .. } => FailureClass::NotFound,
            CanaanError::UnknownDevice { .. } => FailureClass::Rejected,
            CanaanError::NotBackInRom { .. } => FailureClass::Rejected,
            CanaanError::NoNextStage { .. } => FailureClass::Timeout,
            CanaanError::StartRefused { .. } => FailureClass::Rejected,
            CanaanError::NoJump { .. } => FailureClass::Rejected,
            CanaanError::PastAddressSpace { .. } => FailureClass::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CanaanError::Find(source) | CanaanError::Link { source, .. } => source.hint(),
            CanaanError::LoaderStage { .. } => {
                Some("power-cycle the board into its boot ROM (hold BOOT) to load code".into())
            }
            CanaanError::UnknownDevice { .. } => Some("add --force to send ROM commands anyway".into()),
            CanaanError::NotBackInRom { .. } => Some(format!(
                "the stage must return to the ROM (jump to 0x{ROM_REENTRY:08x}) so the next stage can be loaded"
            )),
            CanaanError::NoNextStage { .. } => Some("raise --stage-timeout if the board needs longer".into()),
            _ => None,
        }
    }
}

impl From<LinkError> for CanaanError {
    fn from(e: LinkError) -> Self {
        CanaanError::Link { step: "transfer".into(), source: e }
    }
}
