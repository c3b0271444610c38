//! What a boot did, as typed facts.

use serde::Serialize;

use crate::fast::FastReport;
use crate::plan::ImageKind;

/// The ROM's line rate in bytes per second: 115200 baud, 8N1 (10 bits a byte).
pub const LINE_RATE: f64 = 115_200.0 / 10.0;

/// A transfer's throughput, against the line rate only when the port has
/// one (`line_rate`: not a bare pseudo-terminal).
pub fn throughput(bytes_per_s: f64, line_rate: bool) -> String {
    if line_rate {
        format!(
            "{bytes_per_s:.0} B/s, {:.1}% of the {LINE_RATE:.0} B/s line rate of 115200 8N1",
            100.0 * bytes_per_s / LINE_RATE
        )
    } else {
        format!("{bytes_per_s:.0} B/s (a pseudo-terminal has no line rate)")
    }
}

/// One XMODEM or YMODEM transfer.
#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    /// "xmodem-1k", "xmodem" or "ymodem".
    pub name: &'static str,
    /// Data bytes delivered (the image, header included; or the file).
    pub bytes: u64,
    /// Data bytes per block (1024 or 128).
    pub block: usize,
    /// Blocks of data, not counting resends.
    pub blocks: u64,
    /// Frames written, resends included.
    pub frames_sent: u64,
    pub naks: u64,
    /// NAKs followed at once by an ACK.
    pub stale_naks: u64,
    pub timeouts: u64,
    /// Whether the receiver acknowledged EOT.
    pub eot_acked: bool,
    pub ms: u64,
    /// Data bytes per second.
    pub throughput: f64,
}

/// The next stage U-Boot SPL took.
#[derive(Debug, Clone, Serialize)]
pub struct NextStageReport {
    /// The name sent in the YMODEM header.
    pub name: String,
    pub transfer: Transfer,
    /// What the SPL printed before it asked (its banner, `Trying to boot from UART`).
    pub spl_said: String,
}

/// A finished boot.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The tty the ROM was reached on.
    pub port: String,
    /// The port is a pseudo-terminal, which has no line rate of its own.
    pub pty: bool,
    /// The port runs at the line rate anyway (a simulated board's paced UART).
    pub paced: bool,
    /// Bytes of the headed image.
    pub image_bytes: usize,
    pub image: ImageKind,
    pub rom: Transfer,
    /// What the console printed in the verdict window after the image.
    pub console: String,
    /// Where the ROM runs the payload.
    pub load_address: u64,
    pub next: Option<NextStageReport>,
    /// With `--fast`: the payload's stage through the loader.
    pub fast: Option<FastReport>,
}

impl Report {
    /// The facts for the human summary and the JSON `done` event.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        let mut fact = |k: &str, val: String| v.push((k.to_string(), val));
        fact("port", self.port.clone());
        if let Some(f) = &self.fast {
            let r = &self.rom;
            fact(
                "loader",
                format!(
                    "{} bytes ({}) by XMODEM-{} in {} ms, {} frames sent, {} NAKs; {}",
                    r.bytes,
                    self.image,
                    if r.block == 1024 { "1K" } else { "128" },
                    r.ms,
                    r.frames_sent,
                    r.naks,
                    throughput(r.throughput, !self.pty || self.paced)
                ),
            );
            fact(
                "fastload",
                format!(
                    "{} bytes at 0x{:x} in {} ms at {} baud ({:.0} B/s, {:.1}% of that line rate{}{})",
                    f.bytes,
                    f.load,
                    f.ms,
                    f.baud,
                    f.throughput,
                    100.0 * f.throughput / (f64::from(f.baud) / 10.0),
                    if f.resent > 0 { format!(", {} blocks resent", f.resent) } else { String::new() },
                    match f.fell_back {
                        Some(b) => format!(", {b} baud did not sync"),
                        None => String::new(),
                    }
                ),
            );
            fact(
                "started",
                if f.console.is_empty() {
                    format!("the loader checked the image's CRC-32 and jumped to 0x{:x}", f.entry)
                } else {
                    format!(
                        "the loader checked the image's CRC-32 and jumped to 0x{:x}; the console then printed: {}",
                        f.entry, f.console
                    )
                },
            );
            return v;
        }
        fact("image", format!("{} bytes ({})", self.image_bytes, self.image));
        let r = &self.rom;
        fact(
            "xmodem",
            format!(
                "{} blocks of {} bytes, {} frames sent, {} NAKs ({} stale), {} timeouts, EOT {}",
                r.blocks,
                r.block,
                r.frames_sent,
                r.naks,
                r.stale_naks,
                r.timeouts,
                if r.eot_acked { "acknowledged" } else { "not acknowledged (tolerated)" }
            ),
        );
        fact("throughput", throughput(r.throughput, !self.pty || self.paced));
        match &self.next {
            Some(n) => {
                if !n.spl_said.is_empty() {
                    fact("SPL said", n.spl_said.clone());
                }
                let t = &n.transfer;
                fact(
                    "ymodem",
                    format!(
                        "{}: {} bytes in {} blocks, {} frames sent, {} resend requests (C or NAK), {} timeouts, {:.0} B/s",
                        n.name, t.bytes, t.blocks, t.frames_sent, t.naks, t.timeouts, t.throughput
                    ),
                );
            }
            None => fact(
                "ROM",
                if self.console.is_empty() {
                    format!("no CRC error; the payload runs at 0x{:x}", self.load_address)
                } else {
                    format!("no CRC error; the console then printed: {}", self.console)
                },
            ),
        }
        v
    }
}
