//! Learning that the config files may have changed, without reading them:
//! inotify (the `notify` crate) on the directories that hold them, so an
//! idle lvsd reads no file. Directories, not the files: an editor that
//! renames a new file over the old one, a drop-in that appears in conf.d, a
//! conf.d created after start, and (through the link's target directory)
//! a config file that is a symbolic link are all seen. Only events that
//! name a config path (or an entry of a conf.d) count: a config in /etc
//! does not wake lvsd for every other file there.
//!
//! Where inotify cannot be had (no instances or watches left, a
//! filesystem without it), [`Changes`] falls back to a tick four times a
//! second and the caller's content comparison does the rest, as before.
//! Either way the caller compares content (ldirectord's MD5 rule): an event
//! is only a reason to look.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How often to look when inotify is not available.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// What may have changed, as it happens.
pub(crate) struct Changes {
    rx: mpsc::Receiver<()>,
    watcher: Option<notify::RecommendedWatcher>,
    /// The config paths as given.
    paths: Vec<PathBuf>,
    /// What events count: recomputed at every refresh (a link pointed
    /// elsewhere names another target).
    interest: Arc<std::sync::RwLock<Interest>>,
}

/// The paths whose events count.
struct Interest {
    /// Config files (and the targets of links among them).
    files: HashSet<PathBuf>,
    /// conf.d directories: they and any entry in them.
    dirs: HashSet<PathBuf>,
    /// The watched directories themselves (renamed away or deleted, they
    /// take the config with them).
    selves: HashSet<PathBuf>,
}

impl Interest {
    fn of(paths: &[PathBuf]) -> Interest {
        let mut files = HashSet::new();
        let mut dirs = HashSet::new();
        for p in paths {
            if p.is_dir() {
                dirs.insert(p.clone());
                if let Ok(real) = p.canonicalize() {
                    dirs.insert(real);
                }
                continue;
            }
            let mut names = vec![p.clone()];
            // ha.cf brings haresources and authkeys from its directory.
            if p.file_name().is_some_and(|n| n == "ha.cf")
                && let Some(dir) = p.parent()
            {
                names.push(dir.join("haresources"));
                names.push(dir.join("authkeys"));
            }
            for n in names {
                if let Ok(real) = n.canonicalize() {
                    files.insert(real);
                }
                files.insert(n);
            }
            // A conf.d that does not exist yet: its creation counts.
            if !p.exists() && p.extension().is_none() {
                dirs.insert(p.clone());
            }
        }
        Interest {
            files,
            dirs,
            selves: HashSet::new(),
        }
    }

    fn counts(&self, path: &Path) -> bool {
        self.files.contains(path)
            || self.dirs.contains(path)
            || self.selves.contains(path)
            || path.parent().is_some_and(|d| self.dirs.contains(d))
    }
}

/// Whether an event can change what a file holds (lvsd's own reading
/// makes open, access and close-without-write events: never a reason to
/// look again).
fn writes(kind: &notify::EventKind) -> bool {
    use notify::EventKind as E;
    use notify::event::{AccessKind, AccessMode};
    match kind {
        E::Access(AccessKind::Close(AccessMode::Write)) => true,
        E::Access(_) => false,
        E::Create(_) | E::Modify(_) | E::Remove(_) | E::Any | E::Other => true,
    }
}

impl Changes {
    /// Watches what `paths` (config files and conf.d directories) need;
    /// polls when inotify cannot be had.
    pub(crate) fn new(paths: &[PathBuf]) -> Changes {
        let (tx, rx) = mpsc::channel(1);
        let interest = Arc::new(std::sync::RwLock::new(Interest::of(paths)));
        let seen = Arc::clone(&interest);
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let counts = match &ev {
                Ok(e) => {
                    e.need_rescan()
                        || (writes(&e.kind)
                            && seen
                                .read()
                                .is_ok_and(|i| e.paths.iter().any(|p| i.counts(p))))
                }
                // An error (the queue overflowed): look, to be sure.
                Err(_) => true,
            };
            if counts {
                // Full means a look is already due: nothing is lost.
                let _ = tx.try_send(());
            }
        });
        let mut c = Changes {
            rx,
            watcher: match watcher {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::info!(
                        "config watcher: no inotify ({e}); looking at the files four times a second"
                    );
                    None
                }
            },
            paths: paths.to_vec(),
            interest,
        };
        c.refresh();
        c
    }

    /// The directories to watch now: each config file's (and its link
    /// target's), each conf.d and its parent.
    fn dirs(interest: &Interest) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in interest.files.iter().chain(interest.dirs.iter()) {
            let mut add = |d: PathBuf| {
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            };
            if interest.dirs.contains(f) {
                add(f.clone());
            }
            match f.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(parent) => add(parent.to_path_buf()),
                None => add(PathBuf::from(".")),
            }
        }
        dirs
    }

    /// Whether changes are learnt from inotify (else by polling).
    pub(crate) fn notified(&self) -> bool {
        self.watcher.is_some()
    }

    /// Watches again every directory that exists now (a
    /// conf.d created since, or one deleted and created again). A watch
    /// that cannot be added (no watches left) turns polling on.
    pub(crate) fn refresh(&mut self) {
        let Some(w) = &mut self.watcher else {
            return;
        };
        // Links are followed afresh: a link pointed elsewhere brings its
        // new target (and that target's directory) in.
        let mut interest = Interest::of(&self.paths);
        let dirs = Changes::dirs(&interest);
        interest.selves = dirs.iter().cloned().collect();
        if let Ok(mut i) = self.interest.write() {
            *i = interest;
        }
        let mut failed = None;
        for d in &dirs {
            if !d.is_dir() {
                // Gone (its watch went with it): added again if it returns.
                continue;
            }
            // Watched again every time: a directory deleted and made again
            // under the same name may even get the same inode number, and
            // its old watch is gone. (Only after an event that counts, and
            // a look follows.)
            let _ = w.unwatch(d);
            match w.watch(d, RecursiveMode::NonRecursive) {
                Ok(()) => {}
                Err(e) => failed = Some((d.clone(), e)),
            }
        }
        if let Some((d, e)) = failed {
            tracing::warn!(
                "config watcher: cannot watch {} ({e}); looking at the files four times a second",
                d.display()
            );
            self.watcher = None;
        }
    }

    /// Waits until something may have changed: an event that names a
    /// config path, or, when polling, the next tick.
    pub(crate) async fn next(&mut self) {
        if self.watcher.is_none() {
            tokio::time::sleep(POLL).await;
            return;
        }
        if self.rx.recv().await.is_none() {
            // The watcher's thread went away: poll from now on.
            self.watcher = None;
            tokio::time::sleep(POLL).await;
        }
    }

    /// Forgets events already queued (a look follows).
    pub(crate) fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }
}
