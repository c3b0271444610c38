//! `fip.bin`: the 4 KiB "param1" header followed by BL2 (and optionally
//! BLCP before it), as the vendor `fiptool.py genfip` lays it out.
//!
//! All integers are little-endian. Checksums are `0xCAFE0000 | crc16`,
//! stored as `[crc_lo, crc_hi, 0xFE, 0xCA]`; PARAM_CKSUM covers param1
//! bytes 0x010..0x800.

use crate::packet::crc16;

/// "CVBL01\n\0".
pub const MAGIC1: [u8; 8] = *b"CVBL01\n\0";
/// Size of param1.
pub const PARAM1_SIZE: usize = 0x1000;
/// PARAM_CKSUM covers param1[0x10..0x800] (the signatures follow).
pub const PARAM1_CKSUM_RANGE: std::ops::Range<usize> = 0x10..0x800;
/// Images in fip.bin are padded to this.
pub const IMAGE_ALIGN: usize = 512;
/// CHIP_CONF is padded to this many bytes, and CHIP_CONF_SIZE says so.
pub const CHIP_CONF_LEN: usize = 760;
/// CHIP_CONF end marker ("CHIP_CONF_SCAN_START_1").
pub const CHIP_CONF_END: u32 = 0xFFFF_FFA0;
/// The vendor `chip_conf.py` list: two writes to ATF_DBG_REG, then the end marker.
pub const VENDOR_CHIP_CONF: [(u32, u32); 3] =
    [(0x0E00_000C, 0xA000_0001), (0x0E00_000C, 0xA000_0002), (CHIP_CONF_END, 0xFFFF_FFFF)];

/// Field offsets in param1.
pub mod off {
    pub const MAGIC1: usize = 0x000;
    pub const MAGIC2: usize = 0x008;
    pub const PARAM_CKSUM: usize = 0x00C;
    pub const NAND_INFO: usize = 0x010;
    pub const NOR_INFO: usize = 0x090;
    pub const FIP_FLAGS: usize = 0x0B4;
    pub const CHIP_CONF_SIZE: usize = 0x0BC;
    pub const BLCP_IMG_CKSUM: usize = 0x0C0;
    pub const BLCP_IMG_SIZE: usize = 0x0C4;
    pub const BLCP_IMG_RUNADDR: usize = 0x0C8;
    pub const BLCP_PARAM_LOADADDR: usize = 0x0CC;
    pub const BLCP_PARAM_SIZE: usize = 0x0D0;
    pub const BL2_IMG_CKSUM: usize = 0x0D4;
    pub const BL2_IMG_SIZE: usize = 0x0D8;
    pub const BLD_IMG_SIZE: usize = 0x0DC;
    pub const PARAM2_LOADADDR: usize = 0x0E0;
    pub const RESERVED1: usize = 0x0E4;
    pub const CHIP_CONF: usize = 0x0E8;
    pub const BL_EK: usize = 0x3E0;
    pub const ROOT_PK: usize = 0x400;
    pub const BL_PK: usize = 0x600;
    pub const BL_PK_SIG: usize = 0x800;
}

/// `0xCAFE0000 | crc16(data)`: the form of every checksum in fip.bin.
pub fn image_cksum(data: &[u8]) -> u32 {
    0xCAFE_0000 | crc16(data) as u32
}

