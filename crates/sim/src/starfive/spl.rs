//! The virtual U-Boot SPL's YMODEM receiver: what a JH7110 board runs after
//! the ROM started `u-boot-spl.bin.normal.out` from UART (sheet §3.3).
//!
//! Written from u-boot `common/xyzModem.c` and `common/spl/spl_ymodem.c`
//! (read at u-boot/u-boot @6073c36, 2026-08-20; the review cites @2d45913
//! and @03de305), never from a sender. Line numbers below are
//! those of that xyzModem.c. What it does, as the source does it:
//!
//! - `xyzModem_stream_open` (:429) sends one `C` (:462), then reads headers;
//!   a timeout is followed by a 500 ms busy delay and another `C` (:501-502);
//!   after 10 timeouts it falls back to checksum mode and NAKs (:499-500),
//!   after 20 it starts over in CRC mode (:474-479). Block 0 is the YMODEM
//!   header: the name is skipped and the size parsed (:486-490); its ACK is
//!   *deferred* (`tx_ack = true`, :491) and **no `C` follows it**.
//! - `xyzModem_get_hdr` (:254) first sends the deferred ACK (:267-271), then
//!   waits for SOH/STX, each character for at most 2 s
//!   (`xyzModem_CHAR_TIMEOUT`, :60, :74); three CAN/ETX cancel; EOT is taken
//!   only as the first character (:304) and ACKed at once. A 2 s silence
//!   while looking for the header flushes the input until the line has been
//!   quiet for 2 s (`xyzModem_flush`, :241) and busy-waits 250 ms (:319-321);
//!   a silence inside a frame returns at once. A bad complement flushes
//!   (:382); a bad CRC does not.
//! - `xyzModem_stream_read` (:517): the expected block is kept and its ACK
//!   deferred to the next `get_hdr` (:547); the previous block is re-ACKed
//!   at once (:584-589); anything else (timeout, bad frame, bad CRC, wrong
//!   block) is answered with `C` in CRC mode (NAK in checksum mode) (:618),
//!   20 times per block (:529). At EOF (EOT ACKed by get_hdr) it sends ACK,
//!   `C`, reads the final header whatever it is, and sends ACK (:599-612):
//!   on the wire, `ACK ACK C` after the EOT and `ACK` after the final header.
//! - `spl_ymodem_load_image` reads 1024-byte chunks until a read returns 0,
//!   calls `xyzModem_stream_terminate(false, …)`, which drains what is
//!   waiting and busy-waits 250 ms (:659, :693-710), and prints
//!   `Loaded %lu bytes`.
//!
//! The board around it: the UART has a 64-byte receive FIFO; while the SPL
//! busy-waits (`udelay`) nobody reads it, so what arrives beyond 64 bytes is
//! lost. The line rate is the ROM's wire's ([`super::RomConfig::line_rate`]).
//! Not modelled: the content of the file (a FIT or legacy image header is
//! not parsed; the whole stream is taken, as the FIT path does), the
//! `loadxy_timeout` environment variable (the SPL has no environment; the
//! Kconfig default CMD_LOADXY_TIMEOUT = 90 s bounds stream_open).

use std::time::{Duration, Instant};

use super::{ACK, CAN, EOT, Fault, NAK, Rom, SOH, STX, SplStage, Stop, Wire, YmodemFile};
use crate::crc::crc16_xmodem;

/// `xyzModem_CHAR_TIMEOUT`.
pub const CHAR_TIMEOUT: Duration = Duration::from_secs(2);
/// The busy delay after a header timeout (`CYGACC_CALL_IF_DELAY_US(250000)`).
pub const TIMEOUT_DELAY: Duration = Duration::from_millis(250);
/// The extra busy delay of stream_open after a timeout ("for startup").
pub const STARTUP_DELAY: Duration = Duration::from_millis(500);
/// The UART's receive FIFO, in bytes: what survives a busy delay.
pub const UART_FIFO: usize = 64;
const MAX_RETRIES: i32 = 20;
const MAX_RETRIES_WITH_CRC: i32 = 10;
const CAN_COUNT: u32 = 3;
/// CONFIG_CMD_LOADXY_TIMEOUT's default (cmd/Kconfig), in seconds.
const LOADXY_TIMEOUT: Duration = Duration::from_secs(90);
const ETX: u8 = 0x03;
const CPM_EOF: u8 = 0x1A;
const BUF_SIZE: usize = 1024;

