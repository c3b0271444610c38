//! racklet-gadget: the device side of the USB test rig.
//!
//! Inside a Linux guest with `dummy_hcd` and `libcomposite`, it serves the
//! racklet-sim virtual boot ROMs as real USB gadgets, so that racklet-flash
//! drives them through the kernel's usbfs and cdc-acm drivers exactly as it
//! drives a board:
//!
//! - [`configfs`]: the gadget (identity, strings, configuration, UDC binding);
//! - [`ffs`]: FunctionFS descriptor blobs and `ep0` events;
//! - [`serve`]: a [`racklet_sim::usb::UsbDevice`] model served through
//!   FunctionFS, with re-enumeration (unbind, new identity, rebind) and an
//!   unplug fault;
//! - [`acm`]: the ACM function for CDC-ACM serial ROMs;
//! - [`testdev`]: the rig's own loop device.
//!
//! No unsafe code: configfs and FunctionFS are plain files.

pub mod acm;
pub mod configfs;
pub mod ffs;
pub mod serve;
pub mod testdev;