/// Why a fip.bin cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FipError {
    #[error("BL2 is empty")]
    EmptyBl2,
    #[error("BL2 of {size} bytes is larger than the {max} bytes the ROM loads")]
    Bl2TooLarge { size: usize, max: usize },
    #[error("fip.bin is {len} bytes, shorter than its 4096-byte param1 header")]
    TooShort { len: usize },
    #[error("param1 magic is {found:02x?}, not \"CVBL01\\n\\0\"")]
    BadMagic { found: Vec<u8> },
    #[error("param1 checksum is 0x{stored:08x}, but param1 bytes 0x10..0x800 give 0x{computed:08x}")]
    ParamCksum { stored: u32, computed: u32 },
    #[error("BL2_IMG_SIZE is 0: the image has no BL2")]
    NoBl2,
    #[error("BL2 is said to span 0x{offset:x}..0x{end:x}, but the file has only {len} bytes", end = offset + size)]
    Bl2Truncated { offset: usize, size: usize, len: usize },
    #[error("BL2 checksum is 0x{stored:08x}, but its bytes give 0x{computed:08x}")]
    Bl2Cksum { stored: u32, computed: u32 },
    #[error("BLCP checksum is 0x{stored:08x}, but its bytes give 0x{computed:08x}")]
    BlcpCksum { stored: u32, computed: u32 },
    /// fiptool writes param2 (and so every later part) only with a DDR parameter blob.
    #[error("{part} needs a DDR parameter blob: fiptool writes param2, which names {part}, only with one")]
    NeedsDdrParam { part: &'static str },
    /// LOADER_2ND must start with fiptool's header (magic "BL33" at offset 4).
    #[error("LOADER_2ND's magic (offset 4) is {found:02x?}, not \"BL33\" (the header U-Boot's build writes)")]
    Loader2ndMagic { found: Vec<u8> },
    /// param2 does not start with "CVLD02\n\0".
    #[error("param2 at 0x{offset:x} does not start with \"CVLD02\\n\\0\"")]
    Param2Magic { offset: u32 },
    /// A checksum param2 holds does not match its part.
    #[error("{part} checksum is 0x{stored:08x}, but its bytes give 0x{computed:08x}")]
    PartCksum { part: &'static str, stored: u32, computed: u32 },
    /// An image part is empty.
    #[error("{part} is empty")]
    EmptyPart { part: &'static str },
    /// The fip.bin would pass the 4 GiB its 32-bit offsets reach.
    #[error("the fip.bin would be larger than its 32-bit offsets reach")]
    TooLarge,
    /// LZMA compression failed.
    #[error("compressing LOADER_2ND: {0}")]
    Compress(String),
}

impl racklet_link::Classify for FipError {
    fn class(&self) -> racklet_link::FailureClass {
        racklet_link::FailureClass::BadInput
    }
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Pads to [`IMAGE_ALIGN`] with zeros, as fiptool does.
pub fn pad(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(IMAGE_ALIGN) * IMAGE_ALIGN, 0);
    v
}

/// The param1 header for a BL2 of `bl2_size` bytes (already padded) whose
/// checksum is `bl2_cksum`, in the vendor's simple shape: no BLCP, no
/// param2, NAND_INFO `00000000`, NOR_INFO 36 × 0xFF, the vendor CHIP_CONF.
pub fn param1(bl2_cksum: u32, bl2_size: u32) -> [u8; PARAM1_SIZE] {
    let mut p = [0u8; PARAM1_SIZE];
    p[off::MAGIC1..off::MAGIC1 + 8].copy_from_slice(&MAGIC1);
    // NAND_INFO: the vendor passes 00000000, zero-padded: nothing to write.
    p[off::NOR_INFO..off::NOR_INFO + 36].fill(0xFF);
    put32(&mut p, off::CHIP_CONF_SIZE, CHIP_CONF_LEN as u32);
    put32(&mut p, off::BLCP_IMG_CKSUM, image_cksum(&[]));
    put32(&mut p, off::BL2_IMG_CKSUM, bl2_cksum);
    put32(&mut p, off::BL2_IMG_SIZE, bl2_size);
    for (i, (reg, val)) in VENDOR_CHIP_CONF.iter().enumerate() {
        put32(&mut p, off::CHIP_CONF + 8 * i, *reg);
        put32(&mut p, off::CHIP_CONF + 8 * i + 4, *val);
    }
    let ck = image_cksum(&p[PARAM1_CKSUM_RANGE]);
    put32(&mut p, off::PARAM_CKSUM, ck);
    p
}

/// Builds fip.bin from a BL2: param1, then BL2 padded to 512 bytes.
/// `max` is the largest BL2 the chip's ROM loads.
pub fn build(bl2: &[u8], max: usize) -> Result<Vec<u8>, FipError> {
    if bl2.is_empty() {
        return Err(FipError::EmptyBl2);
    }
    let body = pad(bl2);
    if body.len() > max {
        return Err(FipError::Bl2TooLarge { size: body.len(), max });
    }
    let mut out = param1(image_cksum(&body), body.len() as u32).to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// "CVLD02\n\0": the magic of param2.
pub const MAGIC_PARAM2: [u8; 8] = *b"CVLD02\n\0";
/// Size of param2.
pub const PARAM2_SIZE: usize = 0x1000;
/// PARAM2_CKSUM covers param2[12..] (everything after the field).
pub const PARAM2_CKSUM_FROM: usize = 12;
/// BLCP_IMG_RUNADDR as the vendor's `make_helpers/fip.mk` passes it
/// (`fip-all`, also with its empty `test/empty.bin` as BLCP).
pub const VENDOR_BLCP_RUNADDR: u32 = 0x0520_0200;
/// The LOADER_2ND header's size (struct `loader_2nd_header`, `bl2.h`).
pub const LOADER_2ND_HEADER: usize = 32;
/// LOADER_2ND magics: as U-Boot's build writes it, and as fiptool
/// compresses it (fiptool.py `LOADER_2ND_MAGIC_*`).
pub const LOADER_2ND_MAGIC_ORIG: [u8; 4] = *b"BL33";
pub const LOADER_2ND_MAGIC_LZMA: [u8; 4] = *b"B3MA";
pub const LOADER_2ND_MAGIC_LZ4: [u8; 4] = *b"B3Z4";

/// Field offsets in param2 (fiptool.py `FIP.param2`, `bl2.h` `struct fip_param2`).
pub mod off2 {
    pub const MAGIC1: usize = 0x00;
    pub const PARAM2_CKSUM: usize = 0x08;
    pub const DDR_PARAM_CKSUM: usize = 0x10;
    pub const DDR_PARAM_LOADADDR: usize = 0x14;
    pub const DDR_PARAM_SIZE: usize = 0x18;
    pub const BLCP_2ND_CKSUM: usize = 0x20;
    pub const BLCP_2ND_LOADADDR: usize = 0x24;
    pub const BLCP_2ND_SIZE: usize = 0x28;
    pub const BLCP_2ND_RUNADDR: usize = 0x2C;
    pub const MONITOR_CKSUM: usize = 0x30;
    pub const MONITOR_LOADADDR: usize = 0x34;
    pub const MONITOR_SIZE: usize = 0x38;
    pub const MONITOR_RUNADDR: usize = 0x3C;
    pub const LOADER_2ND_LOADADDR: usize = 0x44;
    pub const ALIOS_BOOT_SIZE: usize = 0x50;
}

/// How LOADER_2ND is stored (fiptool.py `--compress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compress {
    /// As given (fiptool's default).
    #[default]
    None,
    /// LZMA "alone" format, preset 0 | extreme, as fiptool's `lzma_compress`.
    Lzma,
}

/// The parts of a whole fip.bin, as `fiptool.py genfip` takes them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts<'a> {
    pub bl2: &'a [u8],
    /// The small core's first image (param1's BLCP, before BL2).
    pub blcp: Option<&'a [u8]>,
    /// The DDR parameter blob; param2 is written only with it.
    pub ddr_param: Option<&'a [u8]>,
    /// The small core's second image and where it runs.
    pub blcp_2nd: Option<(&'a [u8], u32)>,
    /// OpenSBI fw_dynamic or BL31, and where it runs.
    pub monitor: Option<(&'a [u8], u32)>,
    /// U-Boot with its "BL33" header.
    pub loader_2nd: Option<&'a [u8]>,
    pub compress: Compress,
}

/// Builds a whole fip.bin as `fiptool.py genfip` does with the arguments
/// `make_helpers/fip.mk` passes: param1 and BLCP + BL2 (`make_fip1`), then,
/// with a DDR parameter blob, param2 and DDR param, BLCP_2ND, MONITOR,
/// LOADER_2ND, each padded to 512 (`append_fip2`). BLCP_IMG_RUNADDR is the
/// vendor 0x05200200 when a BLCP or param2 is written (fip.mk's `fip-all`
/// passes it, with its empty BLCP too), 0 for a BL2 alone (`fip-simple`).
pub fn build_parts(parts: &Parts, max_bl2: usize) -> Result<Vec<u8>, FipError> {
    if parts.bl2.is_empty() {
        return Err(FipError::EmptyBl2);
    }
    if parts.ddr_param.is_none() {
        for (part, given) in [
            ("BLCP_2ND", parts.blcp_2nd.is_some()),
            ("MONITOR", parts.monitor.is_some()),
            ("LOADER_2ND", parts.loader_2nd.is_some()),
        ] {
            if given {
                return Err(FipError::NeedsDdrParam { part });
            }
        }
    }
    let bl2 = pad(parts.bl2);
    if bl2.len() > max_bl2 {
        return Err(FipError::Bl2TooLarge { size: bl2.len(), max: max_bl2 });
    }
    let blcp = pad(parts.blcp.unwrap_or(&[]));
    let mut p = param1(image_cksum(&bl2), bl2.len() as u32);
    put32(&mut p, off::BLCP_IMG_CKSUM, image_cksum(&blcp));
    put32(&mut p, off::BLCP_IMG_SIZE, blcp.len() as u32);
    if parts.blcp.is_some() || parts.ddr_param.is_some() {
        put32(&mut p, off::BLCP_IMG_RUNADDR, VENDOR_BLCP_RUNADDR);
    }
    let mut out = p.to_vec();
    out.extend_from_slice(&blcp);
    out.extend_from_slice(&bl2);
    if let Some(ddr) = parts.ddr_param {
        append_param2(&mut out, parts, ddr)?;
    }
    if u32::try_from(out.len()).is_err() {
        return Err(FipError::TooLarge);
    }
    let ck = image_cksum(&out[PARAM1_CKSUM_RANGE]);
    put32(&mut out, off::PARAM_CKSUM, ck);
    Ok(out)
}

/// fiptool.py `append_fip2`: param2 right after BL2, then each part padded
/// to 512 with its checksum, size and fip.bin offset in param2.
fn append_param2(out: &mut Vec<u8>, parts: &Parts, ddr: &[u8]) -> Result<(), FipError> {
    if ddr.is_empty() {
        return Err(FipError::EmptyPart { part: "DDR_PARAM" });
    }
    let at = out.len();
    put32(out, off::PARAM2_LOADADDR, at as u32);
    out.resize(at + PARAM2_SIZE, 0);
    let mut p2 = vec![0u8; PARAM2_SIZE];
    p2[..8].copy_from_slice(&MAGIC_PARAM2);
    // (data, cksum field, loadaddr field, size field, run address)
    let push = |p2: &mut [u8], out: &mut Vec<u8>, data: &[u8], ck: usize, load: usize, size: usize| {
        let body = pad(data);
        put32(p2, ck, image_cksum(&body));
        put32(p2, size, body.len() as u32);
        put32(p2, load, out.len() as u32);
        out.extend_from_slice(&body);
    };
    push(&mut p2, out, ddr, off2::DDR_PARAM_CKSUM, off2::DDR_PARAM_LOADADDR, off2::DDR_PARAM_SIZE);
    if let Some((data, run)) = parts.blcp_2nd {
        if data.is_empty() {
            return Err(FipError::EmptyPart { part: "BLCP_2ND" });
        }
        push(&mut p2, out, data, off2::BLCP_2ND_CKSUM, off2::BLCP_2ND_LOADADDR, off2::BLCP_2ND_SIZE);
        put32(&mut p2, off2::BLCP_2ND_RUNADDR, run);
    }
    if let Some((data, run)) = parts.monitor {
        if data.is_empty() {
            return Err(FipError::EmptyPart { part: "MONITOR" });
        }
        push(&mut p2, out, data, off2::MONITOR_CKSUM, off2::MONITOR_LOADADDR, off2::MONITOR_SIZE);
        put32(&mut p2, off2::MONITOR_RUNADDR, run);
    }
    if let Some(ldr) = parts.loader_2nd {
        put32(&mut p2, off2::LOADER_2ND_LOADADDR, out.len() as u32);
        out.extend_from_slice(&loader_2nd(ldr, parts.compress)?);
    }
    let ck = image_cksum(&p2[PARAM2_CKSUM_FROM..]);
    put32(&mut p2, off2::PARAM2_CKSUM, ck);
    out[at..at + PARAM2_SIZE].copy_from_slice(&p2);
    Ok(())
}

/// fiptool.py `pack_loader_2nd`: the body after the 32-byte header
/// compressed when asked (the magic then says how), the whole padded to
/// 512, SIZE = that padded length, CKSUM over everything after the CKSUM
/// field (bytes 12..).
pub fn loader_2nd(image: &[u8], compress: Compress) -> Result<Vec<u8>, FipError> {
    if image.len() < LOADER_2ND_HEADER || image[4..8] != LOADER_2ND_MAGIC_ORIG {
        return Err(FipError::Loader2ndMagic { found: image.iter().skip(4).take(4).copied().collect() });
    }
    let (hdr, body) = image.split_at(LOADER_2ND_HEADER);
    let mut hdr = hdr.to_vec();
    let body = match compress {
        Compress::None => body.to_vec(),
        Compress::Lzma => {
            hdr[4..8].copy_from_slice(&LOADER_2ND_MAGIC_LZMA);
            lzma_alone(body)?
        }
    };
    let mut out = hdr;
    out.extend_from_slice(&body);
    let mut out = pad(&out);
    let size = out.len() as u32;
    out[12..16].copy_from_slice(&size.to_le_bytes());
    let ck = image_cksum(&out[12..]);
    out[8..12].copy_from_slice(&ck.to_le_bytes());
    Ok(out)
}

/// What fiptool's `lzma_compress` writes: `lzma.LZMACompressor(FORMAT_ALONE,
/// preset=PRESET_EXTREME)`, i.e. the .lzma ("alone") format at preset 0
/// with the extreme flag, size unknown (end marker).
fn lzma_alone(body: &[u8]) -> Result<Vec<u8>, FipError> {
    use liblzma::stream::{Action, LzmaOptions, PRESET_EXTREME, Status, Stream};
    let opts = LzmaOptions::new_preset(PRESET_EXTREME).map_err(|e| FipError::Compress(e.to_string()))?;
    let mut s = Stream::new_lzma_encoder(&opts).map_err(|e| FipError::Compress(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() / 2 + 64);
    loop {
        out.reserve(64 * 1024);
        let read = s.total_in() as usize;
        match s.process_vec(&body[read..], &mut out, Action::Finish) {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(FipError::Compress(e.to_string())),
        }
    }
}

/// True when `bytes` start with the param1 magic.
pub fn is_fip(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC1)
}

/// What a file that is almost a fip.bin got wrong (a damaged or other
/// version's MAGIC1), so it is not sent as a raw BL2 by mistake.
pub fn near_miss(bytes: &[u8]) -> Option<String> {
    racklet_image::near_magic(bytes, 0, &MAGIC1).then(|| {
        format!(
            "a damaged fip.bin: MAGIC1 is \"{}\", a fip.bin has \"{}\"",
            racklet_image::escaped(&bytes[..MAGIC1.len()]),
            racklet_image::escaped(&MAGIC1)
        )
    })
}

/// Everything param1 says, and what the bytes that follow give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FipInfo {
    pub len: usize,
    pub magic2: u32,
    pub param_cksum: u32,
    pub param_cksum_computed: u32,
    pub nand_info: Vec<u8>,
    pub nor_info: Vec<u8>,
    pub fip_flags: u64,
    pub chip_conf_size: u32,
    pub blcp_cksum: u32,
    pub blcp_size: u32,
    pub blcp_runaddr: u32,
    pub blcp_param_loadaddr: u32,
    pub blcp_param_size: u32,
    pub bl2_cksum: u32,
    pub bl2_size: u32,
    pub bld_size: u32,
    pub param2_loadaddr: u32,
    /// (register, value) pairs up to and including the end marker.
    pub chip_conf: Vec<(u32, u32)>,
    /// Checksum of the BLCP bytes, when the file holds them.
    pub blcp_cksum_computed: Option<u32>,
    /// Checksum of the BL2 bytes, when the file holds them.
    pub bl2_cksum_computed: Option<u32>,
    /// param2 and the parts it names, when PARAM2_LOADADDR is set.
    pub param2: Option<Box<Param2Info>>,
}

/// One part param2 names: where it is in fip.bin, its checksum, and what
/// the file's bytes there give (None when the file does not hold them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: &'static str,
    pub offset: u32,
    pub size: u32,
    pub cksum: u32,
    pub computed: Option<u32>,
    /// Where it runs (BLCP_2ND, MONITOR); 0 = not loaded by the FSBL.
    pub runaddr: u32,
}

impl Part {
    /// The FSBL loads it (`bl2_opt.c`: BLCP_2ND and MONITOR only with a
    /// run address; DDR param always).
    pub fn loaded(&self) -> bool {
        self.name == "DDR_PARAM" || self.runaddr != 0
    }

    /// The file holds every byte of it.
    pub fn present(&self) -> bool {
        self.computed.is_some()
    }
}

/// The LOADER_2ND header (`bl2.h` `struct loader_2nd_header`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loader2nd {
    pub offset: u32,
    pub jump0: u32,
    pub magic: [u8; 4],
    pub cksum: u32,
    /// Bytes the FSBL loads (rounded up to 512), header included.
    pub size: u32,
    pub runaddr: u64,
    /// Checksum of bytes 12..size, when the file holds them.
    pub computed: Option<u32>,
}

