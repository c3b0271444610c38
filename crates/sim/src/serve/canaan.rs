//! `racklet-flash sim <k230 board> --tcp ADDR`: the virtual K230 (its boot
//! ROM, and the kburn loader once one is started) served outside the
//! process as JSON Lines USB transfers, so that other host tools — PyPI
//! k230-flash through a pyusb stand-in (protocols/canaan/README.md) — can
//! drive the same virtual board racklet-flash does.
//!
//! One request per line, one answer per line:
//! - `{"t":"info"}` → `{"ok":true,"info":{…}}` (the device as the bus lists
//!   it: ids, bus address, port path, interfaces and endpoints), or
//!   `"info":null` while it is off the bus;
//! - `{"t":"ctrl_out","rt":…,"req":…,"val":…,"idx":…,"data":HEX}`,
//!   `{"t":"ctrl_in",…,"len":N}`, `{"t":"bulk_out","ep":…,"data":HEX}`,
//!   `{"t":"bulk_in","ep":…,"len":N}`, each with `"addr"`: the bus address
//!   the client opened (a transfer to an address the device no longer has
//!   is `disconnected`, as on a real bus after re-enumeration);
//! - answers `{"ok":true}` (with `"data":HEX` for IN), or
//!   `{"ok":false,"err":"stall"|"timeout"|"disconnected"|"bad request: …"}`.
//!
//! Time passes between requests (each one ticks the device), so a board
//! leaving the bus comes back after a few requests, as the in-process bus
//! models it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;

use racklet_link::{Classify, ControlSetup, FailureClass};
use serde_json::{Value, json};

use crate::canaan::{Fault, K230Rom, chip};
use crate::kburn::Kind;
use crate::rom::Verdict;
use crate::usb::{DeviceError, UsbDevice};

/// Where the virtual board stands when served.
const PORT_PATH: &str = "1-1";

/// What to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The board's name, for messages.
    pub board: String,
    /// Its SoC (`k230`, `k230d`).
    pub soc: String,
    /// The TCP address to listen on; `None`: refused (a USB ROM has no
    /// other form outside the process but a USB gadget).
    pub addr: Option<String>,
    /// The fault the virtual ROM injects.
    pub fault: Option<Fault>,
    /// `--sim-storage FILE` keeps `medium` (default the SD card).
    pub storage: Option<PathBuf>,
    pub medium: Option<String>,
    /// Serve every session, one after the other, on the same board.
    pub keep: bool,
}

/// What happened, for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Listening { addr: SocketAddr },
    Session { peer: SocketAddr },
    Verdict { peer: SocketAddr, verdict: Verdict },
}

/// Why the virtual K230 is not served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The SoC is not one of the family.
    #[error("there is no virtual K230 ROM for SoC '{soc}'")]
    UnknownSoc { soc: String },
    /// No `--tcp`: a USB ROM needs a transport.
    #[error(
        "{board} boots over USB: outside this process its virtual ROM is served as JSON Lines over TCP (--tcp ADDR) or as a USB gadget (racklet-gadget in the QEMU USB rig)"
    )]
    NeedsGadget { board: String, soc: String },
    #[error("--medium {given}: not a medium of the virtual K230 (emmc, sd, spi-nand, spi-nor, otp)")]
    UnknownMedium { given: String },
    #[error("--sim-storage: {0}")]
    Storage(#[from] crate::storage::MediumFileError),
    #[error("--tcp {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("{op}: {source}")]
    Io { op: &'static str, source: std::io::Error },
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::UnknownSoc { .. }
            | ServeError::UnknownMedium { .. }
            | ServeError::Storage(_)
            | ServeError::Bind { .. }
            // A missing --tcp is bad usage, as for every board `sim` cannot
            // serve without one.
            | ServeError::NeedsGadget { .. } => FailureClass::BadInput,
            ServeError::Io { .. } => FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::NeedsGadget { board, soc } => Some(format!(
                "`racklet-flash sim {board} --tcp 127.0.0.1:0`; in-process: `racklet-flash maskrom {board} payload.bin --simulate`; as a USB gadget in the rig: `racklet-gadget usb --model {soc}` (docs/usb-rig.md)"
            )),
            ServeError::Bind { .. } => Some("give a free local address, e.g. --tcp 127.0.0.1:0".into()),
            _ => None,
        }
    }
}

