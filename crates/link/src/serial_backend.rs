//! Real serial ports through serialport, and port discovery through sysfs.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::error::SERIAL_PERMISSION_HINT;
use crate::{LinkError, SerialBus, SerialInfo, SerialLink};

/// The system's serial ports.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemSerial;

/// An open serial port.
pub struct SerialPortLink {
    port: Box<dyn serialport::SerialPort>,
    info: SerialInfo,
}

impl SerialPortLink {
    /// Opens `info.path` at `baud`, 8N1, no flow control.
    pub fn open(info: SerialInfo, baud: u32) -> Result<Self, LinkError> {
        let port = serialport::new(&info.path, baud)
            .timeout(Duration::from_millis(100))
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .open()
            .map_err(|e| map_err(&info.path, "opening", e))?;
        Ok(SerialPortLink { port, info })
    }
}

fn map_err(path: &str, op: &str, e: serialport::Error) -> LinkError {
    match e.kind() {
        serialport::ErrorKind::NoDevice => LinkError::Disconnected { op: format!("{op} {path}") },
        serialport::ErrorKind::Io(std::io::ErrorKind::NotFound) => {
            LinkError::not_found(format!("serial port {path}"))
        }
        serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied) => {
            LinkError::PermissionDenied { device: path.to_string(), hint: SERIAL_PERMISSION_HINT.to_string() }
        }
        _ => LinkError::io(format!("{op} {path}"), e),
    }
}

/// How much longer than its wire time a write may take (a full adapter
/// buffer, a busy peer).
const WRITE_SLACK: Duration = Duration::from_secs(5);

fn map_io(path: &str, op: &str, timeout: Duration, e: std::io::Error) -> LinkError {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            LinkError::Timeout { op: format!("{op} {path}"), after: timeout }
        }
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::NotConnected => {
            LinkError::Disconnected { op: format!("{op} {path}") }
        }
        _ if e.raw_os_error() == Some(5) || e.raw_os_error() == Some(19) => {
            // EIO / ENODEV: the USB serial device went away.
            LinkError::Disconnected { op: format!("{op} {path}") }
        }
        _ => LinkError::io(format!("{op} {path}"), e),
    }
}

impl SerialPortLink {
    /// serialport's flush (tcdrain) drops the errno ("flush failed"): ask
    /// the port once more, and a hung-up tty (EIO: the adapter or the pty's
    /// other end went away) is a disconnect.
    fn flush_error(&self, t: Duration, e: std::io::Error) -> LinkError {
        // serialport reports EIO as ErrorKind::Unknown: any failure of the
        // probe right after a failed flush means the tty is gone.
        match self.port.bytes_to_read() {
            Err(_) => LinkError::Disconnected { op: format!("flushing {}", self.info.path) },
            _ => map_io(&self.info.path, "flushing", t, e),
        }
    }
}

impl SerialLink for SerialPortLink {
    fn info(&self) -> &SerialInfo {
        &self.info
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        // The port has one timeout for reads and writes: a write must not
        // inherit a short read timeout (a poll with 0 ms), so it gets its
        // bytes' wire time at the current rate plus WRITE_SLACK.
        let baud = self.port.baud_rate().unwrap_or(9600).max(1);
        let t = Duration::from_secs_f64(data.len() as f64 * 10.0 / baud as f64) + WRITE_SLACK;
        self.port.set_timeout(t).map_err(|e| map_err(&self.info.path, "configuring", e))?;
        self.port.write_all(data).map_err(|e| map_io(&self.info.path, "writing to", t, e))?;
        self.port.flush().map_err(|e| self.flush_error(t, e))
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        self.port.set_timeout(timeout).map_err(|e| map_err(&self.info.path, "configuring", e))?;
        match self.port.read(buf) {
            Ok(0) => Err(LinkError::Disconnected { op: format!("reading {}", self.info.path) }),
            Ok(n) => Ok(n),
            Err(e) => Err(map_io(&self.info.path, "reading", timeout, e)),
        }
    }

    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        self.port.set_baud_rate(baud).map_err(|e| map_err(&self.info.path, "setting the baud rate of", e))
    }

    fn clear_input(&mut self) -> Result<(), LinkError> {
        self.port
            .clear(serialport::ClearBuffer::Input)
            .map_err(|e| map_err(&self.info.path, "clearing the input of", e))
    }

    #[cfg(target_os = "linux")]
    fn latency_timer(&self) -> Option<Duration> {
        latency::read(&latency::attr(Path::new(latency::USB_SERIAL_DEVICES), &self.info.path)?)
    }

    #[cfg(target_os = "linux")]
    fn set_latency_timer(&mut self, to: Duration) -> Result<(), LinkError> {
        let attr = latency::attr(Path::new(latency::USB_SERIAL_DEVICES), &self.info.path)
            .filter(|a| a.exists())
            .ok_or_else(|| {
                LinkError::io(format!("setting the latency timer of {}", self.info.path), "it has none")
            })?;
        latency::write(&attr, to)
    }
}

