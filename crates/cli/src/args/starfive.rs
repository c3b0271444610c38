//! StarFive JH7110 flags.

use std::path::PathBuf;

use clap::Args;

use crate::args::values::parse_u64;

/// `maskrom` flags for StarFive boards.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "StarFive")]
pub struct StarfiveArgs {
    /// StarFive: use 128-byte XMODEM blocks instead of 1K.
    #[arg(long)]
    pub xmodem_128: bool,
    /// StarFive: after the SPL starts, send this file with YMODEM when it asks.
    #[arg(long, value_name = "FILE")]
    pub then_ymodem: Option<PathBuf>,
    /// StarFive: set an FTDI adapter's latency timer to 1 ms (Linux sysfs).
    #[arg(long)]
    pub low_latency: bool,
}

/// `image` flags for StarFive boards: the two header fields spl_tool lets
/// the user choose.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "StarFive")]
pub struct StarfiveImageArgs {
    /// StarFive: the header's version field.
    #[arg(long = "version", id = "spl_version", value_name = "N", value_parser = parse_u64)]
    pub version: Option<u64>,
    /// StarFive: the header's backup offset field.
    #[arg(long, value_name = "N", value_parser = parse_u64)]
    pub backup_offset: Option<u64>,
}
