//! The client against the virtual ROMs of racklet-sim (written from the
//! fact sheet, not from this crate), in-process over USB and over real TCP
//! sockets on 127.0.0.1, plus hand-written TCP peers for framing edge cases.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use racklet_fastboot::client::{Departure, Fastboot};
use racklet_fastboot::{FastbootError, TcpTransport, UsbTransport, k1, th1520};
use racklet_link::testing::CollectProgress;
use racklet_link::{Classify, FailureClass, UsbBus, UsbInfo};
use racklet_sim::fastboot::{FastbootDevice, Fault, ReplyStyle, Soc, Stage, serve_tcp_connection};
use racklet_sim::usb::BusSpeed;
use racklet_sim::usb::SimUsbBus;

const T: Duration = Duration::from_secs(5);

fn fit(n: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
    b[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
    b
}

fn spl(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn open(bus: &SimUsbBus, info: &UsbInfo) -> Fastboot<UsbTransport<Box<dyn racklet_link::UsbLink>>> {
    Fastboot::new(UsbTransport::new(bus.open(info).unwrap()).unwrap())
}

fn follow(bus: &SimUsbBus, prev: &UsbInfo, vid: u16, pid: u16) -> UsbInfo {
    racklet_link::discover::follow_usb(
        bus,
        &prev.port_path,
        &|d| d.vid == vid && d.pid == pid,
        Some(prev.address),
        Duration::from_secs(2),
        &|| false,
    )
    .unwrap()
}

#[test]
fn k1_over_usb_rom_then_fsbl_then_uboot() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "3-2"));
    let rom = bus.devices().unwrap().remove(0);
    let mut p = CollectProgress::default();
    let fsbl = k1::build_fsbl(&spl(5000));
    let mut fb = open(&bus, &rom);
    let (id, dep) = k1::boot_fsbl(&mut fb, rom.serial.as_deref(), &fsbl, &mut p).unwrap();
    assert_eq!(id.version_brom.as_deref(), Some("1.0"), "read through the NUL and garbage");
    assert!(id.is_rom());
    assert_eq!(dep, Departure::Acknowledged);

    let fsbl_dev = follow(&bus, &rom, 0x361c, 0x1001);
    assert_ne!(fsbl_dev.address, rom.address);
    let itb = fit(3 * 1024 * 1024 + 5);
    let mut fb = open(&bus, &fsbl_dev);
    // The FSBL does not answer version-brom: identification says "not the ROM".
    let id = k1::identify(&mut fb, fsbl_dev.serial.as_deref(), &mut p).unwrap();
    assert!(!id.is_rom());
    k1::stage_and_continue(&mut fb, "u-boot.itb", &itb, &mut p).unwrap();

    let uboot = follow(&bus, &fsbl_dev, 0x361c, 0x1001);
    let mut fb = open(&bus, &uboot);
    assert_eq!(fb.getvar("version", &mut p).unwrap(), "0.4");
    // U-Boot is not the ROM: boot_fsbl refuses to send it anything.
    let e = k1::boot_fsbl(&mut fb, uboot.serial.as_deref(), &fsbl, &mut p).unwrap_err();
    assert_eq!(e.class(), FailureClass::NotFound, "{e}");

    let d = dev.lock().unwrap();
    assert_eq!(d.downloads.len(), 2);
    assert_eq!(d.downloads[0].bytes, fsbl);
    assert_eq!(d.downloads[1].bytes, itb);
    assert_eq!(d.started.len(), 2);
    assert_eq!(p.bytes(), (fsbl.len() + itb.len()) as u64);
}

