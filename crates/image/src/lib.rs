//! racklet-image: what to send.
//!
//! Turns the `<bin>` argument into bytes: an ELF (through the `object`
//! crate) becomes one flat image at its load address with its entry point,
//! anything else is a raw binary placed at the board's load address. Before
//! any device is touched, [`check_fit`] checks the image against the board's
//! load window.

pub mod boards;
pub mod describe;
pub mod disk;
pub mod target;

pub use describe::Description;
pub use target::Target;

use std::path::{Path, PathBuf};

use object::elf::{EM_AARCH64, EM_ARM, EM_RISCV, PT_LOAD};
use object::read::elf::{ElfFile32, ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, FileKind};
use sha2::{Digest, Sha256};

pub mod output;

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
    /// Memory the payload occupies from its load address: its bytes and the
    /// .bss after them (an ELF's memory sizes).
    pub mem_size: u64,
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
    #[error("{}: is {kind}, not a regular file; give the file itself", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: {size} bytes, larger than the {limit} bytes {what}", path.display())]
    InputTooLarge { path: PathBuf, size: u64, limit: u64, what: String },
    #[error("{}: {count} PT_LOAD segments, more than the {MAX_SEGMENTS} a boot payload has; link it into fewer segments", path.display())]
    TooManySegments { path: PathBuf, count: usize },
    #[error("{}: reading stopped (interrupted)", path.display())]
    Interrupted { path: PathBuf },
}

/// The most PT_LOAD segments an ELF payload may have. Boot payloads have a
/// handful (text, data, perhaps a second memory); each segment may point at
/// the same file data, so the count bounds what a small file can claim.
pub const MAX_SEGMENTS: usize = 64;

/// Bytes read between two looks at the cancel flag.
const READ_PIECE: usize = 1 << 20;

static CANCEL: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::OnceLock::new();

/// Makes [`read_input`] stop between two pieces once `flag` is set (the
/// program's Ctrl-C flag). Set once per process; later calls are ignored.
pub fn stop_reads_on(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let _ = CANCEL.set(flag);
}

fn cancelled() -> bool {
    CANCEL.get().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
}

/// What a file is, for "not a regular file" messages.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        return "a directory";
    }
    "not a plain file"
}

/// Checks, without reading, that `path` is a regular, non-empty file of at
/// most `max` bytes; returns its size. `what` ends the "larger than" message
/// ("a stage of canmv-k230 can be").
pub fn check_input(path: &Path, max: u64, what: &str) -> Result<u64, ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| ImageError::Read { path: path.into(), error: e })?;
    check_meta(path, &meta, max, what)
}

/// Checks, without reading, that `path` is a regular, non-empty file of any
/// size (a storage image, which is streamed and never held whole); returns
/// its size.
pub fn check_file(path: &Path) -> Result<u64, ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| ImageError::Read { path: path.into(), error: e })?;
    check_kind(path, &meta)?;
    Ok(meta.len())
}

fn check_kind(path: &Path, meta: &std::fs::Metadata) -> Result<(), ImageError> {
    if meta.is_dir() {
        return Err(ImageError::IsDirectory { path: path.into() });
    }
    if !meta.is_file() {
        return Err(ImageError::NotRegular { path: path.into(), kind: kind_of(meta.file_type()) });
    }
    if meta.len() == 0 {
        return Err(ImageError::Empty { path: path.into() });
    }
    Ok(())
}

fn check_meta(path: &Path, meta: &std::fs::Metadata, max: u64, what: &str) -> Result<u64, ImageError> {
    check_kind(path, meta)?;
    if meta.len() > max {
        return Err(ImageError::InputTooLarge {
            path: path.into(),
            size: meta.len(),
            limit: max,
            what: what.into(),
        });
    }
    Ok(meta.len())
}

/// Opens `path` for reading without blocking on a FIFO (whose open waits
/// for a writer): the type is checked on the opened file.
fn open_no_block(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    o.open(path)
}

