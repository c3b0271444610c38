//! The Rockchip SD/eMMC boot image ("idbloader"): what U-Boot's
//! `mkimage -n <soc> -T rksd -d TPL:SPL` writes, and what the boot ROM reads
//! from sector 64 of an SD card or eMMC. Sans-I/O: bytes in, bytes out.
//!
//! Facts from U-Boot `tools/rkcommon.c` / `rkcommon.h` (mainline, 2026;
//! read, not copied):
//!
//! * The image is a 2 KiB header block followed by the "init" stage (the
//!   TPL, or the SPL when there is no TPL; it runs from SRAM) and, when a
//!   second file is given, the "boot" stage (the SPL, loaded into DRAM by
//!   the ROM when the init stage returns to it). Each stage is padded with
//!   zeros to a multiple of 2 KiB (`RK_SIZE_ALIGN`).
//! * Header v1 (every SoC before RK35xx): sector 0 of the block is
//!   `header0_info` — magic 0x0ff0aa55, `disable_rc4` (1 unless the SoC
//!   needs an RC4'd SPL), `init_offset` 4, `init_size` and
//!   `init_boot_size` in 512-byte blocks at 0x1FA/0x1FC (`init_boot_size` =
//!   init + boot, or init + 512 KiB without a boot stage) — RC4-encoded as
//!   one 512-byte stream with the fixed key; sectors 1–3 are zero. The first
//!   4 bytes of the init stage (at 0x800) are overwritten with the SoC's
//!   "spl hdr" ('RK33', 'RK32', …) unless they read "RSAK". On RK3066 and
//!   RK3188 the stages are RC4-encoded too, each 512-byte block from a fresh
//!   key schedule.
//! * Header v2 (RK3506, RK3528, RK3568, RK3576, RK3588): `header0_info_v2` —
//!   magic "RKNS" (0x534E4B52 LE), `size_and_nimage` = (2 << 16) + 384 (two
//!   images; the header hash at 384 × 4 = 0x600), `boot_flag` 1 (SHA-256),
//!   then four 88-byte image entries at 0x78: `size_and_off` = (sectors <<
//!   16) + sector offset, address 0xFFFFFFFF, counter i + 1, and the SHA-256
//!   of the image's padded bytes; entry 1 is the boot stage (size 0 without
//!   one, its hash that of nothing). The header's own SHA-256 over
//!   0x000..0x600 sits at 0x600. No RC4, and the init stage is not touched.
//! * The init stage's padded size must not exceed the SoC's `spl_size`.

use racklet_image::Description;
use racklet_link::{Classify, FailureClass};
use sha2::{Digest, Sha256};

use crate::frame::Rc4;

/// 512-byte blocks, as the ROM counts them.
pub const BLOCK: usize = 512;
/// Stages are padded to this (`RK_SIZE_ALIGN`).
pub const ALIGN: usize = 2048;
/// The header block's size; the init stage starts here (`RK_SPL_HDR_START`).
pub const HEADER_LEN: usize = 4 * BLOCK;
/// What `init_boot_size` adds without a boot stage (`RK_MAX_BOOT_SIZE`).
pub const MAX_BOOT_SIZE: usize = 512 << 10;
/// Header v1 magic (`RK_MAGIC`), after RC4 decoding.
pub const MAGIC_V1: u32 = 0x0ff0_aa55;
/// Header v2 magic (`RK_MAGIC_V2`, "RKNS").
pub const MAGIC_V2: u32 = 0x534e_4b52;
/// Where the boot ROM looks for the image on SD/eMMC (sector 64).
pub const STORAGE_LBA: u64 = 64;

/// Which header block a SoC's ROM reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HeaderVersion {
    V1,
    V2,
}

/// One row of rkcommon.c's `spl_infos`.
#[derive(Debug, Clone, Copy)]
pub struct SocInfo {
    /// The `mkimage -n` name.
    pub name: &'static str,
    /// The 4-byte "spl hdr" written at 0x800 (v1).
    pub spl_hdr: [u8; 4],
    /// The largest padded init stage, in bytes.
    pub spl_size: usize,
    /// The ROM wants the stages RC4-encoded.
    pub spl_rc4: bool,
    pub header: HeaderVersion,
}

