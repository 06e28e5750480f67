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
        "not a regular file"
    }
}

/// The bytes of the regular file at `path` (symbolic links followed), or
/// why it cannot be read, as the diagnostic says it.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. It changes nothing for a regular file.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read file: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("cannot read file: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "cannot read file: it is {}, not a regular file",
            kind(meta.file_type())
        ));
    }
    let too_big = || {
        format!(
            "cannot read file: larger than {} MiB, which no configuration needs",
            MAX_BYTES >> 20
        )
    };
    if meta.len() > MAX_BYTES {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read file: {e}"))?;
    // It may have grown while read.
    if buf.len() as u64 > MAX_BYTES {
        return Err(too_big());
    }
    Ok(buf)
}

/// The text of the regular file at `path` (see [`read_bytes`]).
pub fn read_text(path: &Path) -> Result<String, String> {
    String::from_utf8(read_bytes(path)?)
        .map_err(|_| "cannot read file: it is not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ldirectord.cf");
        std::fs::write(&file, "checktimeout=3\n").unwrap();
        assert_eq!(read_text(&file).as_deref(), Ok("checktimeout=3\n"));

        let err = read_text(dir.path()).unwrap_err();
        assert!(err.contains("a directory"), "{err}");

        // A FIFO nobody writes to: refused at once, not waited on.
        let fifo = dir.path().join("fifo.cf");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        let err = read_text(&fifo).unwrap_err();
        assert!(err.contains("a FIFO"), "{err}");

        let err = read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(err.contains("a device"), "{err}");

        let err = read_text(&dir.path().join("missing.cf")).unwrap_err();
        assert!(err.starts_with("cannot read file: "), "{err}");

        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(read_text(&file).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn a_file_too_large_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.cf");
        let f = std::fs::File::create(&big).unwrap();
        // Sparse: no disk is used.
        f.set_len(MAX_BYTES + 1).unwrap();
        let err = read_text(&big).unwrap_err();
        assert!(err.contains("larger than 64 MiB"), "{err}");
    }
}
