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

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use checkers::ProbeError;
use tokio::sync::mpsc;

use crate::config::{Config, VirtualKey};
use crate::health::maintenance;
use crate::health::plan::{Check, Member, Plan};
use crate::health::scheduler::{Outcome, Scheduler};
use crate::health::state::{CheckState, Health, Verdict};
use crate::ipvs::desired::{Maintenance, RealStatus, desired, serves};
use crate::ipvs::diff::diff;
use crate::ipvs::table::{Destination, ServiceKey, Table};
use crate::ipvs::{Kernel, KernelError};

/// Knobs of the run loop that are not in the config.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Re-read the kernel's table this often to repair drift.
    pub resync: Duration,
    /// Most probes in flight at once.
    pub max_in_flight: usize,
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
    Checker(String),
    /// The kernel's table could not be read at start.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// Everything that can happen to the daemon.
#[derive(Debug)]
pub enum Event {
    /// A probe finished.
    Probe(Outcome),
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
    KeepTable(tokio::sync::oneshot::Sender<String>),
    /// Stop.
    Shutdown,
}

/// The daemon's state.
struct Daemon<K> {
    cfg: Config,
    plan: Plan,
    states: Vec<CheckState>,
    last_error: Vec<Option<ProbeError>>,
    /// When each check last started a probe.
    last_probe: Vec<Option<tokio::time::Instant>>,
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
    /// Per virtual: whether `fallbackcommand` last ran with `start` (no
    /// real up) or `stop`; None before the first reconcile.
    fallback_state: Vec<Option<bool>>,
    /// Per virtual: the last `fallbackcommand` run, which the next waits for.
    fallback_runs: Vec<Option<tokio::task::JoinHandle<()>>>,
    /// Per check: the daemon state its first verdict is told in
    /// (starting, or reloading for checks a reload added); running after.
    born: Vec<crate::alert::DaemonState>,
    /// Per virtual: whether no real serves, as last told (None: not yet
    /// known, some check has no result yet).
    none_up: Vec<Option<bool>>,
    alerts: Option<crate::alert::Notices>,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    monitor: Option<crate::monitor::Monitor>,
    /// `lvsd keep-table`: until when a stop leaves the table.
    keep_until: Option<tokio::time::Instant>,
    /// See [`RunOptions::without_ipvs`].
    without_ipvs: bool,
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
    pub reply: tokio::sync::oneshot::Sender<String>,
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
    pub keep_table: mpsc::Receiver<tokio::sync::oneshot::Sender<String>>,
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
    pub keep_table: mpsc::Sender<tokio::sync::oneshot::Sender<String>>,
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
    let (probe_tx, mut probes) = mpsc::channel(4096);
    let mut scheduler = Scheduler::start(&d.plan.checks, probe_tx, opts.max_in_flight)
        .map_err(DaemonError::Checker)?;
    d.slot = slots(scheduler.ids());
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
            Event::Probe(o) => {
                d.observe(o);
                // Coalesce a burst: everything already waiting, one reconcile.
                while let Ok(o) = probes.try_recv() {
                    d.observe(o);
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
                let _ = reply.send(format!(
                    "the IPVS table stays when lvsd stops within {} s (a restart)\n",
                    KEEP_TABLE_FOR.as_secs()
                ));
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
        let states = plan
            .checks
            .iter()
            .zip(&plan.members)
            .map(|(c, members)| initial_state(&cfg, &known, c, members))
            .collect::<Vec<_>>();
        let owned = cfg
            .virtuals
            .iter()
            .map(|v| ServiceKey::from(v.key))
            .collect();
        let fallback_state = vec![None; cfg.virtuals.len()];
        let states_len = states.len();
        let mut d = Daemon {
            last_error: vec![None; states.len()],
            last_probe: vec![None; states.len()],
            states,
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
            fallback_runs: (0..fallback_state.len()).map(|_| None).collect(),
            born: vec![crate::alert::DaemonState::Starting; states_len],
            none_up: vec![None; fallback_state.len()],
            fallback_state,
            alerts: opts.alerts.clone(),
            metrics: opts.metrics.clone(),
            monitor: opts.monitor.clone(),
            keep_until: None,
            without_ipvs: opts.without_ipvs,
        };
        d.all_real_gauges();
        d.reconcile().await;
        Ok(d)
    }

    fn status(&self, vi: usize, ri: usize) -> RealStatus {
        let vs = &self.cfg.virtuals[vi];
        let d = Destination::of(vs, &vs.reals[ri]);
        RealStatus {
            health: self.plan.of_real[vi][ri].map_or(Health::Down, |c| self.states[c].health()),
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

    fn observe(&mut self, mut o: Outcome) {
        // A result of a task a reload stopped has no check any more.
        let Some(&check) = self.slot.get(&o.check) else {
            return;
        };
        o.check = check;
        let Some(state) = self.states.get_mut(o.check) else {
            return;
        };
        self.last_probe[o.check] = Some(o.started);
        let verdict = state.observe(o.result.is_ok());
        if verdict.transition().is_some() {
            self.dirty = true;
        }
        self.tell_probe(&o);
        if verdict == Verdict::Steady {
            // The common case, once per check per interval: nothing to say.
            self.last_error[o.check] = o.result.err();
            return;
        }
        let reason = match &o.result {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        self.last_error[o.check] = o.result.err();
        let plural = |n: u32, w: &str| {
            if n == 1 {
                format!("1 {w}")
            } else {
                format!("{n} {w}s")
            }
        };
        for &(vi, ri) in &self.plan.members[o.check] {
            let who = self.real_name(vi, ri);
            match verdict {
                Verdict::Steady => {}
                Verdict::SoftFailure { n, of } => {
                    tracing::info!("{who} soft failure {n}/{of}: {reason}")
                }
                Verdict::Recovered { after } => {
                    tracing::info!(
                        "{who} answers again; resetting {}",
                        plural(after, "soft failure")
                    )
                }
                Verdict::Rising { n, of } => tracing::info!("{who} answers ({n}/{of} before up)"),
                Verdict::Confirmed => tracing::warn!("{who} is down at start: {reason}"),
                Verdict::Down { after } => {
                    tracing::warn!("{who} down after {}: {reason}", plural(after, "failure"))
                }
                Verdict::Up { after } => {
                    tracing::info!("{who} up after {}", plural(after, "success"))
                }
            }
        }
        let change = match verdict {
            Verdict::Confirmed | Verdict::Down { .. } => crate::alert::Change::Down { reason },
            Verdict::Up { .. } => crate::alert::Change::Up,
            _ => return,
        };
        let state = std::mem::replace(&mut self.born[o.check], crate::alert::DaemonState::Running);
        for &(vi, ri) in &self.plan.members[o.check] {
            if let Some(m) = &self.metrics {
                let vs = &self.cfg.virtuals[vi];
                let d = Destination::of(vs, &vs.reals[ri]);
                let up = change == crate::alert::Change::Up;
                m.transition(&ServiceKey::from(vs.key).name(), &d.endpoint(), up);
            }
            self.tell(vi, self.real_name(vi, ri), state, change.clone());
        }
    }

    /// Metrics and monitorfile lines for one probe result.
    fn tell_probe(&self, o: &Outcome) {
        if self.metrics.is_none() && self.monitor.is_none() {
            return;
        }
        let now = std::time::SystemTime::now();
        for &(vi, ri) in &self.plan.members[o.check] {
            let vs = &self.cfg.virtuals[vi];
            if let Some(m) = &self.metrics {
                let d = Destination::of(vs, &vs.reals[ri]);
                m.probe(
                    &ServiceKey::from(vs.key).name(),
                    &d.endpoint(),
                    o.result.is_ok(),
                    o.took,
                );
            }
            if let (Some(w), Some(path)) = (&self.monitor, &vs.monitorfile) {
                let msg = match &o.result {
                    Ok(()) => String::new(),
                    Err(e) => e.to_string(),
                };
                let id = crate::monitor::real_id(vs, &vs.reals[ri]);
                w.write(
                    path.clone(),
                    crate::monitor::line(now, &id, o.result.is_ok(), &msg),
                );
            }
        }
    }

    /// Tells the mailer about a change of virtual `vi` (or one of its reals).
    fn tell(
        &self,
        vi: usize,
        subject: String,
        state: crate::alert::DaemonState,
        change: crate::alert::Change,
    ) {
        let Some(a) = &self.alerts else {
            return;
        };
        let vs = &self.cfg.virtuals[vi];
        a.tell(crate::alert::Notice {
            at: std::time::SystemTime::now(),
            state,
            subject,
            change,
            routes: vec![vs.alerts.clone()],
            from: self.cfg.global.emailalertfrom.clone(),
            servicename: vs.servicename.clone(),
        });
    }

    /// The real_up gauge of every checked real (at start and reload).
    fn all_real_gauges(&self) {
        let Some(m) = &self.metrics else {
            return;
        };
        for (vi, vs) in self.cfg.virtuals.iter().enumerate() {
            for (ri, r) in vs.reals.iter().enumerate() {
                if let Some(c) = self.plan.of_real[vi][ri] {
                    let d = Destination::of(vs, r);
                    let up = !self.states[c].is_fresh() && self.states[c].health() == Health::Up;
                    m.real_up(&ServiceKey::from(vs.key).name(), &d.endpoint(), up);
                }
            }
        }
    }

    /// The maintenancedir changed.
    fn set_maintenance(&mut self, m: Maintenance) {
        self.dir_maintenance = m;
        self.apply_maintenance();
    }

    /// `lvsd drain|enable`: the answer says which reals that touches.
    fn drain(&mut self, t: crate::control::Target, on: bool) -> String {
        let reals: Vec<String> = self
            .cfg
            .virtuals
            .iter()
            .enumerate()
            .flat_map(|(vi, vs)| (0..vs.reals.len()).map(move |ri| (vi, ri)))
            .filter(|&(vi, ri)| {
                let vs = &self.cfg.virtuals[vi];
                let d = Destination::of(vs, &vs.reals[ri]);
                d.addr == t.addr && t.port.is_none_or(|p| p == d.port)
            })
            .map(|(vi, ri)| self.real_name(vi, ri))
            .collect();
        if reals.is_empty() {
            return format!("error: no real {t} in the configuration\n");
        }
        let key = (t.addr, t.port);
        let changed = if on {
            self.drained.insert(key)
        } else {
            self.drained.remove(&key)
        };
        self.apply_maintenance();
        let mut out = format!(
            "{} {t}{}: {}\n",
            if on { "drained" } else { "enabled" },
            if changed { "" } else { " (already so)" },
            reals.join(", ")
        );
        if !on && self.dir_maintenance.0.contains(&key) {
            out.push_str("note: a maintenancedir file still keeps it out\n");
        }
        out
    }

    /// The maintenancedir's reals and the drained ones, out.
    fn apply_maintenance(&mut self) {
        let mut m = self.dir_maintenance.clone();
        m.0.extend(self.drained.iter().copied());
        if m == self.maintenance {
            return;
        }
        for (vi, vs) in self.cfg.virtuals.iter().enumerate() {
            for (ri, r) in vs.reals.iter().enumerate() {
                let d = Destination::of(vs, r);
                match (
                    self.maintenance.covers(d.addr, d.port),
                    m.covers(d.addr, d.port),
                ) {
                    (false, true) => {
                        tracing::info!("{} enters maintenance", self.real_name(vi, ri));
                        self.tell(
                            vi,
                            self.real_name(vi, ri),
                            crate::alert::DaemonState::Running,
                            crate::alert::Change::Maintenance(true),
                        );
                    }
                    (true, false) => {
                        tracing::info!("{} leaves maintenance", self.real_name(vi, ri));
                        self.tell(
                            vi,
                            self.real_name(vi, ri),
                            crate::alert::DaemonState::Running,
                            crate::alert::Change::Maintenance(false),
                        );
                    }
                    _ => {}
                }
            }
        }
        self.maintenance = m;
        self.dirty = true;
    }

    /// Takes a new configuration (see the module's documentation).
    fn reload(
        &mut self,
        cfg: Config,
        allow_empty: bool,
        scheduler: &mut Scheduler,
    ) -> ReloadOutcome {
        if cfg == self.cfg {
            tracing::info!("reload: the configuration is unchanged");
            if let Some(m) = &self.metrics {
                m.reload("unchanged");
            }
            return ReloadOutcome::Unchanged;
        }
        if self.without_ipvs && !cfg.virtuals.is_empty() {
            let why = "lvsd started without virtual services on a machine without IPVS (is ip_vs loaded?): virtual services need a restart of lvsd".to_owned();
            return self.refused(why);
        }
        // A file emptied or caught half-written reads as valid: taking it
        // would empty the IPVS table. Only an explicit reload does that.
        // The same for a file cut after a `virtual=` line: virtuals but not
        // one real left.
        let reals = |c: &Config| c.virtuals.iter().map(|v| v.reals.len()).sum::<usize>();
        let emptied = if cfg.virtuals.is_empty() && !self.cfg.virtuals.is_empty() {
            Some(format!(
                "the new configuration has no virtual service where the running one has {}",
                self.cfg.virtuals.len()
            ))
        } else if reals(&cfg) == 0 && reals(&self.cfg) > 0 {
            Some(format!(
                "the new configuration has no real server where the running one has {}",
                reals(&self.cfg)
            ))
        } else {
            None
        };
        if let Some(what) = emptied
            && !allow_empty
        {
            let why = format!(
                "{what}: an emptied or half-written file? (`lvsd reload --allow-empty` removes them all)"
            );
            return self.refused(why);
        }
        if cfg.failover != self.cfg.failover {
            tracing::warn!(
                "reload: failover (ha.cf, haresources, authkeys) changes take effect when lvsd restarts"
            );
        }
        let plan = Plan::of(&cfg);
        if let Err(e) = scheduler.update(&plan.checks) {
            return self.refused(e);
        }
        let old: HashMap<&Check, usize> = self
            .plan
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        let mut kept = 0;
        let mut last_probe = Vec::with_capacity(plan.checks.len());
        let mut born = Vec::with_capacity(plan.checks.len());
        let (states, last_error): (Vec<_>, Vec<_>) = plan
            .checks
            .iter()
            .zip(&plan.members)
            .map(|(c, members)| match old.get(c) {
                Some(&i) => {
                    kept += 1;
                    last_probe.push(self.last_probe[i]);
                    born.push(self.born[i]);
                    (self.states[i].clone(), self.last_error[i].clone())
                }
                None => {
                    last_probe.push(None);
                    born.push(crate::alert::DaemonState::Reloading);
                    (initial_state(&cfg, &self.known, c, members), None)
                }
            })
            .unzip();
        let started = plan.checks.len() - kept;
        let stopped = self.plan.checks.len() - kept;
        // fallbackcommand state follows its virtual.
        let keys = |c: &Config| {
            c.virtuals
                .iter()
                .map(|v| v.key)
                .collect::<Vec<VirtualKey>>()
        };
        type Carried = (
            (Option<bool>, Option<bool>),
            Option<tokio::task::JoinHandle<()>>,
        );
        let mut runs: HashMap<VirtualKey, Carried> = keys(&self.cfg)
            .into_iter()
            .zip(
                self.fallback_state
                    .iter()
                    .copied()
                    .zip(self.none_up.iter().copied())
                    .zip(self.fallback_runs.iter_mut().map(Option::take)),
            )
            .collect();
        let ((fallback_state, none_up), fallback_runs): ((Vec<_>, Vec<_>), Vec<_>) = keys(&cfg)
            .iter()
            .map(|k| runs.remove(k).unwrap_or(((None, None), None)))
            .unzip();
        // Reals (and virtuals) that leave: their reminders and metrics go.
        let names = |c: &Config| -> HashSet<(String, String, String)> {
            c.virtuals
                .iter()
                .flat_map(|vs| {
                    vs.reals.iter().map(move |r| {
                        let d = Destination::of(vs, r);
                        let v = ServiceKey::from(vs.key).name();
                        let who = format!("real {} of {v}", d.endpoint());
                        (v, d.endpoint(), who)
                    })
                })
                .collect()
        };
        let after = names(&cfg);
        for (v, real, who) in names(&self.cfg).difference(&after) {
            if let Some(m) = &self.metrics {
                m.forget_real(v, real);
            }
            if let Some(a) = &self.alerts {
                a.tell(crate::alert::Notice {
                    at: std::time::SystemTime::now(),
                    state: crate::alert::DaemonState::Reloading,
                    subject: who.clone(),
                    change: crate::alert::Change::Gone,
                    routes: Vec::new(),
                    from: None,
                    servicename: None,
                });
            }
        }
        let owned: HashSet<ServiceKey> = cfg
            .virtuals
            .iter()
            .map(|v| ServiceKey::from(v.key))
            .collect();
        let gone = self.owned.difference(&owned).count();
        let added = owned.difference(&self.owned).count();
        let summary = format!(
            "{kept} check(s) kept, {started} started, {stopped} stopped; {added} virtual(s) added, {gone} removed"
        );
        tracing::info!("reload: {summary}");
        // The removed virtuals stay owned for one reconcile, which deletes
        // them.
        self.owned.extend(owned.iter().copied());
        self.owned_next = Some(owned);
        self.slot = slots(scheduler.ids());
        self.states = states;
        self.last_error = last_error;
        self.last_probe = last_probe;
        self.fallback_state = fallback_state;
        self.fallback_runs = fallback_runs;
        self.none_up = none_up;
        self.born = born;
        self.plan = plan;
        self.cfg = cfg;
        self.dirty = true;
        self.all_real_gauges();
        if let Some(m) = &self.metrics {
            m.reload("applied");
        }
        ReloadOutcome::Applied(summary)
    }

    /// A reload the daemon could not take: logged, counted, mailed, and
    /// the answer.
    fn refused(&self, why: String) -> ReloadOutcome {
        tracing::error!("reload refused, the running configuration stays: {why}");
        if let Some(m) = &self.metrics {
            m.reload("refused");
        }
        if let Some(a) = &self.alerts {
            a.tell(crate::alert::Notice {
                at: std::time::SystemTime::now(),
                state: crate::alert::DaemonState::Reloading,
                subject: String::new(),
                change: crate::alert::Change::ReloadRefused {
                    errors: why.clone(),
                },
                routes: crate::alert::routes(&self.cfg),
                from: self.cfg.global.emailalertfrom.clone(),
                servicename: None,
            });
        }
        ReloadOutcome::Refused(why)
    }

    /// What `lvsd status` shows: every virtual and real, as lvsd and the
    /// kernel see them now.
    async fn report(&mut self) -> crate::status::Report {
        use crate::status::{RealRow, Report, VirtualRow};
        let counters = match self.kernel.counters().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("status: {e}");
                Vec::new()
            }
        };
        let now = tokio::time::Instant::now();
        let mut report = Report::default();
        for (vi, vs) in self.cfg.virtuals.iter().enumerate() {
            let key = ServiceKey::from(vs.key);
            let in_kernel = self.known.service(&key).map(|(_, ds)| ds);
            let row = |d: &Destination, health: String, configured_weight: u32| RealRow {
                real: d.endpoint(),
                forward: d.fwd.as_str().to_owned(),
                health,
                configured_weight,
                weight: in_kernel
                    .and_then(|ds| ds.iter().find(|x| x.same(d)))
                    .map(|x| x.weight),
                last_probe_ago_s: None,
                last_failure: None,
                counters: counters
                    .iter()
                    .find(|(k, x, _)| *k == key && x.same(d))
                    .map(|(_, _, c)| *c),
            };
            let mut reals = Vec::new();
            for (ri, r) in vs.reals.iter().enumerate() {
                let d = Destination::of(vs, r);
                let check = self.plan.of_real[vi][ri];
                let health = match check {
                    _ if self.maintenance.covers(d.addr, d.port) => "maintenance",
                    None => "unchecked",
                    Some(c) if self.states[c].is_fresh() => "starting",
                    Some(c) => match self.states[c].health() {
                        Health::Up => "up",
                        Health::Down => "down",
                    },
                };
                let mut rr = row(&d, health.to_owned(), r.weight);
                if let Some(c) = check {
                    rr.last_probe_ago_s = self.last_probe[c].map(|t| (now - t).as_secs_f64());
                    rr.last_failure = self.last_error[c].as_ref().map(ToString::to_string);
                }
                reals.push(rr);
            }
            if let Some(f) = &vs.fallback {
                let d = Destination {
                    addr: f.address,
                    port: f.port,
                    fwd: f.forward.into(),
                    weight: 1,
                    upper_threshold: 0,
                    lower_threshold: 0,
                };
                let fb = row(&d, "fallback".to_owned(), 1);
                if fb.weight.is_some() {
                    reals.push(fb);
                }
            }
            report.virtuals.push(VirtualRow {
                name: key.name(),
                scheduler: vs.scheduler.clone(),
                reals,
            });
        }
        report
    }

    /// Makes the kernel's table what the config and the health call for.
    async fn reconcile(&mut self) {
        self.dirty = false;
        let want = desired(
            &self.cfg,
            |v, r| self.status(v, r),
            &self.known,
            self.starting,
        );
        self.starting = false;
        let ops = diff(&want, &self.known, |k| self.owned.contains(k));
        let mut failed = false;
        for op in &ops {
            let applied = self.kernel.apply(op).await;
            if let Some(m) = &self.metrics {
                m.reconcile_op(op.kind(), applied.is_ok());
            }
            match applied {
                Ok(()) => {
                    tracing::info!("{op}");
                    // The kernel accepted it, so it applies to our copy too.
                    let _ = self.known.apply(op);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    failed = true;
                }
            }
        }
        if let Some(owned) = self.owned_next.take() {
            self.owned = owned;
        }
        self.run_fallback_commands();
        self.tell_none_up();
        if failed {
            // Our copy is no longer trustworthy: read the kernel's.
            match self.kernel.dump().await {
                Ok(t) => self.known = t,
                Err(e) => tracing::error!("{e}"),
            }
        }
    }

    /// ldirectord's `do_fallback_command`: `fallbackcommand start|stop
    /// vip:vport proto` through the shell, once per change of "no real of
    /// this virtual is up" (and once at start with the state then). It runs
    /// in the background: a slow command never holds up the loop.
    fn run_fallback_commands(&mut self) {
        for (vi, vs) in self.cfg.virtuals.iter().enumerate() {
            let Some(cmd) = &vs.fallbackcommand else {
                continue;
            };
            let none_up = self.serves_nothing(vi);
            if self.fallback_state[vi] == Some(none_up) {
                continue;
            }
            self.fallback_state[vi] = Some(none_up);
            let what = match vs.key {
                crate::config::VirtualKey::Address {
                    address,
                    port,
                    protocol,
                } => format!(
                    "{} {}",
                    std::net::SocketAddr::new(address, port),
                    protocol.as_str()
                ),
                crate::config::VirtualKey::Fwmark { fwmark, .. } => format!("{fwmark} fwm"),
            };
            let line = format!("{cmd} {} {what}", if none_up { "start" } else { "stop" });
            tracing::info!("running fallbackcommand: {line}");
            // Commands of one virtual run one after another, in order (as
            // ldirectord's synchronous system()), but never in the loop.
            let previous = self.fallback_runs[vi].take();
            self.fallback_runs[vi] = Some(tokio::spawn(async move {
                if let Some(p) = previous {
                    let _ = p.await;
                }
                let status = tokio::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&line)
                    .status()
                    .await;
                match status {
                    Ok(s) if s.success() => {}
                    Ok(s) => tracing::warn!("fallbackcommand `{line}` failed: {s}"),
                    Err(e) => tracing::warn!("cannot run fallbackcommand `{line}`: {e}"),
                }
            }));
        }
    }

    /// Whether no real of virtual `vi` serves (fallback's condition).
    fn serves_nothing(&self, vi: usize) -> bool {
        let vs = &self.cfg.virtuals[vi];
        !(0..vs.reals.len()).any(|ri| serves(vs, self.status(vi, ri)))
    }

    /// Tells when a virtual loses its last real or gets one back (once
    /// every one of its checks has a result: no alarm at start).
    fn tell_none_up(&mut self) {
        for vi in 0..self.cfg.virtuals.len() {
            let vs = &self.cfg.virtuals[vi];
            let known = (0..vs.reals.len())
                .all(|ri| self.plan.of_real[vi][ri].is_none_or(|c| !self.states[c].is_fresh()));
            // checktype=off never activates a real: nothing to tell.
            if !known || vs.reals.is_empty() || vs.check.checktype == crate::config::CheckType::Off
            {
                continue;
            }
            let none = self.serves_nothing(vi);
            let before = self.none_up[vi].replace(none);
            if before.is_none() && !none || before == Some(none) {
                continue;
            }
            let change = if none {
                crate::alert::Change::NoneUp {
                    fallback: vs.fallback.as_ref().map(|f| {
                        let port = if f.port == 0 { vs.key.port() } else { f.port };
                        std::net::SocketAddr::new(f.address, port).to_string()
                    }),
                }
            } else {
                crate::alert::Change::SomeUp
            };
            let state = if before.is_none() {
                crate::alert::DaemonState::Starting
            } else {
                crate::alert::DaemonState::Running
            };
            self.tell(vi, ServiceKey::from(vs.key).name(), state, change);
        }
    }

    /// Re-reads the kernel's table and repairs any drift.
    async fn resync(&mut self) {
        match self.kernel.dump().await {
            Ok(t) => {
                let owned = |k: &ServiceKey| self.owned.contains(k);
                let drift = diff(&self.known, &t, owned);
                if !drift.is_empty() {
                    tracing::warn!(
                        "the IPVS table changed behind lvsd's back ({} difference(s), e.g. `{}` would undo one); repairing",
                        drift.len(),
                        drift[0]
                    );
                }
                self.known = t;
                self.dirty = true;
            }
            Err(e) => tracing::error!("resync: {e}"),
        }
    }

    /// Removes the `cleanstop=yes` virtuals (none after `lvsd
    /// keep-table`: a restart).
    async fn stop(mut self) {
        let restart = self
            .keep_until
            .is_some_and(|t| t > tokio::time::Instant::now());
        if restart {
            tracing::info!("stopping for a restart (keep-table): the IPVS table is left as it is");
        }
        let keys: Vec<ServiceKey> = self
            .cfg
            .virtuals
            .iter()
            .filter(|v| v.cleanstop && !restart)
            .map(|v| ServiceKey::from(v.key))
            .filter(|k| self.known.service(k).is_some())
            .collect();
        let mut removed = Vec::new();
        for k in keys {
            let op = crate::ipvs::Op::DelService(k);
            match self.kernel.apply(&op).await {
                Ok(()) => {
                    tracing::info!("{op} (cleanstop)");
                    removed.push(k.name());
                }
                Err(e) => tracing::error!("{e}"),
            }
        }
        if let Some(a) = &self.alerts {
            a.tell(crate::alert::Notice {
                at: std::time::SystemTime::now(),
                state: crate::alert::DaemonState::Stopping,
                subject: String::new(),
                change: crate::alert::Change::Stopped { removed },
                routes: crate::alert::routes(&self.cfg),
                from: self.cfg.global.emailalertfrom.clone(),
                servicename: None,
            });
        }
        tracing::info!("stopped");
    }
}
