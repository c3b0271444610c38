//! The command line. Doc comments are the help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::args::connect::{ConnectArgs, SimulationArgs};
use crate::args::values::parse_duration;

/// Bring up bare boards through their SoC's boot ROM.
///
/// racklet-flash finds a board's boot ROM on USB or serial, streams the
/// vendor DRAM-init blob and a payload into the chip, and starts it.
/// Exit status: 0 done, 1 failed, 2 bad usage or input, 3 device not found,
/// 4 ambiguous selection, 5 permission denied, 6 timeout, 7 rejected by the
/// ROM, 8 disconnected, 9 I/O error, 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "racklet-flash", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The command line with each command's examples after its options in
/// `--help` (the same examples as the man pages and the README).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut c = Cli::command();
    if let Some(ex) = crate::cmd::man::help_examples("") {
        c = c.after_long_help(ex);
    }
    let names: Vec<String> = c.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for n in names {
        if let Some(ex) = crate::cmd::man::help_examples(&n) {
            c = c.mut_subcommand(&n, |s| s.after_long_help(ex));
        }
        // --fault lists the faults of every virtual board, from the sim's registry.
        if c.find_subcommand(&n).is_some_and(|s| s.get_arguments().any(|a| a.get_id() == "fault")) {
            c = c.mut_subcommand(&n, |s| s.mut_arg("fault", |a| a.long_help(fault_help())));
        }
    }
    c
}

/// `--fault`'s long help: every fault of every virtual board, by SoC.
fn fault_help() -> String {
    let mut t = String::from(
        "Simulation: make the virtual board misbehave as a real one can. With several \
         --port, PORT=NAME gives one board its fault. The faults, by SoC:",
    );
    for m in racklet_sim::models::MODELS {
        t.push_str(&format!("\n\n{}:", m.socs.join(", ")));
        for (name, what) in (m.faults)() {
            t.push_str(&format!("\n  {name}: {what}"));
        }
    }
    t
}

/// Options for every command.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Print machine-readable JSON: one event object per line on stdout
    /// (docs/json-events.md). RACKLET_JSON takes 1/0, yes/no, on/off, true/false.
    #[arg(long, global = true, env = "RACKLET_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,
    /// More detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Add or replace boards from this TOML file (same format as the built-in table).
    /// A board with a built-in board's name replaces it; any other name or alias
    /// already taken is an error. Names are found whatever their case.
    #[arg(long, global = true, value_name = "FILE", env = "RACKLET_BOARDS")]
    pub boards: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load a payload through the board's boot ROM and start it.
    Maskrom(Box<MaskromArgs>),
    /// Show every boot ROM on USB and serial now.
    List(ListArgs),
    /// Show the board table: each board's aliases and how to put it in its boot ROM mode.
    Boards(BoardsArgs),
    /// Tell what a file holds (ELF, raw, RKBOOT loader, boot image) and which boards it fits.
    Info(InfoArgs),
    /// Write the storage boot image the board's ROM expects.
    Image(ImageArgs),
    /// Print udev rules that give the plugdev group access to every boot ROM in the table.
    UdevRules,
    /// Print the shell's completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// The script asks racklet-flash what to complete as you type, so
    /// subcommands, options and board names (the built-in ones and those
    /// of RACKLET_BOARDS) complete. Regenerate it after an upgrade.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page of racklet-flash or of one command (roff), or write them all.
    Man(crate::cmd::man::ManArgs),
    /// Serve a board's virtual boot ROM outside this process (pty for serial ROMs, TCP for fastboot).
    Sim(SimArgs),
    /// Load an image through a fastload loader already running on a serial port, and start it.
    Fastload(Box<crate::cmd::fastload::FastloadArgs>),
    /// Write an image to the board's storage (bringing the board up from its ROM when needed) and verify it.
    Write(Box<crate::args::storage::WriteArgs>),
    /// Read the board's storage into a file.
    Read(Box<crate::args::storage::ReadArgs>),
    /// Erase part or all of the board's storage.
    Erase(Box<crate::args::storage::EraseArgs>),
    /// Reset the board (to boot, or back into its boot ROM's download mode).
    Reset(Box<crate::args::storage::ResetArgs>),
    /// List the partitions of the board's storage (fastboot boards: and vendor U-Boot's variables).
    Partitions(Box<crate::args::storage::PartitionsArgs>),
    /// Send a vendor command (fastboot `oem …`) to the board's U-Boot and print its answer.
    Oem(Box<crate::args::storage::OemArgs>),
}

/// Board names for shell completion: the built-in table and the boards of
/// RACKLET_BOARDS (the shell cannot know a --boards FILE on the line).
fn board_names() -> clap_complete::ArgValueCandidates {
    clap_complete::ArgValueCandidates::new(|| {
        let extra = std::env::var_os("RACKLET_BOARDS").map(PathBuf::from);
        let boards = crate::boards::load(extra.as_deref())
            .or_else(|_| crate::boards::load(None))
            .map(|b| b.boards)
            .unwrap_or_default();
        boards
            .into_iter()
            .map(|b| clap_complete::CompletionCandidate::new(b.name).help(Some(b.title.into())))
            .collect()
    })
}

