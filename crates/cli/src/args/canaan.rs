//! Canaan K230 / K230D options of `maskrom`.

use std::path::PathBuf;

use clap::Args;

use crate::args::values::{parse_address, parse_duration, parse_load};

/// `--load` and `--run`: a multi-stage load (oreboot's DRAM-init + main flow).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Canaan")]
pub struct CanaanArgs {
    /// Canaan: load FILE at ADDR (repeatable), e.g. --load 0x80360000=ddr.bin.
    #[arg(long = "load", value_name = "ADDR=FILE", value_parser = parse_load)]
    pub loads: Vec<(u64, PathBuf)>,
    /// Canaan: start at ADDR after the loads.
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    pub run: Option<u64>,
    /// Canaan: how long a stage the run needs next may take to come up
    /// (the ROM back from a DRAM-init stage, the kburn loader); k230-flash
    /// waits 15 s for its loader.
    #[arg(long, value_name = "DUR", default_value = "15s", value_parser = parse_duration)]
    pub loader_wait: std::time::Duration,
}
