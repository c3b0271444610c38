//! `describe`: what `racklet-flash info` says about an RKBOOT loader.

mod common;

use common::{pattern, rk3568_loader, rkboot};

fn field<'a>(d: &'a racklet_image::Description, name: &str) -> &'a str {
    d.fields.iter().find(|f| f.name == name).map(|f| f.value.as_str()).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn a_loader_is_decoded_field_by_field() {
    let d = racklet_rockchip::describe(&rk3568_loader()).expect("a loader");
    assert_eq!(d.kind, "RKBOOT loader (\"LDR \")");
    assert_eq!(d.protocol, Some("rockchip"));
    assert_eq!(d.socs, ["rk3568", "rk3566"]);
    assert_eq!(field(&d, "tag"), "\"LDR \" (new IDB)");
    assert_eq!(field(&d, "version"), "1.23 (0x117)");
    assert_eq!(field(&d, "release time"), "2024-05-06 07:08:09");
    assert_eq!(field(&d, "chip"), "3568 (rk3568/rk3566, USB pid 0x350a)");
    assert_eq!(field(&d, "471/472 stored without RC4"), "true (0x2D)");
    assert_eq!(field(&d, "CRC disabled"), "false (0x2E)");
    // Entries numbered within their table, in file order.
    let entries: Vec<&str> =
        d.fields.iter().filter(|f| f.name.contains(" entry ")).map(|f| f.name.as_str()).collect();
    assert_eq!(entries, ["471 entry 0", "471 entry 1", "472 entry 0", "loader entry 0"]);
    assert!(field(&d, "471 entry 1").starts_with("rk3568_ddr_1560MHz_v    6144 B at 0x"));
    assert!(field(&d, "472 entry 0").contains("10240 B"));
    assert!(field(&d, "472 entry 0").ends_with("carries the rockusb interface (a usbplug)"));
    assert!(field(&d, "471 entry 0").ends_with("delay 1 ms"));
    assert!(d.intact(), "{:?}", d.checks);
}

#[test]
fn damage_shows_in_the_checks() {
    let mut crc = rk3568_loader();
    let n = crc.len();
    crc[n - 100] ^= 1;
    let d = racklet_rockchip::describe(&crc).unwrap();
    assert!(d.checks.iter().any(|c| c.name.starts_with("crc32") && !c.ok), "{:?}", d.checks);
    let truncated = rk3568_loader()[..0x66 + 30].to_vec();
    let d = racklet_rockchip::describe(&truncated).unwrap();
    assert_eq!(d.kind, "RKBOOT loader (damaged)");
    assert!(d.checks[0].name.contains("truncated RKBOOT entry table") && !d.intact());
    // A damaged tag on a loader's layout is still a (damaged) loader, and a near miss.
    let mut magic = rk3568_loader();
    magic[..4].copy_from_slice(b"BOOX");
    assert!(!racklet_rockchip::describe(&magic).unwrap().intact());
    assert!(racklet_rockchip::near_miss(&magic).unwrap().contains("\"BOOX\""));
    // Not a loader at all.
    assert!(racklet_rockchip::describe(&pattern(4096, 1)).is_none());
    assert!(racklet_rockchip::describe(b"").is_none());
    // An unknown chip code, a legacy tag.
    let odd = rkboot(b"BOOT", b"9999", [b'S', 0, 0, 1], &[(1, "ddr", vec![1; 8], 0)]);
    let d = racklet_rockchip::describe(&odd).unwrap();
    assert_eq!(field(&d, "chip"), "9999 (not in the chip table)");
    assert_eq!(field(&d, "tag"), "\"BOOT\" (legacy)");
    assert_eq!(field(&d, "signed"), "yes ('S')");
    assert!(d.socs.is_empty());
}

/// A 0x472 entry without the rockusb interface (an SPL, a bare-metal
/// program) runs as a payload; an empty entry is skipped when sent.
#[test]
fn info_says_whether_the_0x472_entry_is_a_usbplug() {
    let l = rkboot(
        b"LDR ",
        b"3568",
        [0, 1, 1, 0],
        &[(1, "ddr", pattern(2048, 1), 1), (1, "empty", vec![], 0), (2, "spl", pattern(4096, 2), 0)],
    );
    let d = racklet_rockchip::describe(&l).unwrap();
    assert!(field(&d, "472 entry 0").ends_with("no rockusb interface in it (runs as a payload)"));
    assert!(field(&d, "471 entry 1").ends_with("empty: skipped when sent"));
}
