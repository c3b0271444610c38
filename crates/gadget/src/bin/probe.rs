//! `racklet-usbrig-probe`: the host side of the rig's own checks, through
//! racklet-link's real backends (nusb on usbfs, serialport on cdc-acm).
//! Runs inside the rig's guest against `racklet-gadget`'s loop and echo
//! models.
//!
//! ```text
//! racklet-usbrig-probe xfer   PORT BYTES   control download + bulk echo, checked
//! racklet-usbrig-probe reenum PORT         re-enumeration followed by port path
//! racklet-usbrig-probe stall  PORT         a refused request is a stall (rejected)
//! racklet-usbrig-probe stream PORT BYTES   one long bulk write (for the unplug fault)
//! racklet-usbrig-probe wait   VID:PID SECS wait for a device that appears late
//! racklet-usbrig-probe acm    PORT BYTES   echo through the cdc-acm tty at PORT
//! racklet-usbrig-probe acm-reenum PORT     the ACM model re-enumerates; found again by port path
//! ```
//!
//! Prints `ok <facts>` and exits 0, or prints `error <class>: <message>` and
//! exits with the failure class's exit code (8 for disconnected, ...).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use racklet_link::nusb_backend::NusbBus;
use racklet_link::serial_backend::SystemSerial;
use racklet_link::{Classify, ControlSetup, LinkError, SerialBus, UsbBus, UsbInfo, UsbLink};

const T: Duration = Duration::from_secs(5);

/// The loop device's ids (see racklet_gadget::testdev).
const LOOP: (u16, u16) = (0x1209, 0x0001);

/// A test pattern that does not repeat with any power-of-two period.
fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn at_port(port: &str) -> Result<UsbInfo, LinkError> {
    NusbBus
        .devices()?
        .into_iter()
        .find(|d| d.port_path == port && (d.vid, d.pid) == LOOP)
        .ok_or_else(|| LinkError::not_found(format!("loop device at USB port {port}")))
}

