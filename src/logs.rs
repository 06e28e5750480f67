//! Where log lines go: journald when lvsd runs under systemd, else
//! stderr; and, as ldirectord's `logfile=`, also a file (opened again for
//! every line, so logrotate needs no signal; each line starts
//! `[<local time>|<config>|<pid>]` as ldirectord's) or syslog with a
//! facility (`logfile="local0"`: sent to /dev/log as `lvsd[pid]`). The
//! target follows reloads.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogTarget;

/// The `logfile=` in force; a reload replaces it.
#[derive(Debug, Clone, Default)]
pub struct Target(Arc<RwLock<Option<LogTarget>>>);

impl Target {
    /// Sets the target (None: journald/stderr only).
    pub fn set(&self, t: Option<LogTarget>) {
        if let Ok(mut g) = self.0.write() {
            *g = t;
        }
    }

    fn get(&self) -> Option<LogTarget> {
        self.0.read().ok().and_then(|g| g.clone())
    }
}

/// Whether systemd connected stderr to the journal.
pub fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Installs the subscriber: RUST_LOG filters (default info); journald or
/// stderr; and `target`. `cfgname` goes into file lines.
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
    let extra = tracing_subscriber::fmt::layer()
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(Extra { target, cfgname })
        .with_filter(filter());
    tracing_subscriber::registry()
        .with(journald.map(|j| j.with_filter(filter())))
        .with(stderr)
        .with(extra)
        .init();
}

/// Writes each formatted line to the `logfile=` target.
struct Extra {
    target: Target,
    cfgname: String,
}

impl<'a> MakeWriter<'a> for Extra {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            target: self.target.get(),
            cfgname: self.cfgname.clone(),
            severity: 6,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        let severity = match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        Line {
            severity,
            ..self.make_writer()
        }
    }
}

/// One log line on its way out.
pub struct Line {
    target: Option<LogTarget>,
    cfgname: String,
    severity: u8,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = text.trim_end();
        match &self.target {
            None => {}
            Some(LogTarget::File(path)) => {
                // A log file that cannot be written must not stop lvsd.
                let _ = append(
                    path,
                    &format!(
                        "[{}|{}|{}] {text}\n",
                        ctime(SystemTime::now()),
                        self.cfgname,
                        std::process::id()
                    ),
                );
            }
            Some(LogTarget::Syslog(facility)) => {
                let msg = syslog_line(
                    facility.code(),
                    self.severity,
                    &ctime(SystemTime::now()),
                    std::process::id(),
                    text,
                );
                if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
                    let _ = s.send_to(msg.as_bytes(), "/dev/log");
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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

/// Appends to a file, opening it for this write only.
pub fn append(path: &PathBuf, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
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

    #[test]
    fn ctime_is_perls_localtime_shape() {
        let s = ctime(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000));
        // `Www Mmm dd hh:mm:ss yyyy`, 24 characters, whatever the zone.
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with("2026"), "{s}");
        assert_eq!(&s[13..14], ":");
    }
}
