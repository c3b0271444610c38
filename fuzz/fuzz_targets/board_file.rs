//! The board-file path: the input written to a file and loaded with the
//! built-in table, as `--boards FILE` does. It never panics, and a table it
//! accepts keeps every rule: printable names, one board per name or alias
//! (case-insensitively), transports that fit the protocol, no baud 0, entry
//! points inside the SRAM.
#![no_main]
use libfuzzer_sys::fuzz_target;
use racklet_flash::boards::{Protocol, Transport};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("boards.toml");
    std::fs::write(&path, data).expect("write the board file");
    let Ok(t) = racklet_flash::boards::load(Some(&path)) else { return };
    let mut seen = std::collections::HashSet::new();
    for b in &t.boards {
        for n in std::iter::once(&b.name).chain(&b.aliases) {
            assert!(!n.is_empty() && n.chars().all(|c| c.is_ascii_graphic()), "{n:?}");
            assert!(seen.insert(n.to_ascii_lowercase()), "{n} names two boards");
            assert_eq!(t.find(n).map(|x| &x.name), Some(&b.name));
        }
        for text in [&b.title, &b.soc, &b.enter] {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        let want = match b.protocol {
            Protocol::Rockchip | Protocol::Canaan | Protocol::Fastboot => Transport::Usb,
            Protocol::Sophgo | Protocol::Starfive => Transport::Serial,
        };
        assert_eq!(b.transport, want);
        assert_ne!(b.baud, Some(0));
        assert!(b.sram_size > 0 && b.load_address >= b.sram_base);
        if let Some(e) = b.entry {
            assert!(e >= b.sram_base && e - b.sram_base < b.sram_size);
        }
    }
});
