//! The StarFive JH7110 driver: the command line to `racklet_starfive`'s
//! plan and boot, its report to an outcome.

use anyhow::Result;
use racklet_image::{Description, Payload};
use racklet_sim::models::Scenario;
use racklet_starfive::fast::FastInputs;
use racklet_starfive::storage::{self, ImageOptions};
use racklet_starfive::{BlockSize, Inputs, NakPolicy, Options};

use super::{Driver, Job, StorageJob, StorageSim};
use crate::args::starfive::XmodemNak;
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs};
use crate::error::classify;
use crate::job::Outcome;
use racklet_starfive::recovery::{RecoveryInputs, RecoveryOptions};

pub struct Starfive;

/// The files of a `maskrom` run (`--fast` with its loader and rate).
fn inputs(a: &MaskromArgs) -> Inputs {
    let s = &a.starfive;
    let fast = s.fast.then(|| FastInputs { loader: s.fast_loader.clone(), baud: s.fast_baud });
    Inputs { payload: a.bin.clone(), next_stage: s.then_ymodem.clone(), fast }
}

pub static DRIVER: Starfive = Starfive;

impl Driver for Starfive {
    fn name(&self) -> &'static str {
        "starfive"
    }

    fn flags(&self) -> Option<clap::Id> {
        <crate::args::starfive::StarfiveArgs as clap::Args>::group_id()
    }

    fn image_flags(&self) -> Option<clap::Id> {
        <crate::args::starfive::StarfiveImageArgs as clap::Args>::group_id()
    }

    fn knows_soc(&self, soc: &str) -> bool {
        racklet_starfive::SOCS.contains(&soc)
    }

    fn stages(&self) -> &'static [&'static str] {
        racklet_starfive::USB_STAGES
    }

    fn plan(&self, board: &Board, a: &MaskromArgs) -> Result<()> {
        racklet_starfive::plan(&inputs(a), &board.target()).map(drop).map_err(classify)
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let args = &job.args.starfive;
        let target = job.board.target();
        let plan = racklet_starfive::plan(&inputs(job.args), &target).map_err(classify)?;
        // A simulated board's UART is paced at its baud rate: the summary
        // may state throughput against it.
        let paced = job.args.connect.simulate;
        let mut opts = Options { low_latency: args.low_latency, paced, ..Default::default() };
        opts.boot.xmodem.block = if args.xmodem_128 { BlockSize::B128 } else { BlockSize::K1 };
        opts.boot.xmodem.nak_policy = match args.xmodem_nak {
            XmodemNak::Resend => NakPolicy::Resend,
            XmodemNak::Ignore => NakPolicy::Ignore,
        };
        let report = racklet_starfive::boot(job.conn, &plan, &target, &opts).map_err(classify)?;
        Ok(Outcome { facts: report.facts(), ..Outcome::default() })
    }

    fn storage_verbs(&self) -> &'static [&'static str] {
        &["write"]
    }

    fn storage_scenario(&self, sim: &StorageSim) -> Result<Scenario> {
        // What --recovery sends becomes the virtual recovery program (the
        // sim cannot run it); --sim-storage keeps its QSPI flash.
        Ok(Scenario { storage_loader: true, ..super::storage_scenario(sim) })
    }

    /// The QSPI flash through StarFive's recovery program, as vf2-recover
    /// writes it.
    fn storage(&self, job: &mut StorageJob) -> Result<Outcome> {
        racklet_starfive::request::check(job.req).map_err(classify)?;
        let s = job.starfive.cloned().unwrap_or_default();
        let inputs = RecoveryInputs { recovery: s.recovery, spl: s.spl, uboot: s.uboot };
        let target = job.board.target();
        let plan = racklet_starfive::recovery::plan(&inputs, &target).map_err(classify)?;
        if job.req.verify {
            job.conn.progress.say(
                "note: the recovery program cannot read the flash back; each file is confirmed by its 'updata success' only",
            );
        }
        let mut opts = RecoveryOptions { paced: job.target.connect.simulate, ..Default::default() };
        if s.xmodem_128 {
            opts.boot.xmodem.block = BlockSize::B128;
        }
        if s.xmodem_nak == Some(XmodemNak::Ignore) {
            opts.boot.xmodem.nak_policy = NakPolicy::Ignore;
        }
        let report = racklet_starfive::recovery::write(job.conn, &plan, &target, &opts).map_err(classify)?;
        Ok(Outcome { facts: report.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
    }

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        racklet_starfive::describe(bytes)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_starfive::near_miss(bytes)
    }

    fn image(&self, board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        let opts =
            ImageOptions { version: args.starfive.version, backup_offset: args.starfive.backup_offset };
        let s = storage::image(payload, &board.target(), &opts).map_err(classify)?;
        for note in &s.notes {
            eprintln!("warning: {note}");
        }
        Ok(s.bytes)
    }
}
