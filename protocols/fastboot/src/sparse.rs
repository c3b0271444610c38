//! Images for `flash:`: raw or Android sparse, checked before anything is
//! sent, and cut into pieces that each fit one download.
//!
//! An image larger than the download limit (the device's
//! `max-download-size`, or `--sparse-limit` as AOSP fastboot's `-S`) goes
//! as a series of Android sparse images, each within the limit: every piece
//! starts with a DONT_CARE run up to where its data begins, so written one
//! after the other to the same partition they rebuild it exactly, as
//! libsparse's re-sparsing does. The header and chunk layouts and the
//! splitting are the `android-sparse-image` crate's (Collabora, the crate
//! behind fastboot-protocol); this module reads the file, checks it, and
//! streams each piece from it without holding the image in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use android_sparse_image::split::{Split, split_image, split_raw};
use android_sparse_image::{
    CHUNK_HEADER_BYTES_LEN, ChunkHeader, ChunkType, FILE_HEADER_BYTES_LEN, FileHeader, HEADER_MAGIC,
};
use racklet_link::{Classify, FailureClass};

use crate::FastbootError;

/// Why an image cannot be flashed as it is; all bad input, exit 2.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file has the sparse magic but is not a well-formed sparse image.
    #[error("{}: a damaged Android sparse image: {why}", path.display())]
    DamagedSparse { path: PathBuf, why: String },
    /// The download limit cannot hold even one block with its headers.
    #[error("{}: a download limit of {limit} bytes cannot hold one {block}-byte block of it with the sparse headers", path.display())]
    LimitTooSmall { path: PathBuf, limit: u64, block: u32 },
    /// Larger than a sparse image can describe (u32 block counts).
    #[error("{}: {len} bytes is larger than an Android sparse image can hold", path.display())]
    TooLarge { path: PathBuf, len: u64 },
}

impl Classify for ImageFileError {
    fn class(&self) -> FailureClass {
        FailureClass::BadInput
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            ImageFileError::Read { .. } => "check the path".into(),
            ImageFileError::DamagedSparse { .. } => {
                "rebuild it (img2simg), or expand it with simg2img and write the raw image".into()
            }
            ImageFileError::LimitTooSmall { .. } => "raise --sparse-limit".into(),
            ImageFileError::TooLarge { .. } => return None,
        })
    }
}

/// What kind of image a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Raw,
    Sparse { header: FileHeader, chunks: Vec<ChunkHeader> },
}

/// One image file to flash, checked.
#[derive(Debug, Clone)]
pub struct ImageFile {
    pub path: PathBuf,
    /// Its length on disk.
    pub len: u64,
    pub kind: Kind,
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> ImageFileError + '_ {
    move |source| ImageFileError::Read { path: path.into(), source }
}

