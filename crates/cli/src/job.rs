//! What every driver's run shares: the [`Outcome`] it reports, the virtual
//! board it stands for in a simulated run ([`SimCtx`]).

use crate::boards::Board;
use crate::cli::MaskromArgs;

/// What a finished run reports (chip info, what ran where).
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Key/value facts for the summary and the JSON `done` event's `details`.
    pub facts: Vec<(String, String)>,
    /// The chip the ROM identified (the board table's SoC when it says nothing).
    pub chip: Option<String>,
    /// What the boot ROM said of itself, when it identifies itself.
    pub rom: Option<String>,
    /// What `--expect` matched on the console.
    pub console_matched: Option<String>,
}

impl Outcome {
    pub fn fact(&mut self, k: &str, v: impl Into<String>) {
        self.facts.push((k.to_string(), v.into()));
    }
}

/// The virtual board of one `maskrom` job of a simulated run.
pub struct SimCtx<'a> {
    pub board: &'a Board,
    pub args: &'a MaskromArgs,
    /// USB port path the virtual board is plugged into.
    pub port_path: String,
    /// The fault this virtual board injects (`--fault NAME` for every
    /// board, `--fault PORT=NAME` for the one at PORT).
    pub fault: Option<String>,
}

impl SimCtx<'_> {
    /// The virtual board this job stands for: at its port, with its fault,
    /// and with a UART console when `--monitor` reads one.
    pub fn scenario(&self) -> racklet_sim::models::Scenario {
        racklet_sim::models::Scenario {
            fault: self.fault.clone(),
            console: !self.args.monitor.is_empty(),
            board: Some(self.board.name.clone()),
            ..racklet_sim::models::Scenario::at(&self.port_path)
        }
    }
}
