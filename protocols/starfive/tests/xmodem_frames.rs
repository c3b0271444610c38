//! XMODEM framing at the block-size edges, checked against the sheet's
//! worked example (§2.2: CRC-16 of blocks 1, 6 and 9 of the 16-byte image)
//! and against the framing rules written out here.

use racklet_starfive::header::{self, HeaderOptions};
use racklet_starfive::xmodem::{self, BlockSize};

#[test]
fn worked_example_block_crcs() {
    let p: Vec<u8> = (0u8..16).collect();
    let img = header::build_image(&p, &HeaderOptions::default()).unwrap();
    let lens = xmodem::block_lengths(img.len(), BlockSize::B128);
    assert_eq!(lens.len(), 9, "the sheet: 9 frames of 128 bytes");
    let crc_of = |i: usize| {
        let data = &img[i * 128..((i + 1) * 128).min(img.len())];
        let f = xmodem::frame((i + 1) as u8, data, 128, 0x1A);
        u16::from_be_bytes([f[131], f[132]])
    };
    assert_eq!(crc_of(0), 0x4786);
    assert_eq!(crc_of(5), 0x50F5);
    assert_eq!(crc_of(8), 0x6E97);
    for i in [1, 2, 3, 4, 6, 7] {
        assert_eq!(crc_of(i), 0, "all-zero block {}", i + 1);
    }
}

#[test]
fn frame_layout() {
    let f = xmodem::frame(1, b"abc", 128, 0x1A);
    assert_eq!(f.len(), 133);
    assert_eq!(&f[..3], &[0x01, 0x01, 0xFE]);
    assert_eq!(&f[3..6], b"abc");
    assert!(f[6..131].iter().all(|&b| b == 0x1A));
    let f = xmodem::frame(255, &[0u8; 1024], 1024, 0x1A);
    assert_eq!(f.len(), 1029);
    assert_eq!(&f[..3], &[0x02, 0xFF, 0x00]);
    assert_eq!(&f[1027..], &[0, 0]);
    // Block 256 is numbered 0.
    let f = xmodem::frame(256u32 as u8, &[1], 128, 0xFF);
    assert_eq!(&f[..3], &[0x01, 0x00, 0xFF]);
    assert_eq!(f[4], 0xFF, "the pad byte is the one asked for");
}

#[test]
fn block_lengths_at_the_edges() {
    use BlockSize::*;
    assert_eq!(xmodem::block_lengths(0, K1), Vec::<usize>::new());
    assert_eq!(xmodem::block_lengths(1, K1), vec![128]);
    assert_eq!(xmodem::block_lengths(128, K1), vec![128]);
    assert_eq!(xmodem::block_lengths(129, K1), vec![1024]);
    assert_eq!(xmodem::block_lengths(1024, K1), vec![1024]);
    assert_eq!(xmodem::block_lengths(1025, K1), vec![1024, 128]);
    assert_eq!(xmodem::block_lengths(1152, K1), vec![1024, 128]);
    assert_eq!(xmodem::block_lengths(1153, K1), vec![1024, 1024]);
    assert_eq!(xmodem::block_lengths(127, B128), vec![128]);
    assert_eq!(xmodem::block_lengths(128, B128), vec![128]);
    assert_eq!(xmodem::block_lengths(129, B128), vec![128, 128]);
    // Total data covered and never more than one block of slack.
    for n in [1usize, 127, 128, 129, 1023, 1024, 1025, 131_072, 263_168] {
        for s in [K1, B128] {
            let l = xmodem::block_lengths(n, s);
            let sum: usize = l.iter().sum();
            assert!(sum >= n && sum - n < s.bytes(), "{n} {s:?}");
        }
    }
}

#[test]
fn ymodem_header_block() {
    let f = xmodem::ymodem_header("u-boot.itb", 1234);
    assert_eq!(f.len(), 133);
    assert_eq!(&f[..3], &[0x01, 0x00, 0xFF]);
    assert_eq!(&f[3..3 + 16], b"u-boot.itb\x001234\x00");
    assert!(f[19..131].iter().all(|&b| b == 0));
}
