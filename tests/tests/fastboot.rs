//! The command line's contracts on the fastboot boards (K1: bpi-f3,
//! musebook; TH1520: lichee-pi-4a): flags reaching the flow, summaries,
//! JSON, exit codes and hints, `info` and `image`; and Debian's `fastboot`
//! client against `racklet-flash sim --tcp`. The flow itself (wire bytes,
//! re-enumeration, every fault) is tested in-process in
//! `protocols/fastboot/tests/boot.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use racklet_tests::SimServer;

fn bin() -> Command {
    racklet_tests::racklet_flash()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn noise(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

/// A K1 FSBL.bin written out from the sheet's appendix offsets, independently
/// of the crate's builder: AIHD at 0x100 and 0xFE0, SPL at 0x1000, 256-byte
/// signature at the end.
fn fsbl(spl: &[u8]) -> Vec<u8> {
    let padded = spl.len().div_ceil(32) * 32;
    let mut b = vec![0u8; 0x1000 + padded + 0x100];
    for at in [0x100, 0xfe0] {
        b[at..at + 4].copy_from_slice(b"AIHD");
        b[at + 4] = 1;
        b[at + 24..at + 32].fill(0xa5);
    }
    b[0x108] = 0x00;
    b[0x109] = 0x10; // header0.imgsize = 0x1000, u64 LE
    b[0xfe8..0xff0].copy_from_slice(&(padded as u64).to_le_bytes());
    // keydata.rotpk_hash at 0x2B8: SHA-256 of the (zero) 256-byte ROTPK.
    let zero_rotpk_sha256: [u8; 32] = [
        0x53, 0x41, 0xe6, 0xb2, 0x64, 0x69, 0x79, 0xa7, 0x0e, 0x57, 0x65, 0x30, 0x07, 0xa1, 0xf3, 0x10, 0x16,
        0x94, 0x21, 0xec, 0x9b, 0xdd, 0x9f, 0x1a, 0x56, 0x48, 0xf7, 0x5a, 0xde, 0x00, 0x5a, 0xf1,
    ];
    b[0x2b8..0x2d8].copy_from_slice(&zero_rotpk_sha256);
    b[0x1000..0x1000 + spl.len()].copy_from_slice(spl);
    b
}

fn fit(n: usize) -> Vec<u8> {
    let mut b = noise(n, 3);
    b[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
    b
}

#[test]
fn k1_rom_fsbl_then_uboot_simulated() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "FSBL.bin", &fsbl(&noise(190_000, 1)));
    let itb = write(d.path(), "u-boot.itb", &fit(1_936_000));
    for board in ["bpi-f3", "musebook"] {
        bin()
            .args(["maskrom", board])
            .arg(&f)
            .arg("--then")
            .arg(&itb)
            .arg("--simulate")
            .assert()
            .success()
            .stderr(predicate::str::contains("version-brom 1.0"))
            .stderr(predicate::str::contains("rom started FSBL (194368 bytes"))
            .stderr(predicate::str::contains("fsbl started u-boot.itb (1936000 bytes"))
            .stderr(predicate::str::contains("u-boot: fastboot at USB 1-1"));
    }
}

/// `--then` twice: the vendor RAM-boot chain FSBL → u-boot-opensbi.itb →
/// uImage.itb; the virtual board's own verdict needs all three started.
#[test]
fn k1_then_twice_runs_the_vendor_ram_boot_chain() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "FSBL.bin", &fsbl(&noise(9000, 1)));
    let itb = write(d.path(), "u-boot-opensbi.itb", &fit(200_000));
    let kernel = write(d.path(), "uImage.itb", &fit(700_003));
    bin()
        .args(["maskrom", "bpi-f3", "--simulate"])
        .arg(&f)
        .arg("--then")
        .arg(&itb)
        .arg("--then")
        .arg(&kernel)
        .assert()
        .success()
        .stderr(predicate::str::contains("uboot started uImage.itb (700003 bytes"))
        .stderr(predicate::str::contains("u-boot image: uImage.itb (700003 bytes"));
    // A third is more than the K1 runs from USB: refused before anything is sent.
    bin()
        .args(["maskrom", "bpi-f3", "--simulate"])
        .arg(&f)
        .args([
            "--then",
            itb.to_str().unwrap(),
            "--then",
            kernel.to_str().unwrap(),
            "--then",
            kernel.to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("3 --then images"));
}

