//! `racklet-flash boards [BOARD]`: the board table, or one board.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use crate::boards::{Board, Transport};
use crate::cli::{BoardsArgs, GlobalArgs};
use crate::output::{Mode, Output};

pub fn boards(g: &GlobalArgs, a: &BoardsArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let shown: Vec<&Board> = match &a.board {
        Some(n) => vec![super::find_board(&boards, n)?],
        None => boards.boards.iter().collect(),
    };
    if out.mode == Mode::Json {
        for b in &shown {
            let mut ev = serde_json::to_value(b)?;
            ev["event"] = json!("board");
            ev["board"] = json!(b.name);
            out.json(ev);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.board.is_some() {
        let b = shown[0];
        let via = match b.transport {
            Transport::Usb => "USB",
            Transport::Serial => "serial",
        };
        outln!("{} — {}", b.name, b.title);
        if !b.aliases.is_empty() {
            outln!("  {:<15} {}", "aliases", b.aliases.join(", "));
        }
        outln!("  {:<15} {} ({})", "soc", b.soc, b.arch);
        outln!("  {:<15} {} over {via}", "boot ROM", b.protocol.name());
        outln!("  {:<15} 0x{:x}", "load address", b.load_address);
        if let Some(e) = b.entry {
            outln!("  {:<15} 0x{e:x}", "entry");
        }
        outln!("  {:<15} 0x{:x} + 0x{:x}", "SRAM window", b.sram_base, b.sram_size);
        if let Some(m) = b.max_payload {
            outln!("  {:<15} {m} bytes", "max payload");
        }
        for s in &b.usb {
            outln!("  {:<15} {:04x}:{:04x} ({})", "USB id", s.vid, s.pid, s.stage);
        }
        if let Some(baud) = b.baud {
            outln!("  {:<15} {baud}", "baud");
        }
        if !b.blobs.is_empty() {
            outln!("  {:<15} {}", "vendor blobs", b.blobs.join(", "));
        }
        outln!("  {:<15} {}", "tested", if b.tested { "yes" } else { "not on real hardware yet" });
        outln!("  {:<15} {}", "boot ROM mode", b.enter);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<22} {:<8} {:<9} {:<7} {:<12} {:<7} title",
        "board",
        "soc",
        "protocol",
        "via",
        "load",
        "tested"
    );
    for b in shown {
        outln!(
            "{:<22} {:<8} {:<9} {:<7} 0x{:<10x} {:<7} {}",
            b.name,
            b.soc,
            b.protocol.name(),
            match b.transport {
                Transport::Usb => "usb",
                Transport::Serial => "serial",
            },
            b.load_address,
            if b.tested { "yes" } else { "no" },
            b.title
        );
        if !b.aliases.is_empty() {
            outln!("    aliases: {}", b.aliases.join(", "));
        }
        outln!("    boot ROM mode: {}", b.enter);
    }
    Ok(ExitCode::SUCCESS)
}
