//! The fastboot driver (SpacemiT K1, T-Head TH1520): the command line to
//! `racklet_fastboot`'s plan and boot, its report to output.

use std::sync::Arc;

use anyhow::Result;
use racklet_fastboot::{Inputs, Options};
use racklet_image::{Description, Payload};
use racklet_sim::models::Scenario;
use racklet_sim::serve::fastboot::{self as server, Event};
use serde_json::json;

use super::{Driver, Job};
use crate::boards::Board;
use crate::cli::{ImageArgs, SimArgs};
use crate::error::{bad_input, classify};
use crate::job::{Outcome, SimCtx};
use crate::output::{Mode, Output};

pub struct Fastboot;

pub static DRIVER: Fastboot = Fastboot;

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
            // --stage-timeout 0: the run ends once the ROM took the start.
            await_next: !a.connect.stage_timeout.is_zero(),
        };
        let plan = racklet_fastboot::plan(&inputs, &target).map_err(classify)?;
        let opts = Options { force: a.connect.force, ..Default::default() };
        let report = racklet_fastboot::boot(job.conn, &plan, &target, &opts).map_err(classify)?;
        let rom = report.facts().iter().find(|(k, _)| k == "boot ROM").map(|(_, v)| v.clone());
        Ok(Outcome { facts: report.facts(), rom, ..Outcome::default() })
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
        let next_stages = usize::from(sim.args.fastboot.then.is_some());
        let scenario = Scenario { fault: sim.fault.clone(), next_stages, ..Scenario::at(&sim.port_path) };
        racklet_sim::models::attach(&sim.board.soc, &scenario, &sim.usb, &sim.serial).map_err(classify)
    }

    fn serve(&self, board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
        let address = args.tcp.as_deref().unwrap_or("127.0.0.1:5554");
        let mut opts = server::Options::new(&board.soc, address, args.fault.as_deref()).map_err(classify)?;
        opts.keep = args.keep;
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
                        out.line(&format!(
                            "serving the virtual {} boot ROM of {} on tcp:{address}; try `fastboot -s tcp:{address} getvar version`",
                            board.soc, board.name
                        ));
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