/// Review F5: a TH1520 image larger than the vendor SPL can hold is refused
/// with exit 2 before the ROM is touched; --force sends it.
#[test]
fn th1520_image_larger_than_the_vendor_spl_holds_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let img = write(d.path(), "u-boot-with-spl.bin", &noise(1_112_065, 5));
    bin()
        .args(["maskrom", "lichee-pi-4a", "--simulate"])
        .arg(&img)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("u-boot-with-spl.bin: 1112065 bytes is larger than the TH1520"))
        .stderr(predicate::str::contains("--force"));
    bin().args(["maskrom", "lichee-pi-4a", "--simulate", "--force"]).arg(&img).assert().success();
}

#[test]
fn k1_fsbl_alone_and_at_a_port_path() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "FSBL.bin", &fsbl(&noise(1000, 2)));
    bin()
        .args(["maskrom", "bpi-f3", "--simulate", "--port", "3-1.2", "--follow"])
        .arg(&f)
        .assert()
        .success()
        .stderr(predicate::str::contains("fsbl came back: USB 3-1.2"));
    // Issue 22: a payload that started is not a failure: without --follow
    // (or --then) the run ends once the ROM took the start, even when the
    // board never comes back.
    bin()
        .args(["maskrom", "bpi-f3", "--simulate", "--fault", "no-reenumerate"])
        .arg(&f)
        .assert()
        .success()
        .stderr(predicate::str::contains("next stage: not awaited: a payload other than vendor U-Boot does not come back (--follow waits for it)"));
    // Without waiting for the next stage.
    bin()
        .args(["maskrom", "bpi-f3", "--simulate", "--stage-timeout", "0"])
        .arg(&f)
        .assert()
        .success()
        .stderr(predicate::str::contains("not awaited"));
}

#[test]
fn th1520_ram_then_uboot_simulated_json() {
    let d = tempfile::tempdir().unwrap();
    let img = write(d.path(), "u-boot-with-spl.bin", &noise(1_030_952, 5));
    let out = bin()
        .args(["--json", "maskrom", "lichee-pi-4a", "--simulate", "--follow"])
        .arg(&img)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let done: serde_json::Value = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "done")
        .expect("a done event");
    assert_eq!(done["ok"], true);
    let facts = &done["facts"];
    assert!(racklet_tests::detail(&done, "u-boot").unwrap().contains("1234:8888"), "{done}");
    assert!(facts["virtual_rom"].as_str().unwrap().contains("started ram image (1030952 bytes"), "{facts}");
}

#[test]
fn bad_inputs_exit_2_before_any_device() {
    let d = tempfile::tempdir().unwrap();
    let raw = write(d.path(), "spl.bin", &noise(8192, 0));
    let f = write(d.path(), "FSBL.bin", &fsbl(&noise(100, 1)));
    let big = write(d.path(), "big.bin", &fsbl(&noise(0x40000, 1)));
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (vec!["bpi-f3".as_ref(), raw.as_os_str()], "AIHD"),
        (vec!["bpi-f3".as_ref(), f.as_os_str(), "--then".as_ref(), raw.as_os_str()], "not a FIT"),
        (vec!["bpi-f3".as_ref(), big.as_os_str()], ""),
        (vec!["bpi-f3".as_ref()], "FSBL.bin"),
        (vec!["lichee-pi-4a".as_ref(), raw.as_os_str(), "--then".as_ref(), raw.as_os_str()], "--then"),
        (vec!["lichee-pi-4a".as_ref(), raw.as_os_str(), "--dram".as_ref(), raw.as_os_str()], "--dram"),
        (vec!["lichee-pi-4a".as_ref(), raw.as_os_str(), "--fault".as_ref(), "nope".as_ref()], "silent"),
    ];
    for (args, needle) in cases {
        bin()
            .arg("maskrom")
            .args(&args)
            .arg("--simulate")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
}

