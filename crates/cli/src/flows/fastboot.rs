//! fastboot boot ROM flows (issue #7): SpacemiT K1 and T-Head TH1520.
//!
//! K1: the ROM takes FSBL.bin (`download` + `continue`); the FSBL comes
//! back with the same VID:PID at the same USB port path and takes the next
//! image (`--then u-boot.itb`). TH1520: the ROM takes u-boot-with-spl.bin
//! (`download`, `flash:ram`, `reboot`); vendor U-Boot appears as 1234:8888.

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use racklet_fastboot::client::{Departure, Fastboot};
use racklet_fastboot::{UsbTransport, k1, th1520};
use racklet_link::FailureClass;
use racklet_sim::fastboot::{FastbootDevice, Fault, Soc};
use serde_json::json;

use super::{Ctx, InfoReport, Outcome, SimCtx, SimSession};
use crate::boards::{Board, Protocol};
use crate::cli::{ImageArgs, SimArgs};
use crate::error::{bad_input, classify, fail};
use crate::output::{Mode, Output};

/// The SoC of a fastboot board.
fn soc(board: &Board) -> Result<Soc> {
    match board.soc.as_str() {
        "k1" => Ok(Soc::K1),
        "th1520" => Ok(Soc::Th1520),
        other => Err(bad_input(format!(
            "board '{}': the fastboot protocol knows the SoCs k1 and th1520, not '{other}'",
            board.name
        ))),
    }
}

/// The USB ids of the board's stage `stage` in the board table, or
/// `fallback` when the table has none.
fn ids(board: &Board, stage: &str, fallback: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let v: Vec<(u16, u16)> = board.usb.iter().filter(|s| s.stage == stage).map(|s| (s.vid, s.pid)).collect();
    if v.is_empty() { fallback.to_vec() } else { v }
}

fn id_list(ids: &[(u16, u16)]) -> String {
    ids.iter().map(|(v, p)| format!("{v:04x}:{p:04x}")).collect::<Vec<_>>().join(", ")
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

/// FDT magic: u-boot.itb is a FIT, which the K1 SPL loads and checks.
const FIT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

fn departed(d: Departure) -> &'static str {
    match d {
        Departure::Acknowledged => "started",
        Departure::Vanished => "started (the device left before answering, as ROMs may)",
    }
}

/// Loads a board through its fastboot boot ROM.
pub fn maskrom(ctx: &mut Ctx) -> Result<Outcome> {
    let board = ctx.board;
    let a = ctx.args;
    let soc = soc(board)?;
    // Every input is checked before any device is touched.
    let bin = a.bin.as_ref().ok_or_else(|| {
        bad_input(match soc {
            Soc::K1 => format!("maskrom {}: give the FSBL.bin to load", board.name),
            Soc::Th1520 => format!("maskrom {}: give the u-boot-with-spl.bin to load", board.name),
        })
    })?;
    if a.rockchip.dram.is_some() {
        return Err(bad_input(
            "--dram is for Rockchip ROMs; fastboot ROMs take no DRAM blob (the FSBL/SPL trains DRAM)",
        ));
    }
    let follow = !ctx.stage_timeout().is_zero();
    match soc {
        Soc::K1 => {
            let fsbl = super::read_stage(board, bin)?;
            k1::check_fsbl(&fsbl).map_err(|r| bad_input(format!("{}: {r}", bin.display())))?;
            racklet_image::check_fit(bin, board.load_address, fsbl.len() as u64, &board.window())?;
            let then = match &a.then {
                Some(p) => {
                    let b = super::read_stage(board, p)?;
                    if b.len() < 4 || b[..4] != FIT_MAGIC {
                        return Err(bad_input(format!(
                            "{}: not a FIT image (no d00dfeed magic); the K1 FSBL loads u-boot.itb, a FIT with OpenSBI and U-Boot",
                            p.display()
                        )));
                    }
                    if u32::try_from(b.len()).is_err() {
                        return Err(bad_input(format!(
                            "{}: larger than a fastboot download (4 GiB)",
                            p.display()
                        )));
                    }
                    if !follow {
                        return Err(bad_input(
                            "--then needs the FSBL to come back, and --stage-timeout 0 skips waiting for it",
                        ));
                    }
                    Some((p.clone(), b))
                }
                None => None,
            };
            k1_flow(ctx, bin, &fsbl, then, follow)
        }
        Soc::Th1520 => {
            if a.then.is_some() {
                return Err(bad_input(
                    "--then is for K1 boards; on the TH1520 the ROM image (u-boot-with-spl.bin) holds SPL and U-Boot together",
                ));
            }
            let p = super::load_payload(board, bin)?;
            th1520_flow(ctx, bin, &p.bytes, follow)
        }
    }
}

