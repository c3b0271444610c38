//! The fastboot command set over any [`Transport`].

use std::time::Duration;

use racklet_link::{LinkError, ProgressSink};

use crate::response::{Response, ResponseError, parse_response, parse_size};
use crate::transport::Transport;
use crate::{FastbootError, MAX_COMMAND, RESPONSE_READ};

/// Timeouts of each step. The spec defines none; these follow the fact
/// sheet's suggestions (§1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Sending a command and waiting for each response packet.
    pub command: Duration,
    /// Waiting for each response after `flash`, `erase` and `oem`, which may
    /// work for minutes (INFO lines restart the wait).
    pub long: Duration,
    /// The slowest data rate tolerated, in bytes per second: each data
    /// chunk may take `command + chunk / min_rate`. Full-speed USB (the K1
    /// ROM's fallback mode) moves about 1 MB/s, so 256 KiB/s leaves margin.
    pub min_rate: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { command: Duration::from_secs(5), long: Duration::from_secs(60), min_rate: 256 * 1024 }
    }
}

/// Bytes sent per data-phase packet: a multiple of every USB max packet
/// size (64, 512, 1024), so only the last packet is short; progress and
/// Ctrl-C are checked between packets.
pub const DATA_CHUNK: usize = 1024 * 1024;

/// Empty packets in a row that end an upload's data phase.
const MAX_EMPTY_PACKETS: u32 = 16;

/// What happened after `continue` or `reboot`: the device may vanish
/// before the host reads its OKAY (sheet §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Departure {
    /// The device answered OKAY.
    Acknowledged,
    /// The link failed right after the command went out; the device most
    /// likely left to run the image.
    Vanished,
}

/// A fastboot client.
pub struct Fastboot<T> {
    transport: T,
    /// Timeouts of every step.
    pub timeouts: Timeouts,
    /// The INFO lines of the last command, in order.
    info: Vec<String>,
}

fn check_command(cmd: &str) -> Result<(), FastbootError> {
    if !cmd.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(FastbootError::BadCommand { command: cmd.into() });
    }
    if cmd.len() > MAX_COMMAND {
        return Err(FastbootError::CommandTooLong { command: cmd.into(), len: cmd.len() });
    }
    Ok(())
}

/// `name: value` of a `getvar:all` INFO line, split at the first `": "`
/// (names such as `partition-size:boot` hold colons of their own); a line
/// without one is a name with an empty value.
pub fn split_var(line: &str) -> (String, String) {
    match line.split_once(": ") {
        Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
        None => (line.trim().trim_end_matches(':').to_string(), String::new()),
    }
}

fn status_name(r: &Response) -> &'static str {
    match r {
        Response::Okay(_) => "OKAY",
        Response::Fail(_) => "FAIL",
        Response::Data(_) => "DATA",
        Response::Info(_) => "INFO",
        Response::Text(_) => "TEXT",
    }
}

impl<T: Transport> Fastboot<T> {
    /// A client with the default timeouts.
    pub fn new(transport: T) -> Self {
        Fastboot { transport, timeouts: Timeouts::default(), info: Vec::new() }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    fn data_timeout(&self, len: usize) -> Duration {
        let rate = self.timeouts.min_rate.max(1);
        self.timeouts.command + Duration::from_millis((len as u64).saturating_mul(1000) / rate)
    }

    /// Sends one command (checked: printable ASCII, at most 64 bytes).
    fn send_command(&mut self, cmd: &str) -> Result<(), FastbootError> {
        check_command(cmd)?;
        self.info.clear();
        self.transport.send(cmd.as_bytes(), self.timeouts.command)
    }

    /// Reads responses until a final one (OKAY, FAIL, DATA); INFO and TEXT
    /// go to `progress`. FAIL becomes [`FastbootError::Failed`] with the device's
    /// message.
    fn read_final(
        &mut self,
        cmd: &str,
        timeout: Duration,
        progress: &mut dyn ProgressSink,
    ) -> Result<Response, FastbootError> {
        // Zero-length reads carry no reply and are skipped (AOSP does the
        // same), but only until the reply's own timeout has passed.
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let raw = self.transport.recv_answer(RESPONSE_READ, timeout).map_err(|e| match e {
                FastbootError::ResponseTooLong { len, .. } => {
                    FastbootError::ResponseTooLong { command: cmd.into(), len }
                }
                FastbootError::Link(LinkError::Timeout { op, after }) => {
                    FastbootError::Link(LinkError::Timeout {
                        op: format!("waiting for the answer to {cmd:?}: {op}"),
                        after,
                    })
                }
                e => e,
            })?;
            if raw.is_empty() && std::time::Instant::now() < deadline {
                continue;
            }
            let r = parse_response(&raw).map_err(|e| match e {
                ResponseError::UnknownStatus(response) => {
                    FastbootError::UnknownStatus { command: cmd.into(), response }
                }
                ResponseError::TooLong(len) => FastbootError::ResponseTooLong { command: cmd.into(), len },
                ResponseError::BadDataSize(text) => FastbootError::BadDataSize { command: cmd.into(), text },
            })?;
            match r {
                Response::Info(t) => {
                    progress.say(format!("(bootloader) {t}"));
                    self.info.push(t);
                }
                Response::Text(t) => progress.say(t),
                Response::Fail(message) => {
                    return Err(FastbootError::Failed { command: cmd.into(), message });
                }
                r => return Ok(r),
            }
        }
    }

