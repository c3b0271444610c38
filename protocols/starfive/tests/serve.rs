//! The client against the server behind `racklet-flash sim visionfive2`
//! (racklet_sim::serve::starfive), in-process: the ROM on a pty the client
//! reaches as a user would reach it with `--port`, one session and its
//! bytes (what `--save` writes), the SPL's next stage, and the server's own
//! verdict.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use racklet_image::{Arch, Target, Window};
use racklet_link::testing::CollectProgress;
use racklet_link::{Classify, Connector, FailureClass, SerialInfo};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::serve::starfive::{self as server, Event, ServeError};
use racklet_sim::starfive::Fault;
use racklet_sim::usb::SimUsbBus;
use racklet_starfive::{Inputs, Options, Report, StarfiveError, boot, plan};

/// The largest file a test reads.
const MAX_FILE: u64 = 1 << 20;

fn vf2() -> Target {
    Target {
        board: "visionfive2".into(),
        soc: "jh7110".into(),
        arch: Some(Arch::Riscv64),
        load_address: 0x0800_0000,
        entry: Some(0x0800_0000),
        window: Window { board: "visionfive2".into(), base: 0x0800_0000, size: 0x4_0000, max_payload: None },
        usb: Vec::new(),
        baud: Some(115_200),
        max_stage: MAX_FILE,
    }
}

fn payload(n: usize, spl: bool) -> Vec<u8> {
    let mut p: Vec<u8> = (0..n).map(|i| (i * 13 + (i >> 7)) as u8).collect();
    if spl {
        // u-boot common/spl/spl.c's banner and common/spl/spl_ymodem.c's report.
        p[200..232].copy_from_slice(b"\nU-Boot SPL 2025.10 (Oct 06 2025");
        p[n - 30..n - 12].copy_from_slice(b"Loaded %lu bytes\n\0");
    }
    p
}

/// What the server said, and how it ended.
struct Served {
    lines: Vec<String>,
    /// The bytes of each session, as the server hands them out.
    received: Vec<Vec<u8>>,
    result: Result<(), ServeError>,
}

/// Runs the server with `opts` and the client with the files, returns both ends.
fn run(opts: server::Options, p: &[u8], next: Option<&[u8]>) -> (Result<Report, StarfiveError>, Served) {
    run_with(opts, p, next, false)
}

/// [`run`], with `--fast` when `fast`.
fn run_with(
    opts: server::Options,
    p: &[u8],
    next: Option<&[u8]>,
    fast: bool,
) -> (Result<Report, StarfiveError>, Served) {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, b: &[u8]| -> PathBuf {
        let f = dir.path().join(name);
        std::fs::write(&f, b).unwrap();
        f
    };
    let inputs = Inputs {
        payload: Some(file("p.bin", p)),
        next_stage: next.map(|n| file("u-boot.itb", n)),
        fast: fast.then(Default::default),
    };
    let plan = plan(&inputs, &vf2()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut received = Vec::new();
            let result = server::serve(&opts, &|| stop.load(Ordering::SeqCst), &mut |ev| {
                match ev {
                    Event::Serving { tty } => tx.send(tty.to_string()).unwrap(),
                    Event::Session { line, session, .. } => {
                        lines.push(line);
                        received.push(session.received.clone());
                    }
                    Event::NextStage { line } => lines.push(line),
                }
                ControlFlow::Continue(())
            });
            Served { lines, received, result }
        })
    };
    let tty = rx.recv_timeout(Duration::from_secs(5)).expect("the server says where it serves");
    // The user's `--port /dev/pts/N`: a tty no listing describes.
    let bus = SimSerialBus::new();
    bus.publish(SerialInfo { path: tty, ..Default::default() });
    let mut progress = CollectProgress::default();
    let mut conn = Connector::new(Arc::new(SimUsbBus::new()), Arc::new(bus), &mut progress);
    conn.stage_timeout = Duration::from_secs(3);
    let mut o = Options::default();
    o.boot.xmodem.answer_timeout = Duration::from_millis(500);
    o.boot.verdict_window = Duration::from_millis(300);
    let r = boot(&mut conn, &plan, &vf2(), &o);
    // A server that waits for a second session is stopped as Ctrl-C would.
    let watchdog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(8));
            stop.store(true, Ordering::SeqCst);
        })
    };
    let served = server.join().unwrap();
    drop(watchdog);
    (r, served)
}

#[test]
fn one_session_is_served_logged_and_handed_out() {
    let p = payload(3000, false);
    let (r, served) = run(server::Options::default(), &p, None);
    r.unwrap();
    served.result.unwrap();
    assert_eq!(served.lines.len(), 1, "{:?}", served.lines);
    assert!(
        served.lines[0].starts_with("session 1: received 4096 bytes in 4 1K + 0 128-byte frames"),
        "{:?}",
        served.lines
    );
    assert!(served.lines[0].contains("loaded 3000 bytes at 0x08000000"), "{:?}", served.lines);
    let got = &served.received[0];
    assert_eq!(&got[0x400..0x400 + 3000], &p[..]);
    assert_eq!(
        u32::from_le_bytes(got[0x290..0x294].try_into().unwrap()),
        racklet_sim::crc::crc32_iso_hdlc(&p)
    );
}

#[test]
fn the_server_waits_for_the_spls_next_stage() {
    let itb: Vec<u8> = (0..3000u32).map(|i| (i % 241) as u8).collect();
    let (r, served) = run(server::Options::default(), &payload(6000, true), Some(&itb));
    let r = r.unwrap();
    assert_eq!(r.next.unwrap().transfer.bytes, 3000);
    served.result.unwrap();
    assert_eq!(served.lines.last().unwrap(), "U-Boot SPL received u-boot.itb (3000 bytes) by YMODEM");
}

#[test]
fn a_refused_image_ends_the_server_as_rejected() {
    let opts = server::Options { fault: Fault::CorruptImage, ..Default::default() };
    let (r, served) = run(opts, &payload(3000, false), None);
    assert!(matches!(r.unwrap_err(), StarfiveError::RomCrcError { .. }));
    let e = served.result.unwrap_err();
    assert!(matches!(e, ServeError::Refused { .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
    assert!(served.lines[0].contains("answered CRC Error"), "{:?}", served.lines);
}

#[test]
fn a_caller_that_breaks_ends_the_server() {
    let opts = server::Options { keep: true, ..Default::default() };
    let start = std::time::Instant::now();
    // A server that ignored the break would run until this gives up.
    let give_up = || start.elapsed() > Duration::from_secs(5);
    let r = server::serve(&opts, &give_up, &mut |ev| match ev {
        Event::Serving { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    assert!(r.is_ok());
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

/// `maskrom --port TTY --fast` against `sim visionfive2`: the served ROM
/// starts the loader it was sent, the server waits for the loader to take
/// its image and says so.
#[test]
fn a_fast_client_is_served_through_the_loader() {
    let p = payload(3000, false);
    let (r, served) = run_with(server::Options::default(), &p, None, true);
    let r = r.unwrap();
    assert_eq!(r.fast.as_ref().map(|f| f.bytes), Some(3000));
    served.result.unwrap();
    assert!(
        served.lines.iter().any(|l| l.contains("the fastload loader took 3000 bytes at 0x08008000")),
        "{:?}",
        served.lines
    );
}
