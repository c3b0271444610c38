//! The session logic against a scripted ROM written in this file from the
//! fact sheet (its own packet parser, the sim's reference CRC), not from the
//! crate. It reacts to what it receives (each ACK echoes the CRC of the
//! packet just sent), which the test kit's fixed-script `ScriptedSerial`
//! cannot do; the kit's progress sinks are used.

use std::collections::VecDeque;
use std::time::Duration;

use racklet_link::testing::{CancelAfter, CollectProgress};
use racklet_link::{Classify, FailureClass, LinkError, SerialInfo, SerialLink};
use racklet_sim::crc::crc16_xmodem as crc_ref;
use racklet_sophgo::{Loader, Options, SessionOutcome, SophgoError, fip};

/// What the scripted ROM does wrong.
#[derive(Default, Clone)]
struct Script {
    /// (offset, size) announced in every ACK.
    want: (u32, u32),
    /// Corrupt the CRC of the ACK of these packet numbers (0 = magic).
    bad_crc: Vec<usize>,
    /// Corrupt every ACK with this text instead (a UART console).
    text: Option<&'static [u8]>,
    /// From this packet number on, announce another request.
    change_at: Option<(usize, (u32, u32))>,
    /// Disconnect when this packet number arrives.
    vanish_at: Option<usize>,
    /// Never answer.
    mute: bool,
    /// Do not answer BREAK.
    no_break_ack: bool,
    /// Drop off the bus as BREAK arrives: the bytes left the host, whose
    /// flush then finds the device gone (seen over real USB in the rig).
    vanish_on_break: bool,
}

struct MockRom {
    info: SerialInfo,
    s: Script,
    n: usize,
    rx: VecDeque<u8>,
    /// Every packet received, in order.
    packets: Vec<Vec<u8>>,
    /// Bytes written by DATA packets at their addresses.
    buf: Vec<u8>,
    flag: Option<[u8; 4]>,
    gone: bool,
}

impl MockRom {
    fn new(s: Script) -> Self {
        MockRom {
            info: SerialInfo::default(),
            s,
            n: 0,
            rx: VecDeque::new(),
            packets: vec![],
            buf: vec![],
            flag: None,
            gone: false,
        }
    }
}

impl SerialLink for MockRom {
    fn info(&self) -> &SerialInfo {
        &self.info
    }
    fn write_all(&mut self, p: &[u8]) -> Result<(), LinkError> {
        if self.gone {
            return Err(LinkError::Disconnected { op: "write".into() });
        }
        let n = self.n;
        self.n += 1;
        if self.s.vanish_at == Some(n) {
            self.gone = true;
            return Ok(());
        }
        self.packets.push(p.to_vec());
        // Parse as the sheet says: token, u16be length incl. header, u40be addr.
        let token = p[0];
        let len = u16::from_be_bytes([p[1], p[2]]) as usize;
        let addr = u64::from_be_bytes([0, 0, 0, p[3], p[4], p[5], p[6], p[7]]) as usize;
        assert_eq!(len, p.len(), "length field counts the header");
        assert!(len <= 512);
        match token {
            0 => {
                let d = &p[8..];
                if self.buf.len() < addr + d.len() {
                    self.buf.resize(addr + d.len(), 0);
                }
                self.buf[addr..addr + d.len()].copy_from_slice(d);
            }
            1 => {
                assert_eq!(addr, 0x0E00_0004);
                self.flag = Some(p[8..12].try_into().unwrap());
            }
            2 if self.s.no_break_ack => return Ok(()),
            2 if self.s.vanish_on_break => {
                self.gone = true;
                return Err(LinkError::Disconnected { op: "flushing /dev/ttyACM0".into() });
            }
            3 => assert_eq!(crc_ref(&p[8..]), 0xC283, "magic data CRC"),
            _ => {}
        }
        if self.s.mute {
            return Ok(());
        }
        let (off, size) = match self.s.change_at {
            Some((at, w)) if n >= at => w,
            _ => self.s.want,
        };
        let mut crc = crc_ref(p);
        if self.s.bad_crc.contains(&n) {
            crc ^= 0x5555;
        }
        let mut ack = Vec::new();
        ack.extend_from_slice(&crc.to_be_bytes());
        ack.extend_from_slice(&crc.to_be_bytes());
        ack.extend_from_slice(&[0, 0, token, n as u8]);
        ack.extend_from_slice(&off.to_be_bytes());
        ack.extend_from_slice(&size.to_be_bytes());
        if let Some(t) = self.s.text {
            ack = t[..16].to_vec();
        }
        self.rx.extend(ack);
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        if self.gone {
            return Err(LinkError::Disconnected { op: "read".into() });
        }
        if self.rx.is_empty() {
            return Err(LinkError::Timeout { op: "read".into(), after: timeout });
        }
        let n = buf.len().min(self.rx.len());
        for b in buf.iter_mut().take(n) {
            *b = self.rx.pop_front().unwrap();
        }
        Ok(n)
    }
    fn set_baud(&mut self, _baud: u32) -> Result<(), LinkError> {
        Ok(())
    }
    fn clear_input(&mut self) -> Result<(), LinkError> {
        self.rx.clear();
        Ok(())
    }
}

