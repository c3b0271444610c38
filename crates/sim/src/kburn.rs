//! The K230's kburn loader as a USB device: the vendor U-Boot's `f_kburn`
//! gadget and its media drivers, so that any loader uploaded through the
//! virtual ROM becomes a device that writes storage (the sim cannot run the
//! loader it is given).
//!
//! Written from the device-side source, canmv-k230/u-boot (the K230 SDK's
//! U-Boot; kendryte747/k230_uboot carries the same files) at a6f56901
//! "Update kburn" (2024-10-25):
//! - `drivers/usb/gadget/f_kburn.c`: 60-byte command packets on bulk OUT
//!   0x02, replies on bulk IN 0x81 (one pending reply: `kburn_tx_write`
//!   dequeues the old one), the OUT request of `rx_bytes_expected`
//!   (128 KiB, or what is left rounded up to wMaxPacketSize), the 256 KiB
//!   double buffer, READ_LBA chunks of at most 32 KiB behind a 6-byte
//!   header, every reply string, and what happens on errors (a failed
//!   medium write leaves the OUT request unqueued: the gadget takes no more
//!   data);
//! - `drivers/kburn/kburn_{mmc,sf,mtd,otp}.c`: what each medium checks and
//!   does (MMC rounds every access up to its block size and the gadget then
//!   sees a length mismatch; SPI NOR/NAND erase before they write and cannot
//!   read back; OTP words are 1 KiB, written once);
//! - `drivers/usb/gadget/dwc2_udc_otg_xfer_dma.c` `complete_rx`: an OUT
//!   request completes when full, or on a short packet whose DMA transfer
//!   is not a multiple of wMaxPacketSize — a zero-length packet never ends
//!   one.
//!
//! The shipped loaders (k230-flash 1.4.0 `loader_*.bin`) print
//! "request write … flag 0x%llx": they take WRITE_LBA's 32-byte form
//! (offset, size, max size, partition flags) that k230-flash sends, where
//! the source reads 16 bytes. Both are accepted; every other string the
//! shipped binary carries is the source's.

use std::path::Path;

use crate::storage::{Medium, MediumFileError};

/// wMaxPacketSize of the bulk endpoints at high speed (`hs_ep_in/out`).
pub const MPS: usize = 512;
/// `KBURN_USB_EP_OUT_BUFFER_SZIE`: the OUT request, and the chunk size the
/// gadget reports on DEV_PROBE.
pub const OUT_CHUNK: usize = 128 * 1024;
/// `KBURN_USB_EP_IN_BUFFER_SZIE`: the most a READ_LBA chunk carries.
pub const IN_CHUNK: usize = 32 * 1024;
/// `KBUNR_USB_PKT_SIZE`.
pub const PKT: usize = 60;
/// The bulk OUT endpoint of the gadget.
pub const EP_OUT: u8 = 0x02;
/// The bulk IN endpoint of the gadget.
pub const EP_IN: u8 = 0x81;

const CMD_NONE: u16 = 0x00;
const CMD_REBOOT: u16 = 0x01;
const CMD_DEV_PROBE: u16 = 0x10;
const CMD_DEV_GET_INFO: u16 = 0x11;
const CMD_ERASE_LBA: u16 = 0x20;
const CMD_WRITE_LBA: u16 = 0x21;
const CMD_READ_LBA: u16 = 0x23;
const CMD_READ_LBA_CHUNK: u16 = 0x24;
/// `KBURN_CMD_MAX`, which the handler table also maps to "not supported".
const CMD_MAX: u16 = 0x25;
const RESULT_OK: u16 = 1;
const RESULT_ERROR: u16 = 2;
const RESULT_ERROR_MSG: u16 = 0xff;
/// `cb_reboot`'s mark ("tobR" little-endian).
const REBOOT_MARK: u64 = 0x5262_6F74;

/// The media the gadget knows (`enum KBURN_MEDIA_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Emmc = 1,
    Sd = 2,
    SpiNand = 3,
    SpiNor = 4,
    Otp = 5,
}

impl Kind {
    /// Every kind, in the gadget's order.
    pub const ALL: [Kind; 5] = [Kind::Emmc, Kind::Sd, Kind::SpiNand, Kind::SpiNor, Kind::Otp];

    /// By the name `--medium` takes.
    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "emmc" => Kind::Emmc,
            "sd" | "sdcard" => Kind::Sd,
            "spi-nand" | "nand" => Kind::SpiNand,
            "spi-nor" | "nor" => Kind::SpiNor,
            "otp" => Kind::Otp,
            _ => return None,
        })
    }

    fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u8 == code)
    }

    /// The medium's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Emmc => "emmc",
            Kind::Sd => "sd",
            Kind::SpiNand => "spi-nand",
            Kind::SpiNor => "spi-nor",
            Kind::Otp => "otp",
        }
    }
}

