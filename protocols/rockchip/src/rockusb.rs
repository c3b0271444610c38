//! rockusb: USB mass-storage Bulk-Only framing (31-byte CBW, 13-byte CSW)
//! with Rockchip opcodes, spoken by the usbplug (fact sheet §3).

use std::time::Duration;

use racklet_link::{UsbInfo, UsbLink};

use crate::RockchipError;

/// The interface class triple of a rockusb function.
pub const CLASS: (u8, u8, u8) = (0xff, 0x06, 0x05);

pub const OP_TEST_UNIT_READY: u8 = 0x00;
pub const OP_READ_FLASH_ID: u8 = 0x01;
pub const OP_READ_FLASH_INFO: u8 = 0x1a;
pub const OP_READ_CHIP_INFO: u8 = 0x1b;
pub const OP_READ_CAPABILITY: u8 = 0xaa;
pub const OP_READ_LBA: u8 = 0x14;
pub const OP_WRITE_LBA: u8 = 0x15;
pub const OP_ERASE_LBA: u8 = 0x25;
pub const OP_DEVICE_RESET: u8 = 0xff;

/// The sector every LBA command counts in.
pub const SECTOR: u64 = 512;
/// The most sectors one LBA command can carry: its count is a BE16.
pub const MAX_SECTORS: u16 = u16::MAX;
/// Sectors per command when the loader gives no hint: rkdeveloptool's
/// `DEFAULT_RW_LBA` (main.cpp), 64 KiB.
pub const DEFAULT_SECTORS: u16 = 128;

/// What READ CAPABILITY answered: 64 feature bits, bit `n` in byte
/// `n / 8` (the vendor U-Boot's f_rockusb.c `rkusb_do_read_capacity`
/// lists them; xrock's `capability_type_t` names the same bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability(pub [u8; 8]);

impl Capability {
    /// Bit 8, "New IDB feature": the usbplug was built with
    /// CONFIG_ROCKCHIP_NEW_IDB. rkdeveloptool `ul` needs it for a loader
    /// with a "FlashHead" entry.
    pub fn new_idb(&self) -> bool {
        self.0[1] & 1 != 0
    }
}

/// TEST UNIT READY subcode asking for the big-buffer hint.
pub const TUR_BIG_BUFFER: u8 = 0xf7;

/// RESET subcodes (rkdeveloptool RKComm.h `RESET_SUBCODE`).
pub const RESET_NORMAL: u8 = 0;
pub const RESET_MASKROM: u8 = 3;

const CBW_SIGNATURE: &[u8; 4] = b"USBC";
const CSW_SIGNATURE: &[u8; 4] = b"USBS";

/// At most this much stale data is read past while looking for the CSW of
/// the current command (rkdeveloptool's `MAX_CLEAR_LEN`, RKComm.h:95).
pub const MAX_CLEAR_LEN: usize = 16 * 1024;
/// How long each read of that drain waits.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// What TEST UNIT READY answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// CSW status 0.
    Ready,
    /// CSW status 1: a loader runs but is not ready yet (rkdeveloptool's
    /// ERR_DEVICE_UNREADY, RKComm.cpp:686); poll again.
    NotReady,
}

/// A 31-byte CBW of an LBA command (CDB length 10): subcode, BE32 LBA at
/// CDB[2..6], BE16 sector count at CDB[7..9].
pub fn lba_cbw(
    tag: u32,
    data_len: u32,
    dir_in: bool,
    opcode: u8,
    subcode: u8,
    lba: u32,
    count: u16,
) -> [u8; 31] {
    let mut c = cbw(tag, data_len, dir_in, 10, opcode);
    c[16] = subcode;
    c[17..21].copy_from_slice(&lba.to_be_bytes());
    c[22..24].copy_from_slice(&count.to_be_bytes());
    c
}

/// Sectors per LBA command from TEST UNIT READY's residue: Rockchip's
/// loaders put a transfer-size hint in its top byte, `(1 << k) × 4096`
/// bytes (fact sheet §3.3; the fork's `rkusb_do_test_unit_ready` says
/// `0x06 << 24`, 256 KiB). No plausible hint (mainline U-Boot echoes the
/// CBW's length, 0): [`DEFAULT_SECTORS`].
pub fn sectors_from_hint(residue: u32) -> u16 {
    let k = residue >> 24;
    if (1..=10).contains(&k) && residue & 0x00ff_ffff == 0 {
        let bytes = (1u64 << k) * 4096;
        (bytes / SECTOR).min(u64::from(MAX_SECTORS)) as u16
    } else {
        DEFAULT_SECTORS
    }
}

