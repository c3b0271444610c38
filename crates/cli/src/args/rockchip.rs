//! Rockchip's flags of `racklet-flash maskrom`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Rockchip maskrom options.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Rockchip")]
pub struct RockchipArgs {
    /// DRAM-init blob sent before the payload (Rockchip 0x471 stage).
    #[arg(long, value_name = "BLOB")]
    pub dram: Option<PathBuf>,
    /// Apply RC4 to raw stages (default: the chip table's choice).
    #[arg(long, value_enum)]
    pub rc4: Option<OnOff>,
    /// Send a zero CRC (only chips that accept it).
    #[arg(long)]
    pub zero_crc: bool,
    /// Take the DDR blob and usbplug from an rkbin checkout.
    #[arg(long, value_name = "DIR")]
    pub rkbin: Option<PathBuf>,
    /// The 0x472 stage is a usbplug: wait --stage-timeout for it to answer
    /// rockusb and fail if it does not (default: look for 3 s; a payload that
    /// is not a usbplug never answers, and that is success).
    #[arg(long)]
    pub expect_usbplug: bool,
}

impl RockchipArgs {
    /// The protocol crate's inputs: these flags, the payload and `--force`.
    pub fn inputs(&self, bin: Option<&PathBuf>, force: bool) -> racklet_rockchip::Inputs {
        racklet_rockchip::Inputs {
            bin: bin.cloned(),
            dram: self.dram.clone(),
            rkbin: self.rkbin.clone(),
            rc4: self.rc4.map(|v| v == OnOff::On),
            zero_crc: self.zero_crc,
            force,
        }
    }
}

/// Rockchip flags of `racklet-flash image`: the idbloader's stages.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Rockchip")]
pub struct RockchipImageArgs {
    /// Rockchip: the TPL (DRAM init) that runs from SRAM before the SPL
    /// (mkimage's `-d TPL:SPL`); without it the SPL is the SRAM stage.
    #[arg(long = "dram", id = "idb_dram", value_name = "TPL")]
    pub dram: Option<PathBuf>,
}
