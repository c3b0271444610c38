//! The whole run against a board: find the ROM, identify it, run each
//! stage, follow a stage that returns to the ROM by its USB port path, and —
//! when asked — what comes up after the last stage.
//!
//! No flow idles after its last stage: once the ROM took PROG_START the run
//! is over, unless [`Options::follow`] asks to wait for the next stage.

use std::time::Instant;

use racklet_image::Target;
use racklet_link::{Connector, LinkError, UsbId, UsbInfo, UsbLink};

use crate::plan::Plan;
use crate::report::{Chip, NextStage, Report, StageReport};
use crate::rom::{self, DeviceStage, RomOptions};
use crate::{CanaanError, PID, VID};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Chunking, timeouts, re-greet; `accept_unknown_cpu` goes on when the
    /// ROM does not say "K230" (`--force`).
    pub rom: RomOptions,
    /// After the last stage, wait (up to the connector's stage timeout) for
    /// what comes up next at the same USB port and report it; nothing coming
    /// up is then a timeout (`--follow`).
    pub follow: bool,
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
    let chip = match rom::identify(&mut *link, ropts)? {
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
            let next = follow(conn, &info, &ids, what, &mut *link, stage.entry, ropts)?;
            link = open(conn, &next)?;
            info = next;
            match rom::identify(&mut *link, ropts)? {
                DeviceStage::BootRom => conn.progress.say("the boot ROM is back; DRAM is up"),
                other => return Err(CanaanError::NotBackInRom { stage: i + 1, found: other.describe() }),
            }
            continue;
        }
        // The last stage: the ROM took PROG_START. Unless asked to follow the
        // board, that is the end of the run.
        if opts.follow {
            let next = follow(conn, &info, &ids, "the next stage on USB", &mut *link, stage.entry, ropts)?;
            report.next = Some(match open(conn, &next).and_then(|mut l| rom::identify(&mut *l, ropts)) {
                Ok(stage) => NextStage::Answered { stage },
                Err(e) => NextStage::Silent { error: e.to_string() },
            });
        }
    }
    Ok(report)
}

fn open(conn: &mut Connector, info: &UsbInfo) -> Result<Box<dyn UsbLink>, CanaanError> {
    conn.open_usb(info)
        .map_err(|e| CanaanError::link(format!("opening {} at USB port {}", info.id(), info.port_path), e))
}

/// Waits for the board at `from`'s port path with a new bus address. When
/// nothing comes, the old link (still open) tells whether the ROM is still
/// sitting there: then PROG_START started nothing.
fn follow(
    conn: &mut Connector,
    from: &UsbInfo,
    ids: &[UsbId],
    what: &str,
    old: &mut dyn UsbLink,
    entry: u32,
    ropts: &RomOptions,
) -> Result<UsbInfo, CanaanError> {
    let within = conn.stage_timeout;
    match conn.follow_usb(from, ids, what, within) {
        Ok(next) => Ok(next),
        Err(LinkError::Timeout { .. }) if rom::still_in_rom(old, ropts) => Err(CanaanError::NoJump { entry }),
        Err(LinkError::Timeout { .. }) => Err(CanaanError::NoNextStage {
            what: what.to_string(),
            port: from.port_path.clone(),
            waited: within,
        }),
        Err(e) => Err(CanaanError::link(format!("waiting for {what}"), e)),
    }
}
