//! The servers behind `racklet-flash sim <board>`: each serves one vendor's
//! virtual ROM outside the process (a pty for serial ROMs, TCP for
//! fastboot and the USB ROMs as JSON Lines), takes typed options and
//! reports what happens to its caller.
//!
//! [`crate::models::serve`] serves any board's virtual ROM by its SoC from
//! one [`Request`]: each server describes its own events as [`Said`] (the
//! address a client is given, the human line, the JSON event, the file
//! `--save` keeps), so the caller only shows them and writes the files.

use std::path::PathBuf;

use racklet_link::{Classify, FailureClass};

use crate::models::SimError;

pub mod canaan;
pub mod fastboot;
pub mod rockchip;
pub mod sophgo;
pub mod starfive;

/// What `racklet-flash sim` asks for: the board and the command line's
/// options. A server ignores what does not apply to its ROM.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The board's name, for messages.
    pub board: String,
    /// Its SoC, as the board table names it.
    pub soc: String,
    /// `--tcp ADDR`.
    pub tcp: Option<String>,
    /// `--keep`: serve more than one session.
    pub keep: bool,
    /// `--fault NAME`, by the ROM's own names.
    pub fault: Option<String>,
    /// `--save DIR`: the directory the caller writes received stages to;
    /// each server names its files in it.
    pub save: Option<PathBuf>,
    /// `--sim-storage FILE`.
    pub storage: Option<PathBuf>,
    /// `--medium NAME` (with `storage`).
    pub medium: Option<String>,
    /// `--in-uboot` (fastboot boards).
    pub in_uboot: bool,
    /// The existing directory a server may make its own directory in
    /// (`$TMPDIR`).
    pub tmp: PathBuf,
}

/// One thing a server has to say, in each form its caller may show it.
#[derive(Debug, Default)]
pub struct Said<'a> {
    /// The name to give a client (an address or a tty), for standard output.
    pub address: Option<String>,
    /// The line for a person.
    pub line: Option<String>,
    /// A warning to show whatever the output mode.
    pub warning: Option<String>,
    /// The JSON event, where the server has one. A server without JSON
    /// events still gives its `address` in JSON mode.
    pub json: Option<serde_json::Value>,
    /// Bytes `--save` keeps, at this path in [`Request::save`]: the caller
    /// writes them (never over a file, never through a link) before it shows
    /// the rest.
    pub save: Option<(PathBuf, &'a [u8])>,
}

impl Said<'_> {
    /// A line for a person and nothing else.
    pub fn line(text: impl Into<String>) -> Self {
        Said { line: Some(text.into()), ..Said::default() }
    }
}

/// The caller's own failure with something a server said (saving a stage).
pub type CallerError = Box<dyn std::error::Error + Send + Sync>;

/// The caller of [`crate::models::serve`]: shows what a server says; an
/// error ends the server with [`ServeError::Caller`].
pub type Listener<'a> = &'a (dyn Fn(Said<'_>) -> Result<(), CallerError> + Sync);

/// Serves the virtual ROM a request asks for until it is done or
/// `stop` says so.
pub type ServeFn = fn(&Request, &(dyn Fn() -> bool + Sync), Listener<'_>) -> Result<(), ServeError>;

/// Why a virtual ROM was not served (or its last session failed).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Canaan(#[from] canaan::ServeError),
    #[error(transparent)]
    Fastboot(#[from] fastboot::ServeError),
    #[error(transparent)]
    Rockchip(#[from] rockchip::ServeError),
    #[error(transparent)]
    Sophgo(#[from] sophgo::ServeError),
    #[error(transparent)]
    Starfive(#[from] starfive::ServeError),
    /// The caller could not take an event (a stage it could not save): its
    /// own error, kept whole.
    #[error("{0}")]
    Caller(CallerError),
}

impl Classify for ServeError {
    fn class(&self) -> FailureClass {
        match self {
            ServeError::Sim(e) => e.class(),
            ServeError::Canaan(e) => e.class(),
            ServeError::Fastboot(e) => e.class(),
            ServeError::Rockchip(e) => e.class(),
            ServeError::Sophgo(e) => e.class(),
            ServeError::Starfive(e) => e.class(),
            ServeError::Caller(_) => FailureClass::Io,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Sim(e) => e.hint(),
            ServeError::Canaan(e) => e.hint(),
            ServeError::Fastboot(e) => e.hint(),
            ServeError::Rockchip(e) => e.hint(),
            ServeError::Sophgo(e) => e.hint(),
            ServeError::Starfive(e) => e.hint(),
            ServeError::Caller(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_serves_by_soc_and_refuses_an_unknown_one() {
        let req = Request { board: "x".into(), soc: "rk9999".into(), ..Request::default() };
        let e = crate::models::serve(&req, &|| true, &|_| Ok(())).unwrap_err();
        assert!(matches!(e, ServeError::Sim(SimError::UnknownSoc { .. })), "{e}");
        assert_eq!(e.class(), FailureClass::BadInput);
        // The StarFive ROM is a UART: --tcp is refused by its own server.
        let req = Request { soc: "jh7110".into(), tcp: Some("127.0.0.1:0".into()), ..req };
        let e = crate::models::serve(&req, &|| true, &|_| Ok(())).unwrap_err();
        assert!(matches!(e, ServeError::Starfive(starfive::ServeError::Tcp)), "{e}");
        assert_eq!(e.class(), FailureClass::BadInput);
    }

    #[test]
    fn a_received_stage_is_saved_where_its_server_names_it() {
        let req = Request { save: Some("/saved".into()), soc: "rk3568".into(), ..Request::default() };
        let peer = "127.0.0.1:1".parse().unwrap();
        let ev =
            rockchip::Event::Received { peer, number: 3, index: 0x471, body: &[1, 2], transfers: 1, crc: 7 };
        let s = ev.said(&req);
        assert_eq!(s.save, Some((PathBuf::from("/saved/stage3-471.bin"), &[1u8, 2][..])));
        let ev = fastboot::Event::Received { index: 2, stage: "rom", bytes: &[9] };
        let s = ev.said(&req);
        assert_eq!(s.save.unwrap().0, PathBuf::from("/saved/02-rom.bin"));
        assert!(s.line.unwrap().ends_with(", saved to /saved/02-rom.bin"));
        let none = Request { save: None, ..req };
        assert!(fastboot::Event::Received { index: 2, stage: "rom", bytes: &[9] }.said(&none).save.is_none());
    }
}
