//! `racklet-flash sim visionfive2`: the virtual JH7110 ROM on a
//! pseudo-terminal that another process opens as its UART.
//!
//! The server writes no files: each session's bytes go to the caller with
//! its event, and the caller saves them (`--save`) the way it writes every
//! user file.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use racklet_link::{Classify, FailureClass, LinkError};
use serde_json::json;

use super::{CallerError, Listener, Request, Said};
use crate::models::SimError;
use crate::starfive::{Fault, RomConfig, RomReport, Session, SplStage, StarfiveRom};

/// How long the server keeps the pty open after its last session: the
/// client still reads the last ACK and watches the console for a second,
/// and closing the pty earlier would cut it off.
pub const LINGER: Duration = Duration::from_secs(2);

/// What to serve.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The fault the ROM injects (`--fault NAME`).
    pub fault: Fault,
    /// Serve more than one session (`--keep`); without it the server ends
    /// after the first.
    pub keep: bool,
}

/// What happened, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// The ROM is up; clients open `tty`.
    Serving { tty: &'a str },
    /// Session `n` ended (`line` says how, for a log); `session.received`
    /// is everything the ROM got, padding included.
    Session { n: usize, session: &'a Session, line: String },
    /// The started U-Boot SPL's YMODEM stage ended (`line` says how).
    NextStage { line: String },
}

impl<'a> Event<'a> {
    /// What the event says to a person, a program and `--save` (session
    /// `n` is `starfive-session-N.img`).
    pub fn said(&self, req: &Request) -> Said<'a> {
        match self {
            Event::Serving { tty } => Said {
                address: Some(tty.to_string()),
                line: Some(format!(
                    "virtual {} boot ROM ({}) on {tty}: racklet-flash maskrom {} FILE --port {tty}",
                    req.soc, req.board, req.board
                )),
                json: Some(json!({"event":"serving","board":req.board,"tty":tty,"fault":req.fault})),
                ..Said::default()
            },
            Event::Session { n, session, line } => Said {
                line: Some(line.clone()),
                json: Some(json!({"event":"session","n":n,"bytes":session.received.len(),
                    "ok":session.verdict.is_ok(),"text":line})),
                save: req
                    .save
                    .as_ref()
                    .map(|d| (d.join(format!("starfive-session-{n}.img")), &session.received[..])),
                ..Said::default()
            },
            Event::NextStage { line } => Said {
                line: Some(line.clone()),
                json: Some(json!({"event":"next_stage","text":line})),
                ..Said::default()
            },
        }
    }
}

/// Serves the request's board on a pty for [`crate::models::serve`].
pub fn run(
    req: &Request,
    stop: &(dyn Fn() -> bool + Sync),
    on: Listener<'_>,
) -> Result<(), super::ServeError> {
    if req.tcp.is_some() {
        return Err(ServeError::Tcp.into());
    }
    let fault: Fault = req.fault.as_deref().unwrap_or("none").parse().map_err(SimError::from)?;
    let opts = Options { fault, keep: req.keep };
    // The caller's own error ends the server at once; it is returned whole.
    let refused = Mutex::new(None::<CallerError>);
    let served = serve(&opts, stop, &mut |e| match on(e.said(req)) {
        Ok(()) => ControlFlow::Continue(()),
        Err(c) => {
            *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
            ControlFlow::Break(())
        }
    });
    match refused.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(c) => Err(super::ServeError::Caller(c)),
        None => Ok(served?),
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--tcp: the StarFive ROM is reached over a UART; its virtual ROM is served on a pseudo-terminal")]
    Tcp,
    #[error("starting the virtual JH7110 ROM: {error}")]
    Start { error: LinkError },
    /// The last session did not start a payload.
    #[error("the virtual ROM refused the image: {why}")]
    Refused { why: String },
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::Tcp => FailureClass::BadInput,
            ServeError::Start { error } => error.class(),
            ServeError::Refused { .. } => FailureClass::Rejected,
        }
    }
}

