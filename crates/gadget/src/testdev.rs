//! The rig's own test device: a vendor-class model that proves every path
//! of the gadget before (and besides) the vendor ROM models.
//!
//! - Control OUT, request 0x0c, index 0x0471 (Rockchip's download request
//!   shape, a recipient-device vendor request): the data stage is counted.
//! - Control IN, request 0x01, 16 bytes: little-endian u32s: control bytes
//!   received, their byte sum (wrapping), bulk bytes received,
//!   re-enumerations so far.
//! - Control OUT, request 0x10, no data: detach now and come back 300 ms
//!   later with a new address and bcdDevice + 1 (a re-enumeration).
//! - Control OUT, request 0x11, no data: always refused (stall).
//! - Control OUT, request 0x12, with data: refused after the data stage
//!   (what a ROM does when a CRC does not match).
//! - Bulk OUT 0x01: every byte is queued for bulk IN 0x81 (an echo).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use racklet_link::usb::EndpointKind;
use racklet_link::{ControlSetup, EndpointInfo, InterfaceInfo, LinkError, SerialInfo, UsbInfo};
use racklet_sim::serial::{PtyPair, SimSerialBus};
use racklet_sim::usb::{DeviceError, UsbDevice};

/// pid.codes test VID:PID.
pub const LOOP_VID: u16 = 0x1209;
pub const LOOP_PID: u16 = 0x0001;
/// How long the loop device stays away while re-enumerating.
pub const REENUM_GAP: Duration = Duration::from_millis(300);

/// The loop device.
#[derive(Debug)]
pub struct LoopDevice {
    address: u8,
    bcd_device: u16,
    away_until: Option<Instant>,
    pub control_bytes: u32,
    pub control_sum: u32,
    pub bulk_bytes: u32,
    pub reenumerations: u32,
    queue: VecDeque<u8>,
}

impl Default for LoopDevice {
    fn default() -> Self {
        LoopDevice {
            address: 1,
            bcd_device: 0x0100,
            away_until: None,
            control_bytes: 0,
            control_sum: 0,
            bulk_bytes: 0,
            reenumerations: 0,
            queue: VecDeque::new(),
        }
    }
}

impl LoopDevice {
    /// What the device received, for the verdict line.
    pub fn verdict(&self) -> String {
        format!(
            "control {} bytes sum {:#010x}, bulk {} bytes, {} re-enumerations",
            self.control_bytes, self.control_sum, self.bulk_bytes, self.reenumerations
        )
    }
}

impl UsbDevice for LoopDevice {
    fn info(&self) -> Option<UsbInfo> {
        if self.away_until.is_some() {
            return None;
        }
        Some(UsbInfo {
            vid: LOOP_VID,
            pid: LOOP_PID,
            bcd_usb: 0x0200,
            bcd_device: self.bcd_device,
            manufacturer: Some("racklet".into()),
            product: Some("usbrig loop".into()),
            serial: Some("LOOP0001".into()),
            address: self.address,
            port_path: "gadget".into(),
            interfaces: vec![InterfaceInfo {
                number: 0,
                class: 0xff,
                subclass: 0,
                protocol: 0,
                endpoints: vec![
                    EndpointInfo { address: 0x01, kind: EndpointKind::Bulk, max_packet_size: 512 },
                    EndpointInfo { address: 0x81, kind: EndpointKind::Bulk, max_packet_size: 512 },
                ],
            }],
            ..Default::default()
        })
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<(), DeviceError> {
        match (setup.request_type, setup.request, setup.index) {
            (0x40, 0x0c, 0x0471) => {
                self.control_bytes += data.len() as u32;
                for b in data {
                    self.control_sum = self.control_sum.wrapping_add(*b as u32);
                }
                Ok(())
            }
            (0x40, 0x12, _) if !data.is_empty() => Err(DeviceError::Stall),
            (0x40, 0x10, _) => {
                self.away_until = Some(Instant::now() + REENUM_GAP);
                Ok(())
            }
            _ => Err(DeviceError::Stall),
        }
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16) -> Result<Vec<u8>, DeviceError> {
        if (setup.request_type, setup.request) != (0xc0, 0x01) {
            return Err(DeviceError::Stall);
        }
        let mut v = Vec::new();
        for x in [self.control_bytes, self.control_sum, self.bulk_bytes, self.reenumerations] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(len as usize);
        Ok(v)
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8]) -> Result<(), DeviceError> {
        if ep != 0x01 {
            return Err(DeviceError::Stall);
        }
        self.bulk_bytes += data.len() as u32;
        self.queue.extend(data);
        Ok(())
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize) -> Result<Vec<u8>, DeviceError> {
        if ep != 0x81 {
            return Err(DeviceError::Stall);
        }
        if self.queue.is_empty() {
            return Err(DeviceError::NoAnswer);
        }
        let n = max_len.min(self.queue.len());
        Ok(self.queue.drain(..n).collect())
    }

