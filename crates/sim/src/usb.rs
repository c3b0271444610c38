//! Virtual USB devices and the bus they sit on.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use racklet_link::{ControlSetup, LinkError, UsbBus, UsbInfo, UsbLink};

/// How a virtual device refuses or fails a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// The device stalls the endpoint (a ROM's "no").
    Stall,
    /// The device does not answer; the host's transfer times out.
    NoAnswer,
    /// The device is gone (unplugged, or re-enumerating).
    Disconnected,
}

/// The device side of a USB boot ROM, driven by events.
///
/// The same model is served in-process (through [`SimUsbBus`]) and, later,
/// as a real USB gadget.
pub trait UsbDevice: Send {
    /// The device's identity now, or `None` while it is detached (for
    /// example between two stages). The `address` must change on every
    /// re-enumeration; `port_path` must not.
    fn info(&self) -> Option<UsbInfo>;
    /// A control transfer with an OUT (or empty) data stage arrived.
    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<(), DeviceError>;
    /// A control transfer with an IN data stage arrived; answer at most `len` bytes.
    fn control_in(&mut self, setup: ControlSetup, len: u16) -> Result<Vec<u8>, DeviceError>;
    /// Bulk OUT data arrived on endpoint `ep`.
    fn bulk_out(&mut self, ep: u8, data: &[u8]) -> Result<(), DeviceError>;
    /// The host reads endpoint `ep` (bit 7 set), at most `max_len` bytes.
    fn bulk_in(&mut self, ep: u8, max_len: usize) -> Result<Vec<u8>, DeviceError>;
    /// Time passes (called before every transfer and every bus scan), so
    /// a device can finish re-enumerating after a delay.
    fn tick(&mut self) {}
}

/// A shared handle to a virtual device, so a test can inspect it afterwards.
pub type SharedDevice = Arc<Mutex<dyn UsbDevice>>;

/// Locks a shared device, surviving a panicked holder.
pub fn lock(dev: &SharedDevice) -> MutexGuard<'_, dyn UsbDevice + 'static> {
    dev.lock().unwrap_or_else(|e| e.into_inner())
}

/// A virtual USB bus holding any number of virtual devices.
#[derive(Clone, Default)]
pub struct SimUsbBus {
    devices: Arc<Mutex<Vec<SharedDevice>>>,
}

impl SimUsbBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plugs a device in and returns the shared handle to it.
    pub fn attach<D: UsbDevice + 'static>(&self, dev: D) -> Arc<Mutex<D>> {
        let d = Arc::new(Mutex::new(dev));
        self.devices.lock().unwrap_or_else(|e| e.into_inner()).push(d.clone());
        d
    }

    /// Plugs in an already shared device.
    pub fn attach_shared(&self, dev: SharedDevice) {
        self.devices.lock().unwrap_or_else(|e| e.into_inner()).push(dev);
    }
}

impl UsbBus for SimUsbBus {
    fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
        let devs = self.devices.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(devs
            .iter()
            .filter_map(|d| {
                let mut g = lock(d);
                g.tick();
                g.info()
            })
            .collect())
    }

    fn open(&self, want: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
        let devs = self.devices.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for d in devs {
            let info = lock(&d).info();
            if let Some(info) = info
                && info.port_path == want.port_path
                && info.address == want.address
            {
                return Ok(Box::new(SimUsbLink { dev: d, info }));
            }
        }
        Err(LinkError::Disconnected { op: format!("opening virtual device at {}", want.port_path) })
    }
}

/// A [`UsbLink`] to a virtual device. Transfers fail with `Disconnected`
/// once the device re-enumerated (its address changed) or detached.
pub struct SimUsbLink {
    dev: SharedDevice,
    info: UsbInfo,
}

impl SimUsbLink {
    /// Opens a device directly, without a bus.
    pub fn open(dev: SharedDevice) -> Result<Self, LinkError> {
        let info = lock(&dev)
            .info()
            .ok_or_else(|| LinkError::NotFound { what: "virtual device (detached)".into() })?;
        Ok(SimUsbLink { dev, info })
    }

    fn call<T>(
        &mut self,
        op: String,
        timeout: Duration,
        f: impl FnOnce(&mut dyn UsbDevice) -> Result<T, DeviceError>,
    ) -> Result<T, LinkError> {
        let mut g = lock(&self.dev);
        g.tick();
        match g.info() {
            Some(i) if i.address == self.info.address => {}
            _ => return Err(LinkError::Disconnected { op }),
        }
        f(&mut *g).map_err(|e| match e {
            DeviceError::Stall => LinkError::Stall { op },
            DeviceError::NoAnswer => LinkError::Timeout { op, after: timeout },
            DeviceError::Disconnected => LinkError::Disconnected { op },
        })
    }
}

impl UsbLink for SimUsbLink {
    fn info(&self) -> &UsbInfo {
        &self.info
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let op = format!("control OUT request 0x{:02x} index 0x{:04x}", setup.request, setup.index);
        self.call(op, timeout, |d| d.control_out(setup, data))
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let op = format!("control IN request 0x{:02x}", setup.request);
        self.call(op, timeout, |d| d.control_in(setup, len)).map(|mut v| {
            v.truncate(len as usize);
            v
        })
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        self.call(format!("bulk OUT to endpoint 0x{ep:02x}"), timeout, |d| d.bulk_out(ep, data))
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        self.call(format!("bulk IN from endpoint 0x{ep:02x}"), timeout, |d| d.bulk_in(ep, max_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that re-enumerates with a new address after one bulk write.
    struct Flip {
        address: u8,
        present: bool,
    }

    impl UsbDevice for Flip {
        fn info(&self) -> Option<UsbInfo> {
            self.present.then(|| UsbInfo {
                vid: 1,
                pid: 2,
                address: self.address,
                port_path: "9-1".into(),
                ..Default::default()
            })
        }
        fn control_out(&mut self, _: ControlSetup, _: &[u8]) -> Result<(), DeviceError> {
            Err(DeviceError::Stall)
        }
        fn control_in(&mut self, _: ControlSetup, _: u16) -> Result<Vec<u8>, DeviceError> {
            Ok(vec![1, 2, 3, 4])
        }
        fn bulk_out(&mut self, _: u8, _: &[u8]) -> Result<(), DeviceError> {
            self.address += 1;
            Ok(())
        }
        fn bulk_in(&mut self, _: u8, _: usize) -> Result<Vec<u8>, DeviceError> {
            Err(DeviceError::NoAnswer)
        }
    }

    #[test]
    fn links_see_stalls_timeouts_and_reenumeration() {
        let bus = SimUsbBus::new();
        bus.attach(Flip { address: 5, present: true });
        let infos = bus.devices().unwrap();
        assert_eq!(infos.len(), 1);
        let mut link = bus.open(&infos[0]).unwrap();
        let t = Duration::from_millis(10);
        assert!(matches!(
            link.control_out(ControlSetup::vendor_out(1, 0, 0), &[], t),
            Err(LinkError::Stall { .. })
        ));
        assert_eq!(link.control_in(ControlSetup::vendor_in(0, 0, 0), 2, t).unwrap(), vec![1, 2]);
        assert!(matches!(link.bulk_in(0x81, 64, t), Err(LinkError::Timeout { .. })));
        link.bulk_out(1, b"x", t).unwrap();
        // The device now has a new address: the old link is dead, the bus shows the new one.
        assert!(matches!(link.bulk_out(1, b"x", t), Err(LinkError::Disconnected { .. })));
        let again = bus.devices().unwrap();
        assert_eq!(again[0].address, 6);
        assert_eq!(again[0].port_path, "9-1");
    }
}
