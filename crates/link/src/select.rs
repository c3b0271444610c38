//! The one selector syntax for every transport: `--port SEL`.

use std::fmt;
use std::path::{Path, PathBuf};

/// How the user chose a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A physical USB location as Linux sysfs writes it: `1-3.2`
    /// (an interface suffix such as `:1.0` is accepted and ignored).
    UsbPath(String),
    /// A tty path as the user wrote it. Symlinks (`/dev/serial/by-path/...`)
    /// are resolved when matching, not here: a name that points at a new
    /// node after a re-enumeration is followed by that name.
    Tty(PathBuf),
    /// `vid:pid` with an optional `:serial`.
    UsbId { vid: u16, pid: u16, serial: Option<String> },
    /// `tcp:HOST:PORT`: a device reached over the network (AOSP fastboot's
    /// TCP transport). Only boards whose protocol has a TCP transport take
    /// it; it matches no USB device and no serial port.
    Tcp { host: String, port: u16 },
}

/// A selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --port selector '{input}': {why}. Use a USB port path (1-3.2), a tty path (/dev/ttyUSB0), vid:pid[:serial] (2207:350a) or tcp:HOST:PORT (fastboot boards)"
)]
pub struct SelectorError {
    pub input: String,
    pub why: String,
}

impl Selector {
    /// Parses a selector. Accepted forms: `usb:1-3.2` or `1-3.2`,
    /// `tty:/dev/ttyUSB0` or any path starting with `/` or `.`, `COM3`,
    /// `2207:350a` and `2207:350a:SERIAL`, `tcp:HOST:PORT` (an IPv6 host in
    /// brackets: `tcp:[::1]:5554`).
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        let err = |why: &str| SelectorError { input: input.to_string(), why: why.to_string() };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            return parse_tcp(rest).map_err(|why| err(&why));
        }
        if let Some(rest) = s.strip_prefix("tty:") {
            return Ok(Selector::Tty(PathBuf::from(rest)));
        }
        if s.starts_with('/') || s.starts_with('.') || s.to_ascii_uppercase().starts_with("COM") {
            return Ok(Selector::Tty(PathBuf::from(s)));
        }
        let s = s.strip_prefix("usb:").unwrap_or(s);
        if let Some(path) = parse_usb_path(s) {
            return Ok(Selector::UsbPath(path));
        }
        let parts: Vec<&str> = s.splitn(3, ':').collect();
        if parts.len() >= 2 {
            let vid =
                u16::from_str_radix(parts[0], 16).map_err(|_| err("the vendor id is not 4 hex digits"))?;
            let pid =
                u16::from_str_radix(parts[1], 16).map_err(|_| err("the product id is not 4 hex digits"))?;
            if parts[0].len() > 4 || parts[1].len() > 4 {
                return Err(err("a USB id has at most 4 hex digits"));
            }
            let serial = parts.get(2).map(|s| s.to_string()).filter(|s| !s.is_empty());
            return Ok(Selector::UsbId { vid, pid, serial });
        }
        Err(err("it is not a port path, a tty path or vid:pid"))
    }

    /// True when the selector names this USB device.
    pub fn matches_usb(&self, info: &crate::UsbInfo) -> bool {
        match self {
            Selector::UsbPath(p) => &info.port_path == p,
            Selector::UsbId { vid, pid, serial } => {
                info.vid == *vid
                    && info.pid == *pid
                    && serial.as_ref().is_none_or(|s| info.serial.as_deref() == Some(s))
            }
            Selector::Tty(_) | Selector::Tcp { .. } => false,
        }
    }

    /// `HOST:PORT` of a [`Selector::Tcp`], as a socket address is written.
    pub fn tcp_address(&self) -> Option<String> {
        match self {
            Selector::Tcp { host, port } if host.contains(':') => Some(format!("[{host}]:{port}")),
            Selector::Tcp { host, port } => Some(format!("{host}:{port}")),
            _ => None,
        }
    }

    /// True when the selector names this serial port (by tty path, by the
    /// USB port path of its adapter, or by the adapter's ids).
    pub fn matches_serial(&self, info: &crate::SerialInfo) -> bool {
        match self {
            Selector::Tty(p) => canonical_tty(&info.path) == canonical_tty(p),
            Selector::UsbPath(p) => info.port_path.as_deref() == Some(p.as_str()),
            Selector::UsbId { vid, pid, serial } => {
                info.vid == Some(*vid)
                    && info.pid == Some(*pid)
                    && serial.as_ref().is_none_or(|s| info.serial.as_deref() == Some(s))
            }
            Selector::Tcp { .. } => false,
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::UsbPath(p) => write!(f, "{p}"),
            Selector::Tty(p) => write!(f, "{}", p.display()),
            Selector::UsbId { vid, pid, serial: None } => write!(f, "{vid:04x}:{pid:04x}"),
            Selector::UsbId { vid, pid, serial: Some(s) } => write!(f, "{vid:04x}:{pid:04x}:{s}"),
            Selector::Tcp { .. } => write!(f, "tcp:{}", self.tcp_address().unwrap_or_default()),
        }
    }
}

