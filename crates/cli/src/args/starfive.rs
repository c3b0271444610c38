//! StarFive JH7110 flags.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::args::values::parse_u64;

/// `maskrom` flags for StarFive boards.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "StarFive")]
pub struct StarfiveArgs {
    /// StarFive: use 128-byte XMODEM blocks instead of 1K.
    #[arg(long)]
    pub xmodem_128: bool,
    /// StarFive: after the SPL starts, send this file with YMODEM when it asks.
    #[arg(long, value_name = "FILE")]
    pub then_ymodem: Option<PathBuf>,
    /// StarFive: set an FTDI adapter's latency timer to 1 ms (Linux sysfs).
    #[arg(long)]
    pub low_latency: bool,
    /// StarFive: what a NAK from the boot ROM does: `resend` the block, or
    /// `ignore` it and go on whatever the answer, as vf2-recover does (the
    /// ROM's CRC-32 check of the image is then the only check).
    #[arg(long, value_enum, value_name = "POLICY", default_value = "resend")]
    pub xmodem_nak: XmodemNak,
    /// StarFive: send the fastload loader by the ROM's XMODEM, then the
    /// payload through it at --fast-baud (docs/fastload.md); the payload
    /// goes to the SRAM after the loader (0x08008000, up to 224 KiB).
    #[arg(long)]
    pub fast: bool,
    /// StarFive: the rate for the payload with --fast (default 1500000, the
    /// fastest exact rate of JH7110 UART0; 115200 when it does not sync).
    #[arg(long, value_name = "N", requires = "fast")]
    pub fast_baud: Option<u32>,
    /// StarFive: another loader than the built-in one for --fast.
    #[arg(long, value_name = "FILE", requires = "fast")]
    pub fast_loader: Option<PathBuf>,
}

/// `--xmodem-nak`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum XmodemNak {
    /// Send the block again (up to 30 NAKs in a row).
    #[default]
    Resend,
    /// Go on to the next block whatever the answer (vf2-recover).
    Ignore,
}

/// `image` flags for StarFive boards: the two header fields spl_tool lets
/// the user choose.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "StarFive")]
pub struct StarfiveImageArgs {
    /// StarFive: the header's version field.
    #[arg(long = "version", id = "spl_version", value_name = "N", value_parser = parse_u64)]
    pub version: Option<u64>,
    /// StarFive: the header's backup offset field.
    #[arg(long, value_name = "N", value_parser = parse_u64)]
    pub backup_offset: Option<u64>,
}

/// `write` flags for StarFive boards: the files of StarFive's recovery flow
/// (vf2-recover's -r, -s, -u). Refused on other boards.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "StarFive")]
pub struct StarfiveWriteArgs {
    /// StarFive: the recovery program (StarFive's jh7110-recovery-*.bin),
    /// sent to the boot ROM first; it writes the QSPI flash.
    #[arg(long, value_name = "FILE")]
    pub recovery: Option<PathBuf>,
    /// StarFive: the SPL with its 0x400-byte header
    /// (u-boot-spl.bin.normal.out), written at 0 of the QSPI flash.
    #[arg(long, value_name = "FILE")]
    pub spl: Option<PathBuf>,
    /// StarFive: U-Boot (u-boot.itb, or the vendor
    /// visionfive2_fw_payload.img), written at 0x100000 of the QSPI flash.
    #[arg(long, value_name = "FILE")]
    pub uboot: Option<PathBuf>,
    /// StarFive: send the recovery program to the boot ROM in 128-byte
    /// XMODEM blocks instead of 1K (as vf2-recover does).
    #[arg(long = "xmodem-128", id = "write_xmodem_128")]
    pub xmodem_128: bool,
    /// StarFive: what a NAK from the boot ROM does while it receives the
    /// recovery program: `resend` (default) or `ignore` (vf2-recover).
    #[arg(long = "xmodem-nak", id = "write_xmodem_nak", value_enum, value_name = "POLICY")]
    pub xmodem_nak: Option<XmodemNak>,
}

impl StarfiveWriteArgs {
    /// The flags given, by name, and their files.
    pub fn given(&self) -> Vec<(&'static str, &std::path::Path)> {
        [("--recovery", &self.recovery), ("--spl", &self.spl), ("--uboot", &self.uboot)]
            .into_iter()
            .filter_map(|(f, p)| p.as_deref().map(|p| (f, p)))
            .collect()
    }

    /// The flags given that are not files.
    pub fn given_switches(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.xmodem_128 {
            v.push("--xmodem-128");
        }
        if self.xmodem_nak.is_some() {
            v.push("--xmodem-nak");
        }
        v
    }
}
