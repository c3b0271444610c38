//! Host-side cost of a K230 ROM download and of the firmware header.
//!
//! `null link`: the client alone (a link that drops the bytes), i.e. what
//! racklet-flash adds on top of the USB transfers. `virtual ROM`: the client
//! plus racklet-sim's K230 storing every byte. Real hardware is bound by
//! the ROM and the bus instead (see the README); these numbers show the
//! host is never the bottleneck.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use racklet_canaan::rom::{self, RomOptions};
use racklet_canaan::{Load, header, plan_stages};
use racklet_link::{ControlSetup, LinkError, NoProgress, UsbInfo, UsbLink};
use racklet_sim::usb::{SharedDevice, SimUsbLink};

/// The size of the vendor's loader_mmc.bin (sheet case s3).
const LOADER: usize = 375_712;

/// Drops every byte. Not the test kit's `ScriptedUsb`: that one keeps a copy
/// of every transfer, which is the cost this figure must leave out.
struct NullLink(UsbInfo);

impl UsbLink for NullLink {
    fn info(&self) -> &UsbInfo {
        &self.0
    }
    fn control_out(&mut self, _: ControlSetup, _: &[u8], _: Duration) -> Result<(), LinkError> {
        Ok(())
    }
    fn control_in(&mut self, _: ControlSetup, _: u16, _: Duration) -> Result<Vec<u8>, LinkError> {
        Ok(b"K230".to_vec())
    }
    fn bulk_out(&mut self, _: u8, data: &[u8], _: Duration) -> Result<(), LinkError> {
        black_box(data);
        Ok(())
    }
    fn bulk_in(&mut self, _: u8, _: usize, _: Duration) -> Result<Vec<u8>, LinkError> {
        Err(LinkError::Timeout { op: "bulk in".into(), after: Duration::ZERO })
    }
}

fn stage(n: usize) -> racklet_canaan::Stage {
    let bytes = (0..n).map(|i| i as u8).collect();
    plan_stages(vec![Load { name: "loader".into(), address: 0x8036_0000, bytes, entry: None }], None)
        .unwrap()
        .remove(0)
}

fn bench(c: &mut Criterion) {
    let s = stage(LOADER);
    // The vendor's pauses (120 ms a stage) are sleeps, not the client's cost.
    let opts = RomOptions {
        pause_before_address: Duration::ZERO,
        pause_before_regreet: Duration::ZERO,
        pause_before_start: Duration::ZERO,
        ..RomOptions::default()
    };
    let mut g = c.benchmark_group("rom download 375712 B");
    g.throughput(Throughput::Bytes(LOADER as u64));
    g.bench_function("null link", |b| {
        let mut link = NullLink(UsbInfo::default());
        b.iter(|| rom::run_stage(&mut link, &s, &opts, &mut NoProgress).unwrap())
    });
    g.bench_function("virtual ROM", |b| {
        b.iter_batched(
            || {
                let dev: SharedDevice = std::sync::Arc::new(std::sync::Mutex::new(
                    racklet_sim::canaan::K230Rom::new(&racklet_sim::canaan::K230, "1-1"),
                ));
                SimUsbLink::open(dev).unwrap()
            },
            |mut link| rom::run_stage(&mut link, &s, &opts, &mut NoProgress).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // A 16 MiB WRITE_LBA into the virtual kburn gadget (SD card in memory):
    // the client's chunking and the gadget's packet-level model together.
    const IMG: usize = 16 << 20;
    let img: Vec<u8> = (0..IMG).map(|i| (i % 251) as u8).collect();
    let mut g = c.benchmark_group("kburn write 16 MiB");
    g.throughput(Throughput::Bytes(IMG as u64));
    g.sample_size(10);
    g.bench_function("virtual kburn gadget", |b| {
        b.iter_batched(
            || {
                let rom = racklet_sim::canaan::K230Rom::new(&racklet_sim::canaan::K230, "1-1")
                    .with_fault(Some(racklet_sim::canaan::Fault::Loader));
                let dev: SharedDevice = std::sync::Arc::new(std::sync::Mutex::new(rom));
                SimUsbLink::open(dev).unwrap()
            },
            |mut link| {
                let info = link.info().clone();
                let mut s = racklet_canaan::kburn::Session::new(&mut link, &info).unwrap();
                s.probe(racklet_canaan::kburn::Medium::Sd).unwrap();
                s.info().unwrap();
                s.write(0x10_0000, IMG as u64, &mut &img[..], &mut NoProgress).unwrap();
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let payload = vec![0x5a; 1 << 20];
    let mut g = c.benchmark_group("firmware header");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("build 1 MiB", |b| b.iter(|| header::build_plain(black_box(&payload), 0).unwrap()));
    let img = header::build_plain(&payload, 0).unwrap();
    g.bench_function("parse+verify 1 MiB", |b| {
        b.iter(|| header::ImageHeader::parse(black_box(&img)).unwrap().verify(&img))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
