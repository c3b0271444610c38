//! The serial link trait.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::LinkError;

/// A serial port and, when it is a USB adapter or a USB CDC-ACM device,
/// the USB facts of that device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SerialInfo {
    /// The tty path (`/dev/ttyUSB0`, `/dev/ttyACM0`, `/dev/pts/3`).
    pub path: String,
    pub vid: Option<u16>,
    pub pid: Option<u16>,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    /// USB port path (`1-3.2`) of the adapter or device, when known.
    pub port_path: Option<String>,
}

/// A byte stream to a serial boot ROM.
pub trait SerialLink: Send {
    /// Facts about the port.
    fn info(&self) -> &SerialInfo;
    /// Writes every byte and waits until they left the process.
    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError>;
    /// Reads what is available, at least one byte, waiting at most `timeout`.
    /// Returns [`LinkError::Timeout`] when nothing arrived.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError>;
    /// Changes the line rate.
    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError>;
    /// Drops whatever was received and not read yet.
    fn clear_input(&mut self) -> Result<(), LinkError>;

    /// The USB-UART adapter's latency timer: how long it holds a short read
    /// before passing it to the host (an FTDI chip waits 16 ms by default,
    /// so every small answer, an XMODEM ACK say, arrives that late). `None`
    /// when the link has no such timer or the backend cannot read it.
    fn latency_timer(&self) -> Option<Duration> {
        None
    }

    /// Sets the adapter's latency timer (see
    /// [`latency_timer`](Self::latency_timer)).
    fn set_latency_timer(&mut self, to: Duration) -> Result<(), LinkError> {
        let _ = to;
        Err(LinkError::io(format!("setting the latency timer of {}", self.info().path), "the link has none"))
    }

    /// Reads exactly `buf.len()` bytes, or fails with a timeout after
    /// `timeout` in total.
    fn read_exact(&mut self, buf: &mut [u8], timeout: Duration) -> Result<(), LinkError> {
        let deadline = Instant::now() + timeout;
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LinkError::Timeout {
                    op: format!("reading {} bytes", buf.len()),
                    after: timeout,
                });
            }
            match self.read(&mut buf[got..], left) {
                Ok(n) => got += n,
                Err(LinkError::Timeout { .. }) => {
                    return Err(LinkError::Timeout {
                        op: format!("reading {} bytes (got {got})", buf.len()),
                        after: timeout,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<T: SerialLink + ?Sized> SerialLink for Box<T> {
    fn info(&self) -> &SerialInfo {
        (**self).info()
    }
    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        (**self).write_all(data)
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        (**self).read(buf, timeout)
    }
    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        (**self).set_baud(baud)
    }
    fn clear_input(&mut self) -> Result<(), LinkError> {
        (**self).clear_input()
    }
    fn latency_timer(&self) -> Option<Duration> {
        (**self).latency_timer()
    }
    fn set_latency_timer(&mut self, to: Duration) -> Result<(), LinkError> {
        (**self).set_latency_timer(to)
    }
}

/// Where serial ports are found and opened: the real system or a
/// simulation serving pseudo-terminals.
pub trait SerialBus: Send + Sync {
    /// The ports present now.
    fn ports(&self) -> Result<Vec<SerialInfo>, LinkError>;
    /// Opens a port at `baud`.
    fn open(&self, info: &SerialInfo, baud: u32) -> Result<Box<dyn SerialLink>, LinkError>;
    /// The USB link speed of the device behind the port, when known:
    /// "low", "full", "high", "super" (Linux: sysfs `speed` of the USB
    /// device, 1.5, 12, 480, 5000+). A USB CDC-ACM device at full speed
    /// takes 64-byte bulk packets.
    fn link_speed(&self, info: &SerialInfo) -> Option<String> {
        let _ = info;
        None
    }
}
