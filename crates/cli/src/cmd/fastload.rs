//! `racklet-flash fastload --port TTY FILE`: load FILE through a fastload
//! loader that is already running on TTY (docs/fastload.md), then watch the
//! same port, which is the payload's console.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use racklet_fastload::{Image, Options, send_image};
use racklet_link::SerialInfo;
use racklet_link::serial_backend::SerialPortLink;
use serde_json::json;

use crate::args::values::{parse_address, parse_duration};
use crate::console::{self, Console};
use crate::error::{bad_input, fail};
use crate::output::{JobReporter, Mode, Output};

/// `racklet-flash fastload --port TTY FILE`
#[derive(Debug, Args, Clone)]
pub struct FastloadArgs {
    /// The serial port the loader runs on (it is the payload's console afterwards).
    #[arg(long, value_name = "TTY")]
    pub port: String,
    /// The image: an ELF (load address and entry from it) or a raw binary.
    pub file: PathBuf,
    /// Rate for the image (default: the fastest the loader's UART clock makes exactly).
    #[arg(long, value_name = "N")]
    pub baud: Option<u32>,
    /// The port's rate now (the ROM's), and the console's after the jump.
    #[arg(long, value_name = "N", default_value_t = 115_200)]
    pub base_baud: u32,
    /// Load address of a raw binary (default: the start of the loader's image window).
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    pub load: Option<u64>,
    /// How long to wait for the loader to answer.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// After the jump, exit 0 once this regular expression appears on the port (timeout class otherwise).
    #[arg(long, value_name = "RE")]
    pub expect: Option<String>,
    /// How long to wait for --expect.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub expect_timeout: Duration,
}

pub fn run(a: &FastloadArgs, out: &Arc<Output>) -> Result<ExitCode> {
    let expect = crate::console::expect(a.expect.as_deref())?;
    // No board table here: the loader itself says where images may go (it
    // refuses an image over itself or outside its RAM), so only the size is
    // bounded before reading.
    let max = crate::boards::MAX_DRAM_STAGE;
    let window = racklet_image::Window::anywhere("the fast loader", max, "a fastload image");
    let payload = racklet_image::load(&a.file, None, max, &window)?;
    let image = Image::placed(&payload.bytes, payload.load_address.map(|l| (l, payload.entry)), a.load)
        .map_err(|e| bad_input(format!("{}: {e}", a.file.display())))?;
    let info = SerialInfo { path: a.port.clone(), ..Default::default() };
    let mut link = SerialPortLink::open(info, a.base_baud)?;
    let opts = Options {
        base_baud: a.base_baud,
        baud: a.baud,
        connect_timeout: a.connect_timeout,
        ..Options::default()
    };
    let mut rep = JobReporter::with_port(out.clone(), None, Some(a.port.clone()));
    let r = send_image(&mut link, image, &opts, &mut rep)
        .map_err(crate::error::classify)
        .with_context(|| format!("fastload of {} on {}", a.file.display(), a.port))?;
    let secs = r.data_time.as_secs_f64().max(1e-6);
    if out.mode == Mode::Json {
        out.json(json!({"event":"fastload","board":r.info.board,"port":a.port,"baud":r.baud,"fell_back":r.fell_back,
            "bytes":payload.bytes.len(),"load":r.load,"entry":r.entry,"blocks":r.blocks,"resent":r.resent,
            "ms":(secs * 1000.0) as u64}));
    } else {
        out.line(&format!(
            "loaded {} bytes at 0x{:x} in {:.2} s at {} baud ({:.0} B/s{}{}), started at 0x{:x}",
            payload.bytes.len(),
            r.load,
            secs,
            r.baud,
            payload.bytes.len() as f64 / secs,
            if r.resent > 0 { format!(", {} blocks resent", r.resent) } else { String::new() },
            match r.fell_back {
                Some(b) => format!(", {b} baud did not sync"),
                None => String::new(),
            },
            r.entry
        ));
    }
    if let Some(re) = &expect {
        let c = Console {
            tty: &a.port,
            baud: a.base_baud,
            expect: Some(re),
            timeout: a.expect_timeout,
            label: None,
        };
        match console::run_on(&mut link, &c, out, &r.after_go)? {
            Some(m) => out.line(&format!("console matched: {m}")),
            None => return Err(fail(racklet_link::FailureClass::Interrupted, "interrupted")),
        }
    }
    Ok(ExitCode::SUCCESS)
}
