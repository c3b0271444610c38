//! The Sophgo CV1800B / SG2000 / SG2002 driver: flags to
//! `racklet_sophgo::Inputs`, `plan`, `boot`, the report to an [`Outcome`].

use anyhow::Result;
use racklet_image::{Description, Payload};
use racklet_sim::models::Scenario;
use racklet_sophgo::Inputs;

use super::{Driver, Job};
use crate::args::sophgo::Core;
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs};
use crate::error::classify;
use crate::job::{Outcome, SimCtx};

pub struct Sophgo;

pub static DRIVER: Sophgo = Sophgo;

fn inputs(a: &MaskromArgs) -> Inputs {
    Inputs {
        bin: a.bin.clone(),
        dram: a.rockchip.dram.clone(),
        core: a.sophgo.core.map(Into::into),
        main: a.sophgo.main_session,
        usb_id: a.sophgo.usb_id,
    }
}

impl Driver for Sophgo {
    fn name(&self) -> &'static str {
        "sophgo"
    }

    fn flags(&self) -> Option<clap::Id> {
        <crate::args::sophgo::SophgoArgs as clap::Args>::group_id()
    }

    fn knows_soc(&self, soc: &str) -> bool {
        racklet_sophgo::Chip::from_soc(soc).is_some()
    }

    fn stages(&self) -> &'static [&'static str] {
        racklet_sophgo::USB_STAGES
    }

    fn plan(&self, board: &Board, a: &MaskromArgs) -> Result<()> {
        racklet_sophgo::plan(&inputs(a), &board.target()).map(drop).map_err(classify)
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let target = job.board.target();
        let plan = racklet_sophgo::plan(&inputs(job.args), &target).map_err(classify)?;
        let opts = racklet_sophgo::Options::default();
        // The ROM says on its UART whether it took each stage: read it
        // during the boot when the board's console is given.
        let mut console = match &job.console {
            Some(tty) => Some(crate::console::open(tty, job.args.baud).map_err(|e| {
                crate::error::add_hint(
                    e,
                    "--monitor names the board's UART console (a USB-UART adapter on its pins)",
                )
            })?),
            None => None,
        };
        let report = racklet_sophgo::boot_watching(
            job.conn,
            &plan,
            &target,
            &opts,
            console.as_mut().map(|c| &mut **c as &mut dyn racklet_link::SerialLink),
        )
        .map_err(classify)?;
        drop(console);
        let chip = report.chip.name().to_string();
        Ok(Outcome {
            facts: report.facts(),
            chip: Some(job.board.soc.clone()),
            rom: Some(format!("{chip} boot ROM")),
            ..Outcome::default()
        })
    }

    fn describe(&self, bytes: &[u8]) -> Option<Description> {
        racklet_sophgo::describe(bytes)
    }

    fn near_miss(&self, bytes: &[u8]) -> Option<String> {
        racklet_sophgo::near_miss(bytes)
    }

    fn image(&self, board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
        racklet_sophgo::plan::image_parts(payload, &args.sophgo.parts(), &board.target()).map_err(classify)
    }

    fn scenario(&self, sim: &SimCtx) -> Result<Scenario> {
        let a = &sim.args.sophgo;
        let mut sc = Scenario::at(&sim.port_path);
        sc.fault = sim.fault.clone();
        sc.core = a.core.map(|c| if c == Core::Arm { "arm" } else { "riscv" }.to_string());
        sc.usb_id = a.usb_id;
        // The board's UART, for --monitor; the link's speed and bus time, for --sim-speed.
        sc.console = !sim.args.monitor.is_empty();
        sc.speed = sim.args.sim.sim_speed.map(|s| match s {
            crate::args::connect::SimSpeed::High => racklet_sim::usb::BusSpeed::High,
            crate::args::connect::SimSpeed::Full => racklet_sim::usb::BusSpeed::Full,
        });
        if let (true, Some(p)) = (a.main_session, &sim.args.bin) {
            // A running BL2 asks for as many bytes as the file has.
            let what = format!("a stage of {} can be", sim.board.name);
            sc.running_load = Some(racklet_image::check_input(p, sim.board.largest_stage(), &what)? as u32);
        }
        Ok(sc)
    }
}