/// Review F1: at full speed (64-byte packets; the K1 ROM on blank media)
/// an answer padded to 64 or 256 bytes ends on a packet boundary with no
/// short packet, so a read longer than the answer never ends. Every framing
/// the ROM plausibly uses, at both speeds, through the whole K1 chain.
#[test]
fn k1_rom_answers_are_read_in_every_framing_at_both_speeds() {
    for speed in [BusSpeed::High, BusSpeed::Full] {
        for style in [ReplyStyle::Exact, ReplyStyle::NulPadded(64), ReplyStyle::NulPadded(256)] {
            let bus = SimUsbBus::new();
            let dev = bus.attach(FastbootDevice::new(Soc::K1, "3-2").with_speed(speed).with_rom_reply(style));
            let rom = bus.devices().unwrap().remove(0);
            let mut p = CollectProgress::default();
            let fsbl = k1::build_fsbl(&spl(5000));
            let mut fb = open(&bus, &rom);
            fb.timeouts.command = Duration::from_millis(500);
            let (id, _) = k1::boot_fsbl(&mut fb, rom.serial.as_deref(), &fsbl, &mut p)
                .unwrap_or_else(|e| panic!("{speed:?} {style:?}: {e}"));
            assert_eq!(id.version_brom.as_deref(), Some("1.0"), "{speed:?} {style:?}");
            // The ROM says version 0.4 as U-Boot does; its serial tells it apart.
            assert_eq!(id.version.as_deref(), Some("0.4"), "{speed:?} {style:?}");
            assert!(id.is_rom());
            let spl_dev = follow(&bus, &rom, 0x361c, 0x1001);
            let mut fb = open(&bus, &spl_dev);
            k1::stage_and_continue(&mut fb, "u-boot.itb", &fit(70_001), &mut p).unwrap();
            let d = dev.lock().unwrap();
            let cmds: Vec<&str> =
                d.log.iter().filter(|(s, _)| *s == Stage::Rom).map(|(_, c)| c.as_str()).collect();
            let download = format!("download:{:08x}", fsbl.len());
            assert_eq!(
                cmds,
                ["getvar:version-brom", "getvar:version", "getvar:max-download-size", &download, "continue"],
                "{speed:?} {style:?}: the ROM's padding must not be taken for the next answer"
            );
            assert_eq!(d.started.len(), 2, "{speed:?} {style:?}");
        }
    }
}

#[test]
fn k1_rom_refusal_of_a_raw_file_happens_before_sending() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::K1, "1-1"));
    let rom = bus.devices().unwrap().remove(0);
    let mut fb = open(&bus, &rom);
    let e = k1::boot_fsbl(&mut fb, None, &spl(8192), &mut CollectProgress::default()).unwrap_err();
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(e.to_string().contains("AIHD"), "{e}");
    assert!(dev.lock().unwrap().log.is_empty());
}

#[test]
fn th1520_over_usb_ram_then_uboot() {
    let bus = SimUsbBus::new();
    let dev = bus.attach(FastbootDevice::new(Soc::Th1520, "2-1.4"));
    let rom = bus.devices().unwrap().remove(0);
    assert_eq!(rom.serial, None);
    let img = spl(1_030_952);
    let mut p = CollectProgress::default();
    let mut fb = open(&bus, &rom);
    assert_eq!(th1520::boot_ram(&mut fb, &img, &mut p).unwrap(), Departure::Acknowledged);
    let ub = follow(&bus, &rom, 0x1234, 0x8888);
    assert_eq!(ub.port_path, "2-1.4");
    let d = dev.lock().unwrap();
    assert_eq!(d.flashed, vec![(Stage::Rom, "ram".to_string(), img.len())]);
    assert_eq!(d.started[0].what, "ram image");
    assert_eq!(d.downloads[0].bytes, img);
    let cmds: Vec<&str> = d.log.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(cmds, ["getvar:max-download-size", "download:000fbb28", "flash:ram", "reboot"]);
}

fn usb_fault(soc: Soc, fault: Fault) -> FastbootError {
    let bus = SimUsbBus::new();
    bus.attach(FastbootDevice::new(soc, "1-1").with_fault(Some(fault)));
    let rom = bus.devices().unwrap().remove(0);
    let mut fb = open(&bus, &rom);
    fb.timeouts.command = Duration::from_millis(50);
    let mut p = CollectProgress::default();
    match soc {
        Soc::K1 => {
            k1::boot_fsbl(&mut fb, rom.serial.as_deref(), &k1::build_fsbl(&spl(100)), &mut p).map(drop)
        }
        Soc::Th1520 => th1520::boot_ram(&mut fb, &spl(100), &mut p).map(drop),
    }
    .unwrap_err()
}

