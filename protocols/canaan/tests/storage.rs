//! Storage through the kburn loader, in-process: `storage::plan` and
//! `storage::run` through a `Connector` against racklet-sim's virtual K230,
//! whose kburn device is written from the vendor gadget (canmv-k230/u-boot
//! f_kburn.c). Expected wire bytes are written out from k230-flash 1.4.0's
//! `burners.py` and the sheet (§4.2), not from the client.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_canaan::boot::Options;
use racklet_canaan::storage::{self, Inputs, StorageError, StoragePlanError, Verb};
use racklet_image::{Target, Window};
use racklet_link::testing::{CancelAfter, CollectProgress};
use racklet_link::transcript::{DataMode, RecordOptions, TranscriptWriter};
use racklet_link::{Classify, Connector, FailureClass, ProgressSink};
use racklet_sim::canaan::{Fault, K230, K230Rom};
use racklet_sim::kburn::Kind;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;
use serde_json::Value;

fn target() -> Target {
    Target {
        board: "canmv-k230".into(),
        soc: "k230".into(),
        arch: racklet_image::Arch::from_name("riscv64"),
        load_address: 0x8036_0000,
        entry: Some(0x8036_0000),
        window: Window { board: "canmv-k230".into(), base: 0x8030_0000, size: 0x10_0000, max_payload: None },
        usb: vec![("rom".into(), 0x29f1, 0x0230), ("loader".into(), 0x29f1, 0x0230)],
        baud: None,
        max_stage: 256 << 20,
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i % 251) as u8).wrapping_add(seed)).collect()
}

struct Rig {
    usb: SimUsbBus,
    board: Arc<Mutex<K230Rom>>,
    dir: tempfile::TempDir,
}

