//! Rockchip maskrom flow (issue #3): DRAM-init (0x471) and usbplug (0x472)
//! download from an RKBOOT loader, raw blobs or an rkbin checkout, then
//! rockusb confirmation of the usbplug.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use racklet_link::{FailureClass, UsbInfo, UsbLink};
use racklet_rockchip::chips::{self, Chip};
use racklet_rockchip::frame::FrameOptions;
use racklet_rockchip::loader::{EntryKind, Loader, is_rkboot, looks_like_rkboot};
use racklet_rockchip::maskrom::{INDEX_471, INDEX_472, Timeouts, download_loader, download_stage};
use racklet_rockchip::{RockchipError, Rockusb, looks_like_loader, rockusb};
use racklet_sim::rockchip::{RockchipFault, RockchipRom, chip_model};

use super::{Ctx, InfoReport, Outcome, SimCtx, SimSession};
use crate::boards::{Board, Protocol};
use crate::cli::{ImageArgs, OnOff, SimArgs};
use crate::error::{bad_input, classify, fail};
use crate::output::Output;

/// A blob to send, with where it came from.
struct Blob {
    from: String,
    bytes: Vec<u8>,
}

/// What will be sent, decided before any device is touched.
enum Plan {
    /// An RKBOOT loader: entries sent as stored.
    Loader { from: String, file: Vec<u8>, loader: Loader },
    /// Raw blobs, RC4 per the chip table or --rc4.
    Raw { ddr: Blob, usbplug: Option<Blob>, rc4: bool },
}

impl Plan {
    fn has_usbplug(&self) -> bool {
        match self {
            Plan::Loader { loader, .. } => loader.of(EntryKind::Code472).next().is_some(),
            Plan::Raw { usbplug, .. } => usbplug.is_some(),
        }
    }
}

fn chip_of(board: &Board) -> Result<&'static Chip> {
    chips::by_soc(&board.soc).ok_or_else(|| {
        bad_input(format!("{}: SoC '{}' is not in the Rockchip chip table", board.name, board.soc))
    })
}

/// The version in an rkbin file name `<prefix>v<major>.<minor>.bin`.
fn rkbin_version(name: &str, prefix: &str) -> Option<(u32, u32)> {
    let v = name.strip_prefix(prefix)?.strip_prefix('v')?.strip_suffix(".bin")?;
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if depth > 0 {
                walk(&p, depth - 1, out);
            }
        } else {
            out.push(p);
        }
    }
}

/// Finds the newest version of rkbin file `wanted` (e.g.
/// `rk3568_ddr_1560MHz_v1.23.bin`) anywhere under `dir` (rkbin keeps them in
/// `bin/<family>/`).
pub fn find_rkbin(dir: &Path, wanted: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(bad_input(format!("--rkbin {}: not a directory", dir.display())));
    }
    let mut files = Vec::new();
    walk(dir, 4, &mut files);
    let name_of = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let best = match wanted.rfind("_v") {
        Some(i) => {
            let prefix = &wanted[..=i];
            files
                .iter()
                .filter_map(|p| rkbin_version(&name_of(p), prefix).map(|v| (v, p)))
                .max_by_key(|(v, _)| *v)
                .map(|(_, p)| p.clone())
        }
        None => files.iter().find(|p| name_of(p) == wanted).cloned(),
    };
    best.ok_or_else(|| {
        let pattern = match wanted.rfind("_v") {
            Some(i) => format!("{}v*.bin", &wanted[..=i]),
            None => wanted.to_string(),
        };
        bad_input(format!(
            "--rkbin {}: no {pattern} in it (rkbin keeps blobs under bin/<family>/)",
            dir.display()
        ))
    })
}

fn read_blob(path: &Path, board: &Board) -> Result<Blob> {
    let p = super::load_dram_stage(board, path)?;
    Ok(Blob { from: path.display().to_string(), bytes: p.bytes })
}

