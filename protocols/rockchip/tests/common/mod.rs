//! Shared by the whole-flow tests: RKBOOT files built from the fact sheet's
//! layout (§2), board facts as the board table gives them, and a run of
//! `plan` + `boot` against the virtual ROM of racklet-sim through a
//! Connector.

#![allow(dead_code)] // each test binary uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_image::{Target, Window};
use racklet_link::testing::CollectProgress;
use racklet_link::transcript::{DataMode, RecordOptions, TranscriptWriter};
use racklet_link::{Connector, ProgressEvent};
use racklet_rockchip::{Inputs, Options, Report, RockchipError};
use racklet_sim::models::Scenario;
use racklet_sim::rom::Verdict;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

/// A deterministic pseudo-random payload (xorshift).
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A usbplug image: a pattern carrying, as every rockusb loader does (rkbin's
/// usbplugs, U-Boot's `f_rockusb.c`), the rockusb interface descriptor
/// `09 04 00 00 02 ff 06 05` (class ff/06/05, two endpoints) in its data.
pub fn usbplug(len: usize, seed: u32) -> Vec<u8> {
    let mut p = pattern(len, seed);
    let d = [0x09, 0x04, 0x00, 0x00, 0x02, 0xff, 0x06, 0x05, 0x00];
    let at = len / 2;
    p[at..at + d.len()].copy_from_slice(&d);
    p
}

/// An RKBOOT entry: (type 1/2/4, name, data, delay in ms).
pub type E<'a> = (u32, &'a str, Vec<u8>, u32);

/// Header 0x66 bytes, tables back to back (471, 472, loader), data, and
/// the CRC32 (the sim's reference Rockchip CRC32). `flags` are the bytes
/// at 0x2B..0x2F (sign, rc4Flag, stored without RC4, CRC disabled).
pub fn rkboot(tag: &[u8; 4], chip: &[u8; 4], flags: [u8; 4], entries: &[E]) -> Vec<u8> {
    let count = |t: u32| entries.iter().filter(|e| e.0 == t).count();
    let (n1, n2, n4) = (count(1), count(2), count(4));
    let t1 = 0x66;
    let t2 = t1 + 57 * n1;
    let t4 = t2 + 57 * n2;
    let mut data_off = t4 + 57 * n4;
    let mut h = vec![0u8; 0x66];
    h[0..4].copy_from_slice(tag);
    h[4..6].copy_from_slice(&0x66u16.to_le_bytes());
    h[6..10].copy_from_slice(&0x0117u32.to_le_bytes());
    h[10..14].copy_from_slice(&0x0100_0000u32.to_le_bytes());
    h[14..16].copy_from_slice(&2024u16.to_le_bytes());
    h[16..21].copy_from_slice(&[5, 6, 7, 8, 9]);
    // chip "3568" is packed big-endian into a u32 and stored LE: bytes reversed.
    h[0x15..0x19].copy_from_slice(&[chip[3], chip[2], chip[1], chip[0]]);
    h[0x19] = n1 as u8;
    h[0x1a..0x1e].copy_from_slice(&(t1 as u32).to_le_bytes());
    h[0x1e] = 57;
    h[0x1f] = n2 as u8;
    h[0x20..0x24].copy_from_slice(&(t2 as u32).to_le_bytes());
    h[0x24] = 57;
    h[0x25] = n4 as u8;
    h[0x26..0x2a].copy_from_slice(&(t4 as u32).to_le_bytes());
    h[0x2a] = 57;
    h[0x2b..0x2f].copy_from_slice(&flags);
    let mut tables = Vec::new();
    let mut data = Vec::new();
    for t in [1u32, 2, 4] {
        for (ty, name, bytes, delay) in entries.iter().filter(|e| e.0 == t) {
            let mut e = vec![57u8];
            e.extend_from_slice(&ty.to_le_bytes());
            let mut units: Vec<u16> = name.encode_utf16().collect();
            units.resize(20, 0);
            for u in units {
                e.extend_from_slice(&u.to_le_bytes());
            }
            e.extend_from_slice(&(data_off as u32).to_le_bytes());
            e.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            e.extend_from_slice(&delay.to_le_bytes());
            assert_eq!(e.len(), 57);
            tables.extend_from_slice(&e);
            data.extend_from_slice(bytes);
            data_off += bytes.len();
        }
    }
    let mut f = h;
    f.extend_from_slice(&tables);
    f.extend_from_slice(&data);
    let c = racklet_sim::crc::crc32_rockchip(&f);
    f.extend_from_slice(&c.to_le_bytes());
    f
}