impl ImageFile {
    /// Opens and checks `path`: a sparse image (magic 0xed26ff3a) must have
    /// a known header, well-formed chunks whose data lies in the file, and
    /// chunks that add up to the header's block count (what U-Boot's
    /// `write_sparse_image` checks on the device, said here before the
    /// first byte is sent).
    pub fn open(path: &Path) -> Result<ImageFile, ImageFileError> {
        let mut f = File::open(path).map_err(read_err(path))?;
        let len = f.metadata().map_err(read_err(path))?.len();
        let mut magic = [0u8; 4];
        let is_sparse = len >= 4 && {
            f.read_exact(&mut magic).map_err(read_err(path))?;
            u32::from_le_bytes(magic) == HEADER_MAGIC
        };
        if !is_sparse {
            return Ok(ImageFile { path: path.into(), len, kind: Kind::Raw });
        }
        let damaged = |why: String| ImageFileError::DamagedSparse { path: path.into(), why };
        f.seek(SeekFrom::Start(0)).map_err(read_err(path))?;
        let mut hb = [0u8; FILE_HEADER_BYTES_LEN];
        f.read_exact(&mut hb).map_err(|_| damaged("the file ends inside its 28-byte header".into()))?;
        let header = FileHeader::from_bytes(&hb).map_err(|e| damaged(format!("header: {e}")))?;
        if header.block_size == 0 || header.block_size % 4 != 0 {
            return Err(damaged(format!("block size {} is not a multiple of 4", header.block_size)));
        }
        let mut chunks = Vec::with_capacity(header.chunks.min(1 << 16) as usize);
        let mut at = FILE_HEADER_BYTES_LEN as u64;
        let mut blocks: u64 = 0;
        for i in 0..header.chunks {
            let mut cb = [0u8; CHUNK_HEADER_BYTES_LEN];
            f.read_exact(&mut cb).map_err(|_| {
                damaged(format!("the file ends inside chunk {i}'s header (of {})", header.chunks))
            })?;
            let c = ChunkHeader::from_bytes(&cb).map_err(|e| damaged(format!("chunk {i}: {e}")))?;
            let data = c.data_size() as u64;
            if u64::from(c.total_size) != CHUNK_HEADER_BYTES_LEN as u64 + data
                || (c.chunk_type == ChunkType::Raw
                    && data != u64::from(c.chunk_size) * u64::from(header.block_size))
            {
                return Err(damaged(format!(
                    "chunk {i}: its sizes do not agree ({} bytes in all)",
                    c.total_size
                )));
            }
            at += CHUNK_HEADER_BYTES_LEN as u64 + data;
            if at > len {
                return Err(damaged(format!("chunk {i}'s data runs past the end of the file")));
            }
            f.seek(SeekFrom::Start(at)).map_err(read_err(path))?;
            blocks += u64::from(c.chunk_size);
            chunks.push(c);
        }
        if blocks != u64::from(header.blocks) {
            return Err(damaged(format!(
                "its chunks hold {blocks} blocks, but the header says {}",
                header.blocks
            )));
        }
        Ok(ImageFile { path: path.into(), len, kind: Kind::Sparse { header, chunks } })
    }

    /// What the image expands to on the device.
    pub fn expanded(&self) -> u64 {
        match &self.kind {
            Kind::Raw => self.len,
            Kind::Sparse { header, .. } => u64::from(header.blocks) * u64::from(header.block_size),
        }
    }

    /// The downloads that carry it within `limit` bytes each (`None`: the
    /// file as it is, in one download).
    pub fn pieces(&self, limit: Option<u64>) -> Result<Vec<Piece>, ImageFileError> {
        let fits = |n: u64| limit.is_none_or(|l| n <= l) && u32::try_from(n).is_ok();
        if fits(self.len) {
            return Ok(vec![Piece::Whole { len: self.len as u32 }]);
        }
        let limit = limit.unwrap_or(u64::from(u32::MAX)).min(u64::from(u32::MAX)) as u32;
        let too_small =
            |block| ImageFileError::LimitTooSmall { path: self.path.clone(), limit: limit.into(), block };
        let splits = match &self.kind {
            Kind::Raw => {
                let raw =
                    usize::try_from(self.len)
                        .ok()
                        .filter(|&n| n.div_ceil(4096) <= u32::MAX as usize)
                        .ok_or_else(|| ImageFileError::TooLarge { path: self.path.clone(), len: self.len })?;
                split_raw(raw, limit).map_err(|_| too_small(4096))?
            }
            Kind::Sparse { header, chunks } => {
                split_image(header, chunks, limit).map_err(|_| too_small(header.block_size))?
            }
        };
        Ok(splits.into_iter().map(Piece::Sparse).collect())
    }
}

/// Why an image's extents cannot be cut into sparse pieces.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Disk(#[from] racklet_image::disk::DiskError),
    /// Sparse images count whole blocks.
    #[error("{}: data at byte {offset} is not on a {BLOCK}-byte block boundary, so it cannot go as a sparse image", path.display())]
    Unaligned { path: PathBuf, offset: u64 },
    /// The limit cannot hold a header, a DONT_CARE and one block.
    #[error("a download limit of {limit} bytes cannot hold one {BLOCK}-byte block with the sparse headers")]
    LimitTooSmall { limit: u32 },
}

/// The block size of the sparse images made from extents.
pub const BLOCK: u64 = 4096;

