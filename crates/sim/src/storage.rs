//! The storage of a virtual board: an eMMC, SD card, SPI NOR/NAND or OTP
//! area of a real size, sparse in memory, or backed by a file
//! (`--sim-storage FILE`) so that a `write` and a later `read` in another
//! run see the same bytes, and a user can look at what a script would
//! have written.
//!
//! Device models (the rockusb usbplug, U-Boot's fastboot, the kburn
//! loader) put their own protocol on top; this is only the medium: byte
//! offsets, bounds, and what erased cells read as (0x00 on eMMC and SD as
//! their erase-group default, 0xFF on NOR and NAND flash).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// Granule of the in-memory store.
const CHUNK: u64 = 64 * 1024;

/// An access outside the medium.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes at offset 0x{offset:x} are past the end of the {size}-byte medium")]
pub struct OutOfRange {
    pub offset: u64,
    pub len: u64,
    pub size: u64,
}

/// A file-backed medium could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct MediumFileError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

enum Store {
    Memory(BTreeMap<u64, Box<[u8]>>),
    File(File),
}

/// One storage medium.
pub struct Medium {
    size: u64,
    erased: u8,
    store: Store,
}

impl std::fmt::Debug for Medium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.store {
            Store::Memory(_) => "memory",
            Store::File(_) => "file",
        };
        f.debug_struct("Medium")
            .field("size", &self.size)
            .field("erased", &self.erased)
            .field("store", &kind)
            .finish()
    }
}

impl Medium {
    /// A medium of `size` bytes in memory, every byte `erased` at first.
    /// Only what is written takes memory.
    pub fn in_memory(size: u64, erased: u8) -> Medium {
        Medium { size, erased, store: Store::Memory(BTreeMap::new()) }
    }

