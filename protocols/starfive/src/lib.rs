//! racklet-starfive: filled by its protocol issue.
