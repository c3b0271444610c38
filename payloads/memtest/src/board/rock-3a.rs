//! `memtest` for rock-3a.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
