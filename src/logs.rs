//! Where log lines go: journald when lvsd runs under systemd, else
//! stderr; and, as ldirectord's `logfile=`, also a file (each line starts
//! `[<local time>|<config>|<pid>]` as ldirectord's) or syslog with a
//! facility (`logfile="local0"`: sent to /dev/log as `lvsd[pid]`). The
//! target follows reloads.
//!
//! Logging never waits on `logfile=`: a line is handed to a bounded queue
//! ([`QUEUE`] lines) and one thread of its own, `lvsd-log`, writes it. A
//! full queue drops the line (a slow disk holds only that thread); so does
//! a sink that cannot take it now (a FIFO nobody reads: the file is opened
//! with O_NONBLOCK, so no reader is ENXIO and a full pipe EAGAIN; a syslog
//! that does not take a datagram within [`SYSLOG_SEND_TIMEOUT`]). Drops are counted ([`dropped`],
//! `lvsd_log_lines_dropped_total`), and the first line the sink takes
//! again is preceded by `lvsd: N log lines dropped: ...`.
//!
//! The file stays open between lines and is opened again when its path
//! names another file (logrotate's rename and create, or a removal), so
//! logrotate still needs no signal. The syslog socket is one connected
//! datagram socket, connected again when a send fails (syslogd restarted).
//! The journald and stderr layers write directly, as before: journald is
//! a datagram socket and stderr under systemd is the journal's stream.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogTarget;

/// Lines waiting for the writer thread, at most; more are dropped.
pub const QUEUE: usize = 4096;

/// How long one syslog datagram may wait for room in syslogd's queue
/// before it is dropped: a stuck syslogd costs the writer this per line,
/// never the daemon.
pub const SYSLOG_SEND_TIMEOUT: Duration = Duration::from_millis(50);

/// The `logfile=` in force; a reload replaces it.
#[derive(Debug, Clone, Default)]
pub struct Target(Arc<RwLock<Option<Arc<LogTarget>>>>);

impl Target {
    /// Sets the target (None: journald/stderr only).
    pub fn set(&self, t: Option<LogTarget>) {
        if let Ok(mut g) = self.0.write() {
            *g = t.map(Arc::new);
        }
    }

    fn get(&self) -> Option<Arc<LogTarget>> {
        self.0.read().ok().and_then(|g| g.clone())
    }
}

/// Lines the queue took, lines its writer finished with (written or
/// dropped), and lines dropped (queue full, or the sink refused them).
struct Counters {
    queued: AtomicU64,
    done: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    const fn new() -> Counters {
        Counters {
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::AcqRel);
    }

    fn flush(&self, within: Duration) -> bool {
        let want = self.queued.load(Ordering::Acquire);
        let start = Instant::now();
        while self.done.load(Ordering::Acquire) < want {
            if start.elapsed() >= within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

/// The process's one queue (what [`init`] starts).
static COUNTERS: Counters = Counters::new();

/// `logfile=` lines dropped since lvsd started: the queue was full, or
/// the file or syslog could not take them.
pub fn dropped() -> u64 {
    COUNTERS.dropped.load(Ordering::Acquire)
}

/// Waits (at most `within`) until the writer has finished with every line
/// queued before the call; false when it has not. For the stop, so the
/// last lines reach the file before the process exits.
pub fn flush(within: Duration) -> bool {
    COUNTERS.flush(within)
}

/// Whether systemd connected stderr to the journal.
pub fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Installs the subscriber: RUST_LOG filters (default info); journald or
/// stderr; and `target`, through the queue and its writer thread.
/// `cfgname` goes into file lines.
pub fn init(target: Target, cfgname: String) {
    // rustls-platform-verifier logs an ERROR of its own for every
    // certificate it refuses: with verifycert=yes on a bad certificate,
    // one per probe forever. The probe's reason already says it.
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,rustls_platform_verifier=off"))
    };
    let journald = if under_journald() {
        tracing_journald::layer()
            .map(|l| {
                // Syslog's meanings (as ldirectord's lines and logfile=
                // syslog have them): info is 6, not tracing-journald's 5.
                l.with_syslog_identifier("lvsd".into())
                    .with_priority_mappings(tracing_journald::PriorityMappings {
                        info: tracing_journald::Priority::Informational,
                        debug: tracing_journald::Priority::Debug,
                        ..tracing_journald::PriorityMappings::new()
                    })
            })
            .ok()
    } else {
        None
    };
    let stderr = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter())
    });
    let sink = start(
        Writer::new(cfgname, PathBuf::from("/dev/log"), &COUNTERS),
        QUEUE,
    );
    let extra = tracing_subscriber::fmt::layer()
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(Extra { target, sink })
        .with_filter(filter());
    tracing_subscriber::registry()
        .with(journald.map(|j| j.with_filter(filter())))
        .with(stderr)
        .with(extra)
        .init();
}

