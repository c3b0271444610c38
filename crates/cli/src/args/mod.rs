//! The flags of each protocol, one `clap::Args` group per protocol,
//! flattened into `maskrom`'s arguments (`crate::cli::MaskromArgs`).

pub mod fastboot;
