//! The storage verbs: `write`, `read`, `erase`, `reset`, `partitions`. Each
//! runs through the shared runner (`cmd::run`: real, simulated or replayed
//! buses, several boards in parallel, transcripts, the virtual device's
//! verdict) and hands the board's driver a [`StorageJob`].

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::Connector;
use racklet_link::request::StorageRequest;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

use super::run;
use crate::args::storage::{
    EraseArgs, OemArgs, PartitionsArgs, ReadArgs, ResetArgs, StorageTarget, WriteArgs,
};
use crate::boards::Board;
use crate::cli::GlobalArgs;
use crate::drivers::{self, StorageJob, StorageSim};
use crate::job::Outcome;
use crate::output::Output;

/// What one storage verb's run is, besides its request.
struct Verb<'a> {
    target: &'a StorageTarget,
    /// Flags given that only one driver takes, as (driver, flag): on
    /// another driver's board they are bad usage.
    only_for: Vec<(&'a str, &'a str)>,
    inputs: Vec<&'a std::path::Path>,
    /// What a successful job did, for the done line.
    done: &'a str,
    output: Option<&'a std::path::Path>,
    starfive: Option<&'a crate::args::starfive::StarfiveWriteArgs>,
}

impl<'a> Verb<'a> {
    fn new(target: &'a StorageTarget, done: &'a str) -> Self {
        let inputs =
            target.bring_up.loader.iter().chain(&target.bring_up.then).map(|p| p.as_path()).collect();
        Verb { target, only_for: Vec::new(), inputs, done, output: None, starfive: None }
    }
}

/// Runs one storage verb on the board of its target through the board's driver.
fn verb(g: &GlobalArgs, req: StorageRequest, v: Verb, out: &Arc<Output>) -> Result<ExitCode> {
    let (target, name) = (v.target, req.verb.name());
    // The virtual board's medium: --sim-medium, else the verb's own --medium.
    let medium = target.sim.sim_medium.clone().or_else(|| req.medium.clone());
    let boards = super::load_boards(g)?;
    let board: &Board = super::find_board(&boards, &target.board)?;
    out.set_board(&board.name);
    let driver = drivers::of(board);
    if !driver.storage_verbs().contains(&name) {
        return Err(drivers::unsupported(board, name));
    }
    if target.bring_up.bundle.is_some() && (name != "write" || driver.name() != "fastboot") {
        return Err(crate::error::bad_input(format!(
            "--bundle is for `write` on fastboot boards (K1, TH1520); not for `{name}` on {}",
            board.name
        )));
    }
    let rockchip: Vec<(&str, &str)> =
        target.bring_up.rockchip.given().into_iter().map(|(f, _)| ("rockchip", f)).collect();
    if let Some((owner, flag)) = v.only_for.iter().chain(&rockchip).find(|(owner, _)| *owner != driver.name())
    {
        return Err(crate::error::bad_input(format!(
            "{flag} is a {owner} flag; {} is a {} board",
            board.name,
            driver.name()
        )));
    }
    // Every input file is checked (bounded, a regular file) before anything
    // is touched; the driver reads it again, in pieces, when it sends it.
    let mut input_files = Vec::new();
    // The raw bring-up files (an rkbin directory is searched by the driver).
    let raw: Vec<&std::path::Path> = [&target.bring_up.rockchip.dram, &target.bring_up.rockchip.usbplug]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    for p in v.inputs.iter().chain(&raw) {
        racklet_image::check_file(p)?;
        let file = racklet_link::transcript::reader::InputFile::of_file(p);
        input_files.push(file.map_err(|e| crate::error::bad_input(format!("{}: {e}", p.display())))?);
    }
    let attach = |port: &str, fault: Option<String>, usb: &SimUsbBus, serial: &SimSerialBus| {
        let sim = StorageSim {
            verb: name,
            board,
            target,
            medium: medium.clone(),
            port_path: port.to_string(),
            fault,
        };
        drivers::attach(board, driver.storage_scenario(&sim), usb, serial)
    };
    let op = |_: usize, conn: &mut Connector, _: &str| -> Result<Outcome> {
        let mut job = StorageJob { board, target, conn, req: &req, output: v.output, starfive: v.starfive };
        driver.storage(&mut job)
    };
    let spec = run::Spec {
        board,
        connect: &target.connect,
        sim: &target.sim,
        input_files,
        attach: &attach,
        done: v.done,
        check_jobs: &|_| Ok(()),
    };
    run::run(spec, out, &op)
}

pub fn write(g: &GlobalArgs, a: &WriteArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let mut v = Verb::new(&a.target, "written");
    // The image first, then the bring-up files (the transcript's order).
    if let Some(image) = &a.image {
        v.inputs.insert(0, image.as_path());
    }
    let starfive = a.starfive.given();
    v.inputs.extend(starfive.iter().map(|(_, p)| *p));
    v.only_for = starfive.iter().map(|(f, _)| ("starfive", *f)).collect();
    v.only_for.extend(a.starfive.given_switches().into_iter().map(|f| ("starfive", f)));
    if a.loader_to_storage {
        v.only_for.push(("rockchip", "--loader-to-storage"));
    }
    v.starfive = Some(&a.starfive);
    verb(g, a.request(), v, out)
}

pub fn read(g: &GlobalArgs, a: &ReadArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let v = Verb { output: Some(&a.output), ..Verb::new(&a.target, "read") };
    verb(g, a.request(), v, out)
}

pub fn erase(g: &GlobalArgs, a: &EraseArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, a.request(), Verb::new(&a.target, "erased"), out)
}

pub fn reset(g: &GlobalArgs, a: &ResetArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, a.request(), Verb::new(&a.target, "reset"), out)
}

pub fn partitions(g: &GlobalArgs, a: &PartitionsArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, a.request(), Verb::new(&a.target, "listed"), out)
}

pub fn oem(g: &GlobalArgs, a: &OemArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, a.request(), Verb::new(&a.target, "answered"), out)
}
