//! `--record` and `--replay` for the commands that open a device: the
//! transcript's header and end, the recording buses, and the replay's
//! buses and verdict (docs/transcripts.md).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use racklet_link::transcript::reader::{self, Header, InputFile};
use racklet_link::transcript::{
    DataMode, Interest, RecordOptions, RecordingSerialBus, RecordingUsbBus, TranscriptWriter,
};
use racklet_link::{Selector, SerialBus, UsbBus};
use racklet_sim::replay::{Replay, ReplayOptions};

use crate::args::connect::{ConnectArgs, RecordData};
use crate::boards::Board;
use crate::error::{bad_input, classify};

/// The options `--record-data` and `--record-redact` ask for.
pub fn options(c: &ConnectArgs) -> RecordOptions {
    RecordOptions {
        data: match c.record_data {
            RecordData::Hashed => DataMode::Hashed,
            RecordData::Full => DataMode::Full,
        },
        redact: c.record_redact,
    }
}

/// Starts a transcript on `w`: options, serial numbers the selectors name
/// (so the command line is redacted too), and the header.
pub fn start(
    w: TranscriptWriter,
    c: &ConnectArgs,
    board: &Board,
    selectors: &[Selector],
    inputs: Vec<InputFile>,
) -> TranscriptWriter {
    let w = w.with_options(options(c));
    for s in selectors {
        if let Selector::UsbId { serial: Some(serial), .. } = s {
            w.learn_serial(serial);
        }
    }
    w.header(&Header {
        format: racklet_link::transcript::FORMAT,
        racklet_flash: env!("CARGO_PKG_VERSION").to_string(),
        board: Some(board.name.clone()),
        argv: argv(),
        inputs,
    });
    w
}

/// The command line, the program by its name only (where it was installed
/// is nobody's business and differs between machines).
fn argv() -> Vec<String> {
    let mut v: Vec<String> = std::env::args().collect();
    if let Some(p) = v.first_mut() {
        *p = Path::new(p.as_str()).file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    }
    v
}

/// The board's USB ids: the devices a recording bus writes down.
fn interest(board: &Board) -> Interest {
    Interest { ids: board.usb_ids() }
}

/// The buses of a recorded run: the same buses, with the board's devices
/// coming and going written to the transcript.
pub fn recording_buses(
    usb: Arc<dyn UsbBus>,
    serial: Arc<dyn SerialBus>,
    w: &TranscriptWriter,
    board: &Board,
) -> (Arc<dyn UsbBus>, Arc<dyn SerialBus>) {
    (
        Arc::new(RecordingUsbBus::new(usb, w.clone(), interest(board))),
        Arc::new(RecordingSerialBus::new(serial, w.clone(), interest(board))),
    )
}

/// Reads `--replay FILE` and checks it is a recording of `board`.
pub fn open_replay(path: &Path, c: &ConnectArgs, board: &Board) -> Result<Replay> {
    let t = reader::read_path(path).map_err(classify)?;
    if let Some(b) = t.header.as_ref().and_then(|h| h.board.as_ref())
        && b != &board.name
    {
        return Err(bad_input(format!(
            "{}: a recording of {b}, not of {}; give `maskrom {b}` to replay it",
            path.display(),
            board.name
        )));
    }
    let file = path.display().to_string();
    Replay::new(t, &file, ReplayOptions { timing: c.replay_timing }).map_err(classify)
}
