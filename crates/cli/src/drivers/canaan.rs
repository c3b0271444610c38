//! The canaan driver (adapter over the flow in `crate::flows::canaan`, which
//! moves into the protocol crate).

use std::sync::Arc;

use anyhow::Result;
use racklet_image::{Description, Payload};

use super::{Driver, Job};
use crate::boards::Board;
use crate::cli::{ImageArgs, SimArgs};
use crate::flows::{self, Outcome, SimCtx};
use crate::output::Output;

pub struct Canaan;

pub static DRIVER: Canaan = Canaan;

impl Driver for Canaan {
    fn name(&self) -> &'static str {
        "canaan"
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        flows::run_legacy(job, flows::canaan::maskrom)
    }

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        flows::canaan::info(std::path::Path::new(""), bytes).map(Into::into)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_canaan::header::near_miss(bytes)
    }

    fn image(&self, board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        flows::canaan::image(board, args, payload)
    }

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        // The sim's own model of the board's SoC decides what a started stage does.
        let scenario =
            racklet_sim::models::Scenario { port_path: sim.port_path.clone(), fault: sim.fault.clone() };
        racklet_sim::models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial)
            .map_err(crate::error::classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        flows::canaan::serve(board, args, out)
    }
}
