//! The idbloader codec (`racklet_rockchip::idb`): against Debian's
//! `mkimage -T rksd` (u-boot-tools 2023.01; real-peer tier, which fails
//! naming the package when mkimage is absent), and its refusals.
//!
//! Expected bytes come from mkimage, never from the code under test; the
//! refusals' limits are rkcommon.c's `spl_infos` as mainline has them.

use std::path::Path;
use std::process::Command;

use racklet_link::{Classify, FailureClass};
use racklet_rockchip::idb::{self, HeaderVersion, IdbError, Stage};

fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn stage<'a>(file: &'a str, b: &'a [u8]) -> Stage<'a> {
    Stage { file, bytes: b }
}

fn mkimage_present() -> bool {
    Command::new("mkimage").arg("-V").output().is_ok_and(|o| o.status.success())
}

/// `mkimage -n soc -T rksd -d TPL:SPL` (or `-d SPL`) in `dir`.
fn mkimage(dir: &Path, soc: &str, spl: &[u8], tpl: Option<&[u8]>) -> Vec<u8> {
    std::fs::write(dir.join("spl.bin"), spl).unwrap();
    let d = match tpl {
        Some(t) => {
            std::fs::write(dir.join("tpl.bin"), t).unwrap();
            "tpl.bin:spl.bin"
        }
        None => "spl.bin",
    };
    let o = Command::new("mkimage")
        .current_dir(dir)
        .args(["-n", soc, "-T", "rksd", "-d", d, "out.img"])
        .output()
        .unwrap();
    assert!(o.status.success(), "mkimage -n {soc} -d {d}: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(dir.join("out.img")).unwrap()
}

/// Every SoC of Debian 12's mkimage (rk3066 and rk3188 RC4 their stages),
/// TPL+SPL and SPL alone, sizes on and off the 2 KiB grid, up to the
/// smaller of the two mkimage versions' init limits.
#[test]
#[ignore = "real-peer tier (Debian's mkimage, u-boot-tools): scripts/test.sh runs it"]
fn same_bytes_as_debians_mkimage() {
    assert!(
        mkimage_present(),
        "Debian's mkimage is missing: apt-get install u-boot-tools (scripts/provision.sh)"
    );
    let d = tempfile::tempdir().unwrap();
    let socs = [
        "px30", "rk3036", "rk3066", "rk3128", "rk3188", "rk322x", "rk3288", "rk3308", "rk3328", "rk3368",
        "rk3399", "rv1108", "rk3568",
    ];
    let mut compared = 0;
    for soc in socs {
        let mut limit = idb::soc_info(soc).unwrap().spl_size;
        if soc == "rk3328" {
            limit = 0x7000; // 2023.01's limit, lower than mainline's 0x7800
        }
        // Sizes: 1 byte, one under/on/over a 2 KiB step, odd, the limit.
        let mut sizes = vec![1usize, 2047, 2048, 2049, 4100, 6000, limit - 1, limit];
        sizes.retain(|s| *s <= limit);
        for (i, &init) in sizes.iter().enumerate() {
            let a = bytes(init, i as u32 + 1);
            let spl = bytes(30_001 + i * 777, i as u32 + 100);
            // SPL alone, then TPL:SPL.
            let want = mkimage(d.path(), soc, &a, None);
            let got = idb::build(soc, stage("spl.bin", &a), None).unwrap();
            assert!(got == want, "{soc} SPL alone, {init} B: differs from mkimage");
            let want = mkimage(d.path(), soc, &spl, Some(&a));
            let got = idb::build(soc, stage("spl.bin", &spl), Some(stage("tpl.bin", &a))).unwrap();
            assert!(got == want, "{soc} TPL {init} B : SPL {} B: differs from mkimage", spl.len());
            compared += 2;
        }
    }
    eprintln!("{compared} images byte for byte equal to mkimage's");
}

/// What `info` decodes agrees with what mkimage itself lists (`-l`) for
/// the sizes; checked against mkimage's own image.
#[test]
#[ignore = "real-peer tier (Debian's mkimage, u-boot-tools): scripts/test.sh runs it"]
fn decodes_mkimages_images() {
    assert!(
        mkimage_present(),
        "Debian's mkimage is missing: apt-get install u-boot-tools (scripts/provision.sh)"
    );
    let d = tempfile::tempdir().unwrap();
    let (tpl, spl) = (bytes(7000, 1), bytes(30_001, 2));
    let v1 = idb::parse(&mkimage(d.path(), "rk3399", &spl, Some(&tpl))).unwrap();
    assert_eq!(v1.version, HeaderVersion::V1);
    assert_eq!(v1.spl_hdr.as_deref(), Some("RK33"));
    assert!(v1.socs.contains(&"rk3399"));
    assert_eq!((v1.init.offset, v1.init.size), (0x800, 8192));
    assert_eq!(v1.boot.as_ref().map(|b| (b.offset, b.size)), Some((0x800 + 8192, 30720)));
    let v1 = idb::parse(&mkimage(d.path(), "rk3399", &spl, None)).unwrap();
    assert_eq!(v1.boot, None);
    let v2 = idb::parse(&mkimage(d.path(), "rk3568", &spl, Some(&tpl))).unwrap();
    assert_eq!(v2.version, HeaderVersion::V2);
    assert_eq!((v2.init.offset, v2.init.size, v2.init.hash_ok), (0x800, 8192, Some(true)));
    assert_eq!(v2.boot.as_ref().map(|b| (b.size, b.hash_ok)), Some((30720, Some(true))));
    assert_eq!(v2.header_hash_ok, Some(true));
    // A flipped byte in the SPL breaks its hash, and the header's stays.
    let mut bad = mkimage(d.path(), "rk3568", &spl, Some(&tpl));
    bad[0x800 + 8192 + 5] ^= 1;
    let v2 = idb::parse(&bad).unwrap();
    assert_eq!(v2.boot.unwrap().hash_ok, Some(false));
    assert_eq!(v2.header_hash_ok, Some(true));
}

#[test]
fn init_stage_up_to_the_socs_limit_and_not_past_it() {
    // rkcommon.c: rk3568 0x10000 - 0x1000, rk3399 0x30000 - 0x2000,
    // rk3588 0x100000 - 0x1000 (mainline; Debian's 2023.01 allows rk3568
    // 0x13000 and lacks rk3588).
    for (soc, limit) in
        [("rk3568", 0xf000usize), ("rk3399", 0x2e000), ("rk3588", 0xff000), ("rk3566", 0xf000)]
    {
        let ok = bytes(limit, 1);
        assert!(idb::build(soc, stage("spl.bin", &ok), None).is_ok(), "{soc} at its limit");
        // One byte more pads to the next 2 KiB step: past the limit.
        let big = bytes(limit + 1, 1);
        let e = idb::build(soc, stage("spl.bin", &big), None).unwrap_err();
        assert!(matches!(e, IdbError::TooLarge { limit: l, .. } if l == limit), "{soc}: {e}");
        assert_eq!(e.class(), FailureClass::BadInput);
        let msg = e.to_string();
        assert!(msg.contains("spl.bin") && msg.contains(&format!("0x{limit:x}")), "{msg}");
        assert!(e.hint().unwrap().contains("--dram"));
        // With a TPL the limit is the TPL's; the SPL (boot stage) may be larger.
        let e = idb::build(soc, stage("spl.bin", &big), Some(stage("tpl.bin", &big))).unwrap_err();
        assert!(e.to_string().contains("tpl.bin"), "{e}");
        assert!(idb::build(soc, stage("spl.bin", &big), Some(stage("tpl.bin", &ok))).is_ok());
    }
}

#[test]
fn unknown_soc_and_empty_files_are_refused() {
    let s = bytes(100, 1);
    let e = idb::build("rk9999", stage("spl.bin", &s), None).unwrap_err();
    assert!(matches!(e, IdbError::UnknownSoc { .. }));
    assert!(e.to_string().contains("rk3399") && e.to_string().contains("rk9999"), "{e}");
    let e = idb::build("rk3399", stage("spl.bin", &[]), None).unwrap_err();
    assert_eq!(e, IdbError::Empty { what: "the SPL", file: "spl.bin".into() });
    let e = idb::build("rk3399", stage("spl.bin", &s), Some(stage("tpl.bin", &[]))).unwrap_err();
    assert_eq!(e, IdbError::Empty { what: "the TPL", file: "tpl.bin".into() });
    assert_eq!(e.class(), FailureClass::BadInput);
}

/// rkcommon.c: on header v1 the spl hdr replaces the init stage's first
/// 4 bytes unless they read "RSAK" (Debian's mkimage then fails its own
/// verification of the image, so this is checked against the rule only).
#[test]
fn rsak_at_the_start_of_the_init_stage_is_kept() {
    let mut s = bytes(5000, 9);
    s[..4].copy_from_slice(b"RSAK");
    let img = idb::build("rk3399", stage("s", &s), None).unwrap();
    assert_eq!(&img[0x800..0x800 + 5000], &s[..]);
    s[..4].copy_from_slice(b"ABCD");
    let img = idb::build("rk3399", stage("s", &s), None).unwrap();
    assert_eq!(&img[0x800..0x804], b"RK33");
    assert_eq!(&img[0x804..0x800 + 5000], &s[4..]);
}

/// RK3066 and RK3188 RC4 their stages (rkcommon.c `spl_rc4`): the decoder
/// undoes it to find the spl hdr.
#[test]
fn rc4_stages_still_name_their_soc() {
    let s = bytes(9000, 3);
    let img = idb::build("rk3188", stage("s", &s), None).unwrap();
    assert_ne!(&img[0x800..0x804], b"RK31");
    let h = idb::parse(&img).unwrap();
    assert!(!h.rc4_disabled);
    assert_eq!(h.spl_hdr.as_deref(), Some("RK31"));
    assert!(h.socs.contains(&"rk3188"));
}

#[test]
fn rk3566_boards_get_rk3568_images() {
    let s = bytes(9000, 3);
    assert_eq!(
        idb::build("rk3566", stage("s", &s), None).unwrap(),
        idb::build("rk3568", stage("s", &s), None).unwrap()
    );
}

#[test]
fn other_files_are_not_idbloaders() {
    assert_eq!(idb::parse(&[0u8; 4096]), None);
    assert_eq!(idb::parse(&bytes(4096, 5)), None);
    assert_eq!(idb::parse(b"RKNS"), None);
}
