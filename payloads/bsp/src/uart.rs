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

// Receive side and rate control, for the fastload loader. The DesignWare
// APB UART is 16550-compatible here: LCR.DLAB (bit 7) opens DLL/DLM at
// offsets 0/1; it ignores LCR writes while busy, so the divisor is changed
// only with the transmitter empty (LSR.TEMT) after the RX FIFO is drained.
const UART_DLL: usize = 0;
const UART_DLM: usize = 1;
const UART_LCR: usize = 3;
const LCR_DLAB: u32 = 1 << 7;
const LSR_DR: u32 = 1 << 0; // data ready
const LSR_TEMT: u32 = 1 << 6; // transmitter empty

const FR_RXFE: u32 = 1 << 4; // receive FIFO empty
const FR_BUSY: u32 = 1 << 3;
const PL011_IBRD: usize = 0x24;
const PL011_FBRD: usize = 0x28;
const PL011_LCR_H: usize = 0x2C;
const PL011_CR: usize = 0x30;

impl Console {
    fn reg_read(&self, base: usize, stride: usize, reg: usize) -> u32 {
        if stride == 1 {
            mmio_read8(base + reg) as u32
        } else {
            mmio_read32(base + reg * stride)
        }
    }

    fn reg_write(&self, base: usize, stride: usize, reg: usize, v: u32) {
        if stride == 1 {
            mmio_write8(base + reg, v as u8)
        } else {
            mmio_write32(base + reg * stride, v)
        }
    }

    /// A received byte, if one is waiting.
    pub fn try_getb(&self) -> Option<u8> {
        match *self {
            Console::Uart8250 { base, stride } => {
                if self.reg_read(base, stride, UART_LSR) & LSR_DR != 0 {
                    Some(self.reg_read(base, stride, UART_THR) as u8)
                } else {
                    None
                }
            }
            Console::Pl011 { base } => {
                if mmio_read32(base + PL011_FR) & FR_RXFE == 0 {
                    Some(mmio_read32(base + PL011_DR) as u8)
                } else {
                    None
                }
            }
        }
    }

    /// Whether one more byte can be written now without waiting.
    pub fn tx_ready(&self) -> bool {
        match *self {
            Console::Uart8250 { base, stride } => self.reg_read(base, stride, UART_LSR) & LSR_THRE != 0,
            Console::Pl011 { base } => mmio_read32(base + PL011_FR) & FR_TXFF == 0,
        }
    }

    /// Writes one byte without waiting; call when [`Console::tx_ready`].
    pub fn put_now(&self, b: u8) {
        match *self {
            Console::Uart8250 { base, stride } => self.reg_write(base, stride, UART_THR, b as u32),
            Console::Pl011 { base } => mmio_write32(base + PL011_DR, b as u32),
        }
    }

    /// Whether every written byte has left the transmitter.
    pub fn tx_idle(&self) -> bool {
        match *self {
            Console::Uart8250 { base, stride } => self.reg_read(base, stride, UART_LSR) & LSR_TEMT != 0,
            Console::Pl011 { base } => mmio_read32(base + PL011_FR) & FR_BUSY == 0,
        }
    }

    /// The divisor now set: 8250 DLM:DLL; PL011 IBRD × 64 + FBRD.
    pub fn divisor(&self) -> u32 {
        match *self {
            Console::Uart8250 { base, stride } => {
                let lcr = self.reg_read(base, stride, UART_LCR);
                self.reg_write(base, stride, UART_LCR, lcr | LCR_DLAB);
                let d = self.reg_read(base, stride, UART_DLL) & 0xff
                    | (self.reg_read(base, stride, UART_DLM) & 0xff) << 8;
                self.reg_write(base, stride, UART_LCR, lcr);
                d
            }
            Console::Pl011 { base } => {
                (mmio_read32(base + PL011_IBRD) & 0xffff) << 6 | mmio_read32(base + PL011_FBRD) & 0x3f
            }
        }
    }

    /// Sets the divisor (as [`Console::divisor`] reads it), keeping the
    /// frame format. Waits for the transmitter to be empty first.
    pub fn set_divisor(&self, d: u32) {
        while !self.tx_idle() {}
        match *self {
            Console::Uart8250 { base, stride } => {
                let lcr = self.reg_read(base, stride, UART_LCR);
                self.reg_write(base, stride, UART_LCR, lcr | LCR_DLAB);
                self.reg_write(base, stride, UART_DLL, d & 0xff);
                self.reg_write(base, stride, UART_DLM, (d >> 8) & 0xff);
                self.reg_write(base, stride, UART_LCR, lcr);
            }
            Console::Pl011 { base } => {
                // The PL011 takes new divisors with the UART off, latched by
                // a write of LCR_H.
                let cr = mmio_read32(base + PL011_CR);
                mmio_write32(base + PL011_CR, cr & !1);
                mmio_write32(base + PL011_IBRD, d >> 6);
                mmio_write32(base + PL011_FBRD, d & 0x3f);
                let lcr = mmio_read32(base + PL011_LCR_H);
                mmio_write32(base + PL011_LCR_H, lcr);
                mmio_write32(base + PL011_CR, cr);
            }
        }
    }
}