fn fast() -> Options {
    Options {
        ack_timeout: Duration::from_millis(50),
        break_ack_timeout: Duration::from_millis(20),
        ..Options::default()
    }
}

fn bl2(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    v[..4].copy_from_slice(&[0x6f, 0, 0, 2]);
    v
}

fn run(loader: &mut Loader, s: Script) -> (Result<SessionOutcome, SophgoError>, MockRom) {
    let mut rom = MockRom::new(s);
    let mut p = CollectProgress::default();
    let r = loader.session(&mut rom, &mut p);
    (r, rom)
}

#[test]
fn probe_session_sends_only_the_magic() {
    let mut l = Loader::boot(fip::build(&bl2(100), 0x37000).unwrap(), fast()).unwrap();
    let (r, rom) = run(&mut l, Script { want: (0, 0), ..Default::default() });
    assert_eq!(r.unwrap(), SessionOutcome::Probe);
    assert_eq!(rom.packets, vec![vec![0x03, 0x00, 0x0a, 0, 0, 0, 0, 0, 0x2c, 0x08]]);
    assert!(!l.finished());
}

#[test]
fn full_boot_serves_param1_then_bl2_and_the_rom_gets_every_byte() {
    let fipb = fip::build(&bl2(1000), 0x37000).unwrap();
    let mut l = Loader::boot(fipb.clone(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { want: (0, 0), ..Default::default() });
    assert_eq!(r.unwrap(), SessionOutcome::Probe);

    let (r, rom) = run(&mut l, Script { want: (0, 4096), ..Default::default() });
    let SessionOutcome::Served { what, bytes, break_acked, .. } = r.unwrap() else { panic!() };
    assert_eq!((what.as_str(), bytes, break_acked), ("param1", 4096, true));
    assert_eq!(rom.buf, fipb[..4096]);
    assert_eq!(rom.flag, Some(*b"1NGM"));
    // magic, ceil(4096/248) = 17 data packets, FLAG, BREAK.
    assert_eq!(rom.packets.len(), 1 + 17 + 2);
    assert_eq!(rom.packets.last().unwrap(), &vec![2, 0, 8, 0, 0, 0, 0, 0]);
    // Each data packet is 256 bytes but the last (4096 - 16*248 = 128 data bytes).
    for (i, p) in rom.packets[1..18].iter().enumerate() {
        let want = if i < 16 { 256 } else { 8 + 128 };
        assert_eq!(p.len(), want, "packet {i}");
        assert_eq!(u64::from_be_bytes([0, 0, 0, p[3], p[4], p[5], p[6], p[7]]), i as u64 * 248);
    }
    assert!(!l.finished());

    let (r, rom) = run(&mut l, Script { want: (0x1000, 1024), ..Default::default() });
    assert!(matches!(r.unwrap(), SessionOutcome::Served { ref what, .. } if what == "BL2"));
    assert_eq!(rom.buf, fipb[0x1000..]);
    assert!(l.finished());
    assert_eq!(l.sessions(), 3);
    assert_eq!(l.bytes_sent(), 4096 + 1024);

    // The BL2 then asks for something beyond the file: nothing is sent, and
    // the session says so (the flow decides what that means).
    let (r, rom) = run(&mut l, Script { want: (0x1400, 0x1000), ..Default::default() });
    assert_eq!(r.unwrap(), SessionOutcome::Beyond { offset: 0x1400, size: 0x1000, what: None });
    assert_eq!(rom.packets.len(), 1);
}

#[test]
fn main_session_chunk_boundaries() {
    for len in [1usize, 247, 248, 249, 496, 497, 504, 505] {
        let data: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
        let mut l = Loader::main(data.clone(), fast());
        let (r, rom) = run(&mut l, Script { want: (0x2000, data.len() as u32), ..Default::default() });
        assert!(r.is_ok(), "len {len}");
        assert_eq!(rom.buf, data, "len {len}");
        let chunks = data.len().div_ceil(248);
        assert_eq!(rom.packets.len(), 1 + chunks + 2, "len {len}");
        assert!(l.finished());
    }
    // A bigger chunk setting never makes a packet over 512 bytes.
    let mut l = Loader::main(bl2(2000), Options { chunk: 4096, ..fast() });
    let (r, rom) = run(&mut l, Script { want: (0, 2000), ..Default::default() });
    r.unwrap();
    assert!(rom.packets.iter().all(|p| p.len() <= 512));
    assert_eq!(rom.packets[1].len(), 512);
}

#[test]
fn main_session_sends_what_the_bl2_asks_for() {
    let data = bl2(600);
    let mut l = Loader::main(data.clone(), fast());
    let (r, rom) = run(&mut l, Script { want: (0, 100), ..Default::default() });
    r.unwrap();
    assert_eq!(rom.buf, data[..100]);
    let mut l = Loader::main(data.clone(), fast());
    let (r, _) = run(&mut l, Script { want: (0, 0), ..Default::default() });
    assert!(matches!(r, Err(SophgoError::NotALoadRequest)));
    // A fip.bin given to --main: the requested slice of it.
    let fipb = fip::build(&bl2(700), 0x37000).unwrap();
    let mut l = Loader::main(fipb.clone(), fast());
    let (r, rom) = run(&mut l, Script { want: (0x1000, 0x400), ..Default::default() });
    r.unwrap();
    assert_eq!(rom.buf, fipb[0x1000..0x1400]);
}

#[test]
fn one_bad_ack_crc_is_resent_and_succeeds() {
    let fipb = fip::build(&bl2(300), 0x37000).unwrap();
    let mut l = Loader::boot(fipb.clone(), fast()).unwrap();
    let (r, rom) = run(&mut l, Script { want: (0, 4096), bad_crc: vec![3], ..Default::default() });
    r.unwrap();
    assert_eq!(rom.buf, fipb[..4096]);
    // Packet 3 (data @0x1f0) was sent twice.
    assert_eq!(rom.packets[3], rom.packets[4]);
    assert_eq!(rom.packets.len(), 1 + 17 + 1 + 2);
}

#[test]
fn persistent_bad_ack_crc_fails_as_io() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { want: (0, 4096), bad_crc: (0..100).collect(), ..Default::default() });
    let e = r.unwrap_err();
    assert!(matches!(e, SophgoError::AckCrc { tries: 4, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Io);
}

#[test]
fn a_uart_console_by_mistake_is_named() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { text: Some(b"C.SCS/0/0.WD.URPL.USBI.USBEF."), ..Default::default() });
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::Io);
    let hint = e.hint().unwrap_or_default();
    assert!(hint.contains("UART console") && hint.contains("C.SCS/0/0.WD"), "{e}: {hint}");
}

