//! The Rockchip chip table (fact sheet §4).

/// Whether a ROM accepts a zero CRC field (fact sheet §1.3, §8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCrc {
    /// Confirmed by a maintainer test (RK3576).
    Confirmed,
    /// Reported working in an issue tracker, not confirmed.
    Reported,
    /// Confirmed not to work (RK3308).
    Unsupported,
    /// Nobody knows.
    Unknown,
}

/// Execution state of the DRAM-init blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobArch {
    A32,
    A64,
    Unknown,
}

/// One row of the chip table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chip {
    /// Lower-case SoC names this row covers (the board table's `soc`).
    pub socs: &'static [&'static str],
    /// USB product id (the same in maskrom and loader mode).
    pub pid: u16,
    /// Whether the ROM wants raw 0x471/0x472 payloads RC4'd.
    pub rc4: bool,
    /// Execution state of the 0x471 blob.
    pub arch: BlobArch,
    /// NAME in rkbin's RKBOOT ini.
    pub ini_name: &'static str,
    /// Chip codes of the row besides [`Chip::code`]: rkbin's
    /// RK3326MINIALL.ini says NAME=RK3326 and U-Boot's chip_info.c reports
    /// "3326" on the PX30/RK3326 row, whose PX30 ini says RKPX30.
    pub more_codes: &'static [&'static str],
    /// 4-byte tag legacy DDR blobs start with, checked by the ROM.
    pub ddr_tag: Option<&'static [u8; 4]>,
    /// Current rkbin DDR blob per SoC name (same order as `socs`; one entry
    /// means all use it). The version is the newest known; `--rkbin` looks
    /// for the newest present.
    pub ddr_blobs: &'static [&'static str],
    /// Current rkbin usbplug blobs (same convention).
    pub usbplug_blobs: &'static [&'static str],
    /// Whether the PID is unconfirmed.
    pub pid_unverified: bool,
    /// Zero-CRC support.
    pub zero_crc: ZeroCrc,
}

impl Chip {
    /// The rkbin DDR blob name for `soc`.
    pub fn ddr_blob(&self, soc: &str) -> &'static str {
        pick(self.socs, self.ddr_blobs, soc)
    }
    /// The rkbin usbplug name for `soc`.
    pub fn usbplug_blob(&self, soc: &str) -> &'static str {
        pick(self.socs, self.usbplug_blobs, soc)
    }
    /// Whether `--zero-crc` may be used.
    pub fn zero_crc_allowed(&self) -> bool {
        matches!(self.zero_crc, ZeroCrc::Confirmed | ZeroCrc::Reported)
    }
    /// The chip code in the RKBOOT header and READ CHIP INFO: the 4
    /// characters after "RK"/"RV" of the ini NAME.
    pub fn code(&self) -> &'static str {
        &self.ini_name[self.ini_name.len() - 4..]
    }
}

/// The SoCs whose rows say `support`, as users write them ("RK3506/RK3506B"),
/// sorted: the zero-CRC messages are made from the table, so they cannot
/// drift from it.
pub fn zero_crc_chips(support: ZeroCrc) -> Vec<String> {
    let mut v: Vec<String> = CHIPS
        .iter()
        .filter(|c| c.zero_crc == support)
        .map(|c| c.socs.iter().map(|s| s.to_uppercase()).collect::<Vec<_>>().join("/"))
        .collect();
    v.sort();
    v
}

