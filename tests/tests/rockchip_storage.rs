//! The storage verbs on Rockchip boards through the binary (`--simulate`):
//! the virtual maskrom brings up its usbplug, whose virtual eMMC (answering
//! as U-Boot's f_rockusb.c does) `--sim-storage` keeps between runs. The
//! flow and the wire are tested in-process in
//! `protocols/rockchip/tests/storage.rs`; here: exit codes, messages, JSON,
//! files.

use std::path::Path;
use std::process::Output;

use racklet_tests::{detail, file, pattern, rk3568_loader};
use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Output {
    racklet_tests::racklet_flash().current_dir(dir).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn done(o: &Output) -> Value {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "done")
        .unwrap_or_else(|| panic!("no done event in\n{}", text(o)))
}

/// The eMMC image --sim-storage keeps, read at byte `at`.
fn emmc(p: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(p).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = vec![0; len];
    f.read_exact(&mut b).unwrap();
    b
}

const SIM: [&str; 5] = ["--loader", "loader.bin", "--simulate", "--sim-storage", "emmc.img"];

fn setup() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "loader.bin", &rk3568_loader());
    d
}

#[test]
fn write_then_read_back_in_a_second_run() {
    let d = setup();
    let img = pattern(300_000, 2);
    file(d.path(), "os.img", &img);
    let mut args = vec!["write", "rock-3a", "os.img", "--at", "0x2000", "--json"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v = done(&o);
    let wrote = detail(&v, "wrote os.img").unwrap_or_else(|| panic!("{v}"));
    assert!(wrote.contains("300000 bytes at LBA 8192 (586 sectors"), "{wrote}");
    assert!(wrote.contains("read back and compared"), "{wrote}");
    let e = d.path().join("emmc.img");
    assert_eq!(std::fs::metadata(&e).unwrap().len(), 8 << 30, "the usbplug's 8 GiB eMMC");
    let at = 0x2000 * 512;
    assert_eq!(emmc(&e, at, 300_000), img);
    assert_eq!(emmc(&e, at + 300_000, 32), vec![0; 32], "the last sector padded with zeros");
    // A second run (a fresh board in maskrom, the same eMMC) reads it back.
    let mut args = vec!["read", "rock-3a", "--at", "8192", "--size", "300032", "-o", "back.img"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let back = std::fs::read(d.path().join("back.img")).unwrap();
    assert_eq!(&back[..300_000], &img[..]);
    assert_eq!(back.len(), 300_032);
    // The read never replaces a file without --force.
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("back.img"), "{}", text(&o));
}

#[test]
fn an_image_past_the_end_is_exit_2_and_nothing_is_written() {
    let d = setup();
    file(d.path(), "os.img", &pattern(4096, 1));
    // 16,777,216 sectors; 4 left at the LBA, the image needs 8.
    let mut args = vec!["write", "rock-3a", "os.img", "--at", "16777212"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("os.img") && t.contains("past the end") && t.contains("nothing was written"), "{t}");
    assert!(!t.contains("done:"), "{t}");
    let e = d.path().join("emmc.img");
    assert_eq!(emmc(&e, (16_777_212) * 512, 2048), vec![0; 2048]);
}

#[test]
fn bad_inputs_are_exit_2_before_the_board_is_touched() {
    let d = setup();
    file(d.path(), "os.img", &pattern(4096, 1));
    file(d.path(), "os.img.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    for (args, needle) in [
        (vec!["read", "rock-3a", "--at", "0", "--size", "1000", "-o", "x.img"], "512-byte sectors"),
        (vec!["read", "rock-3a", "--size", "4096", "-o", "x.img"], "needs --at LBA and --size N"),
        (vec!["write", "rock-3a", "os.img", "--at", "0", "--partition", "boot"], "give one"),
        (vec!["write", "rock-3a", "os.img.gz"], "os.img.gz: the gzip stream is damaged"),
        (vec!["write", "rock-3a", "missing.img"], "missing.img"),
        (vec!["write", "rock-3a", "os.img", "--then", "os.img"], "--then"),
        (vec!["erase", "rock-3a", "--at", "0", "--size", "4K", "--medium", "spi-nor"], "--medium spi-nor"),
        (vec!["write", "rock-3a", "os.img", "--at", "zz"], "not a size"),
    ] {
        let mut a = args.clone();
        a.extend(SIM);
        let o = run(d.path(), &a);
        assert_eq!(code(&o), 2, "{args:?}\n{}", text(&o));
        assert!(text(&o).contains(needle), "{args:?}: no {needle:?} in\n{}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    // A loader built for another chip (an RK3399 RKBOOT for a rock-3a):
    // refused by the plan, naming the file and both chips, before the
    // virtual maskrom sees a byte.
    let rk3399 = racklet_tests::rkboot(
        b"LDR ",
        b"330C",
        &[
            (1, "rk3399_ddr_800MHz_v", pattern(6144, 2), 1),
            (2, "rk3399_usbplug_v1", racklet_tests::rk_usbplug(10240, 3), 0),
        ],
    );
    file(d.path(), "rk3399-loader.bin", &rk3399);
    let o = run(
        d.path(),
        &[
            "write",
            "rock-3a",
            "os.img",
            "--loader",
            "rk3399-loader.bin",
            "--simulate",
            "--sim-storage",
            "other.img",
        ],
    );
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("rk3399-loader.bin: the loader is for chip '330C' (rk3399/rk3399pro)"),
        "{}",
        text(&o)
    );
    // (The virtual eMMC's file is made when the virtual board is, before
    // the plan; it must hold nothing of the image.)
    let other = d.path().join("other.img");
    assert!(!other.exists() || emmc(&other, 0, 4096) == vec![0; 4096], "nothing was written: {}", text(&o));
    // Without --loader the board in maskrom cannot be brought up.
    let o = run(d.path(), &["write", "rock-3a", "os.img", "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("--loader"), "{}", text(&o));
}

#[test]
fn partitions_lists_a_gpt_written_in_an_earlier_run_and_bound_writes() {
    let d = setup();
    // A GPT image (protective MBR, header, entries: LBA 0..34) made by the
    // sim's own GPT writer for U-Boot, then written like any image.
    let mut m = racklet_sim::storage::Medium::in_memory(8 << 30, 0);
    racklet_sim::uboot_storage::write_gpt(&mut m, &racklet_sim::uboot_storage::TH1520_LAYOUT);
    file(d.path(), "gpt.img", &m.read(0, 34 * 512).unwrap());
    let mut args = vec!["write", "rock-3a", "gpt.img"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let mut args = vec!["partitions", "rock-3a", "--json"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v = done(&o);
    assert_eq!(detail(&v, "partitions"), Some("3 in the GPT"), "{v}");
    let boot = detail(&v, "partition 2").unwrap();
    assert!(boot.starts_with("boot: LBA 4096..=1028095"), "{boot}");
    // Text: the same facts.
    let mut args = vec!["partitions", "rock-3a"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert!(text(&o).contains("root: LBA"), "{}", text(&o));
    // --partition: the write lands at the partition's first LBA.
    let img = pattern(10_000, 7);
    file(d.path(), "boot.img", &img);
    let mut args = vec!["write", "rock-3a", "boot.img", "--partition", "boot"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(emmc(&d.path().join("emmc.img"), 2 << 20, 10_000), img);
    // Larger than the partition: exit 2.
    file(d.path(), "big.img", &pattern(2031 * 1024 + 512, 8));
    let mut args = vec!["write", "rock-3a", "big.img", "--partition", "table"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("do not fit partition 'table'"), "{}", text(&o));
    let mut args = vec!["erase", "rock-3a", "--partition", "nope"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("table, boot, root"), "{}", text(&o));
}

#[test]
fn erase_and_reset_through_the_usbplug_already_running() {
    let d = setup();
    file(d.path(), "os.img", &pattern(8192, 3));
    let mut args = vec!["write", "rock-3a", "os.img", "--at", "64"];
    args.extend(SIM);
    assert_eq!(code(&run(d.path(), &args)), 0);
    // --fault already-loader: the board runs its usbplug; no --loader needed.
    let sim = ["--simulate", "--sim-storage", "emmc.img", "--fault", "already-loader"];
    let mut args = vec!["erase", "rock-3a", "--at", "65", "--size", "1K"];
    args.extend(sim);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("2 sectors from LBA 65"), "{}", text(&o));
    let e = emmc(&d.path().join("emmc.img"), 64 * 512, 8192);
    assert_eq!(&e[..512], &pattern(8192, 3)[..512]);
    assert_eq!(&e[512..1536], &[0; 1024][..]);
    assert_eq!(&e[1536..], &pattern(8192, 3)[1536..]);
    // `ef`: the whole eMMC (in memory: a file medium is read through to be
    // erased, 8 GiB of it takes seconds; crates/sim/src/storage.rs).
    let o = run(d.path(), &["erase", "rock-3a", "--whole", "--simulate", "--fault", "already-loader"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("16777216 sectors from LBA 0"), "{}", text(&o));
    let mut args = vec!["reset", "rock-3a", "--maskrom"];
    args.extend(sim);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("into maskrom"), "{}", text(&o));
}

#[test]
fn a_corrupting_emmc_fails_the_write_and_never_says_done() {
    let d = setup();
    file(d.path(), "os.img", &pattern(4096, 3));
    let args = ["write", "rock-3a", "os.img", "--loader", "loader.bin", "--simulate", "--fault", "corrupts"];
    let o = run(d.path(), &args);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert_ne!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("read back, SHA-256"), "{}", text(&o));
    assert!(!text(&o).contains("done:"), "{}", text(&o));
}

#[test]
fn a_gzip_image_is_streamed_onto_the_emmc() {
    let d = setup();
    let img = pattern(700_000, 4);
    file(d.path(), "os.img", &img);
    let z = std::process::Command::new("gzip").arg("-k").arg(d.path().join("os.img")).status().unwrap();
    assert!(z.success());
    let mut args = vec!["write", "rock-3a", "os.img.gz", "--at", "2048"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("700000 bytes at LBA 2048"), "{}", text(&o));
    assert!(text(&o).contains("read back and compared"), "{}", text(&o));
    assert_eq!(emmc(&d.path().join("emmc.img"), 2048 * 512, 700_000), img);
    // Its size is known only as it is read: past the end is caught at the
    // first piece that does not fit, and never reported done.
    let mut args = vec!["write", "rock-3a", "os.img.gz", "--at", "16777215"];
    args.extend(SIM);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("runs past the 512 bytes"), "{}", text(&o));
    assert!(!text(&o).contains("done:"), "{}", text(&o));
}
