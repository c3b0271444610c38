//! The test kit (feature `testing`): scripted links and progress sinks, so
//! tests do not each write their own. Dev-depend on
//! `racklet-link = { workspace = true, features = ["testing"] }`.
//!
//! These are fakes for unit tests of codecs and error paths. Whole flows are
//! tested against the virtual ROMs of racklet-sim instead, which behave as
//! the devices do.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{ControlSetup, LinkError, ProgressEvent, ProgressSink, SerialInfo, SerialLink, UsbInfo, UsbLink};

/// One transfer a [`ScriptedUsb`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    ControlOut { setup: ControlSetup, data: Vec<u8> },
    ControlIn { setup: ControlSetup, len: u16 },
    BulkOut { ep: u8, data: Vec<u8> },
    BulkIn { ep: u8, max_len: usize },
}

/// A USB link that records every transfer and answers from a script:
/// each IN transfer takes the next entry of `replies` (an empty script
/// answers a timeout), each OUT transfer the next of `out_results` (an empty
/// script accepts).
#[derive(Debug, Default)]
pub struct ScriptedUsb {
    pub info: UsbInfo,
    pub log: Vec<Transfer>,
    pub replies: VecDeque<Result<Vec<u8>, LinkError>>,
    pub out_results: VecDeque<Result<(), LinkError>>,
}

impl ScriptedUsb {
    /// A link that accepts everything and has no IN data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues the answer of the next IN transfer.
    pub fn reply(mut self, r: Result<Vec<u8>, LinkError>) -> Self {
        self.replies.push_back(r);
        self
    }

    /// Queues the result of the next OUT transfer.
    pub fn then_out(mut self, r: Result<(), LinkError>) -> Self {
        self.out_results.push_back(r);
        self
    }

    /// The data of every OUT transfer (control and bulk), in order.
    pub fn sent(&self) -> Vec<&[u8]> {
        self.log
            .iter()
            .filter_map(|t| match t {
                Transfer::ControlOut { data, .. } | Transfer::BulkOut { data, .. } => Some(data.as_slice()),
                _ => None,
            })
            .collect()
    }

    fn next_in(&mut self, op: &str, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        self.replies.pop_front().unwrap_or_else(|| Err(LinkError::Timeout { op: op.into(), after: timeout }))
    }
}

impl UsbLink for ScriptedUsb {
    fn info(&self) -> &UsbInfo {
        &self.info
    }

    fn control_out(&mut self, setup: ControlSetup, data: &[u8], _timeout: Duration) -> Result<(), LinkError> {
        self.log.push(Transfer::ControlOut { setup, data: data.to_vec() });
        self.out_results.pop_front().unwrap_or(Ok(()))
    }

    fn control_in(&mut self, setup: ControlSetup, len: u16, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        self.log.push(Transfer::ControlIn { setup, len });
        self.next_in("control IN", timeout)
    }

    fn bulk_out(&mut self, ep: u8, data: &[u8], _timeout: Duration) -> Result<(), LinkError> {
        self.log.push(Transfer::BulkOut { ep, data: data.to_vec() });
        self.out_results.pop_front().unwrap_or(Ok(()))
    }

    fn bulk_in(&mut self, ep: u8, max_len: usize, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        self.log.push(Transfer::BulkIn { ep, max_len });
        self.next_in("bulk IN", timeout)
    }
}

/// A serial link that records what was written and reads from a script of
/// chunks (an empty script times out; `Err` entries are returned as is).
#[derive(Debug, Default)]
pub struct ScriptedSerial {
    pub info: SerialInfo,
    pub written: Vec<u8>,
    pub incoming: VecDeque<Result<Vec<u8>, LinkError>>,
    pub baud: Option<u32>,
}

impl ScriptedSerial {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues bytes for the next read.
    pub fn feed(mut self, bytes: &[u8]) -> Self {
        self.incoming.push_back(Ok(bytes.to_vec()));
        self
    }
}

impl SerialLink for ScriptedSerial {
    fn info(&self) -> &SerialInfo {
        &self.info
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), LinkError> {
        self.written.extend_from_slice(data);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        match self.incoming.pop_front() {
            None => Err(LinkError::Timeout { op: "reading".into(), after: timeout }),
            Some(Err(e)) => Err(e),
            Some(Ok(mut chunk)) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.incoming.push_front(Ok(chunk.split_off(n)));
                }
                Ok(n)
            }
        }
    }

    fn set_baud(&mut self, baud: u32) -> Result<(), LinkError> {
        self.baud = Some(baud);
        Ok(())
    }

    fn clear_input(&mut self) -> Result<(), LinkError> {
        Ok(())
    }
}

/// A progress sink that keeps every event.
#[derive(Debug, Default)]
pub struct CollectProgress {
    pub events: Vec<ProgressEvent>,
}

impl CollectProgress {
    /// Every message text, in order.
    pub fn messages(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ProgressEvent::Message { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The bytes reported by `Advance` events.
    pub fn bytes(&self) -> u64 {
        self.events.iter().map(|e| if let ProgressEvent::Advance { bytes } = e { *bytes } else { 0 }).sum()
    }
}

impl ProgressSink for CollectProgress {
    fn event(&mut self, event: ProgressEvent) {
        self.events.push(event);
    }
}

/// A progress sink that says "cancelled" once it has seen `after` events
/// (0: from the start), as Ctrl-C would between transfers.
#[derive(Debug, Default)]
pub struct CancelAfter {
    pub after: usize,
    pub seen: usize,
}

impl CancelAfter {
    pub fn new(after: usize) -> Self {
        CancelAfter { after, seen: 0 }
    }
}

impl ProgressSink for CancelAfter {
    fn event(&mut self, _event: ProgressEvent) {
        self.seen += 1;
    }

    fn cancelled(&self) -> bool {
        self.seen >= self.after
    }
}
