//! XMODEM-CRC (128-byte and 1K blocks) and YMODEM batch senders.
//!
//! Framing: `SOH|STX, n, 255-n, data[128|1024], crc16_hi, crc16_lo`, with
//! CRC-16/XMODEM (poly 0x1021, init 0, MSB first) over the data, block
//! numbers starting at 1 and wrapping at 255 to 0. The last block is padded
//! (0x1A by default); the ROM uses the header's length and ignores padding.
//!
//! Tolerance for the JH7110 ROM (sheet §1.3): a NAK makes the block go
//! again, but the budget of NAKs per block is 30 rather than the spec's 10;
//! a NAK followed at once by an ACK is taken as a stale NAK; bytes other
//! than ACK/NAK/CAN (stray polls) are ignored; `CRC Error` or the ROM banner
//! appearing mid-transfer ends it as a refusal. [`NakPolicy::Ignore`] is
//! vf2-recover's behaviour (advance whatever the answer).

use std::time::{Duration, Instant};

use crc::{CRC_16_XMODEM, Crc};
use racklet_link::{LinkError, ProgressSink, SerialLink};

use crate::StarfiveError;
use crate::console::{PollDetector, check_refusal};

pub const SOH: u8 = 0x01;
pub const STX: u8 = 0x02;
pub const EOT: u8 = 0x04;
pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;
pub const CAN: u8 = 0x18;
/// The usual padding byte (CP/M end of file), as lrzsz and vf2-loader pad.
pub const PAD: u8 = 0x1A;
/// The poll of a CRC-mode receiver.
pub const POLL: u8 = b'C';

/// CRC-16/XMODEM.
pub const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// Data bytes per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSize {
    /// 128-byte SOH blocks (classic XMODEM).
    B128,
    /// 1024-byte STX blocks (XMODEM-1K); a tail of at most 128 bytes goes
    /// as one SOH block, as lrzsz does.
    K1,
}

impl BlockSize {
    pub fn bytes(self) -> usize {
        match self {
            BlockSize::B128 => 128,
            BlockSize::K1 => 1024,
        }
    }
}

/// What to do with a NAK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NakPolicy {
    /// Send the block again (up to [`XmodemConfig::max_naks`] in a row).
    Resend,
    /// Go on to the next block whatever the answer (vf2-recover). The ROM's
    /// CRC-32 check then is the only integrity check.
    Ignore,
}

/// Sender settings.
#[derive(Debug, Clone)]
pub struct XmodemConfig {
    pub block: BlockSize,
    pub pad: u8,
    pub nak_policy: NakPolicy,
    /// NAKs in a row for one block before giving up.
    pub max_naks: u32,
    /// Tries of one block that got no answer at all.
    pub max_timeouts: u32,
    /// How long to wait for an answer, beyond the frame's time on the wire.
    pub answer_timeout: Duration,
    /// After a NAK, how long to look for an ACK that shows the NAK was stale.
    pub stale_nak_window: Duration,
    /// Line rate, to know how long a frame takes on the wire.
    pub baud: u32,
    /// EOT tries without an answer before going on (the ROM may not ACK it).
    pub eot_tries: u32,
}

impl Default for XmodemConfig {
    fn default() -> Self {
        XmodemConfig {
            block: BlockSize::K1,
            pad: PAD,
            nak_policy: NakPolicy::Resend,
            max_naks: 30,
            max_timeouts: 3,
            answer_timeout: Duration::from_secs(2),
            stale_nak_window: Duration::from_millis(20),
            baud: 115_200,
            eot_tries: 3,
        }
    }
}

impl XmodemConfig {
    /// Time `n` bytes take on an 8N1 line (10 bits a byte).
    pub fn wire_time(&self, n: usize) -> Duration {
        Duration::from_secs_f64(n as f64 * 10.0 / self.baud.max(1) as f64)
    }
}

