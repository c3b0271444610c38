//! End-to-end tests of the built binary: the commands that need no device.

use assert_cmd::Command;
use predicates::prelude::*;
use racklet_tests::{elf64, file};

fn rf() -> Command {
    racklet_tests::racklet_flash()
}

/// Bad input: exit 2, a message naming the problem, never a panic.
fn bad(args: &[&str], needle: &str) {
    let out = rf().args(args).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains(needle), "{args:?}: stderr lacks {needle:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
}

#[test]
fn help_lists_every_command() {
    let a = rf().arg("--help").assert().success();
    let s = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    for c in ["maskrom", "list", "boards", "info", "image", "udev-rules", "completions", "man", "sim"] {
        assert!(s.contains(c), "help lacks {c}");
    }
    rf().args(["maskrom", "--help"]).assert().success().stdout(predicate::str::contains("--port"));
}

#[test]
fn boards_lists_the_seed_boards_as_text_and_json() {
    let seed = [
        "rock-3a",
        "okdo-rock-3c",
        "quartz64-a",
        "rock-5b",
        "rockpro64",
        "canmv-k230",
        "bpi-canmv-k230d-zero",
        "milkv-duo",
        "milkv-duo-256m",
        "milkv-duo-s",
        "licheerv-nano",
        "visionfive2",
        "milkv-mars",
        "milkv-mars-cm",
        "star64",
        "bpi-f3",
        "musebook",
        "lichee-pi-4a",
    ];
    let a = rf().arg("boards").assert().success();
    let s = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    for b in seed {
        assert!(s.contains(b), "boards lacks {b}");
    }
    let a = rf().args(["boards", "--json"]).assert().success();
    let v: Vec<serde_json::Value> = String::from_utf8_lossy(&a.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let names: Vec<&str> = v.iter().map(|b| b["name"].as_str().unwrap()).collect();
    for b in seed {
        assert!(names.contains(&b));
    }
}

#[test]
fn list_on_a_machine_without_devices() {
    // This machine (and CI) has no USB subsystem and no USB serial ports.
    let a = rf().args(["list", "--json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).expect("one event: listed");
    assert_eq!((v["event"].as_str(), v["devices"].as_u64()), (Some("listed"), Some(0)), "{v}");
    rf().arg("list").assert().success();
}

#[test]
fn info_on_elf_raw_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let code = [0x13u8, 0, 0, 0, 0x6f, 0, 0, 0];
    let elf = file(dir.path(), "hello.elf", &elf64(243, 0x8036_0000, &[(0x8036_0000, &code, 8)]));
    let a = rf().arg("info").arg(&elf).assert().success();
    let s = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    assert!(s.contains("ELF (riscv64)"), "{s}");
    assert!(s.contains("0x80360000"), "{s}");
    assert!(s.contains("canmv-k230"), "a K230-linked ELF fits the K230 board: {s}");
    assert!(!s.contains("rock-3a"), "a RISC-V ELF does not fit an Arm board: {s}");

    let a = rf().args(["info", "--json"]).arg(&elf).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["kind"], "ELF (riscv64)");
    let k230 = v["boards"].as_array().unwrap().iter().find(|b| b["board"] == "canmv-k230").unwrap();
    assert_eq!(k230["fits"], true);

    let raw = file(dir.path(), "blob.bin", &[0xAA; 100]);
    rf().arg("info").arg(&raw).assert().success().stdout(predicate::str::contains("raw binary"));

    // Garbage that claims to be an ELF.
    let garbage = file(dir.path(), "garbage.elf", b"\x7fELF\x02\x01\x01 this is not really an ELF file");
    bad(&["info", garbage.to_str().unwrap()], "not a valid ELF");
}

#[test]
fn info_for_one_board_says_why_it_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![0u8; 0x30_0000];
    let elf = file(dir.path(), "big.elf", &elf64(243, 0x8036_0000, &[(0x8036_0000, &big, big.len() as u64)]));
    bad(&["info", elf.to_str().unwrap(), "--board", "canmv-k230"], "do not fit canmv-k230");
}

