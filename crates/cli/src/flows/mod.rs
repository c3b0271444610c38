//! Per-protocol flows and the context they run in.
//!
//! Every protocol module offers the same five entry points:
//! - `maskrom(ctx)`: find the ROM, load, start; returns an [`Outcome`].
//! - `attach_sim(sim)`: put the board's virtual ROM on the simulated buses.
//! - `image(board, args, payload)`: the storage boot image the ROM expects.
//! - `info(path, bytes)`: decode the protocol's own file formats.
//! - `serve(board, args, out)`: `racklet-flash sim`, the ROM outside the process.
//!
//! The flow code is the same for hardware and simulation: only the buses in
//! the [`Ctx`] differ.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use racklet_link::transcript::{Recorder, TranscriptWriter};
use racklet_link::{FailureClass, LinkError, ProgressSink, Selector, SerialInfo, UsbBus, UsbInfo, UsbLink};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

use crate::boards::{Board, Protocol};
use crate::cli::MaskromArgs;
use crate::error::{bad_input, fail};

pub mod fastboot;

/// What a finished flow reports (chip info, what ran where).
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Key/value facts for the summary and the JSON `done` event.
    pub facts: Vec<(String, String)>,
}

impl Outcome {
    pub fn fact(&mut self, k: &str, v: impl Into<String>) {
        self.facts.push((k.to_string(), v.into()));
    }
}

/// Everything one job (one board) needs.
pub struct Ctx<'a> {
    pub board: &'a Board,
    pub args: &'a MaskromArgs,
    pub usb: Arc<dyn UsbBus>,
    /// The device selector of this job, if any.
    pub selector: Option<Selector>,
    pub progress: &'a mut dyn ProgressSink,
    pub transcript: Option<TranscriptWriter>,
    /// The device this job found: its USB port path, set by
    /// [`Ctx::find_usb`]. A simulated run pairs the virtual ROM's verdict
    /// with the job by it.
    pub resolved: Option<String>,
}

