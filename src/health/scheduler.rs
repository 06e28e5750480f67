//! One task per unique check: the interval, its jitter, the hard deadline
//! and the cap on probes in flight.
//!
//! - Each task starts at a fixed offset within its first interval (a hash
//!   of the check), so 10,000 checks spread over the interval instead of
//!   firing in the same millisecond; later rounds start `interval` after
//!   the previous start, ±5% jitter, so a probe that takes long does not
//!   stretch the period (ldirectord's period is interval + every check's
//!   duration).
//! - The deadline is enforced by [`checkers::run_probe`], outside the
//!   checker, so a real that hangs costs its own task its deadline and
//!   nothing else; a checker that panics is a failed probe.
//! - A semaphore caps the probes in flight; a task waits for a permit
//!   before its deadline starts.
//! - Results go to the daemon over a bounded channel; tasks stop when the
//!   daemon drops the receiver or the [`Scheduler`] is dropped.
//! - A reload ([`Scheduler::update`]) keeps the task of every check that is
//!   still wanted, with its timer and phase, stops the others and starts
//!   the new ones. Each task has an id never used again, which its
//!   outcomes carry.

use std::collections::HashMap;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use checkers::{Checker, Connect, Http, HttpClients, HttpOptions, IcmpSockets, Ping, ProbeError};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::plan::{Check, Probe, ProbeSpec};

/// The result of one probe of one check.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The id of the check's task (see [`Scheduler::ids`]).
    pub check: usize,
    /// Up, or why not.
    pub result: Result<(), ProbeError>,
    /// When the probe started (after waiting for a permit).
    pub started: Instant,
    /// How long it took.
    pub took: Duration,
}

/// The running check tasks; dropping it stops them all.
pub struct Scheduler {
    /// Task id -> its check (the plan's, shared) and task.
    tasks: HashMap<usize, (Arc<Check>, JoinHandle<()>)>,
    /// The task id of each check, in the order of the last plan.
    ids: Vec<usize>,
    next_id: usize,
    icmp: Arc<IcmpSockets>,
    http: HttpClients,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<Outcome>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for (_, t) in self.tasks.values() {
            t.abort();
        }
    }
}

/// A probe ready to run.
struct Ready {
    checker: Arc<dyn Checker>,
    deadline: Duration,
}

/// Builds the checker for one probe spec.
fn build(
    p: &Probe,
    icmp: &Arc<IcmpSockets>,
    http: &mut HttpClients,
) -> Result<Ready, checkers::SetupError> {
    let checker: Arc<dyn Checker> = match &p.spec {
        // `service=none`: ldirectord's `check_none`, always up.
        ProbeSpec::None => Arc::new(checkers::On),
        ProbeSpec::Connect { addr, port } => Arc::new(Connect::new(*addr, *port)),
        ProbeSpec::Ping { addr, count, wait } => {
            Arc::new(Ping::new(Arc::clone(icmp), *addr, *count, *wait))
        }
        ProbeSpec::Http {
            tls,
            addr,
            port,
            path,
            virtualhost,
            head,
            receive,
            verify,
        } => {
            let mut o = HttpOptions::get(*tls, *addr, *port, path);
            o.virtualhost = virtualhost.clone();
            o.head = *head;
            o.verify_tls = *verify;
            o.receive = receive.regex();
            Arc::new(Http::with_clients(o, http)?)
        }
        ProbeSpec::Smtp { addr, port } => Arc::new(checkers::Smtp::new(*addr, *port)),
        ProbeSpec::Mail {
            imap,
            tls,
            verify,
            addr,
            port,
            login,
        } => {
            if *imap {
                Arc::new(checkers::Imap::new(
                    *addr,
                    *port,
                    *tls,
                    *verify,
                    login.clone(),
                )?)
            } else {
                Arc::new(checkers::Pop::new(
                    *addr,
                    *port,
                    *tls,
                    *verify,
                    login.clone(),
                )?)
            }
        }
        ProbeSpec::Dns {
            addr,
            port,
            tcp,
            request,
            receive,
        } => Arc::new(checkers::Dns::new(
            *addr,
            *port,
            *tcp,
            request,
            receive.regex(),
        )?),
        ProbeSpec::Ldap {
            tls,
            verify,
            addr,
            port,
            login,
            request,
            receive,
        } => Arc::new(checkers::Ldap::new(
            *addr,
            *port,
            *tls,
            *verify,
            login.clone(),
            request,
            receive.regex(),
        )),
        ProbeSpec::Sql {
            engine,
            addr,
            port,
            login,
            database,
            request,
        } => Arc::new(checkers::Sql::new(
            *engine,
            *addr,
            *port,
            login.clone(),
            database,
            request,
        )),
        ProbeSpec::Sip {
            addr,
            port,
            tcp,
            user,
        } => Arc::new(checkers::Sip::new(*addr, *port, *tcp, user)),
        ProbeSpec::Radius {
            addr,
            port,
            login,
            secret,
        } => Arc::new(checkers::Radius::new(
            *addr,
            *port,
            login.clone(),
            &secret.0,
        )),
        ProbeSpec::Nntp { addr, port } => Arc::new(checkers::Nntp::new(*addr, *port)),
        ProbeSpec::Ftp {
            addr,
            port,
            login,
            file,
            receive,
        } => Arc::new(checkers::Ftp::new(
            *addr,
            *port,
            login.clone(),
            file.clone(),
            receive.regex(),
        )),
        ProbeSpec::SimpleTcp {
            addr,
            port,
            request,
            receive,
        } => Arc::new(checkers::SimpleTcp::new(
            *addr,
            *port,
            request,
            receive.regex(),
        )),
        ProbeSpec::External { command, args } => {
            Arc::new(checkers::External::new(command, args.clone()))
        }
    };
    Ok(Ready {
        checker,
        deadline: p.deadline,
    })
}

