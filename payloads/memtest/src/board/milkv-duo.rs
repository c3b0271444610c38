//! `memtest` for milkv-duo.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