fn open(
    ctx: &Ctx,
    info: &racklet_link::UsbInfo,
) -> Result<Fastboot<UsbTransport<Box<dyn racklet_link::UsbLink>>>> {
    let link = ctx.open_usb(info)?;
    Ok(Fastboot::new(UsbTransport::new(link).map_err(classify)?))
}

fn k1_flow(
    ctx: &mut Ctx,
    bin: &Path,
    fsbl: &[u8],
    then: Option<(std::path::PathBuf, Vec<u8>)>,
    follow: bool,
) -> Result<Outcome> {
    let board = ctx.board;
    let mut o = Outcome::default();
    let rom_ids = ids(board, "rom", &[(0x361c, 0x1001)]);
    let next_ids = ids(board, "fsbl", &rom_ids);
    let rom = ctx.find_usb(&rom_ids, &format!("K1 boot ROM ({})", id_list(&rom_ids)))?;
    let mut fb = open(ctx, &rom)?;
    let dep = if ctx.args.connect.force {
        k1::stage_and_continue(&mut fb, "fsbl", fsbl, ctx.progress).map_err(classify)?
    } else {
        let (id, dep) =
            k1::boot_fsbl(&mut fb, rom.serial.as_deref(), fsbl, ctx.progress).map_err(classify)?;
        o.fact(
            "boot ROM",
            format!(
                "K1 at USB {} ({}), version-brom {}",
                rom.port_path,
                rom.id(),
                id.version_brom.unwrap_or_default()
            ),
        );
        dep
    };
    drop(fb);
    o.fact(
        "fsbl",
        format!(
            "{} ({} bytes, sha256 {}) {}",
            file_name(bin),
            fsbl.len(),
            racklet_image::sha256_hex(fsbl),
            departed(dep)
        ),
    );
    if !follow {
        o.fact("next stage", "not awaited (--stage-timeout 0)");
        return Ok(o);
    }
    let spl = ctx
        .follow_usb(&rom.port_path, &next_ids, Some(rom.address), "the K1 FSBL (U-Boot SPL)")
        .context("the FSBL was started but did not come back on USB")?;
    o.fact("fsbl came back", format!("USB {} ({}), address {}", spl.port_path, spl.id(), spl.address));
    let Some((path, image)) = then else {
        return Ok(o);
    };
    let mut fb = open(ctx, &spl)?;
    let name = file_name(&path);
    let dep = k1::stage_and_continue(&mut fb, &name, &image, ctx.progress).map_err(classify)?;
    drop(fb);
    o.fact(
        "next image",
        format!(
            "{name} ({} bytes, sha256 {}) {}",
            image.len(),
            racklet_image::sha256_hex(&image),
            departed(dep)
        ),
    );
    let ub = ctx
        .follow_usb(&spl.port_path, &next_ids, Some(spl.address), "vendor U-Boot fastboot")
        .context("the image was started but U-Boot did not come back on USB")?;
    o.fact("u-boot", format!("fastboot at USB {} ({}), address {}", ub.port_path, ub.id(), ub.address));
    Ok(o)
}

fn th1520_flow(ctx: &mut Ctx, bin: &Path, image: &[u8], follow: bool) -> Result<Outcome> {
    let board = ctx.board;
    let mut o = Outcome::default();
    let rom_ids = ids(board, "rom", &[(0x2345, 0x7654)]);
    let uboot_ids = ids(board, "uboot", &[(0x1234, 0x8888)]);
    let rom = ctx.find_usb(&rom_ids, &format!("TH1520 boot ROM ({})", id_list(&rom_ids)))?;
    o.fact("boot ROM", format!("TH1520 at USB {} ({})", rom.port_path, rom.id()));
    ctx.progress.say(
        "note: vendor U-Boot started from USB resets its environment and rewrites the GPT to the vendor default layout",
    );
    let mut fb = open(ctx, &rom)?;
    let dep = th1520::boot_ram(&mut fb, image, ctx.progress).map_err(classify)?;
    drop(fb);
    o.fact(
        "ram image",
        format!(
            "{} ({} bytes, sha256 {}) written to ram and {}",
            file_name(bin),
            image.len(),
            racklet_image::sha256_hex(image),
            departed(dep)
        ),
    );
    if !follow {
        o.fact("next stage", "not awaited (--stage-timeout 0)");
        return Ok(o);
    }
    let ub = ctx
        .follow_usb(&rom.port_path, &uboot_ids, None, &format!("vendor U-Boot fastboot ({})", id_list(&uboot_ids)))
        .context(
            "the image was started, but vendor U-Boot did not appear (expected for payloads other than vendor U-Boot: pass --stage-timeout 0 to skip waiting)",
        )?;
    o.fact("u-boot", format!("fastboot at USB {} ({}), address {}", ub.port_path, ub.id(), ub.address));
    Ok(o)
}

