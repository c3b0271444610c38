//! The client against a scripted transport. Expected host bytes come from
//! the fact sheet's captures of the Debian client (s01, s03) and the
//! spec's rules written out here, not from the encoder.

use std::collections::VecDeque;

use racklet_link::testing::{CancelAfter, CollectProgress};
use racklet_link::{Classify, FailureClass, ProgressEvent};

use super::*;

/// Replays canned responses and records what the host sent.
#[derive(Default)]
struct Script {
    sent: Vec<Vec<u8>>,
    /// The length of every read the client asked for.
    reads: Vec<usize>,
    answers: VecDeque<Result<Vec<u8>, LinkError>>,
}

impl Script {
    fn new(answers: &[&[u8]]) -> Self {
        Script {
            sent: Vec::new(),
            reads: Vec::new(),
            answers: answers.iter().map(|a| Ok(a.to_vec())).collect(),
        }
    }
}

impl Transport for Script {
    fn send(&mut self, data: &[u8], _: Duration) -> Result<(), FastbootError> {
        self.sent.push(data.to_vec());
        Ok(())
    }
    fn recv(&mut self, max: usize, t: Duration) -> Result<Vec<u8>, FastbootError> {
        self.reads.push(max);
        match self.answers.pop_front() {
            Some(a) => Ok(a?),
            None => Err(FastbootError::Link(LinkError::Timeout { op: "script".into(), after: t })),
        }
    }
    fn describe(&self) -> String {
        "script".into()
    }
}

fn fb(answers: &[&[u8]]) -> Fastboot<Script> {
    Fastboot::new(Script::new(answers))
}

#[test]
fn getvar_version_matches_capture_s01() {
    let mut f = fb(&[b"OKAY0.4"]);
    assert_eq!(f.getvar("version", &mut CollectProgress::default()).unwrap(), "0.4");
    assert_eq!(f.transport().sent, vec![b"getvar:version".to_vec()]);
}

#[test]
fn stage_matches_capture_s03() {
    let mut f = fb(&[b"OKAY0x10000", b"DATA00000008", b"OKAY"]);
    let mut p = CollectProgress::default();
    f.stage("fsbl", b"FSBLTEST", &mut p).unwrap();
    let want: Vec<&[u8]> = vec![b"getvar:max-download-size", b"download:00000008", b"FSBLTEST"];
    assert_eq!(f.transport().sent, want);
    assert_eq!(p.bytes(), 8);
}

#[test]
fn download_size_is_eight_lowercase_hex_digits() {
    // Sheet §1.2: "%08x", the Debian client sends download:0000f028.
    let data = vec![0u8; 0xf028];
    let mut f = fb(&[b"DATA0000f028", b"OKAY"]);
    f.download("x", &data, &mut CollectProgress::default()).unwrap();
    assert_eq!(f.transport().sent[0], b"download:0000f028");
    assert_eq!(f.transport().sent[1..].concat(), data);
}

#[test]
fn data_goes_in_chunks_that_are_whole_max_size_packets() {
    // DATA_CHUNK + 1 bytes: one full chunk, then a 1-byte tail.
    let n = DATA_CHUNK + 1;
    let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
    let data_resp = format!("DATA{n:08x}");
    let mut f = fb(&[data_resp.as_bytes(), b"OKAY"]);
    f.download("x", &data, &mut CollectProgress::default()).unwrap();
    let sent = &f.transport().sent;
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[1].len() % 1024, 0);
    assert_eq!(sent[2].len(), 1);
    assert_eq!(sent[1..].concat(), data);
}

#[test]
fn stage_without_max_download_size_sends_everything() {
    // FAIL to the getvar (unknown variable) and an empty OKAY both mean "unknown".
    for first in [b"FAILVariable not implemented".as_slice(), b"OKAY"] {
        let mut f = fb(&[first, b"DATA00000003", b"OKAY"]);
        f.stage("x", b"abc", &mut CollectProgress::default()).unwrap();
        assert_eq!(f.transport().sent.len(), 3);
    }
}

