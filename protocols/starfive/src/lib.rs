//! racklet-starfive: StarFive JH7110 UART boot.
//!
//! The JH7110 boot ROM, strapped to UART (RGPIO1:RGPIO0 = 1,1), prints
//! `(C)StarFive` on UART0 at 115200 8N1 and polls with `C`: it is an
//! XMODEM-CRC receiver. It takes `header(0x400) ‖ payload`, checks the
//! header's CRC-32 against the payload, copies the payload to SRAM at
//! the board's load address (0x0800_0000) and jumps there; on a mismatch it
//! prints `CRC Error, Try again` and polls again.
//!
//! The flow, as every protocol crate of racklet-flash offers it:
//! - [`plan()`] (pure): the payload as a headed image (a headed input is
//!   checked and taken as it is, an ELF or raw binary is checked against
//!   the board and wrapped), the optional next stage for U-Boot SPL;
//!   failures are [`PlanError`]s.
//! - [`boot()`]: find the UART through the [`racklet_link::Connector`],
//!   send the image to the ROM, feed the SPL's YMODEM request, and return a
//!   [`Report`]; failures are [`StarfiveError`]s.
//! - [`describe()`] and [`near_miss`]: what `racklet-flash info` says about
//!   a headed image, and about a damaged one.
//! - [`storage::image`]: the headed image for storage (`racklet-flash image`).
//!
//! The codecs underneath, sans-I/O where they can be:
//! - [`header`] builds and decodes the 0x400-byte header exactly as
//!   StarFive's `spl_tool` writes it.
//! - [`xmodem`] is the sender: XMODEM-CRC with 128-byte or 1K blocks,
//!   tolerant of the ROM's spurious NAKs, and YMODEM for the SPL's next stage.
//! - [`console`] tells the ROM's `C` polls from the `C`s in its banner and
//!   recognises its messages.
//!
//! Everything is generic over [`racklet_link::SerialLink`]; nothing here
//! prints, sleeps without a reason or reads arguments.

pub mod boot;
pub mod console;
pub mod describe;
pub mod fast;
pub mod header;
pub mod plan;
pub mod recovery;
pub mod report;
pub mod request;
pub mod storage;
pub mod xmodem;

use std::time::Duration;

use racklet_link::{Classify, FailureClass, LinkError};

pub use boot::{BootOptions, BootReport, Options, boot, boot_uart, send_next_stage};
pub use describe::describe;
pub use header::{Header, HeaderError, HeaderOptions, near_miss};
pub use plan::{ImageKind, Inputs, NextStage, Plan, PlanError, plan};
pub use report::Report;
pub use xmodem::{BlockSize, NakPolicy, XmodemConfig};

/// The SoCs this crate boots, as the board table names them.
pub const SOCS: &[&str] = &["jh7110"];

/// The stage names a board's USB identities may carry: none, the ROM is
/// reached through a plain USB-UART.
pub const USB_STAGES: &[&str] = &[];

