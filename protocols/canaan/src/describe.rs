//! `racklet-flash info` for the protocol's own format: the "K230" storage
//! boot image.

use racklet_image::Description;
use racklet_image::describe::Contained;

use crate::STORAGE_LOAD;
use crate::header::{self, ImageHeader};

pub use crate::header::near_miss;

/// Decodes a "K230" firmware image; `None` when `bytes` is not one.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    if !bytes.starts_with(header::MAGIC) || bytes.len() < header::PAYLOAD_OFFSET {
        return None;
    }
    let h = ImageHeader::parse(bytes).ok()?;
    let mut d = Description::new("K230 firmware image (storage boot header)", "canaan");
    d.socs = crate::SOCS.iter().map(|s| s.to_string()).collect();
    d.field("length field", format!("{} bytes (version + payload)", h.length));
    d.field("crypto type", h.crypto.name());
    for (k, v) in h.fields() {
        d.field(k, v);
    }
    d.field("version", h.version.to_string());
    d.field("payload", format!("{} bytes at offset 0x{:x}", h.payload_len(), header::PAYLOAD_OFFSET));
    d.field("ROM copies it to", format!("0x{STORAGE_LOAD:x} (inferred from the SPL link address)"));
    d.check("length", h.length_matches());
    match h.verify(bytes) {
        Some(ok) => d.check("sha256", ok),
        None => d.field(
            "signature",
            "not checked (the key hash lives in the chip's OTP; signed images are decoded, not verified)",
        ),
    }
    d.payload = Some(Contained { load_address: Some(STORAGE_LOAD), len: h.payload_len() });
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_image_is_described_and_checked() {
        let img = header::build_plain(&[1, 2, 3, 4], 0).unwrap();
        let d = describe(&img).unwrap();
        assert_eq!(d.protocol, Some("canaan"));
        assert!(d.intact());
        assert!(d.checks.iter().any(|c| c.name == "sha256" && c.ok));
        assert_eq!(d.payload, Some(Contained { load_address: Some(0x8030_0000), len: 4 }));
        let mut bad = img.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!describe(&bad).unwrap().intact());
    }

    #[test]
    fn other_files_are_not_described() {
        assert!(describe(b"").is_none());
        assert!(describe(b"K230").is_none(), "too short for the header");
        assert!(describe(&[0u8; 0x300]).is_none());
    }
}
