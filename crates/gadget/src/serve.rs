//! Serving a [`UsbDevice`] model as a real gadget through FunctionFS.
//!
//! Threads: `ep0` (control requests, FunctionFS events), one per bulk OUT
//! endpoint (packets to `bulk_out`), one per bulk IN endpoint (polls
//! `bulk_in` and writes what the model has to say), and the supervisor
//! (the caller's thread) that binds the UDC, follows the model's
//! re-enumerations (unbind, rewrite identity, rebind) and fires the
//! unplug fault.
//!
//! How FunctionFS expresses each answer (Documentation/usb/functionfs.rst
//! and drivers/usb/gadget/function/f_fs.c): after a SETUP event, a control
//! IN is answered by writing its data to `ep0` and refused by reading
//! `ep0`; a control OUT's data stage is read from `ep0` (a zero-length read
//! acknowledges one without data) and it is refused by writing `ep0`. An
//! endpoint file is halted by an I/O in the wrong direction.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use racklet_link::usb::EndpointKind;
use racklet_link::{InterfaceInfo, UsbInfo};
use racklet_sim::usb::{DeviceError, SharedDevice, lock};

use crate::configfs::{ConfigfsError, Gadget};
use crate::ffs::{self, EVENT_SIZE, EpFile, Event};

/// A log line sink (the library never prints).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum GadgetError {
    #[error(transparent)]
    Configfs(#[from] ConfigfsError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting functionfs {instance} on {path}: {message}")]
    Mount { instance: String, path: PathBuf, message: String },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> GadgetError + 'a {
    move |source| GadgetError::Io { op, path: path.to_path_buf(), source }
}

/// What the supervisor does.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Gadget directory name under configfs (also the FunctionFS instance prefix).
    pub name: String,
    /// UDC to bind to, e.g. `dummy_udc.0`.
    pub udc: String,
    /// configfs gadget root (normally [`crate::configfs::GADGET_ROOT`]).
    pub configfs_root: PathBuf,
    /// Where FunctionFS instances are mounted (normally `/dev/usb-ffs`).
    pub ffs_root: PathBuf,
    /// Plug the gadget in only after this long (a board that appears late).
    pub bind_delay: Duration,
    /// Fault: unplug (unbind the UDC, for good) once the model has received
    /// this many bytes (control OUT data and bulk OUT together).
    pub unplug_after: Option<u64>,
    /// Stop when this file exists.
    pub stop_file: Option<PathBuf>,
    /// Stop after this long in any case.
    pub max_time: Duration,
}

/// What happened while serving.
#[derive(Debug, Clone, Default)]
pub struct ServeReport {
    /// Bytes the model received (control OUT data + bulk OUT).
    pub received: u64,
    /// How many times the gadget was bound (1 + re-enumerations).
    pub binds: u32,
    /// The unplug fault fired.
    pub unplugged: bool,
}

struct Shared {
    dev: SharedDevice,
    gadget: Mutex<Gadget>,
    /// The model's address while the gadget is bound for it.
    bound_address: Mutex<Option<u8>>,
    /// FunctionFS instance generation; threads of an older one stop.
    generation: AtomicU64,
    /// The host configured the function (ENABLE seen, no DISABLE since).
    enabled: AtomicBool,
    received: AtomicU64,
    unplug_after: Option<u64>,
    unplugged: AtomicBool,
    /// Bulk IN answers taken from the model and not yet read by the host.
    /// A model that leaves the bus after its last answer (fastboot's
    /// `continue`, `reboot`) is unbound only once that answer is out, as a
    /// real device detaches after the request completed (U-Boot:
    /// `do_exit_on_complete`).
    in_flight: std::sync::atomic::AtomicUsize,
    /// When the last bulk IN write completed (ms since `epoch`): the host
    /// side of dummy_hcd hands the data to the reader a moment after the
    /// gadget's request completes, so an unbind right then can still cut
    /// the answer off; the supervisor waits [`DETACH_AFTER_IN`] past it, as
    /// a real device's pull-up takes its time to drop.
    last_in: AtomicU64,
    epoch: Instant,
    log: Log,
}

