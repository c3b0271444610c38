//! Value parsers of the command line: durations, numbers, addresses,
//! `ADDR=FILE` loads.

use std::path::PathBuf;
use std::time::Duration;

/// A duration such as `500ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("'{s}' is not a valid duration"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a valid duration ({e}); write e.g. 500ms, 10s or 2m"))
}

/// `0x1234`, `1234` (decimal) or `0x8000_0000`.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse()
    };
    r.map_err(|_| format!("'{s}' is not a number (write 0x80360000 or 2148925440)"))
}

/// A memory address: hex with `0x`. A bare number is refused as
/// ambiguous: addresses are written in hex everywhere (`80360000` in a
/// datasheet is 0x80360000), so reading it as decimal would load elsewhere.
pub fn parse_address(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.starts_with("0x") || t.starts_with("0X") || t == "0" {
        return parse_u64(t);
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit() || c == '_') {
        return Err(format!(
            "'{s}' is ambiguous: write the address in hex with 0x (0x{t}), or convert a decimal address to hex"
        ));
    }
    Err(format!("'{s}' is not an address (write it in hex, e.g. 0x80360000)"))
}

/// `ADDR=FILE`.
pub fn parse_load(s: &str) -> Result<(u64, PathBuf), String> {
    let (a, f) = s.split_once('=').ok_or_else(|| format!("'{s}' is not ADDR=FILE"))?;
    if f.is_empty() {
        return Err(format!("'{s}' names no file"));
    }
    Ok((parse_address(a)?, PathBuf::from(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_numbers() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert_eq!(parse_u64("0x8036_0000").unwrap(), 0x8036_0000);
        assert_eq!(parse_u64("16").unwrap(), 16);
        assert!(parse_u64("0xZZ").is_err());
        assert_eq!(parse_load("0x10=a.bin").unwrap(), (0x10, PathBuf::from("a.bin")));
        assert!(parse_load("0x10").is_err());
        assert!(parse_load("0x10=").is_err());
        // A bare number is ambiguous for an address: refused, not read as decimal.
        let e = parse_load("80360000=a.bin").unwrap_err();
        assert!(e.contains("ambiguous") && e.contains("0x80360000"), "{e}");
        assert!(parse_address("2148925440").unwrap_err().contains("ambiguous"));
        assert_eq!(parse_address("0x8036_0000").unwrap(), 0x8036_0000);
    }
}
