//! `hello` for visionfive2.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
