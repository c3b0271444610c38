//! Writes the seed corpora of the new fuzz targets into fuzz/seeds/<target>/
//! from the crates' own builders and the protocols' test vectors:
//!
//!     cd fuzz && RUSTC_BOOTSTRAP=1 cargo run --example mkseeds
//!
//! Every seed is small (well under 64 KiB); the RKBOOT seed is a synthetic
//! loader, not the 481 KB vendor file.

use std::path::Path;

use racklet_fuzz::{SER_ECHO, fb_answer, put_chunk, serial_raw, usb_in};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(data.len() < 64 * 1024, "{target}/{name} is {} bytes", data.len());
    std::fs::write(dir.join(name), data).unwrap();
}

/// A synthetic RKBOOT loader: one 0x471 and one 0x472 entry, CRC32 trailer.
fn rkboot(tag: &[u8; 4]) -> Vec<u8> {
    let (d471, d472) = (vec![0x11u8; 300], vec![0x22u8; 500]);
    let mut b = vec![0u8; 0x66];
    b[..4].copy_from_slice(tag);
    b[4..6].copy_from_slice(&0x66u16.to_le_bytes());
    b[6..10].copy_from_slice(&0x0100u32.to_le_bytes());
    b[0x0e..0x10].copy_from_slice(&2024u16.to_le_bytes());
    b[0x10..0x15].copy_from_slice(&[5, 6, 7, 8, 9]);
    b[0x15..0x19].copy_from_slice(&u32::from_be_bytes(*b"3568").to_le_bytes());
    let t471 = 0x66u32;
    let t472 = t471 + 57;
    b[0x19] = 1;
    b[0x1a..0x1e].copy_from_slice(&t471.to_le_bytes());
    b[0x1e] = 57;
    b[0x1f] = 1;
    b[0x20..0x24].copy_from_slice(&t472.to_le_bytes());
    b[0x24] = 57;
    b[0x2a] = 57;
    let data_at = (t472 + 57) as usize;
    for (i, (ty, name, data)) in [(1u32, "ddr", &d471), (2, "usbplug", &d472)].into_iter().enumerate() {
        let mut e = vec![0u8; 57];
        e[0] = 57;
        e[1..5].copy_from_slice(&ty.to_le_bytes());
        for (k, u) in name.encode_utf16().enumerate() {
            e[5 + 2 * k..7 + 2 * k].copy_from_slice(&u.to_le_bytes());
        }
        let off = data_at + if i == 0 { 0 } else { d471.len() };
        e[0x2d..0x31].copy_from_slice(&(off as u32).to_le_bytes());
        e[0x31..0x35].copy_from_slice(&(data.len() as u32).to_le_bytes());
        e[0x35..0x39].copy_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&e);
    }
    b.extend_from_slice(&d471);
    b.extend_from_slice(&d472);
    let crc = racklet_rockchip::rk_crc32(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    racklet_rockchip::Loader::parse(&b).expect("synthetic loader parses");
    b
}

fn images() {
    write("images", "rkboot-boot.bin", &rkboot(b"BOOT"));
    write("images", "rkboot-ldr.bin", &rkboot(b"LDR "));
    let payload: Vec<u8> = (0..600u32).map(|i| (i * 31) as u8).collect();
    let opts = racklet_starfive::HeaderOptions::default();
    write("images", "starfive.img", &racklet_starfive::header::build_image(&payload, &opts).unwrap());
    let mut bad = racklet_starfive::header::build_image(&payload, &opts).unwrap();
    bad[0x290..0x294].copy_from_slice(&0x5a5a_5a5au32.to_le_bytes());
    write("images", "starfive-spl-tool-i.img", &bad);
    write("images", "fip.bin", &racklet_sophgo::fip::build(&payload, 0x10000).unwrap());
    write("images", "k230.img", &racklet_canaan::header::build_plain(&payload, 0).unwrap());
    write("images", "k1-fsbl.bin", &racklet_fastboot::k1::build_fsbl(&payload));
    let mut bi = vec![0u8; 0x50];
    bi[..4].copy_from_slice(&racklet_fastboot::k1::BOOTINFO_MAGIC.to_le_bytes());
    bi[4..8].copy_from_slice(&1u32.to_le_bytes());
    bi[8..12].copy_from_slice(b"eMMC");
    bi[0x20..0x24].copy_from_slice(&0x200u32.to_le_bytes());
    bi[0x24..0x28].copy_from_slice(&0x8000u32.to_le_bytes());
    bi[0x28..0x2c].copy_from_slice(&0x3_0000u32.to_le_bytes());
    let crc = racklet_starfive::header::CRC32.checksum(&bi[..0x40]);
    bi[0x40..0x44].copy_from_slice(&crc.to_le_bytes());
    write("images", "k1-bootinfo.bin", &bi);
}

