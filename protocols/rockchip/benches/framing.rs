//! Framing + RC4 + CRC of a 64 MiB stage: the host-side work per stage.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racklet_rockchip::frame::{FrameOptions, frame, stream};

fn bench(c: &mut Criterion) {
    let payload: Vec<u8> = (0..64u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut g = c.benchmark_group("stage_64MiB");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.sample_size(10);
    // What the download does: stream the transfers to a sink that only
    // looks at each one (the USB link in real use).
    for (name, rc4) in [("stream_rc4_off", false), ("stream_rc4_on", true)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sum = 0usize;
                stream(std::hint::black_box(&payload), FrameOptions { rc4, zero_crc: false }, |c| {
                    sum += c.len() + c[c.len() - 1] as usize;
                    Ok::<(), ()>(())
                })
                .unwrap();
                sum
            })
        });
    }
    // The whole wire image in memory (allocation and copy included).
    g.bench_function("frame_in_memory_rc4_off", |b| {
        b.iter(|| frame(std::hint::black_box(&payload), FrameOptions { rc4: false, zero_crc: false }))
    });
    g.bench_function("crc16_only", |b| b.iter(|| racklet_rockchip::crc16(std::hint::black_box(&payload))));
    g.bench_function("rc4_only", |b| {
        let mut buf = payload.clone();
        b.iter(|| racklet_rockchip::frame::rc4_stage(std::hint::black_box(&mut buf)))
    });
    // The keystream generator itself: what the first stage of a process
    // pays once (the keystream is cached afterwards).
    g.bench_function("rc4_generator_cold", |b| {
        let mut buf = payload.clone();
        b.iter(|| racklet_rockchip::frame::Rc4::default().apply(std::hint::black_box(&mut buf)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
