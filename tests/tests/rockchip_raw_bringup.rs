//! The Rockchip storage verbs brought up with raw blobs (`--dram DDR
//! --usbplug FILE`, `--rkbin DIR`), as `maskrom` takes them, through the
//! binary against the virtual maskrom and usbplug (`--simulate`).

use std::path::Path;
use std::process::Output;

use racklet_tests::{file, pattern, rk_usbplug};

fn run(dir: &Path, args: &[&str]) -> Output {
    racklet_tests::racklet_flash().current_dir(dir).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn emmc(p: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(p).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = vec![0; len];
    f.read_exact(&mut b).unwrap();
    b
}

#[test]
fn write_from_maskrom_with_dram_and_usbplug() {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "ddr.bin", &pattern(3001, 2));
    file(d.path(), "plug.bin", &rk_usbplug(5000, 4));
    let img = pattern(70_000, 5);
    file(d.path(), "os.img", &img);
    let sim = ["--simulate", "--sim-storage", "emmc.img"];
    let mut args =
        vec!["write", "rock-3a", "os.img", "--at", "0x800", "--dram", "ddr.bin", "--usbplug", "plug.bin"];
    args.extend(sim);
    let o = run(d.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("brought up from maskrom"), "{}", text(&o));
    assert_eq!(emmc(&d.path().join("emmc.img"), 0x800 * 512, img.len()), img);
    // The other verbs take the same bring-up: read it back in another run.
    let o = run(
        d.path(),
        &[
            "read",
            "rock-3a",
            "--at",
            "0x800",
            "--size",
            "70144",
            "-o",
            "back.img",
            "--dram",
            "ddr.bin",
            "--usbplug",
            "plug.bin",
            "--simulate",
            "--sim-storage",
            "emmc.img",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(&std::fs::read(d.path().join("back.img")).unwrap()[..img.len()], &img[..]);
}

#[test]
fn loader_to_storage_of_an_idbloader_with_rkbin_bring_up() {
    let d = tempfile::tempdir().unwrap();
    let rk35 = d.path().join("rkbin").join("bin").join("rk35");
    std::fs::create_dir_all(&rk35).unwrap();
    file(&rk35, "rk3568_ddr_1560MHz_v1.23.bin", &pattern(3001, 2));
    file(&rk35, "rk356x_usbplug_v1.17.bin", &rk_usbplug(5000, 4));
    file(d.path(), "spl.bin", &pattern(30_001, 1));
    let o = run(d.path(), &["image", "rock-3a", "spl.bin", "-o", "idb.img"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        d.path(),
        &[
            "write",
            "rock-3a",
            "--loader-to-storage",
            "--loader",
            "idb.img",
            "--rkbin",
            "rkbin",
            "--simulate",
            "--sim-storage",
            "emmc.img",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let want = std::fs::read(d.path().join("idb.img")).unwrap();
    assert_eq!(emmc(&d.path().join("emmc.img"), 64 * 512, want.len()), want);
}

#[test]
fn bad_raw_bring_up_is_exit_2() {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "ddr.bin", &pattern(3001, 2));
    file(d.path(), "plug.bin", &rk_usbplug(5000, 4));
    file(d.path(), "os.img", &pattern(1000, 5));
    file(d.path(), "loader.bin", &racklet_tests::rk3568_loader());
    // A usbplug without DRAM init; a loader and raw blobs together; a
    // DRAM-init blob larger than the SRAM window; the flags on a K230 board.
    file(d.path(), "big.bin", &pattern(0x10000, 2));
    for (args, says) in [
        (vec!["--usbplug", "plug.bin"], "DRAM"),
        (vec!["--loader", "loader.bin", "--dram", "ddr.bin"], "give one"),
        (vec!["--dram", "big.bin", "--usbplug", "plug.bin"], "big.bin"),
    ] {
        let mut a = vec!["write", "rock-3a", "os.img", "--simulate", "--sim-storage", "emmc.img"];
        a.extend(args);
        let o = run(d.path(), &a);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{a:?}: {}", text(&o));
        let p = d.path().join("emmc.img");
        assert!(!p.exists() || emmc(&p, 0, 64 << 10).iter().all(|b| *b == 0), "{a:?}: storage written");
    }
    let o = run(d.path(), &["erase", "canmv-k230", "--whole", "--dram", "ddr.bin", "--simulate"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--dram is a rockchip flag"), "{}", text(&o));
}