fn board(opts: &Options) -> Result<K230Rom, ServeError> {
    let chip = chip(&opts.soc).ok_or_else(|| ServeError::UnknownSoc { soc: opts.soc.clone() })?;
    let rom = K230Rom::new(chip, PORT_PATH).with_fault(opts.fault);
    let name = opts.medium.as_deref().unwrap_or("sd");
    let kind = Kind::from_name(name).ok_or_else(|| ServeError::UnknownMedium { given: name.to_string() })?;
    Ok(match &opts.storage {
        Some(p) => rom.with_storage(Some((kind, p)))?,
        None => rom,
    })
}

/// Serves the virtual K230 of `opts.soc` on `opts.addr`: the first session
/// (or, with `keep`, every session in turn, on the same board).
pub fn serve(opts: &Options, on: &dyn Fn(Event)) -> Result<(), ServeError> {
    let Some(addr) = &opts.addr else {
        // Check the SoC first: an unknown one is bad input either way.
        chip(&opts.soc).ok_or_else(|| ServeError::UnknownSoc { soc: opts.soc.clone() })?;
        return Err(ServeError::NeedsGadget { board: opts.board.clone(), soc: opts.soc.clone() });
    };
    let mut rom = board(opts)?;
    let listener =
        TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
    let local = listener.local_addr().map_err(|source| ServeError::Io { op: "local address", source })?;
    on(Event::Listening { addr: local });
    loop {
        let (stream, peer) =
            listener.accept().map_err(|source| ServeError::Io { op: "accepting", source })?;
        on(Event::Session { peer });
        session(&mut rom, stream)?;
        on(Event::Verdict { peer, verdict: rom.verdict() });
        if !opts.keep {
            return Ok(());
        }
    }
}

fn session(rom: &mut K230Rom, stream: TcpStream) -> Result<(), ServeError> {
    let mut w = stream.try_clone().map_err(|source| ServeError::Io { op: "cloning the socket", source })?;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = serve_one(rom, &line);
        if writeln!(w, "{reply}").is_err() {
            break;
        }
    }
    Ok(())
}

/// One request line, one answer.
pub fn serve_one(rom: &mut K230Rom, line: &str) -> Value {
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
    let t = req.get("t").and_then(Value::as_str).unwrap_or("");
    if t == "info" {
        return json!({"ok":true,"info":rom.info()});
    }
    // A handle to an address the device no longer has is dead.
    if let Some(addr) = req.get("addr").and_then(Value::as_u64)
        && rom.info().is_none_or(|i| i.address as u64 != addr)
    {
        return json!({"ok":false,"err":"disconnected"});
    }
    let r: Result<Option<Vec<u8>>, DeviceError> = match t {
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

    fn opts() -> Options {
        Options {
            board: "canmv-k230".into(),
            soc: "k230".into(),
            addr: None,
            fault: None,
            storage: None,
            medium: None,
            keep: false,
        }
    }

    #[test]
    fn without_tcp_it_says_how_to_reach_it() {
        let e = serve(&opts(), &|_| {}).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput, "a missing --tcp is bad usage");
        assert!(e.hint().unwrap().contains("--tcp 127.0.0.1:0"), "{e}");
        let e = serve(&Options { soc: "k210".into(), ..opts() }, &|_| {}).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput);
        let e = board(&Options { medium: Some("mmc".into()), ..opts() }).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput);
    }

    #[test]
    fn requests_answer_as_the_device_does() {
        let mut rom = board(&opts()).unwrap();
        let info = serve_one(&mut rom, r#"{"t":"info"}"#);
        assert_eq!(info["info"]["vid"], 0x29f1);
        let addr = info["info"]["address"].as_u64().unwrap();
        let r = serve_one(&mut rom, &format!(r#"{{"t":"ctrl_in","rt":192,"req":0,"len":32,"addr":{addr}}}"#));
        assert_eq!(r["data"], "4b323330");
        let r = serve_one(&mut rom, r#"{"t":"ctrl_in","rt":192,"req":0,"len":32,"addr":99}"#);
        assert_eq!(r["err"], "disconnected");
        assert_eq!(serve_one(&mut rom, "nonsense")["ok"], false);
    }
}
