//! The host side of the ROM's device-driven sessions.
//!
//! Each USB enumeration of the ROM serves one `load_image(buf, offset,
//! size)` call. The host sends the magic packet; its ACK names the fip.bin
//! `offset` and `size` wanted; the host sends that slice as DATA packets
//! (addresses relative to the session's buffer, from 0), then FLAG and
//! BREAK. The device then re-enumerates for the next request. This module
//! serves one session per call of [`Loader::session`]; the caller finds
//! and opens the port for each one.

use std::time::Duration;

use racklet_link::{Classify, FailureClass, LinkError, ProgressSink, SerialLink, UsbId};

use crate::fip::{self, FipError, FipInfo, PARAM1_SIZE};
use crate::packet::{self, ACK_LEN, Ack, DEFAULT_CHUNK, HEADER_LEN, MAX_PACKET, TOKEN_DATA};

/// What went wrong while finding or talking to the ROM.
#[derive(Debug, thiserror::Error)]
pub enum SophgoError {
    /// The link failed (timeout, disconnect, I/O) while doing `what`.
    #[error("{what}: {source}")]
    Link {
        what: String,
        #[source]
        source: LinkError,
    },
    /// No port of the ROM appeared; `bridges` are USB-UART adapters that
    /// were there instead (a common mistake: the board's console).
    #[error("{source}")]
    NoRom {
        #[source]
        source: LinkError,
        bridges: Vec<(String, UsbId)>,
    },
    /// The tty given with `--port` is another USB device.
    #[error("--port {port}: that is USB device {id} ({product}), not the Sophgo ROM ({want})")]
    NotTheRom { port: String, id: UsbId, product: String, want: String, bridge: bool },
    /// The ROM did not come back for its next session.
    #[error("the ROM did not come back at {at} within {}s for its next session", within.as_secs_f64())]
    NotBack { at: String, within: Duration },
    /// The ROM did not answer the first magic packet of the first session.
    #[error(
        "the ROM did not answer the magic packet ({source}): it has probably closed its USB download window (about 1 s after power-up) before the port was opened"
    )]
    NoAnswer {
        #[source]
        source: LinkError,
    },
    /// An ACK's CRC does not echo the packet sent. `text` is the ACK as
    /// text when it reads as text (a UART console's output).
    #[error(
        "the ACK of the {what} packet echoes CRC {got:04x}/{got2:04x}, expected {want:04x} (after {tries} tries)"
    )]
    AckCrc { what: String, want: u16, got: u16, got2: u16, tries: u32, text: Option<String> },
    /// An ACK names another token than the packet's.
    #[error("the ACK of the {what} packet names token {got}, not {want}")]
    AckToken { what: String, want: u8, got: u8 },
    /// The ROM (or the vendor FSBL) asked for bytes the image does not have.
    #[error(
        "the {who} asks for fip.bin bytes 0x{offset:x}..0x{end:x}{}, outside the file ({len} bytes): nothing was sent, and the board waits for them",
        what.as_ref().map(|w| format!(" ({w})")).unwrap_or_default(),
        end = *offset as u64 + *size as u64
    )]
    OutOfImage { who: &'static str, what: Option<String>, offset: u32, size: u32, len: usize },
    /// The ROM asked for something else in the middle of a session.
    #[error(
        "the ROM changed its request within a session: 0x{offset:x}+0x{size:x}, then 0x{now_offset:x}+0x{now_size:x}"
    )]
    RequestChanged { offset: u32, size: u32, now_offset: u32, now_size: u32 },
    /// The board asked for the same bytes again and again. The ROM tries
    /// each image once, so this is not a retry: the board restarts its boot.
    #[error(
        "the board asked for fip.bin 0x{offset:x}+0x{size:x} ({what}) {count} times: it keeps restarting its boot"
    )]
    Restarting { offset: u32, size: u32, what: String, count: u32 },
    /// The ROM's (or FSBL's) console says it rejected a stage.
    #[error("the board rejected {what}: its console says {line:?}")]
    Rejected { what: String, line: String },
    /// The ROM took param1 and did not come back for BL2.
    #[error(
        "the ROM did not ask for BL2 within {}s after taking param1: it tries each image once, so it most likely rejected param1 and booted its strapped flash",
        within.as_secs_f64()
    )]
    NoBl2Request { within: Duration },
    /// --main against a ROM that is in its probe session.
    #[error("the device is the boot ROM in its first (probe) session, not a running BL2 calling load_image")]
    NotALoadRequest,
    /// The fip.bin given is not usable.
    #[error("fip.bin: {0}")]
    Image(#[from] FipError),
}