#[test]
fn stage_refuses_data_over_max_download_size_before_download() {
    let mut f = fb(&[b"OKAY0x4"]);
    let e = f.stage("u-boot.itb", b"12345", &mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, FastbootError::TooLarge { size: 5, max: 4, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert_eq!(f.transport().sent, vec![b"getvar:max-download-size".to_vec()]);
    // Exactly the limit is fine.
    let mut f = fb(&[b"OKAY4", b"DATA00000004", b"OKAY"]);
    f.stage("x", b"1234", &mut CollectProgress::default()).unwrap();
}

#[test]
fn max_download_size_zero_means_no_limit() {
    // Issue 16: a device reporting 0 takes any size.
    let mut f = fb(&[b"OKAY0x00000000", b"DATA00000005", b"OKAY"]);
    f.stage("x", b"12345", &mut CollectProgress::default()).unwrap();
    assert_eq!(f.transport().sent.len(), 3);
}

#[test]
fn replies_are_read_as_aosp_does_and_empty_reads_are_skipped() {
    // AOSP reads 256 bytes for a reply (the transport rounds up to
    // wMaxPacketSize): a 64- or 256-byte padded reply at full speed
    // completes the transfer, where a 512-byte read would wait for more.
    let p = &mut CollectProgress::default();
    let mut f = fb(&[b"", b"", b"OKAY0.4"]);
    assert_eq!(f.getvar("version", p).unwrap(), "0.4");
    assert_eq!(f.transport().reads, vec![256, 256, 256]);
}

#[test]
fn commands_over_64_bytes_are_refused_before_sending() {
    let name64 = format!("getvar:{}", "v".repeat(64 - 7));
    assert_eq!(name64.len(), 64);
    let mut f = fb(&[b"OKAY"]);
    f.raw(&name64, &mut CollectProgress::default()).unwrap();
    assert_eq!(f.transport().sent.len(), 1);

    let name65 = format!("{name64}v");
    let mut f = fb(&[b"OKAY"]);
    let e = f.raw(&name65, &mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, FastbootError::CommandTooLong { len: 65, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::BadInput);
    assert!(f.transport().sent.is_empty());
    // flash: with a long partition name goes through the same check.
    let e = f.flash(&"p".repeat(60), &mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, FastbootError::CommandTooLong { len: 66, .. }));
    assert!(f.transport().sent.is_empty());
    // Control characters never go out either.
    assert!(matches!(
        f.raw("getvar:a\nb", &mut CollectProgress::default()),
        Err(FastbootError::BadCommand { .. })
    ));
}

#[test]
fn fail_carries_the_device_message() {
    let mut f = fb(&[b"FAILpartition does not exist"]);
    let e = f.flash("nope", &mut CollectProgress::default()).unwrap_err();
    match &e {
        FastbootError::Failed { command, message } => {
            assert_eq!(command, "flash:nope");
            assert_eq!(message, "partition does not exist");
        }
        e => panic!("{e}"),
    }
    assert!(e.to_string().contains("partition does not exist"));
    assert_eq!(e.class(), FailureClass::Rejected);
}

#[test]
fn info_and_text_lines_reach_the_user_and_reading_goes_on() {
    let mut f = fb(&[b"INFOerasing...", b"TEXTraw text", b"INFOdone\0junk", b"OKAY"]);
    let mut p = CollectProgress::default();
    f.erase("userdata", &mut p).unwrap();
    let msgs: Vec<String> = p
        .events
        .iter()
        .filter_map(|e| if let ProgressEvent::Message { text } = e { Some(text.clone()) } else { None })
        .collect();
    assert_eq!(msgs, ["(bootloader) erasing...", "raw text", "(bootloader) done"]);
}

#[test]
fn malformed_responses_are_clear_errors() {
    let p = &mut CollectProgress::default();
    let e = fb(&[b"HELLO"]).getvar("version", p).unwrap_err();
    assert!(matches!(&e, FastbootError::UnknownStatus { response, .. } if response == "HELLO"), "{e}");
    assert_eq!(e.class(), FailureClass::Io);

    let long = [b"OKAY".as_slice(), &[b'x'; 253]].concat();
    let e = fb(&[&long]).getvar("version", p).unwrap_err();
    assert!(
        matches!(&e, FastbootError::ResponseTooLong { len: 257, command } if command == "getvar:version"),
        "{e}"
    );

    let e = fb(&[b"DATA12g"]).download("x", b"ab", p).unwrap_err();
    assert!(matches!(e, FastbootError::BadDataSize { .. }), "{e}");

    // DATA whose size does not match the announced download.
    let e = fb(&[b"DATA00000001"]).download("x", b"ab", p).unwrap_err();
    assert!(matches!(e, FastbootError::DataSizeMismatch { wanted: 2, accepted: 1, .. }), "{e}");
    assert_eq!(e.class(), FailureClass::Rejected);

    // Statuses that are valid but wrong here.
    assert!(matches!(fb(&[b"DATA00000004"]).getvar("x", p), Err(FastbootError::Unexpected { .. })));
    assert!(matches!(fb(&[b"OKAY"]).download("x", b"ab", p), Err(FastbootError::Unexpected { .. })));
    assert!(matches!(
        fb(&[b"DATA00000002", b"DATA00000002"]).download("x", b"ab", p),
        Err(FastbootError::Unexpected { .. })
    ));
}

#[test]
fn a_silent_device_times_out() {
    let e = fb(&[]).getvar("version", &mut CollectProgress::default()).unwrap_err();
    assert_eq!(e.class(), FailureClass::Timeout);
}

#[test]
fn continue_and_reboot_tolerate_a_vanishing_device() {
    let p = &mut CollectProgress::default();
    assert_eq!(fb(&[b"OKAY"]).continue_boot(p).unwrap(), Departure::Acknowledged);
    let mut f = Fastboot::new(Script::default());
    f.transport.answers.push_back(Err(LinkError::Disconnected { op: "x".into() }));
    assert_eq!(f.reboot(p).unwrap(), Departure::Vanished);
    assert_eq!(f.transport().sent, vec![b"reboot".to_vec()]);
    // A refusal is not a departure.
    let e = fb(&[b"FAILno image"]).continue_boot(p).unwrap_err();
    assert!(matches!(e, FastbootError::Failed { .. }));
    let mut f = fb(&[b"OKAY"]);
    f.reboot_to("bootloader", p).unwrap();
    assert_eq!(f.transport().sent, vec![b"reboot-bootloader".to_vec()]);
}

#[test]
fn upload_reads_exactly_the_announced_bytes() {
    let mut f = fb(&[b"DATA00000005", b"he", b"llo", b"OKAY"]);
    assert_eq!(f.upload(&mut CollectProgress::default()).unwrap(), b"hello");
    assert_eq!(f.transport().sent, vec![b"upload".to_vec()]);
    let e = fb(&[b"FAILnothing staged"]).upload(&mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, FastbootError::Failed { .. }));
}

/// Found by the `fastboot` fuzz target: `DATAffffffff` in answer to
/// `upload` made the client reserve 4 GiB before the first byte arrived.
/// The reservation is invisible under overcommit, so on Linux the test
/// checks the process's peak virtual size did not jump by gigabytes.
#[test]
fn upload_does_not_reserve_what_the_device_announces() {
    fn vm_peak_kib() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with("VmPeak:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
    let before = vm_peak_kib();
    let mut f = fb(&[b"DATAffffffff", b"abc"]);
    let e = f.upload(&mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, FastbootError::Link(LinkError::Timeout { .. })), "{e:?}");
    if let (Some(a), Some(b)) = (before, vm_peak_kib()) {
        assert!(b.saturating_sub(a) < 1024 * 1024, "peak virtual size grew by {} KiB", b - a);
    }
}

#[test]
fn upload_ends_when_the_device_sends_only_empty_packets() {
    let mut answers: Vec<&[u8]> = vec![b"DATA00000010", b"abc"];
    answers.extend(std::iter::repeat_n(&b""[..], 40));
    let mut f = fb(&answers);
    let e = f.upload(&mut CollectProgress::default()).unwrap_err();
    assert!(matches!(e, FastbootError::DataSizeMismatch { accepted: 3, .. }), "{e:?}");
}

#[test]
fn oem_joins_words_into_one_packet() {
    // Capture s08: `fastboot oem hello world` is one packet "oem hello world".
    let mut f = fb(&[b"OKAY"]);
    f.oem(&["hello", "world"], &mut CollectProgress::default()).unwrap();
    assert_eq!(f.transport().sent, vec![b"oem hello world".to_vec()]);
}

#[test]
fn cancel_stops_between_data_packets() {
    let mut f = fb(&[b"DATA00000002"]);
    let e = f.download("x", b"ab", &mut CancelAfter::new(0)).unwrap_err();
    assert_eq!(e.class(), FailureClass::Interrupted);
    assert_eq!(f.transport().sent.len(), 1, "no data after the cancel");
}
