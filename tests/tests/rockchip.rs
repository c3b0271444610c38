//! End-to-end tests of `racklet-flash` on Rockchip boards, against the
//! virtual ROM (--simulate) and the served one (`racklet-flash sim`).

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

/// Rockchip CRC32 (poly 0x04C10DB7, init 0, MSB first), from the sheet.
fn crc32(data: &[u8]) -> u32 {
    let mut c: u32 = 0;
    for &b in data {
        c ^= u32::from(b) << 24;
        for _ in 0..8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04c1_0db7 } else { c << 1 };
        }
    }
    c
}

/// An RKBOOT file laid out as the fact sheet §2 says: header, 471, 472 and
/// loader tables, data, CRC32. `entries` are (type, name, data, delay).
fn rkboot(tag: &[u8; 4], chip: &[u8; 4], entries: &[(u32, &str, Vec<u8>, u32)]) -> Vec<u8> {
    let n = |t: u32| entries.iter().filter(|e| e.0 == t).count();
    let t1 = 0x66usize;
    let t2 = t1 + 57 * n(1);
    let t4 = t2 + 57 * n(2);
    let mut off = t4 + 57 * n(4);
    let mut f = vec![0u8; 0x66];
    f[0..4].copy_from_slice(tag);
    f[4] = 0x66;
    f[6] = 0x17;
    f[7] = 0x01;
    f[0x15..0x19].copy_from_slice(&[chip[3], chip[2], chip[1], chip[0]]);
    for (at, t, tab) in [(0x19usize, 1u32, t1), (0x1f, 2, t2), (0x25, 4, t4)] {
        f[at] = n(t) as u8;
        f[at + 1..at + 5].copy_from_slice(&(tab as u32).to_le_bytes());
        f[at + 5] = 57;
    }
    f[0x2c] = 1;
    f[0x2d] = 1;
    let mut data = Vec::new();
    for t in [1u32, 2, 4] {
        for (_, name, bytes, delay) in entries.iter().filter(|e| e.0 == t) {
            f.push(57);
            f.extend_from_slice(&t.to_le_bytes());
            let mut u: Vec<u16> = name.encode_utf16().collect();
            u.resize(20, 0);
            u.iter().for_each(|x| f.extend_from_slice(&x.to_le_bytes()));
            f.extend_from_slice(&(off as u32).to_le_bytes());
            f.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            f.extend_from_slice(&delay.to_le_bytes());
            data.extend_from_slice(bytes);
            off += bytes.len();
        }
    }
    f.extend_from_slice(&data);
    let c = crc32(&f);
    f.extend_from_slice(&c.to_le_bytes());
    f
}

fn rk3568_loader() -> Vec<u8> {
    rkboot(
        b"LDR ",
        b"3568",
        &[
            (1, "UsbHead", pattern(2048, 1), 1),
            (1, "rk3568_ddr_1560MHz_v", pattern(6144, 2), 1),
            (2, "rk356x_usbplug_v1", pattern(10240, 3), 0),
            (4, "FlashBoot", pattern(2048, 4), 0),
        ],
    )
}

#[test]
fn loader_runs_against_the_virtual_rom_and_usbplug_answers() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let (out, _) = expect(&["maskrom", "rock-3a", l.to_str().unwrap(), "--simulate"], 0, "done:");
    for s in ["chip info: 3568", "flash id: EMMC", "usbplug started", "rk356x_usbplug_v1", "answers rockusb"]
    {
        assert!(out.contains(s), "no {s:?} in\n{out}");
    }
}