#[test]
fn a_stage_that_never_comes_back_is_a_timeout_with_a_hint() {
    let d = tempfile::tempdir().unwrap();
    let img = write(d.path(), "hello.bin", &noise(7000, 5));
    // Our hello started from the TH1520 ROM: not vendor U-Boot, nothing comes back: exit 0.
    bin()
        .args(["maskrom", "lichee-pi-4a", "--simulate", "--fault", "no-reenumerate"])
        .arg(&img)
        .assert()
        .success()
        .stderr(predicate::str::contains("written to ram and started"));
    // Asked to follow it: the wait runs out, exit 6.
    let args = [
        "maskrom",
        "lichee-pi-4a",
        "--simulate",
        "--follow",
        "--stage-timeout",
        "300ms",
        "--fault",
        "no-reenumerate",
    ];
    bin()
        .args(args)
        .arg(&img)
        .assert()
        .code(6)
        .stderr(predicate::str::contains(
            "error: the image was started, but the board did not come back on USB: waiting for vendor U-Boot fastboot (1234:8888) at USB port 1-1 timed out after 300ms",
        ))
        .stderr(predicate::str::contains("hint: a payload other than vendor U-Boot never comes back"))
        .stderr(predicate::str::contains("done:").not());
    let out = bin().arg("--json").args(args).arg(&img).assert().code(6).get_output().stdout.clone();
    let err: serde_json::Value = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "error")
        .expect("an error event");
    assert_eq!(err["class"], "timeout");
    assert!(err["hint"].as_str().unwrap().contains("leave out --follow"), "{err}");
}

#[test]
fn info_decodes_fsbl_and_refuses_a_damaged_one() {
    let d = tempfile::tempdir().unwrap();
    let mut hash_lies = fsbl(&noise(100, 1));
    hash_lies[0x2b8] ^= 1; // keydata.rotpk_hash no longer SHA-256 of the ROTPK.
    let f = write(d.path(), "FSBL.bin", &hash_lies);
    bin()
        .arg("info")
        .arg(&f)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("K1 FSBL.bin"))
        .stdout(predicate::str::contains("imgsize 0x80"))
        .stdout(predicate::str::is_match("check ROTPK SHA-256 +FAILED").unwrap());
    let mut broken = fsbl(&noise(100, 1));
    broken[0xfe0] = b'x';
    let b = write(d.path(), "broken.bin", &broken);
    bin().arg("info").arg(&b).assert().code(2).stdout(predicate::str::contains("damaged"));
}

#[test]
fn image_wraps_an_spl_that_info_and_maskrom_accept() {
    let d = tempfile::tempdir().unwrap();
    let spl = write(d.path(), "u-boot-spl.bin", &noise(60_000, 9));
    let out = d.path().join("FSBL.bin");
    bin().args(["image", "bpi-f3"]).arg(&spl).arg("-o").arg(&out).assert().success();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[0x100..0x104], b"AIHD");
    assert_eq!(&bytes[0xfe0..0xfe4], b"AIHD");
    assert_eq!(&bytes[0x1000..0x1000 + 60_000], noise(60_000, 9).as_slice());
    assert_eq!(bytes.len(), 0x1000 + 60_000 + 0x100); // 60000 is a multiple of 32
    bin().arg("info").arg(&out).assert().success().stdout(predicate::str::contains("fits bpi-f3, musebook"));
    bin().args(["maskrom", "bpi-f3", "--simulate"]).arg(&out).assert().success();
    bin()
        .args(["image", "lichee-pi-4a"])
        .arg(&spl)
        .arg("-o")
        .arg(d.path().join("x"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("as it is"));
}

/// Debian's client, always under `timeout`: it reconnects forever when the
/// handshake fails.
fn fastboot(addr: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("timeout")
        .args(["20", "fastboot", "-s", addr])
        .args(args)
        .output()
        .expect("run timeout fastboot (Debian package fastboot)")
}

/// The real-peer tests never skip: a missing client fails them with the
/// package to install (scripts/test.sh installs it).
fn have_fastboot() -> bool {
    let ok =
        std::process::Command::new("fastboot").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "Debian's fastboot client is missing: apt-get install fastboot");
    ok
}

