//! StarFive JH7110 UART boot (issue #4): header the payload as spl_tool
//! does, send it to the ROM with XMODEM, optionally feed the SPL's YMODEM
//! request for the next stage.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use racklet_image::{Payload, Source, check_fit};
use racklet_link::{FailureClass, SerialInfo};
use racklet_sim::starfive::{Fault, RomConfig, RomReport, StarfiveRom};
use racklet_starfive::header::{self, Header, HeaderOptions};
use racklet_starfive::xmodem::BlockSize;
use racklet_starfive::{BootOptions, boot_uart, send_next_stage};
use serde_json::json;

use super::{Ctx, InfoReport, Outcome, SimCtx, SimSession, payload_from, read_stage};
use crate::boards::{Board, Protocol};
use crate::cli::{ImageArgs, SimArgs};
use crate::error::{bad_input, classify, fail};
use crate::output::{Mode, Output};

/// The line rate of the ROM's UART, in bytes per second (8N1: 10 bits a byte).
const LINE_RATE: f64 = 115_200.0 / 10.0;
/// How long `sim` keeps the pty open after its one session.
const SERVE_LINGER: Duration = Duration::from_secs(2);
/// How long to wait for the ROM's first poll when --wait is not given.
const DEFAULT_POLL_WAIT: Duration = Duration::from_secs(10);

/// A payload file as a headed image: a headed input is taken as it is
/// (after checking its CRC), anything else is loaded (ELF or raw), checked
/// against the SRAM and wrapped.
fn headed_image(board: &Board, path: &Path) -> Result<(Vec<u8>, String)> {
    let bytes = read_stage(board, path)?;
    if let Some(h) = Header::parse(&bytes) {
        h.verify(&bytes).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        header::check_size(h.payload_len as u64)
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        let end = header::HEADER_LEN + h.payload_len as usize;
        let what = format!(
            "headed image (version 0x{:08x}, {}-byte payload, CRC-32 0x{:08x} ok), sent as it is",
            h.version, h.payload_len, h.crc32
        );
        return Ok((bytes[..end].to_vec(), what));
    }
    let p = payload_from(board, path, bytes)?;
    check_load_address(board, &p)?;
    let img = header::build_image(&p.bytes, &HeaderOptions::default())
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    let kind = match p.source {
        Source::Elf { .. } => "ELF",
        Source::Raw => "raw binary",
    };
    Ok((img, format!("{kind}, {} bytes, wrapped in the spl_tool header", p.bytes.len())))
}

/// The ROM copies the payload to the start of SRAM and jumps there: an ELF
/// linked elsewhere would run at the wrong address.
fn check_load_address(board: &Board, p: &Payload) -> Result<()> {
    if let Some(at) = p.load_address
        && at != board.load_address
    {
        return Err(bad_input(format!(
            "{}: the ELF loads at 0x{at:x}, but the {} ROM always places the payload at 0x{:x} and jumps there; link it for 0x{:x}",
            p.path.display(),
            board.soc,
            board.load_address,
            board.load_address
        )));
    }
    Ok(())
}

/// On Linux, the FTDI latency timer of the adapter; sets it to 1 ms when
/// asked. Returns a note for the user.
fn latency_note(path: &str, set_low: bool) -> Option<String> {
    let ms = racklet_link::serial_backend::ftdi_latency_timer(path)?;
    let name = Path::new(path).file_name()?.to_string_lossy().to_string();
    let attr = format!("/sys/bus/usb-serial/devices/{name}/latency_timer");
    if set_low {
        if ms <= 1 {
            return None;
        }
        return Some(match std::fs::write(&attr, "1") {
            Ok(()) => format!("set the FTDI latency timer of {name} from {ms} ms to 1 ms"),
            Err(e) => format!(
                "could not set the FTDI latency timer of {name} to 1 ms ({e}); run `echo 1 | sudo tee {attr}`"
            ),
        });
    }
    (ms > 1).then(|| {
        format!(
            "{name} is an FTDI adapter with a {ms} ms latency timer: every XMODEM block waits up to {ms} ms for its ACK; add --low-latency to set it to 1 ms"
        )
    })
}

