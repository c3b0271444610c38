//! The fastboot driver (SpacemiT K1, T-Head TH1520): the command line to
//! `racklet_fastboot`'s plan and boot, its report to output.

use anyhow::Result;
use racklet_fastboot::storage;
use racklet_fastboot::{Inputs, Options};
use racklet_image::{Description, Payload};
use racklet_sim::models::Scenario;

use super::{Driver, Job, StorageJob, StorageSim};
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs};
use crate::error::classify;
use crate::job::{Outcome, SimCtx};

pub struct Fastboot;

pub static DRIVER: Fastboot = Fastboot;

/// The inputs of `maskrom`.
fn maskrom_inputs(a: &MaskromArgs) -> Inputs {
    Inputs {
        image: a.bin.clone(),
        then: a.fastboot.then.clone(),
        dram: a.rockchip.dram.clone(),
        // A payload that started is not a failure: the run waits for the
        // board's next stage only when the user asked for one (--then,
        // --follow); --stage-timeout 0 never waits.
        await_next: a.connect.stage_timeout != Some(std::time::Duration::ZERO)
            && (a.connect.follow || !a.fastboot.then.is_empty()),
        stage_timeout: a.connect.stage_timeout,
        force: a.connect.force,
    }
}

impl Driver for Fastboot {
    fn name(&self) -> &'static str {
        "fastboot"
    }

    fn flags(&self) -> Option<clap::Id> {
        <crate::args::fastboot::FastbootArgs as clap::Args>::group_id()
    }

    fn knows_soc(&self, soc: &str) -> bool {
        racklet_fastboot::plan::Soc::from_name(soc).is_some()
    }

    fn stages(&self) -> &'static [&'static str] {
        racklet_fastboot::USB_STAGES
    }

    fn plan(&self, board: &Board, a: &MaskromArgs) -> Result<()> {
        racklet_fastboot::plan(&maskrom_inputs(a), &board.target()).map(drop).map_err(classify)
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let a = job.args;
        let target = job.board.target();
        let plan = racklet_fastboot::plan(&maskrom_inputs(a), &target).map_err(classify)?;
        let opts = Options { force: a.connect.force, ..Default::default() };
        let report = racklet_fastboot::boot(job.conn, &plan, &target, &opts).map_err(classify)?;
        let rom = report.facts().iter().find(|(k, _)| k == "boot ROM").map(|(_, v)| v.clone());
        Ok(Outcome { facts: report.facts(), rom, ..Outcome::default() })
    }

    fn storage_verbs(&self) -> &'static [&'static str] {
        &["write", "erase", "partitions", "oem"]
    }

    fn tcp(&self) -> bool {
        true
    }

    fn storage_scenario(&self, sim: &StorageSim) -> Result<Scenario> {
        // With --loader the virtual board starts in its boot ROM and the
        // run brings it up (K1: --then u-boot.itb); without, it is already
        // in vendor U-Boot's fastboot.
        // A bundle brings the board up from its ROM too (K1: FSBL, then u-boot.itb).
        let b = &sim.target.bring_up;
        let k1_bundle = b.bundle.is_some() && sim.board.soc == "k1";
        let from_rom = b.loader.is_some() || b.bundle.is_some();
        Ok(Scenario {
            next_stages: if k1_bundle { 1 } else { b.then.len() },
            storage_loader: from_rom,
            in_storage_stage: !from_rom,
            asks_only: matches!(sim.verb, "partitions" | "oem"),
            ..super::storage_scenario(sim)
        })
    }

    fn storage(&self, job: &mut StorageJob) -> Result<Outcome> {
        use racklet_link::request::Verb;
        let inputs = racklet_fastboot::request::storage(job.req).map_err(classify)?;
        let target = job.board.target();
        let opts = Options { force: job.req.force, ..Default::default() };
        let facts = match job.req.verb {
            Verb::Partitions | Verb::Oem => {
                let plan = storage::plan_session(&inputs, &target).map_err(classify)?;
                let (conn, req) = (&mut *job.conn, job.req);
                if req.verb == Verb::Oem {
                    racklet_fastboot::session::oem(conn, &plan, &target, &opts, &req.words)
                        .map_err(classify)?
                        .facts()
                } else {
                    let names = &req.partitions;
                    let r = racklet_fastboot::session::partitions(conn, &plan, &target, &opts, names);
                    r.map_err(classify)?.facts()
                }
            }
            _ => {
                let plan = storage::plan_storage(&inputs, &target).map_err(classify)?;
                storage::write(job.conn, &plan, &target, &opts).map_err(classify)?.facts()
            }
        };
        Ok(Outcome { facts, chip: Some(job.board.soc.clone()), ..Outcome::default() })
    }

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        racklet_fastboot::describe::describe(bytes)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_fastboot::describe::near_miss(bytes)
    }

    fn image(&self, board: &Board, _args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        racklet_fastboot::image::image(payload, &board.target()).map_err(classify)
    }

    fn scenario(&self, sim: &SimCtx) -> Result<Scenario> {
        // The user sends one more image with --then (K1: u-boot.itb).
        let next_stages = sim.args.fastboot.then.len();
        Ok(Scenario { next_stages, ..sim.scenario() })
    }
}
