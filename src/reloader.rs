//! Reloading: one owner of reading the configuration files again
//! (SIGHUP, `lvsd reload` and the watcher all go through [`Reloader`]),
//! one reload at a time, answered with the daemon's own outcome; and the
//! watcher that notices edits (ldirectord's `autoreload` and `callback`).

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::config::{self, Names, Severity};
use crate::control::Reply;
use crate::daemon;

/// Reads the configuration files again for a reload (SIGHUP, `lvsd
/// reload`): every diagnostic is logged; a valid configuration goes to the
/// daemon, an invalid one changes nothing (and is mailed).
#[derive(Clone)]
pub(crate) struct Reloader {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) names: Names,
    pub(crate) to: tokio::sync::mpsc::Sender<daemon::Reload>,
    /// What of the configuration in force the reloader itself uses.
    pub(crate) running: std::sync::Arc<std::sync::Mutex<Running>>,
    /// Held through a whole reload: SIGHUP, `lvsd reload` and the watcher
    /// all reload here, one at a time. It keeps the last `lvsd reload`'s
    /// outcome: its number, `allow_empty`, the reply.
    pub(crate) one_at_a_time: std::sync::Arc<tokio::sync::Mutex<Option<(u64, bool, Reply)>>>,
    /// Reloads started so far.
    pub(crate) started: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub(crate) notices: crate::alert::Notices,
    pub(crate) metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    pub(crate) log_target: crate::logs::Target,
    /// What the files held when the last reload read them: the watcher
    /// does not report as news a change a reload (SIGHUP, `lvsd reload`)
    /// has already read.
    pub(crate) last_read: std::sync::Arc<std::sync::Mutex<Fingerprint>>,
}

/// How long reading the files for a reload may take.
const READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// What the files read hold: each path with a hash of its content (None:
/// missing or not a regular file).
pub(crate) type Fingerprint = Vec<(PathBuf, Option<u64>)>;

/// The settings of the configuration in force that the reloader uses.
#[derive(Clone)]
pub(crate) struct Running {
    autoreload: bool,
    callback: Option<String>,
    routes: Vec<config::Alerts>,
    from: Option<String>,
    metrics: Option<std::net::SocketAddr>,
}

impl Running {
    pub(crate) fn of(c: &config::Config) -> Running {
        Running {
            autoreload: c.global.autoreload,
            callback: c.global.callback.clone(),
            routes: crate::alert::routes(c),
            from: c.global.emailalertfrom.clone(),
            metrics: c.global.metrics,
        }
    }
}

/// What the files lvsd reads hold: (path, a hash of the content, None when
/// missing) for every file, conf.d's entries listed afresh each time. As
/// ldirectord's MD5: a touch or a rewrite with the same text is no change.
pub(crate) fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    use std::hash::{Hash, Hasher};
    let mut paths: Vec<PathBuf> = Vec::new();
    for f in files {
        if f.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(f)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            paths.extend(entries);
        } else {
            paths.push(f.clone());
            // ha.cf brings haresources and authkeys from its directory.
            if f.file_name().is_some_and(|n| n == "ha.cf")
                && let Some(dir) = f.parent()
            {
                paths.push(dir.join("haresources"));
                paths.push(dir.join("authkeys"));
            }
        }
    }
    paths
        .into_iter()
        .map(|p| {
            // Only a regular file is read (a FIFO put there would block):
            // anything else counts as missing, and the reload it causes
            // says what is there.
            let digest = config::file::read_bytes(&p).ok().map(|bytes| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                h.finish()
            });
            (p, digest)
        })
        .collect()
}

/// The files whose content differs between two looks (changed, new or
/// gone), each once.
fn changed_between(before: &Fingerprint, after: &Fingerprint) -> Vec<PathBuf> {
    // By path (a conf.d of 10,000 files compared pairwise took seconds).
    let was: std::collections::HashMap<&PathBuf, &Option<u64>> =
        before.iter().map(|(p, d)| (p, d)).collect();
    let is: std::collections::HashSet<&PathBuf> = after.iter().map(|(p, _)| p).collect();
    let mut out: Vec<PathBuf> = after
        .iter()
        .filter(|(p, d)| was.get(p) != Some(&d))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(
        before
            .iter()
            .filter(|(p, _)| !is.contains(p))
            .map(|(p, _)| p.clone()),
    );
    out
}

