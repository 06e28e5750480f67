//! lvsd's service checkers: one protocol per file, one probe per call.
//!
//! This crate knows nothing of IPVS, failover or config files. Each checker
//! makes exactly one attempt and returns `Ok(())` or a [`ProbeError`] whose
//! Display is the one line operators read in logs, status and mail
//! ("GET http://10.0.0.5:80/health: status 503, want 2xx"). The caller owns
//! retries, intervals, the hard deadline and rise/fall state: a checker may
//! use its timeout as a courtesy, but the caller never relies on it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// `Checker` for a checker with a `subject: String` field and an
/// `async fn run(&self) -> Result<(), ProbeError>`: the subject, and one
/// `run` per probe.
macro_rules! checker_via_run {
    ($t:ty) => {
        impl $crate::Checker for $t {
            fn subject(&self) -> &str {
                &self.subject
            }

            fn probe(&self) -> $crate::Probe<'_> {
                Box::pin(self.run())
            }
        }
    };
}

pub mod connect;
pub mod dns;
pub mod external;
pub mod ftp;
pub mod http;
pub mod imap;
pub mod ldap;
mod line;
pub mod nntp;
pub mod on;
pub mod ping;
pub mod pop;
pub mod radius;
pub mod simpletcp;
pub mod sip;
pub mod smtp;
pub mod sql;
mod tls;

pub use connect::Connect;
pub use dns::Dns;
pub use external::External;
pub use ftp::Ftp;
pub use http::{Http, HttpOptions};
pub use imap::Imap;
pub use ldap::Ldap;
pub use nntp::Nntp;
pub use on::On;
pub use ping::{IcmpSockets, Ping};
pub use pop::Pop;
pub use radius::Radius;
pub use simpletcp::SimpleTcp;
pub use sip::Sip;
pub use smtp::Smtp;
pub use sql::{Engine, Sql};

/// Why a checker could not be made, before any probe (the config reader
/// refuses such a check at its line with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// A dns check's request is not a DNS name.
    #[error("request `{request}` is not a DNS name: {reason}")]
    DnsName {
        /// The request as written.
        request: String,
        /// Why not.
        reason: String,
    },
    /// An http(s) check's URL cannot be built.
    #[error("cannot check {url}: {reason}")]
    Url {
        /// The URL as built.
        url: String,
        /// Why not.
        reason: String,
    },
    /// The HTTP client cannot be set up.
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(String),
    /// TLS cannot be set up (the crypto provider, the trust store).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The runtime the checks run on cannot be started.
    #[error("{0}")]
    Runtime(String),
}

/// A shared secret (RADIUS). Its Debug output hides it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A user name and password for checks that log in. Its Debug output
/// hides the password, and no failure reason ever contains it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Login {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The future a probe returns.
pub type Probe<'a> = Pin<Box<dyn Future<Output = Result<(), ProbeError>> + Send + 'a>>;

/// A health check of one real server: one attempt per call.
pub trait Checker: Send + Sync {
    /// What is probed, naming the real: `GET http://10.0.0.5:80/health`,
    /// `connect 10.0.0.5:80`, `ping 10.0.0.5`. Used for errors raised
    /// outside the checker (the deadline, a panic).
    fn subject(&self) -> &str;

    /// Makes one attempt.
    fn probe(&self) -> Probe<'_>;
}

/// The step of a probe that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Opening the connection (refused, unreachable...).
    Connect,
    /// The TLS handshake.
    Tls,
    /// Sending the request or reading the answer.
    Exchange,
    /// The answer came but is not the one wanted (status, body, pattern).
    Answer,
    /// The caller's deadline passed.
    Deadline,
    /// The probe itself failed (a panic, a socket the system refused).
    Internal,
    /// lvsd's own trouble, not the real's: no file descriptor, memory,
    /// buffer space or local port was left for the probe. Never counted
    /// against the real.
    Local,
}

impl Step {
    /// A short lowercase name for metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Tls => "tls",
            Step::Exchange => "exchange",
            Step::Answer => "answer",
            Step::Deadline => "deadline",
            Step::Internal => "internal",
            Step::Local => "local",
        }
    }
}

/// Why a probe failed: `<subject>: <reason>` on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    /// What was probed (see [`Checker::subject`]).
    pub subject: String,
    /// Which step failed.
    pub step: Step,
    /// Why, in a few words ("status 503, want 2xx").
    pub reason: String,
}