/// Checks every input and decides what to send; touches no device.
fn plan(ctx: &mut Ctx, chip: &Chip) -> Result<Plan> {
    let a = ctx.args;
    let board = ctx.board;
    let bin = match &a.bin {
        Some(p) => Some((p.clone(), super::read_stage(board, p)?)),
        None => None,
    };
    if let Some((path, bytes)) = &bin
        && (is_rkboot(bytes) || looks_like_rkboot(bytes))
    {
        let loader = Loader::parse(bytes).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        if a.dram.is_some() || a.rkbin.is_some() {
            return Err(bad_input(format!(
                "{}: an RKBOOT loader already holds the DRAM-init and usbplug stages; drop --dram/--rkbin",
                path.display()
            )));
        }
        if a.rc4.is_some() {
            return Err(bad_input(
                "--rc4 applies to raw blobs; a loader's entries are sent exactly as stored (already in wire form)",
            ));
        }
        let for_chip = loader.chip_code.as_deref().and_then(chips::by_code);
        match (for_chip, &loader.chip_code) {
            (Some(c), _) if c == chip => {}
            (_, code) if !a.connect.force => {
                return Err(bad_input(format!(
                    "{}: the loader is for chip '{}', but {} has {} (add --force to send it anyway)",
                    path.display(),
                    code.clone().unwrap_or_else(|| format!("0x{:08x}", loader.chip_raw)),
                    board.name,
                    board.soc
                )));
            }
            _ => {}
        }
        if loader.of(EntryKind::Code471).next().is_none() {
            return Err(bad_input(format!("{}: the loader has no 0x471 (DRAM init) entry", path.display())));
        }
        loader.check_stages(board.sram_size).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        if a.zero_crc && !(loader.crc_disabled || chip.zero_crc_allowed()) {
            return Err(zero_crc_refused(board));
        }
        return Ok(Plan::Loader { from: path.display().to_string(), file: bytes.clone(), loader });
    }
    if a.zero_crc && !chip.zero_crc_allowed() {
        return Err(zero_crc_refused(board));
    }
    let mut ddr = match &a.dram {
        Some(p) => Some(read_blob(p, board)?),
        None => None,
    };
    let mut usbplug = match &bin {
        Some((p, bytes)) => Some(Blob {
            from: p.display().to_string(),
            bytes: racklet_image::load_bytes(p, bytes.clone(), board.arch(), &super::dram_window(board))?
                .bytes,
        }),
        None => None,
    };
    if let Some(dir) = &a.rkbin {
        if ddr.is_none() {
            let p = find_rkbin(dir, chip.ddr_blob(&board.soc))?;
            ddr = Some(read_blob(&p, board)?);
        }
        if usbplug.is_none() {
            let p = find_rkbin(dir, chip.usbplug_blob(&board.soc))?;
            usbplug = Some(read_blob(&p, board)?);
        }
    }
    let Some(ddr) = ddr else {
        return Err(bad_input(match usbplug {
            Some(u) => format!(
                "{}: not an RKBOOT loader, so it is sent as the 0x472 stage, which needs DRAM: add --dram DDR.bin or --rkbin DIR",
                u.from
            ),
            None => format!(
                "nothing to send to {}: give an RKBOOT loader, --dram DDR.bin [USBPLUG.bin], or --rkbin DIR",
                board.name
            ),
        }));
    };
    if ddr.bytes.len() as u64 > board.sram_size {
        return Err(bad_input(format!(
            "{}: {} bytes do not fit {}'s SRAM for the DRAM-init stage (at most {} bytes)",
            ddr.from,
            ddr.bytes.len(),
            board.name,
            board.sram_size
        )));
    }
    let rc4 = match a.rc4 {
        Some(OnOff::On) => true,
        Some(OnOff::Off) => false,
        None => chip.rc4,
    };
    Ok(Plan::Raw { ddr, usbplug, rc4 })
}

fn zero_crc_refused(board: &Board) -> anyhow::Error {
    bad_input(format!(
        "--zero-crc: {} ({}) is not known to accept a zero CRC (only RK3576 is confirmed; RK3506, RK3528 and RV1106 are reported; RK3308 refuses it), and the loader does not set its CRC-off flag",
        board.name, board.soc
    ))
}