fn parse_fault(name: Option<&str>) -> Result<Option<Fault>> {
    name.map(|n| {
        Fault::parse(n).ok_or_else(|| {
            bad_input(format!("unknown fault '{n}' for fastboot ROMs; known: {}", Fault::names()))
        })
    })
    .transpose()
}

/// The virtual board of a simulated run.
struct Session {
    dev: Arc<Mutex<FastbootDevice>>,
    /// K1 with --then: U-Boot must have been started too.
    want_next: bool,
}

impl SimSession for Session {
    fn verdict(&mut self) -> Result<String, String> {
        let d = self.dev.lock().unwrap_or_else(|e| e.into_inner());
        let has = |w: &str| d.started.iter().any(|s| s.what == w);
        let ok = match d.soc() {
            Soc::K1 => has("FSBL") && (!self.want_next || has("u-boot.itb")),
            Soc::Th1520 => has("ram image"),
        };
        if ok { Ok(d.summary()) } else { Err(d.summary()) }
    }
}

/// Puts the board's virtual fastboot ROM on the simulated USB bus.
pub fn attach_sim(sim: &SimCtx) -> Result<Box<dyn SimSession>> {
    let soc = soc(sim.board)?;
    let fault = parse_fault(sim.fault.as_deref())?;
    let dev = sim.usb.attach(FastbootDevice::new(soc, &sim.port_path).with_fault(fault));
    Ok(Box::new(Session { dev, want_next: soc == Soc::K1 && sim.args.then.is_some() }))
}

/// K1: wraps a raw SPL (linked at 0xC0801000) into FSBL.bin. TH1520: the
/// ROM takes u-boot-with-spl.bin as is; there is nothing to wrap.
pub fn image(board: &Board, args: &ImageArgs, payload: &racklet_image::Payload) -> Result<Vec<u8>> {
    match soc(board)? {
        Soc::K1 => {
            if k1::parse_fsbl(&payload.bytes).is_ok() {
                return Err(bad_input(format!("{}: is already a K1 FSBL.bin", args.input.display())));
            }
            let code_at = k1::LOAD_ADDRESS + k1::SPL_OFFSET as u64;
            if let Some(at) = payload.load_address
                && at != code_at
            {
                return Err(bad_input(format!(
                    "{}: linked at 0x{at:x}, but the K1 ROM runs the FSBL's code at 0x{code_at:x} (after the 4 KiB header at 0x{:x})",
                    args.input.display(),
                    k1::LOAD_ADDRESS
                )));
            }
            let out = k1::build_fsbl(&payload.bytes);
            racklet_image::check_fit(&args.input, board.load_address, out.len() as u64, &board.window())?;
            Ok(out)
        }
        Soc::Th1520 => Err(bad_input(format!(
            "{}: the TH1520 ROM loads u-boot-with-spl.bin as it is (`racklet-flash maskrom {} FILE`); there is no header to add",
            board.name, board.name
        ))),
    }
}

/// Decodes K1 FSBL.bin and bootinfo headers.
pub fn info(_path: &Path, bytes: &[u8]) -> Option<InfoReport> {
    let mut r =
        InfoReport { protocol: Some(Protocol::Fastboot), socs: vec!["k1".into()], ..Default::default() };
    if bytes.len() >= k1::SPL_OFFSET && &bytes[k1::HEADER0..k1::HEADER0 + 4] == k1::AIHD {
        match k1::parse_fsbl(bytes) {
            Ok(f) => {
                r.kind = "SpacemiT K1 FSBL.bin (AIHD headers + U-Boot SPL)".into();
                for (name, h) in [("header0", &f.header0), ("header1", &f.header1)] {
                    r.fields.push((
                        name.into(),
                        format!(
                            "AIHD version {}, secure {}, imgsize 0x{:x}, load_addr 0x{:x}",
                            h.version, h.secure, h.imgsize, h.load_addr
                        ),
                    ));
                }
                r.fields.push(("key default".into(), f.key_default.to_string()));
                r.fields.push((
                    "key table".into(),
                    f.keys.iter().map(|(n, i)| format!("{n}/{i}")).collect::<Vec<_>>().join(", "),
                ));
                r.fields.push(("SPL + signature".into(), format!("{} bytes at offset 0x1000", f.spl_len)));
                r.fields.push(("runs at".into(), format!("0x{:x} (code at +0x1000)", k1::LOAD_ADDRESS)));
                r.checks = f.checks();
            }
            Err(why) => {
                r.kind = "SpacemiT K1 FSBL.bin (damaged)".into();
                r.fields.push(("problem".into(), why));
                r.checks.push(("header1 AIHD magic".into(), false));
            }
        }
        r.payload = Some((k1::LOAD_ADDRESS, bytes.len() as u64));
        return Some(r);
    }
    let b = k1::parse_bootinfo(bytes)?;
    r.kind = "SpacemiT K1 bootinfo (storage boot header, not used for USB boot)".into();
    r.fields.push(("version".into(), format!("0x{:08x}", b.version)));
    r.fields.push(("flash type".into(), b.flash_type));
    r.fields.push(("spl0 offset".into(), format!("0x{:x}", b.spl0_offset)));
    r.fields.push(("spl1 offset".into(), format!("0x{:x}", b.spl1_offset)));
    r.fields.push(("spl size limit".into(), format!("0x{:x}", b.spl_size_limit)));
    r.checks.push(("CRC-32".into(), b.crc_ok));
    Some(r)
}

