//! The ACM function: a gadget that the host sees as a CDC-ACM serial
//! device (`/dev/ttyACM*`), whose other end is `/dev/ttyGS<port_num>` in
//! the gadget. Serial boot ROMs that enumerate as CDC-ACM (Sophgo) run on
//! the `ttyGS` side.

use std::path::{Path, PathBuf};
use std::time::Duration;

use racklet_link::UsbInfo;
use serialport::{SerialPort, TTYPort};

use crate::configfs::{ConfigfsError, Gadget};
use crate::serve::GadgetError;

/// A bound ACM gadget.
pub struct AcmGadget {
    pub gadget: Gadget,
    /// The gadget side tty, e.g. `/dev/ttyGS0`.
    pub tty: PathBuf,
}

impl AcmGadget {
    /// Creates, identifies and binds an ACM gadget.
    pub fn create(root: &Path, name: &str, udc: &str, info: &UsbInfo) -> Result<Self, GadgetError> {
        let gadget = Gadget::create(root, name, udc)?;
        gadget.set_identity(info)?;
        let f = gadget.add_function("acm", name)?;
        let p = f.join("port_num");
        let n = std::fs::read_to_string(&p).map_err(|source| ConfigfsError {
            op: "reading",
            path: p.clone(),
            source,
        })?;
        let tty = PathBuf::from(format!("/dev/ttyGS{}", n.trim()));
        let mut g = AcmGadget { gadget, tty };
        g.gadget.bind()?;
        Ok(g)
    }

    /// Opens the gadget side raw (8N1, no flow control), waiting up to
    /// `wait` for devtmpfs to create the node.
    pub fn open(&self, wait: Duration) -> Result<TTYPort, GadgetError> {
        let start = std::time::Instant::now();
        while !self.tty.exists() && start.elapsed() < wait {
            // devtmpfs creates the node asynchronously after the bind.
            std::thread::sleep(Duration::from_millis(10));
        }
        let path = self.tty.display().to_string();
        serialport::new(&path, 115200)
            .timeout(Duration::from_millis(50))
            .open_native()
            .map_err(|e| GadgetError::Io { op: "opening", path: self.tty.clone(), source: e.into() })
    }
}

/// A serial model for the rig's own ACM check: answers every chunk it
/// reads with the same bytes (echo), until `stop` says so. Returns the byte
/// count it echoed.
pub fn echo(port: &mut TTYPort, stop: &dyn Fn() -> bool) -> u64 {
    use std::io::{Read, Write};
    let mut buf = [0u8; 4096];
    let mut total = 0;
    let _ = port.set_timeout(Duration::from_millis(50));
    while !stop() {
        match port.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                if port.write_all(&buf[..n]).is_ok() {
                    total += n as u64;
                }
            }
            // Timeouts (nothing sent) and EIO while the host has not opened its side.
            Err(_) => {}
        }
    }
    total
}
