//! What the ROM (and the SPL after it) prints: telling a `C` poll from a
//! `C` in text, and recognising the ROM's messages.
//!
//! The ROM prints `\r\n(C)StarFive\r\n` and then polls with `C`. A sender
//! that starts on the first `C` it sees starts inside the banner (sheet
//! §1.2). After a bad image it prints `CRC Error, Try again`, which starts
//! with a `C` too. A `C` is taken as a poll only when the byte before it is
//! not a letter, a digit or `(` (another `C` is fine) and the byte after it
//! is another `C`, a CR or LF, or nothing for a short grace time.

use std::time::{Duration, Instant};

use racklet_link::{LinkError, SerialLink};

use crate::StarfiveError;

/// The ROM's banner.
pub const BANNER: &str = "(C)StarFive";
/// The start of the ROM's answer to a bad image.
pub const CRC_ERROR: &str = "CRC Error";
/// How much console text is kept for messages.
const TEXT_KEEP: usize = 2048;

/// Classifies the bytes of a console one by one.
#[derive(Debug, Default, Clone)]
pub struct PollDetector {
    prev: Option<u8>,
    candidate: bool,
    text: Vec<u8>,
}

impl PollDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one byte; true when it confirms a poll.
    pub fn feed(&mut self, b: u8) -> bool {
        if self.text.len() >= TEXT_KEEP {
            self.text.drain(..TEXT_KEEP / 2);
        }
        self.text.push(b);
        let mut confirmed = false;
        if self.candidate {
            self.candidate = false;
            confirmed = matches!(b, b'C' | b'\r' | b'\n');
        }
        if b == b'C' {
            let prev_ok = match self.prev {
                None => true,
                Some(b'C') => true,
                Some(p) => !(p.is_ascii_alphanumeric() || p == b'('),
            };
            self.candidate = prev_ok;
        }
        self.prev = Some(b);
        confirmed
    }

    /// Nothing arrived for the grace time: a pending `C` was a poll.
    pub fn idle(&mut self) -> bool {
        std::mem::take(&mut self.candidate)
    }

    /// The text seen so far (printable, lossy).
    pub fn text(&self) -> String {
        printable(&self.text)
    }

    /// True once the text contains `pat`.
    pub fn saw(&self, pat: &str) -> bool {
        contains(&self.text, pat.as_bytes())
    }
}

/// True when `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Console bytes as one line of text: control bytes become spaces, runs of
/// polls are kept short.
pub fn printable(b: &[u8]) -> String {
    let s: String =
        b.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { ' ' }).collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 200 { format!("…{}", &s[s.len() - 200..]) } else { s }
}

/// The line of `CRC Error…` text in `text`, for the error message.
pub fn crc_error_line(text: &str) -> String {
    match text.find(CRC_ERROR) {
        Some(i) => {
            let rest = &text[i..];
            let end = rest.find(" C").or_else(|| rest.find("(C)")).unwrap_or(rest.len());
            rest[..end].trim().to_string()
        }
        None => CRC_ERROR.to_string(),
    }
}

/// Waits for a poll, starting with the bytes `already` read. With `strict`, seeing `CRC Error` or the ROM banner
/// fails (used after an image was sent: the ROM refused or restarted).
pub fn wait_for_poll<L: SerialLink + ?Sized>(
    link: &mut L,
    timeout: Duration,
    grace: Duration,
    strict: bool,
    already: &[u8],
    cancel: &dyn Fn() -> Result<(), LinkError>,
) -> Result<PollDetector, StarfiveError> {
    let start = Instant::now();
    let mut det = PollDetector::new();
    let mut buf = [0u8; 256];
    let mut confirmed = false;
    for &b in already {
        confirmed |= det.feed(b);
    }
    if strict {
        check_refusal(&det)?;
    }
    if confirmed {
        return Ok(det);
    }
    loop {
        cancel()?;
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(StarfiveError::NoPoll { waited: timeout, printed: det.text() });
        }
        // Poll reads in short slices so Ctrl-C is honoured while waiting.
        let wait = if det.candidate { grace.min(left) } else { left.min(Duration::from_millis(200)) };
        match link.read(&mut buf, wait) {
            Ok(n) => {
                let mut confirmed = false;
                for &b in &buf[..n] {
                    confirmed |= det.feed(b);
                }
                if strict {
                    check_refusal(&det)?;
                }
                if confirmed {
                    return Ok(det);
                }
            }
            Err(LinkError::Timeout { .. }) => {
                if det.idle() {
                    return Ok(det);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Fails when the text shows the ROM refused the image or restarted.
pub fn check_refusal(det: &PollDetector) -> Result<(), StarfiveError> {
    if det.saw(CRC_ERROR) {
        return Err(StarfiveError::RomCrcError { text: crc_error_line(&det.text()) });
    }
    if det.saw(BANNER) {
        return Err(StarfiveError::RomRestarted { what: format!("it printed {BANNER} again") });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polls(bytes: &[u8], idle_at_end: bool) -> usize {
        let mut d = PollDetector::new();
        let mut n = bytes.iter().filter(|&&b| d.feed(b)).count();
        if idle_at_end && d.idle() {
            n += 1;
        }
        n
    }

    #[test]
    fn the_c_in_the_banner_is_not_a_poll() {
        assert_eq!(polls(b"\r\n(C)StarFive\r\n", true), 0);
        assert_eq!(polls(b"(C", true), 0);
        assert_eq!(polls(b"\r\n(C)StarFive\r\nC", true), 1);
        assert_eq!(polls(b"\r\n(C)StarFive\r\nC", false), 0);
        assert_eq!(polls(b"\r\n(C)StarFive\r\nCC", false), 1);
    }

    #[test]
    fn crc_error_and_words_are_not_polls() {
        assert_eq!(polls(b"CRC Error, Try again\r\n", true), 0);
        assert_eq!(polls(b"U-Boot SPL 2025.10 CPU ABC\r\n", true), 0);
        assert_eq!(polls(b"Trying to boot from UART\r\nC", true), 1);
        assert_eq!(polls(b"CRC Error, Try again\r\nCCC", false), 2);
    }

    #[test]
    fn crc_line_is_extracted() {
        assert_eq!(crc_error_line("x CRC Error, Try again C C"), "CRC Error, Try again");
        assert_eq!(printable(b"\r\n(C)StarFive\r\nCC"), "(C)StarFive CC");
    }
}