/// Cuts an image's extents into Android sparse images of at most `limit`
/// bytes each, handing each finished one to `emit` (in memory: a piece is
/// at most one download). Every piece covers the partition from its start:
/// a DONT_CARE run up to its first chunk, so written in turn they rebuild
/// the image; the last block of data is padded with zeros.
pub struct Encoder {
    path: PathBuf,
    limit: u32,
    piece: Vec<u8>,
    chunks: u32,
    /// Blocks the current piece covers (its `total_blks` so far).
    blocks: u64,
    /// Whether the current piece holds anything but its leading DONT_CARE.
    useful: bool,
}

impl Encoder {
    pub fn new(path: &Path, limit: u32) -> Result<Encoder, EncodeError> {
        if u64::from(limit) < FILE_HEADER_BYTES_LEN as u64 + 2 * CHUNK_HEADER_BYTES_LEN as u64 + BLOCK {
            return Err(EncodeError::LimitTooSmall { limit });
        }
        let mut e =
            Encoder { path: path.into(), limit, piece: Vec::new(), chunks: 0, blocks: 0, useful: false };
        e.start(0);
        Ok(e)
    }

    fn start(&mut self, at_blocks: u64) {
        self.piece.clear();
        self.piece.resize(FILE_HEADER_BYTES_LEN, 0);
        self.chunks = 0;
        self.blocks = 0;
        self.useful = false;
        if at_blocks > 0 {
            self.dont_care(at_blocks);
        }
    }

    fn room(&self) -> u64 {
        u64::from(self.limit).saturating_sub(self.piece.len() as u64)
    }

    fn chunk(&mut self, kind: ChunkType, blocks: u64, data: &[u8]) {
        let h = ChunkHeader {
            chunk_type: kind,
            chunk_size: blocks as u32,
            total_size: (CHUNK_HEADER_BYTES_LEN + data.len()) as u32,
        };
        self.piece.extend_from_slice(&h.to_bytes());
        self.piece.extend_from_slice(data);
        self.chunks += 1;
        self.blocks += blocks;
    }

    fn dont_care(&mut self, blocks: u64) {
        let mut left = blocks;
        while left > 0 {
            let n = left.min(u64::from(u32::MAX));
            self.chunk(ChunkType::DontCare, n, &[]);
            left -= n;
        }
    }

    /// Ends the current piece and starts the next one where it ended.
    fn flush(
        &mut self,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<(), FastbootError>,
    ) -> Result<(), FastbootError> {
        if self.useful {
            let header = FileHeader {
                block_size: BLOCK as u32,
                blocks: self.blocks as u32,
                chunks: self.chunks,
                checksum: 0,
            };
            self.piece[..FILE_HEADER_BYTES_LEN].copy_from_slice(&header.to_bytes());
            let next = self.blocks;
            emit(std::mem::take(&mut self.piece))?;
            self.start(next);
        }
        Ok(())
    }

    /// Adds one extent.
    pub fn push(
        &mut self,
        e: racklet_image::disk::Extent,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<(), FastbootError>,
    ) -> Result<(), StorageEncodeError> {
        use racklet_image::disk::Extent;
        let offset = match &e {
            Extent::Data { offset, .. } | Extent::Fill { offset, .. } | Extent::Skip { offset, .. } => {
                *offset
            }
        };
        if offset % BLOCK != 0 {
            return Err(EncodeError::Unaligned { path: self.path.clone(), offset }.into());
        }
        let at = offset / BLOCK;
        if at > self.blocks {
            self.dont_care(at - self.blocks);
        }
        match e {
            Extent::Data { bytes, .. } => {
                let mut rest: &[u8] = &bytes;
                while !rest.is_empty() {
                    let fit = self.room().saturating_sub(CHUNK_HEADER_BYTES_LEN as u64) / BLOCK;
                    if fit == 0 {
                        self.flush(emit)?;
                        continue;
                    }
                    let take_blocks = fit.min((rest.len() as u64).div_ceil(BLOCK));
                    let n = ((take_blocks * BLOCK) as usize).min(rest.len());
                    let mut data = rest[..n].to_vec();
                    data.resize((take_blocks * BLOCK) as usize, 0);
                    self.chunk(ChunkType::Raw, take_blocks, &data);
                    self.useful = true;
                    rest = &rest[n..];
                }
            }
            Extent::Fill { len, value, .. } => {
                if len % BLOCK != 0 {
                    return Err(
                        EncodeError::Unaligned { path: self.path.clone(), offset: offset + len }.into()
                    );
                }
                if self.room() < (CHUNK_HEADER_BYTES_LEN + 4) as u64 {
                    self.flush(emit)?;
                }
                self.chunk(ChunkType::Fill, len / BLOCK, &value.to_le_bytes());
                self.useful = true;
            }
            Extent::Skip { len, .. } => {
                if self.room() < CHUNK_HEADER_BYTES_LEN as u64 {
                    self.flush(emit)?;
                }
                self.dont_care(len.div_ceil(BLOCK));
            }
        }
        Ok(())
    }

