//! `memtest` for lichee-pi-4a.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
