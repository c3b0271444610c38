//! Canaan K230 / K230D: USB boot ROM download (issue #6).
//!
//! `maskrom`: find 29f1:0230, check that GET_CPU_INFO says "K230" (the
//! kburn loader says "Uboot Stage for K230" and gets no ROM commands),
//! load every stage and start it, following the board across
//! re-enumeration by its USB port path. A DRAM-init stage (`--load` into
//! SRAM followed by a `--load` into DRAM) must come back as the ROM.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use racklet_canaan::rom::{self, DeviceStage, RomOptions};
use racklet_canaan::{CanaanError, ImageHeader, Load, Stage, check_entries, header, in_sram, plan_stages};
use racklet_link::{Classify, FailureClass, UsbLink};
use racklet_sim::canaan::{Fault, K230Rom};

use super::{Ctx, InfoReport, Outcome, SimCtx, SimSession, load_payload};
use crate::boards::{Board, Protocol};
use crate::cli::{ImageArgs, MaskromArgs, SimArgs};
use crate::error::{bad_input, class_of, classify, fail};
use crate::output::Output;

/// Where the ROM copies a storage-boot payload (the SPL link address;
/// inferred, see the crate README).
const STORAGE_LOAD: u64 = 0x8030_0000;

/// The board's USB ids (ROM and loader share 29f1:0230).
fn ids(board: &Board) -> Vec<(u16, u16)> {
    let mut v: Vec<(u16, u16)> = board.usb.iter().map(|s| (s.vid, s.pid)).collect();
    v.dedup();
    if v.is_empty() {
        v.push((racklet_canaan::VID, racklet_canaan::PID));
    }
    v
}

fn addr32(what: &str, a: u64) -> Result<u32> {
    u32::try_from(a)
        .map_err(|_| bad_input(format!("{what}: 0x{a:x} does not fit the ROM's 32-bit addresses")))
}

