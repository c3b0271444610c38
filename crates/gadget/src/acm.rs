//! The ACM function: a gadget the host sees as a CDC-ACM serial device
//! (`/dev/ttyACM*`), whose other end is `/dev/ttyGS<port_num>` in the
//! gadget.
//!
//! racklet-sim runs every serial ROM on a pseudo-terminal and publishes it
//! on a [`SimSerialBus`] (a CDC-ACM ROM re-enumerates by publishing a new
//! pty). [`serve_serial`] turns that into real USB: while the model
//! publishes a port, the ACM gadget is bound with that port's identity and
//! bytes are relayed between the pty and `ttyGS`; a new port is a
//! re-enumeration (unbind, new identity, rebind), a withdrawn port an
//! unplug.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use racklet_link::{SerialBus, SerialInfo, UsbInfo};
use racklet_sim::serial::SimSerialBus;
use serialport::{ClearBuffer, SerialPort, TTYPort};

use crate::configfs::{ConfigfsError, Gadget};
use crate::serve::{GadgetError, Log, ServeOptions, ServeReport};

/// An ACM gadget (created unbound).
pub struct AcmGadget {
    pub gadget: Gadget,
    /// The gadget side tty, e.g. `/dev/ttyGS0`.
    pub tty: PathBuf,
}

impl AcmGadget {
    /// Creates the gadget with an ACM function, not bound yet.
    pub fn create(root: &Path, name: &str, udc: &str) -> Result<Self, GadgetError> {
        let gadget = Gadget::create(root, name, udc)?;
        let f = gadget.add_function("acm", name)?;
        let p = f.join("port_num");
        let n = std::fs::read_to_string(&p).map_err(|source| ConfigfsError {
            op: "reading",
            path: p.clone(),
            source,
        })?;
        let tty = PathBuf::from(format!("/dev/ttyGS{}", n.trim()));
        Ok(AcmGadget { gadget, tty })
    }

    /// Opens the gadget side raw (8N1, no flow control), waiting up to
    /// `wait` for devtmpfs to create the node.
    pub fn open(&self, wait: Duration) -> Result<TTYPort, GadgetError> {
        let start = Instant::now();
        while !self.tty.exists() && start.elapsed() < wait {
            // devtmpfs creates the node asynchronously.
            std::thread::sleep(Duration::from_millis(10));
        }
        open_raw(&self.tty)
    }
}

fn open_raw(path: &Path) -> Result<TTYPort, GadgetError> {
    serialport::new(path.to_string_lossy(), 115200)
        .timeout(RELAY_READ)
        .open_native()
        .map_err(|e| GadgetError::Io { op: "opening", path: path.to_path_buf(), source: e.into() })
}

/// How long a relay read waits before looking at its stop flag again.
const RELAY_READ: Duration = Duration::from_millis(20);
/// How often the supervisor looks at the model's published ports.
const SUPERVISE_EVERY: Duration = Duration::from_millis(5);

/// The USB identity an ACM ROM's published port stands for.
pub fn identity(p: &SerialInfo) -> UsbInfo {
    UsbInfo {
        vid: p.vid.unwrap_or(0x1209),
        pid: p.pid.unwrap_or(0x0002),
        bcd_usb: 0x0200,
        bcd_device: 0x0100,
        manufacturer: p.manufacturer.clone(),
        product: p.product.clone(),
        serial: p.serial.clone(),
        ..Default::default()
    }
}

struct Relay {
    generation: Arc<AtomicU64>,
    /// Bytes from the host to the model.
    received: Arc<AtomicU64>,
    unplug_after: Option<u64>,
    unplug_now: Arc<AtomicBool>,
}

