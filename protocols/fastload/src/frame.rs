//! Frames (docs/fastload.md §1), without I/O: [`encode`] builds one,
//! [`Decoder`] finds them in a byte stream and drops damaged ones.

use std::collections::VecDeque;

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = [0xFA, 0x57];
/// Header bytes before the payload.
pub const HEADER: usize = 10;
/// Bytes of a frame beyond its payload (header and CRC).
pub const OVERHEAD: usize = HEADER + 4;
/// The longest payload a receiver accepts.
pub const MAX_PAYLOAD: usize = 4096;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC, the frames' and the image's check.
pub fn crc32(data: &[u8]) -> u32 {
    CRC.checksum(data)
}

/// Frame types (§1): host to loader below 0x80, loader to host above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Hello = 0x01,
    Baud = 0x02,
    Sync = 0x03,
    Start = 0x04,
    Data = 0x05,
    End = 0x06,
    Go = 0x07,
    Abort = 0x08,
    Info = 0x81,
    BaudOk = 0x82,
    SyncOk = 0x83,
    StartOk = 0x84,
    Ack = 0x85,
    Done = 0x86,
    Missing = 0x87,
    GoOk = 0x88,
    Error = 0x8F,
}

impl Kind {
    /// The type for a byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Kind> {
        use Kind::*;
        Some(match b {
            0x01 => Hello,
            0x02 => Baud,
            0x03 => Sync,
            0x04 => Start,
            0x05 => Data,
            0x06 => End,
            0x07 => Go,
            0x08 => Abort,
            0x81 => Info,
            0x82 => BaudOk,
            0x83 => SyncOk,
            0x84 => StartOk,
            0x85 => Ack,
            0x86 => Done,
            0x87 => Missing,
            0x88 => GoOk,
            0x8F => Error,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The type byte (see [`Kind`]; an unknown type is kept as it came).
    pub kind: u8,
    pub seq: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: Kind, seq: u32, payload: Vec<u8>) -> Self {
        Frame { kind: kind as u8, seq, payload }
    }
    /// The type, when it is a known one.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_byte(self.kind)
    }
}

/// The bytes of a frame. Panics only for a payload over [`MAX_PAYLOAD`],
/// which no caller in this crate builds.
pub fn encode(kind: Kind, seq: u32, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= MAX_PAYLOAD, "frame payload over {MAX_PAYLOAD} bytes");
    let mut f = Vec::with_capacity(OVERHEAD + payload.len());
    f.extend_from_slice(&MAGIC);
    f.push(kind as u8);
    f.push(0);
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    f.extend_from_slice(payload);
    let c = crc32(&f[2..]);
    f.extend_from_slice(&c.to_le_bytes());
    f
}

/// Finds frames in received bytes. Bytes outside frames are skipped; a
/// frame whose length is impossible or whose CRC fails is dropped, and the
/// search goes on from the byte after its magic.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: VecDeque<u8>,
    /// Frames dropped so far.
    pub bad: u64,
    /// Bytes skipped outside frames so far.
    pub skipped: u64,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
    }

    /// Takes the bytes buffered after the last frame (the payload's first
    /// words, after GO_OK).
    pub fn take_rest(&mut self) -> Vec<u8> {
        self.buf.drain(..).collect()
    }

    /// Forgets everything buffered (after a rate change).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next whole, good frame, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            while self.buf.len() >= 2 && !(self.buf[0] == MAGIC[0] && self.buf[1] == MAGIC[1]) {
                self.buf.pop_front();
                self.skipped += 1;
            }
            if self.buf.len() < HEADER {
                return None;
            }
            let len = u16::from_le_bytes([self.buf[8], self.buf[9]]) as usize;
            if len > MAX_PAYLOAD {
                self.bad += 1;
                self.buf.pop_front();
                continue;
            }
            if self.buf.len() < OVERHEAD + len {
                return None;
            }
            self.buf.make_contiguous();
            let (all, _) = self.buf.as_slices();
            let f = &all[..OVERHEAD + len];
            let want = u32::from_le_bytes([
                f[HEADER + len],
                f[HEADER + len + 1],
                f[HEADER + len + 2],
                f[HEADER + len + 3],
            ]);
            if crc32(&f[2..HEADER + len]) != want {
                self.bad += 1;
                self.buf.pop_front();
                continue;
            }
            let frame = Frame {
                kind: f[2],
                seq: u32::from_le_bytes([f[4], f[5], f[6], f[7]]),
                payload: f[HEADER..HEADER + len].to_vec(),
            };
            self.buf.drain(..OVERHEAD + len);
            return Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn finds_frames_among_noise_and_drops_damaged_ones() {
        let a = encode(Kind::Ack, 7, &3u32.to_le_bytes());
        let mut bad = encode(Kind::Ack, 8, &4u32.to_le_bytes());
        bad[12] ^= 0x10;
        let c = encode(Kind::Done, 0, &[0, 1, 2, 3, 4]);
        let mut d = Decoder::new();
        d.push(b"racklet: fastload x ready\r\n\xFA");
        d.push(&a);
        d.push(&bad);
        d.push(&c[..5]);
        assert_eq!(d.next_frame(), Some(Frame::new(Kind::Ack, 7, 3u32.to_le_bytes().to_vec())));
        assert_eq!(d.next_frame(), None);
        d.push(&c[5..]);
        assert_eq!(d.next_frame(), Some(Frame::new(Kind::Done, 0, vec![0, 1, 2, 3, 4])));
        assert_eq!(d.bad, 1);
    }

    #[test]
    fn an_impossible_length_is_skipped() {
        let mut d = Decoder::new();
        d.push(&[0xFA, 0x57, 0x85, 0, 0, 0, 0, 0, 0xFF, 0xFF]);
        d.push(&encode(Kind::GoOk, 0, &[1; 8]));
        assert_eq!(d.next_frame().map(|f| f.kind()), Some(Some(Kind::GoOk)));
        assert_eq!(d.bad, 1);
    }
}