#[test]
#[ignore = "real-peer tier (needs Debian's fastboot): scripts/test.sh runs it"]
fn debian_fastboot_against_the_th1520_tcp_device() {
    if !have_fastboot() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let save = d.path().join("save");
    let file = write(d.path(), "u-boot-with-spl.bin", &noise(1_030_952, 77));
    let sim = SimServer::start("lichee-pi-4a", &["--keep", "--save", save.to_str().unwrap()]);
    let steps: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec!["getvar".as_ref(), "version".as_ref()],
        vec!["stage".as_ref(), file.as_os_str()],
        vec!["flash".as_ref(), "ram".as_ref(), file.as_os_str()],
        vec!["continue".as_ref()],
        vec!["reboot".as_ref()],
    ];
    for s in &steps {
        let o = fastboot(&sim.addr, s);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "fastboot {s:?}: {err}");
        assert!(err.contains("OKAY") || err.contains("version: 0.4"), "fastboot {s:?}: {err}");
    }
    let want = std::fs::read(&file).unwrap();
    // stage and flash each downloaded the file once.
    assert_eq!(std::fs::read(save.join("00-rom.bin")).unwrap(), want);
    assert_eq!(std::fs::read(save.join("01-rom.bin")).unwrap(), want);
    assert!(!save.join("02-rom.bin").exists());
}

