//! The maskrom download: vendor control OUT transfers, bmRequestType 0x40,
//! bRequest 0x0C, wValue 0, wIndex 0x471 / 0x472 (fact sheet §1).

use std::time::{Duration, Instant};

use racklet_link::{ControlSetup, LinkError, ProgressSink, UsbInfo, UsbLink};

use crate::RockchipError;
use crate::frame::{self, FrameOptions};
use crate::loader::{EntryKind, Loader};

/// bRequest of both stages.
pub const REQUEST: u8 = 0x0c;
/// wIndex of the DRAM-init stage (runs from SRAM).
pub const INDEX_471: u16 = 0x0471;
/// wIndex of the usbplug stage (loaded into DRAM and started).
pub const INDEX_472: u16 = 0x0472;

/// Longest entry delay honoured (a damaged file must not hang the run).
pub const MAX_DELAY_MS: u64 = 10_000;

/// Transfer timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Every transfer but the last of a stage (rockusb uses 5 s).
    pub transfer: Duration,
    /// At least this long for the last transfer of a stage (and the first
    /// of the next), where the ROM checks the CRC bit by bit (~124 kB/s on
    /// RK3576) and runs DDR init before it completes the status stage.
    pub last: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { transfer: Duration::from_secs(5), last: Duration::from_secs(10) }
    }
}

impl Timeouts {
    /// The last-transfer timeout for a stage of `len` bytes: `last`, or the
    /// time the ROM's slow CRC check needs at 100 kB/s plus 5 s.
    pub fn last_for(&self, len: usize) -> Duration {
        self.last.max(Duration::from_millis(len as u64 / 100) + Duration::from_secs(5))
    }
}

/// What one stage put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageReport {
    /// Stage name ("ddr", "usbplug", or the loader entry name).
    pub name: String,
    /// wIndex.
    pub index: u16,
    /// Payload bytes before framing.
    pub payload: usize,
    /// Control transfers sent (including the 4094 trailer).
    pub transfers: usize,
    /// The CRC-16 sent.
    pub crc: u16,
    /// From the first transfer to the end of the last.
    pub elapsed: Duration,
    /// What went wrong on the 4094 rule's 1-byte trailer, if anything: no
    /// reference tool depends on the ROM's answer to it, so it is not fatal.
    pub trailer_error: Option<String>,
}

/// The bcdUSB rule (bit 0 set ⇒ loader). Beware: Rockchip's usbplug
/// reports 0x0200 and so looks like maskrom; RK3066's maskrom reports 0x0201
/// (fact sheet §5). Use it only as a hint, confirm with a rockusb probe.
pub fn looks_like_loader(info: &UsbInfo) -> bool {
    info.bcd_usb & 1 == 1
}

/// Sends one stage: frames `payload` (RC4 and CRC per `opts`) and sends it
/// in 4096-byte transfers, plus the 1-byte trailer when the rules need it.
pub fn download_stage<L: UsbLink + ?Sized>(
    link: &mut L,
    index: u16,
    name: &str,
    payload: &[u8],
    opts: FrameOptions,
    t: &Timeouts,
    progress: &mut dyn ProgressSink,
) -> Result<StageReport, RockchipError> {
    let n = payload.len();
    let total = frame::transfer_count(n);
    let setup = ControlSetup::vendor_out(REQUEST, 0, index);
    progress.stage(name, Some(frame::wire_len(n) as u64));
    let last_timeout = t.last_for(n);
    let started = Instant::now();
    let mut k = 0;
    let mut trailer_error = None;
    let trailer = frame::has_trailer(n);
    let crc = frame::stream(payload, opts, |chunk| -> Result<(), RockchipError> {
        progress.check_cancel().map_err(|_| RockchipError::Interrupted)?;
        // The first transfer may wait for the previous stage's DDR init,
        // the last for the ROM's CRC check: both get the long timeout.
        let timeout = if k == 0 || k + 1 == total { last_timeout } else { t.transfer };
        let sent = link.control_out(setup, chunk, timeout);
        if trailer && k + 1 == total {
            // The 4094 rule's 1-byte trailer: the stage already ended with
            // its last full transfer. No reference tool depends on the ROM's
            // answer here (xrock ignores it, rock.c:170-174; rkdeveloptool
            // counts its own success as a failure, RKComm.cpp:867-876).
            match sent {
                Err(LinkError::Interrupted) => return Err(RockchipError::Interrupted),
                Err(e) => {
                    let why = format!("the 1-byte trailer of the {name} stage was not acknowledged ({e})");
                    progress.say(format!("{why}; carrying on, as xrock does"));
                    trailer_error = Some(why);
                }
                Ok(()) => {}
            }
            k += 1;
            progress.advance(chunk.len() as u64);
            return Ok(());
        }
        sent.map_err(|e| match e {
            LinkError::Stall { .. } => {
                RockchipError::Rejected { stage: name.to_string(), index, transfer: k + 1, total }
            }
            LinkError::Interrupted => RockchipError::Interrupted,
            source => {
                RockchipError::Transfer { stage: name.to_string(), index, transfer: k + 1, total, source }
            }
        })?;
        k += 1;
        progress.advance(chunk.len() as u64);
        Ok(())
    })?;
    progress.done(name);
    Ok(StageReport {
        name: name.to_string(),
        index,
        payload: n,
        transfers: total,
        crc,
        elapsed: started.elapsed(),
        trailer_error,
    })
}

/// Sends an RKBOOT loader the way rkdeveloptool's `db` does: every 0x471
/// entry, then every 0x472 entry, bytes exactly as stored (the packing tool
/// already stored them in wire form, so no RC4 here), each followed by the
/// delay the file gives. `file` is the whole loader file.
pub fn download_loader<L: UsbLink + ?Sized>(
    link: &mut L,
    loader: &Loader,
    file: &[u8],
    zero_crc: bool,
    t: &Timeouts,
    progress: &mut dyn ProgressSink,
) -> Result<Vec<StageReport>, RockchipError> {
    let mut reports = Vec::new();
    for (kind, index) in [(EntryKind::Code471, INDEX_471), (EntryKind::Code472, INDEX_472)] {
        for e in loader.of(kind) {
            let name = format!("{} {}", kind.name(), e.name);
            if e.size == 0 {
                // rkdeveloptool's DownloadBoot sends an entry only if its
                // size is > 0 (RKDevice.cpp:522, 554): an empty one would
                // be a 2-byte stage (the CRC of nothing) that the ROM runs.
                progress.say(format!("{name}: 0 bytes, skipped (as rkdeveloptool does)"));
                continue;
            }
            let opts = FrameOptions { rc4: false, zero_crc };
            reports.push(download_stage(link, index, &name, loader.data(file, e), opts, t, progress)?);
            if e.delay_ms > 0 {
                // The loader file asks for this pause after the entry (rkbin
                // writes 1 ms after each 0x471 entry) while the ROM runs it.
                // Capped, so a damaged delay field cannot hang the run.
                std::thread::sleep(Duration::from_millis(u64::from(e.delay_ms).min(MAX_DELAY_MS)));
            }
        }
    }
    Ok(reports)
}