/// One medium of the virtual board, as its U-Boot driver describes it in
/// `get_medium_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    /// `capacity`: bytes.
    pub capacity: u64,
    /// `blk_size`: the MMC block, the flash page, the OTP word.
    pub blk_size: u64,
    /// `erase_size`: the eMMC erase group, the flash erase block.
    pub erase_size: u64,
    /// `timeout_ms` (1000 for MMC, 5000 for the others).
    pub timeout_ms: u32,
    /// `type` as the driver reports it: `kburn_mmc.c` says eMMC for the SD
    /// card too.
    pub reported_type: u8,
    /// What an erased byte reads as.
    pub erased: u8,
}

/// The virtual board's media: parts of real sizes, as the drivers would
/// report them.
pub static MEDIA: [Spec; 5] = [
    // An 8 GB eMMC (e.g. Samsung KLM8G1GETF: 15,269,888 sectors of user
    // area); erase group = the JEDEC high-capacity group of 512 KiB, which
    // U-Boot's mmc.c takes as erase_grp_size (1024 blocks).
    Spec {
        kind: Kind::Emmc,
        capacity: 15_269_888 * 512,
        blk_size: 512,
        erase_size: 512 * 1024,
        timeout_ms: 1000,
        reported_type: 1,
        erased: 0,
    },
    // A 16 GB microSD card (31,116,288 sectors); U-Boot leaves an SD card's
    // erase_grp_size at 1 block.
    Spec {
        kind: Kind::Sd,
        capacity: 31_116_288 * 512,
        blk_size: 512,
        erase_size: 512,
        timeout_ms: 1000,
        reported_type: 1,
        erased: 0,
    },
    // A 1 Gbit SPI NAND (W25N01GV: 2 KiB pages, 128 KiB blocks).
    Spec {
        kind: Kind::SpiNand,
        capacity: 128 << 20,
        blk_size: 2048,
        erase_size: 128 << 10,
        timeout_ms: 5000,
        reported_type: 3,
        erased: 0xff,
    },
    // A 128 Mbit SPI NOR (GD25LQ128: 256-byte pages; U-Boot's 4 KiB
    // sectors, CONFIG_SPI_FLASH_USE_4K_SECTORS).
    Spec {
        kind: Kind::SpiNor,
        capacity: 16 << 20,
        blk_size: 256,
        erase_size: 4096,
        timeout_ms: 5000,
        reported_type: 4,
        erased: 0xff,
    },
    // `kburn_otp.c`: KBURN_OTP_SIZE 1024, 4-byte words.
    Spec {
        kind: Kind::Otp,
        capacity: 1024,
        blk_size: 4,
        erase_size: 4,
        timeout_ms: 5000,
        reported_type: 5,
        erased: 0,
    },
];

/// The spec of `kind`.
pub fn spec(kind: Kind) -> &'static Spec {
    MEDIA.iter().find(|s| s.kind == kind).expect("every kind has a spec")
}

/// What completes the OUT request next (`req->complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutHandler {
    Command,
    WriteLba,
}

/// What completes the IN request next (`in_req->complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InHandler {
    Done,
    Upload,
}

/// One WRITE_LBA as the device saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    pub medium: Kind,
    pub offset: u64,
    pub size: u64,
    /// Bytes received so far.
    pub received: u64,
    /// "WRITE DONE" was sent.
    pub done: bool,
    /// The error string sent instead.
    pub error: Option<String>,
}

/// The gadget and its media.
pub struct Kburn {
    media: Vec<(Kind, Medium)>,
    /// `kburn_usb->burner`: the probed medium and whether its info is valid.
    burner: Option<(Kind, bool)>,
    /// The OUT request: queued or not, its length, its handler, its buffer
    /// (`req->buf`, 128 KiB, reused: what a short transfer does not
    /// overwrite stays), bytes received, bytes of the current DMA.
    out_queued: bool,
    out_len: usize,
    out_handler: OutHandler,
    out_buf: Vec<u8>,
    out_actual: usize,
    out_dma: usize,
    /// The IN request, when queued.
    in_req: Option<Vec<u8>>,
    in_handler: InHandler,
    /// `buf_head`: two halves of 128 KiB; `half` is `kburn_usb->buf`.
    dl_buf: Vec<u8>,
    half: usize,
    /// `rdbuf`'s data area (what an OTP read leaves untouched).
    rd_buf: Vec<u8>,
    offset: u64,
    dl_size: u64,
    dl_bytes: u64,
    ul_size: u64,
    ul_bytes: u64,
    /// The loader dereferenced a NULL burner (a command before any
    /// DEV_PROBE): it is gone.
    pub crashed: bool,
    /// A REBOOT with the right mark was received: the chip resets.
    pub rebooted: bool,
    /// Every WRITE_LBA, in order.
    pub writes: Vec<WriteRecord>,
    /// Every command and reply, one line each.
    pub log: Vec<String>,
}

impl std::fmt::Debug for Kburn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kburn").field("burner", &self.burner).field("writes", &self.writes).finish()
    }
}

/// A packet the gadget had no request for: NAKed until the host gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nak;

/// The error of a medium driver (its return code).
type Rc = i32;

