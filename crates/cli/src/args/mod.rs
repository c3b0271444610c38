//! The flags of each protocol, one `clap::Args` group per protocol,
//! flattened into `MaskromArgs` (crates/cli/src/cli.rs).

pub mod sophgo;
