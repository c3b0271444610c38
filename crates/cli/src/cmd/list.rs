//! `racklet-flash list`: the boot ROMs attached now.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::nusb_backend::NusbBus;
use racklet_link::serial_backend::SystemSerial;
use racklet_link::{Classify, LinkError, SerialBus, SerialInfo, UsbBus, UsbInfo};
use serde::Serialize;
use serde_json::json;

use crate::boards::{Boards, Transport};
use crate::cli::{GlobalArgs, ListArgs};
use crate::output::{Mode, Output};

/// One row of `list`.
#[derive(Debug, Serialize)]
pub struct Row {
    pub transport: &'static str,
    pub port_path: Option<String>,
    pub id: Option<String>,
    pub tty: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
    /// SoCs whose ROM (or later stage) uses these ids.
    pub socs: Vec<String>,
    /// Stages these ids are seen in ("rom", "loader", ...).
    pub stages: Vec<String>,
    pub boards: Vec<String>,
}

/// The rows for what the buses show now, and why the USB bus could not be
/// listed when it could not (a machine without a USB subsystem has no
/// devices: that is an empty list, not an error).
pub fn rows(
    boards: &Boards,
    usb: &dyn UsbBus,
    serial: &dyn SerialBus,
    all: bool,
) -> (Vec<Row>, Option<LinkError>) {
    let mut rows = Vec::new();
    let (devices, usb_error): (Vec<UsbInfo>, _) = match usb.devices() {
        Ok(d) => (d, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let ports: Vec<SerialInfo> = serial.ports().unwrap_or_default();
    for d in devices {
        let (socs, stages, names) = boards.using(d.vid, d.pid);
        // USB ROMs that present as serial ports (CDC-ACM) are listed with their tty below.
        let serial_rom =
            names.iter().any(|n| boards.find(n).is_some_and(|b| b.transport == Transport::Serial));
        if (names.is_empty() && !all) || serial_rom {
            continue;
        }
        rows.push(Row {
            transport: "usb",
            port_path: Some(d.port_path.clone()),
            id: Some(d.id()),
            tty: None,
            product: d.product.clone(),
            serial: d.serial.clone(),
            socs,
            stages,
            boards: names,
        });
    }
    for p in ports {
        let (socs, stages, names) = match (p.vid, p.pid) {
            (Some(v), Some(pi)) => boards.using(v, pi),
            _ => Default::default(),
        };
        if names.is_empty() && !all {
            continue;
        }
        rows.push(Row {
            transport: "serial",
            port_path: p.port_path.clone(),
            id: p.vid.zip(p.pid).map(|(v, pi)| format!("{v:04x}:{pi:04x}")),
            tty: Some(p.path.clone()),
            product: p.product.clone(),
            serial: p.serial.clone(),
            socs,
            stages,
            boards: names,
        });
    }
    (rows, usb_error)
}

pub fn run(g: &GlobalArgs, a: &ListArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let (rows, usb_error) = rows(&boards, &NusbBus, &SystemSerial, a.all);
    if let Some(e) = &usb_error
        && out.mode != Mode::Json
    {
        eprintln!("note: USB devices not listed: {e}");
        if let Some(h) = e.hint() {
            eprintln!("hint: {h}");
        }
    }
    if out.mode == Mode::Json {
        // One event per device, then `listed` (so an empty list still says so).
        for r in &rows {
            let mut ev = serde_json::to_value(r)?;
            ev["event"] = json!("device");
            ev["board"] = json!(if r.boards.len() == 1 { Some(&r.boards[0]) } else { None });
            ev["port"] = json!(r.port_path.as_ref().or(r.tty.as_ref()));
            out.json(ev);
        }
        out.json(json!({"event":"listed","devices":rows.len(),
            "usb_error":usb_error.as_ref().map(|e| e.to_string()),
            "hint":usb_error.as_ref().and_then(|e| e.hint())}));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!(
            "no boot ROM found on USB or serial{}. Put the board in its boot ROM mode (`racklet-flash boards` says how), or use --all to see every device.",
            if a.all { " (and no other device)" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<10} {:<10} {:<10} {:<14} {:<12} {:<10} boards",
        "transport",
        "port",
        "id",
        "tty",
        "soc",
        "stage"
    );
    for r in rows {
        outln!(
            "{:<10} {:<10} {:<10} {:<14} {:<12} {:<10} {}",
            r.transport,
            r.port_path.as_deref().unwrap_or("-"),
            r.id.as_deref().unwrap_or("-"),
            r.tty.as_deref().unwrap_or("-"),
            if r.socs.is_empty() { "-".into() } else { r.socs.join(",") },
            if r.stages.is_empty() { "-".into() } else { r.stages.join("/") },
            if r.boards.is_empty() { r.product.clone().unwrap_or_default() } else { r.boards.join(", ") },
        );
    }
    Ok(ExitCode::SUCCESS)
}