impl Loader2nd {
    /// "none", "lzma" or "lz4", as the FSBL reads the magic.
    pub fn compression(&self) -> &'static str {
        match self.magic {
            LOADER_2ND_MAGIC_LZMA => "lzma",
            LOADER_2ND_MAGIC_LZ4 => "lz4",
            _ => "none",
        }
    }
}

/// param2 ("CVLD02"): what the vendor FSBL loads after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param2Info {
    pub offset: u32,
    /// The file holds all 4096 bytes of param2.
    pub present: bool,
    pub magic_ok: bool,
    pub cksum: u32,
    pub cksum_computed: Option<u32>,
    pub ddr_param: Part,
    pub blcp_2nd: Part,
    pub monitor: Part,
    pub loader_2nd_offset: u32,
    /// The LOADER_2ND header, when the file holds it.
    pub loader_2nd: Option<Loader2nd>,
}

impl Param2Info {
    /// The parts param2 names, in the order the FSBL loads them.
    pub fn parts(&self) -> [&Part; 3] {
        [&self.ddr_param, &self.blcp_2nd, &self.monitor]
    }
}

impl FipInfo {
    /// fip.bin offset of BL2: after param1 and BLCP.
    pub fn bl2_offset(&self) -> usize {
        PARAM1_SIZE + self.blcp_size as usize
    }