/// How long after the last bulk IN answer left a departing model is
/// unbound.
const DETACH_AFTER_IN: Duration = Duration::from_millis(50);

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn log(&self, s: String) {
        (self.log)(s)
    }

    /// True while the model is attached with the address it was bound with.
    fn attached(&self) -> bool {
        let bound = *guard(&self.bound_address);
        let now = lock(&self.dev).info().map(|i| i.address);
        bound.is_some() && bound == now && !self.unplugged.load(Ordering::SeqCst)
    }

    /// Counts received bytes and fires the unplug fault when due.
    fn count(&self, n: usize) {
        let total = self.received.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        if let Some(limit) = self.unplug_after
            && total >= limit
            && !self.unplugged.swap(true, Ordering::SeqCst)
        {
            let r = guard(&self.gadget).unbind();
            self.log(format!("fault: unplugged after {total} bytes (UDC unbound): {r:?}"));
        }
    }
}

/// Bulk IN: how long to wait before asking the model again when it had
/// nothing to say. The model answers only when asked; this is the
/// gadget's stand-in for the host's IN tokens.
const IN_POLL: Duration = Duration::from_millis(1);
/// Bulk IN: the most the model may answer per poll. What the host does
/// not take stays queued in the endpoint, as on a real controller.
const IN_POLL_MAX: usize = 64 * 1024;
/// Bulk OUT read size: one high-speed packet. A larger read would not
/// complete until a short packet, so a transfer that ends on a packet
/// boundary would never reach the model (dummy_hcd runs at high speed).
const OUT_READ: usize = 512;
/// How long the supervisor sleeps between looks at the model.
const SUPERVISE_EVERY: Duration = Duration::from_millis(5);
/// A control request the model does not answer is held this long (the host
/// times out meanwhile) and then stalled, so `ep0` is free again.
const NO_ANSWER_HOLD: Duration = Duration::from_secs(5);

fn stall_in(ep0: &mut File) {
    // Reading ep0 while an IN request is pending stalls it.
    let _ = ep0.read(&mut [0u8; 1]);
}

fn stall_out(ep0: &mut File) {
    // Writing ep0 while an OUT request is pending stalls it.
    let _ = ep0.write(&[]);
}

fn ep0_loop(mut ep0: File, sh: Arc<Shared>, generation: u64) {
    let mut buf = [0u8; EVENT_SIZE * 4];
    // A refusal the model made after a data stage, not yet told to the host.
    let mut late_refusal = false;
    while sh.generation.load(Ordering::SeqCst) == generation {
        let n = match ep0.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                sh.log(format!("ep0: read: {e}"));
                // The instance is going away or the host aborted a request; look again shortly.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        for chunk in buf[..n].chunks_exact(EVENT_SIZE) {
            let ev = ffs::parse_event(chunk.try_into().expect("chunks_exact"));
            match ev {
                Event::Enable => {
                    sh.enabled.store(true, Ordering::SeqCst);
                    sh.log("ep0: enabled by the host".into());
                }
                Event::Disable | Event::Unbind => {
                    sh.enabled.store(false, Ordering::SeqCst);
                    sh.log(format!("ep0: {ev:?}"));
                }
                Event::Setup { setup, length } => {
                    late_refusal = setup_request(&mut ep0, &sh, setup, length, late_refusal)
                }
                other => sh.log(format!("ep0: {other:?}")),
            }
        }
    }
}

