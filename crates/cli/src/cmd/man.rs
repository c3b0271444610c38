//! `racklet-flash man [COMMAND] [--dir DIR]`: the manual pages, one per
//! command, with EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES; and the
//! examples that `--help` shows after each command's options.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// Examples by command ("" is the main page): the command line, what it does.
pub const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "",
        &[
            (
                "racklet-flash maskrom canmv-k230 hello.elf --auto-simulate",
                "Load hello.elf into a K230 board's boot ROM and start it; with no board attached, run against its virtual ROM.",
            ),
            ("racklet-flash boards", "The boards, their aliases and how to put each in its boot ROM mode."),
            ("racklet-flash list", "The boot ROMs attached now."),
            ("racklet-flash info payload.img", "What a file holds and which boards take it."),
        ],
    ),
    (
        "maskrom",
        &[
            (
                "racklet-flash maskrom rock-3a rk356x_spl_loader_v1.23.114.bin",
                "A Rockchip loader's DRAM-init and usbplug stages.",
            ),
            ("racklet-flash maskrom rock-5b --rkbin ~/src/rkbin", "The newest blobs of an rkbin checkout."),
            (
                "racklet-flash maskrom visionfive2 hello.elf --port /dev/ttyUSB0 --then-ymodem u-boot.itb",
                "StarFive: the SPL by XMODEM, then U-Boot by YMODEM when the SPL asks.",
            ),
            (
                "racklet-flash maskrom visionfive2 app.elf --port /dev/ttyUSB0 --fast",
                "StarFive: the fastload loader by XMODEM, then app.elf through it at 1.5 Mbaud.",
            ),
            (
                "racklet-flash maskrom milkv-duo-256m bl2.elf --wait 30s",
                "Wait up to 30 s for the Sophgo ROM to appear.",
            ),
            (
                "racklet-flash maskrom bpi-f3 FSBL.bin --then u-boot.itb --port 1-3.2",
                "SpacemiT K1: the FSBL, then U-Boot.",
            ),
            (
                "racklet-flash maskrom canmv-k230 hello.elf --monitor /dev/ttyUSB0 --expect 'racklet: hello'",
                "Exit 0 once the board's console prints the hello line (6 after --expect-timeout).",
            ),
            (
                "racklet-flash maskrom canmv-k230 hello.elf --port 1-1 --port 1-2 --json",
                "Two boards in parallel, JSON events on stdout (docs/json-events.md).",
            ),
        ],
    ),
    ("list", &[("racklet-flash list --all", "Every USB device and serial port, boot ROM or not.")]),
    (
        "boards",
        &[(
            "racklet-flash boards rock-5b",
            "One board: every fact of its row and how to enter its boot ROM.",
        )],
    ),
    (
        "info",
        &[
            (
                "racklet-flash info payload.img",
                "What the file is (format, fields, checks) and which boards take it.",
            ),
            ("racklet-flash info rk356x_spl_loader_v1.23.114.bin", "Decode and CRC-check a Rockchip loader."),
            ("racklet-flash info hello.elf --board visionfive2", "Exit 2 unless visionfive2 takes the file."),
        ],
    ),
    (
        "image",
        &[
            (
                "racklet-flash image visionfive2 payload.bin -o payload.img",
                "The spl_tool-headed image for SD or eMMC.",
            ),
            (
                "racklet-flash image canmv-k230 hello.elf -o - | sudo dd of=/dev/sdX bs=512 seek=2048",
                "The image on stdout.",
            ),
        ],
    ),
    (
        "udev-rules",
        &[(
            "racklet-flash udev-rules | sudo tee /etc/udev/rules.d/70-racklet-flash.rules",
            "Install the rules; then `sudo udevadm control --reload && sudo udevadm trigger`.",
        )],
    ),
    (
        "completions",
        &[
            (
                "racklet-flash completions bash > ~/.local/share/bash-completion/completions/racklet-flash",
                "bash.",
            ),
            ("racklet-flash completions zsh > ~/.zfunc/_racklet-flash", "zsh (with ~/.zfunc in fpath)."),
            ("racklet-flash completions fish > ~/.config/fish/completions/racklet-flash.fish", "fish."),
        ],
    ),
    (
        "man",
        &[
            ("racklet-flash man | man -l -", "Read the main page."),
            ("racklet-flash man maskrom | man -l -", "Read the page of one command."),
            ("racklet-flash man --dir /usr/local/share/man/man1", "Install every page."),
        ],
    ),
    (
        "sim",
        &[
            (
                "racklet-flash sim visionfive2",
                "A virtual JH7110 ROM on a pseudo-terminal (its path is printed).",
            ),
            (
                "racklet-flash sim bpi-f3 --tcp 127.0.0.1:5554 --keep",
                "A virtual K1 ROM for fastboot clients over TCP.",
            ),
        ],
    ),
    (
        "fastload",
        &[(
            "racklet-flash fastload --port /dev/ttyUSB0 hello.elf --expect 'racklet: hello'",
            "Through a running fast loader.",
        )],
    ),
];

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
    let (_, ex) = EXAMPLES.iter().find(|(n, _)| *n == name)?;
    let mut s = String::from("Examples:\n");
    for (cmd, what) in *ex {
        s.push_str(&format!("  {cmd}\n      {what}\n"));
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
    if let Some((_, ex)) = EXAMPLES.iter().find(|(n, _)| *n == sub.unwrap_or("")) {
        r.control("SH", ["EXAMPLES"]);
        for (line, what) in *ex {
            r.control("TP", []).text([bold(*line)]).text([roman(*what)]);
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