/// Lines describing candidates, for "several devices match" errors.
fn usb_candidates(found: &[UsbInfo]) -> String {
    found
        .iter()
        .map(|d| format!("  --port {:<10} {} {}", d.port_path, d.id(), d.product.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Ctx<'_> {
    /// How long to wait for the first device.
    pub fn wait(&self) -> Option<Duration> {
        self.args.connect.wait
    }

    /// How long a board may take to come back between stages.
    pub fn stage_timeout(&self) -> Duration {
        self.args.connect.stage_timeout
    }

    fn cancel_fn(&self) -> impl Fn() -> bool + '_ {
        || self.progress.cancelled()
    }

    /// Finds the board's USB device whose ids are one of `ids`, honouring
    /// the selector and `--wait`. More than one match without a selector is
    /// an error that lists the candidates and the flag to add.
    pub fn find_usb(&mut self, ids: &[(u16, u16)], what: &str) -> Result<UsbInfo> {
        if let Some(Selector::Tty(p)) = &self.selector {
            return Err(bad_input(format!(
                "--port {}: {} is reached over USB, not a tty; give its USB port path (see `racklet-flash list`)",
                p.display(),
                self.board.name
            )));
        }
        let sel = self.selector.clone();
        let pred = |d: &UsbInfo| {
            ids.iter().any(|(v, p)| d.vid == *v && d.pid == *p)
                && sel.as_ref().is_none_or(|s| s.matches_usb(d))
        };
        let mut found: Vec<UsbInfo> = self.usb.devices()?.into_iter().filter(|d| pred(d)).collect();
        if found.is_empty() {
            if let Some(w) = self.wait() {
                self.progress.say(format!("waiting up to {}s for {what}...", w.as_secs_f64()));
                let cancel = self.cancel_fn();
                found = racklet_link::wait_for_usb(&*self.usb, &pred, w, &cancel).map_err(|e| match e {
                    LinkError::Timeout { .. } => not_found(self.board, what, &self.selector, Some(w)),
                    e => e.into(),
                })?;
            } else {
                return Err(not_found(self.board, what, &self.selector, None));
            }
        }
        if found.len() > 1 {
            return Err(fail(
                FailureClass::Ambiguous,
                format!(
                    "{} devices look like {what}; choose one with --port:\n{}",
                    found.len(),
                    usb_candidates(&found)
                ),
            ));
        }
        self.resolved = Some(found[0].port_path.clone());
        Ok(found.remove(0))
    }

    /// Opens a USB device, recording the transcript when asked.
    pub fn open_usb(&self, info: &UsbInfo) -> Result<Box<dyn UsbLink>> {
        let link = self.usb.open(info)?;
        Ok(match &self.transcript {
            Some(w) => Box::new(Recorder::usb(link, w.clone())),
            None => link,
        })
    }

    /// Follows the board to its next stage at the same USB port path.
    pub fn follow_usb(
        &mut self,
        port_path: &str,
        ids: &[(u16, u16)],
        previous_address: Option<u8>,
        what: &str,
    ) -> Result<UsbInfo> {
        let t = self.stage_timeout();
        self.follow_usb_within(port_path, ids, previous_address, what, t)
    }

    /// Like [`Ctx::follow_usb`], with its own time limit.
    pub fn follow_usb_within(
        &mut self,
        port_path: &str,
        ids: &[(u16, u16)],
        previous_address: Option<u8>,
        what: &str,
        t: Duration,
    ) -> Result<UsbInfo> {
        self.progress.say(format!("waiting for {what} at USB port {port_path}..."));
        let cancel = self.cancel_fn();
        let pred = |d: &UsbInfo| ids.iter().any(|(v, p)| d.vid == *v && d.pid == *p);
        racklet_link::discover::follow_usb(&*self.usb, port_path, &pred, previous_address, t, &cancel).map_err(|e| match e {
            LinkError::Timeout { after, .. } => fail(
                FailureClass::Timeout,
                format!(
                    "{what} did not appear at USB port {port_path} within {}s (raise --stage-timeout if the board needs longer)",
                    after.as_secs_f64()
                ),
            ),
            e => e.into(),
        })
    }
}

/// Which board a serial port is: its USB port path when it has one (it
/// survives re-enumeration), its tty path otherwise.
pub fn serial_identity(p: &SerialInfo) -> String {
    p.port_path.clone().unwrap_or_else(|| p.path.clone())
}

/// "Not found" with what to do about it.
pub fn not_found(
    board: &Board,
    what: &str,
    sel: &Option<Selector>,
    waited: Option<Duration>,
) -> anyhow::Error {
    let at = sel.as_ref().map(|s| format!(" at {s}")).unwrap_or_default();
    let waited = match waited {
        Some(w) => format!(" (waited {}s)", w.as_secs_f64()),
        None => String::new(),
    };
    let wait_hint = if waited.is_empty() { " Add --wait 30s to wait for it." } else { "" };
    fail(
        FailureClass::NotFound,
        format!(
            "no {what}{at} found{waited}. To put {} ({}) in its boot ROM mode: {}{wait_hint} `racklet-flash list` shows what is attached; --simulate runs against a virtual ROM.",
            board.name, board.title, board.enter
        ),
    )
}

/// The simulated world of one job: the buses the virtual ROM sits on.
pub struct SimCtx<'a> {
    pub board: &'a Board,
    pub args: &'a MaskromArgs,
    /// USB port path the virtual board is plugged into.
    pub port_path: String,
    /// The fault this virtual board injects (`--fault NAME` for every
    /// board, `--fault PORT=NAME` for the one at PORT).
    pub fault: Option<String>,
    pub usb: SimUsbBus,
    pub serial: SimSerialBus,
}

/// The fault for the virtual board at `port` from a `--fault` value:
/// comma-separated `NAME` (every board) or `PORT=NAME` (that board).
pub fn fault_for(spec: Option<&str>, port: &str) -> Option<String> {
    let spec = spec?;
    let mut all = None;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((p, name)) if p == port => return Some(name.to_string()),
            Some(_) => {}
            None => all = Some(part.to_string()),
        }
    }
    all
}

