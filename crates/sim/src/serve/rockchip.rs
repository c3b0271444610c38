//! `racklet-flash sim <rockchip board>`: the virtual maskrom is a USB
//! device, so outside the process it is served over TCP as JSON Lines in
//! the transcript format. Each request line is a transfer (`ctrl_out`,
//! `ctrl_in`, `bulk_out`, `bulk_in` with `len`, or `info`); each answer
//! line is `{"ok":true,...}` with `data` (hex) for IN transfers, or
//! `{"ok":false,"err":...}` with `stall`, `timeout`, `disconnected` or
//! `bad request: ...`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use racklet_link::{Classify, ControlSetup, FailureClass};
use serde_json::{Value, json};

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
    /// Serve more than one session (a fresh ROM each).
    pub keep: bool,
    /// Write every stage received to `stage<N>-<index>.bin` here.
    pub save: Option<PathBuf>,
    /// A fault to inject, by the ROM's own names.
    pub fault: Option<String>,
}

/// What happened, for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server listens (announced once the SoC and fault are known good).
    Listening { addr: SocketAddr },
    /// A client connected.
    Session { peer: SocketAddr },
    /// The ROM accepted a stage.
    Received { index: u16, bytes: usize, transfers: usize, crc: u16 },
    /// The client left; the ROM's verdict on the session.
    Verdict(Verdict),
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--tcp {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("{op}: {source}")]
    Io { op: &'static str, source: std::io::Error },
    #[error("writing {}: {source}", path.display())]
    Save { path: PathBuf, source: std::io::Error },
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::Bind { .. } => FailureClass::BadInput,
            ServeError::Sim(e) => e.class(),
            ServeError::Io { .. } | ServeError::Save { .. } => FailureClass::Io,
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

fn rom(opts: &Options) -> Result<RockchipRom, SimError> {
    RockchipRom::for_soc(&opts.soc, &Scenario { port_path: PORT_PATH.into(), fault: opts.fault.clone() })
}

/// Serves the virtual maskrom of `opts.soc` until the first session ends
/// (every session with `keep`), reporting through `on`.
pub fn serve(opts: &Options, on: &mut dyn FnMut(Event)) -> Result<(), ServeError> {
    let listener = TcpListener::bind(&opts.addr)
        .map_err(|source| ServeError::Bind { addr: opts.addr.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Io { op: "local address", source })?;
    // Check the SoC and the fault name before announcing the address.
    rom(opts)?;
    on(Event::Listening { addr });
    loop {
        let (stream, peer) =
            listener.accept().map_err(|source| ServeError::Io { op: "accepting", source })?;
        on(Event::Session { peer });
        let mut rom = rom(opts)?;
        let mut w =
            stream.try_clone().map_err(|source| ServeError::Io { op: "cloning the socket", source })?;
        let mut seen = 0;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let reply = serve_one(&mut rom, &line);
            while seen < rom.received.len() {
                let r = &rom.received[seen];
                on(Event::Received {
                    index: r.index,
                    bytes: r.body.len(),
                    transfers: r.transfers,
                    crc: r.crc,
                });
                if let Some(dir) = &opts.save {
                    let path = dir.join(format!("stage{seen}-{:x}.bin", r.index));
                    std::fs::write(&path, &r.body).map_err(|source| ServeError::Save { path, source })?;
                }
                seen += 1;
            }
            if writeln!(w, "{reply}").is_err() {
                break;
            }
        }
        on(Event::Verdict(rom.verdict()));
        if !opts.keep {
            return Ok(());
        }
    }
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
    use std::io::BufRead;
    use std::net::TcpStream;
    use std::sync::mpsc;
    use std::time::Duration;

    fn opts(save: Option<PathBuf>) -> Options {
        Options { soc: "rk3568".into(), addr: "127.0.0.1:0".into(), keep: false, save, fault: None }
    }

    #[test]
    fn one_session_over_tcp_with_the_worked_example() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(Some(dir.path().to_path_buf()));
        let (tx, rx) = mpsc::channel();
        let server = std::thread::spawn(move || serve(&o, &mut |e| tx.send(e).unwrap()));
        let Ok(Event::Listening { addr }) = rx.recv_timeout(Duration::from_secs(10)) else {
            panic!("not listening")
        };
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut ask = |line: &str| -> Value {
            writeln!(w, "{line}").unwrap();
            let mut a = String::new();
            r.read_line(&mut a).unwrap();
            serde_json::from_str(&a).unwrap()
        };
        // The fact sheet's RK3568 maskrom: Rockchip's VID, PID 0x350a.
        let info = ask(r#"{"t":"info"}"#);
        assert_eq!(
            (info["info"]["vid"].as_u64(), info["info"]["pid"].as_u64()),
            (Some(0x2207), Some(0x350a))
        );
        // Sheet §1.2's worked example: 00 01 with CRC 0d 2e; then a flipped bit.
        assert_eq!(
            ask(r#"{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"00010d2e"}"#)["ok"],
            true
        );
        let bad = ask(r#"{"t":"ctrl_out","rt":64,"req":12,"val":0,"idx":1137,"data":"00010d2f"}"#);
        assert_eq!(bad["err"], "stall");
        assert!(ask("{")["err"].as_str().unwrap().starts_with("bad request"));
        assert!(ask(r#"{"t":"ctrl_out","data":"zz"}"#)["err"].as_str().unwrap().contains("not hex"));
        drop((w, r));
        server.join().unwrap().unwrap();
        let events: Vec<Event> = rx.try_iter().collect();
        assert!(matches!(events[0], Event::Session { .. }), "{events:?}");
        assert_eq!(events[1], Event::Received { index: 0x471, bytes: 2, transfers: 1, crc: 0x0d2e });
        let Event::Verdict(v) = &events[2] else { panic!("{events:?}") };
        assert!(!v.started() && v.text().contains("CRC mismatch"), "{v:?}");
        assert_eq!(std::fs::read(dir.path().join("stage0-471.bin")).unwrap(), [0, 1]);
    }

    #[test]
    fn a_bad_soc_or_fault_is_refused_before_listening() {
        let mut heard = Vec::new();
        let e = serve(&Options { soc: "rk9999".into(), ..opts(None) }, &mut |e| heard.push(e)).unwrap_err();
        assert!(matches!(e, ServeError::Sim(SimError::UnknownSoc { .. })), "{e}");
        let e = serve(&Options { fault: Some("gremlins".into()), ..opts(None) }, &mut |e| heard.push(e))
            .unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput);
        assert!(heard.is_empty());
        let e = serve(&Options { addr: "no-such-host:x".into(), ..opts(None) }, &mut |_| {}).unwrap_err();
        assert!(matches!(e, ServeError::Bind { .. }) && e.to_string().starts_with("--tcp no-such-host:x"));
    }
}
