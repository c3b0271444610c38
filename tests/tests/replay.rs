//! Replay: every capture in tests/vectors/captures replays with
//! its recorded command line and ends as recorded; a changed client fails
//! loudly at the transfer that changed; `--record` writes what replay and
//! a bug report need (header, descriptors, end, hashes, redaction, zstd).

use std::path::Path;

use racklet_link::transcript::reader::{self, Device, Record};
use racklet_tests::captures;
use racklet_tests::racklet_flash;

struct Run {
    code: i32,
    out: String,
}

fn run(args: &[String], dir: &Path) -> Run {
    let o = racklet_flash().current_dir(dir).args(args).output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
    }
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Replays one capture and checks it ended as recorded, without a difference.
fn replay_as_recorded(capture: &Path) -> Result<(), String> {
    let (args, t) = captures::replay_args(capture, &[])?;
    let end = t.end().ok_or_else(|| format!("{}: no end record", capture.display()))?;
    let r = run(&args, &captures::workspace());
    if r.out.contains("differs from the recording") || r.out.contains("the host stopped") {
        return Err(format!("{}: the replay differed:\n{}", capture.display(), r.out));
    }
    if r.code != end.exit {
        return Err(format!(
            "{}: replay exited {}, the recorded run {} ({:?}):\n{}",
            capture.display(),
            r.code,
            end.exit,
            end.message,
            r.out
        ));
    }
    if end.exit == 0 && !r.out.contains("host transfers as recorded") {
        return Err(format!("{}: no replay verdict:\n{}", capture.display(), r.out));
    }
    Ok(())
}

#[test]
fn every_capture_replays_as_recorded() {
    let all = captures::all(&captures::folder());
    // The first captures: the QEMU USB rig (a Rockchip, a K230, a fastboot
    // ROM) and simulated serial runs. More come from users' boards.
    for board in ["rock-3a", "canmv-k230", "bpi-f3", "visionfive2", "milkv-duo"] {
        assert!(
            all.iter().any(|c| c.parent().and_then(Path::file_name).is_some_and(|b| b == board)),
            "no capture of {board} in tests/vectors/captures: {all:?}"
        );
    }
    let mut failed = Vec::new();
    for c in &all {
        // Each capture has its section in its folder's README.md.
        let readme = c.with_file_name("README.md");
        let text = std::fs::read_to_string(&readme).unwrap_or_default();
        if !text.contains(&format!("## {}", captures::name(c))) {
            failed.push(format!(
                "{}: no `## {}` section in {}",
                c.display(),
                captures::name(c),
                readme.display()
            ));
            continue;
        }
        if let Err(e) = replay_as_recorded(c) {
            failed.push(e);
        }
    }
    assert!(failed.is_empty(), "{} of {} captures failed:\n{}", failed.len(), all.len(), failed.join("\n\n"));
}

/// The K230 capture from the rig, with one payload byte changed.
#[test]
fn a_changed_payload_byte_fails_loudly_naming_the_transfer() {
    let capture = captures::all(&captures::folder())
        .into_iter()
        .find(|c| c.to_string_lossy().contains("canmv-k230"))
        .expect("a canmv-k230 capture");
    let t = reader::read_path(&capture).unwrap();
    let input = &t.header.as_ref().unwrap().inputs[0];
    let mut bytes = std::fs::read(captures::find_input(&capture, input).unwrap()).unwrap();
    bytes[600] ^= 0x40;
    let d = tempfile::tempdir().unwrap();
    let changed = d.path().join("changed.bin");
    std::fs::write(&changed, &bytes).unwrap();
    let (args, _) = captures::replay_args(&capture, &[(input.path.clone(), changed)]).unwrap();
    let r = run(&args, d.path());
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("error: replay of "), "{}", r.out);
    let line = r.out.lines().find(|l| l.contains("host transfer")).expect("the transfer is named");
    assert!(line.contains("differs from the recording (line "), "{line}");
    assert!(
        r.out.contains("  recorded: bulk_out ep 0x01") && r.out.contains("  sent:     bulk_out ep 0x01"),
        "{}",
        r.out
    );
    assert!(r.out.contains("hint: the client no longer does what it did"), "{}", r.out);
}

#[test]
fn a_recording_of_another_board_is_refused() {
    let capture = captures::all(&captures::folder())
        .into_iter()
        .find(|c| c.to_string_lossy().contains("canmv-k230"))
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let r = run(&strs(&["maskrom", "rock-3a", "--replay", capture.to_str().unwrap()]), d.path());
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(r.out.contains("a recording of canmv-k230, not of rock-3a"), "{}", r.out);
    let r = run(&strs(&["maskrom", "rock-3a", "--replay", "missing.jsonl"]), d.path());
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(r.out.contains("missing.jsonl"), "{}", r.out);
}

/// Records a simulated K230 run and returns the transcript.
fn record_k230(dir: &Path, extra: &[&str], file: &str) -> reader::Transcript {
    let payload: Vec<u8> = racklet_tests::pattern(5000, 7);
    std::fs::write(dir.join("p.bin"), &payload).unwrap();
    let mut args = strs(&["maskrom", "canmv-k230", "p.bin", "--simulate", "--record", file]);
    args.extend(strs(extra));
    let r = run(&args, dir);
    assert_eq!(r.code, 0, "{}", r.out);
    reader::read_path(&dir.join(file)).unwrap()
}