/// `HOST:PORT` after `tcp:`: a host name or address (IPv6 in brackets) and
/// a port from 1 to 65535.
fn parse_tcp(s: &str) -> Result<Selector, String> {
    let want = "give it as tcp:HOST:PORT (e.g. tcp:127.0.0.1:5554)";
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (h, p) =
                rest.split_once(']').ok_or_else(|| format!("the IPv6 address has no closing ']'; {want}"))?;
            (h, p.strip_prefix(':').ok_or_else(|| format!("no port after the address; {want}"))?)
        }
        None => s.rsplit_once(':').ok_or_else(|| format!("no port; {want}"))?,
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("the host {host:?} is not a host name or address; {want}"));
    }
    if !s.starts_with('[') && host.contains(':') {
        return Err(format!("an IPv6 address goes in brackets: tcp:[{host}]:{port}"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(Selector::Tcp { host: host.to_string(), port: p }),
        _ => Err(format!("the port {port:?} is not a number from 1 to 65535; {want}")),
    }
}

/// `1-3.2`, `1-3.2:1.0`, `3-1` → the port path without interface suffix.
fn parse_usb_path(s: &str) -> Option<String> {
    let s = s.split(':').next().filter(|_| {
        // An interface suffix looks like ":1.0"; vid:pid has hex on both sides and no '-'.
        s.contains('-')
    })?;
    let (bus, ports) = s.split_once('-')?;
    if bus.is_empty() || !bus.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if ports.is_empty() || !ports.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) {
        return None;
    }
    Some(s.to_string())
}

/// Resolves symlinks of a tty path; leaves it alone when it does not exist.
pub fn canonical_tty(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(Selector::parse("1-3.2").unwrap(), Selector::UsbPath("1-3.2".into()));
        assert_eq!(Selector::parse("usb:2-1").unwrap(), Selector::UsbPath("2-1".into()));
        assert_eq!(Selector::parse("1-3.2:1.0").unwrap(), Selector::UsbPath("1-3.2".into()));
        assert_eq!(
            Selector::parse("2207:350a").unwrap(),
            Selector::UsbId { vid: 0x2207, pid: 0x350a, serial: None }
        );
        assert_eq!(
            Selector::parse("2207:350A:abc").unwrap(),
            Selector::UsbId { vid: 0x2207, pid: 0x350a, serial: Some("abc".into()) }
        );
        assert_eq!(
            Selector::parse("/dev/does-not-exist-ttyX").unwrap(),
            Selector::Tty("/dev/does-not-exist-ttyX".into())
        );
    }

    #[test]
    fn parses_tcp_and_writes_it_back() {
        let s = Selector::parse("tcp:127.0.0.1:5599").unwrap();
        assert_eq!(s, Selector::Tcp { host: "127.0.0.1".into(), port: 5599 });
        assert_eq!(s.to_string(), "tcp:127.0.0.1:5599");
        assert_eq!(s.tcp_address().as_deref(), Some("127.0.0.1:5599"));
        let s = Selector::parse("tcp:[::1]:5554").unwrap();
        assert_eq!(s, Selector::Tcp { host: "::1".into(), port: 5554 });
        assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
        assert_eq!(s.tcp_address().as_deref(), Some("[::1]:5554"));
        assert_eq!(
            Selector::parse("tcp:board-7.lab:5554").unwrap(),
            Selector::Tcp { host: "board-7.lab".into(), port: 5554 }
        );
        for bad in
            ["tcp:", "tcp:host", "tcp:host:", "tcp::5554", "tcp:h:0", "tcp:h:70000", "tcp:h:x", "tcp:::1:5"]
        {
            let e = Selector::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("tcp:HOST:PORT") || e.to_string().contains("brackets"),
                "{bad}: {e}"
            );
        }
        assert!(!Selector::parse("tcp:127.0.0.1:5554").unwrap().matches_usb(&crate::UsbInfo::default()));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "  ", "banana", "1-", "-3", "1-3..2", "x-3", "zzzz:0001", "12345:1"] {
            let e = Selector::parse(bad).unwrap_err();
            assert!(e.to_string().contains("invalid --port selector"), "{bad}: {e}");
        }
    }

    #[test]
    fn symlinks_are_resolved_when_matching() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ttyFAKE0");
        std::fs::write(&target, b"").unwrap();
        let link = dir.path().join("by-path-link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let sel = Selector::parse(link.to_str().unwrap()).unwrap();
        assert_eq!(sel, Selector::Tty(link.clone()), "the name the user gave is kept");
        let info = crate::SerialInfo { path: target.to_str().unwrap().into(), ..Default::default() };
        assert!(sel.matches_serial(&info));
        // The link now points elsewhere (the device re-enumerated): the
        // selector follows the name.
        let other = dir.path().join("ttyFAKE1");
        std::fs::write(&other, b"").unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&other, &link).unwrap();
        assert!(!sel.matches_serial(&info));
        let info = crate::SerialInfo { path: other.to_str().unwrap().into(), ..Default::default() };
        assert!(sel.matches_serial(&info));
    }
}
