//! Real USB devices through nusb (blocking, via `MaybeFuture::wait`).

use std::collections::HashMap;
use std::time::Duration;

use nusb::transfer::{Buffer, Bulk, ControlIn, ControlOut, ControlType, In, Out, Recipient, TransferError};
use nusb::{Endpoint, Interface, MaybeFuture};

use crate::error::PERMISSION_HINT;
use crate::usb::EndpointKind;
use crate::{ControlSetup, EndpointInfo, InterfaceInfo, LinkError, UsbBus, UsbInfo, UsbLink};

/// Size of one bulk OUT transfer; several are kept in flight.
const BULK_CHUNK: usize = 64 * 1024;
/// Bulk OUT transfers kept in flight at once, so the host controller never
/// waits for user space between transfers (within one `bulk_out`, and
/// across `queue_bulk_out` calls: [`crate::usb::OUT_IN_FLIGHT`] bytes).
const BULK_IN_FLIGHT: usize = crate::usb::OUT_IN_FLIGHT / BULK_CHUNK;

/// The system's USB bus.
#[derive(Debug, Default, Clone, Copy)]
pub struct NusbBus;

/// The last listing, for an `open` that follows it closely: a find then an
/// open need not read sysfs twice (a listing reads every device's
/// descriptors: about 70 ms in the USB rig's emulated guest).
static LAST_LISTING: std::sync::Mutex<Option<(std::time::Instant, Vec<nusb::DeviceInfo>)>> =
    std::sync::Mutex::new(None);
/// How long a listing stands in for a fresh one in `open`.
const LISTING_FRESH: Duration = Duration::from_millis(500);

fn keep_listing(list: &[nusb::DeviceInfo]) {
    *LAST_LISTING.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((std::time::Instant::now(), list.to_vec()));
}

/// The device at `bus`/`address` in a listing made within [`LISTING_FRESH`].
fn listed_lately(bus: u8, address: u8) -> Option<nusb::DeviceInfo> {
    let last = LAST_LISTING.lock().unwrap_or_else(|e| e.into_inner());
    let (at, list) = last.as_ref()?;
    (at.elapsed() < LISTING_FRESH)
        .then(|| list.iter().find(|d| bus_number(d) == bus && d.device_address() == address).cloned())
        .flatten()
}

fn speed_name(s: Option<nusb::Speed>) -> Option<String> {
    s.map(|s| {
        match s {
            nusb::Speed::Low => "low",
            nusb::Speed::Full => "full",
            nusb::Speed::High => "high",
            nusb::Speed::Super => "super",
            nusb::Speed::SuperPlus => "super+",
            _ => "unknown",
        }
        .to_string()
    })
}

fn bus_number(d: &nusb::DeviceInfo) -> u8 {
    #[cfg(target_os = "linux")]
    {
        d.busnum()
    }
    #[cfg(not(target_os = "linux"))]
    {
        d.bus_id().trim_start_matches('0').parse().unwrap_or(0)
    }
}

/// `bus-port.port…` as Linux sysfs writes it.
pub fn port_path(bus: u8, chain: &[u8]) -> String {
    let ports: Vec<String> = chain.iter().map(|p| p.to_string()).collect();
    format!("{bus}-{}", ports.join("."))
}

fn info_from(d: &nusb::DeviceInfo) -> UsbInfo {
    let bus = bus_number(d);
    UsbInfo {
        vid: d.vendor_id(),
        pid: d.product_id(),
        bcd_usb: d.usb_version(),
        bcd_device: d.device_version(),
        manufacturer: d.manufacturer_string().map(str::to_string),
        product: d.product_string().map(str::to_string),
        serial: d.serial_number().map(str::to_string),
        bus,
        address: d.device_address(),
        port_path: port_path(bus, d.port_chain()),
        speed: speed_name(d.speed()),
        interfaces: d
            .interfaces()
            .map(|i| InterfaceInfo {
                number: i.interface_number(),
                class: i.class(),
                subclass: i.subclass(),
                protocol: i.protocol(),
                endpoints: Vec::new(),
            })
            .collect(),
    }
}

fn map_err(op: &str, device: &str, e: nusb::Error) -> LinkError {
    match e.kind() {
        nusb::ErrorKind::PermissionDenied => {
            LinkError::PermissionDenied { device: device.to_string(), hint: PERMISSION_HINT.to_string() }
        }
        nusb::ErrorKind::Disconnected => LinkError::Disconnected { op: op.to_string() },
        nusb::ErrorKind::Busy => LinkError::Busy { device: device.to_string() },
        nusb::ErrorKind::NotFound => LinkError::not_found(device.to_string()),
        _ => LinkError::io(op, e),
    }
}

