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
use racklet_link::{Connector, LinkError, UsbInfo, UsbLink};

use crate::client::{Departure, Fastboot, Timeouts};
use crate::plan::{Image, Plan, Soc};
use crate::report::{Device, Report, Stage, StageKind};
use crate::transport::UsbTransport;
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

type UsbFastboot = Fastboot<UsbTransport<Box<dyn UsbLink>>>;

fn open(conn: &mut Connector, info: &UsbInfo, opts: &Options) -> Result<UsbFastboot, FastbootError> {
    let link = conn.open_usb(info)?;
    let mut fb = Fastboot::new(UsbTransport::new(link)?);
    fb.timeouts = opts.timeouts;
    Ok(fb)
}

/// Waits for the board's next stage at `from`'s port path; a wait that ran
/// out says which stage was started and what did not come.
fn follow(
    conn: &mut Connector,
    from: &UsbInfo,
    plan: &Plan,
    after: StageKind,
    what: &str,
) -> Result<UsbInfo, FastbootError> {
    let within = plan.next_wait;
    conn.follow_usb(from, &plan.next_ids, what, within).map_err(|e| match e {
        LinkError::Timeout { .. } => FastbootError::NotBack { after, source: Box::new(e) },
        e => FastbootError::Link(e),
    })
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
    let what = format!("{} boot ROM ({})", plan.soc.title(), id_list(&plan.rom_ids));
    let rom = conn.find_usb(&plan.rom_ids, &what)?;
    let mut report = Report {
        board: target.board.clone(),
        soc: plan.soc,
        rom: Device::from(&rom),
        identified: false,
        version_brom: None,
        stages: Vec::new(),
        awaited: plan.await_next,
    };
    match plan.soc {
        Soc::K1 => k1_run(conn, plan, opts, &rom, &mut report)?,
        Soc::Th1520 => th1520_run(conn, plan, opts, &rom, &mut report)?,
    }
    Ok(report)
}

fn k1_run(
    conn: &mut Connector,
    plan: &Plan,
    opts: &Options,
    rom: &UsbInfo,
    report: &mut Report,
) -> Result<(), FastbootError> {
    let t = Instant::now();
    let mut fb = open(conn, rom, opts)?;
    let fsbl = &plan.first.bytes;
    let dep = if opts.force {
        k1::stage_and_continue(&mut fb, "fsbl", fsbl, &mut *conn.progress)?
    } else {
        let (id, dep) = k1::boot_fsbl(&mut fb, rom.serial.as_deref(), fsbl, &mut *conn.progress)?;
        report.identified = true;
        report.version_brom = id.version_brom;
        dep
    };
    drop(fb);
    report.stages.push(stage(StageKind::Fsbl, &plan.first, t, dep));
    if !plan.await_next {
        return Ok(());
    }
    let spl = follow(conn, rom, plan, StageKind::Fsbl, "the K1 FSBL (U-Boot SPL)")?;
    report.stages[0].came_back = Some(Device::from(&spl));
    let Some(image) = plan.then.first() else {
        return Ok(());
    };
    let t = Instant::now();
    let mut fb = open(conn, &spl, opts)?;
    let dep = k1::stage_and_continue(&mut fb, &image.name(), &image.bytes, &mut *conn.progress)?;
    drop(fb);
    report.stages.push(stage(StageKind::NextImage, image, t, dep));
    let ub = follow(conn, &spl, plan, StageKind::NextImage, "vendor U-Boot fastboot")?;
    report.stages[1].came_back = Some(Device::from(&ub));
    // Vendor U-Boot stages the last image and leaves fastboot to run it
    // (`bootm`, as `fastboot_load.sh` has it): nothing comes back after it.
    let Some(image) = plan.then.get(1) else {
        return Ok(());
    };
    let t = Instant::now();
    let mut fb = open(conn, &ub, opts)?;
    let dep = k1::stage_and_continue(&mut fb, &image.name(), &image.bytes, &mut *conn.progress)?;
    drop(fb);
    report.stages.push(stage(StageKind::UBootImage, image, t, dep));
    Ok(())
}

fn th1520_run(
    conn: &mut Connector,
    plan: &Plan,
    opts: &Options,
    rom: &UsbInfo,
    report: &mut Report,
) -> Result<(), FastbootError> {
    // Sheet §4.5.2: vendor U-Boot in USB boot mode runs `env default -a -f`
    // and `run gpt_partition` before it starts fastboot.
    conn.progress.say(
        "note: vendor U-Boot started from USB resets its environment and rewrites the GPT to the vendor default layout",
    );
    let t = Instant::now();
    let mut fb = open(conn, rom, opts)?;
    let dep = th1520::boot_ram(&mut fb, &plan.first.bytes, &mut *conn.progress)?;
    drop(fb);
    report.stages.push(stage(StageKind::RamImage, &plan.first, t, dep));
    if !plan.await_next {
        return Ok(());
    }
    let what = format!("vendor U-Boot fastboot ({})", id_list(&plan.next_ids));
    let ub = follow(conn, rom, plan, StageKind::RamImage, &what)?;
    report.stages[0].came_back = Some(Device::from(&ub));
    Ok(())
}
