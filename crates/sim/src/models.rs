//! The registry of virtual boards by SoC: what `--simulate`, `racklet-flash
//! sim` and `racklet-gadget` attach. Each entry builds the vendor's virtual
//! ROM from the sim's own chip model for that SoC — never from a protocol
//! crate's constants.

use crate::rom::{UnknownFault, VirtualRom};
use crate::serial::SimSerialBus;
use crate::usb::SimUsbBus;

/// What the virtual board is asked to be, beyond its SoC.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// The USB port path the board is plugged into ("1-1").
    pub port_path: String,
    /// A fault to inject (`--fault NAME`), by the ROM's own names.
    pub fault: Option<String>,
    /// The core the board is strapped to boot (Sophgo SG2000/SG2002: `riscv`
    /// or `arm`). A switch or pin on the board decides it, not anything on
    /// the wire, so the virtual board must be told.
    pub core: Option<String>,
    /// The ROM's USB id when the board's efuses changed it (Sophgo: efuse
    /// `usb_vid`, sophgo.md §1.1). The fuses are in the chip, so the virtual
    /// board must be told.
    pub usb_id: Option<racklet_link::UsbId>,
    /// The board already runs a program of its own that asks the host for
    /// this many bytes (Sophgo `--main`: a BL2 calling the ROM API
    /// `load_image(buf, 0, size)`, sophgo.md §2.6). What a running program
    /// asks for is that program's choice, not the ROM's.
    pub running_load: Option<u32>,
    /// The USB speed of the board's link, and with it the bus time each
    /// transfer takes (`--sim-speed`). None: high speed, untimed.
    pub speed: Option<crate::usb::BusSpeed>,
    /// Give the board a UART console the host can read (`--monitor`;
    /// [`VirtualRom::console`]).
    pub console: bool,
    /// The board's name in the board table: what the payloads built for it
    /// print (the virtual console, [`crate::console`]). Like the port it is
    /// plugged into, the board cannot be told from the wire.
    pub board: Option<String>,
    /// Where the board's storage (eMMC, SD, flash) is kept between runs
    /// (`--sim-storage FILE`, see [`crate::storage::Medium::in_file`]);
    /// `None`: a fresh, blank medium in memory. A board's storage outlives
    /// a run, so the virtual board must be told where it is.
    pub storage: Option<std::path::PathBuf>,
    /// Which of the board's media `storage` holds, by the name `--medium`
    /// takes (K230: emmc, sd, spi-nand, spi-nor, otp); `None`: the SoC's
    /// default.
    pub storage_medium: Option<String>,
    /// The code the host starts is the board's storage loader (the K230's
    /// kburn loader, uploaded with `--loader`; the JH7110's recovery
    /// program; vendor U-Boot for a fastboot board's storage verb): the sim
    /// cannot run what it is given, so the board must be told what it is.
    pub storage_loader: bool,
    /// The board already runs its storage stage, not its boot ROM (vendor
    /// U-Boot's fastboot, started from its own storage or by `fastboot usb
    /// 0` at its prompt): a storage verb without a bring-up. Where the board
    /// stands is the board's, not the wire's.
    pub in_storage_stage: bool,
    /// The storage verb only asks the board's storage stage (`partitions`,
    /// `oem` on a fastboot board): the board's verdict is about what it was
    /// asked, not about what it wrote.
    pub asks_only: bool,
    /// How many images the user sends after the one the boot ROM takes (K1
    /// `--then u-boot.itb`: 1). Device-side knowledge, like the port the
    /// board is plugged into: a real board cannot tell from the wire whether
    /// another image is still to come, yet whether its run succeeded
    /// depends on the last image the user meant it to start. The virtual
    /// board is told the scenario it stands for, so its verdict ("every
    /// image I was to get was started") is its own, not the client's.
    pub next_stages: usize,
}

