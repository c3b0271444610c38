//! `racklet-flash write <rockchip board> --loader-to-storage --loader FILE`
//! (rkdeveloptool `ul`) through the binary against the virtual usbplug's
//! eMMC (`--sim-storage`). What must land at LBA 64 is built here by a
//! test-side reference written from rkdeveloptool's main.cpp
//! (`MakeIDBlockData`, `MakeSector0..3`) and DefineHeader.h with the
//! sim's own RC4 and CRCs, not from the code under test
//! (`racklet_tests::rkdeveloptool_ul_idb`; the USB rig checks that Debian's
//! rkdeveloptool `ul` writes the same bytes).

use std::path::Path;
use std::process::Output;

use racklet_tests::{file, pattern, rk_usbplug, rkboot};

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
fn loader_to_storage_leaves_rkdeveloptools_idb_at_lba_64() {
    for rc4_off in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let (f, data, boot) = racklet_tests::rk3568_ul_loader(b"3568", rc4_off);
        file(d.path(), "loader.bin", &f);
        let o = run(
            d.path(),
            &[
                "write",
                "rock-3a",
                "--loader-to-storage",
                "--loader",
                "loader.bin",
                "--simulate",
                "--sim-storage",
                "emmc.img",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let want = racklet_tests::rkdeveloptool_ul_idb(&data, &boot, rc4_off);
        let got = emmc(&d.path().join("emmc.img"), 64 * 512, want.len());
        assert!(got == want, "rc4 off {rc4_off}: the IDB at LBA 64 differs from rkdeveloptool's rules");
        // Nothing before LBA 64, nothing after the IDB.
        assert!(emmc(&d.path().join("emmc.img"), 0, 64 * 512).iter().all(|b| *b == 0));
        assert!(emmc(&d.path().join("emmc.img"), 64 * 512 + want.len() as u64, 4096).iter().all(|b| *b == 0));
        // `info` of what is there now decodes it.
        std::fs::write(d.path().join("idb.bin"), &got).unwrap();
        let o = run(d.path(), &["info", "idb.bin"]);
        let t = text(&o);
        assert!(t.contains("header v1") && t.contains("rkdeveloptool IDB") && t.contains(" ok"), "{t}");
    }
}

/// The reference agrees with the real peer: in the USB rig (tests/usbrig,
/// step rkd-ul-sha) Debian's rkdeveloptool 1.32 `ul` of this loader left
/// 156 sectors at LBA 64 whose SHA-256 is this (racklet-flash's
/// --loader-to-storage left the same, step rkd-ul-cmp).
#[test]
fn reference_matches_what_debians_rkdeveloptool_ul_wrote() {
    let (_, data, boot) = racklet_tests::rk3568_ul_loader(b"3568", true);
    let idb = racklet_tests::rkdeveloptool_ul_idb(&data, &boot, true);
    assert_eq!(idb.len(), 156 * 512);
    let sha = racklet_link::transcript::sha256_hex(&idb);
    assert_eq!(sha, "3c82707f09249545472c89d6cc99033525eaed59c1f1ba9b1d40182a1ff303a2");
}

#[test]
fn an_idbloader_image_is_written_as_it_is() {
    let d = tempfile::tempdir().unwrap();
    file(d.path(), "spl.bin", &pattern(30_001, 1));
    let o = run(d.path(), &["image", "rock-3a", "spl.bin", "-o", "idb.img"]);
    assert!(o.status.success(), "{}", text(&o));
    let img = std::fs::read(d.path().join("idb.img")).unwrap();
    // The board runs its usbplug already (--fault already-loader).
    let sim = ["--simulate", "--sim-storage", "emmc.img", "--fault", "already-loader"];
    let mut args = vec!["write", "rock-3a", "--loader-to-storage", "--loader", "idb.img"];
    args.extend(sim);
    let o = run(d.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(emmc(&d.path().join("emmc.img"), 64 * 512, img.len()) == img);
    // From maskrom an idbloader cannot bring the board up.
    let o = run(
        d.path(),
        &[
            "write",
            "rock-3a",
            "--loader-to-storage",
            "--loader",
            "idb.img",
            "--simulate",
            "--sim-storage",
            "e2.img",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no --loader"), "{}", text(&o));
}

#[test]
fn bad_loaders_are_exit_2_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    // A loader for another chip.
    let (f, _, _) = racklet_tests::rk3568_ul_loader(b"3399", true);
    file(d.path(), "other.bin", &f);
    // A loader without FlashData.
    let no_data = rkboot(
        b"LDR ",
        b"3568",
        &[
            (1, "ddr", pattern(6144, 2), 1),
            (2, "usbplug", rk_usbplug(10240, 3), 0),
            (4, "FlashBoot", pattern(4096, 4), 0),
        ],
    );
    file(d.path(), "nodata.bin", &no_data);
    // An idbloader for RK3399 (header v1 'RK33') on an RK3568 board.
    file(d.path(), "spl.bin", &pattern(9000, 1));
    let o = run(d.path(), &["image", "rockpro64", "spl.bin", "-o", "rk3399.img"]);
    assert!(o.status.success(), "{}", text(&o));
    for (l, says) in [("other.bin", "3399"), ("nodata.bin", "FlashData"), ("rk3399.img", "not for rk3568")] {
        let o = run(
            d.path(),
            &[
                "write",
                "rock-3a",
                "--loader-to-storage",
                "--loader",
                l,
                "--simulate",
                "--sim-storage",
                "emmc.img",
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{l}: {}", text(&o));
        assert!(text(&o).contains(says), "{l}: {}", text(&o));
        let p = d.path().join("emmc.img");
        assert!(
            !p.exists() || emmc(&p, 0, 256 << 10).iter().all(|b| *b == 0),
            "{l}: the storage was written"
        );
    }
    // Only for Rockchip boards.
    let o =
        run(d.path(), &["write", "canmv-k230", "--loader-to-storage", "--loader", "other.bin", "--simulate"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--loader-to-storage"), "{}", text(&o));
}

/// A loader with a "FlashHead" entry takes rkdeveloptool's new-IDB path:
/// READ CAPABILITY first (the vendor usbplug sets bit 0 of byte 1 when
/// built with CONFIG_ROCKCHIP_NEW_IDB, as rk3568-usbplug.config is), then
/// FlashHead, FlashData and FlashBoot at LBA 64, no sectors 0-3.
#[test]
fn a_flashhead_loader_takes_rkdeveloptools_new_idb_path() {
    for rc4_off in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let (f, head, data, boot) = racklet_tests::new_idb_loader(b"3568", rc4_off);
        file(d.path(), "loader.bin", &f);
        let o = run(
            d.path(),
            &[
                "write",
                "rock-3a",
                "--loader-to-storage",
                "--loader",
                "loader.bin",
                "--simulate",
                "--sim-storage",
                "emmc.img",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "rc4 off {rc4_off}: {}", text(&o));
        let want = racklet_tests::rkdeveloptool_ul_new_idb(&head, &data, &boot, rc4_off);
        let img = d.path().join("emmc.img");
        let got = emmc(&img, 64 * 512, want.len());
        assert!(got == want, "rc4 off {rc4_off}: the new IDB at LBA 64 differs from rkdeveloptool's rules");
        assert!(emmc(&img, 0, 64 * 512).iter().all(|b| *b == 0));
        assert!(emmc(&img, 64 * 512 + want.len() as u64, 4096).iter().all(|b| *b == 0));
    }
}

/// A usbplug built without CONFIG_ROCKCHIP_NEW_IDB (RK3399's: no
/// rk3399-usbplug.config sets it) answers READ CAPABILITY without the bit;
/// rkdeveloptool then refuses ("Device not support to upgrade the
/// loader"), and so must we, before anything is written.
#[test]
fn a_flashhead_loader_is_refused_by_a_usbplug_without_new_idb() {
    let d = tempfile::tempdir().unwrap();
    let (f, _, _, _) = racklet_tests::new_idb_loader(b"330C", true);
    file(d.path(), "loader.bin", &f);
    let o = run(
        d.path(),
        &[
            "write",
            "rockpro64",
            "--loader-to-storage",
            "--loader",
            "loader.bin",
            "--simulate",
            "--sim-storage",
            "emmc.img",
            "--fault",
            "already-loader",
        ],
    );
    // The device refused (rejected, 7), with what to use instead.
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(text(&o).contains("READ CAPABILITY"), "{}", text(&o));
    assert!(text(&o).contains("hint:") && text(&o).contains("idbloader"), "{}", text(&o));
    let p = d.path().join("emmc.img");
    assert!(!p.exists() || emmc(&p, 0, 256 << 10).iter().all(|b| *b == 0), "the storage was written");
}