/// What went wrong on the wire.
#[derive(Debug, thiserror::Error)]
pub enum StarfiveError {
    /// The link failed (finding, opening, reading or writing the UART).
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The ROM never polled with a `C`; `printed` is what the port showed
    /// meanwhile (empty: nothing).
    #[error("no XMODEM poll ('C') from the boot ROM within {} ({})", racklet_link::error::fmt_duration(*.waited), shown(printed))]
    NoPoll { waited: Duration, printed: String },
    /// The started payload never asked for its next stage (no YMODEM `C`).
    #[error("the payload did not ask for its next stage within {} ({})", racklet_link::error::fmt_duration(*.waited), shown(printed))]
    NoNextStageRequest { waited: Duration, printed: String },
    /// The receiver did not answer a block.
    #[error("{what}: no answer from the receiver after {tries} tries of {} each", racklet_link::error::fmt_duration(*.each))]
    NoAnswer { what: String, tries: u32, each: Duration },
    /// The receiver refused a block too many times.
    #[error("block {block} was refused with {naks} NAKs in a row; the adapter or cable corrupts data")]
    TooManyNaks { block: u64, naks: u32 },
    /// The receiver cancelled the transfer (CAN CAN).
    #[error("the receiver cancelled the transfer (CAN) at block {block}")]
    Cancelled { block: u64 },
    /// The ROM checked the image and refused it.
    #[error("the boot ROM answered '{text}': the image's CRC-32 did not match what it received")]
    RomCrcError { text: String },
    /// The recovery program did not say what the flow waits for.
    #[error("{step}: nothing within {} ({})", racklet_link::error::fmt_duration(*.waited), shown(printed))]
    RecoveryNoAnswer { step: recovery::Step, waited: Duration, printed: String },
    /// The image given as the recovery program started as U-Boot SPL.
    #[error("{}: the ROM started it and it is U-Boot SPL, not the recovery program ({})", path.display(), shown(printed))]
    NotRecovery { path: std::path::PathBuf, printed: String },
    /// The recovery program showed its menu again without `updata success`.
    #[error(
        "the recovery program did not write the {what}: it showed its menu again without 'updata success' ({})",
        shown(printed)
    )]
    UpdateFailed { what: String, printed: String },
    /// The ROM restarted (banner or polls again) instead of running the image.
    #[error("the boot ROM restarted instead of running the image ({what})")]
    RomRestarted { what: String },
    /// The fastload loader the ROM started failed to take the payload.
    #[error("fastload: {0}")]
    Fastload(#[from] racklet_fastload::FastloadError),
}

/// What a port printed, for a message.
fn shown(printed: &str) -> String {
    if printed.is_empty() { "the port stayed silent".into() } else { format!("the port printed: {printed}") }
}

impl Classify for StarfiveError {
    fn class(&self) -> FailureClass {
        match self {
            StarfiveError::Link(e) => e.class(),
            StarfiveError::Fastload(e) => e.class(),
            StarfiveError::NoPoll { .. }
            | StarfiveError::NoNextStageRequest { .. }
            | StarfiveError::NoAnswer { .. }
            | StarfiveError::RecoveryNoAnswer { .. } => FailureClass::Timeout,
            StarfiveError::TooManyNaks { .. }
            | StarfiveError::Cancelled { .. }
            | StarfiveError::RomCrcError { .. }
            | StarfiveError::UpdateFailed { .. }
            | StarfiveError::NotRecovery { .. }
            | StarfiveError::RomRestarted { .. } => FailureClass::Rejected,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StarfiveError::Link(e) => e.hint(),
            StarfiveError::Fastload(racklet_fastload::FastloadError::Link(e)) => e.hint(),
            StarfiveError::Fastload(e) => racklet_fastload::FastloadError::hint(e).map(String::from),
            StarfiveError::NoPoll { .. } => Some(
                "check the boot-mode switches (UART is 1,1), the wiring and that the board was power-cycled; --wait gives it longer".into(),
            ),
            StarfiveError::NoNextStageRequest { .. } => Some(
                "U-Boot SPL built with CONFIG_SPL_YMODEM_SUPPORT asks with C after 'Trying to boot from UART'; is the payload such an SPL? --stage-timeout gives it longer".into(),
            ),
            StarfiveError::TooManyNaks { .. } => Some(
                "PL2303 and clone FT232 adapters are known to fail; genuine FTDI and CP2102N work".into(),
            ),
            StarfiveError::RecoveryNoAnswer { step, .. } => Some(step.hint()),
            StarfiveError::NotRecovery { .. } => Some(
                "--recovery takes StarFive's jh7110-recovery-*.bin; the SPL goes to --spl".into(),
            ),
            StarfiveError::UpdateFailed { .. } => Some(
                "power-cycle the board and run the write again; the flash may hold a partial update".into(),
            ),
            _ => None,
        }
    }
}