/// What a USB-UART adapter on the board's serial pins reaches, and what to do.
pub const UART_HINT: &str = "a USB-UART adapter on the board's serial pins reaches the ROM's console (and its UART download, a different protocol), not its USB download: connect the board's USB port to the host instead";

impl Classify for SophgoError {
    fn class(&self) -> FailureClass {
        match self {
            SophgoError::Link { source, .. } | SophgoError::NoRom { source, .. } => source.class(),
            SophgoError::NotTheRom { .. } => FailureClass::BadInput,
            SophgoError::NotBack { .. } => FailureClass::Timeout,
            // No answer in time: timeout. The port failing under our hands
            // (a write or flush error, a hang-up): the ROM left the bus.
            SophgoError::NoAnswer { source } => match source {
                LinkError::Interrupted => FailureClass::Interrupted,
                LinkError::Timeout { .. } => FailureClass::Timeout,
                LinkError::PermissionDenied { .. } => FailureClass::Permission,
                _ => FailureClass::Disconnected,
            },
            SophgoError::AckCrc { .. } | SophgoError::AckToken { .. } => FailureClass::Io,
            // The ROM asks for what param1 says: outside the file is a
            // protocol fault. The FSBL asks for what param2 says: a cut file.
            SophgoError::OutOfImage { who, .. } if *who == "ROM" => FailureClass::Io,
            SophgoError::OutOfImage { .. } => FailureClass::BadInput,
            SophgoError::RequestChanged { .. } => FailureClass::Io,
            SophgoError::Restarting { .. }
            | SophgoError::Rejected { .. }
            | SophgoError::NoBl2Request { .. } => FailureClass::Rejected,
            SophgoError::NotALoadRequest => FailureClass::BadInput,
            SophgoError::Image(_) => FailureClass::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            SophgoError::Link { source, .. } => source.hint(),
            SophgoError::NoRom { bridges, .. } => {
                let mut h = String::from(
                    "the ROM offers USB for about 1 s after power-up: start racklet-flash with --wait 60s, then power the board on. If efuses changed the ROM's USB id, give it with --usb-id VID:PID. If ModemManager grabs the port, install `racklet-flash udev-rules`",
                );
                for (path, id) in bridges {
                    h.push_str(&format!(". {path} is a USB-UART adapter ({id}): {UART_HINT}"));
                }
                Some(h)
            }
            SophgoError::NotTheRom { bridge: true, .. } => Some(UART_HINT.into()),
            SophgoError::NotTheRom { .. } => {
                Some("give the ROM's port, or --usb-id when efuses changed its id".into())
            }
            SophgoError::NotBack { .. } => Some("raise --stage-timeout if the board needs longer".into()),
            SophgoError::NoAnswer { .. } => {
                Some("start racklet-flash with --wait 60s first, then power the board on".into())
            }
            SophgoError::AckCrc { text: Some(t), .. } => Some(format!(
                "the answer is text ({t:?}): this port looks like the board's UART console, not the ROM's USB download port; {UART_HINT}"
            )),
            SophgoError::Restarting { .. } => Some(
                "watch the board's console (--monitor TTY): something after the download resets it".into(),
            ),
            SophgoError::Rejected { .. } => Some(
                "check the image with `racklet-flash info`; a secure-boot part wants a signed image".into(),
            ),
            SophgoError::NoBl2Request { .. } => Some(
                "give --monitor TTY (the board's UART console) to read the ROM's verdict; check the fip.bin with `racklet-flash info` (secure-boot parts want a signed param1)".into(),
            ),
            SophgoError::OutOfImage { who, .. } if *who != "ROM" => Some(
                "give the whole fip.bin (or build it: racklet-flash image BOARD bl2.bin --ddr-param ... -o fip.bin)".into(),
            ),
            SophgoError::NotALoadRequest => Some("run without --main to boot a payload".into()),
            _ => None,
        }
    }
}

