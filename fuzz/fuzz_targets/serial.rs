//! The serial-ROM host sides against a fake serial port answering with fuzz
//! bytes: StarFive's poll detection (console::wait_for_poll, which feeds
//! PollDetector and checks for the ROM's refusals) and the Sophgo session
//! loader (its ACK parsing and request serving), both for a cold boot of a
//! fip.bin and for a running BL2's load_image (`--main`).
//!
//! Input: byte 0 picks the mode, byte 1 the size of the image; the rest is
//! the fake port's input (racklet_fuzz::FakeSerial). For Sophgo the fake
//! can answer with a correct ACK of the last packet (its CRC echoed twice,
//! token, then offset and size from the input), so the fuzzer gets past the
//! CRC check and into the serving logic.
//!
//! Invariants:
//! - StarFive: strict waiting never succeeds once the text shows
//!   "CRC Error" or the banner; PollDetector agrees with a byte-by-byte
//!   re-implementation of the rule in its documentation;
//! - Sophgo: every packet written is at most 512 bytes with a known token;
//!   a served session wrote, by DATA address, exactly the requested slice of
//!   the image (boot) or the first `size` bytes of the file (main); bytes
//!   sent only grow; a boot loader is finished only after serving BL2.
#![no_main]
use libfuzzer_sys::fuzz_target;

use racklet_fuzz::{Bytes, FakeSerial};
use racklet_link::{LinkError, NoProgress};
use racklet_sophgo::packet::{self, ACK_LEN, HEADER_LEN, MAX_PACKET};
use racklet_sophgo::{Loader, Options, SessionOutcome, fip};
use racklet_starfive::console::{self, PollDetector};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let size = b.u16() as usize % 4096;
    match mode % 4 {
        0 => starfive(b, false),
        1 => starfive(b, true),
        2 => sophgo_boot(b, size + 1, mode),
        _ => sophgo_main(b, size, mode),
    }
});

fn starfive(b: Bytes<'_>, strict: bool) {
    // The detector against its documented rule, on the raw input.
    let raw = b.clone().rest();
    let mut det = PollDetector::new();
    let mut candidate = false;
    let mut prev: Option<u8> = None;
    for &c in raw {
        let confirmed = det.feed(c);
        let want = candidate && matches!(c, b'C' | b'\r' | b'\n');
        assert_eq!(confirmed, want);
        candidate = c == b'C' && prev.is_none_or(|p| p == b'C' || !(p.is_ascii_alphanumeric() || p == b'('));
        prev = Some(c);
    }
    assert_eq!(det.idle(), candidate);
    let _ = (det.text(), console::crc_error_line(&det.text()));

    let mut link = FakeSerial::new(b);
    let r =
        console::wait_for_poll(&mut link, Duration::from_secs(60), Duration::ZERO, strict, b"", &|| Ok(()));
    match r {
        Ok(d) => {
            if strict {
                assert!(!d.saw(console::CRC_ERROR) && !d.saw(console::BANNER));
            }
            assert!(console::check_refusal(&d).is_ok() || !strict);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// A correct ACK of `sent`: both CRCs echo it, the token is the packet's;
/// offset and size come from the input (small values, mostly).
fn ack(sent: &[u8], b: &mut Bytes<'_>) -> Vec<u8> {
    let crc = packet::crc16(sent);
    let sel = b.u8();
    let (offset, size) = match sel % 4 {
        0 => (0, 0x1000),
        1 => (0x1000, u32::from(b.u16())),
        2 => (u32::from(b.u16()), u32::from(b.u16())),
        _ => (b.u32(), b.u32()),
    };
    let mut a = Vec::with_capacity(ACK_LEN);
    a.extend_from_slice(&crc.to_be_bytes());
    a.extend_from_slice(&crc.to_be_bytes());
    a.extend_from_slice(&[0, 0, sent.first().copied().unwrap_or(0), 0]);
    a.extend_from_slice(&offset.to_be_bytes());
    a.extend_from_slice(&size.to_be_bytes());
    a
}

fn opts(mode: u8) -> Options {
    Options {
        chunk: [248, 504, 1, 100][(mode as usize >> 2) % 4],
        ack_timeout: Duration::from_secs(1),
        break_ack_timeout: Duration::from_millis(1),
        resends: u32::from(mode >> 4) % 4,
        max_serves: 3,
        ..Options::default()
    }
}

/// Rebuilds what DATA packets wrote, by address.
fn reassemble(written: &[Vec<u8>]) -> Vec<u8> {
    let mut img = Vec::new();
    for p in written {
        assert!(p.len() <= MAX_PACKET, "{}-byte packet", p.len());
        assert!(p.len() >= HEADER_LEN);
        assert!(p[0] <= packet::TOKEN_MAGIC, "token {}", p[0]);
        if p[0] == packet::TOKEN_DATA {
            let mut a = [0u8; 8];
            a[3..].copy_from_slice(&p[3..8]);
            let addr = u64::from_be_bytes(a) as usize;
            let d = &p[HEADER_LEN..];
            if img.len() < addr + d.len() {
                img.resize(addr + d.len(), 0);
            }
            img[addr..addr + d.len()].copy_from_slice(d);
        }
    }
    img
}

fn serve(loader: &mut Loader, link: &mut FakeSerial<'_>, image: &[u8], boot: bool) {
    let mut sent = 0;
    for _ in 0..6 {
        let first = link.written.len();
        let r = loader.session(link, &mut NoProgress);
        assert!(loader.bytes_sent() >= sent);
        sent = loader.bytes_sent();
        match r {
            Ok(SessionOutcome::Served { offset, size, bytes, .. }) => {
                let got = reassemble(&link.written[first..]);
                let want = if boot {
                    &image[offset as usize..offset as usize + size as usize]
                } else {
                    &image[..(size as usize).min(image.len())]
                };
                assert_eq!(bytes as usize, want.len());
                assert_eq!(got, want);
            }
            Ok(SessionOutcome::Probe) => assert!(boot),
            // Nothing is sent for a request beyond the image.
            Ok(SessionOutcome::Beyond { offset, size, .. }) => {
                assert!(boot && offset as u64 + size as u64 > image.len() as u64);
                assert!(link.written[first..].iter().all(|p| p[0] == packet::TOKEN_MAGIC), "only the magic");
            }
            Err(e) => {
                let _ = e.to_string();
                let _ = racklet_link::Classify::class(&e);
                if matches!(
                    e,
                    racklet_sophgo::SophgoError::Link { source: LinkError::Disconnected { .. }, .. }
                ) || link.input.is_empty()
                {
                    break;
                }
            }
        }
        if loader.finished() {
            if boot {
                assert!(loader.bl2_served());
            }
            break;
        }
    }
}

fn sophgo_boot(b: Bytes<'_>, size: usize, mode: u8) {
    let bl2: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
    let img = fip::build(&bl2, 0x10000).expect("small BL2 builds");
    let mut loader = Loader::boot(img.clone(), opts(mode)).expect("a built fip.bin is accepted");
    let mut link = FakeSerial::new(b);
    link.echo = Some(ack);
    serve(&mut loader, &mut link, &img, true);
}

fn sophgo_main(b: Bytes<'_>, size: usize, mode: u8) {
    let data: Vec<u8> = (0..size).map(|i| (i * 13) as u8).collect();
    let mut loader = Loader::main(data.clone(), opts(mode));
    let mut link = FakeSerial::new(b);
    link.echo = Some(ack);
    serve(&mut loader, &mut link, &data, false);
}