    /// Emits the last piece.
    pub fn finish(
        mut self,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<(), FastbootError>,
    ) -> Result<(), FastbootError> {
        self.flush(emit)
    }
}

/// An extent could not be encoded, or sending a piece failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageEncodeError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Fastboot(#[from] FastbootError),
}

/// One download of an image.
#[derive(Debug, Clone)]
pub enum Piece {
    /// The file as it is.
    Whole { len: u32 },
    /// A sparse image made of parts of the file.
    Sparse(Split),
}

impl Piece {
    /// Its length on the wire.
    pub fn len(&self) -> u32 {
        match self {
            Piece::Whole { len } => *len,
            Piece::Sparse(s) => s.sparse_size() as u32,
        }
    }

    /// True when it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader of the piece's bytes, taken from `file` as they are read.
    pub fn reader<'f>(&'f self, file: &'f mut File) -> PieceReader<'f> {
        PieceReader { piece: self, file, part: 0, pos: 0, head: Vec::new() }
    }
}

/// Streams one [`Piece`]: headers made here, data read from the file, the
/// last RAW block of a raw image padded with zeros to the block size.
pub struct PieceReader<'f> {
    piece: &'f Piece,
    file: &'f mut File,
    /// 0: the file header (or the whole file); then 2k+1: chunk k's header,
    /// 2k+2: chunk k's data.
    part: usize,
    /// How far into the current part.
    pos: u64,
    head: Vec<u8>,
}

