//! `hello` for milkv-duo-s-arm.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
