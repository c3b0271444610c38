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
    /// The RKBOOT tag boot_merger writes for it.
    pub new_idb: bool,
    /// 4-byte tag legacy DDR blobs start with, checked by the ROM.
    pub ddr_tag: Option<&'static [u8; 4]>,
    /// Current rkbin DDR blob per SoC name (same order as `socs`; one entry
    /// means all use it). The version is the newest known; `--rkbin` looks
    /// for the newest present.
    pub ddr_blobs: &'static [&'static str],
    /// Current rkbin usbplug blobs (same convention).
    pub usbplug_blobs: &'static [&'static str],
    /// SRAM base, when known.
    pub sram_base: Option<u64>,
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

fn pick(socs: &[&str], names: &[&'static str], soc: &str) -> &'static str {
    let i = socs.iter().position(|s| *s == soc).unwrap_or(0);
    names.get(i).or(names.first()).copied().unwrap_or("")
}

macro_rules! chip {
    ($socs:expr, $pid:expr, $arch:ident, $rc4:expr, $ini:expr, $new:expr, $tag:expr, $ddr:expr, $plug:expr, $sram:expr, $unv:expr, $z:ident) => {
        Chip {
            socs: $socs,
            pid: $pid,
            arch: BlobArch::$arch,
            rc4: $rc4,
            ini_name: $ini,
            new_idb: $new,
            ddr_tag: $tag,
            ddr_blobs: $ddr,
            usbplug_blobs: $plug,
            sram_base: $sram,
            pid_unverified: $unv,
            zero_crc: ZeroCrc::$z,
        }
    };
}

/// Every chip of the fact sheet's table.
pub const CHIPS: &[Chip] = &[
    chip!(
        &["rk3036"],
        0x301a,
        A32,
        true,
        "RK303A",
        false,
        Some(b"RK30"),
        &["rk3036_ddr_396MHz_v1.11.bin"],
        &["rk303x_usbplug_v2.57.bin"],
        Some(0x1008_0000),
        false,
        Unknown
    ),
    chip!(
        &["rk3066"],
        0x300a,
        A32,
        true,
        "RK30",
        false,
        Some(b"RK30"),
        &["30_LPDDR2_300MHz_DDR3_300MHz_20130517.bin"],
        &["rk30usbplug.bin"],
        None,
        false,
        Unknown
    ),
    chip!(
        &["rk3188"],
        0x310b,
        A32,
        true,
        "RK31",
        false,
        Some(b"RK31"),
        &["rk3188_ddr_v2.00.bin"],
        &["rk3188_usbplug_v2.00.bin"],
        None,
        false,
        Unknown
    ),
    chip!(
        &["rk3128", "rk3126"],
        0x310c,
        A32,
        true,
        "RK312A",
        false,
        Some(b"RK31"),
        &["rk3128_ddr_300MHz_v2.12.bin", "rk3126_ddr_300MHz_v2.09.bin"],
        &["rk3128_usbplug_v2.63.bin", "rk3126_usbplug_v2.63.bin"],
        None,
        false,
        Unknown
    ),
    chip!(
        &["rk3288"],
        0x320a,
        A32,
        true,
        "RK320A",
        false,
        Some(b"RK32"),
        &["rk3288_ddr_400MHz_v1.12.bin"],
        &["rk3288_usbplug_v2.63.bin"],
        Some(0xff70_0000),
        false,
        Unknown
    ),
    chip!(
        &["rk3228", "rk3229"],
        0x320b,
        A32,
        true,
        "RK322A",
        false,
        Some(b"RK32"),
        &["rk322x_ddr_300MHz_v1.10.bin"],
        &["rk322x_usbplug_v2.56.bin"],
        None,
        false,
        Unknown
    ),
    chip!(
        &["rk3328"],
        0x320c,
        A64,
        true,
        "RK322H",
        false,
        Some(b"RK32"),
        &["rk3328_ddr_333MHz_v1.21.bin"],
        &["rk322xh_usbplug_v2.50.bin"],
        Some(0xff09_0000),
        false,
        Unknown
    ),
    chip!(
        &["rk3368"],
        0x330a,
        A64,
        true,
        "RK330A",
        false,
        Some(b"RK33"),
        &["rk3368_ddr_600MHz_v2.06.bin"],
        &["rk3368_usbplug_v2.68.bin"],
        Some(0xff8c_0000),
        false,
        Unknown
    ),
    chip!(
        &["rk3399", "rk3399pro"],
        0x330c,
        A64,
        true,
        "RK330C",
        false,
        Some(b"RK33"),
        &["rk3399_ddr_800MHz_v1.30.bin"],
        &["rk3399_usbplug_v1.30.bin"],
        Some(0xff8c_0000),
        false,
        Unknown
    ),
    chip!(
        &["px30", "rk3326"],
        0x330d,
        A64,
        true,
        "RKPX30",
        false,
        Some(b"RK33"),
        &["px30_ddr_333MHz_v2.11.bin", "rk3326_ddr_333MHz_v2.11.bin"],
        &["px30_usbplug_v1.36.bin", "rk3326_usbplug_v1.36.bin"],
        Some(0xff0e_0000),
        false,
        Unknown
    ),
    chip!(
        &["rk3308"],
        0x330e,
        A64,
        true,
        "RK3308",
        false,
        Some(b"RK33"),
        &["rk3308_ddr_589MHz_uart2_m1_v2.10.bin"],
        &["rk3308_usbplug_v1.43.bin"],
        Some(0xfff8_0000),
        false,
        Unsupported
    ),
    chip!(
        &["rk1808"],
        0x180a,
        A64,
        true,
        "RK180A",
        false,
        Some(b"RK18"),
        &["rk1808_ddr_933MHz_v1.06.bin"],
        &["rk1808_usbplug_v1.05.bin"],
        None,
        false,
        Unknown
    ),
    chip!(
        &["rv1108"],
        0x110a,
        Unknown,
        true,
        "RK110A",
        false,
        None,
        &["rv1108_ddr3_v1.12.bin"],
        &["rv110x_usbplug_v1.26.bin"],
        None,
        false,
        Unknown
    ),
    chip!(
        &["rv1126", "rv1109"],
        0x110b,
        A32,
        true,
        "RV1126",
        false,
        Some(b"110B"),
        &["rv1126_ddr_924MHz_v1.13.bin"],
        &["rv1126_usbplug_v1.24.bin"],
        Some(0xff70_0000),
        true,
        Unknown
    ),
    chip!(
        &["rv1106", "rv1103"],
        0x110c,
        A32,
        false,
        "RV1106",
        true,
        None,
        &["rv1106_ddr_924MHz_v1.15.bin"],
        &["rv1106_usbplug_v1.09.bin"],
        None,
        false,
        Reported
    ),
    chip!(
        &["rk3568", "rk3566"],
        0x350a,
        A64,
        false,
        "RK3568",
        true,
        None,
        &["rk3568_ddr_1560MHz_v1.23.bin", "rk3566_ddr_1056MHz_v1.23.bin"],
        &["rk356x_usbplug_v1.17.bin"],
        Some(0xfdcc_0000),
        false,
        Unknown
    ),
    chip!(
        &["rk3588", "rk3588s", "rk3583"],
        0x350b,
        A64,
        false,
        "RK3588",
        true,
        None,
        &[
            "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.18.bin",
            "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.18.bin",
            "rk3583_ddr_lp4_2112MHz_lp5_2400MHz_v1.18.bin"
        ],
        &["rk3588_usbplug_v1.11.bin"],
        Some(0xff00_0000),
        false,
        Unknown
    ),
    chip!(
        &["rk3528"],
        0x350c,
        A64,
        false,
        "RK3528",
        true,
        None,
        &["rk3528_ddr_1056MHz_v1.10.bin"],
        &["rk3528_usbplug_v1.03.bin"],
        None,
        true,
        Reported
    ),
    chip!(
        &["rk3562"],
        0x350d,
        A64,
        false,
        "RK3562",
        true,
        None,
        &["rk3562_ddr_1332MHz_v1.07.bin"],
        &["rk3562_usbplug_v1.04.bin"],
        None,
        false,
        Unknown
    ),
    chip!(
        &["rk3576"],
        0x350e,
        A64,
        false,
        "RK3576",
        true,
        None,
        &["rk3576_ddr_lp4_2112MHz_lp5_2736MHz_v1.09.bin"],
        &["rk3576_usbplug_v1.04.bin"],
        Some(0x3ff8_0000),
        false,
        Confirmed
    ),
    chip!(
        &["rk3506", "rk3506b"],
        0x350f,
        A32,
        false,
        "RK350F",
        true,
        None,
        &["rk3506_ddr_750MHz_v1.05.bin", "rk3506b_ddr_750MHz_v1.05.bin"],
        &["rk3506_usbplug_v1.02.bin"],
        None,
        false,
        Reported
    ),
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
    CHIPS.iter().find(|c| c.code().eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for c in CHIPS {
            assert!(by_pid(c.pid).is_some_and(|x| x == c), "duplicate pid {:04x}", c.pid);
            assert_eq!(c.new_idb, !c.rc4, "{}: new-IDB chips take plain bytes", c.ini_name);
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
        assert!(by_soc("rk3308").is_some_and(|c| !c.zero_crc_allowed()));
        assert!(by_soc("rk3576").is_some_and(|c| c.zero_crc_allowed()));
    }
}
