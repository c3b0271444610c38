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
    let mut report = match drivers::describe(&bytes) {
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

    // Which boards could take it.
    let fit_rows = boards.takers(&report, &a.file, only.map(|b| b.name.as_str()));
    let ok_checks = report.intact();

    if out.mode == Mode::Json {
        let v = json!({
            "event": "info",
            "board": only.map(|b| b.name.clone()),
            "file": a.file.display().to_string(),
            "kind": report.kind,
            "fields": report.fields,
            "checks": report.checks,
            "boards": fit_rows.iter().map(|(n, r)| json!({"board":n,"fits":r.is_ok(),"why":r.as_ref().err()})).collect::<Vec<_>>(),
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
        let good: Vec<&str> = fit_rows.iter().filter(|r| r.1.is_ok()).map(|r| r.0.as_str()).collect();
        if !ok_checks {
            outln!("  fits no board: the file is damaged");
        } else if good.is_empty() {
            outln!("  fits no board");
        } else {
            outln!("  fits {}", good.join(", "));
        }
        if only.is_some() {
            for (_, r) in &fit_rows {
                if let Err(why) = r {
                    outln!("  does not fit: {why}");
                }
            }
        }
    }
    if !ok_checks {
        return Err(crate::error::bad_input(format!(
            "{}: integrity check failed: {}",
            a.file.display(),
            report.checks.iter().filter(|c| !c.ok).map(|c| c.name.clone()).collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(o) = only
        && let Some((_, Err(why))) = fit_rows.iter().find(|r| r.0 == o.name)
    {
        return Err(crate::error::bad_input(why.clone()));
    }
    Ok(ExitCode::SUCCESS)
}
