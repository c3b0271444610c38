//! The UART boot sequence: find the UART, wait for the ROM's poll, send the
//! headed image with XMODEM, watch what the ROM says; optionally feed the
//! SPL's YMODEM request for the next stage.
//!
//! [`boot`] is the whole flow through a [`Connector`]; [`boot_uart`] and
//! [`send_next_stage`] are its two halves on an open link.

use std::path::Path;
use std::time::{Duration, Instant};

use racklet_image::Target;
use racklet_link::{Classify, Connector, LinkError, ProgressSink, SerialLink};

use crate::StarfiveError;
use crate::console::{PollDetector, check_refusal, wait_for_poll};
use crate::plan::Plan;
use crate::report::{NextStageReport, Report, Transfer};
use crate::xmodem::{self, SendStats, XmodemConfig};

/// What the UART of a JH7110 board is, in messages.
pub const UART: &str = "USB-UART adapter on the JH7110's UART0";

/// The latency timer `low_latency` sets: the shortest an FTDI chip allows.
const LOW_LATENCY: Duration = Duration::from_millis(1);

/// How to boot. The defaults are the ROM's; a new way of booting (a faster
/// loader after the ROM stage, say) adds a field here whose default keeps
/// the boot as it is.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The ROM stage: XMODEM settings, poll and verdict timing. Its
    /// `poll_timeout` applies when the connector has no `wait`.
    pub boot: BootOptions,
    /// Set an FTDI adapter's latency timer to 1 ms before sending (each
    /// XMODEM block otherwise waits up to 16 ms for its ACK).
    pub low_latency: bool,
    /// The port runs at the line rate even when it is a pseudo-terminal: a
    /// `--simulate` board's UART is paced at its baud rate. The summary
    /// then states throughput against the line rate; on any other pty it
    /// cannot. Only a virtual board is such a port, so the messages then
    /// leave out what to do with a real one (switches, power).
    pub paced: bool,
}