impl Rig {
    fn new(fault: Option<Fault>) -> Rig {
        let usb = SimUsbBus::new();
        let board = usb.attach(K230Rom::new(&K230, "1-1").with_fault(fault).with_storage_loader(true));
        Rig { usb, board, dir: tempfile::tempdir().unwrap() }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn inputs(&self, medium: &str) -> Inputs {
        Inputs {
            loader: Some(self.file("loader_mmc.bin", &pattern(375_712, 1))),
            loader_address: None,
            medium: Some(medium.into()),
        }
    }

    fn run_with(
        &self,
        inputs: &Inputs,
        verb: &Verb,
        progress: &mut dyn ProgressSink,
    ) -> (Result<storage::Report, StorageError>, Vec<u8>) {
        let plan = storage::plan(inputs, verb, &target()).expect("a valid plan");
        let mut conn = Connector::new(Arc::new(self.usb.clone()), Arc::new(SimSerialBus::new()), progress);
        // A board that was just reset takes a moment to come back.
        conn.wait = Some(Duration::from_secs(2));
        let file = std::fs::File::create(self.dir.path().join("t.jsonl")).unwrap();
        conn.recorder = Some(
            TranscriptWriter::new(file).with_options(RecordOptions { data: DataMode::Full, redact: false }),
        );
        let opts = Options { next_stage_wait: Duration::from_millis(500), ..Options::default() };
        let mut read = Vec::new();
        let r = storage::run(&mut conn, &plan, &target(), &opts, &mut |b| {
            read.extend_from_slice(b);
            Ok(())
        });
        (r, read)
    }

    fn run(&self, inputs: &Inputs, verb: &Verb) -> Result<storage::Report, StorageError> {
        self.run_with(inputs, verb, &mut CollectProgress::default()).0
    }

    fn medium(&self, kind: Kind, at: u64, len: usize) -> Vec<u8> {
        self.board.lock().unwrap().kburn.medium(kind).read(at, len).unwrap()
    }

    /// Bulk transfers to and from the loader (endpoints 0x02 / 0x81).
    fn kburn_wire(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("t.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| (v["t"] == "bulk_out" && v["ep"] == 2) || (v["t"] == "bulk_in" && v["ep"] == 0x81))
            .collect()
    }
}

fn write(image: &Path, at: Option<u64>) -> Verb {
    Verb::Write { image: image.to_path_buf(), at, verify: true, reboot: false }
}

fn hexlen(v: &Value) -> usize {
    v["data"].as_str().map(|d| d.len() / 2).unwrap_or(0)
}

/// The whole flow on SD: the ROM takes the loader, the board comes back as
/// the kburn loader, and the image goes out as k230-flash sends it — every
/// command a 60-byte packet preceded by a drain read and a NOP, data in
/// chunks of the 128 KiB the gadget reported, a zero-length packet after a
/// total that is a multiple of it, "WRITE DONE"; then it is read back.
#[test]
fn a_raw_image_on_sd_as_k230_flash_sends_it() {
    let r = Rig::new(None);
    let img = pattern(256 * 1024, 7);
    let p = r.file("sd.img", &img);
    let report = r.run(&r.inputs("sd"), &write(&p, Some(0x10_0000))).unwrap();
    assert_eq!(report.written.len(), 1);
    assert!(report.written[0].verified);
    assert!(report.loader.contains("uploaded to 0x80360000"), "{}", report.loader);
    assert_eq!(r.medium(Kind::Sd, 0x10_0000, img.len()), img);
    let wire = r.kburn_wire();
    let outs: Vec<&Value> = wire.iter().filter(|v| v["t"] == "bulk_out").collect();
    // NOP, DEV_PROBE sd, DEV_GET_INFO, NOP, WRITE_LBA, 2 chunks, ZLP, then
    // the read-back's NOP and READ_LBA.
    let sizes: Vec<usize> = outs.iter().map(|v| hexlen(v)).collect();
    assert_eq!(&sizes[..8], &[60, 60, 60, 60, 60, 131072, 131072, 0], "{sizes:?}");
    let probe = outs[1]["data"].as_str().unwrap();
    assert!(probe.starts_with("10000000020002ff"), "{probe}");
    let wl = outs[4]["data"].as_str().unwrap();
    // cmd 0x21, data 32 bytes: offset 0x100000, size, max size, flags 0.
    assert!(
        wl.starts_with(
            &("210000002000" /* cmd, result, 32 data bytes */
                .to_owned()
                + "0000100000000000"
                + "0000040000000000"
                + "0000040000000000"
                + "0000000000000000")
        ),
        "{wl}"
    );
    // The first IN of a session is a drain read that finds nothing.
    assert!(wire.iter().position(|v| v["t"] == "bulk_in").unwrap() < 1, "{:?}", &wire[..2]);
    let v = r.board.lock().unwrap().verdict();
    assert!(v.started() && v.text().contains("wrote 262144 bytes at 0x100000 of the sd"), "{v:?}");
}

/// A `.kdimg` (header v2): each part at its own offset, content then 0xFF
/// to the part size; the bytes after a part are not touched.
#[test]
fn a_kdimg_writes_every_part_with_ff_padding() {
    let r = Rig::new(None);
    let img = racklet_tests::kdimg_v2(&[
        ("uboot_spl_a", 0x10_0000, 0x8_0000, &pattern(1000, 1)),
        ("uboot_a", 0x20_0000, 0x1000, &pattern(3000, 2)),
    ]);
    let p = r.file("fw.kdimg", &img);
    let report = r.run(&r.inputs("emmc"), &write(&p, None)).unwrap();
    let names: Vec<&str> = report.written.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["uboot_spl_a", "uboot_a"]);
    assert_eq!(report.written[0].bytes, 0x8_0000);
    let a = r.medium(Kind::Emmc, 0x10_0000, 0x8_0000);
    assert_eq!(&a[..1000], &pattern(1000, 1)[..]);
    assert!(a[1000..].iter().all(|&b| b == 0xff));
    let b = r.medium(Kind::Emmc, 0x20_0000, 0x1001);
    assert_eq!(&b[..3000], &pattern(3000, 2)[..]);
    assert!(b[3000..0x1000].iter().all(|&x| x == 0xff));
    assert_eq!(b[0x1000], 0, "past the part: untouched (erased eMMC)");
}

/// Damaged `.kdimg`s and unknown media are bad input before any transfer.
#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let r = Rig::new(None);
    let good = racklet_tests::kdimg_v2(&[("a", 0x10_0000, 0x1000, b"abc")]);
    let mut magic = good.clone();
    magic[0] ^= 0xff;
    let mut crc = good.clone();
    crc[200] ^= 1;
    let short = good[..good.len() - 1].to_vec();
    let mut sha = good.clone();
    *sha.last_mut().unwrap() ^= 1;
    let inputs = r.inputs("sd");
    for (name, bytes, needle) in [
        ("magic.kdimg", &magic, None),
        ("crc.kdimg", &crc, Some("header CRC-32")),
        ("short.kdimg", &short, Some("runs past the end")),
        ("sha.kdimg", &sha, Some("SHA-256")),
    ] {
        let p = r.file(name, bytes);
        match storage::plan(&inputs, &write(&p, None), &target()) {
            // A bad magic is not a .kdimg: a raw image, which is fine.
            Ok(_) if needle.is_none() => {}
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => {
                assert_eq!(e.class(), FailureClass::BadInput);
                let t = e.to_string();
                assert!(t.contains(name) && t.contains(needle.unwrap()), "{t}");
            }
        }
    }
    // Compressed images are expanded on the way: a damaged stream is bad
    // input before anything is sent, with the file named.
    for (name, magic) in [("a.img.gz", &[0x1f, 0x8b, 8, 0][..]), ("a.img.zst", &[0x28, 0xb5, 0x2f, 0xfd][..])]
    {
        let p = r.file(name, &[magic, &[0u8; 100][..]].concat());
        let e = storage::plan(&inputs, &write(&p, None), &target()).unwrap_err();
        assert!(matches!(e, StoragePlanError::Disk(_)) && e.to_string().contains(name), "{e}");
        assert_eq!(e.class(), FailureClass::BadInput);
        assert!(e.hint().unwrap().contains("download the image again"), "{e}");
    }
    let e = storage::plan(&Inputs { medium: Some("mmc".into()), ..inputs.clone() }, &Verb::Reset, &target())
        .unwrap_err();
    assert!(matches!(e, StoragePlanError::UnknownMedium { .. }), "{e}");
    assert!(e.hint().unwrap().contains("emmc, sd"), "{e}");
    // REBOOT needs no medium, but the session probes one first, as
    // k230-flash's does: the SD card's, which every board has. Every other
    // verb needs the medium named.
    let plan = storage::plan(&Inputs { medium: None, ..inputs.clone() }, &Verb::Reset, &target()).unwrap();
    assert_eq!(plan.medium, racklet_canaan::kburn::Medium::Sd);
    let e = storage::plan(
        &Inputs { medium: None, ..inputs.clone() },
        &Verb::Erase { at: 0, size: None },
        &target(),
    )
    .unwrap_err();
    assert!(matches!(e, StoragePlanError::NoMedium { .. }), "{e}");
    // The loader must go to the download window, not the ROM's own SRAM.
    let e = storage::plan(&Inputs { loader_address: Some(0x8020_0000), ..inputs }, &Verb::Reset, &target())
        .unwrap_err();
    assert!(matches!(e, StoragePlanError::LoaderOutside { .. }), "{e}");
    assert!(r.board.lock().unwrap().log.is_empty(), "nothing was sent");
}