/// Why a header read failed (xyzModem.h's negative codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Timeout,
    Eof,
    Cancel,
    Frame,
    Cksum,
    Sequence,
}

impl Status {
    /// `xyzModem_error()`'s text.
    fn text(self) -> &'static str {
        match self {
            Status::Timeout => "Timed out",
            Status::Eof => "End of file",
            Status::Cancel => "Cancelled",
            Status::Frame => "Invalid framing",
            Status::Cksum => "CRC/checksum error",
            Status::Sequence => "Block sequence error",
        }
    }
}

/// xyzModem.c's `xyz` state.
struct Xyz {
    pkt: Vec<u8>,
    /// Where the unread data of `pkt` starts (`bufp`).
    at: usize,
    blk: u8,
    next_blk: u8,
    /// Unread bytes of `pkt`; -1 after an error.
    len: i64,
    crc_mode: bool,
    at_eof: bool,
    tx_ack: bool,
    file_length: u64,
    read_length: u64,
    /// Bytes lost to FIFO overruns, for the report.
    dropped: u64,
    /// Whether the final header read was a good block 0 (`None` before).
    final_header: Option<bool>,
}

impl<W: Wire> Rom<W> {
    /// `CYGACC_COMM_IF_GETC_TIMEOUT`: one character within 2 s.
    fn getc(&mut self) -> Result<Option<u8>, Stop> {
        self.byte(CHAR_TIMEOUT)
    }

    /// `CYGACC_CALL_IF_DELAY_US`: a busy wait during which the UART's FIFO
    /// fills and then overruns.
    fn busy_wait(&mut self, d: Duration, x: &mut Xyz) -> Result<(), Stop> {
        let end = Instant::now() + d;
        let mut tmp = [0u8; 4096];
        loop {
            self.stopped()?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let n = self.rx.wire.recv(&mut tmp, left.min(Duration::from_millis(50)))?;
            for &b in &tmp[..n] {
                if self.rx.buf.len() < UART_FIFO {
                    self.rx.buf.push_back(b);
                } else {
                    x.dropped += 1;
                }
            }
        }
    }

    /// `xyzModem_flush`: reads until the line has been quiet for 2 s.
    fn flush_line(&mut self) -> Result<(), Stop> {
        while self.getc()?.is_some() {}
        Ok(())
    }

    fn put(&mut self, b: u8) -> Result<(), Stop> {
        self.send(&[b])
    }

    fn resend_request(x: &Xyz) -> u8 {
        if x.crc_mode { b'C' } else { NAK }
    }

    /// `xyzModem_get_hdr`.
    fn get_hdr(&mut self, x: &mut Xyz) -> Result<Result<(), Status>, Stop> {
        if x.tx_ack {
            if self.cfg.fault == Fault::SplDropAck && !self.corrupted && x.next_blk == 2 {
                // Lost on the wire to the host, once.
                self.corrupted = true;
            } else {
                self.put(ACK)?;
            }
            x.tx_ack = false;
        }
        let mut can_total = 0;
        let mut hdr_chars = 0;
        let first = loop {
            match self.getc()? {
                Some(c) => {
                    hdr_chars += 1;
                    match c {
                        SOH | STX => break c,
                        CAN | ETX => {
                            can_total += 1;
                            if can_total == CAN_COUNT {
                                return Ok(Err(Status::Cancel));
                            }
                        }
                        EOT if hdr_chars == 1 => {
                            self.put(ACK)?;
                            return Ok(Err(Status::Eof));
                        }
                        _ => {}
                    }
                }
                None => {
                    self.flush_line()?;
                    self.busy_wait(TIMEOUT_DELAY, x)?;
                    return Ok(Err(Status::Timeout));
                }
            }
        };
        let Some(blk) = self.getc()? else { return Ok(Err(Status::Timeout)) };
        let Some(cblk) = self.getc()? else { return Ok(Err(Status::Timeout)) };
        let len = if first == SOH { 128 } else { 1024 };
        let mut pkt = Vec::with_capacity(len);
        for _ in 0..len {
            let Some(c) = self.getc()? else { return Ok(Err(Status::Timeout)) };
            pkt.push(c);
        }
        let Some(crc1) = self.getc()? else { return Ok(Err(Status::Timeout)) };
        let mut crc2 = 0;
        if x.crc_mode {
            let Some(c) = self.getc()? else { return Ok(Err(Status::Timeout)) };
            crc2 = c;
        }
        if self.cfg.fault == Fault::SplCorruptBlock && !self.corrupted && blk == 2 {
            // A flipped bit on the wire, once: the block CRC must catch it.
            self.corrupted = true;
            pkt[5] ^= 0x10;
        }
        x.blk = blk;
        x.pkt = pkt;
        x.at = 0;
        x.len = len as i64;
        if blk ^ cblk != 0xFF {
            self.flush_line()?;
            return Ok(Err(Status::Frame));
        }
        let ok = if x.crc_mode {
            crc16_xmodem(&x.pkt) == u16::from_be_bytes([crc1, crc2])
        } else {
            x.pkt.iter().fold(0u8, |s, &b| s.wrapping_add(b)) == crc1
        };
        Ok(if ok { Ok(()) } else { Err(Status::Cksum) })
    }

