//! `racklet-flash info` for Rockchip files: the RKBOOT loader, decoded
//! field by field with its integrity checks (fact sheet §2).

use racklet_image::Description;

use crate::chips;
use crate::loader::{EntryKind, Loader, is_rkboot, looks_like_rkboot};

pub use crate::loader::near_miss;

/// A version field: `major.minor (0x…)` when it fits 16 bits.
fn version_str(v: u32) -> String {
    if v <= 0xffff { format!("{}.{} (0x{v:x})", v >> 8, v & 0xff) } else { format!("0x{v:08x}") }
}

/// Describes an RKBOOT loader (also one whose tag is damaged but whose
/// layout is a loader's) or an idbloader (SD/eMMC boot image, header v1
/// or v2); `None` for anything else.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    if !is_rkboot(bytes) && !looks_like_rkboot(bytes) {
        return crate::idb::describe(bytes);
    }
    let l = match Loader::parse_lenient(bytes) {
        Ok(l) => l,
        Err(e) => {
            let mut d = Description::new("RKBOOT loader (damaged)", "rockchip");
            d.check(format!("structure: {e}"), false);
            return Some(d);
        }
    };
    let mut d = Description::new(format!("RKBOOT loader (\"{}\")", l.tag_str()), "rockchip");
    d.field(
        "tag",
        format!("\"{}\"{}", l.tag_str(), if &l.tag == b"LDR " { " (new IDB)" } else { " (legacy)" }),
    );
    d.field("header size", format!("0x{:x}", l.header_size));
    d.field("version", version_str(l.version));
    d.field("merger version", format!("0x{:08x}", l.merger_version));
    let t = l.release;
    d.field(
        "release time",
        format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second),
    );
    let chip = l.chip_code.as_deref().and_then(chips::by_code);
    d.field(
        "chip",
        match (&l.chip_code, chip) {
            (Some(c), Some(ch)) => format!("{c} ({}, USB pid 0x{:04x})", ch.socs.join("/"), ch.pid),
            (Some(c), None) => format!("{c} (not in the chip table)"),
            (None, _) => format!("0x{:08x} (old enum value)", l.chip_raw),
        },
    );
    d.field(
        "signed",
        if l.sign_flag == b'S' { "yes ('S')".into() } else { format!("no (0x{:02x})", l.sign_flag) },
    );
    d.field("on-flash IDB RC4 off", format!("{} (0x2C = {})", l.rc4_flag != 0, l.rc4_flag));
    d.field("471/472 stored without RC4", format!("{} (0x2D)", l.stored_without_rc4));
    d.field("CRC disabled", format!("{} (0x2E)", l.crc_disabled));
    // The parser keeps the tables' order (471, 472, loader): number the
    // entries within each table.
    for kind in [EntryKind::Code471, EntryKind::Code472, EntryKind::Loader] {
        for (i, e) in l.of(kind).enumerate() {
            // What a 0x472 entry is: a rockusb loader carries the rockusb
            // interface descriptor (readable only when stored without RC4).
            let what = match kind {
                EntryKind::Loader => "",
                _ if e.size == 0 => ", empty: skipped when sent",
                EntryKind::Code472 if l.stored_without_rc4 || &l.tag == b"LDR " => {
                    let data = bytes.get(e.offset as usize..e.offset as usize + e.size as usize);
                    if data.is_some_and(crate::rockusb::carries_rockusb) {
                        ", carries the rockusb interface (a usbplug)"
                    } else {
                        ", no rockusb interface in it (runs as a payload)"
                    }
                }
                _ => "",
            };
            d.field(
                format!("{} entry {i}", kind.name()),
                format!(
                    "{:<20} {:>7} B at 0x{:06x}, delay {} ms{what}",
                    e.name, e.size, e.offset, e.delay_ms
                ),
            );
        }
    }
    d.check(
        format!("file length ({} B of data + 4 B CRC32)", l.data_end),
        l.check_length(bytes.len()).is_ok(),
    );
    d.check(
        format!("crc32 (stored 0x{:08x}, computed 0x{:08x})", l.crc32_stored, l.crc32_computed),
        l.check_crc().is_ok(),
    );
    if let Some(ch) = chip {
        d.socs = ch.socs.iter().map(|s| s.to_string()).collect();
    }
    Some(d)
}