const fn row(name: &'static str, hdr: &[u8; 4], spl_size: usize, spl_rc4: bool, v: HeaderVersion) -> SocInfo {
    SocInfo { name, spl_hdr: *hdr, spl_size, spl_rc4, header: v }
}

use HeaderVersion::{V1, V2};

/// rkcommon.c's `spl_infos`, mainline as of 2026 (Debian 12's mkimage,
/// 2023.01, lacks rk3506/rk3528/rk3576/rk3588/rv1126 and allows RK3568
/// 0x13000 and RK3328 0x7000).
pub const SOCS: &[SocInfo] = &[
    row("px30", b"RK33", 0x2800, false, V1),
    row("rk3036", b"RK30", 0x1000, false, V1),
    row("rk3066", b"RK30", 0x8000 - 0x800, true, V1),
    row("rk3128", b"RK31", 0x1800, false, V1),
    row("rk3188", b"RK31", 0x8000 - 0x800, true, V1),
    row("rk322x", b"RK32", 0x8000 - 0x1000, false, V1),
    row("rk3288", b"RK32", 0x8000, false, V1),
    row("rk3308", b"RK33", 0x40000 - 0x1000, false, V1),
    row("rk3328", b"RK32", 0x8000 - 0x800, false, V1),
    row("rk3368", b"RK33", 0x8000 - 0x1000, false, V1),
    row("rk3399", b"RK33", 0x30000 - 0x2000, false, V1),
    row("rk3506", b"RK35", 0xC000 - 0x1000, false, V2),
    row("rk3528", b"RK35", 0x10000 - 0x1000, false, V2),
    row("rk3568", b"RK35", 0x10000 - 0x1000, false, V2),
    row("rk3576", b"RK35", 0x80000 - 0x1000, false, V2),
    row("rk3588", b"RK35", 0x100000 - 0x1000, false, V2),
    row("rv1108", b"RK11", 0x1800, false, V1),
    row("rv1126", b"110B", 0x10000 - 0x1000, false, V1),
];

/// The board table's SoC names that U-Boot builds under another SoC's name
/// (its `CONFIG_SYS_SOC`): RK3566 boards are rk3568 to mkimage, RK3229 is
/// rk322x, RK3326 is px30.
const ALIASES: &[(&str, &str)] = &[("rk3566", "rk3568"), ("rk3229", "rk322x"), ("rk3326", "px30")];

/// The row of `soc` (a board-table name or an `mkimage -n` name).
pub fn soc_info(soc: &str) -> Option<&'static SocInfo> {
    let soc = soc.to_ascii_lowercase();
    let name = ALIASES.iter().find(|(a, _)| *a == soc).map(|(_, n)| *n).unwrap_or(&soc);
    SOCS.iter().find(|s| s.name == name)
}

/// Why an idbloader could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdbError {
    #[error("no idbloader layout for SoC '{soc}': U-Boot's rkcommon.c knows {}", known())]
    UnknownSoc { soc: String },
    #[error("{what} '{file}' is empty")]
    Empty { what: &'static str, file: String },
    #[error(
        "{what} '{file}' is {len} bytes ({padded} padded to 2 KiB), larger than the {limit} bytes (0x{limit:x}) the {soc} boot ROM loads into SRAM"
    )]
    TooLarge { what: &'static str, file: String, len: usize, padded: usize, limit: usize, soc: String },
    #[error(
        "the stages are {total} bytes together; the header counts 512-byte sectors in 16 bits, so at most {max} bytes fit"
    )]
    TooLargeForHeader { total: usize, max: usize },
}

