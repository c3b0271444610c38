//! The maskrom run: find the ROM, check that it is a maskrom, send the
//! planned stages, follow the board to its usbplug by USB port path and
//! ask the usbplug what it is.

use std::time::{Duration, Instant};

use racklet_image::Target;
use racklet_link::{Classify, Connector, FailureClass, LinkError, ProgressSink, UsbId, UsbInfo, UsbLink};

use crate::RockchipError;
use crate::chips;
use crate::frame::FrameOptions;
use crate::maskrom::{INDEX_471, INDEX_472, StageReport, Timeouts, download_loader, download_stage};
use crate::plan::{Plan, Stages};
use crate::report::{Device, Next, Report, Source, Stage, Usbplug};
use crate::rockusb::{self, Readiness, Rockusb};
use crate::{looks_like_loader, report};

/// xrock's `maskrom` pauses this long after the DRAM-init stage before the
/// usbplug's first transfer (which also gets the long timeout).
pub const PAUSE_AFTER_DRAM_INIT: Duration = Duration::from_millis(10);

/// How long the "is a loader already running?" probe waits for its CSW.
pub const LOADER_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a 0x472 stage is given to come back as a rockusb loader at the
/// same port path when `--expect-usbplug` is not given (at most the stage
/// timeout). rkbin's usbplugs re-enumerate well within it; rkdeveloptool
/// sleeps 1 s after the download (RKDevice.cpp:578) and is done.
pub const USBPLUG_LOOK: Duration = Duration::from_secs(3);

/// TEST UNIT READY tries per round before a transient error is final
/// (rkdeveloptool's `TestDevice`: `iTryCount = 3`, RKDevice.cpp:363).
pub const READY_TRIES: u32 = 3;

/// rkdeveloptool's pause between TEST UNIT READY polls, after "not ready"
/// and after a failed try (`sleep(1)`, RKDevice.cpp:373, 409).
pub const READY_PAUSE: Duration = Duration::from_secs(1);

/// How a run behaves beyond its plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Send even when a rockusb loader answers where the maskrom should be.
    pub force: bool,
    pub timeouts: Timeouts,
    /// The pause between TEST UNIT READY polls ([`READY_PAUSE`]).
    pub ready_pause: Duration,
    /// A 0x472 stage must come back as a rockusb loader (`--expect-usbplug`):
    /// none within the stage timeout is a failure, not a payload that ran.
    pub expect_usbplug: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            force: false,
            timeouts: Timeouts::default(),
            ready_pause: READY_PAUSE,
            expect_usbplug: false,
        }
    }
}

