//! The payload board table (payloads/boards.toml) and racklet-flash's board
//! table (crates/cli/boards.toml) state the same facts about every board they
//! share: where the ROM loads, and the SRAM window it loads into. A payload
//! linked for one address and a CLI that checks fits against another is the
//! bug this test keeps out (rock-3a and rock-5b disagreed by 0x1000 once).

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Deserialize)]
struct PayloadTable {
    board: Vec<PayloadBoard>,
}

#[derive(Deserialize)]
struct PayloadBoard {
    name: String,
    soc: String,
    arch: String,
    load: u64,
    #[serde(default)]
    image_header: u64,
    sram: Window,
    #[serde(default)]
    header: Option<String>,
}

#[derive(Deserialize)]
struct Window {
    base: u64,
    size: u64,
}

#[derive(Deserialize)]
struct CliTable {
    board: Vec<CliBoard>,
}

#[derive(Deserialize)]
struct CliBoard {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    soc: String,
    arch: String,
    load_address: u64,
    #[serde(default)]
    entry: Option<u64>,
    sram_base: u64,
    sram_size: u64,
}

fn read<T: serde::de::DeserializeOwned>(rel: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn payload_and_cli_boards_agree_on_load_address_and_sram_window() {
    let payloads: PayloadTable = read("payloads/boards.toml");
    let cli: CliTable = read("crates/cli/boards.toml");
    let mut shared = 0;
    let mut wrong = Vec::new();
    for p in &payloads.board {
        let Some(c) = cli.board.iter().find(|c| c.name == p.name || c.aliases.contains(&p.name)) else {
            continue;
        };
        shared += 1;
        let mut check = |what: &str, payload: u64, cli: u64| {
            if payload != cli {
                wrong.push(format!(
                    "{}: {what}: payloads/boards.toml 0x{payload:x}, crates/cli/boards.toml 0x{cli:x}",
                    p.name
                ));
            }
        };
        check("SRAM base", p.sram.base, c.sram_base);
        check("SRAM size", p.sram.size, c.sram_size);
        // racklet-flash's load address is where the ROM puts the image; the
        // payload starts after the header that `racklet-flash image` adds.
        check("load address (+ image header)", p.load, c.load_address + p.image_header);
        if p.header.as_deref() == Some("sophgo-bl2") {
            check("entry after the BL2 header", p.load + 0x20, c.entry.unwrap_or(c.load_address));
        } else if let Some(e) = c.entry {
            check("entry", p.load, e);
        }
        if p.soc != c.soc || p.arch != c.arch {
            wrong.push(format!("{}: soc/arch {}/{} vs {}/{}", p.name, p.soc, p.arch, c.soc, c.arch));
        }
    }
    assert!(wrong.is_empty(), "the board tables disagree:\n  {}", wrong.join("\n  "));
    // Every payload board but the QEMU ones and the Duo S's Arm side is in
    // racklet-flash's table: a renamed board must not make this test vacuous.
    assert!(shared >= 10, "only {shared} boards are in both tables");
}
