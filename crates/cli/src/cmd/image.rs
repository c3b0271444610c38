//! `racklet-flash image <board> PAYLOAD -o FILE`: the storage boot image.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use crate::cli::{GlobalArgs, ImageArgs};
use crate::error::bad_input;
use crate::output::{Mode, Output};

pub fn image(g: &GlobalArgs, a: &ImageArgs, m: &clap::ArgMatches, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    out.set_board(&board.name);
    let cmd = crate::cli::command();
    let cmd = cmd.find_subcommand("image").expect("image is a command");
    let driver = crate::drivers::of(board);
    crate::drivers::refuse_foreign_flags(cmd, m, board, &boards.boards, driver.image_flags(), |d| {
        d.image_flags()
    })?;
    let to_stdout = a.output.as_os_str() == "-";
    if to_stdout && out.mode == Mode::Json {
        return Err(bad_input(
            "-o - writes the image to standard output, where --json writes its events too; give -o FILE",
        ));
    }
    if !to_stdout
        && a.output.exists()
        && std::fs::canonicalize(&a.output).ok() == std::fs::canonicalize(&a.input).ok()
    {
        return Err(bad_input(format!("{}: the output would overwrite the input", a.output.display())));
    }
    // Refused before any work: a device, FIFO or directory, or an existing file without --force.
    if !to_stdout {
        racklet_image::output::check_target(&a.output, a.force)?;
    }
    let target = board.target();
    let input = target.read_stage(&a.input)?;
    let payload = racklet_image::load_bytes(&a.input, input, board.arch(), &target.dram_window())?;
    let driver = crate::drivers::of(board);
    let bytes = driver.image(board, a, &payload)?;
    let notes = driver.image_notes(board);
    if to_stdout {
        let mut o = std::io::stdout().lock();
        o.write_all(&bytes).and_then(|_| o.flush()).map_err(|e| {
            crate::error::fail(
                racklet_link::FailureClass::Io,
                format!("writing the image to standard output: {e}"),
            )
        })?;
        if !g.quiet {
            eprintln!("wrote {} bytes for {} to standard output", bytes.len(), board.name);
            for n in &notes {
                eprintln!("note: {n}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    // A random temporary file beside the target, renamed over it: a failed
    // run never leaves half a file, and nothing planted there is followed.
    racklet_image::output::write_file(&a.output, &bytes, a.force)?;
    if out.mode == Mode::Json {
        out.json(json!({"event":"image","board":board.name,"output": a.output.display().to_string(),
            "bytes": bytes.len(), "sha256": racklet_image::sha256_hex(&bytes), "notes": notes}));
    } else if !g.quiet {
        eprintln!("wrote {} ({} bytes) for {}", a.output.display(), bytes.len(), board.name);
        for n in &notes {
            eprintln!("note: {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
