//! Sophgo CV1800B / SG2000 / SG2002: the ROM's USB (CDC-ACM) download (issue #5).
//!
//! The ROM is a USB serial port (3346:1000). Every `load_image` call of the
//! ROM (or of a running BL2) is one USB session: the port appears, the host
//! sends the magic, the ACK names the slice of fip.bin wanted, the host
//! sends it, FLAG and BREAK, and the port goes away. This flow finds the
//! port, serves each session with racklet-sophgo, and follows the board
//! by USB port path from one session to the next.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use racklet_link::select::canonical_tty;
use racklet_link::{FailureClass, LinkError, Selector, SerialInfo, SerialLink};
use racklet_sim::sophgo::{SophgoFault, SophgoRom, SophgoRomConfig};
use racklet_sophgo::{Chip, Core, Loader, Options, SessionOutcome, fip};

use super::{Ctx, InfoReport, Outcome, SimCtx, SimSession};
use crate::boards::{Board, Protocol};
use crate::cli::{self, ImageArgs, MaskromArgs, SimArgs};
use crate::error::{bad_input, classify, fail};
use crate::output::{Mode, Output};

/// After a session, how long the old port may linger before a port at the
/// same place is taken to be the next enumeration (the vendor tool waits
/// 0.1 s, sg_boot 0.5 s).
const GONE_GRACE: Duration = Duration::from_millis(1000);
/// After BL2 was sent, how long to watch for the ROM coming back asking for
/// it again (it does so when it refuses BL2).
const CONFIRM: Duration = Duration::from_millis(1500);
/// The same, against the virtual ROM (which re-enumerates in about 80 ms).
const SIM_CONFIRM: Duration = Duration::from_millis(400);
/// How long to keep retrying to open a port that just appeared (udev may
/// not have set its permissions yet; a stale node fails to open).
const OPEN_RETRY: Duration = Duration::from_millis(1000);

/// USB ids of common USB-UART bridges (FTDI, Silicon Labs CP210x, WCH CH34x, Prolific).
const UART_BRIDGE_VIDS: [u16; 4] = [0x0403, 0x10c4, 0x1a86, 0x067b];

fn chip(board: &Board) -> Result<Chip> {
    Chip::from_soc(&board.soc).ok_or_else(|| {
        bad_input(format!(
            "{}: SoC '{}' is not a Sophgo chip this tool knows (cv1800b, sg2000, sg2002)",
            board.name, board.soc
        ))
    })
}

fn core(board: &Board, chip: Chip, want: Option<cli::Core>) -> Result<Core> {
    let core = match want {
        None | Some(cli::Core::Riscv) => Core::Riscv,
        Some(cli::Core::Arm) => Core::Arm,
    };
    if !chip.has_core(core) {
        return Err(bad_input(format!(
            "--core arm: {} ({}) boots its RISC-V core only",
            board.name,
            chip.name()
        )));
    }
    Ok(core)
}

/// The ROM's USB ids: `--usb-id` (efuses may change the VID) or the board table's.
fn rom_ids(board: &Board, a: &MaskromArgs) -> Result<Vec<(u16, u16)>> {
    if let Some(s) = &a.usb_id {
        let parse = |x: &str| u16::from_str_radix(x.trim().trim_start_matches("0x"), 16).ok();
        return match s.split_once(':') {
            Some((v, p)) if parse(v).is_some() && parse(p).is_some() && v.len() <= 6 && p.len() <= 6 => {
                Ok(vec![(parse(v).unwrap_or_default(), parse(p).unwrap_or_default())])
            }
            _ => Err(bad_input(format!(
                "--usb-id '{s}': write the ROM's USB id as VID:PID in hex, e.g. 3346:1000"
            ))),
        };
    }
    let ids: Vec<(u16, u16)> =
        board.usb.iter().filter(|s| s.stage == "rom").map(|s| (s.vid, s.pid)).collect();
    Ok(if ids.is_empty() { vec![(racklet_sophgo::ROM_VID, racklet_sophgo::ROM_PID)] } else { ids })
}

