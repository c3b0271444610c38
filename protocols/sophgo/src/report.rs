//! What a boot did, as typed facts.

use std::path::PathBuf;

use serde::Serialize;

use crate::chip::{Chip, Core};
use crate::plan::Image;

/// What was sent, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Sent {
    /// A fip.bin as the user gave it.
    FipAsGiven { len: usize, bl2: u32 },
    /// A fip.bin built from the user's BL2.
    FipBuilt { from: PathBuf, bl2: usize },
    /// One `load_image` session for a running BL2 (`--main`).
    Main { len: usize },
}

impl From<&Image> for Sent {
    fn from(i: &Image) -> Sent {
        match i {
            Image::Fip { built_from: Some((from, bl2)), .. } => {
                Sent::FipBuilt { from: from.clone(), bl2: *bl2 }
            }
            Image::Fip { bytes, info, built_from: None } => {
                Sent::FipAsGiven { len: bytes.len(), bl2: info.bl2_size }
            }
            Image::Main { bytes } => Sent::Main { len: bytes.len() },
        }
    }
}

/// One session served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// "probe", "param1", "BL2", "payload" or "fip.bin 0x...+0x...".
    pub name: String,
    /// The slice of fip.bin the ROM asked for.
    pub offset: u32,
    pub size: u32,
    /// Payload bytes sent.
    pub bytes: u64,
    /// How long the session took.
    pub ms: u64,
}

/// A request of the board that this image does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Request {
    pub offset: u32,
    pub size: u32,
}

/// Where BL2 went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bl2 {
    pub load: u64,
    pub entry: u64,
}

/// The outcome of [`crate::boot::boot`].
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub board: String,
    pub chip: Chip,
    pub core: Core,
    pub image: Sent,
    /// The ROM's first port.
    pub port: String,
    /// How the board was followed across re-enumeration ("USB port 1-1").
    pub followed_by: String,
    pub sessions: u32,
    /// Payload bytes sent in all sessions.
    pub bytes_sent: u64,
    pub stages: Vec<Stage>,
    /// After BL2, the board asked for something else: BL2 runs and wants its next stage.
    pub next_request: Option<Request>,
    /// Where the ROM loads and enters BL2 (a cold boot).
    pub bl2: Option<Bl2>,
    /// Time spent in sessions (ms), for the throughput.
    pub send_ms: u64,
    /// What the board showed it accepted (a next request, the console, U-Boot's gadget).
    pub confirmed: Vec<String>,
    /// What nothing confirmed, and why.
    pub unconfirmed: Vec<String>,
    /// U-Boot's download gadget (3346:1001), when it appeared.
    pub uboot: Option<String>,
    /// What the board's console printed during the boot (`--monitor`).
    pub console: String,
}

impl Report {
    /// The summary, as `key: value` lines.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f = vec![("chip".to_string(), format!("{} ({} core)", self.chip.name(), self.core.title()))];
        f.push(match &self.image {
            Sent::Main { .. } => ("mode".into(), "one load_image session for a running BL2 (--main)".into()),
            Sent::FipAsGiven { len, bl2 } => {
                ("image".into(), format!("fip.bin as given ({len} bytes, BL2 {bl2} bytes)"))
            }
            Sent::FipBuilt { from, bl2 } => {
                ("image".into(), format!("fip.bin built from {} ({bl2} bytes of BL2)", from.display()))
            }
        });
        f.push(("port".into(), format!("{} ({})", self.port, self.followed_by)));
        if let Some(r) = self.next_request {
            f.push((
                "next request".into(),
                format!(
                    "BL2 asks for fip.bin 0x{:x}+0x{:x}, beyond this image (serve it with --main)",
                    r.offset, r.size
                ),
            ));
        }
        f.push(("sessions".into(), self.sessions.to_string()));
        let served: Vec<&str> =
            self.stages.iter().map(|s| s.name.as_str()).filter(|n| *n != "probe").collect();
        if !served.is_empty() {
            f.push(("served".into(), served.join(", ")));
        }
        f.push(("bytes sent".into(), self.bytes_sent.to_string()));
        if self.send_ms > 0 && self.bytes_sent > 0 {
            // A USB device: there is no line rate to compare with.
            f.push((
                "throughput".into(),
                format!(
                    "{:.0} KiB/s over USB in {:.2}s of sessions",
                    self.bytes_sent as f64 / 1024.0 / (self.send_ms as f64 / 1000.0),
                    self.send_ms as f64 / 1000.0
                ),
            ));
        }
        if let Some(b) = self.bl2 {
            f.push(("BL2".into(), format!("sent for 0x{:x}, entry 0x{:x}", b.load, b.entry)));
        }
        if !self.confirmed.is_empty() {
            f.push(("confirmed".into(), self.confirmed.join("; ")));
        }
        if !self.unconfirmed.is_empty() {
            f.push(("not confirmed".into(), self.unconfirmed.join("; ")));
        }
        f
    }
}
