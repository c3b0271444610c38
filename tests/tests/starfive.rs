//! End-to-end contracts of `racklet-flash` for the StarFive JH7110 boards:
//! `image` and `info` (files written, exit codes, messages), the `maskrom`
//! flags reaching the flow, JSON events, hints, and `sim` serving the ROM to
//! a second process. The flow itself (wire bytes, faults, the SPL stage) is
//! tested in-process in protocols/starfive/tests. Expected header bytes are
//! built here from the sheet's rules (shared/protocols/starfive.md §2.1)
//! with the sim's reference CRC-32.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Proc, Stdio};

use assert_cmd::Command;
use racklet_sim::crc::crc32_iso_hdlc as crc32;
use racklet_tests::{elf64, file, pattern};

/// A stand-in for U-Boot SPL with YMODEM support: a payload carrying the
/// banner of u-boot common/spl/spl.c (`"\nU-Boot SPL " PLAIN_VERSION ...`)
/// and the report of common/spl/spl_ymodem.c (`"Loaded %lu bytes\n"`).
fn spl(len: usize) -> Vec<u8> {
    let mut p = pattern(len, 11);
    p[100..132].copy_from_slice(b"\nU-Boot SPL 2025.10 (Oct 06 2025");
    p[len - 50..len - 32].copy_from_slice(b"Loaded %lu bytes\n\0");
    p
}

fn headed(p: &[u8], version: u32, bofs: u32) -> Vec<u8> {
    let mut h = vec![0u8; 0x400];
    let mut put = |o: usize, v: u32| h[o..o + 4].copy_from_slice(&v.to_le_bytes());
    put(0x000, 0x240);
    put(0x004, bofs);
    put(0x284, version);
    put(0x288, p.len() as u32);
    put(0x28C, 0x400);
    put(0x290, crc32(p));
    h.extend_from_slice(p);
    h
}

fn rf() -> Command {
    racklet_tests::racklet_flash()
}

/// Runs racklet-flash; returns the status, stdout followed by stderr (human
/// lines go to stderr), and stderr.
fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let o = rf().current_dir(dir).args(args).output().unwrap();
    if o.status.code().is_none() {
        eprintln!("racklet-flash {args:?} ended with {:?}", o.status);
    }
    (
        o.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn image_writes_the_spl_tool_layout_for_boundary_sizes() {
    let dir = tempfile::tempdir().unwrap();
    for n in [1usize, 16, 129, 4096, 100_000] {
        let p = pattern(n, n as u32);
        file(dir.path(), "p.bin", &p);
        let (code, _, err) = run(&["image", "visionfive2", "p.bin", "-o", "p.img", "--force"], dir.path());
        assert_eq!(code, 0, "{err}");
        let got = std::fs::read(dir.path().join("p.img")).unwrap();
        assert!(got == headed(&p, 0x0101_0101, 0x20_0000), "image of {n} bytes");
    }
}

#[test]
fn image_options_and_the_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let p: Vec<u8> = (0u8..16).collect();
    file(dir.path(), "p.bin", &p);
    let (code, _, err) = run(
        &["image", "vf2", "p.bin", "-o", "a.img", "--version", "0x01010001", "--backup-offset", "0x100000"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dir.path().join("a.img")).unwrap(), headed(&p, 0x0101_0001, 0x10_0000));
    // The sheet's worked example: CRC bytes 88 e2 ce ce at 0x290.
    let (code, _, err) = run(&["image", "vf2", "p.bin", "-o", "b.img"], dir.path());
    assert_eq!(code, 0, "{err}");
    let b = std::fs::read(dir.path().join("b.img")).unwrap();
    assert_eq!(&b[0x290..0x294], &[0x88, 0xe2, 0xce, 0xce]);
    // A version that does not fit 32 bits is bad input.
    let (code, _, err) =
        run(&["image", "vf2", "p.bin", "-o", "c.img", "--version", "0x100000000"], dir.path());
    assert_eq!(code, 2, "{err}");
}

