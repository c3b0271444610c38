//! The kburn protocol of the K230's storage loader, as PyPI k230-flash
//! 1.4.0 (`burners.py`, `K230UBOOTBurner`) speaks it, over any
//! [`UsbLink`]:
//!
//! - every command is one 60-byte packet on bulk OUT (0x02): u16 cmd, u16
//!   result 0, u16 data size, up to 54 bytes of data, zero-padded; every
//!   reply one 60-byte packet on bulk IN (0x81) with bit 15 set in cmd and
//!   result 1 for OK;
//! - before NOP (which every probe, write and reboot starts with) up to 4
//!   stale packets are drained with 50 ms reads (`kburn_nop`);
//! - DEV_PROBE (medium, 0xFF) answers the OUT and IN chunk sizes; data goes
//!   in chunks of the OUT size, 15 s each, followed by a zero-length packet
//!   when the total is a multiple of the chunk size (`write_chunks_from`);
//!   "WRITE DONE" is awaited for 30 s (`write_end`);
//! - REBOOT carries the mark 0x52626F74 and expects no answer.
//!
//! READ_LBA and ERASE_LBA, which k230-flash does not send, follow the
//! gadget (f_kburn.c): "READ START", then chunks of a 6-byte header and at
//! most the IN chunk size of data, then "READ DONE"; ERASE answers the
//! offset and size it erased.

use std::io::Read;
use std::time::Duration;

use racklet_link::{LinkError, ProgressSink, UsbInfo, UsbLink};

/// Command codes.
pub const CMD_NONE: u16 = 0x00;
pub const CMD_REBOOT: u16 = 0x01;
pub const CMD_DEV_PROBE: u16 = 0x10;
pub const CMD_DEV_GET_INFO: u16 = 0x11;
pub const CMD_ERASE_LBA: u16 = 0x20;
pub const CMD_WRITE_LBA: u16 = 0x21;
pub const CMD_READ_LBA: u16 = 0x23;
pub const CMD_READ_LBA_CHUNK: u16 = 0x24;
/// Set in every reply's cmd.
pub const DEV_TO_HOST: u16 = 0x8000;
/// Reply results.
pub const RESULT_OK: u16 = 1;
pub const RESULT_ERROR_MSG: u16 = 0xff;
/// Every packet.
pub const PACKET: usize = 60;
/// The reply header.
pub const HEADER: usize = 6;
/// The most data a packet carries.
pub const MAX_DATA: usize = PACKET - HEADER;
/// REBOOT's mark.
pub const REBOOT_MARK: u64 = 0x5262_6F74;

/// k230-flash's timeouts: a command's round trip, a data chunk (the gadget
/// writes each chunk before it takes the next), "WRITE DONE", a drain read.
pub const USB_TIMEOUT: Duration = Duration::from_millis(1000);
pub const DATA_TIMEOUT: Duration = Duration::from_millis(15_000);
pub const WRITE_ACK_TIMEOUT: Duration = Duration::from_millis(30_000);
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(50);
pub const MAX_DRAIN_PACKETS: usize = 4;

/// A storage medium, with the codes DEV_PROBE takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Medium {
    Emmc = 1,
    Sd = 2,
    SpiNand = 3,
    SpiNor = 4,
    Otp = 5,
}

impl Medium {
    /// Every medium.
    pub const ALL: [Medium; 5] = [Medium::Emmc, Medium::Sd, Medium::SpiNand, Medium::SpiNor, Medium::Otp];

    /// The name `--medium` takes.
    pub fn name(self) -> &'static str {
        match self {
            Medium::Emmc => "emmc",
            Medium::Sd => "sd",
            Medium::SpiNand => "spi-nand",
            Medium::SpiNor => "spi-nor",
            Medium::Otp => "otp",
        }
    }

    /// By name: `emmc`, `sd`, `spi-nand`, `spi-nor`, `otp` (and k230-flash's
    /// spellings: `sdcard`, `spi_nand`, `nand`, `nor`). Deliberately no
    /// `mmc`: eMMC and SD share a loader but are different probe codes.
    pub fn from_name(s: &str) -> Option<Medium> {
        let k: String =
            s.trim().to_ascii_lowercase().chars().filter(|c| !matches!(c, '-' | '_' | ' ')).collect();
        Some(match k.as_str() {
            "emmc" => Medium::Emmc,
            "sd" | "sdcard" => Medium::Sd,
            "spinand" | "nand" => Medium::SpiNand,
            "spinor" | "nor" => Medium::SpiNor,
            "otp" => Medium::Otp,
            _ => return None,
        })
    }
}

