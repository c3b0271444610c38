//! The canaan driver: the command line to `racklet_canaan`'s plan and boot,
//! its report to an [`Outcome`].

use std::sync::Arc;

use anyhow::Result;
use racklet_canaan::{Inputs, Options, RomOptions};
use racklet_image::{Description, Payload};
use racklet_sim::models::{self, Scenario};
use racklet_sim::serve::canaan as server;

use super::{Driver, Job, StorageJob, StorageSim};
use crate::args::storage::{EraseArgs, ReadArgs, ResetArgs, WriteArgs};
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
        racklet_canaan::SOCS.contains(&soc)
    }

    fn stages(&self) -> &'static [&'static str] {
        racklet_canaan::USB_STAGES
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
            dram_size: board.dram_size,
        };
        let plan = racklet_canaan::plan(&inputs, &target).map_err(classify)?;
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

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        let scenario = sim.scenario();
        models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        let fault = args
            .fault
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| classify(models::SimError::from(e)))?;
        let opts = server::Options {
            board: board.name.clone(),
            soc: board.soc.clone(),
            addr: args.tcp.clone(),
            fault,
            storage: args.sim_storage.clone(),
            medium: args.medium.clone(),
            keep: args.keep,
        };
        let on = |e: server::Event| match e {
            server::Event::Listening { addr } => {
                if let Some(w) = racklet_sim::exposure_warning(&addr) {
                    eprintln!("{w}");
                }
                outln!("tcp://{addr}");
                out.line(&format!(
                    "virtual {} ({}) serving JSON Lines USB transfers on {addr}",
                    board.soc.to_uppercase(),
                    board.name
                ));
            }
            server::Event::Session { peer } => out.line(&format!("session from {peer}")),
            server::Event::Verdict { verdict, .. } => out.line(&match verdict {
                racklet_sim::rom::Verdict::Started { summary } => format!("verdict: ok: {summary}"),
                racklet_sim::rom::Verdict::NotStarted { why } => format!("verdict: failed: {why}"),
            }),
        };
        server::serve(&opts, &on).map_err(classify)
    }

    fn storage_verbs(&self) -> &'static [&'static str] {
        &["write", "read", "erase", "reset"]
    }

    fn attach_storage_sim(&self, sim: &StorageSim) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
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
        let scenario = Scenario {
            fault: sim.fault.clone(),
            storage: sim.target.sim.sim_storage.clone(),
            storage_medium: sim.medium.clone(),
            storage_loader: true,
            ..Scenario::at(&sim.port_path)
        };
        models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    fn write(&self, job: &mut StorageJob, a: &WriteArgs) -> Result<Outcome> {
        let Some(image) = a.image.clone() else {
            return Err(crate::error::bad_input(format!(
                "give the image to write: `racklet-flash write {} IMAGE --medium sd --loader loader_mmc.bin`",
                job.board.name
            )));
        };
        if !a.place.partition.is_empty() {
            return Err(crate::error::bad_input(
                "--partition: the K230's kburn loader writes by offset (--at) or a .kdimg's own parts"
                    .to_string(),
            ));
        }
        let verb = racklet_canaan::storage::Verb::Write {
            image,
            at: a.place.at,
            verify: !a.no_verify,
            reboot: a.reboot,
        };
        storage(job, a.place.medium.clone(), &verb, None)
    }

    fn read(&self, job: &mut StorageJob, a: &ReadArgs) -> Result<Outcome> {
        let (Some(at), Some(size)) = (a.place.at, a.size) else {
            return Err(crate::error::bad_input("read needs --at and --size on K230 boards".to_string()));
        };
        let verb = racklet_canaan::storage::Verb::Read { at, size };
        storage(job, a.place.medium.clone(), &verb, Some(&a.output))
    }

    fn erase(&self, job: &mut StorageJob, a: &EraseArgs) -> Result<Outcome> {
        let at = a.place.at.unwrap_or(0);
        let size = match (a.size, a.whole) {
            (Some(n), _) => Some(n),
            (None, true) => None,
            (None, false) => {
                return Err(crate::error::bad_input("erase needs --size N (or --whole)".to_string()));
            }
        };
        storage(job, a.place.medium.clone(), &racklet_canaan::storage::Verb::Erase { at, size }, None)
    }

    fn reset(&self, job: &mut StorageJob, a: &ResetArgs) -> Result<Outcome> {
        if a.maskrom {
            return Err(crate::error::bad_input(
                "--maskrom: the kburn loader's REBOOT resets the chip; it enters its boot ROM when it finds nothing to boot (or with BOOT held)".to_string(),
            ));
        }
        // The loader's REBOOT: the plan picks the medium its session probes.
        storage(job, None, &racklet_canaan::storage::Verb::Reset, None)
    }
}

/// Plans and runs one storage verb.
fn storage(
    job: &mut StorageJob,
    medium: Option<String>,
    verb: &racklet_canaan::storage::Verb,
    output: Option<&std::path::Path>,
) -> Result<Outcome> {
    let t = job.target;
    let inputs = racklet_canaan::storage::Inputs {
        loader: t.bring_up.loader.clone(),
        loader_address: t.bring_up.loader_address,
        medium,
    };
    let target = job.board.target();
    let plan = racklet_canaan::storage::plan(&inputs, verb, &target).map_err(classify)?;
    let opts = Options {
        rom: RomOptions { accept_unknown_cpu: t.connect.force, ..RomOptions::default() },
        follow: false,
        next_stage_wait: t
            .connect
            .stage_timeout
            .unwrap_or(racklet_link::connect::STAGE_TIMEOUT)
            .max(racklet_canaan::boot::NEXT_STAGE_WAIT),
    };
    // Put in place only when the device confirmed the whole read.
    let mut read = super::ReadSink::new(output, t.connect.force)?;
    let mut sink = |b: &[u8]| read.write(b);
    let report =
        racklet_canaan::storage::run(job.conn, &plan, &target, &opts, &mut sink).map_err(classify)?;
    read.commit()?;
    Ok(Outcome { facts: report.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
}
