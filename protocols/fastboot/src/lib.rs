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
//! - [`k1`] and [`th1520`]: the ROM flows and the K1 image formats.
//!
//! The crate never prints: INFO/TEXT lines and transfer progress go to a
//! [`racklet_link::ProgressSink`].

pub mod client;
pub mod k1;
pub mod response;
pub mod th1520;
pub mod transport;

use racklet_link::{Classify, FailureClass, LinkError};

pub use client::{Departure, Fastboot, Timeouts};
pub use response::{Response, ResponseError, parse_response};
pub use transport::{TcpTransport, Transport, UsbTransport};

/// Longest command a fastboot device is guaranteed to accept (the 64-byte
/// buffers of ROMs and the Debian 29.0.6 client).
pub const MAX_COMMAND: usize = 64;
/// Longest response payload (status + text) the current spec allows.
pub const MAX_RESPONSE: usize = 256;
/// How many bytes one response read asks for on USB: one high-speed max
/// packet, so a short packet ends the transfer and the K1 ROM's trailing
/// garbage fits in the buffer.
pub const RESPONSE_READ: usize = 512;
/// The class triple of the fastboot interface.
pub const FASTBOOT_CLASS: (u8, u8, u8) = (0xff, 0x42, 0x03);

/// What went wrong, on the wire or with the input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// `DATA` not followed by exactly 8 hex digits.
    #[error(
        "the device answered {command:?} with DATA and a malformed size {text:?} (expected 8 hex digits)"
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
    /// The device is not in the stage the flow needs.
    #[error("{0}")]
    WrongStage(String),
    /// An input image is not in the format the ROM expects.
    #[error("{what}: {reason}")]
    BadImage { what: String, reason: String },
}

impl Classify for Error {
    fn class(&self) -> FailureClass {
        match self {
            Error::Link(e) => e.class(),
            Error::CommandTooLong { .. } | Error::BadCommand { .. } => FailureClass::BadInput,
            Error::TooLarge { .. } | Error::BadImage { .. } => FailureClass::BadInput,
            Error::Failed { .. } | Error::DataSizeMismatch { .. } => FailureClass::Rejected,
            Error::UnknownStatus { .. }
            | Error::ResponseTooLong { .. }
            | Error::BadDataSize { .. }
            | Error::Unexpected { .. }
            | Error::Handshake { .. } => FailureClass::Io,
            Error::NoInterface { .. } | Error::WrongStage(_) => FailureClass::NotFound,
        }
    }
}