/// Tunables. The defaults follow the sheet's recommendations.
#[derive(Debug, Clone)]
pub struct Options {
    /// Data bytes per DATA packet (packet = 8 + chunk, at most 512). The
    /// vendor sends 248 (256-byte packets).
    pub chunk: usize,
    /// How long to wait for an ACK. The ROM answers at once; the tools
    /// wait 10 s (sg_boot) or longer.
    pub ack_timeout: Duration,
    /// How long to wait for the optional BREAK ACK (the ROM may drop off
    /// the bus before it is read).
    pub break_ack_timeout: Duration,
    /// How often a packet is resent when its ACK does not echo its CRC.
    pub resends: u32,
    /// How often the same request is served before the board is taken to
    /// be restarting (the ROM itself tries each image once).
    pub max_serves: u32,
    /// After a stage of the vendor FSBL, how long to wait for its next
    /// request (the vendor tool stops after 1 s without a device).
    pub next_request_gap: Duration,
    /// After BL2, how long to read the console (when there is one) for the
    /// ROM's verdict.
    pub console_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk: DEFAULT_CHUNK,
            ack_timeout: Duration::from_secs(3),
            break_ack_timeout: Duration::from_millis(300),
            resends: 3,
            max_serves: 3,
            next_request_gap: Duration::from_secs(1),
            console_wait: Duration::from_secs(1),
        }
    }
}

/// What the loader sends.
#[derive(Debug, Clone)]
enum Plan {
    /// Boot a fip.bin: serve whatever slices the ROM and the FSBL ask for.
    Boot { fip: Vec<u8>, info: FipInfo },
    /// One session for a running BL2's load_image: `data` from address 0
    /// (or, when `data` is a fip.bin, the slice the device asks for).
    Main { data: Vec<u8>, is_fip: bool },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutcome {
    /// The ROM's probe session (size 0): only the magic was sent.
    Probe,
    /// A slice was sent, then FLAG and BREAK.
    Served {
        /// "param1", "BL2" or "fip.bin 0x...".
        what: String,
        offset: u32,
        size: u32,
        bytes: u64,
        /// Whether the ROM's ACK of BREAK arrived (it may not: the ROM drops off the bus).
        break_acked: bool,
    },
    /// The device asked for bytes outside the file (a running BL2 of the
    /// user's loading its next stage, or a cut vendor image). Nothing was
    /// sent; `what` names the part when param2 does.
    Beyond { offset: u32, size: u32, what: Option<String> },
}

/// Data bytes per packet on a link of `speed`: at full speed the ROM posts
/// 64-byte OUT requests and parses each as a packet (usb_tty.c:
/// `transfer_size = 64` for CH9_USB_SPEED_FULL), so a packet must fit in 64
/// bytes there.
pub fn chunk_for(speed: Option<&str>, chunk: usize) -> usize {
    match speed {
        Some("full") | Some("low") => chunk.min(FULL_SPEED_PACKET - HEADER_LEN),
        _ => chunk,
    }
}

/// The ROM's bulk OUT request at full speed.
pub const FULL_SPEED_PACKET: usize = 64;

/// The name of a slice the ROM or the vendor FSBL asks for, from the
/// image's own tables (param1, and param2 when there is one).
pub fn name_slice(info: &FipInfo, offset: u32, size: u32) -> Option<String> {
    let o = offset as usize;
    if o == 0 && size as usize == PARAM1_SIZE {
        return Some("param1".into());
    }
    if o == info.bl2_offset() && size == info.bl2_size {
        return Some("BL2".into());
    }
    if o == PARAM1_SIZE && info.blcp_size > 0 && size == info.blcp_size {
        return Some("BLCP".into());
    }
    let p2 = info.param2.as_ref()?;
    if offset == p2.offset && size as usize == fip::PARAM2_SIZE {
        return Some("param2".into());
    }
    for part in p2.parts() {
        // The FSBL asks for at most 16 KiB of DDR parameters (bl2_opt.c).
        if offset == part.offset && (size == part.size || (part.name == "DDR_PARAM" && size < part.size)) {
            return Some(part.name.into());
        }
    }
    if offset == p2.loader_2nd_offset {
        return Some(if size == 512 { "LOADER_2ND header".into() } else { "LOADER_2ND".into() });
    }
    None
}

/// Serves the ROM's sessions for one image.
#[derive(Debug)]
pub struct Loader {
    plan: Plan,
    opts: Options,
    served: Vec<(u32, u32)>,
    sessions: u32,
    bytes: u64,
    bl2_served: bool,
    main_done: bool,
    /// The USB link speed of the current session's device, when known.
    speed: Option<String>,
}

fn link_err(what: impl Into<String>) -> impl FnOnce(LinkError) -> SophgoError {
    let what = what.into();
    move |source| SophgoError::Link { what, source }
}

/// The 16 bytes read back as text, when they look like text (a UART console).
fn as_text(b: &[u8]) -> Option<String> {
    let printable =
        b.iter().filter(|c| c.is_ascii_graphic() || **c == b' ' || **c == b'\r' || **c == b'\n').count();
    (printable * 4 >= b.len() * 3).then(|| String::from_utf8_lossy(b).into_owned())
}

impl Loader {
    /// A loader that boots `fip` (checked first).
    pub fn boot(fip_bytes: Vec<u8>, opts: Options) -> Result<Loader, SophgoError> {
        let info = fip::validate(&fip_bytes)?;
        Ok(Loader::new(Plan::Boot { fip: fip_bytes, info }, opts))
    }

