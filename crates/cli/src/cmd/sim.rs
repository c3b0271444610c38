//! `racklet-flash sim <board>`: a virtual boot ROM served outside the process.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use crate::cli::{GlobalArgs, SimArgs};
use crate::error::bad_input;
use crate::output::{Mode, Output};

/// `racklet-flash sim`: the sim registry serves the board's virtual ROM by
/// its SoC; this shows what the server says and writes what `--save` keeps.
pub fn sim(g: &GlobalArgs, a: &SimArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let boards = super::load_boards(g)?;
    let board = super::find_board(&boards, &a.board)?;
    if let Some(d) = &a.save {
        std::fs::create_dir_all(d).map_err(|e| bad_input(format!("{}: cannot create: {e}", d.display())))?;
    }
    let request = racklet_sim::serve::Request {
        board: board.name.clone(),
        soc: board.soc.clone(),
        tcp: a.tcp.clone(),
        keep: a.keep,
        fault: a.fault.clone(),
        save: a.save.clone(),
        storage: a.sim_storage.clone(),
        medium: a.medium.clone(),
        in_uboot: a.in_uboot,
        tmp: std::env::temp_dir(),
    };
    let on = |s: racklet_sim::serve::Said<'_>| -> Result<(), racklet_sim::serve::CallerError> {
        if let Some(w) = &s.warning {
            eprintln!("{w}");
        }
        if let Some((path, bytes)) = s.save {
            // Never through a planted symlink, never over an existing file.
            racklet_image::output::write_file(&path, bytes, false)?;
        }
        match (out.mode == Mode::Json, s.json) {
            (true, Some(ev)) => out.json(ev),
            (json, _) => {
                if let Some(address) = &s.address {
                    outln!("{address}");
                }
                if let (false, Some(line)) = (json, &s.line) {
                    out.line(line);
                }
            }
        }
        Ok(())
    };
    racklet_sim::models::serve(&request, &|| out.cancelled(), &on).map_err(|e| match e {
        // What could not be saved: the write's own error (and class).
        racklet_sim::serve::ServeError::Caller(c) => anyhow::Error::from_boxed(c),
        e => crate::error::classify(e),
    })?;
    Ok(ExitCode::SUCCESS)
}
