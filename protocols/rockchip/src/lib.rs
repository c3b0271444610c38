//! racklet-rockchip: filled by its protocol issue.