    /// BL2's bytes in `bytes` (the file this was parsed from), when the
    /// file holds all of them.
    pub fn bl2<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let end = self.bl2_offset().checked_add(self.bl2_size as usize)?;
        bytes.get(self.bl2_offset()..end).filter(|b| !b.is_empty())
    }

    /// Signed or encrypted (FIP_FLAGS scs / encrypted bits set).
    pub fn secure(&self) -> bool {
        self.fip_flags & 0x3C != 0
    }

    /// The integrity checks, named for `racklet-flash info`.
    pub fn checks(&self) -> Vec<(String, bool)> {
        let mut c = vec![("param1 checksum".to_string(), self.param_cksum == self.param_cksum_computed)];
        if self.blcp_size > 0 {
            c.push(("BLCP checksum".into(), self.blcp_cksum_computed == Some(self.blcp_cksum)));
        }
        c.push(("BL2 present".into(), self.bl2_size > 0 && self.bl2_cksum_computed.is_some()));
        c.push(("BL2 checksum".into(), self.bl2_cksum_computed == Some(self.bl2_cksum)));
        if let Some(p2) = &self.param2 {
            c.push(("param2 present".into(), p2.present));
            if p2.present {
                c.push(("param2 magic".into(), p2.magic_ok));
                c.push(("param2 checksum".into(), p2.cksum_computed == Some(p2.cksum)));
                for part in p2.parts() {
                    if part.size > 0 && part.present() {
                        c.push((format!("{} checksum", part.name), part.computed == Some(part.cksum)));
                    }
                }
                if let Some(l) = &p2.loader_2nd
                    && l.computed.is_some()
                {
                    c.push(("LOADER_2ND checksum".into(), l.computed == Some(l.cksum)));
                }
            }
        }
        c
    }

    /// What the vendor FSBL will ask for that this file does not hold
    /// (param2, or a part param2 names), as (name, offset, size).
    pub fn missing(&self) -> Vec<(String, u32, u32)> {
        let Some(p2) = &self.param2 else { return Vec::new() };
        if !p2.present {
            return vec![("param2".into(), p2.offset, PARAM2_SIZE as u32)];
        }
        let mut m: Vec<(String, u32, u32)> = p2
            .parts()
            .iter()
            .filter(|p| p.loaded() && !p.present())
            .map(|p| (p.name.to_string(), p.offset, p.size))
            .collect();
        match &p2.loader_2nd {
            None => m.push(("LOADER_2ND header".into(), p2.loader_2nd_offset, LOADER_2ND_HEADER as u32)),
            Some(l) if l.computed.is_none() => m.push(("LOADER_2ND".into(), l.offset, l.size)),
            Some(_) => {}
        }
        m
    }

    /// The first failed check as an error.
    pub fn verify(&self) -> Result<(), FipError> {
        if self.param_cksum != self.param_cksum_computed {
            return Err(FipError::ParamCksum {
                stored: self.param_cksum,
                computed: self.param_cksum_computed,
            });
        }
        if self.blcp_size > 0 {
            match self.blcp_cksum_computed {
                Some(c) if c == self.blcp_cksum => {}
                Some(c) => return Err(FipError::BlcpCksum { stored: self.blcp_cksum, computed: c }),
                None => {
                    return Err(FipError::Bl2Truncated {
                        offset: PARAM1_SIZE,
                        size: self.blcp_size as usize,
                        len: self.len,
                    });
                }
            }
        }
        if self.bl2_size == 0 {
            return Err(FipError::NoBl2);
        }
        if let Some(p2) = &self.param2
            && p2.present
        {
            if !p2.magic_ok {
                return Err(FipError::Param2Magic { offset: p2.offset });
            }
            let bad = |what: &'static str, stored: u32, computed: Option<u32>| match computed {
                Some(c) if c != stored => Err(FipError::PartCksum { part: what, stored, computed: c }),
                _ => Ok(()),
            };
            bad("param2", p2.cksum, p2.cksum_computed)?;
            for part in p2.parts() {
                bad(part.name, part.cksum, part.computed)?;
            }
            if let Some(l) = &p2.loader_2nd {
                bad("LOADER_2ND", l.cksum, l.computed)?;
            }
        }
        match self.bl2_cksum_computed {
            Some(c) if c == self.bl2_cksum => Ok(()),
            Some(c) => Err(FipError::Bl2Cksum { stored: self.bl2_cksum, computed: c }),
            None => Err(FipError::Bl2Truncated {
                offset: self.bl2_offset(),
                size: self.bl2_size as usize,
                len: self.len,
            }),
        }
    }
}

