//! racklet-image: what to send.
//!
//! Turns the `<bin>` argument into bytes: an ELF (through the `object`
//! crate) becomes one flat image at its load address with its entry point,
//! anything else is a raw binary placed at the board's load address. Before
//! any device is touched, [`check_fit`] checks the image against the board's
//! load window.

pub mod describe;
pub mod target;

pub use describe::Description;
pub use target::Target;

use std::path::{Path, PathBuf};

use object::elf::{EM_AARCH64, EM_ARM, EM_RISCV, PT_LOAD};
use object::read::elf::{ElfFile32, ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, FileKind};
use sha2::{Digest, Sha256};

/// The largest hole between two PT_LOAD segments that is filled with zeros.
/// Payloads for these ROMs are a few hundred KiB of contiguous SRAM; a larger
/// hole means segments meant for different memories (SRAM and DRAM), which
/// one flat download cannot place.
pub const MAX_GAP: u64 = 64 * 1024;

/// Instruction set of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Riscv64,
    Riscv32,
    Aarch64,
    Arm,
    Other(u16),
}

impl Arch {
    /// Parses the names used in the board table.
    pub fn from_name(s: &str) -> Option<Arch> {
        Some(match s {
            "riscv64" => Arch::Riscv64,
            "riscv32" => Arch::Riscv32,
            "aarch64" | "arm64" => Arch::Aarch64,
            "arm" | "arm32" => Arch::Arm,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::Riscv64 => f.write_str("riscv64"),
            Arch::Riscv32 => f.write_str("riscv32"),
            Arch::Aarch64 => f.write_str("aarch64"),
            Arch::Arm => f.write_str("arm"),
            Arch::Other(m) => write!(f, "e_machine {m}"),
        }
    }
}

/// One PT_LOAD segment as found in the ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub address: u64,
    pub file_size: u64,
    pub mem_size: u64,
}

/// What kind of file the bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An ELF, flattened.
    Elf { arch: Arch, segments: Vec<Segment> },
    /// A raw binary.
    Raw,
}

/// A payload ready to send.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Where it came from (for messages).
    pub path: PathBuf,
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// Load address, when the file says (ELF); raw files take the board's.
    pub load_address: Option<u64>,
    /// Entry point, when the file says (ELF).
    pub entry: Option<u64>,
    pub source: Source,
}

impl Payload {
    /// Lower-case hex SHA-256 of the bytes sent.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why an input file cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: cannot read: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{}: is a directory, not a file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: the file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a valid ELF file: {reason}", path.display())]
    BadElf { path: PathBuf, reason: String },
    #[error("{}: ELF for {found}, but the board runs {expected}; build the payload for {expected}", path.display())]
    WrongArch { path: PathBuf, found: Arch, expected: Arch },
    #[error("{}: the ELF has no loadable (PT_LOAD) segment with data", path.display())]
    NoSegments { path: PathBuf },
    #[error("{}: segments at 0x{a:x} and 0x{b:x} overlap", path.display())]
    Overlap { path: PathBuf, a: u64, b: u64 },
    #[error("{}: a gap of {gap} bytes between segments at 0x{a:x} and 0x{b:x} exceeds {MAX_GAP} bytes; the segments belong to different memories and cannot be sent as one image", path.display())]
    Gap { path: PathBuf, a: u64, b: u64, gap: u64 },
    #[error("{}: the entry point 0x{entry:x} lies outside the loaded image 0x{start:x}..0x{end:x}", path.display())]
    EntryOutside { path: PathBuf, entry: u64, start: u64, end: u64 },
    #[error("{}: {size} bytes do not fit {board}: at most {limit} bytes ({why})", path.display())]
    TooLarge { path: PathBuf, size: u64, limit: u64, board: String, why: String },
    #[error("{}: loads at 0x{start:x}..0x{end:x}, outside {board}'s load window 0x{base:x}..0x{wend:x}; link the payload for 0x{base:x}", path.display())]
    OutsideWindow { path: PathBuf, start: u64, end: u64, base: u64, wend: u64, board: String },
}

/// Reads a file that must exist, be a regular file and not be empty.
pub fn read_input(path: &Path) -> Result<Vec<u8>, ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| ImageError::Read { path: path.into(), error: e })?;
    if meta.is_dir() {
        return Err(ImageError::IsDirectory { path: path.into() });
    }
    let bytes = std::fs::read(path).map_err(|e| ImageError::Read { path: path.into(), error: e })?;
    if bytes.is_empty() {
        return Err(ImageError::Empty { path: path.into() });
    }
    Ok(bytes)
}