/// One frame.
pub fn frame(block_no: u8, data: &[u8], len: usize, pad: u8) -> Vec<u8> {
    assert!(data.len() <= len && (len == 128 || len == 1024));
    let mut f = Vec::with_capacity(len + 5);
    f.push(if len == 1024 { STX } else { SOH });
    f.push(block_no);
    f.push(255 - block_no);
    f.extend_from_slice(data);
    f.resize(3 + len, pad);
    let crc = CRC16.checksum(&f[3..]);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

/// The data length of each block for `total` bytes.
pub fn block_lengths(total: usize, size: BlockSize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut left = total;
    while left > 0 {
        let len = if size == BlockSize::K1 && left <= 128 { 128 } else { size.bytes() };
        v.push(len);
        left = left.saturating_sub(len);
    }
    v
}

/// What a transfer took.
#[derive(Debug, Clone, Default)]
pub struct SendStats {
    /// Blocks of data (not counting resends).
    pub blocks: u64,
    /// Frames written, resends included.
    pub frames_sent: u64,
    pub naks: u64,
    /// NAKs followed at once by an ACK.
    pub stale_naks: u64,
    pub timeouts: u64,
    /// Whether the receiver acknowledged EOT.
    pub eot_acked: bool,
    /// Bytes written to the link, resends and EOTs included.
    pub wire_bytes: u64,
    /// From the first frame to the end of the EOT handshake.
    pub elapsed: Duration,
    /// Data bytes delivered.
    pub data_bytes: u64,
    /// Bytes that arrived right after the last ACK (console text).
    pub trailing: Vec<u8>,
}

impl SendStats {
    /// Data bytes per second.
    pub fn throughput(&self) -> f64 {
        self.data_bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

enum Answer {
    Ack,
    Nak,
    Can,
    Nothing,
}

/// Reads the receiver's answer to one frame. Console text is fed to `det`
/// so a ROM restart or CRC error is noticed.
fn read_answer<L: SerialLink + ?Sized>(
    link: &mut L,
    timeout: Duration,
    cfg: &XmodemConfig,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<Answer, StarfiveError> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    let mut nak_at: Option<Instant> = None;
    let mut cans = 0;
    loop {
        let now = Instant::now();
        let until = match nak_at {
            Some(t) => (t + cfg.stale_nak_window).min(deadline.max(now)),
            None => deadline,
        };
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            return Ok(if nak_at.is_some() { Answer::Nak } else { Answer::Nothing });
        }
        match link.read(&mut buf, left) {
            Ok(n) => {
                for (i, &b) in buf[..n].iter().enumerate() {
                    match b {
                        ACK => {
                            if nak_at.is_some() {
                                stats.stale_naks += 1;
                            }
                            // What came with the ACK is console text (after
                            // EOT: the ROM's verdict).
                            let rest = &buf[i + 1..n];
                            stats.trailing = rest.to_vec();
                            for &t in rest {
                                det.feed(t);
                            }
                            check_refusal(det)?;
                            return Ok(Answer::Ack);
                        }
                        NAK => {
                            nak_at.get_or_insert_with(Instant::now);
                        }
                        CAN => {
                            cans += 1;
                            if cans >= 2 {
                                return Ok(Answer::Can);
                            }
                        }
                        _ => {
                            cans = 0;
                            det.feed(b);
                        }
                    }
                }
                check_refusal(det)?;
            }
            Err(LinkError::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends one frame until the receiver takes it.
fn send_frame<L: SerialLink + ?Sized>(
    link: &mut L,
    f: &[u8],
    block: u64,
    cfg: &XmodemConfig,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<(), StarfiveError> {
    let mut naks = 0;
    let mut timeouts = 0;
    let timeout = cfg.wire_time(f.len()) + cfg.answer_timeout;
    loop {
        link.write_all(f)?;
        stats.frames_sent += 1;
        stats.wire_bytes += f.len() as u64;
        match read_answer(link, timeout, cfg, det, stats)? {
            Answer::Ack => return Ok(()),
            Answer::Nak => {
                stats.naks += 1;
                if cfg.nak_policy == NakPolicy::Ignore {
                    return Ok(());
                }
                naks += 1;
                timeouts = 0;
                if naks >= cfg.max_naks {
                    return Err(StarfiveError::TooManyNaks { block, naks });
                }
            }
            Answer::Can => return Err(StarfiveError::Cancelled { block }),
            Answer::Nothing => {
                stats.timeouts += 1;
                timeouts += 1;
                if timeouts >= cfg.max_timeouts {
                    return Err(StarfiveError::NoAnswer {
                        what: if block == 0 {
                            "the YMODEM header block".into()
                        } else {
                            format!("block {block}")
                        },
                        tries: timeouts,
                        each: timeout,
                    });
                }
            }
        }
    }
}

fn send_blocks<L: SerialLink + ?Sized>(
    link: &mut L,
    data: &[u8],
    cfg: &XmodemConfig,
    progress: &mut dyn ProgressSink,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<(), StarfiveError> {
    let mut off = 0;
    for (i, len) in block_lengths(data.len(), cfg.block).into_iter().enumerate() {
        progress.check_cancel()?;
        let n = (i + 1) as u64;
        let chunk = &data[off..(off + len).min(data.len())];
        let f = frame(n as u8, chunk, len, cfg.pad);
        send_frame(link, &f, n, cfg, det, stats)?;
        off += chunk.len();
        stats.blocks += 1;
        stats.data_bytes += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    Ok(())
}

/// Sends EOT until it is acknowledged. A NAK gets another EOT (YMODEM and
/// some XMODEM receivers NAK the first); silence after `eot_tries` is
/// tolerated (the JH7110 ROM may not answer EOT, sheet §1.3).
fn send_eot<L: SerialLink + ?Sized>(
    link: &mut L,
    cfg: &XmodemConfig,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<(), StarfiveError> {
    let mut silent = 0;
    for _ in 0..cfg.max_naks {
        link.write_all(&[EOT])?;
        stats.wire_bytes += 1;
        match read_answer(link, cfg.answer_timeout, cfg, det, stats)? {
            Answer::Ack => {
                stats.eot_acked = true;
                return Ok(());
            }
            Answer::Nak => {}
            Answer::Can => return Err(StarfiveError::Cancelled { block: stats.blocks + 1 }),
            Answer::Nothing => {
                silent += 1;
                if silent >= cfg.eot_tries {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Sends `data` with XMODEM. The receiver's first poll must already have
/// been seen (see [`crate::console::wait_for_poll`]). Progress goes to the
/// current stage.
pub fn send<L: SerialLink + ?Sized>(
    link: &mut L,
    data: &[u8],
    cfg: &XmodemConfig,
    progress: &mut dyn ProgressSink,
) -> Result<SendStats, StarfiveError> {
    let start = Instant::now();
    let mut stats = SendStats::default();
    let mut det = PollDetector::new();
    send_blocks(link, data, cfg, progress, &mut det, &mut stats)?;
    progress.check_cancel()?;
    send_eot(link, cfg, &mut det, &mut stats)?;
    stats.elapsed = start.elapsed();
    Ok(stats)
}

/// The YMODEM header block (block 0): `name NUL size NUL`, zero-filled.
pub fn ymodem_header(name: &str, size: u64) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(name.as_bytes());
    d.push(0);
    d.extend_from_slice(size.to_string().as_bytes());
    d.push(0);
    let len = if d.len() <= 128 { 128 } else { 1024 };
    d.truncate(1024);
    frame(0, &d, len, 0)
}

/// Waits for a poll `C` for at most `timeout`, ignoring other bytes.
fn wait_c<L: SerialLink + ?Sized>(link: &mut L, timeout: Duration) -> Result<bool, StarfiveError> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        match link.read(&mut buf, left) {
            Ok(n) if buf[..n].contains(&POLL) => return Ok(true),
            Ok(_) | Err(LinkError::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends one file with YMODEM batch: header block, data, EOT, and the
/// empty header that ends the batch. The receiver's first `C` must already
/// have been seen.
pub fn send_ymodem<L: SerialLink + ?Sized>(
    link: &mut L,
    name: &str,
    data: &[u8],
    cfg: &XmodemConfig,
    progress: &mut dyn ProgressSink,
) -> Result<SendStats, StarfiveError> {
    let start = Instant::now();
    let mut stats = SendStats::default();
    let mut det = PollDetector::new();
    // A failed header block is refused by the receiver, not a data error.
    send_frame(link, &ymodem_header(name, data.len() as u64), 0, cfg, &mut det, &mut stats)?;
    // The receiver asks for the data with another C; sending before it can
    // be purged by receivers that flush their input (lrzsz does).
    wait_c(link, cfg.answer_timeout)?;
    send_blocks(link, data, cfg, progress, &mut det, &mut stats)?;
    send_eot(link, cfg, &mut det, &mut stats)?;
    // End of batch: an empty header block after the next C.
    wait_c(link, cfg.answer_timeout)?;
    send_frame(link, &frame(0, &[], 128, 0), 0, cfg, &mut det, &mut stats)?;
    stats.elapsed = start.elapsed();
    Ok(stats)
}
