//! Shell completion: the script `racklet-flash completions SHELL`
//! prints is loaded into the real shell, its completion function is called
//! as the shell calls it, and what it offers is checked: subcommands,
//! options of `maskrom` (clap_complete's static bash script completed none
//! for a hyphenated binary, clap-rs/clap#6421), and board names, a user
//! table's (RACKLET_BOARDS) included.

use std::path::Path;
use std::process::Command;

use racklet_tests::{file, racklet_flash_path};

const USER_BOARD: &str = r#"
[[board]]
name = "my-lab-duo"
title = "Lab Duo"
soc = "cv1800b"
arch = "riscv64"
protocol = "sophgo"
transport = "serial"
load_address = 0x3bc00000
sram_base = 0x3bc00000
sram_size = 0x19000
enter = "press BOOT"
"#;

/// A shell with the binary's directory first on PATH (the script calls
/// `racklet-flash` by name, as an installed one is called).
fn shell(sh: &str, script: &str, boards: &Path) -> String {
    let bin = racklet_flash_path();
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let o = Command::new(sh)
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("RACKLET_BOARDS", boards)
        .env_remove("RACKLET_COMPLETE")
        .output()
        .unwrap_or_else(|e| panic!("{sh}: {e} (scripts/provision.sh installs it)"));
    assert!(
        o.status.success(),
        "{sh}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What bash's completion function for racklet-flash offers for `line`
/// (the cursor at its end), called the way bash's programmable completion
/// calls it: COMP_WORDS/COMP_CWORD set, arguments command, word, previous word.
fn bash_complete(line: &str, boards: &Path) -> Vec<String> {
    let script = format!(
        r#"
source <(racklet-flash completions bash)
spec=$(complete -p racklet-flash) || exit 3
fn=$(sed -n 's/.*-F \([^ ]*\).*/\1/p' <<<"$spec")
COMP_LINE={line:?}
COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_TYPE=9
"$fn" racklet-flash "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#
    );
    shell("bash", &script, boards).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

fn user_boards() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = file(d.path(), "lab.toml", USER_BOARD.as_bytes());
    (d, p)
}

#[test]
fn bash_completes_subcommands_options_and_board_names() {
    let (_d, boards) = user_boards();
    let got = bash_complete("racklet-flash ma", &boards);
    assert!(got.contains(&"maskrom".to_string()) && got.contains(&"man".to_string()), "{got:?}");
    let got = bash_complete("racklet-flash maskrom visionfive2 --", &boards);
    for want in ["--port", "--then-ymodem", "--simulate", "--monitor"] {
        assert!(got.contains(&want.to_string()), "maskrom --<TAB> lacks {want}: {got:?}");
    }
    let got = bash_complete("racklet-flash maskrom vis", &boards);
    assert_eq!(got, vec!["visionfive2"], "{got:?}");
    let got = bash_complete("racklet-flash maskrom my-", &boards);
    assert_eq!(got, vec!["my-lab-duo"], "a board of RACKLET_BOARDS: {got:?}");
    let got = bash_complete("racklet-flash info x.bin --board rock-", &boards);
    assert!(got.contains(&"rock-3a".to_string()) && got.contains(&"rock-5b".to_string()), "{got:?}");
    let got = bash_complete("racklet-flash boards lichee-", &boards);
    assert_eq!(got, vec!["lichee-pi-4a"], "{got:?}");
}

#[test]
#[ignore = "real-peer tier (needs fish): scripts/test.sh runs it"]
fn fish_completes_board_names() {
    let (_d, boards) = user_boards();
    let out = shell(
        "fish",
        "racklet-flash completions fish | source; complete -C'racklet-flash maskrom vis'; complete -C'racklet-flash sim my-'; complete -C'racklet-flash maskrom x --then-'",
        &boards,
    );
    assert!(out.lines().any(|l| l.starts_with("visionfive2")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("my-lab-duo")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("--then-ymodem")), "{out}");
}

#[test]
#[ignore = "real-peer tier (needs zsh): scripts/test.sh runs it"]
fn zsh_completes_board_names() {
    let (_d, boards) = user_boards();
    // The script's completer, run by zsh with `words` and `CURRENT` as the
    // completion system sets them; `_describe` and `compdef` (the system's)
    // stand in by printing what they are given.
    let script = r#"
compdef() { :; }
_describe() { shift 2; print -rl -- "${(@P)1}"; }
eval "$(racklet-flash completions zsh)"
words=(racklet-flash maskrom vis); CURRENT=3; _clap_dynamic_completer_racklet_flash
words=(racklet-flash image my-); CURRENT=3; _clap_dynamic_completer_racklet_flash
words=(racklet-flash maskrom x --xm); CURRENT=4; _clap_dynamic_completer_racklet_flash
"#;
    let out = shell("zsh", script, &boards);
    assert!(out.lines().any(|l| l.starts_with("visionfive2")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("my-lab-duo")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("--xmodem-128")), "{out}");
}
