//! The run of one verb on one board or several in parallel — `maskrom` and
//! the storage verbs alike: the buses (real, simulated or replayed), the
//! jobs by selector, the transcript, the virtual devices' verdicts, and the
//! report. The verb itself is a closure that gets a [`Connector`].

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_image::output::SafeFile;
use racklet_link::nusb_backend::NusbBus;
use racklet_link::serial_backend::SystemSerial;
use racklet_link::transcript::TranscriptWriter;
use racklet_link::transcript::reader::End;
use racklet_link::{Connector, FailureClass, ProgressSink, Selector, SerialBus, UsbBus};
use racklet_sim::rom::{Verdict, VirtualRom};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::{LinkModel, SimUsbBus};
use serde_json::json;

use super::transcript;
use crate::boards::{Board, Transport};
use crate::cli::{ConnectArgs, SimSpeed, SimulationArgs};
use crate::error::{add_hint, bad_input, class_of, fail};
use crate::job::{self, Outcome};
use crate::output::{ErrorAt, JobReporter, Mode, Output};

/// The virtual devices of a simulated run, by USB port path.
type Sims = Vec<(String, Box<dyn VirtualRom>)>;

/// Attaches the board's virtual device at a USB port path, with a fault.
pub type AttachSim<'a> =
    dyn Fn(&str, Option<String>, &SimUsbBus, &SimSerialBus) -> Result<Box<dyn VirtualRom>> + 'a;

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
    pub attach: &'a AttachSim<'a>,
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
        if let Selector::Tty(p) = &s {
            not_a_tty("--port", p)?;
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
    if connect.auto_simulate && !board_attached(board, &selectors) {
        connect.simulate = true;
        out.line(&format!(
            "no {} attached: running against its virtual boot ROM (--auto-simulate)",
            board.name
        ));
    }
    let c = &connect;
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
    let (usb, serial, sims): (Arc<dyn UsbBus>, Arc<dyn SerialBus>, Sims) = if let Some(r) = &replay {
        (Arc::new(r.usb_bus()), Arc::new(r.serial_bus()), Vec::new())
    } else if c.simulate {
        let su = match spec.sim.sim_speed {
            None => SimUsbBus::new(),
            Some(SimSpeed::High) => SimUsbBus::with_model(LinkModel::HIGH_SPEED),
            Some(SimSpeed::Full) => SimUsbBus::with_model(LinkModel::FULL_SPEED),
        };
        let ss = SimSerialBus::new();
        let mut paths: Vec<String> = selectors
            .iter()
            .filter_map(|s| match s {
                Selector::UsbPath(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        if paths.is_empty() {
            paths.push("1-1".into());
        }
        if let Some(f) = &spec.sim.fault {
            check_fault_ports(f, &paths)?;
        }
        let mut sims = Vec::new();
        for p in &paths {
            let s = (spec.attach)(p, job::fault_for(spec.sim.fault.as_deref(), p), &su, &ss)?;
            sims.push((p.clone(), s));
        }
        (Arc::new(su), Arc::new(ss), sims)
    } else {
        (Arc::new(NusbBus), Arc::new(SystemSerial), Vec::new())
    };

    // Which jobs: one per selector, or one per matching ROM with --all.
    let mut job_selectors: Vec<Option<Selector>> = selectors.iter().cloned().map(Some).collect();
    if c.all {
        job_selectors = all_ports(board, &*usb, &*serial)?.into_iter().map(Some).collect();
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
    judge(&mut results, sims, c.simulate);

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
        t.end(&run_end(&results, parallel));
        let path = f.path().display().to_string();
        t.finish()
            .map_err(|e| fail(FailureClass::Io, format!("{path}: cannot write the transcript: {e}")))?;
        f.commit()?;
    }

    report(board, results, out, parallel, spec.done)
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

/// In simulation, the virtual device's verdict must agree with the job. It
/// is paired with the job by the board the job found, and a job that claims
/// success without a verdict has not shown one.
fn judge(results: &mut [JobResult], sims: Sims, simulate: bool) {
    let mut judged = vec![false; results.len()];
    for (path, mut sim) in sims {
        let verdict = match sim.verdict() {
            Verdict::Started { summary } => Ok(summary),
            Verdict::NotStarted { why } => Err(why),
        };
        let mine: Vec<usize> =
            (0..results.len()).filter(|&i| results[i].device.as_deref() == Some(path.as_str())).collect();
        for &i in &mine {
            judged[i] = true;
            let r = &mut results[i];
            if mine.len() > 1 {
                if r.outcome.is_ok() {
                    r.outcome = Err(fail(
                        FailureClass::Other,
                        format!("{} jobs of this run used the one virtual board at {path}", mine.len()),
                    ));
                }
                continue;
            }
            match (&mut r.outcome, &verdict) {
                (Ok(_), Ok(v)) => r.verdict = Some(v.clone()),
                (Ok(_), Err(v)) => {
                    r.outcome = Err(fail(
                        FailureClass::Rejected,
                        format!("the virtual ROM did not accept the load: {v}"),
                    ));
                }
                (Err(_), _) => {}
            }
        }
    }
    if simulate {
        for (r, judged) in results.iter_mut().zip(judged) {
            if r.outcome.is_ok() && !judged {
                r.outcome = Err(fail(
                    FailureClass::Other,
                    format!(
                        "no virtual ROM gave a verdict on this job (it reached {}), so its success is unproven",
                        r.device.as_deref().unwrap_or("no device")
                    ),
                ));
            }
        }
    }
}

/// How the run ends, for the transcript's `end` record: the exit code
/// [`report`] and `main` give, and a single board's failure.
fn run_end(results: &[JobResult], parallel: bool) -> End {
    let failed: Vec<&anyhow::Error> = results.iter().filter_map(|r| r.outcome.as_ref().err()).collect();
    let classes: Vec<FailureClass> = failed.iter().map(|e| class_of(e)).collect();
    match failed.first() {
        None => End { exit: 0, class: None, message: None },
        Some(e) if !parallel => End {
            exit: class_of(e).exit_code(),
            class: Some(class_of(e).name().to_string()),
            message: Some(crate::error::message_of(e)),
        },
        Some(_) => End {
            exit: exit_code(&classes),
            class: None,
            message: Some(format!("{} of {} boards failed", failed.len(), results.len())),
        },
    }
}

/// The exit code of a parallel run: 0, the one class of every failure, or 1.
fn exit_code(failed: &[FailureClass]) -> i32 {
    match failed.first() {
        None => 0,
        Some(first) if failed.iter().all(|f| f == first) => first.exit_code(),
        Some(_) => 1,
    }
}

/// `--fault PORT=NAME` must name a virtual board of the run.
fn check_fault_ports(spec: &str, paths: &[String]) -> Result<()> {
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((port, _)) = part.split_once('=')
            && !paths.iter().any(|p| p == port)
        {
            return Err(bad_input(format!(
                "--fault {part}: no virtual board of this run is at {port} (they are at {}); give --port {port} too, or fix the port",
                paths.join(", ")
            )));
        }
    }
    Ok(())
}

/// The board a selector names now, when it names exactly one.
fn board_of(board: &Board, usb: &dyn UsbBus, serial: &dyn SerialBus, sel: &Selector) -> Option<String> {
    let ids: Vec<(u16, u16)> = board.usb.iter().map(|s| (s.vid, s.pid)).collect();
    let found: Vec<String> = match board.transport {
        Transport::Usb => usb
            .devices()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| ids.contains(&(d.vid, d.pid)) && sel.matches_usb(d))
            .map(|d| d.port_path)
            .collect(),
        Transport::Serial => {
            let listed: Vec<String> = serial
                .ports()
                .unwrap_or_default()
                .iter()
                .filter(|p| {
                    (ids.is_empty() || p.vid.zip(p.pid).is_some_and(|id| ids.contains(&id)))
                        && sel.matches_serial(p)
                })
                .map(job::serial_identity)
                .collect();
            match sel {
                Selector::Tty(p) if listed.is_empty() => vec![p.display().to_string()],
                _ => listed,
            }
        }
    };
    if found.len() == 1 { found.into_iter().next() } else { None }
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
    let mut kept: Vec<(Option<Selector>, Option<String>)> = Vec::new();
    for sel in jobs {
        let at = sel.as_ref().and_then(|s| board_of(board, usb, serial, s));
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

/// Is a device attached that this run would use? Serial boards whose ROM
/// sits behind an ordinary USB-UART (no ids in the table) count as attached
/// only when a --port names one.
fn board_attached(board: &Board, selectors: &[Selector]) -> bool {
    let ids: Vec<(u16, u16)> = board.usb.iter().map(|s| (s.vid, s.pid)).collect();
    let sel_ok = |f: &dyn Fn(&Selector) -> bool| selectors.is_empty() || selectors.iter().any(f);
    match board.transport {
        Transport::Usb => NusbBus
            .devices()
            .unwrap_or_default()
            .iter()
            .any(|d| ids.contains(&(d.vid, d.pid)) && sel_ok(&|s: &Selector| s.matches_usb(d))),
        Transport::Serial if ids.is_empty() => selectors.iter().any(|s| match s {
            Selector::Tty(p) => p.exists(),
            _ => SystemSerial.ports().unwrap_or_default().iter().any(|p| s.matches_serial(p)),
        }),
        Transport::Serial => SystemSerial.ports().unwrap_or_default().iter().any(|p| {
            p.vid.zip(p.pid).is_some_and(|id| ids.contains(&id))
                && sel_ok(&|s: &Selector| s.matches_serial(p))
        }),
    }
}

/// Every port where one of the board's boot ROMs is attached now.
fn all_ports(board: &Board, usb: &dyn UsbBus, serial: &dyn SerialBus) -> Result<Vec<Selector>> {
    let ids: Vec<(u16, u16)> = board.usb.iter().map(|s| (s.vid, s.pid)).collect();
    Ok(match board.transport {
        Transport::Usb => usb
            .devices()?
            .into_iter()
            .filter(|d| ids.contains(&(d.vid, d.pid)))
            .map(|d| Selector::UsbPath(d.port_path))
            .collect(),
        Transport::Serial => serial
            .ports()?
            .into_iter()
            .filter(|p| ids.is_empty() || p.vid.zip(p.pid).is_some_and(|id| ids.contains(&id)))
            .map(|p| match p.port_path {
                Some(pp) if !ids.is_empty() => Selector::UsbPath(pp),
                _ => Selector::Tty(p.path.into()),
            })
            .collect(),
    })
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

/// The `done` event's facts: the same keys for every board (docs/json-events.md).
fn done_facts(board: &Board, r: &JobResult, o: &Outcome) -> serde_json::Value {
    json!({
        "chip": o.chip.clone().unwrap_or_else(|| board.soc.clone()),
        "rom": o.rom,
        "port": r.device.clone().or_else(|| r.port.clone()),
        "stages": r.stages.iter().map(|(name, bytes, d)| json!({"name":name,"bytes":bytes,"ms":d.as_millis() as u64})).collect::<Vec<_>>(),
        "virtual_rom": r.verdict,
        "console_matched": o.console_matched,
    })
}

fn print_done(board: &Board, r: &JobResult, o: &Outcome, out: &Arc<Output>, parallel: bool, done: &str) {
    if out.mode == Mode::Json {
        let details: Vec<serde_json::Value> =
            o.facts.iter().map(|(k, v)| json!({"key":k,"value":v})).collect();
        out.json(json!({"event":"done","ok":true,"board":board.name,"port":r.device.clone().or_else(|| r.port.clone()),
            "ms":r.elapsed.as_millis() as u64,"facts":done_facts(board, r, o),"details":details}));
        return;
    }
    let pre = if parallel { format!("[{}] ", r.label) } else { String::new() };
    // A parallel run keeps one line per board (the facts with -v).
    if !parallel || out.verbose > 0 {
        for (k, v) in &o.facts {
            out.line(&format!("{pre}{k}: {v}"));
        }
        if let Some(v) = &r.verdict {
            out.line(&format!("{pre}virtual ROM: {v}"));
        }
    }
    if let Some(m) = &o.console_matched {
        out.line(&format!("{pre}console matched: {m}"));
    }
    let sent: u64 = r.stages.iter().map(|s| s.1).sum();
    out.line(&format!(
        "{pre}done: {} {done} in {:.2} s ({} stage{}, {} bytes)",
        board.name,
        r.elapsed.as_secs_f64(),
        r.stages.len(),
        if r.stages.len() == 1 { "" } else { "s" },
        sent
    ));
}

/// The first sentence of a message, at most `max` characters: a table cell.
fn cell(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    let first = match first.find(". ") {
        Some(i) => &first[..i + 1],
        None => first,
    };
    if first.chars().count() <= max {
        first.to_string()
    } else {
        let cut: String = first.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The end of a name, at most `max` characters (a stage named by its file).
fn tail(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        text.to_string()
    } else {
        let end: String = text.chars().skip(n - max + 1).collect();
        format!("…{end}")
    }
}

fn report(
    board: &Board,
    results: Vec<JobResult>,
    out: &Arc<Output>,
    parallel: bool,
    done: &str,
) -> Result<ExitCode> {
    let at = |r: &JobResult| ErrorAt {
        board: Some(board.name.clone()),
        port: r.device.clone().or_else(|| r.port.clone()),
        stage: r.stage.clone(),
        prefix: parallel.then(|| r.label.clone()),
    };
    if !parallel {
        let r = results.into_iter().next().expect("one job");
        return match &r.outcome {
            Ok(o) => {
                print_done(board, &r, o, out, false, done);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                out.error(e, &at(&r));
                let class = if out.cancelled() { FailureClass::Interrupted } else { class_of(e) };
                Ok(ExitCode::from(class.exit_code() as u8))
            }
        };
    }
    let mut failures = Vec::new();
    for r in &results {
        match &r.outcome {
            Ok(o) => print_done(board, r, o, out, true, done),
            Err(e) => {
                // Failures found after the jobs (the virtual ROM's verdict) are shown now.
                if !r.shown {
                    out.error(e, &at(r));
                }
                failures.push((r, class_of(e)));
            }
        }
    }
    if out.mode == Mode::Json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                let class = r.outcome.as_ref().err().map(class_of);
                json!({"port":r.device.clone().or_else(|| r.port.clone()),"ok":r.outcome.is_ok(),
                    "class":class.map(|c| c.name()),"exit_code":class.map_or(0, |c| c.exit_code()),
                    "stage":r.stage,"ms":r.elapsed.as_millis() as u64})
            })
            .collect();
        out.json(json!({"event":"summary","port":null,"ok":results.len() - failures.len(),"failed":failures.len(),"boards":rows}));
    } else {
        out.line("");
        out.line(&format!("{:<14} {:<12} {:>8}  {:<24} detail", "port", "result", "time", "stage"));
        for r in &results {
            let (res, detail) = match &r.outcome {
                Ok(_) => ("ok".to_string(), String::new()),
                Err(e) => (class_of(e).name().to_string(), cell(&crate::error::message_of(e), 60)),
            };
            out.line(&format!(
                "{:<14} {:<12} {:>6.2} s  {:<24} {}",
                r.label,
                res,
                r.elapsed.as_secs_f64(),
                tail(r.stage.as_deref().unwrap_or("-"), 24),
                detail
            ));
        }
        if !failures.is_empty() {
            eprintln!("{} of {} boards failed", failures.len(), results.len());
        }
    }
    // One class for all failures: its code. Mixed classes: 1.
    let classes: Vec<FailureClass> = failures.iter().map(|f| f.1).collect();
    Ok(ExitCode::from(exit_code(&classes) as u8))
}
