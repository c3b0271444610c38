//! End to end in QEMU: the prebuilt fastload loader runs as
//! `-kernel` on the virt machines with its UART on a pty, and
//! `racklet-flash fastload --port <pty> hello.elf --expect 'racklet: hello'`
//! loads the prebuilt hello through it, which then prints on the same port.
//! QEMU and socat come from scripts/provision.sh (qemu-system-misc,
//! qemu-system-arm, socat); without them the tests fail and say what to
//! install.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use racklet_tests::racklet_flash;

/// QEMU and the relay that holds its serial line (killed in this order).
struct Qemu {
    qemu: Child,
    relay: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        for c in [&mut self.qemu, &mut self.relay] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn prebuilt(board: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../payloads/prebuilt").join(board).join(file)
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Starts QEMU with `fastload.elf` of `board` and returns it with the tty
/// of its UART.
///
/// The UART is not QEMU's own `-serial pty`: the riscv64 virt machine's
/// test finisher (how hello powers off) ends the QEMU process at once, and
/// a pty whose master goes away is hung up, its unread input dropped — so
/// the payload's last words could be lost before racklet-flash reads them,
/// and QEMU's pty drops output while it has not yet seen the other side
/// connect. Instead QEMU serves the UART on a unix socket and waits for it
/// to be connected before the guest starts; socat holds the pty and keeps
/// it open after QEMU exits (`ignoreeof`), so every byte the guest sent
/// stays readable.
fn start(qemu: &str, machine: &[&str], board: &str) -> Option<(Qemu, String)> {
    assert!(
        have(qemu),
        "{qemu} is missing: scripts/provision.sh installs it (qemu-system-misc / qemu-system-arm)"
    );
    assert!(have("socat"), "socat is missing: scripts/provision.sh installs it");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("uart.sock");
    let tty = dir.path().join("tty");
    let mut q = Command::new(qemu)
        .args(machine)
        .args(["-display", "none", "-monitor", "none", "-nic", "none", "-no-shutdown", "-serial"])
        .arg(format!("unix:{},server=on,wait=on", sock.display()))
        .arg("-kernel")
        .arg(prebuilt(board, "fastload.elf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("QEMU starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline, "QEMU did not open {}", sock.display());
        if let Ok(Some(st)) = q.try_wait() {
            panic!("QEMU exited ({st}) before serving its UART");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let relay = Command::new("socat")
        .arg(format!("PTY,link={},raw,echo=0", tty.display()))
        .arg(format!("UNIX-CONNECT:{},ignoreeof", sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat starts");
    while !tty.exists() {
        assert!(std::time::Instant::now() < deadline, "socat did not make {}", tty.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    let path = tty.display().to_string();
    Some((Qemu { qemu: q, relay, _dir: dir }, path))
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
