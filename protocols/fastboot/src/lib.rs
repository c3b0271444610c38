//! racklet-fastboot: a synchronous fastboot client, and the boot-ROM flows
//! of the two SoCs whose mask ROM speaks fastboot: SpacemiT K1 and T-Head
//! TH1520.
//!
//! - [`response`]: parsing of device responses (`OKAY`, `FAIL`, `DATA`,
//!   `INFO`, `TEXT`), cut at the first NUL.
//! - [`transport`]: the [`Transport`] trait and its two implementations,
//!   USB over any [`racklet_link::UsbLink`] and TCP (`FB01` handshake, u64
//!   big-endian length prefix).
//! - [`client`]: [`Fastboot`], the command set with a timeout on every step.
//! - [`k1`] and [`th1520`]: the ROM steps of each SoC and the K1 image formats.
//! - [`plan`]: the user's files checked against the board before any device
//!   is touched ([`plan::plan`] → [`Plan`] or a typed [`PlanError`]).
//! - [`boot`]: the whole run ([`boot::boot`]): find the ROM through the
//!   [`racklet_link::Connector`], identify it, send each stage, follow the
//!   board across re-enumeration by USB port path; returns a typed [`Report`].
//! - [`describe`]: what `racklet-flash info` says about FSBL.bin and bootinfo.
//! - [`image`]: the K1 FSBL.bin builder behind `racklet-flash image`.
//!
//! The crate never prints: INFO/TEXT lines and transfer progress go to a
//! [`racklet_link::ProgressSink`].

pub mod boot;
pub mod bundle;
pub mod client;
pub mod describe;
pub mod image;
pub mod k1;
pub mod plan;
pub mod report;
pub mod request;
pub mod response;
pub mod session;
pub mod sparse;
pub mod storage;
pub mod tcp;
pub mod th1520;
pub mod transport;

use racklet_link::{Classify, FailureClass, LinkError};

pub use boot::{Options, boot};
pub use client::{Departure, Fastboot, Timeouts};
pub use plan::{Inputs, Plan, PlanError, Soc, plan};
pub use report::{Report, StageKind};
pub use response::{Response, ResponseError, parse_response};
pub use transport::{TcpTransport, Transport, UsbTransport};

/// The stage names a board's USB identities may carry (`[[usb]] stage`):
/// the boot ROM, the K1 FSBL's fastboot, and the TH1520 U-Boot's.
pub const USB_STAGES: &[&str] = &["rom", "fsbl", "uboot"];

/// Longest command a fastboot device is guaranteed to accept (the 64-byte
/// buffers of ROMs and the Debian 29.0.6 client).
pub const MAX_COMMAND: usize = 64;
/// Longest response payload (status + text) the current spec allows.
pub const MAX_RESPONSE: usize = 256;
/// How many bytes one response read asks for, as AOSP does: 256, which
/// the USB transport rounds up to wMaxPacketSize. At full speed (the K1 ROM
/// on blank media) a 64- or 256-byte padded reply then completes the
/// transfer, which a 512-byte read would keep waiting on (the fastboot review).
pub const RESPONSE_READ: usize = MAX_RESPONSE;
/// The class triple of the fastboot interface.
pub const FASTBOOT_CLASS: (u8, u8, u8) = (0xff, 0x42, 0x03);

