//! The USB link trait and the facts a USB device reports about itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::LinkError;

/// The SETUP packet of a control transfer, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlSetup {
    /// bmRequestType (direction, type and recipient bits).
    pub request_type: u8,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex.
    pub index: u16,
}

impl ControlSetup {
    /// A vendor request to the device, host to device (bmRequestType 0x40).
    pub fn vendor_out(request: u8, value: u16, index: u16) -> Self {
        ControlSetup { request_type: 0x40, request, value, index }
    }
    /// A vendor request to the device, device to host (bmRequestType 0xC0).
    pub fn vendor_in(request: u8, value: u16, index: u16) -> Self {
        ControlSetup { request_type: 0xC0, request, value, index }
    }
    /// True when the data stage goes device to host.
    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }
}

/// Transfer type of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    Control,
    Isochronous,
    Bulk,
    Interrupt,
}

/// One endpoint of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// Endpoint address, bit 7 set for IN.
    pub address: u8,
    pub kind: EndpointKind,
    pub max_packet_size: u16,
}

/// One interface (first alternate setting) of the active configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub number: u8,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub endpoints: Vec<EndpointInfo>,
}

/// What a USB device says about itself, and where it is plugged in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsbInfo {
    pub vid: u16,
    pub pid: u16,
    /// bcdUSB of the device descriptor (e.g. 0x0200). Rockchip tools read
    /// its low bit as "loader mode", which Rockchip's own usbplug breaks
    /// (shared/protocols/rockchip.md §5).
    pub bcd_usb: u16,
    /// bcdDevice of the device descriptor.
    pub bcd_device: u16,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
    /// Bus number.
    pub bus: u8,
    /// Device address on the bus (changes on every re-enumeration).
    pub address: u8,
    /// Physical location written as Linux sysfs does: `bus-port.port…`,
    /// e.g. `1-3.2`. Stable across re-enumeration on the same port.
    pub port_path: String,
    /// Link speed, when known ("high", "full", "super").
    pub speed: Option<String>,
    pub interfaces: Vec<InterfaceInfo>,
}

impl UsbInfo {
    /// `vid:pid` in lower-case hex.
    pub fn id(&self) -> String {
        format!("{:04x}:{:04x}", self.vid, self.pid)
    }

    /// The first interface that has both a bulk IN and a bulk OUT endpoint and
    /// matches the given class triple (`None` matches anything).
    pub fn find_bulk_interface(&self, class: Option<(u8, u8, u8)>) -> Option<(&InterfaceInfo, u8, u8)> {
        self.interfaces.iter().find_map(|intf| {
            if let Some((c, s, p)) = class
                && (intf.class, intf.subclass, intf.protocol) != (c, s, p)
            {
                return None;
            }
            let ep_in =
                intf.endpoints.iter().find(|e| e.kind == EndpointKind::Bulk && e.address & 0x80 != 0)?;
            let ep_out =
                intf.endpoints.iter().find(|e| e.kind == EndpointKind::Bulk && e.address & 0x80 == 0)?;
            Some((intf, ep_in.address, ep_out.address))
        })
    }
}

/// A USB device opened for transfers.
///
/// Implementations: the nusb backend (real devices), racklet-sim's
/// in-process adapter (virtual ROMs), and the transcript recorder (which
/// wraps another link). Every call has a timeout; a timeout is
/// [`LinkError::Timeout`], a STALL is [`LinkError::Stall`].
pub trait UsbLink: Send {
    /// Facts about the device this link is open on.
    fn info(&self) -> &UsbInfo;

    /// A control transfer whose data stage (possibly empty) goes to the device.
    fn control_out(&mut self, setup: ControlSetup, data: &[u8], timeout: Duration) -> Result<(), LinkError>;

    /// A control transfer that reads up to `len` bytes from the device.
    fn control_in(&mut self, setup: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError>;

    /// Writes `data` to bulk OUT endpoint `ep` (address without bit 7).
    /// Long writes may be split into several transfers kept in flight.
    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError>;

    /// Reads one transfer of at most `max_len` bytes from bulk IN endpoint
    /// `ep` (address with bit 7 set).
    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError>;

    /// Queues `data` for bulk OUT endpoint `ep` (address without bit 7):
    /// the call may return while up to [`OUT_IN_FLIGHT`] bytes of it (and
    /// of data queued before) are still on their way, so the bus does not
    /// idle while the caller prepares the next piece (a rockusb CBW and its
    /// data phase, a fastboot data phase chunk after chunk). Every other
    /// transfer on the link, and [`UsbLink::flush_out`], first waits for
    /// the queued data; a queued transfer that failed fails that call (or
    /// a later `queue_bulk_out`), with its own error. `timeout` bounds each
    /// queued transfer as it bounds [`UsbLink::bulk_out`]. The default is
    /// [`UsbLink::bulk_out`], which waits.
    fn queue_bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        self.bulk_out(ep, data, timeout)
    }

    /// Waits until the device took every byte queued by
    /// [`UsbLink::queue_bulk_out`].
    fn flush_out(&mut self) -> Result<(), LinkError> {
        Ok(())
    }
}

/// The most bulk OUT bytes a link keeps in flight for
/// [`UsbLink::queue_bulk_out`]: the nusb backend's four 64 KiB transfers,
/// and the virtual bus model's allowance for the same.
pub const OUT_IN_FLIGHT: usize = 256 * 1024;

impl<T: UsbLink + ?Sized> UsbLink for Box<T> {
    fn info(&self) -> &UsbInfo {
        (**self).info()
    }
    fn control_out(&mut self, setup: ControlSetup, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        (**self).control_out(setup, data, timeout)
    }
    fn control_in(&mut self, setup: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        (**self).control_in(setup, len, timeout)
    }
    fn bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        (**self).bulk_out(ep, data, timeout)
    }
    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        (**self).bulk_in(ep, max_len, timeout)
    }
    fn queue_bulk_out(&mut self, ep: u8, data: &[u8], timeout: Duration) -> Result<(), LinkError> {
        (**self).queue_bulk_out(ep, data, timeout)
    }
    fn flush_out(&mut self) -> Result<(), LinkError> {
        (**self).flush_out()
    }
}

/// Where USB devices are found and opened: the real bus (nusb) or a
/// simulated one. Protocol flows that follow a board across
/// re-enumeration use it to find the board again by port path.
pub trait UsbBus: Send + Sync {
    /// The devices present now.
    fn devices(&self) -> Result<Vec<UsbInfo>, LinkError>;
    /// Opens a device found by [`UsbBus::devices`].
    fn open(&self, info: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError>;

    /// Starts watching for devices coming and going. Waiting code creates
    /// the watcher first, then lists, then waits on it, so no arrival is
    /// missed. The default polls.
    fn watch(&self) -> Box<dyn Watcher> {
        Box::new(PollWatcher)
    }
}

/// Blocks until the set of devices may have changed.
pub trait Watcher: Send {
    /// Returns after a change was seen or `timeout` passed.
    fn wait(&mut self, timeout: Duration);
}

/// A watcher that only sleeps: the caller lists again after each wait.
#[derive(Debug, Default, Clone, Copy)]
pub struct PollWatcher;

impl Watcher for PollWatcher {
    fn wait(&mut self, timeout: Duration) {
        // Polling: see discover::POLL_INTERVAL for why this interval.
        std::thread::sleep(timeout.min(crate::discover::POLL_INTERVAL));
    }
}
