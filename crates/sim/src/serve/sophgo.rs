//! `racklet-flash sim <sophgo board>`: the virtual Sophgo ROM on a pty.
//!
//! The ROM re-enumerates for every session, so each session has its own
//! pty; a symlink in a directory of its own follows it, and that is the
//! name to give the client (`--port`). The directory is made inside the
//! existing temporary directory (never creating that one) and removed when
//! the server ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{CallerError, Listener, Request, Said};

use crate::models::SimError;
use crate::rom::{Verdict, VirtualRom};
use crate::serial::SimSerialBus;
use crate::sophgo::{Core, Notify, SophgoRom, SophgoRomConfig};

/// How long the first session waits for a client: a person starts it by
/// hand (the ROM itself waits 1 s, 10 s or forever, sheet §1.3).
pub const FIRST_WINDOW: Duration = Duration::from_secs(60);

/// What to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The SoC, as the board table names it.
    pub soc: String,
    /// A TCP address to listen on (refused: the ROM is a serial device).
    pub tcp: Option<String>,
    /// Serve cold boot after cold boot until stopped (`--keep`).
    pub keep: bool,
    /// A fault of the virtual ROM, by name.
    pub fault: Option<String>,
    /// The existing directory to make the symlink's directory in (`$TMPDIR`).
    pub tmp: PathBuf,
}

/// What the server has to say while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The symlink that follows the ROM's port: hand it to the client.
    Ready { link: PathBuf },
    /// A session's port appeared.
    Port { tty: String },
    /// A line of the ROM's own log.
    Log { text: String },
}

/// What the server saw, once it ended.
#[derive(Debug, Clone)]
pub struct Served {
    /// One line per session ("session on /dev/pts/3: wanted 0x0+0x1000, ...").
    pub sessions: Vec<String>,
    /// Cold boots that ended in a jump to BL2.
    pub boots: u32,
    /// What the ROM and the vendor FSBL accepted, by file name (`param1.bin`,
    /// `bl2.bin`, `param2.bin`, `ddr_param.bin`, `monitor.bin`, ...), for `--save`.
    pub received: Vec<(&'static str, Vec<u8>)>,
    /// The ROM's verdict on the last boot.
    pub verdict: Verdict,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--tcp {0}: the Sophgo ROM is a serial (CDC-ACM) device; it is served on a pseudo-terminal")]
    Tcp(String),
    #[error(transparent)]
    Model(#[from] SimError),
    #[error("{}: cannot make the sim's directory there: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch for SIGTERM: {source}")]
    Signal { source: std::io::Error },
    #[error("terminated (SIGTERM)")]
    Terminated,
    /// The last boot did not reach BL2.
    #[error("the virtual ROM did not boot: {why}")]
    NotBooted { why: String },
}

impl racklet_link::Classify for ServeError {
    fn class(&self) -> racklet_link::FailureClass {
        match self {
            ServeError::Tcp(_) => racklet_link::FailureClass::BadInput,
            ServeError::Model(e) => e.class(),
            ServeError::Dir { .. } | ServeError::Signal { .. } => racklet_link::FailureClass::Io,
            ServeError::Terminated => racklet_link::FailureClass::Interrupted,
            ServeError::NotBooted { .. } => racklet_link::FailureClass::Rejected,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Tcp(_) => Some("drop --tcp; give the printed path to the client with --port".into()),
            ServeError::Model(e) => e.hint(),
            ServeError::Dir { .. } => Some("point TMPDIR at an existing, writable directory".into()),
            _ => None,
        }
    }
}

impl Event {
    /// What the event says to a person and a program.
    pub fn said(&self, req: &Request) -> Said<'static> {
        match self {
            Event::Ready { link } => {
                let link = link.display().to_string();
                let (name, soc) = (&req.board, &req.soc);
                Said {
                    line: Some(format!(
                        "virtual {soc} ROM of {name} on {link} (a symlink to each session's pty); try: racklet-flash maskrom {name} --port {link} bl2.bin"
                    )),
                    json: Some(json!({"event":"sim","board":name,"tty":link})),
                    address: Some(link),
                    ..Said::default()
                }
            }
            Event::Port { tty } => said(format!("session port {tty}"), json!({"event":"sim_port","tty":tty})),
            Event::Log { text } => said(text.clone(), json!({"event":"sim_log","text":text})),
        }
    }
}

/// A line and its JSON event.
fn said(line: String, json: serde_json::Value) -> Said<'static> {
    Said { line: Some(line), json: Some(json), ..Said::default() }
}

