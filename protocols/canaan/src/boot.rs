//! The whole run against a board: find the ROM, identify it, run each
//! stage, follow a stage that returns to the ROM by its USB port path, and —
//! when asked — what comes up after the last stage.
//!
//! No flow idles after its last stage: once the ROM took PROG_START the run
//! is over, unless [`Options::follow`] asks to wait for the next stage.

use std::time::{Duration, Instant};

use racklet_image::Target;
use racklet_link::{Connector, LinkError, UsbId, UsbInfo, UsbLink};

use crate::plan::Plan;
use crate::report::{Chip, NextStage, Report, StageReport};
use crate::rom::{self, DeviceStage, RomOptions};
use crate::{CanaanError, PID, VID};

/// How long a stage that must be followed by another may take to come
/// back: k230-flash's `LOADER_ENUMERATION_TIMEOUT` (15 s) for the loader;
/// the same for a DRAM-init stage returning to the ROM.
pub const NEXT_STAGE_WAIT: Duration = Duration::from_secs(15);

/// How often the board is looked at while waiting for it to come back.
const POLL: Duration = Duration::from_millis(50);

/// The timeout of a GET_CPU_INFO asked while waiting: short, since a ROM
/// that is back answers at once (k230-flash polls every 50 ms).
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Chunking, timeouts, re-greet; `accept_unknown_cpu` goes on when the
    /// ROM does not say "K230" (`--force`).
    pub rom: RomOptions,
    /// After the last stage, wait (up to the connector's stage timeout) for
    /// what comes up next at the same USB port and report it; nothing coming
    /// up is then a timeout (`--follow`).
    pub follow: bool,
    /// How long a next stage the flow needs may take to come up (a
    /// DRAM-init stage returning to the ROM, the kburn loader).
    pub next_stage_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { rom: RomOptions::default(), follow: false, next_stage_wait: NEXT_STAGE_WAIT }
    }
}

impl Options {
    /// The options of a storage verb's bring-up: `force` accepts a ROM that
    /// does not say "K230"; the kburn loader may take the user's stage
    /// timeout (`--stage-timeout`, default the connector's) to come up, and
    /// never less than [`NEXT_STAGE_WAIT`].
    pub fn storage(force: bool, stage_timeout: Option<Duration>) -> Options {
        Options {
            rom: RomOptions { accept_unknown_cpu: force, ..RomOptions::default() },
            follow: false,
            next_stage_wait: stage_timeout
                .unwrap_or(racklet_link::connect::STAGE_TIMEOUT)
                .max(NEXT_STAGE_WAIT),
        }
    }
}

/// The board's USB ids: those of its table row, or the ROM's own (the ROM
/// and the kburn loader share 29f1:0230).
fn ids(target: &Target) -> Vec<UsbId> {
    let ids: Vec<UsbId> = target.usb_ids(None).into_iter().map(|(v, p)| UsbId::new(v, p)).collect();
    if ids.is_empty() { vec![UsbId::new(VID, PID)] } else { ids }
}