impl SerialBus for SystemSerial {
    fn ports(&self) -> Result<Vec<SerialInfo>, LinkError> {
        if Path::new("/sys/class/tty").is_dir() {
            return Ok(sysfs_ports(Path::new("/sys/class/tty")));
        }
        let ports = serialport::available_ports().map_err(|e| LinkError::io("listing serial ports", e))?;
        Ok(ports
            .into_iter()
            .map(|p| {
                let mut info = SerialInfo { path: p.port_name, ..Default::default() };
                if let serialport::SerialPortType::UsbPort(u) = p.port_type {
                    info.vid = Some(u.vid);
                    info.pid = Some(u.pid);
                    info.serial = u.serial_number;
                    info.manufacturer = u.manufacturer;
                    info.product = u.product;
                }
                info
            })
            .collect())
    }

    fn open(&self, info: &SerialInfo, baud: u32) -> Result<Box<dyn SerialLink>, LinkError> {
        Ok(Box::new(SerialPortLink::open(info.clone(), baud)?))
    }

    fn link_speed(&self, info: &SerialInfo) -> Option<String> {
        sysfs_speed(Path::new("/sys/class/tty"), &info.path)
    }
}

/// The link speed of the USB device behind `tty` (its sysfs `speed`), by
/// the names `UsbInfo` uses.
pub fn sysfs_speed(class_dir: &Path, tty: &str) -> Option<String> {
    let name = Path::new(tty).file_name()?.to_string_lossy().to_string();
    let dev = std::fs::canonicalize(class_dir.join(name).join("device")).ok()?;
    let d = dev.ancestors().find(|a| a.file_name().is_some_and(|n| is_usb_port_dir(&n.to_string_lossy())))?;
    read_attr(d, "speed").map(|s| speed_name(&s))
}

fn read_attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Is this a USB device directory name such as `1-3.2` (not `1-3.2:1.0`, not `usb1`)?
fn is_usb_port_dir(name: &str) -> bool {
    match name.split_once('-') {
        Some((bus, ports)) => {
            !bus.is_empty()
                && bus.chars().all(|c| c.is_ascii_digit())
                && !ports.is_empty()
                && ports.chars().all(|c| c.is_ascii_digit() || c == '.')
        }
        None => false,
    }
}

/// The name of a sysfs USB `speed` value (Mb/s): the names `UsbInfo` uses.
pub fn speed_name(mbps: &str) -> String {
    match mbps.trim() {
        "1.5" => "low".into(),
        "12" => "full".into(),
        "480" => "high".into(),
        "5000" | "10000" | "20000" => "super".into(),
        other => format!("{other} Mb/s"),
    }
}

