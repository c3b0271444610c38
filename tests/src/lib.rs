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

/// A Rockchip usbplug image: a pattern carrying, as every rockusb loader
/// does (rkbin's usbplugs, U-Boot's `f_rockusb.c`), the rockusb interface
/// descriptor `09 04 00 00 02 ff 06 05`. Without it a 0x472 stage is a
/// payload to the virtual ROM, and no rockusb device comes back.
pub fn rk_usbplug(len: usize, seed: u32) -> Vec<u8> {
    let mut p = pattern(len, seed);
    let d = [0x09, 0x04, 0x00, 0x00, 0x02, 0xff, 0x06, 0x05, 0x00];
    let at = len / 2;
    p[at..at + d.len()].copy_from_slice(&d);
    p
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

/// A Kendryte `.kdimg` (header version 2) of `parts` — (name, medium
/// offset, part size, content) — laid out by hand from the vendor's format
/// page (PyPI k230-flash 1.4.0 `kdimage.md`; sheet §4.3): a 512-byte header
/// (magic 0x27CB8F93, CRC-32 of the header with that field zeroed, flag,
/// version, part count, CRC-32 of the table, info strings), 256-byte part
/// entries (magic 0x91DF6DA4, offset, size, erase size, max size, 4 bytes of
/// padding, u64 flag, content offset, content size, SHA-256, name), then
/// the contents. The CRC is the sim's reference CRC-32 (zlib's).
pub fn kdimg_v2(parts: &[(&str, u64, u64, &[u8])]) -> Vec<u8> {
    use sha2::Digest;
    let le = |v: u32| v.to_le_bytes();
    let mut table = Vec::new();
    let mut at = 512 + 256 * parts.len();
    let mut contents = Vec::new();
    for (name, offset, size, content) in parts {
        let mut e = vec![0u8; 256];
        e[0..4].copy_from_slice(&le(0x91DF_6DA4));
        e[4..8].copy_from_slice(&le(*offset as u32));
        e[8..12].copy_from_slice(&le(*size as u32));
        e[12..16].copy_from_slice(&le(0x1000));
        e[16..20].copy_from_slice(&le(*size as u32));
        // 20..24: padding; 24..32: the u64 flag, 0.
        e[32..36].copy_from_slice(&le(at as u32));
        e[36..40].copy_from_slice(&le(content.len() as u32));
        e[40..72].copy_from_slice(&sha2::Sha256::digest(content));
        e[72..72 + name.len()].copy_from_slice(name.as_bytes());
        table.extend_from_slice(&e);
        contents.extend_from_slice(content);
        at += content.len();
    }
    let mut h = vec![0u8; 512];
    h[0..4].copy_from_slice(&le(0x27CB_8F93));
    h[12..16].copy_from_slice(&le(2));
    h[16..20].copy_from_slice(&le(parts.len() as u32));
    h[20..24].copy_from_slice(&le(racklet_sim::crc::crc32_iso_hdlc(&table)));
    h[24..31].copy_from_slice(b"racklet");
    h[56..60].copy_from_slice(b"k230");
    let crc = racklet_sim::crc::crc32_iso_hdlc(&h);
    h[4..8].copy_from_slice(&le(crc));
    [h, table, contents].concat()
}

/// An RKBOOT file laid out as the fact sheet §2 says: header, 471, 472 and
/// loader tables, data, CRC32. `entries` are (type, name, data, delay).
pub fn rkboot(tag: &[u8; 4], chip: &[u8; 4], entries: &[(u32, &str, Vec<u8>, u32)]) -> Vec<u8> {
    let n = |t: u32| entries.iter().filter(|e| e.0 == t).count();
    let t1 = 0x66usize;
    let t2 = t1 + 57 * n(1);
    let t4 = t2 + 57 * n(2);
    let mut off = t4 + 57 * n(4);
    let mut f = vec![0u8; 0x66];
    f[0..4].copy_from_slice(tag);
    f[4] = 0x66;
    f[6] = 0x17;
    f[7] = 0x01;
    f[0x15..0x19].copy_from_slice(&[chip[3], chip[2], chip[1], chip[0]]);
    for (at, t, tab) in [(0x19usize, 1u32, t1), (0x1f, 2, t2), (0x25, 4, t4)] {
        f[at] = n(t) as u8;
        f[at + 1..at + 5].copy_from_slice(&(tab as u32).to_le_bytes());
        f[at + 5] = 57;
    }
    f[0x2c] = 1;
    f[0x2d] = 1;
    let mut data = Vec::new();
    for t in [1u32, 2, 4] {
        for (_, name, bytes, delay) in entries.iter().filter(|e| e.0 == t) {
            f.push(57);
            f.extend_from_slice(&t.to_le_bytes());
            let mut u: Vec<u16> = name.encode_utf16().collect();
            u.resize(20, 0);
            u.iter().for_each(|x| f.extend_from_slice(&x.to_le_bytes()));
            f.extend_from_slice(&(off as u32).to_le_bytes());
            f.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            f.extend_from_slice(&delay.to_le_bytes());
            data.extend_from_slice(bytes);
            off += bytes.len();
        }
    }
    f.extend_from_slice(&data);
    let c = racklet_sim::crc::crc32_rockchip(&f);
    f.extend_from_slice(&c.to_le_bytes());
    f
}

/// An RK3568 loader laid out as rkbin's RK3568MINIALL.ini makes one.
pub fn rk3568_loader() -> Vec<u8> {
    rkboot(
        b"LDR ",
        b"3568",
        &[
            (1, "UsbHead", crate::pattern(2048, 1), 1),
            (1, "rk3568_ddr_1560MHz_v", crate::pattern(6144, 2), 1),
            (2, "rk356x_usbplug_v1", crate::rk_usbplug(10240, 3), 0),
            (4, "FlashBoot", crate::pattern(2048, 4), 0),
        ],
    )
}

/// rkdeveloptool `ul`'s IDB (test-side reference from its main.cpp
/// `MakeIDBlockData`, `MakeSector0..3` and DefineHeader.h) for FlashData `data` and FlashBoot `boot`,
/// `rc4` the loader header's byte 0x2C.
pub fn rkdeveloptool_ul_idb(data: &[u8], boot: &[u8], rc4: bool) -> Vec<u8> {
    let al = |n: usize| n.div_ceil(2048) * 4; // ALIGN(n, 2048) / 512
    let (ds, bs) = (al(data.len()), al(boot.len()));
    let mut s0 = vec![0u8; 512];
    s0[0..4].copy_from_slice(&[0x55, 0xaa, 0xf0, 0x0f]); // dwTag 0x0FF0AA55
    s0[8] = rc4 as u8; // uiRc4Flag
    s0[12] = 4; // usBootCode1Offset
    s0[14] = 4; // usBootCode2Offset
    s0[506..508].copy_from_slice(&(ds as u16).to_le_bytes()); // usBootDataSize
    s0[508..510].copy_from_slice(&((ds + bs) as u16).to_le_bytes()); // usBootCodeSize
    let mut s1 = vec![0u8; 512];
    s1[0] = 0x0c; // usSysReservedBlock
    s1[2..4].copy_from_slice(&[0xff, 0xff]); // usDisk0Size
    s1[10..14].copy_from_slice(b"RK28"); // uiChipTag 0x38324B52
    let s3 = vec![0u8; 512];
    let mut s2 = vec![0u8; 512];
    s2[491..493].copy_from_slice(b"VC");
    s2[494..496].copy_from_slice(&racklet_sim::crc::crc16_xmodem(&s0).to_le_bytes());
    s2[496..498].copy_from_slice(&racklet_sim::crc::crc16_xmodem(&s1).to_le_bytes());
    s2[506..509].copy_from_slice(b"CRC");
    s2[510..512].copy_from_slice(&racklet_sim::crc::crc16_xmodem(&s3).to_le_bytes());
    let enc = |b: &[u8]| {
        let mut v = b.to_vec();
        if rc4 {
            for c in v.chunks_exact_mut(512) {
                racklet_sim::rockchip::rc4_xor(c);
            }
        }
        v
    };
    let mut body = vec![0u8; (ds + bs) * 512];
    body[..data.len()].copy_from_slice(&enc(data));
    body[ds * 512..ds * 512 + boot.len()].copy_from_slice(&enc(boot));
    s2[498..502].copy_from_slice(&racklet_sim::crc::crc32_rockchip(&body).to_le_bytes());
    for s in [&mut s0, &mut s2] {
        racklet_sim::rockchip::rc4_xor(s);
    }
    let mut s3 = s3;
    racklet_sim::rockchip::rc4_xor(&mut s3);
    [s0, s1, s2, s3, body].concat()
}

/// rkdeveloptool `ul`'s other IDB, for a loader with a "FlashHead" entry
/// (test-side reference from its main.cpp `upgrade_loader`, the
/// `bNewIDBlock` branch): no sectors 0-3; FlashHead, FlashData and
/// FlashBoot each padded to 2 KiB, one after the other; when the loader's
/// byte 0x2C is set, every whole 512-byte sector of each is RC4-encoded
/// first (a partial last sector stays plain).
pub fn rkdeveloptool_ul_new_idb(head: &[u8], data: &[u8], boot: &[u8], rc4: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [head, data, boot] {
        let mut v = part.to_vec();
        if rc4 {
            for c in v.chunks_exact_mut(512) {
                racklet_sim::rockchip::rc4_xor(c);
            }
        }
        v.resize(part.len().div_ceil(2048) * 2048, 0);
        out.extend(v);
    }
    out
}

/// A loader with the [LOADER] entries FlashHead, FlashData and FlashBoot
/// (the new-IDB layout), for `chip`: the file, head, data and boot.
pub fn new_idb_loader(chip: &[u8; 4], rc4_off: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let (head, data, boot) = (crate::pattern(2048, 5), crate::pattern(5000, 7), crate::pattern(70_001, 8));
    let mut f = crate::rkboot(
        b"LDR ",
        chip,
        &[
            (1, "rk3568_ddr_1560MHz_v", crate::pattern(6144, 2), 1),
            (2, "rk356x_usbplug_v1", crate::rk_usbplug(10240, 3), 0),
            (4, "FlashHead", head.clone(), 0),
            (4, "FlashData", data.clone(), 0),
            (4, "FlashBoot", boot.clone(), 0),
        ],
    );
    if !rc4_off {
        f[0x2c] = 0;
        let n = f.len() - 4;
        let c = racklet_sim::crc::crc32_rockchip(&f[..n]);
        f[n..].copy_from_slice(&c.to_le_bytes());
    }
    (f, head, data, boot)
}

/// An RK3568 loader as rkbin's RK3568MINIALL.ini makes one, with the
/// [LOADER] entries `ul` reads (sizes off the 2 KiB grid).
pub fn rk3568_ul_loader(chip: &[u8; 4], rc4_off: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (data, boot) = (crate::pattern(5000, 7), crate::pattern(70_001, 8));
    let mut f = crate::rkboot(
        b"LDR ",
        chip,
        &[
            (1, "rk3568_ddr_1560MHz_v", crate::pattern(6144, 2), 1),
            (2, "rk356x_usbplug_v1", crate::rk_usbplug(10240, 3), 0),
            (4, "FlashData", data.clone(), 0),
            (4, "FlashBoot", boot.clone(), 0),
        ],
    );
    if !rc4_off {
        // Byte 0x2C cleared; the trailing CRC32 made again.
        f[0x2c] = 0;
        let n = f.len() - 4;
        let c = racklet_sim::crc::crc32_rockchip(&f[..n]);
        f[n..].copy_from_slice(&c.to_le_bytes());
    }
    (f, data, boot)
}

/// A U-Boot FIT image laid out by hand from the devicetree specification
/// (§5: the 40-byte big-endian header, tokens BEGIN_NODE 1, END_NODE 2,
/// PROP 3, END 9, the strings block) with a root `description` and an
/// `images` node holding one image node of `data` bytes, as `mkimage -f`
/// writes a u-boot.itb.
pub fn fit(data: &[u8]) -> Vec<u8> {
    let mut st = Vec::new();
    let word = |v: &mut Vec<u8>, x: u32| v.extend(x.to_be_bytes());
    let name = |v: &mut Vec<u8>, n: &[u8]| {
        v.extend(n);
        v.push(0);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    };
    let strings = b"description\0data\0";
    word(&mut st, 1);
    name(&mut st, b"");
    word(&mut st, 3);
    word(&mut st, 8); // "racklet\0"
    word(&mut st, 0);
    name(&mut st, b"racklet");
    word(&mut st, 1);
    name(&mut st, b"images");
    word(&mut st, 1);
    name(&mut st, b"uboot");
    word(&mut st, 3);
    word(&mut st, data.len() as u32);
    word(&mut st, 12);
    st.extend(data);
    while !st.len().is_multiple_of(4) {
        st.push(0);
    }
    for _ in 0..3 {
        word(&mut st, 2);
    }
    word(&mut st, 9);
    let total = 40 + 16 + st.len() + strings.len();
    let mut h = Vec::new();
    let off_struct = 40 + 16; // after the header and an empty reservation map
    for x in [0xd00d_feed, total as u32, off_struct as u32, (off_struct + st.len()) as u32, 40, 17, 16, 0] {
        word(&mut h, x);
    }
    word(&mut h, strings.len() as u32);
    word(&mut h, st.len() as u32);
    h.extend([0u8; 16]);
    h.extend(st);
    h.extend(strings);
    h
}

/// `racklet-flash sim BOARD --tcp 127.0.0.1:0 EXTRA…` in the background:
/// its address (the first line it prints), killed when dropped.
pub struct SimServer {
    child: std::process::Child,
    /// `tcp:127.0.0.1:PORT`, for `--port`.
    pub addr: String,
    /// The first human line it printed after the address (its hint), when
    /// started with [`SimServer::start_logged`].
    pub hint: String,
}

impl SimServer {
    /// Starts the server with its human lines thrown away.
    pub fn start(board: &str, extra: &[&str]) -> SimServer {
        SimServer::spawn(board, extra, false)
    }

    /// Starts the server keeping its human lines, for [`SimServer::log`] and
    /// [`SimServer::ended`] (for short runs: nothing reads them meanwhile).
    pub fn start_logged(board: &str, extra: &[&str]) -> SimServer {
        SimServer::spawn(board, extra, true)
    }

    fn spawn(board: &str, extra: &[&str], logged: bool) -> SimServer {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = std::process::Command::new(racklet_flash_path())
            .args(["sim", board, "--tcp", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(if logged { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().to_string();
        assert!(addr.starts_with("tcp:127.0.0.1:"), "sim printed {addr:?}");
        let mut hint = String::new();
        if logged {
            BufReader::new(child.stderr.as_mut().unwrap()).read_line(&mut hint).unwrap();
        }
        SimServer { child, addr, hint }
    }

    /// Stops the server (it serves the board's next stage, which nothing
    /// awaited) and gives what it logged.
    pub fn log(mut self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr()
    }

    /// Waits for the server to end by itself; its exit status and stderr.
    pub fn ended(mut self, within: Duration) -> (bool, String) {
        let start = std::time::Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.success(), self.stderr());
            }
            assert!(start.elapsed() < within, "the sim did not end by itself within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        err
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
