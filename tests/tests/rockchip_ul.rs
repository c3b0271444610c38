//! `racklet-flash write <rockchip board> --loader-to-storage --loader FILE`
//! (rkdeveloptool `ul`) through the binary against the virtual usbplug's
//! eMMC (`--sim-storage`). What must land at LBA 64 is built here by a
//! test-side reference written from rkdeveloptool's main.cpp
//! (`MakeIDBlockData`, `MakeSector0..3`) and DefineHeader.h with the
//! sim's own RC4 and CRCs, not from the code under test.

use std::path::Path;
use std::process::Output;

use racklet_sim::crc::{crc16_xmodem, crc32_rockchip};
use racklet_sim::rockchip::rc4_xor;
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

/// rkdeveloptool `ul`'s IDB for FlashData `data` and FlashBoot `boot`,
/// `rc4` the loader header's byte 0x2C.
fn reference_idb(data: &[u8], boot: &[u8], rc4: bool) -> Vec<u8> {
    let al = |n: usize| n.div_ceil(2048) * 4; // ALIGN(n, 2048) / 512
    let (ds, bs) = (al(data.len()), al(boot.len()));
    let mut s0 = vec![0u8; 512];
    s0[0..4].copy_from_slice(&[0x55, 0xaa, 0xf0, 0x0f]); // dwTag 0x0FF0AA55
    s0[8] = rc4 as u8; // uiRc4Flag
    s0[12] = 4; // usBootCode1Offset
    s0[14] = 4; // usBootCode2Offset
    s0[506..508].copy_from_slice(&(ds as u16).to_le_bytes()); // usBootDataSize
    s0[508..510].copy_from_slice(&((ds + bs) as u16).to_le_bytes()); // usBootCodeSize
    let mut s1 = vec![0u8; 512];
    s1[0] = 0x0c; // usSysReservedBlock
    s1[2..4].copy_from_slice(&[0xff, 0xff]); // usDisk0Size
    s1[10..14].copy_from_slice(b"RK28"); // uiChipTag 0x38324B52
    let s3 = vec![0u8; 512];
    let mut s2 = vec![0u8; 512];
    s2[491..493].copy_from_slice(b"VC");
    s2[494..496].copy_from_slice(&crc16_xmodem(&s0).to_le_bytes());
    s2[496..498].copy_from_slice(&crc16_xmodem(&s1).to_le_bytes());
    s2[506..509].copy_from_slice(b"CRC");
    s2[510..512].copy_from_slice(&crc16_xmodem(&s3).to_le_bytes());
    let enc = |b: &[u8]| {
        let mut v = b.to_vec();
        if rc4 {
            for c in v.chunks_exact_mut(512) {
                rc4_xor(c);
            }
        }
        v
    };
    let mut body = vec![0u8; (ds + bs) * 512];
    body[..data.len()].copy_from_slice(&enc(data));
    body[ds * 512..ds * 512 + boot.len()].copy_from_slice(&enc(boot));
    s2[498..502].copy_from_slice(&crc32_rockchip(&body).to_le_bytes());
    for s in [&mut s0, &mut s2] {
        rc4_xor(s);
    }
    let mut s3 = s3;
    rc4_xor(&mut s3);
    [s0, s1, s2, s3, body].concat()
}

/// An RK3568 loader as rkbin's RK3568MINIALL.ini makes one, with the
/// [LOADER] entries `ul` reads (sizes off the 2 KiB grid).
fn loader(chip: &[u8; 4], rc4_off: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (data, boot) = (pattern(5000, 7), pattern(70_001, 8));
    let mut f = rkboot(
        b"LDR ",
        chip,
        &[
            (1, "rk3568_ddr_1560MHz_v", pattern(6144, 2), 1),
            (2, "rk356x_usbplug_v1", rk_usbplug(10240, 3), 0),
            (4, "FlashData", data.clone(), 0),
            (4, "FlashBoot", boot.clone(), 0),
        ],
    );
    if !rc4_off {
        // Byte 0x2C cleared; the trailing CRC32 made again.
        f[0x2c] = 0;
        let n = f.len() - 4;
        let c = crc32_rockchip(&f[..n]);
        f[n..].copy_from_slice(&c.to_le_bytes());
    }
    (f, data, boot)
}

#[test]
fn loader_to_storage_leaves_rkdeveloptools_idb_at_lba_64() {
    for rc4_off in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let (f, data, boot) = loader(b"3568", rc4_off);
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
        let want = reference_idb(&data, &boot, rc4_off);
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
    let (f, _, _) = loader(b"3399", true);
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