    fn okay(
        &mut self,
        cmd: &str,
        timeout: Duration,
        progress: &mut dyn ProgressSink,
    ) -> Result<String, FastbootError> {
        self.send_command(cmd)?;
        match self.read_final(cmd, timeout, progress)? {
            Response::Okay(v) => Ok(v),
            r => Err(FastbootError::Unexpected { command: cmd.into(), status: status_name(&r).into() }),
        }
    }

    /// Any command that ends in OKAY; returns the OKAY payload.
    pub fn raw(&mut self, cmd: &str, progress: &mut dyn ProgressSink) -> Result<String, FastbootError> {
        let t = self.timeouts.long;
        self.okay(cmd, t, progress)
    }

    /// `getvar:NAME`.
    pub fn getvar(&mut self, name: &str, progress: &mut dyn ProgressSink) -> Result<String, FastbootError> {
        let t = self.timeouts.command;
        self.okay(&format!("getvar:{name}"), t, progress)
    }

    /// `getvar:NAME`, with FAIL (unknown variable) as `None`. Old devices
    /// answer an empty OKAY for unknown variables; that is `None` too.
    pub fn getvar_opt(
        &mut self,
        name: &str,
        progress: &mut dyn ProgressSink,
    ) -> Result<Option<String>, FastbootError> {
        match self.getvar(name, progress) {
            Ok(v) if v.is_empty() => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(FastbootError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The INFO lines the device sent for the last command (`oem` output,
    /// `getvar:all`'s variables), in order.
    pub fn last_info(&self) -> &[String] {
        &self.info
    }

    /// `getvar:all`: every variable the device lists, one `INFO<name>:
    /// <value>` line each, then OKAY (AOSP's README; U-Boot's
    /// `fastboot_getvar_all`). `None` when the device FAILs it (vendor
    /// U-Boots older than that answer "Variable not implemented").
    pub fn getvar_all(
        &mut self,
        progress: &mut dyn ProgressSink,
    ) -> Result<Option<Vec<(String, String)>>, FastbootError> {
        match self.getvar("all", progress) {
            Ok(_) => Ok(Some(self.info.iter().map(|l| split_var(l)).collect())),
            Err(FastbootError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `getvar:max-download-size`: `None` when the device does not say,
    /// says something that is not a number, or says 0 (no limit).
    pub fn max_download_size(
        &mut self,
        progress: &mut dyn ProgressSink,
    ) -> Result<Option<u64>, FastbootError> {
        Ok(self.getvar_opt("max-download-size", progress)?.and_then(|v| parse_size(&v)).filter(|&m| m > 0))
    }

    /// `download:%08x` and the device's `DATA` for exactly `len` bytes: the
    /// data phase may begin. Returns the command, for the answer at the end.
    fn data_phase(
        &mut self,
        what: &str,
        len: u32,
        progress: &mut dyn ProgressSink,
    ) -> Result<String, FastbootError> {
        let cmd = format!("download:{len:08x}");
        self.send_command(&cmd)?;
        let t = self.timeouts.command;
        match self.read_final(&cmd, t, progress)? {
            Response::Data(n) if n == len => {}
            Response::Data(n) => {
                return Err(FastbootError::DataSizeMismatch { command: cmd, wanted: len, accepted: n });
            }
            r => return Err(FastbootError::Unexpected { command: cmd, status: status_name(&r).into() }),
        }
        progress.stage(what, Some(len.into()));
        Ok(cmd)
    }

    /// The device's OKAY after the data phase of `cmd`.
    fn data_done(
        &mut self,
        what: &str,
        cmd: &str,
        progress: &mut dyn ProgressSink,
    ) -> Result<(), FastbootError> {
        let t = self.timeouts.command;
        match self.read_final(cmd, t, progress)? {
            Response::Okay(_) => {}
            r => {
                return Err(FastbootError::Unexpected {
                    command: cmd.into(),
                    status: status_name(&r).into(),
                });
            }
        }
        progress.done(what);
        Ok(())
    }

    /// `download:%08x`, the data, then the device's OKAY. `what` names the
    /// data in progress and errors.
    pub fn download(
        &mut self,
        what: &str,
        data: &[u8],
        progress: &mut dyn ProgressSink,
    ) -> Result<(), FastbootError> {
        let len = u32::try_from(data.len()).map_err(|_| FastbootError::TooLarge {
            what: what.into(),
            size: data.len() as u64,
            max: u32::MAX.into(),
        })?;
        let cmd = self.data_phase(what, len, progress)?;
        for chunk in data.chunks(DATA_CHUNK) {
            progress.check_cancel()?;
            let t = self.data_timeout(chunk.len());
            self.transport.send_data(chunk, t)?;
            progress.advance(chunk.len() as u64);
        }
        self.data_done(what, &cmd, progress)
    }

    /// `download:%08x` of `len` bytes read from `src` as they are sent (an
    /// image far larger than memory), then the device's OKAY. A second
    /// thread reads the next chunk while the current one is on the wire, so
    /// the bus does not wait for the disk.
    pub fn download_from(
        &mut self,
        what: &str,
        len: u32,
        src: &mut (dyn std::io::Read + Send),
        progress: &mut dyn ProgressSink,
    ) -> Result<(), FastbootError> {
        let cmd = self.data_phase(what, len, progress)?;
        let chunk = DATA_CHUNK.min(len as usize).max(1);
        std::thread::scope(|s| -> Result<(), FastbootError> {
            // Two chunks ahead at most; a send error drops `rx` and ends the
            // reader. Sent buffers come back to be filled again.
            let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(2);
            let (back, spare) = std::sync::mpsc::channel::<Vec<u8>>();
            s.spawn(move || {
                let mut left = len as usize;
                while left > 0 {
                    let mut buf = spare.try_recv().unwrap_or_default();
                    buf.resize(left.min(chunk), 0);
                    let r = src.read_exact(&mut buf).map(|_| buf);
                    let failed = r.is_err();
                    left -= left.min(chunk);
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                }
            });
            for r in rx {
                progress.check_cancel()?;
                let buf = r.map_err(|source| FastbootError::ReadInput { what: what.into(), source })?;
                let t = self.data_timeout(buf.len());
                self.transport.send_data(&buf, t)?;
                progress.advance(buf.len() as u64);
                let _ = back.send(buf);
            }
            Ok(())
        })?;
        self.data_done(what, &cmd, progress)
    }

    /// What the Debian client's `fastboot stage FILE` does: ask
    /// `max-download-size`, refuse data larger than it (no sparse
    /// fallback), then `download`.
    pub fn stage(
        &mut self,
        what: &str,
        data: &[u8],
        progress: &mut dyn ProgressSink,
    ) -> Result<(), FastbootError> {
        if let Some(max) = self.max_download_size(progress)?
            && data.len() as u64 > max
        {
            return Err(FastbootError::TooLarge { what: what.into(), size: data.len() as u64, max });
        }
        self.download(what, data, progress)
    }

    /// `upload`: the device sends data staged by an earlier command.
    pub fn upload(&mut self, progress: &mut dyn ProgressSink) -> Result<Vec<u8>, FastbootError> {
        let cmd = "upload";
        self.send_command(cmd)?;
        let t = self.timeouts.command;
        let n = match self.read_final(cmd, t, progress)? {
            Response::Data(n) => n as usize,
            r => {
                return Err(FastbootError::Unexpected {
                    command: cmd.into(),
                    status: status_name(&r).into(),
                });
            }
        };
        progress.stage("upload", Some(n as u64));
        // The size comes from the device: reserve at most one chunk ahead
        // rather than up to 4 GiB before a byte arrived.
        let mut out = Vec::with_capacity(n.min(DATA_CHUNK));
        // A device that answers the data phase with empty packets forever
        // would keep this loop spinning: a few in a row end it.
        let mut empty = 0;
        while out.len() < n {
            progress.check_cancel()?;
            let want = (n - out.len()).min(DATA_CHUNK);
            let t = self.data_timeout(want);
            let piece = self.transport.recv(want, t)?;
            empty = if piece.is_empty() { empty + 1 } else { 0 };
            if empty > MAX_EMPTY_PACKETS {
                return Err(FastbootError::DataSizeMismatch {
                    command: cmd.into(),
                    wanted: n as u32,
                    accepted: out.len() as u32,
                });
            }
            if piece.len() > n - out.len() {
                return Err(FastbootError::DataSizeMismatch {
                    command: cmd.into(),
                    wanted: n as u32,
                    accepted: (out.len() + piece.len()) as u32,
                });
            }
            progress.advance(piece.len() as u64);
            out.extend_from_slice(&piece);
        }
        match self.read_final(cmd, t, progress)? {
            Response::Okay(_) => {}
            r => {
                return Err(FastbootError::Unexpected {
                    command: cmd.into(),
                    status: status_name(&r).into(),
                });
            }
        }
        progress.done("upload");
        Ok(out)
    }

    /// `flash:PARTITION`: writes the last download.
    pub fn flash(&mut self, partition: &str, progress: &mut dyn ProgressSink) -> Result<(), FastbootError> {
        self.raw(&format!("flash:{partition}"), progress).map(drop)
    }

    /// `erase:PARTITION`.
    pub fn erase(&mut self, partition: &str, progress: &mut dyn ProgressSink) -> Result<(), FastbootError> {
        self.raw(&format!("erase:{partition}"), progress).map(drop)
    }

    /// `oem ARGS` (one packet, words joined by single spaces as the AOSP
    /// client does).
    pub fn oem(&mut self, args: &[&str], progress: &mut dyn ProgressSink) -> Result<String, FastbootError> {
        self.raw(&format!("oem {}", args.join(" ")), progress)
    }

    /// `set_active:SLOT`.
    pub fn set_active(&mut self, slot: &str, progress: &mut dyn ProgressSink) -> Result<(), FastbootError> {
        self.raw(&format!("set_active:{slot}"), progress).map(drop)
    }

    /// `boot`: boots the last download as an Android boot image (not for
    /// loaders; see `continue`).
    pub fn boot(&mut self, progress: &mut dyn ProgressSink) -> Result<Departure, FastbootError> {
        self.leave("boot", progress)
    }

    /// `continue`: on both ROMs, run what was downloaded.
    pub fn continue_boot(&mut self, progress: &mut dyn ProgressSink) -> Result<Departure, FastbootError> {
        self.leave("continue", progress)
    }

    /// `reboot`; on the TH1520 ROM this jumps to the `flash:ram` image.
    pub fn reboot(&mut self, progress: &mut dyn ProgressSink) -> Result<Departure, FastbootError> {
        self.leave("reboot", progress)
    }

    /// `reboot-TARGET` (`bootloader`, `recovery`, `fastboot`).
    pub fn reboot_to(
        &mut self,
        target: &str,
        progress: &mut dyn ProgressSink,
    ) -> Result<Departure, FastbootError> {
        self.leave(&format!("reboot-{target}"), progress)
    }

    /// A command after which the device goes away. A FAIL is an error; a
    /// link failure after the command went out is [`Departure::Vanished`].
    fn leave(&mut self, cmd: &str, progress: &mut dyn ProgressSink) -> Result<Departure, FastbootError> {
        self.send_command(cmd)?;
        let t = self.timeouts.command;
        match self.read_final(cmd, t, progress) {
            Ok(Response::Okay(_)) => Ok(Departure::Acknowledged),
            Ok(r) => Err(FastbootError::Unexpected { command: cmd.into(), status: status_name(&r).into() }),
            Err(FastbootError::Link(
                LinkError::Disconnected { .. } | LinkError::Timeout { .. } | LinkError::Io { .. },
            )) => Ok(Departure::Vanished),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
