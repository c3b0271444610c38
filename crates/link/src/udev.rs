//! udev rules that open the boot ROMs to their users: the `plugdev` group
//! and (through `uaccess`) the logged-in user may open each USB id; a ROM
//! that presents a serial port gets the same for its tty, and ModemManager
//! is told to leave it alone (a CDC-ACM boot ROM looks like a modem to it,
//! and its probing would eat the ROM's short download window). USB
//! autosuspend is switched off for every id, as xrock's `99-xrock.rules`
//! does: a host with TLP or powertop "auto" may suspend an idle ROM before
//! the tool opens it.

use std::fmt::Write as _;

/// One USB identity to open up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub vid: u16,
    pub pid: u16,
    /// What uses these ids ("k230 rom"), for the comment above the rule.
    pub labels: Vec<String>,
    /// The device presents a serial port (a tty rule and no ModemManager).
    pub serial: bool,
}

/// The rules file, with how to install it in its header.
pub fn rules(ids: &[Rule], tool: &str) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(o, "# udev rules for {tool}: boot ROMs and loaders accessible to the plugdev group");
    let _ = writeln!(o, "# (and to the logged-in user through uaccess), USB autosuspend off. Install with:");
    let _ = writeln!(o, "#   {tool} udev-rules | sudo tee /etc/udev/rules.d/70-{tool}.rules");
    let _ = writeln!(o, "#   sudo udevadm control --reload && sudo udevadm trigger");
    let _ = writeln!(o, "#   sudo usermod -aG plugdev $USER   # then log in again");
    for r in ids {
        let (vid, pid) = (r.vid, r.pid);
        let _ = writeln!(o, "# {}", r.labels.join(", "));
        let _ = writeln!(
            o,
            "SUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"{vid:04x}\", ATTR{{idProduct}}==\"{pid:04x}\", MODE=\"0660\", GROUP=\"plugdev\", TAG+=\"uaccess\""
        );
        // A line of its own, so that a device without the attribute still
        // gets its permissions above.
        let _ = writeln!(
            o,
            "SUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"{vid:04x}\", ATTR{{idProduct}}==\"{pid:04x}\", TEST==\"power/autosuspend\", ATTR{{power/autosuspend}}=\"-1\""
        );
        if r.serial {
            let _ = writeln!(
                o,
                "SUBSYSTEM==\"tty\", ATTRS{{idVendor}}==\"{vid:04x}\", ATTRS{{idProduct}}==\"{pid:04x}\", MODE=\"0660\", GROUP=\"plugdev\", TAG+=\"uaccess\""
            );
            let _ = writeln!(
                o,
                "ATTRS{{idVendor}}==\"{vid:04x}\", ATTRS{{idProduct}}==\"{pid:04x}\", ENV{{ID_MM_DEVICE_IGNORE}}=\"1\""
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usb_roms_get_a_usb_rule_and_serial_roms_a_tty_rule_without_modemmanager() {
        let text = rules(
            &[
                Rule {
                    vid: 0x2207,
                    pid: 0x350a,
                    labels: vec!["rk3568 rom".into(), "rk3568 loader".into()],
                    serial: false,
                },
                Rule { vid: 0x3346, pid: 0x1000, labels: vec!["cv1800b rom".into()], serial: true },
            ],
            "racklet-flash",
        );
        assert!(text.contains("/etc/udev/rules.d/70-racklet-flash.rules"), "{text}");
        let rk: Vec<&str> = text.lines().filter(|l| l.contains("\"2207\"")).collect();
        assert_eq!(rk.len(), 2, "{text}");
        assert!(rk[1].ends_with("TEST==\"power/autosuspend\", ATTR{power/autosuspend}=\"-1\""), "{text}");
        assert!(
            rk[0].starts_with("SUBSYSTEM==\"usb\"") && rk[0].contains("ATTR{idProduct}==\"350a\""),
            "{text}"
        );
        assert!(text.contains("# rk3568 rom, rk3568 loader\n"), "{text}");
        let duo: Vec<&str> = text.lines().filter(|l| l.contains("\"3346\"")).collect();
        assert_eq!(duo.len(), 4, "{text}");
        assert!(duo[2].starts_with("SUBSYSTEM==\"tty\""), "{text}");
        assert!(duo[3].ends_with("ENV{ID_MM_DEVICE_IGNORE}=\"1\""), "{text}");
        assert!(duo.iter().all(|l| !l.contains("MODE") || l.contains("GROUP=\"plugdev\", TAG+=\"uaccess\"")));
    }
}