/// An image larger than the medium: refused against DEV_GET_INFO's
/// capacity before the first byte of it goes out (exit 2).
#[test]
fn an_image_larger_than_the_medium_is_not_written() {
    let r = Rig::new(None);
    let p = r.file("otp.img", &pattern(2048, 0));
    let e = r.run(&r.inputs("otp"), &write(&p, None)).unwrap_err();
    assert!(matches!(e, StorageError::TooLarge { capacity: 1024, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.to_string().contains("otp.img") && e.to_string().contains("nothing was written"), "{e}");
    assert!(r.board.lock().unwrap().kburn.writes.is_empty());
}

/// A raw image that is not a whole number of blocks: the MMC driver rounds
/// every write up to its block and the gadget then answers "WRITE ERROR"
/// (the device test in racklet-sim shows it), so the client pads the last
/// block with zeros, as k230_flash (C++) does.
#[test]
fn a_partial_last_block_is_padded() {
    let r = Rig::new(None);
    let p = r.file("odd.img", &pattern(1000, 3));
    let report = r.run(&r.inputs("sd"), &write(&p, Some(0))).unwrap();
    assert_eq!(report.written[0].bytes, 1024);
    let m = r.medium(Kind::Sd, 0, 1024);
    assert_eq!(&m[..1000], &pattern(1000, 3)[..]);
    assert!(m[1000..].iter().all(|&b| b == 0));
}

/// read, erase and reset, and a loader that is already running.
#[test]
fn read_erase_and_reset() {
    let r = Rig::new(None);
    let p = r.file("a.img", &pattern(40_000, 9));
    r.run(&r.inputs("sd"), &write(&p, Some(0x8000))).unwrap();
    // The loader is running now: no --loader needed.
    let no_loader = Inputs { loader: None, ..r.inputs("sd") };
    let (report, read) =
        r.run_with(&no_loader, &Verb::Read { at: 0x8000, size: 40_000 }, &mut CollectProgress::default());
    let report = report.unwrap();
    assert!(report.loader.contains("already running"), "{}", report.loader);
    assert_eq!(read, pattern(40_000, 9));
    let report = r.run(&no_loader, &Verb::Erase { at: 0x8000, size: Some(512) }).unwrap();
    assert_eq!(report.erased, Some(512));
    assert_eq!(r.medium(Kind::Sd, 0x8000, 512), vec![0; 512]);
    let report = r.run(&no_loader, &Verb::Reset).unwrap();
    assert!(report.rebooted);
    let wire = r.kburn_wire();
    let last = wire.last().unwrap();
    assert!(last["data"].as_str().unwrap().starts_with("010000000800746f625200000000"), "{last}");
    // Back in the ROM after the reset.
    let e = r.run(&no_loader, &Verb::Reset).unwrap_err();
    assert!(matches!(e, StorageError::NeedLoader { .. }), "{e}");
}

/// SPI NOR: the vendor loader cannot read back (`sf_read_medium`: TODO),
/// so a verified write says so; --no-verify writes it.
#[test]
fn spi_nor_cannot_be_read_back() {
    let r = Rig::new(None);
    let p = r.file("nor.img", &pattern(8192, 4));
    let e = r.run(&r.inputs("spi-nor"), &write(&p, None)).unwrap_err();
    assert!(matches!(e, StorageError::Unverified { .. }), "{e}");
    assert!(
        e.to_string().contains("READ ERROR, 0xFFFFFFFF") && e.hint().unwrap().contains("--no-verify"),
        "{e}"
    );
    let r = Rig::new(None);
    let verb = Verb::Write { image: p, at: Some(0x1_0000), verify: false, reboot: false };
    r.run(&r.inputs("spi-nor"), &verb).unwrap();
    assert_eq!(r.medium(Kind::SpiNor, 0x1_0000, 8192), pattern(8192, 4));
}

/// Ctrl-C between chunks: the run ends as interrupted, and the device
/// never confirmed the write, so the virtual board's verdict is no success.
#[test]
fn ctrl_c_between_chunks_is_not_success() {
    let r = Rig::new(None);
    let p = r.file("big.img", &pattern(1 << 20, 5));
    // Cancelled after the loader's 376 chunks and a few kburn events.
    let mut cancel = CancelAfter::new(376 + 8);
    let (e, _) = r.run_with(&r.inputs("sd"), &write(&p, None), &mut cancel);
    let e = e.unwrap_err();
    assert_eq!(e.class(), FailureClass::Interrupted, "{e}");
    assert!(e.to_string().contains("after"), "{e}");
    assert!(!r.board.lock().unwrap().verdict().started());
}

/// The ROM back at the same address after the loader (review F3) is not
/// the loader: the upload is tried again, then given up.
#[test]
fn a_loader_that_never_starts_is_tried_three_times() {
    let usb = SimUsbBus::new();
    let board = usb.attach(K230Rom::new(&K230, "1-1"));
    let r = Rig { usb, board, dir: tempfile::tempdir().unwrap() };
    let p = r.file("a.img", &pattern(512, 0));
    let e = r.run(&r.inputs("sd"), &write(&p, None)).unwrap_err();
    assert!(matches!(e, StorageError::LoaderDidNotStart { attempts: 3 }), "{e}");
    assert_eq!(r.board.lock().unwrap().jumps.len(), 3);
}
