//! `--monitor`: stream a board's console after its payload started, and
//! `--expect`: succeed once a pattern appears.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use racklet_link::serial_backend::SerialPortLink;
use racklet_link::{FailureClass, LinkError, SerialInfo, SerialLink};
use regex::Regex;
use serde_json::json;

use crate::error::fail;
use crate::output::{Mode, Output};

/// What to watch.
pub struct Console<'a> {
    pub tty: &'a str,
    pub baud: u32,
    pub expect: Option<&'a Regex>,
    pub timeout: Duration,
    pub label: Option<&'a str>,
}

/// How much console text is kept for matching a pattern across reads.
const KEEP: usize = 64 * 1024;

/// Streams the console until the pattern appears (Ok with the matched
/// text), the timeout passes (timeout class), or the user stops it (Ok(None)).
pub fn run(c: &Console, out: &Arc<Output>) -> Result<Option<String>> {
    let info = SerialInfo { path: c.tty.to_string(), ..Default::default() };
    let mut link = SerialPortLink::open(info, c.baud)?;
    run_on(&mut link, c, out, &[])
}

/// [`run`] on a port that is already open (the boot UART of a serial board,
/// which is also its console); `already` is console text read before.
pub fn run_on(
    link: &mut dyn SerialLink,
    c: &Console,
    out: &Arc<Output>,
    already: &[u8],
) -> Result<Option<String>> {
    let start = Instant::now();
    let mut pending = already.to_vec();
    let mut text = String::new();
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    let prefix = c.label.map(|l| format!("[{l}] ")).unwrap_or_default();
    let emit = |l: &[u8]| {
        let s = String::from_utf8_lossy(l).trim_end_matches(['\r', '\n']).to_string();
        if out.mode == Mode::Json {
            let mut ev = json!({"event":"console","line":s});
            if let Some(p) = c.label {
                ev["port"] = json!(p);
            }
            out.json(ev);
        } else if !out.quiet {
            out.line(&format!("{prefix}{s}"));
        }
    };
    loop {
        if out.cancelled() {
            return Ok(None);
        }
        if c.expect.is_some() && start.elapsed() >= c.timeout {
            if !line.is_empty() {
                emit(&line);
            }
            return Err(fail(
                FailureClass::Timeout,
                format!(
                    "the console on {} did not print /{}/ within {:.1}s",
                    c.tty,
                    c.expect.map(|r| r.as_str()).unwrap_or_default(),
                    c.timeout.as_secs_f64()
                ),
            ));
        }
        let got = if pending.is_empty() {
            link.read(&mut buf, Duration::from_millis(100))
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
                if let Some(re) = c.expect
                    && let Some(m) = re.find(&text)
                {
                    if !line.is_empty() {
                        emit(&line);
                    }
                    return Ok(Some(m.as_str().to_string()));
                }
            }
            Err(LinkError::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
