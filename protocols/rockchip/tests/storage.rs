//! Storage through the usbplug against racklet-sim's virtual usbplug and
//! its 8 GiB eMMC (answering as U-Boot's f_rockusb.c does): bring-up from
//! maskrom or an usbplug already running, write with read-back, read,
//! erase, reset, the GPT, and bad input refused before a sector is written.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{file, pattern, rk3568_loader, target};
use racklet_link::testing::CollectProgress;
use racklet_link::{Classify, Connector, FailureClass};
use racklet_rockchip::storage::{self, Extent, Report, StorageError, Verb};
use racklet_rockchip::{Inputs, Options};
use racklet_sim::rockchip::{RockchipFault, RockchipRom, chip_model};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::usb::SimUsbBus;

struct Board {
    usb: SimUsbBus,
    rom: Arc<Mutex<RockchipRom>>,
}

fn board(fault: RockchipFault) -> Board {
    let usb = SimUsbBus::new();
    let rom = usb.attach(RockchipRom::new(chip_model("rk3568").unwrap(), "1-1", fault));
    Board { usb, rom }
}

fn with_gpt(b: &Board) {
    let mut rom = b.rom.lock().unwrap();
    racklet_sim::uboot_storage::write_gpt(rom.emmc(), &racklet_sim::uboot_storage::TH1520_LAYOUT);
}

/// Plans and runs `verb`; `loader` brings a maskrom board up.
fn run(b: &Board, loader: Option<&Path>, verb: Verb) -> (Result<Report, StorageError>, Vec<u8>) {
    let t = target("rock-3a");
    let inputs = loader.map(|l| Inputs { bin: Some(l.to_path_buf()), ..Default::default() });
    let plan = match storage::plan(inputs.as_ref(), &verb, &t) {
        Ok(p) => p,
        Err(e) => return (Err(e), Vec::new()),
    };
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(b.usb.clone()), Arc::new(SimSerialBus::new()), &mut progress);
    conn.stage_timeout = Duration::from_secs(5);
    let opts = Options { ready_pause: Duration::from_millis(1), ..Default::default() };
    let mut got = Vec::new();
    let r = storage::run(&mut conn, &plan, &t, &opts, &mut |d| {
        got.extend_from_slice(d);
        Ok(())
    });
    (r, got)
}

fn write(image: &Path, at: Option<u64>, partition: Option<&str>, verify: bool) -> Verb {
    Verb::Write { image: image.to_path_buf(), at, partition: partition.map(str::to_string), verify }
}

#[test]
fn a_write_from_maskrom_lands_at_its_lba_and_is_read_back() {
    let d = tempfile::tempdir().unwrap();
    let loader = file(d.path(), "loader.bin", &rk3568_loader());
    // Not a whole number of sectors: the last one is padded with zeros.
    let img = pattern(1 << 20 | 100, 9);
    let image = file(d.path(), "os.img", &img);
    let b = board(RockchipFault::None);
    let (r, _) = run(&b, Some(&loader), write(&image, Some(0x2000), None, true));
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    let w = r.written.as_ref().unwrap();
    assert!(w.verified);
    assert_eq!((w.lba, w.bytes, w.sectors), (0x2000, img.len() as u64, 2049));
    // The usbplug's TEST UNIT READY hint when asked with 0xF7
    // (0x0a << 24): 4 MiB commands (8192 sectors).
    assert_eq!((r.transfer_sectors, w.commands), (8192, 1));
    assert_eq!(r.sectors, 16_777_216);
    let mut rom = b.rom.lock().unwrap();
    let mut want = img.clone();
    want.resize(2049 * 512, 0);
    assert_eq!(rom.emmc().read(0x2000 * 512, want.len()).unwrap(), want);
    assert_eq!(rom.emmc().read(0x2000 * 512 - 512, 512).unwrap(), vec![0; 512], "nothing before");
    assert!(rom.verdict().started(), "{:?}", rom.verdict());
    let sha = sha_hex(&img);
    assert_eq!(w.sha256, Some(sha));
}

