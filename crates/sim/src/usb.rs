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
    model: Option<LinkModel>,
}

/// A timing model of a USB link, so simulated runs take the time a real bus
/// would (for benchmarks: how close does the client come to the ceiling?).
///
/// USB 2.0 chapter 5 transaction limits (shared/prior-art.md §7): high
/// speed carries at most 13 bulk packets of 512 bytes per 125 µs
/// microframe (6,656 B) and, for a control transfer's data stage, about 63
/// packets of 64 bytes (4,032 B) after one microframe for SETUP; full speed
/// carries 19 bulk packets of 64 bytes per 1 ms frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkModel {
    /// Length of one (micro)frame.
    pub frame: Duration,
    /// Bulk bytes per frame.
    pub bulk_per_frame: usize,
    /// Control data-stage bytes per frame.
    pub control_per_frame: usize,
}

impl LinkModel {
    /// USB 2.0 high speed.
    pub const HIGH_SPEED: LinkModel =
        LinkModel { frame: Duration::from_micros(125), bulk_per_frame: 6656, control_per_frame: 4032 };
    /// USB 2.0 full speed.
    pub const FULL_SPEED: LinkModel =
        LinkModel { frame: Duration::from_millis(1), bulk_per_frame: 1216, control_per_frame: 832 };

    /// Bus time of one bulk transfer: whole frames, at least one.
    pub fn bulk_time(&self, len: usize) -> Duration {
        self.frame * len.div_ceil(self.bulk_per_frame).max(1) as u32
    }

    /// Bus time of one control transfer: the SETUP frame plus its data stage.
    pub fn control_time(&self, len: usize) -> Duration {
        self.frame * (1 + len.div_ceil(self.control_per_frame)) as u32
    }
}

/// A USB 2.0 link speed a virtual board's link runs at (`--sim-speed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusSpeed {
    High,
    Full,
}

impl BusSpeed {
    /// The timing model of the speed.
    pub fn model(self) -> LinkModel {
        match self {
            BusSpeed::High => LinkModel::HIGH_SPEED,
            BusSpeed::Full => LinkModel::FULL_SPEED,
        }
    }
}

/// The last stretch of a modelled wait that is spun, not slept.
const SPIN: Duration = Duration::from_micros(80);

/// The modelled clock of one link: transfers are scheduled back to back on
/// a virtual timeline and the caller sleeps until each one's end, so sleep
/// overshoot does not add up over many transfers.
struct ModelClock {
    model: LinkModel,
    start: std::time::Instant,
    /// Modelled time at which the bus is free again.
    busy_until: Duration,
}

impl ModelClock {
    /// Waits for the end of a transfer the host issued at `asked` (time
    /// since `start`). The virtual device's own processing happened in
    /// between and overlaps the bus time, as a real device's does.
    fn wait(&mut self, asked: Duration, cost: Duration) {
        // The bus cannot start before it is free, nor before the host asks.
        self.busy_until = self.busy_until.max(asked) + cost;
        // Modelled bus time: this is the point of the model. Sleep most of
        // it, then poll the rest: a sleep overshoots by tens of
        // microseconds, which would add up over thousands of short
        // synchronous transfers and be charged to the client.
        let left = self.busy_until.saturating_sub(self.start.elapsed());
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        }
        while self.start.elapsed() < self.busy_until {
            // Yield rather than spin hard, so many boards simulated in
            // parallel on few cores still get their turns.
            std::thread::yield_now();
        }
    }

    /// A bulk OUT transfer queued at `asked` (`UsbLink::queue_bulk_out`):
    /// scheduled like any other, but the caller only waits until no more
    /// than [`racklet_link::usb::OUT_IN_FLIGHT`] bytes' worth of bus time
    /// is left, as a host controller keeps that much in flight. The next
    /// transfer starts after it on the timeline, so nothing overlaps.
    fn queue(&mut self, asked: Duration, cost: Duration) {
        self.busy_until = self.busy_until.max(asked) + cost;
        let window = self.model.bulk_time(racklet_link::usb::OUT_IN_FLIGHT);
        let until = self.busy_until.saturating_sub(window);
        let left = until.saturating_sub(self.start.elapsed());
        if !left.is_zero() {
            std::thread::sleep(left);
        }
    }

    /// Waits for the end of everything scheduled.
    fn drain(&mut self) {
        let now = self.start.elapsed();
        self.wait(now, Duration::ZERO);
    }
}

