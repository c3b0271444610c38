//! `write bpi-f3 --bundle DIR` on a K1 that boots from its SPI NOR: the
//! virtual board of crates/sim (`racklet-flash sim bpi-f3 --tcp …
//! --medium spi-nor[+nvme]`, written from SpacemiT's vendor U-Boot:
//! `flash mtd` sets `mtdparts` and a sticky flag, names not on the NOR fall
//! back to the block device, `flash gpt` writes the NVMe's GPT), reached
//! over TCP. What was written is read back from the board's storage files
//! (the NOR in FILE, the NVMe in FILE.nvme) at the offsets the vendor's
//! tables give, worked out here by hand, never from the client.
//!
//! The vendor order for a NOR board with a block device behind it
//! (spacemit-com docs, "nor+blk设备刷机"): `flash mtd partition_2M.json`,
//! the NOR's images, then `flash gpt partition_universal.json` and the
//! block device's images.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use racklet_tests::SimServer;

fn bin() -> Command {
    racklet_tests::racklet_flash()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn noise(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed)).collect()
}

fn fit(n: usize, seed: u8) -> Vec<u8> {
    let mut b = noise(n, seed);
    b[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
    b
}

/// SpacemiT's partition_2M.json for SPI NOR (buildroot-ext
/// board/spacemit/k1, as the K1 docs print it): `env` has no image, and
/// `uboot` takes the rest of the NOR.
const NOR_TABLE: &str = r#"{
  "version": "1.0",
  "format": "mtd",
  "partitions": [
    {"name": "bootinfo", "offset": "0", "size": "128K", "image": "factory/bootinfo_spinor.bin"},
    {"name": "fsbl", "offset": "128K", "size": "256K", "image": "factory/FSBL.bin"},
    {"name": "env", "offset": "384K", "size": "64K"},
    {"name": "opensbi", "offset": "448K", "size": "192K", "image": "fw_dynamic.itb"},
    {"name": "uboot", "offset": "640K", "size": "-", "image": "u-boot.itb"}
  ]
}"#;

/// The block device's table (partition_universal.json's shape).
const BLK_TABLE: &str = r#"{
    "version": "1.0",
    "format": "gpt",
    "partitions": [
        {"name": "bootinfo", "offset": "0K", "size": "512", "image": "factory/bootinfo_sd.bin"},
        {"name": "fsbl", "offset": "128K", "size": "256K", "image": "factory/FSBL.bin"},
        {"name": "env", "offset": "384K", "size": "64K", "image": "env.bin"},
        {"name": "opensbi", "size": "384K", "image": "fw_dynamic.itb"},
        {"name": "uboot", "size": "2M", "image": "u-boot.itb"},
        {"name": "bootfs", "offset": "4M", "size": "256M", "image": "bootfs.ext4"},
        {"name": "rootfs", "offset": "260M", "size": "-", "image": "rootfs.ext4"}
    ]
}"#;

/// Where the NOR table puts each part on the NOR (bytes): the offsets of
/// partition_2M.json.
const NOR_AT: &[(&str, &str, u64)] = &[
    ("bootinfo", "factory/bootinfo_spinor.bin", 0),
    ("fsbl", "factory/FSBL.bin", 128 << 10),
    ("opensbi", "fw_dynamic.itb", 448 << 10),
    ("uboot", "u-boot.itb", 640 << 10),
];

/// A Bianbu-shaped bundle with both tables; its files by name.
fn bundle(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    std::fs::create_dir_all(dir.join("factory")).unwrap();
    let files = vec![
        ("factory/FSBL.bin", racklet_tests::k1_fsbl(&noise(97_000, 1))),
        ("factory/bootinfo_spinor.bin", noise(80, 2)),
        ("factory/bootinfo_sd.bin", noise(80, 3)),
        ("env.bin", noise(65_536, 4)),
        ("fw_dynamic.itb", noise(120_000, 5)),
        ("u-boot.itb", fit(700_000, 6)),
        ("bootfs.ext4", noise(300 * 4096, 7)),
        ("rootfs.ext4", noise(733 * 4096, 8)),
    ];
    for (f, b) in &files {
        write(dir, f, b);
    }
    write(dir, "partition_2M.json", NOR_TABLE.as_bytes());
    write(dir, "partition_universal.json", BLK_TABLE.as_bytes());
    files
}

fn region(path: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    b
}

/// The NOR holds each image at its table offset, and reads as erased NOR
/// (0xFF) right after it and in the env partition.
fn assert_nor(nor: &Path, files: &[(&str, Vec<u8>)]) {
    assert_eq!(std::fs::metadata(nor).unwrap().len(), 8 << 20, "an 8 MiB NOR");
    for (name, file, at) in NOR_AT {
        let bytes = &files.iter().find(|f| f.0 == *file).unwrap().1;
        assert!(region(nor, *at, bytes.len()) == *bytes, "NOR partition {name} differs");
        assert_eq!(region(nor, at + bytes.len() as u64, 16), [0xff; 16], "after {name}: erased NOR");
    }
    assert!(region(nor, 384 << 10, 64 << 10).iter().all(|&b| b == 0xff), "env is erased");
}