fn known() -> String {
    SOCS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

impl Classify for IdbError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        match self {
            IdbError::UnknownSoc { .. } => Some("check the board's soc in the board table".into()),
            IdbError::Empty { .. } => Some("give the SPL/TPL binary U-Boot built (u-boot-spl.bin, u-boot-tpl.bin)".into()),
            IdbError::TooLarge { .. } => Some(
                "build the stage smaller, or split it: the TPL (or DRAM-init blob) with --dram, the SPL as the input"
                    .into(),
            ),
            IdbError::TooLargeForHeader { .. } => None,
        }
    }
}

/// One input stage: its bytes and its file name (for messages).
#[derive(Debug, Clone, Copy)]
pub struct Stage<'a> {
    pub file: &'a str,
    pub bytes: &'a [u8],
}

fn rc4_block(b: &mut [u8]) {
    Rc4::default().apply(b);
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Builds the image of `mkimage -n <soc> -T rksd -d TPL:SPL` (`tpl` given)
/// or `-d SPL` (`tpl` None): the same bytes.
pub fn build(soc: &str, spl: Stage<'_>, tpl: Option<Stage<'_>>) -> Result<Vec<u8>, IdbError> {
    let info = soc_info(soc).ok_or_else(|| IdbError::UnknownSoc { soc: soc.into() })?;
    let (init, init_what, boot) = match tpl {
        Some(t) => (t, "the TPL", Some(spl)),
        None => (spl, "the SPL", None),
    };
    for (s, what) in [(Some(init), init_what), (boot, "the SPL")] {
        if let Some(s) = s
            && s.bytes.is_empty()
        {
            return Err(IdbError::Empty { what, file: s.file.into() });
        }
    }
    let init_size = init.bytes.len().next_multiple_of(ALIGN);
    if init_size > info.spl_size {
        return Err(IdbError::TooLarge {
            what: init_what,
            file: init.file.into(),
            len: init.bytes.len(),
            padded: init_size,
            limit: info.spl_size,
            soc: info.name.into(),
        });
    }
    let boot_size = boot.map_or(0, |b| b.bytes.len().next_multiple_of(ALIGN));
    // v1: init_boot_size (u16 sectors) holds init + boot (or + 512 KiB);
    // v2: each image's sector count is 16 bits, its offset too.
    let max = 0xffff * BLOCK;
    let counted = init_size + if boot.is_some() { boot_size } else { MAX_BOOT_SIZE };
    if (info.header == V1 && counted > max) || init_size + boot_size + HEADER_LEN > max {
        return Err(IdbError::TooLargeForHeader { total: init_size + boot_size, max });
    }
    let mut img = vec![0u8; HEADER_LEN + init_size + boot_size];
    img[HEADER_LEN..HEADER_LEN + init.bytes.len()].copy_from_slice(init.bytes);
    if let Some(b) = boot {
        let at = HEADER_LEN + init_size;
        img[at..at + b.bytes.len()].copy_from_slice(b.bytes);
    }
    match info.header {
        V1 => {
            let h = &mut img[..BLOCK];
            h[0..4].copy_from_slice(&MAGIC_V1.to_le_bytes());
            h[8..12].copy_from_slice(&u32::from(!info.spl_rc4).to_le_bytes());
            h[12..14].copy_from_slice(&4u16.to_le_bytes());
            h[0x1fa..0x1fc].copy_from_slice(&((init_size / BLOCK) as u16).to_le_bytes());
            h[0x1fc..0x1fe].copy_from_slice(&((counted / BLOCK) as u16).to_le_bytes());
            rc4_block(h);
            if &img[HEADER_LEN..HEADER_LEN + 4] != b"RSAK" {
                img[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&info.spl_hdr);
            }
            if info.spl_rc4 {
                // Each 512-byte block of each stage from a fresh key.
                for blk in img[HEADER_LEN..].chunks_mut(BLOCK) {
                    rc4_block(blk);
                }
            }
        }
        V2 => {
            img[0..4].copy_from_slice(&MAGIC_V2.to_le_bytes());
            img[8..12].copy_from_slice(&((2u32 << 16) + 384).to_le_bytes());
            img[12..16].copy_from_slice(&1u32.to_le_bytes());
            let mut sector = 4usize;
            for (i, size) in [init_size, boot_size].into_iter().enumerate() {
                let count = size / BLOCK;
                let data_hash = sha256(&img[sector * BLOCK..sector * BLOCK + size]);
                let e = &mut img[V2_ENTRIES + i * V2_ENTRY..][..V2_ENTRY];
                e[0..4].copy_from_slice(&(((count as u32) << 16) + sector as u32).to_le_bytes());
                e[4..8].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
                e[12..16].copy_from_slice(&(i as u32 + 1).to_le_bytes());
                e[24..56].copy_from_slice(&data_hash);
                sector += count;
            }
            let h = sha256(&img[..V2_HASH]);
            img[V2_HASH..V2_HASH + 32].copy_from_slice(&h);
        }
    }
    Ok(img)
}

/// Offset of the v2 image entries, their size, and the header hash's offset.
const V2_ENTRIES: usize = 0x78;
const V2_ENTRY: usize = 88;
const V2_HASH: usize = 0x600;

/// One stage as a header describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Part {
    /// Byte offset from the header's start.
    pub offset: usize,
    /// Size in bytes (whole sectors).
    pub size: usize,
    /// v2: the stored SHA-256 matches the bytes (None: not in the file, or v1).
    pub hash_ok: Option<bool>,
}