impl Reloader {
    /// ldirectord's check of its file: told by inotify that a config path
    /// may have changed ([`crate::watch`]; four looks a second where
    /// inotify is not available), the files are compared by content; a
    /// change that has settled (the same for a quarter of a second: an
    /// editor's several writes make one) is logged, reloaded when
    /// `autoreload=yes`, and given to `callback` (with the file's name), so
    /// an edit applies within about half a second. Idle, nothing is read.
    pub(crate) async fn watch(self) {
        let files = self.watched();
        // Off the runtime's threads: a file on a hung mount must not stall
        // the daemon.
        let look = |files: &Vec<PathBuf>| {
            let files = files.clone();
            async move {
                tokio::task::spawn_blocking(move || fingerprint(&files))
                    .await
                    .unwrap_or_default()
            }
        };
        let callbacks = Reloader::callbacks();
        let mut changes = crate::watch::Changes::new(&files);
        let mut seen = look(&files).await;
        // What start read: a first change back to it is no news, and a
        // first change to nothing readable is.
        if let Ok(mut r) = self.last_read.lock()
            && r.is_empty()
        {
            r.clone_from(&seen);
        }
        loop {
            changes.next().await;
            if changes.notified() {
                // Let the burst of an editor's writes pass first.
                tokio::time::sleep(crate::watch::POLL).await;
                changes.drain();
                changes.refresh();
            }
            let now = look(&files).await;
            if now == seen {
                continue;
            }
            // Settle: until two looks a quarter of a second apart agree.
            let mut last = now;
            loop {
                tokio::time::sleep(crate::watch::POLL).await;
                let again = look(&files).await;
                if again == last {
                    break;
                }
                last = again;
            }
            changes.drain();
            changes.refresh();
            let changed = changed_between(&seen, &last);
            let already_read = self.last_read.lock().is_ok_and(|r| *r == last);
            seen = last;
            // Changed and changed back while settling: no news.
            if already_read || changed.is_empty() {
                continue;
            }
            let running = self.running();
            let list: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
            if running.autoreload {
                tracing::info!("changed on disk: {}: reloading", list.join(", "));
                self.reload_settled(seen.clone()).await;
            } else {
                tracing::info!(
                    "changed on disk: {}: not reloaded (autoreload=no; lvsd reload or SIGHUP applies it)",
                    list.join(", ")
                );
            }
            if let Some(cb) = &running.callback {
                for p in &changed {
                    let line = format!("{cb} {}", p.display());
                    if let Err(mpsc::error::TrySendError::Full(line)) = callbacks.try_send(line) {
                        tracing::warn!("callback `{line}` not run: 64 callbacks wait already");
                    }
                }
            }
        }
    }