fn name_of(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Every input file loaded and checked, cut into stages. Touches no device.
pub fn plan(board: &Board, args: &MaskromArgs) -> Result<Vec<Stage>> {
    if args.dram.is_some() {
        return Err(bad_input(
            "--dram is a Rockchip option; on the K230 load a DRAM-init stage with --load 0x80360000=bt0.bin",
        ));
    }
    let mut loads = Vec::new();
    if let Some(bin) = &args.bin {
        // The payload goes into SRAM: check the fit against the board's window.
        let p = load_payload(board, bin)?;
        let at = p.load_address.unwrap_or(board.load_address);
        let entry = match p.entry {
            Some(e) => Some(addr32(&name_of(bin), e)?),
            None if at == board.load_address => board.entry.map(|e| addr32("entry", e)).transpose()?,
            None => None,
        };
        loads.push(Load { name: name_of(bin), address: addr32(&name_of(bin), at)?, bytes: p.bytes, entry });
    }
    for (addr, file) in &args.loads {
        let p = super::load_dram_stage(board, file)?;
        if let Some(la) = p.load_address
            && la != *addr
        {
            return Err(bad_input(format!(
                "{}: the ELF loads at 0x{la:x}, but --load says 0x{addr:x}; give --load 0x{la:x}={}",
                file.display(),
                file.display()
            )));
        }
        let entry = p.entry.map(|e| addr32(&name_of(file), e)).transpose()?;
        loads.push(Load {
            name: name_of(file),
            address: addr32(&name_of(file), *addr)?,
            bytes: p.bytes,
            entry,
        });
    }
    if loads.is_empty() {
        return Err(bad_input(format!(
            "nothing to load: give a payload (`racklet-flash maskrom {} payload.bin`) or --load ADDR=FILE",
            board.name
        )));
    }
    let stages = plan_stages(loads, args.run).map_err(classify)?;
    if !args.connect.force {
        check_entries(&stages, args.run).map_err(classify)?;
    }
    Ok(stages)
}

pub fn maskrom(ctx: &mut Ctx) -> Result<Outcome> {
    let stages = plan(ctx.board, ctx.args)?;
    let ids = ids(ctx.board);
    let opts = RomOptions { accept_unknown_cpu: ctx.args.connect.force, ..RomOptions::default() };
    let info = ctx.find_usb(&ids, "K230 boot ROM")?;
    let port = info.port_path.clone();
    let mut address = info.address;
    let mut link: Box<dyn UsbLink> = ctx.open_usb(&info)?;
    let mut out = Outcome::default();
    out.fact("port", port.clone());
    match rom::identify(&mut *link, &opts).map_err(classify)? {
        DeviceStage::BootRom => out.fact("chip", "K230 boot ROM (GET_CPU_INFO \"K230\")"),
        DeviceStage::Loader(reply) => return Err(classify(CanaanError::LoaderStage { reply })),
        DeviceStage::Unknown(reply) if ctx.args.connect.force => {
            ctx.progress.say(format!("GET_CPU_INFO answered {reply:?}, not \"K230\"; going on (--force)"));
            out.fact("chip", format!("unknown (GET_CPU_INFO {reply:?}, forced)"));
        }
        DeviceStage::Unknown(reply) => {
            let e = CanaanError::UnknownDevice { reply };
            return Err(fail(e.class(), format!("{e}; add --force to send ROM commands anyway")));
        }
    }
    let n = stages.len();
    for (i, stage) in stages.iter().enumerate() {
        let status = rom::run_stage(&mut *link, stage, &opts, ctx.progress).map_err(classify)?;
        let what = if n > 1 { format!("stage {}", i + 1) } else { "payload".into() };
        out.fact(
            &what,
            format!(
                "{} bytes in {} file(s), started at 0x{:08x}, PROG_START {}",
                stage.bytes(),
                stage.loads.len(),
                stage.entry,
                status.describe()
            ),
        );
        // The old link stays open until the next stage is found: if nothing
        // new comes up, it tells whether the ROM is still sitting there.
        let no_jump = |link: &mut Box<dyn UsbLink>| {
            if rom::still_in_rom(&mut **link, &opts) {
                Some(classify(CanaanError::NoJump { entry: stage.entry }))
            } else {
                None
            }
        };
        if stage.returns_to_rom {
            let next = match ctx.follow_usb(
                &port,
                &ids,
                Some(address),
                "the K230 boot ROM back from the DRAM-init stage",
            ) {
                Ok(next) => next,
                Err(e) if class_of(&e) == FailureClass::Timeout => {
                    return Err(no_jump(&mut link).unwrap_or(e));
                }
                Err(e) => return Err(e),
            };
            address = next.address;
            link = ctx.open_usb(&next)?;
            match rom::identify(&mut *link, &opts).map_err(classify)? {
                DeviceStage::BootRom => ctx.progress.say("the boot ROM is back; DRAM is up"),
                other => {
                    return Err(classify(CanaanError::NotBackInRom {
                        stage: i + 1,
                        found: other.describe(),
                    }));
                }
            }
            continue;
        }
        // The last stage. The ROM took PROG_START: unless the user asked to
        // follow the board, that is the end of the run (no flow idles after
        // its last stage).
        if !ctx.args.connect.follow {
            return Ok(out);
        }
        let waited = ctx.stage_timeout();
        match ctx.follow_usb_within(&port, &ids, Some(address), "the next stage on USB", waited) {
            Ok(next) => {
                let found = ctx
                    .open_usb(&next)
                    .and_then(|mut l| rom::identify(&mut *l, &opts).map_err(classify))
                    .map(|s| s.describe())
                    .unwrap_or_else(|e| format!("a device that did not answer GET_CPU_INFO ({e:#})"));
                out.fact("next stage", format!("{found} at USB port {port}"));
            }
            Err(e) if class_of(&e) == FailureClass::Timeout => {
                return Err(no_jump(&mut link).unwrap_or(e));
            }
            Err(e) => return Err(e),
        }
        return Ok(out);
    }
    Err(fail(FailureClass::Other, "internal error: no stage ran"))
}

/// The virtual K230 of a simulated run.
struct Session {
    dev: Arc<Mutex<K230Rom>>,
}

impl SimSession for Session {
    fn verdict(&mut self) -> Result<String, String> {
        self.dev.lock().unwrap_or_else(|e| e.into_inner()).verdict()
    }
}

fn parse_fault(name: Option<&String>) -> Result<Option<Fault>> {
    match name {
        None => Ok(None),
        Some(n) => Fault::parse(n).map(Some).ok_or_else(|| {
            bad_input(format!("unknown fault '{n}' for the K230 virtual ROM; known: {}", Fault::names()))
        }),
    }
}

pub fn attach_sim(sim: &SimCtx) -> Result<Box<dyn SimSession>> {
    let fault = parse_fault(sim.fault.as_ref())?;
    // The virtual board's first stage behaves as a DRAM-init stage (returns
    // to the ROM) when the command line loads something outside SRAM.
    let dram_init = sim.args.loads.iter().any(|(a, _)| !in_sram(*a, 1));
    let rom = K230Rom::new(&sim.port_path).with_fault(fault).with_dram_init_stages(usize::from(dram_init));
    let dev = sim.usb.attach(rom);
    Ok(Box::new(Session { dev }))
}

pub fn image(board: &Board, _args: &ImageArgs, payload: &racklet_image::Payload) -> Result<Vec<u8>> {
    let len = payload.mem_size;
    if let Some(at) = payload.load_address
        && !in_sram(at, len)
    {
        return Err(bad_input(format!(
            "{}: loads at 0x{at:x}..0x{:x}, outside {}'s SRAM 0x{:x}..0x{:x}; the ROM boots the payload from SRAM (link it for 0x{STORAGE_LOAD:x})",
            payload.path.display(),
            at + len,
            board.name,
            board.sram_base,
            board.sram_base + board.sram_size
        )));
    }
    if len > board.sram_size {
        return Err(bad_input(format!(
            "{}: {len} bytes do not fit {}'s {} bytes of SRAM",
            payload.path.display(),
            board.name,
            board.sram_size
        )));
    }
    header::build_plain(&payload.bytes, 0).map_err(|e| classify(CanaanError::from(e)))
}

pub fn info(_path: &std::path::Path, bytes: &[u8]) -> Option<InfoReport> {
    if !bytes.starts_with(header::MAGIC) || bytes.len() < header::PAYLOAD_OFFSET {
        return None;
    }
    let h = ImageHeader::parse(bytes).ok()?;
    let mut r = InfoReport {
        kind: "K230 firmware image (storage boot header)".into(),
        protocol: Some(Protocol::Canaan),
        socs: vec!["k230".into(), "k230d".into()],
        ..Default::default()
    };
    r.fields.push(("length field".into(), format!("{} bytes (version + payload)", h.length)));
    r.fields.push(("crypto type".into(), h.crypto.name()));
    r.fields.extend(h.fields());
    r.fields.push(("version".into(), h.version.to_string()));
    r.fields.push((
        "payload".into(),
        format!("{} bytes at offset 0x{:x}", h.payload_len(), header::PAYLOAD_OFFSET),
    ));
    r.fields.push((
        "ROM copies it to".into(),
        format!("0x{STORAGE_LOAD:x} (inferred from the SPL link address)"),
    ));
    r.checks.push(("length".into(), h.length_matches()));
    match h.verify(bytes) {
        Some(ok) => r.checks.push(("sha256".into(), ok)),
        None => r.fields.push((
            "signature".into(),
            "not checked (the key hash lives in the chip's OTP; signed images are decoded, not verified)"
                .into(),
        )),
    }
    r.payload = Some((STORAGE_LOAD, h.payload_len()));
    Some(r)
}

pub fn serve(board: &Board, args: &SimArgs, _out: &Arc<Output>) -> Result<()> {
    parse_fault(args.fault.as_ref())?;
    Err(fail(
        FailureClass::Other,
        format!(
            "{} boots over USB: its virtual ROM cannot be served outside this process yet (that needs a USB gadget, e.g. FunctionFS in a QEMU guest). Run it in-process instead: `racklet-flash maskrom {} payload.bin --simulate [--fault NAME]`",
            board.name, board.name
        ),
    ))
}