impl Read for PieceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let split = match self.piece {
            Piece::Whole { .. } => {
                if self.part == 0 {
                    self.file.seek(SeekFrom::Start(0))?;
                    self.part = 1;
                }
                return self.file.read(buf);
            }
            Piece::Sparse(s) => s,
        };
        loop {
            if self.part == 0 && self.head.is_empty() && self.pos == 0 {
                self.head = split.header.to_bytes().to_vec();
            }
            let k = self.part.saturating_sub(1) / 2;
            if self.part > 0 && k >= split.chunks.len() {
                return Ok(0);
            }
            let is_data = self.part > 0 && self.part.is_multiple_of(2);
            if !is_data {
                if self.head.is_empty() && self.pos == 0 {
                    self.head = split.chunks[k].header.to_bytes().to_vec();
                }
                let left = &self.head[self.pos as usize..];
                if left.is_empty() {
                    self.head.clear();
                    self.part += 1;
                    self.pos = 0;
                    continue;
                }
                let n = left.len().min(buf.len());
                buf[..n].copy_from_slice(&left[..n]);
                self.pos += n as u64;
                return Ok(n);
            }
            let c = &split.chunks[k];
            let want = c.header.data_size() as u64;
            if self.pos >= want {
                self.part += 1;
                self.pos = 0;
                continue;
            }
            let n = (want - self.pos).min(buf.len() as u64) as usize;
            // The file's bytes where it has them (`size` of them), zeros after.
            let from_file = (c.size as u64).saturating_sub(self.pos).min(n as u64) as usize;
            if from_file > 0 {
                self.file.seek(SeekFrom::Start(c.offset as u64 + self.pos))?;
                let got = self.file.read(&mut buf[..from_file])?;
                if got == 0 {
                    // A raw image's last block: the file ends before it does.
                    buf[..n].fill(0);
                } else {
                    self.pos += got as u64;
                    return Ok(got);
                }
            } else {
                buf[..n].fill(0);
            }
            self.pos += n as u64;
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_file(dir: &Path, n: usize) -> (PathBuf, Vec<u8>) {
        let b: Vec<u8> = (0..n).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect();
        let p = dir.join("raw.img");
        std::fs::write(&p, &b).unwrap();
        (p, b)
    }

    /// Expands a sparse image the way the format defines (written for this
    /// test from the AOSP `sparse_format.h` layout, not from the crate).
    fn expand(img: &[u8], into: &mut Vec<u8>) {
        let le32 = |at: usize| u32::from_le_bytes(img[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!(le32(0), 0xed26ff3a);
        let (hdr, chdr, blk, chunks) = (
            u16::from_le_bytes([img[8], img[9]]) as usize,
            u16::from_le_bytes([img[10], img[11]]) as usize,
            le32(12),
            le32(20),
        );
        let (mut pos, mut at) = (hdr, 0usize);
        for _ in 0..chunks {
            let kind = u16::from_le_bytes([img[pos], img[pos + 1]]);
            let (n, total) = (le32(pos + 4), le32(pos + 8));
            let data = &img[pos + chdr..pos + total];
            if into.len() < at + n * blk {
                into.resize(at + n * blk, 0);
            }
            match kind {
                0xcac1 => into[at..at + n * blk].copy_from_slice(data),
                0xcac2 => into[at..at + n * blk].iter_mut().enumerate().for_each(|(i, b)| *b = data[i % 4]),
                0xcac3 => {}
                k => panic!("chunk type {k:x}"),
            }
            at += n * blk;
            pos += total;
        }
    }

    #[test]
    fn a_raw_image_over_the_limit_becomes_sparse_pieces_that_rebuild_it() {
        let d = tempfile::tempdir().unwrap();
        let (p, want) = raw_file(d.path(), 1_000_003);
        let img = ImageFile::open(&p).unwrap();
        assert_eq!(img.kind, Kind::Raw);
        assert_eq!(img.pieces(None).unwrap().len(), 1);
        let pieces = img.pieces(Some(300_000)).unwrap();
        assert!(pieces.len() >= 4, "{}", pieces.len());
        let mut disk = Vec::new();
        let mut f = File::open(&p).unwrap();
        for piece in &pieces {
            let mut bytes = Vec::new();
            piece.reader(&mut f).read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes.len(), piece.len() as usize);
            assert!(bytes.len() <= 300_000);
            expand(&bytes, &mut disk);
        }
        assert_eq!(&disk[..want.len()], want.as_slice());
        assert!(disk[want.len()..].iter().all(|&b| b == 0), "the last block is padded with zeros");
        assert_eq!(disk.len(), want.len().div_ceil(4096) * 4096);
    }

    #[test]
    fn damaged_sparse_images_are_refused_with_what_is_wrong() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.img");
        let mut b = Vec::new();
        b.extend(0xed26ff3au32.to_le_bytes());
        b.extend([1, 0, 0, 0, 28, 0, 12, 0]);
        b.extend(4096u32.to_le_bytes());
        b.extend(3u32.to_le_bytes()); // 3 blocks claimed
        b.extend(1u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0xcac1u16.to_le_bytes());
        b.extend([0, 0]);
        b.extend(1u32.to_le_bytes());
        b.extend((12 + 4096u32).to_le_bytes());
        b.extend(vec![5u8; 4096]);
        std::fs::write(&p, &b).unwrap();
        let e = ImageFile::open(&p).unwrap_err();
        assert!(e.to_string().contains("hold 1 blocks, but the header says 3"), "{e}");
        assert_eq!(e.class(), FailureClass::BadInput);
        std::fs::write(&p, &b[..b.len() - 1]).unwrap();
        let e = ImageFile::open(&p).unwrap_err();
        assert!(e.to_string().contains("past the end of the file"), "{e}");
        std::fs::write(&p, &b[..20]).unwrap();
        assert!(ImageFile::open(&p).unwrap_err().to_string().contains("28-byte header"));
    }
}
