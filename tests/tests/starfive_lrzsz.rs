//! The real-peer test: racklet-flash's XMODEM sender against
//! lrzsz's `rx` (the mock ROM) and, after it, its YMODEM sender against
//! `rb` (the mock U-Boot SPL), both behind one socat pseudo-terminal, as
//! shared/protocols/starfive.md §6 describes. `rx` polls only every ~13.5 s,
//! so this is the one slow test; it is bounded by a timeout.

use std::path::Path;
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use racklet_tests::{file, pattern};

fn need(tool: &str) {
    let ok = Proc::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is needed for the real-peer test: apt-get install -y lrzsz socat");
}

/// CRC-32/ISO-HDLC (zlib), reflected bitwise form, written out here.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path, timeout: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < timeout, "socat did not create {}", path.display());
        // Waiting for socat to create its pty link.
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "real-peer tier (needs lrzsz and socat): scripts/test.sh runs it"]
fn xmodem_to_rx_then_ymodem_to_rb_deliver_the_files_intact() {
    need("rx");
    need("rb");
    need("socat");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An odd size: 1K blocks plus a tail; XMODEM pads to a whole block.
    let payload = pattern(100_003, 7);
    let bin = file(d, "spl.bin", &payload);
    let itb_bytes = pattern(40_961, 9);
    let itb = file(d, "u-boot.itb", &itb_bytes);
    let out = d.join("rx-out.bin");
    let ydir = d.join("ydir");
    std::fs::create_dir(&ydir).unwrap();
    let tty = d.join("tty");
    let peer = Peer(
        Proc::new("socat")
            .arg(format!("PTY,link={},raw,echo=0,wait-slave", tty.display()))
            // lrzsz runs restricted by default and refuses absolute output
            // paths ("rx: Security Violation"): run both receivers inside the
            // temporary directory and give them relative names only.
            .arg("SYSTEM:rx -X -c -b -y rx-out.bin && cd ydir && exec rb --ymodem -b -y")
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat runs"),
    );
    wait_for(&tty, Duration::from_secs(5));

    let assert = Command::cargo_bin("racklet-flash")
        .unwrap()
        .args(["maskrom", "visionfive2"])
        .arg(&bin)
        .arg("--port")
        .arg(&tty)
        .arg("--then-ymodem")
        .arg(&itb)
        .args(["--wait", "30s", "--stage-timeout", "30s"])
        .timeout(Duration::from_secs(90))
        .assert();
    let o = assert.get_output().clone();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "racklet-flash failed:\n{stdout}\n{stderr}");
    drop(peer);

    // rx got header ‖ payload, padded to a whole 128-byte block.
    let got = std::fs::read(&out).unwrap();
    let mut want = vec![0u8; 0x400];
    want[0..4].copy_from_slice(&0x240u32.to_le_bytes());
    want[4..8].copy_from_slice(&0x20_0000u32.to_le_bytes());
    want[0x284..0x288].copy_from_slice(&0x0101_0101u32.to_le_bytes());
    want[0x288..0x28C].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    want[0x28C..0x290].copy_from_slice(&0x400u32.to_le_bytes());
    want[0x290..0x294].copy_from_slice(&crc32(&payload).to_le_bytes());
    want.extend_from_slice(&payload);
    assert!(got.len() >= want.len() && got.len().is_multiple_of(128), "rx wrote {} bytes", got.len());
    assert!(got[..want.len()] == want[..], "rx received something else than header ‖ payload");
    // rb stores the YMODEM file under its name, at its exact length.
    let y = std::fs::read(ydir.join("u-boot.itb")).expect("rb stored u-boot.itb");
    assert!(y == itb_bytes, "the YMODEM file differs ({} bytes vs {})", y.len(), itb_bytes.len());
}
