//! `fastload`: the stage-1 fast loader (docs/fastload.md). The ROM (or
//! QEMU's `-kernel`) starts it with the UART at the ROM's rate; it prints
//! `racklet: fastload <board> ready`, then speaks the framed protocol:
//! HELLO/INFO, a rate change with SYNC and a 1 s fallback, START, DATA
//! blocks written straight to their place and answered with ACK, END with
//! MISSING or DONE (CRC-32 of the image in memory), and GO: it puts the ROM's
//! divisor back and jumps to the entry with a0/x0 = the hart/core.
//!
//! The UART is polled; received bytes go to a ring and frames are parsed
//! there as the document says (look for the magic, check the length and the
//! CRC, on a bad frame search again from the byte after its magic). Bytes to
//! send go to a second ring that is drained whenever the UART has room, so
//! a long answer never lets the receive FIFO overflow.
#![no_std]
#![no_main]

use racklet_bsp::{Ctx, Status, FASTLOAD_WINDOW, LOAD_ADDRESS, TIMER, UART_CLOCK};

// (`BOARD` is the static that `payload!` defines, below.) The console as a
// constant: every UART access folds to this board's kind and stride.
const CONSOLE: racklet_bsp::Console = racklet_bsp::BOARD.console;

const MAGIC0: u8 = 0xFA;
const MAGIC1: u8 = 0x57;
const MAX_LEN: usize = 4096;
const MAX_BLOCK: usize = 2048;
const WINDOW: u16 = 16;
/// Blocks the received-bitmap can track.
const MAX_BLOCKS: usize = 8192;
const SYNC_PATTERN: [u8; 8] = [0x55, 0xAA, 0x5A, 0xA5, 0x72, 0x66, 0x6C, 0x31];

const HELLO: u8 = 0x01;
const BAUD: u8 = 0x02;
const SYNC: u8 = 0x03;
const START: u8 = 0x04;
const DATA: u8 = 0x05;
const END: u8 = 0x06;
const GO: u8 = 0x07;
const ABORT: u8 = 0x08;
const INFO: u8 = 0x81;
const BAUD_OK: u8 = 0x82;
const SYNC_OK: u8 = 0x83;
const START_OK: u8 = 0x84;
const ACK: u8 = 0x85;
const DONE: u8 = 0x86;
const MISSING: u8 = 0x87;
const GO_OK: u8 = 0x88;
const ERROR: u8 = 0x8F;

const RX_SIZE: usize = 8192;

struct Io {
    rx: [u8; RX_SIZE],
    rx_head: usize,
    rx_len: usize,
    /// The current frame's payload.
    frame: [u8; MAX_LEN],
    bitmap: [u8; MAX_BLOCKS / 8],
}

static mut IO: Io = Io {
    rx: [0; RX_SIZE],
    rx_head: 0,
    rx_len: 0,
    frame: [0; MAX_LEN],
    bitmap: [0; MAX_BLOCKS / 8],
};

/// CRC-32/ISO-HDLC, bit by bit (no table: the loader stays small).
#[inline(never)]
fn crc_update(mut crc: u32, b: u8) -> u32 {
    crc ^= b as u32;
    for _ in 0..8 {
        crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
    }
    crc
}