/// Sends the planned stages on an open maskrom link.
fn send(
    link: &mut dyn UsbLink,
    plan: &Plan,
    zero_crc: bool,
    t: &Timeouts,
    ctx: &mut Ctx,
) -> Result<Vec<racklet_rockchip::StageReport>, RockchipError> {
    match plan {
        Plan::Loader { file, loader, .. } => download_loader(link, loader, file, zero_crc, t, ctx.progress),
        Plan::Raw { ddr, usbplug, rc4 } => {
            let opts = FrameOptions { rc4: *rc4, zero_crc };
            let mut r = vec![download_stage(link, INDEX_471, "ddr", &ddr.bytes, opts, t, ctx.progress)?];
            if let Some(u) = usbplug {
                // xrock's `maskrom` pauses 10 ms after the DRAM-init stage;
                // the first 0x472 transfer also has the long timeout.
                std::thread::sleep(Duration::from_millis(10));
                r.push(download_stage(link, INDEX_472, "usbplug", &u.bytes, opts, t, ctx.progress)?);
            }
            Ok(r)
        }
    }
}

/// A short rockusb probe: does a loader answer TEST UNIT READY?
fn rockusb_answers(link: &mut dyn UsbLink) -> bool {
    match Rockusb::new(link) {
        Ok(mut r) => {
            r.timeout = Duration::from_millis(500);
            r.test_unit_ready().is_ok()
        }
        Err(_) => false,
    }
}

fn not_maskrom(info: &UsbInfo) -> anyhow::Error {
    fail(
        FailureClass::Rejected,
        format!(
            "the board at USB port {} is not in maskrom: a rockusb loader (usbplug or U-Boot) answers there, bcdUSB 0x{:04x} notwithstanding (Rockchip's usbplug reports 0x0200 like a maskrom). Power-cycle it into maskrom, or add --force to try anyway",
            info.port_path, info.bcd_usb
        ),
    )
}

