//! A reload the daemon takes or refuses (see the module's documentation;
//! what is carried across is [`super::carry`]'s).

use std::collections::HashSet;

use super::carry::{carry, emptied, gone_reals};
use super::checks::CheckRecord;
use super::{Daemon, ReloadOutcome, initial_state, slots};
use crate::alert::{Change, DaemonState, Notice};
use crate::config::{Config, VirtualKey};
use crate::health::plan::Plan;
use crate::health::scheduler::Scheduler;
use crate::ipvs::Kernel;
use crate::ipvs::table::ServiceKey;

impl<K: Kernel> Daemon<K> {
    /// Takes a new configuration, or says why not.
    pub(super) fn reload(
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
        if let Some(what) = emptied(&self.cfg, &cfg)
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
            return self.refused(e.to_string());
        }
        let keys = |c: &Config| {
            c.virtuals
                .iter()
                .map(|v| v.key)
                .collect::<Vec<VirtualKey>>()
        };
        let known = &self.known;
        let carried = carry(
            (&self.plan.checks, std::mem::take(&mut self.checks)),
            &plan.checks,
            |i| {
                CheckRecord::new(
                    initial_state(&cfg, known, &plan.checks[i], &plan.members[i]),
                    DaemonState::Reloading,
                )
            },
            (&keys(&self.cfg), std::mem::take(&mut self.virtuals)),
            &keys(&cfg),
        );
        for (v, real, who) in gone_reals(&self.cfg, &cfg) {
            if let Some(m) = &self.metrics {
                m.forget_real(&v, &real);
            }
            if let Some(a) = &self.alerts {
                a.tell(Notice {
                    at: std::time::SystemTime::now(),
                    state: DaemonState::Reloading,
                    subject: who,
                    change: Change::Gone,
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
            "{} check(s) kept, {} started, {} stopped; {added} virtual(s) added, {gone} removed",
            carried.kept, carried.started, carried.stopped
        );
        tracing::info!("reload: {summary}");
        // The removed virtuals stay owned for one reconcile, which deletes
        // them.
        self.owned.extend(owned.iter().copied());
        self.owned_next = Some(owned);
        // A virtual that leaves while its fallbackcommand last ran
        // `start` gets its `stop` (after that run), so the fallback it
        // started does not outlive it, and coming back starts it afresh.
        for (oi, rec) in carried.gone {
            let old = &self.cfg.virtuals[oi];
            if let (Some(cmd), Some(true)) = (&old.fallbackcommand, rec.fallback_state) {
                // Runs on its own; nothing waits for it.
                drop(super::virtuals::fallback_command(
                    cmd,
                    old.key,
                    false,
                    rec.fallback_run,
                ));
            }
        }
        self.slot = slots(scheduler.ids());
        self.checks = carried.checks;
        self.virtuals = carried.virtuals;
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
            a.tell(Notice {
                at: std::time::SystemTime::now(),
                state: DaemonState::Reloading,
                subject: String::new(),
                change: Change::ReloadRefused {
                    errors: why.clone(),
                },
                routes: crate::alert::routes(&self.cfg),
                from: self.cfg.global.emailalertfrom.clone(),
                servicename: None,
            });
        }
        ReloadOutcome::Refused(why)
    }
}