/// What went wrong on the wire, with the device, or with an image handed
/// to a ROM step.
#[derive(Debug, thiserror::Error)]
pub enum FastbootError {
    /// The link failed (timeout, disconnect, stall, I/O).
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A command longer than [`MAX_COMMAND`] bytes; refused before sending.
    #[error("the command {command:?} is {len} bytes long; fastboot commands are at most 64 bytes")]
    CommandTooLong { command: String, len: usize },
    /// A command with characters other than printable ASCII.
    #[error("the command {command:?} contains characters other than printable ASCII")]
    BadCommand { command: String },
    /// The device answered FAIL; `message` is its reason, verbatim.
    #[error("the device refused {command:?}: {message}")]
    Failed { command: String, message: String },
    /// The response did not start with a known status.
    #[error(
        "the device answered {command:?} with {response:?}, which has no known status (OKAY, FAIL, DATA, INFO, TEXT)"
    )]
    UnknownStatus { command: String, response: String },
    /// The response was longer than the protocol allows.
    #[error(
        "the device answered {command:?} with a {len}-byte response; fastboot responses are at most 256 bytes"
    )]
    ResponseTooLong { command: String, len: usize },
    /// `DATA` not followed by a hex size that fits 32 bits.
    #[error(
        "the device answered {command:?} with DATA and a malformed size {text:?} (expected hex digits of a 32-bit size)"
    )]
    BadDataSize { command: String, text: String },
    /// `DATA` announced another size than the one asked for.
    #[error("{command:?}: the device offered to take {accepted} bytes, but {wanted} were announced")]
    DataSizeMismatch { command: String, wanted: u32, accepted: u32 },
    /// A valid status that makes no sense here (OKAY to `download`, DATA to `getvar`).
    #[error("the device answered {command:?} with an unexpected {status}")]
    Unexpected { command: String, status: String },
    /// The data is larger than the device accepts in one download.
    #[error(
        "{what} is {size} bytes, but the device takes at most {max} bytes in one download (max-download-size)"
    )]
    TooLarge { what: String, size: u64, max: u64 },
    /// No fastboot interface on the USB device.
    #[error(
        "{device} has no fastboot interface (class 0xff, subclass 0x42, protocol 0x03 with a bulk IN and a bulk OUT endpoint)"
    )]
    NoInterface { device: String },
    /// The TCP handshake failed.
    #[error("TCP fastboot handshake with {peer} failed: {reason}")]
    Handshake { peer: String, reason: String },
    /// The K1 device found is not the boot ROM but a later stage (the FSBL
    /// or vendor U-Boot), which would boot away on `continue` (sheet §6.2):
    /// what it said about itself.
    #[error(
        "the K1 device at {device} is not the boot ROM (version-brom: {}, version: {}, serial: {}): it is the FSBL or U-Boot, which would boot away on `continue`",
        version_brom.as_deref().unwrap_or("not answered"),
        version.as_deref().unwrap_or("not answered"),
        serial.as_deref().unwrap_or("none")
    )]
    WrongStage {
        device: String,
        version_brom: Option<String>,
        version: Option<String>,
        serial: Option<String>,
    },
    /// An image is not in the format the ROM expects (checked again right
    /// before sending).
    #[error("{what}: {reason}")]
    BadImage { what: String, reason: k1::FsblError },
    /// An input could not be read while it was being sent (it changed or
    /// went away after the plan checked it).
    #[error("reading {what} while sending it: {source}")]
    ReadInput {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A stage was started, but the board's next stage did not appear at
    /// the same USB port path within the stage timeout (`source` says what
    /// was awaited where, and for how long).
    #[error("{} was started, but the board did not come back {on}", after.started())]
    NotBack {
        /// The stage whose start should have brought the next one up.
        after: StageKind,
        /// Where it was awaited: "on USB" (the same port path) or "over TCP"
        /// (the same address).
        on: &'static str,
        #[source]
        source: Box<LinkError>,
    },
}

impl Classify for FastbootError {
    fn class(&self) -> FailureClass {
        match self {
            FastbootError::Link(e) => e.class(),
            FastbootError::CommandTooLong { .. } | FastbootError::BadCommand { .. } => FailureClass::BadInput,
            FastbootError::TooLarge { .. } | FastbootError::BadImage { .. } => FailureClass::BadInput,
            FastbootError::Failed { .. } | FastbootError::DataSizeMismatch { .. } => FailureClass::Rejected,
            FastbootError::UnknownStatus { .. }
            | FastbootError::ResponseTooLong { .. }
            | FastbootError::BadDataSize { .. }
            | FastbootError::Unexpected { .. }
            | FastbootError::Handshake { .. }
            | FastbootError::ReadInput { .. } => FailureClass::Io,
            FastbootError::NoInterface { .. } | FastbootError::WrongStage { .. } => FailureClass::NotFound,
            // A wait that ran out is a timeout; a cancelled one, interrupted.
            FastbootError::NotBack { source, .. } => source.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            FastbootError::Link(e) => e.hint(),
            FastbootError::WrongStage { .. } => {
                Some("reset the board into download mode (hold FDL, tap RST), or pass --force to send anyway".into())
            }
            FastbootError::BadImage { reason, .. } => Some(reason.hint().into()),
            FastbootError::NotBack { after: StageKind::RamImage, .. } => Some(
                "a payload other than vendor U-Boot never comes back: leave out --follow (without it the run ends once the ROM started the image); vendor U-Boot may need longer: raise --stage-timeout".into(),
            ),
            FastbootError::NotBack { .. } => Some("raise --stage-timeout if the board needs longer".into()),
            FastbootError::NoInterface { .. } => {
                Some("this is not a fastboot device; check the board's USB ids in the board table".into())
            }
            _ => None,
        }
    }
}