/// True when `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Loads a payload from a file: ELF or raw. `expected` is the board's
/// architecture; an ELF for another one is refused.
pub fn load(path: &Path, expected: Option<Arch>) -> Result<Payload, ImageError> {
    let bytes = read_input(path)?;
    load_bytes(path, bytes, expected)
}

/// Like [`load`], with the bytes already read.
pub fn load_bytes(path: &Path, bytes: Vec<u8>, expected: Option<Arch>) -> Result<Payload, ImageError> {
    if !is_elf(&bytes) {
        return Ok(Payload {
            path: path.into(),
            bytes,
            load_address: None,
            entry: None,
            source: Source::Raw,
        });
    }
    let p = flatten_elf(path, &bytes)?;
    if let (Some(want), Source::Elf { arch, .. }) = (expected, &p.source)
        && *arch != want
    {
        return Err(ImageError::WrongArch { path: path.into(), found: *arch, expected: want });
    }
    Ok(p)
}

fn arch_of(machine: u16, is_64: bool) -> Arch {
    match (machine, is_64) {
        (m, true) if m == EM_RISCV.0 => Arch::Riscv64,
        (m, false) if m == EM_RISCV.0 => Arch::Riscv32,
        (m, _) if m == EM_AARCH64.0 => Arch::Aarch64,
        (m, _) if m == EM_ARM.0 => Arch::Arm,
        (m, _) => Arch::Other(m),
    }
}

/// Collected (address, file bytes, mem size) of each PT_LOAD segment.
type Loads<'a> = Vec<(u64, &'a [u8], u64)>;

fn elf_loads<'a, E: FileHeader<Endian = Endianness>>(
    path: &Path,
    data: &'a [u8],
    elf: &object::read::elf::ElfFile<'a, E>,
) -> Result<(Loads<'a>, u64, u16), ImageError> {
    let bad = |e: object::Error| ImageError::BadElf { path: path.into(), reason: e.to_string() };
    let endian = elf.endian();
    let header = elf.elf_header();
    let mut loads = Vec::new();
    for ph in header.program_headers(endian, data).map_err(bad)? {
        if ph.p_type(endian) != PT_LOAD {
            continue;
        }
        let filesz: u64 = ph.p_filesz(endian).into();
        let memsz: u64 = ph.p_memsz(endian).into();
        if filesz == 0 {
            continue; // .bss only: the payload clears it itself
        }
        let bytes = ph.data(endian, data).map_err(|()| ImageError::BadElf {
            path: path.into(),
            reason: "a PT_LOAD segment points past the end of the file".into(),
        })?;
        // Physical address: where the ROM puts the bytes.
        let paddr: u64 = ph.p_paddr(endian).into();
        if paddr.checked_add(bytes.len() as u64).is_none() {
            return Err(ImageError::BadElf {
                path: path.into(),
                reason: format!(
                    "a PT_LOAD segment at 0x{paddr:x} of {} bytes runs past the end of the 64-bit address space",
                    bytes.len()
                ),
            });
        }
        loads.push((paddr, bytes, memsz.max(filesz)));
    }
    Ok((loads, header.e_entry(endian).into(), header.e_machine(endian).0))
}