impl Kburn {
    /// A gadget over the board's media, blank and in memory, except
    /// `file`: that medium kept in the file (`--sim-storage`).
    pub fn new(file: Option<(Kind, &Path)>) -> Result<Kburn, MediumFileError> {
        let mut media = Vec::new();
        for s in &MEDIA {
            let m = match file {
                Some((k, path)) if k == s.kind => Medium::in_file(path, s.capacity)?,
                _ => Medium::in_memory(s.capacity, s.erased),
            };
            media.push((s.kind, m));
        }
        Ok(Kburn {
            media,
            burner: None,
            // `kburn_set_alt`: the OUT request is queued at once, for a
            // command, 128 KiB long.
            out_queued: true,
            out_len: OUT_CHUNK,
            out_handler: OutHandler::Command,
            out_buf: vec![0; OUT_CHUNK],
            out_actual: 0,
            out_dma: 0,
            in_req: None,
            in_handler: InHandler::Done,
            dl_buf: vec![0; 2 * OUT_CHUNK],
            half: 0,
            rd_buf: vec![0; IN_CHUNK],
            offset: 0,
            dl_size: 0,
            dl_bytes: 0,
            ul_size: 0,
            ul_bytes: 0,
            crashed: false,
            rebooted: false,
            writes: Vec::new(),
            log: Vec::new(),
        })
    }

    /// The loader starts afresh (after a reset and a new upload): gadget
    /// state as `kburn_set_alt` leaves it, the media as they are.
    pub fn restart(&mut self) {
        self.burner = None;
        self.out_queued = true;
        self.out_len = OUT_CHUNK;
        self.out_handler = OutHandler::Command;
        self.out_actual = 0;
        self.out_dma = 0;
        self.in_req = None;
        self.in_handler = InHandler::Done;
        self.half = 0;
        self.crashed = false;
        self.rebooted = false;
    }

    /// The medium of `kind`.
    pub fn medium(&self, kind: Kind) -> &Medium {
        &self.media.iter().find(|(k, _)| *k == kind).expect("every kind is present").1
    }

    fn medium_mut(&mut self, kind: Kind) -> &mut Medium {
        &mut self.media.iter_mut().find(|(k, _)| *k == kind).expect("every kind is present").1
    }

    /// `kburn_handle_setup`: any vendor request with wValue = wIndex = 0
    /// answers the mark (strncpy into wLength bytes); every other request a
    /// zero-length data stage.
    pub fn setup(&mut self, value: u16, index: u16, len: u16) -> Vec<u8> {
        if value == 0 && index == 0 {
            let mut m = b"Uboot Stage for K230".to_vec();
            m.truncate(len as usize);
            m
        } else {
            Vec::new()
        }
    }

    /// Bulk OUT data from the host, packet by packet. `Err(Nak)`: a packet
    /// found no request queued (the host is NAKed until it times out).
    pub fn bulk_out(&mut self, data: &[u8]) -> Result<(), Nak> {
        if self.crashed {
            return Err(Nak);
        }
        let empty: [&[u8]; 1] = [&[]];
        let packets: Vec<&[u8]> = if data.is_empty() { empty.to_vec() } else { data.chunks(MPS).collect() };
        for p in packets {
            if !self.out_queued {
                return Err(Nak);
            }
            let room = self.out_len - self.out_actual;
            let n = p.len().min(room);
            self.out_buf[self.out_actual..self.out_actual + n].copy_from_slice(&p[..n]);
            self.out_actual += n;
            self.out_dma += p.len();
            if self.out_actual == self.out_len {
                self.complete_out();
            } else if p.len() < MPS {
                // complete_rx: `is_short = !!(xfer_size % maxpacket)`; a
                // ZLP ends the DMA with a multiple, and the request is
                // armed again.
                if !self.out_dma.is_multiple_of(MPS) {
                    self.complete_out();
                } else {
                    self.out_dma = 0;
                }
            }
        }
        Ok(())
    }

    /// Bulk IN: the pending reply, or nothing (the host times out).
    pub fn bulk_in(&mut self, max_len: usize) -> Option<Vec<u8>> {
        if self.crashed {
            return None;
        }
        let mut r = self.in_req.take()?;
        r.truncate(max_len);
        // The request completed: its handler runs.
        if self.in_handler == InHandler::Upload {
            self.upload_next();
        }
        Some(r)
    }

    fn complete_out(&mut self) {
        self.out_queued = false;
        self.out_dma = 0;
        let actual = std::mem::take(&mut self.out_actual);
        match self.out_handler {
            OutHandler::Command => self.rx_command(actual),
            OutHandler::WriteLba => self.rx_write(actual),
        }
    }

    /// `kburn_tx_write`: the one IN request is dequeued and queued anew.
    fn tx(&mut self, bytes: Vec<u8>) {
        if self.in_req.is_some() && self.in_handler == InHandler::Upload {
            // A read chunk the host never took: the read is abandoned.
            self.in_handler = InHandler::Done;
        }
        self.in_req = Some(bytes);
    }