#[test]
#[ignore = "real-peer tier (needs Debian's fastboot): scripts/test.sh runs it"]
fn debian_fastboot_against_the_k1_tcp_device() {
    if !have_fastboot() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let save = d.path().join("save");
    let f = write(d.path(), "FSBL.bin", &fsbl(&noise(197_000, 1)));
    let itb = write(d.path(), "u-boot.itb", &fit(500_000));
    let sim = SimServer::start("bpi-f3", &["--keep", "--save", save.to_str().unwrap()]);
    // version-brom's answer is "1.0", a NUL and garbage: the stock client copes.
    let o = fastboot(&sim.addr, &["getvar".as_ref(), "version-brom".as_ref()]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("version-brom: 1.0"));
    for s in [
        vec!["stage".as_ref(), f.as_os_str()],
        vec!["continue".as_ref()],
        vec!["stage".as_ref(), itb.as_os_str()],
        vec!["continue".as_ref()],
    ] {
        let o = fastboot(&sim.addr, &s);
        assert!(o.status.success(), "fastboot {s:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(save.join("00-rom.bin")).unwrap(), std::fs::read(&f).unwrap());
    assert_eq!(std::fs::read(save.join("01-fsbl.bin")).unwrap(), std::fs::read(&itb).unwrap());
}

#[test]
fn sim_refuses_an_unknown_fault() {
    bin()
        .args(["sim", "bpi-f3", "--tcp", "127.0.0.1:0", "--fault", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown fault 'nope'"))
        .stderr(predicate::str::contains("no-reenumerate"));
}

#[test]
fn sim_without_keep_ends_after_one_session() {
    if !have_fastboot() {
        return;
    }
    let sim = SimServer::start("lichee-pi-4a", &[]);
    let o = fastboot(&sim.addr, &["getvar".as_ref(), "version".as_ref()]);
    assert!(o.status.success());
    let (ok, _) = sim.ended(Duration::from_secs(10));
    assert!(ok, "the sim did not exit cleanly after one session");
}

/// The bytes of `path` from `at`, `len` of them.
fn region(path: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    b
}

/// `write` on a TH1520 board already in vendor U-Boot: each partition lands
/// where the virtual eMMC's GPT puts it (boot at 2 MiB, root after its
/// 500 MiB: the Lichee Pi 4A's vendor layout); the root goes as sparse
/// pieces within --sparse-limit; an unknown partition is exit 2 before
/// anything is written.
#[test]
fn th1520_write_partitions_to_the_virtual_emmc() {
    let d = tempfile::tempdir().unwrap();
    let boot = noise(300_001, 1);
    let root = noise(2_600_000, 2);
    let (b, r) = (write(d.path(), "boot.ext4", &boot), write(d.path(), "root.ext4", &root));
    let emmc = d.path().join("emmc.img");
    let out = bin()
        .args(["--json", "write", "lichee-pi-4a", "--simulate", "--sparse-limit", "1M", "--sim-storage"])
        .arg(&emmc)
        .arg("--partition")
        .arg(format!("boot={}", b.display()))
        .arg("--partition")
        .arg(format!("root={}", r.display()))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("written as 3 sparse images"), "{text}");
    assert_eq!(region(&emmc, 2 << 20, boot.len()), boot);
    assert_eq!(region(&emmc, (2 << 20) + (500 << 20), root.len()), root);
    // erase: the partition reads as erased eMMC; the other one is untouched.
    bin()
        .args(["erase", "lichee-pi-4a", "--simulate", "--partition", "boot", "--sim-storage"])
        .arg(&emmc)
        .assert()
        .success();
    assert!(region(&emmc, 2 << 20, boot.len()).iter().all(|&b| b == 0));
    assert_eq!(region(&emmc, (2 << 20) + (500 << 20), root.len()), root);
    bin()
        .args(["write", "lichee-pi-4a", "--simulate", "--partition"])
        .arg(format!("rootfs={}", r.display()))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("partition 'rootfs': the device has no such partition"));
    // A damaged sparse image: exit 2, the file named, before the device is touched.
    let mut s = std::fs::read(&r).unwrap();
    s[..4].copy_from_slice(&0xed26ff3au32.to_le_bytes());
    let bad = write(d.path(), "bad.simg", &s);
    bin()
        .args(["write", "lichee-pi-4a", "--simulate", "--partition"])
        .arg(format!("root={}", bad.display()))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.simg: a damaged Android sparse image"));
}

/// Debian's fastboot (`flash`, `-S`) and racklet-flash write the same
/// images to the same virtual U-Boot: the eMMCs they leave are the same.
#[test]
#[ignore = "real-peer tier (needs Debian's fastboot): scripts/test.sh runs it"]
fn debian_fastboot_and_racklet_flash_leave_the_same_emmc() {
    if !have_fastboot() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let boot = noise(300_001, 11);
    // A whole number of 4 KiB blocks, as filesystem images are: Debian's
    // fastboot 29.0.6 re-sparses a raw image of any other length into
    // pieces whose DONT_CARE runs are not whole blocks ("don't care size
    // 1955523 is not a multiple of the block size 4096"), which U-Boot's
    // write_sparse_image refuses ("sparse image write failure"); racklet
    // pads the last block instead.
    let root = noise(733 * 4096, 12);
    let (b, r) = (write(d.path(), "boot.ext4", &boot), write(d.path(), "root.ext4", &root));
    let ours = d.path().join("ours.img");
    let theirs = d.path().join("theirs.img");
    bin()
        .args(["write", "lichee-pi-4a", "--simulate", "--no-reboot", "--sparse-limit", "1M", "--sim-storage"])
        .arg(&ours)
        .arg("--partition")
        .arg(format!("boot={}", b.display()))
        .arg("--partition")
        .arg(format!("root={}", r.display()))
        .assert()
        .success();
    let sim = SimServer::start(
        "lichee-pi-4a",
        &["--keep", "--in-uboot", "--sim-storage", theirs.to_str().unwrap()],
    );
    for (part, file) in [("boot", &b), ("root", &r)] {
        let o = fastboot(
            &sim.addr,
            &["-S".as_ref(), "1M".as_ref(), "flash".as_ref(), part.as_ref(), file.as_os_str()],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "fastboot flash {part}: {err}");
        if part == "root" {
            assert!(err.contains("sparse"), "Debian's fastboot resparsed the root: {err}");
        }
    }
    drop(sim);
    // Every byte of the two partitions and the GPT in front of them.
    let end = (2u64 << 20) + (500 << 20) + root.len() as u64 + 4096;
    let (mut at, step) = (0u64, 16usize << 20);
    while at < end {
        let n = step.min((end - at) as usize);
        assert!(region(&ours, at, n) == region(&theirs, at, n), "the eMMCs differ in the 16 MiB at 0x{at:x}");
        at += n as u64;
    }
}

/// SpacemiT's `partition_universal.json` as the Bianbu images ship it
/// (spacemit-com/buildroot-ext board/spacemit/k1, with the release's
/// bootfs.ext4 name).
const K1_TABLE: &str = r#"{
    "version": "1.0",
    "format": "gpt",
    "partitions": [
        {"name": "bootinfo", "hidden": true, "offset": "0K", "size": "512", "image": "factory/bootinfo_sd.bin"},
        {"name": "fsbl", "hidden": false, "offset": "256K", "size": "256K", "image": "factory/FSBL.bin"},
        {"name": "env", "offset": "512K", "size": "128K", "image": "env.bin"},
        {"name": "opensbi", "size": "384K", "image": "fw_dynamic.itb"},
        {"name": "uboot", "size": "2M", "image": "u-boot.itb"},
        {"name": "bootfs", "offset": "4M", "size": "256M", "image": "bootfs.ext4"},
        {"name": "rootfs", "offset": "260M", "size": "-", "image": "rootfs.ext4"}
    ]
}"#;

/// A SpacemiT NOR table (partition_2M.json), which an eMMC board must not pick.
const K1_NOR_TABLE: &str = r#"{"version": "1.0", "format": "mtd", "partitions": [
    {"name": "bootinfo", "offset": "0", "size": "64K", "image": "factory/bootinfo_spinor.bin"},
    {"name": "fsbl", "offset": "64K", "size": "256K", "image": "factory/FSBL.bin"},
    {"name": "uboot", "offset": "1M", "size": "1M", "image": "u-boot.itb"}]}"#;

