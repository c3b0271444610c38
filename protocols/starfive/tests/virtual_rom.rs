//! The sender against the virtual ROM (racklet-sim) over real
//! pseudo-terminals, with every fault the ROM can inject. Each case ends in
//! a started payload or a clean failure of the right class; every wait is
//! bounded.

use std::time::Duration;

use racklet_link::serial_backend::SerialPortLink;
use racklet_link::testing::CollectProgress;
use racklet_link::{Classify, FailureClass, SerialInfo};
use racklet_sim::serial::PtyPair;
use racklet_sim::starfive::{Fault, RomConfig, RomReport, SplStage, StarfiveRom};
use racklet_starfive::header::{self, HeaderOptions};
use racklet_starfive::xmodem::BlockSize;
use racklet_starfive::{BootOptions, StarfiveError, boot_uart, send_next_stage};

struct Rig {
    rom: StarfiveRom,
    link: SerialPortLink,
    _client: serialport::TTYPort,
}

fn rig(cfg: RomConfig) -> Rig {
    let pair = PtyPair::new().unwrap();
    let PtyPair { device, client, path } = pair;
    let rom = StarfiveRom::spawn(device, cfg);
    let link = SerialPortLink::open(SerialInfo { path, ..Default::default() }, 115_200).unwrap();
    Rig { rom, link, _client: client }
}

fn fast_opts(block: BlockSize) -> BootOptions {
    let mut o = BootOptions::default();
    o.xmodem.block = block;
    o.xmodem.answer_timeout = Duration::from_millis(400);
    o.poll_timeout = Duration::from_secs(3);
    o.verdict_window = Duration::from_millis(300);
    o
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + (i >> 9)) as u8).collect()
}

fn image(n: usize) -> Vec<u8> {
    header::build_image(&payload(n), &HeaderOptions::default()).unwrap()
}

/// A stand-in for U-Boot SPL with YMODEM support: a payload carrying the
/// banner of u-boot common/spl/spl.c (`"\nU-Boot SPL " PLAIN_VERSION ...`)
/// and the report of common/spl/spl_ymodem.c (`"Loaded %lu bytes\n"`).
fn spl_image(n: usize) -> Vec<u8> {
    let mut p = payload(n);
    p[64..96].copy_from_slice(b"\nU-Boot SPL 2025.10 (Oct 06 2025");
    p[n - 40..n - 22].copy_from_slice(b"Loaded %lu bytes\n\0");
    header::build_image(&p, &HeaderOptions::default()).unwrap()
}

fn run(
    fault: Fault,
    block: BlockSize,
    n: usize,
) -> (Result<racklet_starfive::BootReport, StarfiveError>, RomReport, Vec<u8>) {
    let mut r = rig(RomConfig { fault, ..Default::default() });
    let img = image(n);
    let mut prog = CollectProgress::default();
    let res = boot_uart(&mut r.link, &img, &fast_opts(block), &mut prog);
    if res.is_ok() {
        assert_eq!(prog.bytes(), img.len() as u64, "progress covers every byte");
    }
    let rep = r.rom.wait_sessions(1, Duration::from_millis(500));
    drop(r.link);
    let rep2 = r.rom.stop();
    assert_eq!(rep.sessions.len(), rep2.sessions.len());
    (res, rep2, img)
}

fn assert_started(rep: &RomReport, img: &[u8]) {
    let s = rep.sessions.last().expect("a session");
    assert!(s.verdict.is_ok(), "{:?}", s.verdict);
    assert_eq!(&s.received[..img.len()], img, "the ROM holds exactly the image");
    assert!(s.received.len() - img.len() < 1024);
}

#[test]
fn boots_with_1k_blocks() {
    let (res, rep, img) = run(Fault::None, BlockSize::K1, 5000);
    let r = res.unwrap();
    assert_started(&rep, &img);
    let s = &rep.sessions[0];
    // 6024 bytes: 5 full 1K blocks + 904 bytes in a sixth 1K block.
    assert_eq!((s.frames_1k, s.frames_128), (6, 0));
    assert!(r.stats.eot_acked);
    assert_eq!(r.stats.naks, 0);
}

#[test]
fn boots_with_128_byte_blocks_across_the_block_number_wrap() {
    // 300 blocks of 128 bytes: block numbers wrap from 255 to 0.
    let (res, rep, img) = run(Fault::None, BlockSize::B128, 300 * 128 - 0x400);
    res.unwrap();
    assert_started(&rep, &img);
    assert_eq!((rep.sessions[0].frames_1k, rep.sessions[0].frames_128), (0, 300));
}

#[test]
fn short_tail_goes_as_one_128_byte_frame() {
    let (res, rep, img) = run(Fault::None, BlockSize::K1, 2048 + 100 - 0x400);
    res.unwrap();
    assert_started(&rep, &img);
    assert_eq!((rep.sessions[0].frames_1k, rep.sessions[0].frames_128), (2, 1));
}

#[test]
fn spurious_naks_are_resent_and_the_boot_completes() {
    let (res, rep, img) = run(Fault::Nak, BlockSize::K1, 9000);
    let r = res.unwrap();
    assert_started(&rep, &img);
    assert!(r.stats.naks >= 2, "{:?}", r.stats);
    assert_eq!(r.stats.naks, rep.sessions[0].naks_sent);
}

