//! The reference CRCs, bit by bit from their definitions: the one copy the
//! virtual ROMs use and the tests use as an oracle. Client code uses the
//! `crc` crate; the two must agree, and a test that checks the client's CRC
//! against these proves something only because they were written apart.

/// CRC-16/XMODEM: polynomial 0x1021, init 0, MSB first, no final xor
/// (XMODEM-CRC blocks, the Sophgo packet layer and fip.bin checksums).
pub fn crc16_xmodem(data: &[u8]) -> u16 {
    crc16_msb(data, 0)
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, init 0xFFFF, MSB first (the
/// Rockchip maskrom's stage CRC).
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    crc16_msb(data, 0xffff)
}

fn crc16_msb(data: &[u8], init: u16) -> u16 {
    let mut crc = init;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// Rockchip's CRC-32 of RKBOOT files: polynomial 0x04C10DB7 (not IEEE's
/// 0x04C11DB7), init 0, MSB first, no reflection, no final xor
/// (rockchip.md §2.2; rkbin's boot_merger `CRC_32`).
pub fn crc32_rockchip(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_0DB7 } else { crc << 1 };
        }
    }
    crc
}

/// CRC-32 exactly as spl_tool's loop computes it: MSB first with the
/// polynomial 0x04C11DB7 and init 0xFFFFFFFF, each input byte bit-reversed,
/// the result bit-reversed and inverted (starfive.md §2.1) — which is
/// CRC-32/ISO-HDLC (zlib's) written the long way.
pub fn crc32_iso_hdlc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xFFFF_FFFF;
    for &b in data {
        crc ^= u32::from(b.reverse_bits()) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc.reverse_bits() ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check values of the CRC catalogue (reveng) for "123456789".
    #[test]
    fn check_values() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
        assert_eq!(crc32_iso_hdlc(b"123456789"), 0xCBF4_3926);
        // The sheet's check value (rockchip.md §2.2).
        assert_eq!(crc32_rockchip(b"123456789"), 0x889A_9615);
        assert_eq!(crc16_xmodem(&[0u8; 128]), 0);
        assert_eq!(crc16_ccitt_false(b""), 0xffff);
    }
}
