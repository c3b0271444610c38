//! The board table's format: one row per board (its SoC, protocol,
//! transport, load window and USB identities), read from TOML, checked row
//! by row, merged with a user's file, and found by name or alias.
//!
//! The table itself (racklet-flash's built-in `boards.toml`) and the check
//! of each row against the protocol that serves it (its SoCs and USB stage
//! names) belong to the program that ships it: [`Boards::load`] takes both.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The largest stage bound for DRAM that racklet-flash reads: 256 MiB.
pub const MAX_DRAM_STAGE: u64 = 256 << 20;

/// The largest board file read: the built-in table is 15 KiB.
pub const MAX_BOARD_FILE: u64 = 1 << 20;

/// A check of one row beyond the format: the SoC and USB stages its
/// protocol knows. The message says what is wrong and what is known.
pub type Check<'a> = &'a dyn Fn(&Board) -> Result<(), String>;

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
    /// Bytes of DRAM on the board, when a protocol checks loads against it
    /// (K230: the K230D carries 128 MiB in its package).
    #[serde(default)]
    pub dram_size: Option<u64>,
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
    pub fn arch(&self) -> Option<crate::Arch> {
        crate::Arch::from_name(&self.arch)
    }

    /// The largest file one stage of this board may be. Every protocol here
    /// has a stage bound for DRAM (Rockchip's usbplug, K230 `--load`, the
    /// fastboot FSBL's next image, StarFive YMODEM, the Sophgo fip's later
    /// images), whose size the board table does not know: they are bounded
    /// by [`MAX_DRAM_STAGE`], far above any boot stage and far below what
    /// would strain the host.
    pub fn largest_stage(&self) -> u64 {
        MAX_DRAM_STAGE
    }

    /// The USB ids of every stage, in the table's order.
    pub fn usb_ids(&self) -> Vec<(u16, u16)> {
        self.usb.iter().map(|s| (s.vid, s.pid)).collect()
    }

    /// The board's facts as a protocol crate takes them.
    pub fn target(&self) -> crate::Target {
        crate::Target {
            board: self.name.clone(),
            soc: self.soc.clone(),
            arch: self.arch(),
            load_address: self.load_address,
            entry: self.entry,
            window: self.window(),
            usb: self.usb.iter().map(|s| (s.stage.clone(), s.vid, s.pid)).collect(),
            baud: self.baud,
            max_stage: self.largest_stage(),
        }
    }

    /// The load window for fit checks.
    pub fn window(&self) -> crate::Window {
        crate::Window {
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
    #[error(transparent)]
    File(#[from] crate::ImageError),
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

fn parse(path: &str, text: &str, check: Check) -> Result<Vec<Board>, BoardFileError> {
    let f: File = toml::from_str(text)
        .map_err(|e| BoardFileError::Parse { path: path.into(), message: e.to_string() })?;
    for b in &f.board {
        let invalid =
            |m: &str| BoardFileError::Invalid { path: path.into(), name: b.name.clone(), message: m.into() };
        if b.name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        // Names are printed and typed: printable, no spaces, so no name can
        // forge a line of output or send an escape sequence to a terminal.
        for n in std::iter::once(&b.name).chain(&b.aliases) {
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_graphic()) {
                return Err(BoardFileError::Invalid {
                    path: path.into(),
                    name: b.name.escape_debug().to_string(),
                    message: format!(
                        "the name or alias {:?} must be printable characters without spaces (letters, digits, '-', '_', '.')",
                        n
                    ),
                });
            }
        }
        let mut texts: Vec<(&str, &str)> =
            vec![("title", &b.title), ("soc", &b.soc), ("arch", &b.arch), ("enter", &b.enter)];
        texts.extend(b.usb.iter().map(|s| ("usb stage", s.stage.as_str())));
        texts.extend(b.blobs.iter().map(|s| ("blobs", s.as_str())));
        if let Some((field, _)) = texts.iter().find(|(_, t)| t.chars().any(char::is_control)) {
            return Err(invalid(&format!(
                "{field} contains a control character (an escape sequence or a line break)"
            )));
        }
        let want = match b.protocol {
            Protocol::Rockchip | Protocol::Canaan | Protocol::Fastboot => Transport::Usb,
            Protocol::Sophgo | Protocol::Starfive => Transport::Serial,
        };
        if b.transport != want {
            return Err(invalid(&format!(
                "protocol = \"{}\" is reached over transport = \"{}\", not \"{}\"",
                b.protocol.name(),
                transport_name(want),
                transport_name(b.transport)
            )));
        }
        if b.baud == Some(0) {
            return Err(invalid("baud is 0; give the ROM's baud rate (e.g. 115200) or leave it out"));
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
        if let Some(e) = b.entry
            && (e < b.sram_base || e >= b.sram_base.saturating_add(b.sram_size))
        {
            return Err(invalid(&format!(
                "entry 0x{e:x} lies outside sram_base..sram_base+sram_size, where the payload is loaded"
            )));
        }
        // The SoC and the USB stage names must be ones the board's driver
        // knows: a typo fails here, not at `maskrom` time.
        if let Err(m) = check(b) {
            return Err(invalid(&m));
        }
    }
    // Within one file, every name and alias names one board.
    for (i, a) in f.board.iter().enumerate() {
        for b in &f.board[i + 1..] {
            if let Some(n) = shared_name(a, b) {
                return Err(BoardFileError::Invalid {
                    path: path.into(),
                    name: b.name.clone(),
                    message: format!("'{n}' also names board '{}' in the same file", a.name),
                });
            }
        }
    }
    Ok(f.board)
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Usb => "usb",
        Transport::Serial => "serial",
    }
}

/// Every name a board answers to.
fn names(b: &Board) -> impl Iterator<Item = &String> {
    std::iter::once(&b.name).chain(&b.aliases)
}

/// A name (or alias) two boards share, case-insensitively.
fn shared_name<'a>(a: &'a Board, b: &Board) -> Option<&'a str> {
    names(a).find(|n| names(b).any(|m| m.eq_ignore_ascii_case(n))).map(String::as_str)
}

