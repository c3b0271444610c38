//! `racklet-flash sim <board> --tcp ADDR`: the virtual fastboot ROM as a
//! TCP fastboot device. Every connection is a session (the Debian client
//! opens one per invocation), served on its own thread; the board's state
//! carries over between them ([`crate::fastboot::serve_tcp`]).
//!
//! Saving what arrived (`--save`) is the caller's: it hears every download
//! as an [`Event::Received`] before the client gets its OKAY (named
//! `INDEX-STAGE.bin` by [`Event::said`]), and writes it with racklet-image's
//! safe output files (the sim does not depend on racklet-image).

use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::Duration;

use racklet_link::{Classify, FailureClass};

use serde_json::json;

use super::{CallerError, Listener, Request, Said};
use crate::fastboot::{FastbootDevice, Fault, Soc, TcpSession, serve_tcp};
use crate::models::SimError;

/// How long one TCP connection may stay idle before the server drops it.
pub const IDLE: Duration = Duration::from_secs(30);

/// What to serve, where.
#[derive(Debug, Clone)]
pub struct Options {
    pub soc: Soc,
    /// The address to listen on ("127.0.0.1:5554"; port 0 picks one).
    pub address: String,
    /// Serve session after session; without it the server ends after one.
    pub keep: bool,
    pub fault: Option<Fault>,
    /// Keep vendor U-Boot's eMMC in this file (`--sim-storage`).
    pub storage: Option<std::path::PathBuf>,
    /// Start in vendor U-Boot's fastboot instead of the boot ROM.
    pub in_uboot: bool,
    /// What a K1 boots from (`--medium`: emmc, spi-nor, spi-nor+nvme).
    pub boot: crate::fastboot::Boot,
}

impl Options {
    /// One session of the board table's SoC `soc` at `address`, with the
    /// fault named `fault`.
    pub fn new(soc: &str, address: &str, fault: Option<&str>) -> Result<Options, SimError> {
        let soc = Soc::from_name(soc).ok_or_else(|| SimError::UnknownSoc { soc: soc.to_string() })?;
        let fault = fault.map(str::parse::<Fault>).transpose()?;
        Ok(Options {
            soc,
            address: address.to_string(),
            keep: false,
            fault,
            storage: None,
            in_uboot: false,
            boot: crate::fastboot::Boot::Emmc,
        })
    }
}

/// What happened, in order within a session, for the caller to show.
#[derive(Debug)]
pub enum Event<'a> {
    /// The server listens at `address`.
    Listening { address: SocketAddr },
    /// A connection ended with an error.
    ConnectionError { peer: SocketAddr, message: String },
    /// A command arrived in `stage`.
    Command { stage: &'static str, command: &'a str },
    /// A download completed: the `index`-th since the server started.
    Received { index: usize, stage: &'static str, bytes: &'a [u8] },
    /// The board started an image.
    Started { stage: &'static str, what: &'a str, bytes: usize },
    /// The board's summary when a session ends.
    Verdict { summary: &'a str },
}

/// What the server is and the commands that work against it: without
/// `--keep` one run of the board is served, so the hint is a racklet-flash
/// run (a `fastboot getvar` first would use the session up).
fn serve_hint(req: &Request, at: &str) -> String {
    let (what, ours) = match req.in_uboot {
        true => (
            "vendor U-Boot fastboot",
            format!("racklet-flash write {} --partition NAME=FILE --port {at}", req.board),
        ),
        false => ("boot ROM", format!("racklet-flash maskrom {} FILE --port {at}", req.board)),
    };
    let theirs = format!("fastboot -s {at} getvar version");
    match req.keep {
        true => format!(
            "serving the virtual {} {what} of {} on {at}, session after session; try `{theirs}` or `{ours}`",
            req.soc, req.board
        ),
        false => format!(
            "serving one run of the virtual {} {what} of {} on {at}: `{ours}` (pass --keep to serve session after session, e.g. `{theirs}` first)",
            req.soc, req.board
        ),
    }
}

