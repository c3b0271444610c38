//! FunctionFS: the descriptor and string blobs written to `ep0`, and the
//! events read back from it.
//!
//! Layout from the kernel's `include/uapi/linux/usb/functionfs.h` and
//! `Documentation/usb/functionfs.rst`: a v2 descriptors header
//! (magic 3, total length, flags), one little-endian count per speed whose
//! flag is set, then the descriptors of each speed in turn. Everything is
//! little-endian.

use racklet_link::usb::EndpointKind;
use racklet_link::{ControlSetup, InterfaceInfo};

/// `FUNCTIONFS_DESCRIPTORS_MAGIC_V2`.
pub const DESCRIPTORS_MAGIC_V2: u32 = 3;
/// `FUNCTIONFS_STRINGS_MAGIC`.
pub const STRINGS_MAGIC: u32 = 2;
/// `FUNCTIONFS_HAS_FS_DESC`.
pub const HAS_FS_DESC: u32 = 1;
/// `FUNCTIONFS_HAS_HS_DESC`.
pub const HAS_HS_DESC: u32 = 2;
/// `FUNCTIONFS_ALL_CTRL_RECIP`: control requests addressed to the device
/// (not only to our interface) reach `ep0`. Rockchip's ROM requests
/// (bmRequestType 0x40, recipient device) need it.
pub const ALL_CTRL_RECIP: u32 = 64;

/// Size of one `struct usb_functionfs_event` (8-byte setup, type, 3 pad).
pub const EVENT_SIZE: usize = 12;

/// One endpoint as FunctionFS exposes it: the file `epN` (N from 1, in
/// descriptor order, fillers included) and the address the device model
/// knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpFile {
    /// 1-based index of the `epN` file.
    pub file: usize,
    /// The endpoint address in the device model's `UsbInfo` (bit 7 = IN).
    pub address: u8,
    pub kind: EndpointKind,
    pub max_packet_size: u16,
}

impl EpFile {
    /// The file name under the FunctionFS mount.
    pub fn name(&self) -> String {
        format!("ep{}", self.file)
    }
}

/// dummy_hcd's endpoints in the order the kernel's `usb_ep_autoconfig`
/// tries them (`ep_info` in drivers/usb/gadget/udc/dummy_hcd.c: fifteen
/// "pxa250" endpoints, then the "sa1100" pair `ep1out-bulk`, `ep2in-bulk`):
/// number, IN, transfer type. A descriptor gets the first unclaimed one of
/// its direction and type, and that endpoint's number.
const DUMMY_HCD_EPS: &[(u8, bool, EndpointKind)] = &[
    (1, true, EndpointKind::Bulk),
    (2, false, EndpointKind::Bulk),
    (3, true, EndpointKind::Isochronous),
    (4, false, EndpointKind::Isochronous),
    (5, true, EndpointKind::Interrupt),
    (6, true, EndpointKind::Bulk),
    (7, false, EndpointKind::Bulk),
    (8, true, EndpointKind::Isochronous),
    (9, false, EndpointKind::Isochronous),
    (10, true, EndpointKind::Interrupt),
    (11, true, EndpointKind::Bulk),
    (12, false, EndpointKind::Bulk),
    (13, true, EndpointKind::Isochronous),
    (14, false, EndpointKind::Isochronous),
    (15, true, EndpointKind::Interrupt),
    (1, false, EndpointKind::Bulk),
    (2, true, EndpointKind::Bulk),
];