fn flatten_elf(path: &Path, data: &[u8]) -> Result<Payload, ImageError> {
    let bad = |e: object::Error| ImageError::BadElf { path: path.into(), reason: e.to_string() };
    let (mut loads, entry, machine, is_64) = match FileKind::parse(data).map_err(bad)? {
        FileKind::Elf32 => {
            let elf = ElfFile32::<Endianness>::parse(data).map_err(bad)?;
            let (l, e, m) = elf_loads(path, data, &elf)?;
            (l, e, m, false)
        }
        FileKind::Elf64 => {
            let elf = ElfFile64::<Endianness>::parse(data).map_err(bad)?;
            let (l, e, m) = elf_loads(path, data, &elf)?;
            (l, e, m, true)
        }
        _ => return Err(ImageError::BadElf { path: path.into(), reason: "unknown ELF class".into() }),
    };
    if loads.is_empty() {
        return Err(ImageError::NoSegments { path: path.into() });
    }
    loads.sort_by_key(|l| l.0);
    let segments: Vec<Segment> = loads
        .iter()
        .map(|(a, b, m)| Segment { address: *a, file_size: b.len() as u64, mem_size: *m })
        .collect();
    let start = loads[0].0;
    let mut end = start;
    for w in loads.windows(2) {
        let (a, ab, _) = w[0];
        let (b, _, _) = w[1];
        let a_end = a + ab.len() as u64;
        if b < a_end {
            return Err(ImageError::Overlap { path: path.into(), a, b });
        }
        if b - a_end > MAX_GAP {
            return Err(ImageError::Gap { path: path.into(), a, b, gap: b - a_end });
        }
    }
    for (a, b, _) in &loads {
        end = end.max(a + b.len() as u64);
    }
    let mut flat = vec![0u8; (end - start) as usize];
    for (a, b, _) in &loads {
        let off = (a - start) as usize;
        flat[off..off + b.len()].copy_from_slice(b);
    }
    if entry < start || entry >= end {
        return Err(ImageError::EntryOutside { path: path.into(), entry, start, end });
    }
    Ok(Payload {
        path: path.into(),
        bytes: flat,
        load_address: Some(start),
        entry: Some(entry),
        source: Source::Elf { arch: arch_of(machine, is_64), segments },
    })
}

/// A board's load window.
#[derive(Debug, Clone)]
pub struct Window {
    /// Board name, for messages.
    pub board: String,
    /// Start of the on-chip RAM the ROM loads into.
    pub base: u64,
    /// Its size in bytes.
    pub size: u64,
    /// A stricter limit on the payload size, with the reason.
    pub max_payload: Option<(u64, String)>,
}

/// Checks that `len` bytes at `load` fit the window. `path` names the file.
pub fn check_fit(path: &Path, load: u64, len: u64, w: &Window) -> Result<(), ImageError> {
    let wend = w.base.saturating_add(w.size);
    let end = load.saturating_add(len);
    if let Some((max, why)) = &w.max_payload
        && len > *max
    {
        return Err(ImageError::TooLarge {
            path: path.into(),
            size: len,
            limit: *max,
            board: w.board.clone(),
            why: why.clone(),
        });
    }
    if load < w.base || load >= wend {
        return Err(ImageError::OutsideWindow {
            path: path.into(),
            start: load,
            end,
            base: w.base,
            wend,
            board: w.board.clone(),
        });
    }
    if end > wend {
        return Err(ImageError::TooLarge {
            path: path.into(),
            size: len,
            limit: wend - load,
            board: w.board.clone(),
            why: format!("the SRAM window ends at 0x{wend:x}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// True when `bytes` almost hold `magic` at `offset`: between one byte and a
/// quarter of the magic's bytes (at least one) differ. A file like that is a
/// damaged or mistyped header of a known format, not a raw binary that
/// happens to start that way (a random file matches 3 of 4 given bytes once
/// in about 4 million).
pub fn near_magic(bytes: &[u8], offset: usize, magic: &[u8]) -> bool {
    let Some(have) = offset.checked_add(magic.len()).and_then(|end| bytes.get(offset..end)) else {
        return false;
    };
    let differ = have.iter().zip(magic).filter(|(a, b)| a != b).count();
    (1..=(magic.len() / 4).max(1)).contains(&differ)
}

/// Bytes shown the way a header field is written: printable ASCII as is,
/// the rest escaped (`CVBL02\n\0`).
pub fn escaped(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect()
}

#[cfg(test)]
mod near_magic_tests {
    use super::{escaped, near_magic};

    #[test]
    fn one_byte_off_is_near_exact_and_far_are_not() {
        assert!(near_magic(b"CVBL02\n\0rest", 0, b"CVBL01\n\0"));
        assert!(near_magic(b"CVBX02\n\0", 0, b"CVBL01\n\0"), "two of eight bytes");
        assert!(!near_magic(b"CVXX02\n\0", 0, b"CVBL01\n\0"), "three of eight bytes");
        assert!(!near_magic(b"CVBL01\n\0", 0, b"CVBL01\n\0"), "exact is not near");
        assert!(near_magic(b"K231", 0, b"K230"));
        assert!(!near_magic(b"K2", 0, b"K230"), "too short");
        assert!(!near_magic(b"xxxxK231", usize::MAX, b"K230"), "offset overflow");
        assert_eq!(escaped(b"CVBL02\n\0"), "CVBL02\\n\\x00");
    }
}
