//! How fastboot packets travel: USB bulk endpoints or TCP frames.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use racklet_link::{LinkError, UsbLink};

use crate::{FASTBOOT_CLASS, FastbootError};

/// One fastboot transport. A packet is one command, one response, or one
/// piece of a data phase.
pub trait Transport {
    /// Sends one packet.
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<(), FastbootError>;
    /// Sends one piece of a data phase; it may still be on its way when
    /// this returns (USB keeps [`racklet_link::usb::OUT_IN_FLIGHT`] bytes
    /// in flight, so the bus does not idle between pieces). The next
    /// receive waits for it, and reports its failure. The default is
    /// [`Transport::send`].
    fn send_data(&mut self, data: &[u8], timeout: Duration) -> Result<(), FastbootError> {
        self.send(data, timeout)
    }
    /// Receives one packet of at most `max` bytes (larger packets are an
    /// error on TCP, where the frame says its length; on USB the read asks
    /// for `max` rounded up to whole max-size packets).
    fn recv(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError>;
    /// Receives one answer to a command (at most `max` bytes). On USB at
    /// full speed it is read packet by packet, so an answer that ends on a
    /// packet boundary still ends; elsewhere it is [`Transport::recv`].
    fn recv_answer(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError> {
        self.recv(max, timeout)
    }
    /// Where the device is, for messages.
    fn describe(&self) -> String;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<(), FastbootError> {
        (**self).send(data, timeout)
    }
    fn send_data(&mut self, data: &[u8], timeout: Duration) -> Result<(), FastbootError> {
        (**self).send_data(data, timeout)
    }
    fn recv(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError> {
        (**self).recv(max, timeout)
    }
    fn recv_answer(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError> {
        (**self).recv_answer(max, timeout)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Fastboot over the bulk endpoints of the 0xff/0x42/0x03 interface.
pub struct UsbTransport<L> {
    link: L,
    ep_in: u8,
    ep_out: u8,
    max_packet: usize,
}

impl<L: UsbLink> UsbTransport<L> {
    /// Finds the fastboot interface in the device's descriptors (endpoint
    /// addresses are never hard-coded).
    pub fn new(link: L) -> Result<Self, FastbootError> {
        let info = link.info();
        let (intf, ep_in, ep_out) =
            info.find_bulk_interface(Some(FASTBOOT_CLASS)).ok_or_else(|| FastbootError::NoInterface {
                device: format!("USB device {} at port {}", info.id(), info.port_path),
            })?;
        let max_packet = intf
            .endpoints
            .iter()
            .find(|e| e.address == ep_in)
            .map(|e| usize::from(e.max_packet_size))
            .filter(|&m| m > 0)
            .unwrap_or(512);
        Ok(UsbTransport { link, ep_in, ep_out, max_packet })
    }

    /// The link, e.g. to read its [`racklet_link::UsbInfo`].
    pub fn link(&self) -> &L {
        &self.link
    }

    /// wMaxPacketSize of the bulk IN endpoint.
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }
}

/// How long the rest of an answer that ended on a packet boundary may take:
/// its packets follow each other within a frame or two (1 ms each).
const ANSWER_TAIL: Duration = Duration::from_millis(50);

impl<L: UsbLink> UsbTransport<L> {
    /// One answer read packet by packet (wMaxPacketSize below 256). It ends
    /// on a short packet, at `len` bytes, or when no further packet comes
    /// within [`ANSWER_TAIL`]. An answer padded after a NUL (the K1 ROM) is
    /// cut at the padding's end so its garbage is not taken for the next
    /// answer.
    fn recv_by_packet(&mut self, len: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError> {
        let mps = self.max_packet;
        let mut answer = self.link.bulk_in(self.ep_in, mps, timeout)?;
        while answer.len() % mps == 0 && !answer.is_empty() && answer.len() < len {
            match self.link.bulk_in(self.ep_in, mps, ANSWER_TAIL) {
                Ok(p) if p.is_empty() => break,
                Ok(p) => answer.extend_from_slice(&p),
                // Nothing more came, or the device left after its last
                // answer (`continue`, `reboot`): the answer is whole.
                Err(LinkError::Timeout { .. } | LinkError::Disconnected { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(answer)
    }
}

impl<L: UsbLink> Transport for UsbTransport<L> {
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<(), FastbootError> {
        // No trailing zero-length packet: the AOSP Linux client sends none
        // and devices count bytes against the DATA length (sheet §1.1).
        Ok(self.link.bulk_out(self.ep_out, data, timeout)?)
    }

    fn send_data(&mut self, data: &[u8], timeout: Duration) -> Result<(), FastbootError> {
        Ok(self.link.queue_bulk_out(self.ep_out, data, timeout)?)
    }

    fn recv(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError> {
        // nusb wants IN lengths in whole max-size packets.
        let len = max.max(1).div_ceil(self.max_packet) * self.max_packet;
        Ok(self.link.bulk_in(self.ep_in, len, timeout)?)
    }

    fn recv_answer(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError> {
        let len = max.max(1).div_ceil(self.max_packet) * self.max_packet;
        // A transfer ends only on a short packet or a full buffer. With
        // 512-byte packets every plausible answer (the text alone, or
        // padded to 64 or 256 bytes) is a short packet. With 64-byte ones
        // (full speed: the K1 ROM on blank media) a padded answer ends on a
        // packet boundary and a longer read would never end: read one packet
        // at a time instead (review F1).
        if self.max_packet >= 256 || len <= self.max_packet {
            return Ok(self.link.bulk_in(self.ep_in, len, timeout)?);
        }
        self.recv_by_packet(len, timeout)
    }

    fn describe(&self) -> String {
        let i = self.link.info();
        format!("USB {} at port {}", i.id(), i.port_path)
    }
}

/// Fastboot over TCP: `FB01` handshake, then every packet in both
/// directions as a u64 big-endian length and that many bytes.
pub struct TcpTransport {
    stream: TcpStream,
    peer: String,
    version: u8,
}

/// The host's TCP protocol version.
pub const TCP_VERSION: u8 = 1;

fn io_err(op: &str, peer: &str, e: std::io::Error, timeout: Duration) -> FastbootError {
    use std::io::ErrorKind as K;
    let op = format!("{op} (tcp:{peer})");
    FastbootError::Link(match e.kind() {
        K::WouldBlock | K::TimedOut => LinkError::Timeout { op, after: timeout },
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::NotConnected => {
            LinkError::Disconnected { op }
        }
        _ => LinkError::io(op, e),
    })
}

impl TcpTransport {
    /// Connects to `addr` (`host:port`) and does the handshake.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Self, FastbootError> {
        let sa = addr
            .to_socket_addrs()
            .map_err(|e| io_err("resolving the address", addr, e, timeout))?
            .next()
            .ok_or_else(|| FastbootError::Handshake {
                peer: addr.into(),
                reason: "the address resolves to nothing".into(),
            })?;
        let stream =
            TcpStream::connect_timeout(&sa, timeout).map_err(|e| io_err("connecting", addr, e, timeout))?;
        Self::handshake(stream, timeout)
    }

    /// Does the handshake on a connected stream.
    pub fn handshake(mut stream: TcpStream, timeout: Duration) -> Result<Self, FastbootError> {
        let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
        // Small packets (commands, responses) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let t = Some(timeout.max(Duration::from_millis(1)));
        stream
            .set_read_timeout(t)
            .and_then(|_| stream.set_write_timeout(t))
            .map_err(|e| io_err("setup", &peer, e, timeout))?;
        stream.write_all(b"FB01").map_err(|e| io_err("sending the handshake", &peer, e, timeout))?;
        let mut hello = [0u8; 4];
        stream.read_exact(&mut hello).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FastbootError::Handshake {
                peer: peer.clone(),
                reason: "the device closed the connection".into(),
            },
            _ => io_err("reading the handshake", &peer, e, timeout),
        })?;
        if &hello[..2] != b"FB" || !hello[2..].iter().all(u8::is_ascii_digit) {
            return Err(FastbootError::Handshake {
                peer,
                reason: format!("unrecognized initialization message {:?}", String::from_utf8_lossy(&hello)),
            });
        }
        let theirs = (hello[2] - b'0') * 10 + (hello[3] - b'0');
        if theirs == 0 {
            return Err(FastbootError::Handshake { peer, reason: "unknown TCP protocol version 00".into() });
        }
        Ok(TcpTransport { stream, peer, version: theirs.min(TCP_VERSION) })
    }

    /// The protocol version both sides use.
    pub fn version(&self) -> u8 {
        self.version
    }

    fn set_timeout(&mut self, timeout: Duration) -> Result<(), FastbootError> {
        let t = Some(timeout.max(Duration::from_millis(1)));
        self.stream
            .set_read_timeout(t)
            .and_then(|_| self.stream.set_write_timeout(t))
            .map_err(|e| io_err("setup", &self.peer, e, timeout))
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<(), FastbootError> {
        self.set_timeout(timeout)?;
        let len = (data.len() as u64).to_be_bytes();
        self.stream.write_all(&len).map_err(|e| io_err("sending", &self.peer, e, timeout))?;
        self.stream.write_all(data).map_err(|e| io_err("sending", &self.peer, e, timeout))
    }

    fn recv(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, FastbootError> {
        self.set_timeout(timeout)?;
        let mut len = [0u8; 8];
        self.stream.read_exact(&mut len).map_err(|e| io_err("receiving", &self.peer, e, timeout))?;
        let len = u64::from_be_bytes(len);
        if len > max as u64 {
            return Err(FastbootError::ResponseTooLong {
                command: "(a TCP frame)".into(),
                len: usize::try_from(len).unwrap_or(usize::MAX),
            });
        }
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf).map_err(|e| io_err("receiving", &self.peer, e, timeout))?;
        Ok(buf)
    }

    fn describe(&self) -> String {
        format!("tcp:{}", self.peer)
    }
}