impl ProbeError {
    /// A failure of `subject` at `step`.
    pub fn new(subject: &str, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError {
            subject: subject.to_owned(),
            step,
            reason: one_line(&reason.into()),
        }
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.reason)
    }
}

impl std::error::Error for ProbeError {}

/// Joins lines so a reason never breaks a log line or a status table.
fn one_line(s: &str) -> String {
    if s.contains(['\n', '\r']) {
        s.split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s.to_owned()
    }
}

/// A UDP socket on any local address of `addr`'s family, connected to
/// `addr` (so an ICMP "port unreachable" comes back as "connection
/// refused").
async fn connected_udp(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let any = match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let sock = tokio::net::UdpSocket::bind(any).await?;
    sock.connect(addr).await?;
    Ok(sock)
}

/// Runs one probe under a hard deadline.
///
/// This is the only way lvsd runs a checker: the deadline does not depend
/// on the checker honouring any timeout of its own, and a checker that
/// panics yields a failed probe (`Step::Internal`), not a dead caller.
/// The probe runs within the caller's task (no task of its own, so no
/// wakeup crosses threads) and is dropped with it: a probe never outlives
/// the check that started it.
pub async fn run_probe(checker: Arc<dyn Checker>, deadline: Duration) -> Result<(), ProbeError> {
    match tokio::time::timeout(deadline, CatchUnwind(checker.probe())).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(ProbeError::new(
            checker.subject(),
            Step::Internal,
            format!("the checker panicked: {}", panic_message(panic)),
        )),
        Err(_) => Err(ProbeError::new(
            checker.subject(),
            Step::Deadline,
            format!("no answer within {}", human(deadline)),
        )),
    }
}

/// A probe whose panic is its result.
struct CatchUnwind<'a>(Probe<'a>);

impl Future for CatchUnwind<'_> {
    type Output = Result<Result<(), ProbeError>, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let probe = &mut self.0;
        // Unwind safety: after a panic the probe is never polled again (it
        // is Ready with the panic), so no broken state of it is seen.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(r)) => std::task::Poll::Ready(Ok(r)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// `5s`, `1.5s`, `250ms`.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() > 0 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Whether `re` (a `receive` pattern) matches `text` as Perl's `=~` does
/// in ldirectord: Perl's `$` also matches before a newline that ends the
/// text, Rust's only at its very end, so `receive="^OK$"` on a page "OK\n"
/// is up in ldirectord; for a pattern with a `$`, the text without that
/// newline is tried too. (Only then: `\z` is the very end in both.)
pub(crate) fn perl_match(re: &regex::bytes::Regex, text: &[u8]) -> bool {
    re.is_match(text)
        || (has_dollar(re.as_str()) && text.strip_suffix(b"\n").is_some_and(|t| re.is_match(t)))
}

/// Whether a pattern has an unescaped `$` (an end anchor).
fn has_dollar(pattern: &str) -> bool {
    let mut escaped = false;
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '$' => return true,
            _ => {}
        }
    }
    false
}

/// A pattern as a failure reason shows it: its first 60 characters,
/// control characters escaped.
pub(crate) fn shown(re: &regex::bytes::Regex) -> String {
    let p = re.as_str();
    let mut out = String::new();
    for c in p.chars().take(60) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if p.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}

/// `addr:port` with brackets around IPv6 addresses.
pub fn host_port(addr: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(addr, port).to_string()
}

/// Whether an I/O error is this host's trouble rather than the real's:
/// out of file descriptors (EMFILE, ENFILE), memory (ENOMEM), socket
/// buffers (ENOBUFS) or local ports (EADDRNOTAVAIL).
pub fn is_local(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EADDRNOTAVAIL)
    )
}

/// `step`, or [`Step::Local`] when `e` is this host's trouble.
pub(crate) fn io_step(step: Step, e: &std::io::Error) -> Step {
    if is_local(e) { Step::Local } else { step }
}

/// `step`, or [`Step::Local`] when an I/O error in `e`'s chain of causes
/// is this host's trouble (a client library's error wrapping it: mysql,
/// postgres, ldap).
pub(crate) fn cause_step(step: Step, e: &(dyn std::error::Error + 'static)) -> Step {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>().is_some_and(is_local) {
            return Step::Local;
        }
        next = e.source();
    }
    step
}

