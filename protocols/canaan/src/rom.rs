//! The K230 mask-ROM download over USB.
//!
//! Three vendor requests on EP0 (device recipient) and raw bulk OUT data:
//!
//! | bRequest | name             | dir | wValue / wIndex       |
//! |----------|------------------|-----|-----------------------|
//! | 0        | GET_CPU_INFO     | IN  | 0 / 0                 |
//! | 1        | SET_DATA_ADDRESS | OUT | addr >> 16 / addr & 0xffff |
//! | 4        | PROG_START       | OUT | entry >> 16 / entry & 0xffff |
//!
//! After SET_DATA_ADDRESS the bytes go to bulk OUT EP 0x01 in chunks, with
//! no framing, no checksum and no acknowledgement.

use std::time::Duration;

use racklet_link::{ControlSetup, LinkError, ProgressSink, UsbLink};

use crate::CanaanError;

/// bRequest of GET_CPU_INFO.
pub const REQ_GET_CPU_INFO: u8 = 0;
/// bRequest of SET_DATA_ADDRESS.
pub const REQ_SET_DATA_ADDRESS: u8 = 1;
/// bRequest of PROG_START.
pub const REQ_PROG_START: u8 = 4;
/// Bulk OUT endpoint of the ROM.
pub const EP_OUT: u8 = 0x01;
/// wLength of GET_CPU_INFO, as k230-flash and kendryte_boot ask.
pub const CPU_INFO_LEN: u16 = 32;
/// Chunk size of the vendor tools (the last chunk is the remainder).
pub const VENDOR_CHUNK: usize = 1000;

/// Which stage answered GET_CPU_INFO.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stage", content = "reply", rename_all = "snake_case")]
pub enum DeviceStage {
    /// The mask ROM ("K230").
    BootRom,
    /// The vendor kburn loader ("Uboot Stage for K230").
    Loader(String),
    /// Something else; the reply, printable.
    Unknown(String),
}

impl DeviceStage {
    /// Classifies a GET_CPU_INFO reply. The exact ROM reply (4 or 5 bytes,
    /// NUL or not) is unconfirmed, so it matches on prefixes, and checks
    /// for the loader ("Uboot") first.
    pub fn from_reply(reply: &[u8]) -> DeviceStage {
        let text = printable(reply);
        if reply.starts_with(b"Uboot") {
            DeviceStage::Loader(text)
        } else if reply.starts_with(b"K230") {
            DeviceStage::BootRom
        } else {
            DeviceStage::Unknown(text)
        }
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            DeviceStage::BootRom => "the K230 boot ROM".into(),
            DeviceStage::Loader(r) => format!("the kburn loader ({r:?})"),
            DeviceStage::Unknown(r) => format!("an unknown device (GET_CPU_INFO {r:?})"),
        }
    }
}

/// The reply as text: up to the first NUL, non-printable bytes escaped.
fn printable(reply: &[u8]) -> String {
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    reply[..end].escape_ascii().to_string()
}

/// Timeouts and chunking.
#[derive(Debug, Clone)]
pub struct RomOptions {
    /// Bytes per bulk OUT transfer (1000 in the vendor tools, 512 in
    /// kendryte_boot; both work).
    pub chunk: usize,
    /// Timeout of each control transfer.
    pub control_timeout: Duration,
    /// Timeout of each bulk transfer.
    pub bulk_timeout: Duration,
    /// Ask GET_CPU_INFO again after the data, before PROG_START, as the
    /// vendor BurningTool does; it proves the ROM is still listening.
    pub regreet: bool,
    /// Go on when GET_CPU_INFO answers something other than "K230" (never
    /// when it answers as the loader).
    pub accept_unknown_cpu: bool,
}

impl Default for RomOptions {
    fn default() -> Self {
        RomOptions {
            chunk: VENDOR_CHUNK,
            // The vendor tools use 1 s (k230_flash) and 5 s (BurningTool,
            // kendryte_boot); the ROM answers EP0 at once, so 1 s is ample.
            control_timeout: Duration::from_secs(1),
            bulk_timeout: Duration::from_secs(5),
            regreet: true,
            accept_unknown_cpu: false,
        }
    }
}

/// The setup packet of SET_DATA_ADDRESS.
pub fn set_data_address_setup(addr: u32) -> ControlSetup {
    ControlSetup::vendor_out(REQ_SET_DATA_ADDRESS, (addr >> 16) as u16, (addr & 0xffff) as u16)
}

/// The setup packet of PROG_START.
pub fn prog_start_setup(entry: u32) -> ControlSetup {
    ControlSetup::vendor_out(REQ_PROG_START, (entry >> 16) as u16, (entry & 0xffff) as u16)
}

