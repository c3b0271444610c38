//! Polled UART output. The boot ROM has already set the baud rate on every
//! supported board, so the drivers only wait for room and write.

/// A board's console UART.
#[derive(Clone, Copy)]
pub enum Console {
    /// 8250/16550 register layout with registers `stride` bytes apart:
    /// 4 means 32-bit accesses (DesignWare APB UART, PXA), 1 byte accesses.
    Uart8250 { base: usize, stride: usize },
    /// Arm PrimeCell PL011.
    Pl011 { base: usize },
}

const UART_THR: usize = 0; // transmit holding register
const UART_LSR: usize = 5; // line status register
const LSR_THRE: u32 = 1 << 5; // THR empty

const PL011_DR: usize = 0x00;
const PL011_FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5; // transmit FIFO full

/// Reads a 32-bit device register.
pub(crate) fn mmio_read32(addr: usize) -> u32 {
    // SAFETY: only called with register addresses from the board table,
    // which name device registers that are always mapped (MMU off).
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes a 32-bit device register.
pub(crate) fn mmio_write32(addr: usize, v: u32) {
    // SAFETY: as for mmio_read32.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn mmio_read8(addr: usize) -> u8 {
    // SAFETY: as for mmio_read32.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

fn mmio_write8(addr: usize, v: u8) {
    // SAFETY: as for mmio_read32.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) }
}

impl Console {
    /// Sends one byte, waiting for room first.
    pub fn putb(&self, b: u8) {
        match *self {
            Console::Uart8250 { base, stride } => {
                let lsr = base + UART_LSR * stride;
                let thr = base + UART_THR * stride;
                if stride == 1 {
                    while mmio_read8(lsr) as u32 & LSR_THRE == 0 {}
                    mmio_write8(thr, b);
                } else {
                    while mmio_read32(lsr) & LSR_THRE == 0 {}
                    mmio_write32(thr, b as u32);
                }
            }
            Console::Pl011 { base } => {
                while mmio_read32(base + PL011_FR) & FR_TXFF != 0 {}
                mmio_write32(base + PL011_DR, b as u32);
            }
        }
    }

    /// Sends a string, turning `\n` into `\r\n`.
    pub fn write_str(&self, s: &str) {
        for &b in s.as_bytes() {
            if b == b'\n' {
                self.putb(b'\r');
            }
            self.putb(b);
        }
    }

    /// `0x` and the value in lower-case hex, no leading zeros.
    pub fn write_hex(&self, v: u64) {
        self.write_str("0x");
        let mut started = false;
        for shift in (0..16).rev() {
            let d = ((v >> (shift * 4)) & 0xf) as u8;
            if d != 0 || started || shift == 0 {
                started = true;
                self.putb(if d < 10 { b'0' + d } else { b'a' + d - 10 });
            }
        }
    }

    /// The value in decimal.
    pub fn write_dec(&self, v: u64) {
        let mut buf = [0u8; 20];
        let mut n = v;
        let mut len = 0;
        for slot in buf.iter_mut() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
            len += 1;
            if n == 0 {
                break;
            }
        }
        for &d in buf[..len].iter().rev() {
            self.putb(d);
        }
    }
}