/// A tiny Bianbu bundle: (name in the table, file, contents), the table.
fn k1_bundle(dir: &Path) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    std::fs::create_dir_all(dir.join("factory")).unwrap();
    let parts = vec![
        ("bootinfo", "factory/bootinfo_sd.bin", noise(80, 40)),
        ("fsbl", "factory/FSBL.bin", fsbl(&noise(97_000, 41))),
        ("env", "env.bin", noise(65_536, 42)),
        ("opensbi", "fw_dynamic.itb", noise(120_000, 43)),
        ("uboot", "u-boot.itb", fit(700_000)),
        ("bootfs", "bootfs.ext4", noise(300 * 4096, 44)),
        ("rootfs", "rootfs.ext4", noise(733 * 4096, 45)),
    ];
    for (_, f, b) in &parts {
        write(dir, f, b);
    }
    write(dir, "factory/bootinfo_spinor.bin", &noise(80, 46));
    write(dir, "partition_universal.json", K1_TABLE.as_bytes());
    write(dir, "partition_2M.json", K1_NOR_TABLE.as_bytes());
    parts
}

/// Where each K1 partition starts on the eMMC, in bytes, by U-Boot's `gpt
/// write` of the table above (an entry without offset follows the one
/// before): fsbl 256K, env 512K, opensbi 640K, uboot 1M, bootfs 4M, rootfs 260M.
const K1_STARTS: &[(&str, u64)] = &[
    ("fsbl", 256 << 10),
    ("env", 512 << 10),
    ("opensbi", 640 << 10),
    ("uboot", 1 << 20),
    ("bootfs", 4 << 20),
    ("rootfs", 260 << 20),
];

/// The GPT's partition names, in entry order, read as the UEFI layout has
/// them (entries at LBA 2, 128 bytes each, UTF-16LE names at byte 56).
fn gpt_names(emmc: &Path) -> Vec<(String, u64)> {
    assert_eq!(&region(emmc, 512, 8), b"EFI PART", "no GPT header at LBA 1");
    let entries = region(emmc, 1024, 128 * 128);
    entries
        .chunks(128)
        .filter(|e| e[..16].iter().any(|&b| b != 0))
        .map(|e| {
            let units: Vec<u16> =
                e[56..].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
            (String::from_utf16_lossy(&units), u64::from_le_bytes(e[32..40].try_into().unwrap()) * 512)
        })
        .collect()
}

/// `write bpi-f3 --bundle DIR`: the ROM stages from the bundle, the GPT
/// from its partition_universal.json (the device reports a block device),
/// then every partition's image where that GPT puts it.
#[test]
fn k1_bundle_flashes_the_gpt_and_every_partition() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bianbu");
    let parts = k1_bundle(&dir);
    let emmc = d.path().join("emmc.img");
    let out = bin()
        .args(["--json", "write", "bpi-f3", "--simulate", "--sparse-limit", "1M", "--bundle"])
        .arg(&dir)
        .arg("--sim-storage")
        .arg(&emmc)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("partition_universal.json (the device reports blk-size universal"), "{text}");
    assert!(text.contains("rootfs.ext4 (3002368 bytes) written as 3 sparse images"), "{text}");
    let want: Vec<(String, u64)> = K1_STARTS.iter().map(|(n, a)| (n.to_string(), *a)).collect();
    assert_eq!(gpt_names(&emmc), want, "the GPT is the table's, bootinfo left out");
    for (name, _, bytes) in &parts {
        if let Some((_, at)) = K1_STARTS.iter().find(|(n, _)| n == name) {
            assert!(region(&emmc, *at, bytes.len()) == *bytes, "partition {name} differs");
        }
    }
}

