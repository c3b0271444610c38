//! A virtual Canaan K230 / K230D: the mask ROM's USB boot device and, after
//! a jump into a kburn loader, the loader's identity.
//!
//! Written from `shared/protocols/canaan-k230.md` (§1, §2, §9), not from the
//! client. The ROM:
//! - answers GET_CPU_INFO (vendor IN, bRequest 0) with `K230`;
//! - keeps the write pointer set by SET_DATA_ADDRESS (bRequest 1,
//!   wValue = address high half, wIndex = low half) and stores the bulk
//!   OUT bytes of EP 0x01 there, auto-incrementing;
//! - refuses (STALLs) data outside the SRAM 0x80200000..0x80400000 unless a
//!   DRAM-init stage has run, and data before any SET_DATA_ADDRESS;
//! - on PROG_START (bRequest 4) "jumps": the USB device leaves the bus, and
//!   depending on what was loaded comes back as the ROM (a DRAM-init stage
//!   that returns to 0x91200000, or PROG_START 0x91200000 itself), as the
//!   kburn loader (the loaded code holds the loader's "Uboot Stage for
//!   K230" string), or not at all (any other payload).
//!
//! What the real ROM does in the unconfirmed corners (§9) is modelled the
//! strict way: a write before SET_DATA_ADDRESS, or one that crosses out of
//! the SRAM, is a STALL.

use racklet_link::usb::{EndpointInfo, EndpointKind, InterfaceInfo};
use racklet_link::{ControlSetup, UsbInfo};

use crate::usb::{DeviceError, UsbDevice};

/// USB ids of the ROM and the loader (both the same, §1).
pub const K230_VID: u16 = 0x29f1;
pub const K230_PID: u16 = 0x0230;
const SRAM: (u64, u64) = (0x8020_0000, 0x8040_0000);
/// DRAM is mapped from 0; the window is 2 GiB.
const DRAM: (u64, u64) = (0, 0x8000_0000);
const ROM_ENTRY: u64 = 0x9120_0000;
const ROM_REPLY: &[u8] = b"K230";
const LOADER_REPLY: &[u8] = b"Uboot Stage for K230";
/// Bus scans the board stays off the bus after a jump before it comes back.
const REENUM_TICKS: u32 = 3;

/// Ways the virtual ROM can misbehave (`--fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bulk OUT is STALLed (the ROM refuses the data).
    StallBulk,
    /// Bulk OUT is never accepted (NAK forever): the host's transfer times out.
    HangBulk,
    /// PROG_START jumps without completing its status stage.
    NoStatus,
    /// PROG_START is STALLed and nothing jumps.
    StallStart,
    /// The board is in the kburn loader stage, not the ROM.
    Loader,
    /// GET_CPU_INFO answers "K210".
    WrongCpu,
    /// The DRAM-init stage never returns to the ROM.
    NoReturn,
    /// PROG_START is acknowledged, but the ROM does not jump.
    NoJump,
    /// The cable is pulled during the second bulk OUT chunk.
    Unplug,
}

impl Fault {
    /// Every fault: name and what it does.
    pub const ALL: &'static [(&'static str, Fault, &'static str)] = &[
        ("stall-bulk", Fault::StallBulk, "bulk OUT data is STALLed"),
        ("hang-bulk", Fault::HangBulk, "bulk OUT data is never accepted (timeout)"),
        ("no-status", Fault::NoStatus, "PROG_START jumps without a status stage"),
        ("stall-start", Fault::StallStart, "PROG_START is STALLed, nothing starts"),
        ("loader", Fault::Loader, "the board is in the kburn loader stage"),
        ("wrong-cpu", Fault::WrongCpu, "GET_CPU_INFO answers \"K210\""),
        ("no-return", Fault::NoReturn, "the DRAM-init stage never comes back to the ROM"),
        ("no-jump", Fault::NoJump, "PROG_START is acknowledged but nothing jumps"),
        ("unplug", Fault::Unplug, "the cable is pulled during the second bulk OUT chunk"),
    ];

    /// Parses a fault name.
    pub fn parse(name: &str) -> Option<Fault> {
        Self::ALL.iter().find(|f| f.0 == name).map(|f| f.1)
    }

    /// The names, for help and error messages.
    pub fn names() -> String {
        Self::ALL.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
    }
}