/// DEV_GET_INFO's answer (`struct kburn_medium_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MediumInfo {
    pub capacity: u64,
    pub blk_size: u64,
    pub erase_size: u64,
    pub timeout_ms: u32,
    pub wp: u8,
    pub kind: u8,
    pub valid: bool,
}

impl MediumInfo {
    /// Decodes the 32 bytes: three u64 and the bitfield word (timeout_ms
    /// bits 0–31, wp 32–39, type 40–46, valid 47).
    pub fn decode(d: &[u8]) -> Option<MediumInfo> {
        if d.len() != 32 {
            return None;
        }
        let q = |i: usize| u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let bits = q(3);
        Some(MediumInfo {
            capacity: q(0),
            blk_size: q(1),
            erase_size: q(2),
            timeout_ms: bits as u32,
            wp: (bits >> 32) as u8,
            kind: ((bits >> 40) & 0x7f) as u8,
            valid: (bits >> 47) & 1 == 1,
        })
    }
}

/// What went wrong talking kburn.
#[derive(Debug, thiserror::Error)]
pub enum KburnError {
    #[error("{step}: {source}")]
    Link {
        step: String,
        #[source]
        source: LinkError,
    },
    #[error("{step}: the loader answered {message:?} (result 0x{result:02x})")]
    Refused { step: String, result: u16, message: String },
    #[error("{step}: unexpected reply (cmd 0x{cmd:04x}, {len} bytes of data; expected cmd 0x{want:04x})")]
    Unexpected { step: String, cmd: u16, want: u16, len: usize },
    #[error("the kburn loader has no bulk {dir} endpoint")]
    NoEndpoint { dir: &'static str },
    #[error("reading the image: {0}")]
    Source(std::io::Error),
    #[error("the image ended after {sent} of {size} bytes")]
    ShortSource { sent: u64, size: u64 },
}

impl KburnError {
    fn link(step: impl Into<String>, source: LinkError) -> KburnError {
        KburnError::Link { step: step.into(), source }
    }
}

impl racklet_link::Classify for KburnError {
    fn class(&self) -> racklet_link::FailureClass {
        use racklet_link::FailureClass;
        match self {
            KburnError::Link { source, .. } => source.class(),
            KburnError::Refused { .. } | KburnError::Unexpected { .. } | KburnError::NoEndpoint { .. } => {
                FailureClass::Rejected
            }
            KburnError::Source(_) | KburnError::ShortSource { .. } => FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            KburnError::Link { source, .. } => source.hint(),
            KburnError::Refused { message, .. } if message == "PROBE FAILED" => {
                Some("the loader found no such medium: check --medium against the board".into())
            }
            _ => None,
        }
    }
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub cmd: u16,
    pub result: u16,
    pub data: Vec<u8>,
}

impl Reply {
    fn decode(b: &[u8]) -> Option<Reply> {
        if b.len() < HEADER {
            return None;
        }
        let cmd = u16::from_le_bytes([b[0], b[1]]);
        let result = u16::from_le_bytes([b[2], b[3]]);
        let n = (u16::from_le_bytes([b[4], b[5]]) as usize).min(b.len() - HEADER);
        Some(Reply { cmd, result, data: b[HEADER..HEADER + n].to_vec() })
    }