#[test]
fn record_writes_the_header_descriptors_and_end() {
    let d = tempfile::tempdir().unwrap();
    let t = record_k230(d.path(), &[], "t.jsonl");
    assert_eq!(t.version, 1);
    let h = t.header.as_ref().unwrap();
    assert_eq!(h.board.as_deref(), Some("canmv-k230"));
    assert_eq!(h.argv[0], "racklet-flash");
    assert_eq!(&h.argv[1..4], ["maskrom", "canmv-k230", "p.bin"]);
    assert_eq!(h.inputs[0].path, "p.bin");
    assert_eq!(h.inputs[0].len, 5000);
    assert!(!h.racklet_flash.is_empty());
    let open = t
        .entries
        .iter()
        .find_map(|e| match &e.record {
            Record::Open { device: Device::Usb(i), .. } => Some(i.clone()),
            _ => None,
        })
        .expect("an open record");
    // The virtual K230 ROM's descriptors (crates/sim/src/canaan.rs, from the fact sheet).
    assert_eq!(open.id(), "29f1:0230");
    assert_eq!(open.port_path, "1-1");
    assert!(open.address > 0 && open.bcd_usb == 0x0200, "{open:?}");
    assert!(
        open.interfaces[0].endpoints.iter().any(|e| e.address == 0x01 && e.max_packet_size == 512),
        "{open:?}"
    );
    assert_eq!(t.end().unwrap().exit, 0);
    // 5000 bytes in 1000-byte bulk writes: stored by hash, not as 10 KB of hex.
    let text = std::fs::read_to_string(d.path().join("t.jsonl")).unwrap();
    assert!(text.len() < 5000, "{} bytes", text.len());
    // --record-data full keeps every byte.
    let t = record_k230(d.path(), &["--record-data", "full"], "full.jsonl");
    let sent: usize = t
        .entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::BulkOut { data: reader::Payload::Bytes(b), .. } => Some(b.len()),
            _ => None,
        })
        .sum();
    assert_eq!(sent, 5000);
}

#[test]
fn a_zst_transcript_is_compressed_and_replays() {
    let d = tempfile::tempdir().unwrap();
    record_k230(d.path(), &[], "t.jsonl.zst");
    let raw = std::fs::read(d.path().join("t.jsonl.zst")).unwrap();
    assert_eq!(&raw[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    let r = run(&strs(&["maskrom", "canmv-k230", "p.bin", "--replay", "t.jsonl.zst"]), d.path());
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("host transfers as recorded"), "{}", r.out);
}

#[test]
fn record_redact_leaves_no_serial_number() {
    // The virtual Sophgo ROM has a USB serial number; --port names it too.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("bl2.bin"), racklet_tests::pattern(600, 3)).unwrap();
    let plain =
        run(&strs(&["maskrom", "milkv-duo", "bl2.bin", "--simulate", "--record", "plain.jsonl"]), d.path());
    assert_eq!(plain.code, 0, "{}", plain.out);
    let t = reader::read_path(&d.path().join("plain.jsonl")).unwrap();
    let serial = t
        .entries
        .iter()
        .find_map(|e| match &e.record {
            Record::Open { device: Device::Serial(p), .. } => p.serial.clone(),
            _ => None,
        })
        .expect("the virtual ROM has a serial number");
    let r = run(
        &strs(&["maskrom", "milkv-duo", "bl2.bin", "--simulate", "--record", "r.jsonl", "--record-redact"]),
        d.path(),
    );
    assert_eq!(r.code, 0, "{}", r.out);
    let text = std::fs::read_to_string(d.path().join("r.jsonl")).unwrap();
    assert!(!text.contains(&serial), "{serial} in:\n{text}");
    // The same length, the same placeholder at every enumeration.
    let placeholder = format!("{:x<width$}", "REDACTED1", width = serial.len());
    let opens = text.lines().filter(|l| l.starts_with("{\"t\":\"open\"")).count();
    assert!(opens >= 3, "{text}");
    assert_eq!(
        text.matches(&format!("\"serial\":\"{placeholder}\"")).count(),
        text.matches("\"serial\":").count(),
        "{text}"
    );
    // The redacted transcript still replays.
    let r = run(&strs(&["maskrom", "milkv-duo", "bl2.bin", "--replay", "r.jsonl"]), d.path());
    assert_eq!(r.code, 0, "{}", r.out);
}

#[test]
fn a_recorded_failure_replays_as_the_same_failure() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("p.bin"), racklet_tests::pattern(3000, 9)).unwrap();
    let r = run(
        &strs(&[
            "maskrom",
            "canmv-k230",
            "p.bin",
            "--simulate",
            "--fault",
            "stall-bulk",
            "--record",
            "f.jsonl",
        ]),
        d.path(),
    );
    assert_eq!(r.code, 7, "{}", r.out);
    let t = reader::read_path(&d.path().join("f.jsonl")).unwrap();
    assert_eq!(t.end().unwrap().exit, 7);
    assert_eq!(t.end().unwrap().class.as_deref(), Some("rejected"));
    let r = run(&strs(&["maskrom", "canmv-k230", "p.bin", "--replay", "f.jsonl"]), d.path());
    assert_eq!(r.code, 7, "{}", r.out);
    assert!(r.out.contains("stalled"), "{}", r.out);
}

#[test]
fn replay_options_need_their_partner() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        &["maskrom", "canmv-k230", "--replay-timing"][..],
        &["maskrom", "canmv-k230", "--record-redact"],
        &["maskrom", "canmv-k230", "--replay", "x.jsonl", "--simulate"],
        &["maskrom", "canmv-k230", "--replay", "x.jsonl", "--port", "1-1", "--port", "1-2"],
    ] {
        let r = run(&strs(args), d.path());
        assert_eq!(r.code, 2, "{args:?}: {}", r.out);
    }
}