/// Decodes param1 and computes the checksums of what follows. Fails only
/// when the file is not a fip.bin at all (short, wrong magic); use
/// [`FipInfo::verify`] or [`validate`] to require the checks.
pub fn parse(bytes: &[u8]) -> Result<FipInfo, FipError> {
    if !is_fip(bytes) {
        return Err(FipError::BadMagic { found: bytes.iter().take(8).copied().collect() });
    }
    if bytes.len() < PARAM1_SIZE {
        return Err(FipError::TooShort { len: bytes.len() });
    }
    let p = &bytes[..PARAM1_SIZE];
    let blcp_size = get32(p, off::BLCP_IMG_SIZE);
    let bl2_size = get32(p, off::BL2_IMG_SIZE);
    let slice = |from: usize, size: u32| -> Option<&[u8]> {
        let end = from.checked_add(size as usize)?;
        bytes.get(from..end)
    };
    let chip_conf_size = get32(p, off::CHIP_CONF_SIZE);
    let mut chip_conf = Vec::new();
    let n = (chip_conf_size as usize).min(CHIP_CONF_LEN) / 8;
    for i in 0..n {
        let reg = get32(p, off::CHIP_CONF + 8 * i);
        let val = get32(p, off::CHIP_CONF + 8 * i + 4);
        chip_conf.push((reg, val));
        if reg == CHIP_CONF_END {
            break;
        }
    }
    let bl2_offset = PARAM1_SIZE + blcp_size as usize;
    Ok(FipInfo {
        len: bytes.len(),
        magic2: get32(p, off::MAGIC2),
        param_cksum: get32(p, off::PARAM_CKSUM),
        param_cksum_computed: image_cksum(&p[PARAM1_CKSUM_RANGE]),
        nand_info: p[off::NAND_INFO..off::NOR_INFO].to_vec(),
        nor_info: p[off::NOR_INFO..off::FIP_FLAGS].to_vec(),
        fip_flags: u64::from_le_bytes(p[off::FIP_FLAGS..off::FIP_FLAGS + 8].try_into().expect("8 bytes")),
        chip_conf_size,
        blcp_cksum: get32(p, off::BLCP_IMG_CKSUM),
        blcp_size,
        blcp_runaddr: get32(p, off::BLCP_IMG_RUNADDR),
        blcp_param_loadaddr: get32(p, off::BLCP_PARAM_LOADADDR),
        blcp_param_size: get32(p, off::BLCP_PARAM_SIZE),
        bl2_cksum: get32(p, off::BL2_IMG_CKSUM),
        bl2_size,
        bld_size: get32(p, off::BLD_IMG_SIZE),
        param2_loadaddr: get32(p, off::PARAM2_LOADADDR),
        chip_conf,
        blcp_cksum_computed: if blcp_size > 0 {
            slice(PARAM1_SIZE, blcp_size).map(image_cksum)
        } else {
            None
        },
        bl2_cksum_computed: if bl2_size > 0 { slice(bl2_offset, bl2_size).map(image_cksum) } else { None },
        param2: parse_param2(bytes, get32(p, off::PARAM2_LOADADDR)),
    })
}

