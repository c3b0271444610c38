//! The UART boot sequence: wait for the ROM's poll, send the headed image
//! with XMODEM, watch what the ROM says; optionally feed the SPL's YMODEM
//! request for the next stage.

use std::time::{Duration, Instant};

use racklet_link::{LinkError, ProgressSink, SerialLink};

use crate::StarfiveError;
use crate::console::{PollDetector, check_refusal, wait_for_poll};
use crate::xmodem::{self, SendStats, XmodemConfig};

/// The ROM's line rate (sheet §1.2).
pub const BAUD: u32 = 115_200;

/// Boot settings.
#[derive(Debug, Clone)]
pub struct BootOptions {
    pub xmodem: XmodemConfig,
    /// How long to wait for the ROM's first poll.
    pub poll_timeout: Duration,
    /// How long after a `C` to wait for a `)` that would make it part of the
    /// banner.
    pub poll_grace: Duration,
    /// How long to watch the console after EOT for `CRC Error` before
    /// declaring the image started. The ROM checks a 256 KiB image in
    /// milliseconds; a second covers slow adapters.
    pub verdict_window: Duration,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            xmodem: XmodemConfig::default(),
            poll_timeout: Duration::from_secs(10),
            poll_grace: Duration::from_millis(100),
            verdict_window: Duration::from_secs(1),
        }
    }
}

/// What a boot did.
#[derive(Debug, Clone)]
pub struct BootReport {
    pub stats: SendStats,
    /// What the console printed after the transfer (the payload's first
    /// words, when it prints).
    pub console: String,
}

/// Watches the console for `window`: a CRC error or the banner fail, polls
/// alone (the ROM waiting again without a message) fail too.
fn watch<L: SerialLink + ?Sized>(
    link: &mut L,
    window: Duration,
    already: &[u8],
    progress: &mut dyn ProgressSink,
) -> Result<String, StarfiveError> {
    let start = Instant::now();
    let mut det = PollDetector::new();
    let mut polls = already.iter().filter(|&&b| det.feed(b)).count();
    let mut buf = [0u8; 256];
    while start.elapsed() < window {
        progress.check_cancel()?;
        let left = window.saturating_sub(start.elapsed()).min(Duration::from_millis(100));
        match link.read(&mut buf, left) {
            Ok(n) => {
                for &b in &buf[..n] {
                    if det.feed(b) {
                        polls += 1;
                    }
                }
                check_refusal(&det)?;
            }
            Err(LinkError::Timeout { .. }) => {
                if det.idle() {
                    polls += 1;
                }
            }
            // The receiver acknowledged the image and then the port went
            // away (a test peer that exits, an adapter unplugged): nothing
            // refused the image, but nothing more can be read either.
            Err(LinkError::Disconnected { .. }) => {
                let text = det.text();
                return Ok(if text.is_empty() {
                    "(the port closed after the transfer)".into()
                } else {
                    format!("{text} (then the port closed)")
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    let text = det.text();
    // Several polls and nothing else: the ROM is waiting for an image again.
    if polls >= 3 && text.chars().all(|c| c == 'C' || c == ' ') {
        return Err(StarfiveError::RomRestarted { what: "it went back to polling with C".into() });
    }
    Ok(text)
}

/// Boots `image` (already headed) through the ROM on `link`.
pub fn boot_uart<L: SerialLink + ?Sized>(
    link: &mut L,
    image: &[u8],
    opts: &BootOptions,
    progress: &mut dyn ProgressSink,
) -> Result<BootReport, StarfiveError> {
    let cancel = || progress.check_cancel();
    wait_for_poll(link, opts.poll_timeout, opts.poll_grace, false, &[], &cancel)?;
    // Polls that piled up while we decided would read as answers to block 1.
    link.clear_input()?;
    let name = if opts.xmodem.block == xmodem::BlockSize::K1 { "xmodem-1k" } else { "xmodem" };
    progress.stage(name, Some(image.len() as u64));
    let stats = xmodem::send(link, image, &opts.xmodem, progress)?;
    progress.done(name);
    let console = if opts.verdict_window.is_zero() {
        String::new()
    } else {
        watch(link, opts.verdict_window, &stats.trailing, progress)?
    };
    Ok(BootReport { stats, console })
}

/// After a boot, waits up to `wait` for the SPL to ask for its next stage
/// (YMODEM polls) and sends `data` as `name`. A `CRC Error` or the ROM
/// banner while waiting means the ROM refused the image. `boot` is the
/// report of the boot (the console bytes that came with the last ACK).
pub fn send_next_stage<L: SerialLink + ?Sized>(
    link: &mut L,
    boot: &BootReport,
    name: &str,
    data: &[u8],
    wait: Duration,
    opts: &BootOptions,
    progress: &mut dyn ProgressSink,
) -> Result<(SendStats, String), StarfiveError> {
    let cancel = || progress.check_cancel();
    let det = wait_for_poll(link, wait, opts.poll_grace, true, &boot.stats.trailing, &cancel)?;
    link.clear_input()?;
    progress.stage("ymodem", Some(data.len() as u64));
    let mut cfg = opts.xmodem.clone();
    cfg.block = xmodem::BlockSize::K1;
    let stats = xmodem::send_ymodem(link, name, data, &cfg, progress)?;
    progress.done("ymodem");
    Ok((stats, det.text()))
}
