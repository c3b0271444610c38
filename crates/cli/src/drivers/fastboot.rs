//! The fastboot driver (SpacemiT K1, T-Head TH1520): the command line to
//! `racklet_fastboot`'s plan and boot, its report to output.

use std::sync::Arc;

use anyhow::Result;
use racklet_fastboot::storage::{self, StorageInputs};
use racklet_fastboot::{Inputs, Options};
use racklet_image::{Description, Payload};
use racklet_sim::models::Scenario;
use racklet_sim::serve::fastboot::{self as server, Event};
use serde_json::json;

use super::{Driver, Job, StorageJob, StorageSim};
use crate::args::storage::{EraseArgs, WriteArgs};
use crate::boards::Board;
use crate::cli::{ImageArgs, SimArgs};
use crate::error::{bad_input, classify};
use crate::job::{Outcome, SimCtx};
use crate::output::{Mode, Output};

pub struct Fastboot;

pub static DRIVER: Fastboot = Fastboot;

impl Fastboot {
    /// The bring-up part of a storage run, from --loader and --then.
    fn storage_inputs(&self, job: &StorageJob) -> StorageInputs {
        let t = job.target;
        let bring_up = t.bring_up.loader.as_ref().map(|l| Inputs {
            image: Some(l.clone()),
            then: t.bring_up.then.clone(),
            await_next: true,
            stage_timeout: t.connect.stage_timeout,
            force: t.connect.force,
            ..Default::default()
        });
        StorageInputs { bring_up, ..Default::default() }
    }
}

/// Plans and runs a storage run on the job's board.
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

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let a = job.args;
        let target = job.board.target();
        let inputs = Inputs {
            image: a.bin.clone(),
            then: a.fastboot.then.clone(),
            dram: a.rockchip.dram.clone(),
            // A payload that started is not a failure: the run waits for
            // the board's next stage only when the user asked for one
            // (--then, --follow); --stage-timeout 0 never waits.
            await_next: a.connect.stage_timeout != Some(std::time::Duration::ZERO)
                && (a.connect.follow || !a.fastboot.then.is_empty()),
            stage_timeout: a.connect.stage_timeout,
            force: a.connect.force,
        };
        let plan = racklet_fastboot::plan(&inputs, &target).map_err(classify)?;
        let opts = Options { force: a.connect.force, ..Default::default() };
        let report = racklet_fastboot::boot(job.conn, &plan, &target, &opts).map_err(classify)?;
        let rom = report.facts().iter().find(|(k, _)| k == "boot ROM").map(|(_, v)| v.clone());
        Ok(Outcome { facts: report.facts(), rom, ..Outcome::default() })
    }

    fn storage_verbs(&self) -> &'static [&'static str] {
        &["write", "erase"]
    }

    fn tcp(&self) -> bool {
        true
    }

    fn attach_storage_sim(&self, sim: &StorageSim) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        // With --loader the virtual board starts in its boot ROM and the
        // run brings it up (K1: --then u-boot.itb); without, it is already
        // in vendor U-Boot's fastboot.
        let b = &sim.target.bring_up;
        let scenario = Scenario {
            fault: sim.fault.clone(),
            storage: sim.target.sim.sim_storage.clone(),
            next_stages: b.then.len(),
            ..Scenario::at(&sim.port_path)
        };
        racklet_sim::fastboot::attach_storage(&sim.board.soc, &scenario, b.loader.is_some(), &sim.usb)
            .map_err(classify)
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

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        racklet_fastboot::describe::describe(bytes)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_fastboot::describe::near_miss(bytes)
    }

    fn image(&self, board: &Board, _args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        racklet_fastboot::image::image(payload, &board.target()).map_err(classify)
    }

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        // The user sends one more image with --then (K1: u-boot.itb).
        let next_stages = sim.args.fastboot.then.len();
        let scenario = Scenario { next_stages, ..sim.scenario() };
        racklet_sim::models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        let address = args.tcp.as_deref().unwrap_or("127.0.0.1:5554");
        let mut opts = server::Options::new(&board.soc, address, args.fault.as_deref()).map_err(classify)?;
        opts.keep = args.keep;
        opts.storage = args.sim_storage.clone();
        opts.in_uboot = args.in_uboot;
        if let Some(d) = &args.save {
            std::fs::create_dir_all(d)
                .map_err(|e| bad_input(format!("{}: cannot create: {e}", d.display())))?;
        }
        let json = out.mode == Mode::Json;
        let log = |text: String, ev: serde_json::Value| if json { out.json(ev) } else { out.line(&text) };
        let on = |e: Event| -> Result<(), String> {
            match e {
                Event::Listening { address } => {
                    if let Some(w) = racklet_sim::exposure_warning(&address) {
                        eprintln!("{w}");
                    }
                    if json {
                        out.json(json!({"event":"listening","board":board.name,"address":format!("tcp:{address}")}));
                    } else {
                        outln!("tcp:{address}");
                        out.line(&serve_hint(board, args, &format!("tcp:{address}")));
                    }
                }
                Event::ConnectionError { peer, message } => log(
                    format!("connection from {peer}: {message}"),
                    json!({"event":"connection_error","peer":peer.to_string(),"message":message}),
                ),
                Event::Command { stage, command } => log(
                    format!("[{stage}] {command}"),
                    json!({"event":"command","stage":stage,"command":command}),
                ),
                Event::Received { index, stage, bytes } => {
                    let (sha, path) = (racklet_image::sha256_hex(bytes), format!("{index:02}-{stage}.bin"));
                    // Never through a planted symlink, never over an existing file.
                    let saved = args.save.as_ref().map(|d| d.join(path));
                    if let Some(p) = &saved {
                        racklet_image::output::write_file(p, bytes, false).map_err(|e| e.to_string())?;
                    }
                    let saved = saved.map(|p| p.display().to_string());
                    let at = saved.as_ref().map(|p| format!(", saved to {p}")).unwrap_or_default();
                    let ev = json!({"event":"received","stage":stage,"bytes":bytes.len(),"sha256":sha,"saved":saved});
                    log(format!("[{stage}] received {} bytes, sha256 {sha}{at}", bytes.len()), ev)
                }
                Event::Started { stage, what, bytes } => log(
                    format!("[{stage}] started {what} ({bytes} bytes)"),
                    json!({"event":"started","stage":stage,"what":what,"bytes":bytes}),
                ),
                Event::Verdict { summary } => {
                    log(format!("verdict: {summary}"), json!({"event":"verdict","summary":summary}))
                }
            }
            Ok(())
        };
        server::serve(&opts, &on).map_err(classify)
    }
}

/// What `sim --tcp` says it serves, with a command that works on it: one
/// run of racklet-flash (without --keep the server ends after it), or with
/// --keep also Debian's client (the virtual ROMs answer `getvar version`).
fn serve_hint(board: &Board, args: &SimArgs, at: &str) -> String {
    let (what, ours) = match args.in_uboot {
        true => (
            "vendor U-Boot fastboot",
            format!("racklet-flash write {} --partition NAME=FILE --port {at}", board.name),
        ),
        false => ("boot ROM", format!("racklet-flash maskrom {} FILE --port {at}", board.name)),
    };
    let theirs = format!("fastboot -s {at} getvar version");
    match args.keep {
        true => format!(
            "serving the virtual {} {what} of {} on {at}, session after session; try `{theirs}` or `{ours}`",
            board.soc, board.name
        ),
        false => format!(
            "serving one run of the virtual {} {what} of {} on {at}: `{ours}` (pass --keep to serve session after session, e.g. `{theirs}` first)",
            board.soc, board.name
        ),
    }
}
