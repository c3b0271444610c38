//! sophgo boot ROM flow (issue #5).

use std::sync::Arc;

use anyhow::Result;

use super::{Ctx, InfoReport, Outcome, SimCtx, SimSession, not_built};
use crate::boards::Board;
use crate::cli::{ImageArgs, SimArgs};
use crate::output::Output;

pub fn maskrom(_ctx: &mut Ctx) -> Result<Outcome> {
    Err(not_built("sophgo", 5))
}

pub fn attach_sim(_sim: &SimCtx) -> Result<Box<dyn SimSession>> {
    Err(not_built("sophgo", 5))
}

pub fn image(_board: &Board, _args: &ImageArgs, _payload: &racklet_image::Payload) -> Result<Vec<u8>> {
    Err(not_built("sophgo", 5))
}

pub fn info(_path: &std::path::Path, _bytes: &[u8]) -> Option<InfoReport> {
    None
}

pub fn serve(_board: &Board, _args: &SimArgs, _out: &Arc<Output>) -> Result<()> {
    Err(not_built("sophgo", 5))
}
