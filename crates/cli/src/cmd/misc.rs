//! Small commands: boards, image, udev-rules, completions, man, sim.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::CommandFactory;
use serde_json::json;

use crate::boards::Transport;
use crate::cli::{Cli, GlobalArgs, ImageArgs, SimArgs};
use crate::error::bad_input;
use crate::output::{Mode, Output};

pub fn boards(g: &GlobalArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    if out.mode == Mode::Json {
        outln!("{}", serde_json::to_string_pretty(&boards.boards)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<22} {:<8} {:<9} {:<8} {:<12} {:<7} title",
        "board",
        "soc",
        "protocol",
        "via",
        "load",
        "tested"
    );
    for b in &boards.boards {
        outln!(
            "{:<22} {:<8} {:<9} {:<8} 0x{:<10x} {:<7} {}",
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
    }
    Ok(ExitCode::SUCCESS)
}

pub fn image(g: &GlobalArgs, a: &ImageArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    if a.output.exists() && std::fs::canonicalize(&a.output).ok() == std::fs::canonicalize(&a.input).ok() {
        return Err(bad_input(format!("{}: the output would overwrite the input", a.output.display())));
    }
    // Refused before any work: a device, FIFO or directory, or an existing file without --force.
    racklet_image::output::check_target(&a.output, a.force)?;
    let input = crate::flows::read_stage(board, &a.input)?;
    let payload =
        racklet_image::load_bytes(&a.input, input, board.arch(), &crate::flows::dram_window(board))?;
    let bytes = crate::drivers::of(board).image(board, a, &payload)?;
    // A random temporary file beside the target, renamed over it: a failed
    // run never leaves half a file, and nothing planted there is followed.
    racklet_image::output::write_file(&a.output, &bytes, a.force)?;
    if out.mode == Mode::Json {
        outln!(
            "{}",
            json!({"output": a.output.display().to_string(), "bytes": bytes.len(), "sha256": racklet_image::sha256_hex(&bytes)})
        );
    } else if !g.quiet {
        eprintln!("wrote {} ({} bytes) for {}", a.output.display(), bytes.len(), board.name);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn udev_rules(g: &GlobalArgs) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let mut ids: BTreeMap<(u16, u16), (Vec<String>, bool)> = BTreeMap::new();
    for b in &boards.boards {
        for s in &b.usb {
            let e = ids.entry((s.vid, s.pid)).or_default();
            let label = format!("{} {}", b.soc, s.stage);
            if !e.0.contains(&label) {
                e.0.push(label);
            }
            e.1 |= b.transport == Transport::Serial;
        }
    }
    let mut o = Vec::new();
    writeln!(o, "# udev rules for racklet-flash: boot ROMs and loaders accessible to the plugdev group")?;
    writeln!(o, "# (and to the logged-in user through uaccess). Install with:")?;
    writeln!(o, "#   racklet-flash udev-rules | sudo tee /etc/udev/rules.d/70-racklet-flash.rules")?;
    writeln!(o, "#   sudo udevadm control --reload && sudo udevadm trigger")?;
    writeln!(o, "#   sudo usermod -aG plugdev $USER   # then log in again")?;
    for ((vid, pid), (labels, serial)) in ids {
        writeln!(o, "# {}", labels.join(", "))?;
        writeln!(
            o,
            "SUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"{vid:04x}\", ATTR{{idProduct}}==\"{pid:04x}\", MODE=\"0660\", GROUP=\"plugdev\", TAG+=\"uaccess\""
        )?;
        if serial {
            writeln!(
                o,
                "SUBSYSTEM==\"tty\", ATTRS{{idVendor}}==\"{vid:04x}\", ATTRS{{idProduct}}==\"{pid:04x}\", MODE=\"0660\", GROUP=\"plugdev\", TAG+=\"uaccess\""
            )?;
            // A CDC-ACM boot ROM looks like a modem: keep ModemManager from probing it.
            writeln!(
                o,
                "ATTRS{{idVendor}}==\"{vid:04x}\", ATTRS{{idProduct}}==\"{pid:04x}\", ENV{{ID_MM_DEVICE_IGNORE}}=\"1\""
            )?;
        }
    }
    let _ = std::io::stdout().write_all(&o);
    Ok(ExitCode::SUCCESS)
}

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "racklet-flash", &mut buf);
    let _ = std::io::stdout().write_all(&buf);
    Ok(ExitCode::SUCCESS)
}

pub fn man() -> Result<ExitCode> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    let _ = std::io::stdout().write_all(&buf);
    Ok(ExitCode::SUCCESS)
}

pub fn sim(g: &GlobalArgs, a: &SimArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    crate::drivers::of(board).serve(board, a, out)?;
    Ok(ExitCode::SUCCESS)
}
