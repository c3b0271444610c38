//! The command line. Doc comments are the help text.

use std::path::PathBuf;
use std::time::Duration;

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

/// Options for every command.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Print machine-readable JSON (events on stdout, one per line).
    #[arg(long, global = true, env = "RACKLET_JSON")]
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
    /// Show the board table.
    Boards,
    /// Tell what a file holds (ELF, raw, RKBOOT loader, boot image) and which boards it fits.
    Info(InfoArgs),
    /// Write the storage boot image the board's ROM expects.
    Image(ImageArgs),
    /// Print udev rules that give the plugdev group access to every boot ROM in the table.
    UdevRules,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Serve a board's virtual boot ROM outside this process (pty for serial ROMs, TCP for fastboot).
    Sim(SimArgs),
    /// Load an image through a fastload loader already running on a serial port, and start it.
    Fastload(Box<crate::cmd::fastload::FastloadArgs>),
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

/// `ADDR=FILE`.
pub fn parse_load(s: &str) -> Result<(u64, PathBuf), String> {
    let (a, f) = s.split_once('=').ok_or_else(|| format!("'{s}' is not ADDR=FILE"))?;
    if f.is_empty() {
        return Err(format!("'{s}' names no file"));
    }
    Ok((parse_u64(a)?, PathBuf::from(f)))
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
    /// Repeat to flash several boards at once.
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
    #[arg(long, env = "RACKLET_SIMULATE")]
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

    /// StarFive: use 128-byte XMODEM blocks instead of 1K.
    #[arg(long, help_heading = "StarFive")]
    pub xmodem_128: bool,
    /// StarFive: after the SPL starts, send this file with YMODEM when it asks.
    #[arg(long, value_name = "FILE", help_heading = "StarFive")]
    pub then_ymodem: Option<PathBuf>,
    /// StarFive: set an FTDI adapter's latency timer to 1 ms (Linux sysfs).
    #[arg(long, help_heading = "StarFive")]
    pub low_latency: bool,

    #[command(flatten)]
    pub sophgo: crate::args::sophgo::SophgoArgs,

    #[command(flatten)]
    pub canaan: crate::args::canaan::CanaanArgs,

    /// Fastboot ROMs: the next image to download and `continue` after the FSBL comes back.
    #[arg(long, value_name = "FILE", help_heading = "Fastboot")]
    pub then: Option<PathBuf>,

    /// Simulation: give virtual USB links the timing of a real bus
    /// (USB 2.0 high or full speed), e.g. to see how close to the bus
    /// ceiling a download comes.
    #[arg(long, value_enum, value_name = "SPEED", requires = "simulate", help_heading = "Simulation")]
    pub sim_speed: Option<SimSpeed>,

    /// Simulation: make the virtual ROM misbehave (see `racklet-flash sim --help`).
    #[arg(long, value_name = "FAULT", requires = "simulate", help_heading = "Simulation")]
    pub fault: Option<String>,
}

/// `racklet-flash list`
#[derive(Debug, Args, Clone)]
pub struct ListArgs {
    /// Also show USB devices and serial ports that are not known boot ROMs.
    #[arg(long, short)]
    pub all: bool,
}

/// `racklet-flash info <file>`
#[derive(Debug, Args, Clone)]
pub struct InfoArgs {
    /// The file to inspect.
    pub file: PathBuf,
    /// Check the fit against this board only.
    #[arg(long)]
    pub board: Option<String>,
}

/// `racklet-flash image <board> <in> -o <out>`
#[derive(Debug, Args, Clone)]
#[command(disable_version_flag = true)]
pub struct ImageArgs {
    /// Board name.
    pub board: String,
    /// The payload (ELF or raw binary).
    pub input: PathBuf,
    /// Where to write the image.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// StarFive: the header's version field.
    #[arg(long = "version", id = "spl_version", value_name = "N", value_parser = parse_u64, help_heading = "StarFive")]
    pub version: Option<u64>,
    /// StarFive: the header's backup offset field.
    #[arg(long, value_name = "N", value_parser = parse_u64, help_heading = "StarFive")]
    pub backup_offset: Option<u64>,
    #[command(flatten)]
    pub sophgo: crate::args::sophgo::SophgoImageArgs,
}

/// `racklet-flash sim <board>`
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Board whose ROM to serve.
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
    }
}