/// Copies `from` to `to` until the generation changes or `from` fails.
fn pump(mut from: TTYPort, mut to: TTYPort, r: Arc<Relay>, mine: u64, count: bool, log: Log) {
    let mut buf = [0u8; 4096];
    while r.generation.load(Ordering::SeqCst) == mine && !r.unplug_now.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => std::thread::sleep(RELAY_READ),
            Ok(n) => {
                if count {
                    let total = r.received.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                    if r.unplug_after.is_some_and(|l| total >= l) {
                        r.unplug_now.store(true, Ordering::SeqCst);
                        return;
                    }
                }
                if let Err(e) = to.write_all(&buf[..n]) {
                    log(format!("relay: {n} bytes lost: {e}"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => {
                // EIO: the model closed its pty (its session ended), or the host side went away.
                log(format!("relay: {e}"));
                std::thread::sleep(RELAY_READ);
                if r.generation.load(Ordering::SeqCst) != mine {
                    return;
                }
            }
        }
    }
}

/// Serves the serial ROM published on `bus` as an ACM gadget, until the
/// stop file appears or `max_time` passes.
pub fn serve_serial(bus: SimSerialBus, opts: &ServeOptions, log: Log) -> Result<ServeReport, GadgetError> {
    let mut g = AcmGadget::create(&opts.configfs_root, &opts.name, &opts.udc)?;
    let relay = Arc::new(Relay {
        generation: Arc::new(AtomicU64::new(0)),
        received: Arc::new(AtomicU64::new(0)),
        unplug_after: opts.unplug_after,
        unplug_now: Arc::new(AtomicBool::new(false)),
    });
    let start = Instant::now();
    let mut report = ServeReport::default();
    let mut current: Option<String> = None;
    let mut relays: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let result = loop {
        if opts.stop_file.as_ref().is_some_and(|p| p.exists()) || start.elapsed() >= opts.max_time {
            break Ok(());
        }
        if relay.unplug_now.load(Ordering::SeqCst) && !report.unplugged {
            report.unplugged = true;
            relay.generation.fetch_add(1, Ordering::SeqCst);
            let r = g.gadget.unbind();
            log(format!(
                "fault: unplugged after {} bytes (UDC unbound): {r:?}",
                relay.received.load(Ordering::SeqCst)
            ));
        }
        if report.unplugged || start.elapsed() < opts.bind_delay {
            std::thread::sleep(SUPERVISE_EVERY);
            continue;
        }
        let port = match bus.ports() {
            Ok(p) => p.into_iter().next(),
            Err(e) => {
                break Err(GadgetError::Io {
                    op: "listing",
                    path: "the model's ports".into(),
                    source: std::io::Error::other(e.to_string()),
                });
            }
        };
        let path = port.as_ref().map(|p| p.path.clone());
        if path != current {
            let mine = relay.generation.fetch_add(1, Ordering::SeqCst) + 1;
            let step = (|| -> Result<(), GadgetError> {
                g.gadget.unbind()?;
                // The last enumeration's relays stop within one read timeout;
                // none may take bytes meant for the next one.
                for r in relays.drain(..) {
                    let _ = r.join();
                }
                let Some(p) = &port else {
                    log("the model withdrew its port: UDC unbound".into());
                    return Ok(());
                };
                let id = identity(p);
                g.gadget.set_identity(&id)?;
                let model = open_raw(Path::new(&p.path))?;
                // A fresh open per enumeration: u_serial hangs the tty up on
                // disconnect. The old relays are joined above, so the
                // exclusive lock serialport takes is free again.
                let gs = g.open(Duration::from_secs(5))?;
                // Whatever the last enumeration left in the gadget's buffers is gone with it.
                let _ = gs.clear(ClearBuffer::All);
                let (m2, g2) = (
                    model.try_clone_native().map_err(|e| GadgetError::Io {
                        op: "cloning",
                        path: p.path.clone().into(),
                        source: e.into(),
                    })?,
                    gs.try_clone_native().map_err(|e| GadgetError::Io {
                        op: "cloning",
                        path: g.tty.clone(),
                        source: e.into(),
                    })?,
                );
                let (r1, r2, l1, l2) = (relay.clone(), relay.clone(), log.clone(), log.clone());
                relays.push(std::thread::spawn(move || pump(gs, model, r1, mine, true, l1)));
                relays.push(std::thread::spawn(move || pump(m2, g2, r2, mine, false, l2)));
                g.gadget.bind()?;
                log(format!(
                    "bound {} to {} for {} (gadget side {})",
                    id.id(),
                    opts.udc,
                    p.path,
                    g.tty.display()
                ));
                Ok(())
            })();
            if let Err(e) = step {
                break Err(e);
            }
            if port.is_some() {
                report.binds += 1;
            }
            current = path;
        }
        std::thread::sleep(SUPERVISE_EVERY);
    };
    relay.generation.fetch_add(1, Ordering::SeqCst);
    let _ = g.gadget.unbind();
    report.received = relay.received.load(Ordering::SeqCst);
    result.map(|()| report)
}
