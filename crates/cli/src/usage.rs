//! Usage errors (clap's): the variable named when the bad value came from
//! the environment, and a JSON `error` event when JSON was asked for.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::CommandFactory;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use racklet_link::FailureClass;
use serde_json::json;

use crate::cli::Cli;

/// Reports a parse error of the command line and returns the exit code.
pub fn error(e: clap::Error) -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    report(e, &argv, &|v| std::env::var_os(v))
}

/// [`error`] with the arguments and the environment given (for tests).
pub fn report(e: clap::Error, argv: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::from(e.exit_code() as u8);
    }
    let (message, hint) = render(&e, argv, env);
    let class = FailureClass::BadInput;
    if json_asked(argv, env) {
        let ev = json!({"event":"error","v":crate::output::JSON_VERSION,"board":null,"port":null,"stage":null,"class":class.name(),
            "exit_code":class.exit_code(),"message":message,"hint":hint,"ts_ms":now_ms()});
        println!("{ev}");
    } else {
        eprintln!("error: {message}");
        if let Some(h) = &hint {
            for l in h.lines() {
                eprintln!("{l}");
            }
        }
    }
    ExitCode::from(class.exit_code() as u8)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The arguments before a `--`.
fn options(argv: &[OsString]) -> impl Iterator<Item = &str> {
    argv.iter().skip(1).map(|a| a.to_str().unwrap_or("")).take_while(|a| *a != "--")
}

/// Did the command line (or RACKLET_JSON) ask for JSON?
fn json_asked(argv: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> bool {
    options(argv).any(|a| a == "--json")
        || env("RACKLET_JSON").is_some_and(|v| {
            matches!(
                v.to_str().map(|s| s.trim().to_ascii_lowercase()).as_deref(),
                Some("1" | "y" | "yes" | "on" | "true")
            )
        })
}

/// The message, and the rest of clap's text (tips, usage) as the hint. A
/// value that came from an environment variable is said to have come from it.
fn render(
    e: &clap::Error,
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> (String, Option<String>) {
    let text = e.render().to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let mut rest: Vec<String> = lines
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("tip: ").unwrap_or(l).to_string())
        .collect();
    if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && let Some(var) = env_var_of(arg)
        && env(&var).is_some()
        && !given(arg, argv)
    {
        let quoted = format!("'{arg}'");
        message = message.replace(
            &format!("for {quoted}"),
            &format!("in the environment variable {var} (read for {quoted})"),
        );
        if !message.contains(&var) {
            message = format!("{message} (the value came from the environment variable {var})");
        }
        rest.insert(0, format!("fix or unset {var}"));
    }
    // Verbs of other tools that clap's similarity cannot match: the command
    // that does what they do here.
    if e.kind() == ErrorKind::InvalidSubcommand
        && let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidSubcommand)
        && let Some(tip) = other_tools_verb(word)
    {
        rest.insert(0, tip.to_string());
    }
    (message, (!rest.is_empty()).then(|| rest.join("\n")))
}

/// What racklet-flash calls a verb of rkdeveloptool, fastboot, xrock or
/// k230_flash.
fn other_tools_verb(word: &str) -> Option<&'static str> {
    Some(match word {
        "flash" | "wl" | "download" | "burn" | "program" => {
            "to load and start a payload through the boot ROM: `racklet-flash maskrom BOARD FILE`; to write storage: `racklet-flash write BOARD IMAGE`"
        }
        "boot" | "load" | "db" | "run" | "stage" => {
            "to load and start a payload through the boot ROM: `racklet-flash maskrom BOARD FILE`"
        }
        "rl" | "dump" | "upload" => "to read storage: `racklet-flash read BOARD --at LBA --size N -o FILE`",
        "ef" | "wipe" => "to erase storage: `racklet-flash erase BOARD --all`",
        "rd" | "reboot" => "to reset the board: `racklet-flash reset BOARD`",
        "ppt" | "gpt" => "to list partitions: `racklet-flash partitions BOARD`",
        "ld" | "devices" => "to list attached boot ROMs: `racklet-flash list`",
        _ => return None,
    })
}

/// The environment variable behind an argument clap names ("--wait <DUR>").
fn env_var_of(arg: &str) -> Option<String> {
    let flag = arg.split([' ', '=']).next()?.strip_prefix("--")?;
    let mut stack = vec![Cli::command()];
    while let Some(c) = stack.pop() {
        for a in c.get_arguments() {
            if a.get_long() == Some(flag)
                && let Some(v) = a.get_env()
            {
                return Some(v.to_string_lossy().into_owned());
            }
        }
        stack.extend(c.get_subcommands().cloned());
    }
    None
}

/// Was the argument clap names written on the command line?
fn given(arg: &str, argv: &[OsString]) -> bool {
    let Some(flag) = arg.split([' ', '=']).next() else { return false };
    options(argv).any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable() {
        let argv: Vec<OsString> =
            ["racklet-flash", "maskrom", "canmv-k230", "x.bin"].iter().map(Into::into).collect();
        let env = |v: &str| (v == "RACKLET_WAIT").then(|| OsString::from("bogus"));
        let e = Cli::command()
            .try_get_matches_from(["racklet-flash", "maskrom", "canmv-k230", "x.bin", "--wait", "bogus"])
            .expect_err("bad duration");
        let (m, h) = render(&e, &argv, &env);
        assert!(m.contains("RACKLET_WAIT"), "{m}");
        assert!(h.unwrap().contains("unset RACKLET_WAIT"));
        // Given on the command line, the flag is named, not the variable.
        let argv: Vec<OsString> = ["racklet-flash", "maskrom", "canmv-k230", "x.bin", "--wait", "bogus"]
            .iter()
            .map(Into::into)
            .collect();
        let (m, _) = render(&e, &argv, &env);
        assert!(!m.contains("RACKLET_WAIT"), "{m}");
    }

    /// ux review §16: `racklet-flash flash` (fastboot's and xrock's verb)
    /// gets no suggestion from clap; it is told the commands that do it.
    #[test]
    fn another_tools_verb_is_told_the_command() {
        let argv: Vec<OsString> = ["racklet-flash", "flash"].iter().map(Into::into).collect();
        let e = Cli::command().try_get_matches_from(["racklet-flash", "flash"]).expect_err("no such command");
        let (_, h) = render(&e, &argv, &|_| None);
        let h = h.unwrap();
        assert!(h.contains("racklet-flash maskrom") && h.contains("racklet-flash write"), "{h}");
        let e = Cli::command().try_get_matches_from(["racklet-flash", "ppt"]).expect_err("no such command");
        assert!(render(&e, &argv, &|_| None).1.unwrap().contains("racklet-flash partitions"));
    }
}
