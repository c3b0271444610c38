//! Canaan K230 / K230D options of `maskrom`.

use std::path::PathBuf;

use clap::Args;

use crate::cli::{parse_address, parse_load};

/// `--load` and `--run`: a multi-stage load (oreboot's DRAM-init + main flow).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Canaan")]
pub struct CanaanArgs {
    /// Canaan: load FILE at ADDR (repeatable), e.g. --load 0x80360000=ddr.bin.
    #[arg(long = "load", value_name = "ADDR=FILE", value_parser = parse_load)]
    pub loads: Vec<(u64, PathBuf)>,
    /// Canaan: start at ADDR after the loads.
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    pub run: Option<u64>,
}
