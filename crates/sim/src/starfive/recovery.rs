//! The virtual JH7110 recovery program: what a board runs after the ROM
//! started StarFive's `jh7110-recovery-*.bin` from UART, the program that
//! writes the QSPI flash.
//!
//! Written from the device-side documents, never from a sender:
//! - starfive-tech/Tools README.md and the menu text quoted in
//!   starfive-tech/Tools#6 (fact sheet §3.1): it prints
//!   `JH7110 secondboot version: …`, `CPU freq`, `idcode`, the DDR line,
//!   then the numbered menu (`0: update 2ndboot/SPL in flash`,
//!   `2: update fw_verif/uboot in flash`, …), then
//!   `NOTE: current xmodem receive buff = 0x40000000, 'load 0x********' to change.`
//!   and `select the function to test:`;
//! - a choice prints a line containing `send file by xmodem` and starts an
//!   XMODEM-CRC receive into DRAM at 0x4000_0000; a good transfer is
//!   written to the flash and answered `updata success` (sic);
//! - what xypron/JH71xx-tools `vf2-recover.c` (31ab52d) waits for, in this
//!   order: `JH7110 secondboot version`, `to change.`, then after it sends
//!   `0\r\n` or `2\r\n`, `send file by xmodem`, a `C`, and after its EOT
//!   `updata success`.
//!
//! Where the files go is the flash layout of U-Boot's jh7110_common.rst
//! (sheet §3.3): the SPL, with its 0x400-byte header, at 0 (0xF0000 bytes of
//! room), U-Boot at 0x100000 (0xF00000 bytes). The flash is a 16 MiB SPI NOR
//! ([`FLASH_SIZE`], erased 0xFF) kept as a [`Medium`].
//!
//! U-Boot SPL (known by its bytes, [`super::is_ymodem_spl`]) sent in its
//! place runs as the SPL does, and the board's verdict fails.
//!
//! Not documented, so guessed here (and said so in the README): the exact
//! words of the `send file by xmodem` line and of a failure (here
//! `updata failed: …`, then the menu again, nothing written); that an empty
//! line (the `\n` after vf2-recover's `\r`) and control bytes are ignored; the poll interval of
//! its receiver ([`POLL_INTERVAL`]) and how long it polls before giving up
//! ([`MAX_POLLS`]); whether it checks the SPL's header (it does not here:
//! it writes what it received, padding included); entries 1, 3 and 4 (eMMC
//! and OTP) are refused by this virtual board.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Fault, Rom, SOH, STX, Stop, Wire};
use crate::storage::Medium;

/// The QSPI NOR flash of a VisionFive 2 (16 MiB).
pub const FLASH_SIZE: u64 = 16 << 20;
/// Where menu entry 0 writes the SPL, and how much room it has.
pub const SPL_OFFSET: u64 = 0;
pub const SPL_ROOM: u64 = 0xF_0000;
/// Where menu entry 2 writes U-Boot, and how much room it has.
pub const UBOOT_OFFSET: u64 = 0x10_0000;
pub const UBOOT_ROOM: u64 = 0xF0_0000;
/// Time between two `C` polls of the recovery program's receiver (a guess).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Polls before it gives up and shows the menu again (a guess).
pub const MAX_POLLS: u32 = 60;

/// The program's greeting: the lines sheet §3.1 quotes.
pub const GREETING: &str = "\r\nJH7110 secondboot version: 230322-c514da9\r\nCPU freq: 1250MHz\r\nidcode: 0x1860C8\r\nddr 0x00000000, 4M test\r\nddr 0x00400000, 8M test\r\nDDR clk 2133M, size 4GB\r\n";
/// The menu, each time it is shown.
pub const MENU: &str = "\r\n*********************************************************\r\n****************** JH7110 program tool ******************\r\n*********************************************************\r\n0: update 2ndboot/SPL in flash\r\n1: update 2ndboot/SPL in emmc\r\n2: update fw_verif/uboot in flash\r\n3: update fw_verif/uboot in emmc\r\n4: update otp, caution!!!!\r\n5: exit\r\nNOTE: current xmodem receive buff = 0x40000000, 'load 0x********' to change.\r\nselect the function to test: ";

/// The virtual board's QSPI flash, shared with whoever asks for the verdict.
pub type Flash = Arc<Mutex<Medium>>;

/// A blank flash in memory (erased 0xFF).
pub fn blank_flash() -> Flash {
    Arc::new(Mutex::new(Medium::in_memory(FLASH_SIZE, 0xFF)))
}

/// One menu entry's update that reached the flash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The menu's words for it (`2ndboot/SPL`, `fw_verif/uboot`).
    pub what: &'static str,
    pub offset: u64,
    /// Bytes written (what XMODEM carried, padding included).
    pub bytes: u64,
}

