//! The IDB that rkdeveloptool's `ul` (upgrade loader) writes to storage
//! from an RKBOOT loader: `racklet-flash write <board> --loader-to-storage`.
//! Sans-I/O: the loader file in, the sectors to write at LBA 64 out.
//!
//! Facts from rockchip-linux/rkdeveloptool (main.cpp `upgrade_loader`,
//! `MakeIDBlockData`, `MakeSector0..3`; DefineHeader.h `RK28_IDB_SEC0..3`;
//! crc.cpp `CRC_16`, `CRC_32`, `P_RC4`; read, not copied):
//!
//! * The loader's "FlashData" (DRAM init) and "FlashBoot" (the miniloader
//!   or SPL) entries of its loader table (type 4), names compared without
//!   case. Each is padded to 2 KiB: `data` and `boot` sectors.
//! * Sector 0: tag 0x0FF0AA55, `uiRc4Flag` (u32 at 8) = the loader header's
//!   RC4-off byte (0x2C) ≠ 0, `usBootCode1Offset` = `usBootCode2Offset` = 4
//!   (at 12, 14), `usBootDataSize` = data sectors (at 0x1FA),
//!   `usBootCodeSize` = data + boot sectors (at 0x1FC), `usCrc` 0.
//! * Sector 1: `usSysReservedBlock` 0xC, `usDisk0Size` 0xFFFF, `uiChipTag`
//!   0x38324B52 ("RK28", u32 at 10), the rest zero.
//! * Sector 2: "VC" at 491, CRC-16 of plain sectors 0, 1 and 3 at 494, 496,
//!   510 (CRC_16: poly 0x1021, init 0, not reflected = CRC-16/XMODEM), "CRC"
//!   at 506, and at 498 the CRC32 (Rockchip's, as the RKBOOT trailer) of
//!   the `usBootCodeSize` sectors from sector 4 as written.
//! * Sector 3: zeros.
//! * When the RC4-off byte is set, every whole 512-byte sector of both
//!   entries is RC4-encoded, each from a fresh key (a partial last sector
//!   stays plain); then sectors 0, 2 and 3 (not 1) are RC4-encoded the same
//!   way, after their CRCs were taken.
//! * FlashData at sector 4, FlashBoot at 4 + data; one WRITE LBA at LBA 64
//!   of 4 + data + boot sectors. One copy, nothing erased first.
//! * A loader with a "FlashHead" entry takes rkdeveloptool's other path
//!   (`bNewIDBlock`): the usbplug must answer READ CAPABILITY with bit 8
//!   ("new IDB", byte 1 bit 0) set, else rkdeveloptool stops with "Device
//!   not support to upgrade the loader"; then no sectors 0–3 are made:
//!   FlashHead, FlashData and FlashBoot, each padded to 2 KiB, go one after
//!   the other, each whole sector RC4-encoded first when the RC4-off byte
//!   is set. One WRITE LBA at LBA 64, as above.

use crate::frame::Rc4;
use crate::loader::{EntryKind, Loader, rk_crc32};

const SEC: usize = 512;

/// CRC-16/XMODEM, rkdeveloptool's `CRC_16`.
pub fn crc16_xmodem(data: &[u8]) -> u16 {
    crc::Crc::<u16>::new(&crc::CRC_16_XMODEM).checksum(data)
}

fn rc4_sector(b: &mut [u8]) {
    Rc4::default().apply(b);
}

/// Why no IDB could be made of a loader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UlError {
    #[error(
        "the loader has no \"{0}\" entry in its loader table (rkdeveloptool ul needs FlashData and FlashBoot)"
    )]
    MissingEntry(&'static str),
    #[error("the loader's \"{0}\" entry is empty")]
    EmptyEntry(&'static str),
    #[error("the IDB would be {0} sectors; a WRITE LBA counts at most 65535")]
    TooLarge(usize),
}

/// What rkdeveloptool `ul` writes at LBA 64 for a loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idb {
    /// The sectors, from LBA 64.
    pub sectors: Vec<u8>,
    /// Made of a "FlashHead" loader: the usbplug must say it takes the new
    /// IDB ([`crate::rockusb::Capability::new_idb`]) before they are written.
    pub new_idb: bool,
}

