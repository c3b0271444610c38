//! The fastboot driver (SpacemiT K1, T-Head TH1520): the command line to
//! `racklet_fastboot`'s plan and boot, its report to output.

use anyhow::Result;
use racklet_fastboot::storage::{self, StorageInputs};
use racklet_fastboot::{Inputs, Options};
use racklet_image::{Description, Payload};
use racklet_sim::models::Scenario;

use super::{Driver, Job, StorageJob, StorageSim};
use crate::args::storage::{EraseArgs, OemArgs, PartitionsArgs, WriteArgs};
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs};
use crate::error::{bad_input, classify};
use crate::job::{Outcome, SimCtx};

pub struct Fastboot;

pub static DRIVER: Fastboot = Fastboot;

impl Fastboot {
    /// The bring-up part of a storage run, from --loader and --then.
    fn storage_inputs(&self, job: &StorageJob) -> StorageInputs {
        let t = job.target;
        // A bundle gives the loader itself: the run starts from the ROM.
        let from_rom = t.bring_up.loader.is_some() || t.bring_up.bundle.is_some();
        let bring_up = from_rom.then(|| Inputs {
            image: t.bring_up.loader.clone(),
            then: t.bring_up.then.clone(),
            await_next: true,
            stage_timeout: t.connect.stage_timeout,
            force: t.connect.force,
            ..Default::default()
        });
        StorageInputs { bring_up, bundle: t.bring_up.bundle.clone(), ..Default::default() }
    }
}

/// The plan of a run that only asks vendor U-Boot (`partitions`, `oem`).
fn session(d: &Fastboot, job: &StorageJob) -> Result<(racklet_image::Target, storage::StoragePlan, Options)> {
    let target = job.board.target();
    let plan = storage::plan_session(&d.storage_inputs(job), &target).map_err(classify)?;
    Ok((target, plan, Options { force: job.target.connect.force, ..Default::default() }))
}

/// Plans and runs a storage run on the job's board.
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

fn run_storage(job: &mut StorageJob, inputs: &StorageInputs) -> Result<Outcome> {
    let target = job.board.target();
    let plan = storage::plan_storage(inputs, &target).map_err(classify)?;
    let opts = Options { force: job.target.connect.force, ..Default::default() };
    let report = storage::write(job.conn, &plan, &target, &opts).map_err(classify)?;
    Ok(Outcome { facts: report.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
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

    fn write(&self, job: &mut StorageJob, a: &WriteArgs) -> Result<Outcome> {
        let mut flash = Vec::new();
        for p in &a.place.partition {
            match (p.contains('='), &a.image) {
                (true, _) => flash.push(storage::partition_arg(p).map_err(classify)?),
                (false, Some(image)) if a.place.partition.len() == 1 => {
                    flash.push((p.clone(), image.clone()))
                }
                _ => return Err(bad_input(format!("--partition {p}: give it as NAME=FILE"))),
            }
        }
        if let (Some(image), Some(_)) = (&a.image, &a.target.bring_up.bundle) {
            return Err(bad_input(format!(
                "{}: --bundle gives every partition; leave out the image",
                image.display()
            )));
        }
        if let (Some(image), true) = (&a.image, a.place.partition.is_empty()) {
            return Err(bad_input(format!(
                "{}: say which partition it goes to: --partition NAME (fastboot flashes partitions by name)",
                image.display()
            )));
        }
        if a.place.at.is_some() || a.place.medium.is_some() {
            return Err(bad_input(
                "--at/--medium: vendor U-Boot's fastboot writes partitions by name (--partition NAME=FILE)",
            ));
        }
        let inputs = StorageInputs {
            flash,
            reboot: !a.no_reboot,
            sparse_limit: a.sparse_limit,
            ..self.storage_inputs(job)
        };
        run_storage(job, &inputs)
    }

    fn erase(&self, job: &mut StorageJob, a: &EraseArgs) -> Result<Outcome> {
        if a.place.partition.is_empty() || a.whole || a.size.is_some() || a.place.at.is_some() {
            return Err(bad_input(
                "erase on fastboot boards takes partitions by name: --partition NAME (repeatable)",
            ));
        }
        let inputs =
            StorageInputs { erase: a.place.partition.clone(), reboot: false, ..self.storage_inputs(job) };
        run_storage(job, &inputs)
    }

    fn partitions(&self, job: &mut StorageJob, a: &PartitionsArgs) -> Result<Outcome> {
        if a.place.at.is_some()
            || a.place.medium.is_some()
            || a.place.partition.iter().any(|p| p.contains('='))
        {
            return Err(bad_input(
                "partitions on fastboot boards takes only --partition NAME (more names to look up)",
            ));
        }
        let (target, plan, opts) = session(self, job)?;
        let r = racklet_fastboot::session::partitions(job.conn, &plan, &target, &opts, &a.place.partition)
            .map_err(classify)?;
        Ok(Outcome { facts: r.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
    }

    fn oem(&self, job: &mut StorageJob, a: &OemArgs) -> Result<Outcome> {
        let (target, plan, opts) = session(self, job)?;
        let r =
            racklet_fastboot::session::oem(job.conn, &plan, &target, &opts, &a.words).map_err(classify)?;
        Ok(Outcome { facts: r.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
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