    /// A medium of `size` bytes kept in the file at `path`: created (as a
    /// sparse file) when missing, used as it is when it has that size.
    /// A new file reads as zeros, so `erased` is 0 for file media.
    pub fn in_file(path: &Path, size: u64) -> Result<Medium, MediumFileError> {
        let err = |source| MediumFileError { path: path.display().to_string(), source };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err)?;
        let len = f.metadata().map_err(err)?.len();
        if len == 0 {
            f.set_len(size).map_err(err)?;
        } else if len != size {
            return Err(err(std::io::Error::other(format!(
                "the file holds {len} bytes, but this medium has {size}; remove it or give a file of that size"
            ))));
        }
        Ok(Medium { size, erased: 0, store: Store::File(f) })
    }

    /// Like [`Medium::in_file`], for a medium whose erased cells read as
    /// `erased` (0xFF on NOR flash): a new file is filled with it, and
    /// erasing writes it.
    pub fn in_file_erased(path: &Path, size: u64, erased: u8) -> Result<Medium, MediumFileError> {
        let new = std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
        let mut m = Medium::in_file(path, size)?;
        m.erased = erased;
        if new && erased != 0 {
            let fill = vec![erased; CHUNK as usize];
            let mut at = 0;
            while at < size {
                let n = (size - at).min(CHUNK);
                m.write(at, &fill[..n as usize]).map_err(|e| MediumFileError {
                    path: path.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                at += n;
            }
        }
        Ok(m)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// What an erased byte reads as.
    pub fn erased(&self) -> u8 {
        self.erased
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), OutOfRange> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(OutOfRange { offset, len, size: self.size }),
        }
    }

    /// Reads `len` bytes at `offset`.
    pub fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, OutOfRange> {
        self.check(offset, len as u64)?;
        let mut out = vec![self.erased; len];
        match &self.store {
            Store::Memory(chunks) => {
                let mut at = offset;
                while at < offset + len as u64 {
                    let base = at / CHUNK * CHUNK;
                    let in_chunk = (at - base) as usize;
                    let n = ((CHUNK as usize - in_chunk) as u64).min(offset + len as u64 - at) as usize;
                    if let Some(c) = chunks.get(&base) {
                        let o = (at - offset) as usize;
                        out[o..o + n].copy_from_slice(&c[in_chunk..in_chunk + n]);
                    }
                    at += n as u64;
                }
            }
            Store::File(f) => {
                // A short read past what the file holds is impossible: its
                // length is the medium's.
                read_exact_at(f, &mut out, offset).expect("reading the medium's own file");
            }
        }
        Ok(out)
    }

    /// Writes `data` at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), OutOfRange> {
        self.check(offset, data.len() as u64)?;
        let erased = self.erased;
        match &mut self.store {
            Store::Memory(chunks) => {
                let mut at = offset;
                let end = offset + data.len() as u64;
                while at < end {
                    let base = at / CHUNK * CHUNK;
                    let in_chunk = (at - base) as usize;
                    let n = ((CHUNK - in_chunk as u64).min(end - at)) as usize;
                    let c =
                        chunks.entry(base).or_insert_with(|| vec![erased; CHUNK as usize].into_boxed_slice());
                    let o = (at - offset) as usize;
                    c[in_chunk..in_chunk + n].copy_from_slice(&data[o..o + n]);
                    at += n as u64;
                }
            }
            Store::File(f) => write_all_at(f, data, offset).expect("writing the medium's own file"),
        }
        Ok(())
    }

    /// Erases `len` bytes at `offset` (they read as the erased value).
    pub fn erase(&mut self, offset: u64, len: u64) -> Result<(), OutOfRange> {
        self.check(offset, len)?;
        let mut at = offset;
        let end = offset + len;
        if let Store::File(f) = &self.store
            && self.erased != 0
        {
            // Flash kept in a file (its erased cells are not the file's
            // zeros): small enough to write through.
            const PIECE: u64 = 1 << 20;
            let fill = vec![self.erased; PIECE as usize];
            while at < end {
                let n = (end - at).min(PIECE);
                write_all_at(f, &fill[..n as usize], at).expect("writing the medium's own file");
                at += n;
            }
            return Ok(());
        }
        if let Store::File(f) = &self.store {
            // Erased to its end (`erase --whole`): cut and regrow the file, a
            // sparse run of zeros, rather than writing gigabytes of them.
            if end == self.size {
                f.set_len(offset)
                    .and_then(|()| f.set_len(self.size))
                    .expect("resizing the medium's own file");
                return Ok(());
            }
            // Elsewhere zeros go only where something else is (a sparse
            // file's holes read fast; the compare is a memcmp).
            const PIECE: usize = 1 << 20;
            let zeros = vec![0u8; PIECE];
            let mut buf = vec![0u8; PIECE];
            while at < end {
                let n = (end - at).min(PIECE as u64) as usize;
                read_exact_at(f, &mut buf[..n], at).expect("reading the medium's own file");
                if buf[..n] != zeros[..n] {
                    write_all_at(f, &zeros[..n], at).expect("writing the medium's own file");
                }
                at += n as u64;
            }
            return Ok(());
        }
        while at < end {
            // Up to the next chunk edge, so whole chunks are seen whole.
            let n = (end - at).min(CHUNK - at % CHUNK);
            // Whole chunks in memory are dropped: they read as erased.
            if let Store::Memory(chunks) = &mut self.store
                && n == CHUNK
            {
                chunks.remove(&at);
            } else if let Store::Memory(chunks) = &self.store
                && !chunks.contains_key(&(at / CHUNK * CHUNK))
            {
                // Never written: already erased.
            } else {
                self.write(at, &vec![self.erased; n as usize])?;
            }
            at += n;
        }
        Ok(())
    }

    /// Bytes of memory the medium holds (for tests of sparseness).
    pub fn resident(&self) -> u64 {
        match &self.store {
            Store::Memory(c) => c.len() as u64 * CHUNK,
            Store::File(_) => 0,
        }
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(unix)]
fn write_all_at(f: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

#[cfg(not(unix))]
fn write_all_at(f: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = f;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_16_gib_medium_holds_only_what_was_written() {
        let mut m = Medium::in_memory(16 << 30, 0);
        assert_eq!(m.read(0, 4).unwrap(), [0; 4]);
        m.write((8 << 30) - 2, &[1, 2, 3, 4]).unwrap();
        assert_eq!(m.read((8 << 30) - 3, 6).unwrap(), [0, 1, 2, 3, 4, 0]);
        assert_eq!(m.resident(), 2 * CHUNK, "a write across a chunk edge takes two chunks");
        m.erase((8 << 30) - CHUNK, 2 * CHUNK).unwrap();
        assert_eq!(m.resident(), 0);
        assert_eq!(m.read((8 << 30) - 3, 6).unwrap(), [0; 6]);
    }

    #[test]
    fn flash_reads_ff_when_erased_and_bounds_are_kept() {
        let mut m = Medium::in_memory(1 << 20, 0xff);
        m.write(10, b"ab").unwrap();
        m.erase(11, 1).unwrap();
        assert_eq!(m.read(9, 4).unwrap(), [0xff, b'a', 0xff, 0xff]);
        assert_eq!(
            m.write((1 << 20) - 1, b"ab"),
            Err(OutOfRange { offset: (1 << 20) - 1, len: 2, size: 1 << 20 })
        );
        assert!(m.read(u64::MAX, 2).is_err(), "offset overflow is out of range, not a panic");
        assert!(m.erase(1 << 20, 1).is_err());
    }

    #[test]
    fn a_file_medium_keeps_the_bytes_for_the_next_run() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("emmc.img");
        {
            let mut m = Medium::in_file(&p, 1 << 30).unwrap();
            m.write(512 * 64, b"racklet").unwrap();
        }
        let m = Medium::in_file(&p, 1 << 30).unwrap();
        assert_eq!(m.read(512 * 64, 7).unwrap(), b"racklet");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 30);
        // Erased to its end: zeros, and the file keeps its size.
        let mut m = Medium::in_file(&p, 1 << 30).unwrap();
        m.erase(512 * 64 + 3, (1 << 30) - 512 * 64 - 3).unwrap();
        assert_eq!(m.read(512 * 64, 7).unwrap(), b"rac\0\0\0\0");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 30);
        let e = Medium::in_file(&p, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("emmc.img") && e.to_string().contains("holds"), "{e}");
    }
}
