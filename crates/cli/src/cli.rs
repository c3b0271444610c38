//! The command line. Doc comments are the help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

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
            c = c.mut_subcommand(n, |s| s.after_long_help(ex));
        }
    }
    c
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
    /// List the partitions of the board's storage.
    Partitions(Box<crate::args::storage::PartitionsArgs>),
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

/// A duration such as `500ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("'{s}' is not a valid duration"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a valid duration ({e}); write e.g. 500ms, 10s or 2m"))
}

/// `0x1234`, `1234` (decimal) or `0x8000_0000`.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse()
    };
    r.map_err(|_| format!("'{s}' is not a number (write 0x80360000 or 2148925440)"))
}

/// A memory address: hex with `0x`. A bare number is refused as
/// ambiguous: addresses are written in hex everywhere (`80360000` in a
/// datasheet is 0x80360000), so reading it as decimal would load elsewhere.
pub fn parse_address(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.starts_with("0x") || t.starts_with("0X") || t == "0" {
        return parse_u64(t);
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit() || c == '_') {
        return Err(format!(
            "'{s}' is ambiguous: write the address in hex with 0x (0x{t}), or convert a decimal address to hex"
        ));
    }
    Err(format!("'{s}' is not an address (write it in hex, e.g. 0x80360000)"))
}

/// `ADDR=FILE`.
pub fn parse_load(s: &str) -> Result<(u64, PathBuf), String> {
    let (a, f) = s.split_once('=').ok_or_else(|| format!("'{s}' is not ADDR=FILE"))?;
    if f.is_empty() {
        return Err(format!("'{s}' names no file"));
    }
    Ok((parse_address(a)?, PathBuf::from(f)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimSpeed {
    /// USB 2.0 high speed (480 Mb/s).
    High,
    /// USB 2.0 full speed (12 Mb/s).
    Full,
}

/// How `--record` stores the data the host sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum RecordData {
    /// Long writes (over 256 bytes) as SHA-256 and length: enough to
    /// replay, a fraction of the size.
    #[default]
    Hashed,
    /// Every byte.
    Full,
}

/// Connection options shared by commands that open a device.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// The device: USB port path (1-3.2), tty (/dev/ttyUSB0, /dev/serial/by-path/...) or vid:pid[:serial].
    /// Repeat (or separate with commas, as RACKLET_PORT does) to flash several boards at once.
    #[arg(long, short = 'p', value_name = "SEL", env = "RACKLET_PORT", value_delimiter = ',')]
    pub port: Vec<String>,
    /// Flash every matching boot ROM found, in parallel.
    #[arg(long, conflicts_with = "port")]
    pub all: bool,
    /// Wait this long for the device to appear (e.g. 30s).
    #[arg(long, value_name = "DUR", env = "RACKLET_WAIT", value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// How long a board may take to come back between stages (re-enumeration).
    #[arg(long, value_name = "DUR", env = "RACKLET_STAGE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub stage_timeout: Duration,
    /// Run against the board's virtual ROM instead of a device.
    /// RACKLET_SIMULATE takes 1/0, yes/no, on/off, true/false.
    #[arg(long, env = "RACKLET_SIMULATE", value_parser = BoolishValueParser::new())]
    pub simulate: bool,
    /// Run against the real board when one is attached, otherwise against
    /// its virtual ROM (and say so).
    #[arg(long, conflicts_with = "simulate")]
    pub auto_simulate: bool,
    /// Write a JSON Lines transcript of everything that crossed the link
    /// (docs/transcripts.md); FILE.jsonl.zst is written compressed. An
    /// existing FILE is kept unless --force is given.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// What --record keeps of the data the host sends: long writes as
    /// SHA-256 and length (hashed), or every byte (full).
    #[arg(long, value_enum, value_name = "WHAT", default_value_t, requires = "record")]
    pub record_data: RecordData,
    /// Replace USB serial numbers in the --record transcript with stable
    /// placeholders (before you share it).
    #[arg(long, requires = "record")]
    pub record_redact: bool,
    /// Run against a recorded transcript instead of a device: it answers as
    /// the board did, and the run fails at the first transfer that differs.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["simulate", "auto_simulate", "all"])]
    pub replay: Option<PathBuf>,
    /// With --replay: keep the recording's pace instead of answering at once.
    #[arg(long, requires = "replay")]
    pub replay_timing: bool,
    /// Flash even when the ROM found does not identify as the board's SoC
    /// (or, K230, when --run points outside every load); overwrite --record's FILE.
    #[arg(long)]
    pub force: bool,
    /// After the last stage, follow the board to what comes up next on USB
    /// and report it (bounded by --stage-timeout; nothing coming up is then a
    /// timeout). Without it, the run ends once the ROM took the start.
    #[arg(long)]
    pub follow: bool,
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

/// How the virtual board of a `--simulate` run behaves.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Simulation")]
pub struct SimulationArgs {
    /// Simulation: give virtual USB links the timing of a real bus
    /// (USB 2.0 high or full speed), e.g. to see how close to the bus
    /// ceiling a download comes.
    #[arg(long, value_enum, value_name = "SPEED", requires = "simulate")]
    pub sim_speed: Option<SimSpeed>,

    /// Simulation: make the virtual ROM misbehave (see `racklet-flash sim --help`).
    #[arg(long, value_name = "FAULT", requires = "simulate")]
    pub fault: Option<String>,

    /// Simulation: keep the virtual board's storage in FILE (created when
    /// missing), so a later run sees what this one wrote.
    #[arg(long, value_name = "FILE", requires = "simulate")]
    pub sim_storage: Option<PathBuf>,
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
}

/// `racklet-flash sim <board>`
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Board whose ROM to serve.
    #[arg(add = board_names())]
    pub board: String,
    /// Fastboot ROMs: listen on this TCP address (e.g. 127.0.0.1:5554).
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<String>,
    /// Serve more than one session.
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
    /// spi-nor, otp; default sd).
    #[arg(long, value_name = "MEDIUM", requires = "sim_storage")]
    pub medium: Option<String>,
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

    #[test]
    fn durations_and_numbers() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert_eq!(parse_u64("0x8036_0000").unwrap(), 0x8036_0000);
        assert_eq!(parse_u64("16").unwrap(), 16);
        assert!(parse_u64("0xZZ").is_err());
        assert_eq!(parse_load("0x10=a.bin").unwrap(), (0x10, PathBuf::from("a.bin")));
        assert!(parse_load("0x10").is_err());
        assert!(parse_load("0x10=").is_err());
        // A bare number is ambiguous for an address: refused, not read as decimal.
        let e = parse_load("80360000=a.bin").unwrap_err();
        assert!(e.contains("ambiguous") && e.contains("0x80360000"), "{e}");
        assert!(parse_address("2148925440").unwrap_err().contains("ambiguous"));
        assert_eq!(parse_address("0x8036_0000").unwrap(), 0x8036_0000);
    }
}
