//! Reading a configuration file without trusting what its path names now.
//!
//! A path an operator gave can be replaced by anything: a FIFO (a plain
//! read would wait forever, and the daemon with it), a device (`/dev/zero`
//! never ends), a directory, or a file of gigabytes. Only a regular file
//! of at most [`MAX_BYTES`] is read; anything else is an error naming
//! what was found, so a reload refuses it and the running configuration
//! stays.

use std::io::Read;
use std::path::Path;

/// The largest configuration file read: far above any real one (37,298
/// reals in ldirectord.cf are about 2 MB), far below what would hurt.
pub const MAX_BYTES: u64 = 64 << 20;

/// Why a configuration file was not read; its Display is the reason a
/// diagnostic gives (the reader adds the file's name).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening or reading failed.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// Something else than a regular file is there.
    #[error("cannot read file: it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than [`MAX_BYTES`].
    #[error("cannot read file: larger than {} MiB, which no configuration needs", MAX_BYTES >> 20)]
    TooBig,
    /// Not UTF-8.
    #[error("cannot read file: it is not UTF-8 text")]
    NotText,
}

/// What a path names, in words, when it is not a regular file.
fn kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "something else"
    }
}

/// The bytes of the regular file at `path` (at most [`MAX_BYTES`]).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. It changes nothing for a regular file.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular(kind(meta.file_type())));
    }
    if meta.len() > MAX_BYTES {
        return Err(FileError::TooBig);
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(MAX_BYTES + 1).read_to_end(&mut buf)?;
    // It may have grown while read.
    if buf.len() as u64 > MAX_BYTES {
        return Err(FileError::TooBig);
    }
    Ok(buf)
}

/// The text of the regular file at `path`.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    String::from_utf8(read_bytes(path)?).map_err(|_| FileError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ldirectord.cf");
        std::fs::write(&file, "checktimeout=3\n").unwrap();
        assert_eq!(read_text(&file).ok().as_deref(), Some("checktimeout=3\n"));

        let err = read_text(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");

        // A FIFO nobody writes to: refused at once, not waited on.
        let fifo = dir.path().join("fifo.cf");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        let err = read_text(&fifo).unwrap_err().to_string();
        assert!(err.contains("a FIFO"), "{err}");

        let err = read_text(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("a device"), "{err}");

        let err = read_text(&dir.path().join("missing.cf"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read file: "), "{err}");

        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(
            matches!(read_text(&file), Err(FileError::NotText))
                && read_text(&file).unwrap_err().to_string().contains("UTF-8")
        );
    }

    #[test]
    fn a_file_too_large_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.cf");
        let f = std::fs::File::create(&big).unwrap();
        // Sparse: no disk is used.
        f.set_len(MAX_BYTES + 1).unwrap();
        let err = read_text(&big).unwrap_err().to_string();
        assert!(err.contains("larger than 64 MiB"), "{err}");
    }
}