/// The reason of an I/O error without Rust's " (os error 111)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library's error wrapping EMFILE is lvsd's trouble; one wrapping
    /// a refused connection is the real's.
    #[test]
    fn a_wrapped_io_error_of_this_host_is_local() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "driver: {}", self.0)
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let emfile = Wrapper(std::io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(cause_step(Step::Connect, &emfile), Step::Local);
        let refused = Wrapper(std::io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(cause_step(Step::Connect, &refused), Step::Connect);
        // The real libraries' own errors.
        let mysql = mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::from_raw_os_error(libc::EMFILE),
        ));
        assert_eq!(cause_step(Step::Connect, &mysql), Step::Local);
        let ldap = ldap3::LdapError::Io {
            source: std::io::Error::from_raw_os_error(libc::ENFILE),
        };
        assert_eq!(cause_step(Step::Connect, &ldap), Step::Local);
    }

    #[test]
    fn display_is_one_line() {
        let e = ProbeError::new("connect 10.0.0.5:80", Step::Connect, "a\r\nb\n");
        assert_eq!(e.to_string(), "connect 10.0.0.5:80: a b");
    }

    struct Panics;
    impl Checker for Panics {
        fn subject(&self) -> &str {
            "panics"
        }
        fn probe(&self) -> Probe<'_> {
            Box::pin(async { panic!("boom") })
        }
    }

    struct Hangs;
    impl Checker for Hangs {
        fn subject(&self) -> &str {
            "connect 10.0.0.5:80"
        }
        fn probe(&self) -> Probe<'_> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn a_panic_is_a_failed_probe() {
        let e = run_probe(Arc::new(Panics), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.step, Step::Internal);
        assert_eq!(e.to_string(), "panics: the checker panicked: boom");
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_enforced_outside_the_checker() {
        let e = run_probe(Arc::new(Hangs), Duration::from_millis(1500))
            .await
            .unwrap_err();
        assert_eq!(e.step, Step::Deadline);
        assert_eq!(e.to_string(), "connect 10.0.0.5:80: no answer within 1.5s");
    }

    struct Flags(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Flags {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    struct HangsUntilDropped(Arc<std::sync::atomic::AtomicBool>);
    impl Checker for HangsUntilDropped {
        fn subject(&self) -> &str {
            "hangs"
        }
        fn probe(&self) -> Probe<'_> {
            let flag = Flags(Arc::clone(&self.0));
            Box::pin(async move {
                let _flag = flag;
                std::future::pending().await
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_never_outlives_its_caller() {
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = Arc::new(HangsUntilDropped(Arc::clone(&dropped)));
        let caller = run_probe(c, Duration::from_secs(60));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), caller)
                .await
                .is_err()
        );
        tokio::task::yield_now().await;
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn perl_dollar_matches_before_a_final_newline() {
        let re = |p: &str| regex::bytes::Regex::new(p).unwrap();
        assert!(perl_match(&re("^Service Up$"), b"Service Up\n"));
        assert!(perl_match(&re("^Service Up$"), b"Service Up"));
        assert!(perl_match(&re("Up\n"), b"Service Up\n"));
        // Only one final newline, as Perl.
        assert!(!perl_match(&re("^Service Up$"), b"Service Up\n\n"));
        assert!(!perl_match(&re("^Service Up$"), b"Service Up\r\n"));
        assert!(!perl_match(&re("^Service Up$"), b"Service Down\n"));
        // `\z` is the very end, in Perl too.
        assert!(!perl_match(&re("OK\\z"), b"OK\n"));
        assert!(!perl_match(&re("^OK\n\\z"), b"OK\n\n"));
        assert!(perl_match(&re("OK\\$"), b"OK$"));
        assert!(
            !perl_match(&re("^OK\\$\\z"), b"OK$\n"),
            "an escaped $ is no anchor"
        );
        assert_eq!(shown(&re("a\tb")), "a\\tb");
        assert_eq!(
            shown(&re(r"^10\.")),
            r"^10\.",
            "a backslash is no control character"
        );
    }

    #[test]
    fn io_reason_drops_errno() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(io_reason(&e), "connection refused");
    }
}
