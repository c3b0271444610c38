//! The servers behind `racklet-flash sim <board>`: a virtual ROM outside
//! the client's process, on a pseudo-terminal or a socket. Each takes typed
//! options and reports what happens through a callback; the CLI prints.

pub mod sophgo;