/// What the table knows about zero-CRC support, in words: "confirmed on
/// RK3576; reported on RK3506/RK3506B, RK3528 and RV1106/RV1103; refused by
/// RK3308".
pub fn zero_crc_summary() -> String {
    let parts = [
        (ZeroCrc::Confirmed, "confirmed on"),
        (ZeroCrc::Reported, "reported on"),
        (ZeroCrc::Unsupported, "refused by"),
    ];
    parts
        .iter()
        .filter_map(|(z, words)| {
            let names = zero_crc_chips(*z);
            (!names.is_empty()).then(|| format!("{words} {}", and_list(&names)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// "a", "a and b", "a, b and c".
fn and_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn pick(socs: &[&str], names: &[&'static str], soc: &str) -> &'static str {
    let i = socs.iter().position(|s| *s == soc).unwrap_or(0);
    names.get(i).or(names.first()).copied().unwrap_or("")
}

/// Every chip of the fact sheet's table.
pub const CHIPS: &[Chip] = &[
    Chip {
        socs: &["rk3036"],
        pid: 0x301a,
        rc4: true,
        arch: BlobArch::A32,
        ini_name: "RK303A",
        more_codes: &[],
        ddr_tag: Some(b"RK30"),
        ddr_blobs: &["rk3036_ddr_396MHz_v1.11.bin"],
        usbplug_blobs: &["rk303x_usbplug_v2.57.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3066"],
        pid: 0x300a,
        rc4: true,
        arch: BlobArch::A32,
        ini_name: "RK30",
        more_codes: &[],
        ddr_tag: Some(b"RK30"),
        ddr_blobs: &["30_LPDDR2_300MHz_DDR3_300MHz_20130517.bin"],
        usbplug_blobs: &["rk30usbplug.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3188"],
        pid: 0x310b,
        rc4: true,
        arch: BlobArch::A32,
        ini_name: "RK31",
        more_codes: &[],
        ddr_tag: Some(b"RK31"),
        ddr_blobs: &["rk3188_ddr_v2.00.bin"],
        usbplug_blobs: &["rk3188_usbplug_v2.00.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3128", "rk3126"],
        pid: 0x310c,
        rc4: true,
        arch: BlobArch::A32,
        ini_name: "RK312A",
        more_codes: &[],
        ddr_tag: Some(b"RK31"),
        ddr_blobs: &["rk3128_ddr_300MHz_v2.12.bin", "rk3126_ddr_300MHz_v2.09.bin"],
        usbplug_blobs: &["rk3128_usbplug_v2.63.bin", "rk3126_usbplug_v2.63.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3288"],
        pid: 0x320a,
        rc4: true,
        arch: BlobArch::A32,
        ini_name: "RK320A",
        more_codes: &[],
        ddr_tag: Some(b"RK32"),
        ddr_blobs: &["rk3288_ddr_400MHz_v1.12.bin"],
        usbplug_blobs: &["rk3288_usbplug_v2.63.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3228", "rk3229"],
        pid: 0x320b,
        rc4: true,
        arch: BlobArch::A32,
        ini_name: "RK322A",
        more_codes: &[],
        ddr_tag: Some(b"RK32"),
        ddr_blobs: &["rk322x_ddr_300MHz_v1.10.bin"],
        usbplug_blobs: &["rk322x_usbplug_v2.56.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3328"],
        pid: 0x320c,
        rc4: true,
        arch: BlobArch::A64,
        ini_name: "RK322H",
        more_codes: &[],
        ddr_tag: Some(b"RK32"),
        ddr_blobs: &["rk3328_ddr_333MHz_v1.21.bin"],
        usbplug_blobs: &["rk322xh_usbplug_v2.50.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3368"],
        pid: 0x330a,
        rc4: true,
        arch: BlobArch::A64,
        ini_name: "RK330A",
        more_codes: &[],
        ddr_tag: Some(b"RK33"),
        ddr_blobs: &["rk3368_ddr_600MHz_v2.06.bin"],
        usbplug_blobs: &["rk3368_usbplug_v2.68.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3399", "rk3399pro"],
        pid: 0x330c,
        rc4: true,
        arch: BlobArch::A64,
        ini_name: "RK330C",
        more_codes: &[],
        ddr_tag: Some(b"RK33"),
        ddr_blobs: &["rk3399_ddr_800MHz_v1.30.bin"],
        usbplug_blobs: &["rk3399_usbplug_v1.30.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["px30", "rk3326"],
        pid: 0x330d,
        rc4: true,
        arch: BlobArch::A64,
        ini_name: "RKPX30",
        more_codes: &["3326"],
        ddr_tag: Some(b"RK33"),
        ddr_blobs: &["px30_ddr_333MHz_v2.11.bin", "rk3326_ddr_333MHz_v2.11.bin"],
        usbplug_blobs: &["px30_usbplug_v1.36.bin", "rk3326_usbplug_v1.36.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3308"],
        pid: 0x330e,
        rc4: true,
        arch: BlobArch::A64,
        ini_name: "RK3308",
        more_codes: &[],
        ddr_tag: Some(b"RK33"),
        ddr_blobs: &["rk3308_ddr_589MHz_uart2_m1_v2.10.bin"],
        usbplug_blobs: &["rk3308_usbplug_v1.43.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unsupported,
    },
    Chip {
        socs: &["rk1808"],
        pid: 0x180a,
        rc4: true,
        arch: BlobArch::A64,
        ini_name: "RK180A",
        more_codes: &[],
        ddr_tag: Some(b"RK18"),
        ddr_blobs: &["rk1808_ddr_933MHz_v1.06.bin"],
        usbplug_blobs: &["rk1808_usbplug_v1.05.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rv1108"],
        pid: 0x110a,
        rc4: true,
        arch: BlobArch::Unknown,
        ini_name: "RK110A",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &["rv1108_ddr3_v1.12.bin"],
        usbplug_blobs: &["rv110x_usbplug_v1.26.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rv1126", "rv1109"],
        pid: 0x110b,
        rc4: true,
        arch: BlobArch::A32,
        ini_name: "RV1126",
        more_codes: &[],
        ddr_tag: Some(b"110B"),
        ddr_blobs: &["rv1126_ddr_924MHz_v1.13.bin"],
        usbplug_blobs: &["rv1126_usbplug_v1.24.bin"],
        pid_unverified: true,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rv1106", "rv1103"],
        pid: 0x110c,
        rc4: false,
        arch: BlobArch::A32,
        ini_name: "RV1106",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &["rv1106_ddr_924MHz_v1.15.bin"],
        usbplug_blobs: &["rv1106_usbplug_v1.09.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Reported,
    },
    Chip {
        socs: &["rk3568", "rk3566"],
        pid: 0x350a,
        rc4: false,
        arch: BlobArch::A64,
        ini_name: "RK3568",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &["rk3568_ddr_1560MHz_v1.23.bin", "rk3566_ddr_1056MHz_v1.23.bin"],
        usbplug_blobs: &["rk356x_usbplug_v1.17.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3588", "rk3588s", "rk3583"],
        pid: 0x350b,
        rc4: false,
        arch: BlobArch::A64,
        ini_name: "RK3588",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &[
            "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.18.bin",
            "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.18.bin",
            "rk3583_ddr_lp4_2112MHz_lp5_2400MHz_v1.18.bin",
        ],
        usbplug_blobs: &["rk3588_usbplug_v1.11.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3528"],
        pid: 0x350c,
        rc4: false,
        arch: BlobArch::A64,
        ini_name: "RK3528",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &["rk3528_ddr_1056MHz_v1.10.bin"],
        usbplug_blobs: &["rk3528_usbplug_v1.03.bin"],
        pid_unverified: true,
        zero_crc: ZeroCrc::Reported,
    },
    Chip {
        socs: &["rk3562"],
        pid: 0x350d,
        rc4: false,
        arch: BlobArch::A64,
        ini_name: "RK3562",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &["rk3562_ddr_1332MHz_v1.07.bin"],
        usbplug_blobs: &["rk3562_usbplug_v1.04.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Unknown,
    },
    Chip {
        socs: &["rk3576"],
        pid: 0x350e,
        rc4: false,
        arch: BlobArch::A64,
        ini_name: "RK3576",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &["rk3576_ddr_lp4_2112MHz_lp5_2736MHz_v1.09.bin"],
        usbplug_blobs: &["rk3576_usbplug_v1.04.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Confirmed,
    },
    Chip {
        socs: &["rk3506", "rk3506b"],
        pid: 0x350f,
        rc4: false,
        arch: BlobArch::A32,
        ini_name: "RK350F",
        more_codes: &[],
        ddr_tag: None,
        ddr_blobs: &["rk3506_ddr_750MHz_v1.05.bin", "rk3506b_ddr_750MHz_v1.05.bin"],
        usbplug_blobs: &["rk3506_usbplug_v1.02.bin"],
        pid_unverified: false,
        zero_crc: ZeroCrc::Reported,
    },
];

/// The row for a SoC name (case-insensitive, e.g. "rk3566").
pub fn by_soc(soc: &str) -> Option<&'static Chip> {
    let soc = soc.to_ascii_lowercase();
    CHIPS.iter().find(|c| c.socs.contains(&soc.as_str()))
}

/// The row for a USB product id.
pub fn by_pid(pid: u16) -> Option<&'static Chip> {
    CHIPS.iter().find(|c| c.pid == pid)
}

/// The row for the chip code of an RKBOOT header or READ CHIP INFO
/// ("3568", "330C").
pub fn by_code(code: &str) -> Option<&'static Chip> {
    CHIPS.iter().find(|c| {
        c.code().eq_ignore_ascii_case(code) || c.more_codes.iter().any(|m| m.eq_ignore_ascii_case(code))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for c in CHIPS {
            assert!(by_pid(c.pid).is_some_and(|x| x == c), "duplicate pid {:04x}", c.pid);
            assert!(c.ddr_blobs.len() == 1 || c.ddr_blobs.len() == c.socs.len());
            for s in c.socs {
                assert!(c.ddr_blob(s).ends_with(".bin"));
                assert!(c.usbplug_blob(s).contains("usbplug"));
            }
        }
        assert_eq!(by_soc("RK3566").unwrap().pid, 0x350a);
        assert_eq!(by_soc("rk3566").unwrap().ddr_blob("rk3566"), "rk3566_ddr_1056MHz_v1.23.bin");
        assert_eq!(by_soc("rk3399").unwrap().code(), "330C");
        assert_eq!(by_code("3568").unwrap().pid, 0x350a);
        assert!(by_code("3326").is_some_and(|c| c.socs.contains(&"rk3326")));
        assert!(by_soc("rk3308").is_some_and(|c| !c.zero_crc_allowed()));
        assert!(by_soc("rk3576").is_some_and(|c| c.zero_crc_allowed()));
    }

    #[test]
    fn zero_crc_words_come_from_the_table() {
        // Sheet §1.3/§8.6: confirmed on RK3576; reported on RK3506, RK3528
        // and RV1106; RK3308 refuses it.
        assert_eq!(
            zero_crc_summary(),
            "confirmed on RK3576; reported on RK3506/RK3506B, RK3528 and RV1106/RV1103; refused by RK3308"
        );
    }
}