/// param2 at `at` and the parts it names (fiptool.py `read_fip2`).
fn parse_param2(bytes: &[u8], at: u32) -> Option<Box<Param2Info>> {
    if at == 0 {
        return None;
    }
    let slice = |from: u32, size: u32| -> Option<&[u8]> {
        let end = (from as usize).checked_add(size as usize)?;
        bytes.get(from as usize..end)
    };
    let raw = slice(at, PARAM2_SIZE as u32);
    let mut p2 = vec![0u8; PARAM2_SIZE];
    if let Some(r) = raw {
        p2.copy_from_slice(r);
    }
    let part = |name, ck, load, size, run: Option<usize>| {
        let (offset, size) = (get32(&p2, load), get32(&p2, size));
        Part {
            name,
            offset,
            size,
            cksum: get32(&p2, ck),
            computed: raw.and(slice(offset, size)).map(image_cksum),
            runaddr: run.map(|r| get32(&p2, r)).unwrap_or(0),
        }
    };
    let loader_2nd_offset = get32(&p2, off2::LOADER_2ND_LOADADDR);
    let loader_2nd = raw.and(slice(loader_2nd_offset, LOADER_2ND_HEADER as u32)).map(|h| {
        let size = get32(h, 12);
        Loader2nd {
            offset: loader_2nd_offset,
            jump0: get32(h, 0),
            magic: h[4..8].try_into().expect("4 bytes"),
            cksum: get32(h, 8),
            size,
            runaddr: u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")),
            computed: size.checked_sub(12).and_then(|n| slice(loader_2nd_offset + 12, n)).map(image_cksum),
        }
    });
    Some(Box::new(Param2Info {
        offset: at,
        present: raw.is_some(),
        magic_ok: raw.is_some_and(|r| r[..8] == MAGIC_PARAM2),
        cksum: get32(&p2, off2::PARAM2_CKSUM),
        cksum_computed: raw.map(|r| image_cksum(&r[PARAM2_CKSUM_FROM..])),
        ddr_param: part(
            "DDR_PARAM",
            off2::DDR_PARAM_CKSUM,
            off2::DDR_PARAM_LOADADDR,
            off2::DDR_PARAM_SIZE,
            None,
        ),
        blcp_2nd: part(
            "BLCP_2ND",
            off2::BLCP_2ND_CKSUM,
            off2::BLCP_2ND_LOADADDR,
            off2::BLCP_2ND_SIZE,
            Some(off2::BLCP_2ND_RUNADDR),
        ),
        monitor: part(
            "MONITOR",
            off2::MONITOR_CKSUM,
            off2::MONITOR_LOADADDR,
            off2::MONITOR_SIZE,
            Some(off2::MONITOR_RUNADDR),
        ),
        loader_2nd_offset,
        loader_2nd,
    }))
}

