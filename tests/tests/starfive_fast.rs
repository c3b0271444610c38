//! `racklet-flash maskrom visionfive2 FILE --fast`: the fastload
//! loader by the JH7110 ROM's XMODEM, then FILE through the loader on the
//! same port. Against the virtual board, whose ROM recognises the loader it
//! started by its bytes (the banner and sync pattern of docs/fastload.md)
//! and then answers as the virtual loader (racklet-sim's fastload.rs).
//! Payloads are built here: ELF files by hand (racklet_tests::elf64),
//! linked into the loader's image window of docs/fastload.md §6
//! (0x0800_8000 … 0x0804_0000).

use std::path::Path;

use racklet_tests::{detail, elf64, file, pattern};

const RISCV: u16 = 243;
/// Where the JH7110 loader puts images (docs/fastload.md §6).
const WINDOW: u64 = 0x0800_8000;
const WINDOW_END: u64 = 0x0804_0000;

fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let o = racklet_tests::racklet_flash().current_dir(dir).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// A directory with `hi.elf`: 20,000 bytes linked at the window's base.
fn payload_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let body = pattern(20_000, 7);
    file(dir.path(), "hi.elf", &elf64(RISCV, WINDOW + 0x40, &[(WINDOW, &body, 20_000)]));
    dir
}

