//! `hello` for rock-5b.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
