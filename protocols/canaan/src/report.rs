//! What a run did, as typed facts, and the lines the CLI prints of them.

use serde::Serialize;

use crate::rom::{DeviceStage, StartStatus};

/// What answered GET_CPU_INFO first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Chip {
    /// The boot ROM ("K230").
    BootRom,
    /// Something else, sent ROM commands anyway (`--force`).
    Unknown { reply: String },
}

/// One stage as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageReport {
    /// "payload" for a single stage, "stage N" otherwise.
    pub name: String,
    pub bytes: u64,
    /// How many files (loads) it held.
    pub files: usize,
    /// Where PROG_START jumped.
    pub entry: u32,
    /// How PROG_START's status stage ended.
    pub start: StartStatus,
    /// From its first transfer to PROG_START.
    pub ms: u64,
}

/// What came up at the board's USB port after the last stage (`--follow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NextStage {
    /// A device answered GET_CPU_INFO.
    Answered { stage: DeviceStage },
    /// A device came up but could not be opened or did not answer.
    Silent { error: String },
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The board's USB port path.
    pub port: String,
    pub chip: Chip,
    /// Every stage, in order.
    pub stages: Vec<StageReport>,
    /// The next stage, when it was followed.
    pub next: Option<NextStage>,
}

impl Report {
    /// The facts of the summary, in order: `port`, `chip`, one line per
    /// stage, `next stage`.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f = vec![("port".to_string(), self.port.clone())];
        f.push((
            "chip".into(),
            match &self.chip {
                Chip::BootRom => "K230 boot ROM (GET_CPU_INFO \"K230\")".into(),
                Chip::Unknown { reply } => format!("unknown (GET_CPU_INFO {reply:?}, forced)"),
            },
        ));
        for s in &self.stages {
            f.push((
                s.name.clone(),
                format!(
                    "{} bytes in {} file(s), started at 0x{:08x}, PROG_START {}",
                    s.bytes,
                    s.files,
                    s.entry,
                    s.start.describe()
                ),
            ));
        }
        if let Some(next) = &self.next {
            let found = match next {
                NextStage::Answered { stage } => stage.describe(),
                NextStage::Silent { error } => format!("a device that did not answer GET_CPU_INFO ({error})"),
            };
            f.push(("next stage".into(), format!("{found} at USB port {}", self.port)));
        }
        f
    }
}
