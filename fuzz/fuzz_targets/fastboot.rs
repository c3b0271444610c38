//! Fastboot responses and the client over a fake transport answering with
//! fuzz packets (racklet_fastboot::parse_response, Fastboot<T>, the K1 and
//! TH1520 flows' building blocks).
//!
//! Input: byte 0 = response packet length L, then L bytes parsed directly
//! with parse_response; then one byte picking a client operation sequence;
//! the rest feeds the fake transport (racklet_fuzz::FakeTransport).
//!
//! The whole input also goes to `describe` and `near_miss` (what `info`
//! says about FSBL.bin and bootinfo): never a panic; a file described as an
//! FSBL is not also a near miss of one.
//!
//! Invariants:
//! - parse_response: the part before the first NUL is at most 256 bytes when
//!   accepted; `DATA` gives exactly its hex digits' value (any number of
//!   digits, as AOSP's strtol reads them, fitting 32 bits); for text
//!   statuses (valid UTF-8) status + text re-encodes to the packet;
//! - every command the client sends is printable ASCII of at most 64 bytes;
//! - a download that succeeds sent the command `download:%08x`, then exactly
//!   the data; an upload that succeeds returns exactly the DATA size the
//!   device announced.
#![no_main]
use libfuzzer_sys::fuzz_target;

use racklet_fastboot::{Fastboot, Response, ResponseError, k1, parse_response};
use racklet_fuzz::{Bytes, FakeTransport};
use racklet_link::NoProgress;

fuzz_target!(|data: &[u8]| {
    describe(data);
    let mut b = Bytes::new(data);
    let n = b.u8() as usize;
    let packet = b.take(n);
    response(packet);
    let mode = b.u8();
    let payload_len = b.u8() as usize * 3;
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let mut fb = Fastboot::new(FakeTransport::new(b));
    let mut p = NoProgress;
    let mut uploaded = None;
    for step in 0..4 {
        let op = (mode >> (2 * step)) & 3;
        let r = match (mode & 1, op) {
            (0, 0) => fb.getvar("version", &mut p).map(drop),
            (0, 1) => fb.stage("fuzz", &payload, &mut p),
            (0, 2) => fb.upload(&mut p).map(|d| uploaded = Some(d)),
            (0, _) => fb.continue_boot(&mut p).map(drop),
            (_, 0) => k1::identify(&mut fb, Some("dfu-device"), &mut p).map(|id| {
                let _ = id.is_rom();
            }),
            (_, 1) => fb.download("fuzz", &payload, &mut p),
            (_, 2) => fb.max_download_size(&mut p).map(drop),
            (_, _) => fb.oem(&["fuzz", "x"], &mut p).map(drop),
        };
        if let Err(e) = r {
            let _ = e.to_string();
            let _ = racklet_link::Classify::class(&e);
            break;
        }
        if let Some(d) = uploaded.take() {
            // The size is the first DATA among the answers to "upload".
            let t = fb.transport();
            let i = t.sent.iter().rposition(|s| s == b"upload").expect("upload was sent");
            assert_eq!(t.sent.len(), i + 1, "upload sends nothing but its command");
            let announced = t.recvd[t.marks[i]..]
                .iter()
                .find_map(|r| match parse_response(r) {
                    Ok(Response::Data(n)) => Some(n as usize),
                    _ => None,
                })
                .expect("a DATA answer");
            assert_eq!(d.len(), announced);
        }
    }
    let t = fb.into_transport();
    let mut i = 0;
    while i < t.sent.len() {
        let s = &t.sent[i];
        if let Some(hex) = s.strip_prefix(b"download:") {
            let n = usize::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
            assert_eq!(n, payload.len());
            // Data follows in one or more packets, unless the device refused.
            let pieces = t.sent[i + 1..].iter().take_while(|p| !is_command(p)).count();
            let data: Vec<u8> = t.sent[i + 1..i + 1 + pieces].iter().flatten().copied().collect();
            assert!(data.is_empty() || data == payload, "{} data bytes for {n}", data.len());
            i += 1 + pieces;
            continue;
        }
        assert!(s.len() <= racklet_fastboot::MAX_COMMAND);
        assert!(s.iter().all(|&c| (0x20..0x7f).contains(&c)));
        i += 1;
    }
});

fn describe(data: &[u8]) {
    let d = racklet_fastboot::describe::describe(data);
    let near = racklet_fastboot::describe::near_miss(data);
    if let Some(d) = &d {
        assert_eq!(d.protocol, Some("fastboot"));
        assert!(!d.kind.is_empty());
        if d.kind.contains("FSBL") {
            assert!(near.is_none(), "described as an FSBL and a near miss of one");
            assert_eq!(d.payload.map(|p| p.len), Some(data.len() as u64));
        }
    }
}

fn is_command(p: &[u8]) -> bool {
    [&b"getvar:"[..], b"download:", b"upload", b"continue", b"oem "].iter().any(|c| p.starts_with(c))
}

fn response(raw: &[u8]) {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    let msg = &raw[..end];
    match parse_response(raw) {
        Ok(r) => {
            assert!(msg.len() <= racklet_fastboot::MAX_RESPONSE && msg.len() >= 4);
            let (status, rest) = msg.split_at(4);
            match r {
                Response::Data(n) => {
                    assert_eq!(status, b"DATA");
                    assert!(!rest.is_empty() && rest.iter().all(u8::is_ascii_hexdigit));
                    assert_eq!(u64::from_str_radix(std::str::from_utf8(rest).unwrap(), 16), Ok(u64::from(n)));
                }
                Response::Okay(t) | Response::Fail(t) | Response::Info(t) | Response::Text(t) => {
                    assert!([&b"OKAY"[..], b"FAIL", b"INFO", b"TEXT"].contains(&status));
                    if let Ok(s) = std::str::from_utf8(rest) {
                        assert_eq!(t, s);
                    }
                }
            }
        }
        Err(ResponseError::TooLong(n)) => assert!(n > racklet_fastboot::MAX_RESPONSE && n == msg.len()),
        Err(ResponseError::BadDataSize(_)) => assert!(msg.starts_with(b"DATA")),
        Err(ResponseError::UnknownStatus(_)) => {}
    }
    let _ = racklet_fastboot::response::parse_size(&String::from_utf8_lossy(raw));
}
