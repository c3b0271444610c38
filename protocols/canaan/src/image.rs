//! `racklet-flash image`: the storage boot image of a payload (a "K230"
//! header of crypto type 0 around it, canaan-k230.md §3).

use racklet_image::{Payload, Target};

use crate::plan::PlanError;
use crate::{header, in_sram};

/// The storage image of `payload` for the board `target`: the ROM copies
/// the payload into SRAM and runs it there, so an ELF linked outside the
/// SRAM, or a payload larger than it, is refused.
pub fn image(payload: &Payload, target: &Target) -> Result<Vec<u8>, PlanError> {
    // What the payload occupies once running (.bss included) must fit.
    let len = payload.mem_size;
    let (sram_base, sram_size) = (target.window.base, target.window.size);
    if let Some(at) = payload.load_address
        && !in_sram(at, len)
    {
        return Err(PlanError::ImageOutsideSram {
            path: payload.path.clone(),
            start: at,
            end: at + len,
            board: target.board.clone(),
            sram_base,
            sram_end: sram_base + sram_size,
        });
    }
    if len > sram_size {
        return Err(PlanError::ImageTooLarge {
            path: payload.path.clone(),
            len,
            board: target.board.clone(),
            sram_size,
        });
    }
    header::build_plain(&payload.bytes, 0)
        .map_err(|source| PlanError::Header { path: payload.path.clone(), source })
}
