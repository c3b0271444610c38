//! `hello` for milkv-duo-256m.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
