//! Flags of the fastboot ROMs (SpacemiT K1, T-Head TH1520).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Fastboot")]
pub struct FastbootArgs {
    /// K1: the next image to download and `continue` once the FSBL comes back
    /// (u-boot.itb); give it again for the image vendor U-Boot then stages and
    /// runs (uImage.itb), as the vendor RAM-boot script does.
    #[arg(long, value_name = "FILE")]
    pub then: Vec<PathBuf>,
}
