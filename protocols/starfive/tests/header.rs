//! Header vectors. The expected bytes are built here from the sheet's rules
//! (shared/protocols/starfive.md §2.1) with the sim's reference CRC-32
//! (spl_tool's loop written bit by bit), not the writer's code; the 16-byte
//! case is the sheet's worked example, checked byte by byte and by SHA-256.

use racklet_sim::crc::crc32_iso_hdlc;
use racklet_starfive::header::{self, HeaderOptions};
use sha2::{Digest, Sha256};

fn payload(n: usize) -> Vec<u8> {
    // A deterministic, non-trivial pattern.
    (0..n).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect()
}

fn expected(p: &[u8], version: u32, bofs: u32) -> Vec<u8> {
    let mut h = vec![0u8; 0x400];
    let mut put = |o: usize, v: u32| h[o..o + 4].copy_from_slice(&v.to_le_bytes());
    put(0x000, 0x240);
    put(0x004, bofs);
    put(0x284, version);
    put(0x288, p.len() as u32);
    put(0x28C, 0x400);
    put(0x290, crc32_iso_hdlc(p));
    h.extend_from_slice(p);
    h
}

#[test]
fn vectors_for_boundary_sizes() {
    for n in [0usize, 1, 16, 129, 4096, 100_000] {
        let p = payload(n);
        let img = header::build_image(&p, &HeaderOptions::default()).unwrap();
        let want = expected(&p, 0x0101_0101, 0x20_0000);
        assert_eq!(img.len(), 0x400 + n, "size {n}");
        assert!(img == want, "image for a {n}-byte payload differs from the sheet's layout");
        // And the decoder reads back the same fields.
        let h = header::Header::parse(&img).unwrap();
        assert_eq!(h.payload_len as usize, n);
        assert_eq!(h.crc32, crc32_iso_hdlc(&p));
        h.verify(&img).unwrap();
    }
}

#[test]
fn options_land_in_their_fields() {
    let p = payload(300);
    let o = HeaderOptions::from_user(Some(0x0101_0001), Some(0x10_0000)).unwrap();
    let img = header::build_image(&p, &o).unwrap();
    assert_eq!(img, expected(&p, 0x0101_0001, 0x10_0000));
}

#[test]
fn worked_example_of_the_sheet() {
    let p: Vec<u8> = (0u8..16).collect();
    let img = header::build_image(&p, &HeaderOptions::default()).unwrap();
    assert_eq!(img.len(), 1040);
    assert_eq!(&img[0x000..0x004], &[0x40, 0x02, 0x00, 0x00]);
    assert_eq!(&img[0x004..0x008], &[0x00, 0x00, 0x20, 0x00]);
    assert!(img[0x008..0x284].iter().all(|&b| b == 0));
    assert_eq!(&img[0x284..0x288], &[0x01, 0x01, 0x01, 0x01]);
    assert_eq!(&img[0x288..0x28C], &[0x10, 0x00, 0x00, 0x00]);
    assert_eq!(&img[0x28C..0x290], &[0x00, 0x04, 0x00, 0x00]);
    assert_eq!(&img[0x290..0x294], &[0x88, 0xe2, 0xce, 0xce]);
    assert!(img[0x294..0x400].iter().all(|&b| b == 0));
    assert_eq!(&img[0x400..], &p[..]);
    let sha = Sha256::digest(&img);
    assert!(format!("{sha:x}").starts_with("876d5b43"), "sha256 {sha:x}");
}

#[test]
fn too_large_payloads_are_refused_with_the_limit() {
    assert!(header::build_image(&vec![0u8; 0x4_0000], &HeaderOptions::default()).is_ok());
    let e = header::build_image(&vec![0u8; 0x4_0001], &HeaderOptions::default()).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("262144") && m.contains("SRAM"), "{m}");
    assert_eq!(racklet_link::Classify::class(&e), racklet_link::FailureClass::BadInput);
}
