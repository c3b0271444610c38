//! What the integration tests share: the board table's rows they run on.

use racklet_image::{Target, Window};

/// The board table's rows for bpi-f3 and lichee-pi-4a (crates/cli/boards.toml).
pub fn target(soc: &str) -> Target {
    let (board, load, size, usb) = match soc {
        "k1" => ("bpi-f3", 0xc080_0000, 0x4_0000, vec![("rom", 0x361c, 0x1001), ("fsbl", 0x361c, 0x1001)]),
        _ => (
            "lichee-pi-4a",
            0xff_e000_0000,
            0x20_0000,
            vec![("rom", 0x2345, 0x7654), ("uboot", 0x1234, 0x8888)],
        ),
    };
    Target {
        board: board.into(),
        soc: soc.into(),
        arch: racklet_image::Arch::from_name("riscv64"),
        load_address: load,
        entry: None,
        window: Window { board: board.into(), base: load, size, max_payload: None },
        usb: usb.into_iter().map(|(s, v, p)| (s.to_string(), v, p)).collect(),
        baud: None,
        max_stage: 256 << 20,
    }
}