fn csw(tag: u32, status: u8) -> Vec<u8> {
    let mut c = b"USBS".to_vec();
    c.extend_from_slice(&tag.to_le_bytes());
    c.extend_from_slice(&0u32.to_le_bytes());
    c.push(status);
    c
}

fn rockchip_usb() {
    let tag = 0x5243_4b01;
    // Ops: TUR, CHIP INFO, FLASH ID, FLASH INFO, then a 100-byte stage.
    let ops = [0u8, 1, 2, 3, 0x80, 100, 0];
    let mut s = vec![0u8, ops.len() as u8];
    s.extend_from_slice(&ops);
    // TUR: CBW ok, CSW.
    s.push(0x10);
    usb_in(&mut s, &csw(tag, 0));
    // CHIP INFO: CBW ok, data, CSW.
    s.push(0x10);
    let mut info = b"8653".to_vec();
    info.resize(16, 0);
    usb_in(&mut s, &info);
    usb_in(&mut s, &csw(tag, 0));
    // FLASH ID.
    s.push(0x10);
    usb_in(&mut s, b"EMMC ");
    usb_in(&mut s, &csw(tag, 0));
    // FLASH INFO.
    s.push(0x10);
    usb_in(&mut s, &[0, 0x40, 0xd1, 0x01, 0, 4, 4, 0, 0, 0, 1]);
    usb_in(&mut s, &csw(tag, 0));
    // The stage: one transfer, accepted.
    s.push(0x10);
    write("rockchip_usb", "session", &s);
    // A CSW with a failure status and a device that skips the data phase.
    let mut s = vec![0u8, 2, 1, 0];
    s.push(0x10);
    usb_in(&mut s, &csw(tag, 0));
    usb_in(&mut s, &csw(tag, 1));
    write("rockchip_usb", "no-data-phase", &s);
}

fn fastboot() {
    // parse_response vector, then mode 0b00_10_01_00: getvar, stage, upload, getvar.
    let mut s = Vec::new();
    let r = b"DATA0000F028";
    s.push(r.len() as u8);
    s.extend_from_slice(r);
    s.push(0b00_10_01_00);
    s.push(4); // 12-byte payload
    // getvar:version
    s.push(0x10);
    fb_answer(&mut s, b"INFOhello");
    fb_answer(&mut s, b"OKAY0.4\0garbage");
    // stage: getvar:max-download-size, download, data, OKAY
    s.push(0x10);
    fb_answer(&mut s, b"OKAY0x1000");
    s.push(0x10);
    fb_answer(&mut s, b"DATA0000000c");
    s.push(0x10);
    fb_answer(&mut s, b"OKAY");
    // upload: DATA, the data, OKAY
    s.push(0x10);
    fb_answer(&mut s, b"DATA00000005");
    fb_answer(&mut s, b"hello");
    fb_answer(&mut s, b"OKAY");
    s.push(0x10);
    fb_answer(&mut s, b"OKAY0.4");
    write("fastboot", "getvar-stage-upload", &s);
    // Download, K1 identify, max-download-size, identify again.
    let mut s = vec![4];
    s.extend_from_slice(b"OKAY");
    s.push(0b00_10_00_01);
    s.push(1); // 3-byte payload
    s.push(0x10);
    fb_answer(&mut s, b"DATA00000003");
    s.push(0x10);
    fb_answer(&mut s, b"OKAY");
    for _ in 0..2 {
        s.push(0x10);
        fb_answer(&mut s, b"OKAY1.0\0\xff\xff");
        s.push(0x10);
        fb_answer(&mut s, b"FAILVariable not implemented\0");
        if s.len() < 60 {
            s.push(0x10);
            fb_answer(&mut s, b"OKAY0x100000");
        }
    }
    write("fastboot", "k1-identify", &s);
}