/// Reads a file that must exist, be a regular file, not be empty and hold
/// at most `max` bytes (`what` ends the "larger than" message: "a stage of
/// canmv-k230 can be"). The size is judged before anything is read, a FIFO
/// or device is refused without being opened for blocking reads, and the
/// read goes in pieces that Ctrl-C stops (see [`stop_reads_on`]).
pub fn read_input(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, ImageError> {
    read_input_until(path, max, what, &cancelled)
}

/// [`read_input`] with its own cancel test, asked between pieces.
pub fn read_input_until(
    path: &Path,
    max: u64,
    what: &str,
    cancel: &dyn Fn() -> bool,
) -> Result<Vec<u8>, ImageError> {
    use std::io::Read;
    let read_err = |e| ImageError::Read { path: path.into(), error: e };
    check_input(path, max, what)?;
    let f = open_no_block(path).map_err(read_err)?;
    // The file may have been swapped between the two looks: judge what was opened.
    let size = check_meta(path, &f.metadata().map_err(read_err)?, max, what)?;
    let mut bytes = Vec::with_capacity(size as usize);
    // One byte more than allowed tells a file that grew past the limit.
    let mut r = f.take(max.saturating_add(1));
    let mut piece = vec![0u8; READ_PIECE.min(size as usize + 1)];
    loop {
        if cancel() {
            return Err(ImageError::Interrupted { path: path.into() });
        }
        let n = match r.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        bytes.extend_from_slice(&piece[..n]);
    }
    if bytes.len() as u64 > max {
        return Err(ImageError::InputTooLarge {
            path: path.into(),
            size: bytes.len() as u64,
            limit: max,
            what: what.into(),
        });
    }
    if bytes.is_empty() {
        return Err(ImageError::Empty { path: path.into() });
    }
    Ok(bytes)
}

/// True when `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Loads a payload from a file of at most `max_file` bytes: ELF or raw.
/// `expected` is the board's architecture; an ELF for another one is
/// refused. An ELF's memory footprint is checked against `window` before
/// its flat image is built.
pub fn load(
    path: &Path,
    expected: Option<Arch>,
    max_file: u64,
    window: &Window,
) -> Result<Payload, ImageError> {
    let bytes = read_input(path, max_file, &format!("a stage of {} can be", window.board))?;
    load_bytes(path, bytes, expected, window)
}

/// Like [`load`], with the bytes already read.
pub fn load_bytes(
    path: &Path,
    bytes: Vec<u8>,
    expected: Option<Arch>,
    window: &Window,
) -> Result<Payload, ImageError> {
    if !is_elf(&bytes) {
        let mem_size = bytes.len() as u64;
        return Ok(Payload {
            path: path.into(),
            bytes,
            load_address: None,
            entry: None,
            mem_size,
            source: Source::Raw,
        });
    }
    let p = flatten_elf(path, &bytes, expected, window)?;
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

/// One PT_LOAD segment: physical address, file bytes, memory size.
struct Load<'a> {
    address: u64,
    bytes: &'a [u8],
    mem_size: u64,
}

impl Load<'_> {
    fn mem_end(&self) -> u64 {
        self.address + self.mem_size
    }
    fn file_end(&self) -> u64 {
        self.address + self.bytes.len() as u64
    }
}