/// Builds a 31-byte CBW. `cdb` is opcode, subcode, BE32 address, reserved,
/// BE16 length; `cdb_len` 6 or 10.
pub fn cbw(tag: u32, data_len: u32, dir_in: bool, cdb_len: u8, opcode: u8) -> [u8; 31] {
    let mut c = [0u8; 31];
    c[0..4].copy_from_slice(CBW_SIGNATURE);
    c[4..8].copy_from_slice(&tag.to_le_bytes());
    c[8..12].copy_from_slice(&data_len.to_le_bytes());
    c[12] = if dir_in { 0x80 } else { 0 };
    c[13] = 0;
    c[14] = cdb_len;
    c[15] = opcode;
    c
}

/// READ FLASH INFO (11 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashInfo {
    pub sectors: u32,
    pub block_sectors: u16,
    pub page_size: u8,
    pub ecc_bits: u8,
    pub access_time: u8,
    pub manufacturer: u8,
    pub cs_mask: u8,
}

impl FlashInfo {
    /// Decodes the first 11 bytes.
    pub fn parse(b: &[u8]) -> Option<FlashInfo> {
        (b.len() >= 11).then(|| FlashInfo {
            sectors: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            block_sectors: u16::from_le_bytes([b[4], b[5]]),
            page_size: b[6],
            ecc_bits: b[7],
            access_time: b[8],
            manufacturer: b[9],
            cs_mask: b[10],
        })
    }

    /// Capacity in bytes (512-byte sectors).
    pub fn bytes(&self) -> u64 {
        u64::from(self.sectors) * 512
    }
}

/// True when an image carries a rockusb interface descriptor (bLength 9,
/// INTERFACE, class ff/06/05), as rockusb loaders do: rkbin's RK356x
/// usbplug has `09 04 00 00 02 ff 06 05` (at 0x14f1a of the entry in
/// rk356x_spl_loader_v1.23.114.bin); U-Boot builds it from `f_rockusb.c`'s
/// `rkusb_intf_desc`. Only a hint: a U-Boot with rockusb compiled in carries
/// it too, yet speaks rockusb only when its `rockusb` command runs.
pub fn carries_rockusb(image: &[u8]) -> bool {
    image.windows(8).any(|w| w[0] == 9 && w[1] == 4 && w[5] == CLASS.0 && w[6] == CLASS.1 && w[7] == CLASS.2)
}

/// The chip code in READ CHIP INFO: the first LE u32 is the ASCII code
/// reversed (`38 36 35 33` → "3568").
pub fn chip_code(info: &[u8]) -> Option<String> {
    let b = info.get(..4)?;
    let s: Vec<u8> = b.iter().rev().copied().collect();
    s.iter().all(|c| c.is_ascii_alphanumeric()).then(|| String::from_utf8_lossy(&s).into_owned())
}

/// A rockusb session on an open link.
pub struct Rockusb<'a, L: UsbLink + ?Sized> {
    link: &'a mut L,
    ep_in: u8,
    ep_out: u8,
    tag: u32,
    /// Timeout of every bulk transfer (rockusb uses 5 s, xrock 2 s).
    pub timeout: Duration,
}

impl<'a, L: UsbLink + ?Sized> Rockusb<'a, L> {
    /// Finds the rockusb bulk pair (class ff/06/05, else the first bulk pair).
    pub fn new(link: &'a mut L) -> Result<Self, RockchipError> {
        let (ep_in, ep_out) = endpoints(link.info())?;
        Ok(Rockusb { link, ep_in, ep_out, tag: 0x5243_4b00, timeout: Duration::from_secs(5) })
    }

    /// One command: CBW out, optional IN data phase of `data_len` bytes, CSW in.
    pub fn command(&mut self, op: &'static str, opcode: u8, data_len: u32) -> Result<Vec<u8>, RockchipError> {
        self.exchange(op, opcode, data_len).and_then(|(data, status)| match status {
            0 => Ok(data),
            status => Err(RockchipError::CommandFailed { op, status }),
        })
    }

    fn next_tag(&mut self) -> u32 {
        self.tag = self.tag.wrapping_add(1);
        self.tag
    }

