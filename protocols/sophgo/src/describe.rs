//! `racklet-flash info` for the Sophgo formats: fip.bin decoded field by
//! field, with the checks the ROM applies.

use racklet_image::Description;
use racklet_image::describe::Contained;

use crate::chip::jumps_to_entry;
use crate::fip;

pub use crate::fip::near_miss;

fn hex32(v: u32) -> String {
    format!("0x{v:08x}")
}

/// Decodes a fip.bin; `None` when `bytes` are not one.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    if !fip::is_fip(bytes) {
        return None;
    }
    let mut d = Description::new(
        if fip::parse(bytes).is_ok_and(|i| i.param2.is_some()) {
            "Sophgo fip.bin (param1 \"CVBL01\" + BL2, param2 \"CVLD02\" + the FSBL's parts)"
        } else {
            "Sophgo fip.bin (param1 \"CVBL01\" + BL2)"
        },
        "sophgo",
    );
    d.socs = vec!["cv1800b".into(), "sg2000".into(), "sg2002".into()];
    let i = match fip::parse(bytes) {
        Ok(i) => i,
        Err(e) => {
            d.field("problem", e.to_string());
            d.check("param1 complete", false);
            return Some(d);
        }
    };
    d.field("MAGIC2", hex32(i.magic2));
    d.field("PARAM_CKSUM", format!("{} (computed {})", hex32(i.param_cksum), hex32(i.param_cksum_computed)));
    let nand_used = i.nand_info.iter().rposition(|b| *b != 0).map(|p| p + 1).unwrap_or(0);
    d.field("NAND_INFO", if nand_used == 0 { "zeros".into() } else { format!("{nand_used} bytes set") });
    d.field(
        "NOR_INFO",
        if i.nor_info.iter().all(|b| *b == 0xFF) {
            "36 x 0xff".into()
        } else {
            format!("{:02x?}", i.nor_info)
        },
    );
    d.field(
        "FIP_FLAGS",
        format!("0x{:x}{}", i.fip_flags, if i.secure() { " (signed/encrypted)" } else { "" }),
    );
    d.field("CHIP_CONF_SIZE", i.chip_conf_size.to_string());
    d.field(
        "CHIP_CONF",
        i.chip_conf.iter().map(|(a, v)| format!("({a:#010x},{v:#010x})")).collect::<Vec<_>>().join(" "),
    );
    d.field("BLCP_IMG_CKSUM", hex32(i.blcp_cksum));
    d.field("BLCP_IMG_SIZE", i.blcp_size.to_string());
    d.field("BLCP_IMG_RUNADDR", hex32(i.blcp_runaddr));
    d.field("BLCP_PARAM_LOADADDR", hex32(i.blcp_param_loadaddr));
    d.field("BLCP_PARAM_SIZE", i.blcp_param_size.to_string());
    d.field(
        "BL2_IMG_CKSUM",
        format!(
            "{} (computed {})",
            hex32(i.bl2_cksum),
            i.bl2_cksum_computed.map(hex32).unwrap_or_else(|| "-, BL2 missing".into())
        ),
    );
    d.field("BL2_IMG_SIZE", i.bl2_size.to_string());
    d.field("BL2 offset", format!("0x{:x}", i.bl2_offset()));
    d.field("BLD_IMG_SIZE", i.bld_size.to_string());
    d.field("PARAM2_LOADADDR", hex32(i.param2_loadaddr));
    if let Some(bl2) = i.bl2(bytes) {
        d.field("BL2 word 0", if jumps_to_entry(bl2) { "jumps to +0x20" } else { "no jump to +0x20" });
    }
    if let Some(p2) = &i.param2 {
        describe_param2(&mut d, p2);
    }
    for (name, ok) in i.checks() {
        d.check(name, ok);
    }
    // Where BL2 loads depends on the chip and core, not on the file.
    d.payload = Some(Contained { load_address: None, len: i.bl2_size as u64 });
    Some(d)
}

fn computed(c: Option<u32>) -> String {
    c.map(hex32).unwrap_or_else(|| "-, not in the file".into())
}

/// param2 and every part it names, as the vendor FSBL reads them.
fn describe_param2(d: &mut Description, p2: &fip::Param2Info) {
    if !p2.present {
        d.field("param2", format!("at 0x{:x}, beyond the end of the file", p2.offset));
        return;
    }
    d.field("param2", format!("at 0x{:x}{}", p2.offset, if p2.magic_ok { "" } else { " (bad magic)" }));
    d.field("PARAM2_CKSUM", format!("{} (computed {})", hex32(p2.cksum), computed(p2.cksum_computed)));
    for part in p2.parts() {
        let run = match part.name {
            "DDR_PARAM" => String::new(),
            _ if part.runaddr == 0 => ", no run address: the FSBL skips it".into(),
            _ => format!(", runs at 0x{:x}", part.runaddr),
        };
        d.field(
            part.name,
            if part.size == 0 && part.runaddr == 0 {
                "none".to_string()
            } else {
                format!(
                    "0x{:x}+0x{:x}, cksum {} (computed {}){run}",
                    part.offset,
                    part.size,
                    hex32(part.cksum),
                    computed(part.computed)
                )
            },
        );
    }
    match &p2.loader_2nd {
        Some(l) => d.field(
            "LOADER_2ND",
            format!(
                "0x{:x}+0x{:x}, magic \"{}\" (compression {}), cksum {} (computed {}), runs at 0x{:x}",
                l.offset,
                l.size,
                racklet_image::escaped(&l.magic),
                l.compression(),
                hex32(l.cksum),
                computed(l.computed),
                l.runaddr
            ),
        ),
        None => d.field("LOADER_2ND", format!("header at 0x{:x}, not in the file", p2.loader_2nd_offset)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_fip_is_described_and_other_files_are_not() {
        let f = fip::build(&[0x6f, 0, 0, 2, 1, 2, 3], 0x37000).unwrap();
        let d = describe(&f).unwrap();
        assert_eq!(d.protocol, Some("sophgo"));
        assert!(d.intact());
        let get = |n: &str| d.fields.iter().find(|f| f.name == n).map(|f| f.value.clone());
        assert_eq!(get("BL2 word 0").as_deref(), Some("jumps to +0x20"));
        assert_eq!(get("BL2_IMG_SIZE").as_deref(), Some("512"));
        assert_eq!(d.payload, Some(Contained { load_address: None, len: 512 }));
        // BL2 cut off: no word 0, the check fails.
        let cut = describe(&f[..4100]).unwrap();
        assert!(!cut.fields.iter().any(|f| f.name == "BL2 word 0"));
        assert!(!cut.intact());
        // A header too short to parse is still named, as a failed check.
        let short = describe(&f[..100]).unwrap();
        assert!(!short.intact());
        assert!(describe(b"\x7fELF").is_none());
    }
}
