//! The built-in board table, compiled in from boards.toml and extendable
//! by the user (`--boards`). Its format lives in `racklet_image::boards`;
//! this module adds the table itself and the check of each row against the
//! driver registry.

use std::path::Path;

pub use racklet_image::boards::{
    Board, BoardFileError, Boards, MAX_DRAM_STAGE, Protocol, Transport, UsbStage,
};

/// The built-in board table.
pub const BUILTIN: &str = include_str!("../boards.toml");

/// The built-in table, plus the boards of `extra` (which replace built-in
/// boards of the same name), each row checked against its driver.
pub fn load(extra: Option<&Path>) -> Result<Boards, BoardFileError> {
    Boards::load(BUILTIN, extra, &crate::drivers::check_board)
}

/// Parses a board file's text with the driver check (for fuzzing and
/// tools); `path` names it in errors.
pub fn parse_str(path: &str, text: &str) -> Result<Boards, BoardFileError> {
    Boards::parse_str(path, text, &crate::drivers::check_board)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_has_the_seed_boards() {
        let b = load(None).unwrap();
        for name in [
            "rock-3a",
            "okdo-rock-3c",
            "quartz64-a",
            "rock-5b",
            "rockpro64",
            "canmv-k230",
            "bpi-canmv-k230d-zero",
            "milkv-duo",
            "milkv-duo-256m",
            "milkv-duo-s",
            "licheerv-nano",
            "visionfive2",
            "milkv-mars",
            "milkv-mars-cm",
            "star64",
            "bpi-f3",
            "musebook",
            "lichee-pi-4a",
        ] {
            assert!(b.find(name).is_some(), "{name} missing");
        }
        assert!(b.boards.iter().all(|b| !b.tested), "no board has been tested on hardware yet");
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let b = load(None).unwrap();
        let mut seen = std::collections::HashSet::new();
        for board in &b.boards {
            for n in std::iter::once(&board.name).chain(&board.aliases) {
                assert!(seen.insert(n.clone()), "{n} is used twice");
            }
        }
    }

    #[test]
    fn suggestions() {
        let b = load(None).unwrap();
        assert_eq!(b.suggest("rock3-a")[0], "rock-3a");
        assert_eq!(b.suggest("visionfive")[0], "visionfive2");
        assert!(b.suggest("zzzzzzzzzzzzzzzzzzzzz").is_empty());
        assert_eq!(b.find("VF2").unwrap().name, "visionfive2");
    }

    #[test]
    fn soc_and_usb_stages_must_be_known_to_the_boards_driver() {
        let row = |soc: &str, stage: &str| {
            format!(
                "[[board]]\nname='t'\ntitle='t'\nsoc='{soc}'\narch='aarch64'\nprotocol='rockchip'\ntransport='usb'\nload_address=0xfdcc1000\nsram_base=0xfdcc0000\nsram_size=0x10000\nusb=[{{stage='{stage}', vid=0x2207, pid=0x350a}}]\nenter='x'\n"
            )
        };
        assert!(parse_str("t.toml", &row("rk3568", "rom")).is_ok());
        let e = parse_str("t.toml", &row("rk3568x", "rom")).unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("soc 'rk3568x' is not a rockchip SoC"), "{e}");
        let e = parse_str("t.toml", &row("rk3568", "romm")).unwrap_err().to_string();
        assert!(e.contains("usb stage 'romm'") && e.contains("known: rom, loader"), "{e}");
    }
}

/// The board table as the README shows it.
#[cfg(test)]
pub fn markdown_table(boards: &Boards) -> String {
    let mut s = String::from(
        "| board | title | SoC | protocol | via | load address | SRAM window | tested |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for b in &boards.boards {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | 0x{:x} | 0x{:x} + 0x{:x} | {} |\n",
            b.name,
            b.title,
            b.soc,
            b.protocol.name(),
            match b.transport {
                Transport::Usb => "USB",
                Transport::Serial => "serial",
            },
            b.load_address,
            b.sram_base,
            b.sram_size,
            if b.tested { "yes" } else { "not yet" }
        ));
    }
    s
}

#[cfg(test)]
mod readme {
    /// The README's board table is generated from boards.toml. To refresh
    /// it, run the tests with RACKLET_BLESS=1.
    #[test]
    fn readme_board_table_matches_boards_toml() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let (start, end) = ("<!-- boards:start -->\n", "<!-- boards:end -->");
        let a = readme.find(start).expect("README has the boards:start marker") + start.len();
        let b = readme.find(end).expect("README has the boards:end marker");
        let want = super::markdown_table(&super::load(None).unwrap());
        if readme[a..b] != want {
            if std::env::var_os("RACKLET_BLESS").is_some() {
                let new = format!("{}{}{}", &readme[..a], want, &readme[b..]);
                std::fs::write(path, new).unwrap();
            } else {
                panic!(
                    "README board table is out of date; run `RACKLET_BLESS=1 cargo test -p racklet-flash readme`"
                );
            }
        }
    }
}