#[test]
fn bad_usage_exits_2_with_a_named_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    bad(&["maskrom", "rock3-a", "x.bin"], "did you mean 'rock-3a'");
    bad(&["maskrom", "rock-3a", "/definitely/not/here.bin"], "/definitely/not/here.bin");
    bad(&["maskrom", "rock-3a", &d], "is a directory");
    let empty = file(dir.path(), "empty.bin", b"");
    bad(&["maskrom", "canmv-k230", empty.to_str().unwrap()], "empty");
    bad(&["maskrom", "canmv-k230", "--port", "banana", "--simulate"], "invalid --port selector");
    bad(&["maskrom", "canmv-k230", "--wait", "soon"], "not a valid duration");
    bad(&["info", "/definitely/not/here.bin"], "cannot read");
    let boards = file(dir.path(), "boards.toml", b"[[board]]\nname = 7\n");
    bad(&["boards", "--boards", boards.to_str().unwrap()], "boards.toml");
}

#[test]
fn wrong_architecture_and_too_large_are_refused_before_any_device() {
    let dir = tempfile::tempdir().unwrap();
    let arm = file(dir.path(), "arm.elf", &elf64(183, 0x8036_0000, &[(0x8036_0000, &[0; 16], 16)]));
    let out = dir.path().join("out.img");
    bad(&["image", "canmv-k230", arm.to_str().unwrap(), "-o", out.to_str().unwrap()], "ELF for aarch64");
    assert!(!out.exists(), "a failed image command writes nothing");
    let big = vec![0u8; 0x30_0000];
    let big = file(dir.path(), "big.elf", &elf64(243, 0x8036_0000, &[(0x8036_0000, &big, big.len() as u64)]));
    bad(&["info", big.to_str().unwrap(), "--board", "canmv-k230"], "at most");
}

#[test]
fn udev_rules_completions_and_man() {
    rf().arg("udev-rules").assert().success().stdout(predicate::str::contains(
        r#"ATTR{idVendor}=="2207", ATTR{idProduct}=="350a", MODE="0660", GROUP="plugdev", TAG+="uaccess""#,
    ));
    rf().args(["completions", "bash"]).assert().success().stdout(predicate::str::contains("racklet-flash"));
    rf().arg("man").assert().success().stdout(predicate::str::contains(".TH"));
}

/// With no board attached, a real-device run is "not found" (exit 3) — on a
/// machine without a USB subsystem too (a container), where it names the
/// missing bus and says what to do instead of failing as an I/O error.
#[test]
fn no_board_is_not_found_even_without_a_usb_bus() {
    let d = tempfile::tempdir().unwrap();
    let p = racklet_tests::file(d.path(), "p.bin", &racklet_tests::pattern(100, 1));
    for args in [vec!["maskrom", "canmv-k230"], vec!["maskrom", "canmv-k230", "--wait", "300ms"]] {
        let o = rf().args(&args).arg(&p).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
        if !std::path::Path::new("/sys/bus/usb/devices").is_dir() {
            assert!(err.contains("no USB bus is visible"), "{err}");
            assert!(err.contains("hint: ") && err.contains("--simulate"), "{err}");
        }
    }
    let o = rf().args(["maskrom", "canmv-k230"]).arg(&p).arg("--json").output().unwrap();
    let ev: serde_json::Value = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "error")
        .expect("an error event");
    assert_eq!(ev["exit_code"], 3, "{ev}");
    assert!(ev.get("hint").is_some(), "{ev}");
}

/// A storage verb on a board whose boot ROM leads to no storage stage is
/// bad usage, refused before any device (or virtual device) is touched.
#[test]
fn storage_verbs_refuse_boards_without_a_storage_stage() {
    let d = tempfile::tempdir().unwrap();
    let img = racklet_tests::file(d.path(), "os.img", &racklet_tests::pattern(4096, 3));
    for args in [
        vec!["write", "milkv-duo", img.to_str().unwrap(), "--simulate"],
        vec!["read", "milkv-duo", "--at", "0", "--size", "4K", "-o", "out.bin", "--simulate"],
        vec!["erase", "milkv-duo", "--whole", "--simulate"],
        vec!["reset", "milkv-duo", "--simulate"],
        vec!["partitions", "milkv-duo", "--simulate"],
    ] {
        let o = rf().args(&args).current_dir(d.path()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("`racklet-flash {}` is not available for milkv-duo", args[0])),
            "{err}"
        );
        assert!(!d.path().join("out.bin").exists(), "nothing is written on a refusal");
    }
    // Sizes take 0x…, K, M, G; anything else is a usage error.
    let o = rf().args(["read", "milkv-duo", "--at", "12Q", "--size", "4K", "-o", "x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a size or address"));
}
