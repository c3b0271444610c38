//! racklet-sim: virtual boot ROMs, the device side of every protocol.
//!
//! Each virtual ROM is written from the vendor fact sheets in
//! `shared/protocols/`, never from the client code in `protocols/`: this
//! crate must not depend on a protocol crate. A ROM checks what the real ROM
//! checks (CRCs, headers, sizes, order of steps) and answers as it answers,
//! errors included.
//!
//! - USB ROMs implement the event-driven [`usb::UsbDevice`] trait (a control
//!   request arrives, bulk OUT data arrives, the host asks for bulk IN). The
//!   [`usb::SimUsbBus`] makes them appear on a virtual bus and opens them as
//!   ordinary [`racklet_link::UsbLink`]s, with re-enumeration and port paths.
//! - Serial ROMs run on a thread at the master side of a pseudo-terminal
//!   ([`serial::PtyPair`]); the client opens the slave path with the real
//!   serialport backend.
//! - Every ROM implements [`rom::VirtualRom`] (its typed [`rom::Verdict`])
//!   and names its faults through [`rom::Faults`]; [`models`] is the
//!   registry by SoC that `--simulate`, `racklet-flash sim` and the USB
//!   gadget use.
//! - [`replay`] turns a recorded transcript into a virtual device that
//!   answers as the recording did and stops at the first host transfer
//!   that differs.
//! - [`serve`] holds the servers behind `racklet-flash sim`.
//! - [`crc`] holds the reference CRCs, written bit by bit from their
//!   definitions: the ROMs' own and the tests' oracle.

pub mod canaan;
pub mod console;
pub mod crc;
pub mod fastboot;
pub mod fastload;
pub mod kburn;
pub mod models;
pub mod relay;
pub mod replay;
pub mod rockchip;
pub mod rom;
pub mod serial;
pub mod serve;
pub mod sophgo;
pub mod starfive;
pub mod storage;
pub mod uboot_mtd;
pub mod uboot_storage;
pub mod usb;
pub mod world;

/// The warning a server should print when it listens on `addr`: anything
/// but a loopback address makes the virtual device reachable from the
/// network, and any client there decides what it receives and saves.
pub fn exposure_warning(addr: &std::net::SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "warning: listening on {addr}: the virtual device is reachable from the network, and any client there chooses what it receives (and what --save writes); use 127.0.0.1 to keep it on this machine"
        )
    })
}
