//! `racklet-flash image`: the storage boot image the board's ROM expects.
//!
//! K1: a raw SPL (linked at 0xC0801000) wrapped into FSBL.bin. TH1520: the
//! ROM takes u-boot-with-spl.bin as it is; there is nothing to wrap.

use racklet_image::{Payload, Target};

use crate::k1;
use crate::plan::{PlanError, Soc, soc_of};

/// The image of `payload` for the board `target` describes.
pub fn image(payload: &Payload, target: &Target) -> Result<Vec<u8>, PlanError> {
    match soc_of(target)? {
        Soc::K1 => {
            let path = &payload.path;
            if k1::parse_fsbl(&payload.bytes).is_ok() {
                return Err(PlanError::AlreadyFsbl { path: path.clone() });
            }
            let code_at = k1::LOAD_ADDRESS + k1::SPL_OFFSET as u64;
            if let Some(at) = payload.load_address
                && at != code_at
            {
                return Err(PlanError::LinkedElsewhere { path: path.clone(), at, code_at });
            }
            let out = k1::build_fsbl(&payload.bytes);
            racklet_image::check_fit(path, target.load_address, out.len() as u64, &target.window)?;
            Ok(out)
        }
        Soc::Th1520 => Err(PlanError::NoHeaderToAdd { board: target.board.clone() }),
    }
}
