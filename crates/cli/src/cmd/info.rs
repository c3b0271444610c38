//! `racklet-flash info <file>`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_image::{Source, load_bytes, read_input, sha256_hex};
use serde_json::json;

use crate::boards::MAX_DRAM_STAGE;
use crate::cli::{GlobalArgs, InfoArgs};
use crate::drivers;
use crate::output::{Mode, Output};

pub fn run(g: &GlobalArgs, a: &InfoArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let only = match &a.board {
        Some(n) => Some(super::find_board(&boards, n)?),
        None => None,
    };
    // No board is known yet: the largest stage any board takes bounds the read.
    let bytes = read_input(&a.file, MAX_DRAM_STAGE, "any stage racklet-flash sends can be")?;
    let described =
        drivers::describe(&bytes).or_else(|| racklet_image::describe::device_tree_description(&bytes));
    let mut report = match described {
        Some(r) => r,
        None => {
            let any = racklet_image::Window::anywhere(
                "any board",
                MAX_DRAM_STAGE,
                "the largest stage racklet-flash sends",
            );
            let p = load_bytes(&a.file, bytes.clone(), None, &any)?;
            let looks_like = matches!(p.source, Source::Raw).then(|| drivers::near_miss(&bytes)).flatten();
            let mut r = racklet_image::describe::payload(&p, looks_like);
            // The SoCs of the boards whose architecture the ELF is.
            if let Source::Elf { arch, .. } = p.source {
                r.socs =
                    boards.boards.iter().filter(|b| b.arch() == Some(arch)).map(|b| b.soc.clone()).collect();
                r.socs.dedup();
            }
            r
        }
    };
    report.field("file size", format!("{} bytes", bytes.len()));
    report.field("sha256", sha256_hex(&bytes));

    // Which boards take it: those whose `maskrom` would (the same checks
    // and the protocol's plan), so `info` and `maskrom` agree.
    let mut fit_rows: Vec<(String, Result<Option<&str>>)> = boards
        .boards
        .iter()
        .filter(|b| only.is_none_or(|o| o.name == b.name))
        .map(|b| (b.name.clone(), super::maskrom::would_take(b, &a.file)))
        .collect();
    let ok_checks = report.intact();

    if out.mode == Mode::Json {
        let v = json!({
            "event": "info",
            "board": only.map(|b| b.name.clone()),
            "file": a.file.display().to_string(),
            "kind": report.kind,
            "fields": report.fields,
            "checks": report.checks,
            "boards": fit_rows.iter().map(|(n, r)| json!({"board":n,"fits":r.is_ok(),"as":r.as_ref().ok().copied().flatten(),"why":r.as_ref().err().map(|e| e.to_string())})).collect::<Vec<_>>(),
        });
        out.json(v);
    } else {
        outln!("{}: {}", a.file.display(), report.kind);
        for f in &report.fields {
            outln!("  {:<26} {}", f.name, f.value);
        }
        for c in &report.checks {
            outln!("  check {:<20} {}", c.name, if c.ok { "ok" } else { "FAILED" });
        }
        let good: Vec<String> = fit_rows
            .iter()
            .filter_map(|(n, r)| match r {
                Ok(None) => Some(n.clone()),
                Ok(Some(slot)) => Some(format!("{n} (as {slot} FILE)")),
                Err(_) => None,
            })
            .collect();
        // One status per verdict: "fits no board" (exit 0: info is not
        // asked about a board), "does not fit BOARD" (exit 2: it was).
        if !ok_checks {
            outln!("  fits no board: the file is damaged");
        } else if let Some(o) = only {
            match fit_rows.first().map(|r| &r.1) {
                Some(Ok(None)) => {
                    outln!("  fits {} (`racklet-flash maskrom {} FILE` takes it)", o.name, o.name)
                }
                Some(Ok(Some(slot))) => {
                    outln!(
                        "  fits {} as {slot} (`racklet-flash maskrom {} {slot} FILE` takes it)",
                        o.name,
                        o.name
                    )
                }
                _ => outln!(
                    "  does not fit {} (`racklet-flash maskrom {} FILE` would refuse it: below)",
                    o.name,
                    o.name
                ),
            }
        } else if good.is_empty() {
            outln!("  fits no board (as the first stage of `racklet-flash maskrom`)");
        } else {
            outln!("  fits {}", good.join(", "));
        }
    }
    if !ok_checks {
        return Err(crate::error::bad_input(format!(
            "{}: integrity check failed: {}",
            a.file.display(),
            report.checks.iter().filter(|c| !c.ok).map(|c| c.name.clone()).collect::<Vec<_>>().join(", ")
        )));
    }
    // Asked about a board that would refuse it: maskrom's own error (and
    // hint and class: a bad input, exit 2).
    if only.is_some()
        && let Some((_, Err(_))) = fit_rows.first()
    {
        let (_, r) = fit_rows.remove(0);
        return r.map(|_| ExitCode::SUCCESS);
    }
    Ok(ExitCode::SUCCESS)
}
