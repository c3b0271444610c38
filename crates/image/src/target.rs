//! What a protocol crate needs to know about the board it loads: the facts
//! of one row of the board table, as plain data.
//!
//! The CLI owns the table (`boards.toml`, `--boards FILE`) and hands each
//! protocol crate a [`Target`]; the crates never read the table
//! themselves, and the virtual ROMs never see it (they have their own chip
//! models).

use crate::{Arch, Window};

/// The board a run is for.
#[derive(Debug, Clone)]
pub struct Target {
    /// The board's name, for messages ("rock-3a").
    pub board: String,
    /// The SoC as the board table writes it ("rk3568").
    pub soc: String,
    /// The payload architecture, when the table names a known one.
    pub arch: Option<Arch>,
    /// Where the ROM puts a raw payload.
    pub load_address: u64,
    /// Where the ROM jumps, when not the load address.
    pub entry: Option<u64>,
    /// The load window for fit checks.
    pub window: Window,
    /// USB identities by stage (empty for a plain UART).
    pub usb: Vec<(String, u16, u16)>,
    /// The ROM's serial rate, for serial ROMs.
    pub baud: Option<u32>,
    /// The largest file one stage may be: inputs larger than this are
    /// refused by their size, before they are read.
    pub largest_stage: u64,
}

impl Target {
    /// The (vid, pid) of every USB stage named `stage`; all of them when
    /// `stage` is `None`, without repeats.
    pub fn usb_ids(&self, stage: Option<&str>) -> Vec<(u16, u16)> {
        let mut v: Vec<(u16, u16)> = Vec::new();
        for (s, vid, pid) in &self.usb {
            if stage.is_none_or(|want| want == s) && !v.contains(&(*vid, *pid)) {
                v.push((*vid, *pid));
            }
        }
        v
    }
}
