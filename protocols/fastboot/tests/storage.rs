//! Storage through vendor U-Boot's fastboot against the virtual U-Boot of
//! racklet-sim, whose eMMC, GPT, raw and sparse writes follow U-Boot's
//! `fb_mmc.c`, `fb_block.c` and `image-sparse.c` (not this crate): what
//! ends up on the virtual eMMC is read back through the device's own GPT.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racklet_fastboot::storage::{StorageError, StorageInputs, plan_storage, write};
use racklet_fastboot::{Inputs, Options, k1};
use racklet_image::Target;

mod common;
use common::target;
use racklet_link::testing::CollectProgress;
use racklet_link::{Classify, Connector, FailureClass};
use racklet_sim::fastboot::{FastbootDevice, Soc};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::uboot_storage;
use racklet_sim::usb::SimUsbBus;

fn noise(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(
    bus: &SimUsbBus,
    inputs: &StorageInputs,
    t: &Target,
    p: &mut CollectProgress,
) -> Result<racklet_fastboot::storage::StorageReport, StorageError> {
    let plan = plan_storage(inputs, t)?;
    let mut c = Connector::new(Arc::new(bus.clone()), Arc::new(SimSerialBus::new()), p);
    c.stage_timeout = Duration::from_secs(2);
    write(&mut c, &plan, t, &Options::default())
}

/// What the partition `name` of the virtual eMMC holds, `len` bytes of it.
fn on_emmc(dev: &Arc<Mutex<FastbootDevice>>, name: &str, len: usize) -> Vec<u8> {
    let mut d = dev.lock().unwrap();
    let emmc = d.emmc();
    let p = uboot_storage::find(emmc, name).unwrap();
    emmc.read(p.first_lba * uboot_storage::BLOCK, len).unwrap()
}

#[test]
fn th1520_partitions_written_raw_and_as_sparse_pieces_within_the_download_limit() {
    let bus = SimUsbBus::new();
    // A 1 MiB download buffer, so the 2.5 MB root goes as sparse pieces.
    let dev =
        bus.attach(FastbootDevice::new(Soc::Th1520, "1-2").in_uboot().with_uboot_download_limit(1 << 20));
    let d = tempfile::tempdir().unwrap();
    let boot = noise(300_001, 1);
    let root = noise(2_500_000, 2);
    let inputs = StorageInputs {
        flash: vec![
            ("boot".into(), file(d.path(), "boot.ext4", &boot)),
            ("root".into(), file(d.path(), "root.ext4", &root)),
        ],
        reboot: true,
        ..Default::default()
    };
    let mut p = CollectProgress::default();
    let report = run(&bus, &inputs, &target("th1520"), &mut p).unwrap();
    assert_eq!(report.flashed[0].downloads, 1);
    assert!(report.flashed[1].downloads >= 3, "{:?}", report.flashed[1]);
    assert!(report.rebooted);
    assert_eq!(on_emmc(&dev, "boot", boot.len()), boot);
    assert_eq!(on_emmc(&dev, "root", root.len()), root);
    let d = dev.lock().unwrap();
    assert!(d.downloads.iter().all(|r| r.bytes.len() <= 1 << 20), "every download within the limit");
    let facts: Vec<String> = report.facts().into_iter().map(|f| format!("{}: {}", f.0, f.1)).collect();
    assert!(
        facts.iter().any(|f| f.starts_with("partition root: root.ext4 (2500000 bytes) written as ")),
        "{facts:?}"
    );
}

#[test]
fn an_unknown_partition_or_an_image_too_large_is_refused_before_the_first_write() {
    let d = tempfile::tempdir().unwrap();
    let ok = file(d.path(), "boot.ext4", &noise(1000, 3));
    for (flash, needle) in [
        (vec![("boot".to_string(), ok.clone()), ("rootfs".to_string(), ok.clone())], "no such partition"),
        (
            vec![
                ("boot".to_string(), ok.clone()),
                ("table".to_string(), file(d.path(), "big", &noise(2031 * 1024 + 1, 4))),
            ],
            "holds 2079744",
        ),
    ] {
        let bus = SimUsbBus::new();
        let dev = bus.attach(FastbootDevice::new(Soc::Th1520, "1-2").in_uboot());
        let inputs = StorageInputs { flash, ..Default::default() };
        let e = run(&bus, &inputs, &target("th1520"), &mut CollectProgress::default()).unwrap_err();
        assert_eq!(e.class(), FailureClass::BadInput, "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert!(dev.lock().unwrap().downloads.is_empty(), "nothing was sent before the refusal");
    }
}

#[test]
fn k1_from_its_rom_through_fsbl_and_uboot_to_a_sparse_rootfs() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "3-1").with_next_stages(1));
    let d = tempfile::tempdir().unwrap();
    let fsbl = file(d.path(), "FSBL.bin", &k1::build_fsbl(&noise(9000, 5)));
    let mut itb = noise(100_000, 6);
    itb[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
    let itb = file(d.path(), "u-boot.itb", &itb);
    // An Android sparse rootfs written by hand from the format: 2 raw
    // blocks, 3 don't-care blocks, 1 fill block.
    let mut img = Vec::new();
    img.extend(0xed26ff3au32.to_le_bytes());
    img.extend([1, 0, 0, 0, 28, 0, 12, 0]);
    img.extend(4096u32.to_le_bytes());
    img.extend(6u32.to_le_bytes());
    img.extend(3u32.to_le_bytes());
    img.extend(0u32.to_le_bytes());
    let raw = noise(8192, 7);
    for (kind, n, data) in
        [(0xcac1u16, 2u32, raw.clone()), (0xcac3, 3, vec![]), (0xcac2, 1, vec![1, 2, 3, 4])]
    {
        img.extend(kind.to_le_bytes());
        img.extend([0, 0]);
        img.extend(n.to_le_bytes());
        img.extend((12 + data.len() as u32).to_le_bytes());
        img.extend(data);
    }
    let rootfs = file(d.path(), "rootfs.simg", &img);
    let inputs = StorageInputs {
        bring_up: Some(Inputs { image: Some(fsbl), then: vec![itb], ..Default::default() }),
        flash: vec![("rootfs".into(), rootfs)],
        reboot: false,
        ..Default::default()
    };
    let mut p = CollectProgress::default();
    let report = run(&bus, &inputs, &target("k1"), &mut p).unwrap();
    assert_eq!(report.flashed[0].bytes, 6 * 4096);
    let got = on_emmc(&dev, "rootfs", 6 * 4096);
    assert_eq!(&got[..8192], raw.as_slice());
    assert_eq!(&got[5 * 4096..5 * 4096 + 8], &[1, 2, 3, 4, 1, 2, 3, 4]);
    assert!(dev.lock().unwrap().verdict().started());
    // Without the bring-up, the ROM is not mistaken for U-Boot.
    let bus = SimUsbBus::new();
    bus.attach(FastbootDevice::new(Soc::K1, "3-1"));
    let inputs =
        StorageInputs { flash: vec![("rootfs".into(), d.path().join("rootfs.simg"))], ..Default::default() };
    let e = run(&bus, &inputs, &target("k1"), &mut CollectProgress::default()).unwrap_err();
    assert!(e.to_string().contains("is in its boot ROM"), "{e}");
}