fn serial() {
    // StarFive: the banner, then a poll; and a refusal after an image.
    for (name, mode, text) in [
        ("starfive-poll", 0u8, &b"\r\n(C)StarFive\r\nCC"[..]),
        ("starfive-crc-error", 1, b"CRC Error, Try again\r\nCCC"),
        ("starfive-spl", 0, b"U-Boot SPL 2025.10\r\nTrying to boot from UART\r\nC"),
    ] {
        let mut s = vec![mode, 0, 0];
        serial_raw(&mut s, text);
        write("serial", name, &s);
    }
    // Sophgo boot: probe session, then param1, then BL2 (100-byte BL2 ->
    // 512 padded, chunk 248: 3 DATA packets), each packet ACKed correctly.
    let ack = |s: &mut Vec<u8>, sel: u8, extra: &[u8]| {
        s.push(SER_ECHO);
        s.push(sel);
        s.extend_from_slice(extra);
    };
    let req = |off: u16, size: u16| -> Vec<u8> {
        let mut v = off.to_le_bytes().to_vec();
        v.extend_from_slice(&size.to_le_bytes());
        v
    };
    let mut s = vec![2u8, 99, 0];
    // Session 1: probe (size 0).
    ack(&mut s, 2, &req(0, 0));
    // Session 2: param1 (16 DATA packets of 248 + 1 of 128, FLAG, BREAK).
    let n1 = 0x1000usize.div_ceil(248);
    for _ in 0..n1 {
        ack(&mut s, 0, &[]);
    }
    ack(&mut s, 0, &[]); // FLAG
    ack(&mut s, 0, &[]); // BREAK
    // Session 3: BL2 at 0x1000 (512 bytes).
    let bl2 = |s: &mut Vec<u8>| ack(s, 1, &512u16.to_le_bytes());
    bl2(&mut s);
    for _ in 0..3 {
        bl2(&mut s);
    }
    bl2(&mut s); // FLAG
    bl2(&mut s); // BREAK
    write("serial", "sophgo-boot", &s);
    // --main: a 300-byte file, the BL2 asks for 200 bytes.
    let mut s = vec![3u8, 0x2c, 0x01];
    for _ in 0..4 {
        ack(&mut s, 2, &req(0, 200));
    }
    write("serial", "sophgo-main", &s);
}

fn op_control_out(s: &mut Vec<u8>, rt: u8, req: u8, value: u16, index: u16, data: &[u8]) {
    s.push(0);
    s.extend_from_slice(&[rt, req]);
    s.extend_from_slice(&value.to_le_bytes());
    s.extend_from_slice(&index.to_le_bytes());
    put_chunk(s, data);
}

fn op_bulk_out(s: &mut Vec<u8>, ep: u8, data: &[u8]) {
    s.push(2);
    s.push(ep);
    put_chunk(s, data);
}

fn op_bulk_in(s: &mut Vec<u8>, ep: u8, len: u16) {
    s.push(3);
    s.push(ep);
    s.extend_from_slice(&len.to_le_bytes());
}