    fn message(&self) -> String {
        String::from_utf8_lossy(&self.data).trim_end_matches('\0').to_string()
    }
}

/// A command packet as k230-flash's `send_cmd` builds it.
pub fn packet(cmd: u16, data: &[u8]) -> [u8; PACKET] {
    assert!(data.len() <= MAX_DATA, "a command carries at most {MAX_DATA} bytes");
    let mut p = [0u8; PACKET];
    p[0..2].copy_from_slice(&cmd.to_le_bytes());
    p[4..6].copy_from_slice(&(data.len() as u16).to_le_bytes());
    p[HEADER..HEADER + data.len()].copy_from_slice(data);
    p
}

fn u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A kburn session on an open link to the loader.
pub struct Session<'l> {
    link: &'l mut dyn UsbLink,
    ep_out: u8,
    ep_in: u8,
    /// DEV_PROBE's chunk sizes.
    pub out_chunk: u64,
    pub in_chunk: u64,
}

impl<'l> Session<'l> {
    /// The bulk endpoints from the loader's own descriptors (k230-flash
    /// `_discover_endpoints`: the ROM has OUT 0x01, the loader OUT 0x02, so
    /// they are never assumed).
    pub fn new(link: &'l mut dyn UsbLink, info: &UsbInfo) -> Result<Session<'l>, KburnError> {
        let eps: Vec<_> = info
            .interfaces
            .iter()
            .flat_map(|i| i.endpoints.iter())
            .filter(|e| e.kind == racklet_link::usb::EndpointKind::Bulk)
            .collect();
        let ep_in = eps.iter().find(|e| e.address & 0x80 != 0).map(|e| e.address);
        let ep_out = eps.iter().find(|e| e.address & 0x80 == 0).map(|e| e.address);
        Ok(Session {
            link,
            ep_out: ep_out.ok_or(KburnError::NoEndpoint { dir: "OUT" })?,
            ep_in: ep_in.ok_or(KburnError::NoEndpoint { dir: "IN" })?,
            out_chunk: 0,
            in_chunk: 0,
        })
    }

    fn send(&mut self, step: &str, cmd: u16, data: &[u8]) -> Result<(), KburnError> {
        self.link
            .bulk_out(self.ep_out, &packet(cmd, data), USB_TIMEOUT)
            .map_err(|e| KburnError::link(step, e))
    }

    fn reply(&mut self, step: &str, len: usize, timeout: Duration) -> Result<Reply, KburnError> {
        let b = self.link.bulk_in(self.ep_in, len, timeout).map_err(|e| KburnError::link(step, e))?;
        Reply::decode(&b).ok_or(KburnError::Unexpected { step: step.into(), cmd: 0, want: 0, len: b.len() })
    }

    /// A command and its reply: `cmd | 0x8000`, result OK, `want` bytes of
    /// data (k230-flash `send_cmd`; an error reply's text is the message).
    fn call(
        &mut self,
        step: &str,
        cmd: u16,
        data: &[u8],
        want: Option<usize>,
    ) -> Result<Vec<u8>, KburnError> {
        self.send(step, cmd, data)?;
        let r = self.reply(step, PACKET, USB_TIMEOUT)?;
        self.check(step, &r, cmd | DEV_TO_HOST, want)
    }

    fn check(
        &self,
        step: &str,
        r: &Reply,
        want_cmd: u16,
        want: Option<usize>,
    ) -> Result<Vec<u8>, KburnError> {
        if r.result != RESULT_OK && want_cmd != DEV_TO_HOST {
            return Err(KburnError::Refused { step: step.into(), result: r.result, message: r.message() });
        }
        if r.cmd != want_cmd || want.is_some_and(|n| r.data.len() != n) {
            return Err(KburnError::Unexpected {
                step: step.into(),
                cmd: r.cmd,
                want: want_cmd,
                len: r.data.len(),
            });
        }
        Ok(r.data.clone())
    }

    /// `kburn_nop`: drain up to 4 stale replies (50 ms each), then NOP,
    /// whose "NOT SUPPORT FUNC" (16 bytes) is read and not judged.
    pub fn nop(&mut self) -> Result<(), KburnError> {
        for _ in 0..MAX_DRAIN_PACKETS {
            if self.link.bulk_in(self.ep_in, PACKET, DRAIN_TIMEOUT).is_err() {
                break;
            }
        }
        self.call("NOP", CMD_NONE, &[], Some(16)).map(|_| ())
    }

    /// DEV_PROBE: selects the medium; the gadget answers its chunk sizes.
    pub fn probe(&mut self, medium: Medium) -> Result<(), KburnError> {
        self.nop()?;
        let step = format!("DEV_PROBE {}", medium.name());
        let d = self.call(&step, CMD_DEV_PROBE, &[medium as u8, 0xff], Some(16))?;
        self.out_chunk = u64::from_le_bytes(d[0..8].try_into().expect("8 bytes"));
        self.in_chunk = u64::from_le_bytes(d[8..16].try_into().expect("8 bytes"));
        if self.out_chunk == 0 {
            return Err(KburnError::Refused {
                step,
                result: RESULT_OK,
                message: "an OUT chunk size of 0".into(),
            });
        }
        Ok(())
    }

    /// DEV_GET_INFO: the medium's size and geometry.
    pub fn info(&mut self) -> Result<MediumInfo, KburnError> {
        let d = self.call("DEV_GET_INFO", CMD_DEV_GET_INFO, &[], Some(32))?;
        Ok(MediumInfo::decode(&d).expect("32 bytes checked"))
    }

    /// WRITE_LBA of `size` bytes from `src` at `offset`: NOP, the 32-byte
    /// command (offset, size, max size = size, flags 0), "START DL", the
    /// data in chunks with progress and Ctrl-C checked between them, the
    /// ZLP rule, and "WRITE DONE" — the only thing that makes it done.
    pub fn write(
        &mut self,
        offset: u64,
        size: u64,
        src: &mut dyn Read,
        progress: &mut dyn ProgressSink,
    ) -> Result<(), KburnError> {
        self.nop()?;
        let step = format!("WRITE_LBA {size} bytes at 0x{offset:x}");
        self.call(&step, CMD_WRITE_LBA, &u64s(&[offset, size, size, 0]), Some(8))?;
        let chunk = self.out_chunk.max(1);
        let mut buf = vec![0u8; chunk as usize];
        let mut sent = 0u64;
        while sent < size {
            progress
                .check_cancel()
                .map_err(|e| KburnError::link(format!("{step}, after {sent} bytes"), e))?;
            let n = (size - sent).min(chunk) as usize;
            src.read_exact(&mut buf[..n]).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => KburnError::ShortSource { sent, size },
                _ => KburnError::Source(e),
            })?;
            self.link.bulk_out(self.ep_out, &buf[..n], DATA_TIMEOUT).map_err(|e| {
                KburnError::link(format!("{step}: data bytes {sent}..{}", sent + n as u64), e)
            })?;
            sent += n as u64;
            progress.advance(n as u64);
        }
        if size.is_multiple_of(chunk) {
            // k230-flash 1.4.0 sends a zero-length packet after a total that
            // is a multiple of the chunk (the gadget's UDC ignores it).
            self.link
                .bulk_out(self.ep_out, &[], DATA_TIMEOUT)
                .map_err(|e| KburnError::link(format!("{step}: zero-length packet"), e))?;
        }
        let r = self.reply(&format!("{step}: waiting for WRITE DONE"), PACKET, WRITE_ACK_TIMEOUT)?;
        if r.result != RESULT_OK {
            return Err(KburnError::Refused { step, result: r.result, message: r.message() });
        }
        self.check(&step, &r, CMD_WRITE_LBA | DEV_TO_HOST, None).map(|_| ())
    }

    /// READ_LBA of `size` bytes at `offset` into `out` (f_kburn.c
    /// `cb_read_lba`, `tx_handler_ul_image`): the medium may round chunks
    /// up to its block; only `size` bytes are kept.
    pub fn read(
        &mut self,
        offset: u64,
        size: u64,
        out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
        progress: &mut dyn ProgressSink,
    ) -> Result<(), KburnError> {
        self.nop()?;
        let step = format!("READ_LBA {size} bytes at 0x{offset:x}");
        self.call(&step, CMD_READ_LBA, &u64s(&[offset, size]), None)?;
        let max = HEADER + self.in_chunk.max(1) as usize;
        let mut got = 0u64;
        while got < size {
            progress.check_cancel().map_err(|e| KburnError::link(format!("{step}, after {got} bytes"), e))?;
            let r = self.reply(&format!("{step}: chunk at byte {got}"), max, DATA_TIMEOUT)?;
            if r.result != RESULT_OK {
                return Err(KburnError::Refused { step, result: r.result, message: r.message() });
            }
            self.check(&step, &r, CMD_READ_LBA_CHUNK | DEV_TO_HOST, None)?;
            let keep = (r.data.len() as u64).min(size - got) as usize;
            out(&r.data[..keep]).map_err(KburnError::Source)?;
            got += keep as u64;
            progress.advance(keep as u64);
        }
        let r = self.reply(&format!("{step}: waiting for READ DONE"), PACKET, DATA_TIMEOUT)?;
        if r.result != RESULT_OK || r.message() != "READ DONE" {
            return Err(KburnError::Refused { step, result: r.result, message: r.message() });
        }
        Ok(())
    }

    /// ERASE_LBA: the gadget erases before it answers, so the answer is
    /// awaited for up to `tries` command timeouts (k230_flash: size / erase
    /// size + 2, at least 3, at most 120). Returns the size it erased.
    pub fn erase(&mut self, offset: u64, size: u64, erase_size: u64) -> Result<u64, KburnError> {
        self.nop()?;
        let step = format!("ERASE_LBA {size} bytes at 0x{offset:x}");
        self.send(&step, CMD_ERASE_LBA, &u64s(&[offset, size]))?;
        let tries = (size / erase_size.max(1) + 2).clamp(3, 120);
        let mut last = None;
        for _ in 0..tries {
            match self.reply(&step, PACKET, USB_TIMEOUT) {
                Ok(r) => {
                    let d = self.check(&step, &r, CMD_ERASE_LBA | DEV_TO_HOST, Some(16))?;
                    return Ok(u64::from_le_bytes(d[8..16].try_into().expect("8 bytes")));
                }
                Err(KburnError::Link { source: e @ LinkError::Timeout { .. }, .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(KburnError::link(format!("{step}: no answer"), last.expect("at least one try")))
    }

    /// REBOOT: NOP, then the command with its mark; no answer is read (the
    /// chip resets).
    pub fn reboot(&mut self) -> Result<(), KburnError> {
        self.nop()?;
        self.send("REBOOT", CMD_REBOOT, &REBOOT_MARK.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sheet's transcript (§4.2, from running k230-flash 1.4.0):
    /// `10 00 00 00 02 00 02 FF …` for DEV_PROBE SD, and REBOOT as
    /// `01 00 00 00 08 00 74 6F 62 52 00 00 00 00 …(60)`.
    #[test]
    fn packets_match_the_sheet() {
        let p = packet(CMD_DEV_PROBE, &[Medium::Sd as u8, 0xff]);
        assert_eq!(p.len(), 60);
        assert_eq!(&p[..8], &[0x10, 0, 0, 0, 2, 0, 2, 0xff]);
        assert!(p[8..].iter().all(|&b| b == 0));
        let p = packet(CMD_REBOOT, &REBOOT_MARK.to_le_bytes());
        assert_eq!(&p[..14], &[1, 0, 0, 0, 8, 0, 0x74, 0x6f, 0x62, 0x52, 0, 0, 0, 0]);
        let w = packet(CMD_WRITE_LBA, &u64s(&[0, 512, 512, 0]));
        assert_eq!(&w[..6], &[0x21, 0, 0, 0, 0x20, 0]);
        assert_eq!(&w[6..30], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Medium::from_name("SPI_NAND"), Some(Medium::SpiNand));
        assert_eq!(Medium::from_name("mmc"), None);
    }

    #[test]
    fn medium_info_bits() {
        let mut d = u64s(&[8 << 30, 512, 512]);
        d.extend_from_slice(&(1000u64 | (1 << 40) | (1 << 47)).to_le_bytes());
        let i = MediumInfo::decode(&d).unwrap();
        assert_eq!((i.capacity, i.timeout_ms, i.kind, i.valid), (8 << 30, 1000, 1, true));
    }
}
