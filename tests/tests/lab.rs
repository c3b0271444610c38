//! Lab automation end to end: parallel boards, JSON events, consoles.

use std::io::Write;
use std::time::Duration;

use assert_cmd::Command;
use racklet_tests::{file, pattern};

fn rf() -> Command {
    racklet_tests::racklet_flash()
}

fn ports(n: usize) -> Vec<String> {
    (1..=n).flat_map(|i| ["--port".to_string(), format!("3-{i}")]).collect()
}

#[test]
fn eight_boards_in_parallel_one_fails_only_that_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bin = file(dir.path(), "payload.bin", &pattern(3000, 7));
    let out = rf()
        .args(["maskrom", "canmv-k230"])
        .arg(&bin)
        .args(ports(8))
        .args(["--simulate", "--fault", "3-5=stall-bulk", "--stage-timeout", "200ms", "--json"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(7); // every failure is "rejected by the ROM": its exit code
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let events: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON object")).collect();
    for e in &events {
        assert!(e["event"].is_string(), "event without a name: {e}");
    }
    let done: Vec<&str> =
        events.iter().filter(|e| e["event"] == "done").map(|e| e["port"].as_str().unwrap()).collect();
    assert_eq!(done.len(), 7, "{stdout}");
    assert!(!done.contains(&"3-5"));
    let errors: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    assert_eq!(errors[0]["port"], "3-5");
    assert_eq!(errors[0]["class"], "rejected");
    assert_eq!(errors[0]["exit_code"], 7);
    let summary = events.iter().find(|e| e["event"] == "summary").expect("a summary event");
    assert_eq!(summary["ok"], 7);
    assert_eq!(summary["failed"], 1);
    // Progress events carry the port they belong to.
    assert!(events.iter().filter(|e| e["event"] == "progress").all(|e| e["port"].is_string()));
}

#[test]
fn all_boards_succeeding_exit_0_with_a_summary_table() {
    let dir = tempfile::tempdir().unwrap();
    let bin = file(dir.path(), "payload.bin", &pattern(100, 3));
    let out = rf()
        .args(["maskrom", "canmv-k230"])
        .arg(&bin)
        .args(ports(3))
        .args(["--simulate", "--stage-timeout", "100ms"])
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for p in ["3-1", "3-2", "3-3"] {
        assert!(stderr.lines().any(|l| l.starts_with(p) && l.contains(" ok ")), "{p}: {stderr}");
    }
}

/// A console on a pseudo-terminal that prints noise and never a banner.
fn console() -> (racklet_sim::serial::PtyPair, std::thread::JoinHandle<()>) {
    let pair = racklet_sim::serial::PtyPair::new().unwrap();
    let mut dev = pair.device.try_clone_native().unwrap();
    let t = std::thread::spawn(move || {
        let _ = dev.write_all(b"boot noise\r\n\x00\xff partial ");
        std::thread::sleep(Duration::from_secs(3));
    });
    (pair, t)
}

/// Under --simulate, --monitor reads the virtual board's own UART, on which
/// the virtual K230 prints what our hello prints once it is started (a
/// banner that comes late, after noise, is racklet_link::console's unit
/// tests).
#[test]
fn expect_succeeds_on_the_virtual_boards_console() {
    let hello = racklet_tests::prebuilt_hello("canmv-k230", "k230").expect("the prebuilt K230 hello");
    rf().args(["maskrom", "canmv-k230"])
        .arg(&hello)
        .args(["--simulate", "--stage-timeout", "100ms", "--monitor", "/dev/ttyUSB0"])
        .args(["--expect", r"hello from canmv-k230 \(k230\)", "--expect-timeout", "10s"])
        .timeout(Duration::from_secs(30))
        .assert()
        .success()
        .stderr(predicates::str::contains("console matched: hello from canmv-k230 (k230)"));
}

#[test]
fn expect_times_out_with_the_timeout_class() {
    let dir = tempfile::tempdir().unwrap();
    let bin = file(dir.path(), "payload.bin", &pattern(64, 1));
    let (pair, t) = console();
    rf().args(["maskrom", "canmv-k230"])
        .arg(&bin)
        .args(["--simulate", "--stage-timeout", "100ms", "--monitor", &pair.path])
        .args(["--expect", "hello from", "--expect-timeout", "700ms"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(6)
        .stderr(predicates::str::contains("did not print /hello from/"));
    t.join().unwrap();
}

#[test]
fn bad_console_options_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bin = file(dir.path(), "payload.bin", &pattern(64, 1));
    rf().args(["maskrom", "canmv-k230"])
        .arg(&bin)
        .args(["--simulate", "--monitor", "/dev/null", "--expect", "(unclosed"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not a valid regular expression"));
    rf().args(["maskrom", "canmv-k230"])
        .arg(&bin)
        .args(["--simulate", "--port", "3-1", "--port", "3-2", "--monitor", "/dev/null"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("one console per --port"));
}

#[test]
fn ctrl_c_stops_between_transfers_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let spl = file(dir.path(), "spl.bin", &pattern(5000, 4));
    let fsbl = dir.path().join("FSBL.bin");
    rf().args(["image", "bpi-f3"]).arg(&spl).arg("-o").arg(&fsbl).assert().success();
    // A 16 MiB FIT over a full-speed virtual link takes ~14 s: plenty of
    // transfers to interrupt.
    let mut fit = vec![0xd0, 0x0d, 0xfe, 0xed];
    fit.extend(pattern(16 << 20, 5));
    let itb = file(dir.path(), "u-boot.itb", &fit);
    let bin = assert_cmd::cargo::cargo_bin("racklet-flash");
    let child = std::process::Command::new(bin)
        .args(["maskrom", "bpi-f3"])
        .arg(&fsbl)
        .arg("--then")
        .arg(&itb)
        .args(["--simulate", "--sim-speed", "full", "--json"])
        .env_remove("RACKLET_PORT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let start = std::time::Instant::now();
    let ok = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(5), "stopped between transfers, not at the end");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("\"event\":\"done\""), "an interrupted flash never reports done");
    assert!(stdout.contains("\"class\":\"interrupted\""), "{stdout}");
}
