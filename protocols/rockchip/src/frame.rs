//! Maskrom stage framing: RC4, the 4095 padding rule, CRC-16, 4096-byte
//! transfers and the 4094 trailer (fact sheet §1.2).

use crc::{Crc, Table};

/// The fixed RC4 key of Rockchip's boot ROMs (fact sheet §1.2).
pub const RC4_KEY: [u8; 16] = [124, 78, 3, 4, 85, 5, 9, 7, 45, 44, 123, 56, 23, 13, 23, 17];

/// Largest data stage of one maskrom control transfer.
pub const CHUNK: usize = 4096;

/// CRC-16/IBM-3740 (CCITT-FALSE): poly 0x1021, init 0xFFFF, not reflected.
/// Sliced tables: the CRC is the hottest loop of a big stage.
static CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&crc::CRC_16_IBM_3740);

/// CRC-16/CCITT-FALSE of `data`, as the ROM checks it.
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// Plain RC4 (KSA then PRGA, nothing dropped) keyed with [`RC4_KEY`].
#[derive(Clone)]
pub struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Default for Rc4 {
    fn default() -> Self {
        Self::new(&RC4_KEY)
    }
}

impl Rc4 {
    /// A keystream for `key` (1..=256 bytes).
    pub fn new(key: &[u8]) -> Self {
        assert!(!key.is_empty() && key.len() <= 256, "RC4 keys are 1..=256 bytes");
        let mut s = [0u8; 256];
        for (i, v) in s.iter_mut().enumerate() {
            *v = i as u8;
        }
        let mut j: u8 = 0;
        for i in 0..256 {
            j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
            s.swap(i, j as usize);
        }
        Rc4 { s, i: 0, j: 0 }
    }

    /// XORs `data` with the next bytes of the keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        let s = &mut self.s;
        for b in data {
            i = i.wrapping_add(1);
            let si = s[i as usize];
            j = j.wrapping_add(si);
            let sj = s[j as usize];
            s[i as usize] = sj;
            s[j as usize] = si;
            *b ^= s[si.wrapping_add(sj) as usize];
        }
        self.i = i;
        self.j = j;
    }
}

/// How much of the fixed key's keystream is kept once computed.
/// (Small in unit tests, so they cross the end of the cache cheaply.)
const KEYSTREAM_CACHE_MAX: usize = if cfg!(test) { 1 << 16 } else { 64 << 20 };

/// The fixed key's keystream, computed once per process: the key never
/// changes, so neither does the keystream. RC4 is byte-serial (each byte
/// depends on the state the previous one left) and runs at a few hundred
/// MB/s; XOR with a cached keystream runs at memory speed, and every later
/// stage and every board of a parallel run reuses it.
struct KeystreamCache {
    /// The generator, positioned at `bytes.len()`.
    rc4: Rc4,
    bytes: Vec<u8>,
}

static KEYSTREAM: std::sync::Mutex<Option<KeystreamCache>> = std::sync::Mutex::new(None);

/// RC4 with the fixed key over one stage, from byte 0, chunk by chunk.
#[derive(Clone, Default)]
pub struct StageCipher {
    offset: usize,
    /// Past the cached prefix: a generator positioned at `offset`.
    beyond: Option<Rc4>,
}

impl StageCipher {
    /// A cipher at byte 0 of a stage.
    pub fn new() -> Self {
        Self::default()
    }

    /// XORs `data` with the next bytes of the stage's keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        let mut done = 0;
        if self.beyond.is_none() && self.offset < KEYSTREAM_CACHE_MAX {
            let n = data.len().min(KEYSTREAM_CACHE_MAX - self.offset);
            let need = self.offset + n;
            let mut guard = KEYSTREAM.lock().unwrap_or_else(|e| e.into_inner());
            let cache =
                guard.get_or_insert_with(|| KeystreamCache { rc4: Rc4::default(), bytes: Vec::new() });
            if cache.bytes.len() < need {
                let old = cache.bytes.len();
                let grown = need.next_multiple_of(1 << 20).min(KEYSTREAM_CACHE_MAX);
                cache.bytes.resize(grown, 0);
                // RC4 over zeros is the keystream itself.
                cache.rc4.apply(&mut cache.bytes[old..]);
            }
            for (b, k) in data[..n].iter_mut().zip(&cache.bytes[self.offset..need]) {
                *b ^= k;
            }
            self.offset = need;
            done = n;
            if self.offset == KEYSTREAM_CACHE_MAX {
                // The cache is full, so its generator sits exactly here.
                self.beyond = Some(cache.rc4.clone());
            }
        }
        if done < data.len() {
            let rest = &mut data[done..];
            self.beyond.get_or_insert_with(Rc4::default).apply(rest);
            self.offset += rest.len();
        }
    }
}

