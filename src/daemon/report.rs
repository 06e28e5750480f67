//! `lvsd status`: every virtual and real as lvsd and the kernel see them.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Daemon;
use crate::health::state::Health;
use crate::ipvs::Kernel;
use crate::ipvs::table::{Counters, Destination, ServiceKey};

impl<K: Kernel> Daemon<K> {
    /// What `lvsd status` shows: every virtual and real, as lvsd and the
    /// kernel see them now.
    pub(super) async fn report(&mut self) -> crate::status::Report {
        use crate::status::{RealRow, Report, VirtualRow};
        let counters = match self.kernel.counters().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("status: {e}");
                Vec::new()
            }
        };
        // Looked up by key: the work is proportional to the reals, also
        // with 100,000 in one virtual.
        let counters: HashMap<(ServiceKey, IpAddr, u16), Counters> = counters
            .into_iter()
            .map(|(k, d, c)| ((k, d.addr, d.port), c))
            .collect();
        let now = tokio::time::Instant::now();
        let mut report = Report::default();
        for (vi, vs) in self.cfg.virtuals.iter().enumerate() {
            let key = ServiceKey::from(vs.key);
            let in_kernel: HashMap<(IpAddr, u16), u32> = self
                .known
                .service(&key)
                .map(|(_, ds)| ds.iter().map(|x| ((x.addr, x.port), x.weight)).collect())
                .unwrap_or_default();
            let row = |d: &Destination, health: String, configured_weight: u32| RealRow {
                real: d.endpoint(),
                forward: d.fwd.as_str().to_owned(),
                health,
                configured_weight,
                weight: in_kernel.get(&(d.addr, d.port)).copied(),
                last_probe_ago_s: None,
                last_failure: None,
                counters: counters.get(&(key, d.addr, d.port)).copied(),
            };
            let mut reals = Vec::new();
            for (ri, r) in vs.reals.iter().enumerate() {
                let d = Destination::of(vs, r);
                let check = self.plan.of_real[vi][ri];
                let health = match check {
                    _ if self.maintenance.covers(d.addr, d.port) => "maintenance",
                    None => "unchecked",
                    Some(c) if self.checks[c].state.is_fresh() => "starting",
                    Some(c) => match self.checks[c].state.health() {
                        Health::Up => "up",
                        Health::Down => "down",
                    },
                };
                let mut rr = row(&d, health.to_owned(), r.weight);
                if let Some(c) = check {
                    let rec = &self.checks[c];
                    rr.last_probe_ago_s = rec.last_probe.map(|t| (now - t).as_secs_f64());
                    rr.last_failure = rec.last_error.as_ref().map(ToString::to_string);
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
        report.impaired = self.impaired.as_ref().map(|i| {
            format!(
                "{} ({} probe(s) not counted against reals)",
                i.reason, i.uncounted
            )
        });
        report
    }
}