impl Boards {
    /// Parses a board file's text (for fuzzing and tools); `path` names it in errors.
    pub fn parse_str(path: &str, text: &str, check: Check) -> Result<Boards, BoardFileError> {
        Ok(Boards { boards: parse(path, text, check)? })
    }

    /// The built-in table `builtin` (the text of its boards.toml), plus the
    /// boards of `extra` (which replace built-in boards of the same name).
    pub fn load(builtin: &str, extra: Option<&Path>, check: Check) -> Result<Boards, BoardFileError> {
        let mut boards = parse("built-in boards.toml", builtin, check)?;
        if let Some(p) = extra {
            let shown = p.display().to_string();
            let bytes = crate::read_input(p, MAX_BOARD_FILE, "a board file can be")?;
            let text = String::from_utf8(bytes).map_err(|e| BoardFileError::Read {
                path: shown.clone(),
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            for b in parse(&shown, &text, check)? {
                // A user board of a built-in board's name replaces it (the
                // documented override); any other shared name or alias
                // would make one of the two unreachable.
                boards.retain(|x| !x.name.eq_ignore_ascii_case(&b.name));
                if let Some(other) = boards.iter().find(|x| shared_name(&b, x).is_some()) {
                    let n = shared_name(&b, other).unwrap_or_default();
                    return Err(BoardFileError::Invalid {
                        path: shown.clone(),
                        name: b.name.clone(),
                        message: format!(
                            "'{n}' already names the built-in board '{}'; choose another name or alias (a board of the same name as a built-in one replaces it)",
                            other.name
                        ),
                    });
                }
                boards.push(b);
            }
        }
        Ok(Boards { boards })
    }

    /// Finds a board by name or alias (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&Board> {
        self.boards.iter().find(|b| names(b).any(|a| a.eq_ignore_ascii_case(name)))
    }

    /// The boards that could take the file `d` describes, each with
    /// whether its payload fits the board's load window (and why not):
    /// the boards of the file's protocol and SoCs, or only the board
    /// `only` (whatever the file's SoCs say, so its misfit is told).
    pub fn takers(
        &self,
        d: &crate::Description,
        path: &Path,
        only: Option<&str>,
    ) -> Vec<(String, Result<(), String>)> {
        let mut rows = Vec::new();
        for b in &self.boards {
            if only.is_some_and(|o| o != b.name) {
                continue;
            }
            if let Some(proto) = d.protocol
                && proto != b.protocol.name()
            {
                continue;
            }
            if !d.socs.is_empty() && !d.socs.contains(&b.soc) && only.is_none() {
                continue;
            }
            let fit = match d.payload {
                Some(c) => {
                    let at = c.load_address.unwrap_or(b.load_address);
                    crate::check_fit(path, at, c.len, &b.window()).map_err(|e| e.to_string())
                }
                None => Ok(()),
            };
            rows.push((b.name.clone(), fit));
        }
        rows
    }

    /// The SoCs, stage names and boards whose rows list the USB id
    /// `vid:pid`, each once, in the table's order (what `list` says of a
    /// device it sees).
    pub fn using(&self, vid: u16, pid: u16) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (mut socs, mut stages, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for b in &self.boards {
            for s in b.usb.iter().filter(|s| s.vid == vid && s.pid == pid) {
                for (list, item) in [(&mut socs, &b.soc), (&mut stages, &s.stage), (&mut names, &b.name)] {
                    if !list.contains(item) {
                        list.push(item.clone());
                    }
                }
            }
        }
        (socs, stages, names)
    }

    /// The closest board names, for "did you mean".
    pub fn suggest(&self, name: &str) -> Vec<&str> {
        let n = name.to_ascii_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .boards
            .iter()
            .flat_map(|b| std::iter::once(&b.name).chain(b.aliases.iter()).map(move |a| (a, b.name.as_str())))
            .map(|(alias, name)| (levenshtein(&n, &alias.to_ascii_lowercase()), name))
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

    /// Every row passes the protocol check here; the program's own check is
    /// tested where it lives.
    fn any(_: &Board) -> Result<(), String> {
        Ok(())
    }

    /// A built-in table of two boards.
    const BUILTIN: &str = r#"
[[board]]
name = "rock-3a"
aliases = ["rock3a"]
title = "Radxa ROCK 3A"
soc = "rk3568"
arch = "aarch64"
protocol = "rockchip"
transport = "usb"
load_address = 0xfdcc1000
sram_base = 0xfdcc0000
sram_size = 0x10000
usb = [{ stage = "rom", vid = 0x2207, pid = 0x350a }]
enter = "hold MASKROM"

[[board]]
name = "visionfive2"
aliases = ["vf2"]
title = "StarFive VisionFive 2"
soc = "jh7110"
arch = "riscv64"
protocol = "starfive"
transport = "serial"
load_address = 0x08000000
sram_base = 0x08000000
sram_size = 0x40000
enter = "set the boot switches to UART"
"#;

    fn load_file(text: &str) -> Result<Boards, BoardFileError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.toml");
        std::fs::write(&p, text).unwrap();
        Boards::load(BUILTIN, Some(&p), &any)
    }

    const ONE: &str = r#"
[[board]]
name = "MyBoard"
aliases = ["mb"]
title = "Mine"
soc = "k230"
arch = "riscv64"
protocol = "canaan"
transport = "usb"
load_address = 0x80360000
sram_base = 0x80300000
sram_size = 0x100000
usb = [{ stage = "rom", vid = 0x29f1, pid = 0x0230 }]
enter = "x"
"#;

    #[test]
    fn suggestions_and_aliases() {
        let b = Boards::load(BUILTIN, None, &any).unwrap();
        assert_eq!(b.suggest("rock3-a")[0], "rock-3a");
        assert_eq!(b.suggest("visionfive")[0], "visionfive2");
        assert!(b.suggest("zzzzzzzzzzzzzzzzzzzzz").is_empty());
        assert_eq!(b.find("VF2").unwrap().name, "visionfive2");
    }

    #[test]
    fn the_check_is_asked_for_every_row_and_names_the_file() {
        let no =
            |b: &Board| if b.soc == "k230" { Err("soc 'k230' is not known".to_string()) } else { Ok(()) };
        let e = Boards::parse_str("t.toml", ONE, &no).unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("board 'MyBoard'") && e.contains("soc 'k230'"), "{e}");
        assert!(Boards::parse_str("t.toml", ONE, &any).is_ok());
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
        let b = Boards::load(BUILTIN, Some(&p), &any).unwrap();
        assert_eq!(b.find("my-duo").unwrap().sram_size, 0x1000);
        std::fs::write(&p, "[[board]]\nname = 3\n").unwrap();
        let e = Boards::load(BUILTIN, Some(&p), &any).unwrap_err().to_string();
        assert!(e.contains("my.toml"), "{e}");
        std::fs::write(&p, "[[board]]\nname='x'\ntitle='x'\nsoc='x'\narch='mips'\nprotocol='sophgo'\ntransport='serial'\nload_address=0\nsram_base=0\nsram_size=1\nenter='x'\n").unwrap();
        let e = Boards::load(BUILTIN, Some(&p), &any).unwrap_err().to_string();
        assert!(e.contains("arch must be"), "{e}");
    }

