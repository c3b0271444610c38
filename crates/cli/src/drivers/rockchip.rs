//! The Rockchip driver: the command line to `racklet_rockchip`'s plan and
//! boot, its report to facts; `info` and `--simulate` through the
//! protocol crate and the sim registry.

use anyhow::Result;
use racklet_image::{Description, Payload};

use super::{Driver, Job, StorageJob};
use crate::args::storage::{EraseArgs, PartitionsArgs, ReadArgs, ResetArgs, StorageTarget, WriteArgs};
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs};
use crate::error::classify;
use crate::job::Outcome;

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

    fn payload_slots(&self) -> &'static [&'static str] {
        &["--dram"]
    }

    fn plan(&self, board: &Board, a: &MaskromArgs) -> Result<()> {
        let inputs = a.rockchip.inputs(a.bin.as_ref(), a.connect.force);
        racklet_rockchip::plan(&inputs, &board.target()).map(drop).map_err(classify)
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

    fn image_flags(&self) -> Option<clap::Id> {
        <crate::args::rockchip::RockchipImageArgs as clap::Args>::group_id()
    }

    fn image(&self, board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        use racklet_rockchip::idb::{Stage, build};
        let tpl = match &args.rockchip.dram {
            Some(p) => Some((p.display().to_string(), board.target().read_stage(p)?)),
            None => None,
        };
        let spl_name = payload.path.display().to_string();
        let spl = Stage { file: &spl_name, bytes: &payload.bytes };
        let tpl = tpl.as_ref().map(|(f, b)| Stage { file: f, bytes: b });
        build(&board.soc, spl, tpl).map_err(classify)
    }

    fn image_notes(&self, board: &Board) -> Vec<String> {
        vec![format!(
            "the boot ROM reads it from sector 64 (byte 0x8000) of the SD card or eMMC: `racklet-flash write {} idbloader.img --at 64`, or dd seek=64",
            board.name
        )]
    }

    fn storage_verbs(&self) -> &'static [&'static str] {
        &["write", "read", "erase", "reset", "partitions"]
    }

    fn write(&self, job: &mut StorageJob, a: &WriteArgs) -> Result<Outcome> {
        if a.loader_to_storage {
            let Some(loader) = job.target.bring_up.loader.clone() else {
                return Err(crate::error::bad_input(format!(
                    "--loader-to-storage writes the --loader's IDB: `racklet-flash write {} --loader-to-storage --loader LOADER.bin`",
                    job.board.name
                )));
            };
            if a.place.at.is_some() || !a.place.partition.is_empty() {
                return Err(crate::error::bad_input(
                    "--loader-to-storage writes at LBA 64, where the boot ROM looks: drop --at/--partition"
                        .to_string(),
                ));
            }
            let verb = racklet_rockchip::storage::Verb::LoaderToStorage {
                loader,
                verify: !a.no_verify,
                force: job.target.connect.force,
            };
            return storage(job, &a.place.medium, &verb, None);
        }
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

/// The bring-up: `--loader RKBOOT`, or raw `--dram DDR --usbplug FILE` /
/// `--rkbin DIR` as `maskrom` takes them (none: the usbplug must answer).
/// With `--loader-to-storage` the loader is what is written, not the bring-up.
fn bring_up(t: &StorageTarget, loader_is_written: bool) -> Result<Option<racklet_rockchip::Inputs>> {
    if !t.bring_up.then.is_empty() || t.bring_up.loader_address.is_some() {
        return Err(crate::error::bad_input(
            "--then and --loader-address are not for Rockchip boards: --loader takes an RKBOOT loader (rkbin's boot_merger output)"
                .to_string(),
        ));
    }
    let rk = &t.bring_up.rockchip;
    let raw = !rk.given().is_empty();
    let loader = if loader_is_written { None } else { t.bring_up.loader.clone() };
    if raw && loader.is_some() {
        return Err(crate::error::bad_input_with_hint(
            "--loader and --dram/--usbplug/--rkbin both bring the board up: give one".to_string(),
            "an RKBOOT --loader carries its own DRAM init and usbplug".to_string(),
        ));
    }
    if !raw && loader.is_none() {
        return Ok(None);
    }
    Ok(Some(racklet_rockchip::Inputs {
        bin: loader.or_else(|| rk.usbplug.clone()),
        dram: rk.dram.clone(),
        rkbin: rk.rkbin.clone(),
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
    let inputs = bring_up(t, matches!(verb, racklet_rockchip::storage::Verb::LoaderToStorage { .. }))?;
    let plan = racklet_rockchip::storage::plan(inputs.as_ref(), verb, &target).map_err(classify)?;
    let opts = racklet_rockchip::Options { force: t.connect.force, ..Default::default() };
    // Put in place only when the device confirmed the whole read.
    let mut read = racklet_image::output::ReadSink::new(output, t.connect.force)?;
    let mut sink = |b: &[u8]| read.write(b);
    let report =
        racklet_rockchip::storage::run(job.conn, &plan, &target, &opts, &mut sink).map_err(classify)?;
    read.commit()?;
    Ok(Outcome { facts: report.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
}
