//! The run of one verb on one board or several in parallel — `maskrom` and
//! the storage verbs alike: the buses (real, simulated or replayed), the
//! jobs by selector, the transcript, the virtual devices' verdicts, and the
//! report. The verb itself is a closure that gets a [`Connector`].

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_image::output::SafeFile;
use racklet_link::nusb_backend::NusbBus;
use racklet_link::roms::{self, RomIds};
use racklet_link::serial_backend::SystemSerial;
use racklet_link::transcript::TranscriptWriter;
use racklet_link::{Connector, FailureClass, ProgressSink, Selector, SerialBus, UsbBus};
use serde_json::json;

use super::{simulated, transcript};
use crate::args::connect::{ConnectArgs, SimulationArgs};
use crate::boards::{Board, Transport};
use crate::error::{add_hint, bad_input, class_of, fail};
use crate::job::Outcome;
use crate::output::{ErrorAt, JobReporter, Mode, Output, report};

/// One job's part of the verb: `(index of the job, its connector, its
/// label)` to what it did.
pub type Op<'a> = dyn Fn(usize, &mut Connector, &str) -> Result<Outcome> + Sync + 'a;

/// What a run needs besides the verb.
pub struct Spec<'a> {
    pub board: &'a Board,
    pub connect: &'a ConnectArgs,
    pub sim: &'a SimulationArgs,
    /// The input files, for the transcript's header.
    pub input_files: Vec<racklet_link::transcript::reader::InputFile>,
    /// Puts the virtual device on the simulated buses.
    pub attach: &'a simulated::AttachSim<'a>,
    /// What a successful job did, for the done line ("started", "written").
    pub done: &'a str,
    /// Called once the number of jobs is known, before any starts (e.g. to
    /// check one console per board).
    pub check_jobs: &'a dyn Fn(usize) -> Result<()>,
}

/// Result of one job.
pub struct JobResult {
    pub label: String,
    pub outcome: Result<Outcome>,
    pub elapsed: std::time::Duration,
    /// The device the job found (USB port path or tty), when it found one.
    pub device: Option<String>,
    /// The port given for the job (its selector), if any.
    pub port: Option<String>,
    /// The stage that ran last (where a failure happened).
    pub stage: Option<String>,
    /// Every stage that finished: name, bytes, time.
    pub stages: Vec<(String, u64, std::time::Duration)>,
    /// What the virtual device said it did (simulated runs).
    pub verdict: Option<String>,
    /// The failure was already shown as it happened.
    pub shown: bool,
}

