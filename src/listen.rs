//! What every listener of lvsd keeps to (the control socket, /metrics, and
//! the web page to come), so that a local user who opens connections can
//! neither take the descriptors probes need nor stop a listener: at most
//! [`MAX_CONNECTIONS`] at once (one more is closed at once), each
//! connection ends by a deadline, and an accept error (no descriptor left)
//! backs off and retries instead of ending the listener.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections one listener serves at once, at most: fewer when lvsd may
/// open few files (a sixteenth of the limit, at least 4), so probes keep
/// nearly all descriptors.
pub const MAX_CONNECTIONS: usize = 64;

/// The connection slots of one listener.
#[derive(Debug, Clone)]
pub struct Slots(Arc<Semaphore>);

impl Slots {
    /// [`MAX_CONNECTIONS`] slots, or fewer under a low open files limit.
    pub fn new() -> Slots {
        let limit = crate::instance::open_files_limit().unwrap_or(1024);
        let n = usize::try_from(limit / 16).unwrap_or(MAX_CONNECTIONS);
        Slots(Arc::new(Semaphore::new(n.clamp(4, MAX_CONNECTIONS))))
    }

    /// A slot for a new connection, held while it lives; None when all are
    /// taken (the connection is then closed at once).
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.0).try_acquire_owned().ok()
    }
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::new()
    }
}

/// After a failed accept: logged (at most once a minute per listener) and
/// a pause, so a listener out of descriptors neither spins nor ends.
pub async fn accept_failed(
    what: &str,
    e: &std::io::Error,
    last_logged: &mut Option<tokio::time::Instant>,
) {
    let now = tokio::time::Instant::now();
    if last_logged.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
        tracing::warn!("{what}: accept: {e} (retrying)");
        *last_logged = Some(now);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}
