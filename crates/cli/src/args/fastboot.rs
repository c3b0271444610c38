//! Flags of the fastboot ROMs (SpacemiT K1, T-Head TH1520).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Fastboot")]
pub struct FastbootArgs {
    /// Fastboot ROMs: the next image to download and `continue` after the FSBL comes back.
    #[arg(long, value_name = "FILE")]
    pub then: Option<PathBuf>,
}