/// One line for a session.
pub fn describe(n: usize, s: &Session) -> String {
    let v = match &s.verdict {
        Ok(v) => v.clone(),
        Err(e) => format!("answered CRC Error: {e}"),
    };
    format!(
        "session {n}: received {} bytes in {} 1K + {} 128-byte frames, {} NAKs sent, {} duplicates; {v}",
        s.received.len(),
        s.frames_1k,
        s.frames_128,
        s.naks_sent,
        s.duplicates
    )
}

/// Serves the ROM until one session ended (every session with `keep`),
/// `cancelled` says so, or `on` breaks (then it ends at once, with `Ok`: the
/// caller knows why). A started U-Boot SPL that began receiving its next
/// stage is waited for. Ends with an error when the last session did not
/// start a payload.
pub fn serve(
    opts: &Options,
    cancelled: &dyn Fn() -> bool,
    on: &mut dyn FnMut(Event<'_>) -> ControlFlow<()>,
) -> Result<(), ServeError> {
    // With --keep, the board is power-cycled between runs, as a lab rack does.
    let power_cycle_when_quiet = opts.keep.then_some(POWER_CYCLE_QUIET);
    let (rom, path) =
        StarfiveRom::spawn_pty(RomConfig { fault: opts.fault, power_cycle_when_quiet, ..Default::default() })
            .map_err(|error| ServeError::Start { error })?;
    if on(Event::Serving { tty: &path }).is_break() {
        return Ok(());
    }
    let mut seen = 0;
    let mut done = false;
    while !cancelled() {
        let rep = rom.wait_sessions(seen + 1, Duration::from_millis(200));
        while seen < rep.sessions.len() {
            let s = &rep.sessions[seen];
            seen += 1;
            if on(Event::Session { n: seen, session: s, line: describe(seen, s) }).is_break() {
                return Ok(());
            }
        }
        if seen > 0 && !opts.keep {
            done = true;
            break;
        }
    }
    if done {
        let rep = settle(&rom, cancelled);
        if let Some(SplStage::Done(r)) = &rep.spl {
            let line = match r {
                Ok(f) => format!("U-Boot SPL received {} ({} bytes) by YMODEM", f.name, f.data.len()),
                Err(e) => format!("U-Boot SPL's YMODEM receive failed: {e}"),
            };
            // The server ends here either way.
            let _ = on(Event::NextStage { line });
        }
        if let Some(l) = &rep.fastload {
            let line = match l.verdict() {
                Ok(v) | Err(v) => v,
            };
            let _ = on(Event::NextStage { line });
        }
    }
    let rep = rom.stop();
    match done.then(|| rep.verdict()) {
        Some(Err(why)) => Err(ServeError::Refused { why }),
        _ => Ok(()),
    }
}

/// With `--keep`: how long the line stays quiet after a started payload
/// before the virtual board is power-cycled for the next run.
const POWER_CYCLE_QUIET: Duration = Duration::from_secs(1);

/// How long a served fastload loader may take for its image (the host's
/// HELLO waits 10 s; a 224 KiB image at 115200 after a failed rate change
/// takes 20 s).
const LOADER_WAIT: Duration = Duration::from_secs(60);

/// Waits [`LINGER`] after the last session, and longer while a started SPL
/// is receiving its next stage or a started fastload loader its image.
fn settle(rom: &StarfiveRom, cancelled: &dyn Fn() -> bool) -> RomReport {
    let start = Instant::now();
    loop {
        let rep = rom.report();
        let receiving = matches!(rep.spl, Some(SplStage::Receiving { .. }));
        // A fastload loader the ROM started takes its image next: wait for
        // it to start one or refuse it, up to LOADER_WAIT.
        let loading = rep.fastload.as_ref().is_some_and(|l| l.started.is_none() && l.done_status != Some(1))
            && start.elapsed() < LOADER_WAIT;
        if (start.elapsed() >= LINGER && !receiving && !loading) || cancelled() {
            return rep;
        }
        // The ROM thread updates the report; look again shortly.
        std::thread::sleep(Duration::from_millis(50));
    }
}
