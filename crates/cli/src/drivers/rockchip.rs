//! The Rockchip driver: the command line to `racklet_rockchip`'s plan and
//! boot, its report to facts; `info` and `--simulate` through the
//! protocol crate and the sim registry.

use anyhow::Result;
use racklet_image::{Description, Payload};

use super::{Driver, Job, StorageJob};
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

    fn storage(&self, job: &mut StorageJob) -> Result<Outcome> {
        let (inputs, verb) = racklet_rockchip::request::storage(job.req).map_err(classify)?;
        let target = job.board.target();
        let plan = racklet_rockchip::storage::plan(inputs.as_ref(), &verb, &target).map_err(classify)?;
        let opts = racklet_rockchip::Options { force: job.req.force, ..Default::default() };
        // Put in place only when the device confirmed the whole read.
        let mut read = racklet_image::output::ReadSink::new(job.output, job.req.force)?;
        let mut sink = |b: &[u8]| read.write(b);
        let report =
            racklet_rockchip::storage::run(job.conn, &plan, &target, &opts, &mut sink).map_err(classify)?;
        read.commit()?;
        Ok(Outcome { facts: report.facts(), chip: Some(job.board.soc.clone()), ..Outcome::default() })
    }
}