pub fn maskrom(ctx: &mut Ctx) -> Result<Outcome> {
    let board = ctx.board;
    let chip = chip_of(board)?;
    let plan = plan(ctx, chip)?;
    let zero_crc = ctx.args.zero_crc;
    let ids: Vec<(u16, u16)> = board.usb.iter().map(|s| (s.vid, s.pid)).collect();
    let info = ctx.find_usb(&ids, "Rockchip maskrom device")?;
    let soc = board.soc.to_uppercase();
    ctx.progress.say(format!(
        "{soc} maskrom device {} at USB port {} (address {}, bcdUSB 0x{:04x})",
        info.id(),
        info.port_path,
        info.address,
        info.bcd_usb
    ));
    let mut link = ctx.open_usb(&info)?;
    if looks_like_loader(&info) && !ctx.args.connect.force && rockusb_answers(&mut *link) {
        return Err(not_maskrom(&info));
    }
    let mut out = Outcome::default();
    out.fact("chip", format!("{soc} (USB {}, RC4 {})", info.id(), if chip.rc4 { "on" } else { "off" }));
    match &plan {
        Plan::Loader { from, loader, .. } => {
            out.fact(
                "loader",
                format!(
                    "{from} ({} {}, entries sent as stored)",
                    loader.tag_str().trim(),
                    loader.chip_code.clone().unwrap_or_default()
                ),
            );
        }
        Plan::Raw { ddr, usbplug, rc4 } => {
            ctx.progress.say(format!("DRAM init (0x471): {}", ddr.from));
            out.fact("ddr", ddr.from.clone());
            if let Some(u) = usbplug {
                ctx.progress.say(format!("usbplug (0x472): {}", u.from));
                out.fact("usbplug", u.from.clone());
            }
            out.fact("rc4", if *rc4 { "on" } else { "off" });
        }
    }
    let t = Timeouts::default();
    let started = Instant::now();
    let reports = match send(&mut *link, &plan, zero_crc, &t, ctx) {
        Ok(r) => r,
        Err(RockchipError::Rejected { transfer: 1, index: INDEX_471, .. })
            if !ctx.args.connect.force && rockusb_answers(&mut *link) =>
        {
            return Err(not_maskrom(&info));
        }
        Err(e) => return Err(classify(e)),
    };
    let bytes: usize = reports.iter().map(|r| r.payload).sum();
    out.fact(
        "sent",
        reports
            .iter()
            .map(|r| {
                format!(
                    "{} (0x{:x}, {} B, {} transfers, crc {:04x})",
                    r.name, r.index, r.payload, r.transfers, r.crc
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    );
    out.fact("throughput", format!("{bytes} B in {:.2}s", started.elapsed().as_secs_f64()));
    drop(link);
    if !plan.has_usbplug() {
        out.fact("result", "DRAM initialised; no usbplug stage was sent");
        return Ok(out);
    }
    // The usbplug starts: the board drops off the bus and comes back at the
    // same port path with a new address (and the same ids).
    let plug = ctx.follow_usb(&info.port_path, &ids, Some(info.address), "the usbplug")?;
    let mut link = ctx.open_usb(&plug)?;
    let mut r = Rockusb::new(&mut *link).map_err(classify)?;
    // The usbplug may need a moment after enumeration before it answers.
    let deadline = Instant::now() + ctx.stage_timeout();
    loop {
        match r.test_unit_ready() {
            Ok(()) => break,
            Err(e)
                if Instant::now() < deadline
                    && e.class() == FailureClass::Timeout
                    && !ctx.progress.cancelled() =>
            {
                continue;
            }
            Err(e) => {
                return Err(classify(e)).context(format!(
                    "the usbplug came back at USB port {} but does not answer TEST UNIT READY",
                    plug.port_path
                ));
            }
        }
    }
    let ci = r.read_chip_info().map_err(classify)?;
    let code = rockusb::chip_code(&ci).unwrap_or_else(|| format!("{:02x?}", &ci[..ci.len().min(4)]));
    let flash_id = r.read_flash_id().map_err(classify)?;
    let flash = match r.read_flash_info() {
        Ok(f) => format!(
            "{} sectors ({:.1} GiB), block {} sectors",
            f.sectors,
            f.bytes() as f64 / (1u64 << 30) as f64,
            f.block_sectors
        ),
        Err(e) => format!("n/a ({e})"),
    };
    out.fact(
        "usbplug",
        format!(
            "answers rockusb at USB port {} (address {}, bcdUSB 0x{:04x})",
            plug.port_path, plug.address, plug.bcd_usb
        ),
    );
    let mut chip_info = code.clone();
    if chips::by_code(&code).is_some_and(|c| c != chip) {
        chip_info.push_str(&format!(" (warning: not the {} of {})", board.soc, board.name));
    }
    out.fact("chip info", chip_info);
    out.fact("flash id", flash_id);
    out.fact("flash", flash);
    Ok(out)
}

use racklet_link::Classify;

/// The virtual ROM's session: what it received.
struct Session {
    rom: Arc<Mutex<RockchipRom>>,
}

impl SimSession for Session {
    fn verdict(&mut self) -> Result<String, String> {
        self.rom.lock().unwrap_or_else(|e| e.into_inner()).verdict()
    }
}

fn sim_rom(board: &Board, port_path: &str, fault: Option<&str>) -> Result<RockchipRom> {
    let model = chip_model(&board.soc)
        .ok_or_else(|| bad_input(format!("{}: no virtual ROM for SoC '{}'", board.name, board.soc)))?;
    let fault = match fault {
        Some(f) => RockchipFault::parse(f).map_err(bad_input)?,
        None => RockchipFault::None,
    };
    Ok(RockchipRom::new(model, port_path, fault))
}

pub fn attach_sim(sim: &SimCtx) -> Result<Box<dyn SimSession>> {
    let rom = sim_rom(sim.board, &sim.port_path, sim.fault.as_deref())?;
    let rom = sim.usb.attach(rom);
    Ok(Box::new(Session { rom }))
}

pub fn image(board: &Board, _args: &ImageArgs, _payload: &racklet_image::Payload) -> Result<Vec<u8>> {
    Err(fail(
        FailureClass::Other,
        format!(
            "storage boot images (idbloader) for {} are not built by racklet-flash yet; use U-Boot's `mkimage -T rksd`",
            board.name
        ),
    ))
}

fn version_str(v: u32) -> String {
    if v <= 0xffff { format!("{}.{} (0x{v:x})", v >> 8, v & 0xff) } else { format!("0x{v:08x}") }
}

pub fn info(_path: &Path, bytes: &[u8]) -> Option<InfoReport> {
    if !is_rkboot(bytes) && !looks_like_rkboot(bytes) {
        return None;
    }
    let mut r = InfoReport { protocol: Some(Protocol::Rockchip), ..Default::default() };
    let l = match Loader::parse_lenient(bytes) {
        Ok(l) => l,
        Err(e) => {
            r.kind = "RKBOOT loader (damaged)".into();
            r.checks.push((format!("structure: {e}"), false));
            return Some(r);
        }
    };
    r.kind = format!("RKBOOT loader (\"{}\")", l.tag_str());
    let f = &mut r.fields;
    f.push((
        "tag".into(),
        format!("\"{}\"{}", l.tag_str(), if &l.tag == b"LDR " { " (new IDB)" } else { " (legacy)" }),
    ));
    f.push(("header size".into(), format!("0x{:x}", l.header_size)));
    f.push(("version".into(), version_str(l.version)));
    f.push(("merger version".into(), format!("0x{:08x}", l.merger_version)));
    let t = l.release;
    f.push((
        "release time".into(),
        format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second),
    ));
    let chip = l.chip_code.as_deref().and_then(chips::by_code);
    f.push((
        "chip".into(),
        match (&l.chip_code, chip) {
            (Some(c), Some(ch)) => format!("{c} ({}, USB pid 0x{:04x})", ch.socs.join("/"), ch.pid),
            (Some(c), None) => format!("{c} (not in the chip table)"),
            (None, _) => format!("0x{:08x} (old enum value)", l.chip_raw),
        },
    ));
    f.push((
        "signed".into(),
        if l.sign_flag == b'S' { "yes ('S')".into() } else { format!("no (0x{:02x})", l.sign_flag) },
    ));
    f.push(("on-flash IDB RC4 off".into(), format!("{} (0x2C = {})", l.rc4_flag != 0, l.rc4_flag)));
    f.push(("471/472 stored without RC4".into(), format!("{} (0x2D)", l.stored_without_rc4)));
    f.push(("CRC disabled".into(), format!("{} (0x2E)", l.crc_disabled)));
    let mut n = [0usize; 3];
    for e in &l.entries {
        let k = e.kind as usize;
        f.push((
            format!("{} entry {}", e.kind.name(), n[k]),
            format!("{:<20} {:>7} B at 0x{:06x}, delay {} ms", e.name, e.size, e.offset, e.delay_ms),
        ));
        n[k] += 1;
    }
    r.checks.push((
        format!("file length ({} B of data + 4 B CRC32)", l.data_end),
        l.check_length(bytes.len()).is_ok(),
    ));
    r.checks.push((
        format!("crc32 (stored 0x{:08x}, computed 0x{:08x})", l.crc32_stored, l.crc32_computed),
        l.check_crc().is_ok(),
    ));
    if let Some(ch) = chip {
        r.socs = ch.socs.iter().map(|s| s.to_string()).collect();
    }
    Some(r)
}

/// `racklet-flash sim <rockchip board>`: the virtual ROM is a USB device,
/// so outside the process it is served over TCP as JSON Lines in the
/// transcript format: each request line is a transfer (`ctrl_out`,
/// `ctrl_in`, `bulk_out`, `bulk_in` with `len`, or `info`), each answer line
/// is `{"ok":true,...}` with `data` for IN transfers, or `{"ok":false,"err":...}`
/// (`stall`, `timeout`, `disconnected`).
pub fn serve(board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let addr = args.tcp.clone().unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = std::net::TcpListener::bind(&addr).map_err(|e| bad_input(format!("--tcp {addr}: {e}")))?;
    let local = listener.local_addr()?;
    if let Some(w) = racklet_sim::exposure_warning(&local) {
        eprintln!("{w}");
    }
    // Validate the board and the fault name before announcing the address.
    sim_rom(board, "1-1", args.fault.as_deref())?;
    outln!("tcp://{local}");
    out.line(&format!(
        "virtual {} maskrom ({}) serving JSON Lines USB transfers on {local}",
        board.soc.to_uppercase(),
        board.name
    ));
    // Stages are numbered across sessions, so --save never reuses a name.
    let saved = std::sync::atomic::AtomicUsize::new(0);
    // One session: its own virtual board, on its own thread with --keep, so
    // a client that idles does not hold up the next.
    let session = |stream: std::net::TcpStream, peer: std::net::SocketAddr| -> Result<()> {
        out.line(&format!("session from {peer}"));
        let mut rom = sim_rom(board, "1-1", args.fault.as_deref())?;
        let mut w = stream.try_clone()?;
        let mut seen = 0;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let reply = serve_one(&mut rom, &line);
            while seen < rom.received.len() {
                let r = &rom.received[seen];
                out.line(&format!(
                    "received 0x{:x} stage: {} B in {} transfers, crc {:04x}",
                    r.index,
                    r.body.len(),
                    r.transfers,
                    r.crc
                ));
                if let Some(dir) = &args.save {
                    let n = saved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let p = dir.join(format!("stage{n}-{:x}.bin", r.index));
                    racklet_image::output::write_file(&p, &r.body, false)?;
                }
                seen += 1;
            }
            if writeln!(w, "{reply}").is_err() {
                break;
            }
        }
        match rom.verdict() {
            Ok(v) => out.line(&format!("verdict: ok: {v}")),
            Err(v) => out.line(&format!("verdict: failed: {v}")),
        }
        Ok(())
    };
    if !args.keep {
        let (stream, peer) = listener.accept()?;
        return session(stream, peer);
    }
    std::thread::scope(|scope| {
        loop {
            let (stream, peer) = listener.accept()?;
            let session = &session;
            scope.spawn(move || {
                if let Err(e) = session(stream, peer) {
                    out.line(&format!("session from {peer}: {e:#}"));
                }
            });
        }
    })
}

fn serve_one(rom: &mut RockchipRom, line: &str) -> serde_json::Value {
    use racklet_link::ControlSetup;
    use racklet_sim::usb::{DeviceError, UsbDevice};
    use serde_json::{Value, json};
    let req: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"ok":false,"err":format!("bad request: {e}")}),
    };
    let num = |k: &str| req.get(k).and_then(Value::as_u64).unwrap_or(0);
    let data = req.get("data").and_then(Value::as_str).map(hex::decode).transpose();
    let Ok(data) = data else { return json!({"ok":false,"err":"bad request: data is not hex"}) };
    let data = data.unwrap_or_default();
    let setup = ControlSetup {
        request_type: num("rt") as u8,
        request: num("req") as u8,
        value: num("val") as u16,
        index: num("idx") as u16,
    };
    rom.tick();
    let r: Result<Option<Vec<u8>>, DeviceError> = match req.get("t").and_then(Value::as_str).unwrap_or("") {
        "info" => return json!({"ok":true,"info":rom.info()}),
        "ctrl_out" => rom.control_out(setup, &data).map(|_| None),
        "ctrl_in" => rom.control_in(setup, num("len") as u16).map(Some),
        "bulk_out" => rom.bulk_out(num("ep") as u8, &data).map(|_| None),
        "bulk_in" => rom.bulk_in(num("ep") as u8, num("len").max(1) as usize).map(Some),
        t => return json!({"ok":false,"err":format!("bad request: unknown transfer kind '{t}'")}),
    };
    match r {
        Ok(None) => json!({"ok":true}),
        Ok(Some(d)) => json!({"ok":true,"data":hex::encode(d)}),
        Err(DeviceError::Stall) => json!({"ok":false,"err":"stall"}),
        Err(DeviceError::NoAnswer) => json!({"ok":false,"err":"timeout"}),
        Err(DeviceError::Disconnected) => json!({"ok":false,"err":"disconnected"}),
    }
}
