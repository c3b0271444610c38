//! What every virtual ROM offers the code that attaches it: its verdict on
//! what it received, and its faults by name.

/// What a virtual ROM concluded about the run, from the device side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A payload was loaded and started; `summary` says what and where
    /// ("loaded 1278 bytes at 0x80360000; jumped to 0x80360000").
    Started { summary: String },
    /// Nothing was started, or not what the ROM would start; `why` says
    /// what the ROM refused or never got.
    NotStarted { why: String },
}

impl Verdict {
    /// True when a payload was started.
    pub fn started(&self) -> bool {
        matches!(self, Verdict::Started { .. })
    }

    /// The summary or the reason, for messages.
    pub fn text(&self) -> &str {
        match self {
            Verdict::Started { summary } => summary,
            Verdict::NotStarted { why } => why,
        }
    }

    /// `Started` for `Ok`, `NotStarted` for `Err` (the shape the ROM
    /// models compute their verdict in).
    pub fn from_result(r: Result<String, String>) -> Verdict {
        match r {
            Ok(summary) => Verdict::Started { summary },
            Err(why) => Verdict::NotStarted { why },
        }
    }
}

/// A virtual ROM attached to a simulated bus, seen from outside.
pub trait VirtualRom: Send {
    /// The ROM's own conclusion, once the client is done with it.
    fn verdict(&mut self) -> Verdict;

    /// The tty where the host reads the board's UART console, when the
    /// virtual board has one (asked for with `Scenario::console`).
    fn console(&self) -> Option<String> {
        None
    }
}

/// The faults of one virtual ROM: each has a name (`--fault NAME`) and a
/// line saying what it does. A ROM's fault enum implements this and gets
/// `FromStr` through [`parse_fault`].
pub trait Faults: Sized + Copy + 'static {
    /// Every fault: name, value, what it does.
    const ALL: &'static [(&'static str, Self, &'static str)];

    /// The names, comma-separated, for help and error messages.
    fn names() -> String {
        Self::ALL.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
    }
}

/// A fault name the ROM does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault '{name}' for the {rom}; known: {known}")]
pub struct UnknownFault {
    pub name: String,
    pub rom: &'static str,
    pub known: String,
}

/// Parses a fault name of `F` (the `FromStr` of every fault enum).
pub fn parse_fault<F: Faults>(name: &str, rom: &'static str) -> Result<F, UnknownFault> {
    F::ALL.iter().find(|f| f.0 == name).map(|f| f.1).ok_or_else(|| UnknownFault {
        name: name.to_string(),
        rom,
        known: F::names(),
    })
}