/// What the recovery program did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub updates: Vec<Update>,
    /// Updates that did not reach the flash, in the program's words.
    pub failures: Vec<String>,
}

impl RecoveryReport {
    /// The board's verdict on the writes.
    pub fn verdict(&self) -> Result<String, String> {
        if !self.failures.is_empty() {
            return Err(format!("the recovery program's update failed: {}", self.failures.join("; ")));
        }
        if self.updates.is_empty() {
            return Err("the recovery program started but wrote nothing to its SPI flash".into());
        }
        let w: Vec<String> = self
            .updates
            .iter()
            .map(|u| format!("{} ({} bytes) at 0x{:x}", u.what, u.bytes, u.offset))
            .collect();
        Ok(format!("the recovery program wrote {} of its 16 MiB SPI flash", w.join(" and ")))
    }
}

/// A flash entry of the menu.
struct Entry {
    what: &'static str,
    offset: u64,
    room: u64,
}

impl<W: Wire> Rom<W> {
    fn recovery_note(&self, f: impl FnOnce(&mut RecoveryReport)) {
        let mut r = self.report();
        f(r.recovery.get_or_insert_with(RecoveryReport::default));
    }

    /// Reads a line (ended by CR or LF); `None` when the line is empty.
    fn menu_line(&mut self) -> Result<Option<String>, Stop> {
        let mut line = Vec::new();
        loop {
            match self.byte(Duration::from_secs(3600))? {
                Some(b'\r' | b'\n') => break,
                // What is left of a transfer (a second CAN, a late EOT) is
                // not typed text.
                Some(b) if !b.is_ascii_graphic() && b != b' ' => {}
                Some(b) => {
                    // The program echoes what is typed.
                    self.send(&[b])?;
                    line.push(b);
                }
                None => {}
            }
        }
        let s = String::from_utf8_lossy(&line).trim().to_string();
        Ok((!s.is_empty()).then_some(s))
    }

    /// The recovery program, from its greeting on.
    pub(super) fn recovery(&mut self, flash: Flash) -> Result<(), Stop> {
        self.recovery_note(|_| {});
        self.send(GREETING.as_bytes())?;
        if self.cfg.fault == Fault::RecoveryNoMenu {
            loop {
                self.byte(Duration::from_secs(3600))?;
            }
        }
        self.send(MENU.as_bytes())?;
        loop {
            let Some(choice) = self.menu_line()? else { continue };
            self.send(b"\r\n")?;
            let entry = match choice.as_str() {
                "0" => Entry { what: "2ndboot/SPL", offset: SPL_OFFSET, room: SPL_ROOM },
                "2" => Entry { what: "fw_verif/uboot", offset: UBOOT_OFFSET, room: UBOOT_ROOM },
                "5" => {
                    self.send(b"exit\r\n")?;
                    return Ok(());
                }
                other => {
                    self.send(format!("'{other}' is not offered by this virtual board\r\n").as_bytes())?;
                    self.send(MENU.as_bytes())?;
                    continue;
                }
            };
            self.update(&entry, &flash)?;
            self.send(MENU.as_bytes())?;
        }
    }

    /// One flash update: receive by XMODEM, write, say so.
    fn update(&mut self, e: &Entry, flash: &Flash) -> Result<(), Stop> {
        self.send(format!("{}: send file by xmodem\r\n", e.what).as_bytes())?;
        let Some(first) = self.recovery_poll()? else {
            return self.update_failed(e, "no xmodem transfer started".into());
        };
        let session = match self.receive(first, false)? {
            Some(s) => s,
            None => return self.update_failed(e, "xmodem receive broke off".into()),
        };
        if let Err(why) = &session.verdict {
            return self.update_failed(e, format!("xmodem receive failed: {why}"));
        }
        let data = session.received;
        if self.cfg.fault == Fault::RecoveryUbootFails && e.offset == UBOOT_OFFSET {
            return self.update_failed(e, "flash program error".into());
        }
        if data.len() as u64 > e.room {
            let why = format!("{} bytes do not fit the 0x{:x} bytes at 0x{:x}", data.len(), e.room, e.offset);
            return self.update_failed(e, why);
        }
        let written = flash.lock().unwrap_or_else(|p| p.into_inner()).write(e.offset, &data);
        if let Err(why) = written {
            return self.update_failed(e, why.to_string());
        }
        self.recovery_note(|r| {
            r.updates.push(Update { what: e.what, offset: e.offset, bytes: data.len() as u64 })
        });
        self.send(b"updata success\r\n")
    }

    fn update_failed(&mut self, e: &Entry, why: String) -> Result<(), Stop> {
        self.send(format!("updata failed: {why}\r\n").as_bytes())?;
        self.recovery_note(|r| r.failures.push(format!("{}: {why}", e.what)));
        Ok(())
    }

