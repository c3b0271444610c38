//! Device responses: a 4-byte status and a payload, cut at the first NUL.

use crate::MAX_RESPONSE;

/// One parsed response packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Success; the payload is the value (getvar) or empty.
    Okay(String),
    /// Failure; the payload is the reason.
    Fail(String),
    /// The data phase starts; the device takes (download) or sends (upload)
    /// this many bytes.
    Data(u32),
    /// Progress text; more responses follow.
    Info(String),
    /// Raw text (newer spec); more responses follow.
    Text(String),
}

/// Why a packet is not a valid response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// No known status prefix (the packet, lossily decoded).
    UnknownStatus(String),
    /// The meaningful part (before any NUL) is longer than 256 bytes.
    TooLong(usize),
    /// `DATA` without a hex size that fits 32 bits.
    BadDataSize(String),
}

/// Parses one response packet.
///
/// Everything from the first NUL on is dropped, for every status: the K1
/// boot ROM sends NUL-terminated text followed by garbage (fact sheet §1.3).
pub fn parse_response(raw: &[u8]) -> Result<Response, ResponseError> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let msg = &raw[..end];
    if msg.len() > MAX_RESPONSE {
        return Err(ResponseError::TooLong(msg.len()));
    }
    if msg.len() < 4 {
        return Err(ResponseError::UnknownStatus(String::from_utf8_lossy(msg).into_owned()));
    }
    let (status, rest) = msg.split_at(4);
    let text = || String::from_utf8_lossy(rest).into_owned();
    Ok(match status {
        b"OKAY" => Response::Okay(text()),
        b"FAIL" => Response::Fail(text()),
        b"INFO" => Response::Info(text()),
        b"TEXT" => Response::Text(text()),
        b"DATA" => {
            let t = text();
            // Any number of hex digits, as AOSP's strtol(.., 16) reads it
            // (a real device answered with 7); the value must fit 32 bits.
            if rest.is_empty() || !rest.iter().all(u8::is_ascii_hexdigit) {
                return Err(ResponseError::BadDataSize(t));
            }
            Response::Data(u32::from_str_radix(&t, 16).map_err(|_| ResponseError::BadDataSize(t.clone()))?)
        }
        _ => return Err(ResponseError::UnknownStatus(String::from_utf8_lossy(msg).into_owned())),
    })
}

/// Parses a size variable (`max-download-size`): `0x…` hex or decimal, as
/// both the AOSP client and fastboot-protocol accept. Surrounding spaces
/// are ignored.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(parse_response(b"OKAY0.4"), Ok(Response::Okay("0.4".into())));
        assert_eq!(parse_response(b"OKAY"), Ok(Response::Okay(String::new())));
        assert_eq!(parse_response(b"FAILno such partition"), Ok(Response::Fail("no such partition".into())));
        assert_eq!(parse_response(b"INFOerasing"), Ok(Response::Info("erasing".into())));
        assert_eq!(parse_response(b"TEXTraw"), Ok(Response::Text("raw".into())));
        // The capture s03 answer to download:00000008.
        assert_eq!(parse_response(b"DATA00000008"), Ok(Response::Data(8)));
        assert_eq!(parse_response(b"DATAffffffff"), Ok(Response::Data(u32::MAX)));
        assert_eq!(parse_response(b"DATA0000F028"), Ok(Response::Data(0xf028)));
        // AOSP parses the size with strtol(.., 16): any number of digits.
        // A real run showed a 7-digit answer (reviews/fastboot.md).
        assert_eq!(parse_response(b"DATA0100000"), Ok(Response::Data(0x10_0000)));
        assert_eq!(parse_response(b"DATA8"), Ok(Response::Data(8)));
        assert_eq!(parse_response(b"DATA000000080"), Ok(Response::Data(0x80)));
    }

    #[test]
    fn nul_cuts_every_status() {
        // K1 ROM: "OKAY1.0", NUL, then garbage that is not text at all.
        let mut k1 = b"OKAY1.0\0".to_vec();
        k1.extend([0xa5, 0xff, 0x00, b'O', b'K'].iter().cycle().take(500));
        assert_eq!(parse_response(&k1), Ok(Response::Okay("1.0".into())));
        assert_eq!(parse_response(b"DATA00001000\0\x13\x37"), Ok(Response::Data(0x1000)));
        assert_eq!(parse_response(b"FAILbad\0trailing"), Ok(Response::Fail("bad".into())));
    }

    #[test]
    fn malformed() {
        assert!(matches!(parse_response(b"WHAT"), Err(ResponseError::UnknownStatus(_))));
        assert!(matches!(parse_response(b"okay"), Err(ResponseError::UnknownStatus(_))));
        assert!(matches!(parse_response(b"OK"), Err(ResponseError::UnknownStatus(_))));
        assert!(matches!(parse_response(b""), Err(ResponseError::UnknownStatus(_))));
        assert!(matches!(parse_response(b"\0OKAY"), Err(ResponseError::UnknownStatus(_))));
        assert_eq!(parse_response(b"DATA"), Err(ResponseError::BadDataSize(String::new())));
        assert_eq!(parse_response(b"DATA100000000"), Err(ResponseError::BadDataSize("100000000".into())));
        assert_eq!(parse_response(b"DATA0000000g"), Err(ResponseError::BadDataSize("0000000g".into())));
        assert_eq!(parse_response(b"DATA+0000008"), Err(ResponseError::BadDataSize("+0000008".into())));
    }

    #[test]
    fn length_boundary() {
        // 4 + 252 = 256 bytes is the spec's maximum; one more is refused.
        let ok = [b"INFO".as_slice(), &[b'x'; 252]].concat();
        assert_eq!(ok.len(), 256);
        assert_eq!(parse_response(&ok), Ok(Response::Info("x".repeat(252))));
        let long = [b"INFO".as_slice(), &[b'x'; 253]].concat();
        assert_eq!(parse_response(&long), Err(ResponseError::TooLong(257)));
        // Long only because of garbage after the NUL: fine.
        let garbage = [b"OKAY\0".as_slice(), &[b'x'; 400]].concat();
        assert_eq!(parse_response(&garbage), Ok(Response::Okay(String::new())));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0x10000000"), Some(268_435_456));
        assert_eq!(parse_size("268435456"), Some(268_435_456));
        assert_eq!(parse_size(" 0X10000 "), Some(65536));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("lots"), None);
        // max-download-size 0 means "no limit"; see the client.
        assert_eq!(parse_size("0x0"), Some(0));
    }
}
