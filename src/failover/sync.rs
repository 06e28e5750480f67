//! The IPVS connection sync daemon follows the failover role
//! (`lvs_sync_daemon`, as keepalived's): a director that holds a VIP runs
//! the master daemon (it sends its connections), one that does not hold
//! every VIP runs the backup daemon (it receives the peer's), so the
//! director that takes over already knows the connections in flight.
//! With one set each (auto_failback on), both run both.
//!
//! [`changes`] is pure: what to stop and start, given what runs. The shell
//! [`Follower`] asks the kernel over generic netlink.

use crate::config::SyncDaemonSpec;
use crate::ipvs::netlink::NetlinkKernel;
use crate::ipvs::table::{SyncDaemon, SyncRole};

/// One change to the running daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Stop the daemon of this role.
    Stop(SyncRole),
    /// Start this one.
    Start(SyncDaemon),
}

/// The daemons wanted when this node holds `held` of `total` VIPs.
pub fn wanted(spec: &SyncDaemonSpec, held: usize, total: usize) -> Vec<SyncDaemon> {
    let mk = |role| SyncDaemon {
        role,
        interface: spec.interface.clone(),
        sync_id: spec.sync_id,
    };
    let mut out = Vec::new();
    if held > 0 {
        out.push(mk(SyncRole::Master));
    }
    if held < total {
        out.push(mk(SyncRole::Backup));
    }
    out
}

/// From what runs to what is wanted: a daemon of a role that is not
/// wanted, or runs with another interface or id, is stopped; a wanted one
/// that does not run is started.
/// Stops come first.
pub fn changes(running: &[SyncDaemon], wanted: &[SyncDaemon]) -> Vec<Change> {
    let (mut stops, mut starts) = (Vec::new(), Vec::new());
    for role in [SyncRole::Master, SyncRole::Backup] {
        let have = running.iter().find(|d| d.role == role);
        let want = wanted.iter().find(|d| d.role == role);
        if have == want {
            continue;
        }
        if have.is_some() {
            stops.push(Change::Stop(role));
        }
        if let Some(w) = want {
            starts.push(Change::Start(w.clone()));
        }
    }
    stops.extend(starts);
    stops
}

/// Keeps the kernel's sync daemons as the role wants.
#[derive(Debug)]
pub struct Follower {
    spec: SyncDaemonSpec,
    kernel: Option<NetlinkKernel>,
}

impl Follower {
    /// Follows with `spec`; the kernel is opened at the first use.
    pub fn new(spec: SyncDaemonSpec) -> Follower {
        Follower { spec, kernel: None }
    }

    /// Makes the running daemons those of a node holding `held` of
    /// `total` VIPs. Failures are logged (the VIPs matter more than the
    /// sync) and tried again at the next call.
    pub fn follow(&mut self, held: usize, total: usize) {
        let kernel = match &mut self.kernel {
            Some(k) => k,
            None => match NetlinkKernel::open() {
                Ok(k) => self.kernel.insert(k),
                Err(e) => {
                    tracing::warn!("failover: the IPVS sync daemon cannot follow the role: {e}");
                    return;
                }
            },
        };
        let running = match kernel.sync_daemons() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("failover: {e}");
                return;
            }
        };
        for c in changes(&running, &wanted(&self.spec, held, total)) {
            let done = match &c {
                Change::Stop(role) => kernel
                    .stop_sync_daemon(*role)
                    .map(|()| format!("ipvsadm --stop-daemon {}", role.as_str())),
                Change::Start(d) => kernel.start_sync_daemon(d).map(|()| format!("ipvsadm {d}")),
            };
            match done {
                Ok(what) => tracing::info!("failover: {what}"),
                Err(e) => tracing::warn!("failover: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SyncDaemonSpec {
        SyncDaemonSpec {
            interface: "eth1".into(),
            sync_id: 3,
        }
    }

    fn d(role: SyncRole, interface: &str, sync_id: u8) -> SyncDaemon {
        SyncDaemon {
            role,
            interface: interface.into(),
            sync_id,
        }
    }

    #[test]
    fn the_role_decides_the_daemons() {
        use SyncRole::*;
        assert_eq!(wanted(&spec(), 0, 2), [d(Backup, "eth1", 3)]);
        assert_eq!(wanted(&spec(), 2, 2), [d(Master, "eth1", 3)]);
        assert_eq!(
            wanted(&spec(), 1, 2),
            [d(Master, "eth1", 3), d(Backup, "eth1", 3)]
        );
        assert_eq!(wanted(&spec(), 0, 0), []);
    }

    #[test]
    fn only_what_differs_changes() {
        use SyncRole::*;
        let master = d(Master, "eth1", 3);
        let backup = d(Backup, "eth1", 3);
        let just = |x: &SyncDaemon| vec![x.clone()];
        assert_eq!(changes(&just(&master), &just(&master)), []);
        // Taking over: the backup stops, the master starts.
        assert_eq!(
            changes(&just(&backup), &just(&master)),
            [Change::Stop(Backup), Change::Start(master.clone())]
        );
        // Another id or interface: restarted with ours.
        assert_eq!(
            changes(&[d(Master, "eth0", 3)], &just(&master)),
            [Change::Stop(Master), Change::Start(master.clone())]
        );
        assert_eq!(
            changes(&[], &[master.clone(), backup.clone()]),
            [Change::Start(master), Change::Start(backup)]
        );
    }
}
