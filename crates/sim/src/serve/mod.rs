//! The servers behind `racklet-flash sim <board>`: each serves one vendor's
//! virtual ROM outside the process (a pty for serial ROMs, TCP for
//! fastboot and the USB ROMs as JSON Lines), takes typed options and
//! reports what happens to its caller; the CLI only prints.

pub mod canaan;
pub mod fastboot;
pub mod rockchip;
pub mod sophgo;
pub mod starfive;
