//! The virtual boards of the USB ROMs have a UART console under
//! `--simulate` (ux.md §4): `--monitor` reads the board's own pty, on which
//! the virtual board prints what the image it started prints — for the
//! project's prebuilt `hello` payloads the lines payloads/hello prints,
//! recognised by the sim from the image's own bytes; for any other image,
//! nothing. So the README's "it booted in one command" runs without a
//! board, and an expectation that never comes fails with the timeout
//! class (exit 6).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    racklet_tests::racklet_flash()
}

fn prebuilt(board: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../payloads/prebuilt").join(board).join(file)
}

/// The K1 ROM takes FSBL.bin: the hello wrapped by `racklet-flash image`.
fn k1_hello(dir: &Path) -> PathBuf {
    let out = dir.join("FSBL.bin");
    bin()
        .args(["image", "bpi-f3"])
        .arg(prebuilt("bpi-f3", "hello.elf"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    out
}

/// `maskrom BOARD ARGS --simulate --monitor /dev/ttyUSB0 --expect RE`.
fn run(board: &str, args: &[&std::ffi::OsStr], expect: &str) -> assert_cmd::assert::Assert {
    bin()
        .args(["maskrom", board])
        .args(args)
        .args(["--simulate", "--monitor", "/dev/ttyUSB0", "--expect", expect, "--expect-timeout", "2s"])
        .assert()
}

/// Each USB family: the board, what to send, and the hello line the real
/// payload prints there (payloads/hello: board, SoC, boot hart or core).
fn families(dir: &Path) -> Vec<(&'static str, Vec<std::ffi::OsString>, &'static str)> {
    vec![
        (
            "canmv-k230",
            vec![prebuilt("canmv-k230", "hello.elf").into()],
            "racklet: hello from canmv-k230 (k230) hart 0",
        ),
        ("bpi-f3", vec![k1_hello(dir).into()], "racklet: hello from bpi-f3 (k1) hart 0"),
        (
            "lichee-pi-4a",
            vec![prebuilt("lichee-pi-4a", "hello.elf").into()],
            "racklet: hello from lichee-pi-4a (th1520) hart 0",
        ),
        // The Rockchip hello returns to the ROM: it is the 0x471 stage.
        (
            "rock-3a",
            vec!["--dram".into(), prebuilt("rock-3a", "hello.bin").into()],
            "racklet: hello from rock-3a (rk3568) core 0",
        ),
    ]
}

#[test]
fn the_readme_one_command_boot_runs_without_a_board_on_every_usb_family() {
    let d = tempfile::tempdir().unwrap();
    for (board, args, line) in families(d.path()) {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        run(board, &args, "racklet: hello")
            .success()
            .stderr(predicate::str::contains(line))
            .stderr(predicate::str::contains("console matched: racklet: hello"))
            .stderr(predicate::str::contains("--monitor reads the virtual board's UART"));
    }
}

#[test]
fn an_expectation_that_never_comes_is_a_timeout() {
    let d = tempfile::tempdir().unwrap();
    for (board, args, line) in families(d.path()) {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        run(board, &args, "racklet: goodbye")
            .code(6)
            // The payload's line was read, and was not what was expected.
            .stderr(predicate::str::contains(line))
            .stderr(predicate::str::contains("did not print /racklet: goodbye/"));
    }
}

#[test]
fn an_image_that_is_not_a_hello_prints_nothing() {
    let d = tempfile::tempdir().unwrap();
    // Code that is not one of our payloads: the virtual board cannot run
    // it, so its console stays silent and --expect times out.
    let raw = d.path().join("blob.bin");
    std::fs::write(&raw, (0..2048u32).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>()).unwrap();
    run("canmv-k230", &[raw.as_os_str()], "racklet")
        .code(6)
        .stderr(predicate::str::contains("racklet: hello").not());
    run("lichee-pi-4a", &[raw.as_os_str()], "racklet")
        .code(6)
        .stderr(predicate::str::contains("racklet: hello").not());
}

#[test]
fn json_carries_the_console_lines() {
    bin()
        .args(["maskrom", "canmv-k230"])
        .arg(prebuilt("canmv-k230", "hello.elf"))
        .args(["--simulate", "--monitor", "/dev/ttyUSB0", "--expect", "racklet: hello", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""event":"console""#))
        .stdout(predicate::str::contains("racklet: hello from canmv-k230 (k230) hart 0"));
}