/// The GPT's partition names and starts, read as the UEFI layout has them.
fn gpt_names(disk: &Path) -> Vec<(String, u64)> {
    assert_eq!(&region(disk, 512, 8), b"EFI PART", "no GPT header at LBA 1");
    region(disk, 1024, 128 * 128)
        .chunks(128)
        .filter(|e| e[..16].iter().any(|&b| b != 0))
        .map(|e| {
            let units: Vec<u16> =
                e[56..].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
            (String::from_utf16_lossy(&units), u64::from_le_bytes(e[32..40].try_into().unwrap()) * 512)
        })
        .collect()
}

fn nvme_of(nor: &Path) -> PathBuf {
    let mut p = nor.as_os_str().to_owned();
    p.push(".nvme");
    PathBuf::from(p)
}

/// A NOR board without a block device (blk-size NULL, mtd-size 8M): the
/// NOR table, and only it, then each of its images at its offset.
#[test]
fn k1_nor_only_bundle_flashes_the_mtd_table_and_its_images() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bianbu");
    let files = bundle(&dir);
    let nor = d.path().join("nor.img");
    let sim = SimServer::start("bpi-f3", &["--sim-storage", nor.to_str().unwrap(), "--medium", "spi-nor"]);
    let out = bin()
        .args(["write", "bpi-f3", "--bundle"])
        .arg(&dir)
        .args(["--port", &sim.addr])
        .assert()
        .success()
        .get_output()
        .clone();
    drop(sim);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("partition_2M.json"), "{text}");
    assert!(!text.contains("partition_universal.json"), "no block device, no GPT: {text}");
    assert_nor(&nor, &files);
    assert!(!nvme_of(&nor).exists(), "the board has no NVMe");
}

/// A NOR board with an NVMe behind it (blk-size universal): as
/// titanflasher's multi_flash and the vendor recipe do, the NOR table and
/// its images, then the block device's GPT and its images.
#[test]
fn k1_nor_and_nvme_bundle_flashes_both_tables() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bianbu");
    let files = bundle(&dir);
    let nor = d.path().join("nor.img");
    let sim =
        SimServer::start("bpi-f3", &["--sim-storage", nor.to_str().unwrap(), "--medium", "spi-nor+nvme"]);
    let out = bin()
        .args(["write", "bpi-f3", "--sparse-limit", "1M", "--bundle"])
        .arg(&dir)
        .args(["--port", &sim.addr])
        .assert()
        .success()
        .get_output()
        .clone();
    drop(sim);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("partition_2M.json") && text.contains("partition_universal.json"), "{text}");
    assert_nor(&nor, &files);
    // The NVMe's GPT is the block table's (bootinfo left out), by U-Boot's
    // `gpt write` arithmetic: an entry without offset follows the one before.
    let nvme = nvme_of(&nor);
    let want: Vec<(String, u64)> = [
        ("fsbl", 128u64 << 10),
        ("env", 384 << 10),
        ("opensbi", 448 << 10),
        ("uboot", 832 << 10),
        ("bootfs", 4 << 20),
        ("rootfs", 260 << 20),
    ]
    .iter()
    .map(|(n, a)| (n.to_string(), *a))
    .collect();
    assert_eq!(gpt_names(&nvme), want);
    for (file, at) in [("bootfs.ext4", 4u64 << 20), ("rootfs.ext4", 260 << 20)] {
        let bytes = &files.iter().find(|f| f.0 == file).unwrap().1;
        assert!(region(&nvme, at, bytes.len()) == *bytes, "{file} on the NVMe differs");
    }
}

/// A NOR table entry that runs past the 8 MiB NOR (the device reports its
/// size, mtd-size 8M): exit 2 before the first flash, naming the table and
/// the entry; nothing reaches the NOR or the NVMe, and the board got only
/// the two ROM stages.
#[test]
fn k1_nor_table_larger_than_the_nor_exits_2_before_the_first_flash() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bianbu");
    bundle(&dir);
    write(&dir, "partition_2M.json", NOR_TABLE.replace(r#""size": "-""#, r#""size": "8M""#).as_bytes());
    let nor = d.path().join("nor.img");
    let saved = d.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    let sim = SimServer::start(
        "bpi-f3",
        &[
            "--sim-storage",
            nor.to_str().unwrap(),
            "--medium",
            "spi-nor+nvme",
            "--save",
            saved.to_str().unwrap(),
        ],
    );
    bin()
        .args(["write", "bpi-f3", "--bundle"])
        .arg(&dir)
        .args(["--port", &sim.addr])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("partition_2M.json"))
        .stderr(predicate::str::contains("'uboot'"))
        .stderr(predicate::str::contains("8M"));
    drop(sim);
    assert!(region(&nor, 0, 8 << 20).iter().all(|&b| b == 0xff), "nothing was written to the NOR");
    assert_ne!(&region(&nvme_of(&nor), 512, 8), b"EFI PART", "no GPT was written to the NVMe");
    let mut got: Vec<String> = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "only FSBL and u-boot.itb were downloaded: {got:?}");
}

