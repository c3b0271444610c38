//! Files racklet-flash writes: `image -o`, `--record`, `sim --save`.
//!
//! One way for all of them. The target must be a regular file (or not exist
//! yet): a device, FIFO or directory is refused, never replaced. The bytes
//! go to a temporary file created exclusively, with a random name, in the
//! target's directory (so no planted symlink can redirect them), and that
//! file is renamed over the target at the end: a reader sees the old file or
//! the whole new one, never half of it. Without `replace`, an existing target
//! is refused, and the rename refuses one that appeared in the meantime.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why an output file was not written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: exists; add --force to overwrite it", path.display())]
    Exists { path: PathBuf },
    #[error("{}: is {kind}, not a regular file: racklet-flash only writes files{hint}", path.display())]
    NotRegular { path: PathBuf, kind: &'static str, hint: &'static str },
    #[error("{}: cannot write: {error}", path.display())]
    Write { path: PathBuf, error: std::io::Error },
    /// The directory to write in does not exist.
    #[error("{}: the directory {} does not exist; create it first or name another", path.display(), dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
}

impl OutputError {
    /// True when the target was refused before anything was written (bad
    /// input); false for a write that failed (an I/O error).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, OutputError::Write { .. })
    }
}

fn kind(ft: std::fs::FileType) -> (&'static str, &'static str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        const DISK: &str = " (to put an image on a card, write it there with a disk writer such as `dd`)";
        if ft.is_block_device() {
            return ("a block device", DISK);
        }
        if ft.is_char_device() {
            return ("a character device", DISK);
        }
        if ft.is_fifo() {
            return ("a FIFO (named pipe)", "");
        }
        if ft.is_socket() {
            return ("a socket", "");
        }
    }
    if ft.is_dir() {
        return ("a directory", "; name a file in it");
    }
    ("not a plain file", "")
}

/// Checks that `path` may be written: absent, or a regular file (through a
/// symlink too) and `replace` is set.
pub fn check_target(path: &Path, replace: bool) -> Result<(), OutputError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OutputError::Write { path: path.into(), error: e }),
    };
    // What a symlink points at decides (a link to /dev/sdb is a disk); a
    // dangling link counts as an existing entry.
    let ft = std::fs::metadata(path).map(|m| m.file_type()).unwrap_or(meta.file_type());
    if !ft.is_file() && !ft.is_symlink() {
        let (kind, hint) = kind(ft);
        return Err(OutputError::NotRegular { path: path.into(), kind, hint });
    }
    if !replace {
        return Err(OutputError::Exists { path: path.into() });
    }
    Ok(())
}

/// An output file being written; [`SafeFile::commit`] puts it in place,
/// dropping it without a commit leaves the target as it was.
#[derive(Debug)]
pub struct SafeFile {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    replace: bool,
}

impl SafeFile {
    /// Checks the target and creates the temporary file beside it.
    pub fn create(target: &Path, replace: bool) -> Result<SafeFile, OutputError> {
        check_target(target, replace)?;
        // The temporary file's own name stays out of messages: the OS error
        // alone, for the target the user named.
        let err = |error: std::io::Error| OutputError::Write {
            path: target.into(),
            error: error.raw_os_error().map(std::io::Error::from_raw_os_error).unwrap_or(error),
        };
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(OutputError::NoDirectory { path: target.into(), dir: dir.into() });
        }
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).suffix(".racklet-tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // As a plain create would make it (the umask applies), not 0600.
            b.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = b.tempfile_in(dir).map_err(err)?;
        Ok(SafeFile { tmp, target: target.into(), replace })
    }

    /// The file to write to.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// The target's path.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Flushes the data to disk and renames the file over the target.
    pub fn commit(self) -> Result<(), OutputError> {
        let target = self.target;
        let err = |error| OutputError::Write { path: target.clone(), error };
        self.tmp.as_file().sync_all().map_err(err)?;
        if self.replace {
            // The target may have become something else since create().
            check_target(&target, true)?;
            self.tmp.persist(&target).map_err(|e| err(e.error))?;
        } else {
            self.tmp.persist_noclobber(&target).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    OutputError::Exists { path: target.clone() }
                } else {
                    err(e.error)
                }
            })?;
        }
        Ok(())
    }
}