    /// `kburn_tx_result`: a 60-byte reply.
    fn tx_result(&mut self, cmd: u16, result: u16, data: &[u8]) {
        let mut p = vec![0u8; PKT];
        p[0..2].copy_from_slice(&(0x8000 | cmd).to_le_bytes());
        p[2..4].copy_from_slice(&result.to_le_bytes());
        p[4..6].copy_from_slice(&(data.len() as u16).to_le_bytes());
        p[6..6 + data.len()].copy_from_slice(data);
        self.log.push(format!(
            "reply 0x{:04x} result {result} {:?}",
            0x8000 | cmd,
            String::from_utf8_lossy(data)
        ));
        self.tx(p);
    }

    fn tx_string(&mut self, cmd: u16, result: u16, s: &str) {
        self.tx_result(cmd, result, s.as_bytes());
    }

    /// `kburn_tx_error_string`: cmd 0x8000, ERROR_MSG.
    fn tx_error(&mut self, s: &str) {
        self.tx_result(CMD_NONE, RESULT_ERROR_MSG, s.as_bytes());
    }

    fn requeue(&mut self) {
        self.out_queued = true;
        self.out_actual = 0;
        self.out_dma = 0;
    }

    /// `rx_handler_command`.
    fn rx_command(&mut self, actual: usize) {
        let cbw: Vec<u8> = self.out_buf[..PKT].to_vec();
        let cmd = u16::from_le_bytes([cbw[0], cbw[1]]);
        let known = matches!(
            cmd,
            CMD_NONE
                | CMD_MAX
                | CMD_REBOOT
                | CMD_DEV_PROBE
                | CMD_DEV_GET_INFO
                | CMD_WRITE_LBA
                | CMD_ERASE_LBA
                | CMD_READ_LBA
        );
        self.log.push(format!("command 0x{cmd:04x}, {actual} bytes"));
        if !known {
            self.tx_error("FAILunknown command");
        } else if actual < self.out_len {
            self.out_buf[actual] = 0;
            let cbw: Vec<u8> = self.out_buf[..PKT].to_vec();
            let size = u16::from_le_bytes([cbw[4], cbw[5]]) as usize;
            let data = &cbw[6..6 + size.min(PKT - 6)];
            let data = data.to_vec();
            match cmd {
                CMD_NONE | CMD_MAX => self.tx_error("NOT SUPPORT FUNC"),
                CMD_REBOOT => self.cb_reboot(&data),
                CMD_DEV_PROBE => self.cb_probe(size, &data),
                CMD_DEV_GET_INFO => self.cb_get_info(),
                CMD_WRITE_LBA => self.cb_write(size, &data),
                CMD_ERASE_LBA => self.cb_erase(size, &data),
                CMD_READ_LBA => self.cb_read(size, &data),
                _ => unreachable!("checked above"),
            }
        } else {
            self.tx_error("FAILbuffer overflow");
        }
        if self.crashed {
            return;
        }
        self.out_buf[0] = 0;
        self.requeue();
    }