#[test]
fn image_refuses_what_cannot_boot() {
    let dir = tempfile::tempdir().unwrap();
    // One byte more than the 256 KiB SRAM: refused, with the limit named.
    file(dir.path(), "big.bin", &vec![0x13; 0x4_0001]);
    let (code, _, err) = run(&["image", "vf2", "big.bin", "-o", "big.img"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("262144"), "{err}");
    assert!(!dir.path().join("big.img").exists());
    // Exactly 256 KiB is accepted (with warnings about other tools' limits).
    file(dir.path(), "max.bin", &vec![0x13; 0x4_0000]);
    let (code, _, err) = run(&["image", "vf2", "max.bin", "-o", "max.img"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("180048"), "{err}");
    // An ELF linked away from 0x08000000 would run at the wrong address.
    let code_bytes = pattern(64, 3);
    file(dir.path(), "off.elf", &elf64(243, 0x0800_1000, &[(0x0800_1000, &code_bytes, 64)]));
    let (code, _, err) = run(&["image", "vf2", "off.elf", "-o", "off.img"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("0x8000000"), "{err}");
    // An ELF at the right address is flattened and headed.
    file(dir.path(), "ok.elf", &elf64(243, 0x0800_0000, &[(0x0800_0000, &code_bytes, 64)]));
    let (code, _, err) = run(&["image", "vf2", "ok.elf", "-o", "ok.img"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("ok.img")).unwrap(),
        headed(&code_bytes, 0x0101_0101, 0x20_0000)
    );
    // A headed input is not headed twice.
    let (code, _, err) = run(&["image", "vf2", "ok.img", "-o", "twice.img"], dir.path());
    assert_eq!(code, 2, "{err}");
}

#[test]
fn info_decodes_the_header_and_checks_its_crc() {
    let dir = tempfile::tempdir().unwrap();
    let p = pattern(5000, 5);
    let mut img = headed(&p, 0x0101_0001, 0x20_0000);
    file(dir.path(), "good.img", &img);
    let (code, out, err) = run(&["info", "good.img"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("JH7110 SPL image"), "{out}");
    assert!(out.contains("5000 bytes"), "{out}");
    assert!(out.contains("0x01010001 (StarFive recovery images)"), "{out}");
    assert!(out.contains(&format!("0x{:08x}", crc32(&p))), "{out}");
    assert!(out.contains("check payload CRC-32       ok"), "{out}");
    img[0x400 + 100] ^= 0xFF;
    file(dir.path(), "bad.img", &img);
    let (code, out, err) = run(&["info", "bad.img"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
}

/// `maskrom visionfive2 PAYLOAD --simulate ARGS` in a directory holding
/// p.bin (a raw payload), spl.bin (U-Boot SPL) and u-boot.itb.
fn sim_with(payload: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "p.bin", &pattern(9000, 11));
    file(dir.path(), "spl.bin", &spl(9000));
    file(dir.path(), "u-boot.itb", &pattern(3000, 12));
    let mut a = vec!["maskrom", "visionfive2", payload, "--simulate"];
    a.extend_from_slice(args);
    run(&a, dir.path())
}

fn sim(args: &[&str]) -> (i32, String, String) {
    sim_with("p.bin", args)
}

#[test]
fn simulated_boot_with_1k_and_128_byte_blocks() {
    let (code, out, err) = sim(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("virtual ROM: loaded 9000 bytes at 0x08000000"), "{out}");
    assert!(out.contains("in 10 1K + 0 128-byte frames"), "{out}");
    assert!(out.contains("of the 11520 B/s line rate"), "{out}");
    // The virtual UART is paced at 115200: it has a line rate.
    assert!(!out.contains("has no line rate"), "{out}");
    assert!(out.contains("done: visionfive2 started in"), "{out}");
    let (code, out, err) = sim(&["--xmodem-128"]);
    assert_eq!(code, 0, "{out}{err}");
    // 10024 bytes = 78.3 blocks of 128: 79 frames.
    assert!(out.contains("in 0 1K + 79 128-byte frames"), "{out}");
}

/// The ROM restarts its loader every two or three polls (U-Boot's JH7110
/// log); one that restarts while block 1 is on the line prints its banner
/// and polls again, and block 1 goes again on that poll.
#[test]
fn a_rom_restart_during_block_1_is_recovered_from() {
    let (code, out, err) = sim(&["--fault", "restart-in-block-1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("virtual ROM: loaded 9000 bytes at 0x08000000"), "{out}");
    // Block 1 went again on the restarted ROM's poll, not after a timeout.
    assert!(out.contains("10 blocks of 1024 bytes, 11 frames sent, 1 NAKs (0 stale), 0 timeouts"), "{out}");
}

/// A `C` in answer to a block asks for it again at once (as tio resends on
/// any answer that is not ACK), not after the answer timeout.
#[test]
fn a_block_the_rom_answers_with_c_goes_again_at_once() {
    let (code, out, err) = sim(&["--fault", "c-for-block-3"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("10 blocks of 1024 bytes, 11 frames sent, 1 NAKs (0 stale), 0 timeouts"), "{out}");
}

/// A poll that crossed block 1 on the wire is not an answer: block 1's ACK
/// follows within its wire time, and block 1 does not go twice (a second
/// copy would be ACKed again, and that ACK taken for block 2's).
#[test]
fn a_poll_that_crossed_block_1_is_not_a_resend_request() {
    let (code, out, err) = sim(&["--fault", "poll-crosses-block-1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("10 blocks of 1024 bytes, 10 frames sent, 0 NAKs (1 stale), 0 timeouts"), "{out}");
}

/// `--xmodem-nak ignore` is vf2-recover's policy: every block goes once,
/// whatever the answer. Against the virtual ROM, which does not store a
/// block it NAKs, the next block is then out of sequence and it cancels;
/// with the default policy the block goes again and the boot completes.
#[test]
fn xmodem_nak_ignore_goes_on_whatever_the_answer() {
    let (code, out, err) = sim(&["--xmodem-nak", "ignore"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("10 blocks of 1024 bytes, 10 frames sent, 0 NAKs"), "{out}");
    let (code, out, err) = sim(&["--fault", "nak"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("10 blocks of 1024 bytes, 12 frames sent, 2 NAKs"), "{out}");
    let (code, out, err) = sim(&["--fault", "nak", "--xmodem-nak", "ignore", "--json"]);
    assert_eq!(code, 7, "{out}{err}");
    assert!(out.contains("the receiver cancelled the transfer (CAN) at block 5"), "{out}");
    let (code, _, err) = sim(&["--xmodem-nak", "sometimes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("resend") && err.contains("ignore"), "{err}");
}

#[test]
fn a_headed_image_whose_crc_fails_is_refused_before_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let p = pattern(2000, 4);
    let mut bad = headed(&p, 0x0101_0101, 0x20_0000);
    bad[0x500] ^= 1;
    file(dir.path(), "bad.img", &bad);
    let (code, out, err) = run(&["maskrom", "vf2", "bad.img", "--simulate"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("bad.img: the image header says CRC-32"), "{err}");
    assert!(err.contains("\nhint: "), "{err}");
}

#[test]
fn a_rejected_image_exits_7_without_a_done_line() {
    let (code, out, err) = sim(&["--fault", "corrupt-image"]);
    assert_eq!(code, 7, "{out}{err}");
    assert!(err.contains("CRC Error, Try again"), "{err}");
    assert!(!out.contains("started in"), "{out}");
}

#[test]
fn unknown_fault_is_bad_usage() {
    let (code, _, err) = sim(&["--fault", "gremlins"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nak-storm"), "{err}");
}

#[test]
fn simulated_spl_takes_the_next_stage_by_ymodem() {
    let (code, out, err) = sim_with("spl.bin", &["--then-ymodem", "u-boot.itb", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SPL loaded u-boot.itb (3000 bytes) by YMODEM"), "{out}");
    assert!(out.contains("\"event\":\"done\""), "{out}");
}

/// U-Boot's xyzModem answers a block whose CRC fails with `C` at once and
/// then waits only 2 s for the resend: the `C` must make it go again.
#[test]
fn a_block_the_spl_asks_for_again_with_c_is_resent() {
    let (code, out, err) =
        sim_with("spl.bin", &["--then-ymodem", "u-boot.itb", "--fault", "spl-corrupt-block", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SPL loaded u-boot.itb (3000 bytes) by YMODEM"), "{out}");
    // Block 2 went again on the SPL's C, not after a timeout of the sender.
    assert!(out.contains("3 blocks, 6 frames sent, 1 resend requests (C or NAK), 0 timeouts"), "{out}");
}

/// A lost ACK: U-Boot's receiver times out on the next header after 2 s,
/// flushes until the line has been quiet for 2 s, busy-waits 250 ms with its
/// FIFO overrunning, and asks with `C`. A sender that resends before that
/// keeps the flush going; this one waits and resends on the `C`.
#[test]
fn a_lost_spl_ack_is_recovered_on_the_spls_c() {
    let (code, out, err) =
        sim_with("spl.bin", &["--then-ymodem", "u-boot.itb", "--fault", "spl-drop-ack", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SPL loaded u-boot.itb (3000 bytes) by YMODEM"), "{out}");
    assert!(out.contains("3 blocks, 6 frames sent, 1 resend requests (C or NAK), 0 timeouts"), "{out}");
}

#[test]
fn a_next_stage_nobody_asks_for_is_a_timeout_with_a_hint() {
    // p.bin is not U-Boot SPL: the virtual board runs it and nothing asks.
    let (code, out, err) = sim(&["--then-ymodem", "u-boot.itb", "--stage-timeout", "1s", "--json"]);
    assert_eq!(code, 6, "{out}{err}");
    let ev: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.contains("\"event\":\"error\"")).unwrap()).unwrap();
    assert_eq!(ev["class"], "timeout");
    assert!(ev["message"].as_str().unwrap().contains("did not ask for its next stage within 1s"), "{ev}");
    assert!(ev["hint"].as_str().unwrap().contains("CONFIG_SPL_YMODEM_SUPPORT"), "{ev}");
}

#[test]
fn a_payload_is_required_and_checked_before_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["maskrom", "vf2", "--simulate"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("visionfive2 needs a payload"), "{err}");
    assert!(err.contains("hint: racklet-flash maskrom visionfive2 payload.bin"), "{err}");
    file(dir.path(), "big.bin", &vec![1; 0x4_0001]);
    let (code, _, err) = run(&["maskrom", "vf2", "big.bin", "--simulate"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("262144"), "{err}");
}

#[test]
fn no_uart_is_not_found_with_how_to_enter_uart_boot() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "p.bin", &pattern(100, 1));
    let missing = dir.path().join("ttyUSB9");
    let (code, _, err) = run(&["maskrom", "vf2", "p.bin", "--port", missing.to_str().unwrap()], dir.path());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no USB-UART adapter on the JH7110's UART0 at"), "{err}");
    assert!(
        err.contains(
            "To put visionfive2 (StarFive VisionFive 2) in its boot ROM mode: Set the boot-mode DIP switch"
        ),
        "{err}"
    );
}

#[test]
fn record_writes_the_serial_transcript() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "p.bin", &pattern(100, 1));
    let (code, out, err) = run(
        &["maskrom", "vf2", "p.bin", "--simulate", "--record", "t.jsonl", "--record-data", "full"],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let t = std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap();
    let outs: Vec<serde_json::Value> = t
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["t"] == "serial_out")
        .collect();
    // 1124 bytes: one STX frame (1029 bytes) and one SOH tail (133), then EOT.
    let frame1 = outs[0]["data"].as_str().unwrap();
    assert_eq!(frame1.len(), 2 * 1029);
    assert!(frame1.starts_with("0201fe40020000"), "{}", &frame1[..16]);
    assert!(outs[1]["data"].as_str().unwrap().starts_with("0102fd"));
    assert_eq!(outs[1]["data"].as_str().unwrap().len(), 2 * 133);
    assert_eq!(outs.last().unwrap()["data"], "04");
    assert!(t.contains("\"baud\":115200"));
}

#[test]
fn sim_serves_the_rom_to_another_process() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "p.bin", &pattern(3000, 2));
    let bin = assert_cmd::cargo::cargo_bin("racklet-flash");
    let mut server = Proc::new(&bin)
        .args(["sim", "visionfive2", "--save"])
        .arg(dir.path().join("saved"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let tty = line.trim().to_string();
    assert!(tty.starts_with("/dev/"), "{line}");
    let (code, out, err) = run(&["maskrom", "vf2", "p.bin", "--port", &tty], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    // The server ends after one session, with its log and a zero status.
    let o = server.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("session 1: received") && log.contains("loaded 3000 bytes"), "{log}");
    let saved = std::fs::read(dir.path().join("saved/starfive-session-1.img")).unwrap();
    assert_eq!(&saved[..4024], &headed(&pattern(3000, 2), 0x0101_0101, 0x20_0000)[..]);
}

/// `sim --keep` serves run after run (ux review §14): the board of a lab
/// rack is power-cycled between runs, and the virtual one restarts its ROM
/// once the line has been quiet after the payload started, so a second and
/// a third `maskrom` are served as the first was.
#[test]
fn sim_keep_serves_every_run() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "p.bin", &pattern(3000, 2));
    let bin = assert_cmd::cargo::cargo_bin("racklet-flash");
    let mut server = Proc::new(&bin)
        .args(["sim", "visionfive2", "--keep"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let tty = line.trim().to_string();
    for i in 1..=3 {
        let (code, out, err) = run(&["maskrom", "vf2", "p.bin", "--port", &tty, "--wait", "10s"], dir.path());
        assert_eq!(code, 0, "run {i}: {out}{err}");
    }
    let _ = server.kill();
    let o = server.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("session 3: received"), "{log}");
}

/// A stand-in for StarFive's `jh7110-recovery-*.bin`: a headed image of
/// version 0x01010001, as all three of StarFive's prebuilt recovery images
/// are (sheet §2.3). Under a storage verb the virtual board runs whatever
/// the ROM starts as the recovery program.
fn recovery_image() -> Vec<u8> {
    headed(&pattern(20_000, 21), 0x0101_0001, 0x20_0000)
}

/// `write visionfive2 --recovery R --spl S --uboot U --simulate ARGS` in a
/// directory holding those three files; returns the run, the files and the
/// directory (where --sim-storage keeps the flash).
fn write_sim(args: &[&str]) -> ((i32, String, String), Vec<u8>, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "jh7110-recovery-20230322.bin", &recovery_image());
    let spl_img = headed(&spl(9000), 0x0101_0101, 0x20_0000);
    file(dir.path(), "u-boot-spl.bin.normal.out", &spl_img);
    let itb = pattern(70_000, 22);
    file(dir.path(), "u-boot.itb", &itb);
    let mut a = vec![
        "write",
        "visionfive2",
        "--recovery",
        "jh7110-recovery-20230322.bin",
        "--spl",
        "u-boot-spl.bin.normal.out",
        "--uboot",
        "u-boot.itb",
        "--simulate",
    ];
    a.extend_from_slice(args);
    (run(&a, dir.path()), spl_img, itb, dir)
}

/// vf2-recover's flow: the recovery image to the ROM, the menu's entry 0
/// and the SPL, `updata success`, entry 2 and U-Boot, `updata success`;
/// the virtual flash holds the SPL at 0 and U-Boot at 0x100000.
#[test]
fn write_puts_the_spl_and_u_boot_in_the_spi_flash_through_the_recovery_program() {
    let ((code, out, err), spl_img, itb, dir) = write_sim(&["--sim-storage", "flash.img"]);
    assert_eq!(code, 0, "{out}{err}");
    let flash = std::fs::read(dir.path().join("flash.img")).unwrap();
    assert_eq!(flash.len(), 16 << 20);
    assert!(flash[..spl_img.len()] == spl_img[..], "the SPL at 0");
    assert!(flash[0x10_0000..0x10_0000 + itb.len()] == itb[..], "U-Boot at 0x100000");
    assert!(out.contains("2ndboot/SPL") && out.contains("fw_verif/uboot"), "{out}");
    assert!(out.contains("updata success"), "{out}");
    assert!(out.contains("21 1K + 0 128-byte frames"), "the recovery program in 1K blocks: {out}");
    // vf2-recover's ROM stage: 128-byte blocks, NAKs ignored.
    let ((code, out, err), _, _, _) = write_sim(&["--xmodem-128", "--xmodem-nak", "ignore"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 1K + 165 128-byte frames"), "{out}");
}

/// A failed step is named and classed: the program's menu shown again
/// without `updata success` is a refusal (exit 7, U-Boot named, nothing
/// after it reported written), a menu that never comes a timeout (exit 6)
/// with the hint to check the recovery file.
#[test]
fn a_failed_recovery_step_is_named_and_never_reported_written() {
    let ((code, out, err), spl_img, _, dir) =
        write_sim(&["--sim-storage", "flash.img", "--fault", "recovery-uboot-fails"]);
    assert_eq!(code, 7, "{out}{err}");
    assert!(err.contains("did not write the U-Boot"), "{err}");
    assert!(!out.contains("done: visionfive2 written"), "{out}");
    let flash = std::fs::read(dir.path().join("flash.img")).unwrap();
    assert!(flash[..spl_img.len()] == spl_img[..], "the SPL before it was written");
    assert!(flash[0x10_0000..0x10_0000 + 4096].iter().all(|&b| b == 0), "U-Boot was not");

    let ((code, out, err), _, _, _) = write_sim(&["--fault", "recovery-no-menu"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("waiting for the recovery program's menu"), "{err}");
    assert!(err.contains("JH7110 secondboot version"), "what it printed is shown: {err}");
    assert!(err.contains("jh7110-recovery-*.bin"), "the hint: {err}");
}

/// Bad input before the port: the StarFive flags on another board, a
/// missing recovery program, an SPL without its header, a positional image.
#[test]
fn write_visionfive2_refuses_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "rec.bin", &recovery_image());
    file(dir.path(), "spl.bin", &spl(9000));
    file(dir.path(), "u-boot.itb", &pattern(3000, 12));
    let (code, _, err) =
        run(&["write", "canmv-k230", "u-boot.itb", "--spl", "spl.bin", "--simulate"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--spl is a starfive flag"), "{err}");
    let (code, _, err) =
        run(&["write", "canmv-k230", "u-boot.itb", "--xmodem-nak", "ignore", "--simulate"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--xmodem-nak is a starfive flag"), "{err}");
    let (code, _, err) = run(&["write", "visionfive2", "--uboot", "u-boot.itb", "--simulate"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--recovery"), "{err}");
    let (code, _, err) =
        run(&["write", "visionfive2", "--recovery", "rec.bin", "--spl", "spl.bin", "--simulate"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("spl.bin: not a headed JH7110 image") && err.contains("racklet-flash image"),
        "{err}"
    );
    let (code, _, err) =
        run(&["write", "visionfive2", "u-boot.itb", "--recovery", "rec.bin", "--simulate"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--uboot"), "{err}");
}

/// The SPL given as the recovery program: the ROM starts it and it asks for
/// YMODEM instead of showing a menu. That is said at once (exit 7, the
/// file named), not after the menu's timeout.
#[test]
fn an_spl_given_as_the_recovery_program_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let spl_img = headed(&spl(9000), 0x0101_0101, 0x20_0000);
    file(dir.path(), "u-boot-spl.bin.normal.out", &spl_img);
    file(dir.path(), "u-boot.itb", &pattern(3000, 12));
    let (code, out, err) = run(
        &[
            "write",
            "visionfive2",
            "--recovery",
            "u-boot-spl.bin.normal.out",
            "--uboot",
            "u-boot.itb",
            "--simulate",
        ],
        dir.path(),
    );
    assert_eq!(code, 7, "{out}{err}");
    assert!(err.contains("u-boot-spl.bin.normal.out: the ROM started it and it is U-Boot SPL"), "{err}");
    assert!(err.contains("--spl"), "the hint: {err}");
}
