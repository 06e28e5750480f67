//! Kernels without a kernel: an in-memory table for tests, and the dry-run
//! kernel of `lvsd run --dry-run`, which can append every op to an ops log
//! (one JSON object per line, documented in the README).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{Kernel, KernelError, Op, Table};

/// What an in-memory kernel holds and has been asked to do.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The current table.
    pub table: Table,
    /// Every op applied, with the (tokio) time it was applied.
    pub ops: Vec<(tokio::time::Instant, Op)>,
    /// Number of dumps asked for.
    pub dumps: usize,
    /// Ops are not kept in `ops` (the dry run: its ops log is the record,
    /// and a long dry run would grow without end).
    pub forget_ops: bool,
}

/// A table in memory that refuses ops the way the kernel does.
///
/// Clones share the table, so a test keeps one to watch (and disturb) the
/// table while the daemon runs with another.
#[derive(Debug, Clone, Default)]
pub struct MemoryKernel {
    shared: Arc<Mutex<Recorded>>,
}

impl MemoryKernel {
    /// An empty kernel table.
    pub fn new() -> MemoryKernel {
        MemoryKernel::default()
    }

    /// A kernel that already holds `table` (as after a restart).
    pub fn with_table(table: Table) -> MemoryKernel {
        let k = MemoryKernel::new();
        k.lock().table = table;
        k
    }

    /// The shared state; the lock is never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A test that panicked while holding the lock already failed.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the current table.
    pub fn table(&self) -> Table {
        self.lock().table.clone()
    }

    /// The ops applied so far, as ipvsadm commands.
    pub fn commands(&self) -> Vec<String> {
        self.lock()
            .ops
            .iter()
            .map(|(_, op)| op.to_string())
            .collect()
    }

    fn apply_now(&self, op: &Op) -> Result<(), KernelError> {
        let mut r = self.lock();
        r.table.apply(op).map_err(|reason| KernelError::Op {
            op: op.to_string(),
            reason: reason.to_owned(),
        })?;
        if !r.forget_ops {
            r.ops.push((tokio::time::Instant::now(), op.clone()));
        }
        Ok(())
    }
}

impl Kernel for MemoryKernel {
    async fn dump(&mut self) -> Result<Table, KernelError> {
        let mut r = self.lock();
        r.dumps += 1;
        Ok(r.table.clone())
    }

    async fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        self.apply_now(op)
    }
}

/// `lvsd run --dry-run`: an in-memory table, every op optionally recorded.
#[derive(Debug)]
pub struct DryRun {
    table: MemoryKernel,
    ops_log: Option<File>,
}

impl DryRun {
    /// A dry-run kernel; `ops_log` is appended to, one JSON object per op.
    pub fn new(ops_log: Option<&Path>) -> std::io::Result<DryRun> {
        let ops_log = match ops_log {
            Some(p) => Some(File::options().create(true).append(true).open(p)?),
            None => None,
        };
        let table = MemoryKernel::new();
        table.lock().forget_ops = true;
        Ok(DryRun { table, ops_log })
    }
}

/// One ops-log line for `op` applied at `ts` (unix seconds).
pub fn ops_log_line(op: &Op, ts: f64) -> String {
    let mut o = json!({
        "ts": (ts * 1e6).round() / 1e6,
        "op": op.kind(),
        "service": op.service().name(),
    });
    if let Some(d) = op.dest() {
        o["dest"] = d.endpoint().into();
        if !matches!(op, Op::DelDest(..)) {
            o["weight"] = d.weight.into();
            o["forward"] = d.fwd.as_str().into();
        }
    }
    o["ipvsadm"] = op.to_string().into();
    o.to_string()
}

impl Kernel for DryRun {
    async fn dump(&mut self) -> Result<Table, KernelError> {
        self.table.dump().await
    }

    async fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        // The daemon logs every op it applies; the ops log is the dry run's own record.
        self.table.apply_now(op)?;
        if let Some(f) = &mut self.ops_log {
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let line = ops_log_line(op, ts);
            if let Err(e) = writeln!(f, "{line}") {
                tracing::warn!("ops log: {e}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use crate::ipvs::table::{Destination, FwdMethod, Service, ServiceKey};

    #[test]
    fn ops_log_lines() {
        let key = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        };
        let d = Destination {
            addr: "10.0.0.5".parse().unwrap(),
            port: 80,
            fwd: FwdMethod::Route,
            weight: 0,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        assert_eq!(
            ops_log_line(&Op::EditDest(key, d.clone()), 1700000000.1234567),
            r#"{"dest":"10.0.0.5:80","forward":"gate","ipvsadm":"ipvsadm -e -t 192.0.2.10:80 -r 10.0.0.5:80 -g -w 0","op":"edit-dest","service":"tcp:192.0.2.10:80","ts":1700000000.123457,"weight":0}"#
        );
        assert_eq!(
            ops_log_line(&Op::DelDest(key, d), 1.0),
            r#"{"dest":"10.0.0.5:80","ipvsadm":"ipvsadm -d -t 192.0.2.10:80 -r 10.0.0.5:80","op":"del-dest","service":"tcp:192.0.2.10:80","ts":1.0}"#
        );
        let s = Service {
            key: ServiceKey::Fwmark {
                mark: 5,
                ipv6: false,
            },
            scheduler: "wlc".into(),
            persistence: None,
            netmask: None,
            one_packet: false,
            sched_flags: None,
        };
        assert_eq!(
            ops_log_line(&Op::AddService(s), 2.5),
            r#"{"ipvsadm":"ipvsadm -A -f 5 -s wlc","op":"add-service","service":"fwm:5","ts":2.5}"#
        );
    }
}
