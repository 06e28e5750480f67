//! The supervisor: owns every piece of state and loops over a closed
//! [`Event`] enum. Nothing else holds state that matters; check tasks and
//! the maintenance scanner only send events.
//!
//! Start (ldirectord's `ld_start`): read the kernel's table; a real the
//! kernel already serves (weight > 0) starts Up without a check, every
//! other real starts Fresh (down until its first result); reconcile once,
//! which adopts what is there (a restart changes nothing for healthy
//! reals); then start one task per check.
//!
//! Running: every probe result goes through its check's rise/fall state;
//! `fallbackcommand` runs when a virtual loses its last real or gets one
//! back;
//! a burst of results is drained before reconciling, so many transitions
//! cost one diff. The kernel is re-read every `resync` to repair drift
//! (someone ran `ipvsadm -d` by hand).
//!
//! Reload (a new, already validated [`Config`] arrives): nothing happens
//! when it equals the running one. Otherwise the new plan is made; a check
//! that is in both keeps its state and its task (timer, phase): no
//! re-probe, no flap. New checks start like at start (a real the kernel
//! serves is up until a check says otherwise). Virtuals no longer in the
//! config are removed from the kernel; the diff orders additions before
//! removals. A plan or checker that cannot be made keeps the running
//! config, with the reason logged.
//!
//! Stop (the shutdown future resolves): check tasks end, and each virtual
//! with `cleanstop=yes` is removed from the kernel; with `cleanstop=no` the
//! table is left as is, so traffic keeps flowing while lvsd is away.

mod carry;
mod checks;
mod drain;
mod reconcile;
mod reload;
mod report;
mod virtuals;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use self::checks::CheckRecord;
use self::virtuals::VirtualRecord;
use crate::config::Config;
use crate::control::Reply;
use crate::health::maintenance;
use crate::health::plan::{Check, Member, Plan};
use crate::health::scheduler::{Outcome, Scheduler};
use crate::health::state::{CheckState, Health};
use crate::ipvs::desired::{Maintenance, RealStatus};
use crate::ipvs::table::{Destination, ServiceKey, Table};
use crate::ipvs::{Kernel, KernelError};

