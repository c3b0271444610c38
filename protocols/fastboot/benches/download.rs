//! Throughput of the client's data phase against the virtual ROM, over the
//! in-process USB link and over TCP loopback, and response parsing.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racklet_fastboot::{Fastboot, TcpTransport, UsbTransport, parse_response};
use racklet_link::{NoProgress, UsbBus};
use racklet_sim::fastboot::{FastbootDevice, Soc, serve_tcp_connection};
use racklet_sim::usb::SimUsbBus;

const SIZE: usize = 16 * 1024 * 1024;

fn downloads(c: &mut Criterion) {
    let data = vec![0x5au8; SIZE];
    let mut g = c.benchmark_group("download 16 MiB");
    g.throughput(Throughput::Bytes(SIZE as u64)).sample_size(10).measurement_time(Duration::from_secs(5));

    g.bench_function("usb (in-process virtual U-Boot)", |b| {
        b.iter(|| {
            let bus = SimUsbBus::new();
            let mut d = FastbootDevice::new(Soc::Th1520, "1-1");
            // Walk the virtual board to its U-Boot stage (256 MiB buffer).
            for pkt in [&b"download:00000001"[..], b"x", b"flash:ram", b"reboot"] {
                d.host_packet(pkt).unwrap();
                while d.next_response().is_some() {}
            }
            d.reattach_now();
            bus.attach(d);
            let info = bus.devices().unwrap().remove(0);
            let mut fb = Fastboot::new(UsbTransport::new(bus.open(&info).unwrap()).unwrap());
            fb.download("bench", &data, &mut NoProgress).unwrap();
        })
    });

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let dev = Arc::new(Mutex::new(FastbootDevice::new(Soc::K1, "tcp")));
    {
        let mut d = dev.lock().unwrap();
        let mut fsbl = vec![0u8; 0x1100];
        fsbl[0x100..0x104].copy_from_slice(b"AIHD");
        fsbl[0xfe0..0xfe4].copy_from_slice(b"AIHD");
        for pkt in [b"download:00001100".as_slice(), &fsbl, b"continue"] {
            d.host_packet(pkt).unwrap();
            while d.next_response().is_some() {}
        }
        d.reattach_now();
    }
    let d2 = dev.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let _ = serve_tcp_connection(&d2, s.unwrap(), Duration::from_secs(30));
        }
    });
    g.bench_function("tcp loopback (virtual K1 FSBL)", |b| {
        let mut fb = Fastboot::new(TcpTransport::connect(&addr, Duration::from_secs(5)).unwrap());
        b.iter(|| fb.download("bench", &data, &mut NoProgress).unwrap())
    });
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let mut k1 = b"OKAY1.0\0".to_vec();
    k1.resize(64, 0xa5);
    c.bench_function("parse K1 ROM response", |b| {
        b.iter(|| parse_response(std::hint::black_box(&k1)).unwrap())
    });
}

criterion_group!(benches, downloads, parsing);
criterion_main!(benches);
