//! Which of the devices attached now are a board's boot ROM: every one
//! (`--all`), the one a selector names, or whether any is there at all
//! (`--auto-simulate`). A board's ROM is known by its USB ids; a serial ROM
//! behind an ordinary USB-UART has none, and then only a selector finds it.

use crate::{LinkError, Selector, SerialBus, SerialInfo, UsbBus};

/// How a board's boot ROM shows itself on the buses.
#[derive(Debug, Clone, Copy)]
pub struct RomIds<'a> {
    /// Its USB ids, one per stage (empty for a plain USB-UART).
    pub ids: &'a [(u16, u16)],
    /// Reached over a serial port (else USB).
    pub serial: bool,
}

impl RomIds<'_> {
    fn usb_id(&self, vid: u16, pid: u16) -> bool {
        self.ids.contains(&(vid, pid))
    }

    /// A serial port is the ROM's when its adapter has one of the ids, or
    /// when the board has none (any port may be it).
    fn serial_port(&self, p: &SerialInfo) -> bool {
        self.ids.is_empty() || p.vid.zip(p.pid).is_some_and(|(v, i)| self.usb_id(v, i))
    }
}

/// Which board a serial port is: its USB port path when it has one (it
/// survives re-enumeration), its tty path otherwise.
pub fn serial_identity(p: &SerialInfo) -> String {
    p.port_path.clone().unwrap_or_else(|| p.path.clone())
}

/// A selector for every port where one of the board's boot ROMs is now.
pub fn all(rom: RomIds, usb: &dyn UsbBus, serial: &dyn SerialBus) -> Result<Vec<Selector>, LinkError> {
    Ok(if rom.serial {
        serial
            .ports()?
            .into_iter()
            .filter(|p| rom.serial_port(p))
            .map(|p| match p.port_path {
                Some(pp) if !rom.ids.is_empty() => Selector::UsbPath(pp),
                _ => Selector::Tty(p.path.into()),
            })
            .collect()
    } else {
        usb.devices()?
            .into_iter()
            .filter(|d| rom.usb_id(d.vid, d.pid))
            .map(|d| Selector::UsbPath(d.port_path))
            .collect()
    })
}

/// The board a selector names now (USB port path or tty), when it names
/// exactly one.
pub fn named(rom: RomIds, usb: &dyn UsbBus, serial: &dyn SerialBus, sel: &Selector) -> Option<String> {
    let found: Vec<String> = if rom.serial {
        let listed: Vec<String> = serial
            .ports()
            .unwrap_or_default()
            .iter()
            .filter(|p| rom.serial_port(p) && sel.matches_serial(p))
            .map(serial_identity)
            .collect();
        match sel {
            Selector::Tty(p) if listed.is_empty() => vec![p.display().to_string()],
            _ => listed,
        }
    } else {
        usb.devices()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| rom.usb_id(d.vid, d.pid) && sel.matches_usb(d))
            .map(|d| d.port_path)
            .collect()
    };
    if found.len() == 1 { found.into_iter().next() } else { None }
}