fn sim_usb() {
    use racklet_rockchip::{FrameOptions, frame};
    // Rockchip rk3568: a 0x471 and a 0x472 stage, re-enumeration, rockusb.
    let mut s = vec![0u8, 0];
    for (index, len) in [(0x471u16, 5000usize), (0x472, 300)] {
        let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let f = frame(&body, FrameOptions { rc4: false, zero_crc: false });
        for t in f.transfers() {
            op_control_out(&mut s, 0x40, 0x0c, 0, index, t);
        }
    }
    s.extend_from_slice(&[5, 4]);
    for op in [0x00u8, 0x1b, 0x01, 0x1a] {
        let len = [0u32, 16, 5, 11][[0x00u8, 0x1b, 0x01, 0x1a].iter().position(|&o| o == op).unwrap()];
        let cbw = racklet_rockchip::rockusb::cbw(7, len, true, 6, op);
        op_bulk_out(&mut s, 0x01, &cbw);
        op_bulk_in(&mut s, 0x81, 512);
        op_bulk_in(&mut s, 0x81, 512);
    }
    write("sim_usb", "rockchip", &s);
    // Canaan K230: CPU info, a write to SRAM, PROG_START there.
    let mut s = vec![1u8, 0];
    s.push(1);
    s.extend_from_slice(&[0xc0, 0, 0, 0, 0, 0]);
    s.extend_from_slice(&32u16.to_le_bytes());
    op_control_out(&mut s, 0x40, 1, 0x8030, 0x0000, &[]);
    op_bulk_out(&mut s, 0x01, &[0x13u8; 1000]);
    op_control_out(&mut s, 0x40, 4, 0x8030, 0x0000, &[]);
    s.extend_from_slice(&[5, 4]);
    write("sim_usb", "canaan", &s);
    // K1 fastboot: getvar, download of a built FSBL, continue, the FSBL stage.
    let fsbl = racklet_fastboot::k1::build_fsbl(&[0x55; 200]);
    let mut s = vec![2u8, 0];
    let hp = |s: &mut Vec<u8>, d: &[u8]| {
        s.push(6);
        put_chunk(s, d);
    };
    hp(&mut s, b"getvar:version-brom");
    hp(&mut s, b"getvar:max-download-size");
    hp(&mut s, format!("download:{:08x}", fsbl.len()).as_bytes());
    hp(&mut s, &fsbl);
    op_bulk_in(&mut s, 0x81, 512);
    hp(&mut s, b"continue");
    s.extend_from_slice(&[5, 8]);
    hp(&mut s, b"getvar:version");
    hp(&mut s, b"download:00000004");
    hp(&mut s, b"abcd");
    hp(&mut s, b"flash:ram");
    write("sim_usb", "k1", &s);
    // TH1520: the same shape.
    s[0] = 3;
    write("sim_usb", "th1520", &s);
}

fn sim_starfive() {
    use racklet_starfive::xmodem;
    let payload: Vec<u8> = (0..700u32).map(|i| (i * 17) as u8).collect();
    let img = racklet_starfive::header::build_image(&payload, &Default::default()).unwrap();
    let xmodem_wire = |img: &[u8], size: usize| {
        let mut wire = Vec::new();
        for (i, c) in img.chunks(size).enumerate() {
            wire.extend(xmodem::frame((i + 1) as u8, c, size, xmodem::PAD));
        }
        wire.push(xmodem::EOT);
        wire
    };
    let chunked = |sel: u8, wire: &[u8]| {
        let mut s = vec![sel, 0];
        for c in wire.chunks(255) {
            s.push(c.len() as u8);
            s.extend_from_slice(c);
        }
        s
    };
    for (name, sel, size) in [("xmodem-1k", 0u8, 1024usize), ("xmodem-128", 0, 128), ("nak-fault", 1, 1024)] {
        write("sim_starfive", name, &chunked(sel, &xmodem_wire(&img, size)));
    }
    // U-Boot SPL (its banner and its YMODEM loader's report in the payload),
    // then the YMODEM batch of a small u-boot.itb: header block, data, EOT
    // twice (the first is NAKed), the empty block that ends the batch.
    let mut spl = payload.clone();
    spl[10..42].copy_from_slice(b"\nU-Boot SPL 2025.10 (Oct 06 2025");
    spl[600..618].copy_from_slice(b"Loaded %lu bytes\n\0");
    let img = racklet_starfive::header::build_image(&spl, &Default::default()).unwrap();
    let mut wire = xmodem_wire(&img, 1024);
    let itb = [0x5au8; 300];
    wire.extend(xmodem::ymodem_header("u-boot.itb", itb.len() as u64));
    wire.extend(xmodem::frame(1, &itb, 1024, xmodem::PAD));
    wire.extend([xmodem::EOT, xmodem::EOT]);
    wire.extend(xmodem::frame(0, &[], 128, 0));
    write("sim_starfive", "spl-ymodem", &chunked(0, &wire));
}

fn main() {
    images();
    rockchip_usb();
    fastboot();
    serial();
    sim_usb();
    sim_starfive();
}
