//! The Rockchip driver: the command line to `racklet_rockchip`'s plan and
//! boot, its report to facts; `info`, `--simulate` and `sim` through the
//! protocol crate and the sim registry.

use std::sync::Arc;

use anyhow::Result;
use racklet_image::{Description, Payload};
use racklet_link::FailureClass;
use racklet_sim::rom::Verdict;
use racklet_sim::serve::rockchip::{self as server, Event};

use super::{Driver, Job, StorageJob};
use crate::args::storage::{EraseArgs, PartitionsArgs, ReadArgs, ResetArgs, StorageTarget, WriteArgs};
use crate::boards::Board;
use crate::cli::{ImageArgs, SimArgs};
use crate::error::{classify, fail};
use crate::job::{Outcome, SimCtx};
use crate::output::Output;

pub struct Rockchip;

pub static DRIVER: Rockchip = Rockchip;

impl Driver for Rockchip {
    fn name(&self) -> &'static str {
        "rockchip"
    }

    fn flags(&self) -> Option<clap::Id> {
        <crate::args::rockchip::RockchipArgs as clap::Args>::group_id()
    }

    fn knows_soc(&self, soc: &str) -> bool {
        racklet_rockchip::chips::by_soc(soc).is_some()
    }

    fn stages(&self) -> &'static [&'static str] {
        racklet_rockchip::USB_STAGES
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let a = job.args;
        let target = job.board.target();
        let inputs = a.rockchip.inputs(a.bin.as_ref(), a.connect.force);
        let plan = racklet_rockchip::plan(&inputs, &target).map_err(classify)?;
        let opts = racklet_rockchip::Options {
            force: a.connect.force,
            expect_usbplug: a.rockchip.expect_usbplug,
            ..Default::default()
        };
        let report = racklet_rockchip::boot(job.conn, &plan, &target, &opts).map_err(classify)?;
        let rom = format!("{} maskrom (USB {})", report.soc.to_uppercase(), report.maskrom.id);
        Ok(Outcome {
            facts: report.facts(),
            chip: Some(report.soc.clone()),
            rom: Some(rom),
            ..Outcome::default()
        })
    }

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        racklet_rockchip::describe(bytes)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_rockchip::near_miss(bytes)
    }

    fn image(&self, board: &Board, _args: &ImageArgs, _payload: &Payload) -> Result<Vec<u8>> {
        Err(fail(
            FailureClass::Other,
            format!(
                "storage boot images (idbloader) for {} are not built by racklet-flash yet; use U-Boot's `mkimage -T rksd`",
                board.name
            ),
        ))
    }

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        let scenario = sim.scenario();
        racklet_sim::models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        let opts = server::Options {
            soc: board.soc.clone(),
            addr: args.tcp.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
            keep: args.keep,
            fault: args.fault.clone(),
        };
        let soc = board.soc.to_uppercase();
        let on = |e: Event<'_>| -> Result<(), server::HandlerError> {
            match e {
                Event::Listening { addr } => {
                    if let Some(w) = racklet_sim::exposure_warning(&addr) {
                        eprintln!("{w}");
                    }
                    outln!("tcp://{addr}");
                    out.line(&format!(
                        "virtual {soc} maskrom ({}) serving JSON Lines USB transfers on {addr}",
                        board.name
                    ));
                }
                Event::Session { peer } => out.line(&format!("session from {peer}")),
                Event::Received { number, index, body, transfers, crc, .. } => {
                    out.line(&format!(
                        "received 0x{index:x} stage: {} B in {transfers} transfers, crc {crc:04x}",
                        body.len()
                    ));
                    if let Some(dir) = &args.save {
                        let p = dir.join(format!("stage{number}-{index:x}.bin"));
                        racklet_image::output::write_file(&p, body, false)?;
                    }
                }
                Event::Verdict { verdict: Verdict::Started { summary }, .. } => {
                    out.line(&format!("verdict: ok: {summary}"))
                }
                Event::Verdict { verdict: Verdict::NotStarted { why }, .. } => {
                    out.line(&format!("verdict: failed: {why}"))
                }
                Event::SessionFailed { peer, error } => out.line(&format!("session from {peer}: {error}")),
            }
            Ok(())
        };
        server::serve(&opts, &on).map_err(|e| match e {
            // A stage that could not be saved: the write's own error (and class).
            server::ServeError::Handler(h) => anyhow::Error::from_boxed(h),
            e => classify(e),
        })
    }

    fn storage_verbs(&self) -> &'static [&'static str] {
        &["write", "read", "erase", "reset", "partitions"]
    }

    fn write(&self, job: &mut StorageJob, a: &WriteArgs) -> Result<Outcome> {
        let Some(image) = a.image.clone() else {
            return Err(crate::error::bad_input(format!(
                "give the image to write: `racklet-flash write {} IMAGE [--at LBA | --partition NAME] --loader LOADER.bin`",
                job.board.name
            )));
        };
        if a.reboot || a.no_reboot || a.sparse_limit.is_some() {
            return Err(crate::error::bad_input(
                "--reboot, --no-reboot and --sparse-limit are not for Rockchip boards: `racklet-flash reset` resets"
                    .to_string(),
            ));
        }
        let verb = racklet_rockchip::storage::Verb::Write {
            image,
            at: a.place.at,
            partition: one_partition(&a.place.partition)?,
            verify: !a.no_verify,
        };
        storage(job, &a.place.medium, &verb, None)
    }

    fn read(&self, job: &mut StorageJob, a: &ReadArgs) -> Result<Outcome> {
        let verb = racklet_rockchip::storage::Verb::Read {
            at: a.place.at,
            size: a.size,
            partition: one_partition(&a.place.partition)?,
        };
        storage(job, &a.place.medium, &verb, Some(&a.output))
    }

    fn erase(&self, job: &mut StorageJob, a: &EraseArgs) -> Result<Outcome> {
        let verb = racklet_rockchip::storage::Verb::Erase {
            at: a.place.at,
            size: a.size,
            partition: one_partition(&a.place.partition)?,
            whole: a.whole,
        };
        storage(job, &a.place.medium, &verb, None)
    }

    fn reset(&self, job: &mut StorageJob, a: &ResetArgs) -> Result<Outcome> {
        storage(job, &None, &racklet_rockchip::storage::Verb::Reset { maskrom: a.maskrom }, None)
    }

    fn partitions(&self, job: &mut StorageJob, a: &PartitionsArgs) -> Result<Outcome> {
        if a.place.at.is_some() || !a.place.partition.is_empty() {
            return Err(crate::error::bad_input(
                "partitions lists the whole GPT: drop --at/--partition".to_string(),
            ));
        }
        storage(job, &a.place.medium, &racklet_rockchip::storage::Verb::Partitions, None)
    }
}

