//! Argument groups: the per-protocol groups of `maskrom`, each flattened
//! into [`crate::cli::MaskromArgs`] under its own help heading; the
//! connection options; the storage verbs; and the value parsers.

pub mod canaan;
pub mod connect;
pub mod fastboot;
pub mod rockchip;
pub mod sophgo;
pub mod starfive;
pub mod storage;
pub mod values;
