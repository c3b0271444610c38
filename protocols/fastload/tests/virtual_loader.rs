//! The sender against racklet-sim's virtual loader (written from
//! docs/fastload.md, not from this crate), in process, over ptys.

use std::time::Duration;

use racklet_fastload::{FastloadError, Image, Options, send_image};
use racklet_link::progress::CollectProgress;
use racklet_link::serial_backend::SerialPortLink;
use racklet_link::{LinkError, ProgressEvent, ProgressSink, SerialInfo};
use racklet_sim::fastload::{Line, LoaderConfig, Noisy, VirtualLoader};
use racklet_sim::serial::PtyPair;

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn cfg() -> LoaderConfig {
    LoaderConfig { window: (0x4000_0000, 0x100_0000), ..LoaderConfig::jh7110() }
}

/// A loader on a pty whose device side goes through `wrap`.
fn spawn<W: racklet_sim::starfive::Wire + 'static>(
    wrap: impl FnOnce(serialport::TTYPort) -> W,
    line: Line,
    cfg: LoaderConfig,
) -> (VirtualLoader, SerialPortLink, serialport::TTYPort) {
    let PtyPair { device, client, path } = PtyPair::new().unwrap();
    let loader = VirtualLoader::spawn(wrap(device), line, cfg);
    let link = SerialPortLink::open(SerialInfo { path, ..Default::default() }, 115_200).unwrap();
    (loader, link, client)
}

#[test]
fn an_image_goes_at_the_fastest_exact_rate_and_starts_at_its_entry() {
    let img = image(300_000);
    let (loader, mut link, _keep) = spawn(|d| d, Line::new(115_200, false), cfg());
    let mut p = CollectProgress::default();
    let r = send_image(
        &mut link,
        Image { load: Some(0x4000_0000), entry: Some(0x4000_0100), bytes: &img },
        &Options::default(),
        &mut p,
    )
    .unwrap();
    // 24 MHz / 16 = 1.5 Mbaud with divisor 1 (docs/fastload.md §3).
    assert_eq!(r.baud, 1_500_000);
    assert_eq!(r.fell_back, None);
    assert_eq!(r.blocks, 300_000u32.div_ceil(2048));
    let rep = loader.wait_started(Duration::from_secs(5));
    let s = rep.started.expect("the loader jumped");
    assert_eq!((s.load, s.entry), (0x4000_0000, 0x4000_0100));
    assert!(s.image == img, "the image in the loader's memory is the one sent");
    assert_eq!(rep.rate_changes, vec![(1_500_000, true)]);
    assert_eq!(p.bytes(), img.len() as u64, "progress counts every byte once");
}

#[test]
fn corrupted_frames_are_resent_and_never_run() {
    let img = image(200_000);
    // One bit of every 9001st byte flipped, both ways: about one DATA frame
    // in four, and now and then an ACK.
    let (loader, mut link, _keep) = spawn(|d| Noisy::new(d, 9_001), Line::new(115_200, false), cfg());
    let r = send_image(
        &mut link,
        Image { load: Some(0x4010_0000), entry: Some(0x4010_0000), bytes: &img },
        &Options::default(),
        &mut CollectProgress::default(),
    )
    .unwrap();
    let rep = loader.wait_started(Duration::from_secs(5));
    assert!(rep.bad_frames > 10, "the loader dropped damaged frames: {}", rep.bad_frames);
    assert!(r.resent > 10, "the host resent lost blocks: {}", r.resent);
    let s = rep.started.expect("started");
    assert!(s.crc_ok && s.image == img, "what runs is exactly what was sent");
    assert_eq!(rep.done_status, Some(0));
}

#[test]
fn a_rate_the_adapter_cannot_carry_falls_back_to_115200() {
    let img = image(20_000);
    let line = Line::new(115_200, false).with_adapter_max(921_600);
    let paced = line.clone();
    let (loader, mut link, _keep) = spawn(move |d| racklet_sim::fastload::Paced::new(d, paced), line, cfg());
    let opts = Options { baud: Some(1_500_000), ..Options::default() };
    let r = send_image(
        &mut link,
        Image { load: Some(0x4000_0000), entry: Some(0x4000_0000), bytes: &img },
        &opts,
        &mut CollectProgress::default(),
    )
    .unwrap();
    assert_eq!(r.fell_back, Some(1_500_000));
    assert_eq!(r.baud, 115_200);
    let rep = loader.wait_started(Duration::from_secs(5));
    assert_eq!(rep.rate_changes, vec![(1_500_000, false)], "the loader saw no sync and went back");
    assert!(rep.started.is_some_and(|s| s.image == img));
}

#[test]
fn a_rate_the_clock_cannot_make_is_refused_by_the_loader() {
    let img = image(1000);
    let (loader, mut link, _keep) = spawn(|d| d, Line::new(115_200, false), cfg());
    let opts = Options { baud: Some(921_600), ..Options::default() };
    let e = send_image(
        &mut link,
        Image { load: Some(0x4000_0000), entry: Some(0x4000_0000), bytes: &img },
        &opts,
        &mut CollectProgress::default(),
    )
    .unwrap_err();
    assert!(matches!(e, FastloadError::Refused { code: 3, .. }), "{e}");
    assert!(loader.stop().started.is_none());
}

#[test]
fn an_image_over_the_loader_is_refused_before_anything_is_sent() {
    let img = image(4096);
    let (loader, mut link, _keep) = spawn(|d| d, Line::new(115_200, false), LoaderConfig::jh7110());
    // The ROM's load address: where the loader itself runs.
    let e = send_image(
        &mut link,
        Image { load: Some(0x0800_0000), entry: Some(0x0800_0000), bytes: &img },
        &Options::default(),
        &mut CollectProgress::default(),
    )
    .unwrap_err();
    assert!(matches!(e, FastloadError::DoesNotFit { .. }), "{e}");
    assert!(e.hint().is_some());
    let rep = loader.stop();
    assert!(rep.started.is_none() && rep.blocks_received == 0);
}

#[test]
fn no_loader_is_a_timeout_that_names_the_port() {
    let PtyPair { device: _device, client: _client, path } = PtyPair::new().unwrap();
    let mut link =
        SerialPortLink::open(SerialInfo { path: path.clone(), ..Default::default() }, 115_200).unwrap();
    let opts = Options { connect_timeout: Duration::from_millis(300), ..Options::default() };
    let e = send_image(
        &mut link,
        Image { load: Some(0), entry: Some(0), bytes: &[1] },
        &opts,
        &mut CollectProgress::default(),
    )
    .unwrap_err();
    assert!(matches!(e, FastloadError::NoLoader { .. }));
    assert!(e.to_string().contains(&path), "{e}");
}

/// Cancels after the first progress advance.
struct CancelAfterFirst {
    advanced: bool,
}

impl ProgressSink for CancelAfterFirst {
    fn event(&mut self, e: ProgressEvent) {
        if matches!(e, ProgressEvent::Advance { .. }) {
            self.advanced = true;
        }
    }
    fn cancelled(&self) -> bool {
        self.advanced
    }
}

#[test]
fn ctrl_c_stops_the_transfer_and_nothing_runs() {
    let img = image(500_000);
    let (loader, mut link, _keep) = spawn(|d| d, Line::new(115_200, false), cfg());
    let e = send_image(
        &mut link,
        Image { load: Some(0x4000_0000), entry: Some(0x4000_0000), bytes: &img },
        &Options::default(),
        &mut CancelAfterFirst { advanced: false },
    )
    .unwrap_err();
    assert!(matches!(e, FastloadError::Link(LinkError::Interrupted)), "{e}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(loader.stop().started.is_none());
}
