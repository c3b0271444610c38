//! The command-line contract: environment variables, inputs that
//! are refused before any device, output files, the board table, parallel
//! output. Each test here failed on the binary before the fixes.

use racklet_tests::{file, pattern, prebuilt_hello, racklet_flash};
use serde_json::Value;

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn k230_hello() -> String {
    prebuilt_hello("canmv-k230", "k230").unwrap().to_str().unwrap().to_string()
}

#[test]
fn boolean_variables_take_what_people_type() {
    let hello = k230_hello();
    for (sim, json) in [("1", "yes"), ("yes", "1"), ("on", "true"), ("TRUE", "on")] {
        let o = racklet_flash()
            .args(["maskrom", "canmv-k230", &hello])
            .env("RACKLET_SIMULATE", sim)
            .env("RACKLET_JSON", json)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "RACKLET_SIMULATE={sim} RACKLET_JSON={json}: {}", text(&o));
        let last: Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
        assert_eq!(last["event"], "done");
    }
    // 0 turns it off: no virtual ROM, so no board is found (exit 3), and no JSON.
    let o = racklet_flash()
        .args(["maskrom", "canmv-k230", &hello])
        .env("RACKLET_SIMULATE", "0")
        .env("RACKLET_JSON", "no")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let hello = k230_hello();
    for (var, value) in
        [("RACKLET_WAIT", "bogus"), ("RACKLET_STAGE_TIMEOUT", "soon"), ("RACKLET_SIMULATE", "maybe")]
    {
        let o = racklet_flash().args(["maskrom", "canmv-k230", &hello]).env(var, value).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{var}={value}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(var), "{var}={value}: the error names the variable: {err}");
    }
    // The same value on the command line names the flag, not the variable.
    let o = racklet_flash().args(["maskrom", "canmv-k230", &hello, "--wait", "bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--wait") && !err.contains("RACKLET_WAIT"), "{err}");
}

#[test]
fn a_usage_error_under_json_is_a_json_error_event() {
    for args in [
        vec!["--json", "maskrom", "canmv-k230", "--no-such-flag"],
        vec!["maskrom", "--json"],
        vec!["--json", "flash"],
    ] {
        let o = racklet_flash().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let ev: Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&o)));
        assert_eq!(ev["event"], "error");
        assert_eq!(ev["class"], "bad_input");
        assert_eq!(ev["exit_code"], 2);
        assert!(ev["message"].as_str().is_some_and(|m| !m.is_empty()), "{ev}");
    }
    // RACKLET_JSON counts as asking.
    let o = racklet_flash().args(["maskrom", "--nope"]).env("RACKLET_JSON", "1").output().unwrap();
    let ev: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ev["event"], "error");
    // --help is not an error.
    racklet_flash().args(["--json", "maskrom", "--help"]).assert().success();
}

#[test]
fn every_command_writes_one_json_object_per_line() {
    let d = tempfile::tempdir().unwrap();
    let hello = k230_hello();
    let img = d.path().join("x.img");
    for args in [
        vec!["boards", "--json"],
        vec!["boards", "rock-5b", "--json"],
        vec!["list", "--json"],
        vec!["list", "--all", "--json"],
        vec!["info", &hello, "--json"],
        vec!["info", &hello, "--board", "visionfive2", "--json"],
        vec!["image", "canmv-k230", &hello, "-o", img.to_str().unwrap(), "--json"],
    ] {
        let o = racklet_flash().args(&args).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.is_empty(), "{args:?}: {}", text(&o));
        for line in out.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{args:?}: {e}: {line:?}"));
            for key in ["event", "board", "port"] {
                assert!(v.get(key).is_some(), "{args:?}: no `{key}` in {line}");
            }
        }
    }
}

