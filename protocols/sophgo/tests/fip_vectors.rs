//! fip.bin byte for byte against the vendor's own fiptool.py: the vectors
//! in tests/vectors/sophgo/ were written by it (README there names the tool,
//! its commit and the exact commands); this crate must write the same bytes
//! from the same inputs, and decode every part of them.

use std::path::PathBuf;

use racklet_sophgo::fip::{self, Compress, Parts};

fn vec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/sophgo")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(vec_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const MONITOR_RUNADDR: u32 = 0x8000_0000;
const BLCP_2ND_RUNADDR: u32 = 0x83f4_0000;

#[test]
fn every_vector_is_written_byte_for_byte() {
    let (bl2, blcp, ddr, c2, mon, ldr) = (
        read("bl2.bin"),
        read("blcp.bin"),
        read("ddr_param.bin"),
        read("blcp_2nd.bin"),
        read("monitor.bin"),
        read("loader_2nd.bin"),
    );
    let full = Parts {
        bl2: &bl2,
        blcp: Some(&blcp),
        ddr_param: Some(&ddr),
        blcp_2nd: Some((&c2, BLCP_2ND_RUNADDR)),
        monitor: Some((&mon, MONITOR_RUNADDR)),
        loader_2nd: Some(&ldr),
        compress: Compress::None,
    };
    let cases = [
        ("fip-simple.bin", Parts { bl2: &bl2, ..Default::default() }),
        ("fip-full.bin", full),
        ("fip-full-lzma.bin", Parts { compress: Compress::Lzma, ..full }),
        (
            "fip-uboot.bin",
            Parts {
                bl2: &bl2,
                ddr_param: Some(&ddr),
                monitor: Some((&mon, MONITOR_RUNADDR)),
                loader_2nd: Some(&ldr),
                ..Default::default()
            },
        ),
    ];
    for (name, parts) in cases {
        let want = read(name);
        let got = fip::build_parts(&parts, 0x37000).unwrap_or_else(|e| panic!("{name}: {e}"));
        let first = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got == want,
            "{name}: {} bytes written, the vendor's {} bytes; first difference at {first:x?}",
            got.len(),
            want.len()
        );
    }
    // The simple shape is what `build` (a BL2 alone) writes.
    assert_eq!(fip::build(&bl2, 0x37000).unwrap(), read("fip-simple.bin"));
}