/// A deterministic fraction in [0, 1) from a hash.
fn fraction(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn hash_of(c: &Check) -> u64 {
    let mut h = DefaultHasher::new();
    c.hash(&mut h);
    h.finish()
}

/// When, within its first interval, a check first runs: a fixed point
/// derived from the check itself, so checks spread evenly and a restart
/// keeps each one's phase.
pub fn first_offset(c: &Check) -> Duration {
    c.interval.mul_f64(fraction(hash_of(c)))
}

impl Scheduler {
    /// Starts one task per check (ids 0, 1, ... in order). Fails only when
    /// a checker cannot be built (the TLS stack).
    pub fn start(
        checks: &[Arc<Check>],
        tx: mpsc::Sender<Outcome>,
        max_in_flight: usize,
    ) -> Result<Scheduler, checkers::SetupError> {
        let mut s = Scheduler {
            tasks: HashMap::new(),
            ids: Vec::new(),
            next_id: 0,
            icmp: IcmpSockets::new(),
            http: HttpClients::default(),
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            tx,
        };
        s.update(checks)?;
        Ok(s)
    }

    /// Makes the running tasks those of `checks`: a check already running
    /// keeps its task (its timer, its phase, its negotiate count), the
    /// others stop, new ones start. Nothing changes when a new checker
    /// cannot be built.
    pub fn update(&mut self, checks: &[Arc<Check>]) -> Result<(), checkers::SetupError> {
        let running: HashMap<&Check, usize> =
            self.tasks.iter().map(|(id, (c, _))| (&**c, *id)).collect();
        let mut ids = Vec::with_capacity(checks.len());
        let mut new = Vec::new();
        for c in checks {
            match running.get(&**c) {
                Some(id) => ids.push(*id),
                None => {
                    let probe = build(&c.probe, &self.icmp, &mut self.http)?;
                    let negotiate = match &c.negotiate_every {
                        Some((n, p)) => Some((*n, build(p, &self.icmp, &mut self.http)?)),
                        None => None,
                    };
                    let id = self.next_id + new.len();
                    ids.push(id);
                    new.push((id, Arc::clone(c), probe, negotiate));
                }
            }
        }
        self.next_id += new.len();
        let keep: std::collections::HashSet<usize> = ids.iter().copied().collect();
        self.tasks.retain(|id, (_, t)| {
            let kept = keep.contains(id);
            if !kept {
                t.abort();
            }
            kept
        });
        for (id, c, probe, negotiate) in new {
            let task = CheckTask {
                id,
                first: first_offset(&c),
                probe,
                negotiate,
                interval: c.interval,
                seed: hash_of(&c),
                tx: self.tx.clone(),
                permits: Arc::clone(&self.permits),
            };
            self.tasks.insert(id, (c, tokio::spawn(task.run())));
        }
        self.ids = ids;
        Ok(())
    }

    /// The task id of each check of the last plan, in its order.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// Number of check tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there are no check tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

struct CheckTask {
    id: usize,
    first: Duration,
    probe: Ready,
    negotiate: Option<(u32, Ready)>,
    interval: Duration,
    seed: u64,
    tx: mpsc::Sender<Outcome>,
    permits: Arc<Semaphore>,
}

impl CheckTask {
    async fn run(mut self) {
        let mut next = Instant::now() + self.first;
        // checktype=N: the first probe negotiates, then every N good connects.
        let mut connects_since_negotiate = u32::MAX;
        loop {
            tokio::time::sleep_until(next).await;
            let use_negotiate = match &self.negotiate {
                Some((n, _)) => connects_since_negotiate >= *n,
                None => false,
            };
            let ready = match (&self.negotiate, use_negotiate) {
                (Some((_, neg)), true) => neg,
                _ => &self.probe,
            };
            let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                return;
            };
            let started = Instant::now();
            let result = checkers::run_probe(Arc::clone(&ready.checker), ready.deadline).await;
            drop(permit);
            connects_since_negotiate = match (&result, use_negotiate) {
                (Err(_), _) => u32::MAX,
                (Ok(()), true) => 0,
                (Ok(()), false) => connects_since_negotiate.saturating_add(1),
            };
            let took = started.elapsed();
            let outcome = Outcome {
                check: self.id,
                result,
                started,
                took,
            };
            if self.tx.send(outcome).await.is_err() {
                return;
            }
            // ±5% so checks that started together drift apart.
            self.seed = self
                .seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let jitter = self.interval.mul_f64(0.1 * fraction(self.seed));
            next = (started + self.interval + jitter)
                .checked_sub(self.interval / 20)
                .unwrap_or(started)
                .max(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_checks_spread_over_their_interval() {
        let mut per_ms = vec![0u32; 1000];
        for port in 1..=10_000u16 {
            let c = Check {
                probe: Probe {
                    spec: ProbeSpec::Connect {
                        addr: "10.0.0.5".parse().unwrap(),
                        port,
                    },
                    deadline: Duration::from_secs(5),
                },
                negotiate_every: None,
                interval: Duration::from_secs(1),
                failurecount: 1,
                risecount: 1,
            };
            let off = first_offset(&c);
            assert!(off < c.interval);
            per_ms[off.as_millis() as usize] += 1;
        }
        // Uniform would be 10 a millisecond; no millisecond gets a crowd
        // and none is left empty.
        let (min, max) = (per_ms.iter().min().unwrap(), per_ms.iter().max().unwrap());
        assert!(*max <= 30, "{max} checks in one millisecond");
        assert!(*min >= 1, "an empty millisecond");
    }
}
