//! The board's UART console, read while the boot runs (`--monitor`): the
//! ROM and the vendor FSBL print terse tokens there, and the one thing the
//! USB side never says — whether a stage was accepted.
//!
//! Strings from the CV181x mask ROM images (sophgo/fsbl `test/cv181x/`,
//! `strings`: `PS.` 0x11d9e, `PE.` 0x11e59, `E:param1_cksum (0x%x/0x%x)`
//! 0x11dd6, `E:bl2_cksum (0x%x/0x%x)` 0x11f36, `BE.` 0x11f7f, `J.` 0x11fd6,
//! `W:DL cancelled. Load flash. (%d).` 0x11f85) and from `bl2_opt.c` (the
//! FSBL: `P2E.`, `DPE.`, `ME.`, `Loader_2nd loaded.`, `*_cksum (...)`).

use std::time::{Duration, Instant};

use racklet_link::{LinkError, SerialLink};

/// What says a stage failed, wherever it comes from: a checksum line of
/// the ROM or the FSBL, a failed load, a signature check, or the fallback
/// to flash.
pub const FAILURES: [&str; 9] = [
    "_cksum (",
    "PARAM1 magic",
    "DL cancelled",
    "LP2_NOMAGIC",
    "not in DRAM",
    "E:load ",
    "E:verify ",
    "E:decrypt ",
    "Boot failed",
];

/// The ROM checked BL2 and jumps to it (`BE.` then `J.`).
pub const BL2_ENTERED: &str = "BE.J.";

/// What the console said about a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// The success marker appeared.
    Accepted,
    /// A failure line appeared: that line.
    Failed(String),
    /// Neither, within the wait.
    Silent,
}

/// The console link and what it printed so far.
pub struct Console<'a> {
    link: &'a mut dyn SerialLink,
    /// Everything read, lossily as text.
    pub text: String,
    /// Where the text of the current stage starts.
    mark: usize,
}

impl<'a> Console<'a> {
    pub fn new(link: &'a mut dyn SerialLink) -> Self {
        Console { link, text: String::new(), mark: 0 }
    }

    /// Reads what arrives within `wait` (returns early on a quiet line once
    /// something came).
    pub fn drain(&mut self, wait: Duration) -> Result<(), LinkError> {
        let end = Instant::now() + wait;
        let mut buf = [0u8; 1024];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let t = left.min(Duration::from_millis(20)).max(Duration::from_millis(1));
            match self.link.read(&mut buf, t) {
                Ok(n) => self.text.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(LinkError::Timeout { .. }) => {}
                Err(e) => return Err(e),
            }
            if left.is_zero() {
                return Ok(());
            }
        }
    }

    /// The text since the last [`Console::next_stage`].
    pub fn stage_text(&self) -> &str {
        &self.text[self.mark.min(self.text.len())..]
    }

    /// Starts a new stage: later verdicts look at what comes from here on.
    pub fn next_stage(&mut self) {
        self.mark = self.text.len();
    }

    /// The first failure line of this stage, if any.
    pub fn failure(&self) -> Option<String> {
        let t = self.stage_text();
        FAILURES.iter().filter_map(|f| t.find(f)).min().map(|at| line_at(t, at))
    }

    /// Waits up to `within` for `ok` or a failure in this stage's text.
    pub fn wait_for(&mut self, ok: &str, within: Duration) -> Result<Said, LinkError> {
        let end = Instant::now() + within;
        loop {
            if let Some(l) = self.failure() {
                return Ok(Said::Failed(l));
            }
            if self.stage_text().contains(ok) {
                return Ok(Said::Accepted);
            }
            if Instant::now() >= end {
                return Ok(Said::Silent);
            }
            self.drain(Duration::from_millis(50))?;
        }
    }
}

/// The console line around byte `at` of `t` (its tokens run together
/// without newlines; error lines end in one).
fn line_at(t: &str, at: usize) -> String {
    let line = t[..at].rfind('\n').map(|p| p + 1).unwrap_or(0);
    // An error or warning line starts with its level ("E:", "W:").
    let level = ["E:", "W:"].iter().filter_map(|l| t[line..at].rfind(l)).max().map(|p| line + p);
    let start = level.unwrap_or(line);
    let end = t[at..].find('\n').map(|p| at + p).unwrap_or(t.len());
    t[start..end].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_are_cut_from_the_token_stream() {
        let t = "PS.USBK.USBL.PE.BS.USBK.USBL.E:bl2_cksum (0xcafe1234/0xcafe5678)\nW:DL cancelled. Load flash. (1).\n";
        let at = t.find("_cksum (").unwrap();
        assert_eq!(line_at(t, at), "E:bl2_cksum (0xcafe1234/0xcafe5678)");
        let at = t.find("DL cancelled").unwrap();
        assert_eq!(line_at(t, at), "W:DL cancelled. Load flash. (1).");
    }
}