/// What the user does to a real board for the ROM to poll; nothing for a
/// virtual one (a paced pty).
pub(crate) fn entry_advice(paced: bool) -> &'static str {
    if paced { "" } else { " (set the boot switches to UART and power-cycle the board)" }
}

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
    /// Ends the verdict window early once the console printed this: the
    /// started program said it runs (the fastload loader's banner).
    pub verdict_until: Option<String>,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            xmodem: XmodemConfig::default(),
            poll_timeout: Duration::from_secs(10),
            poll_grace: Duration::from_millis(100),
            verdict_window: Duration::from_secs(1),
            verdict_until: None,
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
    until: Option<&str>,
    already: &[u8],
    progress: &mut dyn ProgressSink,
) -> Result<String, StarfiveError> {
    let start = Instant::now();
    let mut det = PollDetector::new();
    let mut polls = already.iter().filter(|&&b| det.feed(b)).count();
    let mut buf = [0u8; 256];
    let ran = |det: &PollDetector| until.is_some_and(|u| det.saw(u));
    while start.elapsed() < window && !ran(&det) {
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
    if ran(&det) {
        return Ok(text);
    }
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
        watch(link, opts.verdict_window, opts.verdict_until.as_deref(), &stats.trailing, progress)?
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
    let det = wait_for_poll(link, wait, opts.poll_grace, true, &boot.stats.trailing, &cancel).map_err(
        |e| match e {
            StarfiveError::NoPoll { waited, printed } => {
                StarfiveError::NoNextStageRequest { waited, printed }
            }
            e => e,
        },
    )?;
    link.clear_input()?;
    progress.stage("ymodem", Some(data.len() as u64));
    let mut cfg = opts.xmodem.clone();
    cfg.block = xmodem::BlockSize::K1;
    // NAK-ignoring is for the ROM stage (vf2-recover); U-Boot's `C` and NAK
    // mean the block did not arrive.
    cfg.nak_policy = xmodem::NakPolicy::Resend;
    let stats = xmodem::send_ymodem(link, name, data, &cfg, progress)?;
    progress.done("ymodem");
    Ok((stats, det.text()))
}

/// The adapter's latency timer, set to 1 ms when asked: a note for the user
/// when it matters (above 1 ms), `None` otherwise.
fn latency_note(link: &mut dyn SerialLink, set_low: bool) -> Option<String> {
    let ms = link.latency_timer()?.as_millis();
    if ms <= LOW_LATENCY.as_millis() {
        return None;
    }
    let path = link.info().path.clone();
    let name = Path::new(&path).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or(path);
    if !set_low {
        return Some(format!(
            "{name} is an FTDI adapter with a {ms} ms latency timer: every XMODEM block waits up to {ms} ms for its ACK; add --low-latency to set it to 1 ms"
        ));
    }
    Some(match link.set_latency_timer(LOW_LATENCY) {
        Ok(()) => format!("set the FTDI latency timer of {name} from {ms} ms to 1 ms"),
        Err(e) => match e.hint() {
            Some(fix) => format!("could not set the FTDI latency timer of {name} to 1 ms ({e}); {fix}"),
            None => format!("could not set the FTDI latency timer of {name} to 1 ms ({e})"),
        },
    })
}

/// True for a pseudo-terminal (Linux's `/dev/pts/N`, also behind a symlink
/// such as socat's): it passes bytes at any speed, so a line rate means
/// nothing on it.
pub(crate) fn is_pty(path: &str) -> bool {
    std::fs::canonicalize(path).is_ok_and(|p| p.starts_with("/dev/pts"))
}

pub(crate) fn transfer(name: &'static str, block: usize, s: &SendStats) -> Transfer {
    Transfer {
        name,
        bytes: s.data_bytes,
        block,
        blocks: s.blocks,
        frames_sent: s.frames_sent,
        naks: s.naks,
        stale_naks: s.stale_naks,
        timeouts: s.timeouts,
        eot_acked: s.eot_acked,
        ms: s.elapsed.as_millis() as u64,
        throughput: s.throughput(),
    }
}

/// The whole boot of `plan` on `target`: finds the UART adapter through
/// `conn` (the user's selector, `--wait`), opens it at the ROM's rate, sets
/// the adapter's latency timer when asked, waits for the ROM's poll (up to
/// the connector's `wait`, else `opts.boot.poll_timeout`), sends the image,
/// watches the verdict, and feeds the next stage to U-Boot SPL when the
/// plan has one (waiting up to the connector's `stage_timeout` for it to
/// ask). With a fast plan the image is the fastload loader, and the payload
/// then goes through it on the same link (`crate::fast`).
pub fn boot(
    conn: &mut Connector,
    plan: &Plan,
    target: &Target,
    opts: &Options,
) -> Result<Report, StarfiveError> {
    for note in &plan.notes {
        conn.progress.say(format!("warning: {note}"));
    }
    let info = conn.find_serial(None, UART)?;
    let mut link = conn.open_serial(&info, target.baud.unwrap_or(BAUD))?;
    if let Some(note) = latency_note(&mut *link, opts.low_latency) {
        conn.progress.say(note);
    }
    let mut bo = opts.boot.clone();
    bo.poll_timeout = conn.wait.unwrap_or(bo.poll_timeout);
    if plan.next.is_some() {
        // The SPL's YMODEM polls follow at once; they are the verdict.
        bo.verdict_window = Duration::ZERO;
    }
    // With --fast the ROM's image is the loader; the payload follows it.
    let sent = match &plan.fast {
        Some(f) => {
            // The loader's banner says it runs (docs/fastload.md §2); HELLO
            // may go at once.
            bo.verdict_until = Some(crate::fast::BANNER.into());
            format!(
                "{} ({}), then {} ({} bytes to 0x{:x} at {} baud) through it",
                f.loader,
                plan.kind,
                plan.payload.display(),
                f.bytes.len(),
                f.load,
                f.baud
            )
        }
        None => format!("{}: {}", plan.payload.display(), plan.kind),
    };
    conn.progress.say(format!(
        "{sent}; waiting up to {}s for the ROM's XMODEM poll on {}{}",
        bo.poll_timeout.as_secs_f64(),
        info.path,
        entry_advice(opts.paced)
    ));
    let rom = boot_uart(&mut *link, &plan.image, &bo, &mut *conn.progress)?;
    let name = if bo.xmodem.block == xmodem::BlockSize::K1 { "xmodem-1k" } else { "xmodem" };
    let mut report = Report {
        port: info.path.clone(),
        pty: is_pty(&info.path),
        paced: opts.paced,
        image_bytes: plan.image.len(),
        image: plan.kind.clone(),
        rom: transfer(name, bo.xmodem.block.bytes(), &rom.stats),
        console: rom.console.clone(),
        load_address: target.load_address,
        next: None,
        fast: None,
    };
    if let Some(f) = &plan.fast {
        report.fast =
            Some(crate::fast::send(&mut *link, f, target.baud.unwrap_or(BAUD), &mut *conn.progress)?);
    }
    if let Some(n) = &plan.next {
        let (ys, said) = send_next_stage(
            &mut *link,
            &rom,
            &n.name,
            &n.data,
            conn.stage_timeout,
            &bo,
            &mut *conn.progress,
        )?;
        report.next = Some(NextStageReport {
            name: n.name.clone(),
            transfer: transfer("ymodem", xmodem::BlockSize::K1.bytes(), &ys),
            spl_said: said,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use racklet_link::testing::ScriptedSerial;
    use racklet_link::{LinkError, SerialInfo};

    use super::*;

    /// A scripted port behind an adapter with a latency timer.
    struct Adapter {
        port: ScriptedSerial,
        timer: Option<Duration>,
        refuse: bool,
    }

    impl Adapter {
        fn new(timer: Option<u64>, refuse: bool) -> Self {
            let mut port = ScriptedSerial::new();
            port.info = SerialInfo { path: "/dev/ttyUSB3".into(), ..Default::default() };
            Adapter { port, timer: timer.map(Duration::from_millis), refuse }
        }
    }

    impl SerialLink for Adapter {
        fn info(&self) -> &SerialInfo {
            self.port.info()
        }
        fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
            self.port.write_all(data)
        }
        fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
            self.port.read(buf, timeout)
        }
        fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
            self.port.set_baud(baud)
        }
        fn clear_input(&mut self) -> Result<(), LinkError> {
            self.port.clear_input()
        }
        fn latency_timer(&self) -> Option<Duration> {
            self.timer
        }
        fn set_latency_timer(&mut self, to: Duration) -> Result<(), LinkError> {
            if self.refuse {
                return Err(LinkError::PermissionDenied {
                    device: "/sys/bus/usb-serial/devices/ttyUSB3/latency_timer".into(),
                    hint: "run `echo 1 | sudo tee /sys/bus/usb-serial/devices/ttyUSB3/latency_timer`".into(),
                });
            }
            self.timer = Some(to);
            Ok(())
        }
    }

    #[test]
    fn a_slow_ftdi_timer_is_named_and_set_when_asked() {
        let mut a = Adapter::new(Some(16), false);
        let note = latency_note(&mut a, false).unwrap();
        assert!(note.starts_with("ttyUSB3 is an FTDI adapter with a 16 ms latency timer"), "{note}");
        assert!(note.contains("--low-latency"), "{note}");
        assert_eq!(a.timer, Some(Duration::from_millis(16)), "not changed unless asked");
        let note = latency_note(&mut a, true).unwrap();
        assert_eq!(note, "set the FTDI latency timer of ttyUSB3 from 16 ms to 1 ms");
        assert_eq!(a.timer, Some(Duration::from_millis(1)));
        // At 1 ms, or without a timer, there is nothing to say.
        assert_eq!(latency_note(&mut a, true), None);
        assert_eq!(latency_note(&mut Adapter::new(None, false), true), None);
    }

    #[test]
    fn a_refused_timer_write_gives_the_command_that_does_it() {
        let note = latency_note(&mut Adapter::new(Some(16), true), true).unwrap();
        assert!(
            note.starts_with("could not set the FTDI latency timer of ttyUSB3 to 1 ms (permission denied"),
            "{note}"
        );
        assert!(
            note.ends_with("run `echo 1 | sudo tee /sys/bus/usb-serial/devices/ttyUSB3/latency_timer`"),
            "{note}"
        );
    }
}
