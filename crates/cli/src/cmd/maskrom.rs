//! `racklet-flash maskrom`: one board, or several in parallel.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_image::output::SafeFile;
use racklet_link::nusb_backend::NusbBus;
use racklet_link::serial_backend::SystemSerial;
use racklet_link::transcript::TranscriptWriter;
use racklet_link::transcript::reader::End;
use racklet_link::{Connector, FailureClass, ProgressSink, Selector, SerialBus, UsbBus};
use racklet_sim::rom::Verdict;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::{LinkModel, SimUsbBus};
use serde_json::json;

use super::transcript;
use crate::boards::{Board, Transport};
use crate::cli::{GlobalArgs, MaskromArgs, SimSpeed};
use crate::console::{self, Console};
use crate::drivers::{self, Job};
use crate::error::{add_hint, bad_input, class_of, fail};
use crate::flows::{self, Outcome, SimCtx};
use crate::output::{JobReporter, Mode, Output};

/// The virtual ROMs of a simulated run, by USB port path.
type Sims = Vec<(String, Box<dyn racklet_sim::rom::VirtualRom>)>;

/// Result of one job.
struct JobResult {
    label: String,
    outcome: Result<Outcome>,
    elapsed: std::time::Duration,
    /// The device the job found (USB port path or tty), when it found one.
    device: Option<String>,
}

