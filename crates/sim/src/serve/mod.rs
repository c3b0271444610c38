//! The servers behind `racklet-flash sim <board>`: each vendor's virtual ROM
//! outside the process (USB ROMs as JSON Lines over TCP, serial ROMs on a
//! pty). They take typed options and report through a callback; the CLI
//! only prints.

pub mod rockchip;
