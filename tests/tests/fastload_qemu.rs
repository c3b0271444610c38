//! End to end in QEMU (issue 21): the prebuilt fastload loader runs as
//! `-kernel` on the virt machines with its UART on a pty, and
//! `racklet-flash fastload --port <pty> hello.elf --expect 'racklet: hello'`
//! loads the prebuilt hello through it, which then prints on the same port.
//! QEMU comes from scripts/test.sh (qemu-system-misc, qemu-system-arm); a
//! machine without it skips these tests and says so.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use racklet_tests::racklet_flash;

struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prebuilt(board: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../payloads/prebuilt").join(board).join(file)
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Starts QEMU with `fastload.elf` of `board` and returns it with its pty.
fn start(qemu: &str, machine: &[&str], board: &str) -> Option<(Qemu, String)> {
    if !have(qemu) {
        eprintln!("skipped: {qemu} is not installed (scripts/test.sh installs it)");
        return None;
    }
    let mut child = Command::new(qemu)
        .args(machine)
        // -no-shutdown: when hello powers the machine off, QEMU stops but
        // keeps the pty, so its last words are not lost with it.
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-nic",
            "none",
            "-no-shutdown",
            "-serial",
            "pty",
            "-kernel",
        ])
        .arg(prebuilt(board, "fastload.elf"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("QEMU starts");
    let out = child.stdout.take().expect("stdout");
    let mut q = Qemu(child);
    // "char device redirected to /dev/pts/N (label serial0)"
    let mut line = String::new();
    let mut r = BufReader::new(out);
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = q.0.kill();
            panic!("QEMU exited without naming its pty");
        }
        if let Some(i) = line.find("/dev/pts/") {
            let pty: String = line[i..].chars().take_while(|c| !c.is_whitespace()).collect();
            // Keep reading QEMU's stdout so it never blocks on it.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while r.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return Some((q, pty));
        }
    }
}

fn load_hello(qemu: &str, machine: &[&str], board: &str, load: &str) {
    let Some((_qemu, pty)) = start(qemu, machine, board) else { return };
    let a = racklet_flash()
        .args(["fastload", "--port", &pty])
        .arg(prebuilt(board, "hello.elf"))
        .args(["--expect", "racklet: hello from", "--expect-timeout", "20s"])
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    let o = a.get_output();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("started at {load}")), "{err}");
    assert!(err.contains("console matched: racklet: hello from"), "{err}");
}

#[test]
fn riscv64_virt_loads_hello_through_the_loader() {
    load_hello("qemu-system-riscv64", &["-M", "virt", "-bios", "none"], "qemu-virt-riscv64", "0x80000000");
}

#[test]
fn aarch64_virt_loads_hello_through_the_loader() {
    load_hello(
        "qemu-system-aarch64",
        &["-M", "virt", "-cpu", "cortex-a53"],
        "qemu-virt-aarch64",
        "0x40080000",
    );
}

#[test]
fn an_image_for_another_machine_is_refused_and_nothing_runs() {
    let Some((_qemu, pty)) =
        start("qemu-system-riscv64", &["-M", "virt", "-bios", "none"], "qemu-virt-riscv64")
    else {
        return;
    };
    // The aarch64 hello is linked at 0x40080000, outside the riscv64
    // loader's window: a bad input (exit 2), before any block is sent.
    let a = racklet_flash()
        .args(["fastload", "--port", &pty])
        .arg(prebuilt("qemu-virt-aarch64", "hello.elf"))
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("does not fit the loader's image window 0x80000000"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}
