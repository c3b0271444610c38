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
mod flows;
mod output;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use racklet_link::FailureClass;
use serde_json::json;

use crate::cli::{Cli, Command};
use crate::output::Output;

/// Runs the command line and returns the process exit code.
pub fn main_entry() -> ExitCode {
    let cli = Cli::parse();
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
        Command::Maskrom(a) => cmd::maskrom::run(&cli.global, a, &out),
        Command::List(a) => cmd::list::run(&cli.global, a, &out),
        Command::Boards => cmd::misc::boards(&cli.global, &out),
        Command::Info(a) => cmd::info::run(&cli.global, a, &out),
        Command::Image(a) => cmd::misc::image(&cli.global, a, &out),
        Command::UdevRules => cmd::misc::udev_rules(&cli.global),
        Command::Completions { shell } => cmd::misc::completions(*shell),
        Command::Man => cmd::misc::man(),
        Command::Sim(a) => cmd::misc::sim(&cli.global, a, &out),
        Command::Fastload(a) => cmd::fastload::run(a, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let class = if out.cancelled() { FailureClass::Interrupted } else { error::class_of(&e) };
            let message = error::message_of(&e);
            let hint = error::hint_of(&e);
            if out.mode == output::Mode::Json {
                out.json(json!({"event":"error","class":class.name(),"exit_code":class.exit_code(),"message":message,"hint":hint}));
            } else {
                eprintln!("error: {message}");
                if let Some(h) = hint {
                    eprintln!("hint: {h}");
                }
            }
            ExitCode::from(class.exit_code() as u8)
        }
    }
}
