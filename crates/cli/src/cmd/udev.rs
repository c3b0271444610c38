//! `racklet-flash udev-rules`: the udev rules for every boot ROM of the table.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;
use racklet_link::udev::Rule;

use crate::boards::Transport;
use crate::cli::{Cli, GlobalArgs};

pub fn udev_rules(g: &GlobalArgs) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let mut ids: BTreeMap<(u16, u16), (Vec<String>, bool)> = BTreeMap::new();
    for b in &boards.boards {
        for s in &b.usb {
            let e = ids.entry((s.vid, s.pid)).or_default();
            let label = format!("{} {}", b.soc, s.stage);
            if !e.0.contains(&label) {
                e.0.push(label);
            }
            e.1 |= b.transport == Transport::Serial;
        }
    }
    let rules: Vec<Rule> =
        ids.into_iter().map(|((vid, pid), (labels, serial))| Rule { vid, pid, labels, serial }).collect();
    let o = racklet_link::udev::rules(&rules, Cli::command().get_name());
    let _ = std::io::stdout().write_all(o.as_bytes());
    Ok(ExitCode::SUCCESS)
}
