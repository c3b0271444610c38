//! racklet-sophgo: the Sophgo / CVITEK CV180x and SG200x mask-ROM USB download.
//!
//! The ROM enumerates as a USB CDC-ACM serial port (3346:1000) and drives the
//! transfer itself: every ACK names the slice of `fip.bin` it wants next
//! (see the crate README for the wire protocol and its sources).
//!
//! - [`plan`]: the user's inputs checked against the chip and boot core, and
//!   the fip.bin to send (as given, or built from a BL2);
//! - [`boot`]: the whole boot through a [`racklet_link::Connector`]: find the
//!   ROM's port, serve each session, follow the board across its
//!   re-enumerations by USB port path; a typed [`report::Report`];
//! - [`describe`]: `info` for fip.bin (param1, param2 and every part);
//! - [`console`]: the board's UART, read during the boot for the ROM's and
//!   the FSBL's verdict on each stage;
//! - [`packet`]: the 8-byte packet header, the tokens and the 16-byte ACK;
//! - [`fip`]: the `fip.bin` image (param1, BLCP, BL2, param2, DDR param,
//!   BLCP_2ND, monitor, LOADER_2ND), built as the vendor fiptool does and checked;
//! - [`session`]: the host side of one device-driven session, generic over
//!   any [`racklet_link::SerialLink`];
//! - [`chip`]: per-chip BL2 load addresses and entry points.
//!
//! The crate never prints: messages go to the connector's progress sink.

pub mod boot;
pub mod chip;
pub mod console;
pub mod describe;
pub mod fip;
pub mod packet;
pub mod plan;
pub mod report;
pub mod session;

pub use boot::{boot, boot_watching};
pub use chip::{Chip, Core};
pub use describe::{describe, near_miss};
pub use fip::{FipError, FipInfo};
pub use packet::{Ack, crc16};
pub use plan::{Inputs, Plan, PlanError, plan};
pub use report::Report;
pub use session::{Loader, Options, SessionOutcome, SophgoError};

/// The stage names a board's USB identities may carry (`[[usb]] stage`):
/// the boot ROM's CDC-ACM port.
pub const USB_STAGES: &[&str] = &["rom"];

/// USB vendor id of the ROM's CDC-ACM device ("CVITEK"); efuses may change it.
pub const ROM_VID: u16 = 0x3346;
/// USB product id of the ROM's CDC-ACM device ("USB Com Port").
pub const ROM_PID: u16 = 0x1000;
/// The line rate tools set; the ROM ignores it (opening the port is what counts).
pub const BAUD: u32 = 115_200;