/// `racklet-flash maskrom <board> [<bin>]`
#[derive(Debug, Args, Clone)]
pub struct MaskromArgs {
    /// Board name (see `racklet-flash boards`).
    #[arg(add = board_names())]
    pub board: String,
    /// The payload: ELF, raw binary, or the board's own format (RKBOOT loader, headed image, fip.bin).
    pub bin: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// After the payload starts, stream the board's console from this tty
    /// (one per --port, in the same order, when flashing several boards).
    #[arg(long, value_name = "TTY", value_delimiter = ',', help_heading = "Console")]
    pub monitor: Vec<String>,
    /// Console baud rate.
    #[arg(long, default_value_t = 115200, help_heading = "Console")]
    pub baud: u32,
    /// Exit 0 once this regular expression appears on the console (timeout class otherwise).
    #[arg(long, value_name = "REGEX", requires = "monitor", help_heading = "Console")]
    pub expect: Option<String>,
    /// How long to wait for --expect.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration, help_heading = "Console")]
    pub expect_timeout: Duration,

    #[command(flatten)]
    pub rockchip: crate::args::rockchip::RockchipArgs,

    #[command(flatten)]
    pub starfive: crate::args::starfive::StarfiveArgs,

    #[command(flatten)]
    pub sophgo: crate::args::sophgo::SophgoArgs,

    #[command(flatten)]
    pub canaan: crate::args::canaan::CanaanArgs,

    #[command(flatten)]
    pub fastboot: crate::args::fastboot::FastbootArgs,

    #[command(flatten)]
    pub sim: SimulationArgs,
}

/// `racklet-flash list`
#[derive(Debug, Args, Clone)]
pub struct ListArgs {
    /// Also show USB devices and serial ports that are not known boot ROMs.
    #[arg(long, short)]
    pub all: bool,
}

/// `racklet-flash boards [<board>]`
#[derive(Debug, Args, Clone)]
pub struct BoardsArgs {
    /// Show this board only, with every fact of its row.
    #[arg(add = board_names())]
    pub board: Option<String>,
}

/// `racklet-flash info <file>`
#[derive(Debug, Args, Clone)]
pub struct InfoArgs {
    /// The file to inspect.
    pub file: PathBuf,
    /// Check the fit against this board only.
    #[arg(long, add = board_names())]
    pub board: Option<String>,
}

/// `racklet-flash image <board> <in> -o <out>`
#[derive(Debug, Args, Clone)]
#[command(disable_version_flag = true)]
pub struct ImageArgs {
    /// Board name.
    #[arg(add = board_names())]
    pub board: String,
    /// The payload (ELF or raw binary).
    pub input: PathBuf,
    /// Where to write the image (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub starfive: crate::args::starfive::StarfiveImageArgs,
    #[command(flatten)]
    pub sophgo: crate::args::sophgo::SophgoImageArgs,
    #[command(flatten)]
    pub rockchip: crate::args::rockchip::RockchipImageArgs,
}

/// `racklet-flash sim <board>`
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Board whose ROM to serve.
    #[arg(add = board_names())]
    pub board: String,
    /// Listen on this TCP address (e.g. 127.0.0.1:5554): fastboot's TCP
    /// transport for the fastboot boards (`fastboot -s tcp:ADDR`), JSON
    /// Lines USB transfers for the Rockchip and K230 boards (the pyusb
    /// stand-in of tests/k230flash speaks it). Serial boards get a pty.
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<String>,
    /// Serve session after session. Without it the server ends after one run of the board
    /// (over TCP: the connections of one run, each stage's after the last one started it).
    #[arg(long)]
    pub keep: bool,
    /// Make the virtual ROM misbehave.
    #[arg(long, value_name = "FAULT")]
    pub fault: Option<String>,
    /// Write received payloads to this directory (never over an existing file).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Keep the virtual board's storage in FILE (created when missing), so
    /// another tool's writes can be compared with racklet-flash's.
    #[arg(long, value_name = "FILE")]
    pub sim_storage: Option<PathBuf>,
    /// With --sim-storage, the medium FILE holds (K230: emmc, sd, spi-nand,
    /// spi-nor, otp; default sd. K1: emmc, spi-nor, spi-nor+nvme, the NVMe
    /// in FILE.nvme; default emmc).
    #[arg(long, value_name = "MEDIUM", requires = "sim_storage")]
    pub medium: Option<String>,
    /// Fastboot boards: start in vendor U-Boot's fastboot (to flash its
    /// storage) instead of the boot ROM.
    #[arg(long)]
    pub in_uboot: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
        // Building every subcommand catches clashes the root check misses.
        let mut c = Cli::command();
        c.build();
    }

    /// ux review §14: the faults are listed where --fault is (maskrom, the
    /// storage verbs, sim), every fault of every virtual board.
    #[test]
    fn fault_help_lists_every_fault_where_fault_is() {
        let mut c = command();
        for sub in ["maskrom", "write", "sim"] {
            let s = c.find_subcommand_mut(sub).unwrap();
            let help = s.render_long_help().to_string();
            for m in racklet_sim::models::MODELS {
                for (name, _) in (m.faults)() {
                    assert!(help.contains(&format!("{name}: ")), "{sub} --help lacks fault {name}");
                }
            }
        }
    }
}
