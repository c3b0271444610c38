//! Sophgo CV1800B / SG2000 / SG2002 flags of `racklet-flash maskrom`.

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