/// Filler endpoints (direction IN, type) to describe before the model's,
/// so that dummy_hcd's first-fit autoconfiguration gives every model
/// endpoint its own number (K230's bulk OUT is 0x01, which dummy_hcd only
/// has as its 16th endpoint). Empty when no filler is needed or when the
/// numbers cannot all be had (then the host sees other numbers).
pub fn fillers(interfaces: &[InterfaceInfo]) -> Vec<(bool, EndpointKind)> {
    let wanted: Vec<(u8, bool, EndpointKind)> = interfaces
        .iter()
        .flat_map(|i| i.endpoints.iter())
        .filter(|e| matches!(e.kind, EndpointKind::Bulk | EndpointKind::Interrupt))
        .map(|e| (e.address & 0x0f, e.address & 0x80 != 0, e.kind))
        .collect();
    let mut out = Vec::new();
    let mut classes: Vec<(bool, EndpointKind)> = wanted.iter().map(|w| (w.1, w.2)).collect();
    classes.dedup();
    let mut seen = Vec::new();
    for class in classes {
        if seen.contains(&class) {
            continue;
        }
        seen.push(class);
        // The candidates of this class in autoconfig order, and where each wanted number sits.
        let cands: Vec<u8> = DUMMY_HCD_EPS.iter().filter(|c| (c.1, c.2) == class).map(|c| c.0).collect();
        let pos: Option<Vec<usize>> = wanted
            .iter()
            .filter(|w| (w.1, w.2) == class)
            .map(|w| cands.iter().position(|n| *n == w.0))
            .collect();
        let Some(pos) = pos else { return Vec::new() };
        // First-fit hands out consecutive candidates: the wanted ones must be.
        if pos.windows(2).any(|p| p[1] != p[0] + 1) {
            return Vec::new();
        }
        out.extend(std::iter::repeat_n(class, pos[0]));
    }
    out
}

fn push_interface(out: &mut Vec<u8>, number: u8, intf: &InterfaceInfo, neps: usize) {
    out.extend_from_slice(&[
        9, // bLength
        4, // bDescriptorType: INTERFACE
        number,
        0, // bAlternateSetting
        neps as u8,
        intf.class,
        intf.subclass,
        intf.protocol,
        0, // iInterface: no string
    ]);
}

/// The endpoints of `interfaces` that FunctionFS can serve (bulk and
/// interrupt), in the order their `epN` files appear (after the fillers).
pub fn endpoint_files(interfaces: &[InterfaceInfo]) -> Vec<EpFile> {
    let skip = fillers(interfaces).len();
    let mut files = Vec::new();
    for intf in interfaces {
        for e in &intf.endpoints {
            if matches!(e.kind, EndpointKind::Bulk | EndpointKind::Interrupt) {
                files.push(EpFile {
                    file: skip + files.len() + 1,
                    address: e.address,
                    kind: e.kind,
                    max_packet_size: e.max_packet_size,
                });
            }
        }
    }
    files
}

/// One speed's descriptors: every interface and its endpoints.
fn speed_descriptors(interfaces: &[InterfaceInfo], high_speed: bool) -> (u32, Vec<u8>) {
    let mut out = Vec::new();
    let mut count = 0u32;
    let fill = fillers(interfaces);
    if !fill.is_empty() {
        // The fillers' interface comes first (so it claims first) but takes
        // the last interface number, so the model's keep theirs.
        let intf =
            InterfaceInfo { number: 0, class: 0xff, subclass: 0xff, protocol: 0xff, endpoints: Vec::new() };
        push_interface(&mut out, interfaces.len() as u8, &intf, fill.len());
        count += 1;
        for (i, (is_in, kind)) in fill.iter().enumerate() {
            let addr = (0x0f - i as u8) | if *is_in { 0x80 } else { 0 };
            let (attr, mps, interval) = match (kind, high_speed) {
                (EndpointKind::Bulk, false) => (2u8, 64u16, 0u8),
                (EndpointKind::Bulk, true) => (2u8, 512, 0u8),
                (_, false) => (3u8, 64, 1u8),
                (_, true) => (3u8, 64, 4u8),
            };
            out.extend_from_slice(&[7, 5, addr, attr]);
            out.extend_from_slice(&mps.to_le_bytes());
            out.push(interval);
            count += 1;
        }
    }
    for (i, intf) in interfaces.iter().enumerate() {
        let eps: Vec<_> = intf
            .endpoints
            .iter()
            .filter(|e| matches!(e.kind, EndpointKind::Bulk | EndpointKind::Interrupt))
            .collect();
        push_interface(&mut out, i as u8, intf, eps.len());
        count += 1;
        for e in eps {
            let (attr, mps, interval) = match (e.kind, high_speed) {
                // Bulk: 64 bytes at full speed, 512 at high speed (USB 2.0 §5.8.3).
                (EndpointKind::Bulk, false) => (2u8, e.max_packet_size.clamp(8, 64), 0u8),
                (EndpointKind::Bulk, true) => (2u8, 512, 0u8),
                // Interrupt: keep the model's size within each speed's limit.
                (_, false) => (3u8, e.max_packet_size.clamp(1, 64), 1u8),
                (_, true) => (3u8, e.max_packet_size.clamp(1, 1024), 4u8),
            };
            out.extend_from_slice(&[7, 5, e.address, attr]);
            out.extend_from_slice(&mps.to_le_bytes());
            out.push(interval);
            count += 1;
        }
    }
    (count, out)
}

