//! `racklet-flash image`: the storage boot image of a payload (a "K230"
//! header of crypto type 0 around it, canaan-k230.md §3).
//!
//! On storage boot the ROM reads the image from the card at byte 0x100000,
//! checks it, copies the payload (after the version word) into SRAM at
//! 0x80300000 and runs it there (the SDK's SPL is linked at 0x80300000,
//! `CONFIG_SPL_TEXT_BASE`; andelf/k230-bare-metal `link.x` likewise). So
//! the payload must be built for 0x80300000 and hold at most 1 MiB, up to
//! the end of the SRAM — not for the USB download address 0x80360000.

use racklet_image::{Payload, Target};

use crate::plan::PlanError;
use crate::{STORAGE_BACKUP_OFFSET, STORAGE_LOAD, STORAGE_MAX, STORAGE_OFFSET, header, in_sram};

/// The storage image of `payload` for the board `target`: an ELF linked
/// anywhere but 0x80300000, or a payload larger than 1 MiB, is refused.
pub fn image(payload: &Payload, target: &Target) -> Result<Vec<u8>, PlanError> {
    // What the payload occupies once running (.bss included) must fit.
    let len = payload.mem_size;
    let (sram_base, sram_size) = (target.window.base, target.window.size);
    if let Some(at) = payload.load_address {
        if !in_sram(at, len) {
            return Err(PlanError::ImageOutsideSram {
                path: payload.path.clone(),
                start: at,
                end: at + len,
                board: target.board.clone(),
                sram_base,
                sram_end: sram_base + sram_size,
            });
        }
        if at != STORAGE_LOAD {
            return Err(PlanError::ImageLinkedElsewhere { path: payload.path.clone(), start: at });
        }
    }
    if len > STORAGE_MAX {
        return Err(PlanError::ImageTooLarge {
            path: payload.path.clone(),
            len,
            board: target.board.clone(),
            max: STORAGE_MAX,
        });
    }
    header::build_plain(&payload.bytes, 0)
        .map_err(|source| PlanError::Header { path: payload.path.clone(), source })
}

/// What to do with the image, for the user: where on the card it goes.
pub fn notes() -> Vec<String> {
    vec![
        format!(
            "the boot ROM reads this image from an SD card or eMMC at byte 0x{STORAGE_OFFSET:x} (sector {}), copies the payload to 0x{STORAGE_LOAD:x} and runs it there",
            STORAGE_OFFSET / 512
        ),
        format!(
            "write it there with `racklet-flash write <board> IMAGE --medium sd --at 0x{STORAGE_OFFSET:x} --loader loader_mmc.bin`, or `dd if=IMAGE of=/dev/sdX bs=512 seek={}`; community images keep a second copy at 0x{STORAGE_BACKUP_OFFSET:x}",
            STORAGE_OFFSET / 512
        ),
    ]
}
