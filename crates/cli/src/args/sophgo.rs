//! Sophgo CV1800B / SG2000 / SG2002 flags of `racklet-flash maskrom`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use racklet_link::UsbId;

/// The core an SG2000/SG2002 board is strapped to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Core {
    Riscv,
    Arm,
}

impl From<Core> for racklet_sophgo::Core {
    fn from(c: Core) -> Self {
        match c {
            Core::Riscv => racklet_sophgo::Core::Riscv,
            Core::Arm => racklet_sophgo::Core::Arm,
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Sophgo")]
pub struct SophgoArgs {
    /// Sophgo: the ROM's USB id when efuses changed it (vid:pid).
    #[arg(long, value_name = "VID:PID")]
    pub usb_id: Option<UsbId>,
    /// Sophgo: serve one load_image session for an already running BL2.
    #[arg(long = "main")]
    pub main_session: bool,
    /// Sophgo SG2000/SG2002: the core the board is strapped to boot.
    #[arg(long, value_enum)]
    pub core: Option<Core>,
}

/// How fiptool stores LOADER_2ND.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    /// As given (fiptool.py's default).
    #[default]
    None,
    /// LZMA, as fiptool.py --compress lzma (the vendor build's default).
    Lzma,
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let v = crate::args::values::parse_u64(s)?;
    u32::try_from(v).map_err(|_| format!("'{s}' does not fit 32 bits"))
}

/// Sophgo flags of `racklet-flash image`: the later parts of a whole
/// fip.bin, as the vendor `fiptool.py genfip` takes them.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Sophgo")]
pub struct SophgoImageArgs {
    /// Sophgo: the small core's first image (BLCP, before BL2).
    #[arg(long, value_name = "FILE")]
    pub blcp: Option<PathBuf>,
    /// Sophgo: the DDR parameter blob (writes param2, which every later part needs).
    #[arg(long, value_name = "FILE")]
    pub ddr_param: Option<PathBuf>,
    /// Sophgo: the small core's second image (BLCP_2ND).
    #[arg(long = "blcp-2nd", value_name = "FILE")]
    pub blcp_2nd: Option<PathBuf>,
    /// Sophgo: where BLCP_2ND runs (DRAM).
    #[arg(long = "blcp-2nd-runaddr", value_name = "ADDR", value_parser = parse_u32)]
    pub blcp_2nd_runaddr: Option<u32>,
    /// Sophgo: the monitor (OpenSBI fw_dynamic.bin or BL31).
    #[arg(long, value_name = "FILE")]
    pub monitor: Option<PathBuf>,
    /// Sophgo: where the monitor runs (DRAM; the vendor memory maps put it at 0x80000000).
    #[arg(long, value_name = "ADDR", value_parser = parse_u32)]
    pub monitor_runaddr: Option<u32>,
    /// Sophgo: U-Boot with its "BL33" header (LOADER_2ND).
    #[arg(long = "loader-2nd", value_name = "FILE")]
    pub loader_2nd: Option<PathBuf>,
    /// Sophgo: how LOADER_2ND is stored.
    #[arg(long, value_enum, default_value_t, value_name = "HOW")]
    pub compress: Compress,
}

impl SophgoImageArgs {
    /// The protocol crate's view.
    pub fn parts(&self) -> racklet_sophgo::plan::ImageParts {
        racklet_sophgo::plan::ImageParts {
            blcp: self.blcp.clone(),
            ddr_param: self.ddr_param.clone(),
            blcp_2nd: self.blcp_2nd.clone(),
            blcp_2nd_runaddr: self.blcp_2nd_runaddr,
            monitor: self.monitor.clone(),
            monitor_runaddr: self.monitor_runaddr,
            loader_2nd: self.loader_2nd.clone(),
            compress: match self.compress {
                Compress::None => racklet_sophgo::fip::Compress::None,
                Compress::Lzma => racklet_sophgo::fip::Compress::Lzma,
            },
        }
    }
}
