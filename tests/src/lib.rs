//! Helpers for the end-to-end tests in `tests/tests/`.
//!
//! The tests run the built `racklet-flash` binary, which `cargo test` does
//! not build for this package: run `cargo build --workspace --bins` first
//! (`scripts/test.sh` does).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod captures;

/// The environment variables of racklet-flash's connection options: a test
/// must not pick up the caller's.
pub const RACKLET_ENV: &[&str] = &[
    "RACKLET_PORT",
    "RACKLET_WAIT",
    "RACKLET_STAGE_TIMEOUT",
    "RACKLET_SIMULATE",
    "RACKLET_JSON",
    "RACKLET_BOARDS",
    "RACKLET_COMPLETE",
];

/// The path of the binary the tests run.
pub fn racklet_flash_path() -> PathBuf {
    match std::env::var_os("RACKLET_FLASH_BIN") {
        Some(p) => PathBuf::from(p),
        None => assert_cmd::cargo::cargo_bin("racklet-flash"),
    }
}

/// The built `racklet-flash`, with the caller's RACKLET_* variables removed,
/// no backtraces, and a 60 s limit so a hang fails instead of blocking.
/// `RACKLET_FLASH_BIN` runs the tests against another build (an older one,
/// to watch a new test fail on it).
pub fn racklet_flash() -> assert_cmd::Command {
    let mut c = match std::env::var_os("RACKLET_FLASH_BIN") {
        Some(p) => assert_cmd::Command::new(p),
        None => assert_cmd::Command::cargo_bin("racklet-flash").expect("racklet-flash is built"),
    };
    for v in RACKLET_ENV {
        c.env_remove(v);
    }
    c.env("RUST_BACKTRACE", "0");
    c.timeout(Duration::from_secs(60));
    c
}

/// Builds a minimal little-endian ELF64 executable by hand, from the ELF
/// specification: `segs` are (physical address, bytes, memory size) of
/// PT_LOAD segments. `machine`: 243 RISC-V, 183 AArch64, 62 x86-64.
pub fn elf64(machine: u16, entry: u64, segs: &[(u64, &[u8], u64)]) -> Vec<u8> {
    let phoff = 64u64;
    let mut data_off = phoff + 56 * segs.len() as u64;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&phoff.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, segs.len() as u16, 64, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (addr, bytes, memsz) in segs {
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&5u32.to_le_bytes());
        out.extend_from_slice(&data_off.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&memsz.to_le_bytes());
        out.extend_from_slice(&8u64.to_le_bytes());
        data_off += bytes.len() as u64;
    }
    for (_, bytes, _) in segs {
        out.extend_from_slice(bytes);
    }
    out
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// A deterministic pseudo-random payload (xorshift), so sizes can be chosen
/// freely without shipping files.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A SpacemiT K1 FSBL.bin around `spl`, laid out as the vendor's
/// build_binary_file.py writes it (AIHD headers at 0x100 and 0xFE0, the SPL
/// at 0x1000, a zero ROTPK whose SHA-256 is in the key data).
pub fn k1_fsbl(spl: &[u8]) -> Vec<u8> {
    let padded = spl.len().div_ceil(32) * 32;
    let mut b = vec![0u8; 0x1000 + padded + 0x100];
    for at in [0x100, 0xfe0] {
        b[at..at + 4].copy_from_slice(b"AIHD");
        b[at + 4] = 1;
        b[at + 24..at + 32].fill(0xa5);
    }
    b[0x109] = 0x10; // header0.imgsize = 0x1000, u64 LE
    b[0xfe8..0xff0].copy_from_slice(&(padded as u64).to_le_bytes());
    // SHA-256 of 256 zero bytes (the ROTPK).
    let zero_rotpk_sha256: [u8; 32] = [
        0x53, 0x41, 0xe6, 0xb2, 0x64, 0x69, 0x79, 0xa7, 0x0e, 0x57, 0x65, 0x30, 0x07, 0xa1, 0xf3, 0x10, 0x16,
        0x94, 0x21, 0xec, 0x9b, 0xdd, 0x9f, 0x1a, 0x56, 0x48, 0xf7, 0x5a, 0xde, 0x00, 0x5a, 0xf1,
    ];
    b[0x2b8..0x2d8].copy_from_slice(&zero_rotpk_sha256);
    b[0x1000..0x1000 + spl.len()].copy_from_slice(spl);
    b
}

/// The prebuilt hello payload of `board`, or of a board with the same SoC.
pub fn prebuilt_hello(board: &str, soc: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../payloads/prebuilt");
    let own = root.join(board).join("hello.elf");
    if own.exists() {
        return Some(own);
    }
    // payloads/boards.toml names each payload board's SoC.
    let table: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("../boards.toml")).ok()?).ok()?;
    table.get("board")?.as_array()?.iter().find_map(|b| {
        let same = b.get("soc")?.as_str()? == soc;
        let p = root.join(b.get("name")?.as_str()?).join("hello.elf");
        (same && p.exists()).then_some(p)
    })
}

/// The value of a protocol fact in a `done` event's `details` (the first of
/// that key), e.g. "next stage".
pub fn detail<'a>(done: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    done["details"].as_array()?.iter().find(|d| d["key"] == key)?["value"].as_str()
}