#[inline(never)]
fn le32(p: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

#[inline(never)]
fn le64(p: &[u8], at: usize) -> u64 {
    le32(p, at) as u64 | (le32(p, at + 4) as u64) << 32
}

impl Io {
    /// Moves received bytes into the ring.
    #[inline(never)]
    fn pump(&mut self) {
        while let Some(b) = CONSOLE.try_getb() {
            if self.rx_len < RX_SIZE {
                self.rx[(self.rx_head + self.rx_len) % RX_SIZE] = b;
                self.rx_len += 1;
            }
        }
    }

    /// Sends one byte, receiving while the transmitter is full.
    #[inline(never)]
    fn push_tx(&mut self, b: u8) {
        while !CONSOLE.tx_ready() {
            self.pump();
        }
        CONSOLE.put_now(b);
    }

    fn push_crc(&mut self, crc: u32, b: u8) -> u32 {
        self.push_tx(b);
        crc_update(crc, b)
    }

    /// Starts a frame (§1) with a `len`-byte payload; returns the CRC so far.
    #[inline(never)]
    fn begin(&mut self, kind: u8, seq: u32, len: usize) -> u32 {
        self.push_tx(MAGIC0);
        self.push_tx(MAGIC1);
        let crc = self.put(!0, &[kind, 0]);
        let crc = self.put(crc, &seq.to_le_bytes());
        self.put(crc, &(len as u16).to_le_bytes())
    }

    /// Queues payload bytes.
    #[inline(never)]
    fn put(&mut self, mut crc: u32, bytes: &[u8]) -> u32 {
        for &b in bytes {
            crc = self.push_crc(crc, b);
        }
        crc
    }

    #[inline(never)]
    fn put_u32(&mut self, crc: u32, v: u32) -> u32 {
        self.put(crc, &v.to_le_bytes())
    }

    #[inline(never)]
    fn put_u64(&mut self, crc: u32, v: u64) -> u32 {
        self.put(crc, &v.to_le_bytes())
    }

    /// Ends a frame with its CRC.
    #[inline(never)]
    fn finish(&mut self, crc: u32) {
        for b in (!crc).to_le_bytes() {
            self.push_tx(b);
        }
    }

    /// Queues one frame.
    #[inline(never)]
    fn send(&mut self, kind: u8, seq: u32, payload: &[u8]) {
        let crc = self.begin(kind, seq, payload.len());
        let crc = self.put(crc, payload);
        self.finish(crc);
    }

    /// Waits until everything queued has left the UART.
    fn flush(&mut self) {
        while !CONSOLE.tx_idle() {
            self.pump();
        }
    }

    fn peek(&self, i: usize) -> u8 {
        self.rx[(self.rx_head + i) % RX_SIZE]
    }

    fn drop_rx(&mut self, n: usize) {
        self.rx_head = (self.rx_head + n) % RX_SIZE;
        self.rx_len -= n;
    }

    /// The next good frame: (type, seq, payload length); the payload is in
    /// `self.frame`.
    fn next_frame(&mut self) -> Option<(u8, u32, usize)> {
        loop {
            self.pump();
            while self.rx_len >= 2 && !(self.peek(0) == MAGIC0 && self.peek(1) == MAGIC1) {
                self.drop_rx(1);
            }
            if self.rx_len < 10 {
                return None;
            }
            let len = self.peek(8) as usize | (self.peek(9) as usize) << 8;
            if len > MAX_LEN {
                self.drop_rx(1);
                continue;
            }
            if self.rx_len < 14 + len {
                return None;
            }
            let mut crc = !0u32;
            for i in 2..10 {
                crc = crc_update(crc, self.peek(i));
            }
            for i in 0..len {
                let b = self.peek(10 + i);
                self.frame[i % MAX_LEN] = b;
                crc = crc_update(crc, b);
                if i % 64 == 0 {
                    self.pump();
                }
            }
            let want = u32::from_le_bytes([
                self.peek(10 + len),
                self.peek(11 + len),
                self.peek(12 + len),
                self.peek(13 + len),
            ]);
            if !crc != want {
                self.drop_rx(1);
                continue;
            }
            let kind = self.peek(2);
            let seq = u32::from_le_bytes([self.peek(4), self.peek(5), self.peek(6), self.peek(7)]);
            self.drop_rx(14 + len);
            return Some((kind, seq, len));
        }
    }

    #[inline(never)]
    fn error(&mut self, code: u8, msg: &str) {
        let crc = self.begin(ERROR, 0, 1 + msg.len());
        let crc = self.put(crc, &[code]);
        let crc = self.put(crc, msg.as_bytes());
        self.finish(crc);
    }
}

/// The divisor for `rate` and the rate it gives, when it is within 1 %
/// (§3); 0 when the clock is unknown or the rate is not possible.
fn divisor(rate: u32) -> (u32, u32) {
    let Some(clock) = UART_CLOCK else { return (0, 0) };
    if rate == 0 {
        return (0, 0);
    }
    let (clock, rate) = (clock as u64, rate as u64);
    let (d, got) = match CONSOLE {
        racklet_bsp::Console::Pl011 { .. } => {
            // rate = 64 × clock / (16 × d64) = 4 × clock / d64
            let d = ((4 * clock + rate / 2) / rate).max(64);
            (d, 4 * clock / d)
        }
        _ => {
            let d = ((clock + 8 * rate) / (16 * rate)).max(1);
            (d, clock / (16 * d))
        }
    };
    if got.abs_diff(rate) * 100 > rate {
        return (0, 0);
    }
    (d as u32, got as u32)
}

/// The rate a divisor gives (0 when the clock is unknown).
fn rate_of(d: u32) -> u32 {
    match UART_CLOCK {
        Some(c) if d != 0 => match CONSOLE {
            racklet_bsp::Console::Pl011 { .. } => (4 * c as u64 / d as u64) as u32,
            _ => (c as u64 / (16 * d as u64)) as u32,
        },
        _ => 0,
    }
}

/// The loader's own place: from its first byte to the top of its stack.
fn loader_end() -> u64 {
    extern "C" {
        static __stack_top: u8;
    }
    // Only the address of the linker-script symbol is taken.
    core::ptr::addr_of!(__stack_top) as u64
}

/// INFO's fixed fields (§1): version, max block, window, UART clock ...
const INFO_HEAD: [u8; 12] = {
    let mut p = [0u8; 12];
    p[0] = 1;
    let mb = (MAX_BLOCK as u16).to_le_bytes();
    let w = WINDOW.to_le_bytes();
    let c = match UART_CLOCK {
        Some(c) => c,
        None => 0,
    }
    .to_le_bytes();
    let mut i = 0;
    while i < 2 {
        p[4 + i] = mb[i];
        p[6 + i] = w[i];
        i += 1;
    }
    let mut i = 0;
    while i < 4 {
        p[8 + i] = c[i];
        i += 1;
    }
    p
};

/// ... then, after the current rate, image window base and size, loader start.
const INFO_MID: [u8; 24] = {
    let mut p = [0u8; 24];
    let b = (FASTLOAD_WINDOW.base as u64).to_le_bytes();
    let s = (FASTLOAD_WINDOW.size as u64).to_le_bytes();
    let l = (LOAD_ADDRESS as u64).to_le_bytes();
    let mut i = 0;
    while i < 8 {
        p[i] = b[i];
        p[8 + i] = s[i];
        p[16 + i] = l[i];
        i += 1;
    }
    p
};

struct Transfer {
    load: u64,
    entry: u64,
    len: u64,
    block: u64,
    blocks: u32,
    crc: u32,
    have: u32,
}

fn bit(io: &Io, n: u32) -> bool {
    io.bitmap[(n as usize / 8) % (MAX_BLOCKS / 8)] & (1 << (n % 8)) != 0
}

fn mem(addr: u64) -> *mut u8 {
    addr as usize as *mut u8
}

fn main(c: &Ctx) -> Status {
    // SAFETY: the loader runs on one hart with no interrupts; IO is only
    // ever reached through this one reference.
    let io = unsafe { &mut *core::ptr::addr_of_mut!(IO) };
    let uart = &CONSOLE;
    let rom_divisor = uart.divisor();
    c.print("racklet: fastload ");
    c.print(BOARD.name);
    c.print(" ready\n");
    let mut t: Option<Transfer> = None;
    loop {
        let Some((kind, seq, len)) = io.next_frame() else { continue };
        match kind {
            HELLO => {
                t = None;
                let name = BOARD.name.as_bytes();
                let crc = io.begin(INFO, 0, 48 + name.len());
                let crc = io.put(crc, &INFO_HEAD);
                let crc = io.put_u32(crc, rate_of(uart.divisor()));
                let crc = io.put(crc, &INFO_MID);
                let crc = io.put_u64(crc, loader_end());
                let crc = io.put(crc, name);
                io.finish(crc);
            }
            BAUD if len >= 4 => {
                let (d, got) = divisor(le32(&io.frame, 0));
                if d == 0 {
                    io.error(3, "rate");
                    continue;
                }
                let crc = io.begin(BAUD_OK, 0, 8);
                let crc = io.put_u32(crc, got);
                let crc = io.put_u32(crc, d);
                io.finish(crc);
                io.flush();
                let old = uart.divisor();
                uart.set_divisor(d);
                io.rx_len = 0;
                // §3: a good SYNC within 1 s, or back to the old rate.
                let hz = TIMER.hz();
                let t0 = TIMER.ticks();
                let mut synced = false;
                while !synced && TIMER.ticks().wrapping_sub(t0) <= hz {
                    if let Some((k, _, l)) = io.next_frame() {
                        if k == SYNC && l == 8 && io.frame[..8] == SYNC_PATTERN {
                            io.send(SYNC_OK, 0, &SYNC_PATTERN);
                            synced = true;
                        }
                    }
                }
                if !synced {
                    uart.set_divisor(old);
                    io.rx_len = 0;
                    t = None;
                }
            }
            SYNC if len == 8 && io.frame[..8] == SYNC_PATTERN => io.send(SYNC_OK, 0, &SYNC_PATTERN),
            START if len >= 28 => {
                let f = &io.frame;
                let (load, entry, n, block, crc) = (le64(f, 0), le64(f, 8), le32(f, 16) as u64, le32(f, 20) as u64, le32(f, 24));
                let (wb, ws) = (FASTLOAD_WINDOW.base as u64, FASTLOAD_WINDOW.size as u64);
                let end = load.wrapping_add(n);
                if block == 0 || block > MAX_BLOCK as u64 || n.div_ceil(block.max(1)) > MAX_BLOCKS as u64 {
                    io.error(5, "block");
                } else if n == 0
                    || end < load
                    || load < wb
                    || end > wb + ws
                    || (load < loader_end() && end > LOAD_ADDRESS as u64)
                {
                    io.error(2, "window");
                } else {
                    for b in io.bitmap.iter_mut() {
                        // Volatile, so that no memset is linked in for it.
                        // SAFETY: a plain write through a valid reference.
                        unsafe { core::ptr::write_volatile(b, 0) };
                    }
                    t = Some(Transfer { load, entry, len: n, block, blocks: n.div_ceil(block) as u32, crc, have: 0 });
                    io.send(START_OK, 0, &[]);
                }
            }
            DATA => {
                let Some(x) = t.as_mut() else {
                    io.error(4, "no START");
                    continue;
                };
                let off = seq as u64 * x.block;
                if seq >= x.blocks || len as u64 != x.block.min(x.len - off) {
                    io.error(1, "block");
                    continue;
                }
                for (i, &b) in io.frame.iter().take(len).enumerate() {
                    // SAFETY: [load, load + len) was checked against the
                    // image window and the loader's own place at START.
                    unsafe { core::ptr::write_volatile(mem(x.load + off + i as u64), b) };
                }
                // seq < blocks <= MAX_BLOCKS (checked at START).
                io.bitmap[(seq as usize / 8) % (MAX_BLOCKS / 8)] |= 1 << (seq % 8);
                while x.have < x.blocks && bit(io, x.have) {
                    x.have += 1;
                }
                io.send(ACK, seq, &x.have.to_le_bytes());
            }
            END => {
                let Some(x) = t.as_ref() else {
                    io.error(4, "no START");
                    continue;
                };
                if x.have < x.blocks {
                    // Up to 64 missing blocks, lowest first.
                    let (have, blocks) = (x.have, x.blocks);
                    let (mut k, mut b) = (0usize, have);
                    while b < blocks && k < 64 {
                        k += !bit(io, b) as usize;
                        b += 1;
                    }
                    let crc = io.begin(MISSING, 0, 6 + 4 * k);
                    let mut crc = io.put_u32(crc, have);
                    crc = io.put(crc, &(k as u16).to_le_bytes());
                    let (mut j, mut b) = (0usize, have);
                    while b < blocks && j < k {
                        if !bit(io, b) {
                            crc = io.put_u32(crc, b);
                            j += 1;
                        }
                        b += 1;
                    }
                    io.finish(crc);
                } else {
                    let got = image_crc(io, x);
                    let crc = io.begin(DONE, 0, 5);
                    let crc = io.put(crc, &[(got != x.crc) as u8]);
                    let crc = io.put_u32(crc, got);
                    io.finish(crc);
                }
            }
            GO => {
                let ok = t.as_ref().is_some_and(|x| x.have == x.blocks && image_crc(io, x) == x.crc);
                let Some(x) = t.as_ref().filter(|_| ok) else {
                    io.error(4, "image");
                    continue;
                };
                io.send(GO_OK, 0, &x.entry.to_le_bytes());
                io.flush();
                uart.set_divisor(rom_divisor);
                racklet_bsp::enter(x.entry as usize, c.id);
            }
            ABORT => {
                t = None;
                io.flush();
                uart.set_divisor(rom_divisor);
            }
            _ => io.error(1, "type"),
        }
    }
}

/// CRC-32 of the image in memory, serving the UART as it goes.
fn image_crc(io: &mut Io, x: &Transfer) -> u32 {
    let mut crc = !0u32;
    for i in 0..x.len {
        // SAFETY: inside the image checked at START.
        crc = crc_update(crc, unsafe { core::ptr::read_volatile(mem(x.load + i)) });
        if i % 256 == 0 {
            io.pump();
        }
    }
    !crc
}

racklet_bsp::payload!(main, quiet_traps);