    /// A loader that serves one load_image session of an already running
    /// BL2 (`--main`) with `data`.
    pub fn main(data: Vec<u8>, opts: Options) -> Loader {
        let is_fip = fip::is_fip(&data);
        Loader::new(Plan::Main { data, is_fip }, opts)
    }

    fn new(plan: Plan, mut opts: Options) -> Loader {
        opts.chunk = opts.chunk.clamp(1, MAX_PACKET - HEADER_LEN);
        Loader {
            plan,
            opts,
            served: Vec::new(),
            sessions: 0,
            bytes: 0,
            bl2_served: false,
            main_done: false,
            speed: None,
        }
    }

    /// BL2 was sent and the ROM took FLAG and BREAK (boot), or the one
    /// session is over (--main).
    pub fn finished(&self) -> bool {
        match self.plan {
            Plan::Boot { .. } => self.bl2_served,
            Plan::Main { .. } => self.main_done,
        }
    }

    /// True once BL2 was served.
    pub fn bl2_served(&self) -> bool {
        self.bl2_served
    }

    /// The USB link speed of the device the next sessions talk to ("full"
    /// keeps packets within the ROM's 64-byte requests).
    pub fn set_link_speed(&mut self, speed: Option<String>) {
        self.speed = speed;
    }

    /// Sessions served so far.
    pub fn sessions(&self) -> u32 {
        self.sessions
    }

    /// Payload bytes sent so far (DATA packets only).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes
    }

    /// The decoded fip.bin being booted.
    pub fn fip_info(&self) -> Option<&FipInfo> {
        match &self.plan {
            Plan::Boot { info, .. } => Some(info),
            Plan::Main { .. } => None,
        }
    }

    /// Sends one packet and reads its ACK, resending when the ACK does not
    /// echo the packet's CRC. `first` marks the very first packet to the ROM.
    fn exchange<L: SerialLink + ?Sized>(
        &self,
        link: &mut L,
        pkt: &[u8],
        first: bool,
    ) -> Result<Ack, SophgoError> {
        let what = packet::describe(pkt);
        let mut tries = 0;
        // The last ACK whose CRC did not match: when a resend then fails on
        // the link, that mismatch is the better explanation.
        let mut mismatch: Option<[u8; ACK_LEN]> = None;
        let crc_err = |buf: &[u8; ACK_LEN], tries: u32| {
            let ack = Ack::parse(buf);
            SophgoError::AckCrc {
                what: what.clone(),
                want: packet::crc16(pkt),
                got: ack.crc,
                got2: ack.crc2,
                tries,
                text: as_text(buf),
            }
        };
        loop {
            tries += 1;
            let mut buf = [0u8; ACK_LEN];
            let r = link.write_all(pkt).map_err(|e| (e, "sending")).and_then(|()| {
                link.read_exact(&mut buf, self.opts.ack_timeout).map_err(|e| (e, "reading the ACK of"))
            });
            match r {
                Ok(()) => {}
                Err((LinkError::Interrupted, _)) => {
                    return Err(link_err("waiting for the ROM")(LinkError::Interrupted));
                }
                Err((_, _)) if mismatch.is_some() => {
                    return Err(crc_err(&mismatch.unwrap_or_default(), tries - 1));
                }
                Err((source, _)) if first => return Err(SophgoError::NoAnswer { source }),
                Err((e, op)) => return Err(link_err(format!("{op} the {what} packet"))(e)),
            }
            let ack = Ack::parse(&buf);
            if ack.echoes(pkt) {
                if ack.token != pkt[0] {
                    return Err(SophgoError::AckToken { what, want: pkt[0], got: ack.token });
                }
                return Ok(ack);
            }
            if tries > self.opts.resends {
                return Err(crc_err(&buf, tries));
            }
            mismatch = Some(buf);
            // Drop whatever else arrived, then send the same packet again
            // (as the vendor tool does): DATA carries its own address, so a
            // resend rewrites the same bytes.
            link.clear_input().map_err(link_err("clearing the input"))?;
        }
    }