/// Runs `op` for every board of the run and reports.
pub fn run(spec: Spec, out: &Arc<Output>, op: &Op) -> Result<ExitCode> {
    let board = spec.board;
    let mut selectors: Vec<Selector> = Vec::new();
    for s in &spec.connect.port {
        let s = Selector::parse(s)?;
        match &s {
            Selector::Tty(p) => not_a_tty("--port", p)?,
            Selector::Tcp { .. } => crate::drivers::check_tcp(board, &s, spec.connect)?,
            _ => {}
        }
        // The same selector twice is one board.
        if selectors.contains(&s) {
            out.line(&format!("--port {s} and --port {s} name the same board: using it once"));
        } else {
            selectors.push(s);
        }
    }
    // --auto-simulate: the real board when one is attached, its virtual ROM otherwise.
    let mut connect = spec.connect.clone();
    if connect.auto_simulate
        && !roms::attached(rom_ids(board, &board.usb_ids()), &NusbBus, &SystemSerial, &selectors)
    {
        connect.simulate = true;
        out.line(&format!(
            "no {} attached: running against its virtual boot ROM (--auto-simulate)",
            board.name
        ));
    }
    let c = &connect;
    if c.simulate && c.replay.is_none() {
        simulated::ttys_to_ports(&mut selectors, out);
    }
    // The transcript is an output file like `image -o`: an existing one is
    // kept without --force, and it is moved in place whole at the end.
    let mut record = match &c.record {
        Some(p) => Some(SafeFile::create(p, c.force)?),
        None => None,
    };
    let transcript = match &mut record {
        Some(f) => {
            let path = f.path().display().to_string();
            let file = f
                .file()
                .try_clone()
                .map_err(|e| fail(FailureClass::Io, format!("{path}: cannot write the transcript: {e}")))?;
            // Compressed when the name the user gave says so.
            let w = TranscriptWriter::for_path(f.path(), std::io::BufWriter::new(file))
                .map_err(|e| fail(FailureClass::Io, format!("{path}: cannot write the transcript: {e}")))?;
            Some(transcript::start(w, c, board, &selectors, spec.input_files))
        }
        None => None,
    };
    let replay = match &c.replay {
        Some(f) if selectors.len() > 1 => {
            return Err(bad_input(format!(
                "--replay {}: a transcript is one board's run; give at most one --port",
                f.display()
            )));
        }
        Some(f) => Some(transcript::open_replay(f, c, board)?),
        None => None,
    };

    // The buses: real, replayed, or simulated with one virtual board per job.
    let (usb, serial, sims): (Arc<dyn UsbBus>, Arc<dyn SerialBus>, simulated::Sims) = if let Some(r) = &replay
    {
        (Arc::new(r.usb_bus()), Arc::new(r.serial_bus()), Vec::new())
    } else if c.simulate {
        let (su, ss, sims) = simulated::world(spec.sim, &selectors, spec.attach)?;
        (Arc::new(su), Arc::new(ss), sims)
    } else {
        (Arc::new(NusbBus), Arc::new(SystemSerial), Vec::new())
    };

    // Which jobs: one per selector, or one per matching ROM with --all.
    let mut job_selectors: Vec<Option<Selector>> = selectors.iter().cloned().map(Some).collect();
    if c.all {
        job_selectors =
            roms::all(rom_ids(board, &board.usb_ids()), &*usb, &*serial)?.into_iter().map(Some).collect();
        if job_selectors.is_empty() {
            return Err(racklet_link::LinkError::not_found(format!("{} boot ROM", board.name)).into());
        }
    }
    if job_selectors.is_empty() {
        job_selectors.push(None);
    }
    let job_selectors = one_job_per_board(board, &*usb, &*serial, job_selectors, out);
    let parallel = job_selectors.len() > 1;
    (spec.check_jobs)(job_selectors.len())?;
    // One board's recording also writes its devices coming and going (what
    // a replay needs); a parallel run's records are each board's own.
    let (usb, serial) = match &transcript {
        Some(w) if !parallel => transcript::recording_buses(usb, serial, w, board),
        _ => (usb, serial),
    };

    if out.mode == Mode::Json {
        out.json(json!({"event":"start","board":board.name,"soc":board.soc,"protocol":board.protocol.name(),"simulate":c.simulate,"jobs":job_selectors.len(),
            "ports":job_selectors.iter().map(|s| s.as_ref().map(|s| s.to_string())).collect::<Vec<_>>()}));
    } else if !board.tested && out.verbose > 0 {
        out.line(&format!("note: {} has not been tested on real hardware yet", board.name));
    }

    let results: Vec<JobResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = job_selectors
            .iter()
            .enumerate()
            .map(|(i, sel)| {
                let usb = usb.clone();
                let serial = serial.clone();
                let transcript = transcript.clone();
                let out = out.clone();
                let out2 = out.clone();
                scope.spawn(move || {
                    let port = sel.as_ref().map(|s| s.to_string());
                    let label = port.clone().unwrap_or_else(|| "-".into());
                    let transcript = transcript.map(|t| if parallel { t.with_port(&label) } else { t });
                    let mut rep = JobReporter::with_port(out, parallel.then(|| label.clone()), port.clone());
                    let (outcome, device) = {
                        let mut conn = Connector::new(usb, serial, &mut rep);
                        conn.selector = sel.clone();
                        conn.wait = c.wait;
                        if let Some(t) = c.stage_timeout {
                            conn.stage_timeout = t;
                        }
                        conn.recorder = transcript;
                        let r = op(i, &mut conn, &label).map_err(|e| with_entry_hint(board, e));
                        (r, conn.resolved.take())
                    };
                    let outcome = outcome.and_then(|o| {
                        if rep.cancelled() {
                            Err(fail(FailureClass::Interrupted, "interrupted"))
                        } else {
                            Ok(o)
                        }
                    });
                    // In a parallel run, a board's failure is shown when it happens.
                    let mut shown = false;
                    if parallel && let Err(e) = &outcome {
                        out2.error(
                            e,
                            &ErrorAt {
                                board: Some(board.name.clone()),
                                port: device.clone().or_else(|| port.clone()),
                                stage: rep.stage(),
                                prefix: Some(label.clone()),
                            },
                        );
                        shown = true;
                    }
                    JobResult {
                        label,
                        outcome,
                        elapsed: rep.elapsed(),
                        device,
                        port,
                        stage: rep.stage(),
                        stages: rep.stages.clone(),
                        verdict: None,
                        shown,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| JobResult {
                    label: "?".into(),
                    outcome: Err(fail(FailureClass::Other, "internal error: a job panicked")),
                    elapsed: Default::default(),
                    device: None,
                    port: None,
                    stage: None,
                    stages: Vec::new(),
                    verdict: None,
                    shown: false,
                })
            })
            .collect()
    });

    let mut results = results;
    simulated::judge(&mut results, sims, c.simulate);

    // A replay must have gone exactly as recorded.
    if let (Some(r), Some(job)) = (&replay, results.first_mut()) {
        match (r.verdict(), &mut job.outcome) {
            (Err(d), _) => job.outcome = Err(crate::error::classify(d)),
            (Ok(v), Ok(o)) => o.fact("replay", v),
            (Ok(_), Err(_)) => {}
        }
    }

    // The transcript is part of the run: a failure to write it fails the run.
    if let (Some(t), Some(f)) = (&transcript, record) {
        t.end(&report::run_end(&results, parallel));
        let path = f.path().display().to_string();
        t.finish()
            .map_err(|e| fail(FailureClass::Io, format!("{path}: cannot write the transcript: {e}")))?;
        f.commit()?;
    }

    report::report(board, results, out, parallel, spec.done)
}

