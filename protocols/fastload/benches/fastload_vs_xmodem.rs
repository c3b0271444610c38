//! Issue 21's benchmark, side by side in one run: a 1 MiB image by the
//! JH7110 ROM's XMODEM-1K at 115200 baud (racklet-starfive's sender against
//! racklet-sim's virtual ROM) versus the fast path: a 4 KiB loader by the
//! same XMODEM at 115200, then the 1 MiB image through the loader at
//! 1.5 Mbaud (this crate's sender against racklet-sim's virtual loader).
//! Every byte goes through racklet-sim's pty relay, paced at the rate the
//! host set on its port, with 0 ms and with 16 ms of turnaround latency on
//! the way back to the host (an FTDI adapter's default latency timer).
//! Medians of FASTLOAD_BENCH_RUNS runs (default 3); no assertion on time.
//!
//! Run: `cargo bench -p racklet-fastload --bench fastload_vs_xmodem`
//! (about 4 minutes a run; scripts/bench.sh --fastload runs it).

use std::time::{Duration, Instant};

use racklet_fastload::{Image, Options, send_image};
use racklet_link::serial_backend::SerialPortLink;
use racklet_link::{NoProgress, SerialInfo, SerialLink};
use racklet_sim::fastload::{Line, LoaderConfig, VirtualLoader};
use racklet_sim::relay::Relay;
use racklet_sim::starfive::{RomConfig, StarfiveRom};
use racklet_starfive::header::{self, HeaderOptions};
use racklet_starfive::xmodem::{self, BlockSize, XmodemConfig};

const IMAGE: usize = 1024 * 1024;
const LOADER: usize = 4096;
const FAST: u32 = 1_500_000;

fn open(path: &str, baud: u32) -> SerialPortLink {
    SerialPortLink::open(SerialInfo { path: path.to_string(), ..Default::default() }, baud).unwrap()
}

/// XMODEM-1K of `data` into the virtual JH7110 ROM through a relay; the time
/// from the first frame to the ACK of EOT.
fn xmodem_through_relay(data: &[u8], latency: Duration) -> Duration {
    let mut relay = Relay::new(latency, None).unwrap();
    // The relay paces the line already.
    let rom =
        StarfiveRom::spawn(relay.device.take().unwrap(), RomConfig { line_rate: None, ..Default::default() });
    let mut link = open(&relay.host_path, 115_200);
    let cancel = || Ok(());
    racklet_starfive::console::wait_for_poll(
        &mut link,
        Duration::from_secs(10),
        Duration::from_millis(100),
        false,
        &[],
        &cancel,
    )
    .unwrap();
    link.clear_input().unwrap();
    let cfg = XmodemConfig { block: BlockSize::K1, ..Default::default() };
    let t = Instant::now();
    let r = xmodem::send(&mut link, data, &cfg, &mut NoProgress);
    let took = t.elapsed();
    match r {
        Ok(stats) => assert!(stats.eot_acked, "the ROM took the whole transfer"),
        // A 1 MiB image cannot be a bootable JH7110 image (the ROM's SRAM
        // holds 256 KiB), so the ROM answers the finished transfer with its
        // CRC error; the wire time is what is measured, and it is complete.
        Err(racklet_starfive::StarfiveError::RomCrcError { .. })
            if data.len() > header::MAX_PAYLOAD as usize => {}
        Err(e) => panic!("XMODEM to the virtual ROM failed: {e}"),
    }
    drop(link);
    rom.stop();
    took
}

/// The image through the virtual loader at `FAST` baud; (total from HELLO
/// to GO_OK, the data phase alone).
fn fastload_through_relay(img: &[u8], latency: Duration) -> (Duration, Duration) {
    let line = Line::new(115_200, false);
    let mut relay = Relay::new(latency, Some(line.clone())).unwrap();
    let cfg = LoaderConfig { window: (0x4000_0000, 0x200_0000), ..LoaderConfig::jh7110() };
    let loader = VirtualLoader::spawn(relay.device.take().unwrap(), line, cfg);
    let mut link = open(&relay.host_path, 115_200);
    let opts = Options { baud: Some(FAST), ..Options::default() };
    let t = Instant::now();
    let r = send_image(
        &mut link,
        Image { load: Some(0x4000_0000), entry: None, bytes: img },
        &opts,
        &mut NoProgress,
    )
    .unwrap();
    let took = t.elapsed();
    assert_eq!(r.baud, FAST, "the rate change held");
    let rep = loader.wait_started(Duration::from_secs(5));
    assert!(rep.started.is_some_and(|s| s.crc_ok && s.image == img), "the loader started the image");
    (took, r.data_time)
}

/// What the ROM is sent: the spl_tool-headed image when it can be one, the
/// bytes as they are when they are larger than the ROM can boot.
fn rom_image(img: &[u8]) -> Vec<u8> {
    if img.len() as u64 <= header::MAX_PAYLOAD {
        header::build_image(img, &HeaderOptions::default()).unwrap()
    } else {
        img.to_vec()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // that asks for a run: then one tiny run checks that it works.
    let runs: usize = std::env::var("FASTLOAD_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let quick = !std::env::args().any(|a| a == "--bench");
    let size = if quick { 16 * 1024 } else { IMAGE };
    let img: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let loader = header::build_image(&vec![0x13; LOADER], &HeaderOptions::default()).unwrap();
    let line_rate = FAST as f64 / 10.0;
    println!(
        "fastload vs XMODEM-1K: {size} bytes, {} run(s) each, paced pty relay",
        if quick { 1 } else { runs }
    );
    for latency in [Duration::ZERO, Duration::from_millis(16)] {
        let (mut xm, mut fast, mut ld, mut data) = (vec![], vec![], vec![], vec![]);
        for _ in 0..if quick { 1 } else { runs } {
            xm.push(xmodem_through_relay(&rom_image(&img), latency).as_secs_f64());
            let l = xmodem_through_relay(&loader, latency).as_secs_f64();
            let (f, d) = fastload_through_relay(&img, latency);
            ld.push(l);
            fast.push(l + f.as_secs_f64());
            data.push(d.as_secs_f64());
        }
        let (xm, fast, ld, data) = (median(xm), median(fast), median(ld), median(data));
        println!(
            "  latency {:>2} ms: XMODEM-1K at 115200 {:.2} s; loader {:.2} s + fastload at {} = {:.2} s; \
             {:.1}x less time; data phase {:.0} B/s = {:.3} of the {:.0} B/s line rate",
            latency.as_millis(),
            xm,
            ld,
            FAST,
            fast,
            xm / fast,
            size as f64 / data,
            size as f64 / data / line_rate,
            line_rate
        );
    }
}
