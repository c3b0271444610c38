//! The fast path (`maskrom … --fast`): the ROM's XMODEM carries
//! the fastload loader (`payloads/fastload`, docs/fastload.md), headed as
//! any SPL is; the loader then takes the user's payload over the same UART
//! at a much higher rate (`racklet_fastload::send_image` on the same open
//! link), checks it and jumps to it.
//!
//! The loader's facts on the JH7110 are those of docs/fastload.md §3 and
//! §6 and of its board record (`payloads/boards.toml`, `fastload = …`):
//! the ROM puts it at the SRAM base, it keeps the first 32 KiB, and images
//! go to the rest of the SRAM (DRAM is not set up at that point).

use std::path::{Path, PathBuf};

use racklet_fastload::{Image, Options, send_image};
use racklet_image::{Source, Target, Window};
use racklet_link::{ProgressSink, SerialLink};
use serde::Serialize;

use crate::plan::{ImageKind, PlanError, headed_image_of};

/// The prebuilt JH7110 loader (`payloads/prebuilt/visionfive2/fastload.elf`,
/// built by `payloads/build.sh`), compiled into the binary.
pub const LOADER: &[u8] = include_bytes!("../../../payloads/prebuilt/visionfive2/fastload.elf");

/// The start of the line the loader prints when it starts (docs/fastload.md §2).
pub const BANNER: &str = "racklet: fastload ";

/// What the built-in loader is called in messages.
pub const LOADER_NAME: &str = "the built-in fastload loader (payloads/prebuilt/visionfive2/fastload.elf)";

/// Where the loader may put an image: the SRAM after its own 32 KiB
/// (docs/fastload.md §6; `payloads/boards.toml`: window 0x0800_8000 + 0x3_8000).
pub const IMAGE_WINDOW: (u64, u64) = (0x0800_8000, 0x3_8000);

/// The fastest rate JH7110 UART0's 24 MHz clock makes exactly: divisor 1
/// (docs/fastload.md §3, "Rates"). Adapters that cannot carry it (a CP2102)
/// fall back to the ROM's 115200 within about 1.2 s (§3.5).
pub const FAST_BAUD: u32 = 1_500_000;

/// What the user asked for with `--fast`.
#[derive(Debug, Clone, Default)]
pub struct FastInputs {
    /// Another loader than the built-in one (`--fast-loader FILE`): an ELF,
    /// a raw binary or an already headed image.
    pub loader: Option<PathBuf>,
    /// The rate for the payload (`--fast-baud N`); default [`FAST_BAUD`].
    pub baud: Option<u32>,
}

/// The payload as the loader will receive it.
#[derive(Debug, Clone)]
pub struct FastPlan {
    /// Which loader the ROM gets (a file, or [`LOADER_NAME`]).
    pub loader: String,
    /// The payload file.
    pub path: PathBuf,
    /// Its bytes (an ELF flattened).
    pub bytes: Vec<u8>,
    /// Where they go and where the loader jumps.
    pub load: u64,
    pub entry: u64,
    pub elf: bool,
    /// The rate asked of the loader.
    pub baud: u32,
}

/// The loader's image window as a fit window, for messages that name it.
fn window(target: &Target) -> Window {
    Window {
        board: target.board.clone(),
        base: IMAGE_WINDOW.0,
        size: IMAGE_WINDOW.1,
        max_payload: Some((
            IMAGE_WINDOW.1,
            format!(
                "the fastload loader's image window (0x{:x} + 0x{:x}, the SRAM after the loader)",
                IMAGE_WINDOW.0, IMAGE_WINDOW.1
            ),
        )),
    }
}

/// The loader's headed image for the ROM, and the payload checked against
/// the loader's window. Every file is read and checked here.
pub(crate) fn plan(
    payload: &Path,
    fast: &FastInputs,
    target: &Target,
) -> Result<(Vec<u8>, ImageKind, FastPlan), PlanError> {
    let baud = fast.baud.unwrap_or(FAST_BAUD);
    if baud == 0 {
        return Err(PlanError::FastBaud { baud });
    }
    let (image, kind, loader) = match &fast.loader {
        Some(p) => {
            let bytes = target.read_stage(p)?;
            let (image, kind) = headed_image_of(p, bytes, target)?;
            (image, kind, p.display().to_string())
        }
        None => {
            let (image, kind) = headed_image_of(Path::new(LOADER_NAME), LOADER.to_vec(), target)?;
            (image, kind, LOADER_NAME.to_string())
        }
    };
    let w = window(target);
    let bytes = target.read_stage(payload)?;
    let p = racklet_image::load_bytes(payload, bytes, target.arch, &w)?;
    let load = p.load_address.unwrap_or(IMAGE_WINDOW.0);
    racklet_image::check_fit(payload, load, p.mem_size, &w)?;
    let elf = matches!(p.source, Source::Elf { .. });
    let entry = p.entry.unwrap_or(load);
    let fp = FastPlan { loader, path: payload.to_path_buf(), bytes: p.bytes, load, entry, elf, baud };
    Ok((image, kind, fp))
}

/// What the loader stage did.
#[derive(Debug, Clone, Serialize)]
pub struct FastReport {
    /// The payload's bytes through the loader.
    pub bytes: u64,
    pub load: u64,
    pub entry: u64,
    /// The rate the payload went at, and the one asked for when it did not
    /// sync (the fallback, docs/fastload.md §3.5).
    pub baud: u32,
    pub fell_back: Option<u32>,
    pub blocks: u32,
    /// Blocks sent more than once.
    pub resent: u64,
    /// From the first block to the loader's DONE.
    pub ms: u64,
    /// Payload bytes per second over that time.
    pub throughput: f64,
    /// What the payload printed first (after the jump).
    pub console: String,
}

/// Sends the payload of `f` through the loader that runs on `link` (the
/// ROM has just started it; the link is still at the ROM's `base_baud`).
pub(crate) fn send<L: SerialLink + ?Sized>(
    link: &mut L,
    f: &FastPlan,
    base_baud: u32,
    progress: &mut dyn ProgressSink,
) -> Result<FastReport, crate::StarfiveError> {
    let image = Image { load: Some(f.load), entry: Some(f.entry), bytes: &f.bytes };
    let opts = Options { base_baud, baud: Some(f.baud), ..Options::default() };
    let r = send_image(link, image, &opts, progress)?;
    let secs = r.data_time.as_secs_f64().max(1e-6);
    Ok(FastReport {
        bytes: f.bytes.len() as u64,
        load: r.load,
        entry: r.entry,
        baud: r.baud,
        fell_back: r.fell_back,
        blocks: r.blocks,
        resent: r.resent,
        ms: r.data_time.as_millis() as u64,
        throughput: f.bytes.len() as f64 / secs,
        console: crate::console::printable(&r.after_go),
    })
}
