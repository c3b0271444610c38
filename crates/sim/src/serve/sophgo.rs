//! `racklet-flash sim <sophgo board>`: the virtual Sophgo ROM on a pty.
//!
//! The ROM re-enumerates for every session, so each session has its own
//! pty; a symlink in a directory of its own follows it, and that is the
//! name to give the client (`--port`). The directory is made inside the
//! existing temporary directory (never creating that one) and removed when
//! the server ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
}

impl racklet_link::Classify for ServeError {
    fn class(&self) -> racklet_link::FailureClass {
        match self {
            ServeError::Tcp(_) => racklet_link::FailureClass::BadInput,
            ServeError::Model(e) => e.class(),
            ServeError::Dir { .. } => racklet_link::FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Tcp(_) => Some("drop --tcp; give the printed path to the client with --port".into()),
            ServeError::Model(e) => e.hint(),
            ServeError::Dir { .. } => Some("point TMPDIR at an existing, writable directory".into()),
        }
    }
}

/// Serves the ROM of `opts.soc` until it has booted (every boot with
/// `keep`) or `stop` says so. `on` hears every event, from the ROM's thread
/// too.
pub fn serve(
    opts: &Options,
    stop: &dyn Fn() -> bool,
    on: Arc<dyn Fn(Event) + Send + Sync>,
) -> Result<Served, ServeError> {
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
    let o = on.clone();
    let notify: Notify = Arc::new(move |line: &str| {
        if let Some(p) = line.strip_prefix("tty ") {
            repoint(&l2, Path::new(p));
            o(Event::Port { tty: p.to_string() });
        } else if let Some(p) = line.strip_prefix("gone ") {
            if std::fs::read_link(&l2).ok().is_some_and(|t| t == Path::new(p)) {
                let _ = std::fs::remove_file(&l2);
            }
        } else {
            o(Event::Log { text: line.to_string() });
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
    while !rom.state().finished && !stop() {
        std::thread::sleep(Duration::from_millis(20));
    }
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
        let e = serve(&opts(&missing), &|| true, Arc::new(|_| {})).unwrap_err();
        assert!(matches!(e, ServeError::Dir { .. }), "{e}");
        assert!(!d.path().join("no").exists());
    }

    #[test]
    fn the_directory_goes_when_the_server_ends_and_tcp_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let e2 = events.clone();
        let served = serve(&opts(d.path()), &|| true, Arc::new(move |e| e2.lock().unwrap().push(e))).unwrap();
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
        assert!(matches!(serve(&o, &|| true, Arc::new(|_| {})), Err(ServeError::Tcp(_))));
    }
}
