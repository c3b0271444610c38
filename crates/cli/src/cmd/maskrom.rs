//! `racklet-flash maskrom`: one board, or several in parallel (the shared
//! runner is `cmd::run`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::Connector;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

use super::{run, transcript};
use crate::cli::{GlobalArgs, MaskromArgs};
use crate::console::{self, Console};
use crate::drivers::{self, Job};
use crate::error::bad_input;
use crate::flows::{Outcome, SimCtx};
use crate::output::Output;

pub fn run(g: &GlobalArgs, a: &MaskromArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    // Check every input file before anything is touched: a regular file no
    // larger than the board's largest stage (judged before reading), and
    // not a near-miss of a known header, which is damaged, not a raw
    // binary: refused unless --force says to send it raw.
    let what = format!("a stage of {} can be", board.name);
    let inputs =
        a.bin.iter().chain(a.rockchip.dram.iter()).chain(a.then.iter()).chain(a.starfive.then_ymodem.iter());
    // What the transcript's header says of them.
    let mut input_files = Vec::new();
    for p in inputs.chain(a.canaan.loads.iter().map(|(_, p)| p)) {
        let bytes = racklet_image::read_input(p, board.largest_stage(), &what)?;
        input_files.push(transcript::input_file(p, &bytes));
        if let Some(what) = drivers::near_miss(&bytes)
            && !a.connect.force
        {
            return Err(bad_input(format!(
                "{}: looks like {what}; fix or rebuild the file, or add --force to send it as a raw binary",
                p.display()
            )));
        }
    }
    let expect = match &a.expect {
        Some(re) => Some(
            regex::Regex::new(re)
                .map_err(|e| bad_input(format!("--expect '{re}' is not a valid regular expression: {e}")))?,
        ),
        None => None,
    };
    let expect = expect.as_ref();
    let driver = drivers::of(board);
    let attach = |port: &str, fault: Option<String>, usb: &SimUsbBus, serial: &SimSerialBus| {
        driver.attach_sim(&SimCtx {
            board,
            args: a,
            port_path: port.to_string(),
            fault,
            usb: usb.clone(),
            serial: serial.clone(),
        })
    };
    let check_jobs = |n: usize| {
        if !a.monitor.is_empty() && a.monitor.len() != n {
            return Err(bad_input(format!(
                "{} --monitor ttys for {n} boards: give one console per --port, in the same order",
                a.monitor.len()
            )));
        }
        Ok(())
    };
    let parallel = a.connect.port.len() > 1 || a.connect.all;
    let op = |i: usize, conn: &mut Connector, label: &str| -> Result<Outcome> {
        let mut job = Job { board, args: a, conn };
        let o = driver.maskrom(&mut job)?;
        // The payload runs: watch its console when asked.
        match a.monitor.get(i) {
            Some(tty) => {
                let c = Console {
                    tty,
                    baud: a.baud,
                    expect,
                    timeout: a.expect_timeout,
                    label: parallel.then_some(label),
                };
                let mut o = o;
                if let Some(m) = console::run(&c, out)? {
                    o.fact("console matched", m);
                }
                Ok(o)
            }
            None => Ok(o),
        }
    };
    let spec = run::Spec {
        board,
        connect: &a.connect,
        sim: &a.sim,
        input_files,
        attach: &attach,
        done: "started",
        check_jobs: &check_jobs,
    };
    run::run(spec, out, &op)
}
