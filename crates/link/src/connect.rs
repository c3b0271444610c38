//! Finding, waiting for, following and opening a board's devices: the one
//! place every boot flow goes through to reach hardware (or the sim).
//!
//! A [`Connector`] holds the buses of a run, the user's selector and time
//! limits, the transcript recorder and the progress sink. Protocol crates
//! take `&mut Connector` in their `boot` function; they never list devices
//! or sleep-and-poll themselves.
//!
//! Rules it keeps, all from how real boards and hosts behave:
//! - a board is followed across re-enumeration by its **USB port path**,
//!   never by VID:PID, so another board plugged in meanwhile is never taken;
//! - the old enumeration may linger for a moment after a stage starts: the
//!   same bus address is skipped when following;
//! - a device that has just appeared may not be openable yet (udev has not
//!   applied its permissions; the configuration is not set; the old node is
//!   stale): opening is retried with backoff for a bounded time on
//!   permission, busy, not-found and disconnected errors, and only then does
//!   it fail with that error's class (k230_flash retries claim 20 × 500 ms,
//!   snagboot 9 × 1 s, rkdeveloptool 3 × 1 s);
//! - every wait checks the progress sink's cancel flag between polls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::select::{Selector, canonical_tty};
use crate::transcript::{Recorder, TranscriptWriter};
use crate::{LinkError, ProgressSink, SerialBus, SerialInfo, SerialLink, UsbBus, UsbInfo, UsbLink};

/// How often waits look again (USB enumeration takes tens of milliseconds;
/// a Sophgo ROM's download window is about a second).
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Longest sleep on a hotplug watcher between two listings.
pub const HOTPLUG_RESCAN: Duration = Duration::from_millis(250);

/// How long a board may take to come back between stages unless its user
/// or its protocol says otherwise (`--stage-timeout`).
pub const STAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a device that has just appeared is retried.
pub const OPEN_PATIENCE: Duration = Duration::from_secs(10);

/// First pause between two open attempts; it doubles up to [`OPEN_BACKOFF_MAX`].
const OPEN_BACKOFF_START: Duration = Duration::from_millis(50);
const OPEN_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// A USB vendor and product id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct UsbId {
    pub vid: u16,
    pub pid: u16,
}

impl UsbId {
    pub const fn new(vid: u16, pid: u16) -> UsbId {
        UsbId { vid, pid }
    }

    /// True when the USB device has this id.
    pub fn matches(&self, d: &UsbInfo) -> bool {
        d.vid == self.vid && d.pid == self.pid
    }

    /// True when the serial port's USB device has this id.
    pub fn matches_serial(&self, p: &SerialInfo) -> bool {
        p.vid == Some(self.vid) && p.pid == Some(self.pid)
    }
}

impl std::fmt::Display for UsbId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)
    }
}

/// A `VID:PID` that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a USB id: write it as VID:PID in hex, e.g. 3346:1000")]
pub struct UsbIdError {
    pub input: String,
}

impl std::str::FromStr for UsbId {
    type Err = UsbIdError;

    /// `VID:PID`, each 1–4 hex digits with an optional `0x`.
    fn from_str(s: &str) -> Result<UsbId, UsbIdError> {
        let err = || UsbIdError { input: s.to_string() };
        let (v, p) = s.trim().split_once(':').ok_or_else(err)?;
        let hex = |x: &str| {
            let x = x.strip_prefix("0x").or_else(|| x.strip_prefix("0X")).unwrap_or(x);
            if x.is_empty() || x.len() > 4 {
                return Err(err());
            }
            u16::from_str_radix(x, 16).map_err(|_| err())
        };
        Ok(UsbId { vid: hex(v)?, pid: hex(p)? })
    }
}

/// Lists ids the way the user types them: `2207:350a, 2207:350b`.
pub fn id_list(ids: &[UsbId]) -> String {
    ids.iter().map(UsbId::to_string).collect::<Vec<_>>().join(", ")
}

