//! What belongs to a virtual rather than a real: `fallbackcommand` when
//! a virtual loses its last real or gets one back, and the "no real up"
//! notice. (The fallback server itself is `ipvs::desired`'s.)

use super::Daemon;
use crate::ipvs::Kernel;
use crate::ipvs::desired::serves;
use crate::ipvs::table::ServiceKey;

/// What the daemon keeps of one virtual.
#[derive(Debug, Default)]
pub(super) struct VirtualRecord {
    /// Whether `fallbackcommand` last ran with `start` (no real up) or
    /// `stop`; None before the first reconcile.
    pub fallback_state: Option<bool>,
    /// The last `fallbackcommand` run, which the next waits for.
    pub fallback_run: Option<tokio::task::JoinHandle<()>>,
    /// Whether no real serves, as last told (None: not yet known, some
    /// check has no result yet).
    pub none_up: Option<bool>,
}

/// Runs `fallbackcommand start|stop vip:vport proto` through the shell
/// once `previous` (the virtual's last run) has ended: one virtual's
/// commands run one after another, in order (as ldirectord's synchronous
/// system()), but never in the loop.
pub(super) fn fallback_command(
    cmd: &str,
    key: crate::config::VirtualKey,
    start: bool,
    previous: Option<tokio::task::JoinHandle<()>>,
) -> tokio::task::JoinHandle<()> {
    let what = match key {
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
    let line = format!("{cmd} {} {what}", if start { "start" } else { "stop" });
    tracing::info!("running fallbackcommand: {line}");
    tokio::spawn(async move {
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
    })
}

impl<K: Kernel> Daemon<K> {
    /// ldirectord's `do_fallback_command`: `fallbackcommand start|stop
    /// vip:vport proto` through the shell, once per change of "no real of
    /// this virtual is up" (and once at start with the state then). It runs
    /// in the background: a slow command never holds up the loop.
    pub(super) fn run_fallback_commands(&mut self) {
        for (vi, vs) in self.cfg.virtuals.iter().enumerate() {
            let Some(cmd) = &vs.fallbackcommand else {
                continue;
            };
            let none_up = self.serves_nothing(vi);
            if self.virtuals[vi].fallback_state == Some(none_up) {
                continue;
            }
            self.virtuals[vi].fallback_state = Some(none_up);
            let previous = self.virtuals[vi].fallback_run.take();
            self.virtuals[vi].fallback_run = Some(fallback_command(cmd, vs.key, none_up, previous));
        }
    }

    /// Whether no real of virtual `vi` serves (fallback's condition).
    fn serves_nothing(&self, vi: usize) -> bool {
        let vs = &self.cfg.virtuals[vi];
        !(0..vs.reals.len()).any(|ri| serves(vs, self.status(vi, ri)))
    }

    /// Tells when a virtual loses its last real or gets one back (once
    /// every one of its checks has a result: no alarm at start).
    pub(super) fn tell_none_up(&mut self) {
        for vi in 0..self.cfg.virtuals.len() {
            let vs = &self.cfg.virtuals[vi];
            let known = (0..vs.reals.len()).all(|ri| {
                self.plan.of_real[vi][ri].is_none_or(|c| !self.checks[c].state.is_fresh())
            });
            // checktype=off never activates a real: nothing to tell.
            if !known || vs.reals.is_empty() || vs.check.checktype == crate::config::CheckType::Off
            {
                continue;
            }
            let none = self.serves_nothing(vi);
            let before = self.virtuals[vi].none_up.replace(none);
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
}
