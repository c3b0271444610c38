//! A board reached over TCP (`--port tcp:HOST:PORT`): AOSP fastboot's TCP
//! transport, as Debian's `fastboot -s tcp:HOST:PORT` uses it, and
//! `racklet-flash sim <board> --tcp` serves it.
//!
//! There are no USB ids, serial strings or port paths over TCP, so:
//! - **Finding** the board is connecting to HOST:PORT and doing the `FB01`
//!   handshake (retried for `--wait` when given; refused or unreachable is
//!   "not found", exit 3).
//! - **Identifying** it is by `getvar` alone ([`crate::k1::Identity::is_rom_over_tcp`]
//!   for the K1; the TH1520 ROM is not asked, as over USB).
//! - **Following** it to its next stage (`--then`, `--follow`, a storage
//!   verb's `--loader`) is connecting to the same HOST:PORT again: the
//!   device closes the connection when it leaves to run the image (sheet
//!   §6.3, §7), and its next stage must answer a new connection there within
//!   `--stage-timeout`. A network fastboot device that moves to another
//!   address cannot be followed.

use std::time::{Duration, Instant};

use racklet_link::{Connector, LinkError, Selector};

use crate::FastbootError;
use crate::transport::TcpTransport;

/// `HOST:PORT` when the run's `--port` is `tcp:HOST:PORT`.
pub fn address(conn: &Connector) -> Option<String> {
    conn.selector.as_ref().and_then(Selector::tcp_address)
}

/// How long one connection attempt and its handshake may take.
const ATTEMPT: Duration = Duration::from_secs(2);
/// Pause between attempts while a device is awaited.
const RETRY: Duration = Duration::from_millis(50);

/// Connects to `addr` and does the handshake, trying again for `within`
/// (once when `None`). Nothing there is [`LinkError::NotFound`] (`what`
/// names the stage awaited); a handshake that answered wrongly is
/// [`FastbootError::Handshake`] at once.
pub fn connect(
    conn: &mut Connector,
    addr: &str,
    within: Option<Duration>,
    what: &str,
) -> Result<TcpTransport, FastbootError> {
    let start = Instant::now();
    let mut announced = false;
    loop {
        let last = match TcpTransport::connect(addr, ATTEMPT) {
            Ok(t) => return Ok(t),
            // A device that is not there (yet): refused, reset, or closed
            // before its half of the handshake (a server between sessions).
            Err(FastbootError::Link(e)) => e.to_string(),
            Err(FastbootError::Handshake { reason, .. }) if reason.contains("closed the connection") => {
                reason
            }
            Err(e) => return Err(e),
        };
        let left = within.unwrap_or_default().saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(FastbootError::Link(LinkError::NotFound {
                what: format!("{what} ({last})"),
                at: Some(format!("tcp:{addr}")),
                waited: within,
            }));
        }
        if conn.progress.cancelled() {
            return Err(FastbootError::Link(LinkError::Interrupted));
        }
        if !announced {
            conn.progress.say(format!("waiting for {what} at tcp:{addr}..."));
            announced = true;
        }
        std::thread::sleep(RETRY.min(left));
    }
}
