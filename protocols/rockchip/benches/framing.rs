//! Framing + RC4 + CRC of a 64 MiB stage: the host-side work per stage.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use racklet_rockchip::frame::{FrameOptions, frame};

fn bench(c: &mut Criterion) {
    let payload: Vec<u8> = (0..64u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut g = c.benchmark_group("stage_64MiB");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.sample_size(10);
    g.bench_function("frame_crc_rc4_off", |b| {
        b.iter(|| frame(std::hint::black_box(&payload), FrameOptions { rc4: false, zero_crc: false }))
    });
    g.bench_function("frame_crc_rc4_on", |b| {
        b.iter(|| frame(std::hint::black_box(&payload), FrameOptions { rc4: true, zero_crc: false }))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
