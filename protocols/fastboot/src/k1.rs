//! SpacemiT K1: the boot ROM flow and the FSBL / bootinfo image formats.
//!
//! ROM (361c:1001, serial `dfu-device`): `getvar:version-brom` answers
//! `1.0`; `download` the FSBL, `continue`. The FSBL (U-Boot SPL) comes back
//! with the same VID:PID; `download` u-boot.itb, `continue` (sheet §3).

use racklet_link::ProgressSink;
use sha2::{Digest, Sha256};

use crate::FastbootError;
use crate::client::{Departure, Fastboot};
use crate::transport::Transport;

/// USB serial string of the K1 boot ROM.
pub const ROM_SERIAL: &str = "dfu-device";
/// What vendor U-Boot (not the ROM) answers to `getvar:version`.
pub const UBOOT_FASTBOOT_VERSION: &str = "0.4";

/// What a K1 fastboot device says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `getvar:version-brom`, when answered.
    pub version_brom: Option<String>,
    /// `getvar:version`, when answered.
    pub version: Option<String>,
    /// The USB serial string, when the transport has one.
    pub serial: Option<String>,
}

impl Identity {
    /// True when this is the boot ROM. `version-brom` alone is not enough:
    /// one report has vendor U-Boot answering it too (sheet §3.1, §6.2). So
    /// a device that answers it and also says fastboot version 0.4 counts as
    /// the ROM only when its serial string is the ROM's.
    pub fn is_rom(&self) -> bool {
        let brom = self.version_brom.as_deref().is_some_and(|v| !v.trim().is_empty());
        let uboot_like = self.version.as_deref().map(str::trim) == Some(UBOOT_FASTBOOT_VERSION);
        brom && (!uboot_like || self.serial.as_deref() == Some(ROM_SERIAL))
    }

    /// True when this is the boot ROM, judged over TCP, where there is no
    /// USB serial string to cross-check: it answers `version-brom`. (The one
    /// report of vendor U-Boot answering it too cannot be told apart here;
    /// a TCP device is one the user named with `--port tcp:`.)
    pub fn is_rom_over_tcp(&self) -> bool {
        self.version_brom.as_deref().is_some_and(|v| !v.trim().is_empty())
    }
}

/// Asks the device which K1 stage it is.
pub fn identify<T: Transport>(
    fb: &mut Fastboot<T>,
    serial: Option<&str>,
    progress: &mut dyn ProgressSink,
) -> Result<Identity, FastbootError> {
    let version_brom = fb.getvar_opt("version-brom", progress)?;
    let version = fb.getvar_opt("version", progress)?;
    Ok(Identity { version_brom, version, serial: serial.map(str::to_string) })
}

/// The ROM stage: checks the device is the ROM, downloads the FSBL and
/// starts it. Refuses a file without the FSBL headers before sending.
pub fn boot_fsbl<T: Transport>(
    fb: &mut Fastboot<T>,
    serial: Option<&str>,
    fsbl: &[u8],
    progress: &mut dyn ProgressSink,
) -> Result<(Identity, Departure), FastbootError> {
    boot_fsbl_if(fb, serial, fsbl, progress, Identity::is_rom)
}

/// [`boot_fsbl`] on a device reached over TCP ([`Identity::is_rom_over_tcp`]).
pub fn boot_fsbl_over_tcp<T: Transport>(
    fb: &mut Fastboot<T>,
    fsbl: &[u8],
    progress: &mut dyn ProgressSink,
) -> Result<(Identity, Departure), FastbootError> {
    boot_fsbl_if(fb, None, fsbl, progress, Identity::is_rom_over_tcp)
}

