//! `racklet-flash sim <rockchip board>`: the virtual maskrom is a USB
//! device, so outside the process it is served over TCP as JSON Lines in
//! the transcript format. Each request line is a transfer (`ctrl_out`,
//! `ctrl_in`, `bulk_out`, `bulk_in` with `len`, or `info`); each answer
//! line is `{"ok":true,...}` with `data` (hex) for IN transfers, or
//! `{"ok":false,"err":...}` with `stall`, `timeout`, `disconnected` or
//! `bad request: ...`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

use racklet_link::{Classify, ControlSetup, FailureClass};
use serde_json::{Value, json};

use super::{Listener, Request, Said};
use crate::models::{Scenario, SimError};
use crate::rockchip::RockchipRom;
use crate::rom::Verdict;
use crate::usb::{DeviceError, UsbDevice};

/// Where the virtual ROM stands when served: one board, one port.
const PORT_PATH: &str = "1-1";

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The SoC, as the board table names it ("rk3568").
    pub soc: String,
    /// The TCP address to listen on ("127.0.0.1:0" picks a free port).
    pub addr: String,
    /// Serve every client (each on its own thread, with a fresh ROM), not
    /// only the first.
    pub keep: bool,
    /// A fault to inject, by the ROM's own names.
    pub fault: Option<String>,
}

/// What happened, for the caller to print (and to save: the caller writes
/// received stages with its own safe file writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The server listens (announced once the SoC and fault are known good).
    Listening { addr: SocketAddr },
    /// A client connected.
    Session { peer: SocketAddr },
    /// The ROM accepted a stage; `number` counts stages across sessions.
    Received { peer: SocketAddr, number: usize, index: u16, body: &'a [u8], transfers: usize, crc: u16 },
    /// The client left; the ROM's verdict on the session.
    Verdict { peer: SocketAddr, verdict: Verdict },
    /// With `keep`, a session that failed (the server goes on).
    SessionFailed { peer: SocketAddr, error: String },
}

impl<'a> Event<'a> {
    /// What the event says to a person, a program and `--save` (stage
    /// `number` with ROM index `index` is `stageNUMBER-INDEX.bin`).
    pub fn said(&self, req: &Request) -> Said<'a> {
        match self {
            Event::Listening { addr } => Said {
                address: Some(format!("tcp://{addr}")),
                line: Some(format!(
                    "virtual {} maskrom ({}) serving JSON Lines USB transfers on {addr}",
                    req.soc.to_uppercase(),
                    req.board
                )),
                warning: crate::exposure_warning(addr),
                ..Said::default()
            },
            Event::Session { peer } => Said::line(format!("session from {peer}")),
            Event::Received { number, index, body, transfers, crc, .. } => Said {
                line: Some(format!(
                    "received 0x{index:x} stage: {} B in {transfers} transfers, crc {crc:04x}",
                    body.len()
                )),
                save: req.save.as_ref().map(|d| (d.join(format!("stage{number}-{index:x}.bin")), *body)),
                ..Said::default()
            },
            Event::Verdict { verdict: Verdict::Started { summary }, .. } => {
                Said::line(format!("verdict: ok: {summary}"))
            }
            Event::Verdict { verdict: Verdict::NotStarted { why }, .. } => {
                Said::line(format!("verdict: failed: {why}"))
            }
            Event::SessionFailed { peer, error } => Said::line(format!("session from {peer}: {error}")),
        }
    }
}

/// Serves the request's board (`--tcp`, default a free local port) for
/// [`crate::models::serve`].
pub fn run(
    req: &Request,
    _stop: &(dyn Fn() -> bool + Sync),
    on: Listener<'_>,
) -> Result<(), super::ServeError> {
    let opts = Options {
        soc: req.soc.clone(),
        addr: req.tcp.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
        keep: req.keep,
        fault: req.fault.clone(),
    };
    serve(&opts, &|e| on(e.said(req))).map_err(|e| match e {
        // A stage the caller could not save: its own error (and class).
        ServeError::Handler(h) => super::ServeError::Caller(h),
        e => e.into(),
    })
}

/// What the caller's event handler may fail with (saving a stage).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--tcp {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("{op}: {source}")]
    Io { op: &'static str, source: std::io::Error },
    /// The caller's handler failed (e.g. writing a received stage).
    #[error("{0}")]
    Handler(HandlerError),
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::Bind { .. } => FailureClass::BadInput,
            ServeError::Sim(e) => e.class(),
            ServeError::Io { .. } | ServeError::Handler(_) => FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Bind { .. } => Some("give a free local address, e.g. --tcp 127.0.0.1:0".into()),
            ServeError::Sim(e) => e.hint(),
            _ => None,
        }
    }
}