#[test]
fn usb_faults_end_in_the_right_class() {
    let cases = [
        (Fault::FailDownload, FailureClass::Rejected),
        (Fault::Silent, FailureClass::Timeout),
        (Fault::BadStatus, FailureClass::Io),
        (Fault::LongResponse, FailureClass::Io),
        (Fault::DataSize, FailureClass::Rejected),
        (Fault::Unplug, FailureClass::Disconnected),
        (Fault::FailBoot, FailureClass::Rejected),
    ];
    for soc in [Soc::K1, Soc::Th1520] {
        for (f, class) in cases {
            let e = usb_fault(soc, f);
            assert_eq!(e.class(), class, "{soc:?} {f:?}: {e}");
        }
    }
    let e = usb_fault(Soc::K1, Fault::FailDownload);
    assert!(e.to_string().contains("download refused (injected fault)"), "{e}");
}

#[test]
fn a_device_without_the_fastboot_interface_is_refused() {
    let bus = SimUsbBus::new();
    bus.attach(FastbootDevice::new(Soc::K1, "1-1"));
    let mut link = racklet_link::testing::ScriptedUsb::new();
    link.info = bus.devices().unwrap().remove(0);
    link.info.interfaces[0].subclass = 0x43;
    let e = UsbTransport::new(link).err().unwrap();
    assert!(matches!(e, FastbootError::NoInterface { .. }), "{e}");
}

/// Serves the virtual board on 127.0.0.1 for `conns` connections.
fn tcp_sim(
    dev: FastbootDevice,
    conns: usize,
) -> (String, Arc<Mutex<FastbootDevice>>, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let dev = Arc::new(Mutex::new(dev));
    let d2 = dev.clone();
    let h = thread::spawn(move || {
        for _ in 0..conns {
            let (s, _) = l.accept().unwrap();
            let _ = serve_tcp_connection(&d2, s, Duration::from_secs(5));
        }
    });
    (addr, dev, h)
}

#[test]
fn k1_over_tcp_with_reconnects() {
    let (addr, dev, h) = tcp_sim(FastbootDevice::new(Soc::K1, "tcp"), 4);
    let mut p = CollectProgress::default();
    let fsbl = k1::build_fsbl(&spl(70_000));
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    assert_eq!(fb.transport().version(), 1);
    // The ROM says fastboot version 0.4 as U-Boot does; over USB its serial
    // string tells it apart (review F7), which TCP does not carry.
    let e = k1::boot_fsbl(&mut fb, None, &fsbl, &mut p).unwrap_err();
    assert_eq!(e.class(), FailureClass::NotFound, "{e}");
    drop(fb);
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    k1::boot_fsbl(&mut fb, Some(k1::ROM_SERIAL), &fsbl, &mut p).unwrap();
    // The device closed the connection after continue; connect again, as after re-enumeration.
    let itb = fit(2 * 1024 * 1024 + 3);
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    k1::stage_and_continue(&mut fb, "u-boot.itb", &itb, &mut p).unwrap();
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    assert_eq!(fb.getvar("product", &mut p).unwrap(), "k1-x");
    drop(fb);
    h.join().unwrap();
    let d = dev.lock().unwrap();
    assert_eq!(d.downloads[0].bytes, fsbl);
    assert_eq!(d.downloads[1].bytes, itb);
    assert_eq!(d.stage(), Stage::UBoot);
}