fn elf_loads<'a, E: FileHeader<Endian = Endianness>>(
    path: &Path,
    data: &'a [u8],
    elf: &object::read::elf::ElfFile<'a, E>,
) -> Result<(Vec<Load<'a>>, u64, u16), ImageError> {
    let bad = |e: object::Error| ImageError::BadElf { path: path.into(), reason: e.to_string() };
    let endian = elf.endian();
    let header = elf.elf_header();
    let phs = header.program_headers(endian, data).map_err(bad)?;
    let count = phs.iter().filter(|ph| ph.p_type(endian) == PT_LOAD).count();
    if count > MAX_SEGMENTS {
        return Err(ImageError::TooManySegments { path: path.into(), count });
    }
    let mut loads = Vec::new();
    for ph in phs {
        if ph.p_type(endian) != PT_LOAD {
            continue;
        }
        let filesz: u64 = ph.p_filesz(endian).into();
        let memsz: u64 = ph.p_memsz(endian).into();
        if filesz == 0 && memsz == 0 {
            continue;
        }
        let bytes = ph.data(endian, data).map_err(|()| ImageError::BadElf {
            path: path.into(),
            reason: "a PT_LOAD segment points past the end of the file".into(),
        })?;
        // Physical address: where the ROM puts the bytes.
        let paddr: u64 = ph.p_paddr(endian).into();
        let mem_size = memsz.max(filesz);
        if paddr.checked_add(mem_size).is_none() {
            return Err(ImageError::BadElf {
                path: path.into(),
                reason: format!(
                    "a PT_LOAD segment at 0x{paddr:x} of {mem_size} bytes in memory runs past the end of the 64-bit address space"
                ),
            });
        }
        loads.push(Load { address: paddr, bytes, mem_size });
    }
    Ok((loads, header.e_entry(endian).into(), header.e_machine(endian).0))
}

fn flatten_elf(
    path: &Path,
    data: &[u8],
    expected: Option<Arch>,
    window: &Window,
) -> Result<Payload, ImageError> {
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
    let arch = arch_of(machine, is_64);
    if let Some(want) = expected
        && arch != want
    {
        return Err(ImageError::WrongArch { path: path.into(), found: arch, expected: want });
    }
    if !loads.iter().any(|l| !l.bytes.is_empty()) {
        return Err(ImageError::NoSegments { path: path.into() });
    }
    loads.sort_by_key(|l| l.address);
    // Memory, .bss included: segments may not overlap, nor leave a hole
    // larger than MAX_GAP between them.
    for w in loads.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.address < a.mem_end() {
            return Err(ImageError::Overlap { path: path.into(), a: a.address, b: b.address });
        }
        if b.address - a.mem_end() > MAX_GAP {
            return Err(ImageError::Gap {
                path: path.into(),
                a: a.address,
                b: b.address,
                gap: b.address - a.mem_end(),
            });
        }
    }
    let segments: Vec<Segment> = loads
        .iter()
        .map(|l| Segment { address: l.address, file_size: l.bytes.len() as u64, mem_size: l.mem_size })
        .collect();
    // The bytes sent run from the first segment with data to the end of the
    // last one; the footprint runs to the end of the last .bss.
    let with_data: Vec<&Load> = loads.iter().filter(|l| !l.bytes.is_empty()).collect();
    let start = with_data[0].address;
    let end = with_data.iter().map(|l| l.file_end()).max().unwrap_or(start);
    let mem_end = loads.iter().map(Load::mem_end).max().unwrap_or(end);
    let mem_start = loads[0].address.min(start);
    // Judge the footprint before the flat image is allocated.
    check_fit(path, mem_start, mem_end - mem_start, window)?;
    if entry < start || entry >= end {
        return Err(ImageError::EntryOutside { path: path.into(), entry, start, end });
    }
    let mut flat = vec![0u8; (end - start) as usize];
    for l in &with_data {
        let off = (l.address - start) as usize;
        flat[off..off + l.bytes.len()].copy_from_slice(l.bytes);
    }
    Ok(Payload {
        path: path.into(),
        bytes: flat,
        load_address: Some(start),
        entry: Some(entry),
        mem_size: mem_end - start,
        source: Source::Elf { arch, segments },
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

impl Window {
    /// Anywhere in the address space, at most `max` bytes (`why` says
    /// whose limit it is): for stages bound for DRAM, or for `info`.
    pub fn anywhere(board: &str, max: u64, why: &str) -> Window {
        Window { board: board.into(), base: 0, size: u64::MAX, max_payload: Some((max, why.into())) }
    }
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