#[test]
fn out_of_image_and_changed_requests_fail_cleanly() {
    let fipb = fip::build(&bl2(300), 0x37000).unwrap();
    let mut l = Loader::boot(fipb.clone(), fast()).unwrap();
    let (r, rom) = run(&mut l, Script { want: (0x1000, 0x10_0000), ..Default::default() });
    assert!(matches!(r, Ok(SessionOutcome::Beyond { offset: 0x1000, size: 0x10_0000, .. })), "{r:?}");
    assert_eq!(rom.packets.len(), 1, "nothing sent after the request beyond the file");
    // Exactly the image's end is served; one byte more is beyond it.
    let mut l = Loader::boot(fipb.clone(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { want: (0x1000, 0x200), ..Default::default() });
    assert!(matches!(r, Ok(SessionOutcome::Served { .. })), "{r:?}");
    let mut l = Loader::boot(fipb.clone(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { want: (0x1000, 0x201), ..Default::default() });
    assert!(matches!(r, Ok(SessionOutcome::Beyond { offset: 0x1000, size: 0x201, .. })), "{r:?}");

    let mut l = Loader::boot(fipb, fast()).unwrap();
    let (r, _) =
        run(&mut l, Script { want: (0, 4096), change_at: Some((5, (0x1000, 512))), ..Default::default() });
    let e = r.unwrap_err();
    assert!(matches!(e, SophgoError::RequestChanged { .. }), "{e}");
}

#[test]
fn the_same_request_again_and_again_is_a_restarting_board_not_a_refusal() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    for _ in 0..3 {
        let (r, _) = run(&mut l, Script { want: (0x1000, 512), ..Default::default() });
        r.unwrap();
    }
    let (r, rom) = run(&mut l, Script { want: (0x1000, 512), ..Default::default() });
    let e = r.unwrap_err();
    assert!(matches!(e, SophgoError::Restarting { count: 4, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
    assert!(e.to_string().contains("BL2") && e.to_string().contains("restarting"), "{e}");
    assert!(e.hint().unwrap_or_default().contains("--monitor"), "{e}");
    assert_eq!(rom.packets.len(), 1);
}

#[test]
fn vanishing_mid_session_is_a_disconnect() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { want: (0, 4096), vanish_at: Some(4), ..Default::default() });
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::Disconnected, "{e}");
}

#[test]
fn silence_on_the_first_magic_names_the_window() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { mute: true, ..Default::default() });
    let e = r.unwrap_err();
    assert!(matches!(e, SophgoError::NoAnswer { .. }));
    assert_eq!(e.class(), FailureClass::Timeout);
    assert!(e.to_string().contains("window"));
    assert!(e.hint().unwrap_or_default().contains("--wait"), "{e}");
    // Later sessions time out as plain link timeouts.
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    run(&mut l, Script { want: (0, 0), ..Default::default() }).0.unwrap();
    let (r, _) = run(&mut l, Script { mute: true, ..Default::default() });
    assert!(matches!(r, Err(SophgoError::Link { source: LinkError::Timeout { .. }, .. })));
}

