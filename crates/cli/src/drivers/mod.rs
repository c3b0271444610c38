//! The driver registry: one entry per boot-ROM protocol, probe-rs style.
//!
//! A driver is the CLI's thin adapter to one protocol crate: it maps the
//! command line to the crate's `Inputs`/`Options`, calls the crate's `plan`
//! and `boot`, and maps its typed `Report` to an [`Outcome`]. Everything a
//! command does per protocol goes through [`Driver`]; nothing outside this
//! directory matches on the protocol. Adding a boot ROM adds one file here
//! and one line to [`DRIVERS`] (docs/adding-a-soc.md).

use anyhow::Result;
use racklet_image::{Description, Payload};
use racklet_link::Connector;
use racklet_sim::models::Scenario;
use racklet_sim::rom::VirtualRom;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

use crate::args::storage::StorageTarget;
use crate::boards::Board;
use crate::cli::{ImageArgs, MaskromArgs};
use crate::error::classify;
use crate::job::Outcome;
use racklet_link::request::StorageRequest;

mod canaan;
mod fastboot;
mod rockchip;
mod sophgo;
mod starfive;

/// One board's run of `maskrom`: the board, the command line, and the
/// connector to its devices (real or simulated buses).
pub struct Job<'a, 'c> {
    pub board: &'a Board,
    pub args: &'a MaskromArgs,
    pub conn: &'a mut Connector<'c>,
    /// This board's console tty (`--monitor`, or the virtual board's own
    /// UART in a simulated run), for drivers whose ROM reports on it.
    pub console: Option<String>,
}

/// What the CLI needs from one protocol.
pub trait Driver: Sync {
    /// The protocol's name in the board table (`protocol = "rockchip"`).
    fn name(&self) -> &'static str;

    /// True when this protocol's crate knows `soc` (the board table's name).
    fn knows_soc(&self, soc: &str) -> bool;

    /// The USB stage names its boards may list (`[[usb]] stage = ...`).
    fn stages(&self) -> &'static [&'static str];

    /// The storage verbs this driver implements (`["write", "read", ...]`).
    fn storage_verbs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Loads and starts the payload (`racklet-flash maskrom`).
    fn maskrom(&self, job: &mut Job) -> Result<Outcome>;

    /// The protocol crate's plan of `maskrom` for these arguments, with no
    /// device touched: what `maskrom` would refuse before sending anything.
    /// `info` asks it too, so "fits BOARD" means `maskrom BOARD` takes it.
    fn plan(&self, board: &Board, args: &MaskromArgs) -> Result<()>;

    /// The options of `maskrom`, other than the payload argument, through
    /// which a file alone can be the first stage (Rockchip: `--dram`, the
    /// DRAM-init slot a bare payload runs from). `info` tries them when the
    /// payload argument would be refused.
    fn payload_slots(&self) -> &'static [&'static str] {
        &[]
    }

    /// True when the protocol crate reaches a board over TCP too (`--port tcp:HOST:PORT`).
    fn tcp(&self) -> bool {
        false
    }

    /// The id of the protocol's flag group of `maskrom` (its `clap::Args`
    /// struct under crate::args, flattened into `MaskromArgs`). A flag of
    /// another driver's group given for this protocol's board is refused.
    fn flags(&self) -> Option<clap::Id> {
        None
    }

    /// The same for `racklet-flash image`.
    fn image_flags(&self) -> Option<clap::Id> {
        None
    }

    /// Decodes a file in one of the protocol's own formats (`info`).
    fn describe(&self, bytes: &[u8]) -> Option<Description>;

    /// What a file that almost has one of the protocol's headers got wrong.
    fn near_miss(&self, bytes: &[u8]) -> Option<String>;

    /// The storage boot image of `payload` (`racklet-flash image`).
    fn image(&self, board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>>;

    /// What the user should know about an image `image` wrote (where it
    /// goes on the card), one line each.
    fn image_notes(&self, _board: &Board) -> Vec<String> {
        Vec::new()
    }

    /// The virtual board a `--simulate` run of `maskrom` stands for, which
    /// the sim registry attaches by the board's SoC: by default the board at
    /// its port with its fault; a driver adds what its flags say of the
    /// board (straps, efuses, the stages its user sends).
    fn scenario(&self, sim: &crate::job::SimCtx) -> Result<Scenario> {
        Ok(sim.scenario())
    }

    /// The virtual board of a storage verb: by default the `maskrom`
    /// scenario's, with its storage where `--sim-storage` says.
    fn storage_scenario(&self, sim: &StorageSim) -> Result<Scenario> {
        Ok(storage_scenario(sim))
    }

    /// Runs a storage verb (`write`, `read`, `erase`, `reset`,
    /// `partitions`, `oem`: `job.req.verb`) through the protocol crate,
    /// which maps the request and refuses what its storage stage does not take.
    fn storage(&self, job: &mut StorageJob) -> Result<Outcome> {
        Err(unsupported(job.board, job.req.verb.name()))
    }
}