fn status(link: &mut dyn UsbLink) -> Result<[u32; 4], LinkError> {
    let s = link.control_in(ControlSetup::vendor_in(0x01, 0, 0), 16, T)?;
    if s.len() != 16 {
        return Err(LinkError::io("status", format!("{} bytes instead of 16", s.len())));
    }
    let w = |i: usize| u32::from_le_bytes(s[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    Ok([w(0), w(1), w(2), w(3)])
}

fn bulk_eps(info: &UsbInfo) -> Result<(u8, u8), LinkError> {
    info.find_bulk_interface(Some((0xff, 0, 0)))
        .map(|(_, i, o)| (i, o))
        .ok_or_else(|| LinkError::not_found("bulk interface ff/00/00"))
}

fn xfer(port: &str, bytes: usize) -> Result<String, LinkError> {
    let info = at_port(port)?;
    let mut link = NusbBus.open(&info)?;
    let before = status(&mut *link)?;
    let data = pattern(bytes, 0x1234_5678);
    let t0 = Instant::now();
    for chunk in data.chunks(4096) {
        link.control_out(ControlSetup::vendor_out(0x0c, 0, 0x471), chunk, T)?;
    }
    let ctrl_time = t0.elapsed();
    let (ep_in, ep_out) = bulk_eps(link.info())?;
    let t1 = Instant::now();
    link.bulk_out(ep_out, &data, T)?;
    let mut back = Vec::with_capacity(bytes);
    while back.len() < bytes {
        back.extend(link.bulk_in(ep_in, (bytes - back.len()).min(64 * 1024), T)?);
    }
    let bulk_time = t1.elapsed();
    if back != data {
        let at = back.iter().zip(&data).position(|(a, b)| a != b).unwrap_or(bytes.min(back.len()));
        return Err(LinkError::io(
            "bulk echo",
            format!("{} bytes back, first difference at {at}", back.len()),
        ));
    }
    let after = status(&mut *link)?;
    let sum = data.iter().fold(0u32, |s, b| s.wrapping_add(*b as u32));
    let want = [before[0] + bytes as u32, before[1].wrapping_add(sum), before[2] + bytes as u32, before[3]];
    if after != want {
        return Err(LinkError::io("device counters", format!("{after:?}, expected {want:?}")));
    }
    Ok(format!(
        "port={} id={} addr={} control={bytes}B in {}ms bulk-echo={bytes}B in {}ms eps={ep_out:#04x}/{ep_in:#04x}",
        info.port_path,
        info.id(),
        info.address,
        ctrl_time.as_millis(),
        bulk_time.as_millis()
    ))
}

fn reenum(port: &str) -> Result<String, LinkError> {
    let info = at_port(port)?;
    let mut link = NusbBus.open(&info)?;
    let before = status(&mut *link)?;
    // The device may vanish before the status stage: a disconnect here is expected.
    match link.control_out(ControlSetup::vendor_out(0x10, 0, 0), &[], T) {
        Ok(()) | Err(LinkError::Disconnected { .. }) => {}
        Err(e) => return Err(e),
    }
    drop(link);
    let t0 = Instant::now();
    let next = racklet_link::discover::follow_usb(
        &NusbBus,
        port,
        &|d| (d.vid, d.pid) == LOOP,
        Some(info.address),
        Duration::from_secs(10),
        &|| false,
    )?;
    let mut link = NusbBus.open(&next)?;
    let after = status(&mut *link)?;
    if after[3] != before[3] + 1 || next.bcd_device != info.bcd_device + 1 {
        return Err(LinkError::io(
            "re-enumeration",
            format!(
                "counter {} -> {}, bcdDevice {:04x} -> {:04x}",
                before[3], after[3], info.bcd_device, next.bcd_device
            ),
        ));
    }
    Ok(format!(
        "port={} address {} -> {} bcdDevice {:04x} -> {:04x} back after {}ms",
        port,
        info.address,
        next.address,
        info.bcd_device,
        next.bcd_device,
        t0.elapsed().as_millis()
    ))
}

fn stall(port: &str) -> Result<String, LinkError> {
    let info = at_port(port)?;
    let mut link = NusbBus.open(&info)?;
    match link.control_out(ControlSetup::vendor_out(0x11, 0, 0), &[], T) {
        Err(e @ LinkError::Stall { .. }) => {
            // The device must still answer afterwards.
            status(&mut *link)?;
            // A refusal after a data stage: FunctionFS has acknowledged the
            // transfer, so the gadget stalls the next request instead.
            link.control_out(ControlSetup::vendor_out(0x12, 0, 0), &[0xa5; 16], T)?;
            let late = match status(&mut *link) {
                Err(l @ LinkError::Stall { .. }) => l,
                Err(other) => return Err(other),
                Ok(_) => {
                    return Err(LinkError::io("request 0x12", "the refusal after the data stage was lost"));
                }
            };
            status(&mut *link)?;
            Ok(format!("refused as {}: {e}; late refusal as {}", e.class().name(), late.class().name()))
        }
        Err(e) => Err(e),
        Ok(()) => Err(LinkError::io("request 0x11", "accepted, but the device refuses it")),
    }
}

fn stream(port: &str, bytes: usize) -> Result<String, LinkError> {
    let info = at_port(port)?;
    let mut link = NusbBus.open(&info)?;
    let (_, ep_out) = bulk_eps(link.info())?;
    let data = pattern(bytes, 7);
    for chunk in data.chunks(64 * 1024) {
        link.bulk_out(ep_out, chunk, T)?;
    }
    Ok(format!("sent {bytes} bytes"))
}

/// Bulk OUT through nusb in 1 MiB pieces, two ways in turn, twice: one
/// `bulk_out` per piece (the transfers of a piece in flight, the bus idle
/// while the next piece is submitted), and `queue_bulk_out` per piece
/// (256 KiB kept in flight across pieces) with a flush at the end.
fn bulk_speed(port: &str, bytes: usize) -> Result<String, LinkError> {
    let info = at_port(port)?;
    let mut link = NusbBus.open(&info)?;
    let (_, ep_out) = bulk_eps(link.info())?;
    let data = pattern(bytes, 7);
    let mut sync = Vec::new();
    let mut queued = Vec::new();
    for _ in 0..2 {
        let t = Instant::now();
        for piece in data.chunks(1 << 20) {
            link.bulk_out(ep_out, piece, T)?;
        }
        sync.push(t.elapsed().as_millis());
        let t = Instant::now();
        for piece in data.chunks(1 << 20) {
            link.queue_bulk_out(ep_out, piece, T)?;
        }
        link.flush_out()?;
        queued.push(t.elapsed().as_millis());
    }
    Ok(format!("{bytes} bytes: bulk_out {sync:?} ms, queue_bulk_out {queued:?} ms"))
}

fn wait(id: &str, secs: f64) -> Result<String, LinkError> {
    let (v, p) = id.split_once(':').ok_or_else(|| LinkError::io("args", "VID:PID"))?;
    let h = |s: &str| u16::from_str_radix(s, 16).map_err(|e| LinkError::io("args", e));
    let (vid, pid) = (h(v)?, h(p)?);
    let t0 = Instant::now();
    let found = racklet_link::wait_for_usb(
        &NusbBus,
        &|d| d.vid == vid && d.pid == pid,
        Duration::from_secs_f64(secs),
        &|| false,
    )?;
    Ok(format!("{} appeared at {} after {}ms", found[0].id(), found[0].port_path, t0.elapsed().as_millis()))
}

fn acm(port: &str, bytes: usize) -> Result<String, LinkError> {
    let info = SystemSerial
        .ports()?
        .into_iter()
        .find(|p| p.port_path.as_deref() == Some(port))
        .ok_or_else(|| LinkError::not_found(format!("serial port at USB port {port}")))?;
    let mut link = SystemSerial.open(&info, 115200)?;
    let data = pattern(bytes, 99);
    let t0 = Instant::now();
    let mut back = vec![0u8; bytes];
    // Write in pieces no larger than the tty buffers so the echo never backs up.
    let mut got = 0;
    for chunk in data.chunks(1024) {
        link.write_all(chunk)?;
        let want = got + chunk.len();
        link.read_exact(&mut back[got..want], T)?;
        got = want;
    }
    if back != data {
        return Err(LinkError::io("acm echo", "the echo differs"));
    }
    Ok(format!(
        "tty={} id={:04x}:{:04x} port={} echo={bytes}B in {}ms",
        info.path,
        info.vid.unwrap_or(0),
        info.pid.unwrap_or(0),
        port,
        t0.elapsed().as_millis()
    ))
}

fn serial_at(port: &str) -> Result<Option<racklet_link::SerialInfo>, LinkError> {
    Ok(SystemSerial.ports()?.into_iter().find(|p| p.port_path.as_deref() == Some(port)))
}

fn acm_reenum(port: &str) -> Result<String, LinkError> {
    let info = serial_at(port)?.ok_or_else(|| LinkError::not_found(format!("serial port at {port}")))?;
    let mut link = SystemSerial.open(&info, 115200)?;
    // This sequence asks the echo model to re-enumerate (racklet_gadget::testdev::ECHO_REENUM).
    // The device may be gone before the write's drain completes: that is the point.
    match link.write_all(b"\x12REENUM\x12") {
        Ok(()) | Err(LinkError::Disconnected { .. }) | Err(LinkError::Io { .. }) => {}
        Err(e) => return Err(e),
    }
    drop(link);
    let t0 = Instant::now();
    while serial_at(port)?.is_some() {
        if t0.elapsed() > Duration::from_secs(5) {
            return Err(LinkError::Timeout {
                op: format!("waiting for {port} to go away"),
                after: Duration::from_secs(5),
            });
        }
        // Polling sysfs: the tty goes when the host has seen the unplug.
        std::thread::sleep(Duration::from_millis(10));
    }
    let gone = t0.elapsed();
    while serial_at(port)?.is_none() {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(LinkError::Timeout {
                op: format!("waiting for {port} to come back"),
                after: Duration::from_secs(10),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let back = t0.elapsed();
    let echo = acm(port, 4096)?;
    Ok(format!("gone after {}ms, back after {}ms; {echo}", gone.as_millis(), back.as_millis()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize| arg(i).parse::<usize>().unwrap_or(4096);
    let r = match arg(0).as_str() {
        "xfer" => xfer(&arg(1), num(2)),
        "reenum" => reenum(&arg(1)),
        "stall" => stall(&arg(1)),
        "stream" => stream(&arg(1), num(2)),
        "bulk-speed" => bulk_speed(&arg(1), num(2)),
        "wait" => wait(&arg(1), arg(2).parse().unwrap_or(10.0)),
        "acm" => acm(&arg(1), num(2)),
        "acm-reenum" => acm_reenum(&arg(1)),
        other => {
            eprintln!("unknown check '{other}'");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(s) => {
            println!("ok {s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let c = e.class();
            println!("error {}: {e}", c.name());
            ExitCode::from(c.exit_code() as u8)
        }
    }
}