#[test]
fn th1520_over_tcp_and_uboot_getvar_all() {
    let (addr, dev, h) = tcp_sim(FastbootDevice::new(Soc::Th1520, "tcp").with_getvar_all(), 2);
    let img = spl(300_001);
    let mut p = CollectProgress::default();
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    assert_eq!(fb.getvar("version", &mut p).unwrap(), "0.4");
    th1520::boot_ram(&mut fb, &img, &mut p).unwrap();
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    let before = p.events.len();
    fb.getvar("all", &mut p).unwrap();
    assert!(p.events.len() > before, "INFO lines reached the sink");
    drop(fb);
    h.join().unwrap();
    assert_eq!(dev.lock().unwrap().downloads[0].bytes, img);
}

/// Writes `frames` (each u64-BE prefixed) after the handshake, byte by
/// byte or in odd pieces, and returns what the host sent.
fn scripted_peer(
    hello: &'static [u8],
    answers: Vec<Vec<u8>>,
    piece: usize,
) -> (String, thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut got = vec![0u8; 4];
        s.read_exact(&mut got).unwrap();
        s.write_all(hello).unwrap();
        if hello.len() < 4 {
            return got; // A short handshake, then the connection closes.
        }
        let mut wire = Vec::new();
        for a in &answers {
            wire.extend_from_slice(&(a.len() as u64).to_be_bytes());
            wire.extend_from_slice(a);
        }
        // Read the host's command frame first, then dribble the answers.
        let mut len = [0u8; 8];
        if s.read_exact(&mut len).is_ok() {
            let mut cmd = vec![0u8; u64::from_be_bytes(len) as usize];
            s.read_exact(&mut cmd).unwrap();
            got.extend_from_slice(&len);
            got.extend_from_slice(&cmd);
            for chunk in wire.chunks(piece) {
                if s.write_all(chunk).is_err() {
                    break;
                }
                s.flush().unwrap();
                thread::sleep(Duration::from_millis(1)); // Make the pieces separate segments.
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        got.extend_from_slice(&rest);
        got
    });
    (addr, h)
}

#[test]
fn tcp_answers_split_at_arbitrary_points() {
    for piece in [1, 3, 8, 9, 13] {
        let answers = vec![b"INFOstep one".to_vec(), b"INFOstep two".to_vec(), b"OKAY0.4".to_vec()];
        let (addr, h) = scripted_peer(b"FB01", answers, piece);
        let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
        let mut p = CollectProgress::default();
        assert_eq!(fb.getvar("version", &mut p).unwrap(), "0.4", "piece {piece}");
        drop(fb);
        let got = h.join().unwrap();
        // Capture s01: "FB01", then 00 00 00 00 00 00 00 0e "getvar:version".
        let mut want = b"FB01".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x0e]);
        want.extend_from_slice(b"getvar:version");
        assert_eq!(got, want);
    }
}

#[test]
fn tcp_handshake_failures() {
    for (hello, needle) in [(b"XX01".as_slice(), "unrecognized"), (b"FB00", "version 00"), (b"FB", "closed")]
    {
        let (addr, h) = scripted_peer(hello, vec![], 1);
        let e = TcpTransport::connect(&addr, T).err().unwrap();
        assert!(e.to_string().contains(needle), "{hello:?}: {e}");
        assert_eq!(e.class(), FailureClass::Io);
        let _ = h.join();
    }
    // A newer device version is accepted; both sides use 01.
    let (addr, h) = scripted_peer(b"FB02", vec![b"OKAY".to_vec()], 64);
    let t = TcpTransport::connect(&addr, T).unwrap();
    assert_eq!(t.version(), 1);
    drop(t);
    let _ = h.join();
}

#[test]
fn tcp_silent_device_times_out() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        thread::sleep(Duration::from_millis(500));
        drop(s);
    });
    let e = TcpTransport::connect(&addr, Duration::from_millis(100)).err().unwrap();
    assert_eq!(e.class(), FailureClass::Timeout, "{e}");
    h.join().unwrap();
}