/// One board's run of a storage verb.
pub struct StorageJob<'a, 'c> {
    pub board: &'a Board,
    pub target: &'a StorageTarget,
    pub conn: &'a mut Connector<'c>,
    /// What the verb was asked, for the protocol crate to map.
    pub req: &'a StorageRequest,
    /// `read -o FILE`.
    pub output: Option<&'a std::path::Path>,
    /// `write`'s StarFive group (recovery files), when the verb is `write`.
    pub starfive: Option<&'a crate::args::starfive::StarfiveWriteArgs>,
}

/// The virtual board of one storage verb's job of a simulated run.
pub struct StorageSim<'a> {
    /// The verb run (`write`, `partitions`, …).
    pub verb: &'a str,
    pub board: &'a Board,
    pub target: &'a StorageTarget,
    /// The verb's `--medium`, which `--sim-storage` keeps.
    pub medium: Option<String>,
    pub port_path: String,
    pub fault: Option<String>,
}

/// A storage verb's virtual board at its port, with its fault and its
/// storage where `--sim-storage` says.
pub fn storage_scenario(sim: &StorageSim) -> Scenario {
    Scenario {
        fault: sim.fault.clone(),
        storage: sim.target.sim.sim_storage.clone(),
        storage_medium: sim.medium.clone(),
        ..Scenario::at(&sim.port_path)
    }
}

/// Puts the virtual board `scenario` describes, of the board's SoC, on the
/// simulated buses (the sim registry).
pub fn attach(
    board: &Board,
    scenario: Result<Scenario>,
    usb: &SimUsbBus,
    serial: &SimSerialBus,
) -> Result<Box<dyn VirtualRom>> {
    racklet_sim::models::attach(&board.soc, &scenario?, usb, serial).map_err(classify)
}

/// A verb this board's protocol does not offer (yet): bad usage, exit 2.
pub fn unsupported(board: &Board, verb: &str) -> anyhow::Error {
    let can: Vec<&str> =
        DRIVERS.iter().filter(|d| d.storage_verbs().contains(&verb)).map(|d| d.name()).collect();
    let also = if can.is_empty() { String::new() } else { format!(" (it is for {} boards)", can.join(", ")) };
    crate::error::bad_input(format!(
        "`racklet-flash {verb}` is not available for {} ({} boot ROM){also}",
        board.name,
        board.protocol.name()
    ))
}

/// Every driver.
pub static DRIVERS: &[&dyn Driver] =
    &[&rockchip::DRIVER, &canaan::DRIVER, &sophgo::DRIVER, &starfive::DRIVER, &fastboot::DRIVER];

/// The driver of `board`.
pub fn of(board: &Board) -> &'static dyn Driver {
    by_name(board.protocol.name()).expect("every protocol of the board table has a driver")
}

