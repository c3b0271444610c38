//! The CLI contracts of `racklet-flash` on Rockchip boards: exit codes,
//! messages and hints, the summary, `--record`, `info` and `racklet-flash
//! sim`. The flow itself (wire bytes, RC4, zero CRC, rkbin, re-enumeration,
//! every fault) is tested in-process in `protocols/rockchip/tests`.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use racklet_tests::{file, pattern};

fn rf() -> Command {
    racklet_tests::racklet_flash()
}

/// Runs and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let o = rf().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn expect(args: &[&str], code: i32, needle: &str) -> (String, String) {
    let (c, out, err) = run(args);
    assert_eq!(c, code, "{args:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(needle) || err.contains(needle),
        "{args:?}: no {needle:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    if code != 0 {
        assert!(
            !out.contains("done:") && !err.contains("done:"),
            "a failed run reported success:\n{out}{err}"
        );
    }
    // Progress and the summary go to stderr, JSON and listings to stdout.
    (format!("{out}{err}"), err)
}

use racklet_tests::{rk3568_loader, rkboot};

#[test]
fn loader_runs_against_the_virtual_rom_and_usbplug_answers() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let (out, _) = expect(&["maskrom", "rock-3a", l.to_str().unwrap(), "--simulate"], 0, "done:");
    for s in [
        "chip info: 3568",
        "flash id: EMMC",
        "usbplug started",
        "rk356x_usbplug_v1",
        "rockusb: the usbplug answers",
    ] {
        assert!(out.contains(s), "no {s:?} in\n{out}");
    }
}

#[test]
fn the_transcript_shows_the_worked_example() {
    let d = tempfile::tempdir().unwrap();
    let ddr = file(d.path(), "ddr.bin", &[0x00, 0x01]);
    let rec = d.path().join("t.jsonl");
    expect(
        &[
            "maskrom",
            "rock-3a",
            "--dram",
            ddr.to_str().unwrap(),
            "--simulate",
            "--record",
            rec.to_str().unwrap(),
        ],
        0,
        "done:",
    );
    let t = std::fs::read_to_string(&rec).unwrap();
    let lines: Vec<serde_json::Value> = t.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let c = lines.iter().find(|v| v["t"] == "ctrl_out").expect("a control transfer");
    // Sheet §1.2: 40 0C 0000 0471 0004 + 00 01 0d 2e.
    assert_eq!(
        (c["rt"].as_u64(), c["req"].as_u64(), c["val"].as_u64(), c["idx"].as_u64()),
        (Some(0x40), Some(0x0c), Some(0), Some(0x471))
    );
    assert_eq!(c["data"], "00010d2e");
    // RC4 on (RK3399): 6e 27 61 af. That blob has no RK33 tag, so the virtual
    // ROM reports that the DRAM init never returned: not a success.
    let rec2 = d.path().join("t2.jsonl");
    expect(
        &[
            "maskrom",
            "rockpro64",
            "--dram",
            ddr.to_str().unwrap(),
            "--simulate",
            "--record",
            rec2.to_str().unwrap(),
        ],
        7,
        "does not start with the RK33 tag",
    );
    assert!(std::fs::read_to_string(&rec2).unwrap().contains("\"data\":\"6e2761af\""));
}

#[test]
fn an_unknown_fault_is_bad_input() {
    // Every fault's exit code is in fault_matrix.rs; here the name check.
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let (out, _) = expect(
        &["maskrom", "rock-3a", l.to_str().unwrap(), "--simulate", "--fault", "gremlins"],
        2,
        "unknown fault 'gremlins'",
    );
    assert!(out.contains("hint: known faults: none, corrupt"), "{out}");
}

#[test]
fn damaged_loaders_are_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let good = rk3568_loader();
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"BOOX");
    let truncated = good[..0x66 + 30].to_vec();
    let mut crc = good.clone();
    let n = crc.len();
    crc[n - 100] ^= 1;
    let mut past = good.clone();
    // 472 entry (third record) size field → far past the end.
    let e = 0x66 + 2 * 57;
    past[e + 0x31..e + 0x35].copy_from_slice(&0x00ff_0000u32.to_le_bytes());
    for (name, bytes, needle) in [
        // maskrom refuses the near-miss up front; info shows the damaged structure.
        ("magic.bin", magic, "looks like a damaged RKBOOT loader: the tag is \"BOOX\""),
        ("truncated.bin", truncated, "truncated RKBOOT entry table"),
        ("crc.bin", crc, "CRC32 mismatch"),
        ("past.bin", past, "past the end of the file"),
    ] {
        let p = file(d.path(), name, &bytes);
        let p = p.to_str().unwrap();
        expect(&["maskrom", "rock-3a", p, "--simulate"], 2, needle);
        let info_needle = match name {
            "crc.bin" => "crc32",
            "magic.bin" => "not \"BOOT\" or \"LDR \"",
            _ => needle,
        };
        expect(&["info", p], 2, info_needle);
    }
    // A loader for another chip.
    let other =
        file(d.path(), "rk3399.bin", &rkboot(b"BOOT", b"330C", &[(1, "ddr", b"RK33xxxx".to_vec(), 1)]));
    expect(&["maskrom", "rock-3a", other.to_str().unwrap(), "--simulate"], 2, "for chip '330C'");
}

