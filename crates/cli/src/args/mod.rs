//! Per-protocol argument groups, flattened into `MaskromArgs` (each under
//! its own help heading).

pub mod rockchip;
