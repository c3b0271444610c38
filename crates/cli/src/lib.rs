//! racklet-flash: bring up bare boards through their SoC's boot ROM.
//!
//! The command-line program lives in this library so fuzz targets and
//! benchmarks can reach its parsers; `main.rs` only calls [`main_entry`].

/// Prints a line on stdout. A closed pipe (`racklet-flash boards | head`)
/// ends the process quietly instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod args;
pub mod boards;
mod cli;
mod cmd;
mod console;
mod drivers;
mod error;
mod job;
mod output;
mod usage;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::FromArgMatches;
use racklet_link::FailureClass;

use crate::cli::{Cli, Command};
use crate::output::Output;

/// The matches of the subcommand given.
fn sub_matches(m: &clap::ArgMatches) -> &clap::ArgMatches {
    m.subcommand().map(|(_, s)| s).unwrap_or(m)
}

/// Runs the command line and returns the process exit code.
pub fn main_entry() -> ExitCode {
    // A shell asking what to complete (the script of `completions`) gets
    // its answer and the process ends here.
    clap_complete::CompleteEnv::with_factory(cli::command).var(cmd::completions::COMPLETE_VAR).complete();
    let parsed = cli::command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
        Ok(p) => p,
        Err(e) => return usage::error(e),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        // First Ctrl-C: stop between transfers. Second: leave at once.
        let _ = ctrlc::set_handler(move || {
            if c.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: stopping after the current transfer (Ctrl-C again to quit now)");
        });
    }
    racklet_image::stop_reads_on(cancel.clone());
    let out = Output::new(cli.global.json, cli.global.verbose, cli.global.quiet, cancel);
    let result = match &cli.command {
        Command::Maskrom(a) => cmd::maskrom::run(&cli.global, a, sub_matches(&matches), &out),
        Command::List(a) => cmd::list::run(&cli.global, a, &out),
        Command::Boards(a) => cmd::boards::boards(&cli.global, a, &out),
        Command::Info(a) => cmd::info::run(&cli.global, a, &out),
        Command::Image(a) => cmd::image::image(&cli.global, a, sub_matches(&matches), &out),
        Command::UdevRules => cmd::udev::udev_rules(&cli.global),
        Command::Completions { shell } => cmd::completions::completions(*shell),
        Command::Man(a) => cmd::man::run(cli::command(), a),
        Command::Sim(a) => cmd::sim::sim(&cli.global, a, &out),
        Command::Fastload(a) => cmd::fastload::run(a, &out),
        Command::Write(a) => cmd::storage::write(&cli.global, a, &out),
        Command::Read(a) => cmd::storage::read(&cli.global, a, &out),
        Command::Erase(a) => cmd::storage::erase(&cli.global, a, &out),
        Command::Reset(a) => cmd::storage::reset(&cli.global, a, &out),
        Command::Partitions(a) => cmd::storage::partitions(&cli.global, a, &out),
        Command::Oem(a) => cmd::storage::oem(&cli.global, a, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let class = if out.cancelled() { FailureClass::Interrupted } else { error::class_of(&e) };
            out.error(&e, &output::ErrorAt::default());
            ExitCode::from(class.exit_code() as u8)
        }
    }
}