    #[test]
    fn names_are_found_whatever_their_case() {
        let b = load_file(ONE).unwrap();
        for n in ["MyBoard", "myboard", "MYBOARD", "MB"] {
            assert_eq!(b.find(n).map(|b| b.name.as_str()), Some("MyBoard"), "{n}");
        }
    }

    #[test]
    fn a_built_in_name_is_replaced_but_an_alias_collides() {
        let b = load_file(&ONE.replace("\"MyBoard\"", "\"VisionFive2\"")).unwrap();
        assert_eq!(b.find("visionfive2").unwrap().soc, "k230");
        assert_eq!(b.boards.iter().filter(|x| x.name.eq_ignore_ascii_case("visionfive2")).count(), 1);
        let e = load_file(&ONE.replace("\"MyBoard\"", "\"vf2\"")).unwrap_err().to_string();
        assert!(e.contains("'vf2' already names the built-in board 'visionfive2'"), "{e}");
        let e = load_file(&ONE.replace("[\"mb\"]", "[\"Rock3A\"]")).unwrap_err().to_string();
        assert!(e.contains("rock-3a"), "{e}");
        let e = load_file(&format!(
            "{ONE}\n{}",
            ONE.replace("\"MyBoard\"", "\"other\"").replace("\"mb\"", "\"MB\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("same file"), "{e}");
    }

    #[test]
    fn the_takers_of_a_file_are_its_protocols_and_socs_boards_and_say_why_not() {
        let b = Boards::load(BUILTIN, None, &any).unwrap();
        let mut d = crate::Description::new("JH7110 SPL image", "starfive");
        d.socs = vec!["jh7110".into()];
        d.payload = Some(crate::describe::Contained { load_address: None, len: 0x100 });
        let p = Path::new("spl.img");
        assert_eq!(b.takers(&d, p, None), vec![("visionfive2".to_string(), Ok(()))]);
        // Too large for its window: it says by how much, naming the file.
        d.payload = Some(crate::describe::Contained { load_address: None, len: 0x40001 });
        let rows = b.takers(&d, p, None);
        let why = rows[0].1.as_ref().unwrap_err();
        assert!(why.contains("spl.img"), "{why}");
        // A board of another protocol is left out, unless asked for.
        assert!(b.takers(&d, p, Some("rock-3a")).is_empty());
        let elf = crate::Description {
            socs: vec!["jh7110".into()],
            payload: Some(crate::describe::Contained { load_address: Some(0x0800_0000), len: 0x100 }),
            ..Default::default()
        };
        let rows = b.takers(&elf, p, Some("rock-3a"));
        assert_eq!(rows.len(), 1);
        assert!(rows[0].1.is_err(), "0x08000000 is not in rock-3a's window: {rows:?}");
    }

    #[test]
    fn the_rows_using_a_usb_id_are_named_once_each() {
        let other = ONE.replace("\"MyBoard\"", "\"Other\"").replace("[\"mb\"]", "[]");
        let two = format!("{ONE}\n{}", other.replace("stage = \"rom\"", "stage = \"loader\""));
        let b = Boards::parse_str("t.toml", &two, &any).unwrap();
        let (socs, stages, names) = b.using(0x29f1, 0x0230);
        assert_eq!(socs, ["k230"]);
        assert_eq!(stages, ["rom", "loader"]);
        assert_eq!(names, ["MyBoard", "Other"]);
        assert_eq!(b.using(0x2207, 0x350a), (vec![], vec![], vec![]));
    }
}