#[test]
fn raw_blobs_with_dram_and_rc4_by_the_chip_table() {
    let d = tempfile::tempdir().unwrap();
    let ddr = file(d.path(), "ddr.bin", &pattern(4094, 5));
    let plug = file(d.path(), "plug.bin", &pattern(8191, 6));
    let (out, _) = expect(
        &["maskrom", "rock-3a", "--dram", ddr.to_str().unwrap(), plug.to_str().unwrap(), "--simulate"],
        0,
        "done:",
    );
    assert!(out.contains("rc4: off"), "{out}");
    // RK3399 takes RC4'd raw blobs, and its DDR blob must carry the RK33 tag.
    let mut b = pattern(4095, 7);
    b[..4].copy_from_slice(b"RK33");
    let ddr33 = file(d.path(), "ddr33.bin", &b);
    let (out, _) = expect(
        &["maskrom", "rockpro64", "--dram", ddr33.to_str().unwrap(), plug.to_str().unwrap(), "--simulate"],
        0,
        "done:",
    );
    assert!(out.contains("rc4: on"), "{out}");
    // Forcing RC4 off on a chip that wants it: the DDR blob never returns, so
    // the next stage times out (the real symptom, xrock #7).
    expect(
        &[
            "maskrom",
            "rockpro64",
            "--dram",
            ddr33.to_str().unwrap(),
            plug.to_str().unwrap(),
            "--simulate",
            "--rc4",
            "off",
        ],
        6,
        "timed out",
    );
    // --dram alone: DRAM init only.
    expect(&["maskrom", "rock-3a", "--dram", ddr.to_str().unwrap(), "--simulate"], 0, "no usbplug");
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
fn faults_end_in_clean_failures() {
    let d = tempfile::tempdir().unwrap();
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let l = l.to_str().unwrap();
    let st = ["--stage-timeout", "300ms"];
    let with = |f: &str| -> Vec<String> {
        ["maskrom", "rock-3a", l, "--simulate", "--fault", f]
            .iter()
            .chain(st.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let cases = [
        ("corrupt", 7, "rejected by the ROM"),
        ("reject-usbplug", 7, "rejected by the ROM"),
        ("no-return", 6, "did not appear"),
        ("dead-usbplug", 6, "does not answer TEST UNIT READY"),
        ("bad-csw", 9, "bad command status wrapper"),
        ("already-loader", 7, "not in maskrom"),
        ("hang", 6, "timed out"),
    ];
    for (fault, code, needle) in cases {
        let a = with(fault);
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        expect(&a, code, needle);
    }
    expect(&["maskrom", "rock-3a", l, "--simulate", "--fault", "gremlins"], 2, "unknown rockchip fault");
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
fn bad_usage_is_refused_before_any_device() {
    let d = tempfile::tempdir().unwrap();
    let plug = file(d.path(), "plug.bin", &pattern(100, 1));
    let big = file(d.path(), "big.bin", &pattern(0x10000, 1));
    let l = file(d.path(), "loader.bin", &rk3568_loader());
    let p = plug.to_str().unwrap();
    expect(&["maskrom", "rock-3a", p, "--simulate"], 2, "--dram");
    expect(&["maskrom", "rock-3a", "--simulate"], 2, "nothing to send");
    expect(&["maskrom", "rock-3a", "--dram", big.to_str().unwrap(), "--simulate"], 2, "do not fit");
    expect(&["maskrom", "rock-3a", "--dram", p, p, "--zero-crc", "--simulate"], 2, "zero CRC");
    expect(
        &["maskrom", "rock-3a", l.to_str().unwrap(), "--rc4", "on", "--simulate"],
        2,
        "--rc4 applies to raw blobs",
    );
}

#[test]
fn zero_crc_on_a_chip_that_accepts_it() {
    let d = tempfile::tempdir().unwrap();
    let boards = file(
        d.path(),
        "boards.toml",
        br#"[[board]]
name = "test-3576"
title = "RK3576 test board"
soc = "rk3576"
arch = "aarch64"
protocol = "rockchip"
transport = "usb"
load_address = 0x3ff80000
sram_base = 0x3ff80000
sram_size = 0x10000
usb = [{ stage = "rom", vid = 0x2207, pid = 0x350e }]
enter = "maskrom button"
"#,
    );
    let ddr = file(d.path(), "ddr.bin", &pattern(5000, 1));
    let plug = file(d.path(), "plug.bin", &pattern(9000, 2));
    let rec = d.path().join("t.jsonl");
    let b = boards.to_str().unwrap();
    let (out, _) = expect(
        &[
            "--boards",
            b,
            "maskrom",
            "test-3576",
            "--dram",
            ddr.to_str().unwrap(),
            plug.to_str().unwrap(),
            "--zero-crc",
            "--simulate",
            "--record",
            rec.to_str().unwrap(),
            "--record-data",
            "full",
        ],
        0,
        "done:",
    );
    assert!(out.contains("crc 0000"), "{out}");
    let t = std::fs::read_to_string(&rec).unwrap();
    // 5000 bytes: [4096, 906]; the last transfer ends in the zero CRC.
    let last471 = t.lines().rfind(|l| l.contains("\"idx\":1137")).unwrap();
    let v: serde_json::Value = serde_json::from_str(last471).unwrap();
    assert!(v["data"].as_str().unwrap().ends_with("0000"));
    assert_eq!(v["data"].as_str().unwrap().len(), 2 * (5000 - 4096 + 2));
}

#[test]
fn rkbin_checkout_supplies_both_blobs_newest_version() {
    let d = tempfile::tempdir().unwrap();
    let rk35 = d.path().join("bin").join("rk35");
    std::fs::create_dir_all(&rk35).unwrap();
    file(&rk35, "rk3568_ddr_1560MHz_v1.18.bin", &pattern(3000, 1));
    file(&rk35, "rk3568_ddr_1560MHz_v1.23.bin", &pattern(3001, 2));
    file(&rk35, "rk3568_ddr_1560MHz_v1.9.bin", &pattern(3002, 3));
    file(&rk35, "rk356x_usbplug_v1.17.bin", &pattern(5000, 4));
    file(&rk35, "rk3566_ddr_1056MHz_v1.23.bin", &pattern(3003, 5));
    let dir = d.path().to_str().unwrap();
    let (out, _) = expect(&["maskrom", "rock-3a", "--rkbin", dir, "--simulate"], 0, "done:");
    assert!(out.contains("rk3568_ddr_1560MHz_v1.23.bin"), "{out}");
    assert!(out.contains("rk356x_usbplug_v1.17.bin"), "{out}");
    assert!(out.contains("3001 B"), "{out}");
    // An RK3566 board takes the RK3566 blob.
    let (out, _) = expect(&["maskrom", "quartz64-a", "--rkbin", dir, "--simulate"], 0, "done:");
    assert!(out.contains("rk3566_ddr_1056MHz_v1.23.bin"), "{out}");
    // RK3588 blobs are missing: exit 2, naming what was looked for.
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
