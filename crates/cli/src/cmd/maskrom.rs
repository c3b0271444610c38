//! `racklet-flash maskrom`: one board, or several in parallel (the shared
//! runner is `cmd::run`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::{Connector, FailureClass};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

use super::run;
use crate::boards::Board;
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
    let input_files = check_inputs(board, a, driver)?;
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

/// Checks every input file of `a` before anything is touched: a regular
/// file no larger than the board's largest stage (judged before reading),
/// not in another protocol's own format, not a device tree or FIT as the
/// first stage (no boot ROM starts one), and not a near-miss of a known
/// header (damaged, not a raw binary) — each refused unless --force says
/// to send it raw. Returns what the transcript's header says of them.
pub fn check_inputs(
    board: &Board,
    a: &MaskromArgs,
    driver: &dyn drivers::Driver,
) -> Result<Vec<racklet_link::transcript::reader::InputFile>> {
    let what = format!("a stage of {} can be", board.name);
    // The files a boot ROM itself starts (the payload, Rockchip's DRAM-init
    // slot, the K230's loads), as opposed to the later stages.
    let firsts: Vec<&std::path::Path> = a
        .bin
        .iter()
        .chain(a.rockchip.dram.iter())
        .map(|p| p.as_path())
        .chain(a.canaan.loads.iter().map(|(_, p)| p.as_path()))
        .collect();
    let inputs = a
        .bin
        .iter()
        .chain(a.rockchip.dram.iter())
        .chain(a.fastboot.then.iter())
        .chain(a.starfive.then_ymodem.iter());
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
        if !a.connect.force
            && firsts.contains(&p.as_path())
            && let Some(d) = racklet_image::describe::device_tree_description(&bytes)
        {
            return Err(crate::error::bad_input_with_hint(
                format!(
                    "{}: a {}; the boot ROM of {} would jump into its header",
                    p.display(),
                    d.kind,
                    board.name
                ),
                "a FIT is a later stage, which the stage before it unpacks: give it with --then (SpacemiT K1) or --then-ymodem (StarFive), or the FIT's own loader first; --force sends it raw anyway",
            ));
        }
        if !a.connect.force
            && firsts.contains(&p.as_path())
            && racklet_image::describe::looks_like_text(&bytes)
        {
            return Err(crate::error::bad_input_with_hint(
                format!("{}: a text file, not code for {}'s boot ROM", p.display(), board.name),
                "give the payload (an ELF or a binary); --force sends it anyway",
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
    Ok(input_files)
}

/// Whether `racklet-flash maskrom BOARD FILE` (with no other options, but
/// those the environment sets) would take `file`: the same checks and the
/// protocol crate's plan, with no device touched; failing that, the same
/// with FILE in one of the driver's payload slots (`--dram FILE`). `info`
/// says "fits BOARD" only when this is `Ok`, with the slot it needs.
pub fn would_take(board: &Board, file: &std::path::Path) -> Result<Option<&'static str>> {
    use clap::FromArgMatches;
    let driver = drivers::of(board);
    let cmd = crate::cli::command();
    let sub = cmd.find_subcommand("maskrom").expect("maskrom is a command").clone().no_binary_name(true);
    let name = std::ffi::OsStr::new(&board.name);
    let attempt = |argv: Vec<&std::ffi::OsStr>| -> Result<()> {
        let a = MaskromArgs::from_arg_matches(&sub.clone().try_get_matches_from(argv)?)?;
        check_inputs(board, &a, driver)?;
        driver.plan(board, &a)
    };
    let first = match attempt(vec![name, file.as_os_str()]) {
        Ok(()) => return Ok(None),
        Err(e) => e,
    };
    for slot in driver.payload_slots() {
        if attempt(vec![name, std::ffi::OsStr::new(slot), file.as_os_str()]).is_ok() {
            return Ok(Some(slot));
        }
    }
    Err(first)
}