/// The sectors rkdeveloptool `ul` writes at LBA 64 for `loader` (`file`
/// its bytes, already parsed and checked).
pub fn idb(loader: &Loader, file: &[u8]) -> Result<Idb, UlError> {
    let find = |name: &'static str| loader.of(EntryKind::Loader).find(|e| e.name.eq_ignore_ascii_case(name));
    if let Some(head_e) = find("FlashHead") {
        let data_e = find("FlashData").ok_or(UlError::MissingEntry("FlashData"))?;
        let boot_e = find("FlashBoot").ok_or(UlError::MissingEntry("FlashBoot"))?;
        for (e, n) in [(head_e, "FlashHead"), (data_e, "FlashData"), (boot_e, "FlashBoot")] {
            if e.size == 0 {
                return Err(UlError::EmptyEntry(n));
            }
        }
        let total: usize = [head_e, data_e, boot_e]
            .iter()
            .map(|e| loader.data(file, e).len().next_multiple_of(2048) / SEC)
            .sum();
        if total > 0xffff {
            return Err(UlError::TooLarge(total));
        }
        let mut sectors = Vec::with_capacity(total * SEC);
        for e in [head_e, data_e, boot_e] {
            let mut part = loader.data(file, e).to_vec();
            if loader.rc4_flag != 0 {
                for s in part.chunks_exact_mut(SEC) {
                    rc4_sector(s);
                }
            }
            part.resize(part.len().next_multiple_of(2048), 0);
            sectors.extend_from_slice(&part);
        }
        return Ok(Idb { sectors, new_idb: true });
    }
    let data_e = find("FlashData").ok_or(UlError::MissingEntry("FlashData"))?;
    let boot_e = find("FlashBoot").ok_or(UlError::MissingEntry("FlashBoot"))?;
    for (e, n) in [(data_e, "FlashData"), (boot_e, "FlashBoot")] {
        if e.size == 0 {
            return Err(UlError::EmptyEntry(n));
        }
    }
    let mut data = loader.data(file, data_e).to_vec();
    let mut boot = loader.data(file, boot_e).to_vec();
    let data_sec = data.len().next_multiple_of(2048) / SEC;
    let boot_sec = boot.len().next_multiple_of(2048) / SEC;
    let total = 4 + data_sec + boot_sec;
    if total > 0xffff {
        return Err(UlError::TooLarge(total));
    }
    let rc4 = loader.rc4_flag != 0;
    let mut out = vec![0u8; total * SEC];
    {
        let s0 = &mut out[..SEC];
        s0[0..4].copy_from_slice(&0x0ff0_aa55u32.to_le_bytes());
        s0[8..12].copy_from_slice(&u32::from(rc4).to_le_bytes());
        s0[12..14].copy_from_slice(&4u16.to_le_bytes());
        s0[14..16].copy_from_slice(&4u16.to_le_bytes());
        s0[0x1fa..0x1fc].copy_from_slice(&(data_sec as u16).to_le_bytes());
        s0[0x1fc..0x1fe].copy_from_slice(&((data_sec + boot_sec) as u16).to_le_bytes());
    }
    {
        let s1 = &mut out[SEC..2 * SEC];
        s1[0..2].copy_from_slice(&0xcu16.to_le_bytes());
        s1[2..4].copy_from_slice(&0xffffu16.to_le_bytes());
        s1[10..14].copy_from_slice(&0x3832_4b52u32.to_le_bytes());
    }
    let (c0, c1, c3) =
        (crc16_xmodem(&out[..SEC]), crc16_xmodem(&out[SEC..2 * SEC]), crc16_xmodem(&out[3 * SEC..4 * SEC]));
    if rc4 {
        for buf in [&mut data, &mut boot] {
            for s in buf.chunks_exact_mut(SEC) {
                rc4_sector(s);
            }
        }
    }
    out[4 * SEC..4 * SEC + data.len()].copy_from_slice(&data);
    let at = (4 + data_sec) * SEC;
    out[at..at + boot.len()].copy_from_slice(&boot);
    let code_crc = rk_crc32(&out[4 * SEC..(4 + data_sec + boot_sec) * SEC]);
    {
        let s2 = &mut out[2 * SEC..3 * SEC];
        s2[491..493].copy_from_slice(b"VC");
        s2[494..496].copy_from_slice(&c0.to_le_bytes());
        s2[496..498].copy_from_slice(&c1.to_le_bytes());
        s2[498..502].copy_from_slice(&code_crc.to_le_bytes());
        s2[506..509].copy_from_slice(b"CRC");
        s2[510..512].copy_from_slice(&c3.to_le_bytes());
    }
    for i in [0, 2, 3] {
        rc4_sector(&mut out[i * SEC..(i + 1) * SEC]);
    }
    Ok(Idb { sectors: out, new_idb: false })
}

/// For `info`: whether sectors 1–3 of a v1 header are rkdeveloptool's
/// (sector 2 decodes to the "VC"/"CRC" tags); then whether the CRC-16s it
/// holds match sectors 0, 1 and 3. `None`: not such an IDB (an mkimage
/// image has zeros there).
pub fn check_sectors(b: &[u8]) -> Option<bool> {
    if b.len() < 4 * SEC {
        return None;
    }
    let mut s0 = b[..SEC].to_vec();
    let mut s2 = b[2 * SEC..3 * SEC].to_vec();
    let mut s3 = b[3 * SEC..4 * SEC].to_vec();
    for s in [&mut s0, &mut s2, &mut s3] {
        rc4_sector(s);
    }
    if &s2[491..493] != b"VC" || &s2[506..509] != b"CRC" {
        return None;
    }
    let le = |o: usize| u16::from_le_bytes([s2[o], s2[o + 1]]);
    Some(
        le(494) == crc16_xmodem(&s0)
            && le(496) == crc16_xmodem(&b[SEC..2 * SEC])
            && le(510) == crc16_xmodem(&s3),
    )
}