/// A bundle with a part missing, a damaged table, or an image larger than
/// its table's partition: exit 2, the file and the problem named, and
/// nothing flashed.
#[test]
fn k1_bundle_bad_inputs_exit_2_before_the_first_flash() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("b");
    k1_bundle(&dir);
    std::fs::remove_file(dir.join("rootfs.ext4")).unwrap();
    bin()
        .args(["write", "bpi-f3", "--simulate", "--bundle"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("rootfs.ext4: missing from the bundle"))
        .stderr(predicate::str::contains("partition 'rootfs' in partition_universal.json"));
    write(&dir, "rootfs.ext4", b"r");
    write(&dir, "partition_universal.json", &K1_TABLE.as_bytes()[..40]);
    bin()
        .args(["write", "bpi-f3", "--simulate", "--bundle"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("partition_universal.json: not valid JSON"));
    write(&dir, "partition_universal.json", K1_TABLE.as_bytes());
    write(&dir, "env.bin", &noise(128 * 1024 + 1, 1));
    let emmc = d.path().join("emmc.img");
    bin()
        .args(["write", "bpi-f3", "--simulate", "--bundle"])
        .arg(&dir)
        .arg("--sim-storage")
        .arg(&emmc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "env.bin: expands to 131073 bytes, but partition 'env' holds 131072",
        ));
    assert!(region(&emmc, 256 << 10, 4096).iter().all(|&b| b == 0), "nothing was flashed");
    bin()
        .args(["write", "bpi-f3", "--simulate", "--bundle"])
        .arg(&dir)
        .args(["--partition", "x=y"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("leave out --partition"));
    bin()
        .args(["erase", "bpi-f3", "--simulate", "--partition", "env", "--bundle"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--bundle is for `write`"));
}

/// `write lichee-pi-4a --bundle DIR` with the RevyOS image set: flash:ram +
/// reboot with its U-Boot, then uboot, boot and root.
#[test]
fn th1520_revyos_bundle_flashes_boot_and_root() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("revyos");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "u-boot-with-spl-lpi4a.bin", &noise(1_030_952, 50));
    let boot = noise(300 * 4096, 51);
    let root = noise(500 * 4096, 52);
    write(&dir, "boot-lpi4a-20240720.ext4", &boot);
    write(&dir, "root-lpi4a-20240720.ext4", &root);
    let emmc = d.path().join("emmc.img");
    let out = bin()
        .args(["write", "lichee-pi-4a", "--simulate", "--bundle"])
        .arg(&dir)
        .arg("--sim-storage")
        .arg(&emmc)
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("partition uboot"), "{text}");
    // The virtual board's own account: the ROM ran the U-Boot, which wrote all three.
    assert!(text.contains("vendor U-Boot wrote uboot, boot, root"), "{text}");
    assert_eq!(region(&emmc, 2 << 20, boot.len()), boot);
    assert_eq!(region(&emmc, (2 << 20) + (500 << 20), root.len()), root);
}

/// Debian's fastboot replays the vendor recipe (stage FSBL, continue, stage
/// u-boot.itb, continue, flash gpt partition_universal.json, then each
/// partition) against the virtual K1; the eMMC it leaves equals what
/// `write --bundle` leaves.
#[test]
#[ignore = "real-peer tier (needs Debian's fastboot): scripts/test.sh runs it"]
fn debian_fastboot_and_write_bundle_leave_the_same_k1_emmc() {
    if !have_fastboot() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bianbu");
    let parts = k1_bundle(&dir);
    let ours = d.path().join("ours.img");
    let theirs = d.path().join("theirs.img");
    bin()
        .args(["write", "bpi-f3", "--simulate", "--no-reboot", "--sparse-limit", "1M", "--bundle"])
        .arg(&dir)
        .arg("--sim-storage")
        .arg(&ours)
        .assert()
        .success();
    let sim = SimServer::start("bpi-f3", &["--keep", "--sim-storage", theirs.to_str().unwrap()]);
    let f = |p: &str| dir.join(p).into_os_string();
    let mut steps: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["stage".into(), f("factory/FSBL.bin")],
        vec!["continue".into()],
        vec!["stage".into(), f("u-boot.itb")],
        vec!["continue".into()],
        vec!["flash".into(), "gpt".into(), f("partition_universal.json")],
    ];
    for (name, file, _) in &parts {
        steps.push(vec!["-S".into(), "1M".into(), "flash".into(), name.into(), f(file)]);
    }
    for s in &steps {
        let args: Vec<&std::ffi::OsStr> = s.iter().map(|a| a.as_os_str()).collect();
        let o = fastboot(&sim.addr, &args);
        assert!(o.status.success(), "fastboot {s:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    drop(sim);
    let end = (260u64 << 20) + 733 * 4096 + 4096;
    let (mut at, step) = (0u64, 16usize << 20);
    while at < end {
        let n = step.min((end - at) as usize);
        assert!(region(&ours, at, n) == region(&theirs, at, n), "the eMMCs differ in the 16 MiB at 0x{at:x}");
        at += n as u64;
    }
}

/// The JSON `done` event's details as (key, value).
fn details(stdout: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(stdout);
    let done: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "done")
        .unwrap_or_else(|| panic!("no done event in {text}"));
    done["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["key"].as_str().unwrap().to_string(), d["value"].as_str().unwrap().to_string()))
        .collect()
}

fn detail<'a>(d: &'a [(String, String)], key: &str) -> &'a str {
    d.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key} in {d:?}"))
}

