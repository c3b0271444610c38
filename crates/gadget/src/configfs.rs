//! A USB gadget composed in configfs (`/sys/kernel/config/usb_gadget`).
//!
//! Plain file operations: directories are created with `mkdir`, attributes
//! are written as text, a function joins a configuration through a symlink,
//! and writing a UDC name to `UDC` plugs the gadget in (an empty line
//! unplugs it). See the kernel's `Documentation/usb/gadget_configfs.rst`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use racklet_link::UsbInfo;

/// Where configfs puts USB gadgets.
pub const GADGET_ROOT: &str = "/sys/kernel/config/usb_gadget";

/// A configfs error, with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct ConfigfsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ConfigfsError + 'a {
    move |source| ConfigfsError { op, path: path.to_path_buf(), source }
}

/// Writes one attribute.
pub fn write_attr(path: &Path, value: &str) -> Result<(), ConfigfsError> {
    fs::write(path, value).map_err(err("writing", path))
}

fn mkdir(path: &Path) -> Result<(), ConfigfsError> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(err("creating", path)(e)),
        _ => Ok(()),
    }
}

/// One gadget directory with one configuration (`c.1`).
#[derive(Debug)]
pub struct Gadget {
    pub dir: PathBuf,
    pub udc: String,
    bound: bool,
}

impl Gadget {
    /// Creates `GADGET_ROOT/<name>` with its English strings and one
    /// configuration. Nothing is bound yet.
    pub fn create(root: &Path, name: &str, udc: &str) -> Result<Self, ConfigfsError> {
        let dir = root.join(name);
        mkdir(&dir)?;
        mkdir(&dir.join("strings/0x409"))?;
        mkdir(&dir.join("configs/c.1"))?;
        mkdir(&dir.join("configs/c.1/strings/0x409"))?;
        write_attr(&dir.join("configs/c.1/strings/0x409/configuration"), "racklet usbrig")?;
        // The ROMs are bus-powered devices drawing up to 500 mA.
        write_attr(&dir.join("configs/c.1/MaxPower"), "500")?;
        Ok(Gadget { dir, udc: udc.to_string(), bound: false })
    }

    /// Writes the device descriptor's identity and strings from `info`.
    /// Only valid while unbound.
    pub fn set_identity(&self, info: &UsbInfo) -> Result<(), ConfigfsError> {
        let d = &self.dir;
        write_attr(&d.join("idVendor"), &format!("0x{:04x}", info.vid))?;
        write_attr(&d.join("idProduct"), &format!("0x{:04x}", info.pid))?;
        let bcd_usb = if info.bcd_usb == 0 { 0x0200 } else { info.bcd_usb };
        write_attr(&d.join("bcdUSB"), &format!("0x{bcd_usb:04x}"))?;
        write_attr(&d.join("bcdDevice"), &format!("0x{:04x}", info.bcd_device))?;
        let s = d.join("strings/0x409");
        write_attr(&s.join("manufacturer"), info.manufacturer.as_deref().unwrap_or(""))?;
        write_attr(&s.join("product"), info.product.as_deref().unwrap_or(""))?;
        write_attr(&s.join("serialnumber"), info.serial.as_deref().unwrap_or(""))?;
        Ok(())
    }

    /// Creates function `<kind>.<instance>` (e.g. `ffs.rom`, `acm.gs0`) and
    /// links it into the configuration. Returns the function's directory.
    pub fn add_function(&self, kind: &str, instance: &str) -> Result<PathBuf, ConfigfsError> {
        let f = self.dir.join("functions").join(format!("{kind}.{instance}"));
        mkdir(&f)?;
        let link = self.dir.join("configs/c.1").join(format!("{kind}.{instance}"));
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(&f, &link).map_err(err("linking", &link))?;
        }
        Ok(f)
    }

    /// Unlinks function `<kind>.<instance>` from the configuration (the
    /// function directory stays until [`Gadget::remove`]).
    pub fn unlink_function(&self, kind: &str, instance: &str) -> Result<(), ConfigfsError> {
        let link = self.dir.join("configs/c.1").join(format!("{kind}.{instance}"));
        fs::remove_file(&link).map_err(err("unlinking", &link))
    }

    /// Plugs the gadget into its UDC: the host sees a new device.
    pub fn bind(&mut self) -> Result<(), ConfigfsError> {
        write_attr(&self.dir.join("UDC"), &self.udc)?;
        self.bound = true;
        Ok(())
    }

    /// Unplugs the gadget: the host sees the device disconnect.
    pub fn unbind(&mut self) -> Result<(), ConfigfsError> {
        if self.bound {
            write_attr(&self.dir.join("UDC"), "\n")?;
            self.bound = false;
        }
        Ok(())
    }

    pub fn is_bound(&self) -> bool {
        self.bound
    }

    /// Unbinds and removes the gadget's configfs tree, best effort (a
    /// function whose files are still open may refuse to go).
    pub fn remove(mut self) {
        let _ = self.unbind();
        let c = self.dir.join("configs/c.1");
        if let Ok(entries) = fs::read_dir(&c) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_symlink()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let _ = fs::remove_dir(c.join("strings/0x409"));
        let _ = fs::remove_dir(&c);
        if let Ok(entries) = fs::read_dir(self.dir.join("functions")) {
            for e in entries.flatten() {
                let _ = fs::remove_dir(e.path());
            }
        }
        let _ = fs::remove_dir(self.dir.join("strings/0x409"));
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a plain directory (not configfs) the same calls produce the same
    /// tree and attribute values the kernel would be given.
    #[test]
    fn identity_and_functions_land_in_the_configfs_layout() {
        let root = tempfile::tempdir().unwrap();
        // configfs creates these default groups by itself.
        for d in ["g1/strings", "g1/configs/c.1/strings", "g1/functions"] {
            fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let mut g = Gadget::create(root.path(), "g1", "dummy_udc.0").unwrap();
        let info = UsbInfo {
            vid: 0x2207,
            pid: 0x350a,
            bcd_usb: 0x0200,
            bcd_device: 0x0100,
            manufacturer: Some("Rockchip".into()),
            product: None,
            ..Default::default()
        };
        g.set_identity(&info).unwrap();
        let rd = |p: &str| fs::read_to_string(root.path().join("g1").join(p)).unwrap();
        assert_eq!(rd("idVendor"), "0x2207");
        assert_eq!(rd("idProduct"), "0x350a");
        assert_eq!(rd("bcdDevice"), "0x0100");
        assert_eq!(rd("strings/0x409/manufacturer"), "Rockchip");
        assert_eq!(rd("strings/0x409/product"), "");
        let f = g.add_function("ffs", "rom").unwrap();
        assert!(f.ends_with("functions/ffs.rom"));
        let link = root.path().join("g1/configs/c.1/ffs.rom");
        assert_eq!(fs::read_link(&link).unwrap(), f);
        g.bind().unwrap();
        assert_eq!(rd("UDC"), "dummy_udc.0");
        g.unbind().unwrap();
        assert_eq!(rd("UDC"), "\n");
        g.unlink_function("ffs", "rom").unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
    }
}