/// The v2 descriptors blob for `interfaces` at full and high speed, with
/// `ALL_CTRL_RECIP` so vendor requests to the device reach us.
pub fn descriptors(interfaces: &[InterfaceInfo]) -> Vec<u8> {
    let (fs_count, fs) = speed_descriptors(interfaces, false);
    let (hs_count, hs) = speed_descriptors(interfaces, true);
    let flags = HAS_FS_DESC | HAS_HS_DESC | ALL_CTRL_RECIP;
    let len = 12 + 4 + 4 + fs.len() + hs.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&DESCRIPTORS_MAGIC_V2.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&fs_count.to_le_bytes());
    out.extend_from_slice(&hs_count.to_le_bytes());
    out.extend_from_slice(&fs);
    out.extend_from_slice(&hs);
    out
}

/// The strings blob: no strings (every `iInterface` is 0), one language.
pub fn strings() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&STRINGS_MAGIC.to_le_bytes());
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // str_count
    out.extend_from_slice(&0u32.to_le_bytes()); // lang_count
    out
}

/// An event read from `ep0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Bind,
    Unbind,
    Enable,
    Disable,
    /// A control request for us; `length` is wLength.
    Setup {
        setup: ControlSetup,
        length: u16,
    },
    Suspend,
    Resume,
    Unknown(u8),
}

/// Decodes one 12-byte `usb_functionfs_event`.
pub fn parse_event(b: &[u8; EVENT_SIZE]) -> Event {
    match b[8] {
        0 => Event::Bind,
        1 => Event::Unbind,
        2 => Event::Enable,
        3 => Event::Disable,
        4 => Event::Setup {
            setup: ControlSetup {
                request_type: b[0],
                request: b[1],
                value: u16::from_le_bytes([b[2], b[3]]),
                index: u16::from_le_bytes([b[4], b[5]]),
            },
            length: u16::from_le_bytes([b[6], b[7]]),
        },
        5 => Event::Suspend,
        6 => Event::Resume,
        t => Event::Unknown(t),
    }
}

#[cfg(test)]
mod tests {
    use racklet_link::EndpointInfo;

    use super::*;

    fn rockusb_like() -> Vec<InterfaceInfo> {
        vec![InterfaceInfo {
            number: 0,
            class: 0xff,
            subclass: 6,
            protocol: 5,
            endpoints: vec![
                EndpointInfo { address: 0x81, kind: EndpointKind::Bulk, max_packet_size: 512 },
                EndpointInfo { address: 0x02, kind: EndpointKind::Bulk, max_packet_size: 512 },
            ],
        }]
    }