/// Runs the plan on the board's maskrom and reports what happened.
pub fn boot(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<Report, RockchipError> {
    let ids: Vec<UsbId> = target.usb_ids(None).into_iter().map(|(v, p)| UsbId::new(v, p)).collect();
    let info = conn.find_usb(&ids, "Rockchip maskrom device")?;
    let soc = target.soc.to_uppercase();
    conn.progress.say(format!(
        "{soc} maskrom device {} at USB port {} (address {}, bcdUSB 0x{:04x})",
        info.id(),
        info.port_path,
        info.address,
        info.bcd_usb
    ));
    let mut link = conn.open_usb(&info)?;
    // bcdUSB bit 0 is only a hint (the usbplug says 0x0200 like a maskrom):
    // a loader is told apart by answering TEST UNIT READY.
    if looks_like_loader(&info) && !opts.force && rockusb_answers(&mut *link) {
        return Err(not_maskrom(&info));
    }
    let source = match &plan.stages {
        Stages::Loader { from, loader, .. } => {
            Source::Loader { file: from.clone(), tag: loader.tag_str(), chip_code: loader.chip_code.clone() }
        }
        Stages::Raw { ddr, usbplug, rc4 } => {
            conn.progress.say(format!("DRAM init (0x471): {}", ddr.from.display()));
            if let Some(u) = usbplug {
                conn.progress.say(format!("usbplug (0x472): {}", u.from.display()));
            }
            Source::Raw {
                ddr: ddr.from.clone(),
                usbplug: usbplug.as_ref().map(|u| u.from.clone()),
                rc4: *rc4,
            }
        }
    };
    let started = Instant::now();
    let sent = match send(&mut *link, plan, &opts.timeouts, &mut *conn.progress) {
        Ok(r) => r,
        // A stall of the very first transfer: maybe a loader runs there.
        Err(RockchipError::Rejected { transfer: 1, index: INDEX_471, .. })
            if !opts.force && rockusb_answers(&mut *link) =>
        {
            return Err(not_maskrom(&info));
        }
        Err(e) => return Err(e),
    };
    let send_ms = started.elapsed().as_millis() as u64;
    drop(link);
    let mut report = Report {
        board: target.board.clone(),
        soc: target.soc.clone(),
        maskrom: Device::from(&info),
        chip_rc4: plan.chip.rc4,
        source,
        stages: sent.iter().map(Stage::from).collect(),
        send_ms,
        next: Next::DramOnly,
    };
    if plan.has_usbplug() {
        report.next = usbplug(conn, plan, &info, &ids, opts)?;
    }
    Ok(report)
}

/// Sends the planned stages on an open maskrom link.
fn send(
    link: &mut dyn UsbLink,
    plan: &Plan,
    t: &Timeouts,
    progress: &mut dyn ProgressSink,
) -> Result<Vec<StageReport>, RockchipError> {
    match &plan.stages {
        Stages::Loader { file, loader, .. } => {
            download_loader(link, loader, file, plan.zero_crc, t, progress)
        }
        Stages::Raw { ddr, usbplug, rc4 } => {
            let opts = FrameOptions { rc4: *rc4, zero_crc: plan.zero_crc };
            let mut r = vec![download_stage(link, INDEX_471, "ddr", &ddr.bytes, opts, t, progress)?];
            if let Some(u) = usbplug {
                std::thread::sleep(PAUSE_AFTER_DRAM_INIT);
                r.push(download_stage(link, INDEX_472, "usbplug", &u.bytes, opts, t, progress)?);
            }
            Ok(r)
        }
    }
}

/// A usbplug starts: the board drops off the bus and comes back at the
/// same port path with a new address (and the same ids). Follow it, wait
/// for TEST UNIT READY until the stage timeout, then ask what it is. A
/// 0x472 payload that is not a usbplug never comes back as rockusb: after
/// [`USBPLUG_LOOK`] that is the run's end ([`Next::Payload`]), or with
/// `expect_usbplug` a failure after the stage timeout.
fn usbplug(
    conn: &mut Connector,
    plan: &Plan,
    maskrom: &UsbInfo,
    ids: &[UsbId],
    opts: &Options,
) -> Result<Next, RockchipError> {
    let within = conn.stage_timeout;
    // Not every 0x472 stage is a usbplug: look briefly, unless one must come.
    let look = if opts.expect_usbplug { within } else { within.min(USBPLUG_LOOK) };
    let plug = match conn.follow_usb(maskrom, ids, "the usbplug", look) {
        Ok(p) => p,
        Err(LinkError::Timeout { after, .. }) if !opts.expect_usbplug => {
            conn.progress.say(format!(
                "no rockusb loader came back at USB port {} within {}: the 0x472 stage runs as a payload",
                maskrom.port_path,
                racklet_link::error::fmt_duration(after)
            ));
            return Ok(Next::Payload {
                port: maskrom.port_path.clone(),
                looked_ms: after.as_millis() as u64,
                rockusb_in_stage: plan.usbplug_images().any(rockusb::carries_rockusb),
            });
        }
        Err(LinkError::Timeout { after, .. }) => {
            return Err(RockchipError::UsbplugMissing { port: maskrom.port_path.clone(), within: after });
        }
        Err(e) => return Err(e.into()),
    };
    let mut link = conn.open_usb(&plug)?;
    let mut r = Rockusb::new(&mut *link)?;
    wait_ready(&mut r, &plug, within, opts, &mut *conn.progress)?;
    let ci = r.read_chip_info()?;
    // A zero chip code is no code: U-Boot's chip_info.c has no value for
    // RK3562, RK3576, RK3528 or RK3506, so their usbplugs answer zeros.
    let code = if ci.iter().take(4).all(|b| *b == 0) {
        String::new()
    } else {
        rockusb::chip_code(&ci).unwrap_or_else(|| format!("{:02x?}", &ci[..ci.len().min(4)]))
    };
    let flash_id = r.read_flash_id()?;
    let flash = match r.read_flash_info() {
        Ok(f) => f.into(),
        Err(e) => report::Flash::Unavailable { why: e.to_string() },
    };
    Ok(Next::Usbplug(Usbplug {
        device: Device::from(&plug),
        other_chip: chips::by_code(&code).is_some_and(|c| c != plan.chip),
        chip_code: code,
        flash_id,
        flash,
    }))
}

/// TEST UNIT READY as rkdeveloptool's `TestDevice` polls it
/// (RKDevice.cpp:356-410): "not ready" (CSW status 1) is polled again after
/// a pause for as long as it lasts (here: until the stage timeout); a
/// timeout or a bad answer is tried again, [`READY_TRIES`] tries in all.
fn wait_ready<L: UsbLink + ?Sized>(
    r: &mut Rockusb<'_, L>,
    plug: &UsbInfo,
    within: Duration,
    opts: &Options,
    progress: &mut dyn ProgressSink,
) -> Result<(), RockchipError> {
    let deadline = Instant::now() + within;
    let mut tries = 0;
    let mut said = false;
    loop {
        if progress.cancelled() {
            return Err(RockchipError::Interrupted);
        }
        match r.test_unit_ready() {
            Ok(Readiness::Ready) => return Ok(()),
            Ok(Readiness::NotReady) => {
                tries = 0;
                if Instant::now() >= deadline {
                    return Err(RockchipError::UsbplugNotReady { port: plug.port_path.clone(), within });
                }
                if !said {
                    progress.say(format!(
                        "the loader at USB port {} is not ready yet (TEST UNIT READY status 1); polling every {}",
                        plug.port_path,
                        racklet_link::error::fmt_duration(opts.ready_pause)
                    ));
                    said = true;
                }
            }
            Err(e) => {
                tries += 1;
                let transient = matches!(e.class(), FailureClass::Timeout | FailureClass::Io);
                if !transient || tries >= READY_TRIES || Instant::now() >= deadline {
                    return Err(RockchipError::UsbplugSilent {
                        port: plug.port_path.clone(),
                        source: Box::new(e),
                    });
                }
                progress.say(format!("TEST UNIT READY, try {tries} of {READY_TRIES}: {e}; trying again"));
            }
        }
        std::thread::sleep(opts.ready_pause);
    }
}

/// A short rockusb probe: does a loader answer TEST UNIT READY?
fn rockusb_answers(link: &mut dyn UsbLink) -> bool {
    match Rockusb::new(link) {
        Ok(mut r) => {
            r.timeout = LOADER_PROBE_TIMEOUT;
            r.test_unit_ready().is_ok()
        }
        Err(_) => false,
    }
}

fn not_maskrom(info: &UsbInfo) -> RockchipError {
    RockchipError::NotMaskrom { port: info.port_path.clone(), bcd_usb: info.bcd_usb }
}