/// Debian's client, always under `timeout`: it reconnects forever when the
/// handshake fails.
fn fastboot(addr: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("timeout")
        .args(["20", "fastboot", "-s", addr])
        .args(args)
        .output()
        .expect("run timeout fastboot (Debian package fastboot)")
}

/// Debian's fastboot replays the vendor's NOR + block recipe (stage FSBL,
/// continue, stage u-boot.itb, continue, flash mtd partition_2M.json, the
/// NOR's images, flash gpt partition_universal.json, the block device's
/// images but its bootinfo) against the virtual NOR board; the NOR and the
/// NVMe it leaves equal what `write --bundle` leaves.
#[test]
#[ignore = "real-peer tier (needs Debian's fastboot): scripts/test.sh runs it"]
fn debian_fastboot_and_write_bundle_leave_the_same_nor_and_nvme() {
    let ok =
        std::process::Command::new("fastboot").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "Debian's fastboot client is missing: apt-get install fastboot");
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bianbu");
    bundle(&dir);
    let (ours, theirs) = (d.path().join("ours.img"), d.path().join("theirs.img"));
    let sim =
        SimServer::start("bpi-f3", &["--sim-storage", ours.to_str().unwrap(), "--medium", "spi-nor+nvme"]);
    bin()
        .args(["write", "bpi-f3", "--no-reboot", "--sparse-limit", "1M", "--bundle"])
        .arg(&dir)
        .args(["--port", &sim.addr])
        .assert()
        .success();
    drop(sim);
    let sim = SimServer::start(
        "bpi-f3",
        &["--keep", "--sim-storage", theirs.to_str().unwrap(), "--medium", "spi-nor+nvme"],
    );
    let f = |p: &str| dir.join(p).into_os_string();
    let mut steps: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["stage".into(), f("factory/FSBL.bin")],
        vec!["continue".into()],
        vec!["stage".into(), f("u-boot.itb")],
        vec!["continue".into()],
        vec!["flash".into(), "mtd".into(), f("partition_2M.json")],
    ];
    for (name, file, _) in NOR_AT {
        steps.push(vec!["flash".into(), name.into(), f(file)]);
    }
    steps.push(vec!["flash".into(), "gpt".into(), f("partition_universal.json")]);
    for (name, file) in [
        ("fsbl", "factory/FSBL.bin"),
        ("env", "env.bin"),
        ("opensbi", "fw_dynamic.itb"),
        ("uboot", "u-boot.itb"),
        ("bootfs", "bootfs.ext4"),
        ("rootfs", "rootfs.ext4"),
    ] {
        steps.push(vec!["-S".into(), "1M".into(), "flash".into(), name.into(), f(file)]);
    }
    for s in &steps {
        let args: Vec<&std::ffi::OsStr> = s.iter().map(|a| a.as_os_str()).collect();
        let o = fastboot(&sim.addr, &args);
        assert!(o.status.success(), "fastboot {s:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    drop(sim);
    assert!(region(&ours, 0, 8 << 20) == region(&theirs, 0, 8 << 20), "the NORs differ");
    let (ours, theirs) = (nvme_of(&ours), nvme_of(&theirs));
    let end = (260u64 << 20) + 733 * 4096 + 4096;
    let (mut at, step) = (0u64, 16usize << 20);
    while at < end {
        let n = step.min((end - at) as usize);
        assert!(region(&ours, at, n) == region(&theirs, at, n), "the NVMes differ in the 16 MiB at 0x{at:x}");
        at += n as u64;
    }
}

/// The same NOR board without a sim server: `write --simulate
/// --sim-medium spi-nor` puts the virtual NOR board on the simulated bus
/// (the run starts in its boot ROM: FSBL, then u-boot.itb, then the tables),
/// and the NOR file holds what the hand-worked offsets say.
#[test]
fn k1_nor_bundle_under_simulate_with_sim_medium() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bianbu");
    let files = bundle(&dir);
    let nor = d.path().join("nor.img");
    let out = bin()
        .args(["write", "bpi-f3", "--simulate", "--sim-medium", "spi-nor", "--sim-storage"])
        .arg(&nor)
        .arg("--bundle")
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("partition_2M.json") && !text.contains("partition_universal.json"), "{text}");
    assert_nor(&nor, &files);
}
