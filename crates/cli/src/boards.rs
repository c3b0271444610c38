//! The board table: data, compiled in from boards.toml, extendable by the user.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in board table.
pub const BUILTIN: &str = include_str!("../boards.toml");

/// Which boot-ROM protocol a board speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Rockchip,
    Canaan,
    Sophgo,
    Starfive,
    Fastboot,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rockchip => "rockchip",
            Protocol::Canaan => "canaan",
            Protocol::Sophgo => "sophgo",
            Protocol::Starfive => "starfive",
            Protocol::Fastboot => "fastboot",
        }
    }
}

/// How the host reaches the ROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Usb,
    Serial,
}

/// A USB identity of one stage of a board (rom, loader, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbStage {
    pub stage: String,
    pub vid: u16,
    pub pid: u16,
}

/// One board.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub title: String,
    pub soc: String,
    pub arch: String,
    pub protocol: Protocol,
    pub transport: Transport,
    pub load_address: u64,
    #[serde(default)]
    pub entry: Option<u64>,
    pub sram_base: u64,
    pub sram_size: u64,
    #[serde(default)]
    pub max_payload: Option<u64>,
    #[serde(default)]
    pub usb: Vec<UsbStage>,
    #[serde(default)]
    pub baud: Option<u32>,
    #[serde(default)]
    pub blobs: Vec<String>,
    pub enter: String,
    #[serde(default)]
    pub tested: bool,
}

impl Board {
    /// The architecture as racklet-image names it.
    pub fn arch(&self) -> Option<racklet_image::Arch> {
        racklet_image::Arch::from_name(&self.arch)
    }

    /// The board facts a protocol crate is given.
    pub fn target(&self) -> racklet_image::Target {
        racklet_image::Target {
            board: self.name.clone(),
            soc: self.soc.clone(),
            arch: self.arch(),
            load_address: self.load_address,
            entry: self.entry,
            window: self.window(),
            usb: self.usb.iter().map(|s| (s.stage.clone(), s.vid, s.pid)).collect(),
            baud: self.baud,
        }
    }

    /// The load window for fit checks.
    pub fn window(&self) -> racklet_image::Window {
        racklet_image::Window {
            board: self.name.clone(),
            base: self.sram_base,
            size: self.sram_size,
            max_payload: self
                .max_payload
                .map(|m| (m, format!("the limit set for {} in the board table", self.name))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    board: Vec<Board>,
}

/// A board file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BoardFileError {
    #[error("{path}: cannot read the board file: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: invalid board file: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: board '{name}': {message}")]
    Invalid { path: String, name: String, message: String },
}

/// The whole table.
#[derive(Debug, Clone)]
pub struct Boards {
    pub boards: Vec<Board>,
}

fn parse(path: &str, text: &str) -> Result<Vec<Board>, BoardFileError> {
    let f: File = toml::from_str(text)
        .map_err(|e| BoardFileError::Parse { path: path.into(), message: e.to_string() })?;
    for b in &f.board {
        let invalid =
            |m: &str| BoardFileError::Invalid { path: path.into(), name: b.name.clone(), message: m.into() };
        if b.name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if b.arch().is_none() {
            return Err(invalid("arch must be riscv64, riscv32, aarch64 or arm"));
        }
        if b.sram_size == 0 {
            return Err(invalid("sram_size is 0"));
        }
        if b.load_address < b.sram_base || b.load_address >= b.sram_base.saturating_add(b.sram_size) {
            return Err(invalid("load_address lies outside sram_base..sram_base+sram_size"));
        }
        if b.transport == Transport::Usb && b.usb.is_empty() {
            return Err(invalid("a USB board needs at least one [[usb]] stage"));
        }
    }
    Ok(f.board)
}

impl Boards {
    /// Parses a board file's text (for fuzzing and tools); `path` names it in errors.
    pub fn parse_str(path: &str, text: &str) -> Result<Boards, BoardFileError> {
        Ok(Boards { boards: parse(path, text)? })
    }

    /// The built-in table, plus the boards of `extra` (which replace
    /// built-in boards of the same name).
    pub fn load(extra: Option<&Path>) -> Result<Boards, BoardFileError> {
        let mut boards = parse("built-in boards.toml", BUILTIN)?;
        if let Some(p) = extra {
            let shown = p.display().to_string();
            let text = std::fs::read_to_string(p)
                .map_err(|e| BoardFileError::Read { path: shown.clone(), error: e })?;
            for b in parse(&shown, &text)? {
                boards.retain(|x| x.name != b.name);
                boards.push(b);
            }
        }
        Ok(Boards { boards })
    }

    /// Finds a board by name or alias (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&Board> {
        let n = name.to_ascii_lowercase();
        self.boards.iter().find(|b| b.name == n || b.aliases.iter().any(|a| a.to_ascii_lowercase() == n))
    }

    /// The closest board names, for "did you mean".
    pub fn suggest(&self, name: &str) -> Vec<&str> {
        let n = name.to_ascii_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .boards
            .iter()
            .flat_map(|b| std::iter::once(&b.name).chain(b.aliases.iter()).map(move |a| (a, b.name.as_str())))
            .map(|(alias, name)| (levenshtein(&n, alias), name))
            .filter(|(d, _)| *d <= 3.max(n.len() / 3))
            .collect();
        scored.sort();
        let mut out: Vec<&str> = Vec::new();
        for (_, name) in scored {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out.truncate(3);
        out
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_has_the_seed_boards() {
        let b = Boards::load(None).unwrap();
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
        let b = Boards::load(None).unwrap();
        let mut seen = std::collections::HashSet::new();
        for board in &b.boards {
            for n in std::iter::once(&board.name).chain(&board.aliases) {
                assert!(seen.insert(n.clone()), "{n} is used twice");
            }
        }
    }

    #[test]
    fn suggestions() {
        let b = Boards::load(None).unwrap();
        assert_eq!(b.suggest("rock3-a")[0], "rock-3a");
        assert_eq!(b.suggest("visionfive")[0], "visionfive2");
        assert!(b.suggest("zzzzzzzzzzzzzzzzzzzzz").is_empty());
        assert_eq!(b.find("VF2").unwrap().name, "visionfive2");
    }

    #[test]
    fn user_file_replaces_and_adds_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("my.toml");
        std::fs::write(
            &p,
            r#"
[[board]]
name = "my-duo"
title = "My Duo"
soc = "cv1800b"
arch = "riscv64"
protocol = "sophgo"
transport = "serial"
load_address = 0x3bc00000
sram_base = 0x3bc00000
sram_size = 0x1000
enter = "press it"
"#,
        )
        .unwrap();
        let b = Boards::load(Some(&p)).unwrap();
        assert_eq!(b.find("my-duo").unwrap().sram_size, 0x1000);
        std::fs::write(&p, "[[board]]\nname = 3\n").unwrap();
        let e = Boards::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("my.toml"), "{e}");
        std::fs::write(&p, "[[board]]\nname='x'\ntitle='x'\nsoc='x'\narch='mips'\nprotocol='sophgo'\ntransport='serial'\nload_address=0\nsram_base=0\nsram_size=1\nenter='x'\n").unwrap();
        let e = Boards::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("arch must be"), "{e}");
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
        let want = super::markdown_table(&super::Boards::load(None).unwrap());
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
