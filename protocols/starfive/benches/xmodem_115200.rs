//! XMODEM-1K of a 128 KiB image through a pseudo-terminal whose ROM side is
//! paced to 115200 baud 8N1 (racklet-sim's `Throttled` wire: each byte is
//! handed over one byte time after the previous one, and the ROM's answers
//! take their wire time too). The goal: at most 1.03x the ideal
//! wire time of the image, 131072 B / 11520 B/s = 11.378 s.
//!
//! Run: `cargo bench -p racklet-starfive --bench xmodem_115200`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use racklet_link::serial_backend::SerialPortLink;
use racklet_link::{NoProgress, SerialInfo};
use racklet_sim::serial::PtyPair;
use racklet_sim::starfive::{RomConfig, StarfiveRom};
use racklet_starfive::header::{self, HeaderOptions};
use racklet_starfive::xmodem::{self, BlockSize, XmodemConfig};

const IMAGE: usize = 128 * 1024;
const LINE_RATE: f64 = 11_520.0;

fn one_transfer(img: &[u8]) -> Duration {
    let PtyPair { device, client, path } = PtyPair::new().unwrap();
    let rom = StarfiveRom::spawn(device, RomConfig { line_rate: Some(115_200), ..Default::default() });
    let mut link = SerialPortLink::open(SerialInfo { path, ..Default::default() }, 115_200).unwrap();
    // The ROM's first poll: the transfer is timed from the first frame on.
    let cancel = || Ok(());
    racklet_starfive::console::wait_for_poll(
        &mut link,
        Duration::from_secs(5),
        Duration::from_millis(100),
        false,
        &[],
        &cancel,
    )
    .unwrap();
    racklet_link::SerialLink::clear_input(&mut link).unwrap();
    let cfg = XmodemConfig { block: BlockSize::K1, ..Default::default() };
    let start = Instant::now();
    let stats = xmodem::send(&mut link, img, &cfg, &mut NoProgress).unwrap();
    let took = start.elapsed();
    assert!(stats.eot_acked && stats.naks == 0);
    let rep = rom.wait_sessions(1, Duration::from_secs(5));
    assert!(rep.sessions[0].verdict.is_ok(), "{:?}", rep.sessions[0].verdict);
    drop(link);
    drop(client);
    rom.stop();
    took
}

fn bench(c: &mut Criterion) {
    let payload: Vec<u8> = (0..IMAGE - header::HEADER_LEN).map(|i| (i * 13) as u8).collect();
    let img = header::build_image(&payload, &HeaderOptions::default()).unwrap();
    assert_eq!(img.len(), IMAGE);
    let ideal = IMAGE as f64 / LINE_RATE;
    let mut g = c.benchmark_group("starfive");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_secs(1));
    g.bench_function("xmodem-1k 128 KiB at 115200", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = one_transfer(&img);
                eprintln!(
                    "  one transfer: {:.3} s = {:.4} x the ideal {:.3} s",
                    t.as_secs_f64(),
                    t.as_secs_f64() / ideal,
                    ideal
                );
                total += t;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
