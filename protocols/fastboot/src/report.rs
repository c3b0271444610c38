//! What a finished run reports: typed facts, and the human summary lines.

use racklet_link::{UsbId, UsbInfo};

use crate::client::Departure;
use crate::plan::Soc;

/// One enumeration of the board on USB.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    pub port_path: String,
    pub id: UsbId,
    pub address: u8,
}

impl Device {
    /// A device reached over TCP at `addr` (no USB ids, no bus address).
    pub fn tcp(addr: &str) -> Device {
        Device { port_path: format!("tcp:{addr}"), id: UsbId::new(0, 0), address: 0 }
    }

    fn over_tcp(&self) -> bool {
        self.port_path.starts_with("tcp:")
    }

    /// Where it is, for the summary: `USB 1-2 (361c:1001)` or `tcp:HOST:PORT`.
    pub fn at(&self) -> String {
        match self.over_tcp() {
            true => self.port_path.clone(),
            false => format!("USB {} ({})", self.port_path, self.id),
        }
    }

    /// [`Device::at`] with the bus address of this enumeration.
    pub fn at_address(&self) -> String {
        match self.over_tcp() {
            true => self.port_path.clone(),
            false => format!("{}, address {}", self.at(), self.address),
        }
    }
}

impl From<&UsbInfo> for Device {
    fn from(d: &UsbInfo) -> Self {
        Device { port_path: d.port_path.clone(), id: UsbId::new(d.vid, d.pid), address: d.address }
    }
}

/// Which image a stage sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// K1: FSBL.bin to the boot ROM (`download` + `continue`).
    Fsbl,
    /// K1: the image for the FSBL (`--then`, u-boot.itb).
    NextImage,
    /// K1: the image vendor U-Boot stages and runs (the second `--then`,
    /// uImage.itb); U-Boot leaves fastboot to run it.
    UBootImage,
    /// TH1520: u-boot-with-spl.bin to the ROM (`download`, `flash:ram`, `reboot`).
    RamImage,
}

impl StageKind {
    /// The summary key of the stage.
    pub fn key(self) -> &'static str {
        match self {
            StageKind::Fsbl => "fsbl",
            StageKind::NextImage => "next image",
            StageKind::UBootImage => "u-boot image",
            StageKind::RamImage => "ram image",
        }
    }

    /// What was started, for messages ("the FSBL").
    pub fn started(self) -> &'static str {
        match self {
            StageKind::Fsbl => "the FSBL",
            StageKind::NextImage | StageKind::UBootImage | StageKind::RamImage => "the image",
        }
    }
}

/// One image sent and started.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stage {
    pub kind: StageKind,
    /// The file's name.
    pub file: String,
    pub bytes: usize,
    pub sha256: String,
    /// From the first command of the stage to the device's answer to the start.
    pub ms: u64,
    pub departure: Departure,
    /// The board's next stage, found at the same port path after this one
    /// started (`None` when it was not awaited).
    pub came_back: Option<Device>,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The board's name.
    pub board: String,
    pub soc: Soc,
    /// The boot ROM as found.
    pub rom: Device,
    /// K1: the ROM was asked who it is (not with `--force`).
    pub identified: bool,
    /// K1: its answer to `getvar:version-brom`.
    pub version_brom: Option<String>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Whether the board's next stage was awaited after the ROM's.
    pub awaited: bool,
}

fn departed(d: Departure) -> &'static str {
    match d {
        Departure::Acknowledged => "started",
        Departure::Vanished => "started (the device left before answering, as ROMs may)",
    }
}

impl Report {
    /// The summary, as key/value lines in the order things happened.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = Vec::new();
        let mut fact = |k: &str, v: String| f.push((k.to_string(), v));
        let rom = &self.rom;
        match self.soc {
            Soc::K1 if self.identified => fact(
                "boot ROM",
                format!(
                    "K1 at {}, version-brom {}",
                    rom.at(),
                    self.version_brom.as_deref().unwrap_or_default()
                ),
            ),
            Soc::K1 => {}
            Soc::Th1520 => fact("boot ROM", format!("TH1520 at {}", rom.at())),
        }
        for s in &self.stages {
            let sent = format!("{} ({} bytes, sha256 {})", s.file, s.bytes, s.sha256);
            let how = departed(s.departure);
            fact(
                s.kind.key(),
                match s.kind {
                    StageKind::RamImage => format!("{sent} written to ram and {how}"),
                    StageKind::UBootImage => format!("{sent} staged to vendor U-Boot and {how}"),
                    _ => format!("{sent} {how}"),
                },
            );
            if !self.awaited {
                fact(
                    "next stage",
                    "not awaited: a payload other than vendor U-Boot does not come back (--follow waits for it)".into(),
                );
            }
            if let Some(d) = &s.came_back {
                match s.kind {
                    StageKind::Fsbl => fact("fsbl came back", d.at_address()),
                    StageKind::NextImage | StageKind::UBootImage | StageKind::RamImage => {
                        fact("u-boot", format!("fastboot at {}", d.at_address()))
                    }
                }
            }
        }
        f
    }
}
