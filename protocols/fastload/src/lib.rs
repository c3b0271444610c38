//! racklet-fastload: the host side of fastload, the stage-1 fast loader for
//! UART boot ROMs (`docs/fastload.md`).
//!
//! * [`frame`]: the frames, without I/O (encode, and a decoder that skips
//!   noise and drops damaged frames);
//! * [`send::send_image`]: the whole exchange over a
//!   [`racklet_link::SerialLink`] — handshake, rate change with sync and
//!   fallback, windowed blocks with selective resend, the final check, GO.
//!
//! A board whose ROM loads the loader by XMODEM (the JH7110) calls
//! [`send_image`] on the same, still open link right after the ROM's
//! transfer; a loader that is already running (QEMU's `-kernel`) is the
//! same call on a freshly opened port.

pub mod frame;
pub mod send;

use std::time::Duration;

use racklet_link::error::fmt_duration;
use racklet_link::{Classify, FailureClass, LinkError};

pub use send::{Image, Info, Options, Report, send_image};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum FastloadError {
    /// The link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// No INFO answered HELLO.
    #[error("no fastload loader answered on {port} within {}", fmt_duration(*.waited))]
    NoLoader { port: String, waited: Duration },
    /// A step got no answer.
    #[error("{step}: no answer from the loader after {tries} tries")]
    NoAnswer { step: String, tries: u32 },
    /// The loader answered ERROR.
    #[error("the loader refused {step}: {message} (error {code})")]
    Refused { step: String, code: u8, message: String },
    /// The image does not fit where the loader can put it.
    #[error(
        "the image (0x{load:x} + 0x{len:x}) does not fit the loader's image window 0x{base:x} + 0x{size:x} clear of the loader at 0x{loader_start:x}..0x{loader_end:x}"
    )]
    DoesNotFit { load: u64, len: u64, base: u64, size: u64, loader_start: u64, loader_end: u64 },
    /// The image is empty.
    #[error("the image is empty")]
    Empty,
    /// A load address was given for an ELF, which says where it goes.
    #[error("--load is for raw binaries; this ELF says where it goes")]
    LoadForElf,
    /// One block was sent too often without an answer.
    #[error("block {block} of {blocks} got no acknowledgement after {sends} sends")]
    TooManySends { block: u32, blocks: u32, sends: u32 },
    /// The loader's CRC-32 of the image in memory is not the host's.
    #[error(
        "the loader's CRC-32 of the image is 0x{got:08x}, the host's 0x{want:08x}: the image was not started"
    )]
    ImageCrc { want: u32, got: u32 },
    /// An answer that makes no sense at this point.
    #[error("the loader answered {what}")]
    Protocol { what: String },
}

impl FastloadError {
    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            FastloadError::NoLoader { .. } => Some(
                "start the loader first (payloads/prebuilt/<board>/fastload.elf: QEMU -kernel, or the ROM's XMODEM), and check the port and that nothing else has it open",
            ),
            FastloadError::DoesNotFit { .. } => Some(
                "link the image inside the loader's window (racklet-flash info FILE shows where it is linked)",
            ),
            FastloadError::TooManySends { .. } | FastloadError::ImageCrc { .. } => {
                Some("the line corrupts too much: try a lower --baud, a shorter cable or another adapter")
            }
            _ => None,
        }
    }
}

impl Classify for FastloadError {
    fn class(&self) -> FailureClass {
        match self {
            FastloadError::Link(e) => e.class(),
            FastloadError::NoLoader { .. } => FailureClass::NotFound,
            FastloadError::NoAnswer { .. } | FastloadError::TooManySends { .. } => FailureClass::Timeout,
            FastloadError::Refused { .. } | FastloadError::ImageCrc { .. } => FailureClass::Rejected,
            FastloadError::DoesNotFit { .. } | FastloadError::Empty | FastloadError::LoadForElf => {
                FailureClass::BadInput
            }
            FastloadError::Protocol { .. } => FailureClass::Other,
        }
    }

    /// The fix, kept apart from the message (the inherent `hint`).
    fn hint(&self) -> Option<String> {
        FastloadError::hint(self).map(str::to_string)
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn the_fix_is_the_classified_hint() {
        let e =
            FastloadError::DoesNotFit { load: 0, len: 1, base: 2, size: 3, loader_start: 4, loader_end: 5 };
        assert_eq!(e.class(), FailureClass::BadInput);
        assert!(Classify::hint(&e).is_some_and(|h| h.contains("link the image inside")), "{e}");
        assert_eq!(Classify::hint(&FastloadError::Empty), None);
    }
}
