//! The driver registry: one entry per boot-ROM protocol, probe-rs style.
//!
//! A driver is the CLI's thin adapter to one protocol crate: it maps the
//! command line to the crate's `Inputs`/`Options`, calls the crate's `plan`
//! and `boot`, and maps its typed `Report` to an [`Outcome`]. Everything a
//! command does per protocol goes through [`Driver`]; nothing outside this
//! directory matches on the protocol. Adding a boot ROM adds one file here
//! and one line to [`DRIVERS`] (docs/adding-a-soc.md).

use std::sync::Arc;

use anyhow::Result;
use racklet_image::{Description, Payload};
use racklet_link::Connector;

use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs, SimArgs};
use crate::flows::Outcome;
use crate::output::Output;

mod canaan;
mod fastboot;
mod rockchip;
mod sophgo;
mod starfive;

/// One board's run of `maskrom`: the board, the command line, and the
/// connector to its devices (real or simulated buses).
pub struct Job<'a, 'c> {
    pub board: &'a Board,
    pub args: &'a MaskromArgs,
    pub conn: Connector<'c>,
    /// True when the buses are simulated (for messages only: a driver must
    /// not behave differently).
    pub simulate: bool,
    /// This board's console tty (`--monitor`, or the virtual board's own
    /// UART in a simulated run), for drivers whose ROM reports on it.
    pub console: Option<String>,
}

/// What the CLI needs from one protocol.
pub trait Driver: Sync {
    /// The protocol's name in the board table (`protocol = "rockchip"`).
    fn name(&self) -> &'static str;

    /// Loads and starts the payload (`racklet-flash maskrom`).
    fn maskrom(&self, job: &mut Job) -> Result<Outcome>;

    /// Decodes a file in one of the protocol's own formats (`info`).
    fn describe(&self, bytes: &[u8]) -> Option<Description>;

    /// What a file that almost has one of the protocol's headers got wrong.
    fn near_miss(&self, bytes: &[u8]) -> Option<String>;

    /// The storage boot image of `payload` (`racklet-flash image`).
    fn image(&self, board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>>;

    /// Puts the board's virtual ROM on the simulated buses of `sim`.
    fn attach_sim(&self, sim: &crate::flows::SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>>;

    /// Serves the board's virtual ROM outside the process (`racklet-flash sim`).
    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()>;
}

/// Every driver.
pub static DRIVERS: &[&dyn Driver] =
    &[&rockchip::DRIVER, &canaan::DRIVER, &sophgo::DRIVER, &starfive::DRIVER, &fastboot::DRIVER];

/// The driver of `board`.
pub fn of(board: &Board) -> &'static dyn Driver {
    by_name(board.protocol.name()).expect("every protocol of the board table has a driver")
}

/// The driver called `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Driver> {
    DRIVERS.iter().copied().find(|d| d.name() == name)
}

/// The first driver that recognises `bytes` as one of its formats.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    DRIVERS.iter().find_map(|d| d.describe(bytes))
}

/// The first driver whose format `bytes` almost have.
pub fn near_miss(bytes: &[u8]) -> Option<String> {
    DRIVERS.iter().find_map(|d| d.near_miss(bytes))
}