pub fn maskrom(ctx: &mut Ctx) -> Result<Outcome> {
    let board = ctx.board;
    let args = ctx.args;
    let bin = args.bin.as_ref().ok_or_else(|| {
        bad_input(format!(
            "{} needs a payload: racklet-flash maskrom {} payload.bin|payload.elf|payload.img",
            board.name, board.name
        ))
    })?;
    // Every input is checked before the port is touched.
    let (image, what) = headed_image(board, bin)?;
    let next = match &args.then_ymodem {
        Some(p) => {
            let name =
                p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "u-boot.itb".into());
            Some((name, read_stage(board, p)?))
        }
        None => None,
    };
    for note in header::size_notes((image.len() - header::HEADER_LEN) as u64) {
        ctx.progress.say(format!("warning: {note}"));
    }

    let info = ctx.find_serial(None, "USB-UART adapter on the JH7110's UART0")?;
    if let Some(note) = latency_note(&info.path, args.low_latency) {
        ctx.progress.say(note);
    }
    let mut link = ctx.open_serial(&info, board.baud.unwrap_or(115_200))?;

    let mut opts = BootOptions::default();
    opts.xmodem.block = if args.xmodem_128 { BlockSize::B128 } else { BlockSize::K1 };
    opts.poll_timeout = ctx.wait().unwrap_or(DEFAULT_POLL_WAIT);
    if next.is_some() {
        // The SPL's YMODEM polls follow at once; they are the verdict.
        opts.verdict_window = Duration::ZERO;
    }
    ctx.progress.say(format!(
        "{}: {what}; waiting up to {}s for the ROM's XMODEM poll on {} (set the boot switches to UART and power-cycle the board)",
        bin.display(),
        opts.poll_timeout.as_secs_f64(),
        info.path
    ));
    let report = boot_uart(&mut *link, &image, &opts, &mut *ctx.progress).map_err(classify)?;
    let s = &report.stats;

    let mut o = Outcome::default();
    o.fact("port", info.path.clone());
    o.fact("image", format!("{} bytes ({what})", image.len()));
    o.fact(
        "xmodem",
        format!(
            "{} blocks of {} bytes, {} frames sent, {} NAKs ({} stale), {} timeouts, EOT {}",
            s.blocks,
            opts.xmodem.block.bytes(),
            s.frames_sent,
            s.naks,
            s.stale_naks,
            s.timeouts,
            if s.eot_acked { "acknowledged" } else { "not acknowledged (tolerated)" }
        ),
    );
    o.fact(
        "throughput",
        format!(
            "{:.0} B/s, {:.1}% of the {:.0} B/s line rate of 115200 8N1{}",
            s.throughput(),
            100.0 * s.throughput() / LINE_RATE,
            LINE_RATE,
            if ctx.simulate { " (a pseudo-terminal has no line rate)" } else { "" }
        ),
    );
    if let Some((name, data)) = next {
        let (ys, text) = send_next_stage(
            &mut *link,
            &report,
            &name,
            &data,
            ctx.stage_timeout(),
            &opts,
            &mut *ctx.progress,
        )
        .map_err(classify)?;
        if !text.is_empty() {
            o.fact("SPL said", text);
        }
        o.fact(
            "ymodem",
            format!("{name}: {} bytes in {} blocks, {:.0} B/s", ys.data_bytes, ys.blocks, ys.throughput()),
        );
    } else {
        o.fact(
            "ROM",
            if report.console.is_empty() {
                format!("no CRC error; the payload runs at 0x{:x}", board.load_address)
            } else {
                format!("no CRC error; the console then printed: {}", report.console)
            },
        );
    }
    Ok(o)
}

/// A virtual JH7110 on a pty, published as an FTDI adapter.
struct Sim {
    rom: Option<StarfiveRom>,
    spl: bool,
}

impl SimSession for Sim {
    fn verdict(&mut self) -> Result<String, String> {
        let rom = self.rom.take().ok_or("the verdict was already taken")?;
        rom.stop().verdict(self.spl)
    }
}

fn parse_fault(name: Option<&String>) -> Result<Fault> {
    match name {
        Some(n) => Fault::parse(n).map_err(bad_input),
        None => Ok(Fault::None),
    }
}

fn virtual_adapter(path: &str, port_path: Option<String>) -> SerialInfo {
    SerialInfo {
        path: path.to_string(),
        vid: Some(0x0403),
        pid: Some(0x6001),
        serial: None,
        manufacturer: Some("FTDI".into()),
        product: Some("FT232R USB UART (virtual JH7110 UART0)".into()),
        port_path,
        speed: None,
    }
}

pub fn attach_sim(sim: &SimCtx) -> Result<Box<dyn SimSession>> {
    let fault = parse_fault(sim.fault.as_ref())?;
    let spl = sim.args.then_ymodem.is_some();
    let (rom, path) = StarfiveRom::spawn_pty(RomConfig { fault, spl, ..Default::default() })?;
    sim.serial.publish(virtual_adapter(&path, Some(sim.port_path.clone())));
    Ok(Box::new(Sim { rom: Some(rom), spl }))
}

pub fn image(board: &Board, args: &ImageArgs, payload: &Payload) -> Result<Vec<u8>> {
    if Header::parse(&payload.bytes).is_some() {
        return Err(bad_input(format!(
            "{}: already a headed JH7110 image (see `racklet-flash info`); a second header would not boot",
            payload.path.display()
        )));
    }
    check_load_address(board, payload)?;
    let at = payload.load_address.unwrap_or(board.load_address);
    check_fit(&payload.path, at, payload.mem_size, &board.window())?;
    let opts = HeaderOptions::from_user(args.version, args.backup_offset).map_err(classify)?;
    for note in header::size_notes(payload.bytes.len() as u64) {
        eprintln!("warning: {note}");
    }
    header::build_image(&payload.bytes, &opts).map_err(classify)
}

