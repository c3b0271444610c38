//! racklet-link: the I/O boundary of racklet-flash.
//!
//! Protocol crates are generic over the two link traits defined here,
//! [`UsbLink`] and [`SerialLink`], so the same protocol code drives a real
//! device (the [`nusb_backend`] and [`serial_backend`]), a virtual ROM
//! (racklet-sim) and the transcript [`Recorder`](transcript::Recorder).
//!
//! Discovery goes through the [`UsbBus`] and [`SerialBus`] traits, so that
//! selection by USB port path, waiting for a device and following a board
//! across re-enumeration work the same against hardware and simulation.

pub mod connect;
pub mod console;
pub mod discover;
pub mod error;
pub mod nusb_backend;
pub mod progress;
pub mod request;
pub mod roms;
pub mod select;
pub mod serial;
pub mod serial_backend;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transcript;
pub mod udev;
pub mod usb;

pub use connect::{Connector, SerialKey, UsbId};
pub use discover::{wait_for_serial, wait_for_usb};
pub use error::{Classify, FailureClass, LinkError};
pub use progress::{NoProgress, ProgressEvent, ProgressSink};
pub use select::Selector;
pub use serial::{SerialBus, SerialInfo, SerialLink};
pub use usb::{ControlSetup, EndpointInfo, InterfaceInfo, UsbBus, UsbInfo, UsbLink, Watcher};