/// RC4 over a whole stage, one stream from byte 0 (fact sheet §1.2 step 1).
pub fn rc4_stage(data: &mut [u8]) {
    StageCipher::new().apply(data);
}

/// How a stage is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameOptions {
    /// RC4 the payload before the CRC (raw blobs for legacy chips).
    pub rc4: bool,
    /// Send 0x0000 in the CRC field, which asks ROMs that know the trick to
    /// skip their slow check (fact sheet §1.3).
    pub zero_crc: bool,
}

/// One stage in wire form: the bytes to send in 4096-byte transfers, and
/// whether the 1-byte `00` trailer transfer follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// body (RC4'd if asked, padded by the 4095 rule) followed by the CRC,
    /// high byte first.
    pub wire: Vec<u8>,
    /// The CRC that was appended.
    pub crc: u16,
    /// True when `wire` is a multiple of 4096 and one more 1-byte `00`
    /// transfer ends the stage (the 4094 rule).
    pub trailer: bool,
}

impl Framed {
    /// The data stage of every control transfer, in order.
    pub fn transfers(&self) -> impl Iterator<Item = &[u8]> {
        const TRAILER: &[u8] = &[0];
        self.wire.chunks(CHUNK).chain(self.trailer.then_some(TRAILER))
    }

    /// Number of control transfers.
    pub fn transfer_count(&self) -> usize {
        self.wire.len().div_ceil(CHUNK) + usize::from(self.trailer)
    }
}

/// Bytes of the 4095-rule pad for an `n`-byte payload (0 or 1).
pub fn pad_len(n: usize) -> usize {
    usize::from(n % CHUNK == CHUNK - 1)
}

/// True when the 4094 rule adds the 1-byte `00` trailer transfer.
pub fn has_trailer(n: usize) -> bool {
    n % CHUNK == CHUNK - 2
}

/// Bytes on the wire for an `n`-byte payload: body, pad, CRC, trailer.
pub fn wire_len(n: usize) -> usize {
    n + pad_len(n) + 2 + usize::from(has_trailer(n))
}

/// Control transfers for an `n`-byte payload.
pub fn transfer_count(n: usize) -> usize {
    (n + pad_len(n) + 2).div_ceil(CHUNK) + usize::from(has_trailer(n))
}

