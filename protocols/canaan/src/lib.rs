//! racklet-canaan: the Canaan Kendryte K230 / K230D USB boot ROM and the
//! "K230" firmware header.
//!
//! - [`rom`]: the mask-ROM download over USB (GET_CPU_INFO, SET_DATA_ADDRESS,
//!   raw bulk OUT on EP 0x01, PROG_START), generic over any
//!   [`racklet_link::UsbLink`].
//! - [`plan`]: turns a list of loads (`--load ADDR=FILE`, `--run ADDR`) into
//!   stages, splitting before the first DRAM load, as oreboot does.
//! - [`header`]: the 528-byte "K230" header the ROM checks on storage boot.
//!
//! The facts and their sources are in the crate README.

pub mod header;
pub mod plan;
pub mod rom;

use racklet_link::{Classify, FailureClass, LinkError};

pub use header::{CryptoType, HeaderError, ImageHeader};
pub use plan::{Load, Stage, check_entries, plan_stages};
pub use rom::{DeviceStage, RomOptions, StartStatus};

/// USB vendor id of the K230 boot ROM and of the kburn loader.
pub const VID: u16 = 0x29f1;
/// USB product id of the K230 boot ROM and of the kburn loader.
pub const PID: u16 = 0x0230;

/// Start of the 2 MiB on-chip SRAM.
pub const SRAM_BASE: u32 = 0x8020_0000;
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

/// True when `[addr, addr+len)` lies inside the SRAM.
pub fn in_sram(addr: u64, len: u64) -> bool {
    addr >= SRAM_BASE as u64 && addr.saturating_add(len) <= SRAM_END as u64
}

/// True when `[addr, addr+len)` lies inside the DRAM window.
pub fn in_dram(addr: u64, len: u64) -> bool {
    addr.saturating_add(len) <= DRAM_END as u64
}

/// What went wrong, on the wire or in the input.
#[derive(Debug, thiserror::Error)]
pub enum CanaanError {
    /// A transfer failed.
    #[error("{step}: {source}")]
    Link {
        step: String,
        #[source]
        source: LinkError,
    },
    /// The device is the kburn loader, not the boot ROM.
    #[error(
        "the device answered GET_CPU_INFO with {reply:?}: it is the K230 kburn loader (vendor u-boot), not the boot ROM; power-cycle the board into its boot ROM (hold BOOT) to load code"
    )]
    LoaderStage { reply: String },
    /// GET_CPU_INFO answered something that is neither the ROM nor the loader.
    #[error("the device answered GET_CPU_INFO with {reply:?}, not \"K230\": it is not a K230 boot ROM")]
    UnknownDevice { reply: String },
    /// After a DRAM-init stage the board came back in another stage than the ROM.
    #[error(
        "after stage {stage} the board came back as {found}, not as the boot ROM; the stage must return to the ROM (jump to 0x91200000) so the next stage can be loaded"
    )]
    NotBackInRom { stage: usize, found: String },
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
    /// The loads or the entry point cannot be sent.
    #[error("{0}")]
    BadLoad(String),
    /// A firmware image is malformed or too large.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

impl CanaanError {
    pub(crate) fn link(step: impl Into<String>, source: LinkError) -> Self {
        CanaanError::Link { step: step.into(), source }
    }
}

impl Classify for CanaanError {
    fn class(&self) -> FailureClass {
        match self {
            CanaanError::Link { source, .. } => source.class(),
            // No boot ROM was found: the board is attached, but in another stage.
            CanaanError::LoaderStage { .. } => FailureClass::NotFound,
            CanaanError::UnknownDevice { .. } => FailureClass::Rejected,
            CanaanError::NotBackInRom { .. } => FailureClass::Rejected,
            CanaanError::StartRefused { .. } => FailureClass::Rejected,
            CanaanError::NoJump { .. } => FailureClass::Rejected,
            CanaanError::BadLoad(_) => FailureClass::BadInput,
            CanaanError::Header(_) => FailureClass::BadInput,
        }
    }
}

impl From<LinkError> for CanaanError {
    fn from(e: LinkError) -> Self {
        CanaanError::Link { step: "transfer".into(), source: e }
    }
}