/// Refuses `--port tcp:HOST:PORT` for a board whose protocol has no TCP
/// transport, and with `--simulate`/`--replay`, which make their own device.
pub fn check_tcp(
    board: &Board,
    sel: &racklet_link::Selector,
    c: &crate::args::connect::ConnectArgs,
) -> Result<()> {
    if !of(board).tcp() {
        let table = crate::boards::load(None).map(|b| b.boards).unwrap_or_default();
        let takers: Vec<&str> = table.iter().filter(|b| of(b).tcp()).map(|b| b.name.as_str()).collect();
        return Err(crate::error::bad_input(format!(
            "--port {sel}: {} ({}) is reached over USB or serial only; tcp:HOST:PORT is for the boards whose ROM speaks fastboot ({})",
            board.name,
            board.protocol.name(),
            takers.join(", ")
        )));
    }
    if c.simulate || c.auto_simulate || c.replay.is_some() {
        return Err(crate::error::bad_input(format!(
            "--port {sel}: --simulate, --auto-simulate and --replay bring their own device; leave them out to talk to tcp:, or leave --port out"
        )));
    }
    if c.record.is_some() {
        return Err(crate::error::bad_input(format!(
            "--port {sel}: --record records USB and serial transfers, not TCP; leave --record out"
        )));
    }
    Ok(())
}

/// The driver called `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Driver> {
    DRIVERS.iter().copied().find(|d| d.name() == name)
}

/// Checks a board-table row against its driver: a SoC and USB stages the
/// protocol knows. The message says what is known.
pub fn check_board(b: &Board) -> Result<(), String> {
    let d = of(b);
    if !d.knows_soc(&b.soc) {
        return Err(format!("soc '{}' is not a {} SoC racklet-flash knows", b.soc, d.name()));
    }
    if let Some(s) = b.usb.iter().find(|s| !d.stages().contains(&s.stage.as_str())) {
        return Err(format!(
            "usb stage '{}' is not a stage of {} boards (known: {})",
            s.stage,
            d.name(),
            d.stages().join(", ")
        ));
    }
    Ok(())
}

/// The first driver that recognises `bytes` as one of its formats.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    DRIVERS.iter().find_map(|d| d.describe(bytes))
}

/// The first driver whose format `bytes` almost have.
pub fn near_miss(bytes: &[u8]) -> Option<String> {
    DRIVERS.iter().find_map(|d| d.near_miss(bytes))
}

/// Refuses the flags of other protocols' groups that were given (on the
/// command line or through the environment) for a board of `mine`: each
/// would be ignored. The error names the flag, the boards it is for, and
/// the flag of this board's group that does the same when one looks alike.
pub fn refuse_foreign_flags(
    cmd: &clap::Command,
    m: &clap::ArgMatches,
    board: &Board,
    boards: &[Board],
    mine: Option<clap::Id>,
    group_of: fn(&dyn Driver) -> Option<clap::Id>,
) -> Result<()> {
    use clap::parser::ValueSource;
    let group_args = |id: &clap::Id| -> Vec<&clap::Arg> {
        cmd.get_groups()
            .filter(|g| g.get_id() == id)
            .flat_map(|g| g.get_args())
            .filter_map(|a| cmd.get_arguments().find(|x| x.get_id() == a))
            .collect()
    };
    let flag =
        |a: &clap::Arg| a.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| a.get_id().to_string());
    let own: Vec<String> =
        mine.as_ref().map(|g| group_args(g).into_iter().map(flag).collect()).unwrap_or_default();
    for d in DRIVERS.iter().copied().filter(|d| d.name() != board.protocol.name()) {
        let Some(g) = group_of(d) else { continue };
        for a in group_args(&g) {
            let given = matches!(
                m.value_source(a.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if !given {
                continue;
            }
            let f = flag(a);
            let theirs: Vec<&str> =
                boards.iter().filter(|b| b.protocol.name() == d.name()).map(|b| b.name.as_str()).collect();
            let like = own
                .iter()
                .map(|o| (o.chars().zip(f.chars()).take_while(|(x, y)| x == y).count(), o))
                .filter(|(n, _)| *n >= 6)
                .max_by_key(|(n, _)| *n)
                .map(|(_, o)| o.clone());
            let msg = format!(
                "{f} is a {} option (for {}); {} is a {} board, where it would be ignored",
                d.name(),
                theirs.join(", "),
                board.name,
                board.protocol.name()
            );
            let hint = match (&like, own.is_empty()) {
                (Some(o), _) => format!("use {o}"),
                (None, false) => format!("drop {f}; {}'s own options are {}", board.name, own.join(", ")),
                (None, true) => format!("drop {f}; {} takes no options of its own", board.name),
            };
            return Err(crate::error::bad_input_with_hint(msg, hint));
        }
    }
    Ok(())
}
