//! racklet_image::disk against the real tools that make the formats it
//! reads: AOSP's img2simg (Debian android-sdk-libsparse-utils) and
//! bmaptool (Debian bmap-tools). Real-peer tier: scripts/test.sh installs
//! both and runs these with --ignored; a missing tool fails, naming its
//! package.

use std::path::Path;
use std::process::Command;

use racklet_image::disk::{DiskImage, Extent, bmap_beside};

fn need(tool: &str, package: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is missing: apt-get install {package}");
}

/// A 6 MiB raw image with data, zeros and a repeated pattern, written as a
/// file with a hole in it (so bmaptool finds unmapped blocks).
fn raw_image(p: &Path) -> Vec<u8> {
    let mut img = vec![0u8; 6 << 20];
    for (i, b) in img[..1 << 20].iter_mut().enumerate() {
        *b = ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8;
    }
    for b in img[(3 << 20)..(3 << 20) + 65536].iter_mut() {
        *b = 0xab;
    }
    let tail = (5 << 20) + 4096 * 3;
    for (i, b) in img[tail..tail + 5000].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    // Data where it is non-zero; the rest a hole.
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(p).unwrap();
    f.set_len(img.len() as u64).unwrap();
    for (at, len) in [(0usize, 1usize << 20), (3 << 20, 65536), (tail, 5000)] {
        f.seek(SeekFrom::Start(at as u64)).unwrap();
        f.write_all(&img[at..at + len]).unwrap();
    }
    img
}

fn apply(img: &DiskImage, base: &mut [u8]) -> u64 {
    let mut data = 0;
    for e in img.extents().unwrap() {
        match e.unwrap() {
            Extent::Data { offset, bytes } => {
                base[offset as usize..offset as usize + bytes.len()].copy_from_slice(&bytes);
                data += bytes.len() as u64;
            }
            Extent::Fill { offset, len, value } => {
                for (i, b) in base[offset as usize..(offset + len) as usize].iter_mut().enumerate() {
                    *b = value.to_le_bytes()[i % 4];
                }
            }
            Extent::Skip { .. } => {}
        }
    }
    data
}

#[test]
#[ignore = "real-peer tier (needs img2simg): scripts/test.sh runs it"]
fn img2simg_output_expands_to_the_raw_image() {
    need("img2simg", "android-sdk-libsparse-utils");
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("os.img");
    let want = raw_image(&raw);
    let simg = d.path().join("os.simg");
    let o = Command::new("img2simg").arg(&raw).arg(&simg).output().unwrap();
    assert!(o.status.success(), "img2simg: {}", String::from_utf8_lossy(&o.stderr));
    let img = DiskImage::open(&simg, None).unwrap();
    assert_eq!(img.size, Some(want.len() as u64));
    let mut got = vec![0x11u8; want.len()];
    apply(&img, &mut got);
    // What img2simg leaves as DONT_CARE (the zeros) stays as the base had it.
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(g == w || (*w == 0 && *g == 0x11), "byte {i}: {g:#x}, want {w:#x}");
    }
}

#[test]
#[ignore = "real-peer tier (needs bmaptool): scripts/test.sh runs it"]
fn bmaptool_create_maps_what_racklet_writes() {
    need("bmaptool", "bmap-tools");
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("os.img");
    let want = raw_image(&raw);
    let bmap = d.path().join("os.img.bmap");
    let o = Command::new("bmaptool").arg("create").arg(&raw).arg("-o").arg(&bmap).output().unwrap();
    assert!(o.status.success(), "bmaptool create: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bmap_beside(&raw).as_deref(), Some(bmap.as_path()));
    let img = DiskImage::open(&raw, Some(&bmap)).unwrap();
    assert_eq!(img.size, Some(want.len() as u64));
    let mut got = vec![0u8; want.len()];
    let data = apply(&img, &mut got);
    assert!(got == want, "the mapped ranges rebuild the image");
    assert!(data < (2 << 20), "only the mapped blocks are read out as data ({data} bytes)");
    // The bmap's checksums are checked: a changed mapped byte is refused.
    let mut f = std::fs::OpenOptions::new().write(true).open(&raw).unwrap();
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(100)).unwrap();
    f.write_all(&[want[100] ^ 0xff]).unwrap();
    let img = DiskImage::open(&raw, Some(&bmap)).unwrap();
    let e = img.extents().unwrap().find_map(Result::err).expect("a checksum error");
    assert!(e.to_string().contains("do not match the SHA-256"), "{e}");
}
