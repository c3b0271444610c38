//! A storage verb as the user asked for it, before any protocol reads it.
//!
//! The command line fills one [`StorageRequest`] for `write`, `read`,
//! `erase`, `reset`, `partitions` and `oem`, the same for every board; the
//! protocol crate of the board turns it into its own plan and refuses what
//! does not apply to its storage stage with a [`RequestError`] that names
//! the options and carries the fix. Which options a protocol takes, and why
//! not the others, is the protocol's policy, so it lives there.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Classify, FailureClass};

/// The storage verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verb {
    #[default]
    Write,
    Read,
    Erase,
    Reset,
    Partitions,
    Oem,
}

impl Verb {
    /// The verb's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Write => "write",
            Verb::Read => "read",
            Verb::Erase => "erase",
            Verb::Reset => "reset",
            Verb::Partitions => "partitions",
            Verb::Oem => "oem",
        }
    }
}

/// How to bring the board from its boot ROM to the stage that writes its
/// storage (none given: that stage must already answer).
#[derive(Debug, Clone, Default)]
pub struct BringUp {
    /// `--loader`: what the boot ROM runs first.
    pub loader: Option<PathBuf>,
    /// `--loader-address`.
    pub loader_address: Option<u64>,
    /// `--then`: the next stages, in order.
    pub then: Vec<PathBuf>,
    /// `--bundle`: an unpacked vendor OS image.
    pub bundle: Option<PathBuf>,
    /// `--dram`, `--usbplug`, `--rkbin`: Rockchip's raw-blob bring-up.
    pub dram: Option<PathBuf>,
    pub usbplug: Option<PathBuf>,
    pub rkbin: Option<PathBuf>,
}

impl BringUp {
    /// True when a raw-blob bring-up flag (`--dram`, `--usbplug`, `--rkbin`) was given.
    pub fn raw_blobs(&self) -> bool {
        self.dram.is_some() || self.usbplug.is_some() || self.rkbin.is_some()
    }
}

/// One storage verb's request: every option a storage verb may take, as
/// given. Which of them a board's protocol takes is the protocol's.
#[derive(Debug, Clone, Default)]
pub struct StorageRequest {
    /// The board's name, for messages and usage lines.
    pub board: String,
    pub verb: Verb,
    /// `write IMAGE`.
    pub image: Option<PathBuf>,
    /// `--at`: an LBA or a byte offset, as the protocol counts.
    pub at: Option<u64>,
    /// `--size`.
    pub size: Option<u64>,
    /// `--partition NAME` or `NAME=FILE`, in order.
    pub partitions: Vec<String>,
    /// `--medium`.
    pub medium: Option<String>,
    /// `erase --whole`.
    pub whole: bool,
    /// Read the written range back (no `--no-verify`).
    pub verify: bool,
    /// `--reboot`.
    pub reboot: bool,
    /// `--no-reboot`.
    pub no_reboot: bool,
    /// `--sparse-limit`.
    pub sparse_limit: Option<u64>,
    /// `write --loader-to-storage`.
    pub loader_to_storage: bool,
    /// `reset --maskrom`.
    pub maskrom: bool,
    /// `oem WORD…`.
    pub words: Vec<String>,
    pub bring_up: BringUp,
    /// `--force`.
    pub force: bool,
    /// `--stage-timeout`.
    pub stage_timeout: Option<Duration>,
}

/// A storage request that the board's protocol cannot carry out as asked:
/// bad usage (exit 2), found before any device is touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Options given that this protocol does not take for this verb.
    #[error("{flags}: {why}")]
    NotTaken {
        /// The options, as written on the command line (`--at/--partition`).
        flags: String,
        /// Why they do not apply here.
        why: String,
        /// What to do instead.
        fix: String,
    },
    /// Something the verb needs here was not given.
    #[error("{what}")]
    Missing {
        /// What is missing.
        what: String,
        /// The command line that gives it.
        fix: String,
    },
}

impl RequestError {
    /// `flags` are not taken: `why`; `fix` says what to do instead.
    pub fn not_taken(flags: &str, why: impl Into<String>, fix: impl Into<String>) -> Self {
        RequestError::NotTaken { flags: flags.to_string(), why: why.into(), fix: fix.into() }
    }

    /// `what` is needed; `fix` is the command line that gives it.
    pub fn missing(what: impl Into<String>, fix: impl Into<String>) -> Self {
        RequestError::Missing { what: what.into(), fix: fix.into() }
    }
}

impl Classify for RequestError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        match self {
            RequestError::NotTaken { fix, .. } | RequestError::Missing { fix, .. } => Some(fix.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_is_the_hint_and_not_part_of_the_message() {
        let e = RequestError::not_taken(
            "--at",
            "fastboot writes partitions by name",
            "use --partition NAME=FILE",
        );
        assert_eq!(e.to_string(), "--at: fastboot writes partitions by name");
        assert_eq!(e.hint().as_deref(), Some("use --partition NAME=FILE"));
        assert_eq!(e.class(), FailureClass::BadInput);
        let m = RequestError::missing("write needs an image", "racklet-flash write b IMAGE");
        assert_eq!(m.to_string(), "write needs an image");
        assert_eq!(m.hint().as_deref(), Some("racklet-flash write b IMAGE"));
    }
}