#[test]
fn tcp_oversized_and_malformed_answers() {
    let (addr, h) = scripted_peer(b"FB01", vec![vec![b'O'; 1000]], 64);
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    let e = fb.getvar("version", &mut CollectProgress::default()).unwrap_err();
    assert!(
        matches!(&e, FastbootError::ResponseTooLong { command, len: 1000 } if command == "getvar:version"),
        "{e}"
    );
    drop(fb);
    let _ = h.join();

    let (addr, h) = scripted_peer(b"FB01", vec![b"FAILpartition table missing".to_vec()], 5);
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    let e = fb.flash("boot", &mut CollectProgress::default()).unwrap_err();
    assert!(e.to_string().contains("partition table missing"), "{e}");
    drop(fb);
    let _ = h.join();
}

#[test]
fn sim_counts_download_bytes_across_arbitrary_frames() {
    let (addr, dev, h) = tcp_sim(FastbootDevice::new(Soc::Th1520, "tcp"), 1);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let frame = |s: &mut TcpStream, b: &[u8]| {
        s.write_all(&(b.len() as u64).to_be_bytes()).unwrap();
        s.write_all(b).unwrap();
    };
    let read_frame = |s: &mut TcpStream| {
        let mut l = [0u8; 8];
        s.read_exact(&mut l).unwrap();
        let mut b = vec![0u8; u64::from_be_bytes(l) as usize];
        s.read_exact(&mut b).unwrap();
        b
    };
    s.write_all(b"FB01").unwrap();
    let mut hello = [0u8; 4];
    s.read_exact(&mut hello).unwrap();
    assert_eq!(&hello, b"FB01");
    let data = spl(61_481);
    frame(&mut s, format!("download:{:08x}", data.len()).as_bytes());
    assert_eq!(read_frame(&mut s), b"DATA0000f029");
    // Like the sheet's sparse capture: frames unrelated to any boundary.
    let mut at = 0;
    for n in [1024, 60_416, 1, 40] {
        frame(&mut s, &data[at..at + n]);
        at += n;
    }
    assert_eq!(at, data.len());
    assert_eq!(read_frame(&mut s), b"OKAY");
    frame(&mut s, b"flash:ram");
    assert_eq!(read_frame(&mut s), b"OKAY");
    drop(s);
    h.join().unwrap();
    assert_eq!(dev.lock().unwrap().downloads[0].bytes, data);
}

/// `racklet-flash sim`'s server: one session, its events in order (each
/// download whole, before the client hears OKAY), and a caller that
/// refuses an event (a save that failed) stops it. Without --keep one
/// session is one run of the board: the ROM's connection, then U-Boot's.
#[test]
fn the_tcp_server_reports_one_session_in_order() {
    use racklet_link::Classify;
    use racklet_sim::serve::fastboot::{Event, Options, serve};
    for refuse in [false, true] {
        let mut opts = Options::new("th1520", "127.0.0.1:0", None).unwrap();
        opts.keep = false;
        let (tx, rx) = std::sync::mpsc::channel();
        let seen = Mutex::new(Vec::new());
        let got = Mutex::new(Vec::new());
        let img = spl(40_000);
        let r = thread::scope(|scope| {
            let server = scope.spawn(|| {
                serve(&opts, &|e| {
                    let line = match e {
                        Event::Listening { address } => {
                            tx.send(address.to_string()).unwrap();
                            return Ok(());
                        }
                        Event::Command { stage, command } => format!("{stage} {command}"),
                        Event::Received { index, stage, bytes } => {
                            got.lock().unwrap().extend_from_slice(bytes);
                            if refuse {
                                return Err("no space left on the save disk".into());
                            }
                            format!("{stage} received #{index} {}", bytes.len())
                        }
                        Event::Started { what, bytes, .. } => format!("started {what} {bytes}"),
                        Event::Verdict { summary } => format!("verdict {summary}"),
                        Event::ConnectionError { message, .. } => format!("error {message}"),
                    };
                    seen.lock().unwrap().push(line);
                    Ok(())
                })
            });
            let addr = rx.recv_timeout(T).unwrap();
            let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
            let r = th1520::boot_ram(&mut fb, &img, &mut CollectProgress::default());
            drop(fb);
            assert_eq!(r.is_err(), refuse, "{r:?}");
            if !refuse {
                // One run of the board: the ROM started vendor U-Boot, which
                // answers the next connection; the server ends after it.
                let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
                assert_eq!(fb.getvar("version", &mut CollectProgress::default()).unwrap(), "0.4");
            }
            server.join().unwrap()
        });
        assert_eq!(*got.lock().unwrap(), img);
        let seen = seen.into_inner().unwrap();
        if refuse {
            let e = r.unwrap_err();
            assert_eq!(e.class(), FailureClass::Io);
            assert!(e.to_string().contains("no space left"), "{e}");
            // The session ends there, and says why.
            assert_eq!(
                seen[..3],
                [
                    "rom getvar:max-download-size",
                    "rom download:00009c40",
                    "error no space left on the save disk"
                ]
            );
            continue;
        }
        r.unwrap();
        assert_eq!(
            seen[..6],
            [
                "rom getvar:max-download-size",
                "rom download:00009c40",
                "rom received #0 40000",
                "rom flash:ram",
                "rom reboot",
                "started ram image 40000",
            ]
        );
        assert!(seen[6].starts_with("verdict rom started ram image (40000 bytes"), "{seen:?}");
        assert_eq!(seen[7], "uboot getvar:version", "{seen:?}");
        assert!(seen[8].starts_with("verdict "), "{seen:?}");
        assert_eq!(seen.len(), 9, "{seen:?}");
    }
}

