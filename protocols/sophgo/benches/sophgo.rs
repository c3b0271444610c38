//! Speed of the pieces that scale with the payload: building fip.bin, CRCs,
//! packet encoding, and a whole boot against the virtual ROM over a pty.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racklet_link::progress::NoProgress;
use racklet_link::{SerialBus, SerialInfo};
use racklet_sim::rom::VirtualRom;
use racklet_sim::serial::SimSerialBus;
use racklet_sim::sophgo::{Core, SophgoRom, SophgoRomConfig};
use racklet_sophgo::{Loader, Options, fip, packet};

const BL2: usize = 0x37000; // the largest SG200x BL2 (220 KiB)

fn wait_port(bus: &SimSerialBus, old: Option<&str>) -> Option<SerialInfo> {
    let start = std::time::Instant::now();
    let mut gone = old.is_none();
    while start.elapsed() < Duration::from_secs(2) {
        match bus.ports().unwrap().into_iter().next() {
            Some(p) if gone || Some(p.path.as_str()) != old => return Some(p),
            Some(_) => {}
            None => gone = true,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn benches(c: &mut Criterion) {
    let body: Vec<u8> = (0..BL2).map(|i| i as u8).collect();
    let mut g = c.benchmark_group("sophgo");
    g.throughput(Throughput::Bytes(BL2 as u64));
    g.bench_function("fip_build_220KiB", |b| b.iter(|| fip::build(&body, BL2).unwrap()));
    g.bench_function("crc16_220KiB", |b| b.iter(|| packet::crc16(&body)));
    g.bench_function("packets_220KiB", |b| {
        b.iter(|| {
            body.chunks(packet::DEFAULT_CHUNK)
                .map(|c| std::hint::black_box(packet::packet(0, 0, c)).len())
                .sum::<usize>()
        })
    });
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let fipb = fip::build(&body, BL2).unwrap();
    g.throughput(Throughput::Bytes(fipb.len() as u64));
    g.bench_function("boot_over_pty_220KiB", |b| {
        b.iter(|| {
            let bus = SimSerialBus::new();
            let soc = racklet_sim::sophgo::soc("sg2002").unwrap();
            let cfg = SophgoRomConfig::new(soc, Core::Riscv, "1-1").unwrap();
            let mut rom = SophgoRom::spawn(bus.clone(), cfg, None).unwrap();
            let mut l = Loader::boot(fipb.clone(), Options::default()).unwrap();
            let mut old: Option<String> = None;
            while !l.finished() {
                let info = wait_port(&bus, old.as_deref()).expect("the ROM comes back");
                let mut link = bus.open(&info, 115200).unwrap();
                l.session(&mut *link, &mut NoProgress).unwrap();
                old = Some(info.path);
            }
            assert!(rom.verdict().started());
        })
    });
    g.finish();
}

criterion_group!(sophgo, benches);
criterion_main!(sophgo);