fn boot_fsbl_if<T: Transport>(
    fb: &mut Fastboot<T>,
    serial: Option<&str>,
    fsbl: &[u8],
    progress: &mut dyn ProgressSink,
    is_rom: fn(&Identity) -> bool,
) -> Result<(Identity, Departure), FastbootError> {
    check_fsbl(fsbl).map_err(|reason| FastbootError::BadImage { what: "FSBL".into(), reason })?;
    let id = identify(fb, serial, progress)?;
    if !is_rom(&id) {
        return Err(FastbootError::WrongStage {
            device: fb.transport().describe(),
            version_brom: id.version_brom,
            version: id.version,
            serial: id.serial,
        });
    }
    progress.check_cancel()?;
    fb.stage("fsbl", fsbl, progress)?;
    let d = fb.continue_boot(progress)?;
    Ok((id, d))
}

/// A later stage (FSBL or U-Boot): stage `image` and `continue`.
pub fn stage_and_continue<T: Transport>(
    fb: &mut Fastboot<T>,
    what: &str,
    image: &[u8],
    progress: &mut dyn ProgressSink,
) -> Result<Departure, FastbootError> {
    fb.stage(what, image, progress)?;
    fb.continue_boot(progress)
}

/// Magic of both FSBL headers.
pub const AIHD: &[u8; 4] = b"AIHD";

/// Offset of header0 (after the 256-byte ROTPK).
pub const HEADER0: usize = 0x100;
/// Offset of header1 (the SPL's own header, last 32 bytes of the 4 KiB).
pub const HEADER1: usize = 0xfe0;
/// Where the SPL starts in FSBL.bin.
pub const SPL_OFFSET: usize = 0x1000;
/// Length of signature1 at the end.
pub const SIGNATURE_LEN: usize = 0x100;
/// Where the K1 ROM puts FSBL.bin: the SRAM base; the SPL links at +0x1000.
pub const LOAD_ADDRESS: u64 = 0xc080_0000;

/// One 32-byte `AIHD` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AihdHeader {
    pub version: u8,
    pub secure: u8,
    pub imgsize: u64,
    pub load_addr: u64,
}

/// A decoded FSBL.bin (sheet appendix "FSBL.bin").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fsbl {
    pub header0: AihdHeader,
    pub header1: AihdHeader,
    pub key_default: u32,
    /// keydata.table_num as stored.
    pub table_num: u32,
    /// The key table: (name, id).
    pub keys: Vec<(String, u32)>,
    /// keydata.rotpk_hash equals SHA-256 of the ROTPK field.
    pub rotpk_hash_ok: bool,
    /// The file is 0x1000 + header1.imgsize + 256 (signature1) bytes.
    pub size_ok: bool,
    /// Bytes after the 4 KiB header area.
    pub spl_len: usize,
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn header(b: &[u8], at: usize) -> AihdHeader {
    AihdHeader {
        version: b[at + 4],
        secure: b[at + 5],
        imgsize: u64le(b, at + 8),
        load_addr: u64le(b, at + 16),
    }
}

/// Why bytes are not a K1 FSBL.bin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsblError {
    /// Shorter than the 4 KiB header area.
    #[error("{len} bytes is shorter than the 4 KiB K1 FSBL header; the K1 ROM expects FSBL.bin")]
    TooShort { len: usize },
    /// A header without its `AIHD` magic (`header` is "header0" or "header1").
    #[error("no 'AIHD' magic at 0x{offset:x} ({header}); the K1 ROM expects FSBL.bin, not a raw binary")]
    NoMagic { offset: usize, header: &'static str },
    /// The headers decode, but these integrity checks ([`Fsbl::checks`]) fail.
    #[error("integrity check failed: {}", failed.join(", "))]
    FailedChecks { failed: Vec<String> },
}

impl FsblError {
    /// How to get a good FSBL.bin.
    pub fn hint(&self) -> &'static str {
        match self {
            FsblError::FailedChecks { .. } => {
                "the headers disagree with the file: rebuild FSBL.bin (vendor build_binary_file.py, or `racklet-flash image <board> u-boot-spl.bin -o FSBL.bin`); `racklet-flash info` shows each check"
            }
            _ => {
                "FSBL.bin is u-boot-spl.bin wrapped with AIHD headers by the vendor build_binary_file.py; `racklet-flash image <board> u-boot-spl.bin -o FSBL.bin` builds one"
            }
        }
    }
}