    fn cb_reboot(&mut self, data: &[u8]) {
        if data.len() >= 8 && u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) == REBOOT_MARK {
            // `writel(0x10001, SYSCTL_BOOT_BASE_ADDR + 0x60)`: no reply.
            self.log.push("REBOOT: the chip resets".into());
            self.rebooted = true;
        }
    }

    fn cb_probe(&mut self, size: usize, data: &[u8]) {
        if size != 2 {
            return self.tx_string(CMD_DEV_PROBE, RESULT_ERROR_MSG, "ERROR DATA SIZE");
        }
        // The index byte is read and not used (`kburn_probe_media(type)`).
        self.burner = None;
        match Kind::from_code(data[0]) {
            Some(k) => {
                self.burner = Some((k, false));
                let mut r = Vec::with_capacity(16);
                r.extend_from_slice(&(OUT_CHUNK as u64).to_le_bytes());
                r.extend_from_slice(&(IN_CHUNK as u64).to_le_bytes());
                self.tx_result(CMD_DEV_PROBE, RESULT_OK, &r);
            }
            None => self.tx_string(CMD_DEV_PROBE, RESULT_ERROR_MSG, "PROBE FAILED"),
        }
    }

    fn cb_get_info(&mut self) {
        let Some((k, _)) = self.burner else {
            return self.tx_string(CMD_DEV_GET_INFO, RESULT_ERROR_MSG, "RUNTIME ERROR");
        };
        self.burner = Some((k, true));
        let s = spec(k);
        let bits = s.timeout_ms as u64 | ((s.reported_type as u64 & 0x7f) << 40) | (1u64 << 47);
        let mut r = Vec::with_capacity(32);
        for v in [s.capacity, s.blk_size, s.erase_size, bits] {
            r.extend_from_slice(&v.to_le_bytes());
        }
        self.tx_result(CMD_DEV_GET_INFO, RESULT_OK, &r);
    }

    /// The probed medium with valid info, or the reply the gadget gives
    /// (a NULL burner is dereferenced: the loader dies).
    fn valid_burner(&mut self, cmd: u16) -> Option<Kind> {
        match self.burner {
            None => {
                self.log.push("NULL burner dereferenced: the loader crashed".into());
                self.crashed = true;
                None
            }
            Some((_, false)) => {
                self.tx_string(cmd, RESULT_ERROR_MSG, "MEDIUM INFO INVALID");
                None
            }
            Some((k, true)) => Some(k),
        }
    }

    fn cb_write(&mut self, size: usize, data: &[u8]) {
        // The source takes 16 bytes; the shipped loaders the 32 that
        // k230-flash 1.4.0 sends (offset, size, max size, flags).
        if size != 16 && size != 32 {
            return self.tx_string(CMD_WRITE_LBA, RESULT_ERROR_MSG, "ERROR CMD SIZE");
        }
        let offset = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
        let Some(k) = self.valid_burner(CMD_WRITE_LBA) else { return };
        if len == 0 {
            return self.tx_string(CMD_WRITE_LBA, RESULT_ERROR_MSG, "DATA SIZE INVALID");
        }
        if offset.checked_add(len).is_none_or(|end| end > spec(k).capacity) {
            return self.tx_string(CMD_WRITE_LBA, RESULT_ERROR_MSG, "DATA SIZE EXCEED");
        }
        self.offset = offset;
        self.dl_size = len;
        self.dl_bytes = 0;
        self.writes.push(WriteRecord { medium: k, offset, size: len, received: 0, done: false, error: None });
        self.tx_string(CMD_WRITE_LBA, RESULT_OK, "START DL");
        self.out_handler = OutHandler::WriteLba;
        self.out_len = self.rx_bytes_expected();
    }

    /// `rx_bytes_expected`: 128 KiB, or what is left rounded up to MPS.
    fn rx_bytes_expected(&self) -> usize {
        let left = self.dl_size - self.dl_bytes;
        if left == 0 {
            0
        } else if left > OUT_CHUNK as u64 {
            OUT_CHUNK
        } else {
            (left as usize).div_ceil(MPS) * MPS
        }
    }

    /// `rx_handler_write_lba`.
    fn rx_write(&mut self, actual: usize) {
        let transfer = ((self.dl_size - self.dl_bytes) as usize).min(actual);
        let h = self.half * OUT_CHUNK;
        self.dl_buf[h..h + transfer].copy_from_slice(&self.out_buf[..transfer]);
        self.dl_bytes += transfer as u64;
        let k = self.burner.expect("a write has a burner").0;
        let mut xfer = transfer as u64;
        let rc = self.write_medium(k, self.offset, h, &mut xfer);
        if let Some(w) = self.writes.last_mut() {
            w.received = self.dl_bytes;
        }
        if rc != 0 || xfer != transfer as u64 {
            let msg = format!("WRITE ERROR, 0x{:X}", rc as u32);
            if let Some(w) = self.writes.last_mut() {
                w.error = Some(msg.clone());
            }
            self.tx_string(CMD_WRITE_LBA, RESULT_ERROR_MSG, &msg);
            // Returns before `usb_ep_queue`: no more OUT data is taken.
            return;
        }
        self.offset += transfer as u64;
        if self.dl_bytes >= self.dl_size {
            self.out_handler = OutHandler::Command;
            self.out_len = OUT_CHUNK;
            self.half = 0;
            self.dl_size = 0;
            if let Some(w) = self.writes.last_mut() {
                w.done = true;
            }
            self.tx_string(CMD_WRITE_LBA, RESULT_OK, "WRITE DONE");
        } else {
            self.out_len = self.rx_bytes_expected();
            self.half ^= 1;
        }
        self.requeue();
    }

    /// `kburn_write_medium` for the probed medium, from `dl_buf[h..]`;
    /// `len` may be changed as the driver changes it.
    fn write_medium(&mut self, k: Kind, offset: u64, h: usize, len: &mut u64) -> Rc {
        let s = *spec(k);
        match k {
            Kind::Emmc | Kind::Sd => {
                // mmc_op: `*len = ALIGN(*len, blksz)`, the block of the
                // (floored) offset, the stale bytes of the buffer after the
                // data included.
                *len = len.div_ceil(s.blk_size) * s.blk_size;
                let start = offset / s.blk_size * s.blk_size;
                if start + *len > s.capacity {
                    return 4;
                }
                let bytes = self.dl_buf[h..h + *len as usize].to_vec();
                self.medium_mut(k).write(start, &bytes).map(|_| 0).unwrap_or(5)
            }
            Kind::SpiNor | Kind::SpiNand => {
                // kburn_sf.c / kburn_mtd.c: offset on an erase block (NOR) or
                // page and then erase block (NAND), size on a page; the area
                // rounded up to erase blocks is erased, then written.
                let aligned = if k == Kind::SpiNor {
                    offset.is_multiple_of(s.erase_size)
                } else {
                    offset.is_multiple_of(s.blk_size) && offset.is_multiple_of(s.erase_size)
                };
                if !aligned || !len.is_multiple_of(s.blk_size) {
                    return -1;
                }
                let erase = len.div_ceil(s.erase_size) * s.erase_size;
                if offset + erase > s.capacity {
                    return -1;
                }
                let bytes = self.dl_buf[h..h + *len as usize].to_vec();
                let m = self.medium_mut(k);
                if m.write(offset, &vec![0xff; erase as usize]).is_err() || m.write(offset, &bytes).is_err() {
                    return -1;
                }
                0
            }
            Kind::Otp => {
                if offset & 3 != 0 || *len & 3 != 0 {
                    return -1;
                }
                if offset + *len > s.capacity {
                    return -2;
                }
                let new = self.dl_buf[h..h + *len as usize].to_vec();
                let old = self.medium(k).read(offset, new.len()).expect("checked above");
                let mut out = old.clone();
                for (i, (n, o)) in new.chunks(4).zip(old.chunks(4)).enumerate() {
                    let n = u32::from_le_bytes(n.try_into().expect("4 bytes"));
                    let o = u32::from_le_bytes(o.try_into().expect("4 bytes"));
                    let at = offset as usize + 4 * i;
                    if n == 0 || o == n {
                        continue;
                    }
                    if o != 0 {
                        // Either a 1 to 0 change or one the driver "does not
                        // do now": it returns the word's address.
                        return at as Rc;
                    }
                    out[4 * i..4 * i + 4].copy_from_slice(&n.to_le_bytes());
                }
                self.medium_mut(k).write(offset, &out).expect("checked above");
                0
            }
        }
    }

    fn cb_erase(&mut self, size: usize, data: &[u8]) {
        if size != 16 {
            return self.tx_string(CMD_ERASE_LBA, RESULT_ERROR_MSG, "ERROR DATA SIZE");
        }
        let offset = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
        let mut len = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
        let Some((k, _)) = self.burner else {
            return self.tx_string(CMD_ERASE_LBA, RESULT_ERROR_MSG, "RUNTIME ERROR");
        };
        let mut rc: Rc = -1;
        if len != 0 {
            rc = self.erase_medium(k, offset, &mut len);
        }
        let mut r = Vec::with_capacity(16);
        r.extend_from_slice(&offset.to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes());
        self.tx_result(CMD_ERASE_LBA, if rc == 0 { RESULT_OK } else { RESULT_ERROR }, &r);
    }

    fn erase_medium(&mut self, k: Kind, offset: u64, len: &mut u64) -> Rc {
        let s = *spec(k);
        match k {
            Kind::Emmc | Kind::Sd => {
                *len = len.div_ceil(s.blk_size) * s.blk_size;
                let start = offset / s.blk_size * s.blk_size;
                if start + *len > s.capacity {
                    return 4;
                }
                self.medium_mut(k).erase(start, *len).map(|_| 0).unwrap_or(5)
            }
            Kind::SpiNor | Kind::SpiNand => {
                // spi_flash_erase / mtd_erase_medium: whole erase blocks only.
                if !offset.is_multiple_of(s.erase_size) || !len.is_multiple_of(s.erase_size) {
                    return -1;
                }
                if offset + *len > s.capacity {
                    return -1;
                }
                let m = self.medium_mut(k);
                m.write(offset, &vec![0xff; *len as usize]).map(|_| 0).unwrap_or(-1)
            }
            // "otp not support erase", and it returns 0.
            Kind::Otp => 0,
        }
    }

    fn cb_read(&mut self, size: usize, data: &[u8]) {
        if size != 16 {
            return self.tx_string(CMD_READ_LBA, RESULT_ERROR_MSG, "ERROR CMD SIZE");
        }
        let offset = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
        let Some(k) = self.valid_burner(CMD_READ_LBA) else { return };
        if len == 0 {
            return self.tx_string(CMD_READ_LBA, RESULT_ERROR_MSG, "DATA SIZE INVALID");
        }
        if offset.checked_add(len).is_none_or(|end| end > spec(k).capacity) {
            return self.tx_string(CMD_READ_LBA, RESULT_ERROR_MSG, "DATA SIZE EXCEED");
        }
        self.offset = offset;
        self.ul_size = len;
        self.ul_bytes = 0;
        self.tx_string(CMD_READ_LBA, RESULT_OK, "READ START");
        self.in_handler = InHandler::Upload;
    }

    /// `tx_handler_ul_image`: after each IN completion, the next chunk (6-byte
    /// header cmd 0x8024, result OK, data size), or "READ DONE".
    fn upload_next(&mut self) {
        if self.ul_bytes >= self.ul_size {
            self.in_handler = InHandler::Done;
            self.tx_string(CMD_READ_LBA_CHUNK, RESULT_OK, "READ DONE");
            return;
        }
        let mut n = (self.ul_size - self.ul_bytes).min(IN_CHUNK as u64);
        let k = self.burner.expect("a read has a burner").0;
        let s = *spec(k);
        let rc: Rc = match k {
            Kind::Emmc | Kind::Sd => {
                n = n.div_ceil(s.blk_size) * s.blk_size;
                let start = self.offset / s.blk_size * s.blk_size;
                match self.medium(k).read(start, n as usize) {
                    Ok(b) if start + n <= s.capacity => {
                        self.rd_buf[..n as usize].copy_from_slice(&b);
                        0
                    }
                    _ => 4,
                }
            }
            // "TODO": the SPI drivers cannot read.
            Kind::SpiNor | Kind::SpiNand => -1,
            // "TODO", returning 0: the buffer is sent as it is.
            Kind::Otp => 0,
        };
        if rc != 0 {
            self.in_handler = InHandler::Done;
            let msg = format!("READ ERROR, 0x{:X}", rc as u32);
            self.tx_string(CMD_READ_LBA_CHUNK, RESULT_ERROR_MSG, &msg);
            return;
        }
        self.offset += n;
        self.ul_bytes += n;
        let mut p = Vec::with_capacity(6 + n as usize);
        p.extend_from_slice(&(0x8000 | CMD_READ_LBA_CHUNK).to_le_bytes());
        p.extend_from_slice(&RESULT_OK.to_le_bytes());
        p.extend_from_slice(&(n as u16).to_le_bytes());
        p.extend_from_slice(&self.rd_buf[..n as usize]);
        // Queued without the dequeue of kburn_tx_write.
        self.in_req = Some(p);
    }

    /// Every write finished with "WRITE DONE", or why not.
    pub fn summary(&self) -> Result<String, String> {
        let mut parts = Vec::new();
        for w in &self.writes {
            let what = format!("{} bytes at 0x{:x} of the {}", w.size, w.offset, w.medium.name());
            if let Some(e) = &w.error {
                return Err(format!("kburn: {what}: {e}"));
            }
            if !w.done {
                return Err(format!("kburn: {what}: only {} bytes arrived", w.received));
            }
            parts.push(format!("wrote {what}"));
        }
        if self.rebooted {
            parts.push("rebooted".into());
        }
        Ok(if parts.is_empty() {
            "kburn: nothing written".into()
        } else {
            format!("kburn: {}", parts.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 60-byte command as the packet layout of `struct kburn_usb_pkt` is.
    fn cmd(c: u16, data: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; PKT];
        p[0..2].copy_from_slice(&c.to_le_bytes());
        p[4..6].copy_from_slice(&(data.len() as u16).to_le_bytes());
        p[6..6 + data.len()].copy_from_slice(data);
        p
    }

    fn reply(k: &mut Kburn) -> (u16, u16, Vec<u8>) {
        let r = k.bulk_in(PKT).expect("a reply");
        let n = u16::from_le_bytes([r[4], r[5]]) as usize;
        (u16::from_le_bytes([r[0], r[1]]), u16::from_le_bytes([r[2], r[3]]), r[6..6 + n].to_vec())
    }

    fn probe(k: &mut Kburn, kind: Kind) {
        k.bulk_out(&cmd(0x10, &[kind as u8, 0xff])).unwrap();
        assert_eq!(reply(k).1, 1);
        k.bulk_out(&cmd(0x11, &[])).unwrap();
        assert_eq!(reply(k).1, 1);
    }

    fn write_cmd(offset: u64, size: u64) -> Vec<u8> {
        let mut d = Vec::new();
        for v in [offset, size, size, 0] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        cmd(0x21, &d)
    }

    #[test]
    fn nop_probe_info_write_as_the_gadget_answers() {
        let mut k = Kburn::new(None).unwrap();
        assert_eq!(k.bulk_in(PKT), None, "nothing queued: the drain read times out");
        k.bulk_out(&cmd(0, &[])).unwrap();
        assert_eq!(reply(&mut k), (0x8000, 0xff, b"NOT SUPPORT FUNC".to_vec()));
        k.bulk_out(&cmd(0x10, &[2, 0xff])).unwrap();
        let (c, r, d) = reply(&mut k);
        assert_eq!((c, r), (0x8010, 1));
        assert_eq!(d, [(128u64 << 10).to_le_bytes(), (32u64 << 10).to_le_bytes()].concat());
        // Before DEV_GET_INFO the medium info is not valid.
        k.bulk_out(&write_cmd(0, 512)).unwrap();
        assert_eq!(reply(&mut k), (0x8021, 0xff, b"MEDIUM INFO INVALID".to_vec()));
        k.bulk_out(&cmd(0x11, &[])).unwrap();
        let (c, r, d) = reply(&mut k);
        assert_eq!((c, r, d.len()), (0x8011, 1, 32));
        let bits = u64::from_le_bytes(d[24..32].try_into().unwrap());
        assert_eq!(
            (bits & 0xffff_ffff, (bits >> 40) & 0x7f, bits >> 47 & 1),
            (1000, 1, 1),
            "SD reports eMMC"
        );
        k.bulk_out(&write_cmd(0x10_0000, 1024)).unwrap();
        assert_eq!(reply(&mut k), (0x8021, 1, b"START DL".to_vec()));
        k.bulk_out(&[7u8; 1024]).unwrap();
        assert_eq!(reply(&mut k), (0x8021, 1, b"WRITE DONE".to_vec()));
        assert_eq!(k.medium(Kind::Sd).read(0x10_0000, 1024).unwrap(), vec![7; 1024]);
        assert_eq!(k.summary().unwrap(), "kburn: wrote 1024 bytes at 0x100000 of the sd");
    }

    /// dwc2 `complete_rx`: a zero-length packet does not end a request, so
    /// k230-flash's ZLP after a chunk-multiple write is swallowed.
    #[test]
    fn a_zlp_ends_no_request() {
        let mut k = Kburn::new(None).unwrap();
        probe(&mut k, Kind::Sd);
        k.bulk_out(&write_cmd(0, OUT_CHUNK as u64)).unwrap();
        reply(&mut k);
        k.bulk_out(&vec![1u8; OUT_CHUNK]).unwrap();
        k.bulk_out(&[]).unwrap();
        assert_eq!(reply(&mut k), (0x8021, 1, b"WRITE DONE".to_vec()));
        // The next command still arrives whole.
        k.bulk_out(&cmd(0, &[])).unwrap();
        assert_eq!(reply(&mut k).2, b"NOT SUPPORT FUNC");
    }

    /// kburn_mmc.c rounds a write up to the block; the gadget then sees a
    /// length other than what it asked for and answers "WRITE ERROR, 0x0",
    /// with the OUT request left unqueued.
    #[test]
    fn an_mmc_write_of_a_partial_block_fails_and_wedges_the_out_pipe() {
        let mut k = Kburn::new(None).unwrap();
        probe(&mut k, Kind::Emmc);
        k.bulk_out(&write_cmd(0, 1000)).unwrap();
        reply(&mut k);
        k.bulk_out(&[9u8; 1000]).unwrap();
        assert_eq!(reply(&mut k), (0x8000 | 0x21, 0xff, b"WRITE ERROR, 0x0".to_vec()));
        assert_eq!(k.bulk_out(&cmd(0, &[])), Err(Nak), "nothing takes OUT data now");
        assert!(k.summary().unwrap_err().contains("WRITE ERROR"));
    }

    #[test]
    fn limits_and_reads() {
        let mut k = Kburn::new(None).unwrap();
        probe(&mut k, Kind::SpiNor);
        k.bulk_out(&write_cmd(16 << 20, 256)).unwrap();
        assert_eq!(reply(&mut k).2, b"DATA SIZE EXCEED");
        k.bulk_out(&write_cmd(0, 0)).unwrap();
        assert_eq!(reply(&mut k).2, b"DATA SIZE INVALID");
        k.bulk_out(&write_cmd(0, 300)).unwrap();
        reply(&mut k);
        k.bulk_out(&[1u8; 300]).unwrap();
        assert_eq!(reply(&mut k).2, b"WRITE ERROR, 0xFFFFFFFF", "NOR wants whole pages");
        // A read on SPI NOR: READ START, then READ ERROR.
        let mut k = Kburn::new(None).unwrap();
        probe(&mut k, Kind::SpiNor);
        let mut d = 0u64.to_le_bytes().to_vec();
        d.extend_from_slice(&4096u64.to_le_bytes());
        k.bulk_out(&cmd(0x23, &d)).unwrap();
        assert_eq!(reply(&mut k), (0x8023, 1, b"READ START".to_vec()));
        assert_eq!(reply(&mut k), (0x8024, 0xff, b"READ ERROR, 0xFFFFFFFF".to_vec()));
        // On SD: chunks of 32 KiB behind their 6-byte header, then READ DONE.
        let mut k = Kburn::new(None).unwrap();
        probe(&mut k, Kind::Sd);
        k.medium_mut(Kind::Sd).write(0, &[5; 40_000]).unwrap();
        let mut d = 0u64.to_le_bytes().to_vec();
        d.extend_from_slice(&40_000u64.to_le_bytes());
        k.bulk_out(&cmd(0x23, &d)).unwrap();
        reply(&mut k);
        let c1 = k.bulk_in(6 + IN_CHUNK).unwrap();
        assert_eq!((c1.len(), &c1[..6]), (6 + 32768, &[0x24, 0x80, 1, 0, 0, 0x80][..]));
        let c2 = k.bulk_in(6 + IN_CHUNK).unwrap();
        assert_eq!(c2.len(), 6 + 7680, "40000 - 32768 = 7232, rounded up to the block");
        assert_eq!(reply(&mut k), (0x8024, 1, b"READ DONE".to_vec()));
    }

    #[test]
    fn reboot_needs_its_mark_and_sends_nothing() {
        let mut k = Kburn::new(None).unwrap();
        k.bulk_out(&cmd(0x01, &1u64.to_le_bytes())).unwrap();
        assert!(!k.rebooted);
        k.bulk_out(&cmd(0x01, &0x5262_6F74u64.to_le_bytes())).unwrap();
        assert!(k.rebooted);
        assert_eq!(k.bulk_in(PKT), None);
    }

    #[test]
    fn otp_words_are_written_once() {
        let mut k = Kburn::new(None).unwrap();
        probe(&mut k, Kind::Otp);
        k.bulk_out(&write_cmd(8, 8)).unwrap();
        reply(&mut k);
        k.bulk_out(&[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
        assert_eq!(reply(&mut k).2, b"WRITE DONE");
        k.bulk_out(&write_cmd(8, 4)).unwrap();
        reply(&mut k);
        k.bulk_out(&[3, 0, 0, 0]).unwrap();
        assert_eq!(reply(&mut k).2, b"WRITE ERROR, 0x8", "the word's address");
    }
}