    fn tick(&mut self) {
        if let Some(t) = self.away_until
            && Instant::now() >= t
        {
            self.away_until = None;
            self.address = self.address.wrapping_add(1).max(1);
            self.bcd_device += 1;
            self.reenumerations += 1;
            self.queue.clear();
        }
    }
}

/// The rig's serial test model: a CDC-ACM "ROM" on a pseudo-terminal,
/// published on a [`SimSerialBus`] like every serial ROM in racklet-sim.
/// It echoes every byte; after the sequence [`ECHO_REENUM`] it
/// re-enumerates: it withdraws its port and publishes a new one
/// [`REENUM_GAP`] later.
pub struct EchoRom {
    state: Arc<Mutex<EchoState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the echo model did.
#[derive(Debug, Clone, Default)]
pub struct EchoState {
    pub echoed: u64,
    pub sessions: u32,
}

/// The echo model's ids.
pub const ECHO_VID: u16 = 0x1209;
pub const ECHO_PID: u16 = 0x0002;
/// The sequence that makes the echo model re-enumerate (DC2 "REENUM" DC2).
pub const ECHO_REENUM: &[u8] = b"\x12REENUM\x12";

impl EchoRom {
    /// Powers the model on: its first port is published before this returns.
    pub fn spawn(bus: SimSerialBus, port_path: &str) -> Result<EchoRom, LinkError> {
        let state = Arc::new(Mutex::new(EchoState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let first = PtyPair::new()?;
        let (st, sp, pp) = (state.clone(), stop.clone(), port_path.to_string());
        let publish = move |bus: &SimSerialBus, pair: &PtyPair| {
            bus.publish(SerialInfo {
                path: pair.path.clone(),
                vid: Some(ECHO_VID),
                pid: Some(ECHO_PID),
                serial: Some("ECHO0001".into()),
                manufacturer: Some("racklet".into()),
                product: Some("usbrig echo".into()),
                port_path: Some(pp.clone()),
            })
        };
        publish(&bus, &first);
        let thread = std::thread::spawn(move || {
            let mut pair = Some(first);
            while !sp.load(Ordering::SeqCst) {
                let Some(p) = pair.as_mut() else { break };
                st.lock().unwrap_or_else(|e| e.into_inner()).sessions += 1;
                let again = echo_session(p, &st, &sp);
                bus.withdraw(&p.path);
                if !again {
                    break;
                }
                std::thread::sleep(REENUM_GAP);
                pair = PtyPair::new().ok();
                if let Some(p) = &pair {
                    publish(&bus, p);
                }
            }
        });
        Ok(EchoRom { state, stop, thread: Some(thread) })
    }

    /// Stops the model and says what it did.
    pub fn verdict(&mut self) -> String {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        format!("echoed {} bytes in {} sessions", s.echoed, s.sessions)
    }
}

/// Echoes until stopped (false) or asked to re-enumerate (true).
fn echo_session(p: &mut PtyPair, st: &Mutex<EchoState>, stop: &AtomicBool) -> bool {
    use serialport::SerialPort;
    use std::io::{Read, Write};
    let _ = p.device.set_timeout(Duration::from_millis(20));
    let mut buf = [0u8; 4096];
    // The last bytes seen, to spot the trigger across reads.
    let mut tail: Vec<u8> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let n = match p.device.read(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let data = &buf[..n];
        if p.device.write_all(data).is_ok() {
            st.lock().unwrap_or_else(|e| e.into_inner()).echoed += n as u64;
        }
        tail.extend_from_slice(data);
        if tail.windows(ECHO_REENUM.len()).any(|w| w == ECHO_REENUM) {
            return true;
        }
        let keep = tail.len().saturating_sub(ECHO_REENUM.len() - 1);
        tail.drain(..keep);
    }
    false
}

#[cfg(test)]
mod tests {
    use racklet_link::{UsbBus, UsbLink};
    use racklet_sim::usb::SimUsbBus;

    use super::*;

    /// The same model in-process, through racklet-sim's bus: what the rig
    /// checks in the guest holds here too.
    #[test]
    fn loop_device_counts_echoes_and_reenumerates() {
        let bus = SimUsbBus::new();
        let dev = bus.attach(LoopDevice::default());
        let t = Duration::from_millis(100);
        let info = bus.devices().unwrap().remove(0);
        let mut link = bus.open(&info).unwrap();
        link.control_out(ControlSetup::vendor_out(0x0c, 0, 0x471), &[1, 2, 250], t).unwrap();
        link.bulk_out(0x01, b"hello", t).unwrap();
        assert_eq!(link.bulk_in(0x81, 3, t).unwrap(), b"hel");
        assert_eq!(link.bulk_in(0x81, 64, t).unwrap(), b"lo");
        assert!(link.bulk_in(0x81, 64, t).is_err());
        let st = link.control_in(ControlSetup::vendor_in(0x01, 0, 0), 16, t).unwrap();
        assert_eq!(st, [3, 0, 0, 0, 253, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
        assert!(link.control_out(ControlSetup::vendor_out(0x11, 0, 0), &[], t).is_err());
        link.control_out(ControlSetup::vendor_out(0x10, 0, 0), &[], t).unwrap();
        assert!(bus.devices().unwrap().is_empty());
        std::thread::sleep(REENUM_GAP + Duration::from_millis(20));
        let again = bus.devices().unwrap().remove(0);
        assert_eq!(again.address, info.address + 1);
        assert_eq!(again.bcd_device, 0x0101);
        assert_eq!(dev.lock().unwrap().reenumerations, 1);
    }

    /// The echo model through racklet-sim's serial bus and the real
    /// serialport backend, re-enumeration included.
    #[test]
    fn echo_rom_echoes_and_reenumerates_on_dc2() {
        use racklet_link::SerialBus;
        let bus = SimSerialBus::new();
        let mut rom = EchoRom::spawn(bus.clone(), "9-1").unwrap();
        let t = Duration::from_secs(2);
        let first = bus.ports().unwrap().remove(0);
        assert_eq!(first.port_path.as_deref(), Some("9-1"));
        let mut link = bus.open(&first, 115200).unwrap();
        link.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        link.read_exact(&mut got, t).unwrap();
        assert_eq!(&got, b"ping");
        // The trigger split over two writes still counts.
        link.write_all(&ECHO_REENUM[..3]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        link.write_all(&ECHO_REENUM[3..]).unwrap();
        let mut x = [0u8; 8];
        link.read_exact(&mut x, t).unwrap();
        assert_eq!(&x, ECHO_REENUM);
        drop(link);
        let start = Instant::now();
        let second = loop {
            if let Some(p) = bus.ports().unwrap().into_iter().find(|p| p.path != first.path) {
                break p;
            }
            assert!(start.elapsed() < Duration::from_secs(3), "no second port");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut link = bus.open(&second, 115200).unwrap();
        link.write_all(b"again").unwrap();
        let mut got = [0u8; 5];
        link.read_exact(&mut got, t).unwrap();
        assert_eq!(&got, b"again");
        drop(link);
        assert_eq!(rom.verdict(), "echoed 17 bytes in 2 sessions");
    }
}