fn map_transfer(op: &str, timeout: Duration, e: TransferError) -> LinkError {
    match e {
        TransferError::Cancelled => LinkError::Timeout { op: op.to_string(), after: timeout },
        TransferError::Stall => LinkError::Stall { op: op.to_string() },
        TransferError::Disconnected => LinkError::Disconnected { op: op.to_string() },
        e => LinkError::io(op, e),
    }
}

/// How long a failed transfer waits to learn whether its device was
/// unplugged (see [`map_transfer_on`]).
const UNPLUG_SETTLE: Duration = Duration::from_millis(500);

/// [`map_transfer`] for a transfer on the device at `bus`/`address`. A
/// device unplugged in the middle of a transfer often fails it as a fault
/// (EPROTO: the host controller sees the broken transaction before the hub
/// reports the port change; the USB rig's dummy_hcd does the same). When
/// the device is gone from the bus shortly after, that failure is a
/// disconnect, not an I/O error.
fn map_transfer_on(bus: u8, address: u8, op: &str, timeout: Duration, e: TransferError) -> LinkError {
    let fault = matches!(e, TransferError::Fault | TransferError::Unknown(_));
    let err = map_transfer(op, timeout, e);
    if !fault {
        return err;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < UNPLUG_SETTLE {
        let present = nusb::list_devices()
            .wait()
            .map(|mut l| l.any(|d| bus_number(&d) == bus && d.device_address() == address))
            .unwrap_or(true);
        if !present {
            return LinkError::Disconnected { op: op.to_string() };
        }
        // The hub driver notices the port change within milliseconds; look again.
        std::thread::sleep(Duration::from_millis(10));
    }
    err
}

/// Wakes the waiting thread when the hotplug stream has news.
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits on nusb's hotplug stream (udev netlink on Linux) without an async
/// runtime: poll the stream with a waker that unparks this thread.
struct HotplugWatcher(nusb::hotplug::HotplugWatch);

impl crate::usb::Watcher for HotplugWatcher {
    fn wait(&mut self, timeout: Duration) {
        use futures_core::Stream;
        let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match std::pin::Pin::new(&mut self.0).poll_next(&mut cx) {
                // Any event: let the caller list again.
                std::task::Poll::Ready(_) => return,
                std::task::Poll::Pending => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    std::thread::park_timeout(left);
                }
            }
        }
    }
}

/// Linux lists USB devices from sysfs; without it (a container, a CI
/// sandbox) nusb fails with an I/O error, but for the user there is simply
/// no device on this machine.
fn no_usb_bus() -> Result<(), LinkError> {
    #[cfg(target_os = "linux")]
    usb_sysfs_at(std::path::Path::new(USB_SYSFS))?;
    Ok(())
}

/// `Err(NoUsbBus)` when the sysfs directory that lists USB devices is absent.
#[cfg(target_os = "linux")]
fn usb_sysfs_at(dir: &std::path::Path) -> Result<(), LinkError> {
    if dir.is_dir() { Ok(()) } else { Err(LinkError::NoUsbBus { missing: dir.display().to_string() }) }
}

/// Where Linux lists USB devices.
#[cfg(target_os = "linux")]
const USB_SYSFS: &str = "/sys/bus/usb/devices";

impl UsbBus for NusbBus {
    fn watch(&self) -> Box<dyn crate::usb::Watcher> {
        match nusb::watch_devices() {
            Ok(w) => Box::new(HotplugWatcher(w)),
            // No hotplug support (no udev netlink in a container, say): poll.
            Err(_) => Box::new(crate::usb::PollWatcher),
        }
    }

    fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
        no_usb_bus()?;
        let list: Vec<nusb::DeviceInfo> = nusb::list_devices()
            .wait()
            .map_err(|e| map_err("listing USB devices", "the USB bus", e))?
            .collect();
        keep_listing(&list);
        Ok(list.iter().map(info_from).collect())
    }

    fn open(&self, want: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
        let name = format!("USB device {} at port {}", want.id(), want.port_path);
        no_usb_bus()?;
        // The device as the last listing saw it, when that was a moment
        // ago; if it does not open so, as a fresh listing finds it (and
        // fails as that says).
        let lately = listed_lately(want.bus, want.address)
            .and_then(|d| d.open().wait().ok().map(|device| (d, device)));
        let (dev_info, device) = match lately {
            Some(found) => found,
            None => {
                let list = nusb::list_devices()
                    .wait()
                    .map_err(|e| map_err("listing USB devices", "the USB bus", e))?;
                let dev_info = list
                    .into_iter()
                    .find(|d| bus_number(d) == want.bus && d.device_address() == want.address)
                    .ok_or_else(|| LinkError::Disconnected { op: format!("opening {name}") })?;
                let device = dev_info.open().wait().map_err(|e| map_err("opening", &name, e))?;
                (dev_info, device)
            }
        };
        let mut info = info_from(&dev_info);
        if let Ok(cfg) = device.active_configuration() {
            info.interfaces = cfg
                .interfaces()
                .map(|i| {
                    let alt = i.first_alt_setting();
                    InterfaceInfo {
                        number: alt.interface_number(),
                        class: alt.class(),
                        subclass: alt.subclass(),
                        protocol: alt.protocol(),
                        endpoints: alt
                            .endpoints()
                            .map(|e| EndpointInfo {
                                address: e.address(),
                                kind: match e.transfer_type() {
                                    nusb::descriptors::TransferType::Control => EndpointKind::Control,
                                    nusb::descriptors::TransferType::Isochronous => EndpointKind::Isochronous,
                                    nusb::descriptors::TransferType::Bulk => EndpointKind::Bulk,
                                    nusb::descriptors::TransferType::Interrupt => EndpointKind::Interrupt,
                                },
                                max_packet_size: e.max_packet_size() as u16,
                            })
                            .collect(),
                    }
                })
                .collect();
        }
        Ok(Box::new(NusbLink {
            device,
            info,
            name,
            interfaces: HashMap::new(),
            outs: HashMap::new(),
            ins: HashMap::new(),
            queued: None,
        }))
    }
}

/// An open nusb device. Interfaces are claimed on first use of one of
/// their endpoints.
pub struct NusbLink {
    device: nusb::Device,
    info: UsbInfo,
    name: String,
    interfaces: HashMap<u8, Interface>,
    outs: HashMap<u8, Endpoint<Bulk, Out>>,
    ins: HashMap<u8, Endpoint<Bulk, In>>,
    /// The OUT endpoint with transfers still in flight from
    /// `queue_bulk_out`, and the timeout each of them was given.
    queued: Option<(u8, Duration)>,
}

/// Waits for the oldest transfer in flight on `endpoint`; on a timeout or
/// a failure the rest are cancelled (and reaped) and the error returned.
fn reap_one(
    endpoint: &mut Endpoint<Bulk, Out>,
    (bus, address): (u8, u8),
    ep: u8,
    timeout: Duration,
) -> Result<(), LinkError> {
    let op = || format!("bulk OUT to endpoint 0x{ep:02x}");
    let cancel = |endpoint: &mut Endpoint<Bulk, Out>| {
        endpoint.cancel_all();
        while endpoint.pending() > 0 {
            let _ = endpoint.wait_next_complete(Duration::from_millis(100));
        }
    };
    let Some(done) = endpoint.wait_next_complete(timeout) else {
        cancel(endpoint);
        return Err(LinkError::Timeout { op: op(), after: timeout });
    };
    if let Err(e) = done.status {
        cancel(endpoint);
        return Err(map_transfer_on(bus, address, &op(), timeout, e));
    }
    Ok(())
}

impl NusbLink {
    fn interface_for(&mut self, ep: u8) -> Result<Interface, LinkError> {
        let number = self
            .info
            .interfaces
            .iter()
            .find(|i| i.endpoints.iter().any(|e| e.address == ep))
            .map(|i| i.number)
            .ok_or_else(|| LinkError::not_found(format!("endpoint 0x{ep:02x} on {}", self.name)))?;
        if let Some(i) = self.interfaces.get(&number) {
            return Ok(i.clone());
        }
        let intf = self
            .device
            .detach_and_claim_interface(number)
            .wait()
            .map_err(|e| map_err(&format!("claiming interface {number}"), &self.name, e))?;
        self.interfaces.insert(number, intf.clone());
        Ok(intf)
    }

    /// Submits `data` to OUT endpoint `ep` in [`BULK_CHUNK`] transfers,
    /// at most [`BULK_IN_FLIGHT`] in flight (waiting for the oldest when
    /// that many are), and returns with the last ones still in flight.
    fn submit_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        let op = format!("bulk OUT to endpoint 0x{ep:02x}");
        if !self.outs.contains_key(&ep) {
            let intf = self.interface_for(ep)?;
            let e = intf.endpoint::<Bulk, Out>(ep).map_err(|e| map_err(&op, &self.name, e))?;
            self.outs.insert(ep, e);
        }
        let at = (self.info.bus, self.info.address);
        let endpoint = self.outs.get_mut(&ep).expect("inserted above");
        if data.is_empty() {
            // A zero-length packet.
            if endpoint.pending() >= BULK_IN_FLIGHT {
                reap_one(endpoint, at, ep, timeout)?;
            }
            endpoint.submit(Buffer::new(0));
        }
        for c in data.chunks(BULK_CHUNK) {
            if endpoint.pending() >= BULK_IN_FLIGHT {
                reap_one(endpoint, at, ep, timeout)?;
            }
            endpoint.submit(Buffer::from(c));
        }
        Ok(())
    }

    fn split(setup: ControlSetup) -> (ControlType, Recipient) {
        let ct = match (setup.request_type >> 5) & 3 {
            0 => ControlType::Standard,
            1 => ControlType::Class,
            _ => ControlType::Vendor,
        };
        let rc = match setup.request_type & 0x1f {
            0 => Recipient::Device,
            1 => Recipient::Interface,
            2 => Recipient::Endpoint,
            _ => Recipient::Other,
        };
        (ct, rc)
    }
}

