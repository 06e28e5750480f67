//! One record per check (its rise/fall state, last failure, last probe),
//! and what a probe result does: the verdict, its log line, the mail,
//! metrics and monitorfile lines.

use checkers::ProbeError;
use tokio::time::Instant;

use super::Daemon;
use crate::alert::DaemonState;
use crate::health::scheduler::Outcome;
use crate::health::state::{CheckState, Health, Verdict};
use crate::ipvs::Kernel;
use crate::ipvs::table::{Destination, ServiceKey};

/// What the daemon keeps of one check of the plan (its task is the
/// scheduler's).
#[derive(Debug, Clone)]
pub(super) struct CheckRecord {
    /// Rise/fall.
    pub state: CheckState,
    /// Why its last probe failed, if it did; while it is down, why.
    pub last_error: Option<ProbeError>,
    /// When it last started a probe.
    pub last_probe: Option<Instant>,
    /// The daemon state its first verdict is told in (starting, or
    /// reloading for a check a reload added); running after.
    pub born: DaemonState,
}

impl CheckRecord {
    /// A check that has not probed yet.
    pub(super) fn new(state: CheckState, born: DaemonState) -> CheckRecord {
        CheckRecord {
            state,
            last_error: None,
            last_probe: None,
            born,
        }
    }

    /// Keeps a probe's failure for `lvsd status`: the last one, and while
    /// a down real rises (answers, not yet enough times), the one that
    /// keeps it down.
    fn remember(&mut self, result: Result<(), ProbeError>) {
        match result {
            Err(e) => self.last_error = Some(e),
            Ok(()) if self.state.health() == crate::health::state::Health::Down => {}
            Ok(()) => self.last_error = None,
        }
    }
}

/// lvsd short of something of its own (see [`checkers::Step::Local`]),
/// as an episode: it starts at the first such probe and ends once none has
/// come for [`IMPAIRED_QUIET`].
#[derive(Debug, Clone)]
pub(super) struct Impaired {
    /// The first probe's reason.
    pub reason: String,
    /// The latest such probe.
    pub last: Instant,
    /// Probes not counted against their reals.
    pub uncounted: u64,
}

/// How long without a probe failing for lvsd's own reasons ends an episode.
pub(super) const IMPAIRED_QUIET: std::time::Duration = std::time::Duration::from_secs(10);

impl<K: Kernel> Daemon<K> {
    /// A probe failed for lvsd's own reasons: not the real's failure.
    fn not_counted(&mut self, at: Instant, e: &ProbeError) {
        if let Some(m) = &self.metrics {
            m.probe_not_counted();
        }
        if let Some(i) = &mut self.impaired {
            i.uncounted += 1;
            i.last = at;
            return;
        }
        tracing::warn!(
            "lvsd is impaired: {e}: probes failing for lvsd's own reasons are not counted against reals"
        );
        self.impaired = Some(Impaired {
            reason: e.to_string(),
            last: at,
            uncounted: 1,
        });
        self.tell_all(crate::alert::Change::Impaired {
            reason: Some(e.to_string()),
            uncounted: 1,
        });
    }

    /// A counted result at `at`: an episode with nothing new for a while
    /// is over.
    fn counted(&mut self, at: Instant) {
        let Some(i) = &self.impaired else {
            return;
        };
        if at.saturating_duration_since(i.last) < IMPAIRED_QUIET {
            return;
        }
        let uncounted = i.uncounted;
        tracing::info!("lvsd is no longer impaired ({uncounted} probe(s) were not counted)");
        self.impaired = None;
        self.tell_all(crate::alert::Change::Impaired {
            reason: None,
            uncounted,
        });
    }

    /// Tells the mailer about the daemon itself, on every route.
    fn tell_all(&self, change: crate::alert::Change) {
        if let Some(a) = &self.alerts {
            a.tell(crate::alert::Notice {
                at: std::time::SystemTime::now(),
                state: crate::alert::DaemonState::Running,
                subject: String::new(),
                change,
                routes: crate::alert::routes(&self.cfg),
                from: self.cfg.global.emailalertfrom.clone(),
                servicename: None,
            });
        }
    }

    /// A probe's result through its check's rise/fall state: logged,
    /// told (mail, metrics, monitorfile), and the table marked dirty on a
    /// transition.
    pub(super) fn observe(&mut self, mut o: Outcome) {
        // A result of a task a reload stopped has no check any more.
        let Some(&check) = self.slot.get(&o.check) else {
            return;
        };
        o.check = check;
        if self.checks.get(o.check).is_none() {
            return;
        }
        match &o.result {
            Err(e) if e.step == checkers::Step::Local => {
                let e = e.clone();
                self.not_counted(o.started, &e);
                let rec = &mut self.checks[o.check];
                rec.last_probe = Some(o.started);
                rec.last_error = Some(e);
                return;
            }
            _ => self.counted(o.started),
        }
        let Some(rec) = self.checks.get_mut(o.check) else {
            return;
        };
        rec.last_probe = Some(o.started);
        let verdict = rec.state.observe(o.result.is_ok());
        if verdict.transition().is_some() {
            self.dirty = true;
        }
        self.tell_probe(&o);
        if verdict == Verdict::Steady {
            // The common case, once per check per interval: nothing to say.
            self.checks[o.check].remember(o.result);
            return;
        }
        let reason = match &o.result {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        self.checks[o.check].remember(o.result.clone());
        let plural = |n: u32, w: &str| {
            if n == 1 {
                format!("1 {w}")
            } else if w.ends_with('s') {
                format!("{n} {w}es")
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
        let state = std::mem::replace(
            &mut self.checks[o.check].born,
            crate::alert::DaemonState::Running,
        );
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
        if let Some(handles) = self.probe_metrics.get(o.check) {
            for h in handles {
                h.observe(o.result.is_ok(), o.took);
            }
        }
        let Some(w) = &self.monitor else {
            return;
        };
        let now = std::time::SystemTime::now();
        for &(vi, ri) in &self.plan.members[o.check] {
            let vs = &self.cfg.virtuals[vi];
            if let Some(path) = &vs.monitorfile {
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
    pub(super) fn tell(
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
    pub(super) fn all_real_gauges(&mut self) {
        let Some(m) = &self.metrics else {
            return;
        };
        self.probe_metrics = self
            .plan
            .members
            .iter()
            .map(|members| {
                members
                    .iter()
                    .map(|&(vi, ri)| {
                        let vs = &self.cfg.virtuals[vi];
                        let d = Destination::of(vs, &vs.reals[ri]);
                        m.real_probes(&ServiceKey::from(vs.key).name(), &d.endpoint())
                    })
                    .collect()
            })
            .collect();
        for (vi, vs) in self.cfg.virtuals.iter().enumerate() {
            for (ri, r) in vs.reals.iter().enumerate() {
                if let Some(c) = self.plan.of_real[vi][ri] {
                    let d = Destination::of(vs, r);
                    let s = &self.checks[c].state;
                    let up = !s.is_fresh() && s.health() == Health::Up;
                    m.real_up(&ServiceKey::from(vs.key).name(), &d.endpoint(), up);
                }
            }
        }
    }
}