/// The board as its boot core sees it: `--core arm` moves BL2 to the
/// A53's view of the SRAM and expects an AArch64 payload.
fn core_board(board: &Board, chip: Chip, core: Core) -> Board {
    let mut b = board.clone();
    let base = chip.bl2_base(core).unwrap_or(board.load_address);
    if core == Core::Arm {
        b.arch = "aarch64".into();
    }
    b.load_address = base;
    b.entry = chip.bl2_entry(core);
    b.sram_base = base;
    b.sram_size = chip.max_bl2();
    b
}

/// A fip.bin given as input: checked, used as it is.
fn checked_fip(path: &Path, bytes: &[u8], chip: Chip) -> Result<fip::FipInfo> {
    let info = fip::validate(bytes)
        .map_err(|e| bad_input(format!("{}: not a usable fip.bin: {e}", path.display())))?;
    if info.bl2_size as u64 > chip.max_bl2() {
        return Err(bad_input(format!(
            "{}: BL2 of {} bytes exceeds the {} bytes the {} ROM loads",
            path.display(),
            info.bl2_size,
            chip.max_bl2(),
            chip.name()
        )));
    }
    Ok(info)
}

/// Checks a BL2 payload against where the ROM puts and enters it, and
/// returns a warning for the user when its first word does not jump to +0x20.
fn check_bl2(board: &Board, chip: Chip, core: Core, p: &racklet_image::Payload) -> Result<Option<String>> {
    let base = chip.bl2_base(core).unwrap_or(board.load_address);
    let entry = base + racklet_sophgo::chip::BL2_ENTRY_OFFSET;
    if let Some(load) = p.load_address
        && load != base
    {
        return Err(bad_input(format!(
            "{}: the ELF loads at 0x{load:x}, but the {} ROM loads BL2 at 0x{base:x}{}; link it there",
            p.path.display(),
            chip.name(),
            if core == Core::Arm { " (Arm core)" } else { "" }
        )));
    }
    if let Some(e) = p.entry
        && e != base
        && e != entry
    {
        return Err(bad_input(format!(
            "{}: the ELF's entry point is 0x{e:x}, but the ROM enters BL2 at 0x{entry:x} (load address + 0x20)",
            p.path.display()
        )));
    }
    racklet_image::check_fit(&p.path, base, p.mem_size, &core_board(board, chip, core).window())?;
    Ok((!racklet_sophgo::chip::jumps_to_entry(&p.bytes)).then(|| {
        format!(
            "{}: the first word is not a jump to +0x20; the ROM enters BL2 at 0x{entry:x}, so the first 32 bytes must be the BL2 header",
            p.path.display()
        )
    }))
}

