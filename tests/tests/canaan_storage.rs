//! The storage verbs on K230 boards through the binary (`--simulate`): the
//! virtual kburn loader (written from the vendor f_kburn gadget) becomes
//! whatever `--loader` uploads; `--sim-storage` keeps the medium between
//! runs. The flow and the wire are tested in-process in
//! `protocols/canaan/tests/storage.rs`; here: exit codes, messages, JSON,
//! files.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i % 251) as u8).wrapping_add(seed)).collect()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    racklet_tests::racklet_flash().current_dir(dir).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A card image kept by --sim-storage, read at `at`.
fn card(p: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(p).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = vec![0; len];
    f.read_exact(&mut b).unwrap();
    b
}

const SIM: [&str; 4] = ["--loader", "loader_mmc.bin", "--simulate", "--sim-storage"];

#[test]
fn write_then_read_back_across_runs() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "loader_mmc.bin", &pattern(375_712, 1));
    let img = pattern(300_000, 2);
    write(d.path(), "sd.img", &img);
    let mut args = vec!["write", "canmv-k230", "sd.img", "--medium", "sd", "--at", "1M", "--json"];
    args.extend(SIM);
    args.push("card.img");
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let done = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "done")
        .expect("a done event");
    let wrote = done["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "wrote sd.img")
        .and_then(|d| d["value"].as_str())
        .unwrap();
    assert!(wrote.contains("300032 bytes at 0x100000, WRITE DONE, read back and compared"), "{wrote}");
    let c = card(&d.path().join("card.img"), 0x10_0000, 300_032);
    assert_eq!(&c[..300_000], &img[..]);
    assert!(c[300_000..].iter().all(|&b| b == 0), "the last block padded with zeros");
    // Another run reads it back from the same card.
    let mut args = vec![
        "read",
        "canmv-k230",
        "--medium",
        "sd",
        "--at",
        "0x100000",
        "--size",
        "300000",
        "-o",
        "back.img",
    ];
    args.extend(SIM);
    args.push("card.img");
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(std::fs::read(d.path().join("back.img")).unwrap(), img);
}

#[test]
fn a_kdimg_is_listed_by_info_and_written_part_by_part() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "loader_mmc.bin", &pattern(375_712, 1));
    let img = racklet_tests::kdimg_v2(&[
        ("uboot_spl_a", 0x10_0000, 0x8_0000, &pattern(1000, 3)),
        ("rtt", 0x20_0000, 0x2000, &pattern(5000, 4)),
    ]);
    write(d.path(), "fw.kdimg", &img);
    let o = run(d.path(), &["info", "fw.kdimg"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("part uboot_spl_a") && text(&o).contains("at 0x200000"), "{}", text(&o));
    let mut args = vec!["write", "canmv-k230", "fw.kdimg", "--medium", "emmc", "--reboot"];
    args.extend(SIM);
    args.push("emmc.img");
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("reboot: sent; the loader left the bus"), "{}", text(&o));
    let c = card(&d.path().join("emmc.img"), 0x20_0000, 0x2000);
    assert_eq!(&c[..5000], &pattern(5000, 4)[..]);
    assert!(c[5000..].iter().all(|&b| b == 0xff));
}

/// Bad input: exit 2 before anything is written, the file and the problem
/// named.
#[test]
fn bad_input_is_exit_2_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "loader_mmc.bin", &pattern(375_712, 1));
    write(d.path(), "a.img", &pattern(4096, 0));
    let mut good = racklet_tests::kdimg_v2(&[("a", 0x10_0000, 0x1000, b"abc")]);
    let mut crc = good.clone();
    crc[300] ^= 1;
    write(d.path(), "crc.kdimg", &crc);
    *good.last_mut().unwrap() ^= 1;
    write(d.path(), "sha.kdimg", &good);
    for (i, (args, needle)) in [
        (vec!["a.img", "--medium", "mmc"], "--medium mmc: not a medium"),
        (vec!["crc.kdimg", "--medium", "sd"], "crc.kdimg: header CRC-32"),
        (vec!["sha.kdimg", "--medium", "sd"], "sha.kdimg: part \"a\": SHA-256"),
        (
            vec!["a.img", "--medium", "otp"],
            "a.img: 4096 bytes at 0x0 run past the end of the otp (1024 bytes); nothing was written",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let media = format!("m{i}.img");
        let mut a = vec!["write", "canmv-k230"];
        a.extend(args);
        a.extend(SIM);
        a.push(&media);
        let o = run(d.path(), &a);
        assert_eq!(code(&o), 2, "{a:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{a:?}: {}", text(&o));
    }
    // A board in its ROM with no --loader.
    let o = run(d.path(), &["write", "canmv-k230", "a.img", "--medium", "sd", "--simulate"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("hint: give --loader loader_mmc.bin"), "{}", text(&o));
}

/// `image`'s note, followed: the image written to the SD card at 0x100000
/// and the board reset — the virtual ROM boots it (it checks the "K230"
/// header and runs the payload at 0x80300000); written elsewhere, the ROM
/// finds nothing and comes back on USB.
#[test]
fn an_image_written_where_image_says_boots() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "loader_mmc.bin", &pattern(375_712, 1));
    write(d.path(), "spl.bin", &pattern(4096, 6));
    let o = run(d.path(), &["image", "canmv-k230", "spl.bin", "-o", "spl.img"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let mut args = vec!["write", "canmv-k230", "spl.img", "--medium", "sd", "--at", "0x100000", "--reboot"];
    args.extend(&SIM[..3]);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o)
            .contains("the ROM booted the SD card's image at 0x100000 (4096-byte payload run at 0x80300000)"),
        "{}",
        text(&o)
    );
    let mut args = vec!["write", "canmv-k230", "spl.img", "--medium", "sd", "--at", "0x200000", "--reboot"];
    args.extend(&SIM[..3]);
    let o = run(d.path(), &args);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(!text(&o).contains("booted the SD card"), "{}", text(&o));
}
