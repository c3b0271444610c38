//! Packets (host → ROM) and ACKs (ROM → host).
//!
//! A packet is `token:u8 | length:u16be | addr:u40be | data`, where
//! `length` counts the 8-byte header too. The ROM answers each packet with
//! a 16-byte ACK: `crc:u16be, crc:u16be, 0:u16, token, ack_idx,
//! want_offset:u32be, want_size:u32be`, `crc` being CRC-16/XMODEM of the
//! packet it received.

use crc::{CRC_16_XMODEM, Crc};

/// CRC-16/XMODEM (poly 0x1021, init 0, not reflected, no final XOR).
pub const XMODEM: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// CRC-16/XMODEM of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    XMODEM.checksum(data)
}

/// Token 0: copy the data to the session's buffer at `addr` (an offset).
pub const TOKEN_DATA: u8 = 0;
/// Token 1: write 4 bytes to `addr` when it is the boot-source flag word.
pub const TOKEN_FLAG: u8 = 1;
/// Token 2: end the session.
pub const TOKEN_BREAK: u8 = 2;
/// Token 3: "keep download": accepted when CRC-16 of its data is 0xC283.
pub const TOKEN_MAGIC: u8 = 3;

/// The packet header length.
pub const HEADER_LEN: usize = 8;
/// The ACK length.
pub const ACK_LEN: usize = 16;
/// The ROM's receive buffer: no packet may be longer (the ROM does no bounds check).
pub const MAX_PACKET: usize = 512;
/// Data bytes per packet the vendor tool sends (256-byte packets "for usb fifo").
pub const DEFAULT_CHUNK: usize = 248;

/// The shortest magic data: CRC-16/XMODEM(2C 08) = 0xC283 (found by cyrozap, used by sg_boot).
pub const MAGIC_DATA: [u8; 2] = [0x2C, 0x08];
/// The CRC the ROM wants for the magic's data.
pub const MAGIC_CRC: u16 = 0xC283;
/// BOOT_SOURCE_FLAG in AXI SRAM: the only address a FLAG packet writes.
pub const FLAG_ADDR: u64 = 0x0E00_0004;
/// "1NGM" = little-endian "MGN1": the word that marks a good USB download.
pub const FLAG_DATA: [u8; 4] = *b"1NGM";

/// Encodes one packet. `addr` is 40 bits; `data` must leave the packet
/// within [`MAX_PACKET`] (callers chunk; this panics otherwise, a bug).
pub fn packet(token: u8, addr: u64, data: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + data.len();
    assert!(len <= MAX_PACKET, "packet of {len} bytes exceeds the ROM's {MAX_PACKET}-byte buffer");
    assert!(addr < (1 << 40), "address 0x{addr:x} does not fit 40 bits");
    let mut p = Vec::with_capacity(len);
    p.push(token);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.extend_from_slice(&addr.to_be_bytes()[3..]);
    p.extend_from_slice(data);
    p
}

/// The magic packet (sg_boot's form: `03 000a 0000000000 2c08`).
pub fn magic() -> Vec<u8> {
    packet(TOKEN_MAGIC, 0, &MAGIC_DATA)
}

/// The FLAG packet: "1NGM" at 0x0E000004.
pub fn flag() -> Vec<u8> {
    packet(TOKEN_FLAG, FLAG_ADDR, &FLAG_DATA)
}

/// The BREAK packet, header only, length 8. (A packet with length 0 *and*
/// address 0 is dropped by the ROM without an ACK, so never send that.)
pub fn brk() -> Vec<u8> {
    packet(TOKEN_BREAK, 0, &[])
}

/// A decoded ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// CRC the ROM computed over the packet it received (first copy).
    pub crc: u16,
    /// The same CRC again (second copy).
    pub crc2: u16,
    /// Bytes 4..5, zero on every ROM.
    pub reserved: u16,
    /// The token of the packet being acknowledged.
    pub token: u8,
    /// The ROM's ACK counter (0 after a good magic or a break).
    pub index: u8,
    /// The fip.bin offset the ROM wants in this session.
    pub offset: u32,
    /// The number of bytes it wants (0 in the probe session).
    pub size: u32,
}

impl Ack {
    /// Decodes 16 bytes.
    pub fn parse(b: &[u8; ACK_LEN]) -> Ack {
        Ack {
            crc: u16::from_be_bytes([b[0], b[1]]),
            crc2: u16::from_be_bytes([b[2], b[3]]),
            reserved: u16::from_be_bytes([b[4], b[5]]),
            token: b[6],
            index: b[7],
            offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            size: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
        }
    }