pub fn maskrom(ctx: &mut Ctx) -> Result<Outcome> {
    let board = ctx.board;
    let a = ctx.args;
    let chip = chip(board)?;
    let core = core(board, chip, a.core)?;
    let ids = rom_ids(board, a)?;
    if a.dram.is_some() {
        return Err(bad_input("--dram: the Sophgo ROM takes no DRAM blob; BL2 brings DRAM up itself"));
    }
    let Some(bin) = a.bin.as_ref() else {
        return Err(bad_input(format!(
            "give the payload: racklet-flash maskrom {} <bl2.bin|bl2.elf|fip.bin>",
            board.name
        )));
    };

    // Everything about the input is settled before a device is touched.
    let bytes = super::read_stage(board, bin)?;
    let base = chip.bl2_base(core).unwrap_or(board.load_address);
    let mut out = Outcome::default();
    out.fact("chip", format!("{} ({} core)", chip.name(), if core == Core::Arm { "Arm" } else { "RISC-V" }));
    let mut loader = if a.main_session {
        let p = racklet_image::load_bytes(
            bin,
            bytes,
            core_board(board, chip, core).arch(),
            &super::dram_window(board),
        )?;
        out.fact("mode", "one load_image session for a running BL2 (--main)");
        Loader::main(p.bytes, Options::default())
    } else if fip::is_fip(&bytes) {
        let info = checked_fip(bin, &bytes, chip)?;
        out.fact("image", format!("fip.bin as given ({} bytes, BL2 {} bytes)", bytes.len(), info.bl2_size));
        Loader::boot(bytes, Options::default()).map_err(classify)?
    } else {
        let cb = core_board(board, chip, core);
        let p = racklet_image::load_bytes(bin, bytes, cb.arch(), &cb.window())?;
        if let Some(w) = check_bl2(board, chip, core, &p)? {
            ctx.progress.say(w);
        }
        let f = fip::build(&p.bytes, chip.max_bl2() as usize)
            .map_err(|e| bad_input(format!("{}: {e}", bin.display())))?;
        out.fact("image", format!("fip.bin built from {} ({} bytes of BL2)", bin.display(), p.bytes.len()));
        Loader::boot(f, Options::default()).map_err(classify)?
    };

    // A tty that is a known USB-UART bridge is the board's console, not the ROM.
    if let Some(Selector::Tty(p)) = &ctx.selector
        && let Some(port) = ctx.serial.ports()?.into_iter().find(|x| canonical_tty(&x.path) == *p)
        && let (Some(v), Some(pi)) = (port.vid, port.pid)
        && !ids.contains(&(v, pi))
    {
        return Err(bad_input(format!(
            "--port {}: that is USB device {v:04x}:{pi:04x} ({}), not the Sophgo ROM ({}).{}",
            p.display(),
            port.product.unwrap_or_default(),
            id_list(&ids),
            if UART_BRIDGE_VIDS.contains(&v) { UART_HINT } else { "" }
        )));
    }

    let what = format!("Sophgo boot ROM (USB CDC-ACM {})", id_list(&ids));
    let mut info = ctx.find_serial(Some(&ids), &what).map_err(|e| not_found_hints(ctx, e))?;
    let follow_key = match (&info.port_path, &ctx.selector) {
        (Some(pp), _) => Follow::PortPath(pp.clone()),
        (None, Some(Selector::Tty(_))) => {
            // A tty with no USB facts (a pty, a symlink): follow the name the user gave.
            let orig = a
                .connect
                .port
                .iter()
                .find(|s| Selector::parse(s).ok() == ctx.selector)
                .cloned()
                .unwrap_or_else(|| info.path.clone());
            Follow::Tty(orig)
        }
        (None, _) => Follow::Tty(info.path.clone()),
    };
    out.fact("port", format!("{} ({})", info.path, follow_key.describe()));

    loop {
        let mut link = open_retry(ctx, &info)?;
        let r = loader.session(&mut *link, ctx.progress);
        drop(link);
        match r.map_err(classify)? {
            SessionOutcome::NextStage { offset, size } => {
                out.fact(
                    "next request",
                    format!("BL2 asks for fip.bin 0x{offset:x}+0x{size:x} (not in this image)"),
                );
                break;
            }
            SessionOutcome::Probe | SessionOutcome::Served { .. } => {}
        }
        if loader.finished() {
            if a.main_session {
                break;
            }
            // The ROM comes back for BL2 when it refused it; otherwise BL2 runs.
            // The virtual ROM re-enumerates within 0.1 s, so a simulated run
            // need not wait as long as real hardware might take.
            let confirm = if ctx.simulate { SIM_CONFIRM } else { CONFIRM };
            match follow(ctx, &follow_key, &info.path, &ids, confirm, false)? {
                Some(next) => {
                    info = next;
                    continue;
                }
                None => break,
            }
        }
        let t = ctx.stage_timeout();
        info = follow(ctx, &follow_key, &info.path, &ids, t, true)?
            .ok_or_else(|| fail(FailureClass::Timeout, "the board did not come back"))?;
    }

    out.fact("sessions", loader.sessions().to_string());
    out.fact("bytes sent", loader.bytes_sent().to_string());
    if !a.main_session {
        out.fact(
            "BL2",
            format!("loaded at 0x{base:x}, entered at 0x{:x}", base + racklet_sophgo::chip::BL2_ENTRY_OFFSET),
        );
    }
    Ok(out)
}

