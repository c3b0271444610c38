//! The loader against racklet-sim's virtual Sophgo ROM over real
//! pseudo-terminals, through the real serialport backend, following the
//! ROM across its re-enumerations the way the CLI does (by USB port path).

use std::time::{Duration, Instant};

use racklet_link::progress::CollectProgress;
use racklet_link::{Classify, FailureClass, SerialBus, SerialInfo};
use racklet_sim::serial::SimSerialBus;
use racklet_sim::sophgo::{SophgoFault, SophgoRom, SophgoRomConfig};
use racklet_sophgo::{Loader, Options, SessionOutcome, SophgoError, fip};

fn bl2(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    v[..4].copy_from_slice(&[0x6f, 0, 0, 2]);
    v
}

/// The next enumeration at port path `pp` whose tty is not `old` (or any
/// after `old` was seen gone), within `timeout`.
fn next_port(bus: &SimSerialBus, old: Option<&str>, timeout: Duration) -> Option<SerialInfo> {
    let start = Instant::now();
    let mut gone = old.is_none();
    while start.elapsed() < timeout {
        match bus.ports().unwrap().into_iter().find(|p| p.port_path.as_deref() == Some("1-2")) {
            Some(p) if gone || Some(p.path.as_str()) != old => return Some(p),
            Some(_) => {}
            None => gone = true,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Boots `fipb`; returns the sessions served and the loader's result.
fn boot(rom_cfg: SophgoRomConfig, fipb: Vec<u8>) -> (Result<Vec<SessionOutcome>, SophgoError>, SophgoRom) {
    let bus = SimSerialBus::new();
    let rom = SophgoRom::spawn(bus.clone(), rom_cfg, None).unwrap();
    let mut loader =
        Loader::boot(fipb, Options { ack_timeout: Duration::from_secs(2), ..Options::default() }).unwrap();
    let mut progress = CollectProgress::default();
    let mut outcomes = Vec::new();
    let mut old: Option<String> = None;
    let r = loop {
        let timeout = if loader.finished() { Duration::from_millis(500) } else { Duration::from_secs(5) };
        let Some(info) = next_port(&bus, old.as_deref(), timeout) else { break Ok(outcomes) };
        let mut link = bus.open(&info, 115200).unwrap();
        match loader.session(&mut *link, &mut progress) {
            Ok(o) => outcomes.push(o),
            Err(e) => break Err(e),
        }
        old = Some(info.path);
    };
    (r, rom)
}

#[test]
fn boots_through_probe_param1_and_bl2() {
    for len in [100usize, 0x37000] {
        let body = bl2(len);
        let fipb = fip::build(&body, 0x37000).unwrap();
        let (r, mut rom) = boot(SophgoRomConfig::new("1-2", 0x0C00_0000, 0x37000), fipb.clone());
        let outcomes = r.unwrap();
        assert_eq!(outcomes.len(), 3, "{outcomes:?}");
        assert_eq!(outcomes[0], SessionOutcome::Probe);
        let v = rom.verdict().unwrap();
        assert!(v.contains("jumped to 0xc000020"), "{v}");
        let s = rom.state();
        assert_eq!(s.param1.as_deref(), Some(&fipb[..4096]));
        assert_eq!(s.bl2.as_deref(), Some(&fipb[4096..]));
        // ACK counter and CRC were accepted at every step; the ROM saw 3 sessions.
        assert_eq!(s.sessions.len(), 3);
        assert!(s.sessions[1..].iter().all(|x| x.flag_ok));
    }
}

#[test]
fn faults_over_a_real_pty() {
    let fipb = fip::build(&bl2(3000), 0x37000).unwrap();
    let cfg = |f: SophgoFault| {
        let mut c = SophgoRomConfig::new("1-2", 0x3BC0_0000, 0x19000);
        c.fault = Some(f);
        c
    };
    // Recovered: one bad ACK CRC, a lost BREAK ACK. Failed: each with the
    // right class, and the ROM agrees that nothing ran.
    let cases = [
        (SophgoFault::BadAckCrc, None),
        (SophgoFault::NoBreakAck, None),
        (SophgoFault::BadAckCrcAlways, Some(FailureClass::Io)),
        (SophgoFault::WrongOffset, Some(FailureClass::Io)),
        (SophgoFault::Vanish, Some(FailureClass::Disconnected)),
        (SophgoFault::RejectBl2, Some(FailureClass::Rejected)),
        (SophgoFault::WindowMissed, Some(FailureClass::Disconnected)),
    ];
    std::thread::scope(|s| {
        for (f, class) in cases {
            let fipb = fipb.clone();
            s.spawn(move || {
                let (r, mut rom) = boot(cfg(f), fipb);
                match class {
                    None => {
                        r.unwrap_or_else(|e| panic!("{f:?}: {e}"));
                        assert!(rom.verdict().unwrap().contains("jumped to 0x3bc00020"), "{f:?}");
                    }
                    Some(class) => {
                        let e = r.expect_err(&format!("{f:?} must fail"));
                        assert_eq!(e.class(), class, "{f:?}: {e}");
                        assert!(rom.verdict().is_err(), "{f:?}");
                    }
                }
            });
        }
    });
}