/// One line on its way to the writer thread: formatted by tracing, its
/// time taken when it was logged.
struct Entry {
    at: SystemTime,
    severity: u8,
    target: Arc<LogTarget>,
    text: String,
}

/// The logging side of the queue: never waits.
struct Sink {
    tx: SyncSender<Entry>,
    counters: &'static Counters,
}

impl Sink {
    /// Queues the line, or drops and counts it when the queue is full (or
    /// its writer is gone).
    fn send(&self, e: Entry) {
        match self.tx.try_send(e) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) => self.counters.drop_one(),
        }
    }
}

/// Starts `writer` on a thread of its own behind a queue of `capacity`
/// lines. When the thread cannot be had, every line is dropped and
/// counted.
fn start(writer: Writer, capacity: usize) -> Sink {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    let counters = writer.counters;
    if let Err(e) = std::thread::Builder::new()
        .name("lvsd-log".into())
        .spawn(move || writer.run(rx))
    {
        eprintln!("lvsd: cannot start the logfile= writer thread: {e}; its lines are dropped");
    }
    Sink { tx, counters }
}

/// Hands each formatted line for the `logfile=` target to the queue.
struct Extra {
    target: Target,
    sink: Sink,
}

impl Extra {
    fn line(&self, severity: u8) -> Line<'_> {
        Line {
            to: self.target.get().map(|t| (t, &self.sink)),
            severity,
            at: SystemTime::now(),
            buf: Vec::new(),
        }
    }
}

impl<'a> MakeWriter<'a> for Extra {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        self.line(6)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line<'a> {
        self.line(match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        })
    }
}

/// One log line being formatted; queued when tracing drops it.
struct Line<'a> {
    to: Option<(Arc<LogTarget>, &'a Sink)>,
    severity: u8,
    at: SystemTime,
    buf: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.to.is_some() {
            self.buf.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        let Some((target, sink)) = self.to.take() else {
            return;
        };
        if self.buf.is_empty() {
            return;
        }
        sink.send(Entry {
            at: self.at,
            severity: self.severity,
            target,
            text: String::from_utf8_lossy(&self.buf).trim_end().to_owned(),
        });
    }
}

/// Why a line did not reach the sink.
enum Lost {
    /// The sink cannot take it now: a FIFO with no reader or a full pipe,
    /// a syslogd that does not take the datagram in time.
    Slow,
    /// Anything else, said as operators read it.
    Failed(String),
}

impl Lost {
    fn of(what: &Path, e: &std::io::Error) -> Lost {
        let slow = matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::BrokenPipe
        ) || e.raw_os_error() == Some(libc::ENXIO);
        if slow {
            Lost::Slow
        } else {
            Lost::Failed(format!("cannot write {}: {e}", what.display()))
        }
    }
}

/// The `logfile=` file held open, and which file it is.
struct Open {
    path: PathBuf,
    file: std::fs::File,
    id: (u64, u64),
}

/// The writer thread's side: the open file or syslog socket, and the
/// drops it has told the sink about.
struct Writer {
    cfgname: String,
    pid: u32,
    dev_log: PathBuf,
    counters: &'static Counters,
    file: Option<Open>,
    syslog: Option<UnixDatagram>,
    /// Drops already announced in the sink.
    announced: u64,
    /// Why the writer last lost a line (None: the sink did not keep up).
    why: Option<String>,
}

impl Writer {
    fn new(cfgname: String, dev_log: PathBuf, counters: &'static Counters) -> Writer {
        Writer {
            cfgname,
            pid: std::process::id(),
            dev_log,
            counters,
            file: None,
            syslog: None,
            announced: 0,
            why: None,
        }
    }

