//! `racklet-flash sim <board> --tcp ADDR`: the virtual fastboot ROM as a
//! TCP fastboot device. One connection is one session (the Debian client
//! opens one per invocation); the board's state carries over between them.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use racklet_link::{Classify, FailureClass};

use crate::fastboot::{FastbootDevice, Fault, Soc, serve_tcp_connection};
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
    /// Write each received download to this directory.
    pub save: Option<PathBuf>,
    pub fault: Option<Fault>,
}

impl Options {
    /// One session of the board table's SoC `soc` at `address`, with the
    /// fault named `fault`.
    pub fn new(soc: &str, address: &str, fault: Option<&str>) -> Result<Options, SimError> {
        let soc = Soc::from_name(soc).ok_or_else(|| SimError::UnknownSoc { soc: soc.to_string() })?;
        let fault = fault.map(str::parse::<Fault>).transpose()?;
        Ok(Options { soc, address: address.to_string(), keep: false, save: None, fault })
    }
}

/// What happened, in order, for the caller to show.
#[derive(Debug)]
pub enum Event<'a> {
    /// The server listens at `address`.
    Listening { address: SocketAddr },
    /// A connection ended with an error.
    ConnectionError { peer: SocketAddr, message: String },
    /// A command arrived in `stage`.
    Command { stage: &'static str, command: &'a str },
    /// A download completed (`saved`: where it was written).
    Received { stage: &'static str, bytes: &'a [u8], saved: Option<PathBuf> },
    /// The board started an image.
    Started { stage: &'static str, what: &'a str, bytes: usize },
    /// The board's summary after a session.
    Verdict { summary: String },
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("accepting a connection: {0}")]
    Accept(std::io::Error),
    #[error("{}: cannot create the --save directory: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("{}: cannot write: {source}", path.display())]
    Save { path: PathBuf, source: std::io::Error },
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::Listen { .. } => FailureClass::BadInput,
            ServeError::Accept(_) | ServeError::CreateDir { .. } | ServeError::Save { .. } => {
                FailureClass::Io
            }
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Listen { .. } => Some("give another --tcp ADDRESS (port 0 picks a free one)".into()),
            _ => None,
        }
    }
}

/// Serves the board until one session is over (or forever with `keep`),
/// telling `on` what happens.
pub fn serve(opts: &Options, on: &mut dyn FnMut(Event)) -> Result<(), ServeError> {
    let l = TcpListener::bind(&opts.address)
        .map_err(|source| ServeError::Listen { address: opts.address.clone(), source })?;
    let local =
        l.local_addr().map_err(|source| ServeError::Listen { address: opts.address.clone(), source })?;
    if let Some(d) = &opts.save {
        std::fs::create_dir_all(d).map_err(|source| ServeError::CreateDir { path: d.clone(), source })?;
    }
    on(Event::Listening { address: local });
    let dev = Mutex::new(FastbootDevice::new(opts.soc, "tcp").with_fault(opts.fault));
    let (mut seen_cmd, mut seen_dl, mut seen_run) = (0, 0, 0);
    loop {
        let (stream, peer) = l.accept().map_err(ServeError::Accept)?;
        if let Err(e) = serve_tcp_connection(&dev, stream, IDLE) {
            on(Event::ConnectionError { peer, message: e.to_string() });
        }
        let d = dev.lock().unwrap_or_else(|e| e.into_inner());
        for (stage, cmd) in &d.log[seen_cmd..] {
            on(Event::Command { stage: stage.name(), command: cmd });
        }
        for (i, r) in d.downloads.iter().enumerate().skip(seen_dl) {
            let mut saved = None;
            if let Some(dir) = &opts.save {
                let p = dir.join(format!("{i:02}-{}.bin", r.stage.name()));
                std::fs::write(&p, &r.bytes)
                    .map_err(|source| ServeError::Save { path: p.clone(), source })?;
                saved = Some(p);
            }
            on(Event::Received { stage: r.stage.name(), bytes: &r.bytes, saved });
        }
        for s in &d.started[seen_run..] {
            on(Event::Started { stage: s.by.name(), what: &s.what, bytes: s.len });
        }
        (seen_cmd, seen_dl, seen_run) = (d.log.len(), d.downloads.len(), d.started.len());
        on(Event::Verdict { summary: d.summary() });
        if !opts.keep {
            return Ok(());
        }
    }
}