/// Knobs of the run loop that are not in the config.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Re-read the kernel's table this often to repair drift.
    pub resync: Duration,
    /// Most probes in flight at once.
    pub max_in_flight: usize,
    /// Where the checks run: the daemon's runtime (tests) or rooms on
    /// threads of their own (the daemon).
    pub rooms: crate::health::scheduler::Rooms,
    /// How often `maintenancedir` is scanned.
    pub maintenance_poll: Duration,
    /// Where changes are told for alert mails (None: no mail).
    pub alerts: Option<crate::alert::Notices>,
    /// Metrics to keep (None: none).
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// The monitorfile writer (None: monitorfile lines are not written).
    pub monitor: Option<crate::monitor::Monitor>,
    /// Told once the first reconcile is done (systemd's READY).
    pub ready: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// The kernel is a stand-in because this machine has no IPVS (lvsd
    /// started for failover only): a reload that brings virtual services
    /// is refused instead of applied to a table nobody serves from.
    pub without_ipvs: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            resync: Duration::from_secs(10),
            max_in_flight: 1024,
            rooms: crate::health::scheduler::Rooms::Here,
            maintenance_poll: Duration::from_secs(1),
            alerts: None,
            metrics: None,
            monitor: None,
            without_ipvs: false,
            ready: None,
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A checker could not be set up.
    #[error("setting up the checks: {0}")]
    Checker(#[from] checkers::SetupError),
    /// The kernel's table could not be read at start.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// Everything that can happen to the daemon.
#[derive(Debug)]
pub enum Event {
    /// A probe finished.
    Probe(Vec<Outcome>),
    /// The set of reals in maintenance changed.
    Maintenance(Maintenance),
    /// Time to re-read the kernel's table.
    Resync,
    /// A new configuration, already validated.
    Reload(Box<Reload>),
    /// `lvsd status`: the report goes back on the channel.
    Status(tokio::sync::oneshot::Sender<crate::status::Report>),
    /// `lvsd drain|enable REAL`: the answer goes back on the channel.
    Drain(Drain),
    /// Are you alive (the watchdog): answered at once.
    Alive(tokio::sync::oneshot::Sender<()>),
    /// `lvsd keep-table`: the next stop leaves the table.
    KeepTable(tokio::sync::oneshot::Sender<Reply>),
    /// Stop.
    Shutdown,
}

/// The daemon's state.
struct Daemon<K> {
    cfg: Config,
    plan: Plan,
    /// One per check of the plan.
    checks: Vec<CheckRecord>,
    /// One per virtual of the configuration.
    virtuals: Vec<VirtualRecord>,
    /// What takes reals out: `dir_maintenance` and `drained` together.
    maintenance: Maintenance,
    /// The maintenancedir's files.
    dir_maintenance: Maintenance,
    /// `lvsd drain` in force.
    drained: HashSet<(std::net::IpAddr, Option<u16>)>,
    kernel: K,
    /// The kernel's table as lvsd believes it is (last dump + ops applied).
    known: Table,
    owned: HashSet<ServiceKey>,
    /// After a reload: what lvsd owns once the reconcile has removed the
    /// virtuals the new config dropped (until then `owned` has both).
    owned_next: Option<HashSet<ServiceKey>>,
    /// Task id (in probe outcomes) -> index of its check in the plan.
    slot: HashMap<usize, usize>,
    starting: bool,
    dirty: bool,
    alerts: Option<crate::alert::Notices>,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// Each check's probe metrics, one per member (looked up at start and
    /// reload, not at every probe).
    probe_metrics: Vec<Vec<crate::metrics::RealProbes>>,
    monitor: Option<crate::monitor::Monitor>,
    /// `lvsd keep-table`: until when a stop leaves the table.
    keep_until: Option<tokio::time::Instant>,
    /// See [`RunOptions::without_ipvs`].
    without_ipvs: bool,
    /// lvsd's own trouble, while it lasts.
    impaired: Option<checks::Impaired>,
}

/// How long `lvsd keep-table` holds.
pub const KEEP_TABLE_FOR: Duration = Duration::from_secs(60);

/// `lvsd drain|enable REAL`.
#[derive(Debug)]
pub struct Drain {
    /// The real (address, maybe port).
    pub target: crate::control::Target,
    /// Drain (true) or enable (false).
    pub drain: bool,
    /// The answer.
    pub reply: tokio::sync::oneshot::Sender<Reply>,
}

/// A validated configuration for the daemon to take, and where its
/// answer goes.
#[derive(Debug)]
pub struct Reload {
    /// The new configuration.
    pub config: Config,
    /// Take it even if it has no virtual service while the running one
    /// has some (`lvsd reload --allow-empty`); refused otherwise.
    pub allow_empty: bool,
    /// The daemon's outcome.
    pub reply: tokio::sync::oneshot::Sender<ReloadOutcome>,
}

/// What the daemon did with a reload: the answer `lvsd reload` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// In force now; a one-line summary of what changed.
    Applied(String),
    /// The same configuration as the one running: nothing done.
    Unchanged,
    /// Not taken (the running configuration stays): why.
    Refused(String),
}

/// What reaches the daemon from outside besides probes: new
/// configurations (already loaded and validated by the caller), status
/// requests and drains.
#[derive(Debug)]
pub struct Inbox {
    /// New configurations.
    pub reloads: mpsc::Receiver<Reload>,
    /// `lvsd status` requests.
    pub status: mpsc::Receiver<tokio::sync::oneshot::Sender<crate::status::Report>>,
    /// `lvsd drain|enable` requests.
    pub drains: mpsc::Receiver<Drain>,
    /// Liveness asks (systemd's watchdog): answered from the loop.
    pub alive: mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
    /// `lvsd keep-table`: the answer goes back on the channel.
    pub keep_table: mpsc::Receiver<tokio::sync::oneshot::Sender<Reply>>,
}

/// The senders of an [`Inbox`].
#[derive(Debug, Clone)]
pub struct Handle {
    /// New configurations.
    pub reload: mpsc::Sender<Reload>,
    /// `lvsd status` requests.
    pub status: mpsc::Sender<tokio::sync::oneshot::Sender<crate::status::Report>>,
    /// `lvsd drain|enable` requests.
    pub drain: mpsc::Sender<Drain>,
    /// Liveness asks.
    pub alive: mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    /// `lvsd keep-table`.
    pub keep_table: mpsc::Sender<tokio::sync::oneshot::Sender<Reply>>,
}