/// `partitions` on a fastboot board: vendor U-Boot refuses `getvar all`,
/// so the variables are asked one by one and the vendor layout's
/// partitions looked up by name (TH1520: boot is 500 MiB in the Lichee Pi
/// 4A's `partitions`); after `write --bundle`, the K1's are the table's.
#[test]
fn partitions_ask_vendor_uboot_its_variables_and_partitions() {
    let out = bin().args(["--json", "partitions", "lichee-pi-4a", "--simulate"]).assert().success();
    let d = details(&out.get_output().stdout);
    assert_eq!(detail(&d, "variables from"), "each variable in turn (the device refuses getvar all)");
    assert_eq!(detail(&d, "variable product"), "light-lpi4a");
    assert_eq!(detail(&d, "partition boot"), "524288000 bytes, raw");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("bianbu");
    k1_bundle(&dir);
    let emmc = t.path().join("emmc.img");
    bin()
        .args(["write", "bpi-f3", "--simulate", "--bundle"])
        .arg(&dir)
        .arg("--sim-storage")
        .arg(&emmc)
        .assert()
        .success();
    let out = bin()
        .args([
            "--json",
            "partitions",
            "bpi-f3",
            "--simulate",
            "--partition",
            "bootfs",
            "--partition",
            "nope",
            "--sim-storage",
        ])
        .arg(&emmc)
        .assert()
        .success();
    let d = details(&out.get_output().stdout);
    assert_eq!(detail(&d, "variable blk-size"), "universal");
    assert_eq!(detail(&d, "partition bootfs"), format!("{} bytes, raw", 256u64 << 20));
    assert_eq!(detail(&d, "not found"), "nope");
    bin()
        .args(["partitions", "bpi-f3", "--simulate", "--partition", "a=b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("takes only --partition NAME"));
}

/// `oem`: the device's OKAY, or its FAIL text with the refusal exit code
/// (7); a command longer than fastboot's 64 bytes is bad input (2).
#[test]
fn oem_passes_the_command_through_and_keeps_the_refusal() {
    let out = bin().args(["oem", "lichee-pi-4a", "--simulate", "format"]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("command: oem format"));
    bin()
        .args(["oem", "bpi-f3", "--simulate", "hello", "world"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains("the device refused \"oem hello world\": unrecognized command"));
    bin()
        .args(["oem", "bpi-f3", "--simulate", &"x".repeat(70)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("at most 64 bytes"));
    bin().args(["oem", "bpi-f3", "--simulate"]).assert().code(2);
}

/// Debian's fastboot sees the same vendor U-Boot answers: `getvar all`
/// refused, an unknown `oem` refused with the same text racklet-flash shows.
#[test]
#[ignore = "real-peer tier (needs Debian's fastboot): scripts/test.sh runs it"]
fn debian_fastboot_sees_the_same_getvar_all_and_oem_answers() {
    if !have_fastboot() {
        return;
    }
    let sim = SimServer::start("bpi-f3", &["--keep", "--in-uboot"]);
    let o = fastboot(&sim.addr, &["getvar".as_ref(), "all".as_ref()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Variable not implemented"), "{err}");
    let o = fastboot(&sim.addr, &["oem".as_ref(), "hello".as_ref(), "world".as_ref()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("unrecognized command"), "{err}");
    let o = fastboot(&sim.addr, &["getvar".as_ref(), "blk-size".as_ref()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("blk-size: universal"));
}
