//! `racklet-flash image <rockchip board>` (idbloader, mkimage -T rksd) and
//! `info` of one, through the binary. The codec's bytes are compared with
//! Debian's mkimage for every SoC in protocols/rockchip/tests/idb.rs; here
//! the same for the boards' own SoCs through the CLI, and the exit codes.

use std::path::Path;
use std::process::{Command, Output};

use racklet_tests::{file, pattern};

fn run(dir: &Path, args: &[&str]) -> Output {
    racklet_tests::racklet_flash().current_dir(dir).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
#[ignore = "real-peer tier (Debian's mkimage, u-boot-tools): scripts/test.sh runs it"]
fn image_is_mkimages_for_rk3568_and_rk3399_boards() {
    // A real-peer test never skips: a missing mkimage fails it with the
    // package to install (scripts/test.sh installs it).
    assert!(
        Command::new("mkimage").arg("-V").output().is_ok_and(|o| o.status.success()),
        "Debian's mkimage is missing: apt-get install u-boot-tools"
    );
    let d = tempfile::tempdir().unwrap();
    for (board, soc) in [("rock-3a", "rk3568"), ("quartz64-a", "rk3568"), ("rockpro64", "rk3399")] {
        for (tpl_len, spl_len) in [(6000usize, 30_001usize), (8192, 0xf000), (1, 2047)] {
            file(d.path(), "tpl.bin", &pattern(tpl_len, 1));
            file(d.path(), "spl.bin", &pattern(spl_len, 2));
            for with_tpl in [true, false] {
                let mut args = vec!["image", board, "spl.bin", "-o", "ours.img", "--force"];
                let data = if with_tpl {
                    args.extend(["--dram", "tpl.bin"]);
                    "tpl.bin:spl.bin"
                } else {
                    "spl.bin"
                };
                let o = run(d.path(), &args);
                assert!(o.status.success(), "{board}: {}", text(&o));
                let m = Command::new("mkimage")
                    .current_dir(d.path())
                    .args(["-n", soc, "-T", "rksd", "-d", data, "theirs.img"])
                    .output()
                    .unwrap();
                assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
                let ours = std::fs::read(d.path().join("ours.img")).unwrap();
                let theirs = std::fs::read(d.path().join("theirs.img")).unwrap();
                assert!(ours == theirs, "{board} -d {data} ({tpl_len}, {spl_len}): differs from mkimage");
            }
        }
    }
}

#[test]
fn an_spl_too_large_for_sram_is_exit_2_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "spl.bin", &pattern(0xf001, 1));
    let o = run(d.path(), &["image", "rock-3a", "spl.bin", "-o", "idb.img"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("spl.bin") && t.contains("0xf000") && t.contains("hint:"), "{t}");
    assert!(!d.path().join("idb.img").exists());
    // The TPL is then the SRAM stage: the same SPL with a small TPL builds.
    file(d.path(), "tpl.bin", &pattern(4000, 2));
    let o = run(d.path(), &["image", "rock-3a", "spl.bin", "--dram", "tpl.bin", "-o", "idb.img"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("sector 64"), "{}", text(&o));
}

#[test]
fn an_empty_spl_is_exit_2() {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "spl.bin", &pattern(100, 1));
    file(d.path(), "tpl.bin", &[]);
    let o = run(d.path(), &["image", "rockpro64", "spl.bin", "--dram", "tpl.bin", "-o", "idb.img"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!d.path().join("idb.img").exists());
}

#[test]
fn dram_is_refused_on_other_boards_image() {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "spl.bin", &pattern(100, 1));
    file(d.path(), "tpl.bin", &pattern(100, 1));
    let o = run(d.path(), &["image", "visionfive2", "spl.bin", "--dram", "tpl.bin", "-o", "x.img"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--dram is a rockchip option"), "{}", text(&o));
}

#[test]
fn info_decodes_the_image_it_built() {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "spl.bin", &pattern(30_001, 1));
    file(d.path(), "tpl.bin", &pattern(6000, 2));
    for (board, header, soc) in [("rockpro64", "header v1", "'RK33'"), ("rock-5b", "header v2", "rk3588")] {
        let o = run(d.path(), &["image", board, "spl.bin", "--dram", "tpl.bin", "-o", "i.img", "--force"]);
        assert!(o.status.success(), "{}", text(&o));
        let o = run(d.path(), &["info", "i.img"]);
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(t.contains(header) && t.contains(soc), "{t}");
        // TPL: 6000 B padded to 6144 at 0x800; SPL 30001 padded to 30720 after it.
        assert!(t.contains("6144 B at 0x800") && t.contains("30720 B at 0x2000"), "{t}");
    }
}