/// Compressed images and a raw image with a bmap beside it go as sparse
/// pieces made from their extents: the eMMC ends up with the image, and
/// blocks the bmap leaves unmapped keep what was there.
#[test]
fn compressed_and_bmapped_images_reach_the_partition_as_sparse_pieces() {
    use std::io::Write;
    let d = tempfile::tempdir().unwrap();
    let raw = noise(3 * 1024 * 1024 + 1000, 9);
    let gz = d.path().join("root.img.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&raw).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let bus = SimUsbBus::new();
    let dev =
        bus.attach(FastbootDevice::new(Soc::Th1520, "1-2").in_uboot().with_uboot_download_limit(1 << 20));
    let inputs = StorageInputs { flash: vec![("root".into(), gz)], ..Default::default() };
    let report = run(&bus, &inputs, &target("th1520"), &mut CollectProgress::default()).unwrap();
    assert!(report.flashed[0].downloads >= 3, "{:?}", report.flashed);
    assert_eq!(on_emmc(&dev, "root", raw.len()), raw);
    assert!(dev.lock().unwrap().downloads.iter().all(|r| r.bytes.len() <= 1 << 20));

    // bmap: blocks 0-1 and 100 mapped (bmaptool 2.0 format, SHA-256 per range).
    let mut img = vec![0u8; 101 * 4096];
    img[..8192].copy_from_slice(&noise(8192, 10));
    img[100 * 4096..].copy_from_slice(&noise(4096, 11));
    let p = file(d.path(), "os.img", &img);
    let sum = |b: &[u8]| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
    };
    let xml = format!(
        "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n<ImageSize> {} </ImageSize>\n<BlockSize> 4096 </BlockSize>\n<BlocksCount> 101 </BlocksCount>\n<MappedBlocksCount> 3 </MappedBlocksCount>\n<ChecksumType> sha256 </ChecksumType>\n<BmapFileChecksum> {} </BmapFileChecksum>\n<BlockMap>\n<Range chksum=\"{}\"> 0-1 </Range>\n<Range chksum=\"{}\"> 100 </Range>\n</BlockMap>\n</bmap>\n",
        img.len(),
        "0".repeat(64),
        sum(&img[..8192]),
        sum(&img[100 * 4096..])
    );
    std::fs::write(d.path().join("os.img.bmap"), xml).unwrap();
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::Th1520, "1-2").in_uboot());
    // What was on the partition before: 0x5a everywhere.
    {
        let mut g = dev.lock().unwrap();
        let emmc = g.emmc();
        let at = uboot_storage::find(emmc, "boot").unwrap().first_lba * uboot_storage::BLOCK;
        emmc.write(at, &vec![0x5a; img.len()]).unwrap();
    }
    let inputs = StorageInputs { flash: vec![("boot".into(), p)], ..Default::default() };
    let report = run(&bus, &inputs, &target("th1520"), &mut CollectProgress::default()).unwrap();
    assert_eq!(report.flashed[0].bytes, img.len() as u64);
    let got = on_emmc(&dev, "boot", img.len());
    assert_eq!(&got[..8192], &img[..8192]);
    assert!(got[8192..100 * 4096].iter().all(|&b| b == 0x5a), "unmapped blocks are left as they were");
    assert_eq!(&got[100 * 4096..], &img[100 * 4096..]);
    let sent: usize = dev.lock().unwrap().downloads.iter().map(|r| r.bytes.len()).sum();
    assert!(sent < 4 * 4096, "only the mapped blocks crossed the wire ({sent} bytes)");
}

