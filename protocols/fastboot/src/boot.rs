//! The whole run on a board: find the boot ROM through the [`Connector`],
//! identify it, send each stage, follow the board across re-enumeration by
//! USB port path, and report what happened.
//!
//! K1 (sheet §3): the ROM takes FSBL.bin (`download` + `continue`); the
//! FSBL comes back with the same VID:PID at the same port path and takes the
//! next image (`--then u-boot.itb`), after which vendor U-Boot comes back.
//! TH1520 (sheet §4): the ROM takes u-boot-with-spl.bin (`download`,
//! `flash:ram`, `reboot`); vendor U-Boot appears at the same port path with
//! its own ids.

use std::time::Instant;

use racklet_image::Target;
use racklet_link::connect::id_list;
use racklet_link::{Connector, LinkError, UsbId, UsbInfo};

use crate::client::{Departure, Fastboot, Timeouts};
use crate::plan::{Image, Plan, Soc};
use crate::report::{Device, Report, Stage, StageKind};
use crate::transport::{TcpTransport, UsbTransport};
use crate::{FastbootError, k1, th1520};

/// How the run goes beyond what the plan says.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// K1: send the FSBL without asking the device whether it is the boot
    /// ROM (a later stage would boot away on `continue`).
    pub force: bool,
    /// The client's timeouts (the defaults follow the sheet, §1.5).
    pub timeouts: Timeouts,
}

pub(crate) type AnyFastboot = Fastboot<Box<dyn crate::transport::Transport>>;

/// Where a stage of the board is: a USB device, or a fastboot device over
/// TCP (`--port tcp:HOST:PORT`, see [`crate::tcp`]) with the connection
/// that found it.
pub enum Endpoint {
    Usb(UsbInfo),
    Tcp { addr: String, link: Option<Box<TcpTransport>> },
}

impl Endpoint {
    /// The USB serial string (none over TCP).
    pub fn serial(&self) -> Option<&str> {
        match self {
            Endpoint::Usb(i) => i.serial.as_deref(),
            Endpoint::Tcp { .. } => None,
        }
    }

    /// The board as the report names it.
    pub fn device(&self) -> Device {
        match self {
            Endpoint::Usb(i) => Device::from(i),
            Endpoint::Tcp { addr, .. } => Device::tcp(addr),
        }
    }
}

/// Finds the board's first stage: one of `ids` on USB, or the connection
/// to the `--port tcp:` address (retried for `--wait`).
pub(crate) fn find(conn: &mut Connector, ids: &[UsbId], what: &str) -> Result<Endpoint, FastbootError> {
    let Some(addr) = crate::tcp::address(conn) else {
        return Ok(Endpoint::Usb(conn.find_usb(ids, what)?));
    };
    let link = crate::tcp::connect(conn, &addr, conn.wait, what)?;
    conn.resolved = Some(format!("tcp:{addr}"));
    Ok(Endpoint::Tcp { addr, link: Some(Box::new(link)) })
}

/// Opens the fastboot client on `ep` (over TCP: the connection that found
/// it, or a new one).
pub(crate) fn open(
    conn: &mut Connector,
    ep: &mut Endpoint,
    opts: &Options,
) -> Result<AnyFastboot, FastbootError> {
    let transport: Box<dyn crate::transport::Transport> = match ep {
        Endpoint::Usb(info) => Box::new(UsbTransport::new(conn.open_usb(info)?)?),
        Endpoint::Tcp { addr, link } => match link.take() {
            Some(t) => t,
            None => {
                Box::new(crate::tcp::connect(conn, addr, Some(conn.open_patience), "the fastboot device")?)
            }
        },
    };
    let mut fb = Fastboot::new(transport);
    fb.timeouts = opts.timeouts;
    Ok(fb)
}

/// Waits for the board's next stage at `from`'s port path (over TCP: at the
/// same address); a wait that ran out says which stage was started and what
/// did not come.
fn follow(
    conn: &mut Connector,
    from: &Endpoint,
    plan: &Plan,
    after: StageKind,
    what: &str,
) -> Result<Endpoint, FastbootError> {
    let within = plan.next_wait;
    match from {
        Endpoint::Usb(from) => {
            conn.follow_usb(from, &plan.next_ids, what, within).map(Endpoint::Usb).map_err(|e| match e {
                LinkError::Timeout { .. } => {
                    FastbootError::NotBack { after, on: "on USB", source: Box::new(e) }
                }
                e => FastbootError::Link(e),
            })
        }
        Endpoint::Tcp { addr, .. } => match crate::tcp::connect(conn, addr, Some(within), what) {
            Ok(t) => Ok(Endpoint::Tcp { addr: addr.clone(), link: Some(Box::new(t)) }),
            // Nothing answered at the address within the stage timeout.
            Err(FastbootError::Link(LinkError::NotFound { .. })) => Err(FastbootError::NotBack {
                after,
                on: "over TCP",
                source: Box::new(LinkError::Timeout {
                    op: format!("waiting for {what} at tcp:{addr}"),
                    after: within,
                }),
            }),
            Err(e) => Err(e),
        },
    }
}

