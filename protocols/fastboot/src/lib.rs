//! racklet-fastboot: filled by its protocol issue.