impl UsbLink for NusbLink {
    fn info(&self) -> &UsbInfo {
        &self.info
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        self.flush_out()?;
        let (control_type, recipient) = Self::split(setup);
        let op = format!(
            "control OUT request 0x{:02x} index 0x{:04x} ({} bytes)",
            setup.request,
            setup.index,
            data.len()
        );
        self.device
            .control_out(
                ControlOut {
                    control_type,
                    recipient,
                    request: setup.request,
                    value: setup.value,
                    index: setup.index,
                    data,
                },
                timeout,
            )
            .wait()
            .map_err(|e| map_transfer_on(self.info.bus, self.info.address, &op, timeout, e))
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        self.flush_out()?;
        let (control_type, recipient) = Self::split(setup);
        let op = format!("control IN request 0x{:02x}", setup.request);
        self.device
            .control_in(
                ControlIn {
                    control_type,
                    recipient,
                    request: setup.request,
                    value: setup.value,
                    index: setup.index,
                    length: len,
                },
                timeout,
            )
            .wait()
            .map_err(|e| map_transfer_on(self.info.bus, self.info.address, &op, timeout, e))
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        self.flush_out()?;
        let r = self.submit_out(ep, data, timeout);
        self.queued = Some((ep, timeout));
        r.and_then(|()| self.flush_out())
    }

    fn queue_bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        if self.queued.is_some_and(|(e, _)| e != ep) {
            self.flush_out()?;
        }
        // A failure reaped the endpoint's transfers: nothing stays queued.
        let r = self.submit_out(ep, data, timeout);
        self.queued = r.is_ok().then_some((ep, timeout));
        r
    }

    fn flush_out(&mut self) -> Result<(), LinkError> {
        let Some((ep, timeout)) = self.queued.take() else {
            return Ok(());
        };
        let at = (self.info.bus, self.info.address);
        if let Some(endpoint) = self.outs.get_mut(&ep) {
            while endpoint.pending() > 0 {
                reap_one(endpoint, at, ep, timeout)?;
            }
        }
        Ok(())
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        self.flush_out()?;
        let op = format!("bulk IN from endpoint 0x{ep:02x}");
        if !self.ins.contains_key(&ep) {
            let intf = self.interface_for(ep)?;
            let e = intf.endpoint::<Bulk, In>(ep).map_err(|e| map_err(&op, &self.name, e))?;
            self.ins.insert(ep, e);
        }
        let endpoint = self.ins.get_mut(&ep).expect("inserted above");
        // nusb wants IN lengths in whole packets.
        let mps = endpoint.max_packet_size().max(1);
        let len = max_len.max(1).div_ceil(mps) * mps;
        let done = endpoint.transfer_blocking(Buffer::new(len), timeout);
        let (bus, address) = (self.info.bus, self.info.address);
        let buf = done.into_result().map_err(|e| map_transfer_on(bus, address, &op, timeout, e))?;
        Ok(buf.into_vec())
    }
}

impl Drop for NusbLink {
    /// What was queued reaches the device before the link closes.
    fn drop(&mut self) {
        let _ = self.flush_out();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_path_is_sysfs_form() {
        assert_eq!(super::port_path(1, &[3, 2]), "1-3.2");
        assert_eq!(super::port_path(2, &[1]), "2-1");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod sysfs_tests {
    use super::usb_sysfs_at;
    use crate::{Classify, FailureClass, LinkError};

    #[test]
    fn a_missing_usb_sysfs_is_no_device_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        assert!(usb_sysfs_at(dir.path()).is_ok());
        let e = usb_sysfs_at(&dir.path().join("usb/devices")).unwrap_err();
        assert!(matches!(e, LinkError::NoUsbBus { .. }), "{e:?}");
        assert_eq!(e.class(), FailureClass::NotFound);
        assert!(e.to_string().contains("no USB bus is visible"), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains("/dev/bus/usb") && h.contains("--simulate")));
    }
}