    /// `xyzModem_stream_open` in YMODEM mode; the file's name on success.
    fn stream_open(&mut self, x: &mut Xyz) -> Result<Result<String, Status>, Stop> {
        let start = Instant::now();
        let mut retries = MAX_RETRIES;
        let mut crc_retries = MAX_RETRIES_WITH_CRC;
        self.put(Self::resend_request(x))?;
        let mut stat = Status::Timeout;
        while start.elapsed() <= LOADXY_TIMEOUT {
            retries -= 1;
            if retries <= 0 {
                retries = MAX_RETRIES;
                crc_retries = MAX_RETRIES_WITH_CRC;
                x.crc_mode = true;
            }
            match self.get_hdr(x)? {
                Ok(()) => {
                    let mut name = String::new();
                    if x.blk == 0 {
                        let end = x.pkt.iter().position(|&b| b == 0).unwrap_or(x.pkt.len());
                        name = String::from_utf8_lossy(&x.pkt[..end]).to_string();
                        x.file_length = parse_num(x.pkt.get(end + 1..).unwrap_or(&[]));
                        x.tx_ack = true;
                    }
                    x.next_blk = 1;
                    x.len = 0;
                    return Ok(Ok(name));
                }
                Err(Status::Timeout) => {
                    crc_retries -= 1;
                    if crc_retries <= 0 {
                        x.crc_mode = false;
                    }
                    self.busy_wait(STARTUP_DELAY, x)?;
                    self.put(Self::resend_request(x))?;
                }
                Err(Status::Cancel) => return Ok(Err(Status::Cancel)),
                Err(s) => stat = s,
            }
        }
        Ok(Err(stat))
    }

    /// `xyzModem_stream_read`: up to `size` bytes; an empty result at the
    /// end of the file or after an error (the error is returned too).
    fn stream_read(&mut self, x: &mut Xyz, mut size: usize) -> Result<(Vec<u8>, Option<Status>), Stop> {
        let mut out = Vec::new();
        let mut err = None;
        while !x.at_eof && x.len >= 0 && size > 0 {
            if x.len == 0 {
                let mut stat = Err(Status::Cancel);
                let mut retries = MAX_RETRIES;
                while retries > 0 {
                    retries -= 1;
                    stat = self.get_hdr(x)?;
                    if stat.is_ok() {
                        if x.blk == x.next_blk {
                            x.tx_ack = true;
                            x.next_blk = x.next_blk.wrapping_add(1);
                            if x.file_length == 0 {
                                // ^Z padding is cut when the size is unknown.
                                let n = x.len as usize;
                                if n >= 3 && x.pkt[n - 3..n].iter().all(|&b| b == CPM_EOF) {
                                    while x.len > 0 && x.pkt[x.len as usize - 1] == CPM_EOF {
                                        x.len -= 1;
                                    }
                                }
                            } else {
                                x.read_length += x.len as u64;
                                if x.read_length > x.file_length {
                                    x.len -= (x.read_length - x.file_length) as i64;
                                }
                            }
                            break;
                        } else if x.blk == x.next_blk.wrapping_sub(1) {
                            self.put(ACK)?;
                            continue;
                        } else {
                            stat = Err(Status::Sequence);
                        }
                    }
                    if stat == Err(Status::Cancel) {
                        break;
                    }
                    if stat == Err(Status::Eof) {
                        self.put(ACK)?;
                        self.put(Self::resend_request(x))?;
                        // "Reading Final Header": whatever comes, ACK.
                        let fin = self.get_hdr(x)?;
                        self.put(ACK)?;
                        x.at_eof = true;
                        x.final_header = Some(fin.is_ok() && x.blk == 0);
                        stat = fin;
                        break;
                    }
                    self.put(Self::resend_request(x))?;
                }
                if let Err(s) = stat {
                    err = Some(s);
                    x.len = -1;
                    return Ok((out, err));
                }
            }
            if !x.at_eof && x.len > 0 {
                let n = (x.len as usize).min(size);
                out.extend_from_slice(&x.pkt[x.at..x.at + n]);
                size -= n;
                x.len -= n as i64;
                x.at += n;
            }
        }
        Ok((out, err))
    }

