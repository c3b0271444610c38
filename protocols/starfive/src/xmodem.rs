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
use crate::console::{BANNER, PollDetector, check_refusal};

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
    /// ROM loader restarts during block 1 (recovered from by a resend).
    pub restarts: u64,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ack,
    /// NAK, or a `C` where a `C` asks for a resend (YMODEM to U-Boot).
    Nak,
    Can,
    Nothing,
}

/// Bytes read from the link but not yet used: what follows an ACK in the
/// same read stays here (U-Boot's `ACK ACK C` at EOT, lrzsz's `ACK C`
/// after the header), instead of being thrown away.
#[derive(Default)]
struct Inbox {
    bytes: std::collections::VecDeque<u8>,
    /// The byte before the current one, to tell a `C` poll from the `C` of
    /// console text such as `(C)StarFive`.
    prev: u8,
}

impl Inbox {
    /// The next byte before `deadline`, `None` at the deadline.
    fn next<L: SerialLink + ?Sized>(
        &mut self,
        link: &mut L,
        deadline: Instant,
    ) -> Result<Option<u8>, StarfiveError> {
        loop {
            if let Some(b) = self.bytes.pop_front() {
                return Ok(Some(b));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut buf = [0u8; 256];
            match link.read(&mut buf, left) {
                Ok(n) => self.bytes.extend(&buf[..n]),
                Err(LinkError::Timeout { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// True when `b`, just read, is a `C` poll rather than console text.
    fn is_poll(&mut self, b: u8) -> bool {
        let prev = std::mem::replace(&mut self.prev, b);
        b == POLL && !(prev.is_ascii_alphanumeric() || prev == b'(')
    }

    /// Everything waiting, as console text: fed to `det`, refused when it
    /// shows the ROM refused or restarted. Nothing read before a frame is
    /// written can answer that frame.
    fn drain(&mut self, det: &mut PollDetector) -> Result<Vec<u8>, StarfiveError> {
        let rest: Vec<u8> = self.bytes.drain(..).collect();
        for &t in &rest {
            det.feed(t);
        }
        if let Some(&last) = rest.last() {
            self.prev = last;
        }
        check_refusal(det)?;
        Ok(rest)
    }
}

/// Reads the receiver's answer to one frame. Console text is fed to `det`
/// so a ROM restart or CRC error is noticed. With `poll_resends`, a `C`
/// asks for the frame again, as U-Boot's xyzModem does in CRC mode. With
/// `restart_ok` (block 1 of the ROM stage) a reprinted ROM banner is the
/// loader restarting: its next poll asks for the block again. A `C` (or
/// NAK) followed by an ACK within `stale_poll` (for a `C`) or
/// `cfg.stale_nak_window` (for a NAK) was stale: the block arrived.
#[allow(clippy::too_many_arguments)]
fn read_answer<L: SerialLink + ?Sized>(
    link: &mut L,
    inbox: &mut Inbox,
    timeout: Duration,
    poll_resends: bool,
    restart_ok: bool,
    stale_poll: Duration,
    cfg: &XmodemConfig,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<Answer, StarfiveError> {
    let deadline = Instant::now() + timeout;
    let mut nak_at: Option<Instant> = None;
    let mut window = cfg.stale_nak_window;
    let mut restarted = false;
    let mut cans = 0;
    loop {
        let now = Instant::now();
        let until = match nak_at {
            Some(t) => (t + window).min(deadline.max(now)),
            None => deadline,
        };
        let Some(b) = inbox.next(link, until)? else {
            check_refusal(det)?;
            return Ok(if nak_at.is_some() { Answer::Nak } else { Answer::Nothing });
        };
        let poll = inbox.is_poll(b);
        match b {
            ACK => {
                if nak_at.is_some() {
                    stats.stale_naks += 1;
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
            POLL if poll && poll_resends => {
                det.feed(b);
                if !restarted {
                    window = window.max(stale_poll);
                }
                nak_at.get_or_insert_with(Instant::now);
            }
            _ => {
                cans = 0;
                det.feed(b);
                if restart_ok && det.saw(BANNER) {
                    // The ROM restarted its loader before it had block 1.
                    *det = PollDetector::new();
                    stats.restarts += 1;
                    restarted = true;
                }
                check_refusal(det)?;
            }
        }
    }
}

/// Beyond block 1's wire time, how long an ACK may follow a `C` that was
/// the ROM's last poll rather than an answer.
const STALE_POLL_MARGIN: Duration = Duration::from_millis(100);

/// How a frame is retried.
struct Retry {
    /// Wait for an answer beyond the frame's wire time.
    answer: Duration,
    /// Tries that got no answer before giving up.
    max_timeouts: u32,
    /// Whether a `C` asks for a resend.
    poll_resends: bool,
    /// Whether a ROM restart during block 1 asks for block 1 again.
    restarts: bool,
}

impl Retry {
    fn rom(cfg: &XmodemConfig) -> Retry {
        Retry {
            answer: cfg.answer_timeout,
            max_timeouts: cfg.max_timeouts,
            poll_resends: true,
            restarts: true,
        }
    }

    fn ymodem(cfg: &XmodemConfig) -> Retry {
        Retry {
            answer: cfg.answer_timeout.max(YMODEM_ANSWER_TIMEOUT),
            max_timeouts: cfg.max_timeouts.max(YMODEM_TRIES),
            poll_resends: true,
            restarts: false,
        }
    }
}

/// Sends one frame until the receiver takes it.
#[allow(clippy::too_many_arguments)]
fn send_frame<L: SerialLink + ?Sized>(
    link: &mut L,
    inbox: &mut Inbox,
    f: &[u8],
    block: u64,
    retry: &Retry,
    cfg: &XmodemConfig,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<(), StarfiveError> {
    let mut naks = 0;
    let mut timeouts = 0;
    let timeout = cfg.wire_time(f.len()) + retry.answer;
    loop {
        inbox.drain(det)?;
        link.write_all(f)?;
        stats.frames_sent += 1;
        stats.wire_bytes += f.len() as u64;
        let restart_ok = retry.restarts && block == 1;
        // Before block 1 the ROM polls: a poll sent just before block 1
        // reached it is not an answer, and its ACK follows within the
        // frame's wire time. Later a `C` is an answer at once.
        let stale_poll =
            if restart_ok { cfg.wire_time(f.len()) + STALE_POLL_MARGIN } else { cfg.stale_nak_window };
        match read_answer(link, inbox, timeout, retry.poll_resends, restart_ok, stale_poll, cfg, det, stats)?
        {
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
                if timeouts >= retry.max_timeouts {
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

#[allow(clippy::too_many_arguments)]
fn send_blocks<L: SerialLink + ?Sized>(
    link: &mut L,
    inbox: &mut Inbox,
    data: &[u8],
    retry: &Retry,
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
        send_frame(link, inbox, &f, n, retry, cfg, det, stats)?;
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
    inbox: &mut Inbox,
    cfg: &XmodemConfig,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<(), StarfiveError> {
    let mut silent = 0;
    for _ in 0..cfg.max_naks {
        inbox.drain(det)?;
        link.write_all(&[EOT])?;
        stats.wire_bytes += 1;
        match read_answer(link, inbox, cfg.answer_timeout, false, false, Duration::ZERO, cfg, det, stats)? {
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
    let mut inbox = Inbox::default();
    send_blocks(link, &mut inbox, data, &Retry::rom(cfg), cfg, progress, &mut det, &mut stats)?;
    progress.check_cancel()?;
    send_eot(link, &mut inbox, cfg, &mut det, &mut stats)?;
    // What came with the last answer is console text (after EOT: the ROM's
    // verdict).
    stats.trailing = inbox.drain(&mut det)?;
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

/// Waits for a poll `C` for at most `timeout`; ACKs and NAKs (U-Boot's
/// second ACK of EOT) and console text are passed over. True when it came.
fn wait_poll<L: SerialLink + ?Sized>(
    link: &mut L,
    inbox: &mut Inbox,
    timeout: Duration,
    det: &mut PollDetector,
) -> Result<bool, StarfiveError> {
    let deadline = Instant::now() + timeout;
    let mut cans = 0;
    while let Some(b) = inbox.next(link, deadline)? {
        let poll = inbox.is_poll(b);
        match b {
            POLL if poll => return Ok(true),
            ACK | NAK => {}
            CAN => {
                cans += 1;
                if cans >= 2 {
                    return Err(StarfiveError::Cancelled { block: 0 });
                }
            }
            _ => {
                cans = 0;
                det.feed(b);
            }
        }
    }
    Ok(false)
}

/// How long the YMODEM sender waits for an answer to a frame. U-Boot's
/// receiver (common/xyzModem.c) gives up on a header after 2 s, then
/// flushes until the line was quiet for 2 s and busy-waits 250 ms before
/// it asks again with `C`: an answer can take ~4.3 s, and a resend before
/// that keeps its flush going. Well away from both.
pub const YMODEM_ANSWER_TIMEOUT: Duration = Duration::from_secs(6);
/// Tries of one YMODEM frame that got no answer.
pub const YMODEM_TRIES: u32 = 10;
/// After the header's ACK, how long to wait for the receiver's `C` before
/// block 1 goes anyway: lrzsz `rb` sends `C` at once (and purges what came
/// before it); U-Boot sends none and gives up on block 1 after 2 s.
pub const AFTER_HEADER: Duration = Duration::from_millis(800);

/// Sends one file with YMODEM batch: header block, data, EOT, and the
/// empty header that ends the batch. The receiver's first `C` must already
/// have been seen.
///
/// As tio and lrzsz `sb` (which load through U-Boot SPL): a `C` or NAK in
/// answer to any frame or EOT makes it go again at once; after the header's
/// ACK a `C` is waited for at most [`AFTER_HEADER`]; after EOT's ACK the
/// `C` that asks for the next header is waited for past U-Boot's second
/// ACK, and the empty header goes at once.
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
    let mut inbox = Inbox::default();
    let retry = Retry::ymodem(cfg);
    send_frame(
        link,
        &mut inbox,
        &ymodem_header(name, data.len() as u64),
        0,
        &retry,
        cfg,
        &mut det,
        &mut stats,
    )?;
    // lrzsz asks for the data with another C (which may come with the ACK);
    // U-Boot does not.
    wait_poll(link, &mut inbox, AFTER_HEADER, &mut det)?;
    send_blocks(link, &mut inbox, data, &retry, cfg, progress, &mut det, &mut stats)?;
    progress.check_cancel()?;
    send_ymodem_eot(link, &mut inbox, &retry, cfg, &mut det, &mut stats)?;
    // End of batch: the empty header, once the receiver asks for it.
    if !wait_poll(link, &mut inbox, retry.answer, &mut det)? {
        stats.timeouts += 1;
    }
    let end = frame(0, &[], 128, 0);
    let mut end_retry = retry;
    end_retry.max_timeouts = 3;
    send_frame(link, &mut inbox, &end, 0, &end_retry, cfg, &mut det, &mut stats).map_err(|e| match e {
        StarfiveError::NoAnswer { tries, each, .. } => StarfiveError::NoAnswer {
            what: "the empty header block that ends the YMODEM batch".into(),
            tries,
            each,
        },
        e => e,
    })?;
    stats.trailing = inbox.drain(&mut det)?;
    stats.elapsed = start.elapsed();
    Ok(stats)
}

/// YMODEM's EOT: sent until it is ACKed; a NAK or `C` asks for it again
/// (U-Boot takes EOT only as the first byte after a header search began,
/// and answers anything else with `C` after its timeout).
fn send_ymodem_eot<L: SerialLink + ?Sized>(
    link: &mut L,
    inbox: &mut Inbox,
    retry: &Retry,
    cfg: &XmodemConfig,
    det: &mut PollDetector,
    stats: &mut SendStats,
) -> Result<(), StarfiveError> {
    let mut timeouts = 0;
    let mut naks = 0;
    loop {
        inbox.drain(det)?;
        link.write_all(&[EOT])?;
        stats.wire_bytes += 1;
        match read_answer(link, inbox, retry.answer, true, false, cfg.stale_nak_window, cfg, det, stats)? {
            Answer::Ack => {
                stats.eot_acked = true;
                return Ok(());
            }
            Answer::Nak => {
                naks += 1;
                if naks >= cfg.max_naks {
                    return Err(StarfiveError::TooManyNaks { block: stats.blocks + 1, naks });
                }
            }
            Answer::Can => return Err(StarfiveError::Cancelled { block: stats.blocks + 1 }),
            Answer::Nothing => {
                stats.timeouts += 1;
                timeouts += 1;
                if timeouts >= retry.max_timeouts {
                    return Err(StarfiveError::NoAnswer {
                        what: "EOT".into(),
                        tries: timeouts,
                        each: retry.answer,
                    });
                }
            }
        }
    }
}
