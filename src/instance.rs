//! One lvsd per director: `lvsd run` holds an exclusive lock named after
//! its control socket (`/run/lvsd/control.lock` by default) from before it
//! touches anything until it exits. A second `lvsd run` exits 1 naming the
//! pid that holds it, instead of fighting the first over the IPVS table
//! and the virtual IPs. The lock is the kernel's (flock): it goes with the
//! process, however it ends, so a killed lvsd never leaves a stale lock.
//! (A second lvsd given another `--control` on purpose is not stopped
//! here; with failover it still fails to bind the heartbeat port.)

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock, held while this value lives.
#[derive(Debug)]
pub struct InstanceLock {
    _file: std::fs::File,
    path: PathBuf,
}

/// Why this lvsd may not run.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Another lvsd holds the lock.
    #[error("another lvsd runs here (pid {pid}, lock {path}): stop it first")]
    Running {
        /// Its pid as it wrote it ("unknown" when unreadable).
        pid: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file cannot be opened or locked.
    #[error("the lock {path}: {error}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why (said in the message, not as a cause: once).
        error: std::io::Error,
    },
    /// The lock was free but an lvsd answers on the control socket (its
    /// lock file was deleted, or the socket is reached through a link).
    #[error(
        "another lvsd answers on {control} (its lock file {path} was removed, or the socket is a link to its socket): stop it first"
    )]
    Answering {
        /// The control socket.
        control: PathBuf,
        /// The lock file.
        path: PathBuf,
    },
}

impl InstanceLock {
    /// The lock file for the control socket `control`.
    pub fn path_for(control: &Path) -> PathBuf {
        control.with_extension("lock")
    }

    /// Takes the lock for the control socket `control` (its directory is
    /// created if missing), and writes this process's pid into it.
    pub fn take(control: &Path) -> Result<InstanceLock, InstanceError> {
        let path = InstanceLock::path_for(control);
        let io = |error| InstanceError::Io {
            path: path.clone(),
            error,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(InstanceError::Running {
                    pid: if pid.is_empty() {
                        "unknown".to_owned()
                    } else {
                        pid.chars().take(20).collect()
                    },
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        if std::os::unix::net::UnixStream::connect(control).is_ok() {
            return Err(InstanceError::Answering {
                control: control.to_owned(),
                path,
            });
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(InstanceLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The open files limit now (soft, hard).
fn open_files() -> std::io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid, exclusive
    // pointer to a local and reads nothing else.
    #[allow(unsafe_code)]
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lim)
}

/// The soft limit of open files now.
pub fn open_files_limit() -> std::io::Result<u64> {
    open_files().map(|l| l.rlim_cur)
}

/// The most open files lvsd asks for.
pub const MAX_OPEN_FILES: u64 = 65_536;

/// Raises the soft limit of open files to the hard one (at most
/// [`MAX_OPEN_FILES`]) (systemd's default
/// soft limit is 1,024; the unit sets LimitNOFILE): probes, listeners and
/// reloads all need descriptors. Returns (soft, hard) as they are after.
pub fn raise_open_files() -> std::io::Result<(u64, u64)> {
    let mut lim = open_files()?;
    // At most 65,536 (the unit's LimitNOFILE): a hard limit of a billion
    // (root's on some kernels) would hand every child (check scripts,
    // fallbackcommand) a limit that fd-closing loops crawl through.
    let want = lim.rlim_max.min(MAX_OPEN_FILES);
    if lim.rlim_cur < want {
        lim.rlim_cur = want;
        // SAFETY: setrlimit only reads the rlimit behind a valid pointer
        // to a local.
        #[allow(unsafe_code)]
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("run/control.sock");
        let first = InstanceLock::take(&control).unwrap();
        assert_eq!(first.path(), dir.path().join("run/control.lock"));
        let err = InstanceLock::take(&control).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(InstanceLock::take(&control).is_ok());
    }
}