/// The setup packet of GET_CPU_INFO.
pub fn cpu_info_setup() -> ControlSetup {
    ControlSetup::vendor_in(REQ_GET_CPU_INFO, 0, 0)
}

/// Asks the device which stage it is in.
pub fn identify<L: UsbLink + ?Sized>(link: &mut L, opts: &RomOptions) -> Result<DeviceStage, CanaanError> {
    let reply = link
        .control_in(cpu_info_setup(), CPU_INFO_LEN, opts.control_timeout)
        .map_err(|e| CanaanError::link("GET_CPU_INFO", e))?;
    Ok(DeviceStage::from_reply(&reply))
}

/// Asks GET_CPU_INFO and fails unless the boot ROM answered.
pub fn expect_rom<L: UsbLink + ?Sized>(link: &mut L, opts: &RomOptions) -> Result<(), CanaanError> {
    match identify(link, opts)? {
        DeviceStage::BootRom => Ok(()),
        DeviceStage::Loader(reply) => Err(CanaanError::LoaderStage { reply }),
        DeviceStage::Unknown(reply) => Err(CanaanError::UnknownDevice { reply }),
    }
}

/// Writes `data` to memory at `addr`: SET_DATA_ADDRESS once, then the
/// bytes in chunks of `opts.chunk` on EP 0x01. Progress: one `advance`
/// per chunk; cancellation is checked before each chunk.
pub fn write_memory<L: UsbLink + ?Sized>(
    link: &mut L,
    addr: u32,
    data: &[u8],
    opts: &RomOptions,
    progress: &mut dyn ProgressSink,
) -> Result<(), CanaanError> {
    if (addr as u64) + (data.len() as u64) > 1 << 32 {
        return Err(CanaanError::PastAddressSpace { address: addr, len: data.len() });
    }
    let chunk = opts.chunk.max(1);
    progress.check_cancel().map_err(|e| CanaanError::link("before SET_DATA_ADDRESS", e))?;
    link.control_out(set_data_address_setup(addr), &[], opts.control_timeout)
        .map_err(|e| CanaanError::link(format!("SET_DATA_ADDRESS 0x{addr:08x}"), e))?;
    let mut off = 0usize;
    for c in data.chunks(chunk) {
        progress.check_cancel().map_err(|e| CanaanError::link("between bulk chunks", e))?;
        link.bulk_out(EP_OUT, c, opts.bulk_timeout).map_err(|e| {
            CanaanError::link(
                format!("bulk OUT of bytes {off}..{} (to 0x{:08x})", off + c.len(), addr as usize + off),
                e,
            )
        })?;
        off += c.len();
        progress.advance(c.len() as u64);
    }
    Ok(())
}

/// How the status stage of PROG_START ended. The hosts disagree about an
/// error there (the ROM may jump before it completes the status stage), so
/// every outcome but a refusal is accepted and re-enumeration tells the rest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum StartStatus {
    /// The ROM completed the status stage.
    Acked,
    /// No status stage (timeout): the ROM likely jumped first.
    NoStatus,
    /// The device went away during the request: it jumped.
    Gone,
    /// An I/O error on the status stage.
    IoError(String),
    /// The ROM stalled PROG_START but no longer answers as the ROM.
    StalledThenGone,
}

impl StartStatus {
    /// A short description for the outcome.
    pub fn describe(&self) -> String {
        match self {
            StartStatus::Acked => "acknowledged".into(),
            StartStatus::NoStatus => "no status stage (the ROM jumped first)".into(),
            StartStatus::Gone => "device left the bus during PROG_START".into(),
            StartStatus::IoError(e) => format!("status stage failed ({e}); continuing"),
            StartStatus::StalledThenGone => "stalled, and the ROM no longer answers".into(),
        }
    }
}

/// Sends PROG_START(entry). A STALL followed by a ROM that still answers
/// GET_CPU_INFO is a refusal; every other outcome is accepted.
pub fn prog_start<L: UsbLink + ?Sized>(
    link: &mut L,
    entry: u32,
    opts: &RomOptions,
) -> Result<StartStatus, CanaanError> {
    match link.control_out(prog_start_setup(entry), &[], opts.control_timeout) {
        Ok(()) => Ok(StartStatus::Acked),
        Err(LinkError::Timeout { .. }) => Ok(StartStatus::NoStatus),
        Err(LinkError::Disconnected { .. }) => Ok(StartStatus::Gone),
        Err(LinkError::Stall { .. }) => {
            // A stall can be the ROM's "no" or the jump cutting the status
            // stage short: ask whether the ROM is still there.
            match identify(link, opts) {
                Ok(DeviceStage::BootRom) => Err(CanaanError::StartRefused { entry }),
                _ => Ok(StartStatus::StalledThenGone),
            }
        }
        Err(LinkError::Interrupted) => Err(CanaanError::link("PROG_START", LinkError::Interrupted)),
        Err(
            e @ (LinkError::PermissionDenied { .. } | LinkError::Busy { .. } | LinkError::NotFound { .. }),
        ) => Err(CanaanError::link(format!("PROG_START 0x{entry:08x}"), e)),
        Err(e) => Ok(StartStatus::IoError(e.to_string())),
    }
}

