//! The Rockchip host side against a fake USB link answering with fuzz bytes:
//! rockusb commands (CBW out, data in, CSW in; check_csw is reached through
//! them) and maskrom stage downloads.
//!
//! Input: byte 0 picks the device's interfaces; then a list of operations,
//! each one byte (op) followed by its arguments; the fake link reads its
//! answers from the same stream (see racklet_fuzz::FakeUsb).
//!
//! Invariants:
//! - every CBW sent is 31 bytes, "USBC", IN flag, with the session's tag;
//! - a command succeeds only when the last IN answer was a 13-byte "USBS"
//!   CSW echoing that tag with status 0, and returns at most the data length
//!   asked for (16 for READ CHIP INFO, 5 for READ FLASH ID);
//! - a stage download that succeeds sent exactly the framed bytes
//!   (racklet_rockchip::frame) as control transfers of at most 4096 bytes
//!   with wIndex 0x471/0x472, `transfers` of them;
//! - `describe` of the whole input (the `info` decoder for RKBOOT loaders)
//!   never panics, and says "rockchip" when it recognises a loader;
//! - the idbloader decoder (`idb::parse`/`idb::describe`) never panics on
//!   the input, nor on it with a v1 header magic (RC4-encoded as on the
//!   card) or the v2 magic forced in, and recognises both of those, whose
//!   stage offsets and sizes come from the fuzz bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

use racklet_fuzz::{Bytes, FakeUsb, usb_info};
use racklet_link::NoProgress;
use racklet_rockchip::{
    FrameOptions, Readiness, RockchipError, Rockusb, Timeouts, describe, download_stage, frame, near_miss,
};

fuzz_target!(|data: &[u8]| {
    if let Some(d) = describe(data) {
        assert_eq!(d.protocol, Some("rockchip"));
        assert!(!d.kind.is_empty());
    }
    let _ = near_miss(data);
    let _ = racklet_rockchip::idb::parse(data);
    if data.len() >= 512 {
        let mut v2 = data.to_vec();
        v2[..4].copy_from_slice(&racklet_rockchip::idb::MAGIC_V2.to_le_bytes());
        let mut v1 = data.to_vec();
        v1[..4].copy_from_slice(&racklet_rockchip::idb::MAGIC_V1.to_le_bytes());
        racklet_rockchip::frame::Rc4::default().apply(&mut v1[..512]);
        for (m, need) in [(v1, 512), (v2, 2048)] {
            let d = racklet_rockchip::idb::describe(&m);
            assert_eq!(d.is_some(), m.len() >= need);
        }
    }
    let mut b = Bytes::new(data);
    let info = match b.u8() % 4 {
        0 => usb_info((0xff, 0x06, 0x05), true),
        1 => usb_info((0xff, 0x00, 0x00), true),
        2 => usb_info((0x08, 0x06, 0x50), false),
        _ => racklet_link::UsbInfo::default(),
    };
    let has_bulk = info.find_bulk_interface(None).is_some();
    // Split the input: the first part drives the operations, the rest is
    // what the device answers.
    let ops_len = (b.u8() as usize).min(b.len());
    let mut ops = Bytes::new(b.take(ops_len));
    let mut link = FakeUsb::new(info, b);
    for _ in 0..16 {
        if ops.is_empty() {
            break;
        }
        let op = ops.u8();
        if op & 0x80 != 0 {
            stage(&mut link, &mut ops, op);
            continue;
        }
        let before = link.outs.len();
        let r = match Rockusb::new(&mut link) {
            Err(e) => {
                assert!(!has_bulk);
                assert!(matches!(e, RockchipError::NoBulkEndpoints { .. }));
                return;
            }
            Ok(mut u) => match op % 5 {
                // "Not ready" is CSW status 1 (rkdeveloptool's ERR_DEVICE_UNREADY).
                0 => u.test_unit_ready().map(|x| (0, Vec::new(), u8::from(x == Readiness::NotReady))),
                1 => u.read_chip_info().map(|d| (16, d, 0)),
                // Lossy UTF-8: count characters, not bytes.
                2 => u.read_flash_id().map(|s| (5, s.chars().map(|_| 0).collect(), 0)),
                3 => u.read_flash_info().map(|_| (11, vec![0; 11], 0)),
                _ => {
                    let len = (ops.u16() % 2048) as u32;
                    let opcode = ops.u8();
                    u.command("FUZZ", opcode, len).map(|d| (len as usize, d, 0))
                }
            },
        };
        // Every command starts with one CBW.
        if let Some((None, ep, cbw)) = link.outs.get(before) {
            assert_eq!(*ep, 0x02);
            assert_eq!(cbw.len(), 31);
            assert_eq!(&cbw[..4], b"USBC");
            assert_eq!(cbw[12], 0x80);
            let tag = u32::from_le_bytes(cbw[4..8].try_into().unwrap());
            // Each op opens a new session: its first command has tag base + 1.
            assert_eq!(tag, 0x5243_4b01);
            if let Ok((max, d, status)) = &r {
                assert!(d.len() <= *max, "{} bytes for a {max}-byte command", d.len());
                let csw = link.last_in.as_deref().expect("a CSW was read");
                assert_eq!(csw.len(), 13);
                assert_eq!(&csw[..4], b"USBS");
                assert_eq!(u32::from_le_bytes(csw[4..8].try_into().unwrap()), tag);
                assert_eq!(csw[12], *status);
            }
        } else {
            assert!(r.is_err(), "no CBW sent, yet {r:?}");
        }
        if let Err(e) = r {
            let _ = e.to_string();
            let _ = racklet_link::Classify::class(&e);
        }
    }
});

/// A maskrom stage download of a fuzz payload.
fn stage(link: &mut FakeUsb<'_>, ops: &mut Bytes<'_>, op: u8) {
    let n = ops.u16() as usize % 10000;
    let payload: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(op)).collect();
    let opts = FrameOptions { rc4: op & 1 != 0, zero_crc: op & 2 != 0 };
    let index = if op & 4 != 0 { 0x472 } else { 0x471 };
    let before = link.outs.len();
    let r = download_stage(link, index, "fuzz", &payload, opts, &Timeouts::default(), &mut NoProgress);
    let sent: Vec<&(Option<racklet_link::ControlSetup>, u8, Vec<u8>)> = link.outs[before..].iter().collect();
    for (setup, _, d) in &sent {
        let s = setup.expect("stages go by control transfers");
        assert_eq!((s.request_type, s.request, s.value, s.index), (0x40, 0x0c, 0, index));
        assert!(!d.is_empty() && d.len() <= frame::CHUNK);
    }
    match r {
        Ok(rep) => {
            let want = frame(&payload, opts);
            assert_eq!(rep.transfers, sent.len());
            assert_eq!(rep.transfers, want.transfer_count());
            assert_eq!(rep.crc, want.crc);
            let wire: Vec<u8> = sent.iter().flat_map(|s| s.2.iter().copied()).collect();
            let framed: Vec<u8> = want.transfers().flatten().copied().collect();
            assert_eq!(wire, framed);
            assert_eq!(&wire[..want.wire.len()], &want.wire[..]);
            for (a, b) in sent.iter().zip(want.transfers()) {
                assert_eq!(a.2, b);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