/// An RK3568 loader as rkbin's RK3568MINIALL.ini lays one out: UsbHead and
/// the DDR blob as 0x471 entries, the usbplug as 0x472, FlashBoot for storage.
pub fn rk3568_loader() -> Vec<u8> {
    rkboot(
        b"LDR ",
        b"3568",
        [0, 1, 1, 0],
        &[
            (1, "UsbHead", pattern(2048, 1), 1),
            (1, "rk3568_ddr_1560MHz_v", pattern(6144, 2), 1),
            (2, "rk356x_usbplug_v1", usbplug(10240, 3), 0),
            (4, "FlashBoot", pattern(2048, 4), 0),
        ],
    )
}

/// The board facts of `crates/cli/boards.toml` (and of a test RK3576 board).
pub fn target(board: &str) -> Target {
    let (soc, base, size, pid) = match board {
        "rock-3a" => ("rk3568", 0xfdcc_1000, 0xf000, 0x350a),
        "quartz64-a" => ("rk3566", 0xfdcc_1000, 0xf000, 0x350a),
        "rock-5b" => ("rk3588", 0xff00_1000, 0xff000, 0x350b),
        "rockpro64" => ("rk3399", 0xff8c_2000, 0x2e000, 0x330c),
        "test-3576" => ("rk3576", 0x3ff8_0000, 0x10000, 0x350e),
        "test-3326" => ("rk3326", 0xff0e_1000, 0x7000, 0x330d),
        b => panic!("no test board {b}"),
    };
    Target {
        board: board.into(),
        soc: soc.into(),
        arch: Some(racklet_image::Arch::from_name("aarch64").expect("aarch64 is known")),
        load_address: base,
        entry: None,
        window: Window { board: board.into(), base, size, max_payload: None },
        usb: vec![("rom".into(), 0x2207, pid), ("loader".into(), 0x2207, pid)],
        baud: None,
        max_stage: 256 << 20,
    }
}

/// Writes `bytes` to `dir/name`.
pub fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// A transcript kept in memory.
#[derive(Clone, Default)]
pub struct Memory(pub Arc<Mutex<Vec<u8>>>);

impl Write for Memory {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Memory {
    /// The records, parsed.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// One run of the whole flow against a virtual board.
pub struct Run {
    pub result: Result<Report, RockchipError>,
    pub verdict: Verdict,
    pub transcript: Vec<serde_json::Value>,
    pub messages: Vec<String>,
}

/// How a run is set up.
pub struct Setup<'a> {
    pub board: &'a str,
    pub fault: Option<&'a str>,
    pub stage_timeout: Duration,
    pub force: bool,
    /// `--expect-usbplug`: a 0x472 stage must come back as a rockusb loader.
    pub expect_usbplug: bool,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            board: "rock-3a",
            fault: None,
            stage_timeout: Duration::from_secs(5),
            force: false,
            expect_usbplug: false,
        }
    }
}

/// Plans `inputs` for the board (the plan must succeed) and boots the
/// board's virtual ROM, plugged in at 1-1, through a Connector.
pub fn run(s: &Setup, inputs: &Inputs) -> Run {
    let target = target(s.board);
    let plan = racklet_rockchip::plan(inputs, &target).unwrap_or_else(|e| panic!("plan: {e}"));
    let usb = SimUsbBus::new();
    let serial = SimSerialBus::new();
    let scenario = Scenario { fault: s.fault.map(str::to_string), ..Scenario::at("1-1") };
    let mut rom = racklet_sim::models::attach(&target.soc, &scenario, &usb, &serial).unwrap();
    let memory = Memory::default();
    let mut progress = CollectProgress::default();
    let result = {
        let mut conn = Connector::new(Arc::new(usb), Arc::new(serial), &mut progress);
        conn.stage_timeout = s.stage_timeout;
        // Every byte: the tests read the payload back out of the transcript.
        let full = RecordOptions { data: DataMode::Full, ..Default::default() };
        conn.recorder = Some(TranscriptWriter::new(memory.clone()).with_options(full));
        let opts = Options { force: s.force, expect_usbplug: s.expect_usbplug, ..Default::default() };
        racklet_rockchip::boot(&mut conn, &plan, &target, &opts)
    };
    let messages = progress
        .events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Message { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    Run { result, verdict: rom.verdict(), transcript: memory.records(), messages }
}

/// The control OUT transfers of a transcript: (wIndex, data).
pub fn control_outs(t: &[serde_json::Value]) -> Vec<(u64, Vec<u8>)> {
    t.iter()
        .filter(|v| v["t"] == "ctrl_out")
        .map(|v| (v["idx"].as_u64().unwrap(), hex::decode(v["data"].as_str().unwrap()).unwrap()))
        .collect()
}