    /// `spl_ymodem_load_image`: U-Boot SPL asking for its next stage.
    pub(super) fn spl_ymodem(&mut self) -> Result<(), Stop> {
        // common/spl/spl.c's banner and boot_from_devices()'s line.
        self.send(
            b"\r\nU-Boot SPL 2025.10 (racklet-sim)\r\nDDR version: virtual\r\nTrying to boot from UART\r\n",
        )?;
        let mut x = Xyz {
            pkt: Vec::new(),
            at: 0,
            blk: 0,
            next_blk: 0,
            len: 0,
            crc_mode: true,
            at_eof: false,
            tx_ack: false,
            file_length: 0,
            read_length: 0,
            dropped: 0,
            final_header: None,
        };
        let name = match self.stream_open(&mut x)? {
            Ok(name) => name,
            Err(s) => {
                self.send(format!("spl: ymodem err - {}\r\n", s.text()).as_bytes())?;
                let why = format!("spl: ymodem err - {}", s.text());
                self.report().spl = Some(SplStage::Done(Err(why)));
                return Ok(());
            }
        };
        self.report().spl = Some(SplStage::Receiving { name: name.clone() });
        let mut data = Vec::new();
        let mut last_err = None;
        loop {
            let (chunk, err) = self.stream_read(&mut x, BUF_SIZE)?;
            if err.is_some() {
                last_err = err;
            }
            if chunk.is_empty() {
                break;
            }
            data.extend_from_slice(&chunk);
        }
        let ended = x.final_header == Some(true);
        let loaded = data.len();
        let result = if !x.at_eof {
            let why = last_err.map(Status::text).unwrap_or("the transfer ended early");
            Err(format!("{why} after {loaded} of {} bytes of {name}", x.file_length))
        } else if data.len() as u64 != x.file_length {
            Err(format!("{} bytes of {name} received, the header announced {}", data.len(), x.file_length))
        } else {
            Ok(YmodemFile { name, data, ended_batch: ended })
        };
        // The receive is over; what follows is the SPL's own business.
        {
            let mut rep = self.report();
            rep.fifo_dropped = x.dropped;
            rep.spl = Some(SplStage::Done(result.clone()));
        }
        // xyzModem_stream_terminate(false, getcymodem): drain, then 250 ms.
        self.rx.buf.clear();
        self.busy_wait(TIMEOUT_DELAY, &mut x)?;
        self.send(format!("Loaded {loaded} bytes\r\n").as_bytes())
    }
}