fn stage(kind: StageKind, image: &Image, started: Instant, departure: Departure) -> Stage {
    Stage {
        kind,
        file: image.name(),
        bytes: image.bytes.len(),
        sha256: racklet_image::sha256_hex(&image.bytes),
        ms: started.elapsed().as_millis() as u64,
        departure,
        came_back: None,
    }
}

/// Runs `plan` on the board `target` describes. Never prints: messages go
/// to `conn.progress`.
pub fn boot(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<Report, FastbootError> {
    boot_to(conn, plan, target, opts).map(|(r, _)| r)
}

/// [`boot`], also giving back where the board's last stage was found (the
/// storage verbs go on there), if it was awaited.
pub(crate) fn boot_to(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<(Report, Option<Endpoint>), FastbootError> {
    let what = format!("{} boot ROM ({})", plan.soc.title(), id_list(&plan.rom_ids));
    let rom = find(conn, &plan.rom_ids, &what)?;
    let mut report = Report {
        board: target.board.clone(),
        soc: plan.soc,
        rom: rom.device(),
        identified: false,
        version_brom: None,
        stages: Vec::new(),
        awaited: plan.await_next,
    };
    let last = match plan.soc {
        Soc::K1 => k1_run(conn, plan, opts, rom, &mut report)?,
        Soc::Th1520 => th1520_run(conn, plan, opts, rom, &mut report)?,
    };
    Ok((report, last))
}

fn k1_run(
    conn: &mut Connector,
    plan: &Plan,
    opts: &Options,
    mut rom: Endpoint,
    report: &mut Report,
) -> Result<Option<Endpoint>, FastbootError> {
    let t = Instant::now();
    let mut fb = open(conn, &mut rom, opts)?;
    let fsbl = &plan.first.bytes;
    let dep = if opts.force {
        k1::stage_and_continue(&mut fb, "fsbl", fsbl, &mut *conn.progress)?
    } else {
        let (id, dep) = match &rom {
            Endpoint::Usb(_) => k1::boot_fsbl(&mut fb, rom.serial(), fsbl, &mut *conn.progress)?,
            Endpoint::Tcp { .. } => k1::boot_fsbl_over_tcp(&mut fb, fsbl, &mut *conn.progress)?,
        };
        report.identified = true;
        report.version_brom = id.version_brom;
        dep
    };
    drop(fb);
    report.stages.push(stage(StageKind::Fsbl, &plan.first, t, dep));
    if !plan.await_next {
        return Ok(None);
    }
    let mut spl = follow(conn, &rom, plan, StageKind::Fsbl, "the K1 FSBL (U-Boot SPL)")?;
    report.stages[0].came_back = Some(spl.device());
    let Some(image) = plan.then.first() else {
        return Ok(Some(spl));
    };
    let t = Instant::now();
    let mut fb = open(conn, &mut spl, opts)?;
    let dep = k1::stage_and_continue(&mut fb, &image.name(), &image.bytes, &mut *conn.progress)?;
    drop(fb);
    report.stages.push(stage(StageKind::NextImage, image, t, dep));
    let mut ub = follow(conn, &spl, plan, StageKind::NextImage, "vendor U-Boot fastboot")?;
    report.stages[1].came_back = Some(ub.device());
    // Vendor U-Boot stages the last image and leaves fastboot to run it
    // (`bootm`, as `fastboot_load.sh` has it): nothing comes back after it.
    let Some(image) = plan.then.get(1) else {
        return Ok(Some(ub));
    };
    let t = Instant::now();
    let mut fb = open(conn, &mut ub, opts)?;
    let dep = k1::stage_and_continue(&mut fb, &image.name(), &image.bytes, &mut *conn.progress)?;
    drop(fb);
    report.stages.push(stage(StageKind::UBootImage, image, t, dep));
    Ok(None)
}

fn th1520_run(
    conn: &mut Connector,
    plan: &Plan,
    opts: &Options,
    mut rom: Endpoint,
    report: &mut Report,
) -> Result<Option<Endpoint>, FastbootError> {
    // Sheet §4.5.2: vendor U-Boot in USB boot mode runs `env default -a -f`
    // and `run gpt_partition` before it starts fastboot.
    conn.progress.say(
        "note: vendor U-Boot started from USB resets its environment and rewrites the GPT to the vendor default layout",
    );
    let t = Instant::now();
    let mut fb = open(conn, &mut rom, opts)?;
    let dep = th1520::boot_ram(&mut fb, &plan.first.bytes, &mut *conn.progress)?;
    drop(fb);
    report.stages.push(stage(StageKind::RamImage, &plan.first, t, dep));
    if !plan.await_next {
        return Ok(None);
    }
    let what = format!("vendor U-Boot fastboot ({})", id_list(&plan.next_ids));
    let ub = follow(conn, &rom, plan, StageKind::RamImage, &what)?;
    report.stages[0].came_back = Some(ub.device());
    Ok(Some(ub))
}
