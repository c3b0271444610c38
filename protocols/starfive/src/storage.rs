//! The headed image for storage (`racklet-flash image`): what spl_tool
//! writes, for QSPI flash, SD or eMMC.

use racklet_image::{Payload, Target, check_fit};

use crate::header::{self, Header, HeaderOptions};
use crate::plan::{PlanError, check_load_address};

/// The two header fields the user may choose, as spl_tool reads them: a
/// value of 0 means the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageOptions {
    pub version: Option<u64>,
    pub backup_offset: Option<u64>,
}

/// A storage image and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Storage {
    pub bytes: Vec<u8>,
    /// Sizes other tools would refuse: warnings, not errors.
    pub notes: Vec<String>,
}

/// `header ‖ payload` for `target`. The payload must not be headed already
/// (spl_tool would head it twice, which never boots), must be linked for
/// the board's load address and fit its SRAM.
pub fn image(payload: &Payload, target: &Target, opts: &ImageOptions) -> Result<Storage, PlanError> {
    if Header::parse(&payload.bytes).is_some() {
        return Err(PlanError::AlreadyHeaded { path: payload.path.clone() });
    }
    check_load_address(target, payload)?;
    let at = payload.load_address.unwrap_or(target.load_address);
    check_fit(&payload.path, at, payload.mem_size, &target.window)?;
    let hopts = HeaderOptions::from_user(opts.version, opts.backup_offset).map_err(PlanError::Field)?;
    let notes = header::size_notes(payload.bytes.len() as u64);
    let bytes = header::build_image(&payload.bytes, &hopts)
        .map_err(|error| PlanError::Header { path: payload.path.clone(), error })?;
    Ok(Storage { bytes, notes })
}