/// Decodes FSBL.bin; why it is not one.
pub fn parse_fsbl(b: &[u8]) -> Result<Fsbl, FsblError> {
    if b.len() < SPL_OFFSET {
        return Err(FsblError::TooShort { len: b.len() });
    }
    for (at, name) in [(HEADER0, "header0"), (HEADER1, "header1")] {
        if &b[at..at + 4] != AIHD {
            return Err(FsblError::NoMagic { offset: at, header: name });
        }
    }
    let table_num = u32le(b, 0x124);
    let keys = (0..table_num.min(4) as usize)
        .map(|i| {
            let at = 0x128 + i * 20;
            let name = &b[at..at + 16];
            let end = name.iter().position(|&c| c == 0).unwrap_or(16);
            (String::from_utf8_lossy(&name[..end]).into_owned(), u32le(b, at + 16))
        })
        .collect();
    let header1 = header(b, HEADER1);
    let size_ok =
        (SPL_OFFSET as u64).checked_add(header1.imgsize).and_then(|s| s.checked_add(SIGNATURE_LEN as u64))
            == Some(b.len() as u64);
    Ok(Fsbl {
        header0: header(b, HEADER0),
        header1,
        key_default: u32le(b, 0x120),
        table_num,
        keys,
        rotpk_hash_ok: Sha256::digest(&b[..0x100]).as_slice() == &b[0x2b8..0x2d8],
        size_ok,
        spl_len: b.len() - SPL_OFFSET,
    })
}

/// The most key slots keydata holds (sheet appendix: 4 named slots).
pub const MAX_KEYS: u32 = 4;

impl Fsbl {
    /// The integrity checks of the headers, by name: what `info` shows and
    /// what a load must pass.
    pub fn checks(&self) -> Vec<(String, bool)> {
        vec![
            ("header1 AIHD magic".into(), true),
            ("header0.imgsize = 0x1000".into(), self.header0.imgsize == SPL_OFFSET as u64),
            ("size = 0x1000 + header1.imgsize + 256".into(), self.size_ok),
            ("ROTPK SHA-256".into(), self.rotpk_hash_ok),
            (format!("keydata.table_num <= {MAX_KEYS}"), self.table_num <= MAX_KEYS),
            (
                // A secure image needs its signatures checked, which racklet-flash cannot do.
                "secure = 0 in both headers (signed images are not supported)".into(),
                self.header0.secure == 0 && self.header1.secure == 0,
            ),
        ]
    }
}

/// Decodes FSBL.bin and applies every integrity check; why it is not an
/// FSBL a ROM could run (naming the failed checks).
pub fn check_fsbl(b: &[u8]) -> Result<Fsbl, FsblError> {
    let f = parse_fsbl(b)?;
    let failed: Vec<String> = f.checks().into_iter().filter(|c| !c.1).map(|c| c.0).collect();
    if !failed.is_empty() {
        return Err(FsblError::FailedChecks { failed });
    }
    Ok(f)
}

