//! The progress hook that protocol crates call and the CLI renders.
//!
//! Libraries never print: they send [`ProgressEvent`]s to a
//! [`ProgressSink`]. The CLI turns them into indicatif bars, plain lines or
//! JSON events. The sink is also how a library learns that the user pressed
//! Ctrl-C: protocols call [`ProgressSink::check_cancel`] between transfers.

use crate::LinkError;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A stage started (e.g. "ddr", "usbplug", "xmodem"); `total` bytes
    /// will be sent when known.
    StageStart { name: String, total: Option<u64> },
    /// `bytes` more bytes of the current stage went out.
    Advance { bytes: u64 },
    /// The current stage finished.
    StageDone { name: String },
    /// Something the user should know (device identity, chip info, waits).
    Message { text: String },
}

/// Receives progress events.
pub trait ProgressSink: Send {
    /// Handles one event.
    fn event(&mut self, event: ProgressEvent);

    /// True once the user asked to stop. Protocols check it between
    /// transfers and stop with [`LinkError::Interrupted`].
    fn cancelled(&self) -> bool {
        false
    }

    /// Convenience: `Err(LinkError::Interrupted)` when cancelled.
    fn check_cancel(&self) -> Result<(), LinkError> {
        if self.cancelled() { Err(LinkError::Interrupted) } else { Ok(()) }
    }

    /// Starts a stage.
    fn stage(&mut self, name: &str, total: Option<u64>) {
        self.event(ProgressEvent::StageStart { name: name.to_string(), total });
    }
    /// Advances the current stage.
    fn advance(&mut self, bytes: u64) {
        self.event(ProgressEvent::Advance { bytes });
    }
    /// Ends a stage.
    fn done(&mut self, name: &str) {
        self.event(ProgressEvent::StageDone { name: name.to_string() });
    }
    /// Sends a message.
    fn message(&mut self, text: impl Into<String>)
    where
        Self: Sized,
    {
        self.event(ProgressEvent::Message { text: text.into() });
    }
}

impl dyn ProgressSink + '_ {
    /// Sends a message through a trait object.
    pub fn say(&mut self, text: impl Into<String>) {
        self.event(ProgressEvent::Message { text: text.into() });
    }
}

/// A sink that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&mut self, _event: ProgressEvent) {}
}

/// A sink that keeps every event, for tests.
#[derive(Debug, Default, Clone)]
pub struct CollectProgress {
    pub events: Vec<ProgressEvent>,
}

impl ProgressSink for CollectProgress {
    fn event(&mut self, event: ProgressEvent) {
        self.events.push(event);
    }
}

impl CollectProgress {
    /// Sum of all `Advance` events.
    pub fn bytes(&self) -> u64 {
        self.events.iter().map(|e| if let ProgressEvent::Advance { bytes } = e { *bytes } else { 0 }).sum()
    }
}