/// True when the device behind `link` (the link used for PROG_START) still
/// answers GET_CPU_INFO as the boot ROM: the jump did not happen. After a
/// real jump the ROM no longer serves EP0 (timeout) or the device left the
/// bus (disconnected); both count as "not in the ROM".
pub fn still_in_rom<L: UsbLink + ?Sized>(link: &mut L, opts: &RomOptions) -> bool {
    matches!(identify(link, opts), Ok(DeviceStage::BootRom))
}

/// One stage on the wire: every load, the optional re-greet, PROG_START.
/// The caller has already checked that the device is the ROM.
pub fn run_stage<L: UsbLink + ?Sized>(
    link: &mut L,
    stage: &crate::Stage,
    opts: &RomOptions,
    progress: &mut dyn ProgressSink,
) -> Result<StartStatus, CanaanError> {
    for load in &stage.loads {
        let name = format!("{} at 0x{:08x}", load.name, load.address);
        progress.stage(&name, Some(load.bytes.len() as u64));
        write_memory(link, load.address, &load.bytes, opts, progress)?;
        progress.done(&name);
    }
    if opts.regreet {
        progress.check_cancel().map_err(|e| CanaanError::link("before PROG_START", e))?;
        match identify(link, opts).map_err(|e| match e {
            CanaanError::Link { source, .. } => {
                CanaanError::link("GET_CPU_INFO after the data (is the ROM still listening?)", source)
            }
            e => e,
        })? {
            DeviceStage::BootRom => {}
            DeviceStage::Loader(reply) => return Err(CanaanError::LoaderStage { reply }),
            DeviceStage::Unknown(_) if opts.accept_unknown_cpu => {}
            DeviceStage::Unknown(reply) => return Err(CanaanError::UnknownDevice { reply }),
        }
    }
    progress.check_cancel().map_err(|e| CanaanError::link("before PROG_START", e))?;
    prog_start(link, stage.entry, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_from_reply_checks_the_loader_first() {
        assert_eq!(DeviceStage::from_reply(b"K230"), DeviceStage::BootRom);
        assert_eq!(DeviceStage::from_reply(b"K230\0"), DeviceStage::BootRom);
        assert_eq!(DeviceStage::from_reply(b"K230D"), DeviceStage::BootRom);
        assert_eq!(
            DeviceStage::from_reply(b"Uboot Stage for K230"),
            DeviceStage::Loader("Uboot Stage for K230".into())
        );
        assert_eq!(DeviceStage::from_reply(b"K21"), DeviceStage::Unknown("K21".into()));
        assert_eq!(DeviceStage::from_reply(b""), DeviceStage::Unknown("".into()));
        assert_eq!(DeviceStage::from_reply(b"\x01x"), DeviceStage::Unknown("\\x01x".into()));
    }

    /// The setup packets written out from the sheet's wire bytes (§2),
    /// decoded here field by field.
    #[test]
    fn setup_packets_match_the_sheet() {
        fn decode(wire: [u8; 8]) -> ControlSetup {
            ControlSetup {
                request_type: wire[0],
                request: wire[1],
                value: u16::from_le_bytes([wire[2], wire[3]]),
                index: u16::from_le_bytes([wire[4], wire[5]]),
            }
        }
        assert_eq!(cpu_info_setup(), decode([0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00]));
        assert_eq!(CPU_INFO_LEN, u16::from_le_bytes([0x20, 0x00]));
        assert_eq!(set_data_address_setup(0x8036_0000), decode([0x40, 0x01, 0x36, 0x80, 0, 0, 0, 0]));
        assert_eq!(prog_start_setup(0x8036_0000), decode([0x40, 0x04, 0x36, 0x80, 0, 0, 0, 0]));
        // "With -la 0x80300000: wValue 0x8030, wIndex 0."
        let s = set_data_address_setup(0x8030_0000);
        assert_eq!((s.value, s.index), (0x8030, 0));
        // Low half in wIndex.
        let s = prog_start_setup(0x0800_1234);
        assert_eq!((s.value, s.index), (0x0800, 0x1234));
    }
}
