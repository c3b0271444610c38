//! Disk images for the storage verbs (`racklet-flash write`): raw, Android
//! sparse, a raw image with a `.bmap` beside it, each possibly compressed
//! (`.gz`, `.xz`, `.zst`), read as a stream of [`Extent`]s so a 16 GB image
//! with 2 GB of data writes 2 GB and nothing is unpacked to disk.
//!
//! What is used and why (crate README "Crate choices"): `flate2`, `liblzma`
//! and `zstd` decompress as the bytes are read; `bmap-parser` (Collabora)
//! reads bmaptool's XML; the sparse format (AOSP `sparse_format.h`) is read
//! here, because the stream may be compressed and `android-sparse-image`
//! wants a header and chunk list up front. Formats are told by their magic,
//! not their names: gzip `1f 8b`, xz `fd 37 7a 58 5a 00`, zstd
//! `28 b5 2f fd`, sparse `3a ff 26 ed`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How much of the image one [`Extent::Data`] holds at most.
pub const CHUNK: usize = 4 << 20;

/// Why an image cannot be read; every one names the file.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The compressed stream is damaged or ends early.
    #[error("{}: the {what} stream is damaged or ends early: {source}", path.display())]
    Decompress {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A sparse image that is not well formed.
    #[error("{}: a damaged Android sparse image: {why}", path.display())]
    DamagedSparse { path: PathBuf, why: String },
    /// The image ends before what its header or bmap describes.
    #[error("{}: the image ends at byte {at}, before the {expected} bytes its {by} describes", path.display())]
    Truncated { path: PathBuf, at: u64, expected: u64, by: &'static str },
    /// The bmap cannot be read.
    #[error("{}: not a bmap file bmaptool writes: {why}", path.display())]
    Bmap { path: PathBuf, why: String },
    /// A mapped range's data does not have the bmap's checksum.
    #[error("{}: bytes {start}..{end} do not match the SHA-256 in {}", path.display(), bmap.display())]
    Checksum { path: PathBuf, bmap: PathBuf, start: u64, end: u64 },
}

impl DiskError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DiskError::Read { .. } => "check the path and its permissions".into(),
            DiskError::Decompress { .. } | DiskError::Truncated { .. } => {
                "download the image again and check it against its published checksum".into()
            }
            DiskError::DamagedSparse { .. } => {
                "rebuild it (img2simg), or expand it with simg2img and write the raw image".into()
            }
            DiskError::Bmap { .. } => {
                "regenerate it with `bmaptool create IMAGE -o IMAGE.bmap`, or pass --no-bmap to write every byte".into()
            }
            DiskError::Checksum { .. } => {
                "the image and its .bmap do not belong together (or the image is damaged)".into()
            }
        })
    }
}

/// A compression the stream is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// What the (decompressed) content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    Raw,
    Sparse,
}

/// One piece of what the image puts on the medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extent {
    /// These bytes at this offset.
    Data { offset: u64, bytes: Vec<u8> },
    /// `len` bytes of the 4-byte little-endian pattern `value` (sparse FILL).
    Fill { offset: u64, len: u64, value: u32 },
    /// Leave `len` bytes at `offset` as they are (sparse DONT_CARE, or what
    /// a bmap leaves unmapped).
    Skip { offset: u64, len: u64 },
}

/// A disk image, opened and recognised.
#[derive(Debug)]
pub struct DiskImage {
    pub path: PathBuf,
    pub compression: Option<Compression>,
    pub content: Content,
    /// The bmap used, when one is.
    pub bmap: Option<PathBuf>,
    bmap_parsed: Option<bmap_parser::Bmap>,
    /// What the image expands to, when that is known before reading it all
    /// (raw files, sparse headers, bmaps, zstd frames that say).
    pub size: Option<u64>,
    /// How many bytes will actually be written, when known (a bmap's mapped
    /// ranges; a sparse image's RAW and FILL chunks).
    pub mapped: Option<u64>,
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> DiskError + '_ {
    move |source| DiskError::Read { path: path.into(), source }
}

