//! The manual pages: one per command, each whole, and the
//! examples the README shows are the ones `--help` shows.

use racklet_tests::racklet_flash;

fn out(args: &[&str]) -> String {
    let o = racklet_flash().args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The commands `--help` lists.
fn commands() -> Vec<String> {
    let help = out(&["--help"]);
    let after = help.split("Commands:").nth(1).expect("--help lists commands");
    after
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("  "))
        .filter(|l| l.len() > 2 && l.as_bytes()[2].is_ascii_lowercase())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

fn sections(page: &str) -> Vec<String> {
    page.lines().filter_map(|l| l.strip_prefix(".SH ")).map(|s| s.trim_matches('"').to_string()).collect()
}

#[test]
fn the_main_page_is_whole() {
    let page = out(&["man"]);
    let s = sections(&page);
    for want in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(s.iter().any(|x| x == want), "the main page lacks {want}: {s:?}");
    }
    for c in commands() {
        let name = format!("racklet-flash-{c}").replace('-', "\\-");
        assert!(page.contains(&name), "the main page does not name {c}");
    }
    for v in ["RACKLET_PORT", "RACKLET_WAIT", "RACKLET_SIMULATE", "RACKLET_JSON", "RACKLET_BOARDS"] {
        assert!(page.contains(v), "ENVIRONMENT lacks {v}");
    }
    assert!(
        page.contains("70\\-racklet\\-flash.rules") || page.contains("70-racklet-flash.rules"),
        "FILES lacks the udev rules"
    );
    assert!(!page.contains("[\\fB\\-\\-boards\\fR]"), "the synopsis shows --boards without its value");
}

#[test]
fn every_command_has_its_page_with_its_options() {
    let cmds = commands();
    assert!(cmds.len() >= 10, "{cmds:?}");
    for c in &cmds {
        let page = out(&["man", c]);
        assert!(page.contains(&format!(".TH racklet-flash-{c} 1")), "{c}: {}", &page[..page.len().min(200)]);
        let s = sections(&page);
        for want in ["SYNOPSIS", "EXIT STATUS", "SEE ALSO"] {
            assert!(s.iter().any(|x| x == want), "{c}: no {want}: {s:?}");
        }
        // Every option of the command's --help is on its page.
        let help = out(&[c, "--help"]);
        for flag in help.split_whitespace().filter(|w| w.starts_with("--") && w.len() > 2) {
            let flag = flag.trim_end_matches([',', '.', ')', '`', '\'']);
            let flag = flag.split(['=', '<', '[']).next().unwrap();
            if flag.len() <= 2 || !flag[2..].chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
                continue;
            }
            let roff = flag.replace('-', "\\-");
            assert!(page.contains(&roff), "{c}: the page lacks {flag}");
        }
    }
    let o = racklet_flash().args(["man", "flash"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_dir_writes_every_page_see_also_names() {
    let d = tempfile::tempdir().unwrap();
    racklet_flash().args(["man", "--dir"]).arg(d.path()).assert().success();
    let page = std::fs::read_to_string(d.path().join("racklet-flash.1")).unwrap();
    for c in commands() {
        assert!(d.path().join(format!("racklet-flash-{c}.1")).exists(), "racklet-flash-{c}.1 missing");
    }
    assert!(page.contains("SEE ALSO"));
    // Pages already there are kept without --force.
    let o = racklet_flash().args(["man", "--dir"]).arg(d.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    racklet_flash().args(["man", "--force", "--dir"]).arg(d.path()).assert().success();
}

#[test]
fn the_readme_examples_are_the_help_examples() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let block = readme.split("Examples:\n\n```\n").nth(1).expect("the README has an Examples block");
    let block = block.split("```").next().unwrap();
    let mut n = 0;
    for line in block.lines().filter(|l| l.starts_with("racklet-flash ")) {
        let cmd = line.split_whitespace().nth(1).unwrap();
        let help = out(&[cmd, "--help"]);
        assert!(help.contains(line), "README example not in `{cmd} --help`: {line}");
        n += 1;
    }
    assert!(n >= 6, "{n} examples");
}