/// Serves the request's board for [`crate::models::serve`], until it
/// booted (every boot with `keep`), `stop` says so or SIGTERM comes (the
/// server's directory goes either way); then what it received goes to
/// `--save` (`param1.bin`, `bl2.bin`, ...), one line per session, and the
/// verdict. A last boot that did not reach BL2 is an error.
pub fn run(
    req: &Request,
    stop: &(dyn Fn() -> bool + Sync),
    on: Listener<'_>,
) -> Result<(), super::ServeError> {
    let opts = Options {
        soc: req.soc.clone(),
        tcp: req.tcp.clone(),
        keep: req.keep,
        fault: req.fault.clone(),
        tmp: req.tmp.clone(),
    };
    let terminated = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, terminated.clone())
        .map_err(|source| ServeError::Signal { source })?;
    // The caller's own error stops the server; it is returned whole.
    let refused = Mutex::new(None::<CallerError>);
    let refuse = |c| {
        refused.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(c);
    };
    let stopped = || {
        stop()
            || terminated.load(Ordering::SeqCst)
            || refused.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    };
    let served = serve(&opts, &stopped, &|e| on(e.said(req)).unwrap_or_else(refuse))?;
    if let Some(c) = refused.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(super::ServeError::Caller(c));
    }
    if terminated.load(Ordering::SeqCst) {
        return Err(ServeError::Terminated.into());
    }
    let caller = super::ServeError::Caller;
    if let Some(d) = &req.save {
        for (file, bytes) in &served.received {
            on(Said { save: Some((d.join(file), bytes)), ..Said::default() }).map_err(caller)?;
        }
    }
    for s in &served.sessions {
        on(said(s.clone(), json!({"event":"sim_session","text":s}))).map_err(caller)?;
    }
    if req.keep {
        let text = format!("{} boot(s) ended in a jump to BL2", served.boots);
        on(said(text, json!({"event":"sim_boots","count":served.boots}))).map_err(caller)?;
    }
    match served.verdict {
        Verdict::Started { summary } => {
            on(said(format!("verdict: {summary}"), json!({"event":"sim_verdict","ok":true,"text":summary})))
                .map_err(caller)
        }
        Verdict::NotStarted { why } => Err(ServeError::NotBooted { why }.into()),
    }
}

