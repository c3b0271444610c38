//! Every protocol under every kind of fault: stall, time out,
//! disconnect mid-transfer, garbage answers, repeated NAKs. The CLI either
//! retries where the protocol allows it and succeeds with the right bytes
//! delivered (the virtual ROM's verdict says so), or fails with the right
//! class and exit code — never a false success, never a hang.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use racklet_tests::{file, pattern};

/// (board, fault, kind of fault, expected exit code, payload arguments)
const MATRIX: &[(&str, &str, &str, i32, &str)] = &[
    // Rockchip (USB control transfers)
    ("rock-3a", "corrupt", "garbage on the wire (bad CRC)", 7, "rk"),
    ("rock-3a", "reject-usbplug", "stall", 7, "rk"),
    ("rock-3a", "hang", "time out", 6, "rk"),
    ("rock-3a", "unplug", "disconnect mid-transfer", 8, "rk"),
    ("rock-3a", "no-return", "never comes back", 6, "rk"),
    ("rock-3a", "dead-usbplug", "time out after re-enumeration", 6, "rk"),
    ("rock-3a", "bad-csw", "garbage answer", 9, "rk"),
    ("rock-3a", "already-loader", "wrong stage", 7, "rk"),
    ("rock-3a", "not-ready", "not ready at first (polled again)", 0, "rk"),
    ("rock-3a", "late-csw", "stale answer (resynchronised)", 0, "rk"),
    ("rock-3a", "stall-trailer", "stall of the 1-byte trailer", 0, "rk"),
    // Canaan K230 (USB control + bulk)
    ("canmv-k230", "stall-bulk", "stall", 7, "raw"),
    ("canmv-k230", "hang-bulk", "time out", 6, "raw"),
    ("canmv-k230", "unplug", "disconnect mid-transfer", 8, "raw"),
    ("canmv-k230", "wrong-cpu", "garbage answer (wrong identity)", 7, "raw"),
    ("canmv-k230", "no-jump", "acknowledged but not started", 7, "raw"),
    ("canmv-k230", "stall-start", "stall", 7, "raw"),
    ("canmv-k230", "no-status", "tolerated quirk", 0, "raw"),
    // Sophgo (USB serial, device-driven sessions)
    ("milkv-duo-256m", "bad-ack-crc", "garbage once: retried", 0, "raw"),
    ("milkv-duo-256m", "bad-ack-crc-always", "garbage answers", 9, "raw"),
    ("milkv-duo-256m", "wrong-offset", "garbage request", 9, "raw"),
    ("milkv-duo-256m", "vanish", "disconnect mid-transfer", 8, "raw"),
    ("milkv-duo-256m", "reject-bl2", "NAK repeatedly (asks again and again)", 7, "raw"),
    // StarFive (UART XMODEM)
    ("visionfive2", "nak", "NAKs: retried", 0, "raw"),
    ("visionfive2", "nak-storm", "NAK repeatedly (12 in a row): retried", 0, "raw"),
    ("visionfive2", "drop-ack", "lost ACK: retried", 0, "raw"),
    ("visionfive2", "corrupt-frame", "garbage frame: retried", 0, "raw"),
    ("visionfive2", "corrupt-image", "rejected image", 7, "raw"),
    ("visionfive2", "silent", "time out", 6, "raw"),
    ("visionfive2", "hangup", "disconnect mid-transfer", 8, "raw"),
    ("visionfive2", "c-for-block-3", "C as the answer: resent", 0, "raw"),
    ("visionfive2", "restart-in-block-1", "ROM restart in block 1: resent", 0, "raw"),
    // StarFive --fast: the fastload loader the ROM started (framed blocks)
    ("visionfive2", "fast-corrupt-block", "garbage frame through the loader: resent", 0, "fast"),
    ("visionfive2", "fast-corrupt-memory", "rejected image (loader's CRC-32)", 7, "fast"),
    ("visionfive2", "fast-no-sync", "rate the adapter cannot carry: fell back", 0, "fast"),
    ("visionfive2", "corrupt-image", "rejected loader image", 7, "fast"),
    ("visionfive2", "hangup", "disconnect while the loader goes", 8, "fast"),
    // Fastboot ROMs (USB bulk)
    ("bpi-f3", "fail-download", "FAIL answer", 7, "fsbl"),
    ("bpi-f3", "silent", "time out", 6, "fsbl"),
    ("bpi-f3", "bad-status", "garbage answer", 9, "fsbl"),
    ("bpi-f3", "long-response", "garbage answer (too long)", 9, "fsbl"),
    ("bpi-f3", "unplug", "disconnect mid-transfer", 8, "fsbl"),
    ("bpi-f3", "no-reenumerate", "never comes back", 6, "fsbl"),
    ("lichee-pi-4a", "data-size", "garbage answer (wrong DATA size)", 7, "raw"),
    ("lichee-pi-4a", "fail-boot", "FAIL answer", 7, "raw"),
    ("lichee-pi-4a", "unplug", "disconnect mid-transfer", 8, "raw"),
];

