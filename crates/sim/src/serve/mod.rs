//! The servers behind `racklet-flash sim <board>`: a virtual ROM outside
//! the client's process, for another program (or another racklet-flash) to
//! talk to. Each takes typed options and reports what happens through a
//! callback; the CLI only prints.

pub mod starfive;