/// The event handler: prints, saves; an error ends the session.
pub type Handler<'h> = &'h (dyn Fn(Event<'_>) -> Result<(), HandlerError> + Sync);

fn rom(opts: &Options) -> Result<RockchipRom, SimError> {
    RockchipRom::for_soc(&opts.soc, &Scenario { fault: opts.fault.clone(), ..Scenario::at(PORT_PATH) })
}

/// Serves the virtual maskrom of `opts.soc`: the first session, or with
/// `keep` every session at once (a client that idles does not hold up the
/// next), reporting through `on`.
pub fn serve(opts: &Options, on: Handler<'_>) -> Result<(), ServeError> {
    let listener = TcpListener::bind(&opts.addr)
        .map_err(|source| ServeError::Bind { addr: opts.addr.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Io { op: "local address", source })?;
    // Check the SoC and the fault name before announcing the address.
    rom(opts)?;
    on(Event::Listening { addr }).map_err(ServeError::Handler)?;
    // Stages are numbered across sessions, so saved names never repeat.
    let numbers = AtomicUsize::new(0);
    let accept = || listener.accept().map_err(|source| ServeError::Io { op: "accepting", source });
    if !opts.keep {
        let (stream, peer) = accept()?;
        return session(opts, stream, peer, &numbers, on);
    }
    std::thread::scope(|scope| {
        loop {
            let (stream, peer) = accept()?;
            let numbers = &numbers;
            scope.spawn(move || {
                if let Err(e) = session(opts, stream, peer, numbers, on) {
                    let _ = on(Event::SessionFailed { peer, error: e.to_string() });
                }
            });
        }
    })
}

/// One client, with its own virtual board.
fn session(
    opts: &Options,
    stream: TcpStream,
    peer: SocketAddr,
    numbers: &AtomicUsize,
    on: Handler<'_>,
) -> Result<(), ServeError> {
    on(Event::Session { peer }).map_err(ServeError::Handler)?;
    let mut rom = rom(opts)?;
    let mut w = stream.try_clone().map_err(|source| ServeError::Io { op: "cloning the socket", source })?;
    let mut seen = 0;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = serve_one(&mut rom, &line);
        while seen < rom.received.len() {
            let r = &rom.received[seen];
            let number = numbers.fetch_add(1, Ordering::SeqCst);
            on(Event::Received {
                peer,
                number,
                index: r.index,
                body: &r.body,
                transfers: r.transfers,
                crc: r.crc,
            })
            .map_err(ServeError::Handler)?;
            seen += 1;
        }
        if writeln!(w, "{reply}").is_err() {
            break;
        }
    }
    on(Event::Verdict { peer, verdict: rom.verdict() }).map_err(ServeError::Handler)
}

/// One request line, one answer.
fn serve_one(rom: &mut RockchipRom, line: &str) -> Value {
    let req: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"ok":false,"err":format!("bad request: {e}")}),
    };
    let num = |k: &str| req.get(k).and_then(Value::as_u64).unwrap_or(0);
    let data = req.get("data").and_then(Value::as_str).map(hex::decode).transpose();
    let Ok(data) = data else { return json!({"ok":false,"err":"bad request: data is not hex"}) };
    let data = data.unwrap_or_default();
    let setup = ControlSetup {
        request_type: num("rt") as u8,
        request: num("req") as u8,
        value: num("val") as u16,
        index: num("idx") as u16,
    };
    rom.tick();
    let r: Result<Option<Vec<u8>>, DeviceError> = match req.get("t").and_then(Value::as_str).unwrap_or("") {
        "info" => return json!({"ok":true,"info":rom.info()}),
        "ctrl_out" => rom.control_out(setup, &data).map(|_| None),
        "ctrl_in" => rom.control_in(setup, num("len") as u16).map(Some),
        "bulk_out" => rom.bulk_out(num("ep") as u8, &data).map(|_| None),
        "bulk_in" => rom.bulk_in(num("ep") as u8, num("len").max(1) as usize).map(Some),
        t => return json!({"ok":false,"err":format!("bad request: unknown transfer kind '{t}'")}),
    };
    match r {
        Ok(None) => json!({"ok":true}),
        Ok(Some(d)) => json!({"ok":true,"data":hex::encode(d)}),
        Err(DeviceError::Stall) => json!({"ok":false,"err":"stall"}),
        Err(DeviceError::NoAnswer) => json!({"ok":false,"err":"timeout"}),
        Err(DeviceError::Disconnected) => json!({"ok":false,"err":"disconnected"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc;
    use std::time::Duration;

    fn opts() -> Options {
        Options { soc: "rk3568".into(), addr: "127.0.0.1:0".into(), keep: false, fault: None }
    }

    /// What the handler saw, owned.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Session,
        Received { number: usize, index: u16, body: Vec<u8>, transfers: usize, crc: u16 },
        Verdict(Verdict),
        Failed(String),
    }

    /// A client: sends a line, returns the answer line ("" once the server
    /// closed the connection).
    fn raw_client(addr: SocketAddr) -> impl FnMut(&str) -> String {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        move |line: &str| {
            let _ = writeln!(w, "{line}");
            let mut a = String::new();
            let _ = r.read_line(&mut a);
            a
        }
    }

    fn client(addr: SocketAddr) -> impl FnMut(&str) -> Value {
        let mut raw = raw_client(addr);
        move |line: &str| serde_json::from_str(&raw(line)).unwrap()
    }

    const GOOD: &str = r#"{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"00010d2e"}"#;

    #[test]
    fn one_session_over_tcp_with_the_worked_example() {
        let (tx, rx) = mpsc::channel();
        let seen = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                serve(&opts(), &|e| {
                    match e {
                        Event::Listening { addr } => tx.send(addr).unwrap(),
                        Event::Session { .. } => seen.lock().unwrap().push(Seen::Session),
                        Event::Received { number, index, body, transfers, crc, .. } => seen
                            .lock()
                            .unwrap()
                            .push(Seen::Received { number, index, body: body.to_vec(), transfers, crc }),
                        Event::Verdict { verdict, .. } => seen.lock().unwrap().push(Seen::Verdict(verdict)),
                        Event::SessionFailed { error, .. } => seen.lock().unwrap().push(Seen::Failed(error)),
                    }
                    Ok(())
                })
            });
            let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let mut ask = client(addr);
            // The fact sheet's RK3568 maskrom: Rockchip's VID, PID 0x350a.
            let info = ask(r#"{"t":"info"}"#);
            assert_eq!(
                (info["info"]["vid"].as_u64(), info["info"]["pid"].as_u64()),
                (Some(0x2207), Some(0x350a))
            );
            // Sheet §1.2's worked example: 00 01 with CRC 0d 2e; then a flipped bit.
            assert_eq!(ask(GOOD)["ok"], true);
            let bad = ask(r#"{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"00010d2f"}"#);
            assert_eq!(bad["err"], "stall");
            assert!(ask("{")["err"].as_str().unwrap().starts_with("bad request"));
            assert!(ask(r#"{"t":"ctrl_out","data":"zz"}"#)["err"].as_str().unwrap().contains("not hex"));
            drop(ask);
            server.join().unwrap().unwrap();
        });
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen[0], Seen::Session);
        assert_eq!(
            seen[1],
            Seen::Received { number: 0, index: 0x471, body: vec![0, 1], transfers: 1, crc: 0x0d2e }
        );
        let Seen::Verdict(v) = &seen[2] else { panic!("{seen:?}") };
        assert!(!v.started() && v.text().contains("CRC mismatch"), "{v:?}");
    }

    #[test]
    fn keep_serves_clients_at_once_and_numbers_stages_across_them() {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let (num_tx, num_rx) = mpsc::channel();
        let o = Options { keep: true, ..opts() };
        let (tx, done_tx, num_tx) = (Mutex::new(tx), Mutex::new(done_tx), Mutex::new(num_tx));
        // A keep server never returns: it runs on a thread of its own until
        // the test process ends.
        std::thread::spawn(move || {
            serve(&o, &|e| {
                match e {
                    Event::Listening { addr } => tx.lock().unwrap().send(addr).unwrap(),
                    Event::Received { number, .. } => num_tx.lock().unwrap().send(number).unwrap(),
                    Event::Verdict { .. } => done_tx.lock().unwrap().send(()).unwrap(),
                    _ => {}
                }
                Ok(())
            })
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // The first client idles while the second is served.
        let mut idle = client(addr);
        assert_eq!(idle(r#"{"t":"info"}"#)["ok"], true);
        let mut busy = client(addr);
        assert_eq!(busy(GOOD)["ok"], true);
        drop(busy);
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // A fresh ROM for each session: the idle one still takes a first stage.
        assert_eq!(idle(GOOD)["ok"], true);
        drop(idle);
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let numbers: Vec<usize> = num_rx.try_iter().collect();
        assert_eq!(numbers, [0, 1]);
    }

    #[test]
    fn a_bad_soc_or_fault_is_refused_before_listening_and_handler_errors_end_the_session() {
        let heard = Mutex::new(0);
        let count = |_: Event<'_>| -> Result<(), HandlerError> {
            *heard.lock().unwrap() += 1;
            Ok(())
        };
        let e = serve(&Options { soc: "rk9999".into(), ..opts() }, &count).unwrap_err();
        assert!(matches!(e, ServeError::Sim(SimError::UnknownSoc { .. })), "{e}");
        let e = serve(&Options { fault: Some("gremlins".into()), ..opts() }, &count).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput);
        assert_eq!(*heard.lock().unwrap(), 0);
        let e = serve(&Options { addr: "no-such-host:x".into(), ..opts() }, &count).unwrap_err();
        assert!(matches!(e, ServeError::Bind { .. }) && e.to_string().starts_with("--tcp no-such-host:x"));
        // A handler that cannot save ends the (only) session with its error.
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                serve(&opts(), &|e| match e {
                    Event::Listening { addr } => {
                        tx.lock().unwrap().send(addr).unwrap();
                        Ok(())
                    }
                    Event::Received { .. } => Err("disk full".into()),
                    _ => Ok(()),
                })
            });
            let mut ask = raw_client(rx.recv_timeout(Duration::from_secs(10)).unwrap());
            assert_eq!(ask(GOOD), "", "the session ended without an answer");
            let e = server.join().unwrap().unwrap_err();
            assert!(matches!(e, ServeError::Handler(_)) && e.to_string() == "disk full", "{e}");
            assert_eq!(e.class(), FailureClass::Io);
        });
    }
}