impl Write for SafeFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// Writes `bytes` to `target` the safe way, in one go.
pub fn write_file(target: &Path, bytes: &[u8], replace: bool) -> Result<(), OutputError> {
    let mut f = SafeFile::create(target, replace)?;
    f.write_all(bytes).map_err(|error| OutputError::Write { path: target.into(), error })?;
    f.commit()
}

/// Where the bytes a device sends (a read of its storage) go: a
/// [`SafeFile`] beside the target, put in place only by
/// [`ReadSink::commit`] once the whole read was confirmed; standard output
/// for `-`; nowhere without a target.
pub struct ReadSink {
    file: Option<SafeFile>,
    stdout: bool,
}

impl ReadSink {
    /// A sink for `output` (`-`: standard output; `None`: nowhere);
    /// `replace` allows an existing file to be replaced.
    pub fn new(output: Option<&Path>, replace: bool) -> Result<ReadSink, OutputError> {
        let stdout = output.is_some_and(|p| p.as_os_str() == "-");
        let file = match output {
            Some(p) if !stdout => Some(SafeFile::create(p, replace)?),
            _ => None,
        };
        Ok(ReadSink { file, stdout })
    }

    /// Takes the next bytes.
    pub fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.file().write_all(b),
            None if self.stdout => std::io::stdout().lock().write_all(b),
            None => Ok(()),
        }
    }

    /// The read is whole: the file takes the target's place.
    pub fn commit(self) -> Result<(), OutputError> {
        match self.file {
            Some(f) => f.commit(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_in_place_only_once_committed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("read.img");
        let mut r = ReadSink::new(Some(&p), false).unwrap();
        r.write(b"ab").unwrap();
        r.write(b"c").unwrap();
        assert!(!p.exists(), "not before the read is whole");
        r.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        // An unfinished read leaves nothing, and an existing file is kept.
        let mut r = ReadSink::new(Some(&d.path().join("half.img")), false).unwrap();
        r.write(b"x").unwrap();
        drop(r);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(matches!(ReadSink::new(Some(&p), false), Err(OutputError::Exists { .. })));
        // Without a target the bytes go nowhere.
        let mut r = ReadSink::new(None, false).unwrap();
        r.write(b"x").unwrap();
        r.commit().unwrap();
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn writes_a_new_file_and_refuses_to_replace_it_without_leave() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.img");
        write_file(&p, b"one", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert!(matches!(write_file(&p, b"two", false), Err(OutputError::Exists { .. })));
        write_file(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // Nothing but the target is left in the directory.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_that_appears_meanwhile_is_not_clobbered() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        let mut f = SafeFile::create(&p, false).unwrap();
        f.write_all(b"mine\n").unwrap();
        std::fs::write(&p, b"theirs\n").unwrap();
        assert!(matches!(f.commit(), Err(OutputError::Exists { .. })));
        assert_eq!(std::fs::read(&p).unwrap(), b"theirs\n");
    }

    #[test]
    fn devices_fifos_and_directories_are_refused() {
        let d = tempfile::tempdir().unwrap();
        for p in [Path::new("/dev/null"), Path::new("/dev/full"), d.path()] {
            let e = write_file(p, b"x", true).unwrap_err();
            assert!(matches!(e, OutputError::NotRegular { .. }), "{}: {e}", p.display());
            assert!(e.is_refusal());
        }
        let link = d.path().join("card");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let e = write_file(&link, b"x", true).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    /// ux review §15: a missing directory leaked the temporary file's name
    /// and was an I/O error (exit 9); it is the user's path, refused.
    #[test]
    fn a_missing_directory_is_refused_by_the_name_given() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("nope/x.img");
        let e = write_file(&t, b"x", false).unwrap_err();
        assert!(e.is_refusal(), "{e}");
        let text = e.to_string();
        assert!(text.contains("x.img: the directory") && text.contains("nope does not exist"), "{text}");
        assert!(!text.contains("racklet-tmp"), "{text}");
    }

    #[test]
    fn a_dropped_file_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        let mut f = SafeFile::create(&p, false).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