    /// READ LBA: `count` sectors from `lba`.
    pub fn read_lba(&mut self, lba: u32, count: u16) -> Result<Vec<u8>, RockchipError> {
        let op = "READ LBA";
        let tag = self.next_tag();
        let len = u32::from(count) * SECTOR as u32;
        let c = lba_cbw(tag, len, true, OP_READ_LBA, 0, lba, count);
        match self.transact(op, tag, &c, len, None)? {
            (data, 0, _) if data.len() == len as usize => Ok(data),
            (data, 0, _) => Err(RockchipError::BadCsw {
                op,
                why: format!("{} data bytes for {count} sectors at LBA {lba}", data.len()),
            }),
            (_, status, _) => Err(RockchipError::CommandFailed { op, status }),
        }
    }

    /// WRITE LBA: `data` (whole sectors) at `lba`.
    pub fn write_lba(&mut self, lba: u32, data: &[u8]) -> Result<(), RockchipError> {
        let op = "WRITE LBA";
        let count = (data.len() as u64 / SECTOR) as u16;
        debug_assert!(data.len() as u64 == u64::from(count) * SECTOR && count > 0);
        let tag = self.next_tag();
        let c = lba_cbw(tag, data.len() as u32, false, OP_WRITE_LBA, 0, lba, count);
        match self.transact(op, tag, &c, 0, Some(data))? {
            (_, 0, _) => Ok(()),
            (_, status, _) => Err(RockchipError::CommandFailed { op, status }),
        }
    }

    /// ERASE LBA: `count` sectors from `lba`.
    pub fn erase_lba(&mut self, lba: u32, count: u16) -> Result<(), RockchipError> {
        let op = "ERASE LBA";
        let tag = self.next_tag();
        let c = lba_cbw(tag, 0, false, OP_ERASE_LBA, 0, lba, count);
        match self.transact(op, tag, &c, 0, None)? {
            (_, 0, _) => Ok(()),
            (_, status, _) => Err(RockchipError::CommandFailed { op, status }),
        }
    }

    /// DEVICE RESET with `subcode` ([`RESET_NORMAL`], [`RESET_MASKROM`]):
    /// the loader answers its CSW, then resets.
    pub fn reset(&mut self, subcode: u8) -> Result<(), RockchipError> {
        let op = "DEVICE RESET";
        let tag = self.next_tag();
        let mut c = cbw(tag, 0, false, 6, OP_DEVICE_RESET);
        c[16] = subcode;
        match self.transact(op, tag, &c, 0, None)? {
            (_, 0, _) => Ok(()),
            (_, status, _) => Err(RockchipError::CommandFailed { op, status }),
        }
    }

    /// TEST UNIT READY with subcode 0xF7 (asking for the big-buffer
    /// transfer-size hint, fact sheet §3.3) and its CSW residue (the hint,
    /// [`sectors_from_hint`]). 0xF7 is none of the legacy subcodes
    /// (FE/FD/FB/F9 erase or format); mainline U-Boot ignores the subcode.
    pub fn test_unit_ready_hint(&mut self) -> Result<(Readiness, u32), RockchipError> {
        let op = "TEST UNIT READY";
        let tag = self.next_tag();
        let mut c = cbw(tag, 0, true, 6, OP_TEST_UNIT_READY);
        c[16] = TUR_BIG_BUFFER;
        match self.transact(op, tag, &c, 0, None)? {
            (_, 0, residue) => Ok((Readiness::Ready, residue)),
            (_, 1, residue) => Ok((Readiness::NotReady, residue)),
            (_, status, _) => Err(RockchipError::CommandFailed { op, status }),
        }
    }