/// The board is not (yet) in its ROM — none found, or a later stage
/// answered — but a USB bus is there: say how to put it in its ROM mode.
fn with_entry_hint(board: &Board, e: anyhow::Error) -> anyhow::Error {
    let no_bus =
        e.chain().any(|c| matches!(c.downcast_ref(), Some(racklet_link::LinkError::NoUsbBus { .. })));
    if class_of(&e) != FailureClass::NotFound || no_bus {
        return e;
    }
    let enter = format!(
        "To put {} ({}) in its boot ROM mode: {} Without a board, --simulate runs against a virtual ROM.",
        board.name, board.title, board.enter
    );
    add_hint(e, &enter)
}

/// Drops the selectors that name a board an earlier selector already names
/// (`--port 29f1:0230 --port 1-2` for the one board at 1-2): two jobs on one
/// board would fight over it.
fn one_job_per_board(
    board: &Board,
    usb: &dyn UsbBus,
    serial: &dyn SerialBus,
    jobs: Vec<Option<Selector>>,
    out: &Arc<Output>,
) -> Vec<Option<Selector>> {
    if jobs.len() < 2 {
        return jobs;
    }
    let ids = board.usb_ids();
    let mut kept: Vec<(Option<Selector>, Option<String>)> = Vec::new();
    for sel in jobs {
        let at = sel.as_ref().and_then(|s| roms::named(rom_ids(board, &ids), usb, serial, s));
        if let Some(dev) = &at
            && let Some((first, _)) = kept.iter().find(|(_, d)| d.as_ref() == Some(dev))
        {
            let name = |s: &Option<Selector>| s.as_ref().map(|s| s.to_string()).unwrap_or_default();
            out.line(&format!(
                "--port {} and --port {} name the same board ({dev}): flashing it once",
                name(first),
                name(&sel)
            ));
            continue;
        }
        kept.push((sel, at));
    }
    kept.into_iter().map(|(s, _)| s).collect()
}

/// How the board's boot ROM shows itself on the buses.
fn rom_ids<'a>(board: &Board, ids: &'a [(u16, u16)]) -> RomIds<'a> {
    RomIds { ids, serial: board.transport == Transport::Serial }
}

/// A path given as a serial port that is a regular file or a directory is
/// bad input (opening it would fail with "Not a typewriter").
pub fn not_a_tty(flag: &str, p: &std::path::Path) -> Result<()> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() || m.is_dir() => Err(bad_input(format!(
            "{flag} {}: a {}, not a serial port; give the tty (e.g. /dev/ttyUSB0, see `racklet-flash list`)",
            p.display(),
            if m.is_file() { "regular file" } else { "directory" }
        ))),
        _ => Ok(()),
    }
}