/// Wraps a raw `u-boot-spl.bin` (or any SRAM payload linked at
/// 0xC0801000) in the FSBL.bin layout: both AIHD headers, the key table,
/// the SPL padded to 32 bytes. Keys and signatures are zero: for boards
/// whose secure-boot fuses are not set. Whether such a ROM checks the
/// signatures is unknown (sheet §3.4); the vendor tool fills in real but
/// meaningless ones.
pub fn build_fsbl(spl: &[u8]) -> Vec<u8> {
    let padded = spl.len().div_ceil(32) * 32;
    let mut b = vec![0u8; SPL_OFFSET + padded + SIGNATURE_LEN];
    let put_header = |b: &mut [u8], at: usize, imgsize: u64| {
        b[at..at + 4].copy_from_slice(AIHD);
        b[at + 4] = 1; // version
        b[at + 5] = 0; // secure
        b[at + 8..at + 16].copy_from_slice(&imgsize.to_le_bytes());
        b[at + 16..at + 24].copy_from_slice(&0u64.to_le_bytes());
        b[at + 24..at + 32].fill(0xa5);
    };
    put_header(&mut b, HEADER0, 0x1000);
    b[0x120..0x124].copy_from_slice(&0u32.to_le_bytes());
    b[0x124..0x128].copy_from_slice(&4u32.to_le_bytes());
    for (i, name) in ["spl", "uboot", "kernel", "rootfs"].iter().enumerate() {
        let at = 0x128 + i * 20;
        b[at..at + name.len()].copy_from_slice(name.as_bytes());
        b[at + 16..at + 20].copy_from_slice(&(i as u32).to_le_bytes());
    }
    let hash = Sha256::digest(&b[..0x100]);
    b[0x2b8..0x2d8].copy_from_slice(&hash);
    put_header(&mut b, HEADER1, padded as u64);
    b[SPL_OFFSET..SPL_OFFSET + spl.len()].copy_from_slice(spl);
    b
}

/// The storage "bootinfo" header (80 bytes; not used in USB mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootinfo {
    pub version: u32,
    pub flash_type: String,
    pub spl0_offset: u32,
    pub spl1_offset: u32,
    pub spl_size_limit: u32,
    pub crc_ok: bool,
}

/// Magic of the bootinfo header.
pub const BOOTINFO_MAGIC: u32 = 0xb007_14f0;

