//! The fastboot driver (adapter over the flow in `crate::flows::fastboot`, which
//! moves into the protocol crate).

use std::sync::Arc;

use anyhow::Result;
use racklet_image::{Description, Payload};

use super::{Driver, Job};
use crate::boards::Board;
use crate::cli::{ImageArgs, SimArgs};
use crate::flows::{self, Outcome, SimCtx};
use crate::output::Output;

pub struct Fastboot;

pub static DRIVER: Fastboot = Fastboot;

impl Driver for Fastboot {
    fn name(&self) -> &'static str {
        "fastboot"
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let mut o = flows::run_legacy(job, flows::fastboot::maskrom)?;
        o.rom = o.facts.iter().find(|(k, _)| k == "boot ROM").map(|(_, v)| v.clone());
        Ok(o)
    }

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        flows::fastboot::info(std::path::Path::new(""), bytes).map(Into::into)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_fastboot::k1::near_miss(bytes)
    }

    fn image(&self, board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        flows::fastboot::image(board, args, payload)
    }

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        Ok(Box::new(flows::Legacy(flows::fastboot::attach_sim(sim)?)))
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        flows::fastboot::serve(board, args, out)
    }
}