impl SimUsbBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty bus whose links take the time `model` says.
    pub fn with_model(model: LinkModel) -> Self {
        SimUsbBus { model: Some(model), ..Self::default() }
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

    /// Every device plugged in, in order: what the USB gadget serves after
    /// attaching a model from the registry to a bus of its own.
    pub fn attached(&self) -> Vec<SharedDevice> {
        self.devices.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
                let clock = self.model.map(|model| ModelClock {
                    model,
                    start: std::time::Instant::now(),
                    busy_until: Duration::ZERO,
                });
                return Ok(Box::new(SimUsbLink { dev: d, info, clock }));
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
    clock: Option<ModelClock>,
}

impl SimUsbLink {
    /// Opens a device directly, without a bus.
    pub fn open(dev: SharedDevice) -> Result<Self, LinkError> {
        let info = lock(&dev).info().ok_or_else(|| LinkError::not_found("virtual device (detached)"))?;
        Ok(SimUsbLink { dev, info, clock: None })
    }

    /// When the host issued the current transfer, on the model's clock.
    fn asked(&self) -> Duration {
        self.clock.as_ref().map(|c| c.start.elapsed()).unwrap_or_default()
    }

    /// Spends the modelled bus time of a transfer issued at `asked`, when
    /// the bus has a model.
    fn spend(&mut self, asked: Duration, cost: impl Fn(&LinkModel) -> Duration) {
        if let Some(c) = &mut self.clock {
            let d = cost(&c.model);
            c.wait(asked, d);
        }
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
        let asked = self.asked();
        let op = format!("control OUT request 0x{:02x} index 0x{:04x}", setup.request, setup.index);
        let r = self.call(op, timeout, |d| d.control_out(setup, data));
        self.spend(asked, |m| m.control_time(data.len()));
        r
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let asked = self.asked();
        let op = format!("control IN request 0x{:02x}", setup.request);
        let r = self.call(op, timeout, |d| d.control_in(setup, len)).map(|mut v| {
            v.truncate(len as usize);
            v
        });
        self.spend(asked, |m| m.control_time(r.as_ref().map(Vec::len).unwrap_or(0)));
        r
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let asked = self.asked();
        let r = self.call(format!("bulk OUT to endpoint 0x{ep:02x}"), timeout, |d| d.bulk_out(ep, data));
        self.spend(asked, |m| m.bulk_time(data.len()));
        r
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let asked = self.asked();
        let r = self.call(format!("bulk IN from endpoint 0x{ep:02x}"), timeout, |d| d.bulk_in(ep, max_len));
        self.spend(asked, |m| m.bulk_time(r.as_ref().map(Vec::len).unwrap_or(0)));
        r
    }

    /// The device takes the data at once (its processing overlaps the bus
    /// time, as for every transfer here); the bus time is scheduled after
    /// whatever is queued, and the caller returns while up to
    /// [`racklet_link::usb::OUT_IN_FLIGHT`] bytes of it are left.
    fn queue_bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let asked = self.asked();
        let r = self.call(format!("bulk OUT to endpoint 0x{ep:02x}"), timeout, |d| d.bulk_out(ep, data));
        if let Some(c) = &mut self.clock {
            let cost = c.model.bulk_time(data.len());
            c.queue(asked, cost);
        }
        r
    }

    fn flush_out(&mut self) -> Result<(), LinkError> {
        if let Some(c) = &mut self.clock {
            c.drain();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_model_frames() {
        let hs = LinkModel::HIGH_SPEED;
        // 13 × 512 B per 125 µs microframe.
        assert_eq!(hs.bulk_time(6656), Duration::from_micros(125));
        assert_eq!(hs.bulk_time(6657), Duration::from_micros(250));
        assert_eq!(hs.bulk_time(0), Duration::from_micros(125));
        // A 4096-byte control OUT: SETUP frame + two data frames (4032 + 64).
        assert_eq!(hs.control_time(4096), Duration::from_micros(375));
        // 1 MiB of bulk at the ceiling: 53,248,000 B/s.
        let t = hs.bulk_time(1 << 20).as_secs_f64();
        assert!((((1 << 20) as f64 / t) - 53_248_000.0).abs() / 53_248_000.0 < 0.01);
    }

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

    /// Keeps what arrives, refuses bulk OUT after `refuse_after` transfers.
    struct Sink {
        got: Vec<Vec<u8>>,
        refuse_after: usize,
    }

    impl UsbDevice for Sink {
        fn info(&self) -> Option<UsbInfo> {
            Some(UsbInfo { vid: 1, pid: 3, address: 2, port_path: "9-2".into(), ..Default::default() })
        }
        fn control_out(&mut self, _: ControlSetup, _: &[u8]) -> Result<(), DeviceError> {
            Err(DeviceError::Stall)
        }
        fn control_in(&mut self, _: ControlSetup, _: u16) -> Result<Vec<u8>, DeviceError> {
            Err(DeviceError::Stall)
        }
        fn bulk_out(&mut self, _: u8, data: &[u8]) -> Result<(), DeviceError> {
            if self.got.len() == self.refuse_after {
                return Err(DeviceError::Stall);
            }
            self.got.push(data.to_vec());
            Ok(())
        }
        fn bulk_in(&mut self, _: u8, _: usize) -> Result<Vec<u8>, DeviceError> {
            Ok(b"OKAY".to_vec())
        }
    }

    /// Queued bulk OUT transfers reach the device in order, a refused one
    /// fails, and on the modelled bus none overlaps another: their bus
    /// times add up on the timeline before the IN transfer after them.
    #[test]
    fn queued_bulk_out_keeps_order_and_bus_time() {
        let dev = Arc::new(Mutex::new(Sink { got: Vec::new(), refuse_after: 3 }));
        let shared: SharedDevice = dev.clone();
        let info = lock(&shared).info().unwrap();
        let model = LinkModel::HIGH_SPEED;
        let clock = ModelClock { model, start: std::time::Instant::now(), busy_until: Duration::ZERO };
        let mut link = SimUsbLink { dev: shared, info, clock: Some(clock) };
        let t = Duration::from_secs(1);
        let piece = vec![7u8; 100_000];
        for i in 0..3u8 {
            let mut p = piece.clone();
            p[0] = i;
            link.queue_bulk_out(1, &p, t).unwrap();
        }
        assert_eq!(link.bulk_in(0x81, 512, t).unwrap(), b"OKAY");
        let busy = link.clock.as_ref().unwrap().busy_until;
        assert!(busy >= model.bulk_time(100_000) * 3 + model.bulk_time(4), "{busy:?}");
        link.flush_out().unwrap();
        assert!(matches!(link.queue_bulk_out(1, &piece, t), Err(LinkError::Stall { .. })));
        let got = &dev.lock().unwrap().got;
        assert_eq!(got.iter().map(|p| p[0]).collect::<Vec<_>>(), [0, 1, 2]);
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