/// Runs `plan` on the board `target` describes.
pub fn boot(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<Report, CanaanError> {
    let ids = ids(target);
    let ropts = &opts.rom;
    let mut info = conn.find_usb(&ids, "K230 boot ROM").map_err(CanaanError::Find)?;
    let mut link = open(conn, &info)?;
    let chip = match rom::identify_patiently(&mut *link, ropts, conn.progress)? {
        DeviceStage::BootRom => Chip::BootRom,
        DeviceStage::Loader(reply) => return Err(CanaanError::LoaderStage { reply }),
        DeviceStage::Unknown(reply) if ropts.accept_unknown_cpu => {
            conn.progress.say(format!("GET_CPU_INFO answered {reply:?}, not \"K230\"; going on (--force)"));
            Chip::Unknown { reply }
        }
        DeviceStage::Unknown(reply) => return Err(CanaanError::UnknownDevice { reply }),
    };
    let mut report = Report { port: info.port_path.clone(), chip, stages: Vec::new(), next: None };
    let n = plan.stages.len();
    for (i, stage) in plan.stages.iter().enumerate() {
        let started = Instant::now();
        let status = rom::run_stage(&mut *link, stage, ropts, conn.progress)?;
        report.stages.push(StageReport {
            name: if n > 1 { format!("stage {}", i + 1) } else { "payload".into() },
            bytes: stage.bytes(),
            files: stage.loads.len(),
            entry: stage.entry,
            start: status,
            ms: started.elapsed().as_millis() as u64,
        });
        if stage.returns_to_rom {
            let what = "the K230 boot ROM back from the DRAM-init stage";
            let back = follow(conn, &info, &ids, what, link, stage.entry, ropts, opts.next_stage_wait)?;
            let found = match back {
                Back::NewAddress(next) => {
                    link = open(conn, &next)?;
                    info = next;
                    rom::identify_patiently(&mut *link, ropts, conn.progress)?
                }
                Back::SameAddress(old, stage) => {
                    link = old;
                    stage
                }
            };
            match found {
                DeviceStage::BootRom => conn.progress.say("the boot ROM is back; DRAM is up"),
                other => return Err(CanaanError::NotBackInRom { stage: i + 1, found: other.describe() }),
            }
            continue;
        }
        // The last stage: the ROM took PROG_START. Unless asked to follow the
        // board, that is the end of the run.
        if opts.follow {
            let what = "the next stage on USB";
            report.next =
                Some(match follow(conn, &info, &ids, what, link, stage.entry, ropts, conn.stage_timeout)? {
                    Back::NewAddress(next) => {
                        match open(conn, &next)
                            .and_then(|mut l| rom::identify_patiently(&mut *l, ropts, conn.progress))
                        {
                            Ok(stage) => NextStage::Answered { stage },
                            Err(e) => NextStage::Silent { error: e.to_string() },
                        }
                    }
                    Back::SameAddress(_, stage) => NextStage::Answered { stage },
                });
        }
        break;
    }
    Ok(report)
}

fn open(conn: &mut Connector, info: &UsbInfo) -> Result<Box<dyn UsbLink>, CanaanError> {
    conn.open_usb(info)
        .map_err(|e| CanaanError::link(format!("opening {} at USB port {}", info.id(), info.port_path), e))
}

/// How the board came back after a stage.
pub enum Back {
    /// A new enumeration at the same USB port path (the old one may linger).
    NewAddress(UsbInfo),
    /// The same enumeration: the link used for PROG_START answers again,
    /// after it went unanswered at least once while the stage ran. The
    /// stage it answered as.
    SameAddress(Box<dyn UsbLink>, DeviceStage),
}

/// Waits up to `within` for the board that took PROG_START(`entry`) on
/// `old` to come back, in either of the plausible ways (review F3): at the
/// same port path with a new bus address, or at the same address, where
/// GET_CPU_INFO first goes unanswered while the started code runs and then
/// answers again. A ROM that answered "K230" on every probe never started
/// anything ([`CanaanError::NoJump`]); nothing at all is
/// [`CanaanError::NoNextStage`].
#[allow(clippy::too_many_arguments)]
pub fn follow(
    conn: &mut Connector,
    from: &UsbInfo,
    ids: &[UsbId],
    what: &str,
    mut old: Box<dyn UsbLink>,
    entry: u32,
    ropts: &RomOptions,
    within: Duration,
) -> Result<Back, CanaanError> {
    conn.progress.say(format!("waiting for {what} at USB port {}...", from.port_path));
    let probe = RomOptions { control_timeout: PROBE_TIMEOUT, ..ropts.clone() };
    let deadline = Instant::now() + within;
    // The old link: still open, and whether it ever went unanswered.
    let (mut alive, mut went_quiet, mut always_rom) = (true, false, true);
    loop {
        conn.progress.check_cancel().map_err(|e| CanaanError::link(format!("waiting for {what}"), e))?;
        let listed = conn.usb.devices().map_err(|e| CanaanError::link(format!("waiting for {what}"), e))?;
        if let Some(d) = listed.into_iter().find(|d| {
            d.port_path == from.port_path && d.address != from.address && ids.iter().any(|id| id.matches(d))
        }) {
            return Ok(Back::NewAddress(d));
        }
        if alive {
            match rom::identify(&mut *old, &probe) {
                Ok(stage) if went_quiet => return Ok(Back::SameAddress(old, stage)),
                Ok(DeviceStage::BootRom) => {}
                Ok(_) => always_rom = false,
                Err(CanaanError::Link { source: LinkError::Disconnected { .. }, .. }) => {
                    // It left the bus: a new enumeration is coming (or not).
                    alive = false;
                    always_rom = false;
                }
                Err(CanaanError::Link { source: LinkError::Interrupted, .. }) => {
                    return Err(CanaanError::link(format!("waiting for {what}"), LinkError::Interrupted));
                }
                Err(_) => {
                    went_quiet = true;
                    always_rom = false;
                }
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        // The poll interval of k230-flash's `wait_for_device_mode`.
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
    if alive && always_rom {
        return Err(CanaanError::NoJump { entry });
    }
    Err(CanaanError::NoNextStage { what: what.to_string(), port: from.port_path.clone(), waited: within })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_bring_up_waits_the_stage_timeout_but_never_less_than_the_loader_needs() {
        let o = Options::storage(false, None);
        assert!(!o.rom.accept_unknown_cpu && !o.follow);
        assert_eq!(o.next_stage_wait, racklet_link::connect::STAGE_TIMEOUT.max(NEXT_STAGE_WAIT));
        assert_eq!(Options::storage(false, Some(Duration::from_secs(1))).next_stage_wait, NEXT_STAGE_WAIT);
        let o = Options::storage(true, Some(Duration::from_secs(60)));
        assert!(o.rom.accept_unknown_cpu);
        assert_eq!(o.next_stage_wait, Duration::from_secs(60));
    }
}
