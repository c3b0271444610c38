//! racklet-sophgo: filled by its protocol issue.
