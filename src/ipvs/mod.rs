//! The kernel side: IPVS services and destinations.
//!
//! Only this module speaks the kernel's words (service, destination); the
//! config speaks the operator's (virtual, real). The decisions are pure
//! ([`table`], [`desired`], [`diff`]); everything that changes a table goes
//! through [`Kernel`], so the daemon runs the same against the in-memory
//! table of the tests, the dry-run kernel of `lvsd run --dry-run`, and (in
//! a later step) the real kernel over netlink.

pub mod desired;
pub mod diff;
pub mod memory;
pub mod netlink;
pub mod table;
pub mod wire;

use std::future::Future;

pub use diff::Op;
pub use memory::{DryRun, MemoryKernel};
pub use table::{Destination, Service, ServiceKey, Table};

/// A failed kernel call: which op and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The kernel refused one op.
    #[error("{op}: {reason}")]
    Op {
        /// The op, as its ipvsadm command.
        op: String,
        /// The kernel's reason.
        reason: String,
    },
    /// The table could not be read.
    #[error("reading the IPVS table: {0}")]
    Dump(String),
    /// There is no IPVS to talk to (module not loaded, no permission).
    #[error("{0}")]
    Unavailable(String),
}

/// The IPVS table of a kernel: read it, change it one op at a time.
pub trait Kernel: Send {
    /// Every service and destination the kernel holds.
    fn dump(&mut self) -> impl Future<Output = Result<Table, KernelError>> + Send;

    /// Carries out one op.
    fn apply(&mut self, op: &Op) -> impl Future<Output = Result<(), KernelError>> + Send;

    /// Carries out `ops` in order, each on its own (one failing does not
    /// stop the next): one result per op. The netlink kernel sends them in
    /// batches, many requests per `sendmsg`, and checks every ACK.
    fn apply_all(
        &mut self,
        ops: &[Op],
    ) -> impl Future<Output = Vec<Result<(), KernelError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(ops.len());
            for op in ops {
                out.push(self.apply(op).await);
            }
            out
        }
    }

    /// Each destination's connection and traffic counters (none where the
    /// kernel keeps none: the in-memory kernels).
    fn counters(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(ServiceKey, Destination, table::Counters)>, KernelError>> + Send
    {
        async { Ok(Vec::new()) }
    }
}