/// Decodes a bootinfo header, `None` when the magic is absent.
pub fn parse_bootinfo(b: &[u8]) -> Option<Bootinfo> {
    if b.len() < 0x44 || u32le(b, 0) != BOOTINFO_MAGIC {
        return None;
    }
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&b[..0x40]);
    Some(Bootinfo {
        version: u32le(b, 4),
        flash_type: String::from_utf8_lossy(&b[8..12]).into_owned(),
        spl0_offset: u32le(b, 0x20),
        spl1_offset: u32le(b, 0x24),
        spl_size_limit: u32le(b, 0x28),
        crc_ok: crc == u32le(b, 0x40),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_rules() {
        let id = |b: Option<&str>, v: Option<&str>, s: Option<&str>| Identity {
            version_brom: b.map(Into::into),
            version: v.map(Into::into),
            serial: s.map(Into::into),
        };
        assert!(id(Some("1.0"), None, Some("dfu-device")).is_rom());
        assert!(id(Some("1.0"), None, None).is_rom());
        // U-Boot that also answers version-brom: version 0.4 and another serial.
        assert!(!id(Some("1.0"), Some("0.4"), Some("0123456789")).is_rom());
        assert!(id(Some("1.0"), Some("0.4"), Some("dfu-device")).is_rom());
        assert!(!id(None, Some("0.4"), Some("dfu-device")).is_rom());
        assert!(!id(Some(""), None, None).is_rom());
    }

    #[test]
    fn fsbl_layout_by_offsets_of_the_sheet() {
        let spl: Vec<u8> = (0..100u8).collect();
        let f = build_fsbl(&spl);
        // 0x1000 header + SPL padded to 32 (100 -> 128) + 256 signature.
        assert_eq!(f.len(), 0x1000 + 128 + 256);
        assert_eq!(&f[0x100..0x104], b"AIHD");
        assert_eq!(f[0x104], 1);
        assert_eq!(f[0x105], 0);
        assert_eq!(&f[0x108..0x110], &[0, 0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&f[0x118..0x120], &[0xa5; 8]);
        assert_eq!(&f[0x124..0x128], &[4, 0, 0, 0]);
        assert_eq!(&f[0x128..0x12b], b"spl");
        assert_eq!(&f[0x13c..0x141], b"uboot");
        assert_eq!(&f[0x138..0x13c], &[0, 0, 0, 0]);
        assert_eq!(&f[0x14c..0x150], &[1, 0, 0, 0]);
        assert_eq!(&f[0x174..0x178], &[3, 0, 0, 0]);
        // SHA-256 of 256 zero bytes (the zero ROTPK).
        assert_eq!(
            f[0x2b8..0x2d8].iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "5341e6b2646979a70e57653007a1f310169421ec9bdd9f1a5648f75ade005af1"
        );
        assert_eq!(&f[0xfe0..0xfe4], b"AIHD");
        assert_eq!(&f[0xfe8..0xff0], &[128, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&f[0x1000..0x1064], spl.as_slice());
        let p = parse_fsbl(&f).unwrap();
        assert!(p.rotpk_hash_ok && p.size_ok);
        assert_eq!(p.keys[3], ("rootfs".to_string(), 3));
        assert_eq!(p.header1.imgsize, 128);
    }

    #[test]
    fn lying_headers_fail_the_integrity_checks() {
        let good = build_fsbl(&[1; 64]);
        check_fsbl(&good).unwrap();
        let lie = |at: usize, bytes: &[u8]| {
            let mut f = good.clone();
            f[at..at + bytes.len()].copy_from_slice(bytes);
            check_fsbl(&f).unwrap_err()
        };
        let has = |e: FsblError, what: &str| matches!(&e, FsblError::FailedChecks { failed } if failed.iter().any(|f| f.contains(what)));
        assert!(has(lie(0xfe8, &u64::MAX.to_le_bytes()), "header1.imgsize"));
        assert!(has(lie(0xfe8, &0x10_0000u64.to_le_bytes()), "header1.imgsize"));
        assert!(has(lie(0x108, &0x2000u64.to_le_bytes()), "header0.imgsize"));
        assert!(has(lie(0x2b8, &[0xff]), "ROTPK"));
        assert!(has(lie(0x124, &u32::MAX.to_le_bytes()), "table_num"));
        assert!(has(lie(0xfe5, &[1]), "secure"));
        let e = check_fsbl(&good[..0x1000]).unwrap_err();
        assert!(e.to_string().starts_with("integrity check failed: "), "{e}");
    }

    #[test]
    fn fsbl_refusals() {
        assert_eq!(parse_fsbl(&[0u8; 0xfff]).unwrap_err(), FsblError::TooShort { len: 0xfff });
        let mut f = build_fsbl(&[1; 32]);
        f[0xfe0] = b'X';
        assert_eq!(parse_fsbl(&f).unwrap_err(), FsblError::NoMagic { offset: 0xfe0, header: "header1" });
        let e = parse_fsbl(&[0u8; 0x2000]).unwrap_err();
        assert_eq!(e, FsblError::NoMagic { offset: 0x100, header: "header0" });
        assert!(e.to_string().contains("no 'AIHD' magic at 0x100"), "{e}");
        let mut f = build_fsbl(&[1; 32]);
        f.push(0);
        assert!(!parse_fsbl(&f).unwrap().size_ok);
    }

    #[test]
    fn bootinfo_crc_is_zlib_crc32() {
        let mut b = vec![0u8; 0x50];
        b[0..4].copy_from_slice(&[0xf0, 0x14, 0x07, 0xb0]);
        b[8..12].copy_from_slice(b"NORF");
        b[0x20..0x24].copy_from_slice(&0x10000u32.to_le_bytes());
        // zlib crc32 of the 64 bytes written out bit by bit (reflected 0xEDB88320).
        let mut c = 0xffff_ffffu32;
        for &x in &b[..0x40] {
            c ^= u32::from(x);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
            }
        }
        b[0x40..0x44].copy_from_slice(&(!c).to_le_bytes());
        let i = parse_bootinfo(&b).unwrap();
        assert!(i.crc_ok);
        assert_eq!(i.flash_type, "NORF");
        assert_eq!(i.spl0_offset, 0x10000);
        b[0x41] ^= 1;
        assert!(!parse_bootinfo(&b).unwrap().crc_ok);
        assert!(parse_bootinfo(&[0u8; 0x50]).is_none());
    }
}
