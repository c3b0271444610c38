//! `racklet-flash info <file>`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_image::{Source, check_fit, load_bytes, read_input, sha256_hex};
use serde_json::json;

use crate::boards::{Board, MAX_DRAM_STAGE};
use crate::cli::{GlobalArgs, InfoArgs};
use crate::flows::{self, InfoReport};
use crate::output::{Mode, Output};

fn fits(board: &Board, path: &std::path::Path, load: Option<u64>, len: u64) -> Result<(), String> {
    let at = load.unwrap_or(board.load_address);
    check_fit(path, at, len, &board.window()).map_err(|e| e.to_string())
}

pub fn run(g: &GlobalArgs, a: &InfoArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let only = match &a.board {
        Some(n) => Some(super::find_board(&boards, n)?),
        None => None,
    };
    // No board is known yet: the largest stage any board takes bounds the read.
    let bytes = read_input(&a.file, MAX_DRAM_STAGE, "any stage racklet-flash sends can be")?;
    let mut report = match flows::info(&a.file, &bytes) {
        Some(r) => r,
        None => {
            let any = racklet_image::Window::anywhere(
                "any board",
                MAX_DRAM_STAGE,
                "the largest stage racklet-flash sends",
            );
            let p = load_bytes(&a.file, bytes.clone(), None, &any)?;
            let mut r = InfoReport::default();
            match &p.source {
                Source::Elf { arch, segments } => {
                    r.kind = format!("ELF ({arch})");
                    r.fields.push(("architecture".into(), arch.to_string()));
                    r.fields.push(("load address".into(), format!("0x{:x}", p.load_address.unwrap_or(0))));
                    r.fields.push(("entry".into(), format!("0x{:x}", p.entry.unwrap_or(0))));
                    for (i, s) in segments.iter().enumerate() {
                        r.fields.push((
                            format!("segment {i}"),
                            format!(
                                "0x{:x}, {} bytes in file, {} in memory",
                                s.address, s.file_size, s.mem_size
                            ),
                        ));
                    }
                }
                Source::Raw => r.kind = "raw binary".into(),
            }
            r.fields.push(("image size".into(), format!("{} bytes", p.bytes.len())));
            r.payload = Some((p.load_address.unwrap_or(u64::MAX), p.mem_size));
            if let Source::Elf { arch, .. } = p.source {
                r.socs =
                    boards.boards.iter().filter(|b| b.arch() == Some(arch)).map(|b| b.soc.clone()).collect();
                r.socs.dedup();
                r.fields.push(("sha256 of the flat image".into(), sha256_hex(&p.bytes)));
            }
            r
        }
    };
    report.fields.push(("file size".into(), format!("{} bytes", bytes.len())));
    report.fields.push(("sha256".into(), sha256_hex(&bytes)));

    // Which boards could take it.
    let mut fit_rows: Vec<(String, Result<(), String>)> = Vec::new();
    for b in &boards.boards {
        if only.is_some_and(|o| o.name != b.name) {
            continue;
        }
        if let Some(proto) = report.protocol
            && proto != b.protocol
        {
            continue;
        }
        if !report.socs.is_empty() && !report.socs.contains(&b.soc) && only.is_none() {
            continue;
        }
        if let Some((load, len)) = report.payload {
            let load = if load == u64::MAX { None } else { Some(load) };
            fit_rows.push((b.name.clone(), fits(b, &a.file, load, len)));
        } else {
            fit_rows.push((b.name.clone(), Ok(())));
        }
    }
    let ok_checks = report.checks.iter().all(|c| c.1);

    if out.mode == Mode::Json {
        let v = json!({
            "file": a.file.display().to_string(),
            "kind": report.kind,
            "fields": report.fields.iter().map(|(k, v)| json!({"name":k,"value":v})).collect::<Vec<_>>(),
            "checks": report.checks.iter().map(|(k, ok)| json!({"name":k,"ok":ok})).collect::<Vec<_>>(),
            "boards": fit_rows.iter().map(|(n, r)| json!({"board":n,"fits":r.is_ok(),"why":r.as_ref().err()})).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("{}: {}", a.file.display(), report.kind);
        for (k, v) in &report.fields {
            outln!("  {k:<26} {v}");
        }
        for (k, ok) in &report.checks {
            outln!("  check {k:<20} {}", if *ok { "ok" } else { "FAILED" });
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
            report.checks.iter().filter(|c| !c.1).map(|c| c.0.clone()).collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(o) = only
        && let Some((_, Err(why))) = fit_rows.iter().find(|r| r.0 == o.name)
    {
        return Err(crate::error::bad_input(why.clone()));
    }
    Ok(ExitCode::SUCCESS)
}