    /// Runs the watcher's callbacks one at a time, in order, off the
    /// watcher: a slow callback delays the next callback, never the next
    /// reload.
    fn callbacks() -> mpsc::Sender<String> {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                tracing::info!("running callback: {line}");
                match tokio::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&line)
                    .status()
                    .await
                {
                    Ok(s) if s.success() => {}
                    Ok(s) => tracing::warn!("callback `{line}` failed: {s}"),
                    Err(e) => tracing::warn!("cannot run callback `{line}`: {e}"),
                }
            }
        });
        tx
    }

    /// The paths read: the named ones, else the defaults.
    fn watched(&self) -> Vec<PathBuf> {
        if self.files.is_empty() {
            config::DEFAULT_FILES.iter().map(PathBuf::from).collect()
        } else {
            self.files.clone()
        }
    }

    fn running(&self) -> Running {
        match self.running.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The answer for `lvsd reload`: the daemon's outcome. The settings
    /// the reloader itself uses (log target, alert routes, callback,
    /// autoreload) change only with a configuration the daemon applied.
    ///
    /// Requests that wait while a reload runs are answered together: a
    /// reload that started after a request read the files after it, so
    /// its outcome is that request's too (50 `lvsd reload` at once while
    /// DNS is down read the files twice, not 50 times, 30 s each).
    pub(crate) async fn reload(&self, allow_empty: bool) -> Reply {
        use std::sync::atomic::Ordering;
        let asked = self.started.load(Ordering::SeqCst);
        let mut last = self.one_at_a_time.lock().await;
        if let Some((n, empty, reply)) = &*last
            && *n > asked
            && *empty == allow_empty
        {
            return reply.clone();
        }
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = self.reload_read(allow_empty, None).await;
        *last = Some((n, allow_empty, reply.clone()));
        reply
    }

    /// The watcher's reload of the files as it saw them settle: files
    /// that hold anything else when read (still being written) are read
    /// again at their next change, neither refused nor mailed.
    async fn reload_settled(&self, settled: Fingerprint) {
        let _one = self.one_at_a_time.lock().await;
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.reload_read(false, Some(settled)).await;
    }

    /// One reload; the caller holds `one_at_a_time`.
    async fn reload_read(&self, allow_empty: bool, settled: Option<Fingerprint>) -> Reply {
        let (files, names, watched) = (self.files.clone(), self.names.clone(), self.watched());
        // Off the runtime (a file on a hung mount, host names DNS does not
        // answer for), and with a deadline: the daemon never waits on it.
        // The files are read until they held the same before and after
        // (three tries): a file rewritten in place while it was read may
        // have been read half-written.
        let read = tokio::time::timeout(
            READ_WITHIN,
            tokio::task::spawn_blocking(move || {
                let mut tries = 0;
                loop {
                    let before = fingerprint(&watched);
                    let loaded = config::load(&files, &names);
                    let after = fingerprint(&watched);
                    tries += 1;
                    if before == after || tries == 3 {
                        return (before == after, after, loaded);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }),
        )
        .await;
        let loaded = match read {
            Ok(Ok((stable, seen, _)))
                if settled
                    .as_ref()
                    .is_some_and(|want| !stable || *want != seen) =>
            {
                tracing::info!(
                    "the configuration changed while it was read: read again once it settles"
                );
                return Reply::failed("the configuration changed while it was read\n");
            }
            Ok(Ok((stable, seen, l))) => {
                // Only what was read whole counts as read (the watcher
                // then reports later changes as news).
                if stable && let Ok(mut r) = self.last_read.lock() {
                    *r = seen;
                }
                l
            }
            Ok(Err(e)) => return Reply::error(format!("reading the configuration failed: {e}")),
            Err(_) => {
                let why = format!(
                    "reading the configuration took more than {} s (a host name DNS does not answer for? a hung mount?)",
                    READ_WITHIN.as_secs()
                );
                tracing::error!("reload refused, the running configuration stays: {why}");
                if let Some(m) = &self.metrics {
                    m.reload("refused");
                }
                return Reply::failed(format!(
                    "error: {why}\nerror: reload refused, the running configuration stays\n"
                ));
            }
        };
        let mut text = String::new();
        for d in &loaded.diagnostics {
            match d.severity {
                Severity::Error => tracing::error!("reload: {d}"),
                _ => tracing::warn!("reload: {d}"),
            }
            text.push_str(&format!("{d}\n"));
        }
        match loaded.config {
            None => {
                tracing::error!("reload refused: the running configuration stays");
                if let Some(m) = &self.metrics {
                    m.reload("refused");
                }
                let running = self.running();
                let errors: Vec<String> = loaded
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(ToString::to_string)
                    .collect();
                self.notices.tell(crate::alert::Notice {
                    at: std::time::SystemTime::now(),
                    state: crate::alert::DaemonState::Reloading,
                    subject: String::new(),
                    change: crate::alert::Change::ReloadRefused {
                        errors: errors.join("\n"),
                    },
                    routes: running.routes,
                    from: running.from,
                    servicename: None,
                });
                Reply::failed(format!(
                    "{text}error: reload refused, the running configuration stays\n"
                ))
            }
            Some(c) => {
                let next = Running::of(&c);
                let logfile = c.global.logfile.clone();
                let (reply, answer) = tokio::sync::oneshot::channel();
                if self
                    .to
                    .send(daemon::Reload {
                        config: c,
                        allow_empty,
                        reply,
                    })
                    .await
                    .is_err()
                {
                    return Reply::failed(format!("{text}error: lvsd is stopping\n"));
                }
                match answer.await {
                    Ok(daemon::ReloadOutcome::Applied(summary)) => {
                        if next.metrics != self.running().metrics {
                            tracing::warn!(
                                "reload: a new metrics address takes effect when lvsd restarts"
                            );
                        }
                        self.log_target.set(logfile);
                        if let Ok(mut r) = self.running.lock() {
                            *r = next;
                        }
                        Reply::done(format!("{text}applied: {summary}\n"))
                    }
                    Ok(daemon::ReloadOutcome::Unchanged) => Reply::done(format!(
                        "{text}unchanged: the configuration in force is the same\n"
                    )),
                    Ok(daemon::ReloadOutcome::Refused(why)) => Reply::failed(format!(
                        "{text}{why}\nerror: reload refused, the running configuration stays\n"
                    )),
                    Err(_) => Reply::failed(format!("{text}error: lvsd is stopping\n")),
                }
            }
        }
    }
}