const UART_HINT: &str = " A USB-UART adapter on the board's serial pins reaches the ROM's console (and its UART download, a different protocol), not its USB download: connect the board's USB port to the host instead.";

fn id_list(ids: &[(u16, u16)]) -> String {
    ids.iter().map(|(v, p)| format!("{v:04x}:{p:04x}")).collect::<Vec<_>>().join(", ")
}

/// Adds what to check when the ROM's port never appeared.
fn not_found_hints(ctx: &Ctx, e: anyhow::Error) -> anyhow::Error {
    let class = crate::error::class_of(&e);
    if class != FailureClass::NotFound {
        return e;
    }
    let mut hints = String::from(
        "\nThe ROM offers USB for about 1 s after power-up: start racklet-flash with --wait 60s, then power the board on. If efuses changed the ROM's USB id, give it with --usb-id VID:PID. If ModemManager grabs the port, install `racklet-flash udev-rules`.",
    );
    if let Ok(ports) = ctx.serial.ports() {
        for p in ports.iter().filter(|p| p.vid.is_some_and(|v| UART_BRIDGE_VIDS.contains(&v))) {
            hints.push_str(&format!(
                "\n{} is a USB-UART adapter ({:04x}:{:04x}).{UART_HINT}",
                p.path,
                p.vid.unwrap_or_default(),
                p.pid.unwrap_or_default()
            ));
        }
    }
    fail(class, format!("{e:#}{hints}"))
}

/// How to find the board again after it re-enumerates.
enum Follow {
    /// By USB port path (the normal case).
    PortPath(String),
    /// By a tty name (a pty or symlink with no USB facts), resolved again each time.
    Tty(String),
}

impl Follow {
    fn describe(&self) -> String {
        match self {
            Follow::PortPath(p) => format!("USB port {p}"),
            Follow::Tty(t) => format!("tty {t}"),
        }
    }
}

/// Waits for the ROM's next enumeration: the old port goes away and a port
/// comes back at the same place. With `required`, a timeout is an error;
/// otherwise it returns `None` (the board did not come back).
fn follow(
    ctx: &mut Ctx,
    key: &Follow,
    old: &str,
    ids: &[(u16, u16)],
    timeout: Duration,
    required: bool,
) -> Result<Option<SerialInfo>> {
    let start = Instant::now();
    let mut gone = false;
    loop {
        if ctx.progress.cancelled() {
            return Err(LinkError::Interrupted.into());
        }
        let cur = match key {
            Follow::PortPath(pp) => ctx.serial.ports()?.into_iter().find(|p| {
                p.port_path.as_deref() == Some(pp.as_str())
                    && p.vid.zip(p.pid).is_some_and(|id| ids.contains(&id))
            }),
            Follow::Tty(t) => {
                let c = canonical_tty(t);
                c.exists().then(|| SerialInfo { path: c.display().to_string(), ..Default::default() })
            }
        };
        match cur {
            None => gone = true,
            // Same node, not seen gone: the old enumeration may linger. After
            // the grace time it is taken as the new one (unless only confirming).
            Some(p) if gone || p.path != old || (required && start.elapsed() >= GONE_GRACE) => {
                return Ok(Some(p));
            }
            Some(_) => {}
        }
        if start.elapsed() >= timeout {
            if !required {
                return Ok(None);
            }
            return Err(fail(
                FailureClass::Timeout,
                format!(
                    "the ROM did not come back at {} within {}s for its next session (raise --stage-timeout if the board needs longer)",
                    key.describe(),
                    timeout.as_secs_f64()
                ),
            ));
        }
        // Poll interval: as racklet-link's discovery.
        std::thread::sleep(racklet_link::discover::POLL_INTERVAL);
    }
}