/// A running virtual ROM; after the flow, its verdict says what it received.
pub trait SimSession: Send {
    /// What the virtual ROM saw, once the flow is over (e.g. "loaded 4096
    /// bytes at 0x80360000, jumped to 0x80360000"); an error when it did not
    /// end in a started payload.
    fn verdict(&mut self) -> Result<String, String>;
}

/// Runs an old-style flow (`fn(&mut Ctx)`) for a driver's job.
pub fn run_legacy(job: &mut crate::drivers::Job, flow: fn(&mut Ctx) -> Result<Outcome>) -> Result<Outcome> {
    let mut ctx = Ctx {
        board: job.board,
        args: job.args,
        usb: job.conn.usb.clone(),
        selector: job.conn.selector.clone(),
        progress: &mut *job.conn.progress,
        transcript: job.conn.recorder.clone(),
        resolved: None,
    };
    let r = flow(&mut ctx);
    job.conn.resolved = ctx.resolved.take();
    r
}

/// An old-style simulated session as a [`racklet_sim::rom::VirtualRom`].
pub struct Legacy(pub Box<dyn SimSession>);

impl racklet_sim::rom::VirtualRom for Legacy {
    fn verdict(&mut self) -> racklet_sim::rom::Verdict {
        racklet_sim::rom::Verdict::from_result(self.0.verdict())
    }
}

/// A decoded file for `racklet-flash info`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InfoReport {
    /// What the file is ("RKBOOT loader", "JH7110 SPL image", ...).
    pub kind: String,
    /// Decoded fields, in order.
    pub fields: Vec<(String, String)>,
    /// Integrity checks (name, passed).
    pub checks: Vec<(String, bool)>,
    /// Protocol of the boards this format is for.
    #[serde(skip)]
    pub protocol: Option<Protocol>,
    /// SoCs this file is for, when the format says.
    pub socs: Vec<String>,
    /// Payload inside the file (load address, bytes), for fit checks.
    #[serde(skip)]
    pub payload: Option<(u64, u64)>,
}

impl From<InfoReport> for racklet_image::Description {
    fn from(r: InfoReport) -> Self {
        let mut d = racklet_image::Description {
            kind: r.kind,
            protocol: r.protocol.map(Protocol::name),
            socs: r.socs,
            payload: r.payload.map(|(load, len)| racklet_image::describe::Contained {
                load_address: (load != u64::MAX).then_some(load),
                len,
            }),
            ..Default::default()
        };
        for (k, v) in r.fields {
            d.field(k, v);
        }
        for (k, ok) in r.checks {
            d.check(k, ok);
        }
        d
    }
}

/// Reads one stage's file for `board`: a regular file no larger than the
/// board's largest stage, judged before it is read.
pub fn read_stage(board: &Board, path: &std::path::Path) -> Result<Vec<u8>, racklet_image::ImageError> {
    racklet_image::read_input(path, board.largest_stage(), &format!("a stage of {} can be", board.name))
}

/// Loads an ELF or raw payload for `board` and checks that it fits the
/// board's load window, before any device is touched.
pub fn load_payload(board: &Board, path: &std::path::Path) -> Result<racklet_image::Payload> {
    let bytes = read_stage(board, path)?;
    payload_from(board, path, bytes)
}

/// [`load_payload`] with the bytes already read.
pub fn payload_from(board: &Board, path: &std::path::Path, bytes: Vec<u8>) -> Result<racklet_image::Payload> {
    let p = racklet_image::load_bytes(path, bytes, board.arch(), &board.window())?;
    let at = p.load_address.unwrap_or(board.load_address);
    racklet_image::check_fit(path, at, p.mem_size, &board.window())?;
    Ok(p)
}

/// Where a stage bound for DRAM may go: anywhere, up to the board's
/// largest stage (the protocol checks the addresses).
pub fn dram_window(board: &Board) -> racklet_image::Window {
    racklet_image::Window::anywhere(
        &board.name,
        board.largest_stage(),
        &format!("the largest stage racklet-flash sends to {}", board.name),
    )
}