#[test]
fn a_lost_break_ack_is_tolerated() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { want: (0x1000, 512), no_break_ack: true, ..Default::default() });
    assert!(matches!(r.unwrap(), SessionOutcome::Served { break_acked: false, .. }));
    assert!(l.finished());
}

/// The ROM leaves the bus as soon as it has the BREAK, before the host's
/// write returned: the session was served all the same (the next stage's
/// re-enumeration is what confirms it).
#[test]
fn a_rom_gone_during_the_break_write_is_served() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    let (r, _) = run(&mut l, Script { want: (0x1000, 512), vanish_on_break: true, ..Default::default() });
    assert!(matches!(r.unwrap(), SessionOutcome::Served { break_acked: false, .. }));
    assert!(l.finished());
}

#[test]
fn a_bad_fip_is_refused_before_anything_is_sent() {
    let mut f = fip::build(&bl2(300), 0x37000).unwrap();
    f[0x1000] ^= 1;
    let e = Loader::boot(f, fast()).unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput);
}

#[test]
fn cancel_stops_between_transfers() {
    let mut l = Loader::boot(fip::build(&bl2(300), 0x37000).unwrap(), fast()).unwrap();
    let mut rom = MockRom::new(Script { want: (0, 4096), ..Default::default() });
    let e = l.session(&mut rom, &mut CancelAfter::new(0)).unwrap_err();
    assert_eq!(e.class(), FailureClass::Interrupted);
    assert!(rom.packets.is_empty());
}
