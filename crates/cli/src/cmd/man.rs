//! `racklet-flash man [COMMAND] [--dir DIR]`: the manual pages, one per
//! command, with EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES; and the
//! examples that `--help` shows after each command's options.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Result;
use clap::{Args, Command};
use roff::{Roff, bold, italic, roman};

use crate::error::bad_input;

/// `racklet-flash man`
#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// The command whose page to print (racklet-flash-COMMAND(1)); the main page without it.
    pub command: Option<String>,
    /// Write every page (racklet-flash.1, racklet-flash-COMMAND.1) into DIR instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// With --dir: overwrite pages that are already there.
    #[arg(long)]
    pub force: bool,
}

/// One example: the command line and what it does.
#[derive(Debug, serde::Deserialize)]
pub struct Example {
    pub run: String,
    pub does: String,
}

/// The examples of `command` ("" is the main page), in order, from
/// crates/cli/man/examples.toml.
pub fn examples(command: &str) -> &'static [Example] {
    static ALL: OnceLock<BTreeMap<String, Vec<Example>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        toml::from_str(include_str!("../../man/examples.toml"))
            .expect("crates/cli/man/examples.toml parses (a unit test reads it)")
    });
    all.get(if command.is_empty() { "main" } else { command }).map_or(&[], Vec::as_slice)
}

/// The exit statuses (README "Exit codes", docs/architecture.md).
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "done: every board's payload was loaded and started"),
    ("1", "failed (several boards failed with different classes, or another failure)"),
    ("2", "bad usage or bad input file"),
    ("3", "device not found"),
    ("4", "several devices match: choose one with --port"),
    ("5", "permission denied (install the udev rules: racklet-flash udev-rules)"),
    ("6", "timeout"),
    ("7", "rejected by the boot ROM"),
    ("8", "the device disconnected"),
    ("9", "I/O error on the link"),
    ("130", "interrupted (Ctrl-C)"),
];

/// The examples of `name` as `--help` text.
pub fn help_examples(name: &str) -> Option<String> {
    let ex = examples(name);
    if ex.is_empty() {
        return None;
    }
    let mut s = String::from("Examples:\n");
    for e in ex {
        s.push_str(&format!("  {}\n      {}\n", e.run, e.does));
    }
    Some(s.trim_end().to_string())
}