/// A decoded idbloader header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Idb {
    pub version: HeaderVersion,
    /// v1: `disable_rc4` (1: stages stored plain).
    pub rc4_disabled: bool,
    /// v1: the 4 bytes at the init stage's start ('RK33', …), when ASCII.
    pub spl_hdr: Option<String>,
    /// The SoCs whose ROM takes this header (by spl hdr for v1; every
    /// header-v2 SoC for v2, which carries no SoC mark).
    pub socs: Vec<&'static str>,
    pub init: Part,
    /// The boot stage (None: v1 without one, `init_boot_size` = init + 512 KiB;
    /// v2 with a zero-size entry).
    pub boot: Option<Part>,
    /// v2: the header's own SHA-256 matches.
    pub header_hash_ok: Option<bool>,
    /// rkdeveloptool `ul`'s IDB: sector 2 carries "VC"/"CRC" tags; its
    /// CRC-16s of sectors 0/1/3 check.
    pub rkdeveloptool: Option<bool>,
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Decodes the header at the start of `bytes` (an idbloader.img, or what
/// `read --at 64` got back); `None` when it is neither v1 nor v2.
pub fn parse(bytes: &[u8]) -> Option<Idb> {
    if bytes.len() < BLOCK {
        return None;
    }
    if le32(bytes, 0) == MAGIC_V2 {
        if bytes.len() < HEADER_LEN {
            return None;
        }
        let part = |i: usize| {
            let e = &bytes[V2_ENTRIES + i * V2_ENTRY..][..V2_ENTRY];
            let so = le32(e, 0) as usize;
            let (size, offset) = ((so >> 16) * BLOCK, (so & 0xffff) * BLOCK);
            let hash_ok = bytes.get(offset..offset + size).map(|d| sha256(d)[..] == e[24..56]);
            Part { offset, size, hash_ok }
        };
        let boot = part(1);
        return Some(Idb {
            version: V2,
            rc4_disabled: true,
            spl_hdr: None,
            socs: SOCS.iter().filter(|s| s.header == V2).map(|s| s.name).collect(),
            init: part(0),
            boot: (boot.size > 0).then_some(boot),
            header_hash_ok: Some(sha256(&bytes[..V2_HASH])[..] == bytes[V2_HASH..V2_HASH + 32]),
            rkdeveloptool: None,
        });
    }
    let mut h = bytes[..BLOCK].to_vec();
    rc4_block(&mut h);
    if le32(&h, 0) != MAGIC_V1 {
        return None;
    }
    let init_offset = le16(&h, 12) as usize * BLOCK;
    let init_size = le16(&h, 0x1fa) as usize * BLOCK;
    let total = le16(&h, 0x1fc) as usize * BLOCK;
    let rc4_disabled = le32(&h, 8) == 1;
    // RK3066/RK3188 images have their stages RC4'd per 512-byte block.
    let spl = bytes.get(init_offset..init_offset + BLOCK).map(|b| {
        let mut b = b[..4].to_vec();
        if !rc4_disabled {
            let mut blk = bytes[init_offset..init_offset + BLOCK].to_vec();
            rc4_block(&mut blk);
            b.copy_from_slice(&blk[..4]);
        }
        b
    });
    let spl = spl.as_deref();
    let spl_hdr =
        spl.filter(|s| s.iter().all(u8::is_ascii_alphanumeric)).map(|s| String::from_utf8_lossy(s).into());
    let socs = SOCS
        .iter()
        .filter(|s| s.header == V1 && spl.is_some_and(|b| b == s.spl_hdr))
        .map(|s| s.name)
        .collect();
    let boot_size = total.saturating_sub(init_size);
    let boot = (boot_size != MAX_BOOT_SIZE && boot_size > 0).then_some(Part {
        offset: init_offset + init_size,
        size: boot_size,
        hash_ok: None,
    });
    Some(Idb {
        version: V1,
        rc4_disabled,
        spl_hdr,
        socs,
        init: Part { offset: init_offset, size: init_size, hash_ok: None },
        boot,
        header_hash_ok: None,
        rkdeveloptool: crate::ul::check_sectors(bytes),
    })
}

/// What `racklet-flash info` says about an idbloader image.
pub fn describe(bytes: &[u8]) -> Option<Description> {
    let idb = parse(bytes)?;
    let v = match idb.version {
        V1 => "v1",
        V2 => "v2",
    };
    let mut d = Description::new(format!("Rockchip idbloader (SD/eMMC boot image, header {v})"), "rockchip");
    d.field("header", format!("{v} (magic 0x{:08x})", if idb.version == V1 { MAGIC_V1 } else { MAGIC_V2 }));
    d.field(
        "SoC",
        match (&idb.spl_hdr, idb.socs.is_empty()) {
            (Some(h), false) => format!("'{h}': {}", idb.socs.join(", ")),
            (Some(h), true) => format!("'{h}' (no SoC of rkcommon.c)"),
            (None, false) => format!("not marked; header v2 is read by {}", idb.socs.join(", ")),
            (None, true) => "not marked".into(),
        },
    );
    if idb.version == V1 {
        d.field(
            "stages RC4",
            if idb.rc4_disabled { "no (disable_rc4 = 1)" } else { "yes (disable_rc4 = 0)" },
        );
    }
    let part =
        |p: &Part| format!("{} B at 0x{:x} (sector {} of the image)", p.size, p.offset, p.offset / BLOCK);
    d.field(if idb.boot.is_some() { "init (TPL)" } else { "init (SPL)" }, part(&idb.init));
    match &idb.boot {
        Some(b) => d.field("boot (SPL)", part(b)),
        None => d.field("boot", "none (the init stage loads the next one itself)"),
    }
    d.check(
        format!("file holds the stages ({} B, needs {})", bytes.len(), end(&idb)),
        bytes.len() >= end(&idb),
    );
    if let Some(ok) = idb.init.hash_ok {
        d.check("init stage SHA-256", ok);
    }
    if let Some(ok) = idb.boot.as_ref().and_then(|b| b.hash_ok) {
        d.check("boot stage SHA-256", ok);
    }
    if let Some(ok) = idb.header_hash_ok {
        d.check("header SHA-256", ok);
    }
    if let Some(ok) = idb.rkdeveloptool {
        d.check("rkdeveloptool IDB sectors 1-3 (CRC-16s in sector 2)", ok);
    }
    d.socs = idb.socs.iter().map(|s| s.to_string()).collect();
    Some(d)
}

fn end(idb: &Idb) -> usize {
    idb.boot.as_ref().map_or(idb.init.offset + idb.init.size, |b| b.offset + b.size)
}
