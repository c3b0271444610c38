//! The servers behind `racklet-flash sim <board>`: a board's virtual ROM
//! outside the process (TCP for fastboot, a pty for serial ROMs). Each takes
//! typed options and reports what happens through a callback; the CLI only
//! prints.

pub mod fastboot;