/// Answers one control request. Returns true when the model refused a
/// control OUT after its data stage: FunctionFS has acknowledged that
/// transfer already, so the refusal is told to the host by stalling the
/// next control request (`late_refusal`).
fn setup_request(
    ep0: &mut File,
    sh: &Shared,
    setup: racklet_link::ControlSetup,
    length: u16,
    late_refusal: bool,
) -> bool {
    let attached = sh.attached();
    if late_refusal {
        sh.log(format!(
            "ep0: request 0x{:02x} stalled: the model refused the previous data stage",
            setup.request
        ));
        if setup.is_in() {
            stall_in(ep0);
        } else {
            stall_out(ep0);
        }
        return false;
    }
    if setup.is_in() {
        let r = if attached {
            let mut d = lock(&sh.dev);
            d.tick();
            d.control_in(setup, length)
        } else {
            Err(DeviceError::Disconnected)
        };
        match r {
            Ok(mut data) => {
                data.truncate(length as usize);
                if let Err(e) = ep0.write(&data) {
                    sh.log(format!("ep0: answering request 0x{:02x}: {e}", setup.request));
                }
            }
            Err(DeviceError::NoAnswer) => {
                std::thread::sleep(NO_ANSWER_HOLD);
                stall_in(ep0);
            }
            Err(e) => {
                sh.log(format!("ep0: control IN 0x{:02x} refused ({e:?})", setup.request));
                stall_in(ep0);
            }
        }
        return false;
    }
    if !attached {
        stall_out(ep0);
        return false;
    }
    let mut data = vec![0u8; length as usize];
    let mut got = 0;
    if length > 0 {
        match ep0.read(&mut data) {
            Ok(n) => got = n,
            Err(e) => {
                sh.log(format!("ep0: data stage of request 0x{:02x}: {e}", setup.request));
                return false;
            }
        }
    }
    let r = {
        let mut d = lock(&sh.dev);
        d.tick();
        d.control_out(setup, &data[..got])
    };
    sh.count(got);
    if length == 0 {
        match r {
            // A zero-length read is the status stage: acknowledge.
            Ok(()) => {
                let _ = ep0.read(&mut []);
            }
            Err(DeviceError::NoAnswer) => {
                std::thread::sleep(NO_ANSWER_HOLD);
                stall_out(ep0);
            }
            Err(_) => stall_out(ep0),
        }
        false
    } else if let Err(e) = r {
        // FunctionFS completes the status stage of a control OUT with data
        // itself; the refusal reaches the host on its next control request.
        sh.log(format!(
            "ep0: the model refused control OUT 0x{:02x} after its data stage ({e:?}); the next control request will stall",
            setup.request
        ));
        true
    } else {
        false
    }
}