    /// True when both CRC copies echo `crc16(sent)`.
    pub fn echoes(&self, sent: &[u8]) -> bool {
        let want = crc16(sent);
        self.crc == want && self.crc2 == want
    }
}

/// A short description of a packet for messages ("data @0xf8 (248 bytes)").
pub fn describe(p: &[u8]) -> String {
    let token = p.first().copied().unwrap_or(0xff);
    let addr = if p.len() >= HEADER_LEN {
        let mut a = [0u8; 8];
        a[3..].copy_from_slice(&p[3..8]);
        u64::from_be_bytes(a)
    } else {
        0
    };
    match token {
        TOKEN_DATA => format!("data @0x{addr:x} ({} bytes)", p.len().saturating_sub(HEADER_LEN)),
        TOKEN_FLAG => "FLAG".into(),
        TOKEN_BREAK => "BREAK".into(),
        TOKEN_MAGIC => "magic".into(),
        t => format!("token {t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use racklet_sim::crc::crc16_xmodem as crc_ref;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn crc_check_value_and_magic() {
        // Catalogue check value of CRC-16/XMODEM.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc_ref(b"123456789"), 0x31C3);
        // The sheet: CRC of the magic data must be 0xC283, and 2C 08 is such data.
        assert_eq!(crc_ref(&MAGIC_DATA), 0xC283);
        assert_eq!(MAGIC_CRC, 0xC283);
        // ... and no single byte has that CRC (the sheet's claim, checked).
        assert!((0..=255u8).all(|b| crc_ref(&[b]) != 0xC283));
    }

    #[test]
    fn packets_match_the_sg_boot_transcript() {
        // Sheet §4, sg_boot session S2, host-to-device bytes from the real tool.
        assert_eq!(magic(), hex("03 000a 0000000000 2c08"));
        assert_eq!(flag(), hex("01 000c 000e000004 314e474d"));
        assert_eq!(brk(), hex("02 0008 0000000000"));
        // ... and the CRCs the ROM model echoed for them.
        assert_eq!(crc_ref(&magic()), 0xe230);
        assert_eq!(crc_ref(&flag()), 0xa2df);
        assert_eq!(crc_ref(&brk()), 0x82e4);
    }

    #[test]
    fn data_headers_match_the_vendor_transcript() {
        // Sheet §4, vendor session S2: 512 bytes in 248-byte chunks.
        let d = [0u8; 248];
        assert_eq!(packet(TOKEN_DATA, 0, &d)[..8], hex("00 0100 0000000000")[..]);
        assert_eq!(packet(TOKEN_DATA, 0xF8, &d)[..8], hex("00 0100 00000000f8")[..]);
        assert_eq!(packet(TOKEN_DATA, 0x1F0, &d[..16])[..8], hex("00 0018 00000001f0")[..]);
        // 40-bit address: the top byte of a u64 address lands in byte 3.
        assert_eq!(packet(TOKEN_DATA, 0xAB_CDEF_0123, &[])[3..8], hex("abcdef0123")[..]);
    }

    #[test]
    fn packet_size_boundaries() {
        assert_eq!(packet(TOKEN_DATA, 0, &[0; MAX_PACKET - HEADER_LEN]).len(), 512);
        let r = std::panic::catch_unwind(|| packet(TOKEN_DATA, 0, &[0; MAX_PACKET - HEADER_LEN + 1]));
        assert!(r.is_err());
        let r = std::panic::catch_unwind(|| packet(TOKEN_DATA, 1 << 40, &[]));
        assert!(r.is_err());
    }

    #[test]
    fn ack_decodes_the_sheet_vectors() {
        // Vendor S2: "42ca 42ca 0000 03 00 00001000 00000200".
        let a = Ack::parse(&hex("42ca42ca00000300 0000100000000200").try_into().unwrap());
        assert_eq!(
            a,
            Ack { crc: 0x42ca, crc2: 0x42ca, reserved: 0, token: 3, index: 0, offset: 0x1000, size: 0x200 }
        );
        // sg_boot S2 magic ACK echoes the magic packet's CRC.
        let a = Ack::parse(&hex("e230e23000000300 0000100000000063").try_into().unwrap());
        assert!(a.echoes(&magic()));
        assert_eq!(a.size, 0x63);
        assert!(!a.echoes(&flag()));
        let mut half = a;
        half.crc2 ^= 1;
        assert!(!half.echoes(&magic()));
    }

    #[test]
    fn crc_crate_agrees_with_the_reference_on_many_inputs() {
        let mut x: u32 = 12345;
        for len in [0usize, 1, 2, 7, 8, 255, 256, 511, 512, 4096] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            assert_eq!(crc16(&data), crc_ref(&data), "len {len}");
        }
    }
}
