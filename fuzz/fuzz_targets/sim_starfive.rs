//! The virtual StarFive JH7110 ROM's receiver (racklet_sim::starfive: poll,
//! XMODEM receive, image check, then the SPL's YMODEM receive), fed through
//! its public `Wire` trait by an in-memory wire instead of a pty.
//!
//! The Sophgo virtual ROM has no such seam: its receive loop reads a
//! `TTYPort` it creates itself (sim::sophgo::Rom::serve), so it is only
//! reachable through real pseudo-terminals and is not fuzzed here.
//!
//! Input: byte 0 picks the fault; then chunks, each a length byte (0 =
//! "nothing arrived in time") and that many bytes. When the input is used
//! up the wire fails and the ROM thread ends. The SPL's YMODEM stage runs
//! when the image the ROM accepts is U-Boot SPL (the sim recognises it by
//! its bytes; the `spl-ymodem` seed carries one).
//!
//! Invariants:
//! - the ROM thread does not panic (a panic aborts the fuzzer);
//! - every session's received data is a whole number of 128-byte blocks;
//! - a session the ROM accepted holds a 0x400-byte header whose size field
//!   fits what arrived and whose CRC-32 matches the payload (unless the
//!   fault corrupts the image on purpose, then it must not be accepted).
#![no_main]
use libfuzzer_sys::fuzz_target;

use std::time::Duration;

use racklet_sim::starfive::{Fault, RomConfig, SplStage, StarfiveRom, Wire, is_ymodem_spl};

struct MemWire {
    input: Vec<u8>,
    at: usize,
    sent: usize,
    /// Told when the input is used up, so the test stops the ROM only then
    /// (stopping earlier would make runs depend on thread timing).
    done: std::sync::mpsc::Sender<()>,
}

impl Wire for MemWire {
    fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> std::io::Result<usize> {
        if self.at >= self.input.len() {
            let _ = self.done.send(());
            return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "fuzz input used up"));
        }
        let n = self.input[self.at] as usize;
        self.at += 1;
        let n = n.min(buf.len()).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.sent += data.len();
        Ok(())
    }
}

const FAULTS: &[Fault] = &[
    Fault::None,
    Fault::Nak,
    Fault::NakStorm,
    Fault::DropAck,
    Fault::CorruptFrame,
    Fault::CorruptImage,
    Fault::None,
    Fault::None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let fault = FAULTS[sel as usize % FAULTS.len()];
    let cfg = RomConfig { fault, poll_interval: Duration::from_millis(300), line_rate: None, ..Default::default() };
    let (done, dry) = std::sync::mpsc::channel();
    let rom = StarfiveRom::spawn(MemWire { input: rest.to_vec(), at: 0, sent: 0, done }, cfg);
    // The thread ends by itself when the wire runs dry (or drops the sender
    // when it ends otherwise).
    let _ = dry.recv();
    let report = rom.stop();
    for s in &report.sessions {
        assert_eq!(s.received.len() % 128, 0);
        if let Ok(v) = &s.verdict {
            assert_ne!(fault, Fault::CorruptImage, "a corrupted image was accepted: {v}");
            let img = &s.received;
            assert!(img.len() >= 0x400);
            let at = |o: usize| u32::from_le_bytes(img[o..o + 4].try_into().unwrap());
            assert_eq!(at(0x28c), 0x400);
            let size = at(0x288) as usize;
            assert!(0x400 + size <= img.len());
            assert_eq!(racklet_starfive::header::CRC32.checksum(&img[0x400..0x400 + size]), at(0x290));
        }
    }
    // The SPL runs only after an accepted image that is one.
    if report.spl.is_some() {
        let s = report.sessions.last().expect("a session started the SPL");
        assert!(s.verdict.is_ok());
        let size = u32::from_le_bytes(s.received[0x288..0x28c].try_into().unwrap()) as usize;
        assert!(is_ymodem_spl(&s.received[0x400..0x400 + size]));
    }
    if let Some(SplStage::Done(Ok(f))) = &report.spl {
        assert!(f.name.len() < 1024);
    }
    let _ = report.verdict();
});
