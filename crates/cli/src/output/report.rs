//! The end of a run: each board's `done` line or `error`, and for several
//! boards the summary table (human) or `summary` event (JSON) and the exit
//! code that stands for them all; and the same as a transcript's `end`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::FailureClass;
use racklet_link::transcript::reader::End;
use serde_json::json;

use super::{ErrorAt, Mode, Output};
use crate::boards::Board;
use crate::cmd::run::JobResult;
use crate::error::class_of;
use crate::job::Outcome;

/// How the run ends, for the transcript's `end` record: the exit code
/// [`report`] and `main` give, and a single board's failure.
pub fn run_end(results: &[JobResult], parallel: bool) -> End {
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
pub fn exit_code(failed: &[FailureClass]) -> i32 {
    match failed.first() {
        None => 0,
        Some(first) if failed.iter().all(|f| f == first) => first.exit_code(),
        Some(_) => 1,
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

pub fn report(
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
