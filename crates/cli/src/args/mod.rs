//! The per-protocol argument groups of `maskrom`, each flattened into
//! [`crate::cli::MaskromArgs`] under its own help heading.

pub mod canaan;
pub mod fastboot;
pub mod rockchip;
pub mod sophgo;
pub mod starfive;
pub mod storage;
