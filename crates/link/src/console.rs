//! A board's console after its payload started: its lines as they come,
//! and the first match of a pattern in the text so far (a pattern split
//! across reads still matches; the text kept is bounded).

use std::time::{Duration, Instant};

use crate::{LinkError, SerialLink};

/// How much console text is kept for matching a pattern across reads.
pub const KEEP: usize = 64 * 1024;

/// How long one read waits before the loop looks at the clock and the
/// cancel flag again.
const READ_SLICE: Duration = Duration::from_millis(100);

/// Finds the pattern in the console text so far: the text it matched.
pub type Find<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What to watch for.
pub struct Watch<'a> {
    /// Finds the pattern in the text so far and returns the matched text.
    /// Without it the console is streamed until cancelled.
    pub find: Option<Find<'a>>,
    /// How long the pattern may take to appear (only with `find`).
    pub timeout: Duration,
    /// Asked between reads: the user stopped the run.
    pub cancel: &'a dyn Fn() -> bool,
}

/// A console opened before the board's last stage starts: a thread reads
/// it (bounded to [`KEEP`] bytes) while the stages are sent, so the
/// payload's first line is not lost; [`Listening::finish`] hands back the
/// port and what was read, for [`watch`] to go on from.
pub struct Listening {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Heard>,
}

/// What [`Listening::finish`] hands back: the port, the bytes read, and
/// the error that ended reading early, if one did.
pub type Heard = (Box<dyn SerialLink>, Vec<u8>, Option<LinkError>);

/// Starts reading `link` in the background.
pub fn listen(mut link: Box<dyn SerialLink>) -> Listening {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !s.load(Ordering::SeqCst) {
            match link.read(&mut buf, READ_SLICE) {
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.len() > KEEP {
                        got.drain(..got.len() - KEEP);
                    }
                }
                Err(LinkError::Timeout { .. }) => {}
                Err(e) => return (link, got, Some(e)),
            }
        }
        (link, got, None)
    });
    Listening { stop, thread }
}

impl Listening {
    /// Stops reading: the port, what arrived so far, and the error that
    /// ended reading early, if one did.
    pub fn finish(self) -> Heard {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        match self.thread.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// How watching ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The pattern appeared: the text it matched.
    Matched(String),
    /// The pattern did not appear within the timeout.
    TimedOut,
    /// The user stopped it.
    Cancelled,
}

/// Streams the console on `link` (`already`: text read before, from the
/// same port), giving each line to `on_line` without its line ending. A
/// partial last line is given when watching ends on a match or a timeout.
/// The timeout is looked at before each read, so once it has passed
/// nothing more is read.
pub fn watch(
    link: &mut dyn SerialLink,
    already: &[u8],
    w: &Watch,
    on_line: &mut dyn FnMut(&str),
) -> Result<Ended, LinkError> {
    let start = Instant::now();
    let mut pending = already.to_vec();
    let mut text = String::new();
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    let mut emit = |l: &[u8]| on_line(String::from_utf8_lossy(l).trim_end_matches(['\r', '\n']));
    loop {
        if (w.cancel)() {
            return Ok(Ended::Cancelled);
        }
        if w.find.is_some() && start.elapsed() >= w.timeout {
            if !line.is_empty() {
                emit(&line);
            }
            return Ok(Ended::TimedOut);
        }
        let got = if pending.is_empty() {
            link.read(&mut buf, READ_SLICE)
        } else {
            let n = pending.len().min(buf.len());
            buf[..n].copy_from_slice(&pending[..n]);
            pending.drain(..n);
            Ok(n)
        };
        match got {
            Ok(n) => {
                for &b in &buf[..n] {
                    line.push(b);
                    if b == b'\n' {
                        emit(&line);
                        line.clear();
                    }
                }
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                if text.len() > KEEP {
                    let cut = text.len() - KEEP / 2;
                    let cut = (cut..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
                    text.drain(..cut);
                }
                if let Some(find) = w.find
                    && let Some(m) = find(&text)
                {
                    if !line.is_empty() {
                        emit(&line);
                    }
                    return Ok(Ended::Matched(m));
                }
            }
            Err(LinkError::Timeout { .. }) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedSerial;

    fn hello(t: &str) -> Option<String> {
        t.find("racklet: hello").map(|_| "racklet: hello".to_string())
    }

    #[test]
    fn a_pattern_split_across_reads_matches_and_lines_come_whole() {
        let mut link = ScriptedSerial::new().feed(b"U-Boot SPL\r\nrackl").feed(b"et: hel").feed(b"lo world");
        let mut lines = Vec::new();
        let w = Watch { find: Some(&hello), timeout: Duration::from_secs(3600), cancel: &|| false };
        let end = watch(&mut link, b"boot\n", &w, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(end, Ended::Matched("racklet: hello".into()));
        assert_eq!(lines, ["boot", "U-Boot SPL", "racklet: hello world"]);
    }

    #[test]
    fn a_console_listened_to_early_keeps_what_came_before_watching() {
        // The payload's first line arrives while the stages are still sent.
        let link = ScriptedSerial::new().feed(b"racklet: hello from the payload\n");
        let l = listen(Box::new(link));
        std::thread::sleep(Duration::from_millis(50));
        let (mut link, early, err) = l.finish();
        assert!(err.is_none());
        assert_eq!(early, b"racklet: hello from the payload\n");
        let mut lines = Vec::new();
        let w = Watch { find: Some(&hello), timeout: Duration::from_secs(5), cancel: &|| false };
        let end = watch(&mut *link, &early, &w, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(end, Ended::Matched("racklet: hello".into()));
        assert_eq!(lines, ["racklet: hello from the payload"]);
    }

    #[test]
    fn no_match_in_time_is_a_timeout() {
        // Once the time is up nothing more is read, not even text queued.
        let mut link = ScriptedSerial::new().feed(b"racklet: hello\n");
        let mut lines = Vec::new();
        let w = Watch { find: Some(&hello), timeout: Duration::ZERO, cancel: &|| false };
        let end = watch(&mut link, b"racklet: hello", &w, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(end, Ended::TimedOut);
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn cancel_ends_the_stream_and_a_read_error_is_returned() {
        let mut link = ScriptedSerial::new();
        let w = Watch { find: None, timeout: Duration::ZERO, cancel: &|| true };
        assert_eq!(watch(&mut link, b"", &w, &mut |_| {}).unwrap(), Ended::Cancelled);
        let mut link = ScriptedSerial::new();
        link.incoming.push_back(Err(LinkError::Disconnected { op: "reading the console".into() }));
        let w = Watch { find: None, timeout: Duration::ZERO, cancel: &|| false };
        assert!(matches!(watch(&mut link, b"", &w, &mut |_| {}), Err(LinkError::Disconnected { .. })));
    }
}