    /// CBW out, an OUT data phase (`out`) or an IN one of `data_len`
    /// bytes, CSW in: the data, the CSW's status and residue. A device
    /// that fails an IN command may skip its data phase and send the CSW.
    fn transact(
        &mut self,
        op: &'static str,
        tag: u32,
        c: &[u8; 31],
        data_len: u32,
        out: Option<&[u8]>,
    ) -> Result<(Vec<u8>, u8, u32), RockchipError> {
        let t = self.timeout;
        let usb = |source| RockchipError::Usb { op, source };
        // The CBW and an OUT data phase back to back, kept in flight: the
        // bus does not idle between them; the next IN read (data or CSW)
        // waits for them first and reports their failure.
        self.link.queue_bulk_out(self.ep_out, c, t).map_err(usb)?;
        if let Some(d) = out {
            self.link.queue_bulk_out(self.ep_out, d, t).map_err(usb)?;
        }
        let mut data: Vec<u8> = Vec::new();
        while data.len() < data_len as usize {
            let want = (data_len as usize - data.len()).div_ceil(512) * 512;
            let d = self.read_in(op, want, false, tag, 0)?;
            if data.is_empty() && d.len() == 13 && d.starts_with(CSW_SIGNATURE) {
                let status = check_csw(op, tag, &d)?;
                if status != 0 {
                    return Ok((Vec::new(), status, csw_residue(&d)));
                }
                return Err(RockchipError::BadCsw { op, why: "no data phase".into() });
            }
            if d.is_empty() {
                return Err(RockchipError::BadCsw { op, why: "an empty data packet".into() });
            }
            data.extend_from_slice(&d);
        }
        data.truncate(data_len as usize);
        let csw = self.read_in(op, 512, false, tag, 0)?;
        let status = check_csw(op, tag, &csw)?;
        Ok((data, status, csw_residue(&csw)))
    }

    /// One command, its data and CSW status. A CSW with another command's
    /// tag (a late answer to an attempt that timed out) is read past, up to
    /// [`MAX_CLEAR_LEN`] bytes, until this command's own CSW comes, as
    /// rkdeveloptool's `RKU_ClearBuffer` does (RKComm.cpp:239-264).
    fn exchange(
        &mut self,
        op: &'static str,
        opcode: u8,
        data_len: u32,
    ) -> Result<(Vec<u8>, u8), RockchipError> {
        self.tag = self.tag.wrapping_add(1);
        let tag = self.tag;
        // TEST UNIT READY has no data phase, yet xrock and rkdeveloptool set
        // the IN flag (fact sheet §3.4): do the same.
        let c = cbw(tag, data_len, true, 6, opcode);
        let t = self.timeout;
        self.link.bulk_out(self.ep_out, &c, t).map_err(|source| RockchipError::Usb { op, source })?;
        let mut drained = 0usize;
        let mut stale: Option<u32> = None;
        let mut data = Vec::new();
        if data_len > 0 {
            // nusb wants IN lengths in whole max-size packets (512 at high speed).
            let want = (data_len as usize).div_ceil(512) * 512;
            loop {
                let d = self.read_in(op, want, stale.is_some(), tag, drained)?;
                if let Some(old) = stale_tag(&d, tag) {
                    drained += d.len();
                    stale = Some(old);
                    self.check_drain(op, tag, old, drained)?;
                    continue;
                }
                if d.len() >= 13 && d.starts_with(CSW_SIGNATURE) && d.len() < data_len as usize {
                    // The device skipped the data phase and sent its CSW.
                    check_csw(op, tag, &d)?;
                    return Err(RockchipError::BadCsw { op, why: "no data phase".into() });
                }
                data = d;
                break;
            }
        }
        loop {
            let csw = self.read_in(op, 512, stale.is_some(), tag, drained)?;
            if let Some(old) = stale_tag(&csw, tag) {
                drained += csw.len();
                stale = Some(old);
                self.check_drain(op, tag, old, drained)?;
                continue;
            }
            let status = check_csw(op, tag, &csw)?;
            data.truncate(data_len as usize);
            return Ok((data, status));
        }
    }

    /// One IN read; while draining stale CSWs, a short wait, and a failure
    /// means the matching CSW never came.
    fn read_in(
        &mut self,
        op: &'static str,
        len: usize,
        draining: bool,
        tag: u32,
        drained: usize,
    ) -> Result<Vec<u8>, RockchipError> {
        let t = if draining { DRAIN_TIMEOUT.min(self.timeout) } else { self.timeout };
        self.link.bulk_in(self.ep_in, len, t).map_err(|source| {
            if draining {
                RockchipError::BadCsw {
                    op,
                    why: format!(
                        "only stale CSWs came ({drained} bytes read past), none with tag 0x{tag:08x}: {source}"
                    ),
                }
            } else {
                RockchipError::Usb { op, source }
            }
        })
    }

