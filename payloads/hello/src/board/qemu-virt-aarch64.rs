//! `hello` for qemu-virt-aarch64.
#![no_std]
#![no_main]

include!("../payload.rs");

racklet_bsp::payload!(main);
