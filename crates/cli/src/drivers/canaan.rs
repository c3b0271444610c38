//! The canaan driver: the command line to `racklet_canaan`'s plan and boot,
//! its report to an [`Outcome`].

use anyhow::Result;
use racklet_canaan::{Inputs, Options, RomOptions};
use racklet_image::{Description, Payload};
use racklet_sim::models::Scenario;

use super::{Driver, Job, StorageJob, StorageSim};
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs};
use crate::error::classify;
use crate::job::Outcome;

pub struct Canaan;

fn inputs(board: &Board, a: &MaskromArgs) -> Inputs {
    Inputs {
        payload: a.bin.clone(),
        loads: a.canaan.loads.clone(),
        run: a.canaan.run,
        dram: a.rockchip.dram.clone(),
        force: a.connect.force,
        dram_size: board.dram_size,
    }
}

pub static DRIVER: Canaan = Canaan;

impl Driver for Canaan {
    fn name(&self) -> &'static str {
        "canaan"
    }

    fn flags(&self) -> Option<clap::Id> {
        <crate::args::canaan::CanaanArgs as clap::Args>::group_id()
    }

    fn knows_soc(&self, soc: &str) -> bool {
        racklet_canaan::SOCS.contains(&soc)
    }

    fn stages(&self) -> &'static [&'static str] {
        racklet_canaan::USB_STAGES
    }

    fn plan(&self, board: &Board, a: &MaskromArgs) -> Result<()> {
        racklet_canaan::plan(&inputs(board, a), &board.target()).map(drop).map_err(classify)
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let (board, a) = (job.board, job.args);
        let target = board.target();
        let plan = racklet_canaan::plan(&inputs(board, a), &target).map_err(classify)?;
        let opts = Options {
            rom: RomOptions { accept_unknown_cpu: a.connect.force, ..RomOptions::default() },
            follow: a.connect.follow,
            next_stage_wait: a.canaan.loader_wait,
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
        racklet_canaan::describe(bytes).or_else(|| racklet_canaan::kdimg::describe(bytes))
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_canaan::near_miss(bytes)
    }

    fn image(&self, board: &Board, _args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        racklet_canaan::image::image(payload, &board.target()).map_err(classify)
    }

    fn image_notes(&self, _board: &Board) -> Vec<String> {
        racklet_canaan::image::notes()
    }

    fn storage_verbs(&self) -> &'static [&'static str] {
        &["write", "read", "erase", "reset"]
    }

    fn storage_scenario(&self, sim: &StorageSim) -> Result<Scenario> {
        // A medium the loader does not know is the client's bad input, said
        // before the virtual board is made of it.
        if let Some(m) = &sim.medium
            && racklet_canaan::kburn::Medium::from_name(m).is_none()
        {
            return Err(classify(racklet_canaan::storage::StoragePlanError::UnknownMedium {
                given: m.clone(),
            }));
        }
        // Whatever --loader uploads becomes the virtual kburn loader (the
        // sim cannot run it); --sim-storage keeps the --medium written.
        Ok(Scenario { storage_loader: true, ..super::storage_scenario(sim) })
    }

    fn storage(&self, job: &mut StorageJob) -> Result<Outcome> {
        let (inputs, verb) = racklet_canaan::request::storage(job.req).map_err(classify)?;
        let target = job.board.target();
        let plan = racklet_canaan::storage::plan(&inputs, &verb, &target).map_err(classify)?;
        let opts = Options::storage(job.req.force, job.req.stage_timeout);
        // Put in place only when the device confirmed the whole read.
        let mut read = racklet_image::output::ReadSink::new(job.output, job.req.force)?;
        let mut sink = |b: &[u8]| read.write(b);
        let report =
            racklet_canaan::storage::run(job.conn, &plan, &target, &opts, &mut sink).map_err(classify)?;
        read.commit()?;
        Ok(Outcome { facts: report.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
    }
}