/// Parses and requires every check to pass.
pub fn validate(bytes: &[u8]) -> Result<FipInfo, FipError> {
    let info = parse(bytes)?;
    info.verify()?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// param1 written out from the sheet's table (§3.1), field by field, for
    /// the vendor's simple shape.
    fn param1_by_the_sheet(bl2_cksum: u32, bl2_size: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(b"CVBL01\n\0"); // 0x000 MAGIC1
        p.extend_from_slice(&[0; 4]); // 0x008 MAGIC2
        p.extend_from_slice(&[0; 4]); // 0x00C PARAM_CKSUM, filled below
        p.extend_from_slice(&[0; 128]); // 0x010 NAND_INFO "00000000" zero-padded
        p.extend_from_slice(&[0xFF; 36]); // 0x090 NOR_INFO
        p.extend_from_slice(&[0; 8]); // 0x0B4 FIP_FLAGS
        p.extend_from_slice(&760u32.to_le_bytes()); // 0x0BC CHIP_CONF_SIZE
        p.extend_from_slice(&[0x00, 0x00, 0xFE, 0xCA]); // 0x0C0 BLCP_IMG_CKSUM (crc of nothing)
        p.extend_from_slice(&[0; 4 * 4]); // 0x0C4 BLCP size, runaddr, param loadaddr, param size
        p.extend_from_slice(&bl2_cksum.to_le_bytes()); // 0x0D4
        p.extend_from_slice(&bl2_size.to_le_bytes()); // 0x0D8
        p.extend_from_slice(&[0; 12]); // 0x0DC BLD size, PARAM2_LOADADDR, RESERVED1
        assert_eq!(p.len(), 0xE8);
        for w in [0x0E00000Cu32, 0xA0000001, 0x0E00000C, 0xA0000002, 0xFFFFFFA0, 0xFFFFFFFF] {
            p.extend_from_slice(&w.to_le_bytes());
        }
        p.resize(0x1000, 0);
        let crc = racklet_sim::crc::crc16_xmodem(&p[0x10..0x800]);
        p[0x0C..0x10].copy_from_slice(&[crc as u8, (crc >> 8) as u8, 0xFE, 0xCA]);
        p
    }

    #[test]
    fn param1_matches_the_vendor_fiptool_worked_example() {
        // Sheet §4: fiptool on a 99-byte BL2 gave BL2_IMG_CKSUM 0xCAFED8F2,
        // BL2_IMG_SIZE 512 and PARAM_CKSUM 0xCAFEA4BF (stored bf a4 fe ca).
        let p = param1(0xCAFE_D8F2, 512);
        assert_eq!(&p[0x0C..0x10], &[0xbf, 0xa4, 0xfe, 0xca]);
        assert_eq!(&p[0x0D4..0x0DC], &[0xf2, 0xd8, 0xfe, 0xca, 0x00, 0x02, 0x00, 0x00]);
        assert_eq!(&p[0x0BC..0x0C4], &[0xf8, 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0xca]);
        assert_eq!(
            &p[0x0E8..0x100],
            &[
                0x0c, 0x00, 0x00, 0x0e, 0x01, 0x00, 0x00, 0xa0, 0x0c, 0x00, 0x00, 0x0e, 0x02, 0x00, 0x00,
                0xa0, 0xa0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]
        );
        assert_eq!(p.to_vec(), param1_by_the_sheet(0xCAFE_D8F2, 512));
    }

    #[test]
    fn build_pads_bl2_like_fiptool() {
        for (len, padded) in [(1usize, 512usize), (99, 512), (511, 512), (512, 512), (513, 1024)] {
            let bl2: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let fip = build(&bl2, 0x37000).unwrap();
            assert_eq!(fip.len(), 4096 + padded, "len {len}");
            let mut body = bl2.clone();
            body.resize(padded, 0);
            assert_eq!(&fip[4096..], &body[..]);
            let ck = 0xCAFE_0000 | racklet_sim::crc::crc16_xmodem(&body) as u32;
            assert_eq!(fip[..4096].to_vec(), param1_by_the_sheet(ck, padded as u32), "len {len}");
            let info = validate(&fip).unwrap();
            assert_eq!(info.bl2_size as usize, padded);
            assert_eq!(info.bl2_offset(), 4096);
            assert!(info.checks().iter().all(|c| c.1));
        }
    }

    #[test]
    fn bl2_is_the_slice_param1_names_or_nothing() {
        let fip = build(&[0x6f, 0, 0, 2, 9], 0x37000).unwrap();
        let info = parse(&fip).unwrap();
        assert_eq!(info.bl2(&fip), Some(&fip[4096..4096 + 512]));
        assert_eq!(info.bl2(&fip[..4096 + 511]), None, "one byte short");
        let mut none = fip.clone();
        none[off::BL2_IMG_SIZE..off::BL2_IMG_SIZE + 4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&none).unwrap().bl2(&none), None);
        let mut huge = fip;
        huge[off::BLCP_IMG_SIZE..off::BLCP_IMG_SIZE + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        huge[off::BL2_IMG_SIZE..off::BL2_IMG_SIZE + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&huge).unwrap().bl2(&huge), None);
    }

    #[test]
    fn build_refuses_empty_and_oversized() {
        assert_eq!(build(&[], 0x19000), Err(FipError::EmptyBl2));
        assert!(build(&vec![1; 0x19000], 0x19000).is_ok());
        assert_eq!(
            build(&vec![1; 0x19001], 0x19000),
            Err(FipError::Bl2TooLarge { size: 0x19200, max: 0x19000 })
        );
    }

    #[test]
    fn parse_decodes_every_field() {
        let fip = build(&[0x6f, 0, 0, 2], 0x37000).unwrap();
        let i = parse(&fip).unwrap();
        assert_eq!(i.magic2, 0);
        assert_eq!(i.nor_info, vec![0xFF; 36]);
        assert_eq!(i.nand_info, vec![0; 128]);
        assert_eq!(i.chip_conf_size, 760);
        assert_eq!(i.chip_conf, VENDOR_CHIP_CONF.to_vec());
        assert_eq!(i.blcp_cksum, 0xCAFE0000);
        assert_eq!(i.blcp_size, 0);
        assert_eq!(i.param2_loadaddr, 0);
        assert_eq!(i.fip_flags, 0);
        assert!(!i.secure());
    }

    #[test]
    fn validate_catches_every_corruption() {
        let good = build(&[0x13; 600], 0x37000).unwrap();
        let mut bad = good.clone();
        bad[0x200] ^= 1; // inside the checksummed part of param1
        assert!(matches!(validate(&bad), Err(FipError::ParamCksum { .. })));
        let mut sig = good.clone();
        sig[0x900] ^= 1; // signatures are outside the checksum
        assert!(validate(&sig).is_ok());
        let mut bl2 = good.clone();
        bl2[4096 + 5] ^= 0x80;
        assert!(matches!(validate(&bl2), Err(FipError::Bl2Cksum { .. })));
        assert!(matches!(validate(&good[..good.len() - 1]), Err(FipError::Bl2Truncated { .. })));
        assert!(matches!(validate(&good[..4095]), Err(FipError::TooShort { len: 4095 })));
        assert!(matches!(validate(b"CVLD02\n\0"), Err(FipError::BadMagic { .. })));
        let mut magic = good.clone();
        magic[5] = b'2';
        assert!(matches!(parse(&magic), Err(FipError::BadMagic { .. })));
    }
}
