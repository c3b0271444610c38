//! Generates the board a payload is built for, from `payloads/boards.toml`
//! and the board named by the `RACKLET_BOARD` environment variable:
//!
//! * `$OUT_DIR/racklet.ld`: the memory map (`SRAM` region: origin = load
//!   address, length = what the payload may use), the boot hart, the
//!   header fragment the board wants (`ld/header-<name>.ld`), then
//!   `ld/common.ld`. Payload binaries link with `-Tracklet.ld`
//!   (`.cargo/config.toml`); this script puts `$OUT_DIR` and `ld/` on the
//!   linker's search path.
//! * `$OUT_DIR/board.rs`: `pub const BOARD: Board = …`, included by `lib.rs`.
use std::{env, fmt::Write as _, fs, path::PathBuf};

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    board: Vec<Board>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Board {
    name: String,
    soc: String,
    arch: String,
    load: u64,
    #[serde(default)]
    image_header: u64,
    sram: Window,
    #[serde(default)]
    max_size: Option<u64>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    boot_hart: u64,
    console: Console,
    #[serde(default)]
    uart_clock: Option<u64>,
    #[serde(default)]
    timer: Option<TimerSpec>,
    #[serde(default)]
    fastload: Option<Fastload>,
    exit: Exit,
    memtest: Window,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimerSpec {
    kind: String,
    #[serde(default)]
    address: Option<u64>,
    #[serde(default)]
    hz: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fastload {
    /// Where the ROM or QEMU puts the loader (and starts it).
    load: u64,
    /// Where the loader runs, when not there: it copies itself first
    /// (QEMU's riscv64 virt starts at the RAM base, where images go).
    #[serde(default)]
    run: Option<u64>,
    /// What the loader may use from there: code, data, stack.
    size: u64,
    /// Where it may put an image.
    window: Window,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    base: u64,
    size: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Console {
    kind: String,
    base: u64,
    #[serde(default)]
    stride: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exit {
    kind: String,
    #[serde(default)]
    address: Option<u64>,
}

fn fail(msg: String) -> ! {
    // A build-script panic shows the message to the user as the build error.
    panic!("\n\nracklet-bsp: {msg}\n\n")
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let table_path = manifest.join("../boards.toml");
    let lddir = manifest.join("ld");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", table_path.display());
    println!("cargo:rerun-if-changed={}", lddir.display());
    println!("cargo:rerun-if-env-changed=RACKLET_BOARD");
    println!("cargo:rerun-if-env-changed=RACKLET_LAYOUT");

    let text = fs::read_to_string(&table_path)
        .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", table_path.display())));
    let table: Table =
        toml::from_str(&text).unwrap_or_else(|e| fail(format!("{}: {e}", table_path.display())));
    let names = || table.board.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ");

    let Ok(want) = env::var("RACKLET_BOARD") else {
        fail(format!(
            "RACKLET_BOARD is not set. Build with ./build.sh, or set RACKLET_BOARD to one of: {}",
            names()
        ))
    };
    let Some(b) = table.board.iter().find(|b| b.name == want) else {
        fail(format!("RACKLET_BOARD={want}: no such board in {}; boards: {}", table_path.display(), names()))
    };

    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    if b.arch != target_arch {
        fail(format!(
            "board {} is {}, but this build targets {target_arch}; build.sh picks the target from boards.toml",
            b.name, b.arch
        ));
    }
    // RACKLET_LAYOUT=fastload (build.sh, for the fastload binary): the
    // loader's own place from the board's fastload record.
    let layout = env::var("RACKLET_LAYOUT").unwrap_or_default();
    let (origin, mut length) = match layout.as_str() {
        "" => {
            if b.load < b.sram.base + b.image_header || b.load >= b.sram.base + b.sram.size {
                fail(format!(
                    "board {}: load 0x{:x} is outside its SRAM window 0x{:x}+0x{:x} (after a 0x{:x}-byte image header)",
                    b.name, b.load, b.sram.base, b.sram.size, b.image_header
                ));
            }
            (b.load, b.sram.base + b.sram.size - b.load)
        }
        "fastload" => match &b.fastload {
            Some(_) if b.timer.is_none() || b.uart_clock.is_none() => fail(format!(
                "board {}: fastload needs the board's timer and uart_clock in boards.toml (the rate change and its 1 s fallback)",
                b.name
            )),
            Some(f) => (f.run.unwrap_or(f.load), f.size),
            None => fail(format!(
                "board {} has no fastload record in boards.toml: its ROM does not boot over a UART, or nobody has described it yet",
                b.name
            )),
        },
        other => fail(format!("RACKLET_LAYOUT={other}: unknown layout (leave it unset, or fastload)")),
    };
    if layout.is_empty() {
        if let Some(m) = b.max_size {
            length = length.min(m);
        }
    }

    // --- the linker script --------------------------------------------------
    let mut ld = String::new();
    writeln!(
        ld,
        "/* Generated by racklet-bsp's build.rs from payloads/boards.toml: {} ({}). */",
        b.name, b.soc
    )
    .unwrap();
    writeln!(ld, "MEMORY\n{{\n    SRAM (rwx) : ORIGIN = 0x{origin:X}, LENGTH = 0x{length:X}").unwrap();
    // A loader that runs elsewhere than it is loaded: its image is linked
    // for `run` and placed at `load`; the entry code copies it (riscv64.rs).
    let moved = match (&b.fastload, layout.as_str()) {
        (Some(f), "fastload") => f.run.filter(|&r| r != f.load).map(|_| f.load),
        _ => None,
    };
    if let Some(at) = moved {
        writeln!(ld, "    LOADMEM (rwx) : ORIGIN = 0x{at:X}, LENGTH = 0x{length:X}").unwrap();
    }
    writeln!(ld, "}}").unwrap();
    if moved.is_none() {
        writeln!(ld, "REGION_ALIAS(\"LOADMEM\", SRAM);").unwrap();
    }
    println!("cargo:rustc-check-cfg=cfg(racklet_relocate)");
    if moved.is_some() {
        println!("cargo:rustc-cfg=racklet_relocate");
    }
    if layout == "fastload" {
        // The loader's own few KiB: a smaller stack than the payloads'.
        writeln!(ld, "__racklet_stack_size = 0x1000;").unwrap();
    }
    if b.boot_hart != 0 {
        writeln!(ld, "__racklet_boot_hart = {};", b.boot_hart).unwrap();
    }
    if let (Some(h), "") = (&b.header, layout.as_str()) {
        let frag = lddir.join(format!("header-{h}.ld"));
        if !frag.exists() {
            fail(format!("board {}: header \"{h}\" has no fragment {}", b.name, frag.display()));
        }
        // The branch over a 32-byte header, per architecture: RISC-V `j +32`,
        // AArch64 `b +32`.
        let jump = match target_arch.as_str() {
            "riscv64" => 0x0200_006F_u32,
            _ => 0x1400_0008,
        };
        writeln!(ld, "__racklet_head_jump = 0x{jump:08X};").unwrap();
        writeln!(ld, "INCLUDE header-{h}.ld").unwrap();
    }
    writeln!(ld, "INCLUDE common.ld").unwrap();
    if moved.is_some() {
        writeln!(ld, "__racklet_image_end = ADDR(.data) + SIZEOF(.data);").unwrap();
    }
    fs::write(out.join("racklet.ld"), ld).unwrap();
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-search=native={}", lddir.display());

    // --- the board const --------------------------------------------------
    let console = match b.console.kind.as_str() {
        "uart8250" => {
            let stride = b
                .console
                .stride
                .unwrap_or_else(|| fail(format!("board {}: uart8250 needs a stride", b.name)));
            format!("Console::Uart8250 {{ base: 0x{:x}, stride: {stride} }}", b.console.base)
        }
        "pl011" => format!("Console::Pl011 {{ base: 0x{:x} }}", b.console.base),
        k => fail(format!("board {}: unknown console kind \"{k}\" (uart8250, pl011)", b.name)),
    };
    let need_addr = || {
        b.exit
            .address
            .unwrap_or_else(|| fail(format!("board {}: exit \"{}\" needs an address", b.name, b.exit.kind)))
    };
    let exit = match b.exit.kind.as_str() {
        "return" => "Exit::Return".to_string(),
        "park" => "Exit::Park".to_string(),
        "psci-hvc" => "Exit::PsciHvc".to_string(),
        "jump" => format!("Exit::Jump(0x{:x})", need_addr()),
        "sifive-test" => format!("Exit::SifiveTest(0x{:x})", need_addr()),
        k => fail(format!(
            "board {}: unknown exit kind \"{k}\" (return, park, psci-hvc, jump, sifive-test)",
            b.name
        )),
    };
    let arch = match b.arch.as_str() {
        "riscv64" => "Arch::Riscv64",
        _ => "Arch::Aarch64",
    };
    let clock = match b.uart_clock {
        Some(c) => format!("Some({c})"),
        None => "None".to_string(),
    };
    let timer = match &b.timer {
        None => "Timer::None".to_string(),
        Some(t) => match t.kind.as_str() {
            "mmio64" => format!(
                "Timer::Mmio64 {{ address: 0x{:x}, hz: {} }}",
                t.address.unwrap_or_else(|| fail(format!("board {}: timer mmio64 needs an address", b.name))),
                t.hz.unwrap_or_else(|| fail(format!("board {}: timer mmio64 needs hz", b.name)))
            ),
            "cntpct" => "Timer::Cntpct".to_string(),
            k => fail(format!("board {}: unknown timer kind \"{k}\" (mmio64, cntpct)", b.name)),
        },
    };
    let window = match &b.fastload {
        Some(f) => format!("MemRange {{ base: 0x{:x}, size: 0x{:x} }}", f.window.base, f.window.size),
        None => "MemRange { base: 0, size: 0 }".to_string(),
    };
    let mut rs = String::new();
    writeln!(rs, "// Generated by racklet-bsp's build.rs from payloads/boards.toml.").unwrap();
    writeln!(
        rs,
        "/// The board this payload is built for (RACKLET_BOARD={}).\n\
         pub const BOARD: Board = Board {{\n    \
         name: {:?},\n    soc: {:?},\n    arch: {arch},\n    console: {console},\n    \
         exit: {exit},\n    memtest: MemRange {{ base: 0x{:x}, size: 0x{:x} }},\n}};\n\
         /// Where this binary's first byte is (the board's load address, or\n\
         /// the fastload loader's place).\n\
         pub const LOAD_ADDRESS: usize = 0x{:x};\n\
         /// How many bytes from LOAD_ADDRESS the payload may use.\n\
         pub const SRAM_LEN: usize = 0x{length:x};\n\
         /// The console UART's input clock in Hz, when known.\n\
         pub const UART_CLOCK: Option<u32> = {clock};\n\
         /// The board's timer.\n\
         pub const TIMER: Timer = {timer};\n\
         /// Where the fastload loader may put an image (empty without one).\n\
         pub const FASTLOAD_WINDOW: MemRange = {window};",
        b.name, b.name, b.soc, b.memtest.base, b.memtest.size, origin
    )
    .unwrap();
    fs::write(out.join("board.rs"), rs).unwrap();
}
