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
];

/// The built `racklet-flash`, with the caller's RACKLET_* variables removed,
/// no backtraces, and a 60 s limit so a hang fails instead of blocking.
pub fn racklet_flash() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("racklet-flash").expect("racklet-flash is built");
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