    /// Serves one session on a freshly opened port.
    pub fn session<L: SerialLink + ?Sized>(
        &mut self,
        link: &mut L,
        progress: &mut dyn ProgressSink,
    ) -> Result<SessionOutcome, SophgoError> {
        progress.check_cancel().map_err(link_err("starting a session"))?;
        // Stale bytes from an earlier enumeration are not ACKs of ours.
        link.clear_input().map_err(link_err("clearing the input"))?;
        let first = self.sessions == 0;
        let magic = packet::magic();
        let ack = self.exchange(link, &magic, first)?;
        self.sessions += 1;
        let (offset, size) = (ack.offset, ack.size);

        // Decide what this request is and which bytes answer it.
        let (what, data): (String, Vec<u8>) = match &self.plan {
            Plan::Boot { fip, info } => {
                if size == 0 {
                    progress.say("ROM probe session: magic accepted, the ROM re-enumerates".to_string());
                    return Ok(SessionOutcome::Probe);
                }
                let named = name_slice(info, offset, size);
                let end = offset as u64 + size as u64;
                if end > fip.len() as u64 {
                    return Ok(SessionOutcome::Beyond { offset, size, what: named });
                }
                let what = named.unwrap_or_else(|| format!("fip.bin 0x{offset:x}+0x{size:x}"));
                let count = self.served.iter().filter(|r| **r == (offset, size)).count() as u32;
                if count >= self.opts.max_serves {
                    return Err(SophgoError::Restarting { offset, size, what, count: count + 1 });
                }
                if count > 0 {
                    progress.say(format!(
                        "the board asks for {what} again (time {}): it has restarted its boot",
                        count + 1
                    ));
                }
                (what, fip[offset as usize..end as usize].to_vec())
            }
            Plan::Main { data, is_fip } => {
                if size == 0 {
                    return Err(SophgoError::NotALoadRequest);
                }
                if *is_fip {
                    let end = offset as u64 + size as u64;
                    if end > data.len() as u64 {
                        return Err(SophgoError::OutOfImage {
                            who: "running BL2",
                            what: None,
                            offset,
                            size,
                            len: data.len(),
                        });
                    }
                    (format!("fip.bin 0x{offset:x}+0x{size:x}"), data[offset as usize..end as usize].to_vec())
                } else {
                    let n = (size as usize).min(data.len());
                    if (size as usize) > data.len() {
                        progress.say(format!(
                            "the running BL2 asks for {size} bytes; the file has {}: sending all of it",
                            data.len()
                        ));
                    } else if (size as usize) < data.len() {
                        progress.say(format!(
                            "the running BL2 asks for {size} bytes; sending the first {size} of {}",
                            data.len()
                        ));
                    }
                    ("payload".to_string(), data[..n].to_vec())
                }
            }
        };
        self.served.push((offset, size));

        progress.stage(&what, Some(data.len() as u64));
        let mut addr = 0u64;
        for chunk in data.chunks(chunk_for(self.speed.as_deref(), self.opts.chunk)) {
            progress.check_cancel().map_err(link_err(format!("sending {what}")))?;
            let pkt = packet::packet(TOKEN_DATA, addr, chunk);
            let a = self.exchange(link, &pkt, false)?;
            if (a.offset, a.size) != (offset, size) {
                return Err(SophgoError::RequestChanged {
                    offset,
                    size,
                    now_offset: a.offset,
                    now_size: a.size,
                });
            }
            addr += chunk.len() as u64;
            self.bytes += chunk.len() as u64;
            progress.advance(chunk.len() as u64);
        }
        progress.check_cancel().map_err(link_err(format!("finishing {what}")))?;
        self.exchange(link, &packet::flag(), false)?;
        // BREAK ends the session; the ROM may drop off the bus before its
        // ACK is read, so the ACK is optional. It may even leave while the
        // host still flushes the BREAK (over real USB the host's drain then
        // finds the device gone): that is the end of the session too, and
        // the board's re-enumeration, which the caller follows, confirms it.
        let brk = packet::brk();
        let sent = match link.write_all(&brk) {
            Ok(()) => true,
            Err(LinkError::Disconnected { .. }) => false,
            Err(e) => return Err(link_err("sending the BREAK packet")(e)),
        };
        let mut buf = [0u8; ACK_LEN];
        let break_acked = sent
            && link.read_exact(&mut buf, self.opts.break_ack_timeout).is_ok()
            && Ack::parse(&buf).echoes(&brk);
        progress.done(&what);

        match &self.plan {
            Plan::Boot { info, .. } => {
                if offset as usize == info.bl2_offset() && size == info.bl2_size {
                    self.bl2_served = true;
                }
            }
            Plan::Main { .. } => self.main_done = true,
        }
        Ok(SessionOutcome::Served { what, offset, size, bytes: data.len() as u64, break_acked })
    }
}