/// xyzModem.c's `parse_num` for the size field: decimal, or hex after
/// `0x`, ended by a space or the end of the string; 0 when malformed.
fn parse_num(s: &[u8]) -> u64 {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    let mut s = &s[..end];
    while s.first() == Some(&b' ') {
        s = &s[1..];
    }
    let (radix, digits) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest),
        _ => (10, s),
    };
    let mut v: u64 = 0;
    for &c in digits {
        match (c as char).to_digit(radix) {
            Some(d) => v = v.wrapping_mul(radix as u64).wrapping_add(d as u64),
            None if c == b' ' => break,
            None => return 0,
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::super::testwire::{ChanWire, frame};
    use super::super::{Rom, RomConfig, RomReport, Rx, SplStage};
    use super::parse_num;

    /// Reads what the SPL sent until `want` ends it.
    fn expect(from: &Receiver<Vec<u8>>, got: &mut Vec<u8>, want: &[u8]) {
        while !got.ends_with(want) {
            let v = from.recv_timeout(Duration::from_secs(10)).expect("the SPL went silent");
            got.extend(v);
        }
    }

    fn rom(from_host: Receiver<Vec<u8>>, to_host: Sender<Vec<u8>>) -> (Rom<ChanWire>, Arc<Mutex<RomReport>>) {
        let report = Arc::new(Mutex::new(RomReport::default()));
        let rom = Rom {
            rx: Rx { wire: ChanWire { from_host, pending: VecDeque::new(), to_host }, buf: VecDeque::new() },
            cfg: RomConfig { line_rate: None, ..Default::default() },
            stop: Arc::new(AtomicBool::new(false)),
            report: report.clone(),
            fastload: Arc::default(),
            line: crate::fastload::Line::new(115_200, false),
            corrupted: false,
            restarted: false,
        };
        (rom, report)
    }

    /// While the SPL busy-waits nobody reads the UART: its FIFO keeps 64
    /// bytes and the rest is lost.
    #[test]
    fn a_busy_wait_keeps_what_the_fifo_holds() {
        let (host_tx, from_host) = channel();
        let (to_host, _host_rx) = channel();
        let (mut rom, _) = rom(from_host, to_host);
        host_tx.send((0..200u8).collect()).unwrap();
        let mut x = super::Xyz {
            pkt: Vec::new(),
            at: 0,
            blk: 0,
            next_blk: 0,
            len: 0,
            crc_mode: true,
            at_eof: false,
            tx_ack: false,
            file_length: 0,
            read_length: 0,
            dropped: 0,
            final_header: None,
        };
        assert!(rom.busy_wait(Duration::from_millis(20), &mut x).is_ok());
        assert_eq!(rom.rx.buf.iter().copied().collect::<Vec<u8>>(), (0..64u8).collect::<Vec<u8>>());
        assert_eq!(x.dropped, 136);
    }

    /// The wire as xyzModem.c drives it: one `C`, the header's ACK only when
    /// the next header is read and no `C` after it, each block's ACK late,
    /// `ACK ACK C` after EOT, `ACK` after the final header.
    #[test]
    fn the_spl_answers_as_xyzmodem_does() {
        let (host_tx, from_host) = channel();
        let (to_host, host_rx) = channel();
        let (mut rom, report) = rom(from_host, to_host);
        let spl = std::thread::spawn(move || {
            let _ = rom.spl_ymodem();
        });
        let mut got = Vec::new();
        expect(&host_rx, &mut got, b"Trying to boot from UART\r\nC");
        let data: Vec<u8> = (0..200u32).map(|i| (i * 3) as u8).collect();
        let mut header = b"u-boot.itb\x00200\x00".to_vec();
        header.resize(128, 0);
        host_tx.send(frame(0, &header)).unwrap();
        expect(&host_rx, &mut got, &[0x06]);
        host_tx.send(frame(1, &data[..128])).unwrap();
        expect(&host_rx, &mut got, &[0x06]);
        host_tx.send(frame(2, &data[128..])).unwrap();
        expect(&host_rx, &mut got, &[0x06]);
        host_tx.send(vec![0x04]).unwrap();
        expect(&host_rx, &mut got, b"C");
        host_tx.send(frame(0, &[])).unwrap();
        expect(&host_rx, &mut got, b"Loaded 200 bytes\r\n");
        spl.join().unwrap();
        let start = got.windows(2).position(|w| w == b"\nC").unwrap() + 1;
        // C; ACK (header, late); ACK (block 1); ACK (block 2, late, at the
        // EOT); ACK (EOT) ACK C; ACK (final header).
        assert_eq!(&got[start..start + 8], b"C\x06\x06\x06\x06\x06C\x06");
        let rep = report.lock().unwrap().clone();
        let Some(SplStage::Done(Ok(f))) = rep.spl else { panic!("{:?}", rep.spl) };
        assert_eq!(f.name, "u-boot.itb");
        assert_eq!(f.data, data, "the padding is cut at the header's size");
        assert!(f.ended_batch);
    }

    #[test]
    fn sizes_parse_as_xyzmodem_parses_them() {
        assert_eq!(parse_num(b"3000\0"), 3000);
        assert_eq!(parse_num(b"3000 1234567 100644\0"), 3000);
        assert_eq!(parse_num(b"0x10\0"), 16);
        assert_eq!(parse_num(b"12a\0"), 0);
        assert_eq!(parse_num(b""), 0);
    }
}
