//! The storage verbs: `write`, `read`, `erase`, `reset`, `partitions`. Each
//! runs through the shared runner (`cmd::run`: real, simulated or replayed
//! buses, several boards in parallel, transcripts, the virtual device's
//! verdict) and hands the board's driver a [`StorageJob`].

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::Connector;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

use super::run;
use crate::args::storage::{
    EraseArgs, OemArgs, PartitionsArgs, ReadArgs, ResetArgs, StorageTarget, WriteArgs,
};
use crate::boards::Board;
use crate::cli::GlobalArgs;
use crate::drivers::{self, Driver, StorageJob, StorageSim};
use crate::job::Outcome;
use crate::output::Output;

/// One storage verb for the board of `target`: `act` is the driver's method.
/// `only_for` lists flags given that only one driver takes, as
/// (driver, flag): on another driver's board they are bad usage.
#[allow(clippy::too_many_arguments)]
fn verb(
    g: &GlobalArgs,
    name: &str,
    target: &StorageTarget,
    only_for: &[(&str, &str)],
    medium: Option<String>,
    inputs: &[&std::path::Path],
    done: &str,
    out: &Arc<Output>,
    act: &(dyn Fn(&dyn Driver, &mut StorageJob) -> Result<Outcome> + Sync),
) -> Result<ExitCode> {
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
    if let Some((owner, flag)) = only_for.iter().chain(&rockchip).find(|(owner, _)| *owner != driver.name()) {
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
    for p in inputs.iter().chain(&raw) {
        racklet_image::check_input(p, u64::MAX, "an image")?;
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
        let mut job = StorageJob { board, target, conn };
        act(driver, &mut job)
    };
    let spec = run::Spec {
        board,
        connect: &target.connect,
        sim: &target.sim,
        input_files,
        attach: &attach,
        done,
        check_jobs: &|_| Ok(()),
    };
    run::run(spec, out, &op)
}

pub fn write(g: &GlobalArgs, a: &WriteArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let mut inputs: Vec<&std::path::Path> = a.image.iter().map(|p| p.as_path()).collect();
    inputs.extend(a.target.bring_up.loader.iter().map(|p| p.as_path()));
    inputs.extend(a.target.bring_up.then.iter().map(|p| p.as_path()));
    let starfive = a.starfive.given();
    inputs.extend(starfive.iter().map(|(_, p)| *p));
    let mut only_for: Vec<(&str, &str)> = starfive.iter().map(|(f, _)| ("starfive", *f)).collect();
    only_for.extend(a.starfive.given_switches().into_iter().map(|f| ("starfive", f)));
    if a.loader_to_storage {
        only_for.push(("rockchip", "--loader-to-storage"));
    }
    verb(g, "write", &a.target, &only_for, a.place.medium.clone(), &inputs, "written", out, &|d, job| {
        d.write(job, a)
    })
}

pub fn read(g: &GlobalArgs, a: &ReadArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, "read", &a.target, &[], a.place.medium.clone(), &loaders(&a.target), "read", out, &|d, job| {
        d.read(job, a)
    })
}

pub fn erase(g: &GlobalArgs, a: &EraseArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, "erase", &a.target, &[], a.place.medium.clone(), &loaders(&a.target), "erased", out, &|d, job| {
        d.erase(job, a)
    })
}

pub fn reset(g: &GlobalArgs, a: &ResetArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, "reset", &a.target, &[], None, &loaders(&a.target), "reset", out, &|d, job| d.reset(job, a))
}

pub fn partitions(g: &GlobalArgs, a: &PartitionsArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(
        g,
        "partitions",
        &a.target,
        &[],
        a.place.medium.clone(),
        &loaders(&a.target),
        "listed",
        out,
        &|d, job| d.partitions(job, a),
    )
}

pub fn oem(g: &GlobalArgs, a: &OemArgs, out: &Arc<Output>) -> Result<ExitCode> {
    verb(g, "oem", &a.target, &[], None, &loaders(&a.target), "answered", out, &|d, job| d.oem(job, a))
}

fn loaders(t: &StorageTarget) -> Vec<&std::path::Path> {
    t.bring_up.loader.iter().chain(t.bring_up.then.iter()).map(|p| p.as_path()).collect()
}
