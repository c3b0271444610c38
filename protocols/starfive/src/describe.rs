//! What `racklet-flash info` says about a headed JH7110 image.

use racklet_image::Description;
use racklet_image::describe::Contained;

use crate::header::{self, Header};

/// The driver name of the boards that take these images.
pub const PROTOCOL: &str = "starfive";

/// Decodes an spl_tool-headed image: its fields, whether the payload is
/// whole and its CRC-32 matches (what the ROM checks), and the payload for
/// the fit checks. `None` when `bytes` are not a headed image.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    let h = Header::parse(bytes)?;
    let mut d = Description::new("JH7110 SPL image (spl_tool header)", PROTOCOL);
    d.socs = crate::SOCS.iter().map(|s| s.to_string()).collect();
    let version = match h.version {
        header::DEFAULT_VERSION => format!("0x{:08x} (spl_tool default)", h.version),
        header::VENDOR_VERSION => format!("0x{:08x} (StarFive recovery images)", h.version),
        v => format!("0x{v:08x}"),
    };
    d.field("version", version);
    d.field("backup offset", format!("0x{:x}", h.backup_offset));
    d.field("payload length", format!("{} bytes", h.payload_len));
    d.field("header size", format!("0x{:x}", h.header_size));
    d.field("CRC-32 in header", format!("0x{:08x}", h.crc32));
    if h.vendor_fields != (0, 0) {
        d.field(
            "vendor fields 0x2d4/0x2d8",
            format!("0x{:x} / 0x{:x}", h.vendor_fields.0, h.vendor_fields.1),
        );
    }
    // The header does not say where the payload goes: the ROM strips the
    // header and copies the payload to the board's load address.
    d.field("load address", "the board's (the ROM strips the header)");
    let have = bytes.len() - header::HEADER_LEN;
    d.check("payload length", have >= h.payload_len as usize);
    match h.actual_crc(bytes) {
        Some(c) => {
            if c != h.crc32 {
                d.field("CRC-32 of the payload", format!("0x{c:08x}"));
            }
            d.check("payload CRC-32", c == h.crc32);
        }
        None => d.check("payload CRC-32", false),
    }
    if have > h.payload_len as usize {
        d.field("trailing bytes", format!("{} (not sent)", have - h.payload_len as usize));
    }
    d.payload = Some(Contained { load_address: None, len: u64::from(h.payload_len) });
    Some(d)
}
