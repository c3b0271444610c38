//! The virtual USB boot ROMs' receivers (racklet_sim's Rockchip maskrom and
//! usbplug, Canaan K230 ROM, SpacemiT K1 / T-Head TH1520 fastboot devices),
//! driven directly through racklet_sim::usb::UsbDevice with a sequence of
//! transfers decoded from the input: what a buggy or hostile host could send.
//!
//! Input: byte 0 picks the device and its fault; then operations, each an op
//! byte and its arguments (see `run`). `racklet_fuzz::sim_ops` encodes them
//! for the seeds.
//!
//! Invariants:
//! - no panic, whatever the order of requests;
//! - bulk IN answers are at most the length asked for (the bus passes them
//!   on untruncated);
//! - while attached, the device keeps its port path and its VID;
//! - each device's report (verdict / summary) can always be made.
#![no_main]
use libfuzzer_sys::fuzz_target;

use racklet_fuzz::Bytes;
use racklet_link::ControlSetup;
use racklet_sim::rom::Faults;
use racklet_sim::usb::UsbDevice;
use racklet_sim::{canaan, fastboot, rockchip};

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let sel = b.u8();
    let fault = b.u8();
    match sel % 4 {
        0 => {
            let chips = ["rk3568", "rk3399", "rk3588", "rk3328", "px30", "rv1126", "rk3288", "rk3506"];
            let chip = rockchip::chip_model(chips[(sel as usize >> 2) % chips.len()]).expect("known chip");
            let faults = rockchip::RockchipFault::ALL;
            let f = if fault < 0x80 {
                rockchip::RockchipFault::None
            } else {
                faults[fault as usize % faults.len()].1
            };
            let mut d = rockchip::RockchipRom::new(chip, "fuzz-1", f);
            run(&mut d, &mut b, None);
            let _ = (d.verdict(), d.usbplug_running());
        }
        1 => {
            let all = <canaan::Fault as racklet_sim::rom::Faults>::ALL;
            let f = (fault >= 0x80).then(|| all[fault as usize % all.len()].1);
            let chip = canaan::CHIPS[(sel >> 2) as usize % canaan::CHIPS.len()];
            let mut d = canaan::K230Rom::new(chip, "fuzz-1").with_fault(f);
            run(&mut d, &mut b, None);
            let _ = (d.verdict(), d.mode(), d.dram_ready(), d.read(0x8030_0000, 16));
        }
        s => {
            let soc = if s == 2 { fastboot::Soc::K1 } else { fastboot::Soc::Th1520 };
            let all = <fastboot::Fault as Faults>::ALL;
            let f = (fault >= 0x80).then(|| all[fault as usize % all.len()].1);
            let mut d = fastboot::FastbootDevice::new(soc, "fuzz-1").with_fault(f);
            let mut hp = |d: &mut fastboot::FastbootDevice, data: &[u8]| {
                let _ = d.host_packet(data);
                if let Some(r) = d.next_response() {
                    assert!(!r.is_empty());
                }
            };
            run(&mut d, &mut b, Some(&mut hp));
            let _ = (d.summary(), d.stage(), d.in_data_phase(), d.reachable());
        }
    }
});

fn setup(b: &mut Bytes<'_>) -> ControlSetup {
    ControlSetup { request_type: b.u8(), request: b.u8(), value: b.u16(), index: b.u16() }
}

/// Ops: 0 control OUT (setup, u16-prefixed data), 1 control IN (setup, u16
/// length), 2 bulk OUT (endpoint, u16-prefixed data), 3 bulk IN (endpoint,
/// u16 length), 4 tick, 5 `n` ticks, 6 device-specific packet (fastboot's
/// host_packet; a bulk OUT on the device's own endpoint otherwise), 7 a
/// control OUT with `n` zero-filled 4096-byte chunks (large images cheaply).
type HostPacket<'f, D> = &'f mut dyn FnMut(&mut D, &[u8]);

fn run<D: UsbDevice>(d: &mut D, b: &mut Bytes<'_>, mut host_packet: Option<HostPacket<'_, D>>) {
    let port = d.info().map(|i| i.port_path);
    let mut steps = 0;
    while !b.is_empty() && steps < 512 {
        steps += 1;
        d.tick();
        match b.u8() % 8 {
            0 => {
                let s = setup(b);
                let data = b.chunk();
                let _ = d.control_out(s, data);
            }
            1 => {
                let s = setup(b);
                let len = b.u16();
                let _ = d.control_in(s, len);
            }
            2 => {
                let ep = b.u8();
                let data = b.chunk();
                let _ = d.bulk_out(ep, data);
            }
            3 => {
                let ep = b.u8();
                let len = b.u16() as usize;
                if let Ok(v) = d.bulk_in(ep, len) {
                    assert!(v.len() <= len, "{} bytes for a {len}-byte bulk IN", v.len());
                }
            }
            4 => {}
            5 => {
                for _ in 0..b.u8() {
                    d.tick();
                }
            }
            6 => {
                let data = b.chunk();
                match host_packet.as_mut() {
                    Some(f) => f(d, data),
                    None => {
                        let _ = d.bulk_out(0x01, data);
                    }
                }
            }
            _ => {
                let s = setup(b);
                for _ in 0..b.u8() % 64 {
                    let _ = d.control_out(s, &[0u8; 4096]);
                }
            }
        }
        if let Some(i) = d.info() {
            assert_eq!(Some(&i.port_path), port.as_ref());
            assert!(i.vid != 0);
        }
    }
}
