//! The whole boot: find the ROM's port, serve each of its sessions, and
//! follow the board by USB port path from one enumeration to the next.
//!
//! Every `load_image` call of the ROM (or of a running BL2) is one USB
//! session: the port appears, the host sends the magic, the ACK names the
//! slice of fip.bin wanted, the host sends it, FLAG and BREAK, and the port
//! goes away. A cold boot is three sessions (probe, param1, BL2). After BL2
//! the ROM comes back for it again when it refused it; otherwise BL2 runs.

use std::time::{Duration, Instant};

use racklet_image::Target;
use racklet_link::connect::id_list;
use racklet_link::{Connector, LinkError, Selector, UsbId};

use crate::plan::{Image, Plan};
use crate::report::{Report, Request, Stage};
use crate::session::{Loader, Options, SessionOutcome, SophgoError};

/// After a session, how long the old port may linger before a port at the
/// same place is taken to be the next enumeration (the vendor tool waits
/// 0.1 s, sg_boot 0.5 s, sheet §2.5).
pub const LINGER: Duration = Duration::from_millis(1000);

/// After BL2 was sent, how long to watch for the ROM coming back asking for
/// it again (it does so when it refused it). The vendor tool takes 1 s
/// without a device as the end (sheet §2.5, S3); this waits a little longer.
pub const CONFIRM: Duration = Duration::from_millis(1500);

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
    for w in &plan.warnings {
        conn.progress.say(w.clone());
    }
    let (mut loader, main) = match &plan.image {
        Image::Fip { bytes, .. } => (Loader::boot(bytes.clone(), opts.clone())?, false),
        Image::Main { bytes } => (Loader::main(bytes.clone(), opts.clone()), true),
    };
    refuse_other_devices(conn, &plan.ids)?;

    let what = format!("Sophgo boot ROM (USB CDC-ACM {})", id_list(&plan.ids));
    let mut info = conn.find_serial(Some(&plan.ids), &what).map_err(|e| match e {
        LinkError::NotFound { .. } => SophgoError::NoRom { bridges: bridges(conn), source: e },
        e => SophgoError::Link { what: format!("finding the {what}"), source: e },
    })?;
    let key = conn.serial_key(&info);
    let port = info.path.clone();
    let mut stages = Vec::new();
    let mut next_request = None;
    loop {
        let mut link = conn.open_serial(&info, crate::BAUD).map_err(link_err("opening the ROM's port"))?;
        let t0 = Instant::now();
        let r = loader.session(&mut *link, &mut *conn.progress);
        drop(link);
        match r? {
            SessionOutcome::NextStage { offset, size } => {
                next_request = Some(Request { offset, size });
                break;
            }
            SessionOutcome::Probe => {
                stages.push(Stage { name: "probe".into(), offset: 0, size: 0, bytes: 0, ms: ms(t0) });
            }
            SessionOutcome::Served { what, offset, size, bytes, .. } => {
                stages.push(Stage { name: what, offset, size, bytes, ms: ms(t0) });
            }
        }
        if loader.finished() {
            if main {
                break;
            }
            // The ROM comes back for BL2 when it refused it; otherwise BL2 runs.
            match conn
                .follow_serial(&key, &info.path, Some(&plan.ids), CONFIRM, Duration::MAX)
                .map_err(link_err("watching for the ROM"))?
            {
                Some(next) => {
                    info = next;
                    continue;
                }
                None => break,
            }
        }
        let within = conn.stage_timeout;
        info = conn
            .follow_serial(&key, &info.path, Some(&plan.ids), within, LINGER)
            .map_err(link_err("following the ROM"))?
            .ok_or_else(|| SophgoError::NotBack { at: key.to_string(), within })?;
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
        stages,
        next_request,
        bl2: (!main).then(|| crate::report::Bl2 { load: plan.bl2_base, entry: plan.bl2_entry() }),
    })
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
