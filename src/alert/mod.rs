//! Mail alerts: ldirectord's `emailalert`, `emailalertfrom`,
//! `emailalertfreq`, `emailalertstatus` and `smtp`, without its faults
//! (a mail per transition, sent from the check loop, 130,000 repeats).
//!
//! The daemon hands a [`Notice`] to a channel and never waits on it. The
//! pure [`Policy`] turns notices into mails: a burst is coalesced into one
//! mail per recipient with every change listed, at most one mail a minute
//! and [`policy::CAP_PER_HOUR`] an hour per recipient, reminders while a
//! real stays down, nothing for a state that did not change. [`smtp`]
//! sends them from a bounded queue per server, retrying with backoff; a
//! server that is down costs a log line, never a check.

pub mod policy;
pub mod smtp;

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::config::{AlertStatus, Alerts};

pub use policy::{Mail, Policy, Recipient};

/// The daemon's state when something happened (`emailalertstatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonState {
    /// The first results after start.
    Starting,
    /// Running.
    Running,
    /// Stopping.
    Stopping,
    /// The first results of checks a reload started, and reloads.
    Reloading,
}

impl DaemonState {
    /// As ldirectord's `Daemon-Status:` line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonState::Starting => "starting",
            DaemonState::Running => "running",
            DaemonState::Stopping => "stopping",
            DaemonState::Reloading => "reloading",
        }
    }

    /// Whether `emailalertstatus` mails in this state.
    pub fn mailed_in(self, s: AlertStatus) -> bool {
        match self {
            DaemonState::Starting => s.starting,
            DaemonState::Running => s.running,
            DaemonState::Stopping => s.stopping,
            DaemonState::Reloading => s.reloading,
        }
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Its check took a real out.
    Down {
        /// The probe's reason.
        reason: String,
    },
    /// Its check brought a real (back) in.
    Up,
    /// maintenancedir or `lvsd drain` took a real out (true) or put it
    /// back (false).
    Maintenance(bool),
    /// No real of a virtual serves: the fallback server does, if any.
    NoneUp {
        /// The fallback server.
        fallback: Option<String>,
    },
    /// A real of a virtual that had none serves again.
    SomeUp,
    /// The real or virtual left the configuration: its reminders stop
    /// (no mail).
    Gone,
    /// A reload was refused; the running configuration stays.
    ReloadRefused {
        /// Every diagnostic, one per line.
        errors: String,
    },
    /// Failover: what this director holds changed.
    Holds {
        /// heartbeat's word for it (none, local, foreign, all).
        hold: &'static str,
        /// What it holds now, and why.
        text: String,
    },
    /// lvsd itself is short of something (descriptors, memory, ports):
    /// probes fail for its own reasons and are not counted against reals
    /// (Some: the reason), or it is over (None: how many were not counted).
    Impaired {
        /// Why, while it lasts; None when it is over.
        reason: Option<String>,
        /// Probes not counted so far.
        uncounted: u64,
    },
    /// The daemon removed virtuals at stop (`cleanstop`).
    Stopped {
        /// What it removed.
        removed: Vec<String>,
    },
}

/// One thing the daemon tells.
#[derive(Debug, Clone)]
pub struct Notice {
    /// When it happened.
    pub at: SystemTime,
    /// The daemon's state then.
    pub state: DaemonState,
    /// `real 10.0.0.5:80 of tcp:192.0.2.10:80`, a virtual's name, or ""
    /// for the daemon itself.
    pub subject: String,
    /// What changed.
    pub change: Change,
    /// Whom to tell: the virtual's mail settings (every distinct one of
    /// the configuration for the daemon's own notices).
    pub routes: Vec<Alerts>,
    /// `emailalertfrom`.
    pub from: Option<String>,
    /// The virtual's `servicename` (ldirectord puts it in the subject).
    pub servicename: Option<String>,
}

