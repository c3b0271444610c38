//! `--port tcp:HOST:PORT` on the fastboot boards: racklet-flash talks to a
//! fastboot device over AOSP's TCP transport, here `racklet-flash sim
//! <board> --tcp` (the virtual board of crates/sim, which closes the
//! connection when the board leaves to run an image and answers its next
//! stage on a new one at the same address). What the virtual board received
//! is read back from `sim --save` / `--sim-storage`, never from the client.
//! Also: the option is refused on boards without a TCP transport, and the
//! sim's own hint works.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A K1 FSBL.bin from the fact sheet's offsets (the shared test-side
/// builder, independent of the crate's).
fn fsbl(spl: &[u8]) -> Vec<u8> {
    racklet_tests::k1_fsbl(spl)
}

/// A FIT: the FDT magic in front.
fn fit(n: usize, seed: u8) -> Vec<u8> {
    let mut b = noise(n, seed);
    b[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
    b
}

#[test]
fn th1520_ram_boot_over_tcp_against_the_sim() {
    let d = tempfile::tempdir().unwrap();
    let save = d.path().join("save");
    let image = noise(1_030_952, 5);
    let file = write(d.path(), "u-boot-with-spl.bin", &image);
    let sim = SimServer::start_logged("lichee-pi-4a", &["--save", save.to_str().unwrap()]);
    bin()
        .args(["maskrom", "lichee-pi-4a"])
        .arg(&file)
        .args(["--port", &sim.addr])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("TH1520 at {}", sim.addr)))
        .stderr(predicate::str::contains("written to ram and started"));
    // The virtual ROM's own record: what it received, and that it started it.
    assert_eq!(std::fs::read(save.join("00-rom.bin")).unwrap(), image);
    // Without --keep the server goes on serving the board's run: vendor
    // U-Boot now answers at the same address.
    let log = sim.log();
    assert!(log.contains("[rom] started ram image (1030952 bytes)"), "{log}");
}

