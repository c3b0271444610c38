//! racklet-sophgo: the Sophgo / CVITEK CV180x and SG200x mask-ROM USB download.
//!
//! The ROM enumerates as a USB CDC-ACM serial port (3346:1000) and drives the
//! transfer itself: every ACK names the slice of `fip.bin` it wants next
//! (see the crate README for the wire protocol and its sources).
//!
//! - [`packet`]: the 8-byte packet header, the tokens and the 16-byte ACK;
//! - [`fip`]: the `fip.bin` image (param1 header + BL2), built and checked;
//! - [`session`]: the host side of the device-driven sessions, generic over
//!   any [`racklet_link::SerialLink`];
//! - [`chip`]: per-chip BL2 load addresses and entry points.
//!
//! The crate never prints and never finds or reopens ports: the caller
//! follows the device across re-enumeration and hands each new link to
//! [`session::Loader::session`].

pub mod chip;
pub mod fip;
pub mod packet;
pub mod session;

pub use chip::{Chip, Core};
pub use fip::{FipError, FipInfo};
pub use packet::{Ack, crc16};
pub use session::{Loader, Options, SessionOutcome, SophgoError};

/// USB vendor id of the ROM's CDC-ACM device ("CVITEK"); efuses may change it.
pub const ROM_VID: u16 = 0x3346;
/// USB product id of the ROM's CDC-ACM device ("USB Com Port").
pub const ROM_PID: u16 = 0x1000;
/// The line rate tools set; the ROM ignores it (opening the port is what counts).
pub const BAUD: u32 = 115_200;
