//! racklet-starfive: StarFive JH7110 UART boot.
//!
//! The JH7110 boot ROM, strapped to UART (RGPIO1:RGPIO0 = 1,1), prints
//! `(C)StarFive` on UART0 at 115200 8N1 and polls with `C`: it is an
//! XMODEM-CRC receiver. It takes `header(0x400) ‖ payload`, checks the
//! header's CRC-32 against the payload, copies the payload to SRAM at
//! 0x0800_0000 and jumps there; on a mismatch it prints
//! `CRC Error, Try again` and polls again.
//!
//! - [`header`] builds and decodes the 0x400-byte header exactly as
//!   StarFive's `spl_tool` writes it.
//! - [`xmodem`] is the sender: XMODEM-CRC with 128-byte or 1K blocks,
//!   tolerant of the ROM's spurious NAKs, and YMODEM for the SPL's next stage.
//! - [`console`] tells the ROM's `C` polls from the `C`s in its banner and
//!   recognises its messages.
//! - [`boot`] ties them together: wait for the poll, send, watch the verdict.
//!
//! Everything is generic over [`racklet_link::SerialLink`]; nothing here
//! prints, sleeps without a reason or reads arguments.

pub mod boot;
pub mod console;
pub mod header;
pub mod xmodem;

use std::time::Duration;

use racklet_link::{Classify, FailureClass, LinkError};

pub use boot::{BootOptions, BootReport, boot_uart, send_next_stage};
pub use header::{Header, HeaderOptions};
pub use xmodem::{BlockSize, NakPolicy, XmodemConfig};

/// What went wrong, on the wire or in the input.
#[derive(Debug, thiserror::Error)]
pub enum StarfiveError {
    /// The link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The payload is larger than the chosen limit.
    #[error("the payload is {size} bytes; at most {limit} bytes fit ({why})")]
    TooLarge { size: u64, limit: u64, why: String },
    /// A header field cannot hold the value given.
    #[error("{field} 0x{value:x} does not fit the header's 32-bit field")]
    FieldTooWide { field: &'static str, value: u64 },
    /// A headed image whose CRC-32 does not match its payload.
    #[error(
        "the image header says CRC-32 0x{stored:08x} but the payload's is 0x{actual:08x}; the ROM would answer 'CRC Error, Try again'{hint}"
    )]
    HeaderCrc { stored: u32, actual: u32, hint: &'static str },
    /// The ROM never polled with a `C`.
    #[error("no XMODEM poll ('C') from the boot ROM within {}{seen}", racklet_link::error::fmt_duration(*.waited))]
    NoPoll { waited: Duration, seen: String },
    /// The receiver did not answer a block.
    #[error("{what}: no answer from the receiver after {tries} tries of {} each", racklet_link::error::fmt_duration(*.each))]
    NoAnswer { what: String, tries: u32, each: Duration },
    /// The receiver refused a block too many times.
    #[error(
        "block {block} was refused with {naks} NAKs in a row; the adapter or cable corrupts data (PL2303 and clone FT232 adapters are known to fail; genuine FTDI and CP2102N work)"
    )]
    TooManyNaks { block: u64, naks: u32 },
    /// The receiver cancelled the transfer (CAN CAN).
    #[error("the receiver cancelled the transfer (CAN) at block {block}")]
    Cancelled { block: u64 },
    /// The ROM checked the image and refused it.
    #[error("the boot ROM answered '{text}': the image's CRC-32 did not match what it received")]
    RomCrcError { text: String },
    /// The ROM restarted (banner or polls again) instead of running the image.
    #[error("the boot ROM restarted instead of running the image ({what})")]
    RomRestarted { what: String },
}

impl Classify for StarfiveError {
    fn class(&self) -> FailureClass {
        match self {
            StarfiveError::Link(e) => e.class(),
            StarfiveError::TooLarge { .. }
            | StarfiveError::FieldTooWide { .. }
            | StarfiveError::HeaderCrc { .. } => FailureClass::BadInput,
            StarfiveError::NoPoll { .. } | StarfiveError::NoAnswer { .. } => FailureClass::Timeout,
            StarfiveError::TooManyNaks { .. }
            | StarfiveError::Cancelled { .. }
            | StarfiveError::RomCrcError { .. }
            | StarfiveError::RomRestarted { .. } => FailureClass::Rejected,
        }
    }
}