pub fn info(_path: &Path, bytes: &[u8]) -> Option<InfoReport> {
    let h = Header::parse(bytes)?;
    let mut r = InfoReport {
        kind: "JH7110 SPL image (spl_tool header)".into(),
        protocol: Some(Protocol::Starfive),
        socs: vec!["jh7110".into()],
        ..Default::default()
    };
    let version = match h.version {
        header::DEFAULT_VERSION => format!("0x{:08x} (spl_tool default)", h.version),
        header::VENDOR_VERSION => format!("0x{:08x} (StarFive recovery images)", h.version),
        v => format!("0x{v:08x}"),
    };
    r.fields.push(("version".into(), version));
    r.fields.push(("backup offset".into(), format!("0x{:x}", h.backup_offset)));
    r.fields.push(("payload length".into(), format!("{} bytes", h.payload_len)));
    r.fields.push(("header size".into(), format!("0x{:x}", h.header_size)));
    r.fields.push(("CRC-32 in header".into(), format!("0x{:08x}", h.crc32)));
    if h.vendor_fields != (0, 0) {
        r.fields.push((
            "vendor fields 0x2d4/0x2d8".into(),
            format!("0x{:x} / 0x{:x}", h.vendor_fields.0, h.vendor_fields.1),
        ));
    }
    r.fields.push(("load address".into(), "0x08000000 (the ROM strips the header)".into()));
    let have = bytes.len() - header::HEADER_LEN;
    r.checks.push(("payload length".into(), have >= h.payload_len as usize));
    match h.actual_crc(bytes) {
        Some(c) => {
            if c != h.crc32 {
                r.fields.push(("CRC-32 of the payload".into(), format!("0x{c:08x}")));
            }
            r.checks.push(("payload CRC-32".into(), c == h.crc32));
        }
        None => r.checks.push(("payload CRC-32".into(), false)),
    }
    if have > h.payload_len as usize {
        r.fields.push(("trailing bytes".into(), format!("{} (not sent)", have - h.payload_len as usize)));
    }
    r.payload = Some((0x0800_0000, h.payload_len as u64));
    Some(r)
}

fn describe(n: usize, s: &racklet_sim::starfive::Session) -> String {
    let v = match &s.verdict {
        Ok(v) => v.clone(),
        Err(e) => format!("answered CRC Error: {e}"),
    };
    format!(
        "session {n}: received {} bytes in {} 1K + {} 128-byte frames, {} NAKs sent, {} duplicates; {v}",
        s.received.len(),
        s.frames_1k,
        s.frames_128,
        s.naks_sent,
        s.duplicates
    )
}

pub fn serve(board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
    let fault = parse_fault(args.fault.as_ref())?;
    if args.tcp.is_some() {
        return Err(bad_input(
            "--tcp: the StarFive ROM is reached over a UART; its virtual ROM is served on a pseudo-terminal",
        ));
    }
    if let Some(d) = &args.save {
        std::fs::create_dir_all(d).map_err(|e| bad_input(format!("{}: cannot create: {e}", d.display())))?;
    }
    let (rom, path) = StarfiveRom::spawn_pty(RomConfig { fault, ..Default::default() })?;
    if out.mode == Mode::Json {
        out.json(json!({"event":"serving","board":board.name,"tty":path,"fault":args.fault}));
    } else {
        outln!("{path}");
        eprintln!(
            "virtual {} boot ROM ({}) on {path}: racklet-flash maskrom {} FILE --port {path}",
            board.soc, board.name, board.name
        );
    }
    let mut seen = 0;
    let mut last: Option<RomReport> = None;
    while !out.cancelled() {
        let rep = rom.wait_sessions(seen + 1, Duration::from_millis(200));
        while seen < rep.sessions.len() {
            let s = &rep.sessions[seen];
            seen += 1;
            let line = describe(seen, s);
            if out.mode == Mode::Json {
                out.json(json!({"event":"session","n":seen,"bytes":s.received.len(),"ok":s.verdict.is_ok(),"text":line}));
            } else {
                eprintln!("{line}");
            }
            if let Some(d) = &args.save {
                let f = d.join(format!("starfive-session-{seen}.img"));
                racklet_image::output::write_file(&f, &s.received, false)?;
            }
        }
        if seen > 0 && !args.keep {
            last = Some(rep);
            break;
        }
    }
    if last.is_some() {
        // The client still reads the last ACK and watches the console for a
        // second: closing the pty now would cut it off.
        std::thread::sleep(SERVE_LINGER);
    }
    drop(rom.stop());
    match last.as_ref().map(|r| r.verdict(false)) {
        Some(Err(e)) => Err(fail(FailureClass::Rejected, format!("the virtual ROM refused the image: {e}"))),
        _ => Ok(()),
    }
}
