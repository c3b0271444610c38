//! `--monitor`: stream a board's console after its payload started, and
//! `--expect`: succeed once a pattern appears.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use racklet_link::console::{Ended, Find, Watch, watch};
use racklet_link::serial_backend::SerialPortLink;
use racklet_link::{FailureClass, SerialInfo, SerialLink};
use regex::Regex;
use serde_json::json;

use crate::error::fail;
use crate::output::{Mode, Output};

/// `--expect RE`, compiled; a bad pattern is bad input.
pub fn expect(re: Option<&str>) -> Result<Option<Regex>> {
    re.map(|re| {
        Regex::new(re).map_err(|e| {
            crate::error::bad_input(format!("--expect '{re}' is not a valid regular expression: {e}"))
        })
    })
    .transpose()
}

/// What to watch.
pub struct Console<'a> {
    pub tty: &'a str,
    pub baud: u32,
    pub expect: Option<&'a Regex>,
    pub timeout: Duration,
    pub label: Option<&'a str>,
}

/// Streams the console until the pattern appears (Ok with the matched
/// text), the timeout passes (timeout class), or the user stops it (Ok(None)).
pub fn run(c: &Console, out: &Arc<Output>) -> Result<Option<String>> {
    let mut link = open(c.tty, c.baud)?;
    run_on(&mut *link, c, out, &[])
}

/// Opens a console tty.
pub fn open(tty: &str, baud: u32) -> Result<Box<dyn SerialLink>> {
    let info = SerialInfo { path: tty.to_string(), ..Default::default() };
    Ok(Box::new(SerialPortLink::open(info, baud)?))
}

/// [`run`] on a port that is already open (the boot UART of a serial board,
/// which is also its console); `already` is console text read before.
pub fn run_on(
    link: &mut dyn SerialLink,
    c: &Console,
    out: &Arc<Output>,
    already: &[u8],
) -> Result<Option<String>> {
    let prefix = c.label.map(|l| format!("[{l}] ")).unwrap_or_default();
    let mut emit = |s: &str| {
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
    let find = |text: &str| c.expect.and_then(|re| re.find(text)).map(|m| m.as_str().to_string());
    let w = Watch {
        find: c.expect.is_some().then_some(&find as Find),
        timeout: c.timeout,
        cancel: &|| out.cancelled(),
    };
    match watch(link, already, &w, &mut emit)? {
        Ended::Matched(m) => Ok(Some(m)),
        Ended::Cancelled => Ok(None),
        Ended::TimedOut => Err(fail(
            FailureClass::Timeout,
            format!(
                "the console on {} did not print /{}/ within {:.1}s",
                c.tty,
                c.expect.map(|r| r.as_str()).unwrap_or_default(),
                c.timeout.as_secs_f64()
            ),
        )),
    }
}
