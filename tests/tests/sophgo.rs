//! End-to-end: the contracts of the built racklet-flash for Sophgo boards
//! (`image`, `info`, exit codes, messages and hints, the Sophgo flags, `sim`,
//! several boards at once). The flow itself (the wire, re-enumeration,
//! faults) is tested in-process in protocols/sophgo/tests.
//!
//! Expected bytes are derived here from the fact sheet
//! (shared/protocols/sophgo.md), with the sim's reference CRC.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn rf() -> Command {
    racklet_tests::racklet_flash()
}

use racklet_sim::crc::crc16_xmodem as crc_ref;

/// A BL2: `j +32` (RISC-V `6f 00 00 02`), then a body.
fn bl2(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    v[..4].copy_from_slice(&[0x6f, 0x00, 0x00, 0x02]);
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    racklet_tests::file(dir, name, bytes)
}

/// A minimal ELF64 with one PT_LOAD segment (the shared helper).
fn elf(machine: u16, addr: u64, entry: u64, body: &[u8]) -> Vec<u8> {
    racklet_tests::elf64(machine, entry, &[(addr, body, body.len() as u64)])
}

/// fip.bin written out from the sheet's tables (§3.1) for a BL2, in the
/// vendor's simple shape.
fn fip_by_the_sheet(bl2: &[u8]) -> Vec<u8> {
    let mut body = bl2.to_vec();
    body.resize(bl2.len().div_ceil(512) * 512, 0);
    let ck = crc_ref(&body);
    let mut p = vec![0u8; 4096];
    p[..8].copy_from_slice(b"CVBL01\n\0");
    p[0x90..0x90 + 36].fill(0xFF);
    p[0xBC..0xC0].copy_from_slice(&760u32.to_le_bytes());
    p[0xC0..0xC4].copy_from_slice(&[0, 0, 0xFE, 0xCA]);
    p[0xD4..0xD8].copy_from_slice(&[ck as u8, (ck >> 8) as u8, 0xFE, 0xCA]);
    p[0xD8..0xDC].copy_from_slice(&(body.len() as u32).to_le_bytes());
    let conf = [0x0E00000Cu32, 0xA0000001, 0x0E00000C, 0xA0000002, 0xFFFFFFA0, 0xFFFFFFFF];
    for (i, w) in conf.iter().enumerate() {
        p[0xE8 + 4 * i..0xEC + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    let pc = crc_ref(&p[0x10..0x800]);
    p[0x0C..0x10].copy_from_slice(&[pc as u8, (pc >> 8) as u8, 0xFE, 0xCA]);
    p.extend_from_slice(&body);
    p
}

struct Run {
    code: i32,
    events: Vec<Value>,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let o = rf().args(args).output().unwrap();
    let events = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    Run { code: o.status.code().unwrap_or(-1), events, stderr: String::from_utf8_lossy(&o.stderr).into() }
}

impl Run {
    fn event(&self, name: &str) -> Option<&Value> {
        self.events.iter().find(|e| e["event"] == name)
    }
    /// A fact of the `done` event: the virtual ROM's verdict, or one of the
    /// protocol's facts (its `details`).
    fn fact(&self, k: &str) -> String {
        self.event("done")
            .map(|d| match k {
                "virtual ROM" => d["facts"]["virtual_rom"].as_str().unwrap_or("").to_string(),
                _ => racklet_tests::detail(d, k).unwrap_or("").to_string(),
            })
            .unwrap_or_default()
    }
    fn error(&self) -> String {
        self.event("error").map(|e| e["message"].as_str().unwrap_or("").to_string()).unwrap_or_default()
    }
}

#[test]
fn image_is_the_vendor_layout_and_info_decodes_it() {
    let d = tempfile::tempdir().unwrap();
    for len in [1usize, 99, 512, 513] {
        let payload = bl2(len.max(4))[..len.max(4)].to_vec();
        let input = write(d.path(), "bl2.bin", &payload);
        let out = d.path().join(format!("fip{len}.bin"));
        rf().args(["image", "milkv-duo-256m"]).arg(&input).arg("-o").arg(&out).assert().success();
        let fip = std::fs::read(&out).unwrap();
        assert_eq!(fip, fip_by_the_sheet(&payload), "BL2 of {len} bytes");

        let o = rf().args(["info", "--json"]).arg(&out).output().unwrap();
        assert!(o.status.success());
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let field = |n: &str| {
            v["fields"].as_array().unwrap().iter().find(|f| f["name"] == n).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let pc = 0xCAFE_0000u32 | crc_ref(&fip[0x10..0x800]) as u32;
        assert!(field("PARAM_CKSUM").starts_with(&format!("0x{pc:08x}")));
        assert_eq!(field("BL2_IMG_SIZE"), (len.max(4).div_ceil(512) * 512).to_string());
        assert_eq!(field("CHIP_CONF_SIZE"), "760");
        assert_eq!(field("BL2 word 0"), "jumps to +0x20");
        assert!(v["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true));
        assert!(v["boards"].as_array().unwrap().iter().any(|b| b["board"] == "milkv-duo"));
    }
}

/// The vectors the vendor fiptool.py wrote (tests/vectors/sophgo/README.md).
fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/sophgo").join(name)
}

#[test]
fn image_writes_a_whole_fip_as_the_vendor_fiptool_does() {
    let d = tempfile::tempdir().unwrap();
    let v = |n: &str| vector(n).display().to_string();
    let full: Vec<String> = [
        "--blcp",
        &v("blcp.bin"),
        "--ddr-param",
        &v("ddr_param.bin"),
        "--blcp-2nd",
        &v("blcp_2nd.bin"),
        "--blcp-2nd-runaddr",
        "0x83f40000",
        "--monitor",
        &v("monitor.bin"),
        "--monitor-runaddr",
        "0x80000000",
        "--loader-2nd",
        &v("loader_2nd.bin"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut lzma = full.clone();
    lzma.extend(["--compress".into(), "lzma".into()]);
    let uboot: Vec<String> = [
        "--ddr-param",
        &v("ddr_param.bin"),
        "--monitor",
        &v("monitor.bin"),
        "--monitor-runaddr",
        "0x80000000",
        "--loader-2nd",
        &v("loader_2nd.bin"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (name, args) in [("fip-full.bin", full), ("fip-full-lzma.bin", lzma), ("fip-uboot.bin", uboot)] {
        let out = d.path().join(name);
        rf().args(["image", "milkv-duo-256m"])
            .arg(vector("bl2.bin"))
            .args(&args)
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(vector(name)).unwrap(),
            "{name} differs from the vendor's"
        );
        let o = rf().args(["info", "--json"]).arg(&out).output().unwrap();
        assert!(o.status.success());
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        let names: Vec<&str> =
            j["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        for n in ["param2", "DDR_PARAM", "MONITOR", "LOADER_2ND"] {
            assert!(names.contains(&n), "{name}: info has no {n}: {names:?}");
        }
        assert!(j["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true), "{name}");
    }
    // Bad combinations are bad input, named.
    let out = d.path().join("x.bin");
    let r = rf()
        .args(["image", "milkv-duo-256m"])
        .arg(vector("bl2.bin"))
        .args(["--monitor", &v("monitor.bin"), "--monitor-runaddr", "0x80000000"])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("--ddr-param"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = rf()
        .args(["image", "milkv-duo-256m"])
        .arg(vector("bl2.bin"))
        .args(["--ddr-param", &v("ddr_param.bin"), "--monitor", &v("monitor.bin")])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--monitor-runaddr"));
    let r = rf()
        .args(["image", "milkv-duo"])
        .arg(vector("bl2.bin"))
        .args([
            "--ddr-param",
            &v("ddr_param.bin"),
            "--monitor",
            &v("monitor.bin"),
            "--monitor-runaddr",
            "0x90000000",
        ])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "0x90000000 is past a CV1800B's 64 MiB of DRAM");
    assert!(String::from_utf8_lossy(&r.stderr).contains("DRAM"));
    assert!(!out.exists());
}

#[test]
fn an_existing_fip_is_checked_not_wrapped_and_a_corrupt_one_refused() {
    let d = tempfile::tempdir().unwrap();
    let fip = fip_by_the_sheet(&bl2(300));
    let input = write(d.path(), "in.bin", &fip);
    let out = d.path().join("out.bin");
    rf().args(["image", "milkv-duo-s"]).arg(&input).arg("-o").arg(&out).assert().success();
    assert_eq!(std::fs::read(&out).unwrap(), fip);

    let mut bad = fip.clone();
    bad[0x1000 + 40] ^= 0xFF; // BL2 byte: BL2 checksum fails
    let badp = write(d.path(), "bad.bin", &bad);
    let o = d.path().join("o2.bin");
    rf().args(["image", "milkv-duo-s"]).arg(&badp).arg("-o").arg(&o).assert().code(2);
    assert!(!o.exists());
    let r = rf().args(["info"]).arg(&badp).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    let text = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(text.lines().any(|l| l.contains("check BL2 checksum") && l.ends_with("FAILED")), "{text}");
    assert!(text.lines().any(|l| l.contains("check param1 checksum") && l.ends_with("ok")), "{text}");
    let r = run(&["maskrom", "milkv-duo-s", badp.to_str().unwrap(), "--simulate", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.error().contains("BL2 checksum"), "{}", r.error());

    let mut bad = fip;
    bad[0x100] ^= 1; // inside param1's checksummed range
    let badp = write(d.path(), "bad2.bin", &bad);
    let r = run(&["maskrom", "milkv-duo-s", badp.to_str().unwrap(), "--simulate", "--json"]);
    assert_eq!(r.code, 2);
    assert!(r.error().contains("param1 checksum"), "{}", r.error());
}

#[test]
fn the_core_decides_the_load_address_and_the_architecture() {
    let d = tempfile::tempdir().unwrap();
    let arm_body = {
        let mut b = bl2(200);
        b[..4].copy_from_slice(&[0x08, 0x00, 0x00, 0x14]); // b +32
        b
    };
    let arm = write(d.path(), "arm.elf", &elf(183, 0x4010_0000, 0x4010_0020, &arm_body));
    let rv = write(d.path(), "rv.elf", &elf(243, 0x0C00_0000, 0x0C00_0020, &bl2(200)));
    let rv_wrong = write(d.path(), "rv-wrong.elf", &elf(243, 0x8000_0000, 0x8000_0000, &bl2(200)));
    let rv_entry = write(d.path(), "rv-entry.elf", &elf(243, 0x0C00_0000, 0x0C00_0040, &bl2(200)));
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = run(&[
                "maskrom",
                "milkv-duo-256m",
                arm.to_str().unwrap(),
                "--core",
                "arm",
                "--simulate",
                "--json",
            ]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert!(r.fact("virtual ROM").contains("jumped to 0x40100020"));
        });
        s.spawn(|| {
            let r = run(&["maskrom", "milkv-duo-s", rv.to_str().unwrap(), "--simulate", "--json"]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert!(r.fact("virtual ROM").contains("jumped to 0xc000020"));
        });
    });
    // Refused before any device is touched (no --simulate: nothing is attached either).
    for (args, needle) in [
        (vec!["maskrom", "milkv-duo", rv.to_str().unwrap(), "--core", "arm"], "RISC-V core only"),
        (vec!["maskrom", "milkv-duo-256m", arm.to_str().unwrap()], "aarch64"),
        (vec!["maskrom", "milkv-duo-256m", rv.to_str().unwrap(), "--core", "arm"], "riscv64"),
        (vec!["maskrom", "milkv-duo-256m", rv_wrong.to_str().unwrap()], "0xc000000"),
        (vec!["maskrom", "milkv-duo-256m", rv_entry.to_str().unwrap()], "0xc000020"),
    ] {
        let mut a = args.clone();
        a.push("--json");
        let r = run(&a);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.error().contains(needle), "{args:?}: {}", r.error());
    }
}

#[test]
fn bad_inputs_are_refused_before_any_device() {
    let d = tempfile::tempdir().unwrap();
    let ok = write(d.path(), "bl2.bin", &bl2(100));
    let empty = write(d.path(), "empty.bin", &[]);
    let big = write(d.path(), "big.bin", &bl2(0x37001));
    let duo_max = write(d.path(), "duo.bin", &bl2(0x19001));
    let ok = ok.to_str().unwrap();
    for args in [
        vec!["maskrom", "milkv-duo-256m"],
        vec!["maskrom", "milkv-duo-256m", "/nonexistent/bl2.bin"],
        vec!["maskrom", "milkv-duo-256m", empty.to_str().unwrap()],
        vec!["maskrom", "milkv-duo-256m", big.to_str().unwrap()],
        vec!["maskrom", "milkv-duo", duo_max.to_str().unwrap()],
        vec!["maskrom", "milkv-duo-256m", ok, "--dram", ok],
        vec!["maskrom", "milkv-duo-256m", ok, "--usb-id", "nope"],
        vec!["maskrom", "milkv-duo-256m", ok, "--simulate", "--fault", "no-such-fault"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    // A raw BL2 of exactly the SRAM size fits.
    let fits = write(d.path(), "fits.bin", &bl2(0x37000));
    let r = run(&["maskrom", "milkv-duo-s", fits.to_str().unwrap(), "--simulate", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn no_rom_attached_says_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let ok = write(d.path(), "bl2.bin", &bl2(100));
    let r = run(&["maskrom", "milkv-duo", ok.to_str().unwrap(), "--usb-id", "3346:1fff", "--json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let e = r.error();
    assert!(e.contains("3346:1fff"), "{e}");
    // The fix is kept apart from the message: the board's entry, the ROM's window.
    let hint = r.event("error").and_then(|e| e["hint"].as_str()).unwrap_or_default().to_string();
    assert!(hint.contains("pin 32"), "board-specific entry hint: {hint}");
    assert!(hint.contains("--wait"), "{hint}");
    assert!(hint.contains("about 1 s"), "{hint}");
    // The same in text.
    let o = rf().args(["maskrom", "milkv-duo"]).arg(&ok).args(["--usb-id", "3346:1fff"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: no Sophgo boot ROM")
            && err.contains("To put milkv-duo (Milk-V Duo) in its boot ROM mode"),
        "{err}"
    );
}

#[test]
fn a_changed_vid_and_the_main_session() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "bl2.bin", &bl2(777));
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = run(&[
                "maskrom",
                "milkv-duo-256m",
                p.to_str().unwrap(),
                "--usb-id",
                "1234:abcd",
                "--simulate",
                "--json",
            ]);
            assert_eq!(r.code, 0, "{}", r.stderr);
        });
        s.spawn(|| {
            let r =
                run(&["maskrom", "milkv-duo-256m", p.to_str().unwrap(), "--main", "--simulate", "--json"]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert_eq!(r.fact("bytes sent"), "777");
            let v = r.fact("virtual ROM");
            assert!(v.contains(&format!("received 777 bytes (crc16 {:04x})", crc_ref(&bl2(777)))), "{v}");
        });
    });
}

/// Waits for a child with a bound; kills it on timeout.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sim_serves_the_rom_outside_the_process() {
    let d = tempfile::tempdir().unwrap();
    let payload = bl2(900);
    let p = write(d.path(), "bl2.bin", &payload);
    let save = d.path().join("saved");
    let exe = assert_cmd::cargo::cargo_bin("racklet-flash");
    let mut sim = StdCommand::new(&exe)
        .args(["sim", "milkv-duo-256m", "--save"])
        .arg(&save)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(sim.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let tty = first.trim().to_string();
    assert!(Path::new(&tty).exists(), "sim printed {tty:?}");
    let r = run(&["maskrom", "milkv-duo-256m", p.to_str().unwrap(), "--port", &tty, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(wait_bounded(&mut sim, Duration::from_secs(20)), Some(0), "the sim ends after one boot");
    let got = std::fs::read(save.join("bl2.bin")).unwrap();
    assert_eq!(&got[..900], &payload[..]);
    assert!(got[900..].iter().all(|b| *b == 0));
    assert_eq!(std::fs::read(save.join("param1.bin")).unwrap(), fip_by_the_sheet(&payload)[..4096]);
}

#[test]
fn udev_rules_keep_modemmanager_off_the_rom() {
    let o = rf().arg("udev-rules").output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(r#"SUBSYSTEM=="tty", ATTRS{idVendor}=="3346", ATTRS{idProduct}=="1000""#),
        "{text}"
    );
    assert!(
        text.contains(r#"ATTRS{idVendor}=="3346", ATTRS{idProduct}=="1000", ENV{ID_MM_DEVICE_IGNORE}="1""#),
        "{text}"
    );
}

#[test]
fn several_boards_in_parallel_each_followed_by_its_port_path() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "bl2.bin", &bl2(2000));
    // Three virtual boards re-enumerate at the same time; their ptys are
    // reused among them, so only the USB port path tells them apart.
    let r = run(&[
        "maskrom",
        "milkv-duo-256m",
        p.to_str().unwrap(),
        "--simulate",
        "--json",
        "--port",
        "1-1,1-2,3-1.4",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dones: Vec<&Value> = r.events.iter().filter(|e| e["event"] == "done").collect();
    assert_eq!(dones.len(), 3);
    for d in dones {
        let port = d["port"].as_str().unwrap();
        let detail = |k| racklet_tests::detail(d, k).unwrap_or_default();
        assert_eq!(detail("sessions"), "3", "{d}");
        assert_eq!(detail("bytes sent"), (4096 + 2048).to_string(), "{d}");
        assert_eq!(detail("chip"), "sg2002 (RISC-V core)", "{d}");
        assert!(detail("port").ends_with(&format!("(USB port {port})")), "{d}");
        assert_eq!(d["facts"]["port"], port, "{d}");
        assert!(d["facts"]["virtual_rom"].as_str().unwrap().contains("jumped to 0xc000020"), "{d}");
    }
    // One board failing does not hide the others' results.
    let r = run(&[
        "maskrom",
        "milkv-duo-256m",
        p.to_str().unwrap(),
        "--simulate",
        "--json",
        "--port",
        "1-1,1-2",
        "--fault",
        "reject-bl2",
    ]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(r.events.iter().filter(|e| e["event"] == "error" && e["class"] == "rejected").count(), 2);
}

#[test]
fn a_vendor_fip_boots_to_u_boot_in_simulation() {
    let r =
        run(&["maskrom", "milkv-duo-256m", vector("fip-full.bin").to_str().unwrap(), "--simulate", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.fact("served").contains("param2, DDR_PARAM, BLCP_2ND, MONITOR, LOADER_2ND header, LOADER_2ND"));
    assert!(r.fact("confirmed").contains("3346:1001"), "{:?}", r.event("done"));
    assert!(r.fact("virtual ROM").contains("3346:1001 is up"));
    // A USB device has no line rate: the throughput is stated alone.
    assert!(r.fact("throughput").contains("KiB/s over USB") && !r.fact("throughput").contains("line rate"));
}

#[test]
fn a_rejected_bl2_fails_the_run_and_the_console_says_why() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "bl2.bin", &bl2(800));
    let p = p.to_str().unwrap();
    // Without a console the client cannot tell; the virtual board's verdict
    // (it booted its flash) fails the simulated run.
    let r = run(&["maskrom", "milkv-duo-256m", p, "--simulate", "--fault", "reject-bl2", "--json"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.error().contains("DL cancelled"), "{}", r.error());
    // With --monitor the ROM's own line is the error.
    let r = run(&[
        "maskrom",
        "milkv-duo-256m",
        p,
        "--simulate",
        "--fault",
        "reject-bl2",
        "--monitor",
        "/dev/null",
        "--json",
    ]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.error().contains("bl2_cksum"), "{}", r.error());
    // (An accepted BL2 confirmed by BE.J.: protocols/sophgo/tests/boot.rs;
    // here --monitor would then stream the console until Ctrl-C.)
}

#[test]
fn sim_speed_full_gives_a_full_speed_rom_and_small_packets() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "bl2.bin", &bl2(2000));
    let r = run(&[
        "maskrom",
        "milkv-duo-256m",
        p.to_str().unwrap(),
        "--simulate",
        "--sim-speed",
        "full",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.fact("virtual ROM").contains("jumped to 0xc000020"));
}