/// `partitions`' questions: on a U-Boot with `getvar all` the variables
/// come from its INFO lines, on the vendor U-Boots (which FAIL it) one by
/// one; either way the vendor layout's partitions are looked up by name and
/// sized as the virtual eMMC's GPT has them; nothing is written.
#[test]
fn partitions_from_getvar_all_or_one_by_one() {
    for with_all in [false, true] {
        let bus = SimUsbBus::new();
        let dev = FastbootDevice::new(Soc::Th1520, "1-2").in_uboot();
        let dev = bus.attach(if with_all { dev.with_getvar_all() } else { dev });
        let t = target("th1520");
        let plan = racklet_fastboot::storage::plan_session(&StorageInputs::default(), &t).unwrap();
        let mut p = CollectProgress::default();
        let mut c = Connector::new(Arc::new(bus.clone()), Arc::new(SimSerialBus::new()), &mut p);
        let probe = vec!["boot".to_string(), "nope".to_string()];
        let r =
            racklet_fastboot::session::partitions(&mut c, &plan, &t, &Options::default(), &probe).unwrap();
        assert_eq!(r.source.starts_with("getvar all"), with_all, "{}", r.source);
        assert!(
            r.variables.contains(&("product".to_string(), "light-lpi4a".to_string())),
            "{:?}",
            r.variables
        );
        assert_eq!(r.partitions.len(), 1);
        assert_eq!((r.partitions[0].name.as_str(), r.partitions[0].size), ("boot", Some(500 << 20)));
        assert_eq!(r.not_found, ["nope"]);
        let d = dev.lock().unwrap();
        assert!(d.log.iter().any(|l| l.1 == "getvar:all"), "getvar all was asked first");
        assert!(d.flashed.is_empty() && d.downloads.is_empty());
    }
}
