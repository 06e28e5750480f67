//! Taking reals out by hand: the maintenancedir's files and `lvsd
//! drain|enable` together make the reals in maintenance (weight 0 or
//! removed, as their quiescent says).

use super::Daemon;
use crate::control::{Reply, Target};
use crate::ipvs::Kernel;
use crate::ipvs::desired::Maintenance;
use crate::ipvs::table::Destination;

impl<K: Kernel> Daemon<K> {
    /// The maintenancedir changed.
    pub(super) fn set_maintenance(&mut self, m: Maintenance) {
        self.dir_maintenance = m;
        self.apply_maintenance();
    }

    /// `lvsd drain|enable`: the answer says which reals that touches.
    pub(super) fn drain(&mut self, t: Target, on: bool) -> Reply {
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
            return Reply::error(format!("no real {t} in the configuration"));
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
        Reply::done(out)
    }

    /// The maintenancedir's reals and the drained ones, out.
    pub(super) fn apply_maintenance(&mut self) {
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
}
