//! The Sophgo CV1800B / SG2000 / SG2002 driver: flags to
//! `racklet_sophgo::Inputs`, `plan`, `boot`, the report to an [`Outcome`];
//! `sim` prints what `racklet_sim::serve::sophgo` reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use racklet_image::{Description, Payload};
use racklet_link::FailureClass;
use racklet_sim::models::Scenario;
use racklet_sim::serve::sophgo::{self as server, Event};
use racklet_sophgo::Inputs;
use serde_json::json;

use super::{Driver, Job};
use crate::args::sophgo::Core;
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs, SimArgs};
use crate::error::{bad_input, classify, fail};
use crate::job::{Outcome, SimCtx};
use crate::output::{Mode, Output};

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

/// A JSON event or a line of text.
fn say(out: &Output, event: serde_json::Value, text: &str) {
    if out.mode == Mode::Json { out.json(event) } else { out.line(text) }
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
            Some(tty) => {
                let info = racklet_link::SerialInfo { path: tty.clone(), ..Default::default() };
                Some(racklet_link::serial_backend::SerialPortLink::open(info, job.args.baud).map_err(
                    |e| {
                        crate::error::add_hint(
                            classify(e),
                            "--monitor names the board's UART console (a USB-UART adapter on its pins)",
                        )
                    },
                )?)
            }
            None => None,
        };
        let report = racklet_sophgo::boot_watching(
            job.conn,
            &plan,
            &target,
            &opts,
            console.as_mut().map(|c| c as &mut dyn racklet_link::SerialLink),
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

    fn attach_sim(&self, sim: &SimCtx) -> Result<Box<dyn racklet_sim::rom::VirtualRom>> {
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
        racklet_sim::models::attach(&sim.board.soc, &sc, &sim.usb, &sim.serial).map_err(classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        let opts = server::Options {
            soc: board.soc.clone(),
            tcp: args.tcp.clone(),
            keep: args.keep,
            fault: args.fault.clone(),
            tmp: std::env::temp_dir(),
        };
        let (o, name, soc) = (out.clone(), board.name.clone(), board.soc.clone());
        let on = Arc::new(move |e: Event| match e {
            Event::Ready { link } => {
                let link = link.display().to_string();
                if o.mode == Mode::Json {
                    o.json(json!({"event":"sim","board":name,"tty":link}));
                } else {
                    outln!("{link}");
                    o.line(&format!(
                        "virtual {soc} ROM of {name} on {link} (a symlink to each session's pty); try: racklet-flash maskrom {name} --port {link} bl2.bin"
                    ));
                }
            }
            Event::Port { tty } => {
                say(&o, json!({"event":"sim_port","tty":tty}), &format!("session port {tty}"))
            }
            Event::Log { text } => say(&o, json!({"event":"sim_log","text":text}), &text),
        });
        // The server's directory goes when it ends, by Ctrl-C or by SIGTERM.
        let terminated = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGTERM, terminated.clone())
            .map_err(|e| fail(FailureClass::Io, format!("cannot watch for SIGTERM: {e}")))?;
        let stop = || out.cancelled() || terminated.load(Ordering::SeqCst);
        let served = server::serve(&opts, &stop, on).map_err(classify)?;
        if terminated.load(Ordering::SeqCst) {
            return Err(fail(FailureClass::Interrupted, "terminated (SIGTERM)"));
        }
        if let Some(d) = &args.save {
            std::fs::create_dir_all(d).map_err(|e| bad_input(format!("{}: {e}", d.display())))?;
            for (file, bytes) in &served.received {
                // Never through a link planted in the directory.
                racklet_image::output::write_file(&d.join(file), bytes, false)?;
            }
        }
        for s in &served.sessions {
            say(out, json!({"event":"sim_session","text":s}), s);
        }
        if args.keep {
            let text = format!("{} boot(s) ended in a jump to BL2", served.boots);
            say(out, json!({"event":"sim_boots","count":served.boots}), &text);
        }
        match served.verdict {
            racklet_sim::rom::Verdict::Started { summary } => {
                say(
                    out,
                    json!({"event":"sim_verdict","ok":true,"text":summary}),
                    &format!("verdict: {summary}"),
                );
                Ok(())
            }
            racklet_sim::rom::Verdict::NotStarted { why } => {
                Err(fail(FailureClass::Rejected, format!("the virtual ROM did not boot: {why}")))
            }
        }
    }
}
