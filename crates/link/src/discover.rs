//! Waiting for devices and following them across re-enumeration.

use std::time::{Duration, Instant};

use crate::{LinkError, SerialBus, SerialInfo, UsbBus, UsbInfo};

/// How often to look again while waiting. USB enumeration takes tens of
/// milliseconds; polling at this rate costs nothing and opens a ROM's short
/// download window (Sophgo: about a second) well within it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Longest wait between two listings while waiting for a USB device.
pub const HOTPLUG_RESCAN: Duration = Duration::from_millis(250);

/// Waits until at least one USB device satisfies `pred`, and returns all that
/// do. `cancel` is checked between polls.
pub fn wait_for_usb(
    bus: &dyn UsbBus,
    pred: &dyn Fn(&UsbInfo) -> bool,
    timeout: Duration,
    cancel: &dyn Fn() -> bool,
) -> Result<Vec<UsbInfo>, LinkError> {
    let start = Instant::now();
    let mut watcher = bus.watch();
    loop {
        let found: Vec<UsbInfo> = bus.devices()?.into_iter().filter(|d| pred(d)).collect();
        if !found.is_empty() {
            return Ok(found);
        }
        if cancel() {
            return Err(LinkError::Interrupted);
        }
        if start.elapsed() >= timeout {
            return Err(LinkError::Timeout { op: "waiting for the USB device".into(), after: timeout });
        }
        // Hotplug where the bus has it; a short poll otherwise. Never longer
        // than HOTPLUG_RESCAN, so a device whose event came before it was
        // ready to open (udev still setting permissions) is seen anyway.
        watcher.wait(HOTPLUG_RESCAN.min(timeout.saturating_sub(start.elapsed())));
    }
}

/// Waits until at least one serial port satisfies `pred`.
pub fn wait_for_serial(
    bus: &dyn SerialBus,
    pred: &dyn Fn(&SerialInfo) -> bool,
    timeout: Duration,
    cancel: &dyn Fn() -> bool,
) -> Result<Vec<SerialInfo>, LinkError> {
    let start = Instant::now();
    loop {
        let found: Vec<SerialInfo> = bus.ports()?.into_iter().filter(|d| pred(d)).collect();
        if !found.is_empty() {
            return Ok(found);
        }
        if cancel() {
            return Err(LinkError::Interrupted);
        }
        if start.elapsed() >= timeout {
            return Err(LinkError::Timeout { op: "waiting for the serial port".into(), after: timeout });
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout.saturating_sub(start.elapsed())));
    }
}

/// Follows a board across re-enumeration: waits until a device that
/// satisfies `pred` shows up at USB port path `port_path`, ignoring every
/// other port (so a different board plugged in meanwhile is never taken).
/// When `previous_address` is given, the same bus address is skipped, so the
/// old enumeration that has not gone away yet is not mistaken for the new one.
pub fn follow_usb(
    bus: &dyn UsbBus,
    port_path: &str,
    pred: &dyn Fn(&UsbInfo) -> bool,
    previous_address: Option<u8>,
    timeout: Duration,
    cancel: &dyn Fn() -> bool,
) -> Result<UsbInfo, LinkError> {
    let found = wait_for_usb(
        bus,
        &|d| d.port_path == port_path && pred(d) && previous_address != Some(d.address),
        timeout,
        cancel,
    )
    .map_err(|e| match e {
        LinkError::Timeout { after, .. } => LinkError::Timeout {
            op: format!("waiting for the board to come back at USB port {port_path}"),
            after,
        },
        e => e,
    })?;
    Ok(found.into_iter().next().expect("wait_for_usb returns a non-empty list"))
}
