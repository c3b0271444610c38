//! `racklet-flash maskrom`: one board, or several in parallel (the shared
//! runner is `cmd::run`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::{Connector, FailureClass};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

use super::run;
use crate::cli::{GlobalArgs, MaskromArgs};
use crate::console::{self, Console};
use crate::drivers::{self, Job};
use crate::error::{bad_input, fail};
use crate::job::{Outcome, SimCtx};
use crate::output::Output;

pub fn run(g: &GlobalArgs, a: &MaskromArgs, m: &clap::ArgMatches, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    out.set_board(&board.name);
    // Another protocol's flag would be ignored: refused, naming the one that applies.
    let cmd = crate::cli::command();
    let cmd = cmd.find_subcommand("maskrom").expect("maskrom is a command");
    let driver = drivers::of(board);
    drivers::refuse_foreign_flags(cmd, m, board, &boards.boards, driver.flags(), |d| d.flags())?;
    // Check every input file before anything is touched: a regular file no
    // larger than the board's largest stage (judged before reading), and
    // not a near-miss of a known header, which is damaged, not a raw
    // binary: refused unless --force says to send it raw.
    let what = format!("a stage of {} can be", board.name);
    let inputs = a
        .bin
        .iter()
        .chain(a.rockchip.dram.iter())
        .chain(a.fastboot.then.iter())
        .chain(a.starfive.then_ymodem.iter());
    // What the transcript's header says of them.
    let mut input_files = Vec::new();
    for p in inputs.chain(a.canaan.loads.iter().map(|(_, p)| p)) {
        let bytes = racklet_image::read_input(p, board.largest_stage(), &what)?;
        input_files.push(racklet_link::transcript::reader::InputFile::of_bytes(p, &bytes));
        // A file in another protocol's own format is not a raw payload for
        // this board (the recognition `info` uses).
        if !a.connect.force
            && let Some((other, d)) = drivers::DRIVERS
                .iter()
                .filter(|d| d.name() != driver.name())
                .find_map(|d| d.describe(&bytes).map(|desc| (d.name(), desc)))
        {
            let socs = if d.socs.is_empty() { String::new() } else { format!(", {}", d.socs.join("/")) };
            return Err(crate::error::bad_input_with_hint(
                format!(
                    "{}: {} (a file for {other} boards{socs}); {} ({}) would take it as a raw payload",
                    p.display(),
                    d.kind,
                    board.name,
                    board.protocol.name()
                ),
                format!(
                    "give {} an ELF or raw binary, or its own format (`racklet-flash info FILE --board {}` checks one); --force sends it raw anyway",
                    board.name, board.name
                ),
            ));
        }
        if let Some(what) = drivers::near_miss(&bytes)
            && !a.connect.force
        {
            return Err(bad_input(format!(
                "{}: looks like {what}; fix or rebuild the file, or add --force to send it as a raw binary",
                p.display()
            )));
        }
    }
    // A console that cannot be opened is found before anything is sent.
    if !a.connect.simulate {
        for tty in &a.monitor {
            let p = std::path::Path::new(tty);
            if !p.exists() {
                return Err(fail(
                    FailureClass::NotFound,
                    format!("--monitor {tty}: no such serial port; nothing was sent to the board"),
                ));
            }
            run::not_a_tty("--monitor", p)?;
        }
    }
    let expect = crate::console::expect(a.expect.as_deref())?;
    let expect = expect.as_ref();
    // The virtual boards' own UARTs, in the order they were attached (one
    // per job): in a simulated run --monitor reads those, not the tty given.
    let virtual_consoles: std::sync::Mutex<Vec<Option<String>>> = std::sync::Mutex::new(Vec::new());
    let attach = |port: &str, fault: Option<String>, usb: &SimUsbBus, serial: &SimSerialBus| {
        let sim = SimCtx { board, args: a, port_path: port.to_string(), fault };
        let rom = drivers::attach(board, driver.scenario(&sim), usb, serial)?;
        virtual_consoles.lock().unwrap_or_else(|e| e.into_inner()).push(rom.console());
        Ok(rom)
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
        let virt = virtual_consoles.lock().unwrap_or_else(|e| e.into_inner()).get(i).cloned().flatten();
        let console = match (a.monitor.get(i), virt) {
            (Some(_), Some(v)) => {
                out.line(&format!("--simulate: --monitor reads the virtual board's UART ({v})"));
                Some(v)
            }
            (given, _) => given.cloned(),
        };
        // A USB ROM's console is a separate UART: open it before the
        // stages are sent, so the payload's first line is not lost while
        // the run still follows the board (a serial ROM's console is its
        // boot port, which the driver has while it loads).
        let early = match (console.as_ref(), board.transport) {
            (Some(tty), racklet_image::boards::Transport::Usb) => {
                Some(racklet_link::console::listen(console::open(tty, a.baud)?))
            }
            _ => None,
        };
        let mut job = Job { board, args: a, conn, console: console.clone() };
        let o = driver.maskrom(&mut job);
        let early = early.map(racklet_link::console::Listening::finish);
        let o = o?;
        // The payload runs: watch its console when asked.
        match console.as_ref() {
            Some(tty) => {
                let c = Console {
                    tty,
                    baud: a.baud,
                    expect,
                    timeout: a.expect_timeout,
                    label: parallel.then_some(label),
                };
                let mut o = o;
                o.console_matched = match early {
                    Some((mut link, already, None)) => console::run_on(&mut *link, &c, out, &already)?,
                    Some((_, _, Some(e))) => return Err(crate::error::classify(e)),
                    None => console::run(&c, out)?,
                };
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