#[test]
fn info_decodes_a_loader() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let (out, _) = expect(&["info", l.to_str().unwrap()], 0, "RKBOOT loader");
    for s in [
        "\"LDR \"",
        "3568 (rk3568/rk3566",
        "471 entry 0",
        "UsbHead",
        "rk3568_ddr_1560MHz_v",
        "10240 B",
        "delay 1 ms",
        "471/472 stored without RC4 true",
        "CRC disabled               false",
        "check crc32",
        "rock-3a",
    ] {
        assert!(out.contains(s), "no {s:?} in\n{out}");
    }
}

#[test]
fn bad_usage_is_refused_before_any_device_with_a_hint() {
    let d = tempfile::tempdir().unwrap();
    let plug = file(d.path(), "plug.bin", &pattern(100, 1));
    let big = file(d.path(), "big.bin", &pattern(0x10000, 1));
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let p = plug.to_str().unwrap();
    let l = l.to_str().unwrap();
    for (args, message, hint) in [
        (vec![p], "sent as the 0x472 stage", "hint: add --dram DDR.bin or --rkbin DIR"),
        (vec![], "nothing to send", "hint: give an RKBOOT loader"),
        (vec!["--dram", big.to_str().unwrap()], "do not fit", "hint:"),
        (vec!["--dram", p, p, "--zero-crc"], "zero CRC", "hint: drop --zero-crc"),
        (vec![l, "--rc4", "on"], "--rc4 applies to raw blobs", "hint: drop --rc4"),
    ] {
        let mut a = vec!["maskrom", "rock-3a", "--simulate"];
        a.extend(args);
        let (_, err) = expect(&a, 2, message);
        assert!(err.contains(hint), "{a:?}: no {hint:?} in\n{err}");
    }
    // The JSON error event carries the hint apart.
    let (out, _) =
        expect(&["--json", "maskrom", "rock-3a", "--simulate", "--dram", p, p, "--zero-crc"], 2, "zero");
    let ev: serde_json::Value = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "error")
        .unwrap();
    assert_eq!(ev["class"], "bad_input");
    assert!(ev["hint"].as_str().unwrap().contains("drop --zero-crc"), "{ev}");
}

#[test]
fn rkbin_names_the_blob_it_took_or_looked_for() {
    let d = tempfile::tempdir().unwrap();
    let rk35 = d.path().join("bin").join("rk35");
    std::fs::create_dir_all(&rk35).unwrap();
    file(&rk35, "rk3568_ddr_1560MHz_v1.23.bin", &pattern(3001, 2));
    file(&rk35, "rk356x_usbplug_v1.17.bin", &racklet_tests::rk_usbplug(5000, 4));
    let dir = d.path().to_str().unwrap();
    let (out, _) = expect(&["maskrom", "rock-3a", "--rkbin", dir, "--simulate"], 0, "done:");
    assert!(out.contains("ddr: ") && out.contains("rk3568_ddr_1560MHz_v1.23.bin"), "{out}");
    // Missing blobs: exit 2, naming the pattern looked for.
    expect(
        &["maskrom", "rock-5b", "--rkbin", dir, "--simulate"],
        2,
        "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v*.bin",
    );
}