/// `getvar:all` on a U-Boot that has it (upstream's `fastboot_getvar_all`):
/// one `INFO<name>: <value>` per variable, then OKAY; the vendor U-Boots
/// FAIL it ("Variable not implemented"), which is `None`, not an error.
#[test]
fn getvar_all_lists_variables_and_a_vendor_uboot_refuses_it() {
    let (addr, _dev, h) = tcp_sim(FastbootDevice::new(Soc::K1, "tcp").in_uboot().with_getvar_all(), 1);
    let mut p = CollectProgress::default();
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    let all = fb.getvar_all(&mut p).unwrap().expect("listed");
    assert!(all.contains(&("version".to_string(), "0.4".to_string())), "{all:?}");
    assert!(all.contains(&("product".to_string(), "k1-x".to_string())), "{all:?}");
    drop(fb);
    h.join().unwrap();
    let (addr, _dev, h) = tcp_sim(FastbootDevice::new(Soc::K1, "tcp").in_uboot(), 1);
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    assert_eq!(fb.getvar_all(&mut p).unwrap(), None);
    drop(fb);
    h.join().unwrap();
    assert_eq!(
        racklet_fastboot::client::split_var("partition-size:boot: 0x0000000001f40000"),
        ("partition-size:boot".to_string(), "0x0000000001f40000".to_string())
    );
}

/// `oem`: one packet, the INFO lines kept in order for the caller, the
/// OKAY text returned; a FAIL keeps the device's text.
#[test]
fn oem_keeps_its_info_lines_and_the_devices_refusal() {
    let answers = vec![b"INFOline one".to_vec(), b"INFOline two".to_vec(), b"OKAYdone".to_vec()];
    let (addr, h) = scripted_peer(b"FB01", answers, 5);
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    let mut p = CollectProgress::default();
    assert_eq!(fb.oem(&["hello", "world"], &mut p).unwrap(), "done");
    assert_eq!(fb.last_info(), ["line one", "line two"]);
    drop(fb);
    let got = h.join().unwrap();
    assert!(got.ends_with(b"oem hello world"), "{:?}", String::from_utf8_lossy(&got));
    let (addr, h) = scripted_peer(b"FB01", vec![b"FAILunrecognized command".to_vec()], 64);
    let mut fb = Fastboot::new(TcpTransport::connect(&addr, T).unwrap());
    let e = fb.oem(&["nope"], &mut p).unwrap_err();
    assert!(matches!(&e, FastbootError::Failed { message, .. } if message == "unrecognized command"), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);
    drop(fb);
    h.join().unwrap();
}
