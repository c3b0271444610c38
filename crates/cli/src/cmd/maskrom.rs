//! `racklet-flash maskrom`: one board, or several in parallel.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::nusb_backend::NusbBus;
use racklet_link::serial_backend::SystemSerial;
use racklet_link::transcript::TranscriptWriter;
use racklet_link::{Connector, FailureClass, ProgressSink, Selector, SerialBus, UsbBus};
use racklet_sim::rom::Verdict;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::{LinkModel, SimUsbBus};
use serde_json::json;

use crate::boards::{Board, Transport};
use crate::cli::{GlobalArgs, MaskromArgs, SimSpeed};
use crate::console::{self, Console};
use crate::drivers::{self, Job};
use crate::error::{bad_input, class_of, fail};
use crate::flows::{self, Outcome, SimCtx};
use crate::output::{JobReporter, Mode, Output};

/// The virtual ROMs of a simulated run, by USB port path.
type Sims = Vec<(String, Box<dyn racklet_sim::rom::VirtualRom>)>;

/// Result of one job.
struct JobResult {
    label: String,
    outcome: Result<Outcome>,
    elapsed: std::time::Duration,
}

pub fn run(g: &GlobalArgs, a: &MaskromArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    // Check every input file before anything is touched. A file that almost
    // has a known header is damaged, not a raw binary: refuse it unless
    // --force says to send it raw.
    let inputs = a.bin.iter().chain(a.dram.iter()).chain(a.then.iter()).chain(a.starfive.then_ymodem.iter());
    for p in inputs.chain(a.loads.iter().map(|(_, p)| p)) {
        let bytes = racklet_image::read_input(p)?;
        if let Some(what) = drivers::near_miss(&bytes)
            && !a.connect.force
        {
            return Err(bad_input(format!(
                "{}: looks like {what}; fix or rebuild the file, or add --force to send it as a raw binary",
                p.display()
            )));
        }
    }
    let selectors: Vec<Selector> =
        a.connect.port.iter().map(|s| Selector::parse(s)).collect::<Result<_, _>>()?;
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
    let transcript = match &a.connect.record {
        Some(p) => Some(
            TranscriptWriter::create(p)
                .map_err(|e| bad_input(format!("{}: cannot create the transcript file: {e}", p.display())))?,
        ),
        None => None,
    };

    // The buses: real, or simulated with one virtual board per job.
    let (usb, serial, sims): (Arc<dyn UsbBus>, Arc<dyn SerialBus>, Sims) = if a.connect.simulate {
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
    let parallel = job_selectors.len() > 1;
    if !a.monitor.is_empty() && a.monitor.len() != job_selectors.len() {
        return Err(bad_input(format!(
            "{} --monitor ttys for {} boards: give one console per --port, in the same order",
            a.monitor.len(),
            job_selectors.len()
        )));
    }
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
                    let mut rep = JobReporter::new(out, parallel.then(|| label.clone()));
                    let outcome = {
                        let mut conn = Connector::new(usb, serial, &mut rep);
                        conn.selector = sel.clone();
                        conn.wait = a.connect.wait;
                        conn.stage_timeout = a.connect.stage_timeout;
                        conn.recorder = transcript;
                        let mut job = Job { board, args: a, conn, simulate: a.connect.simulate };
                        drivers::of(board).maskrom(&mut job)
                    };
                    let outcome = outcome.and_then(|o| {
                        if rep.cancelled() {
                            Err(fail(FailureClass::Interrupted, "interrupted"))
                        } else {
                            Ok(o)
                        }
                    });
                    // The payload runs: watch its console when asked.
                    let outcome = match (outcome, a.monitor.get(i)) {
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
                    JobResult { label, outcome, elapsed: rep.elapsed() }
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
                })
            })
            .collect()
    });

    // In simulation, the virtual ROM's verdict must agree that the payload started.
    let mut results = results;
    for (path, mut sim) in sims {
        let verdict = match sim.verdict() {
            Verdict::Started { summary } => Ok(summary),
            Verdict::NotStarted { why } => Err(why),
        };
        if let Some(r) = results.iter_mut().find(|r| r.label == path || (r.label == "-" && path == "1-1")) {
            match (&mut r.outcome, verdict) {
                (Ok(o), Ok(v)) => o.fact("virtual ROM", v),
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

    report(board, results, out, parallel)
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
            out.json(json!({"event":"error","port":r.label,"class":class.name(),"exit_code":class.exit_code(),"message":format!("{e:#}")}));
        }
        out.json(json!({"event":"summary","ok":results.len() - failures.len(),"failed":failures.len()}));
    } else {
        out.line("");
        out.line(&format!("{:<20} {:<12} {:>8}  detail", "port", "result", "time"));
        for r in &results {
            let (res, detail) = match &r.outcome {
                Ok(_) => ("ok".to_string(), String::new()),
                Err(e) => (class_of(e).name().to_string(), format!("{e:#}")),
            };
            out.line(&format!("{:<20} {:<12} {:>7.2}s  {}", r.label, res, r.elapsed.as_secs_f64(), detail));
        }
        if !failures.is_empty() {
            eprintln!("{} of {} boards failed", failures.len(), results.len());
        }
    }
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // One class for all failures: its code. Mixed classes: 1.
    let first = failures[0].1;
    let code = if failures.iter().all(|f| f.1 == first) { first.exit_code() } else { 1 };
    Ok(ExitCode::from(code as u8))
}