/// What the chip is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The mask ROM's USB boot device.
    Rom,
    /// The kburn loader (only its identity is modelled).
    Loader,
    /// Running loaded code that does not use USB.
    Running(u64),
    /// Jumped somewhere nothing was loaded.
    Crashed(u64),
    /// Gone from the bus (the cable was pulled).
    Unplugged,
}

/// One contiguous run of bytes written by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub address: u64,
    pub data: Vec<u8>,
}

/// One PROG_START.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub entry: u64,
    /// What came of it.
    pub result: String,
}

/// The virtual board.
#[derive(Debug)]
pub struct K230Rom {
    port_path: String,
    address: u8,
    mode: Mode,
    /// Pending re-enumeration: ticks left and the mode to come back in.
    pending: Option<(u32, Mode)>,
    pointer: Option<u64>,
    dram_ready: bool,
    /// How many of the first jumps act as DRAM-init stages that return to the ROM.
    returns_to_rom: usize,
    fault: Option<Fault>,
    /// A PROG_START acknowledged without a jump (fault `no-jump`).
    ignored_start: Option<u64>,
    /// Everything written, in order.
    pub regions: Vec<Region>,
    /// Every PROG_START.
    pub jumps: Vec<Jump>,
    /// Sizes of the bulk OUT transfers, in order.
    pub bulk_sizes: Vec<usize>,
    /// What the ROM refused, in order.
    pub refusals: Vec<String>,
    /// Every request, one line each.
    pub log: Vec<String>,
}

impl K230Rom {
    /// A board in its boot ROM at USB port `port_path`.
    pub fn new(port_path: &str) -> Self {
        K230Rom {
            port_path: port_path.into(),
            address: 10,
            mode: Mode::Rom,
            pending: None,
            pointer: None,
            dram_ready: false,
            returns_to_rom: 0,
            fault: None,
            ignored_start: None,
            regions: Vec::new(),
            jumps: Vec::new(),
            bulk_sizes: Vec::new(),
            refusals: Vec::new(),
            log: Vec::new(),
        }
    }

    /// The first `n` started stages initialise DRAM and jump back into the
    /// ROM (as oreboot's bt0 does).
    pub fn with_dram_init_stages(mut self, n: usize) -> Self {
        self.returns_to_rom = n;
        self
    }

    /// Injects a fault.
    pub fn with_fault(mut self, fault: Option<Fault>) -> Self {
        self.fault = fault;
        if fault == Some(Fault::Loader) {
            self.mode = Mode::Loader;
        }
        self
    }

    /// What the chip is doing now (a pending re-enumeration counts as done).
    pub fn mode(&self) -> &Mode {
        self.pending.as_ref().map(|p| &p.1).unwrap_or(&self.mode)
    }

    /// True once a DRAM-init stage has run.
    pub fn dram_ready(&self) -> bool {
        self.dram_ready
    }