impl<'a> Event<'a> {
    /// What the event says to a person, a program and `--save`.
    pub fn said(&self, req: &Request) -> Said<'a> {
        let (line, json) = match self {
            Event::Listening { address } => {
                return Said {
                    address: Some(format!("tcp:{address}")),
                    line: Some(serve_hint(req, &format!("tcp:{address}"))),
                    warning: crate::exposure_warning(address),
                    json: Some(
                        json!({"event":"listening","board":req.board,"address":format!("tcp:{address}")}),
                    ),
                    save: None,
                };
            }
            Event::ConnectionError { peer, message } => (
                format!("connection from {peer}: {message}"),
                json!({"event":"connection_error","peer":peer.to_string(),"message":message}),
            ),
            Event::Command { stage, command } => {
                (format!("[{stage}] {command}"), json!({"event":"command","stage":stage,"command":command}))
            }
            Event::Received { index, stage, bytes } => {
                let sha = racklet_link::transcript::sha256_hex(bytes);
                let saved = req.save.as_ref().map(|d| d.join(format!("{index:02}-{stage}.bin")));
                let shown = saved.as_ref().map(|p| p.display().to_string());
                let at = shown.as_ref().map(|p| format!(", saved to {p}")).unwrap_or_default();
                let ev =
                    json!({"event":"received","stage":stage,"bytes":bytes.len(),"sha256":sha,"saved":shown});
                let line = format!("[{stage}] received {} bytes, sha256 {sha}{at}", bytes.len());
                return Said {
                    line: Some(line),
                    json: Some(ev),
                    save: saved.map(|p| (p, *bytes)),
                    ..Said::default()
                };
            }
            Event::Started { stage, what, bytes } => (
                format!("[{stage}] started {what} ({bytes} bytes)"),
                json!({"event":"started","stage":stage,"what":what,"bytes":bytes}),
            ),
            Event::Verdict { summary } => {
                (format!("verdict: {summary}"), json!({"event":"verdict","summary":summary}))
            }
        };
        Said { line: Some(line), json: Some(json), ..Said::default() }
    }
}

/// Serves the request's board (`--tcp`, default 127.0.0.1:5554) for
/// [`crate::models::serve`].
pub fn run(
    req: &Request,
    _stop: &(dyn Fn() -> bool + Sync),
    on: Listener<'_>,
) -> Result<(), super::ServeError> {
    let address = req.tcp.as_deref().unwrap_or("127.0.0.1:5554");
    let mut opts = Options::new(&req.soc, address, req.fault.as_deref())?;
    opts.keep = req.keep;
    opts.storage = req.storage.clone();
    opts.in_uboot = req.in_uboot;
    opts.boot = match (opts.soc, crate::fastboot::Boot::from_medium(req.medium.as_deref())) {
        (Soc::K1, Some(b)) | (Soc::Th1520, Some(b @ crate::fastboot::Boot::Emmc)) => b,
        _ => {
            return Err(SimError::Impossible {
                soc: req.soc.clone(),
                why: format!(
                    "boot from a medium named '{}' (K1: emmc, spi-nor, spi-nor+nvme; TH1520: emmc)",
                    req.medium.as_deref().unwrap_or_default()
                ),
            }
            .into());
        }
    };
    // The caller's own error stops the server; it is returned whole.
    let refused = Mutex::new(None::<CallerError>);
    let served = serve(&opts, &|e| {
        on(e.said(req)).map_err(|c| {
            let text = c.to_string();
            *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
            text
        })
    });
    match (served, refused.into_inner().unwrap_or_else(|p| p.into_inner())) {
        (Err(_), Some(c)) => Err(super::ServeError::Caller(c)),
        (r, _) => Ok(r?),
    }
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    /// Accepting a connection failed, or the caller refused an event (a
    /// download it could not save).
    #[error("{0}")]
    Stopped(String),
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::Listen { .. } => FailureClass::BadInput,
            ServeError::Stopped(_) => FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Listen { .. } => Some("give another --tcp ADDRESS (port 0 picks a free one)".into()),
            ServeError::Stopped(_) => None,
        }
    }
}

/// The events of one report of the server, in order.
fn tell(s: &TcpSession, on: &(dyn Fn(Event) -> Result<(), String> + Sync)) -> Result<(), String> {
    if let Some(e) = &s.error {
        on(Event::ConnectionError { peer: s.peer, message: e.to_string() })?;
    }
    for (stage, command) in &s.commands {
        on(Event::Command { stage: stage.name(), command })?;
    }
    for (index, r) in &s.downloads {
        on(Event::Received { index: *index, stage: r.stage.name(), bytes: &r.bytes })?;
    }
    for st in &s.started {
        on(Event::Started { stage: st.by.name(), what: &st.what, bytes: st.len })?;
    }
    if s.ended {
        on(Event::Verdict { summary: &s.summary })?;
    }
    Ok(())
}

/// Serves the board until one session is over (or forever with `keep`),
/// telling `on` what happens; an error from `on` stops the server.
pub fn serve(opts: &Options, on: &(dyn Fn(Event) -> Result<(), String> + Sync)) -> Result<(), ServeError> {
    let listen = |source| ServeError::Listen { address: opts.address.clone(), source };
    let l = TcpListener::bind(&opts.address).map_err(listen)?;
    let local = l.local_addr().map_err(listen)?;
    on(Event::Listening { address: local }).map_err(ServeError::Stopped)?;
    let mut dev = FastbootDevice::new(opts.soc, "tcp").with_boot(opts.boot).with_fault(opts.fault);
    if let Some(p) = &opts.storage {
        dev = dev.with_storage(p).map_err(|e| ServeError::Stopped(format!("keeping the storage in {e}")))?;
    }
    if opts.in_uboot {
        dev = dev.in_uboot();
    }
    let dev = Mutex::new(dev);
    serve_tcp(&l, &dev, IDLE, opts.keep, &|s| tell(&s, on)).map_err(ServeError::Stopped)
}
