//! End-to-end: the contracts of the built binary for K230 boards
//! (`--simulate`): flags, exit codes, messages, JSON, `--record`, `image`,
//! `info` and `sim`. The flow itself (wire bytes, re-enumeration, faults) is
//! tested in-process in `protocols/canaan/tests/boot.rs`.
//!
//! Expected values are written out from the fact sheet
//! (shared/protocols/canaan-k230.md §2, §3, §7), not taken from the client.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

const SRAM_END: u64 = 0x8040_0000;
const LOAD: u64 = 0x8036_0000;

fn bin() -> Command {
    racklet_tests::racklet_flash()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The transcript's device opens and transfers (not its header, the bus
/// listing's attach/detach or its end: docs/transcripts.md).
fn transcript(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| !matches!(v["t"].as_str(), Some("header" | "attach" | "detach" | "end")))
        .collect()
}

/// Sizes of the bulk writes (long ones are recorded by hash and length).
fn bulk_sizes(t: &[Value]) -> Vec<usize> {
    t.iter()
        .filter(|r| r["t"] == "bulk_out")
        .map(|r| r["data"].as_str().map(|d| d.len() / 2).or(r["len"].as_u64().map(|n| n as usize)).unwrap())
        .collect()
}

/// (wValue, wIndex) of every control OUT with bRequest `req`.
fn requests(t: &[Value], req: u64) -> Vec<(u64, u64)> {
    t.iter()
        .filter(|r| r["t"] == "ctrl_out" && r["req"] == req && r["rt"] == 0x40)
        .map(|r| (r["val"].as_u64().unwrap(), r["idx"].as_u64().unwrap()))
        .collect()
}

/// A run prints its facts and the virtual ROM's verdict, and ends once the
/// ROM took PROG_START; `--record` writes every transfer (the last one is
/// PROG_START, `40 04 36 80 00 00 00 00`).
#[test]
fn a_run_prints_its_facts_and_the_virtual_roms_verdict() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "p.bin", &pattern(2500));
    let rec = d.path().join("t.jsonl");
    let o = run(&[
        "maskrom",
        "canmv-k230",
        p.to_str().unwrap(),
        "--simulate",
        "--stage-timeout",
        "100ms",
        "--record",
        rec.to_str().unwrap(),
        "--record-data",
        "full",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("port: 1-1"), "{out}");
    assert!(out.contains("chip: K230 boot ROM"), "{out}");
    assert!(out.contains("payload: 2500 bytes in 1 file(s), started at 0x80360000"), "{out}");
    assert!(out.contains("virtual ROM: loaded 2500 bytes at 0x80360000; jumped to 0x80360000"), "{out}");
    assert!(out.contains("done: canmv-k230 started"), "{out}");
    // The run ends once PROG_START was taken: nothing is awaited after it.
    assert!(!out.contains("next stage"), "{out}");
    let t = transcript(&rec);
    assert_eq!(t[0]["t"], "open");
    assert_eq!((t[0]["vid"].as_u64(), t[0]["pid"].as_u64()), (Some(0x29f1), Some(0x0230)));
    assert_eq!(bulk_sizes(&t), [1000, 1000, 500]);
    let last = t.last().unwrap();
    assert_eq!(
        (last["t"].as_str(), last["rt"].as_u64(), last["req"].as_u64()),
        (Some("ctrl_out"), Some(0x40), Some(4))
    );
    assert_eq!(requests(&t, 4), [(0x8036, 0x0000)]);
}