pub fn run(g: &GlobalArgs, a: &MaskromArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    // Check every input file before anything is touched: a regular file no
    // larger than the board's largest stage (judged before reading), and
    // not a near-miss of a known header, which is damaged, not a raw
    // binary: refused unless --force says to send it raw.
    let what = format!("a stage of {} can be", board.name);
    let inputs = a.bin.iter().chain(a.rockchip.dram.iter()).chain(a.then.iter()).chain(a.then_ymodem.iter());
    // What the transcript's header says of them.
    let mut input_files = Vec::new();
    for p in inputs.chain(a.canaan.loads.iter().map(|(_, p)| p)) {
        let bytes = racklet_image::read_input(p, board.largest_stage(), &what)?;
        input_files.push(transcript::input_file(p, &bytes));
        if let Some(what) = drivers::near_miss(&bytes)
            && !a.connect.force
        {
            return Err(bad_input(format!(
                "{}: looks like {what}; fix or rebuild the file, or add --force to send it as a raw binary",
                p.display()
            )));
        }
    }
    let mut selectors: Vec<Selector> = Vec::new();
    for s in &a.connect.port {
        let s = Selector::parse(s)?;
        // The same selector twice is one board.
        if selectors.contains(&s) {
            out.line(&format!("--port {s} and --port {s} name the same board: flashing it once"));
        } else {
            selectors.push(s);
        }
    }
    // --auto-simulate: the real board when one is attached, its virtual ROM otherwise.
    let auto;
    let a = if a.connect.auto_simulate && !board_attached(board, &selectors) {
        let mut sim = a.clone();
        sim.connect.simulate = true;
        auto = sim;
        out.line(&format!(
            "no {} attached: running against its virtual boot ROM (--auto-simulate)",
            board.name
        ));
        &auto
    } else {
        a
    };
    // The transcript is an output file like `image -o`: an existing one is
    // kept without --force, and it is moved in place whole at the end.
    let mut record = match &a.connect.record {
        Some(p) => Some(SafeFile::create(p, a.connect.force)?),
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
            Some(transcript::start(w, &a.connect, board, &selectors, input_files))
        }
        None => None,
    };
    let replay = match &a.connect.replay {
        Some(f) if selectors.len() > 1 => {
            return Err(bad_input(format!(
                "--replay {}: a transcript is one board's run; give at most one --port",
                f.display()
            )));
        }
        Some(f) => Some(transcript::open_replay(f, &a.connect, board)?),
        None => None,
    };

    // The buses: real, replayed, or simulated with one virtual board per job.
    let (usb, serial, sims): (Arc<dyn UsbBus>, Arc<dyn SerialBus>, Sims) = if let Some(r) = &replay {
        (Arc::new(r.usb_bus()), Arc::new(r.serial_bus()), Vec::new())
    } else if a.connect.simulate {
        let su = match a.sim_speed {
            None => SimUsbBus::new(),
            Some(SimSpeed::High) => SimUsbBus::with_model(LinkModel::HIGH_SPEED),
            Some(SimSpeed::Full) => SimUsbBus::with_model(LinkModel::FULL_SPEED),
        };
        let ss = SimSerialBus::new();
        let mut paths: Vec<String> = selectors
            .iter()
            .map(|s| match s {
                Selector::UsbPath(p) => p.clone(),
                _ => String::new(),
            })
            .filter(|p| !p.is_empty())
            .collect();
        if paths.is_empty() {
            paths.push("1-1".into());
        }
        if let Some(spec) = &a.fault {
            check_fault_ports(spec, &paths)?;
        }
        let mut sims = Vec::new();
        for p in &paths {
            let s = drivers::of(board).attach_sim(&SimCtx {
                board,
                args: a,
                port_path: p.clone(),
                fault: flows::fault_for(a.fault.as_deref(), p),
                usb: su.clone(),
                serial: ss.clone(),
            })?;
            sims.push((p.clone(), s));
        }
        (Arc::new(su), Arc::new(ss), sims)
    } else {
        (Arc::new(NusbBus), Arc::new(SystemSerial), Vec::new())
    };

    // Which jobs: one per selector, or one per matching ROM with --all.
    let mut job_selectors: Vec<Option<Selector>> = selectors.iter().cloned().map(Some).collect();
    if a.connect.all {
        job_selectors = all_ports(board, &*usb, &*serial)?.into_iter().map(Some).collect();
        if job_selectors.is_empty() {
            return Err(flows::not_found(board, "boot ROM", &None, None));
        }
    }
    if job_selectors.is_empty() {
        job_selectors.push(None);
    }
    let job_selectors = one_job_per_board(board, &*usb, &*serial, job_selectors, out);
    let parallel = job_selectors.len() > 1;
    // One board's recording also writes its devices coming and going (what
    // a replay needs); a parallel run's records are each board's own.
    let (usb, serial) = match &transcript {
        Some(w) if !parallel => transcript::recording_buses(usb, serial, w, board),
        _ => (usb, serial),
    };
    if !a.monitor.is_empty() && a.monitor.len() != job_selectors.len() {
        return Err(bad_input(format!(
            "{} --monitor ttys for {} boards: give one console per --port, in the same order",
            a.monitor.len(),
            job_selectors.len()
        )));
    }
    // The console of each job: the tty given, or in a simulated run the
    // virtual board's own UART when it has one (the user's tty is not the
    // virtual board's).
    let consoles: Vec<Option<String>> = (0..job_selectors.len())
        .map(|i| {
            let given = a.monitor.get(i).cloned()?;
            match sims.get(i).and_then(|(_, s)| s.console()) {
                Some(virt) => {
                    out.line(&format!("--simulate: --monitor reads the virtual board's UART ({virt})"));
                    Some(virt)
                }
                None => Some(given),
            }
        })
        .collect();
    let consoles = &consoles;
    let expect = match &a.expect {
        Some(re) => Some(
            regex::Regex::new(re)
                .map_err(|e| bad_input(format!("--expect '{re}' is not a valid regular expression: {e}")))?,
        ),
        None => None,
    };
    let expect = expect.as_ref();

    if out.mode == Mode::Json {
        out.json(json!({"event":"start","board":board.name,"soc":board.soc,"protocol":board.protocol.name(),"simulate":a.connect.simulate,"jobs":job_selectors.len()}));
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
                    let label = sel.as_ref().map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                    let transcript = transcript.map(|t| if parallel { t.with_port(&label) } else { t });
                    let mut rep = JobReporter::new(out, parallel.then(|| label.clone()));
                    let (outcome, device) = {
                        let mut conn = Connector::new(usb, serial, &mut rep);
                        conn.selector = sel.clone();
                        conn.wait = a.connect.wait;
                        conn.stage_timeout = a.connect.stage_timeout;
                        conn.recorder = transcript;
                        let mut job = Job {
                            board,
                            args: a,
                            conn,
                            simulate: a.connect.simulate,
                            console: consoles[i].clone(),
                        };
                        let r = drivers::of(board).maskrom(&mut job).map_err(|e| {
                            // The board is not (yet) in its ROM — none found, or a later
                            // stage answered — but a USB bus is there: say how to put
                            // it in its ROM mode.
                            let no_bus = e.chain().any(|c| {
                                matches!(c.downcast_ref(), Some(racklet_link::LinkError::NoUsbBus { .. }))
                            });
                            if class_of(&e) != FailureClass::NotFound || no_bus {
                                return e;
                            }
                            let enter = format!(
                                "To put {} ({}) in its boot ROM mode: {} Without a board, --simulate runs against a virtual ROM.",
                                board.name, board.title, board.enter
                            );
                            add_hint(e, &enter)
                        });
                        (r, job.conn.resolved.take())
                    };
                    let outcome = outcome.and_then(|o| {
                        if rep.cancelled() {
                            Err(fail(FailureClass::Interrupted, "interrupted"))
                        } else {
                            Ok(o)
                        }
                    });
                    // The payload runs: watch its console when asked.
                    let outcome = match (outcome, consoles[i].as_ref()) {
                        (Ok(mut o), Some(tty)) => {
                            let c = Console {
                                tty,
                                baud: a.baud,
                                expect,
                                timeout: a.expect_timeout,
                                label: parallel.then_some(label.as_str()),
                            };
                            console::run(&c, &out2).map(|m| {
                                if let Some(m) = m {
                                    o.fact("console matched", m);
                                }
                                o
                            })
                        }
                        (r, _) => r,
                    };
                    JobResult { label, outcome, elapsed: rep.elapsed(), device }
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
                })
            })
            .collect()
    });

    // In simulation, the virtual ROM's verdict must agree that the payload
    // started. It is paired with the job by the board the job found, and a
    // job that claims success without a verdict has not shown one.
    let mut results = results;
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
                (Ok(o), Ok(v)) => o.fact("virtual ROM", v.clone()),
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
    if a.connect.simulate {
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

    report(board, results, out, parallel)
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
                .map(flows::serial_identity)
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

fn print_done(board: &Board, r: &JobResult, o: &Outcome, out: &Arc<Output>, parallel: bool) {
    if out.mode == Mode::Json {
        let facts: serde_json::Map<String, serde_json::Value> =
            o.facts.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let mut ev = json!({"event":"done","ok":true,"board":board.name,"ms":r.elapsed.as_millis() as u64,"facts":facts});
        if parallel {
            ev["port"] = json!(r.label);
        }
        out.json(ev);
    } else {
        let pre = if parallel { format!("[{}] ", r.label) } else { String::new() };
        for (k, v) in &o.facts {
            out.line(&format!("{pre}{k}: {v}"));
        }
        out.line(&format!("{pre}done: {} started in {:.2}s", board.name, r.elapsed.as_secs_f64()));
    }
}

fn report(board: &Board, results: Vec<JobResult>, out: &Arc<Output>, parallel: bool) -> Result<ExitCode> {
    if !parallel {
        let r = results.into_iter().next().expect("one job");
        return match &r.outcome {
            Ok(o) => {
                print_done(board, &r, o, out, false);
                Ok(ExitCode::SUCCESS)
            }
            Err(_) => Err(r.outcome.expect_err("matched Err")),
        };
    }
    let mut failures = Vec::new();
    for r in &results {
        match &r.outcome {
            Ok(o) => print_done(board, r, o, out, true),
            Err(e) => failures.push((r, class_of(e), e)),
        }
    }
    if out.mode == Mode::Json {
        for (r, class, e) in &failures {
            out.json(json!({"event":"error","port":r.label,"class":class.name(),"exit_code":class.exit_code(),"message":crate::error::message_of(e)}));
        }
        out.json(json!({"event":"summary","ok":results.len() - failures.len(),"failed":failures.len()}));
    } else {
        out.line("");
        out.line(&format!("{:<20} {:<12} {:>8}  detail", "port", "result", "time"));
        for r in &results {
            let (res, detail) = match &r.outcome {
                Ok(_) => ("ok".to_string(), String::new()),
                Err(e) => (class_of(e).name().to_string(), crate::error::message_of(e)),
            };
            out.line(&format!("{:<20} {:<12} {:>7.2}s  {}", r.label, res, r.elapsed.as_secs_f64(), detail));
        }
        if !failures.is_empty() {
            eprintln!("{} of {} boards failed", failures.len(), results.len());
        }
    }
    // One class for all failures: its code. Mixed classes: 1.
    let classes: Vec<FailureClass> = failures.iter().map(|f| f.1).collect();
    Ok(ExitCode::from(exit_code(&classes) as u8))
}