impl Scenario {
    /// The board's UART console when one is asked for: a pty on which the
    /// board prints what the image it starts prints ([`crate::console`]).
    pub fn uart(
        &self,
        soc: &str,
        core: crate::console::BootCore,
    ) -> Result<Option<crate::console::Uart>, SimError> {
        if !self.console {
            return Ok(None);
        }
        let board = self.board.as_deref().unwrap_or(soc);
        crate::console::Uart::new(board, soc, core)
            .map(Some)
            .map_err(|source| SimError::Start { what: "board's console", source })
    }

    /// A board at `port_path` without a fault.
    pub fn at(port_path: &str) -> Self {
        Scenario { port_path: port_path.to_string(), ..Default::default() }
    }
}

/// A virtual board that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("there is no virtual ROM for SoC '{soc}'")]
    UnknownSoc { soc: String },
    #[error(transparent)]
    UnknownFault(#[from] UnknownFault),
    #[error("starting the virtual {what}: {source}")]
    Start {
        what: &'static str,
        #[source]
        source: racklet_link::LinkError,
    },
    /// The scenario asks for a board this SoC cannot be (an Arm boot on a
    /// chip without an Arm core).
    #[error("a virtual {soc} cannot {why}")]
    Impossible { soc: String, why: String },
    /// `--fault PORT=NAME` for a port where the run has no virtual board.
    #[error("--fault {port}={fault}: no virtual board of this run is at {port} (they are at {})", ports.join(", "))]
    NoBoardAt { port: String, fault: String, ports: Vec<String> },
}

impl racklet_link::Classify for SimError {
    fn class(&self) -> racklet_link::FailureClass {
        match self {
            SimError::UnknownSoc { .. }
            | SimError::UnknownFault(_)
            | SimError::Impossible { .. }
            | SimError::NoBoardAt { .. } => racklet_link::FailureClass::BadInput,
            SimError::Start { source, .. } => source.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            SimError::UnknownFault(f) => Some(format!("known faults: {}", f.known)),
            SimError::NoBoardAt { port, .. } => Some(format!("give --port {port} too, or fix the port")),
            _ => None,
        }
    }
}

/// Puts a board of a SoC on the simulated buses.
pub type AttachFn = fn(&str, &Scenario, &SimUsbBus, &SimSerialBus) -> Result<Box<dyn VirtualRom>, SimError>;

/// One family of virtual boards.
pub struct Model {
    /// The SoCs it models, as the board table names them.
    pub socs: &'static [&'static str],
    /// Its faults: name and what each does.
    pub faults: fn() -> Vec<(&'static str, &'static str)>,
    /// Puts a board of `soc` on the simulated buses.
    pub attach: AttachFn,
    /// Serves a board of the family outside the process (`racklet-flash sim`).
    pub serve: crate::serve::ServeFn,
}

/// Every model, one line each (kept so by rustfmt::skip, for merges).
#[rustfmt::skip]
pub static MODELS: &[&Model] = &[
    &crate::canaan::MODEL,
    &crate::rockchip::MODEL,
    &crate::sophgo::MODEL,
    &crate::fastboot::MODEL,
    &crate::starfive::MODEL,
];

/// The model of `soc`.
pub fn model(soc: &str) -> Option<&'static Model> {
    MODELS.iter().copied().find(|m| m.socs.contains(&soc))
}

/// Attaches a virtual board of `soc` to the simulated buses.
pub fn attach(
    soc: &str,
    scenario: &Scenario,
    usb: &SimUsbBus,
    serial: &SimSerialBus,
) -> Result<Box<dyn VirtualRom>, SimError> {
    let m = model(soc).ok_or_else(|| SimError::UnknownSoc { soc: soc.to_string() })?;
    (m.attach)(soc, scenario, usb, serial)
}

/// Serves the virtual ROM of `request.soc` outside the process (`racklet-flash
/// sim`) until it is done or `stop` says so, telling `on` what happens.
pub fn serve(
    request: &crate::serve::Request,
    stop: &(dyn Fn() -> bool + Sync),
    on: crate::serve::Listener<'_>,
) -> Result<(), crate::serve::ServeError> {
    let m = model(&request.soc).ok_or_else(|| SimError::UnknownSoc { soc: request.soc.clone() })?;
    (m.serve)(request, stop, on)
}