    /// Polls with `C` until a frame starts; `None` after [`MAX_POLLS`].
    fn recovery_poll(&mut self) -> Result<Option<u8>, Stop> {
        for _ in 0..MAX_POLLS {
            self.send(b"C")?;
            let until = Instant::now() + POLL_INTERVAL;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                if let Some(b @ (SOH | STX)) = self.byte(left)? {
                    return Ok(Some(b));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc::{Receiver, channel};

    use super::super::testwire::{ChanWire, frame};
    use super::super::{RomConfig, RomReport, Rx};
    use super::*;

    /// Reads what the program printed until it contains `want`; keeps what
    /// came after it.
    fn expect(from: &Receiver<Vec<u8>>, got: &mut Vec<u8>, want: &[u8]) {
        loop {
            if let Some(at) = got.windows(want.len()).position(|w| w == want) {
                got.drain(..at + want.len());
                return;
            }
            let more = from.recv_timeout(Duration::from_secs(10));
            got.extend(more.unwrap_or_else(|_| panic!("silent, waiting for {want:?}")));
        }
    }

    /// vf2-recover's dialogue with the program: a cancelled transfer is
    /// refused (nothing written, the menu again); the next one is written
    /// at the SPL's offset and confirmed with `updata success`.
    #[test]
    fn a_cancelled_transfer_writes_nothing_and_the_next_one_is_written() {
        let (host_tx, from_host) = channel();
        let (to_host, host_rx) = channel();
        let report = Arc::new(Mutex::new(RomReport::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut rom = Rom {
            rx: Rx { wire: ChanWire { from_host, pending: VecDeque::new(), to_host }, buf: VecDeque::new() },
            cfg: RomConfig { line_rate: None, ..Default::default() },
            stop: stop.clone(),
            report: report.clone(),
            fastload: Arc::default(),
            line: crate::fastload::Line::new(115_200, false),
            corrupted: false,
            restarted: false,
        };
        let flash = blank_flash();
        let f2 = flash.clone();
        let t = std::thread::spawn(move || {
            let _ = rom.recovery(f2);
        });
        let mut got = Vec::new();
        expect(&host_rx, &mut got, b"JH7110 secondboot version");
        expect(&host_rx, &mut got, b"to change.");
        host_tx.send(b"0\r\n".to_vec()).unwrap();
        expect(&host_rx, &mut got, b"send file by xmodem");
        expect(&host_rx, &mut got, b"C");
        host_tx.send(frame(1, &[0x11; 128])).unwrap();
        expect(&host_rx, &mut got, &[0x06]);
        host_tx.send(vec![0x18, 0x18]).unwrap();
        expect(&host_rx, &mut got, b"updata failed");
        expect(&host_rx, &mut got, b"to change.");
        assert_eq!(flash.lock().unwrap().read(0, 4).unwrap(), [0xFF; 4], "nothing written");
        host_tx.send(b"0\r\n".to_vec()).unwrap();
        expect(&host_rx, &mut got, b"C");
        host_tx.send(frame(1, &[0x22; 128])).unwrap();
        expect(&host_rx, &mut got, &[0x06]);
        host_tx.send(frame(2, b"tail")).unwrap();
        expect(&host_rx, &mut got, &[0x06]);
        host_tx.send(vec![0x04]).unwrap();
        expect(&host_rx, &mut got, b"updata success");
        let m = flash.lock().unwrap();
        assert_eq!(m.read(0, 128).unwrap(), [0x22; 128]);
        assert_eq!(m.read(128, 5).unwrap(), b"tail\x1a");
        drop(m);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        t.join().unwrap();
        let r = report.lock().unwrap().recovery.clone().unwrap();
        assert_eq!(r.updates, [Update { what: "2ndboot/SPL", offset: 0, bytes: 256 }]);
        assert_eq!(r.failures.len(), 1, "{r:?}");
        assert!(r.verdict().is_err(), "a failed update fails the board's verdict");
    }

    #[test]
    fn the_verdict_needs_a_write_and_no_failure() {
        let mut r = RecoveryReport::default();
        assert!(r.verdict().unwrap_err().contains("wrote nothing"));
        r.updates.push(Update { what: "2ndboot/SPL", offset: 0, bytes: 1152 });
        r.updates.push(Update { what: "fw_verif/uboot", offset: 0x100000, bytes: 4096 });
        let v = r.verdict().unwrap();
        assert!(
            v.contains("2ndboot/SPL (1152 bytes) at 0x0 and fw_verif/uboot (4096 bytes) at 0x100000"),
            "{v}"
        );
        r.failures.push("fw_verif/uboot: xmodem receive broke off".into());
        assert!(r.verdict().unwrap_err().contains("broke off"));
    }
}
