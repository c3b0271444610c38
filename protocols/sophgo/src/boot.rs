//! The whole boot: find the ROM's port, serve each of its sessions, and
//! follow the board by USB port path from one enumeration to the next.
//!
//! Every `load_image` call of the ROM (or of a running BL2) is one USB
//! session: the port appears, the host sends the magic, the ACK names the
//! slice of fip.bin wanted, the host sends it, FLAG and BREAK, and the port
//! goes away. A cold boot is the probe, param1 (and a BLCP when there is
//! one) and BL2. The ROM tries each once (`get_number_of_retries()` is 1
//! over USB) and boots its strapped flash when one fails, so nothing on the
//! USB side says BL2 was accepted: the console does (`--monitor`), and so
//! does the vendor FSBL asking for param2. A vendor fip.bin (one with
//! param2) is served until U-Boot's download gadget appears or nothing
//! asks within `next_request_gap`, as the vendor `cv181x_rom_usb_download.py`
//! does.

use std::time::{Duration, Instant};

use racklet_image::Target;
use racklet_link::connect::id_list;
use racklet_link::{Connector, LinkError, Selector, SerialLink, UsbId};

use crate::console::{self, Console, Said};
use crate::plan::{Image, Plan};
use crate::report::{Report, Request, Stage};
use crate::session::{Loader, Options, SessionOutcome, SophgoError};

/// After a session, how long the old port may linger before a port at the
/// same place is taken to be the next enumeration (the vendor tool waits
/// 0.1 s, sg_boot 0.5 s, sheet §2.5).
pub const LINGER: Duration = Duration::from_millis(1000);

/// U-Boot's `cvi_utask` download gadget (sheet §1.1): the vendor tool stops
/// serving once it appears.
pub const UBOOT_PID: u16 = 0x1001;

/// USB vendor ids of common USB-UART bridges (FTDI, Silicon Labs CP210x,
/// WCH CH34x, Prolific): a tty of one of these is a console, not the ROM.
pub const UART_BRIDGE_VIDS: [u16; 4] = [0x0403, 0x10c4, 0x1a86, 0x067b];

fn link_err(what: &'static str) -> impl FnOnce(LinkError) -> SophgoError {
    move |source| SophgoError::Link { what: what.into(), source }
}

