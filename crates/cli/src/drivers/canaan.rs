//! The canaan driver: the command line to `racklet_canaan`'s plan and boot,
//! its report to an [`Outcome`].

use std::sync::Arc;

use anyhow::Result;
use racklet_canaan::{Inputs, Options, RomOptions};
use racklet_image::{Description, Payload};
use racklet_sim::models::{self, Scenario};
use racklet_sim::serve::canaan as server;

use super::{Driver, Job};
use crate::boards::Board;
use crate::cli::{ImageArgs, SimArgs};
use crate::error::classify;
use crate::job::{Outcome, SimCtx};
use crate::output::Output;

pub struct Canaan;

pub static DRIVER: Canaan = Canaan;

impl Driver for Canaan {
    fn name(&self) -> &'static str {
        "canaan"
    }

    fn flags(&self) -> Option<clap::Id> {
        <crate::args::canaan::CanaanArgs as clap::Args>::group_id()
    }

    fn knows_soc(&self, soc: &str) -> bool {
        matches!(soc, "k230" | "k230d")
    }

    fn stages(&self) -> &'static [&'static str] {
        &["rom", "loader"]
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let (board, a) = (job.board, job.args);
        let target = board.target();
        let inputs = Inputs {
            payload: a.bin.clone(),
            loads: a.canaan.loads.clone(),
            run: a.canaan.run,
            dram: a.rockchip.dram.clone(),
            force: a.connect.force,
        };
        let plan = racklet_canaan::plan(&inputs, &target).map_err(classify)?;
        let opts = Options {
            rom: RomOptions { accept_unknown_cpu: a.connect.force, ..RomOptions::default() },
            follow: a.connect.follow,
        };
        let report = racklet_canaan::boot(job.conn, &plan, &target, &opts).map_err(classify)?;
        let rom = match &report.chip {
            racklet_canaan::report::Chip::BootRom => "K230 boot ROM".to_string(),
            racklet_canaan::report::Chip::Unknown { reply } => format!("unknown ({reply:?}, forced)"),
        };
        Ok(Outcome {
            facts: report.facts(),
            chip: Some(job.board.soc.clone()),
            rom: Some(rom),
            ..Outcome::default()
        })
    }

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        racklet_canaan::describe(bytes)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_canaan::near_miss(bytes)
    }

    fn image(&self, board: &Board, _args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        racklet_canaan::image::image(payload, &board.target()).map_err(classify)
    }

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        let scenario = Scenario { fault: sim.fault.clone(), ..Scenario::at(&sim.port_path) };
        models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, _out: &Arc<Output>) -> Result<()> {
        let fault = args
            .fault
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| classify(models::SimError::from(e)))?;
        let opts = server::Options { board: board.name.clone(), soc: board.soc.clone(), fault };
        server::serve(&opts).map_err(classify)
    }
}