fn bulk_out_loop(mut f: File, ep: EpFile, sh: Arc<Shared>, generation: u64) {
    let mut buf = vec![0u8; OUT_READ];
    let mut last_err = String::new();
    while sh.generation.load(Ordering::SeqCst) == generation {
        match f.read(&mut buf) {
            Ok(n) => {
                if !sh.attached() {
                    continue;
                }
                let r = {
                    let mut d = lock(&sh.dev);
                    d.tick();
                    d.bulk_out(ep.address, &buf[..n])
                };
                sh.count(n);
                if let Err(e) = r {
                    sh.log(format!("bulk OUT 0x{:02x}: the model refused {n} bytes ({e:?})", ep.address));
                    match e {
                        // Writing an OUT endpoint file halts the endpoint.
                        DeviceError::Stall => {
                            let _ = f.write(&[0]);
                        }
                        // A model that does not take data NAKs: read nothing for a while,
                        // so the host's transfer times out.
                        DeviceError::NoAnswer => std::thread::sleep(NO_ANSWER_HOLD),
                        DeviceError::Disconnected => {}
                    }
                }
            }
            Err(e) => {
                let s = e.to_string();
                if s != last_err {
                    sh.log(format!("bulk OUT 0x{:02x}: {s}", ep.address));
                    last_err = s;
                }
                // The endpoint is disabled (unplugged); the next read waits for it to be enabled.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn bulk_in_loop(mut f: File, ep: EpFile, sh: Arc<Shared>, generation: u64) {
    while sh.generation.load(Ordering::SeqCst) == generation {
        if !sh.enabled.load(Ordering::SeqCst) || !sh.attached() {
            std::thread::sleep(IN_POLL);
            continue;
        }
        let r = {
            let mut d = lock(&sh.dev);
            d.tick();
            // Counted under the model's lock, so the supervisor never sees
            // the model gone without seeing this answer in flight.
            sh.in_flight.fetch_add(1, Ordering::SeqCst);
            d.bulk_in(ep.address, IN_POLL_MAX)
        };
        if !matches!(&r, Ok(d) if !d.is_empty()) {
            sh.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        match r {
            Ok(data) if !data.is_empty() => {
                // FunctionFS completes a synchronous write once the host read it.
                let w = f.write_all(&data);
                sh.last_in.store(sh.epoch.elapsed().as_millis() as u64, Ordering::SeqCst);
                sh.in_flight.fetch_sub(1, Ordering::SeqCst);
                if let Err(e) = w {
                    sh.log(format!("bulk IN 0x{:02x}: {} bytes lost: {e}", ep.address, data.len()));
                }
            }
            Ok(_) | Err(DeviceError::NoAnswer) | Err(DeviceError::Disconnected) => {
                std::thread::sleep(IN_POLL)
            }
            Err(DeviceError::Stall) => {
                // Reading an IN endpoint file halts the endpoint.
                let _ = f.read(&mut [0u8; 1]);
                std::thread::sleep(IN_POLL);
            }
        }
    }
}

fn mount_ffs(instance: &str, path: &Path) -> Result<(), GadgetError> {
    std::fs::create_dir_all(path).map_err(io_err("creating", path))?;
    let out = std::process::Command::new("mount")
        .args(["-t", "functionfs", instance])
        .arg(path)
        .output()
        .map_err(io_err("running mount for", path))?;
    if !out.status.success() {
        return Err(GadgetError::Mount {
            instance: instance.into(),
            path: path.into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Creates FunctionFS instance `generation` for `interfaces`, writes its
/// descriptors and starts its threads.
fn start_instance(
    sh: &Arc<Shared>,
    opts: &ServeOptions,
    generation: u64,
    interfaces: &[InterfaceInfo],
) -> Result<String, GadgetError> {
    let instance = format!("{}{generation}", opts.name);
    guard(&sh.gadget).add_function("ffs", &instance)?;
    let mnt = opts.ffs_root.join(&instance);
    mount_ffs(&instance, &mnt)?;
    let ep0_path = mnt.join("ep0");
    let mut ep0 =
        OpenOptions::new().read(true).write(true).open(&ep0_path).map_err(io_err("opening", &ep0_path))?;
    ep0.write_all(&ffs::descriptors(interfaces)).map_err(io_err("writing descriptors to", &ep0_path))?;
    ep0.write_all(&ffs::strings()).map_err(io_err("writing strings to", &ep0_path))?;
    let s = sh.clone();
    std::thread::spawn(move || ep0_loop(ep0, s, generation));
    for ep in ffs::endpoint_files(interfaces) {
        if ep.kind != EndpointKind::Bulk {
            sh.log(format!("endpoint 0x{:02x} ({:?}) is described but not served", ep.address, ep.kind));
            continue;
        }
        let p = mnt.join(ep.name());
        let f = OpenOptions::new().read(true).write(true).open(&p).map_err(io_err("opening", &p))?;
        let s = sh.clone();
        if ep.address & 0x80 != 0 {
            std::thread::spawn(move || bulk_in_loop(f, ep, s, generation));
        } else {
            std::thread::spawn(move || bulk_out_loop(f, ep, s, generation));
        }
    }
    Ok(instance)
}

/// The parts of a device's identity that live in its descriptors.
fn identity(i: &UsbInfo) -> (u16, u16, u16, u16, Option<String>, Option<String>, Option<String>) {
    (i.vid, i.pid, i.bcd_usb, i.bcd_device, i.manufacturer.clone(), i.product.clone(), i.serial.clone())
}

/// Serves `dev` until the stop file appears or `max_time` passes.
pub fn serve(dev: SharedDevice, opts: &ServeOptions, log: Log) -> Result<ServeReport, GadgetError> {
    let gadget = Gadget::create(&opts.configfs_root, &opts.name, &opts.udc)?;
    let sh = Arc::new(Shared {
        dev,
        gadget: Mutex::new(gadget),
        bound_address: Mutex::new(None),
        generation: AtomicU64::new(0),
        enabled: AtomicBool::new(false),
        received: AtomicU64::new(0),
        unplug_after: opts.unplug_after,
        unplugged: AtomicBool::new(false),
        in_flight: std::sync::atomic::AtomicUsize::new(0),
        last_in: AtomicU64::new(0),
        epoch: Instant::now(),
        log,
    });
    let start = Instant::now();
    let mut report = ServeReport::default();
    let mut current: Option<(UsbInfo, String)> = None; // identity written, instance name
    let result = loop {
        if opts.stop_file.as_ref().is_some_and(|p| p.exists()) || start.elapsed() >= opts.max_time {
            break Ok(());
        }
        if sh.unplugged.load(Ordering::SeqCst) || start.elapsed() < opts.bind_delay {
            std::thread::sleep(SUPERVISE_EVERY);
            continue;
        }
        let info = {
            let mut d = lock(&sh.dev);
            d.tick();
            d.info()
        };
        let bound = *guard(&sh.bound_address);
        // The last answer first: unbinding now (the model left, or already
        // came back as its next stage, which a busy host may let happen
        // before it read that answer) would cut it off.
        let moved = bound.is_some() && info.as_ref().map(|i| i.address) != bound;
        let since_in =
            sh.epoch.elapsed().saturating_sub(Duration::from_millis(sh.last_in.load(Ordering::SeqCst)));
        if moved && (sh.in_flight.load(Ordering::SeqCst) > 0 || since_in < DETACH_AFTER_IN) {
            std::thread::sleep(SUPERVISE_EVERY);
            continue;
        }
        match info {
            None if bound.is_some() => {
                *guard(&sh.bound_address) = None;
                sh.enabled.store(false, Ordering::SeqCst);
                if let Err(e) = guard(&sh.gadget).unbind() {
                    break Err(e.into());
                }
                sh.log("the model detached: UDC unbound".into());
            }
            Some(i) if bound != Some(i.address) => {
                let step = (|| -> Result<(), GadgetError> {
                    let mut g = guard(&sh.gadget);
                    g.unbind()?;
                    sh.enabled.store(false, Ordering::SeqCst);
                    let same_ident = current.as_ref().is_some_and(|(c, _)| identity(c) == identity(&i));
                    if !same_ident {
                        g.set_identity(&i)?;
                    }
                    drop(g);
                    let same_intf = current.as_ref().is_some_and(|(c, _)| c.interfaces == i.interfaces);
                    let instance = if same_intf {
                        current.as_ref().map(|(_, n)| n.clone()).unwrap_or_default()
                    } else {
                        if let Some((_, old)) = &current {
                            guard(&sh.gadget).unlink_function("ffs", old)?;
                        }
                        let generation = sh.generation.fetch_add(1, Ordering::SeqCst) + 1;
                        start_instance(&sh, opts, generation, &i.interfaces)?
                    };
                    *guard(&sh.bound_address) = Some(i.address);
                    guard(&sh.gadget).bind()?;
                    sh.log(format!(
                        "bound {} (bcdDevice {:04x}, model address {}) to {} as {}",
                        i.id(),
                        i.bcd_device,
                        i.address,
                        opts.udc,
                        instance
                    ));
                    current = Some((i.clone(), instance));
                    Ok(())
                })();
                if let Err(e) = step {
                    break Err(e);
                }
                report.binds += 1;
            }
            _ => {}
        }
        std::thread::sleep(SUPERVISE_EVERY);
    };
    // Stop the threads' loops (they end at their next wake-up) and unplug.
    sh.generation.fetch_add(1, Ordering::SeqCst);
    let _ = guard(&sh.gadget).unbind();
    report.received = sh.received.load(Ordering::SeqCst);
    report.unplugged = sh.unplugged.load(Ordering::SeqCst);
    result.map(|()| report)
}
