//! `memtest` for bpi-canmv-k230d-zero.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