/// How long one TCP connection may stay idle before the server drops it.
const IDLE: Duration = Duration::from_secs(30);

/// `racklet-flash sim <board> --tcp ADDR`: the virtual ROM as a TCP
/// fastboot device (one connection is one session; several may be open).
pub fn serve(board: &Board, args: &SimArgs, out: &Arc<Output>) -> Result<()> {
    let soc = soc(board)?;
    let fault = parse_fault(args.fault.as_deref())?;
    let addr = args.tcp.as_deref().unwrap_or("127.0.0.1:5554");
    let l = TcpListener::bind(addr).map_err(|e| bad_input(format!("cannot listen on {addr}: {e}")))?;
    let local = l.local_addr()?;
    if let Some(w) = racklet_sim::exposure_warning(&local) {
        eprintln!("{w}");
    }
    if let Some(d) = &args.save {
        std::fs::create_dir_all(d).map_err(|e| bad_input(format!("{}: cannot create: {e}", d.display())))?;
    }
    let log = |text: String, ev: serde_json::Value| {
        if out.mode == Mode::Json {
            out.json(ev);
        } else {
            out.line(&text);
        }
    };
    if out.mode == Mode::Json {
        out.json(json!({"event":"listening","board":board.name,"address":format!("tcp:{local}")}));
    } else {
        outln!("tcp:{local}");
        out.line(&format!(
            "serving the virtual {} boot ROM of {} on tcp:{local}; try `fastboot -s tcp:{local} getvar version`",
            board.soc, board.name
        ));
    }
    let dev = Mutex::new(FastbootDevice::new(soc, "tcp").with_fault(fault));
    let report = |s: racklet_sim::fastboot::TcpSession| -> Result<(), String> {
        if let Some(e) = &s.error {
            log(
                format!("connection from {}: {e}", s.peer),
                json!({"event":"connection_error","peer":s.peer.to_string(),"message":e.to_string()}),
            );
        }
        for (stage, cmd) in &s.commands {
            log(
                format!("[{}] {cmd}", stage.name()),
                json!({"event":"command","stage":stage.name(),"command":cmd}),
            );
        }
        for (i, r) in &s.downloads {
            let sha = racklet_image::sha256_hex(&r.bytes);
            let mut saved = None;
            if let Some(dir) = &args.save {
                let p = dir.join(format!("{i:02}-{}.bin", r.stage.name()));
                // Never through a planted symlink, never over an existing file.
                racklet_image::output::write_file(&p, &r.bytes, false).map_err(|e| e.to_string())?;
                saved = Some(p.display().to_string());
            }
            log(
                format!(
                    "[{}] received {} bytes, sha256 {sha}{}",
                    r.stage.name(),
                    r.bytes.len(),
                    saved.as_ref().map(|p| format!(", saved to {p}")).unwrap_or_default()
                ),
                json!({"event":"received","stage":r.stage.name(),"bytes":r.bytes.len(),"sha256":sha,"saved":saved}),
            );
        }
        for st in &s.started {
            log(
                format!("[{}] started {} ({} bytes)", st.by.name(), st.what, st.len),
                json!({"event":"started","stage":st.by.name(),"what":st.what,"bytes":st.len}),
            );
        }
        if s.ended {
            log(format!("verdict: {}", s.summary), json!({"event":"verdict","summary":s.summary}));
        }
        Ok(())
    };
    racklet_sim::fastboot::serve_tcp(&l, &dev, IDLE, args.keep, &report)
        .map_err(|e| fail(FailureClass::Io, e))
}
