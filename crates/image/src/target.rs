//! What a protocol crate needs to know about the board it loads: the facts
//! of one row of the board table, as plain data.
//!
//! The CLI owns the table (`boards.toml`, `--boards FILE`) and hands each
//! protocol crate a [`Target`]; the crates never read the table
//! themselves, and the virtual ROMs never see it (they have their own chip
//! models).

use std::path::Path;

use crate::{Arch, ImageError, Payload, Window};

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
    /// The largest file one stage of this board may be: inputs are refused
    /// by their size before they are read.
    pub max_stage: u64,
}

impl Target {
    /// Reads one stage's file, bounded by [`Target::max_stage`].
    pub fn read_stage(&self, path: &Path) -> Result<Vec<u8>, ImageError> {
        crate::read_input(path, self.max_stage, &format!("a stage of {} can be", self.board))
    }

    /// Loads an ELF or raw payload that the ROM puts in its load window, and
    /// checks that it fits there (an ELF's memory size counts).
    pub fn load_payload(&self, path: &Path) -> Result<Payload, ImageError> {
        let bytes = self.read_stage(path)?;
        self.payload_from(path, bytes)
    }

    /// [`Target::load_payload`] with the bytes already read.
    pub fn payload_from(&self, path: &Path, bytes: Vec<u8>) -> Result<Payload, ImageError> {
        let p = crate::load_bytes(path, bytes, self.arch, &self.window)?;
        let at = p.load_address.unwrap_or(self.load_address);
        crate::check_fit(path, at, p.mem_size, &self.window)?;
        Ok(p)
    }

    /// Where a stage bound for DRAM may go: anywhere, up to the board's
    /// largest stage (the protocol checks the addresses).
    pub fn dram_window(&self) -> Window {
        Window::anywhere(
            &self.board,
            self.max_stage,
            &format!("the largest stage racklet-flash sends to {}", self.board),
        )
    }

    /// Loads an ELF or raw stage bound for DRAM.
    pub fn load_dram_stage(&self, path: &Path) -> Result<Payload, ImageError> {
        let bytes = self.read_stage(path)?;
        crate::load_bytes(path, bytes, self.arch, &self.dram_window())
    }

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
