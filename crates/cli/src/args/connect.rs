//! The options of every command that opens a device: which device
//! (`--port`, `--all`), how long to wait, `--record`/`--replay`, and how the
//! virtual board of a `--simulate` run behaves.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};

use super::values::parse_duration;

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
    /// The device: USB port path (1-3.2), tty (/dev/ttyUSB0, /dev/serial/by-path/...) or vid:pid[:serial];
    /// fastboot boards also take tcp:HOST:PORT (a fastboot device over TCP, e.g. `racklet-flash sim BOARD --tcp`).
    /// Repeat (or separate with commas, as RACKLET_PORT does) to flash several boards at once.
    #[arg(long, short = 'p', value_name = "SEL", env = "RACKLET_PORT", value_delimiter = ',')]
    pub port: Vec<String>,
    /// Flash every matching boot ROM found, in parallel.
    #[arg(long, conflicts_with = "port")]
    pub all: bool,
    /// Wait this long for the device to appear (e.g. 30s).
    #[arg(long, value_name = "DUR", env = "RACKLET_WAIT", value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// How long a board may take to come back between stages (re-enumeration)
    /// [default: 10s; 30s for the TH1520's vendor U-Boot, which rewrites its
    /// environment and GPT first].
    #[arg(long, value_name = "DUR", env = "RACKLET_STAGE_TIMEOUT", value_parser = parse_duration)]
    pub stage_timeout: Option<Duration>,
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

/// How the virtual board of a `--simulate` run behaves.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Simulation")]
pub struct SimulationArgs {
    /// Simulation: give virtual USB links the timing of a real bus
    /// (USB 2.0 high or full speed), e.g. to see how close to the bus
    /// ceiling a download comes.
    #[arg(long, value_enum, value_name = "SPEED", requires = "simulate")]
    pub sim_speed: Option<SimSpeed>,

    /// Simulation: make the virtual ROM misbehave (`--help` lists the faults).
    #[arg(long, value_name = "FAULT", requires = "simulate")]
    pub fault: Option<String>,

    /// Simulation: keep the virtual board's storage in FILE (created when
    /// missing), so a later run sees what this one wrote.
    #[arg(long, value_name = "FILE", requires = "simulate")]
    pub sim_storage: Option<PathBuf>,

    /// Simulation: the storage the virtual board boots from and keeps
    /// (K1: emmc, spi-nor, spi-nor+nvme; K230: its --medium by default).
    #[arg(long, value_name = "MEDIUM", requires = "simulate")]
    pub sim_medium: Option<String>,
}
