//! The command-line flags of each protocol, one `clap::Args` group per
//! protocol, flattened into the commands that take them.

pub mod starfive;
