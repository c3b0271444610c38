//! Small commands: boards, image, udev-rules, completions, man, sim.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::CommandFactory;
use racklet_link::udev::Rule;
use serde_json::json;

use crate::boards::{Board, Transport};
use crate::cli::{BoardsArgs, Cli, GlobalArgs, ImageArgs, SimArgs};
use crate::error::bad_input;
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
    let rules: Vec<Rule> =
        ids.into_iter().map(|((vid, pid), (labels, serial))| Rule { vid, pid, labels, serial }).collect();
    let o = racklet_link::udev::rules(&rules, Cli::command().get_name());
    let _ = std::io::stdout().write_all(o.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The variable that makes racklet-flash answer a completion request
/// (clap_complete's dynamic completion) instead of running.
pub const COMPLETE_VAR: &str = "RACKLET_COMPLETE";

/// Prints the shell's registration of racklet-flash's dynamic completion.
/// (The static scripts of clap_complete name the bash function after the
/// binary with its hyphen kept in one place and not the other,
/// clap-rs/clap#6421, so no option ever completed; and they cannot know the
/// board names of a user's table.)
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    use clap_complete::Shell;
    use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
    let c: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::PowerShell => &Powershell,
        other => return Err(bad_input(format!("no completion for {other}"))),
    };
    let name = Cli::command().get_name().to_string();
    let mut buf = Vec::new();
    c.write_registration(COMPLETE_VAR, &name, &name, &name, &mut buf)?;
    let _ = std::io::stdout().write_all(&buf);
    Ok(ExitCode::SUCCESS)
}

/// `racklet-flash sim`: the sim registry serves the board's virtual ROM by
/// its SoC; this shows what the server says and writes what `--save` keeps.
pub fn sim(g: &GlobalArgs, a: &SimArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    if let Some(d) = &a.save {
        std::fs::create_dir_all(d).map_err(|e| bad_input(format!("{}: cannot create: {e}", d.display())))?;
    }
    let request = racklet_sim::serve::Request {
        board: board.name.clone(),
        soc: board.soc.clone(),
        tcp: a.tcp.clone(),
        keep: a.keep,
        fault: a.fault.clone(),
        save: a.save.clone(),
        storage: a.sim_storage.clone(),
        medium: a.medium.clone(),
        in_uboot: a.in_uboot,
        tmp: std::env::temp_dir(),
    };
    let on = |s: racklet_sim::serve::Said<'_>| -> Result<(), racklet_sim::serve::CallerError> {
        if let Some(w) = &s.warning {
            eprintln!("{w}");
        }
        if let Some((path, bytes)) = s.save {
            // Never through a planted symlink, never over an existing file.
            racklet_image::output::write_file(&path, bytes, false)?;
        }
        match (out.mode == Mode::Json, s.json) {
            (true, Some(ev)) => out.json(ev),
            (json, _) => {
                if let Some(address) = &s.address {
                    outln!("{address}");
                }
                if let (false, Some(line)) = (json, &s.line) {
                    out.line(line);
                }
            }
        }
        Ok(())
    };
    racklet_sim::models::serve(&request, &|| out.cancelled(), &on).map_err(|e| match e {
        // What could not be saved: the write's own error (and class).
        racklet_sim::serve::ServeError::Caller(c) => anyhow::Error::from_boxed(c),
        e => crate::error::classify(e),
    })?;
    Ok(ExitCode::SUCCESS)
}