    /// The bytes at `[addr, addr+len)` if one region holds them all (the latest write wins).
    pub fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self.regions.iter().rev().find_map(|r| {
            let end = r.address + r.data.len() as u64;
            (addr >= r.address && addr + len as u64 <= end)
                .then(|| r.data[(addr - r.address) as usize..(addr - r.address) as usize + len].to_vec())
        })
    }

    fn region_at(&self, addr: u64) -> Option<&Region> {
        self.regions.iter().rev().find(|r| addr >= r.address && addr < r.address + r.data.len() as u64)
    }

    /// What the ROM received and whether it ended with a payload started.
    pub fn verdict(&self) -> Result<String, String> {
        let loads = self
            .regions
            .iter()
            .map(|r| format!("{} bytes at 0x{:08x}", r.data.len(), r.address))
            .collect::<Vec<_>>()
            .join(", ");
        let jumps = self.jumps.iter().map(|j| j.result.clone()).collect::<Vec<_>>().join("; ");
        let summary = format!("loaded {}; {}", if loads.is_empty() { "nothing" } else { &loads }, jumps);
        if let Some(r) = self.refusals.first() {
            return Err(format!("refused {r} ({summary})"));
        }
        if let Some(e) = self.ignored_start {
            return Err(format!("PROG_START 0x{e:08x} was acknowledged but nothing jumped ({summary})"));
        }
        match (self.jumps.last(), self.mode()) {
            (None, _) => Err(format!("no PROG_START received ({summary})")),
            (Some(_), Mode::Crashed(e)) => Err(format!("jumped to 0x{e:08x}, where nothing was loaded")),
            (Some(j), Mode::Rom) if j.entry != ROM_ENTRY => {
                Err(format!("the last stage went back to the ROM and nothing else was started ({summary})"))
            }
            _ => Ok(summary),
        }
    }

    fn refuse(&mut self, what: String) -> Result<(), DeviceError> {
        self.log.push(format!("STALL: {what}"));
        self.refusals.push(what);
        Err(DeviceError::Stall)
    }

    fn leave_bus(&mut self, next: Mode) {
        self.pending = Some((REENUM_TICKS, next));
    }

    fn prog_start(&mut self, entry: u64) -> Result<(), DeviceError> {
        if self.fault == Some(Fault::StallStart) {
            return self.refuse(format!("PROG_START 0x{entry:08x}"));
        }
        if self.fault == Some(Fault::NoJump) {
            self.log.push(format!("PROG_START 0x{entry:08x} acknowledged, ignored"));
            self.ignored_start = Some(entry);
            return Ok(());
        }
        let n = self.jumps.len();
        let (result, next) = if entry == ROM_ENTRY {
            ("PROG_START 0x91200000: back into the ROM".to_string(), Some(Mode::Rom))
        } else if let Some(r) = self.region_at(entry) {
            let is_loader = r.data.windows(LOADER_REPLY.len()).any(|w| w == LOADER_REPLY);
            if n < self.returns_to_rom {
                if self.fault == Some(Fault::NoReturn) {
                    (format!("jumped to 0x{entry:08x} (DRAM-init stage that hangs)"), None)
                } else {
                    self.dram_ready = true;
                    (format!("jumped to 0x{entry:08x} (DRAM init, back into the ROM)"), Some(Mode::Rom))
                }
            } else if is_loader {
                (format!("jumped to 0x{entry:08x} (kburn loader)"), Some(Mode::Loader))
            } else {
                (format!("jumped to 0x{entry:08x}"), None)
            }
        } else {
            (format!("jumped to 0x{entry:08x} (nothing loaded there)"), None)
        };
        self.log.push(result.clone());
        self.jumps.push(Jump { entry, result });
        self.pointer = None;
        match next {
            Some(m) => self.leave_bus(m),
            None => {
                let loaded = self.region_at(entry).is_some();
                self.mode = if loaded { Mode::Running(entry) } else { Mode::Crashed(entry) };
            }
        }
        if self.fault == Some(Fault::NoStatus) {
            // The ROM jumps before the status stage: the host sees no handshake.
            return Err(DeviceError::NoAnswer);
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), DeviceError> {
        let Some(p) = self.pointer else {
            return self.refuse("bulk OUT data before any SET_DATA_ADDRESS".into());
        };
        let end = p + data.len() as u64;
        let in_sram = p >= SRAM.0 && end <= SRAM.1;
        let in_dram = p >= DRAM.0 && end <= DRAM.1;
        let writable = in_sram || (in_dram && self.dram_ready);
        if !writable {
            let why = if in_dram { "DRAM is not initialised" } else { "outside SRAM and DRAM" };
            return self.refuse(format!("{} bytes at 0x{p:08x} ({why})", data.len()));
        }
        match self.regions.last_mut() {
            Some(r) if r.address + r.data.len() as u64 == p => r.data.extend_from_slice(data),
            _ => self.regions.push(Region { address: p, data: data.to_vec() }),
        }
        self.pointer = Some(end);
        Ok(())
    }
}