fn rf() -> Command {
    racklet_tests::racklet_flash()
}

fn payload_args(dir: &Path, kind: &str) -> Vec<String> {
    let p = |n: &str| dir.join(n).display().to_string();
    match kind {
        // A usbplug that does not come back fails only when one must come.
        "rk" => vec!["--dram".into(), p("ddr.bin"), p("usbplug.bin"), "--expect-usbplug".into()],
        // An FSBL that does not come back fails only when asked to follow it.
        "fsbl" => vec![p("FSBL.bin"), "--follow".into()],
        // The payload through the fastload loader the ROM gets first.
        "fast" => vec![p("payload.bin"), "--fast".into()],
        _ => vec![p("payload.bin")],
    }
}

#[test]
fn every_protocol_under_every_fault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    file(d, "ddr.bin", &pattern(3000, 1));
    // 8190 bytes: 4094 mod 4096, so the stage ends in the 1-byte trailer.
    file(d, "usbplug.bin", &racklet_tests::rk_usbplug(8190, 2));
    file(d, "payload.bin", &pattern(3000, 3));
    let spl = file(d, "spl.bin", &pattern(5000, 4));
    rf().args(["image", "bpi-f3"]).arg(&spl).arg("-o").arg(d.join("FSBL.bin")).assert().success();

    // Run the cases a few at a time: most wait out a timeout.
    let results: Vec<(usize, Option<i32>, String, Duration)> = std::thread::scope(|s| {
        let chunks: Vec<Vec<usize>> =
            (0..6).map(|k| (0..MATRIX.len()).filter(|i| i % 6 == k).collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|idx| {
                s.spawn(move || {
                    idx.into_iter()
                        .map(|i| {
                            let (board, fault, _, _, kind) = MATRIX[i];
                            let start = Instant::now();
                            let out = rf()
                                .args(["maskrom", board])
                                .args(payload_args(d, kind))
                                .args(["--simulate", "--fault", fault, "--stage-timeout", "2s"])
                                .timeout(Duration::from_secs(60))
                                .output()
                                .unwrap();
                            let text = format!(
                                "{}{}",
                                String::from_utf8_lossy(&out.stdout),
                                String::from_utf8_lossy(&out.stderr)
                            );
                            (i, out.status.code(), text, start.elapsed())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });

    let mut failures = Vec::new();
    for (i, code, text, took) in results {
        let (board, fault, kind, want, _) = MATRIX[i];
        let name = format!("{board} --fault {fault} ({kind})");
        if code != Some(want) {
            failures.push(format!("{name}: exit {code:?}, want {want}\n{text}"));
            continue;
        }
        let claims_done = text.lines().any(|l| l.starts_with("done:"));
        if want == 0 && !(claims_done && text.contains("virtual ROM:")) {
            failures.push(format!("{name}: succeeded without the virtual ROM's verdict\n{text}"));
        }
        if want != 0 && claims_done {
            failures.push(format!("{name}: a failure that printed done\n{text}"));
        }
        // Bounded by the configured timeouts (the longest is Rockchip's 10 s
        // final-transfer timeout), never a hang.
        if took > Duration::from_secs(30) {
            failures.push(format!("{name}: took {took:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        MATRIX.len(),
        failures.join("\n")
    );
}