/// A serial port to find again after its device re-enumerates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialKey {
    /// By USB port path (a USB CDC-ACM ROM or a USB-UART adapter).
    PortPath(String),
    /// By the tty name the user gave (a pty, a symlink with no USB facts),
    /// resolved again each time.
    Tty(String),
}

impl std::fmt::Display for SerialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SerialKey::PortPath(p) => write!(f, "USB port {p}"),
            SerialKey::Tty(t) => write!(f, "tty {t}"),
        }
    }
}

/// The devices of one run: buses, selector, limits, recorder, progress.
pub struct Connector<'a> {
    pub usb: Arc<dyn UsbBus>,
    pub serial: Arc<dyn SerialBus>,
    /// The user's `--port` for this board, if any.
    pub selector: Option<Selector>,
    /// How long to wait for the first device (`--wait`); `None`: it must be there.
    pub wait: Option<Duration>,
    /// How long a board may take to come back between stages (`--stage-timeout`).
    pub stage_timeout: Duration,
    /// How long opening a device that has just appeared is retried.
    pub open_patience: Duration,
    /// Where every transfer is recorded (`--record`).
    pub recorder: Option<TranscriptWriter>,
    /// The board the last find settled on: its USB port path, or for a
    /// serial port its USB port path or tty. A simulated run pairs the
    /// virtual ROM's verdict with the job by it.
    pub resolved: Option<String>,
    pub progress: &'a mut dyn ProgressSink,
}

impl<'a> Connector<'a> {
    /// A connector with no selector, no wait and a 10 s stage timeout.
    pub fn new(usb: Arc<dyn UsbBus>, serial: Arc<dyn SerialBus>, progress: &'a mut dyn ProgressSink) -> Self {
        Connector {
            usb,
            serial,
            selector: None,
            wait: None,
            stage_timeout: STAGE_TIMEOUT,
            open_patience: OPEN_PATIENCE,
            recorder: None,
            resolved: None,
            progress,
        }
    }

    fn cancelled(&self) -> bool {
        self.progress.cancelled()
    }

    /// Where the selector points, for messages ("at 1-3.2").
    fn at(&self) -> Option<String> {
        self.selector.as_ref().map(|s| s.to_string())
    }

    /// Finds the board's USB device: one of `ids`, matching the selector,
    /// waiting up to `wait` when given. Several matches are `Ambiguous`.
    pub fn find_usb(&mut self, ids: &[UsbId], what: &str) -> Result<UsbInfo, LinkError> {
        if let Some(sel @ (Selector::Tty(_) | Selector::Tcp { .. })) = &self.selector {
            return Err(LinkError::WrongTransport {
                what: what.to_string(),
                given: sel.to_string(),
                want: "a USB port path (see `racklet-flash list`)",
            });
        }
        let sel = self.selector.clone();
        let pred =
            |d: &UsbInfo| ids.iter().any(|id| id.matches(d)) && sel.as_ref().is_none_or(|s| s.matches_usb(d));
        let found = self
            .poll(self.wait, what, true, &mut |c| Ok(c.usb.devices()?.into_iter().filter(&pred).collect()))?;
        let d = one(found, what, |d| {
            format!("--port {:<10} {} {}", d.port_path, d.id(), d.product.clone().unwrap_or_default())
        })?;
        self.resolved = Some(d.port_path.clone());
        Ok(d)
    }

    /// Follows the board to its next stage at the same USB port path (a new
    /// bus address), for at most `within`. `ids` may differ from the
    /// previous stage's (a usbplug, a loader).
    pub fn follow_usb(
        &mut self,
        from: &UsbInfo,
        ids: &[UsbId],
        what: &str,
        within: Duration,
    ) -> Result<UsbInfo, LinkError> {
        self.progress.say(format!("waiting for {what} at USB port {}...", from.port_path));
        let (port, old) = (from.port_path.clone(), from.address);
        let pred =
            |d: &UsbInfo| d.port_path == port && d.address != old && ids.iter().any(|id| id.matches(d));
        let found = self
            .poll(Some(within), what, true, &mut |c| Ok(c.usb.devices()?.into_iter().filter(&pred).collect()))
            .map_err(|e| match e {
                LinkError::NotFound { .. } => {
                    LinkError::Timeout { op: format!("waiting for {what} at USB port {port}"), after: within }
                }
                e => e,
            })?;
        Ok(found.into_iter().next().expect("poll returns a non-empty list"))
    }