impl Inbox {
    /// An inbox and the handle that sends to it.
    pub fn new() -> (Inbox, Handle) {
        let (reload, reloads) = mpsc::channel(4);
        let (status, status_rx) = mpsc::channel(8);
        let (drain, drains) = mpsc::channel(8);
        let (alive, alive_rx) = mpsc::channel(1);
        let (keep_table, keep_rx) = mpsc::channel(1);
        (
            Inbox {
                reloads,
                status: status_rx,
                drains,
                alive: alive_rx,
                keep_table: keep_rx,
            },
            Handle {
                reload,
                status,
                drain,
                alive,
                keep_table,
            },
        )
    }
}

/// Runs lvsd on `cfg` against `kernel` until `shutdown` resolves.
pub async fn run<K: Kernel>(
    cfg: Config,
    kernel: K,
    opts: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let (inbox, _handle) = Inbox::new();
    run_with(cfg, kernel, opts, shutdown, inbox).await
}

/// [`run`], taking reloads and status requests from `inbox`.
pub async fn run_with<K: Kernel>(
    cfg: Config,
    kernel: K,
    opts: RunOptions,
    shutdown: impl Future<Output = ()>,
    mut inbox: Inbox,
) -> Result<(), DaemonError> {
    let plan = Plan::of(&cfg);
    let mut d = Daemon::start(cfg, plan, kernel, &opts).await?;
    if let Some(r) = &opts.ready {
        r.notify_one();
    }
    // The checks start once the table is programmed: starting them while
    // 10,000 reals are added and logged (tried) overloaded a 2-core
    // director enough that first probes missed their deadline, and the
    // flapping that followed kept it overloaded.
    let (probe_tx, mut probes) = mpsc::channel(64);
    let mut scheduler = Scheduler::start(&d.plan.checks, probe_tx, opts.max_in_flight, opts.rooms)
        .map_err(DaemonError::Checker)?;
    d.slot = slots(scheduler.ids());
    trim_heap();
    tracing::info!(
        "started: {} virtual(s), {} check(s) for {} real(s)",
        d.cfg.virtuals.len(),
        scheduler.len(),
        d.cfg.virtuals.iter().map(|v| v.reals.len()).sum::<usize>()
    );
    let (maint_tx, mut maint) = mpsc::channel(4);
    let watch = |d: &Daemon<K>| {
        d.cfg.global.maintenancedir.clone().map(|dir| {
            AbortOnDrop(tokio::spawn(maintenance::watch(
                dir,
                opts.maintenance_poll,
                d.dir_maintenance.clone(),
                maint_tx.clone(),
            )))
        })
    };
    let mut watcher = watch(&d);
    let mut resync =
        tokio::time::interval_at(tokio::time::Instant::now() + opts.resync, opts.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let event = tokio::select! {
            biased;
            () = &mut shutdown => Event::Shutdown,
            Some(o) = probes.recv() => Event::Probe(o),
            Some(m) = maint.recv() => Event::Maintenance(m),
            Some(r) = inbox.reloads.recv() => Event::Reload(Box::new(r)),
            Some(reply) = inbox.status.recv() => Event::Status(reply),
            Some(req) = inbox.drains.recv() => Event::Drain(req),
            Some(reply) = inbox.alive.recv() => Event::Alive(reply),
            Some(reply) = inbox.keep_table.recv() => Event::KeepTable(reply),
            _ = resync.tick() => Event::Resync,
        };
        match event {
            Event::Probe(batch) => {
                for o in batch {
                    d.observe(o);
                }
                // Coalesce a burst: everything already waiting, one reconcile.
                while let Ok(batch) = probes.try_recv() {
                    for o in batch {
                        d.observe(o);
                    }
                }
            }
            Event::Maintenance(m) => d.set_maintenance(m),
            Event::Reload(r) => {
                let dir = d.cfg.global.maintenancedir.clone();
                let Reload {
                    config,
                    allow_empty,
                    reply,
                } = *r;
                let _ = reply.send(d.reload(config, allow_empty, &mut scheduler));
                trim_heap();
                if d.cfg.global.maintenancedir != dir {
                    watcher = watch(&d);
                }
            }
            Event::Resync => d.resync().await,
            Event::Status(reply) => {
                let _ = reply.send(d.report().await);
            }
            Event::Drain(req) => {
                let answer = d.drain(req.target, req.drain);
                let _ = req.reply.send(answer);
            }
            Event::Alive(reply) => {
                let _ = reply.send(());
            }
            Event::KeepTable(reply) => {
                d.keep_until = Some(tokio::time::Instant::now() + KEEP_TABLE_FOR);
                tracing::info!(
                    "keep-table: a stop within {} s leaves the IPVS table as it is",
                    KEEP_TABLE_FOR.as_secs()
                );
                let _ = reply.send(Reply::done(format!(
                    "the IPVS table stays when lvsd stops within {} s (a restart)\n",
                    KEEP_TABLE_FOR.as_secs()
                )));
            }
            Event::Shutdown => break,
        }
        if d.dirty {
            d.reconcile().await;
        }
    }
    drop(scheduler);
    drop(watcher);
    d.stop().await;
    Ok(())
}

