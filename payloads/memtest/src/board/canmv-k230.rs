//! `memtest` for canmv-k230.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