#[test]
fn k1_then_follows_the_board_over_tcp_stage_by_stage() {
    let d = tempfile::tempdir().unwrap();
    let save = d.path().join("save");
    let (f, itb, uimage) = (fsbl(&noise(100_000, 1)), fit(300_000, 2), fit(200_000, 3));
    let (ff, fi, fu) = (
        write(d.path(), "FSBL.bin", &f),
        write(d.path(), "u-boot.itb", &itb),
        write(d.path(), "uImage.itb", &uimage),
    );
    // No --keep: one run of the board, over one connection per stage.
    let sim = SimServer::start_logged("bpi-f3", &["--save", save.to_str().unwrap()]);
    bin()
        .args(["maskrom", "bpi-f3"])
        .arg(&ff)
        .arg("--then")
        .arg(&fi)
        .arg("--then")
        .arg(&fu)
        .args(["--port", &sim.addr, "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("K1 at {}, version-brom 1.0", sim.addr)))
        .stdout(predicate::str::contains(format!("fastboot at {}", sim.addr)));
    assert_eq!(std::fs::read(save.join("00-rom.bin")).unwrap(), f);
    assert_eq!(std::fs::read(save.join("01-fsbl.bin")).unwrap(), itb);
    assert_eq!(std::fs::read(save.join("02-uboot.bin")).unwrap(), uimage);
    let (ok, log) = sim.ended(Duration::from_secs(10));
    assert!(ok, "{log}");
    for s in ["[rom] started FSBL", "[fsbl] started u-boot.itb", "[uboot] started"] {
        assert!(log.contains(s), "{s:?} not in the sim's log:\n{log}");
    }
}

#[test]
fn a_next_stage_that_never_answers_over_tcp_is_a_timeout() {
    let d = tempfile::tempdir().unwrap();
    let ff = write(d.path(), "FSBL.bin", &fsbl(&noise(10_000, 1)));
    let itb = write(d.path(), "u-boot.itb", &fit(1000, 2));
    let sim = SimServer::start_logged("bpi-f3", &["--fault", "no-reenumerate"]);
    bin()
        .args(["maskrom", "bpi-f3"])
        .arg(&ff)
        .arg("--then")
        .arg(&itb)
        .args(["--port", &sim.addr, "--stage-timeout", "1s"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("the FSBL was started, but the board did not come back over TCP"))
        .stderr(predicate::str::contains(&sim.addr));
}

#[test]
fn nothing_listening_is_not_found_and_wait_waits() {
    // A port nothing listens on (bound, then closed).
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let d = tempfile::tempdir().unwrap();
    let file = write(d.path(), "u-boot-with-spl.bin", &noise(4096, 9));
    let t = Instant::now();
    bin()
        .args(["maskrom", "lichee-pi-4a"])
        .arg(&file)
        .args(["--port", &format!("tcp:{addr}"), "--wait", "1s"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!("tcp:{addr}")));
    assert!(t.elapsed() >= Duration::from_secs(1), "--wait 1s was not waited");
}

#[test]
fn write_and_erase_over_tcp_to_vendor_uboot() {
    let d = tempfile::tempdir().unwrap();
    let emmc = d.path().join("emmc.img");
    let boot = noise(300_001, 11);
    let b = write(d.path(), "boot.ext4", &boot);
    let sim = SimServer::start_logged(
        "lichee-pi-4a",
        &["--in-uboot", "--keep", "--sim-storage", emmc.to_str().unwrap()],
    );
    bin()
        .args(["write", "lichee-pi-4a", "--no-reboot", "--port", &sim.addr, "--partition"])
        .arg(format!("boot={}", b.display()))
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("fastboot at {}", sim.addr)));
    bin().args(["erase", "lichee-pi-4a", "--port", &sim.addr, "--partition", "table"]).assert().success();
    let log = sim.log();
    assert!(log.contains("[uboot] flash:boot") && log.contains("[uboot] erase:table"), "{log}");
    // The virtual U-Boot's eMMC: the vendor layout puts boot at 2 MiB
    // (crates/sim/src/uboot_storage.rs, from the vendor partition table).
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(&emmc).unwrap();
    f.seek(SeekFrom::Start(2 << 20)).unwrap();
    let mut got = vec![0u8; boot.len()];
    f.read_exact(&mut got).unwrap();
    assert!(got == boot, "the boot partition does not hold the file");
}

#[test]
fn k1_write_with_loader_brings_the_board_up_over_tcp() {
    let d = tempfile::tempdir().unwrap();
    let save = d.path().join("save");
    let (ff, fi) = (
        write(d.path(), "FSBL.bin", &fsbl(&noise(50_000, 4))),
        write(d.path(), "u-boot.itb", &fit(90_000, 5)),
    );
    let env = write(d.path(), "env.bin", &noise(8192, 6));
    let sim = SimServer::start_logged("bpi-f3", &["--save", save.to_str().unwrap()]);
    bin()
        .args(["write", "bpi-f3", "--port", &sim.addr, "--loader"])
        .arg(&ff)
        .arg("--then")
        .arg(&fi)
        .arg("--partition")
        .arg(format!("env={}", env.display()))
        .assert()
        .success();
    let (ok, log) = sim.ended(Duration::from_secs(10));
    assert!(ok, "{log}");
    assert!(log.contains("[uboot] flash:env"), "{log}");
    assert_eq!(std::fs::read(save.join("02-uboot.bin")).unwrap(), std::fs::read(&env).unwrap());
}

#[test]
fn tcp_is_refused_on_boards_without_a_tcp_transport() {
    let d = tempfile::tempdir().unwrap();
    let file = write(d.path(), "x.bin", &noise(4096, 1));
    for board in ["rock-3a", "canmv-k230", "visionfive2", "milkv-duo"] {
        bin()
            .args(["maskrom", board])
            .arg(&file)
            .args(["--port", "tcp:127.0.0.1:5599"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--port tcp:127.0.0.1:5599"))
            .stderr(predicate::str::contains("lichee-pi-4a"))
            .stderr(predicate::str::contains("bpi-f3"));
    }
    // --simulate brings its own device.
    bin()
        .args(["maskrom", "lichee-pi-4a"])
        .arg(&file)
        .args(["--simulate", "--port", "tcp:127.0.0.1:5599"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--simulate"));
    // A transcript records USB and serial transfers only.
    bin()
        .args(["maskrom", "lichee-pi-4a"])
        .arg(&file)
        .args(["--port", "tcp:127.0.0.1:5599", "--record"])
        .arg(d.path().join("t.jsonl"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--record"));
    assert!(!d.path().join("t.jsonl").exists(), "nothing is written when the run is refused");
    // A malformed one names the form.
    bin()
        .args(["maskrom", "lichee-pi-4a"])
        .arg(&file)
        .args(["--port", "tcp:127.0.0.1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tcp:HOST:PORT"));
}

/// The sim's own hint is a command that works: run it as printed.
#[test]
#[ignore = "real-peer tier (needs Debian's fastboot): scripts/test.sh runs it"]
fn the_sims_hint_works_with_debian_fastboot() {
    let ok =
        std::process::Command::new("fastboot").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "Debian's fastboot client is missing: apt-get install fastboot");
    for board in ["lichee-pi-4a", "bpi-f3"] {
        let sim = SimServer::start_logged(board, &["--keep"]);
        let cmd =
            sim.hint.split('`').nth(1).unwrap_or_else(|| panic!("no command in {:?}", sim.hint)).to_string();
        assert!(cmd.starts_with("fastboot -s tcp:"), "{board}: the hint is {:?}", sim.hint);
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let o = std::process::Command::new("timeout").arg("20").args(&words).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{board}: `{cmd}`: {err}");
        assert!(!err.contains("FAILED"), "{board}: `{cmd}`: {err}");
        // --keep: the hint did not use up the server.
        let o = std::process::Command::new("timeout").arg("20").args(&words).output().unwrap();
        assert!(o.status.success(), "{board}: `{cmd}` a second time: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Without --keep the hint names the one run the server is for.
#[test]
fn the_sims_hint_without_keep_is_a_run_of_racklet_flash() {
    let sim = SimServer::start_logged("lichee-pi-4a", &[]);
    assert!(sim.hint.contains(&format!("--port {}", sim.addr)), "{:?}", sim.hint);
    assert!(sim.hint.contains("--keep"), "{:?}", sim.hint);
}