/// Every distinct mail setting of a configuration (the global one and
/// each virtual's), for the daemon's own notices.
pub fn routes(cfg: &crate::config::Config) -> Vec<Alerts> {
    let mut out: Vec<Alerts> = Vec::new();
    for a in std::iter::once(&cfg.global.alerts).chain(cfg.virtuals.iter().map(|v| &v.alerts)) {
        if !a.emailalert.is_empty() && !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// What failover needs to tell its role changes.
#[derive(Debug, Clone)]
pub struct Teller {
    /// The mailer.
    pub notices: Notices,
    /// Every mail setting of the configuration (at start).
    pub routes: Vec<Alerts>,
    /// `emailalertfrom`.
    pub from: Option<String>,
}

/// Where the daemon's notices go; sending never waits.
#[derive(Debug, Clone)]
pub struct Notices {
    tx: mpsc::Sender<Notice>,
    /// Notices for a recipient dropped since the mailer last kept up.
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Notices {
    /// A channel of `cap` notices: what the daemon tells comes out of the
    /// receiver (the mailer's, or a test's).
    pub fn channel(cap: usize) -> (Notices, mpsc::Receiver<Notice>) {
        let (tx, rx) = mpsc::channel(cap);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        (Notices { tx, dropped }, rx)
    }

    /// Hands a notice over. When the channel is full (a burst of
    /// thousands, or a mailer hours behind) it is dropped: a notice nobody
    /// is to be mailed silently; one for a recipient is logged once when
    /// dropping starts and summed up when the mailer keeps up again.
    pub fn tell(&self, n: Notice) {
        use std::sync::atomic::Ordering;
        let mailed = n.routes.iter().any(|a| !a.emailalert.is_empty());
        match self.tx.try_send(n) {
            Ok(()) => {
                let dropped = self.dropped.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    tracing::warn!(
                        "alerts: the mailer keeps up again; {dropped} notices were dropped"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Full(n)) if mailed => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!(
                        "alerts: the mailer is behind, notices are dropped until it keeps up (first: {} {:?})",
                        n.subject,
                        n.change
                    );
                }
            }
            Err(_) => {}
        }
    }
}

/// The running mailer.
#[derive(Debug)]
pub struct Mailer {
    stop: tokio::sync::oneshot::Sender<std::time::Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl Mailer {
    /// Sends what is told and due now, gives the queues up to `grace`,
    /// and stops.
    pub async fn finish(self, grace: std::time::Duration) {
        let _ = self.stop.send(grace);
        if tokio::time::timeout(grace + std::time::Duration::from_secs(1), self.task)
            .await
            .is_err()
        {
            tracing::warn!("alerts: the mailer did not finish in time");
        }
    }
}

/// Starts the mailer: the policy and the delivery queues.
pub fn start(
    director: String,
    window: std::time::Duration,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) -> (Notices, Mailer) {
    let (tx, rx) = Notices::channel(1024);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let policy = Policy::new(director.clone(), window);
    let task = tokio::spawn(run(rx, stopped, policy, director, metrics));
    (tx, Mailer { stop, task })
}

async fn run(
    mut rx: mpsc::Receiver<Notice>,
    mut stopped: tokio::sync::oneshot::Receiver<std::time::Duration>,
    mut policy: Policy,
    director: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) {
    let start = tokio::time::Instant::now();
    let clock = move || start.elapsed();
    let mut outbox = smtp::Outbox::new(director, metrics);
    let mut grace = std::time::Duration::from_secs(5);
    loop {
        let wake = policy.next_wake();
        tokio::select! {
            n = rx.recv() => match n {
                Some(n) => policy.notice(n, clock()),
                None => break,
            },
            g = &mut stopped => {
                if let Ok(g) = g {
                    grace = g;
                }
                while let Ok(n) = rx.try_recv() {
                    policy.notice(n, clock());
                }
                break;
            }
            () = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(start + t).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        for mail in policy.due(clock()) {
            outbox.send(mail);
        }
    }
    // Stopping: what waits for its minute goes now.
    for mail in policy.flush() {
        outbox.send(mail);
    }
    outbox.close(grace).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn notice(to: &[&str]) -> Notice {
        Notice {
            at: SystemTime::UNIX_EPOCH,
            state: DaemonState::Running,
            subject: "real 10.0.0.5:80 of tcp:192.0.2.10:80".into(),
            change: Change::Up,
            routes: vec![Alerts {
                emailalert: to.iter().map(|s| (*s).to_owned()).collect(),
                emailalertfreq: 0,
                emailalertstatus: crate::config::AlertStatus::ALL,
                smtp: None,
            }],
            from: None,
            servicename: None,
        }
    }

    #[test]
    fn a_full_channel_counts_only_what_someone_would_be_mailed() {
        let (tx, mut rx) = Notices::channel(1);
        tx.tell(notice(&["ops@example.org"]));
        tx.tell(notice(&[]));
        assert_eq!(tx.dropped.load(Ordering::Relaxed), 0);
        tx.tell(notice(&["ops@example.org"]));
        tx.tell(notice(&["ops@example.org"]));
        assert_eq!(tx.dropped.load(Ordering::Relaxed), 2);
        // The mailer takes one: the next notice goes through and the
        // count starts again.
        assert!(rx.try_recv().is_ok());
        tx.tell(notice(&["ops@example.org"]));
        assert_eq!(tx.dropped.load(Ordering::Relaxed), 0);
    }
}