fn bulk(address: u8, mps: u16) -> EndpointInfo {
    EndpointInfo { address, kind: EndpointKind::Bulk, max_packet_size: mps }
}

impl UsbDevice for K230Rom {
    fn info(&self) -> Option<UsbInfo> {
        if self.pending.is_some() {
            return None;
        }
        let base = UsbInfo {
            vid: K230_VID,
            pid: K230_PID,
            bcd_usb: 0x0200,
            bus: 1,
            address: self.address,
            port_path: self.port_path.clone(),
            speed: Some("high".into()),
            ..Default::default()
        };
        match self.mode {
            Mode::Rom => Some(UsbInfo {
                manufacturer: Some("Canaan Creative Co., Ltd".into()),
                product: Some("K230 USB Boot Device".into()),
                // Class triple unconfirmed (§9.3); the endpoints are documented.
                interfaces: vec![InterfaceInfo {
                    number: 0,
                    class: 0xff,
                    subclass: 0,
                    protocol: 0,
                    endpoints: vec![bulk(0x01, 512), bulk(0x81, 512)],
                }],
                ..base
            }),
            Mode::Loader => Some(UsbInfo {
                manufacturer: Some("Kendryte".into()),
                product: Some("Canaan KBURN".into()),
                serial: Some("K230-LOADER".into()),
                interfaces: vec![InterfaceInfo {
                    number: 0,
                    class: 0xff,
                    subclass: 0x02,
                    protocol: 0,
                    endpoints: vec![bulk(0x81, 512), bulk(0x02, 512)],
                }],
                ..base
            }),
            Mode::Running(_) | Mode::Crashed(_) | Mode::Unplugged => None,
        }
    }

    fn tick(&mut self) {
        if let Some((left, _)) = &mut self.pending {
            if *left > 0 {
                *left -= 1;
                return;
            }
            let (_, mode) = self.pending.take().expect("checked above");
            self.mode = mode;
            self.address = self.address.wrapping_add(1).max(1);
            self.log.push(format!("re-enumerated as {:?} at address {}", self.mode, self.address));
        }
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<(), DeviceError> {
        let addr = ((setup.value as u64) << 16) | setup.index as u64;
        self.log.push(format!(
            "ctrl OUT rt=0x{:02x} req={} val=0x{:04x} idx=0x{:04x} len={}",
            setup.request_type,
            setup.request,
            setup.value,
            setup.index,
            data.len()
        ));
        if self.mode != Mode::Rom {
            return Err(DeviceError::Stall);
        }
        if setup.request_type != 0x40 {
            return self.refuse(format!("control OUT with bmRequestType 0x{:02x}", setup.request_type));
        }
        match setup.request {
            1 => {
                self.pointer = Some(addr);
                Ok(())
            }
            // SET_DATA_LENGTH: defined, never needed; accepted and ignored.
            2 => Ok(()),
            4 => self.prog_start(addr),
            r => self.refuse(format!("vendor request {r}")),
        }
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16) -> Result<Vec<u8>, DeviceError> {
        self.log.push(format!(
            "ctrl IN rt=0x{:02x} req={} val=0x{:04x} len={len}",
            setup.request_type, setup.request, setup.value
        ));
        if setup.request_type != 0xC0 || setup.request != 0 {
            return Err(DeviceError::Stall);
        }
        let mut reply = match self.mode {
            Mode::Rom if self.fault == Some(Fault::WrongCpu) => b"K210".to_vec(),
            Mode::Rom => ROM_REPLY.to_vec(),
            Mode::Loader if setup.value == 1 => 1u32.to_le_bytes().to_vec(),
            Mode::Loader => LOADER_REPLY.to_vec(),
            _ => return Err(DeviceError::Disconnected),
        };
        // A device answers at most wLength bytes.
        reply.truncate(len as usize);
        Ok(reply)
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8]) -> Result<(), DeviceError> {
        if self.mode != Mode::Rom || ep != 0x01 {
            return Err(DeviceError::Stall);
        }
        match self.fault {
            Some(Fault::StallBulk) => return self.refuse(format!("{} bytes of bulk OUT data", data.len())),
            Some(Fault::HangBulk) => return Err(DeviceError::NoAnswer),
            Some(Fault::Unplug) if self.bulk_sizes.len() == 1 => {
                self.mode = Mode::Unplugged;
                return Err(DeviceError::Disconnected);
            }
            _ => {}
        }
        self.bulk_sizes.push(data.len());
        self.write(data)
    }