/// Serves the ROM of `opts.soc` until it has booted (every boot with
/// `keep`) or `stop` says so. `on` hears every event, from the ROM's thread
/// too.
pub fn serve(opts: &Options, stop: &dyn Fn() -> bool, on: &dyn Fn(Event)) -> Result<Served, ServeError> {
    if let Some(a) = &opts.tcp {
        return Err(ServeError::Tcp(a.clone()));
    }
    let soc = crate::sophgo::soc(&opts.soc).ok_or_else(|| SimError::UnknownSoc { soc: opts.soc.clone() })?;
    let mut cfg = SophgoRomConfig::new(soc, Core::Riscv, "sim-1")
        .map_err(|_| SimError::Impossible { soc: opts.soc.clone(), why: "boot its RISC-V core".into() })?;
    cfg.fault = opts.fault.as_deref().map(str::parse).transpose().map_err(SimError::from)?;
    cfg.boots = if opts.keep { u32::MAX } else { 1 };
    cfg.window = FIRST_WINDOW;

    // A directory of its own, with a random name, inside $TMPDIR as it is.
    let dir = tempfile::Builder::new()
        .prefix("racklet-sim-sophgo-")
        .tempdir_in(&opts.tmp)
        .map_err(|source| ServeError::Dir { dir: opts.tmp.clone(), source })?;
    let link = dir.path().join("ttyACM");
    let l2 = link.clone();
    // The ROM's thread tells this one, which tells `on` as it polls.
    let (tx, events) = mpsc::channel();
    let notify: Notify = Arc::new(move |line: &str| {
        if let Some(p) = line.strip_prefix("tty ") {
            repoint(&l2, Path::new(p));
            let _ = tx.send(Event::Port { tty: p.to_string() });
        } else if let Some(p) = line.strip_prefix("gone ") {
            if std::fs::read_link(&l2).ok().is_some_and(|t| t == Path::new(p)) {
                let _ = std::fs::remove_file(&l2);
            }
        } else {
            let _ = tx.send(Event::Log { text: line.to_string() });
        }
    });
    let mut rom = SophgoRom::spawn(SimSerialBus::new(), cfg, Some(notify))
        .map_err(|source| SimError::Start { what: "Sophgo ROM", source })?;
    // Let the first port appear (and its symlink) before telling anyone.
    let t0 = Instant::now();
    while std::fs::symlink_metadata(&link).is_err() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    on(Event::Ready { link: link.clone() });
    loop {
        events.try_iter().for_each(on);
        if rom.state().finished || stop() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    events.try_iter().for_each(on);
    let state = rom.state();
    let verdict = rom.verdict();
    let _ = std::fs::remove_file(&link);
    drop(dir);
    let sessions = state
        .sessions
        .iter()
        .map(|s| {
            format!(
                "session on {}: wanted 0x{:x}+0x{:x}, {} packets, {} data bytes, flag {}",
                s.tty,
                s.offset,
                s.size,
                s.packets,
                s.data_bytes,
                if s.flag_ok { "MGN1" } else { "not set" }
            )
        })
        .collect();
    let mut received = Vec::new();
    for (name, data) in [("param1.bin", state.param1), ("bl2.bin", state.bl2), ("param2.bin", state.param2)] {
        if let Some(b) = data {
            received.push((name, b));
        }
    }
    // What the vendor FSBL loaded after BL2.
    for (part, data) in state.parts {
        let name = match part {
            "DDR_PARAM" => "ddr_param.bin",
            "BLCP_2ND" => "blcp_2nd.bin",
            "MONITOR" => "monitor.bin",
            _ => "loader_2nd.bin",
        };
        received.push((name, data));
    }
    Ok(Served { sessions, boots: state.boots_done, received, verdict })
}

/// Points `link` at `target`, replacing it in one step.
fn repoint(link: &Path, target: &Path) {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink(target, &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(tmp: &Path) -> Options {
        Options { soc: "sg2002".into(), tcp: None, keep: false, fault: None, tmp: tmp.to_path_buf() }
    }

    #[test]
    fn a_missing_tmpdir_is_not_created() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("no").join("such");
        let e = serve(&opts(&missing), &|| true, &|_| {}).unwrap_err();
        assert!(matches!(e, ServeError::Dir { .. }), "{e}");
        assert!(!d.path().join("no").exists());
    }

    #[test]
    fn the_directory_goes_when_the_server_ends_and_tcp_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let events = Mutex::new(Vec::new());
        let served = serve(&opts(d.path()), &|| true, &|e| events.lock().unwrap().push(e)).unwrap();
        assert!(!served.verdict.started());
        let ready = events.lock().unwrap().iter().find_map(|e| match e {
            Event::Ready { link } => Some(link.clone()),
            _ => None,
        });
        let link = ready.expect("a Ready event");
        assert!(link.starts_with(d.path()), "{}", link.display());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0, "nothing left behind");

        let mut o = opts(d.path());
        o.tcp = Some("127.0.0.1:1".into());
        assert!(matches!(serve(&o, &|| true, &|_| {}), Err(ServeError::Tcp(_))));
    }
}
