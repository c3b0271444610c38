//! `racklet-flash completions SHELL`: the shell's registration of dynamic completion.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::bad_input;

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