    fn bulk_in(&mut self, _ep: u8, _max_len: usize) -> Result<Vec<u8>, DeviceError> {
        // No host reads EP 0x81 of the ROM; nothing is ever queued there.
        Err(DeviceError::NoAnswer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(req: u8, addr: u32) -> ControlSetup {
        ControlSetup::vendor_out(req, (addr >> 16) as u16, addr as u16)
    }

    #[test]
    fn rom_stores_data_and_jumps() {
        let mut r = K230Rom::new("1-1");
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32).unwrap(), b"K230");
        assert_eq!(r.bulk_out(1, b"x"), Err(DeviceError::Stall), "data before an address");
        r.refusals.clear();
        r.control_out(out(1, 0x8036_0000), &[]).unwrap();
        r.bulk_out(1, &[1, 2, 3]).unwrap();
        r.bulk_out(1, &[4]).unwrap();
        assert_eq!(r.read(0x8036_0000, 4).unwrap(), vec![1, 2, 3, 4]);
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        assert_eq!(r.mode(), &Mode::Running(0x8036_0000));
        assert!(r.info().is_none());
        assert!(r.verdict().is_ok());
    }

    #[test]
    fn dram_needs_a_dram_init_stage() {
        let mut r = K230Rom::new("1-1").with_dram_init_stages(1);
        r.control_out(out(1, 0x0800_0000), &[]).unwrap();
        assert_eq!(r.bulk_out(1, &[0; 4]), Err(DeviceError::Stall));
        r.refusals.clear();
        r.control_out(out(1, 0x8036_0000), &[]).unwrap();
        r.bulk_out(1, &[0x13; 8]).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        assert!(r.info().is_none(), "off the bus while re-enumerating");
        for _ in 0..=REENUM_TICKS {
            r.tick();
        }
        let info = r.info().unwrap();
        assert_eq!(info.address, 11);
        assert!(r.dram_ready());
        r.control_out(out(1, 0x0800_0000), &[]).unwrap();
        r.bulk_out(1, &[5; 4]).unwrap();
        r.control_out(out(4, 0x0800_0000), &[]).unwrap();
        assert!(r.verdict().is_ok(), "{:?}", r.verdict());
    }

    #[test]
    fn writes_crossing_out_of_sram_are_refused() {
        let mut r = K230Rom::new("1-1");
        r.control_out(out(1, 0x803f_fffc), &[]).unwrap();
        r.bulk_out(1, &[0; 4]).unwrap();
        assert_eq!(r.bulk_out(1, &[0; 1]), Err(DeviceError::Stall));
        assert!(r.verdict().is_err());
    }

    #[test]
    fn loader_code_comes_back_as_the_loader() {
        let mut r = K230Rom::new("1-1");
        r.control_out(out(1, 0x8036_0000), &[]).unwrap();
        let mut code = vec![0u8; 64];
        code.extend_from_slice(b"Uboot Stage for K230");
        r.bulk_out(1, &code).unwrap();
        r.control_out(out(4, 0x8036_0000), &[]).unwrap();
        for _ in 0..=REENUM_TICKS {
            r.tick();
        }
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 0, 0), 32).unwrap(), b"Uboot Stage for K230");
        assert_eq!(r.control_in(ControlSetup::vendor_in(0, 1, 0), 4).unwrap(), vec![1, 0, 0, 0]);
        assert_eq!(r.info().unwrap().interfaces[0].endpoints[1].address, 0x02);
    }

    #[test]
    fn faults_parse_by_name() {
        for (name, f, _) in Fault::ALL {
            assert_eq!(Fault::parse(name), Some(*f));
        }
        assert_eq!(Fault::parse("nope"), None);
    }
}
