//! racklet-canaan: filled by its protocol issue.
