//! What `racklet-flash info` says about the K1's own formats: FSBL.bin (the
//! image the ROM takes) and the storage `bootinfo` header; and what a file
//! that is almost an FSBL.bin got wrong.

use racklet_image::Description;
use racklet_image::describe::Contained;

use crate::k1::{self, AIHD, HEADER0, SPL_OFFSET};

/// Decodes a K1 FSBL.bin (intact or damaged) or a bootinfo header; `None`
/// for anything else.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    if bytes.len() >= SPL_OFFSET && &bytes[HEADER0..HEADER0 + AIHD.len()] == AIHD {
        return Some(fsbl(bytes));
    }
    let b = k1::parse_bootinfo(bytes)?;
    let mut d =
        Description::new("SpacemiT K1 bootinfo (storage boot header, not used for USB boot)", "fastboot");
    d.socs = vec!["k1".into()];
    d.field("version", format!("0x{:08x}", b.version));
    d.field("flash type", b.flash_type);
    d.field("spl0 offset", format!("0x{:x}", b.spl0_offset));
    d.field("spl1 offset", format!("0x{:x}", b.spl1_offset));
    d.field("spl size limit", format!("0x{:x}", b.spl_size_limit));
    d.check("CRC-32", b.crc_ok);
    Some(d)
}

fn fsbl(bytes: &[u8]) -> Description {
    let mut d = Description::new("", "fastboot");
    d.socs = vec!["k1".into()];
    match k1::parse_fsbl(bytes) {
        Ok(f) => {
            d.kind = "SpacemiT K1 FSBL.bin (AIHD headers + U-Boot SPL)".into();
            for (name, h) in [("header0", &f.header0), ("header1", &f.header1)] {
                d.field(
                    name,
                    format!(
                        "AIHD version {}, secure {}, imgsize 0x{:x}, load_addr 0x{:x}",
                        h.version, h.secure, h.imgsize, h.load_addr
                    ),
                );
            }
            d.field("key default", f.key_default.to_string());
            d.field(
                "key table",
                f.keys.iter().map(|(n, i)| format!("{n}/{i}")).collect::<Vec<_>>().join(", "),
            );
            d.field("SPL + signature", format!("{} bytes at offset 0x1000", f.spl_len));
            d.field("runs at", format!("0x{:x} (code at +0x1000)", k1::LOAD_ADDRESS));
            for (name, ok) in f.checks() {
                d.check(name, ok);
            }
        }
        Err(why) => {
            d.kind = "SpacemiT K1 FSBL.bin (damaged)".into();
            d.field("problem", why.to_string());
            d.check("header1 AIHD magic", false);
        }
    }
    d.payload = Some(Contained { load_address: Some(k1::LOAD_ADDRESS), len: bytes.len() as u64 });
    d
}

/// What a file that is almost a K1 FSBL.bin got wrong (a damaged AIHD magic
/// of header0 at 0x100), so it is not sent as a raw image by mistake.
pub fn near_miss(bytes: &[u8]) -> Option<String> {
    (bytes.len() >= SPL_OFFSET && racklet_image::near_magic(bytes, HEADER0, AIHD)).then(|| {
        format!(
            "a damaged K1 FSBL.bin: header0's magic at 0x100 is \"{}\", FSBL.bin has \"AIHD\"",
            racklet_image::escaped(&bytes[HEADER0..HEADER0 + AIHD.len()])
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsbl_intact_damaged_and_bootinfo() {
        let f = k1::build_fsbl(&[7; 100]);
        let d = describe(&f).unwrap();
        assert_eq!(d.protocol, Some("fastboot"));
        assert!(d.kind.contains("FSBL.bin (AIHD"), "{}", d.kind);
        assert!(d.intact());
        assert_eq!(d.payload.unwrap().load_address, Some(0xc080_0000));
        let mut broken = f.clone();
        broken[0xfe0] = b'x';
        let d = describe(&broken).unwrap();
        assert!(d.kind.contains("damaged"));
        assert!(!d.intact());
        assert!(d.fields[0].value.contains("0xfe0"), "{:?}", d.fields);
        assert!(describe(&[0u8; 0x2000]).is_none());
        let mut nm = f;
        nm[0x101] = b'J';
        assert!(near_miss(&nm).unwrap().contains("\"AJHD\""));
        assert!(describe(&nm).is_none(), "a near miss is not decoded as an FSBL");
    }
}
