//! Serial ROMs on pseudo-terminals.

use std::sync::{Arc, Mutex};

use racklet_link::serial_backend::SerialPortLink;
use racklet_link::{LinkError, SerialBus, SerialInfo, SerialLink};
use serialport::{SerialPort, TTYPort};

/// serialport's `TTYPort::pair` is not thread-safe (it uses `ptsname`);
/// every pair in this process is created under this lock.
static PAIR_LOCK: Mutex<()> = Mutex::new(());

/// A pseudo-terminal pair: the ROM side (`device`) and the path a client
/// opens (`path`). Baud rates are ignored by ptys.
pub struct PtyPair {
    /// The device (ROM) side: the pty master.
    pub device: TTYPort,
    /// The client side: the pty slave, kept open so the pair lives as long
    /// as the ROM does.
    pub client: TTYPort,
    /// Path of the client side, e.g. `/dev/pts/7`.
    pub path: String,
}

impl PtyPair {
    /// Creates a pair.
    pub fn new() -> Result<Self, LinkError> {
        let _g = PAIR_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (device, client) = TTYPort::pair().map_err(|e| LinkError::io("creating a pseudo-terminal", e))?;
        let path = client
            .name()
            .ok_or_else(|| LinkError::io("creating a pseudo-terminal", "the slave side has no name"))?;
        Ok(PtyPair { device, client, path })
    }
}

/// A virtual set of serial ports: what a serial ROM model publishes while it
/// runs (its pty path, with a fake USB port path and ids). A ROM that
/// re-enumerates replaces its entry with a new pty.
#[derive(Clone, Default)]
pub struct SimSerialBus {
    ports: Arc<Mutex<Vec<SerialInfo>>>,
    /// USB link speeds by USB port path (what sysfs would say).
    speeds: Arc<Mutex<Vec<(String, String)>>>,
}

impl SimSerialBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes a port (replacing any with the same USB port path).
    pub fn publish(&self, info: SerialInfo) {
        let mut p = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        if info.port_path.is_some() {
            p.retain(|x| x.port_path != info.port_path);
        }
        p.push(info);
    }

    /// The USB link speed of the device at `port_path` ("high", "full").
    pub fn set_speed(&self, port_path: &str, speed: &str) {
        let mut s = self.speeds.lock().unwrap_or_else(|e| e.into_inner());
        s.retain(|(p, _)| p != port_path);
        s.push((port_path.to_string(), speed.to_string()));
    }

    /// Removes the port with this tty path (the device went away).
    pub fn withdraw(&self, path: &str) {
        self.ports.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| x.path != path);
    }
}

impl SerialBus for SimSerialBus {
    fn ports(&self) -> Result<Vec<SerialInfo>, LinkError> {
        Ok(self.ports.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn open(&self, info: &SerialInfo, baud: u32) -> Result<Box<dyn SerialLink>, LinkError> {
        Ok(Box::new(SerialPortLink::open(info.clone(), baud)?))
    }

    fn link_speed(&self, info: &SerialInfo) -> Option<String> {
        let pp = info.port_path.as_deref()?;
        let s = self.speeds.lock().unwrap_or_else(|e| e.into_inner());
        s.iter().find(|(p, _)| p == pp).map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;

    #[test]
    fn pty_carries_bytes_both_ways_through_the_real_backend() {
        let mut pair = PtyPair::new().unwrap();
        let bus = SimSerialBus::new();
        bus.publish(SerialInfo {
            path: pair.path.clone(),
            port_path: Some("sim-1".into()),
            ..Default::default()
        });
        let info = bus.ports().unwrap().remove(0);
        let mut link = bus.open(&info, 115200).unwrap();
        link.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        pair.device.set_timeout(Duration::from_secs(2)).unwrap();
        pair.device.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        pair.device.write_all(b"pong").unwrap();
        let mut got = [0u8; 4];
        link.read_exact(&mut got, Duration::from_secs(2)).unwrap();
        assert_eq!(&got, b"pong");
        assert!(matches!(link.read(&mut got, Duration::from_millis(50)), Err(LinkError::Timeout { .. })));
    }
}