#[test]
fn image_to_standard_output_with_dash() {
    let d = tempfile::tempdir().unwrap();
    // A raw payload: the prebuilt hello.elf is linked for the USB address,
    // which storage boot does not use (`image` refuses it, review F8).
    let hello = file(d.path(), "spl.bin", &[0x13; 256]).to_str().unwrap().to_string();
    let f = d.path().join("k230.img");
    racklet_flash().args(["image", "canmv-k230", &hello, "-o"]).arg(&f).assert().success();
    let o = racklet_flash()
        .current_dir(d.path())
        .args(["image", "canmv-k230", &hello, "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, std::fs::read(&f).unwrap(), "the image on stdout is the one -o FILE writes");
    assert!(!d.path().join("-").exists(), "no file named '-'");
    // Binary on stdout and JSON events on stdout do not mix.
    let o = racklet_flash()
        .current_dir(d.path())
        .args(["image", "canmv-k230", &hello, "-o", "-", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_regular_file_as_port_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let hello = k230_hello();
    let regular = file(d.path(), "notatty", b"hello");
    let vf2 = prebuilt_hello("visionfive2", "jh7110").unwrap();
    let o = racklet_flash()
        .arg("maskrom")
        .arg("visionfive2")
        .arg(&vf2)
        .arg("--port")
        .arg(&regular)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("regular file"), "{}", text(&o));
    // A directory too; and for --monitor.
    let o = racklet_flash()
        .args(["maskrom", "visionfive2"])
        .arg(&vf2)
        .arg("--port")
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o =
        racklet_flash().args(["maskrom", "canmv-k230", &hello, "--monitor"]).arg(&regular).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_monitor_tty_that_does_not_exist_is_refused_before_anything_is_sent() {
    let d = tempfile::tempdir().unwrap();
    let hello = k230_hello();
    let gone = d.path().join("ttyUSB9");
    let o = racklet_flash()
        .args(["maskrom", "canmv-k230", &hello, "--json", "--monitor"])
        .arg(&gone)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let evs: Vec<Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        !evs.iter().any(|e| e["event"] == "stage" || e["event"] == "start"),
        "nothing was started: {evs:?}"
    );
    assert!(evs.last().unwrap()["message"].as_str().unwrap().contains("--monitor"), "{evs:?}");
}

#[test]
fn a_load_address_without_0x_is_ambiguous() {
    let d = tempfile::tempdir().unwrap();
    let raw = file(d.path(), "ddr.bin", &pattern(512, 3));
    let arg = format!("80360000={}", raw.display());
    let o = racklet_flash().args(["maskrom", "canmv-k230", "--load", &arg, "--simulate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("ambiguous") && text(&o).contains("0x80360000"), "{}", text(&o));
    let o = racklet_flash()
        .args([
            "maskrom",
            "canmv-k230",
            "--load",
            &format!("0x80360000={}", raw.display()),
            "--run",
            "80360000",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("ambiguous"), "{}", text(&o));
}

#[test]
fn boards_says_how_to_enter_each_boot_rom_and_the_aliases() {
    let o = racklet_flash().arg("boards").output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    let o = racklet_flash().args(["boards", "--json"]).output().unwrap();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let b: Value = serde_json::from_str(line).unwrap();
        let enter = b["enter"].as_str().unwrap();
        assert!(t.contains(enter), "`boards` lacks how to enter {}'s boot ROM", b["name"]);
        for a in b["aliases"].as_array().unwrap() {
            assert!(t.contains(a.as_str().unwrap()), "`boards` lacks the alias {a}");
        }
    }
    // One board, by name or alias.
    let o = racklet_flash().args(["boards", "rock5b"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("rock-5b") && t.contains("maskrom button") && t.contains("radxa-rock-5b"), "{t}");
    assert!(!t.contains("visionfive2"), "{t}");
    let o = racklet_flash().args(["boards", "rock-5c"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("did you mean"), "{}", text(&o));
}

#[test]
fn a_parallel_run_shows_each_failure_as_it_happens_and_a_short_table() {
    let hello = k230_hello();
    let o = racklet_flash()
        .args(["maskrom", "canmv-k230", &hello, "--simulate"])
        .args(["--port", "1-1", "--port", "1-2", "--port", "1-3.4", "--fault", "1-2=unplug"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(8), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let error_at =
        lines.iter().position(|l| l.starts_with("[1-2] error:")).unwrap_or_else(|| panic!("{err}"));
    let table_at = lines.iter().position(|l| l.starts_with("port ")).unwrap_or_else(|| panic!("{err}"));
    assert!(error_at < table_at, "the error comes before the summary: {err}");
    let header = lines[table_at];
    assert!(header.contains("stage"), "the table names the failed stage: {header}");
    // One line per good board, not its whole summary.
    for p in ["1-1", "1-3.4"] {
        let n = lines.iter().filter(|l| l.starts_with(&format!("[{p}]"))).count();
        assert!(n <= 3, "{p}: {n} lines:\n{err}");
    }
    let rows: Vec<&&str> = lines[table_at + 1..].iter().filter(|l| l.starts_with("1-")).collect();
    assert_eq!(rows.len(), 3, "{err}");
    assert!(rows.iter().all(|r| r.chars().count() <= 130), "{err}");
}

#[test]
fn stage_lines_use_one_unit_system() {
    let hello = k230_hello();
    let o = racklet_flash().args(["maskrom", "canmv-k230", &hello, "--simulate"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("kB/s") && !err.contains("MB/s"),
        "decimal units beside the bar's binary ones: {err}"
    );
}

#[test]
fn another_protocol_s_flag_is_refused_naming_what_applies() {
    let d = tempfile::tempdir().unwrap();
    let raw = file(d.path(), "x.bin", &pattern(2048, 5));
    let raw = raw.to_str().unwrap();
    let k230 = k230_hello();
    let vf2 = prebuilt_hello("visionfive2", "jh7110").unwrap();
    let vf2 = vf2.to_str().unwrap();
    let duo = prebuilt_hello("milkv-duo-s", "sg2000").unwrap();
    let duo = duo.to_str().unwrap();
    for (args, flag, applies) in [
        (vec!["maskrom", "visionfive2", vf2, "--dram", raw], "--dram", "drop --dram"),
        (vec!["maskrom", "canmv-k230", &k230, "--core", "arm"], "--core", "--load"),
        (vec!["maskrom", "milkv-duo-s", duo, "--zero-crc"], "--zero-crc", "--core"),
        (vec!["maskrom", "rock-5b", "--dram", raw, "--load", &format!("0x0={raw}")], "--load", "--rkbin"),
        (vec!["maskrom", "canmv-k230", &k230, "--usb-id", "3346:1000"], "--usb-id", "--run"),
    ] {
        let o = racklet_flash().args(&args).arg("--simulate").output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains(&format!("{flag} is a ")), "{args:?}: names {flag}: {t}");
        assert!(t.contains("hint:") && t.contains(applies), "{args:?}: names what applies ({applies}): {t}");
    }
    // From the environment counts too... a flag's own board takes it.
    racklet_flash().args(["maskrom", "milkv-duo-s", duo, "--core", "riscv", "--simulate"]).assert().success();
}

#[test]
fn a_file_in_another_board_s_format_is_refused_unless_forced() {
    let d = tempfile::tempdir().unwrap();
    let vf2 = prebuilt_hello("visionfive2", "jh7110").unwrap();
    let img = d.path().join("vf2.img");
    racklet_flash().args(["image", "visionfive2"]).arg(&vf2).arg("-o").arg(&img).assert().success();
    let rkboot =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bad-inputs/rkboot-for-rk3399.bin");
    let fsbl = file(d.path(), "FSBL.bin", &racklet_tests::k1_fsbl(&pattern(4000, 2)));
    for (board, f, what) in [
        ("milkv-duo", &img, "JH7110"),
        ("canmv-k230", &rkboot, "RKBOOT"),
        ("lichee-pi-4a", &rkboot, "RKBOOT"),
        ("visionfive2", &fsbl, "starfive"),
    ] {
        let o = racklet_flash().args(["maskrom", board]).arg(f).arg("--simulate").output().unwrap();
        let t = text(&o);
        if what == "starfive" {
            // A K1 FSBL to a StarFive board: refused as the K1's own format.
            assert_eq!(o.status.code(), Some(2), "{board}: {t}");
            assert!(t.contains("fastboot boards"), "{board}: {t}");
            continue;
        }
        assert_eq!(o.status.code(), Some(2), "{board} {}: {t}", f.display());
        assert!(
            t.contains(what) && t.contains("--force"),
            "{board}: says what the file is and how to send it anyway: {t}"
        );
    }
    // --force sends it raw.
    racklet_flash()
        .args(["maskrom", "milkv-duo"])
        .arg(&img)
        .args(["--simulate", "--force"])
        .assert()
        .success();
    // The board's own format still goes.
    racklet_flash().args(["maskrom", "visionfive2"]).arg(&img).arg("--simulate").assert().success();
}

/// ux review §11: a README command with `--simulate` added runs against the
/// virtual board — the tty given with --port is the virtual UART, for a
/// serial ROM (StarFive) and a USB-serial one (Sophgo), one board or two.
#[test]
fn a_tty_port_under_simulate_is_the_virtual_boards_uart() {
    let hello = prebuilt_hello("visionfive2", "jh7110").expect("prebuilt hello");
    let o = racklet_flash()
        .args(["maskrom", "visionfive2"])
        .arg(&hello)
        .args(["--port", "/dev/ttyUSB-not-here", "--simulate"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("stands in for /dev/ttyUSB-not-here"), "{}", text(&o));
    // Nothing to switch or power-cycle on a virtual board.
    assert!(!text(&o).contains("power-cycle"), "{}", text(&o));
    let hello = prebuilt_hello("milkv-duo", "cv1800b").expect("prebuilt hello");
    let o = racklet_flash()
        .args(["maskrom", "milkv-duo"])
        .arg(&hello)
        .args(["--port", "/dev/ttyACM-a", "--port", "/dev/ttyACM-b", "--simulate", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let done = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "done")
        .count();
    assert_eq!(done, 2, "{}", text(&o));
}