/// Opens a port that has just appeared, retrying briefly.
fn open_retry(ctx: &Ctx, info: &SerialInfo) -> Result<Box<dyn SerialLink>> {
    let start = Instant::now();
    loop {
        match ctx.open_serial(info, racklet_sophgo::BAUD) {
            Ok(l) => return Ok(l),
            Err(e) if start.elapsed() < OPEN_RETRY && !ctx.progress.cancelled() => {
                let _ = e;
                // The node may be stale or not yet accessible: try again shortly.
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The virtual ROM of one simulated board.
struct SimRom(SophgoRom);

impl SimSession for SimRom {
    fn verdict(&mut self) -> Result<String, String> {
        self.0.verdict()
    }
}

fn fault(name: Option<&str>) -> Result<Option<SophgoFault>> {
    match name {
        None => Ok(None),
        Some(n) => SophgoFault::from_name(n).map(Some).ok_or_else(|| {
            bad_input(format!("--fault {n}: the Sophgo virtual ROM knows {}", SophgoFault::list()))
        }),
    }
}

pub fn attach_sim(sim: &SimCtx) -> Result<Box<dyn SimSession>> {
    let chip = chip(sim.board)?;
    let core = core(sim.board, chip, sim.args.core)?;
    let mut cfg = SophgoRomConfig::new(
        &sim.port_path,
        chip.bl2_base(core).unwrap_or(sim.board.load_address),
        chip.max_bl2() as u32,
    );
    cfg.fault = fault(sim.fault.as_deref())?;
    // The ROM's long window (USB_ID low: 10 s): the in-process client is
    // quick, but a loaded machine must not turn a slow start into a failure.
    cfg.window = Duration::from_secs(10);
    // A simulated board whose efuses changed the VID answers to --usb-id.
    if let Some((v, p)) = rom_ids(sim.board, sim.args)?.first() {
        cfg.vid = *v;
        cfg.pid = *p;
    }
    if sim.args.main_session {
        // --main: a BL2 is already running and loads as many bytes as the file has.
        let len = match &sim.args.bin {
            Some(p) => super::read_stage(sim.board, p)?.len() as u32,
            None => 0,
        };
        cfg.bl2_load = Some((0, len));
    }
    let rom = SophgoRom::spawn(sim.serial.clone(), cfg, None).map_err(classify)?;
    Ok(Box::new(SimRom(rom)))
}

pub fn image(board: &Board, _args: &ImageArgs, payload: &racklet_image::Payload) -> Result<Vec<u8>> {
    let chip = chip(board)?;
    if fip::is_fip(&payload.bytes) {
        // Already a fip.bin: checked, never wrapped again.
        checked_fip(&payload.path, &payload.bytes, chip)?;
        return Ok(payload.bytes.clone());
    }
    check_bl2(board, chip, Core::Riscv, payload)?;
    fip::build(&payload.bytes, chip.max_bl2() as usize)
        .map_err(|e| bad_input(format!("{}: {e}", payload.path.display())))
}

fn hex32(v: u32) -> String {
    format!("0x{v:08x}")
}

pub fn info(_path: &Path, bytes: &[u8]) -> Option<InfoReport> {
    if !fip::is_fip(bytes) {
        return None;
    }
    let mut r = InfoReport {
        kind: "Sophgo fip.bin (param1 \"CVBL01\" + BL2)".into(),
        protocol: Some(Protocol::Sophgo),
        socs: vec!["cv1800b".into(), "sg2000".into(), "sg2002".into()],
        ..Default::default()
    };
    let i = match fip::parse(bytes) {
        Ok(i) => i,
        Err(e) => {
            r.fields.push(("problem".into(), e.to_string()));
            r.checks.push(("param1 complete".into(), false));
            return Some(r);
        }
    };
    let f = &mut r.fields;
    f.push(("MAGIC2".into(), hex32(i.magic2)));
    f.push((
        "PARAM_CKSUM".into(),
        format!("{} (computed {})", hex32(i.param_cksum), hex32(i.param_cksum_computed)),
    ));
    let nand_used = i.nand_info.iter().rposition(|b| *b != 0).map(|p| p + 1).unwrap_or(0);
    f.push((
        "NAND_INFO".into(),
        if nand_used == 0 { "zeros".into() } else { format!("{nand_used} bytes set") },
    ));
    f.push((
        "NOR_INFO".into(),
        if i.nor_info.iter().all(|b| *b == 0xFF) {
            "36 x 0xff".into()
        } else {
            format!("{:02x?}", i.nor_info)
        },
    ));
    f.push((
        "FIP_FLAGS".into(),
        format!("0x{:x}{}", i.fip_flags, if i.secure() { " (signed/encrypted)" } else { "" }),
    ));
    f.push(("CHIP_CONF_SIZE".into(), i.chip_conf_size.to_string()));
    f.push((
        "CHIP_CONF".into(),
        i.chip_conf.iter().map(|(a, v)| format!("({a:#010x},{v:#010x})")).collect::<Vec<_>>().join(" "),
    ));
    f.push(("BLCP_IMG_CKSUM".into(), hex32(i.blcp_cksum)));
    f.push(("BLCP_IMG_SIZE".into(), i.blcp_size.to_string()));
    f.push(("BLCP_IMG_RUNADDR".into(), hex32(i.blcp_runaddr)));
    f.push(("BLCP_PARAM_LOADADDR".into(), hex32(i.blcp_param_loadaddr)));
    f.push(("BLCP_PARAM_SIZE".into(), i.blcp_param_size.to_string()));
    f.push((
        "BL2_IMG_CKSUM".into(),
        format!(
            "{} (computed {})",
            hex32(i.bl2_cksum),
            i.bl2_cksum_computed.map(hex32).unwrap_or_else(|| "-, BL2 missing".into())
        ),
    ));
    f.push(("BL2_IMG_SIZE".into(), i.bl2_size.to_string()));
    f.push(("BL2 offset".into(), format!("0x{:x}", i.bl2_offset())));
    f.push(("BLD_IMG_SIZE".into(), i.bld_size.to_string()));
    f.push(("PARAM2_LOADADDR".into(), hex32(i.param2_loadaddr)));
    if i.bl2_cksum_computed.is_some() {
        let bl2 = &bytes[i.bl2_offset()..i.bl2_offset() + i.bl2_size as usize];
        f.push((
            "BL2 word 0".into(),
            if racklet_sophgo::chip::jumps_to_entry(bl2) {
                "jumps to +0x20".into()
            } else {
                "no jump to +0x20".into()
            },
        ));
    }
    r.checks = i.checks();
    r.payload = Some((u64::MAX, i.bl2_size as u64));
    Some(r)
}

pub fn serve(board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
    let chip = chip(board)?;
    if args.tcp.is_some() {
        return Err(bad_input(
            "--tcp: the Sophgo ROM is a serial (CDC-ACM) device; it is served on a pseudo-terminal",
        ));
    }
    let base = chip.bl2_base(Core::Riscv).unwrap_or(board.load_address);
    let mut cfg = SophgoRomConfig::new("sim-1", base, chip.max_bl2() as u32);
    cfg.fault = fault(args.fault.as_deref())?;
    cfg.boots = if args.keep { u32::MAX } else { 1 };
    // A person starts the client by hand: give the first session a long window.
    cfg.window = Duration::from_secs(60);

    // The pty changes at every re-enumeration; a symlink follows it. Its
    // directory has a random name, is made only inside an existing $TMPDIR,
    // and goes when the server ends, by Ctrl-C or by SIGTERM.
    let tmp = std::env::temp_dir();
    let dir = tempfile::Builder::new().prefix("racklet-sim-sophgo-").tempdir_in(&tmp).map_err(|e| {
        fail(FailureClass::Io, format!("{}: cannot make the sim's directory there: {e}", tmp.display()))
    })?;
    let terminated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, terminated.clone())
        .map_err(|e| fail(FailureClass::Io, format!("cannot watch for SIGTERM: {e}")))?;
    let link = dir.path().join("ttyACM");
    let bus = racklet_sim::serial::SimSerialBus::new();
    let o = out.clone();
    let l2 = link.clone();
    let notify: racklet_sim::sophgo::Notify = Arc::new(move |line: &str| {
        if let Some(p) = line.strip_prefix("tty ") {
            let tmp = l2.with_extension("new");
            let _ = std::fs::remove_file(&tmp);
            if std::os::unix::fs::symlink(p, &tmp).is_ok() {
                let _ = std::fs::rename(&tmp, &l2);
            }
            if o.mode == Mode::Json {
                o.json(serde_json::json!({"event":"sim_port","tty":p}));
            } else {
                o.line(&format!("session port {p}"));
            }
        } else if let Some(p) = line.strip_prefix("gone ") {
            if std::fs::read_link(&l2).ok().is_some_and(|t| t == Path::new(p)) {
                let _ = std::fs::remove_file(&l2);
            }
        } else if o.mode == Mode::Json {
            o.json(serde_json::json!({"event":"sim_log","text":line}));
        } else {
            o.line(line);
        }
    });
    let mut rom = SophgoRom::spawn(bus, cfg, Some(notify)).map_err(classify)?;
    // Let the first port appear (and its symlink) before telling anyone.
    let t0 = Instant::now();
    while std::fs::symlink_metadata(&link).is_err() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    if out.mode == Mode::Json {
        out.json(serde_json::json!({"event":"sim","board":board.name,"tty":link.display().to_string()}));
    } else {
        outln!("{}", link.display());
        out.line(&format!(
            "virtual {} ROM of {} on {} (a symlink to each session's pty); try: racklet-flash maskrom {} --port {} bl2.bin",
            chip.name(),
            board.name,
            link.display(),
            board.name,
            link.display()
        ));
    }
    while !rom.state().finished && !out.cancelled() && !terminated.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let state = rom.state();
    let verdict = rom.verdict();
    let _ = std::fs::remove_file(&link);
    drop(dir);
    if terminated.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(fail(FailureClass::Interrupted, "terminated (SIGTERM)"));
    }
    if let Some(d) = &args.save {
        std::fs::create_dir_all(d).map_err(|e| bad_input(format!("{}: {e}", d.display())))?;
        for (name, data) in [("param1.bin", &state.param1), ("bl2.bin", &state.bl2)] {
            if let Some(b) = data {
                racklet_image::output::write_file(&d.join(name), b, false)?;
            }
        }
    }
    for s in &state.sessions {
        let line = format!(
            "session on {}: wanted 0x{:x}+0x{:x}, {} packets, {} data bytes, flag {}",
            s.tty,
            s.offset,
            s.size,
            s.packets,
            s.data_bytes,
            if s.flag_ok { "MGN1" } else { "not set" }
        );
        if out.mode == Mode::Json {
            out.json(serde_json::json!({"event":"sim_session","text":line}));
        } else {
            out.line(&line);
        }
    }
    if args.keep {
        let line = format!("{} boot(s) ended in a jump to BL2", state.boots_done);
        if out.mode == Mode::Json {
            out.json(serde_json::json!({"event":"sim_boots","count":state.boots_done}));
        } else {
            out.line(&line);
        }
    }
    match verdict {
        Ok(v) => {
            if out.mode == Mode::Json {
                out.json(serde_json::json!({"event":"sim_verdict","ok":true,"text":v}));
            } else {
                out.line(&format!("verdict: {v}"));
            }
            Ok(())
        }
        Err(v) => Err(fail(FailureClass::Rejected, format!("the virtual ROM did not boot: {v}"))),
    }
}
