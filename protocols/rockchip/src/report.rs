//! What a maskrom run did, as typed facts: the device found, what was sent
//! and how, and what answered afterwards.

use std::path::PathBuf;

use racklet_link::{UsbId, UsbInfo};
use serde::Serialize;

use crate::maskrom::StageReport;
use crate::rockusb::FlashInfo;

/// A USB device as it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: UsbId,
    pub port: String,
    pub address: u8,
    pub bcd_usb: u16,
}

impl From<&UsbInfo> for Device {
    fn from(i: &UsbInfo) -> Self {
        Device {
            id: UsbId::new(i.vid, i.pid),
            port: i.port_path.clone(),
            address: i.address,
            bcd_usb: i.bcd_usb,
        }
    }
}

/// Where the stages came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An RKBOOT loader, entries sent as stored.
    Loader { file: PathBuf, tag: String, chip_code: Option<String> },
    /// Raw blobs.
    Raw { ddr: PathBuf, usbplug: Option<PathBuf>, rc4: bool },
}

/// One stage on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// "ddr", "usbplug", or "471 <entry name>" for a loader.
    pub name: String,
    /// wIndex: 0x471 or 0x472.
    pub index: u16,
    /// Payload bytes before framing.
    pub bytes: usize,
    pub transfers: usize,
    /// The CRC-16 field sent.
    pub crc: u16,
    pub ms: u64,
}

impl From<&StageReport> for Stage {
    fn from(r: &StageReport) -> Self {
        Stage {
            name: r.name.clone(),
            index: r.index,
            bytes: r.payload,
            transfers: r.transfers,
            crc: r.crc,
            ms: r.elapsed.as_millis() as u64,
        }
    }
}

/// What the storage answered to READ FLASH INFO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flash {
    Info {
        sectors: u32,
        block_sectors: u16,
    },
    /// The usbplug did not answer it (some have no storage attached).
    Unavailable {
        why: String,
    },
}

impl From<FlashInfo> for Flash {
    fn from(f: FlashInfo) -> Self {
        Flash::Info { sectors: f.sectors, block_sectors: f.block_sectors }
    }
}

/// The usbplug, after it came back on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usbplug {
    pub device: Device,
    /// READ CHIP INFO's chip code ("3568"), its first bytes in hex, or
    /// empty when the usbplug answered zeros (RK3562/RK3576/RK3528/RK3506).
    pub chip_code: String,
    /// The code names another chip of the table than the board's.
    pub other_chip: bool,
    /// READ FLASH ID ("EMMC").
    pub flash_id: String,
    pub flash: Flash,
}

/// What came after the last stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Next {
    /// Only the DRAM-init stage was sent.
    DramOnly,
    /// The usbplug answered rockusb.
    Usbplug(Usbplug),
    /// The 0x472 stage was sent and started, and no rockusb loader came
    /// back at the port within `looked_ms`: normal for a payload that is not
    /// a usbplug (an SPL, mainline U-Boot's usb472 image, a bare-metal program).
    /// `rockusb_in_stage`: the stage's image carries the rockusb interface
    /// descriptor (class ff/06/05), so it looks like a usbplug after all.
    Payload { port: String, looked_ms: u64, rockusb_in_stage: bool },
}

/// The run, for the summary and the JSON `done` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub board: String,
    /// The SoC as the board table writes it ("rk3568").
    pub soc: String,
    /// The maskrom device the stages went to.
    pub maskrom: Device,
    /// Whether the chip's ROM takes RC4'd raw stages (chip table).
    pub chip_rc4: bool,
    pub source: Source,
    pub stages: Vec<Stage>,
    /// Time from the first transfer to the end of the last stage.
    pub send_ms: u64,
    pub next: Next,
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

impl Report {
    /// The human summary, key by key.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = Vec::new();
        let mut fact = |k: &str, v: String| f.push((k.to_string(), v));
        let soc = self.soc.to_uppercase();
        fact("chip", format!("{soc} (USB {}, RC4 {})", self.maskrom.id, on_off(self.chip_rc4)));
        match &self.source {
            Source::Loader { file, tag, chip_code } => fact(
                "loader",
                format!(
                    "{} ({} {}, entries sent as stored)",
                    file.display(),
                    tag.trim(),
                    chip_code.clone().unwrap_or_default()
                ),
            ),
            Source::Raw { ddr, usbplug, rc4 } => {
                fact("ddr", ddr.display().to_string());
                if let Some(u) = usbplug {
                    fact("usbplug", u.display().to_string());
                }
                fact("rc4", on_off(*rc4).to_string());
            }
        }
        fact(
            "sent",
            self.stages
                .iter()
                .map(|s| {
                    format!(
                        "{} (0x{:x}, {} B, {} transfers, crc {:04x})",
                        s.name, s.index, s.bytes, s.transfers, s.crc
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        );
        let bytes: usize = self.stages.iter().map(|s| s.bytes).sum();
        fact("throughput", format!("{bytes} B in {:.2}s", self.send_ms as f64 / 1000.0));
        match &self.next {
            Next::DramOnly => fact("result", "DRAM initialised; no usbplug stage was sent".into()),
            Next::Payload { port, looked_ms, rockusb_in_stage } => {
                let within = racklet_link::error::fmt_duration(std::time::Duration::from_millis(*looked_ms));
                let why = if *rockusb_in_stage {
                    "warning: the stage carries a rockusb interface descriptor and looks like a usbplug; add --expect-usbplug to wait for it and fail if it does not come"
                } else {
                    "normal for a payload that is not a usbplug; --expect-usbplug makes this a failure"
                };
                fact(
                    "result",
                    format!(
                        "the 0x472 stage was sent and started; no rockusb loader answered at USB port {port} within {within} ({why})"
                    ),
                )
            }
            Next::Usbplug(u) => {
                fact(
                    "rockusb",
                    format!(
                        "the usbplug answers at USB port {} (address {}, bcdUSB 0x{:04x})",
                        u.device.port, u.device.address, u.device.bcd_usb
                    ),
                );
                let mut chip_info = if u.chip_code.is_empty() {
                    "none reported (zero chip code, as the RK3562, RK3576, RK3528 and RK3506 usbplugs answer)"
                        .to_string()
                } else {
                    u.chip_code.clone()
                };
                if u.other_chip {
                    chip_info.push_str(&format!(" (warning: not the {} of {})", self.soc, self.board));
                }
                fact("chip info", chip_info);
                fact("flash id", u.flash_id.clone());
                fact(
                    "flash",
                    match &u.flash {
                        Flash::Info { sectors, block_sectors } => format!(
                            "{sectors} sectors ({:.1} GiB), block {block_sectors} sectors",
                            (u64::from(*sectors) * 512) as f64 / (1u64 << 30) as f64
                        ),
                        Flash::Unavailable { why } => format!("n/a ({why})"),
                    },
                );
            }
        }
        f
    }
}