/// Frames a stage as the ROM expects it (fact sheet §1.2) and hands each
/// control transfer's data stage to `send`, in order, without building the
/// whole wire image: whole 4096-byte chunks of a plain payload are passed
/// straight from `payload`, RC4 runs chunk by chunk into one 4 KiB buffer
/// (one keystream across the stage), and the CRC is updated as chunks go
/// out, so only the tail (rest, pad, CRC) and the trailer are built.
/// Returns the CRC field that was sent.
pub fn stream<E>(
    payload: &[u8],
    opts: FrameOptions,
    mut send: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u16, E> {
    let n = payload.len();
    let whole = n / CHUNK;
    let mut digest = CRC16.digest();
    let mut rc4 = opts.rc4.then(StageCipher::new);
    let mut buf = [0u8; CHUNK];
    for chunk in payload[..whole * CHUNK].chunks_exact(CHUNK) {
        let out: &[u8] = match rc4.as_mut() {
            Some(k) => {
                buf.copy_from_slice(chunk);
                k.apply(&mut buf);
                &buf
            }
            None => chunk,
        };
        digest.update(out);
        send(out)?;
    }
    // The tail: the rest of the payload, the 4095-rule zero (plain, under
    // the CRC, so the CRC never ends in a 1-byte transfer: that shape is the
    // terminator's), then the CRC high byte first.
    let mut tail = Vec::with_capacity(CHUNK + 3);
    tail.extend_from_slice(&payload[whole * CHUNK..]);
    if let Some(k) = rc4.as_mut() {
        k.apply(&mut tail);
    }
    tail.resize(tail.len() + pad_len(n), 0);
    digest.update(&tail);
    let crc = if opts.zero_crc { 0 } else { digest.finalize() };
    tail.extend_from_slice(&crc.to_be_bytes());
    for chunk in tail.chunks(CHUNK) {
        send(chunk)?;
    }
    // 4094 rule: body+CRC filled the last chunk; a short transfer must
    // still end the stage.
    if has_trailer(n) {
        send(&[0])?;
    }
    Ok(crc)
}

/// Frames a whole stage into memory (tests, tools); [`stream`] is what the
/// download uses.
pub fn frame(payload: &[u8], opts: FrameOptions) -> Framed {
    let mut wire = Vec::with_capacity(wire_len(payload.len()));
    let crc = stream(payload, opts, |c: &[u8]| -> Result<(), ()> {
        wire.extend_from_slice(c);
        Ok(())
    })
    .unwrap_or_default();
    let trailer = has_trailer(payload.len());
    if trailer {
        wire.pop();
    }
    debug_assert_eq!(trailer, wire.len().is_multiple_of(CHUNK));
    Framed { wire, crc, trailer }
}

#[cfg(test)]
mod tests {

    #[test]
    fn stage_cipher_equals_one_rc4_stream_across_the_cache_end() {
        // Plain RC4 over 3x the cache size in one go...
        let n = 3 * super::KEYSTREAM_CACHE_MAX + 123;
        let mut want = vec![0xA5u8; n];
        Rc4::default().apply(&mut want);
        // ...equals the cached cipher fed in odd chunk sizes, twice (the
        // second time from a warm cache).
        for _ in 0..2 {
            let mut got = vec![0xA5u8; n];
            let mut c = StageCipher::new();
            let mut at = 0;
            for step in [1usize, 4095, 4096, 4097, 65535, 7].iter().cycle() {
                if at >= n {
                    break;
                }
                let end = (at + step).min(n);
                c.apply(&mut got[at..end]);
                at = end;
            }
            assert!(got == want, "keystream differs");
        }
    }

    use super::*;

    #[test]
    fn crc_check_values_from_the_sheet() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc16(b""), 0xFFFF);
        assert_eq!(crc16(&[0, 1]), 0x0D2E);
        assert_eq!(crc16(&[0x6e, 0x27]), 0x61AF);
    }

    #[test]
    fn keystream_starts_as_the_sheet_says() {
        let mut z = [0u8; 8];
        rc4_stage(&mut z);
        assert_eq!(z, [0x6e, 0x26, 0x2c, 0xf3, 0xbe, 0x9f, 0x9d, 0x51]);
    }

    #[test]
    fn keystream_is_one_stream_across_calls() {
        let mut whole = vec![0u8; 1000];
        rc4_stage(&mut whole);
        let mut parts = vec![0u8; 1000];
        let mut k = Rc4::default();
        for c in parts.chunks_mut(7) {
            k.apply(c);
        }
        assert_eq!(whole, parts);
    }

    #[test]
    fn counts_agree_with_the_framed_image() {
        for n in [0, 1, 4093, 4094, 4095, 4096, 4097, 8190, 8191, 8192, 10000] {
            let f = frame(&vec![7u8; n], FrameOptions { rc4: true, zero_crc: false });
            assert_eq!(f.transfer_count(), transfer_count(n), "n={n}");
            assert_eq!(f.wire.len() + usize::from(f.trailer), wire_len(n), "n={n}");
        }
    }

    #[test]
    fn worked_examples() {
        let f = frame(&[0, 1], FrameOptions::default());
        assert_eq!(f.wire, [0x00, 0x01, 0x0d, 0x2e]);
        assert!(!f.trailer);
        let f = frame(&[0, 1], FrameOptions { rc4: true, zero_crc: false });
        assert_eq!(f.wire, [0x6e, 0x27, 0x61, 0xaf]);
        let f = frame(&[0], FrameOptions::default());
        assert_eq!(f.wire, [0x00, 0xe1, 0xf0]);
        let f = frame(&[0, 1], FrameOptions { rc4: false, zero_crc: true });
        assert_eq!(f.wire, [0x00, 0x01, 0x00, 0x00]);
    }
}
