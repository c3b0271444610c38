//! What the receivers' unit tests share: a wire the test feeds, and an
//! XMODEM-CRC frame written from the protocol (not from a receiver here).

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use super::Wire;
use crate::crc::crc16_xmodem;

/// A wire fed by the test, one chunk at a time.
pub(super) struct ChanWire {
    pub from_host: Receiver<Vec<u8>>,
    pub pending: VecDeque<u8>,
    pub to_host: Sender<Vec<u8>>,
}

impl Wire for ChanWire {
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        if self.pending.is_empty()
            && let Ok(v) = self.from_host.recv_timeout(timeout)
        {
            self.pending.extend(v);
        }
        let n = buf.len().min(self.pending.len());
        for (i, b) in self.pending.drain(..n).enumerate() {
            buf[i] = b;
        }
        Ok(n)
    }
    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        let _ = self.to_host.send(data.to_vec());
        Ok(())
    }
}

/// XMODEM block `n` of 128 bytes (padded with 0x1A) with its CRC-16.
pub(super) fn frame(n: u8, data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    d.resize(128, 0x1A);
    let mut f = vec![0x01, n, 255 - n];
    f.extend_from_slice(&d);
    f.extend_from_slice(&crc16_xmodem(&d).to_be_bytes());
    f
}