/// `--partition NAME`: one, without `=FILE` (that is fastboot's).
fn one_partition(given: &[String]) -> Result<Option<String>> {
    match given {
        [] => Ok(None),
        [p] if !p.contains('=') => Ok(Some(p.clone())),
        _ => Err(crate::error::bad_input(
            "--partition: give one partition NAME; the usbplug writes one image per run".to_string(),
        )),
    }
}

/// The bring-up: `--loader RKBOOT` when given (the usbplug answering
/// already needs none).
fn bring_up(t: &StorageTarget) -> Result<Option<racklet_rockchip::Inputs>> {
    if !t.bring_up.then.is_empty() || t.bring_up.loader_address.is_some() {
        return Err(crate::error::bad_input(
            "--then and --loader-address are not for Rockchip boards: --loader takes an RKBOOT loader (rkbin's boot_merger output)"
                .to_string(),
        ));
    }
    Ok(t.bring_up.loader.as_ref().map(|l| racklet_rockchip::Inputs {
        bin: Some(l.clone()),
        force: t.connect.force,
        ..Default::default()
    }))
}

/// Plans and runs one storage verb.
fn storage(
    job: &mut StorageJob,
    medium: &Option<String>,
    verb: &racklet_rockchip::storage::Verb,
    output: Option<&std::path::Path>,
) -> Result<Outcome> {
    if let Some(m) = medium
        && !m.eq_ignore_ascii_case("emmc")
    {
        return Err(crate::error::bad_input(format!(
            "--medium {m}: the usbplug writes the storage it booted with; only emmc is known here"
        )));
    }
    let t = job.target;
    let target = job.board.target();
    let inputs = bring_up(t)?;
    let plan = racklet_rockchip::storage::plan(inputs.as_ref(), verb, &target).map_err(classify)?;
    let opts = racklet_rockchip::Options { force: t.connect.force, ..Default::default() };
    // Put in place only when the device confirmed the whole read.
    let mut read = super::ReadSink::new(output, t.connect.force)?;
    let mut sink = |b: &[u8]| read.write(b);
    let report =
        racklet_rockchip::storage::run(job.conn, &plan, &target, &opts, &mut sink).map_err(classify)?;
    read.commit()?;
    Ok(Outcome { facts: report.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
}