    /// Writes every queued line until the last sender is gone.
    fn run(mut self, rx: Receiver<Entry>) {
        for e in rx {
            self.entry(&e);
            self.counters.done.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// One line, after the notice of the lines dropped before it.
    fn entry(&mut self, e: &Entry) {
        let dropped = self.counters.dropped.load(Ordering::Acquire);
        if dropped > self.announced {
            let notice = format!(
                "lvsd: {} log lines dropped: {}",
                dropped - self.announced,
                self.why
                    .as_deref()
                    .unwrap_or("the log sink did not keep up")
            );
            match self.write(&e.target, e.at, 4, &notice) {
                Ok(()) => {
                    self.announced = dropped;
                    self.why = None;
                }
                Err(lost) => return self.lost(lost),
            }
        }
        if let Err(lost) = self.write(&e.target, e.at, e.severity, &e.text) {
            self.lost(lost);
        }
    }

    /// Counts a line the sink did not take, and remembers why.
    fn lost(&mut self, lost: Lost) {
        self.counters.drop_one();
        self.why = match lost {
            Lost::Slow => None,
            Lost::Failed(why) => {
                // Said once where the operator looks (stderr: the journal
                // under systemd), when it starts or its reason changes.
                if self.why.as_deref() != Some(why.as_str()) {
                    eprintln!(
                        "lvsd: {why}: log lines are dropped (and counted) until it can be written"
                    );
                }
                Some(why)
            }
        };
    }

    /// One line in the target's format: ldirectord's file line, or an
    /// RFC 3164 datagram.
    fn write(
        &mut self,
        target: &LogTarget,
        at: SystemTime,
        severity: u8,
        text: &str,
    ) -> Result<(), Lost> {
        match target {
            LogTarget::File(path) => {
                self.syslog = None;
                let line = format!("[{}|{}|{}] {text}\n", ctime(at), self.cfgname, self.pid);
                self.append_line(path, line.as_bytes())
            }
            LogTarget::Syslog(facility) => {
                self.file = None;
                let msg = syslog_line(facility.code(), severity, &ctime(at), self.pid, text);
                self.send_syslog(msg.as_bytes())
            }
        }
    }

    /// Appends to `path`, keeping the file open while the path still
    /// names it: a rotated (renamed) or removed file is left for the new
    /// one, as opening it for every line would.
    fn append_line(&mut self, path: &Path, line: &[u8]) -> Result<(), Lost> {
        let now = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        if self
            .file
            .as_ref()
            .is_some_and(|o| o.path != path || Some(o.id) != now)
        {
            self.file = None;
        }
        let mut open = match self.file.take() {
            Some(o) => o,
            None => {
                let file = open_append(path).map_err(|e| Lost::of(path, &e))?;
                let id = file
                    .metadata()
                    .map(|m| (m.dev(), m.ino()))
                    .map_err(|e| Lost::of(path, &e))?;
                Open {
                    path: path.to_owned(),
                    file,
                    id,
                }
            }
        };
        match open.file.write_all(line) {
            Ok(()) => {
                self.file = Some(open);
                Ok(())
            }
            Err(e) => {
                // A full pipe keeps its reader; anything else (the reader
                // left: EPIPE; a full disk) is opened afresh next line.
                // A line up to PIPE_BUF (4096 bytes) goes into a pipe
                // whole or not at all; a longer one may be cut.
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    self.file = Some(open);
                }
                Err(Lost::of(path, &e))
            }
        }
    }

    /// Sends on the connected syslog socket, connecting (again) when it
    /// has none or the send fails other than for time (syslogd
    /// restarted: its socket is a new one at the same path).
    fn send_syslog(&mut self, msg: &[u8]) -> Result<(), Lost> {
        let mut last = None;
        for _ in 0..2 {
            let sock = match self.syslog.take() {
                Some(s) => s,
                None => connect(&self.dev_log).map_err(|e| Lost::of(&self.dev_log, &e))?,
            };
            match sock.send(msg) {
                Ok(_) => {
                    self.syslog = Some(sock);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    self.syslog = Some(sock);
                    return Err(Lost::Slow);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(Lost::Slow, |e| Lost::of(&self.dev_log, &e)))
    }
}

/// A datagram socket connected to syslog's, each send waiting at most
/// [`SYSLOG_SEND_TIMEOUT`].
fn connect(dev_log: &Path) -> std::io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(dev_log)?;
    s.set_write_timeout(Some(SYSLOG_SEND_TIMEOUT))?;
    Ok(s)
}

/// Opens `path` to append, creating it. O_NONBLOCK: a FIFO nobody reads
/// is ENXIO at once (a blocking open would wait for a reader forever),
/// a full pipe EAGAIN; a regular file ignores it.
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// One RFC 3164 datagram for /dev/log: `<PRI>Mmm dd hh:mm:ss
/// lvsd[PID]: text`, from a [`ctime`] string.
pub fn syslog_line(facility: u32, severity: u8, ctime: &str, pid: u32, text: &str) -> String {
    format!(
        "<{}>{} lvsd[{pid}]: {text}",
        facility * 8 + u32::from(severity),
        ctime.get(4..19).unwrap_or(ctime)
    )
}

/// Appends to a file, opening it for this write only (`monitorfile`);
/// as `logfile=`'s, a FIFO nobody reads is an error, not a wait.
pub fn append(path: &Path, text: &str) -> std::io::Result<()> {
    open_append(path)?.write_all(text.as_bytes())
}

/// Perl's `scalar localtime`: `Sun Nov 29 03:40:02 2026`, in the local
/// time zone (UTC when it cannot be had).
pub fn ctime(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: localtime_r reads `secs` and writes only the `tm` we own
    // (zeroed, so every field is initialised even if it fails); it is the
    // re-entrant variant, safe to call from any thread.
    #[allow(unsafe_code)]
    let tm = unsafe {
        libc::localtime_r(&secs, tm.as_mut_ptr());
        tm.assume_init()
    };
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS.get(tm.tm_wday as usize).unwrap_or(&"Sun"),
        MONTHS.get(tm.tm_mon as usize).unwrap_or(&"Jan"),
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        use crate::config::Facility;
        assert_eq!(Facility::parse("local0").map(Facility::code), Some(16));
        assert_eq!(Facility::parse("daemon").map(Facility::code), Some(3));
        assert_eq!(Facility::parse("local9"), None);
        assert_eq!(
            Facility::parse("local7").map(Facility::name),
            Some("local7")
        );
    }

    #[test]
    fn syslog_datagrams_as_rfc3164() {
        assert_eq!(
            syslog_line(16, 6, "Sun Nov  1 03:40:02 2026", 42, "real up"),
            "<134>Nov  1 03:40:02 lvsd[42]: real up"
        );
        assert_eq!(
            syslog_line(3, 3, "Sun Nov 29 03:40:02 2026", 7, "x"),
            "<27>Nov 29 03:40:02 lvsd[7]: x"
        );
    }

    fn counters() -> &'static Counters {
        Box::leak(Box::new(Counters::new()))
    }