    /// The expected blob is written out byte by byte from the layout in
    /// functionfs.h (not produced by the encoder).
    #[test]
    fn descriptors_match_the_kernel_layout() {
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            3, 0, 0, 0,            // magic v2
            66, 0, 0, 0,           // length: 12 + 8 + 2 * (9 + 7 + 7)
            0x43, 0, 0, 0,         // FS | HS | ALL_CTRL_RECIP
            3, 0, 0, 0,            // fs_count
            3, 0, 0, 0,            // hs_count
            9, 4, 0, 0, 2, 0xff, 6, 5, 0,
            7, 5, 0x81, 2, 64, 0, 0,
            7, 5, 0x02, 2, 64, 0, 0,
            9, 4, 0, 0, 2, 0xff, 6, 5, 0,
            7, 5, 0x81, 2, 0x00, 0x02, 0,
            7, 5, 0x02, 2, 0x00, 0x02, 0,
        ];
        assert_eq!(descriptors(&rockusb_like()), want);
    }

    #[test]
    fn endpoint_files_follow_descriptor_order() {
        let f = endpoint_files(&rockusb_like());
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].file, f[0].address), (1, 0x81));
        assert_eq!((f[1].file, f[1].address), (2, 0x02));
        assert_eq!(f[1].name(), "ep2");
    }

    /// K230 and fastboot ROMs: IN 0x81, OUT 0x01. dummy_hcd hands out bulk
    /// OUT endpoints as 2, 7, 12, then 1: three OUT fillers come first.
    #[test]
    fn out_0x01_needs_three_fillers_on_dummy_hcd() {
        let mut intf = rockusb_like();
        intf[0].endpoints[1].address = 0x01;
        assert_eq!(fillers(&intf), vec![(false, EndpointKind::Bulk); 3]);
        let f = endpoint_files(&intf);
        assert_eq!((f[0].file, f[0].address, f[1].file, f[1].address), (4, 0x81, 5, 0x01));
        let d = descriptors(&intf);
        assert_eq!(u32::from_le_bytes(d[4..8].try_into().unwrap()) as usize, d.len());
        // fs_count: filler interface + 3 fillers + interface + 2 endpoints.
        assert_eq!(u32::from_le_bytes(d[12..16].try_into().unwrap()), 7);
        // The filler interface is described first, numbered after the model's (1).
        #[rustfmt::skip]
        let head = [9, 4, 1, 0, 3, 0xff, 0xff, 0xff, 0, 7, 5, 0x0f, 2, 64, 0, 0];
        assert_eq!(&d[20..36], &head);
        // Two OUT endpoints wanted as 1 and 2 are not consecutive candidates (16th, 1st): no fillers.
        intf[0].endpoints[0] = EndpointInfo { address: 0x02, kind: EndpointKind::Bulk, max_packet_size: 512 };
        assert!(fillers(&intf).is_empty());
    }

    #[test]
    fn an_interface_without_endpoints_is_still_described() {
        let intf =
            vec![InterfaceInfo { number: 0, class: 0xff, subclass: 0, protocol: 0, endpoints: vec![] }];
        let d = descriptors(&intf);
        assert_eq!(u32::from_le_bytes(d[4..8].try_into().unwrap()) as usize, d.len());
        assert_eq!(d.len(), 20 + 9 + 9);
        assert!(endpoint_files(&intf).is_empty());
    }

    #[test]
    fn strings_blob_is_an_empty_table() {
        assert_eq!(strings(), vec![2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn setup_events_decode_little_endian() {
        // Rockchip's 0x471 download request as the kernel queues it.
        let ev = [0x40, 0x0c, 0x00, 0x00, 0x71, 0x04, 0x00, 0x10, 4, 0, 0, 0];
        assert_eq!(
            parse_event(&ev),
            Event::Setup { setup: ControlSetup::vendor_out(0x0c, 0, 0x471), length: 4096 }
        );
        let mut e = [0u8; 12];
        e[8] = 2;
        assert_eq!(parse_event(&e), Event::Enable);
        e[8] = 9;
        assert_eq!(parse_event(&e), Event::Unknown(9));
    }
}