pub fn run(root: Command, a: &ManArgs) -> Result<ExitCode> {
    let mut root = root.disable_help_subcommand(true);
    root.build();
    let subs: Vec<Command> = root.get_subcommands().cloned().collect();
    if let Some(dir) = &a.dir {
        if a.command.is_some() {
            return Err(bad_input("--dir writes every page; give no COMMAND with it"));
        }
        let mut pages = vec![("racklet-flash.1".to_string(), page(&root, None, &subs))];
        for s in &subs {
            pages.push((format!("racklet-flash-{}.1", s.get_name()), page(s, Some(s.get_name()), &subs)));
        }
        for (name, bytes) in &pages {
            racklet_image::output::write_file(&dir.join(name), bytes, a.force)?;
        }
        eprintln!("wrote {} pages to {}", pages.len(), dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = match &a.command {
        None => page(&root, None, &subs),
        Some(n) => {
            let s = subs.iter().find(|s| s.get_name() == n).ok_or_else(|| {
                bad_input(format!(
                    "no page for '{n}': the commands are {}",
                    subs.iter().map(|s| s.get_name()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            page(s, Some(n), &subs)
        }
    };
    let _ = std::io::stdout().write_all(&bytes);
    Ok(ExitCode::SUCCESS)
}

/// One page: clap_mangen's title, name, synopsis (the usage line, with each
/// option's value), description, options and commands, then this crate's
/// sections.
fn page(cmd: &Command, sub: Option<&str>, subs: &[Command]) -> Vec<u8> {
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_string();
    let cmd = cmd.clone().override_usage(usage).after_help(None::<&str>).after_long_help(None::<&str>);
    let man =
        clap_mangen::Man::new(cmd.clone()).source(format!("racklet-flash {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    if sub.is_none() {
        let _ = man.render_subcommands_section(&mut out);
    }
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUS {
        r.control("TP", []).text([bold(*code)]).text([roman(*meaning)]);
    }
    r.control("PP", []).text([roman(
        "With several boards (--port A --port B, or --all) the status is 0 only when every board succeeded; \
         when all failures share a class it is that class's code, otherwise 1.",
    )]);
    r.control("SH", ["ENVIRONMENT"]);
    let mut seen = Vec::new();
    // The main page names the variables of every command.
    let all: Vec<&clap::Arg> = match sub {
        Some(_) => cmd.get_arguments().collect(),
        None => cmd.get_arguments().chain(subs.iter().flat_map(|s| s.get_arguments())).collect(),
    };
    for a in all {
        if let (Some(var), Some(long)) = (a.get_env(), a.get_long()) {
            let var = var.to_string_lossy().into_owned();
            if seen.contains(&var) {
                continue;
            }
            seen.push(var.clone());
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            r.control("TP", []).text([bold(var.clone())]);
            r.text([roman(format!("The value of --{long} when it is not given: {help}"))]);
        }
    }
    if seen.iter().any(|v| v == "RACKLET_PORT") {
        r.control("PP", []).text([roman(
            "RACKLET_PORT takes several selectors separated by commas, like --port given several times.",
        )]);
    }
    r.control("PP", []).text([roman(
        "A bad value in a variable is reported with the variable's name. Boolean variables take 1/0, yes/no, on/off, true/false.",
    )]);
    r.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/etc/udev/rules.d/70-racklet-flash.rules",
            "the udev rules `racklet-flash udev-rules` prints: the plugdev group and the logged-in user may open every boot ROM of the board table",
        ),
        (
            "--boards FILE, RACKLET_BOARDS",
            "a board table in the format of the built-in one (crates/cli/boards.toml), adding or replacing boards",
        ),
        (
            "--record FILE",
            "a JSON Lines transcript of everything that crossed the link (docs/architecture.md)",
        ),
    ] {
        r.control("TP", []).text([italic(path)]).text([roman(what)]);
    }
    let ex = examples(sub.unwrap_or(""));
    if !ex.is_empty() {
        r.control("SH", ["EXAMPLES"]);
        for e in ex {
            r.control("TP", []).text([bold(e.run.as_str())]).text([roman(e.does.as_str())]);
        }
    }
    r.control("SH", ["SEE ALSO"]);
    let see: Vec<String> = match sub {
        None => subs.iter().map(|s| format!("racklet-flash-{}(1)", s.get_name())).collect(),
        Some(_) => vec!["racklet-flash(1)".to_string()],
    };
    r.text([roman(format!("{}; docs/json-events.md for --json.", see.join(", ")))]);
    r.control("PP", []);
    r.control("SH", ["VERSION"]);
    r.text([roman(format!("racklet-flash {}", env!("CARGO_PKG_VERSION")))]);
    let _ = r.to_writer(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_of_a_command_and_shown_in_its_help() {
        let all: BTreeMap<String, Vec<Example>> =
            toml::from_str(include_str!("../../man/examples.toml")).unwrap();
        let cli = crate::cli::command();
        for (name, ex) in &all {
            assert!(!ex.is_empty(), "{name}");
            let cmd = if name == "main" { "" } else { name.as_str() };
            assert!(cmd.is_empty() || cli.find_subcommand(cmd).is_some(), "no command {name}");
            let help = help_examples(cmd).unwrap();
            for e in ex {
                assert!(e.run.starts_with("racklet-flash ") && help.contains(&e.run), "{name}: {}", e.run);
            }
        }
        assert!(examples("maskrom").len() > 3 && examples("").len() > 3);
        assert!(examples("no-such-command").is_empty() && help_examples("no-such-command").is_none());
    }
}