#[test]
fn sim_serves_the_rom_over_tcp() {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("racklet-flash"))
        .args(["sim", "rock-3a", "--tcp", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("tcp://").expect("tcp:// address on stdout").to_string();
    let s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut ask = |line: &str| -> serde_json::Value {
        writeln!(w, "{line}").unwrap();
        let mut a = String::new();
        r.read_line(&mut a).unwrap();
        serde_json::from_str(&a).unwrap()
    };
    assert_eq!(ask(r#"{"t":"info"}"#)["info"]["pid"], 0x350a);
    // The worked example, then the same with a bad CRC.
    assert_eq!(ask(r#"{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"00010d2e"}"#)["ok"], true);
    let bad = ask(r#"{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"00010d2f"}"#);
    assert_eq!(bad["err"], "stall");
    w.shutdown(std::net::Shutdown::Both).unwrap();
    drop(r);
    // One session, then the server exits and logs its verdict.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("sim did not exit after the session");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("received 0x471 stage: 2 B"), "{err}");
    assert!(err.contains("verdict: failed") && err.contains("CRC mismatch"), "{err}");
}

#[test]
fn no_board_says_how_to_enter_maskrom() {
    let d = tempfile::tempdir().unwrap();
    let ddr = file(d.path(), "ddr.bin", &pattern(100, 1));
    // The virtual board has no USB serial number, so this selector finds nothing.
    let (_, err) = expect(
        &["maskrom", "rock-3a", "--dram", ddr.to_str().unwrap(), "--simulate", "--port", "2207:350a:NOPE"],
        3,
        "no Rockchip maskrom device at 2207:350a:NOPE found",
    );
    assert!(err.contains("hint: add --wait 30s"), "{err}");
    assert!(
        err.contains("To put rock-3a (Radxa ROCK 3A) in its boot ROM mode: Hold the maskrom button"),
        "{err}"
    );
}

/// A 0x472 stage that is not a usbplug (mainline U-Boot's usb472 image, an
/// SPL, a bare-metal program) is sent and started; no rockusb loader comes
/// back, and that is the normal end. `--expect-usbplug` makes it a timeout.
#[test]
fn a_0x472_payload_is_started_and_no_usbplug_is_needed() {
    let d = tempfile::tempdir().unwrap();
    let ddr = file(d.path(), "ddr.bin", &pattern(3000, 1));
    let spl = file(d.path(), "u-boot-rockchip-usb472.bin", &pattern(9000, 2));
    let (ddr, spl) = (ddr.to_str().unwrap(), spl.to_str().unwrap());
    let (out, _) = expect(&["maskrom", "rock-3a", "--dram", ddr, spl, "--simulate"], 0, "done:");
    for s in ["no rockusb loader answered at USB port", "normal for a payload", "0x472 payload started"] {
        assert!(out.contains(s), "no {s:?} in\n{out}");
    }
    assert!(!out.contains("chip info"), "{out}");
    // In JSON: the same words under the detail key "result".
    let o = rf().args(["maskrom", "rock-3a", "--dram", ddr, spl, "--simulate", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let done: serde_json::Value = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "done")
        .expect("a done event");
    let result = racklet_tests::detail(&done, "result").unwrap_or_default();
    assert!(result.contains("no rockusb loader answered"), "{done}");
    assert!(racklet_tests::detail(&done, "rockusb").is_none(), "{done}");
    let args =
        ["maskrom", "rock-3a", "--dram", ddr, spl, "--simulate", "--expect-usbplug", "--stage-timeout", "1s"];
    let (out, _) = expect(&args, 6, "the usbplug did not appear at USB port");
    assert!(out.contains("hint: raise --stage-timeout"), "{out}");
    // The flag is Rockchip's: refused on another board's run.
    let (code, _, err) = run(&["maskrom", "canmv-k230", spl, "--simulate", "--expect-usbplug"]);
    assert_eq!(code, 2, "{err}");
}

/// The usbplug says "not ready" (TEST UNIT READY status 1) for its first
/// polls: polled again, as rkdeveloptool does, and the run succeeds.
#[test]
fn a_usbplug_that_is_not_ready_at_first_is_polled_again() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let (out, _) = expect(
        &["maskrom", "rock-3a", l.to_str().unwrap(), "--simulate", "--fault", "not-ready"],
        0,
        "done:",
    );
    assert!(out.contains("is not ready yet") && out.contains("chip info: 3568"), "{out}");
}

/// An RK3566 board's usbplug is built for RK3568 and says "3568": the
/// board's own chip, no warning.
#[test]
fn an_rk3566_board_takes_the_3568_usbplug_s_chip_code() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let (out, _) = expect(&["maskrom", "quartz64-a", l.to_str().unwrap(), "--simulate"], 0, "done:");
    assert!(out.contains("chip info: 3568\n") && !out.contains("warning"), "{out}");
}

/// xrock's 99-xrock.rules switch USB autosuspend off for every Rockchip
/// boot ROM and loader (`TEST=="power/autosuspend",
/// ATTR{power/autosuspend}="-1"`): a host with TLP or powertop "auto" may
/// otherwise suspend an idle ROM before the tool opens it. The generated
/// rules do it for every USB id, on a line of its own so that a device
/// without the attribute still gets its permissions.
#[test]
fn udev_rules_switch_autosuspend_off_for_boot_roms_and_loaders() {
    let (code, out, err) = run(&["udev-rules"]);
    assert_eq!(code, 0, "{err}");
    let ids: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("SUBSYSTEM==\"usb\"") && l.contains("MODE="))
        .map(|l| l.split(", MODE=").next().unwrap())
        .collect();
    assert!(ids.iter().any(|i| i.contains(r#"ATTR{idVendor}=="2207", ATTR{idProduct}=="350a""#)), "{out}");
    for id in ids {
        let want = format!(r#"{id}, TEST=="power/autosuspend", ATTR{{power/autosuspend}}="-1""#);
        assert!(out.lines().any(|l| l == want), "no {want:?} in\n{out}");
    }
}