#[test]
fn a_nak_storm_beyond_ten_is_tolerated() {
    let (res, rep, img) = run(Fault::NakStorm, BlockSize::K1, 3000);
    let r = res.unwrap();
    assert_started(&rep, &img);
    assert_eq!(r.stats.naks, 12);
}

#[test]
fn a_spec_strict_nak_budget_fails_on_the_storm_as_rejected() {
    let mut r = rig(RomConfig { fault: Fault::NakStorm, ..Default::default() });
    let mut o = fast_opts(BlockSize::K1);
    o.xmodem.max_naks = 10;
    let e = boot_uart(&mut r.link, &image(3000), &o, &mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, StarfiveError::TooManyNaks { block: 2, naks: 10 }), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
    drop(r.link);
    let rep = r.rom.stop();
    assert!(rep.sessions.iter().all(|s| s.verdict.is_err()), "no payload may start");
}

#[test]
fn a_dropped_ack_is_recovered_by_a_resend() {
    let (res, rep, img) = run(Fault::DropAck, BlockSize::K1, 4000);
    let r = res.unwrap();
    assert_started(&rep, &img);
    assert_eq!(r.stats.timeouts, 1);
    assert_eq!(rep.sessions[0].duplicates, 1);
}

#[test]
fn a_corrupted_frame_is_naked_and_resent() {
    let (res, rep, img) = run(Fault::CorruptFrame, BlockSize::B128, 1000);
    let r = res.unwrap();
    assert_started(&rep, &img);
    assert_eq!((r.stats.naks, rep.sessions[0].naks_sent), (1, 1));
}

#[test]
fn a_corrupted_image_is_rejected_by_the_rom_crc() {
    let (res, rep, _) = run(Fault::CorruptImage, BlockSize::K1, 4000);
    let e = res.unwrap_err();
    assert!(matches!(e, StarfiveError::RomCrcError { .. }), "{e}");
    assert!(e.to_string().contains("CRC Error, Try again"), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
    assert!(rep.sessions[0].verdict.is_err());
}

#[test]
fn a_silent_rom_times_out() {
    let (res, rep, _) = run(Fault::Silent, BlockSize::K1, 4000);
    let e = res.unwrap_err();
    assert!(matches!(e, StarfiveError::NoAnswer { tries: 3, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
    assert!(rep.sessions.is_empty());
}

#[test]
fn a_rom_that_never_polls_times_out_and_says_what_it_printed() {
    let mut r = rig(RomConfig { fault: Fault::NoPoll, ..Default::default() });
    let mut o = fast_opts(BlockSize::K1);
    o.poll_timeout = Duration::from_millis(700);
    let e = boot_uart(&mut r.link, &image(100), &o, &mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, StarfiveError::NoPoll { .. }), "{e}");
    assert!(e.to_string().contains("(C)StarFive"), "{e}");
    assert_eq!(e.class(), FailureClass::Timeout);
}

#[test]
fn the_spl_gets_its_next_stage_by_ymodem() {
    let mut r = rig(RomConfig::default());
    let img = spl_image(3000);
    let itb: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut o = fast_opts(BlockSize::K1);
    o.verdict_window = Duration::ZERO;
    let mut prog = CollectProgress::default();
    let boot = boot_uart(&mut r.link, &img, &o, &mut prog).unwrap();
    let (stats, text) =
        send_next_stage(&mut r.link, &boot, "u-boot.itb", &itb, Duration::from_secs(3), &o, &mut prog)
            .unwrap();
    assert!(text.contains("Trying to boot from UART"), "{text}");
    assert_eq!(stats.data_bytes, 5000);
    assert_eq!(prog.bytes(), (img.len() + itb.len()) as u64);
    drop(r.link);
    let rep = r.rom.stop();
    let Some(SplStage::Done(Ok(f))) = rep.spl.clone() else { panic!("{:?}", rep.spl) };
    assert_eq!(f.name, "u-boot.itb");
    assert_eq!(f.data, itb);
    assert!(rep.verdict().unwrap().contains("SPL loaded u-boot.itb (5000 bytes)"), "{:?}", rep.verdict());
}

#[test]
fn the_next_stage_is_not_sent_when_the_rom_refused_the_image() {
    let mut r = rig(RomConfig { fault: Fault::CorruptImage, ..Default::default() });
    let mut o = fast_opts(BlockSize::K1);
    // No verdict window: the refusal must still be seen.
    o.verdict_window = Duration::ZERO;
    let mut prog = CollectProgress::default();
    let e = boot_uart(&mut r.link, &spl_image(2000), &o, &mut prog)
        .and_then(|b| {
            send_next_stage(&mut r.link, &b, "u-boot.itb", &[1, 2, 3], Duration::from_secs(3), &o, &mut prog)
        })
        .unwrap_err();
    assert!(matches!(e, StarfiveError::RomCrcError { .. }), "{e}");
    drop(r.link);
    let rep = r.rom.stop();
    assert!(rep.spl.is_none(), "a refused SPL never runs: {:?}", rep.spl);
}
