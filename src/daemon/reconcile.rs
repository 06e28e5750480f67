//! Keeping the kernel's table right: reconcile (desired, diff, apply),
//! resync (repair drift), and stop (cleanstop, keep-table).

use super::Daemon;
use crate::ipvs::Kernel;
use crate::ipvs::desired::desired;
use crate::ipvs::diff::diff;
use crate::ipvs::table::ServiceKey;

/// Ops of one reconcile logged one by one (as ldirectord logs each
/// ipvsadm it runs); the rest are counted in one line. Building a table of
/// 37,298 reals otherwise writes as many lines, a third of a second.
const LOGGED_OPS: usize = 100;

impl<K: Kernel> Daemon<K> {
    /// Makes the kernel's table what the config and the health call for.
    pub(super) async fn reconcile(&mut self) {
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
        let results = self.kernel.apply_all(&ops).await;
        let mut unlogged: Vec<(&'static str, usize)> = Vec::new();
        for (i, (op, applied)) in ops.iter().zip(results).enumerate() {
            if let Some(m) = &self.metrics {
                m.reconcile_op(op.kind(), applied.is_ok());
            }
            match applied {
                Ok(()) if i >= LOGGED_OPS => {
                    tracing::debug!("{op}");
                    match unlogged.iter_mut().find(|(k, _)| *k == op.kind()) {
                        Some((_, n)) => *n += 1,
                        None => unlogged.push((op.kind(), 1)),
                    }
                    let _ = self.known.apply(op);
                }
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
        if !unlogged.is_empty() {
            let what: Vec<String> = unlogged.iter().map(|(k, n)| format!("{n} {k}")).collect();
            tracing::info!(
                "and {} more op(s) applied: {} (each at log level debug)",
                unlogged.iter().map(|(_, n)| n).sum::<usize>(),
                what.join(", ")
            );
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

    /// Re-reads the kernel's table and repairs any drift.
    pub(super) async fn resync(&mut self) {
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
    pub(super) async fn stop(mut self) {
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
