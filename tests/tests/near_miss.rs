//! A file that almost has a known header (a damaged magic, a wrong field)
//! is refused with exit 2 and what it looked like, never wrapped or sent as
//! a raw binary; `--force` sends it raw anyway.
//!
//! Each near-miss is written here from the format's layout in the fact
//! sheets (shared/protocols/*.md), not from the code under test.

use racklet_tests::{file, pattern, racklet_flash};

/// (board, file name, bytes, what the message must say).
fn cases() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let mut out = Vec::new();

    // sophgo.md §3: fip.bin starts with MAGIC1 "CVBL01\n\0"; here "CVBL02\n\0".
    let mut fip = pattern(8192, 1);
    fip[..8].copy_from_slice(b"CVBL02\n\0");
    out.push(("milkv-duo", "fip-v2.bin", fip, "looks like a damaged fip.bin"));

    // rockchip.md §2: an RKBOOT loader starts with the tag "BOOT" (or "LDR ").
    let mut rk = pattern(4096, 2);
    rk[..4].copy_from_slice(b"BOOU");
    out.push(("rock-3a", "loader.bin", rk, "looks like a damaged RKBOOT loader"));

    // canaan-k230.md §3: the storage image starts with "K230"; its payload at 0x214.
    let mut k230 = pattern(0x400, 3);
    k230[..4].copy_from_slice(b"K23O");
    out.push(("canmv-k230", "fw.img", k230, "looks like a damaged K230 firmware header"));

    // starfive.md §2: 0x240 at 0x000, version 0x01010101 at 0x284, 0x400 at 0x28C.
    let mut sf = pattern(0x800, 4);
    sf[0..4].copy_from_slice(&0x241u32.to_le_bytes());
    sf[0x284..0x288].copy_from_slice(&0x0101_0101u32.to_le_bytes());
    sf[0x28c..0x290].copy_from_slice(&0x400u32.to_le_bytes());
    out.push(("visionfive2", "spl.img", sf, "looks like a damaged JH7110 SPL header"));

    // fastboot.md (K1): FSBL.bin has header0 "AIHD" at 0x100 and the SPL at 0x1000.
    let mut k1 = pattern(0x1400, 5);
    k1[0x100..0x104].copy_from_slice(b"AIHE");
    out.push(("bpi-f3", "FSBL.bin", k1, "looks like a damaged K1 FSBL.bin"));
    out
}

#[test]
fn near_misses_are_refused_and_named() {
    let d = tempfile::tempdir().unwrap();
    for (board, name, bytes, want) in cases() {
        let p = file(d.path(), name, &bytes);
        let o = racklet_flash()
            .args(["maskrom", board])
            .arg(&p)
            .args(["--simulate", "--stage-timeout", "200ms"])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(2), "{board} {name}: {text}");
        assert!(text.contains(want) && text.contains(name), "{board} {name}: {text}");
        assert!(!text.contains("done:"), "{board} {name}: {text}");
    }
}

#[test]
fn force_sends_a_near_miss_as_a_raw_binary() {
    let d = tempfile::tempdir().unwrap();
    for (board, name, bytes, _) in cases() {
        // Only the boards whose ROM takes a raw payload: the Rockchip flow
        // needs --dram beside a raw usbplug, and the K1 ROM takes nothing
        // but FSBL.bin.
        if board == "rock-3a" || board == "bpi-f3" {
            continue;
        }
        let p = file(d.path(), name, &bytes);
        let o = racklet_flash()
            .args(["maskrom", board])
            .arg(&p)
            .args(["--simulate", "--stage-timeout", "200ms", "--force"])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!text.contains("looks like"), "{board} {name}: {text}");
        assert_ne!(o.status.code(), Some(2), "{board} {name}: {text}");
    }
}

#[test]
fn info_names_a_near_miss() {
    let d = tempfile::tempdir().unwrap();
    let (_, name, bytes, want) = cases().remove(0);
    let p = file(d.path(), name, &bytes);
    let o = racklet_flash().arg("info").arg(&p).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(want.trim_start_matches("looks like ")), "{text}");
}
