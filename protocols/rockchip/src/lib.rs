//! racklet-rockchip: the Rockchip maskrom download (vendor control
//! requests 0x471/0x472), RKBOOT merged loaders and the rockusb bulk
//! protocol that the usbplug speaks afterwards.
//!
//! The whole flow lives here: [`plan()`] checks the user's files against
//! the board and the chip table (pure), [`boot()`] finds the maskrom through
//! a [`racklet_link::Connector`], sends the stages, follows the board to its
//! usbplug by port path and returns a typed [`Report`]; [`describe()`] is
//! what `racklet-flash info` says about a loader file.
//!
//! Generic over [`racklet_link::UsbLink`], so the same code drives a real
//! board, racklet-sim's virtual ROM and the transcript recorder. See the
//! crate README for the wire facts and their sources.

pub mod boot;
pub mod chips;
pub mod describe;
pub mod frame;
pub mod idb;
pub mod loader;
pub mod maskrom;
pub mod plan;
pub mod report;
pub mod request;
pub mod rockusb;
pub mod storage;
pub mod ul;

use std::time::Duration;

use racklet_link::{Classify, FailureClass, LinkError};

pub use boot::{Options, boot};
pub use chips::{CHIPS, Chip};
pub use describe::{describe, near_miss};
pub use frame::{FrameOptions, Framed, crc16, frame};
pub use loader::{Entry, EntryKind, Loader, LoaderError, rk_crc32};
pub use maskrom::{StageReport, Timeouts, download_loader, download_stage, looks_like_loader};
pub use plan::{Inputs, Plan, PlanError, plan};
pub use report::Report;
pub use rockusb::{FlashInfo, Readiness, Rockusb};

/// The stage names a board's USB identities may carry (`[[usb]] stage`):
/// the maskrom, and the usbplug loader that answers rockusb after it.
pub const USB_STAGES: &[&str] = &["rom", "loader"];

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
    /// Finding or opening the device failed (the link error stays in the
    /// source chain, so the CLI can tell "not found" apart).
    #[error("{0}")]
    Link(#[from] LinkError),
    /// A rockusb loader (usbplug or U-Boot) answers where the maskrom
    /// should be.
    #[error(
        "the board at USB port {port} is not in maskrom: a rockusb loader (usbplug or U-Boot) answers there, bcdUSB 0x{bcd_usb:04x} notwithstanding (Rockchip's usbplug reports 0x0200 like a maskrom)"
    )]
    NotMaskrom { port: String, bcd_usb: u16 },
    /// Nothing came back at the port after the 0x472 stage.
    #[error("the usbplug did not appear at USB port {port} within {}", racklet_link::error::fmt_duration(*.within))]
    UsbplugMissing { port: String, within: Duration },
    /// The usbplug answers TEST UNIT READY, but "not ready" until the end.
    #[error(
        "the loader at USB port {port} still says \"not ready\" (TEST UNIT READY status 1) after {}",
        racklet_link::error::fmt_duration(*.within)
    )]
    UsbplugNotReady { port: String, within: Duration },
    /// The usbplug enumerated but does not answer rockusb.
    #[error("the usbplug came back at USB port {port} but does not answer TEST UNIT READY: {source}")]
    UsbplugSilent { port: String, source: Box<RockchipError> },
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
            RockchipError::Link(e) => e.class(),
            RockchipError::NotMaskrom { .. } => FailureClass::Rejected,
            RockchipError::UsbplugMissing { .. } | RockchipError::UsbplugNotReady { .. } => {
                FailureClass::Timeout
            }
            RockchipError::UsbplugSilent { source, .. } => source.class(),
            RockchipError::Interrupted => FailureClass::Interrupted,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            RockchipError::Link(e) => e.hint(),
            RockchipError::Transfer { source, .. } | RockchipError::Usb { source, .. } => source.hint(),
            RockchipError::NotMaskrom { .. } => {
                Some("power-cycle the board into maskrom, or add --force to try anyway".into())
            }
            RockchipError::UsbplugMissing { .. } | RockchipError::UsbplugNotReady { .. } => {
                Some("raise --stage-timeout if the board needs longer".into())
            }
            _ => None,
        }
    }
}