    fn entry(target: &LogTarget, text: &str) -> Entry {
        Entry {
            at: SystemTime::now(),
            severity: 6,
            target: Arc::new(target.clone()),
            text: text.to_owned(),
        }
    }

    fn writer(c: &'static Counters, dev_log: &Path) -> Writer {
        Writer::new("ldirectord.cf".into(), dev_log.to_owned(), c)
    }

    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mkfifo {}", path.display());
    }

    /// Reads what is in the FIFO now (its read end is non-blocking).
    fn drain(r: &mut std::fs::File) -> String {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let c = counters();
        let (tx, _rx) = std::sync::mpsc::sync_channel(2);
        let sink = Sink { tx, counters: c };
        let t = LogTarget::File("/nonexistent/x".into());
        for i in 0..5 {
            sink.send(entry(&t, &format!("line {i}")));
        }
        assert_eq!(c.queued.load(Ordering::Acquire), 2);
        assert_eq!(c.dropped.load(Ordering::Acquire), 3);
    }

    #[test]
    fn the_thread_writes_what_was_queued_and_flush_waits_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lvsd.log");
        let c = counters();
        let sink = start(writer(c, &dir.path().join("log")), 16);
        let t = LogTarget::File(path.clone());
        for i in 0..10 {
            sink.send(entry(&t, &format!("line {i}")));
        }
        assert!(c.flush(Duration::from_secs(10)));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text.lines().count(), 10, "{text}");
        let last = format!("|ldirectord.cf|{}] line 9\n", std::process::id());
        assert!(text.ends_with(&last), "{text}");
        assert_eq!(c.dropped.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_rotated_file_is_left_for_the_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lvsd.log");
        let mut w = writer(counters(), &dir.path().join("log"));
        let t = LogTarget::File(path.clone());
        w.entry(&entry(&t, "one"));
        std::fs::rename(&path, dir.path().join("lvsd.log.1")).expect("rename");
        w.entry(&entry(&t, "two"));
        std::fs::remove_file(&path).expect("remove");
        w.entry(&entry(&t, "three"));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert!(read(&dir.path().join("lvsd.log.1")).ends_with("] one\n"));
        let now = read(&path);
        assert_eq!(now.lines().count(), 1, "{now}");
        assert!(now.ends_with("] three\n"), "{now}");
    }

    #[test]
    fn a_fifo_nobody_reads_drops_and_the_first_line_after_says_how_many() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("lvsd.log");
        mkfifo(&fifo);
        let c = counters();
        let mut w = writer(c, &dir.path().join("log"));
        let t = LogTarget::File(fifo.clone());
        // No reader: ENXIO at once, not an open that waits.
        for i in 0..3 {
            w.entry(&entry(&t, &format!("lost {i}")));
        }
        assert_eq!(c.dropped.load(Ordering::Acquire), 3);
        let mut r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .expect("open the FIFO to read");
        w.entry(&entry(&t, "back"));
        let text = drain(&mut r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with("] lvsd: 3 log lines dropped: the log sink did not keep up"),
            "{text}"
        );
        assert!(lines[1].ends_with("] back"), "{text}");
        // A reader that stops reading: the pipe fills, EAGAIN.
        let mut filler = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .expect("open the FIFO to write");
        while filler.write(b"\n").is_ok() {}
        w.entry(&entry(&t, "full"));
        assert_eq!(c.dropped.load(Ordering::Acquire), 4);
        drain(&mut r);
        w.entry(&entry(&t, "again"));
        let text = drain(&mut r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with("] lvsd: 1 log lines dropped: the log sink did not keep up"),
            "{text}"
        );
        assert!(lines[1].ends_with("] again"), "{text}");
    }

    #[test]
    fn syslog_is_one_socket_that_reconnects_after_syslogd_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev_log = dir.path().join("log");
        let recv = |s: &UnixDatagram| {
            let mut buf = [0u8; 2048];
            let n = s.recv(&mut buf).expect("recv");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let bind = || {
            let s = UnixDatagram::bind(&dev_log).expect("bind");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            s
        };
        let c = counters();
        let mut w = writer(c, &dev_log);
        let t = LogTarget::Syslog(crate::config::Facility::parse("local0").expect("local0"));
        let syslogd = bind();
        w.entry(&entry(&t, "a"));
        w.entry(&entry(&t, "b"));
        let a = recv(&syslogd);
        assert!(a.starts_with("<134>"), "local0.info: {a}");
        assert!(
            a.ends_with(&format!(" lvsd[{}]: a", std::process::id())),
            "{a}"
        );
        assert!(recv(&syslogd).ends_with("]: b"));
        // syslogd restarts: a new socket at the same path.
        drop(syslogd);
        std::fs::remove_file(&dev_log).expect("remove");
        let syslogd = bind();
        w.entry(&entry(&t, "c"));
        assert!(recv(&syslogd).ends_with("]: c"));
        assert_eq!(c.dropped.load(Ordering::Acquire), 0);
        // syslogd gone: the line is dropped, and the reason told later.
        drop(syslogd);
        std::fs::remove_file(&dev_log).expect("remove");
        w.entry(&entry(&t, "d"));
        assert_eq!(c.dropped.load(Ordering::Acquire), 1);
        let syslogd = bind();
        w.entry(&entry(&t, "e"));
        let notice = recv(&syslogd);
        assert!(notice.starts_with("<132>"), "a warning: {notice}");
        assert!(
            notice.contains("]: lvsd: 1 log lines dropped: cannot write ")
                && notice.contains("No such file"),
            "{notice}"
        );
        assert!(recv(&syslogd).ends_with("]: e"));
    }

    #[test]
    fn a_stuck_syslog_drops_lines_instead_of_holding_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev_log = dir.path().join("log");
        let _syslogd = UnixDatagram::bind(&dev_log).expect("bind");
        let c = counters();
        let mut w = writer(c, &dev_log);
        let t = LogTarget::Syslog(crate::config::Facility::parse("daemon").expect("daemon"));
        // Nobody receives: once syslogd's queue is full, each line waits
        // SYSLOG_SEND_TIMEOUT and is dropped.
        let mut sent = 0;
        while c.dropped.load(Ordering::Acquire) == 0 {
            assert!(sent < 100_000, "never full");
            w.entry(&entry(&t, "x"));
            sent += 1;
        }
        assert!(sent > 1);
    }

    #[test]
    fn ctime_is_perls_localtime_shape() {
        let s = ctime(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000));
        // `Www Mmm dd hh:mm:ss yyyy`, 24 characters, whatever the zone.
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with("2026"), "{s}");
        assert_eq!(&s[13..14], ":");
    }
}
