//! Following a serial port that has no USB facts (a pty, a symlink) by the
//! name the user gave: after a re-enumeration the name points at a new node,
//! and the Connector must find that node, not the old one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use racklet_link::{
    Connector, LinkError, NoProgress, Selector, SerialBus, SerialInfo, SerialKey, SerialLink, UsbBus,
    UsbInfo, UsbLink,
};

/// A machine whose port listings show nothing (ptys and symlinks are not
/// listed; only the file system knows them).
struct Nothing;

impl SerialBus for Nothing {
    fn ports(&self) -> Result<Vec<SerialInfo>, LinkError> {
        Ok(Vec::new())
    }
    fn open(&self, info: &SerialInfo, _baud: u32) -> Result<Box<dyn SerialLink>, LinkError> {
        Err(LinkError::not_found(info.path.clone()))
    }
}

impl UsbBus for Nothing {
    fn devices(&self) -> Result<Vec<UsbInfo>, LinkError> {
        Ok(Vec::new())
    }
    fn open(&self, info: &UsbInfo) -> Result<Box<dyn UsbLink>, LinkError> {
        Err(LinkError::not_found(info.port_path.clone()))
    }
}

fn node(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b"").unwrap();
    std::fs::canonicalize(p).unwrap()
}

#[test]
fn a_symlinked_tty_is_followed_by_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let first = node(dir.path(), "pts-a");
    let link = dir.path().join("ttyACM");
    std::os::unix::fs::symlink(&first, &link).unwrap();

    let mut progress = NoProgress;
    let mut conn = Connector::new(Arc::new(Nothing), Arc::new(Nothing), &mut progress);
    conn.selector = Some(Selector::parse(link.to_str().unwrap()).unwrap());
    let found = conn.find_serial(None, "the test port").unwrap();
    assert_eq!(found.path, first.display().to_string(), "the node the name points at now");
    let key = conn.serial_key(&found);
    assert_eq!(key, SerialKey::Tty(link.display().to_string()));

    // Nothing changed: within the time given, nothing new comes.
    let same =
        conn.follow_serial(&key, &found.path, None, Duration::from_millis(100), Duration::MAX).unwrap();
    assert_eq!(same, None);

    // The device re-enumerates: the old node goes, the name points at a new one.
    std::fs::remove_file(&first).unwrap();
    let second = node(dir.path(), "pts-b");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&second, &link).unwrap();
    let next = conn.follow_serial(&key, &found.path, None, Duration::from_secs(2), Duration::MAX).unwrap();
    assert_eq!(next.map(|p| p.path), Some(second.display().to_string()));
}