/// Lists USB serial ports (ttyUSB*, ttyACM*) from a sysfs tty class
/// directory, with the facts of the USB device they belong to.
pub fn sysfs_ports(class_dir: &Path) -> Vec<SerialInfo> {
    let Ok(entries) = std::fs::read_dir(class_dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.starts_with("ttyUSB") || name.starts_with("ttyACM")) {
            continue;
        }
        let mut info = SerialInfo { path: format!("/dev/{name}"), ..Default::default() };
        if let Ok(dev) = std::fs::canonicalize(e.path().join("device")) {
            // Walk up to the USB device directory (named like 1-3.2).
            let usb_dir = dev
                .ancestors()
                .find(|a| a.file_name().map(|n| is_usb_port_dir(&n.to_string_lossy())).unwrap_or(false));
            if let Some(d) = usb_dir {
                info.port_path = d.file_name().map(|n| n.to_string_lossy().to_string());
                info.vid = read_attr(d, "idVendor").and_then(|v| u16::from_str_radix(&v, 16).ok());
                info.pid = read_attr(d, "idProduct").and_then(|v| u16::from_str_radix(&v, 16).ok());
                info.serial = read_attr(d, "serial");
                info.manufacturer = read_attr(d, "manufacturer");
                info.product = read_attr(d, "product");
            }
        }
        out.push(info);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The latency timer of an FTDI adapter, as Linux's ftdi_sio driver shows
/// it in sysfs: `/sys/bus/usb-serial/devices/ttyUSBn/latency_timer`, in
/// milliseconds (1–255; 16 after plug-in). Other USB-UART drivers have no
/// such attribute.
#[cfg(target_os = "linux")]
mod latency {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::LinkError;

    /// Where the usb-serial devices are, one directory per tty.
    pub(crate) const USB_SERIAL_DEVICES: &str = "/sys/bus/usb-serial/devices";

    /// The attribute of the tty at `tty_path` under `root`; a symlink
    /// (`/dev/serial/by-id/...`) is resolved to the tty it names first.
    pub(crate) fn attr(root: &Path, tty_path: &str) -> Option<PathBuf> {
        let real = std::fs::canonicalize(tty_path).unwrap_or_else(|_| PathBuf::from(tty_path));
        Some(root.join(real.file_name()?).join("latency_timer"))
    }

    pub(crate) fn read(attr: &Path) -> Option<Duration> {
        let ms: u64 = std::fs::read_to_string(attr).ok()?.trim().parse().ok()?;
        Some(Duration::from_millis(ms))
    }

    /// Writes the timer, rounded to whole milliseconds within 1–255 (what
    /// the driver accepts).
    pub(crate) fn write(attr: &Path, to: Duration) -> Result<(), LinkError> {
        let ms = to.as_millis().clamp(1, 255);
        std::fs::write(attr, ms.to_string()).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => LinkError::PermissionDenied {
                device: attr.display().to_string(),
                hint: format!("run `echo {ms} | sudo tee {}`", attr.display()),
            },
            _ => LinkError::io(format!("writing {}", attr.display()), e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_scan_finds_usb_serial_with_port_path() {
        let root = tempfile::tempdir().unwrap();
        let usbdev = root.path().join("devices/pci0000:00/usb1/1-3/1-3.2");
        let intf = usbdev.join("1-3.2:1.0/tty/ttyACM0");
        std::fs::create_dir_all(&intf).unwrap();
        std::fs::write(usbdev.join("idVendor"), "3346\n").unwrap();
        std::fs::write(usbdev.join("idProduct"), "1000\n").unwrap();
        std::fs::write(usbdev.join("product"), "USB Com Port\n").unwrap();
        std::fs::write(usbdev.join("speed"), "12\n").unwrap();
        let class = root.path().join("class/tty/ttyACM0");
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(usbdev.join("1-3.2:1.0"), class.join("device")).unwrap();
        // A non-USB tty is ignored.
        std::fs::create_dir_all(root.path().join("class/tty/ttyS0")).unwrap();

        let ports = sysfs_ports(&root.path().join("class/tty"));
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].path, "/dev/ttyACM0");
        assert_eq!(ports[0].port_path.as_deref(), Some("1-3.2"));
        assert_eq!(ports[0].vid, Some(0x3346));
        assert_eq!(ports[0].pid, Some(0x1000));
        assert_eq!(ports[0].product.as_deref(), Some("USB Com Port"));
        // Behind a USB 1.1 hub the ROM runs at full speed (64-byte packets).
        assert_eq!(sysfs_speed(&root.path().join("class/tty"), "/dev/ttyACM0").as_deref(), Some("full"));
        assert_eq!(sysfs_speed(&root.path().join("class/tty"), "/dev/ttyS0"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_ftdi_latency_timer_is_found_through_a_symlink_read_and_written() {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path().join("usb-serial");
        std::fs::create_dir_all(sys.join("ttyUSB3")).unwrap();
        std::fs::write(sys.join("ttyUSB3/latency_timer"), "16\n").unwrap();
        let dev = root.path().join("ttyUSB3");
        std::fs::write(&dev, "").unwrap();
        let by_id = root.path().join("usb-FTDI_FT232R-if00-port0");
        std::os::unix::fs::symlink(&dev, &by_id).unwrap();

        let attr = latency::attr(&sys, &by_id.display().to_string()).unwrap();
        assert_eq!(attr, sys.join("ttyUSB3/latency_timer"));
        assert_eq!(latency::read(&attr), Some(Duration::from_millis(16)));
        latency::write(&attr, Duration::from_millis(1)).unwrap();
        assert_eq!(std::fs::read_to_string(&attr).unwrap(), "1");
        // A pty has no such attribute.
        assert_eq!(latency::read(&latency::attr(&sys, "/dev/pts/7").unwrap()), None);
    }

    #[test]
    fn usb_dir_names() {
        assert!(is_usb_port_dir("1-3.2"));
        assert!(is_usb_port_dir("3-1"));
        assert!(!is_usb_port_dir("1-3.2:1.0"));
        assert!(!is_usb_port_dir("usb1"));
    }

    /// The other end of the line goes away mid-run (an adapter unplugged; a
    /// pty whose master closed): writing is a disconnect, not an I/O error,
    /// even though serialport's flush drops the errno.
    #[cfg(unix)]
    #[test]
    fn a_hung_up_tty_is_a_disconnect() {
        use serialport::SerialPort as _;
        let (master, slave) = serialport::TTYPort::pair().expect("a pty pair");
        let path = slave.name().expect("the slave's name");
        drop(slave);
        let mut link = SerialPortLink::open(SerialInfo { path, ..Default::default() }, 115_200).unwrap();
        drop(master);
        // A flush that failed on a hung-up tty (serialport says only
        // "flush failed") is a disconnect; so is the next write (EIO).
        let e = link.flush_error(Duration::from_secs(1), std::io::Error::other("flush failed"));
        assert!(matches!(e, LinkError::Disconnected { .. }), "{e:?}");
        let e = link.write_all(&[0u8; 64]).unwrap_err();
        assert!(matches!(e, LinkError::Disconnected { .. }), "{e:?}");
    }
}