/// The JSON events of a run's stdout.
fn events(out: &str) -> Vec<serde_json::Value> {
    out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn done(out: &str) -> Option<serde_json::Value> {
    events(out).into_iter().find(|e| e["event"] == "done")
}

fn stages(out: &str) -> Vec<String> {
    events(out)
        .iter()
        .filter(|e| e["event"] == "stage")
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn fast_sends_the_loader_by_xmodem_then_the_payload_through_it() {
    let dir = payload_dir();
    let (code, out, err) =
        run(&["--json", "maskrom", "visionfive2", "hi.elf", "--fast", "--simulate"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(stages(&out), ["xmodem-1k", "fastload"], "{out}");
    let d = done(&out).unwrap_or_else(|| panic!("no done event: {out}{err}"));
    let loader = detail(&d, "loader").unwrap_or_else(|| panic!("no loader fact: {d}"));
    // The loader headed as any SPL: 0x400 bytes of header over it.
    assert!(loader.contains("wrapped in the spl_tool header) by XMODEM-1K"), "{loader}");
    let fast = detail(&d, "fastload").unwrap_or_else(|| panic!("no fastload fact: {d}"));
    assert!(fast.starts_with("20000 bytes at 0x8008000"), "{fast}");
    // The default rate: the fastest exact one of JH7110 UART0's 24 MHz.
    assert!(fast.contains("1500000 baud"), "{fast}");
    let started = detail(&d, "started").unwrap_or_else(|| panic!("no verdict fact: {d}"));
    assert!(started.contains("0x8008040"), "{started}");
    // The virtual board's own account: the loader it started received the
    // image, checked it and jumped.
    let v = d["facts"]["virtual_rom"].as_str().unwrap_or_default();
    assert!(v.contains("the fastload loader"), "{v}");
    assert!(v.contains("20000 bytes at 0x08008000"), "{v}");
    assert!(v.contains("CRC-32 ok") && v.contains("jumped to 0x08008040"), "{v}");
}

#[test]
fn a_raw_payload_goes_to_the_window_base_and_fast_baud_is_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "raw.bin", &pattern(5000, 3));
    let args = ["--json", "maskrom", "vf2", "raw.bin", "--fast", "--fast-baud", "500000", "--simulate"];
    let (code, out, err) = run(&args, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let d = done(&out).unwrap();
    let fast = detail(&d, "fastload").unwrap();
    assert!(fast.starts_with("5000 bytes at 0x8008000") && fast.contains("500000 baud"), "{fast}");
    let v = d["facts"]["virtual_rom"].as_str().unwrap_or_default();
    assert!(v.contains("5000 bytes at 0x08008000"), "{v}");
}

#[test]
fn a_corrupted_block_through_the_loader_is_resent() {
    let dir = payload_dir();
    let args = [
        "--json",
        "maskrom",
        "visionfive2",
        "hi.elf",
        "--fast",
        "--simulate",
        "--fault",
        "fast-corrupt-block",
    ];
    let (code, out, err) = run(&args, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let d = done(&out).unwrap();
    let fast = detail(&d, "fastload").unwrap();
    assert!(fast.contains("1 blocks resent"), "{fast}");
    let v = d["facts"]["virtual_rom"].as_str().unwrap_or_default();
    assert!(v.contains("1 bad frames dropped"), "{v}");
}

#[test]
fn an_image_the_loader_finds_damaged_in_memory_is_refused_never_started() {
    let dir = payload_dir();
    let args = [
        "--json",
        "maskrom",
        "visionfive2",
        "hi.elf",
        "--fast",
        "--simulate",
        "--fault",
        "fast-corrupt-memory",
    ];
    let (code, out, err) = run(&args, dir.path());
    assert_eq!(code, 7, "{out}{err}");
    assert!(done(&out).is_none(), "{out}");
    assert!(out.contains("CRC-32"), "{out}");
}

#[test]
fn a_rate_the_adapter_cannot_carry_falls_back_to_115200() {
    let dir = payload_dir();
    let args =
        ["--json", "maskrom", "visionfive2", "hi.elf", "--fast", "--simulate", "--fault", "fast-no-sync"];
    let (code, out, err) = run(&args, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let fast = detail(&done(&out).unwrap(), "fastload").unwrap().to_string();
    assert!(fast.contains("115200 baud") && fast.contains("1500000 baud did not sync"), "{fast}");
}

#[test]
fn fast_with_a_next_stage_is_refused() {
    let dir = payload_dir();
    file(dir.path(), "u-boot.itb", &pattern(3000, 1));
    let args = ["maskrom", "visionfive2", "hi.elf", "--fast", "--then-ymodem", "u-boot.itb", "--simulate"];
    let (code, out, err) = run(&args, dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--fast") && err.contains("--then-ymodem"), "{err}");
}

#[test]
fn fast_is_refused_on_other_boards() {
    let dir = payload_dir();
    let (code, out, err) = run(&["maskrom", "canmv-k230", "hi.elf", "--fast", "--simulate"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--fast is a starfive option"), "{err}");
}

#[test]
fn a_payload_that_does_not_fit_the_loaders_window_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    // One byte over the window.
    file(dir.path(), "big.bin", &pattern((WINDOW_END - WINDOW + 1) as usize, 2));
    // Linked at the SRAM base, where the loader itself runs.
    let body = pattern(4000, 5);
    file(dir.path(), "low.elf", &elf64(RISCV, 0x0800_0000, &[(0x0800_0000, &body, 4000)]));
    for f in ["big.bin", "low.elf"] {
        let (code, out, err) =
            run(&["--json", "maskrom", "visionfive2", f, "--fast", "--simulate"], dir.path());
        assert_eq!(code, 2, "{f}: {out}{err}");
        assert!(stages(&out).is_empty(), "{f}: nothing may be sent: {out}");
        assert!(out.contains(f) && out.contains("0x8008000"), "{f}: {out}");
    }
    let (code, out, err) =
        run(&["maskrom", "visionfive2", "big.bin", "--fast-baud", "500000", "--simulate"], dir.path());
    assert_eq!(code, 2, "--fast-baud without --fast: {out}{err}");
}

/// The payload's console after --fast: `--monitor TTY --expect RE` still
/// watches it (here a second pty that prints the hello late, as a board's
/// console would after the loader's jump).
#[test]
fn monitor_and_expect_still_watch_the_console_after_the_fast_load() {
    use std::io::Write;
    let dir = payload_dir();
    let pair = racklet_sim::serial::PtyPair::new().unwrap();
    let mut dev = pair.device.try_clone_native().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let _ = dev.write_all(b"racklet: hello from visionfive2 (jh7110) hart 1\r\n");
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let args = ["maskrom", "visionfive2", "hi.elf", "--fast", "--simulate", "--monitor", &pair.path];
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--expect", "racklet: hello from visionfive2", "--expect-timeout", "10s"]);
    let (code, out, err) = run(&a, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("console matched: racklet: hello from visionfive2"), "{err}");
    t.join().unwrap();
}