/// The SRAM ends at 0x80400000: a payload at 0x80360000 may hold exactly
/// 0x80400000 - 0x80360000 bytes. One more is bad input (exit 2) and no
/// USB transfer happens at all.
#[test]
fn sram_fit_boundary() {
    let d = tempfile::tempdir().unwrap();
    let fit = (SRAM_END - LOAD) as usize;
    let ok = write(d.path(), "fit.bin", &pattern(fit));
    let o = run(&["maskrom", "canmv-k230", ok.to_str().unwrap(), "--simulate", "--stage-timeout", "0"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains(&format!("loaded {fit} bytes at 0x80360000")));

    let big = write(d.path(), "big.bin", &pattern(fit + 1));
    let rec = d.path().join("t.jsonl");
    let o = run(&[
        "maskrom",
        "canmv-k230",
        big.to_str().unwrap(),
        "--simulate",
        "--record",
        rec.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("do not fit"), "{}", text(&o));
    assert!(transcript(&rec).is_empty(), "no USB traffic before the input is checked");
}

/// The kburn loader is not the boot ROM: not found (exit 3), with what to do.
#[test]
fn the_loader_stage_is_not_found_with_a_hint() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "p.bin", &pattern(64));
    let o = run(&["maskrom", "canmv-k230", p.to_str().unwrap(), "--simulate", "--fault", "loader"]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Uboot Stage for K230") && out.contains("kburn loader"), "{out}");
    assert!(out.contains("hint: power-cycle the board into its boot ROM"), "{out}");
    assert!(out.contains("Hold the BOOT button"), "the board's own way into its ROM: {out}");
}

/// `--fault` takes the virtual ROM's names; `--force` sends ROM commands to
/// a chip that does not say "K230" (refused without it, exit 7).
#[test]
fn fault_names_and_force() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "p.bin", &pattern(3000));
    let p = p.to_str().unwrap();
    let o = run(&["maskrom", "canmv-k230", p, "--simulate", "--fault", "wrong-cpu"]);
    assert_eq!(code(&o), 7, "{}", text(&o));
    assert!(text(&o).contains("K210") && text(&o).contains("hint: add --force"), "{}", text(&o));
    assert!(!text(&o).contains("done:"), "{}", text(&o));
    let o = run(&["maskrom", "canmv-k230", p, "--simulate", "--fault", "wrong-cpu", "--force"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("chip: unknown (GET_CPU_INFO \"K210\", forced)"), "{}", text(&o));
    let o = run(&["maskrom", "canmv-k230", p, "--simulate", "--fault", "nonsense"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("stall-bulk"), "{}", text(&o));
}

/// oreboot's flow from the command line: `--load` twice and `--run`, two
/// stages, both reported, and the virtual ROM saw the first one come back.
#[test]
fn dram_init_then_main_stage() {
    let d = tempfile::tempdir().unwrap();
    let bt0 = write(d.path(), "bt0.bin", &pattern(1500));
    let main = write(d.path(), "main.bin", &pattern(4096));
    let o = run(&[
        "maskrom",
        "k230",
        "--load",
        &format!("0x80360000={}", bt0.display()),
        "--load",
        &format!("0x08000000={}", main.display()),
        "--run",
        "0x08000000",
        "--simulate",
        "--stage-timeout",
        "500ms",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("stage 1: 1500 bytes"), "{out}");
    assert!(out.contains("stage 2: 4096 bytes in 1 file(s), started at 0x08000000"), "{out}");
    assert!(out.contains("DRAM init, back into the ROM"), "{out}");
    assert!(out.contains("jumped to 0x08000000"), "{out}");
}

#[test]
fn bad_load_plans_are_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let m = write(d.path(), "m.bin", &pattern(100));
    let p = m.to_str().unwrap();
    // DRAM before any DRAM-init stage.
    let o = run(&["maskrom", "canmv-k230", "--load", &format!("0x08000000={p}"), "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("DRAM-init stage"), "{}", text(&o));
    // Crossing the end of SRAM.
    let o = run(&["maskrom", "canmv-k230", "--load", &format!("0x803fffc0={p}"), "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    // Nothing at all, and a Rockchip option.
    let o = run(&["maskrom", "canmv-k230", "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let o = run(&["maskrom", "canmv-k230", p, "--dram", p, "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    // Refused as another protocol's option, naming the K230's own.
    assert!(text(&o).contains("--dram is a rockchip option") && text(&o).contains("--load"), "{}", text(&o));
}

/// With `--follow`, the next stage is a fact of the JSON `done` event: a
/// payload that is the kburn loader re-enumerates as the loader.
#[test]
fn next_stage_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let mut code_bytes = pattern(5000);
    code_bytes.extend_from_slice(b"Uboot Stage for K230");
    let p = write(d.path(), "loader.bin", &code_bytes);
    let o = run(&[
        "maskrom",
        "canmv-k230",
        p.to_str().unwrap(),
        "--simulate",
        "--stage-timeout",
        "2s",
        "--follow",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let done = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "done")
        .expect("a done event");
    let next = racklet_tests::detail(&done, "next stage").unwrap();
    assert!(next.contains("kburn loader") && next.contains("Uboot Stage for K230"), "{next}");
}

/// `--follow` asks for a next stage: a main stage in DRAM, which never comes
/// up on USB, is then a timeout (exit 6), not a success.
#[test]
fn follow_without_a_next_stage_is_a_timeout() {
    let d = tempfile::tempdir().unwrap();
    let bt0 = write(d.path(), "bt0.bin", &pattern(700));
    let main = write(d.path(), "main.bin", &pattern(700));
    let o = run(&[
        "maskrom",
        "canmv-k230",
        "--load",
        &format!("0x80360000={}", bt0.display()),
        "--load",
        &format!("0x08000000={}", main.display()),
        "--simulate",
        "--stage-timeout",
        "200ms",
        "--follow",
    ]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(text(&o).contains("did not appear at USB port 1-1"), "{}", text(&o));
    assert!(text(&o).contains("hint: raise --stage-timeout"), "{}", text(&o));
    assert!(!text(&o).contains("done:"), "{}", text(&o));
}

/// A RISC-V ELF64 with one PT_LOAD of `code` at `addr` (the shared helper,
/// laid out by hand from the ELF specification).
fn elf(addr: u64, entry: u64, code: &[u8]) -> Vec<u8> {
    racklet_tests::elf64(243, entry, &[(addr, code, code.len() as u64)])
}

/// Sheet §3 worked example: 16-byte payload 00..0f gives these 548 bytes.
#[test]
fn image_matches_the_worked_example_and_info_verifies_it() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "p.bin", &(0u8..16).collect::<Vec<_>>());
    let img = d.path().join("fw.img");
    let o = run(&["image", "canmv-k230", p.to_str().unwrap(), "-o", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let got = std::fs::read(&img).unwrap();
    let mut want = Vec::new();
    want.extend_from_slice(&[0x4B, 0x32, 0x33, 0x30, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    want.extend_from_slice(&[
        0xD1, 0x43, 0xDB, 0x28, 0x5B, 0xF2, 0x50, 0x3E, 0xA8, 0xBE, 0xBD, 0xC9, 0xE2, 0x50, 0x27, 0x81, 0x48,
        0x11, 0xEC, 0xAF, 0xB5, 0x31, 0x6B, 0xED, 0x53, 0x54, 0xBD, 0x65, 0xF9, 0x50, 0x95, 0xFB,
    ]);
    want.resize(0x210, 0);
    want.extend_from_slice(&[0, 0, 0, 0]);
    want.extend(0u8..16);
    assert_eq!(got, want);

    let o = run(&["info", img.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["kind"].as_str().unwrap().contains("K230 firmware image"));
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["name"] == "sha256" && c["ok"] == true), "{v}");

    // One payload byte changed: the hash check fails, exit 2.
    let mut bad = got.clone();
    bad[0x214 + 3] ^= 0xff;
    let b = write(d.path(), "bad.img", &bad);
    let o = run(&["info", b.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("sha256"), "{}", text(&o));
}

#[test]
fn signed_image_types_are_named() {
    let d = tempfile::tempdir().unwrap();
    let mut img = vec![0u8; 0x214 + 32];
    img[..4].copy_from_slice(b"K230");
    img[4..8].copy_from_slice(&(4u32 + 32 + 16).to_le_bytes());
    img[8] = 2;
    img[0x0C + 256..0x0C + 260].copy_from_slice(&65537u32.to_le_bytes());
    let p = write(d.path(), "signed.img", &img);
    let o = run(&["info", p.to_str().unwrap()]);
    let out = text(&o);
    assert!(out.contains("AES-256-GCM + RSA-2048"), "{out}");
    assert!(out.contains("65537"), "{out}");
    assert!(out.contains("not checked"), "{out}");
}

#[test]
fn image_refuses_payloads_that_cannot_boot_from_sram() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "big.bin", &pattern(0x20_0001));
    let o =
        run(&["image", "canmv-k230", p.to_str().unwrap(), "-o", d.path().join("x.img").to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let e = write(d.path(), "dram.elf", &elf(0x0800_0000, 0x0800_0000, &pattern(16)));
    let o =
        run(&["image", "canmv-k230", e.to_str().unwrap(), "-o", d.path().join("y.img").to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(!d.path().join("y.img").exists());
}

#[test]
fn sim_command_without_tcp_is_bad_usage_that_names_the_ways() {
    // Bad usage, exit 2, as for every board `sim` cannot serve without
    // --tcp (ux review §15).
    let o = run(&["sim", "canmv-k230"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("--tcp"), "{}", text(&o));
    assert!(text(&o).contains("--simulate"), "{}", text(&o));
}

/// Review F3: a ROM that comes back at the same USB address after an SRAM
/// payload (`--fault same-address`) is back, not "did not start".
#[test]
fn a_rom_back_at_the_same_address_is_followed() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "hello.bin", &pattern(1278));
    let o = run(&[
        "maskrom",
        "canmv-k230",
        p.to_str().unwrap(),
        "--simulate",
        "--fault",
        "same-address",
        "--stage-timeout",
        "2s",
        "--follow",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("next stage: the K230 boot ROM at USB port 1-1"), "{}", text(&o));
}

/// Review F4 and F6 through the binary: the ROM's own SRAM and loads past
/// the K230D's 128 MiB are exit 2 before any transfer, saying why.
#[test]
fn rom_sram_and_k230d_dram_limits_are_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let m = write(d.path(), "m.bin", &pattern(100));
    let p = m.to_str().unwrap();
    let o = run(&["maskrom", "canmv-k230", "--load", &format!("0x80200000={p}"), "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("the boot ROM's own data and stack"), "{}", text(&o));
    let bt0 = write(d.path(), "bt0.bin", &pattern(100));
    let args = |board: &'static str| {
        vec![
            "maskrom".to_string(),
            board.to_string(),
            "--load".into(),
            format!("0x80360000={}", bt0.display()),
            "--load".into(),
            format!("0x08000000={p}"),
            "--simulate".into(),
        ]
    };
    let o = bin().args(args("bpi-canmv-k230d-zero")).output().unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("128 MiB of DRAM"), "{}", text(&o));
    let o = bin().args(args("canmv-k230")).output().unwrap();
    assert_eq!(code(&o), 0, "the K230 board takes it: {}", text(&o));
}

/// Review F8: `image` refuses the prebuilt USB payload (linked at
/// 0x80360000) and says where on the card an image goes.
#[test]
fn image_wants_a_payload_linked_for_storage_boot() {
    let d = tempfile::tempdir().unwrap();
    let usb = write(d.path(), "usb.elf", &elf(LOAD, LOAD, &pattern(16)));
    let o =
        run(&["image", "canmv-k230", usb.to_str().unwrap(), "-o", d.path().join("u.img").to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("runs it there (0x80360000 is the USB download address)"), "{}", text(&o));
    let spl = write(d.path(), "spl.elf", &elf(0x8030_0000, 0x8030_0000, &pattern(16)));
    let o =
        run(&["image", "canmv-k230", spl.to_str().unwrap(), "-o", d.path().join("s.img").to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains(
            "note: the boot ROM reads this image from an SD card or eMMC at byte 0x100000 (sector 2048)"
        ),
        "{}",
        text(&o)
    );
}

/// ux review §2: the K230's own storage image (what `image canmv-k230`
/// writes for the SD card) given to the USB boot ROM would be loaded and
/// its header jumped into: refused, exit 2, naming what it is and where it
/// goes; `--force` sends it anyway. A text file is no payload either.
#[test]
fn a_storage_image_or_a_text_file_is_not_a_payload_for_the_rom() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "hello.bin", &pattern(1278));
    let img = d.path().join("k.img");
    let o = run(&["image", "canmv-k230", p.to_str().unwrap(), "-o", img.to_str().unwrap(), "--force"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = run(&["maskrom", "canmv-k230", img.to_str().unwrap(), "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("K230 firmware image") && text(&o).contains("racklet-flash write"),
        "{}",
        text(&o)
    );
    let o = run(&["maskrom", "canmv-k230", img.to_str().unwrap(), "--simulate", "--force"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let readme = write(d.path(), "README.md", "# A board\n\nSome notes about it.\n".repeat(20).as_bytes());
    let o = run(&["maskrom", "canmv-k230", readme.to_str().unwrap(), "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("a text file"), "{}", text(&o));
}
