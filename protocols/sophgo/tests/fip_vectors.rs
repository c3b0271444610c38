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

#[test]
fn info_decodes_every_part_of_the_vendor_images() {
    let full = read("fip-full.bin");
    let i = fip::validate(&full).unwrap();
    assert!(i.checks().iter().all(|c| c.1), "{:?}", i.checks());
    assert!(i.missing().is_empty());
    assert_eq!((i.blcp_size, i.blcp_runaddr), (0x400, 0x0520_0200));
    let p2 = i.param2.as_ref().expect("param2");
    assert_eq!(p2.offset, 0x2800);
    assert!(p2.magic_ok);
    // Where the vendor put each part (read from the vector itself, not from us).
    let at = |o: usize| u32::from_le_bytes(full[o..o + 4].try_into().unwrap());
    assert_eq!((p2.ddr_param.offset, p2.ddr_param.size), (at(0x2814), at(0x2818)));
    assert_eq!((p2.blcp_2nd.offset, p2.blcp_2nd.runaddr), (at(0x2824), 0x83f4_0000));
    assert_eq!(
        (p2.monitor.offset, p2.monitor.size, p2.monitor.runaddr),
        (at(0x2834), at(0x2838), 0x8000_0000)
    );
    let l = p2.loader_2nd.as_ref().unwrap();
    assert_eq!((l.offset, &l.magic, l.runaddr), (at(0x2844), b"BL33", 0x8020_0000));
    assert_eq!(l.offset + l.size, full.len() as u32, "LOADER_2ND ends the file");
    let lz = fip::validate(&read("fip-full-lzma.bin")).unwrap();
    assert_eq!(lz.param2.unwrap().loader_2nd.unwrap().compression(), "lzma");

    let d = racklet_sophgo::describe(&full).unwrap();
    assert!(d.intact(), "{:?}", d.checks);
    for name in ["param2", "PARAM2_CKSUM", "DDR_PARAM", "BLCP_2ND", "MONITOR", "LOADER_2ND"] {
        assert!(d.fields.iter().any(|f| f.name == name), "info names {name}");
    }
    let mon = d.fields.iter().find(|f| f.name == "MONITOR").unwrap();
    assert!(mon.value.contains("runs at 0x80000000"), "{}", mon.value);

    // Cut after MONITOR: every check of what is there passes, LOADER_2ND is missing.
    let cut = &full[..(p2.monitor.offset + p2.monitor.size) as usize];
    let c = fip::validate(cut).unwrap();
    assert_eq!(c.missing(), vec![("LOADER_2ND header".to_string(), l.offset, 32)]);
    // A flipped byte in MONITOR is named.
    let mut bad = full.clone();
    bad[p2.monitor.offset as usize + 7] ^= 1;
    assert!(matches!(fip::validate(&bad), Err(fip::FipError::PartCksum { part: "MONITOR", .. })));
}