/// The file's first 18 bytes (fewer when it is shorter): magics, and a
/// zstd frame header with its content size.
fn head(path: &Path) -> Result<Vec<u8>, DiskError> {
    let mut m = vec![0u8; 18];
    let f = File::open(path).map_err(read_err(path))?;
    let n = read_full(&mut f.take(18), &mut m).map_err(read_err(path))?;
    m.truncate(n);
    Ok(m)
}

fn compression_of(m: &[u8]) -> Option<Compression> {
    match m {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(Compression::Xz),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
        _ => None,
    }
}

const SPARSE_MAGIC: u32 = 0xed26_ff3a;

/// Where bmaptool puts an image's bmap: beside it, named after the image
/// with `.bmap` added, or with the compression suffix replaced by it
/// (`os.img.xz` → `os.img.xz.bmap`, `os.img.bmap`).
pub fn bmap_beside(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let mut names = vec![format!("{name}.bmap")];
    for ext in [".gz", ".xz", ".zst", ".bz2"] {
        if let Some(stem) = name.strip_suffix(ext) {
            names.push(format!("{stem}.bmap"));
        }
    }
    if let Some((stem, _)) = name.rsplit_once('.') {
        names.push(format!("{stem}.bmap"));
    }
    names.into_iter().map(|n| path.with_file_name(n)).find(|p| p.is_file())
}

impl DiskImage {
    /// Opens `path`; `bmap` is used when given (`None`: no bmap, even if
    /// one lies beside the image; see [`bmap_beside`]).
    pub fn open(path: &Path, bmap: Option<&Path>) -> Result<DiskImage, DiskError> {
        let m = head(path)?;
        let compression = compression_of(&m);
        let file_len = std::fs::metadata(path).map_err(read_err(path))?.len();
        let mut img = DiskImage {
            path: path.into(),
            compression,
            content: Content::Raw,
            bmap: None,
            bmap_parsed: None,
            size: compression.is_none().then_some(file_len),
            mapped: None,
        };
        // The content's first bytes, through the decompressor.
        let mut head = [0u8; 28];
        let mut r = img.stream()?;
        let got = read_full(&mut r, &mut head).map_err(|e| img.stream_err(e))?;
        if got >= 28 && u32::from_le_bytes(head[..4].try_into().expect("4")) == SPARSE_MAGIC {
            img.content = Content::Sparse;
            let blk = u32::from_le_bytes(head[12..16].try_into().expect("4"));
            let total = u32::from_le_bytes(head[16..20].try_into().expect("4"));
            img.size = Some(u64::from(blk) * u64::from(total));
        } else if compression == Some(Compression::Zstd) {
            img.size = zstd::zstd_safe::get_frame_content_size(&m).ok().flatten();
        }
        if let Some(b) = bmap {
            if img.content == Content::Sparse {
                return Err(DiskError::Bmap {
                    path: b.into(),
                    why: "the image is an Android sparse image, which maps its own blocks".into(),
                });
            }
            let xml = std::fs::read_to_string(b).map_err(read_err(b))?;
            let parsed = bmap_parser::Bmap::from_xml(&xml)
                .map_err(|e| DiskError::Bmap { path: b.into(), why: e.to_string() })?;
            img.size = Some(parsed.image_size());
            img.mapped = Some(parsed.total_mapped_size());
            img.bmap = Some(b.into());
            img.bmap_parsed = Some(parsed);
        }
        Ok(img)
    }

    fn stream_err(&self, e: std::io::Error) -> DiskError {
        match self.compression {
            Some(c) => DiskError::Decompress { path: self.path.clone(), what: c.name(), source: e },
            None => DiskError::Read { path: self.path.clone(), source: e },
        }
    }

