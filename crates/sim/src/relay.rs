//! A pty relay paced at the line rate, for benchmarks: the host opens
//! [`Relay::host_path`] as it would open a USB serial adapter, the device
//! model runs on [`Relay::device`], and every byte crosses the relay no
//! faster than the rate the host set on its port (10 bits a byte, 8N1,
//! read from the pty's termios, as an adapter would take it), and bytes from
//! the device reach the host `latency` late (an FTDI latency timer's
//! turnaround). When a [`Line`](crate::fastload::Line) is given and the
//! device's rate differs from the host's, bytes arrive garbled, as on a
//! real line.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

use crate::fastload::Line;
use crate::serial::PtyPair;

/// A running relay.
pub struct Relay {
    /// The path the host opens.
    pub host_path: String,
    /// The device model's end (a pty master: give it to a ROM or loader).
    pub device: Option<TTYPort>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _keep: Vec<TTYPort>,
}

impl Relay {
    /// A relay with `latency` on the way back to the host; `line`, when the
    /// device model changes its rate, makes mismatched rates garble.
    pub fn new(latency: Duration, line: Option<Line>) -> Result<Relay, racklet_link::LinkError> {
        let host = PtyPair::new()?;
        let dev = PtyPair::new()?;
        let err = |e: serialport::Error| racklet_link::LinkError::io("cloning a pty", e);
        let stop = Arc::new(AtomicBool::new(false));
        // The host's termios, as the adapter sees it: the master of the
        // host's pair reports the rate set on the slave.
        let rate_h2d = host.device.try_clone_native().map_err(err)?;
        let rate_d2h = host.device.try_clone_native().map_err(err)?;
        let h2d = Direction {
            from: host.device.try_clone_native().map_err(err)?,
            to: dev.client.try_clone_native().map_err(err)?,
            rate: rate_h2d,
            latency: Duration::ZERO,
            line: line.clone(),
        };
        let d2h = Direction {
            from: dev.client.try_clone_native().map_err(err)?,
            to: host.device.try_clone_native().map_err(err)?,
            rate: rate_d2h,
            latency,
            line,
        };
        let threads = vec![h2d.spawn(stop.clone()), d2h.spawn(stop.clone())];
        Ok(Relay {
            host_path: host.path,
            device: Some(dev.device),
            stop,
            threads,
            _keep: vec![host.device, host.client, dev.client],
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Direction {
    from: TTYPort,
    to: TTYPort,
    rate: TTYPort,
    latency: Duration,
    line: Option<Line>,
}

impl Direction {
    fn spawn(mut self, stop: Arc<AtomicBool>) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let _ = self.from.set_timeout(Duration::from_millis(1));
            let mut queue: VecDeque<(u8, Instant)> = VecDeque::new();
            let mut free = Instant::now();
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::SeqCst) {
                let host_baud = self.rate.baud_rate().unwrap_or(115_200).max(1);
                let byte_time = Duration::from_secs_f64(10.0 / host_baud as f64);
                let garble = self.line.as_ref().is_some_and(|l| l.baud() != host_baud);
                // Wait for input only when nothing is due soon.
                let wait = match queue.front() {
                    Some(&(_, at)) => {
                        at.saturating_duration_since(Instant::now()).min(Duration::from_millis(1))
                    }
                    None => Duration::from_millis(1),
                };
                let _ = self.from.set_timeout(wait.max(Duration::from_micros(100)));
                if let Ok(n) = self.from.read(&mut buf) {
                    let now = Instant::now();
                    for &b in &buf[..n] {
                        // On the wire one after the other, from when it came.
                        free = free.max(now) + byte_time;
                        let b = if garble { (b | 0x80).rotate_left(3) ^ 0x5A } else { b };
                        queue.push_back((b, free + self.latency));
                    }
                }
                let now = Instant::now();
                let mut out = Vec::new();
                while queue.front().is_some_and(|&(_, at)| at <= now) {
                    out.extend(queue.pop_front().map(|q| q.0));
                }
                if !out.is_empty() && self.to.write_all(&out).is_err() {
                    return;
                }
            }
        })
    }
}