/// Gives the heap's free memory back to the system. Reading a config,
/// planning and building 10,000 checkers leaves megabytes freed but held
/// by the allocator (glibc keeps them between live blocks); without this
/// lvsd's RSS is a third higher than the memory it uses.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_heap() {
    // SAFETY: malloc_trim takes no pointer and only releases memory the
    // allocator holds unused; it is safe to call at any time from any
    // thread (glibc locks its arenas).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// Task id -> check index.
fn slots(ids: &[usize]) -> HashMap<usize, usize> {
    ids.iter().enumerate().map(|(i, id)| (*id, i)).collect()
}

/// A new check's first state: up when the kernel already serves every one
/// of its reals (a restart or reload changes nothing for them), else fresh
/// (down until its first result).
fn initial_state(cfg: &Config, known: &Table, c: &Check, members: &[Member]) -> CheckState {
    let served = members.iter().all(|&(vi, ri)| {
        let vs = &cfg.virtuals[vi];
        let d = Destination::of(vs, &vs.reals[ri]);
        known
            .service(&ServiceKey::from(vs.key))
            .is_some_and(|(_, ds)| ds.iter().any(|x| x.same(&d) && x.weight > 0))
    });
    if served {
        CheckState::up(c.failurecount, c.risecount)
    } else {
        CheckState::fresh(c.failurecount, c.risecount)
    }
}

/// Aborts a helper task when the daemon returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<K: Kernel> Daemon<K> {
    async fn start(
        cfg: Config,
        plan: Plan,
        mut kernel: K,
        opts: &RunOptions,
    ) -> Result<Daemon<K>, DaemonError> {
        let known = kernel.dump().await?;
        let maintenance = match &cfg.global.maintenancedir {
            Some(dir) => maintenance::scan(dir, &mut Default::default()).await,
            None => Maintenance::default(),
        };
        let checks = plan
            .checks
            .iter()
            .zip(&plan.members)
            .map(|(c, members)| {
                CheckRecord::new(
                    initial_state(&cfg, &known, c, members),
                    crate::alert::DaemonState::Starting,
                )
            })
            .collect();
        let owned = cfg
            .virtuals
            .iter()
            .map(|v| ServiceKey::from(v.key))
            .collect();
        let mut d = Daemon {
            checks,
            virtuals: cfg
                .virtuals
                .iter()
                .map(|_| VirtualRecord::default())
                .collect(),
            cfg,
            plan,
            dir_maintenance: maintenance.clone(),
            drained: HashSet::new(),
            maintenance,
            kernel,
            known,
            owned,
            owned_next: None,
            slot: HashMap::new(),
            starting: true,
            dirty: false,
            alerts: opts.alerts.clone(),
            metrics: opts.metrics.clone(),
            probe_metrics: Vec::new(),
            monitor: opts.monitor.clone(),
            keep_until: None,
            without_ipvs: opts.without_ipvs,
            impaired: None,
        };
        d.all_real_gauges();
        d.reconcile().await;
        Ok(d)
    }

    /// What real `ri` of virtual `vi` is now, for `desired`.
    fn status(&self, vi: usize, ri: usize) -> RealStatus {
        let vs = &self.cfg.virtuals[vi];
        let d = Destination::of(vs, &vs.reals[ri]);
        RealStatus {
            health: self.plan.of_real[vi][ri]
                .map_or(Health::Down, |c| self.checks[c].state.health()),
            maintenance: self.maintenance.covers(d.addr, d.port),
        }
    }

    /// `real 10.0.0.5:80 of tcp:192.0.2.10:80`.
    fn real_name(&self, vi: usize, ri: usize) -> String {
        let vs = &self.cfg.virtuals[vi];
        let d = Destination::of(vs, &vs.reals[ri]);
        format!(
            "real {} of {}",
            d.endpoint(),
            ServiceKey::from(vs.key).name()
        )
    }
}