    /// Opens a USB device found by [`find_usb`](Self::find_usb) or
    /// [`follow_usb`](Self::follow_usb), retrying while it is not ready, and
    /// records its transfers when asked.
    pub fn open_usb(&mut self, info: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
        let usb = self.usb.clone();
        let link = self.retry_open(&mut || usb.open(info))?;
        Ok(match &self.recorder {
            Some(w) => Box::new(Recorder::usb(link, w.clone())),
            None => link,
        })
    }

    /// Finds the board's serial port. `ids`: only USB serial ports with one
    /// of these ids (a CDC-ACM ROM); `None`: any port (a UART adapter). A
    /// tty given with `--port` is used as is, even when no listing shows it
    /// (a pty, a symlink).
    pub fn find_serial(&mut self, ids: Option<&[UsbId]>, what: &str) -> Result<SerialInfo, LinkError> {
        if let Some(sel @ Selector::Tcp { .. }) = &self.selector {
            return Err(LinkError::WrongTransport {
                what: what.to_string(),
                given: sel.to_string(),
                want: "a tty path or a USB port path (see `racklet-flash list`)",
            });
        }
        let sel = self.selector.clone();
        let pred = |p: &SerialInfo| {
            ids.is_none_or(|ids| ids.iter().any(|id| id.matches_serial(p)))
                && sel.as_ref().is_none_or(|s| s.matches_serial(p))
        };
        if let Some(Selector::Tty(path)) = &self.selector {
            let path = path.clone();
            let found = self.poll(self.wait, what, false, &mut |c| {
                let listed: Vec<SerialInfo> = c.serial.ports()?.into_iter().filter(&pred).collect();
                Ok(if !listed.is_empty() {
                    listed
                } else if path.exists() {
                    // The node it names now: following compares against it.
                    vec![SerialInfo {
                        path: canonical_tty(&path).display().to_string(),
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                })
            })?;
            let p = found.into_iter().next().expect("poll returns a non-empty list");
            self.resolved = Some(p.port_path.clone().unwrap_or_else(|| p.path.clone()));
            return Ok(p);
        }
        let found = self.poll(self.wait, what, false, &mut |c| {
            Ok(c.serial.ports()?.into_iter().filter(&pred).collect())
        })?;
        let p = one(found, what, |p| {
            format!(
                "--port {:<14} {} {}",
                p.path,
                p.port_path.clone().map(|x| format!("(USB {x})")).unwrap_or_default(),
                p.product.clone().unwrap_or_default()
            )
        })?;
        self.resolved = Some(p.port_path.clone().unwrap_or_else(|| p.path.clone()));
        Ok(p)
    }

    /// How to find `info` again after its device re-enumerates.
    pub fn serial_key(&self, info: &SerialInfo) -> SerialKey {
        match &info.port_path {
            Some(pp) => SerialKey::PortPath(pp.clone()),
            None => SerialKey::Tty(match &self.selector {
                Some(Selector::Tty(t)) => t.display().to_string(),
                _ => info.path.clone(),
            }),
        }
    }

    /// Waits for a serial port to come back at `key` after a re-enumeration:
    /// the old node goes away and one appears at the same place (with one of
    /// `ids` when given). A node that never went away is taken as the new one
    /// after `linger` (the old enumeration may not be seen to leave). Returns
    /// `Ok(None)` when nothing came within `within`.
    pub fn follow_serial(
        &mut self,
        key: &SerialKey,
        old_path: &str,
        ids: Option<&[UsbId]>,
        within: Duration,
        linger: Duration,
    ) -> Result<Option<SerialInfo>, LinkError> {
        let start = Instant::now();
        let mut gone = false;
        loop {
            if self.cancelled() {
                return Err(LinkError::Interrupted);
            }
            let cur = match key {
                SerialKey::PortPath(pp) => self.serial.ports()?.into_iter().find(|p| {
                    p.port_path.as_deref() == Some(pp.as_str())
                        && ids.is_none_or(|ids| ids.iter().any(|id| id.matches_serial(p)))
                }),
                SerialKey::Tty(t) => {
                    let c = canonical_tty(t);
                    c.exists().then(|| SerialInfo { path: c.display().to_string(), ..Default::default() })
                }
            };
            match cur {
                None => gone = true,
                Some(p) if gone || p.path != old_path || start.elapsed() >= linger => return Ok(Some(p)),
                Some(_) => {}
            }
            if start.elapsed() >= within {
                return Ok(None);
            }
            std::thread::sleep(POLL_INTERVAL.min(within.saturating_sub(start.elapsed())));
        }
    }

    /// Opens a serial port at `baud`, retrying while it is not ready, and
    /// records its traffic when asked.
    pub fn open_serial(&mut self, info: &SerialInfo, baud: u32) -> Result<Box<dyn SerialLink>, LinkError> {
        let serial = self.serial.clone();
        let link = self.retry_open(&mut || serial.open(info, baud))?;
        Ok(match &self.recorder {
            Some(w) => Box::new(Recorder::serial_open(link, w.clone(), baud)),
            None => link,
        })
    }

    /// Polls `list` until it is non-empty, for at most `within` (`None`:
    /// look once). Nothing found is `NotFound{what, at, waited}`. USB waits
    /// sleep on the bus's hotplug watcher, serial waits poll.
    fn poll<T>(
        &mut self,
        within: Option<Duration>,
        what: &str,
        hotplug: bool,
        list: &mut dyn FnMut(&Self) -> Result<Vec<T>, LinkError>,
    ) -> Result<Vec<T>, LinkError> {
        let start = Instant::now();
        let mut announced = false;
        // The watcher exists before the first listing, so no arrival is missed.
        let mut watcher = (within.is_some() && hotplug).then(|| self.usb.watch());
        loop {
            let found = list(self)?;
            if !found.is_empty() {
                return Ok(found);
            }
            let Some(limit) = within else {
                return Err(LinkError::NotFound { what: what.to_string(), at: self.at(), waited: None });
            };
            if self.cancelled() {
                return Err(LinkError::Interrupted);
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(LinkError::NotFound {
                    what: what.to_string(),
                    at: self.at(),
                    waited: Some(limit),
                });
            }
            if !announced {
                announced = true;
                self.progress
                    .say(format!("waiting up to {} for {what}...", crate::error::fmt_duration(limit)));
            }
            match watcher.as_mut() {
                // Never longer than HOTPLUG_RESCAN: a device whose event came
                // before it could be opened (udev still busy) is seen anyway.
                Some(w) => w.wait(HOTPLUG_RESCAN.min(left)),
                None => std::thread::sleep(POLL_INTERVAL.min(left)),
            }
        }
    }

    /// Runs `open` until it succeeds, retrying errors a device that has just
    /// appeared gives (permission not yet applied, busy, not configured,
    /// stale node) with growing pauses, for at most `open_patience`.
    fn retry_open<L>(&mut self, open: &mut dyn FnMut() -> Result<L, LinkError>) -> Result<L, LinkError> {
        let start = Instant::now();
        let mut pause = OPEN_BACKOFF_START;
        let mut said = false;
        loop {
            match open() {
                Ok(l) => return Ok(l),
                Err(e)
                    if retryable(&e) && start.elapsed() + pause < self.open_patience && !self.cancelled() =>
                {
                    if !said && start.elapsed() >= Duration::from_secs(1) {
                        said = true;
                        self.progress.say(format!(
                            "{e}; retrying for up to {}",
                            crate::error::fmt_duration(self.open_patience)
                        ));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(OPEN_BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Errors of a device that is there but not ready to be opened yet.
fn retryable(e: &LinkError) -> bool {
    matches!(
        e,
        LinkError::PermissionDenied { .. }
            | LinkError::Busy { .. }
            | LinkError::NotConfigured { .. }
            | LinkError::NotFound { .. }
            | LinkError::Disconnected { .. }
    )
}

/// The one match, or `Ambiguous` with a line per candidate.
fn one<T>(mut found: Vec<T>, what: &str, line: impl Fn(&T) -> String) -> Result<T, LinkError> {
    if found.len() > 1 {
        return Err(LinkError::Ambiguous {
            what: what.to_string(),
            candidates: found.iter().map(line).collect(),
        });
    }
    Ok(found.remove(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::testing::{CollectProgress, ScriptedUsb};
    use crate::{Classify, FailureClass};

    /// A bus whose devices appear and leave at given times, and whose
    /// `open` is refused with `refuse` until `ready_at` (udev not done yet).
    struct Bus {
        start: Instant,
        devices: Vec<(Duration, Option<Duration>, UsbInfo)>,
        ready_at: Duration,
        refuse: fn() -> LinkError,
        opens: Mutex<u32>,
    }

    impl Bus {
        fn new(devices: Vec<(Duration, Option<Duration>, UsbInfo)>) -> Self {
            Bus {
                start: Instant::now(),
                devices,
                ready_at: Duration::ZERO,
                refuse: || LinkError::PermissionDenied { device: "d".into(), hint: "h".into() },
                opens: Mutex::new(0),
            }
        }
    }

    impl UsbBus for Bus {
        fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
            let t = self.start.elapsed();
            Ok(self
                .devices
                .iter()
                .filter(|(from, until, _)| t >= *from && until.is_none_or(|u| t < u))
                .map(|d| d.2.clone())
                .collect())
        }

        fn open(&self, info: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
            *self.opens.lock().unwrap() += 1;
            if self.start.elapsed() < self.ready_at {
                return Err((self.refuse)());
            }
            Ok(Box::new(ScriptedUsb { info: info.clone(), ..Default::default() }))
        }
    }

    struct NoSerial;
    impl SerialBus for NoSerial {
        fn ports(&self) -> Result<Vec<SerialInfo>, LinkError> {
            Ok(Vec::new())
        }
        fn open(&self, info: &SerialInfo, _: u32) -> Result<Box<dyn SerialLink>, LinkError> {
            Err(LinkError::not_found(info.path.clone()))
        }
    }

    fn dev(port: &str, address: u8, vid: u16, pid: u16) -> UsbInfo {
        UsbInfo { vid, pid, bus: 1, address, port_path: port.into(), ..Default::default() }
    }

    const ID: UsbId = UsbId::new(0x2207, 0x350a);
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn conn<'a>(bus: Bus, p: &'a mut CollectProgress) -> Connector<'a> {
        Connector::new(Arc::new(bus), Arc::new(NoSerial), p)
    }

    #[test]
    fn usb_ids_parse_as_users_write_them() {
        assert_eq!("2207:350a".parse::<UsbId>().unwrap(), UsbId::new(0x2207, 0x350a));
        assert_eq!("0x3346:0X1000".parse::<UsbId>().unwrap(), UsbId::new(0x3346, 0x1000));
        for bad in ["2207", "2207:", "12345:1", "xyz:1", ":1"] {
            assert!(bad.parse::<UsbId>().is_err(), "{bad}");
        }
        assert_eq!(id_list(&[ID, UsbId::new(1, 2)]), "2207:350a, 0001:0002");
    }

    #[test]
    fn nothing_there_is_not_found_with_what_and_where() {
        let mut p = CollectProgress::default();
        let mut c = conn(Bus::new(vec![]), &mut p);
        c.selector = Some(Selector::UsbPath("1-3".into()));
        let e = c.find_usb(&[ID], "RK3568 maskrom").unwrap_err();
        assert!(
            matches!(&e, LinkError::NotFound { what, at: Some(a), waited: None } if what == "RK3568 maskrom" && a.contains("1-3")),
            "{e:?}"
        );
        assert_eq!(e.class(), FailureClass::NotFound);
        assert!(e.hint().unwrap().contains("--wait"), "{:?}", e.hint());
        c.wait = Some(MS(60));
        let e = c.find_usb(&[ID], "RK3568 maskrom").unwrap_err();
        assert!(matches!(e, LinkError::NotFound { waited: Some(_), .. }), "{e:?}");
        assert!(e.to_string().contains("waited 60ms"), "{e}");
    }

    #[test]
    fn a_late_device_is_found_while_waiting_and_two_are_ambiguous() {
        let mut p = CollectProgress::default();
        let mut c = conn(Bus::new(vec![(MS(80), None, dev("1-2", 5, 0x2207, 0x350a))]), &mut p);
        c.wait = Some(Duration::from_secs(5));
        assert_eq!(c.find_usb(&[ID], "maskrom").unwrap().port_path, "1-2");
        drop(c);
        assert!(
            p.messages().iter().any(|m| m.starts_with("waiting up to 5s for maskrom")),
            "{:?}",
            p.messages()
        );

        let mut p = CollectProgress::default();
        let two =
            vec![(MS(0), None, dev("1-2", 5, 0x2207, 0x350a)), (MS(0), None, dev("1-3", 6, 0x2207, 0x350a))];
        let mut c = conn(Bus::new(two), &mut p);
        let e = c.find_usb(&[ID], "maskrom").unwrap_err();
        assert_eq!(e.class(), FailureClass::Ambiguous);
        let s = e.to_string();
        assert!(s.contains("--port 1-2") && s.contains("--port 1-3"), "{s}");
    }

    #[test]
    fn follow_takes_the_same_port_at_a_new_address_never_another_board() {
        let mut p = CollectProgress::default();
        let bus = Bus::new(vec![
            // The old enumeration lingers for a while.
            (MS(0), Some(MS(60)), dev("1-2", 5, 0x2207, 0x350a)),
            // Another board with the same ids on another port: never taken.
            (MS(0), None, dev("1-3", 9, 0x2207, 0x350a)),
            // The board back at its port with a new address.
            (MS(100), None, dev("1-2", 6, 0x2207, 0x350a)),
        ]);
        let mut c = conn(bus, &mut p);
        let from = dev("1-2", 5, 0x2207, 0x350a);
        let next = c.follow_usb(&from, &[ID], "the usbplug", Duration::from_secs(5)).unwrap();
        assert_eq!((next.port_path.as_str(), next.address), ("1-2", 6));
        let e = c.follow_usb(&next, &[ID], "the usbplug", MS(50)).unwrap_err();
        assert_eq!(e.class(), FailureClass::Timeout);
        assert!(e.to_string().contains("at USB port 1-2"), "{e}");
    }

    #[test]
    fn opening_a_device_that_just_appeared_is_retried_then_fails_with_its_class() {
        let mut p = CollectProgress::default();
        let mut bus = Bus::new(vec![]);
        bus.ready_at = MS(300);
        let d = dev("1-2", 5, 0x2207, 0x350a);
        let mut c = conn(bus, &mut p);
        assert!(c.open_usb(&d).is_ok(), "permission came after 300 ms");

        let mut p = CollectProgress::default();
        let mut bus = Bus::new(vec![]);
        bus.ready_at = Duration::from_secs(3600);
        bus.refuse = || LinkError::Busy { device: "d".into() };
        let mut c = conn(bus, &mut p);
        c.open_patience = MS(200);
        let e = c.open_usb(&d).err().expect("never ready");
        assert!(matches!(e, LinkError::Busy { .. }), "{e:?}");
    }

    #[test]
    fn a_cancelled_wait_stops_with_interrupted() {
        let mut p = crate::testing::CancelAfter::new(0);
        let mut c = Connector::new(Arc::new(Bus::new(vec![])), Arc::new(NoSerial), &mut p);
        c.wait = Some(Duration::from_secs(30));
        let t = Instant::now();
        assert!(matches!(c.find_usb(&[ID], "x"), Err(LinkError::Interrupted)));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
