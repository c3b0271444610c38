//! racklet-rockchip: the Rockchip maskrom download (vendor control
//! requests 0x471/0x472), RKBOOT merged loaders and the rockusb bulk
//! protocol that the usbplug speaks afterwards.
//!
//! Generic over [`racklet_link::UsbLink`], so the same code drives a real
//! board, racklet-sim's virtual ROM and the transcript recorder. See the
//! crate README for the wire facts and their sources.

pub mod chips;
pub mod frame;
pub mod loader;
pub mod maskrom;
pub mod rockusb;

use racklet_link::{Classify, FailureClass, LinkError};

pub use chips::{CHIPS, Chip};
pub use frame::{FrameOptions, Framed, crc16, frame};
pub use loader::{Entry, EntryKind, Loader, LoaderError, rk_crc32};
pub use maskrom::{StageReport, Timeouts, download_loader, download_stage, looks_like_loader};
pub use rockusb::{FlashInfo, Rockusb};

/// Everything that can go wrong talking to a Rockchip boot ROM or usbplug.
#[derive(Debug, thiserror::Error)]
pub enum RockchipError {
    /// The ROM stalled a transfer of a stage: its only way to say no.
    #[error(
        "rejected by the ROM: the {stage} stage (wIndex 0x{index:04x}) was stalled at transfer {transfer} of {total} (bad CRC, wrong RC4 choice, or a blob for another chip)"
    )]
    Rejected { stage: String, index: u16, transfer: usize, total: usize },
    /// Any other failure of a maskrom transfer.
    #[error("{stage} stage (wIndex 0x{index:04x}), transfer {transfer} of {total}: {source}")]
    Transfer { stage: String, index: u16, transfer: usize, total: usize, source: LinkError },
    /// The loader file is damaged or not a loader.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// A rockusb command failed on the link.
    #[error("rockusb {op}: {source}")]
    Usb { op: &'static str, source: LinkError },
    /// A rockusb command got an answer that is not a valid CSW.
    #[error("rockusb {op}: bad command status wrapper ({why})")]
    BadCsw { op: &'static str, why: String },
    /// The usbplug answered the command with a failure status.
    #[error("rockusb {op}: the loader refused the command (CSW status {status})")]
    CommandFailed { op: &'static str, status: u8 },
    /// The device has no bulk IN/OUT pair to speak rockusb on.
    #[error("the device at {port} has no bulk endpoints for rockusb")]
    NoBulkEndpoints { port: String },
    /// The user stopped the run between two transfers.
    #[error("interrupted")]
    Interrupted,
}

impl Classify for RockchipError {
    fn class(&self) -> FailureClass {
        match self {
            RockchipError::Rejected { .. } => FailureClass::Rejected,
            RockchipError::Transfer { source, .. } | RockchipError::Usb { source, .. } => source.class(),
            RockchipError::Loader(_) => FailureClass::BadInput,
            RockchipError::BadCsw { .. } => FailureClass::Io,
            RockchipError::CommandFailed { .. } => FailureClass::Rejected,
            RockchipError::NoBulkEndpoints { .. } => FailureClass::Io,
            RockchipError::Interrupted => FailureClass::Interrupted,
        }
    }
}