    /// The content as a byte stream (decompressed as it is read).
    fn stream(&self) -> Result<Box<dyn Read + Send>, DiskError> {
        let f = BufReader::with_capacity(1 << 20, File::open(&self.path).map_err(read_err(&self.path))?);
        Ok(match self.compression {
            None => Box::new(f),
            Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(f)),
            Some(Compression::Xz) => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
            Some(Compression::Zstd) => {
                Box::new(zstd::stream::read::Decoder::with_buffer(f).map_err(|e| self.stream_err(e))?)
            }
        })
    }

    /// What the image puts on the medium, in order of offset.
    pub fn extents(&self) -> Result<Extents, DiskError> {
        let state = match (self.content, &self.bmap_parsed) {
            (Content::Sparse, _) => State::Sparse { chunks_left: None, blk: 0, chunk_hdr: 0 },
            (Content::Raw, Some(b)) => {
                // The last block may run past the image's end; its checksum
                // covers the image's bytes only (bmaptool).
                let end = b.image_size();
                let ranges: Vec<_> = b
                    .block_map()
                    .filter(|r| r.offset() < end)
                    .map(|r| (r.offset(), r.length().min(end - r.offset()), r.checksum()))
                    .collect();
                State::Bmap { ranges: ranges.into_iter(), current: None }
            }
            (Content::Raw, None) => State::Raw,
        };
        Ok(Extents {
            img_path: self.path.clone(),
            bmap_path: self.bmap.clone(),
            src: self.stream()?,
            pos: 0,
            out: 0,
            pending: 0,
            state,
            compression: self.compression,
            size: self.size,
        })
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

enum State {
    Raw,
    Sparse {
        chunks_left: Option<u32>,
        blk: u64,
        chunk_hdr: u64,
    },
    Bmap {
        ranges: std::vec::IntoIter<(u64, u64, bmap_parser::HashValue)>,
        /// The range being read: (end, checksum so far, expected, start).
        current: Option<(u64, Sha256, bmap_parser::HashValue, u64)>,
    },
}

/// The [`Extent`]s of a [`DiskImage`], read as they are asked for.
pub struct Extents {
    img_path: PathBuf,
    bmap_path: Option<PathBuf>,
    src: Box<dyn Read + Send>,
    /// Bytes of the content stream read so far.
    pos: u64,
    /// Where on the medium the next extent starts.
    out: u64,
    /// What is left of a sparse RAW chunk longer than [`CHUNK`].
    pending: u64,
    state: State,
    compression: Option<Compression>,
    size: Option<u64>,
}

impl Extents {
    fn err(&self, e: std::io::Error) -> DiskError {
        match self.compression {
            Some(c) => DiskError::Decompress { path: self.img_path.clone(), what: c.name(), source: e },
            None => DiskError::Read { path: self.img_path.clone(), source: e },
        }
    }

    /// Reads exactly `n` bytes of the stream, or says where it ended.
    fn take(&mut self, n: usize, expected: u64, by: &'static str) -> Result<Vec<u8>, DiskError> {
        let mut b = vec![0u8; n];
        let got = read_full(&mut self.src, &mut b).map_err(|e| self.err(e))?;
        self.pos += got as u64;
        if got < n {
            return Err(DiskError::Truncated { path: self.img_path.clone(), at: self.pos, expected, by });
        }
        Ok(b)
    }

    /// Reads and drops `n` bytes of the stream.
    fn discard(&mut self, n: u64, expected: u64, by: &'static str) -> Result<(), DiskError> {
        let got =
            std::io::copy(&mut (&mut self.src).take(n), &mut std::io::sink()).map_err(|e| self.err(e))?;
        self.pos += got;
        if got < n {
            return Err(DiskError::Truncated { path: self.img_path.clone(), at: self.pos, expected, by });
        }
        Ok(())
    }

    fn next_raw(&mut self) -> Option<Result<Extent, DiskError>> {
        let mut b = vec![0u8; CHUNK];
        match read_full(&mut self.src, &mut b) {
            Ok(0) => None,
            Ok(n) => {
                b.truncate(n);
                let offset = self.out;
                self.out += n as u64;
                self.pos += n as u64;
                Some(Ok(Extent::Data { offset, bytes: b }))
            }
            Err(e) => Some(Err(self.err(e))),
        }
    }

    fn next_sparse(&mut self) -> Option<Result<Extent, DiskError>> {
        let damaged = |p: &Path, why: String| DiskError::DamagedSparse { path: p.into(), why };
        if let State::Sparse { chunks_left: None, .. } = self.state {
            let h = match self.take(28, 28, "sparse header") {
                Ok(h) => h,
                Err(e) => return Some(Err(e)),
            };
            let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
            let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4"));
            if u16_at(4) != 1 || u16_at(8) < 28 || u16_at(10) < 12 {
                return Some(Err(damaged(
                    &self.img_path,
                    format!(
                        "version {}.{} with header sizes {} and {}",
                        u16_at(4),
                        u16_at(6),
                        u16_at(8),
                        u16_at(10)
                    ),
                )));
            }
            let blk = u64::from(u32_at(12));
            if blk == 0 || blk % 4 != 0 {
                return Some(Err(damaged(
                    &self.img_path,
                    format!("block size {blk} is not a multiple of 4"),
                )));
            }
            if let Err(e) = self.discard(u64::from(u16_at(8)) - 28, 28, "sparse header") {
                return Some(Err(e));
            }
            self.state =
                State::Sparse { chunks_left: Some(u32_at(20)), blk, chunk_hdr: u64::from(u16_at(10)) };
        }
        let State::Sparse { chunks_left: Some(left), blk, chunk_hdr } = self.state else { return None };
        if left == 0 {
            return match self.size {
                Some(s) if s != self.out => Some(Err(damaged(
                    &self.img_path,
                    format!("its chunks cover {} bytes, but the header says {s}", self.out),
                ))),
                _ => None,
            };
        }
        self.state = State::Sparse { chunks_left: Some(left - 1), blk, chunk_hdr };
        let h = match self.take(12, 12, "sparse chunk header") {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        if let Err(e) = self.discard(chunk_hdr - 12, chunk_hdr, "sparse chunk header") {
            return Some(Err(e));
        }
        let kind = u16::from_le_bytes([h[0], h[1]]);
        let blocks = u64::from(u32::from_le_bytes(h[4..8].try_into().expect("4")));
        let total = u64::from(u32::from_le_bytes(h[8..12].try_into().expect("4")));
        let len = blocks * blk;
        let offset = self.out;
        let data = total.checked_sub(chunk_hdr);
        let r = match (kind, data) {
            (0xcac1, Some(d)) if d == len => {
                // A RAW chunk larger than CHUNK comes out as several extents.
                self.pending = len;
                return self.next_pending();
            }
            (0xcac2, Some(4)) => self.take(4, 4, "sparse FILL chunk").map(|v| Extent::Fill {
                offset,
                len,
                value: u32::from_le_bytes(v[..4].try_into().expect("4")),
            }),
            (0xcac3, Some(0)) => Ok(Extent::Skip { offset, len }),
            (0xcac4, Some(4)) => match self.discard(4, 4, "sparse CRC32 chunk") {
                Ok(()) => return self.next_sparse(),
                Err(e) => Err(e),
            },
            (0xcac1..=0xcac4, _) => Err(damaged(
                &self.img_path,
                format!("chunk {kind:x} at byte {}: its sizes do not agree", self.pos),
            )),
            _ => Err(damaged(&self.img_path, format!("unknown chunk type {kind:x} at byte {}", self.pos))),
        };
        if r.is_ok() {
            self.out += len;
        }
        Some(r)
    }

    /// The next piece (at most [`CHUNK`]) of a sparse RAW chunk.
    fn next_pending(&mut self) -> Option<Result<Extent, DiskError>> {
        let n = self.pending.min(CHUNK as u64);
        let expected = self.pending;
        let offset = self.out;
        Some(self.take(n as usize, expected, "sparse RAW chunk").map(|bytes| {
            self.pending -= n;
            self.out += n;
            Extent::Data { offset, bytes }
        }))
    }

    fn next_bmap(&mut self) -> Option<Result<Extent, DiskError>> {
        let bmap = self.bmap_path.clone().unwrap_or_default();
        loop {
            let State::Bmap { ranges, current } = &mut self.state else { return None };
            if let Some((end, _, _, _)) = current
                && self.out >= *end
            {
                let (end, hasher, want, start) = current.take().expect("checked");
                if hasher.finalize().as_slice() != want.as_slice() {
                    return Some(Err(DiskError::Checksum { path: self.img_path.clone(), bmap, start, end }));
                }
                continue;
            }
            if current.is_none() {
                let (off, len, sum) = ranges.next()?;
                *current = Some((off + len, Sha256::new(), sum, off));
                let gap = off.saturating_sub(self.out);
                if gap > 0 {
                    let expected = off + len;
                    if let Err(e) = self.discard(gap, expected, "bmap") {
                        return Some(Err(e));
                    }
                    let skip = Extent::Skip { offset: self.out, len: gap };
                    self.out += gap;
                    return Some(Ok(skip));
                }
            }
            let State::Bmap { current: Some((end, _, _, _)), .. } = &self.state else { return None };
            let end = *end;
            let n = (end - self.out).min(CHUNK as u64) as usize;
            let bytes = match self.take(n, end, "bmap") {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            if let State::Bmap { current: Some((_, h, _, _)), .. } = &mut self.state {
                h.update(&bytes);
            }
            let offset = self.out;
            self.out += n as u64;
            return Some(Ok(Extent::Data { offset, bytes }));
        }
    }
}

impl Iterator for Extents {
    type Item = Result<Extent, DiskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pending > 0 {
            return self.next_pending();
        }
        match self.state {
            State::Raw => self.next_raw(),
            State::Sparse { .. } => self.next_sparse(),
            State::Bmap { .. } => self.next_bmap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn noise(n: usize, seed: u32) -> Vec<u8> {
        (0..n as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8).collect()
    }

    /// The medium an image leaves, written from its extents onto `base`.
    fn apply(img: &DiskImage, base: &[u8]) -> Result<Vec<u8>, DiskError> {
        let mut m = base.to_vec();
        for e in img.extents()? {
            match e? {
                Extent::Data { offset, bytes } => {
                    let o = offset as usize;
                    if m.len() < o + bytes.len() {
                        m.resize(o + bytes.len(), 0);
                    }
                    m[o..o + bytes.len()].copy_from_slice(&bytes);
                }
                Extent::Fill { offset, len, value } => {
                    let (o, n) = (offset as usize, len as usize);
                    if m.len() < o + n {
                        m.resize(o + n, 0);
                    }
                    for (i, b) in m[o..o + n].iter_mut().enumerate() {
                        *b = value.to_le_bytes()[i % 4];
                    }
                }
                Extent::Skip { offset, len } => {
                    if m.len() < (offset + len) as usize {
                        m.resize((offset + len) as usize, 0);
                    }
                }
            }
        }
        Ok(m)
    }

    fn compress(kind: Compression, data: &[u8]) -> Vec<u8> {
        match kind {
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::stream::encode_all(data, 1).unwrap(),
        }
    }

    /// A sparse image written from AOSP's `sparse_format.h`: RAW, DONT_CARE,
    /// FILL, CRC32.
    fn sparse(blk: u32, chunks: &[(u16, u32, Vec<u8>)]) -> Vec<u8> {
        let total: u32 = chunks.iter().filter(|c| c.0 != 0xcac4).map(|c| c.1).sum();
        let mut b = Vec::new();
        b.extend(SPARSE_MAGIC.to_le_bytes());
        b.extend([1, 0, 0, 0, 28, 0, 12, 0]);
        b.extend(blk.to_le_bytes());
        b.extend(total.to_le_bytes());
        b.extend((chunks.len() as u32).to_le_bytes());
        b.extend(0u32.to_le_bytes());
        for (kind, n, data) in chunks {
            b.extend(kind.to_le_bytes());
            b.extend([0, 0]);
            b.extend(n.to_le_bytes());
            b.extend((12 + data.len() as u32).to_le_bytes());
            b.extend(data);
        }
        b
    }

    #[test]
    fn raw_and_compressed_raw_images_stream_to_the_same_bytes() {
        let d = tempfile::tempdir().unwrap();
        let raw = noise(9 << 20, 1);
        let p = d.path().join("os.img");
        std::fs::write(&p, &raw).unwrap();
        let img = DiskImage::open(&p, None).unwrap();
        assert_eq!((img.compression, img.content, img.size), (None, Content::Raw, Some(raw.len() as u64)));
        assert_eq!(apply(&img, &[]).unwrap(), raw);
        for kind in [Compression::Gzip, Compression::Xz, Compression::Zstd] {
            let p = d.path().join(format!("os.img.{}", kind.name()));
            std::fs::write(&p, compress(kind, &raw)).unwrap();
            let img = DiskImage::open(&p, None).unwrap();
            assert_eq!((img.compression, img.content), (Some(kind), Content::Raw));
            assert_eq!(apply(&img, &[]).unwrap(), raw, "{kind:?}");
            // Cut short: the decompressor says so, naming the file.
            let c = compress(kind, &raw);
            std::fs::write(&p, &c[..c.len() / 2]).unwrap();
            let e = apply(&DiskImage::open(&p, None).unwrap(), &[]).unwrap_err();
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
            assert!(matches!(e, DiskError::Decompress { .. }), "{kind:?}: {e}");
        }
    }

    #[test]
    fn sparse_images_plain_and_compressed_leave_what_their_chunks_say() {
        let d = tempfile::tempdir().unwrap();
        let a = noise(8192, 2);
        let big = noise(CHUNK + 4096 * 3, 3);
        let img = sparse(
            4096,
            &[
                (0xcac1, 2, a.clone()),
                (0xcac3, 3, vec![]),
                (0xcac2, 2, vec![1, 2, 3, 4]),
                (0xcac4, 0, vec![0; 4]),
                (0xcac1, (big.len() / 4096) as u32, big.clone()),
            ],
        );
        let base = vec![0xee; 4096 * 8];
        let mut want = base.clone();
        want[..8192].copy_from_slice(&a);
        for (i, b) in want[5 * 4096..7 * 4096].iter_mut().enumerate() {
            *b = [1, 2, 3, 4][i % 4];
        }
        want.resize(7 * 4096, 0);
        want.extend(&big);
        for (name, bytes) in [("s.simg", img.clone()), ("s.simg.gz", compress(Compression::Gzip, &img))] {
            let p = d.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            let di = DiskImage::open(&p, None).unwrap();
            assert_eq!(di.content, Content::Sparse, "{name}");
            assert_eq!(di.size, Some(want.len() as u64), "{name}");
            let got = apply(&di, &base).unwrap();
            assert!(got == want, "{name}");
            // No extent holds more than CHUNK bytes, however long the RAW chunk.
            assert!(
                di.extents()
                    .unwrap()
                    .all(|e| !matches!(e, Ok(Extent::Data { bytes, .. }) if bytes.len() > CHUNK))
            );
        }
        // Damaged: a short file, and chunks that do not add up.
        let p = d.path().join("bad.simg");
        std::fs::write(&p, &img[..img.len() - 100]).unwrap();
        let e = apply(&DiskImage::open(&p, None).unwrap(), &[]).unwrap_err();
        assert!(matches!(e, DiskError::Truncated { .. }), "{e}");
        let mut lie = img.clone();
        lie[16..20].copy_from_slice(&99u32.to_le_bytes());
        std::fs::write(&p, &lie).unwrap();
        let e = apply(&DiskImage::open(&p, None).unwrap(), &[]).unwrap_err();
        assert!(e.to_string().contains("but the header says"), "{e}");
        // A chunk claiming 1 GiB of RAW data in a small file is not read into memory.
        let huge = sparse(4096, &[(0xcac1, 1 << 18, vec![])]);
        let mut huge = huge;
        huge[28 + 8..28 + 12].copy_from_slice(&(12u32 + (1u32 << 18) * 4096).to_le_bytes());
        std::fs::write(&p, &huge).unwrap();
        let e = apply(&DiskImage::open(&p, None).unwrap(), &[]).unwrap_err();
        assert!(matches!(e, DiskError::Truncated { .. }), "{e}");
    }

    /// A bmap as bmaptool 3.x writes it (format 2.0, SHA-256 per range).
    fn bmap_xml(image_size: u64, block: u64, ranges: &[(u64, u64, [u8; 32])]) -> String {
        let blocks = image_size.div_ceil(block);
        let mapped: u64 = ranges.iter().map(|r| r.1 - r.0 + 1).sum();
        let mut x = format!(
            "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n<ImageSize> {image_size} </ImageSize>\n<BlockSize> {block} </BlockSize>\n<BlocksCount> {blocks} </BlocksCount>\n<MappedBlocksCount> {mapped} </MappedBlocksCount>\n<ChecksumType> sha256 </ChecksumType>\n<BmapFileChecksum> {} </BmapFileChecksum>\n<BlockMap>\n",
            "0".repeat(64)
        );
        for (a, b, sum) in ranges {
            let hexsum: String = sum.iter().map(|b| format!("{b:02x}")).collect();
            let r = if a == b { format!("{a}") } else { format!("{a}-{b}") };
            x.push_str(&format!("<Range chksum=\"{hexsum}\"> {r} </Range>\n"));
        }
        x.push_str("</BlockMap>\n</bmap>\n");
        x
    }

    #[test]
    fn a_bmap_writes_only_its_ranges_and_checks_each_one() {
        let d = tempfile::tempdir().unwrap();
        let block = 4096u64;
        let mut raw = vec![0u8; 64 * 4096 + 100];
        raw[..3 * 4096].copy_from_slice(&noise(3 * 4096, 4));
        let tail = noise(4096 + 100, 5);
        raw[63 * 4096..].copy_from_slice(&tail);
        let sum = |r: &[u8]| -> [u8; 32] { Sha256::digest(r).into() };
        let ranges = [(0, 2, sum(&raw[..3 * 4096])), (63, 64, sum(&raw[63 * 4096..]))];
        let p = d.path().join("os.img");
        std::fs::write(&p, &raw).unwrap();
        let bm = d.path().join("os.img.bmap");
        std::fs::write(&bm, bmap_xml(raw.len() as u64, block, &ranges)).unwrap();
        assert_eq!(bmap_beside(&p), Some(bm.clone()));
        let gz = d.path().join("os.img.gz");
        std::fs::write(&gz, compress(Compression::Gzip, &raw)).unwrap();
        assert_eq!(bmap_beside(&gz), Some(bm.clone()), "os.img.gz → os.img.bmap");
        for path in [&p, &gz] {
            let img = DiskImage::open(path, Some(&bm)).unwrap();
            assert_eq!(img.size, Some(raw.len() as u64));
            assert_eq!(img.mapped, Some(5 * 4096));
            let written: u64 = img
                .extents()
                .unwrap()
                .map(|e| match e.unwrap() {
                    Extent::Data { bytes, .. } => bytes.len() as u64,
                    _ => 0,
                })
                .sum();
            assert_eq!(written, 3 * 4096 + 4096 + 100, "only the mapped ranges, up to the image's end");
            let base = vec![0x77; raw.len()];
            let got = apply(&img, &base).unwrap();
            assert_eq!(&got[..3 * 4096], &raw[..3 * 4096]);
            assert!(got[3 * 4096..63 * 4096].iter().all(|&b| b == 0x77), "unmapped blocks are left alone");
            assert_eq!(&got[63 * 4096..], &raw[63 * 4096..]);
        }
        // An image that does not match its bmap.
        let mut other = raw.clone();
        other[4096] ^= 1;
        std::fs::write(&p, &other).unwrap();
        let e = apply(&DiskImage::open(&p, Some(&bm)).unwrap(), &[]).unwrap_err();
        assert!(matches!(e, DiskError::Checksum { start: 0, end: 12288, .. }), "{e}");
        std::fs::write(&bm, "<bmap version=\"2.0\">").unwrap();
        assert!(matches!(DiskImage::open(&p, Some(&bm)), Err(DiskError::Bmap { .. })));
    }
}