    fn check_drain(&self, op: &'static str, tag: u32, old: u32, drained: usize) -> Result<(), RockchipError> {
        if drained > MAX_CLEAR_LEN {
            return Err(RockchipError::BadCsw {
                op,
                why: format!(
                    "tag 0x{old:08x}, sent 0x{tag:08x}; no matching CSW within {MAX_CLEAR_LEN} bytes"
                ),
            });
        }
        Ok(())
    }

    /// TEST UNIT READY: a valid CSW means a rockusb loader is running;
    /// status 1 that it is not ready yet.
    pub fn test_unit_ready(&mut self) -> Result<Readiness, RockchipError> {
        let op = "TEST UNIT READY";
        match self.exchange(op, OP_TEST_UNIT_READY, 0)? {
            (_, 0) => Ok(Readiness::Ready),
            (_, 1) => Ok(Readiness::NotReady),
            (_, status) => Err(RockchipError::CommandFailed { op, status }),
        }
    }

    /// READ CHIP INFO (16 bytes).
    pub fn read_chip_info(&mut self) -> Result<Vec<u8>, RockchipError> {
        self.command("READ CHIP INFO", OP_READ_CHIP_INFO, 16)
    }

    /// READ CAPABILITY (8 bytes asked, as rkdeveloptool's
    /// `RKU_ReadCapability`): the loader's feature bits
    /// ([`Capability`]). A short answer is zero-filled; fewer than 2 bytes
    /// is a bad answer.
    pub fn read_capability(&mut self) -> Result<Capability, RockchipError> {
        let op = "READ CAPABILITY";
        let d = self.command(op, OP_READ_CAPABILITY, 8)?;
        if d.len() < 2 {
            return Err(RockchipError::BadCsw {
                op,
                why: format!("{} data bytes, need at least 2", d.len()),
            });
        }
        let mut bits = [0u8; 8];
        let n = d.len().min(8);
        bits[..n].copy_from_slice(&d[..n]);
        Ok(Capability(bits))
    }

    /// READ FLASH ID (5 ASCII bytes: "EMMC ", "SNAND", ...).
    pub fn read_flash_id(&mut self) -> Result<String, RockchipError> {
        let d = self.command("READ FLASH ID", OP_READ_FLASH_ID, 5)?;
        Ok(String::from_utf8_lossy(&d).trim_end().to_string())
    }

    /// READ FLASH INFO (11 bytes).
    pub fn read_flash_info(&mut self) -> Result<FlashInfo, RockchipError> {
        let d = self.command("READ FLASH INFO", OP_READ_FLASH_INFO, 11)?;
        FlashInfo::parse(&d).ok_or(RockchipError::BadCsw {
            op: "READ FLASH INFO",
            why: format!("{} data bytes, need 11", d.len()),
        })
    }
}

fn endpoints(info: &UsbInfo) -> Result<(u8, u8), RockchipError> {
    info.find_bulk_interface(Some(CLASS))
        .or_else(|| info.find_bulk_interface(None))
        .map(|(_, i, o)| (i, o & 0x7f))
        .ok_or_else(|| RockchipError::NoBulkEndpoints { port: info.port_path.clone() })
}

/// Checks a CSW's length, signature and tag; returns its status byte.
fn check_csw(op: &'static str, tag: u32, csw: &[u8]) -> Result<u8, RockchipError> {
    if csw.len() != 13 {
        return Err(RockchipError::BadCsw { op, why: format!("{} bytes, expected 13", csw.len()) });
    }
    if &csw[0..4] != CSW_SIGNATURE {
        return Err(RockchipError::BadCsw {
            op,
            why: format!("signature {:02x?}, expected \"USBS\"", &csw[0..4]),
        });
    }
    let got = u32::from_le_bytes([csw[4], csw[5], csw[6], csw[7]]);
    if got != tag {
        return Err(RockchipError::BadCsw { op, why: format!("tag 0x{got:08x}, sent 0x{tag:08x}") });
    }
    Ok(csw[12])
}

fn csw_residue(csw: &[u8]) -> u32 {
    u32::from_le_bytes([csw[8], csw[9], csw[10], csw[11]])
}

/// The tag of a well-formed CSW that answers another command.
fn stale_tag(b: &[u8], tag: u32) -> Option<u32> {
    (b.len() == 13 && b.starts_with(CSW_SIGNATURE))
        .then(|| u32::from_le_bytes([b[4], b[5], b[6], b[7]]))
        .filter(|&t| t != tag)
}
