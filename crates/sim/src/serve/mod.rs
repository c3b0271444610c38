//! The servers behind `racklet-flash sim <board>`: each serves one vendor's
//! virtual ROM outside the process (a pty for serial ROMs, TCP for
//! fastboot), takes typed options and reports what happens to its caller;
//! the CLI only prints.

pub mod canaan;
pub mod starfive;
