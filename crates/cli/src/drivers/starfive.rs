//! The StarFive JH7110 driver: the command line to `racklet_starfive`'s
//! plan and boot, its report to an outcome; `sim` through the sim's server.

use std::ops::ControlFlow;
use std::sync::Arc;

use anyhow::Result;
use racklet_image::{Description, Payload};
use racklet_sim::models::{self, Scenario, SimError};
use racklet_sim::serve::starfive::{self as server, Event};
use racklet_sim::starfive::Fault;
use racklet_starfive::storage::{self, ImageOptions};
use racklet_starfive::{BlockSize, Inputs, NakPolicy, Options};
use serde_json::json;

use super::{Driver, Job, StorageJob, StorageSim};
use crate::args::starfive::XmodemNak;
use crate::args::storage::WriteArgs;
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs, SimArgs};
use crate::error::{bad_input, classify};
use crate::job::{Outcome, SimCtx};
use crate::output::{Mode, Output};
use racklet_starfive::recovery::{RecoveryInputs, RecoveryOptions};

pub struct Starfive;

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
        let inputs = Inputs { payload: a.bin.clone(), next_stage: a.starfive.then_ymodem.clone() };
        racklet_starfive::plan(&inputs, &board.target()).map(drop).map_err(classify)
    }

    fn maskrom(&self, job: &mut Job) -> Result<Outcome> {
        let args = &job.args.starfive;
        let target = job.board.target();
        let inputs = Inputs { payload: job.args.bin.clone(), next_stage: args.then_ymodem.clone() };
        let plan = racklet_starfive::plan(&inputs, &target).map_err(classify)?;
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

    fn attach_storage_sim(&self, sim: &StorageSim) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        // What --recovery sends becomes the virtual recovery program (the
        // sim cannot run it); --sim-storage keeps its QSPI flash.
        let scenario = Scenario {
            fault: sim.fault.clone(),
            storage: sim.target.sim.sim_storage.clone(),
            storage_loader: true,
            ..Scenario::at(&sim.port_path)
        };
        models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    /// The QSPI flash through StarFive's recovery program, as vf2-recover
    /// writes it.
    fn write(&self, job: &mut StorageJob, a: &WriteArgs) -> Result<Outcome> {
        let board = &job.board.name;
        if let Some(image) = &a.image {
            return Err(bad_input(format!(
                "{}: the JH7110's recovery program writes the SPL and U-Boot by name: `racklet-flash write {board} --recovery jh7110-recovery-*.bin --spl u-boot-spl.bin.normal.out --uboot u-boot.itb`",
                image.display()
            )));
        }
        let p = &a.place;
        if p.at.is_some() || !p.partition.is_empty() || p.medium.is_some() {
            return Err(bad_input(
                "--at, --partition, --medium: the recovery program writes the SPL at 0 and U-Boot at 0x100000 of the QSPI flash; give --spl and --uboot",
            ));
        }
        let b = &job.target.bring_up;
        if b.loader.is_some() || !b.then.is_empty() || b.loader_address.is_some() {
            return Err(bad_input(
                "--loader, --then: on StarFive boards the program the ROM runs first is --recovery FILE",
            ));
        }
        if a.reboot {
            return Err(bad_input(
                "--reboot: the recovery program cannot reset the board; set the boot switches to flash (0,0) and power-cycle it",
            ));
        }
        let s = &a.starfive;
        let inputs =
            RecoveryInputs { recovery: s.recovery.clone(), spl: s.spl.clone(), uboot: s.uboot.clone() };
        let target = job.board.target();
        let plan = racklet_starfive::recovery::plan(&inputs, &target).map_err(classify)?;
        if !a.no_verify {
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

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
        let scenario = Scenario { fault: sim.fault.clone(), ..Scenario::at(&sim.port_path) };
        models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        if args.tcp.is_some() {
            return Err(bad_input(
                "--tcp: the StarFive ROM is reached over a UART; its virtual ROM is served on a pseudo-terminal",
            ));
        }
        let fault: Fault =
            args.fault.as_deref().unwrap_or("none").parse().map_err(|e| classify(SimError::from(e)))?;
        if let Some(d) = &args.save {
            std::fs::create_dir_all(d)
                .map_err(|e| bad_input(format!("{}: cannot create: {e}", d.display())))?;
        }
        let opts = server::Options { fault, keep: args.keep };
        let json = out.mode == Mode::Json;
        let mut failed = None;
        let served = server::serve(&opts, &|| out.cancelled(), &mut |ev| {
            match (ev, json) {
                (Event::Serving { tty }, true) => {
                    out.json(json!({"event":"serving","board":board.name,"tty":tty,"fault":args.fault}))
                }
                (Event::Serving { tty }, false) => {
                    outln!("{tty}");
                    eprintln!(
                        "virtual {} boot ROM ({}) on {tty}: racklet-flash maskrom {} FILE --port {tty}",
                        board.soc, board.name, board.name
                    );
                }
                (Event::Session { n, session, line }, json) => {
                    if json {
                        out.json(json!({"event":"session","n":n,"bytes":session.received.len(),"ok":session.verdict.is_ok(),"text":line}));
                    } else {
                        eprintln!("{line}");
                    }
                    if let Some(d) = &args.save {
                        let f = d.join(format!("starfive-session-{n}.img"));
                        if let Err(e) = racklet_image::output::write_file(&f, &session.received, false) {
                            failed = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                }
                (Event::NextStage { line }, true) => out.json(json!({"event":"next_stage","text":line})),
                (Event::NextStage { line }, false) => eprintln!("{line}"),
            }
            ControlFlow::Continue(())
        });
        match failed {
            Some(e) => Err(e.into()),
            None => served.map_err(classify),
        }
    }
}