/// Is a device attached that a run with these selectors would use? A
/// serial ROM behind an ordinary USB-UART (no ids) counts as attached only
/// when a selector names a port that is there.
pub fn attached(rom: RomIds, usb: &dyn UsbBus, serial: &dyn SerialBus, selectors: &[Selector]) -> bool {
    let sel_ok = |f: &dyn Fn(&Selector) -> bool| selectors.is_empty() || selectors.iter().any(f);
    if !rom.serial {
        return usb
            .devices()
            .unwrap_or_default()
            .iter()
            .any(|d| rom.usb_id(d.vid, d.pid) && sel_ok(&|s: &Selector| s.matches_usb(d)));
    }
    if rom.ids.is_empty() {
        return selectors.iter().any(|s| match s {
            Selector::Tty(p) => p.exists(),
            _ => serial.ports().unwrap_or_default().iter().any(|p| s.matches_serial(p)),
        });
    }
    serial
        .ports()
        .unwrap_or_default()
        .iter()
        .any(|p| rom.serial_port(p) && sel_ok(&|s: &Selector| s.matches_serial(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SerialLink, UsbInfo, UsbLink};

    struct Bus(Vec<UsbInfo>, Vec<SerialInfo>);

    impl UsbBus for Bus {
        fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
            Ok(self.0.clone())
        }
        fn open(&self, _: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
            Err(LinkError::not_found("no device in this test"))
        }
    }

    impl SerialBus for Bus {
        fn ports(&self) -> Result<Vec<SerialInfo>, LinkError> {
            Ok(self.1.clone())
        }
        fn open(&self, _: &SerialInfo, _: u32) -> Result<Box<dyn SerialLink>, LinkError> {
            Err(LinkError::not_found("no port in this test"))
        }
    }

    fn usb(vid: u16, pid: u16, at: &str) -> UsbInfo {
        UsbInfo { vid, pid, port_path: at.into(), ..UsbInfo::default() }
    }

    fn tty(path: &str, id: Option<(u16, u16)>, at: Option<&str>) -> SerialInfo {
        SerialInfo {
            path: path.into(),
            vid: id.map(|i| i.0),
            pid: id.map(|i| i.1),
            port_path: at.map(Into::into),
            ..SerialInfo::default()
        }
    }

    const RK: RomIds = RomIds { ids: &[(0x2207, 0x350a)], serial: false };

    #[test]
    fn usb_roms_are_found_by_their_ids_only() {
        let b = Bus(
            vec![usb(0x2207, 0x350a, "1-1"), usb(0x1d6b, 0x0002, "1-0"), usb(0x2207, 0x350a, "1-2")],
            vec![],
        );
        let all = all(RK, &b, &b).unwrap();
        assert_eq!(all, vec![Selector::UsbPath("1-1".into()), Selector::UsbPath("1-2".into())]);
        assert!(attached(RK, &b, &b, &[]));
        assert!(attached(RK, &b, &b, &[Selector::UsbPath("1-2".into())]));
        assert!(!attached(RK, &b, &b, &[Selector::UsbPath("1-0".into())]));
        // A vid:pid names both boards: not one.
        assert_eq!(named(RK, &b, &b, &Selector::UsbId { vid: 0x2207, pid: 0x350a, serial: None }), None);
        assert_eq!(named(RK, &b, &b, &Selector::UsbPath("1-2".into())).as_deref(), Some("1-2"));
    }

    #[test]
    fn a_serial_rom_without_ids_is_found_only_through_a_selector() {
        let plain = RomIds { ids: &[], serial: true };
        let b = Bus(vec![], vec![tty("/dev/ttyUSB0", Some((0x0403, 0x6001)), Some("1-4"))]);
        assert!(!attached(plain, &b, &b, &[]));
        assert!(attached(plain, &b, &b, &[Selector::UsbPath("1-4".into())]));
        // Without ids every port may be it, named by its tty.
        assert_eq!(all(plain, &b, &b).unwrap(), vec![Selector::Tty("/dev/ttyUSB0".into())]);
        assert_eq!(named(plain, &b, &b, &Selector::UsbPath("1-4".into())).as_deref(), Some("1-4"));
        // A tty not listed is still the one board it names.
        let gone = Selector::Tty("/dev/ttyNOPE".into());
        assert_eq!(named(plain, &b, &b, &gone).as_deref(), Some("/dev/ttyNOPE"));
    }

    #[test]
    fn a_serial_rom_with_ids_is_named_by_its_usb_port() {
        let duo = RomIds { ids: &[(0x3346, 0x1000)], serial: true };
        let b = Bus(
            vec![],
            vec![
                tty("/dev/ttyACM0", Some((0x3346, 0x1000)), Some("1-3")),
                tty("/dev/ttyUSB0", Some((0x0403, 0x6001)), Some("1-4")),
            ],
        );
        assert_eq!(all(duo, &b, &b).unwrap(), vec![Selector::UsbPath("1-3".into())]);
        assert!(attached(duo, &b, &b, &[]));
        assert!(!attached(duo, &b, &b, &[Selector::UsbPath("1-4".into())]));
        assert_eq!(serial_identity(&b.1[0]), "1-3");
        assert_eq!(serial_identity(&tty("/dev/ttyS0", None, None)), "/dev/ttyS0");
    }
}