/// Boots `plan` on the board `target` through `conn`.
pub fn boot(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<Report, SophgoError> {
    boot_watching(conn, plan, target, opts, None)
}

/// The port went away under us (or was gone before we opened it).
fn gone(e: &LinkError) -> bool {
    matches!(e, LinkError::Disconnected { .. } | LinkError::NotFound { .. })
}

/// [`boot`], reading the board's UART console on `console` as it goes: the
/// ROM's and the FSBL's verdict on each stage (`BE.J.` versus a checksum
/// failure and `DL cancelled. Load flash.`).
pub fn boot_watching(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
    console: Option<&mut dyn SerialLink>,
) -> Result<Report, SophgoError> {
    for w in &plan.warnings {
        conn.progress.say(w.clone());
    }
    let (mut loader, main, fsbl) = match &plan.image {
        Image::Fip { bytes, info, .. } => {
            (Loader::boot(bytes.clone(), opts.clone())?, false, info.param2.is_some())
        }
        Image::Main { bytes } => (Loader::main(bytes.clone(), opts.clone()), true, false),
    };
    let fip_len = match &plan.image {
        Image::Fip { bytes, .. } => bytes.len(),
        Image::Main { bytes } => bytes.len(),
    };
    let mut console = console.map(Console::new);
    refuse_other_devices(conn, &plan.ids)?;

    let what = format!("Sophgo boot ROM (USB CDC-ACM {})", id_list(&plan.ids));
    let mut info = conn.find_serial(Some(&plan.ids), &what).map_err(|e| match e {
        LinkError::NotFound { .. } => SophgoError::NoRom { bridges: bridges(conn), source: e },
        e => SophgoError::Link { what: format!("finding the {what}"), source: e },
    })?;
    let key = conn.serial_key(&info);
    let port = info.path.clone();
    // What the next enumeration may be: the ROM again, or U-Boot's gadget.
    let mut next_ids = plan.ids.clone();
    next_ids.push(UsbId::new(crate::ROM_VID, UBOOT_PID));
    if let Some(id) = plan.ids.first()
        && id.vid != crate::ROM_VID
    {
        next_ids.push(UsbId::new(id.vid, UBOOT_PID));
    }
    let mut r = Outcome::default();
    let mut probe_followed = false;
    loop {
        let first = loader.sessions() == 0;
        let opened = conn.open_serial(&info, crate::BAUD);
        let served = match opened {
            Err(e) if first && gone(&e) => Err(SophgoError::NoAnswer { source: e }),
            Err(e) => return Err(link_err("opening the ROM's port")(e)),
            Ok(mut link) => {
                let speed = conn.serial.link_speed(&info);
                let chunk = crate::session::chunk_for(speed.as_deref(), opts.chunk);
                if let Some(sp) = &speed
                    && chunk < opts.chunk
                    && first
                {
                    conn.progress.say(format!(
                        "the ROM's USB link runs at {sp} speed: the ROM takes 64-byte requests, so packets carry {chunk} data bytes"
                    ));
                }
                loader.set_link_speed(speed);
                let t0 = Instant::now();
                let res = loader.session(&mut *link, &mut *conn.progress);
                r.send_ms += t0.elapsed().as_millis() as u64;
                res.map(|o| (o, ms(t0)))
            }
        };
        let (outcome, took) = match served {
            // Parts whose efuses disable the USB timeout end the probe
            // session at enumeration, without a magic (usb_tty.c: USBC.):
            // the port goes before it answers. Follow the board to its
            // next enumeration (the ROM re-initialises USB at once).
            Err(SophgoError::NoAnswer { source }) if first && !probe_followed && gone(&source) => {
                probe_followed = true;
                match conn
                    .follow_serial(&key, &info.path, Some(&plan.ids), 2 * LINGER, LINGER)
                    .map_err(link_err("following the ROM"))?
                {
                    Some(next) => {
                        conn.progress.say(
                            "the ROM's first port went away before it answered (a part whose efuses disable the USB timeout ends its probe without a magic): following it to its next enumeration".to_string(),
                        );
                        r.stages.push(Stage { name: "probe".into(), offset: 0, size: 0, bytes: 0, ms: 0 });
                        info = next;
                        continue;
                    }
                    None => return Err(SophgoError::NoAnswer { source }),
                }
            }
            Err(e) => return Err(e),
            Ok(o) => o,
        };
        let last = match outcome {
            SessionOutcome::Probe => {
                r.stages.push(Stage { name: "probe".into(), offset: 0, size: 0, bytes: 0, ms: took });
                "probe".to_string()
            }
            SessionOutcome::Served { what, offset, size, bytes, .. } => {
                if loader.bl2_served() && what != "BL2" {
                    r.bl2_runs(format!("it asked for {what}"));
                }
                r.stages.push(Stage { name: what.clone(), offset, size, bytes, ms: took });
                what
            }
            SessionOutcome::Beyond { offset, size, what } => {
                if fsbl || !loader.bl2_served() {
                    let who = if loader.bl2_served() { "vendor FSBL" } else { "ROM" };
                    return Err(SophgoError::OutOfImage { who, what, offset, size, len: fip_len });
                }
                // A BL2 of the user's asks for its next stage.
                r.bl2_runs(format!("it asked for fip.bin 0x{offset:x}+0x{size:x}"));
                conn.progress.say(format!(
                    "BL2 runs and asks for 0x{size:x} bytes at fip.bin 0x{offset:x}, beyond this image: serve its next stage with --main"
                ));
                r.next_request = Some(Request { offset, size });
                break;
            }
        };
        // What the console said about this stage.
        if let Some(c) = console.as_mut() {
            c.drain(Duration::from_millis(30)).map_err(link_err("reading the console"))?;
            if let Some(line) = c.failure() {
                return Err(SophgoError::Rejected { what: last, line });
            }
        }
        if main && loader.finished() {
            break;
        }
        if last == "BL2" {
            match console.as_mut() {
                Some(c) => match c.wait_for(console::BL2_ENTERED, opts.console_wait).map_err(link_err("reading the console"))? {
                    Said::Accepted => r.confirmed.push(format!(
                        "BL2 checked and entered at 0x{:x} (the console printed BE.J.)",
                        plan.bl2_entry()
                    )),
                    Said::Failed(line) => return Err(SophgoError::Rejected { what: last, line }),
                    Said::Silent => r.bl2_pending = Some(
                        "BL2 started: the console printed neither BE.J. nor a checksum failure".into(),
                    ),
                },
                None => {
                    r.bl2_pending = Some(
                        "BL2 started: the ROM tries BL2 once and boots its flash when it rejects it; give --monitor TTY to read its verdict (BE.J.)".into(),
                    )
                }
            }
        }
        if let Some(c) = console.as_mut() {
            c.next_stage();
        }
        if loader.bl2_served() {
            if !fsbl {
                // A BL2 of the user's: nothing more is asked of the host.
                break;
            }
            // The vendor FSBL asks for its parts, one session each, until
            // U-Boot's gadget appears or nothing asks any more.
            let gap = opts.next_request_gap;
            match conn
                .follow_serial(&key, &info.path, Some(&next_ids), gap, LINGER)
                .map_err(link_err("following the board"))?
            {
                Some(next) if next.pid == Some(UBOOT_PID) => {
                    r.bl2_runs("it loaded every part".into());
                    r.confirmed.push(format!(
                        "U-Boot's download gadget ({}) is up at {}",
                        UsbId::new(next.vid.unwrap_or(crate::ROM_VID), UBOOT_PID),
                        next.path
                    ));
                    r.uboot = Some(next.path);
                    break;
                }
                Some(next) => {
                    info = next;
                    continue;
                }
                None => {
                    // The FSBL stopped asking: its console may say why.
                    if let Some(c) = console.as_mut() {
                        c.drain(Duration::from_millis(100)).map_err(link_err("reading the console"))?;
                        if let Some(line) = c.failure() {
                            return Err(SophgoError::Rejected { what: last, line });
                        }
                    }
                    r.unconfirmed.push(format!(
                        "U-Boot: nothing asked for more within {}s after {last}, and U-Boot's download gadget ({crate_vid:04x}:{UBOOT_PID:04x}) did not appear",
                        gap.as_secs_f64(),
                        crate_vid = crate::ROM_VID
                    ));
                    break;
                }
            }
        }
        let within = conn.stage_timeout;
        info = match conn
            .follow_serial(&key, &info.path, Some(&plan.ids), within, LINGER)
            .map_err(link_err("following the ROM"))?
        {
            Some(i) => i,
            None if last == "param1" || last == "BLCP" => {
                if let Some(c) = console.as_mut() {
                    c.drain(Duration::from_millis(100)).map_err(link_err("reading the console"))?;
                    if let Some(line) = c.failure() {
                        return Err(SophgoError::Rejected { what: last, line });
                    }
                }
                return Err(SophgoError::NoBl2Request { within });
            }
            None => return Err(SophgoError::NotBack { at: key.to_string(), within }),
        };
    }
    if let Some(c) = console.as_mut() {
        // What the board printed last (U-Boot's gadget comes up quickly).
        c.drain(Duration::from_millis(100)).map_err(link_err("reading the console"))?;
    }
    if let Some(p) = r.bl2_pending.take() {
        r.unconfirmed.insert(0, p);
    }

    Ok(Report {
        board: target.board.clone(),
        chip: plan.chip,
        core: plan.core,
        image: (&plan.image).into(),
        port,
        followed_by: key.to_string(),
        sessions: loader.sessions(),
        bytes_sent: loader.bytes_sent(),
        send_ms: r.send_ms,
        stages: r.stages,
        next_request: r.next_request,
        bl2: (!main).then(|| crate::report::Bl2 { load: plan.bl2_base, entry: plan.bl2_entry() }),
        confirmed: r.confirmed,
        unconfirmed: r.unconfirmed,
        uboot: r.uboot,
        console: console.map(|c| c.text).unwrap_or_default(),
    })
}

/// What the run found out, as it goes.
#[derive(Default)]
struct Outcome {
    stages: Vec<Stage>,
    next_request: Option<Request>,
    confirmed: Vec<String>,
    unconfirmed: Vec<String>,
    /// "BL2 started", until something confirms it.
    bl2_pending: Option<String>,
    uboot: Option<String>,
    send_ms: u64,
}

impl Outcome {
    /// BL2 asked for something: it runs.
    fn bl2_runs(&mut self, how: String) {
        if self.bl2_pending.take().is_some() {
            self.confirmed.push(format!("BL2 runs: {how}"));
        }
    }
}

fn ms(t0: Instant) -> u64 {
    t0.elapsed().as_millis() as u64
}

/// A tty given with `--port` that the port list shows as another USB
/// device (a USB-UART adapter on the board's console, most often) is
/// refused before anything is sent to it.
fn refuse_other_devices(conn: &Connector, ids: &[UsbId]) -> Result<(), SophgoError> {
    let Some(sel @ Selector::Tty(p)) = &conn.selector else { return Ok(()) };
    let ports = conn.serial.ports().map_err(link_err("listing serial ports"))?;
    if let Some(port) = ports.into_iter().find(|x| sel.matches_serial(x))
        && let (Some(vid), Some(pid)) = (port.vid, port.pid)
        && !ids.iter().any(|id| id.matches_serial(&port))
    {
        return Err(SophgoError::NotTheRom {
            port: p.display().to_string(),
            id: UsbId::new(vid, pid),
            product: port.product.unwrap_or_default(),
            want: id_list(ids),
            bridge: UART_BRIDGE_VIDS.contains(&vid),
        });
    }
    Ok(())
}

/// The USB-UART adapters attached now (for the "not found" hint).
fn bridges(conn: &Connector) -> Vec<(String, UsbId)> {
    conn.serial
        .ports()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match (p.vid, p.pid) {
            (Some(v), Some(pi)) if UART_BRIDGE_VIDS.contains(&v) => Some((p.path, UsbId::new(v, pi))),
            _ => None,
        })
        .collect()
}