fn sha_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn an_usbplug_already_running_is_used_without_a_loader_and_reads_back() {
    let b = board(RockchipFault::AlreadyLoader);
    b.rom.lock().unwrap().emmc().write(64 * 512, &pattern(4096, 5)).unwrap();
    let (r, got) = run(&b, None, Verb::Read { at: Some(64), size: Some(4096), partition: None });
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, pattern(4096, 5));
    assert_eq!(r.read, Some((64, 4096)));
    assert!(r.usbplug.contains("already running"), "{}", r.usbplug);
    assert!(b.rom.lock().unwrap().received.is_empty(), "no maskrom stage was sent");
}

#[test]
fn a_maskrom_board_without_a_loader_is_bad_input() {
    let b = board(RockchipFault::None);
    let (r, _) = run(&b, None, Verb::Partitions);
    let e = r.unwrap_err();
    assert!(matches!(e, StorageError::NeedLoader { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.hint().unwrap().contains("--loader"));
}

#[test]
fn past_the_end_is_refused_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    let image = file(d.path(), "os.img", &pattern(4096, 1));
    let b = board(RockchipFault::AlreadyLoader);
    let last = 16_777_216 - 4; // 4 sectors left, the image needs 8
    let (r, _) = run(&b, None, write(&image, Some(last), None, true));
    let e = r.unwrap_err();
    assert!(matches!(e, StorageError::PastEnd { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.to_string().contains("os.img") && e.to_string().contains("nothing was written"), "{e}");
    let (r, _) = run(&b, None, Verb::Read { at: Some(last), size: Some(4096), partition: None });
    assert!(matches!(r.unwrap_err(), StorageError::PastEnd { .. }));
    let (r, _) =
        run(&b, None, Verb::Erase { at: Some(1 << 32), size: Some(512), partition: None, whole: false });
    assert!(matches!(r.unwrap_err(), StorageError::PastEnd { .. }));
    let rom = b.rom.lock().unwrap();
    assert_eq!((rom.sectors_written, rom.sectors_erased), (0, 0));
    assert!(rom.refusals.is_empty(), "{:?}", rom.refusals);
}

#[test]
fn sizes_must_be_whole_sectors_and_where_said_once() {
    let b = board(RockchipFault::AlreadyLoader);
    let (r, _) = run(&b, None, Verb::Read { at: Some(0), size: Some(1000), partition: None });
    assert!(matches!(r.unwrap_err(), StorageError::NotSectors { size: 1000 }));
    let (r, _) = run(&b, None, Verb::Read { at: Some(0), size: None, partition: None });
    assert!(matches!(r.unwrap_err(), StorageError::NeedRange { verb: "read" }));
    let (r, _) = run(
        &b,
        None,
        Verb::Erase { at: Some(0), size: Some(512), partition: Some("boot".into()), whole: false },
    );
    let e = r.unwrap_err();
    assert!(matches!(e, StorageError::AtAndPartition));
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(b.rom.lock().unwrap().commands.is_empty(), "refused before the board was touched");
}

#[test]
fn partitions_come_from_the_devices_gpt_and_bound_a_write() {
    let d = tempfile::tempdir().unwrap();
    let b = board(RockchipFault::AlreadyLoader);
    with_gpt(&b);
    let (r, _) = run(&b, None, Verb::Partitions);
    let parts = r.unwrap().partitions.unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["table", "boot", "root"]);
    assert_eq!(parts[1].first_lba, (2 << 20) / 512);
    // A write to "boot" starts at its first LBA.
    let image = file(d.path(), "boot.img", &pattern(8192, 3));
    let (r, _) = run(&b, None, write(&image, None, Some("boot"), true));
    assert_eq!(r.unwrap().written.unwrap().lba, 4096);
    assert_eq!(b.rom.lock().unwrap().emmc().read(2 << 20, 8192).unwrap(), pattern(8192, 3));
    // Larger than "table" (2031 KiB): refused, nothing written.
    let before = b.rom.lock().unwrap().sectors_written;
    let big = file(d.path(), "big.img", &pattern(2031 * 1024 + 1, 4));
    let (r, _) = run(&b, None, write(&big, None, Some("table"), true));
    let e = r.unwrap_err();
    assert!(matches!(e, StorageError::TooLargeForPartition { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert_eq!(b.rom.lock().unwrap().sectors_written, before);
    let (r, _) = run(&b, None, write(&image, None, Some("nope"), true));
    let e = r.unwrap_err();
    assert!(e.to_string().contains("table, boot, root"), "{e}");
    // Without a GPT, --partition is bad input and `partitions` says so.
    let b = board(RockchipFault::AlreadyLoader);
    let (r, _) = run(&b, None, write(&image, None, Some("boot"), true));
    assert!(matches!(r.unwrap_err(), StorageError::NoGpt { .. }));
    let (r, _) = run(&b, None, Verb::Partitions);
    assert!(matches!(r.unwrap_err(), StorageError::NoTable { .. }));
}

#[test]
fn a_corrupting_emmc_fails_the_read_back_and_a_failing_one_the_write() {
    let d = tempfile::tempdir().unwrap();
    let image = file(d.path(), "os.img", &pattern(4096, 7));
    let b = board(RockchipFault::Corrupts);
    // The fault needs the usbplug: bring it up from maskrom with a loader.
    let loader = file(d.path(), "loader.bin", &rk3568_loader());
    let (r, _) = run(&b, Some(&loader), write(&image, Some(0), None, true));
    let e = r.unwrap_err();
    assert!(matches!(e, StorageError::VerifyMismatch { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
    let b = board(RockchipFault::WriteFails);
    let (r, _) = run(&b, Some(&loader), write(&image, Some(0), None, false));
    let e = r.unwrap_err();
    assert!(e.to_string().contains("WRITE LBA 0"), "{e}");
    assert_ne!(e.class(), FailureClass::BadInput);
}

#[test]
fn erase_whole_and_ranges_and_reset_into_maskrom() {
    let b = board(RockchipFault::AlreadyLoader);
    b.rom.lock().unwrap().emmc().write(0, &[7; 4096]).unwrap();
    let (r, _) = run(&b, None, Verb::Erase { at: Some(1), size: Some(1024), partition: None, whole: false });
    assert_eq!(r.unwrap().erased, Some((1, 2)));
    let got = b.rom.lock().unwrap().emmc().read(0, 4096).unwrap();
    assert_eq!((got[511], got[512], got[1535], got[1536]), (7, 0, 0, 7));
    let (r, _) = run(&b, None, Verb::Erase { at: None, size: None, partition: None, whole: true });
    assert_eq!(r.unwrap().erased, Some((0, 16_777_216)));
    assert_eq!(b.rom.lock().unwrap().emmc().read(0, 4096).unwrap(), vec![0; 4096]);
    let (r, _) = run(&b, None, Verb::Reset { maskrom: true });
    assert!(r.unwrap().reset.unwrap().contains("maskrom"));
    assert_eq!(b.rom.lock().unwrap().resets, [3]);
}

#[test]
fn extents_fill_and_skip_as_they_say() {
    // Another module's image format hands the writer extents: data, a fill,
    // a hole the medium keeps.
    let b = board(RockchipFault::AlreadyLoader);
    b.rom.lock().unwrap().emmc().write(100 * 512 + 1024, &[9; 512]).unwrap();
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(b.usb.clone()), Arc::new(SimSerialBus::new()), &mut progress);
    let dev = conn.find_usb(&[racklet_link::UsbId::new(0x2207, 0x350a)], "usbplug").unwrap();
    let mut link = conn.open_usb(&dev).unwrap();
    let mut r = racklet_rockchip::Rockusb::new(&mut *link).unwrap();
    let extents = vec![
        Ok::<_, StorageError>(Extent::Data { offset: 0, bytes: vec![1; 1024] }),
        Ok(Extent::Skip { offset: 1024, len: 512 }),
        Ok(Extent::Fill { offset: 1536, len: 1536, value: 0x4433_2211 }),
    ];
    let w = storage::write_extents(
        &mut r,
        100,
        3072,
        1 << 20,
        extents.into_iter(),
        2,
        true,
        "x",
        Path::new("x"),
        &mut conn,
    )
    .unwrap();
    drop(link);
    assert_eq!((w.sectors, w.commands), (5, 3));
    let got = b.rom.lock().unwrap().emmc().read(100 * 512, 3072).unwrap();
    assert_eq!(&got[..1024], &[1; 1024][..]);
    assert_eq!(&got[1024..1536], &[9; 512][..], "the skipped sector keeps what it held");
    let fill: Vec<u8> = [0x11, 0x22, 0x33, 0x44].iter().copied().cycle().take(1536).collect();
    assert_eq!(&got[1536..], &fill[..], "the 4-byte LE pattern, across two commands");
    // An extent off a sector boundary is refused.
    let bad = vec![Ok::<_, StorageError>(Extent::Data { offset: 100, bytes: vec![1; 10] })];
    let mut link = conn.open_usb(&dev).unwrap();
    let mut r = racklet_rockchip::Rockusb::new(&mut *link).unwrap();
    let e = storage::write_extents(
        &mut r,
        0,
        10,
        1 << 20,
        bad.into_iter(),
        2,
        false,
        "x",
        Path::new("x"),
        &mut conn,
    )
    .unwrap_err();
    assert!(matches!(e, StorageError::Unaligned { offset: 100, .. }), "{e}");
}

/// An Android sparse image (AOSP `sparse_format.h`): 28-byte header,
/// 12-byte chunk headers; RAW 0xCAC1, FILL 0xCAC2, DONT_CARE 0xCAC3.
fn sparse(blk: u32, chunks: &[(u16, u32, Vec<u8>)]) -> Vec<u8> {
    let total: u32 = chunks.iter().map(|c| c.1).sum();
    let mut b = Vec::new();
    b.extend(0xed26_ff3au32.to_le_bytes());
    b.extend([1u8, 0, 0, 0, 28, 0, 12, 0]);
    b.extend(blk.to_le_bytes());
    b.extend(total.to_le_bytes());
    b.extend((chunks.len() as u32).to_le_bytes());
    b.extend(0u32.to_le_bytes());
    for (kind, n, data) in chunks {
        b.extend(kind.to_le_bytes());
        b.extend([0, 0]);
        b.extend(n.to_le_bytes());
        b.extend((12 + data.len() as u32).to_le_bytes());
        b.extend(data);
    }
    b
}

#[test]
fn a_sparse_image_writes_its_chunks_and_skips_dont_care() {
    let d = tempfile::tempdir().unwrap();
    let img = sparse(
        4096,
        &[(0xcac1, 1, pattern(4096, 3)), (0xcac3, 1, vec![]), (0xcac2, 2, vec![0x11, 0x22, 0x33, 0x44])],
    );
    let image = file(d.path(), "os.simg", &img);
    let b = board(RockchipFault::AlreadyLoader);
    b.rom.lock().unwrap().emmc().write(100 * 512 + 4096, &[9; 4096]).unwrap();
    let (r, _) = run(&b, None, write(&image, Some(100), None, true));
    let w = r.unwrap_or_else(|e| panic!("{e}")).written.unwrap();
    assert!(w.verified && w.sha256.is_some());
    // 16 KiB of image, 12 KiB of it written (the DONT_CARE block is left).
    assert_eq!((w.bytes, w.sectors), (16384, 24));
    // --no-verify: the same sectors, nothing read back, nothing hashed.
    let (r, _) = run(&b, None, write(&image, Some(100), None, false));
    let w = r.unwrap_or_else(|e| panic!("{e}")).written.unwrap();
    assert_eq!((w.verified, w.sha256, w.sectors), (false, None, 24));
    let got = b.rom.lock().unwrap().emmc().read(100 * 512, 16384).unwrap();
    assert_eq!(&got[..4096], &pattern(4096, 3)[..]);
    assert_eq!(&got[4096..8192], &[9; 4096][..], "DONT_CARE keeps what was there");
    assert!(got[8192..].chunks(4).all(|c| c == [0x11, 0x22, 0x33, 0x44]));
    // Larger than what is left of the medium: refused before a sector is written.
    let before = b.rom.lock().unwrap().sectors_written;
    let (r, _) = run(&b, None, write(&image, Some(16_777_216 - 8), None, true));
    assert!(matches!(r.unwrap_err(), StorageError::PastEnd { .. }));
    assert_eq!(b.rom.lock().unwrap().sectors_written, before);
}

#[test]
fn damaged_and_empty_images_are_bad_input_with_the_way_out() {
    let d = tempfile::tempdir().unwrap();
    // A gzip stream that ends after its header.
    let image = file(d.path(), "os.img.gz", &[0x1f, 0x8b, 8, 0, 0, 0]);
    let (r, _) = run(&board(RockchipFault::AlreadyLoader), None, write(&image, None, None, true));
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput, "{e}");
    assert!(e.to_string().contains("os.img.gz"), "{e}");
    assert!(e.hint().is_some(), "{e}");
    let empty = file(d.path(), "empty.img", &[]);
    let (r, _) = run(&board(RockchipFault::AlreadyLoader), None, write(&empty, None, None, true));
    assert!(matches!(r.unwrap_err(), StorageError::EmptyImage { .. }));
}

#[test]
fn the_transfer_size_follows_the_loaders_hint() {
    use racklet_rockchip::rockusb::sectors_from_hint;
    assert_eq!(sectors_from_hint(0x06 << 24), 512, "256 KiB");
    assert_eq!(sectors_from_hint(0x0a << 24), 8192, "4 MiB");
    // Mainline echoes the CBW's length (0), junk is no hint: rkdeveloptool's 128.
    for junk in [0, 0x0600_0001, 11 << 24, 0xffff_ffff] {
        assert_eq!(sectors_from_hint(junk), 128, "{junk:#x}");
    }
}

#[test]
fn ctrl_c_stops_a_write_between_commands_and_says_how_far_it_got() {
    let d = tempfile::tempdir().unwrap();
    let image = file(d.path(), "os.img", &pattern(12 << 20, 2));
    let b = board(RockchipFault::AlreadyLoader);
    let t = target("rock-3a");
    let verb = write(&image, Some(0), None, true);
    let plan = storage::plan(None, &verb, &t).unwrap();
    // The write's stage event and the first 4 MiB command's advance: then Ctrl-C.
    let mut cancel = racklet_link::testing::CancelAfter::new(2);
    let mut conn = Connector::new(Arc::new(b.usb.clone()), Arc::new(SimSerialBus::new()), &mut cancel);
    let e = storage::run(&mut conn, &plan, &t, &Options::default(), &mut |_| Ok(())).unwrap_err();
    assert_eq!(e.class(), FailureClass::Interrupted, "{e}");
    let StorageError::Interrupted { done, total, .. } = &e else { panic!("{e}") };
    assert_eq!((*done, *total), (4 << 20, 12 << 20));
    assert!(e.to_string().contains("the write is incomplete"), "{e}");
    assert_eq!(b.rom.lock().unwrap().sectors_written, 8192, "one command went out, no more");
}
