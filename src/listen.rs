//! What every listener of lvsd keeps to (the control socket, /metrics, and
//! the web page to come), so that a local user who opens connections can
//! neither take the descriptors probes need nor stop a listener: at most
//! [`MAX_CONNECTIONS`] at once (when all are taken a new one takes the slot
//! of the oldest idle one), each connection ends by a deadline, and an
//! accept error (no descriptor left) backs off and retries instead of
//! ending the listener.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Connections one listener serves at once, at most: fewer when lvsd may
/// open few files (a sixteenth of the limit, at least 4), so probes keep
/// nearly all descriptors.
pub const MAX_CONNECTIONS: usize = 64;

/// Connections without a request in progress, oldest first: each one's
/// id and what tells it to close.
type IdleQueue = Arc<Mutex<VecDeque<(u64, Arc<Notify>)>>>;

/// The connection slots of one listener. When all are taken, a new
/// connection takes the slot of the one that has waited longest without a
/// request in progress (idle connections held by a local user cannot
/// shut a scraper or `lvsd status` out); if every one is busy with a
/// request, the new one is refused.
#[derive(Debug, Clone)]
pub struct Slots {
    free: Arc<Semaphore>,
    /// Connections without a request in progress, oldest first.
    idle: IdleQueue,
    next: Arc<AtomicU64>,
}

/// One connection's slot, held while it lives.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    id: u64,
    idle: IdleQueue,
    evict: Arc<Notify>,
}

impl Slot {
    /// A request is in progress: not to be evicted.
    pub fn busy(&self) {
        if let Ok(mut q) = self.idle.lock() {
            q.retain(|(id, _)| *id != self.id);
        }
    }

    /// The request is answered: idle again, the newest.
    pub fn idle(&self) {
        if let Ok(mut q) = self.idle.lock() {
            q.retain(|(id, _)| *id != self.id);
            q.push_back((self.id, Arc::clone(&self.evict)));
        }
    }

    /// Resolves when a newer connection took this one's slot: the
    /// connection is to be closed.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.busy();
    }
}

impl Slots {
    /// [`MAX_CONNECTIONS`] slots, or fewer under a low open files limit.
    pub fn new() -> Slots {
        let limit = crate::instance::open_files_limit().unwrap_or(1024);
        let n = usize::try_from(limit / 16).unwrap_or(MAX_CONNECTIONS);
        Slots::of(n.clamp(4, MAX_CONNECTIONS))
    }

    fn of(n: usize) -> Slots {
        Slots {
            free: Arc::new(Semaphore::new(n)),
            idle: Arc::default(),
            next: Arc::default(),
        }
    }

    /// A slot for a new connection (idle until [`Slot::busy`]): a free
    /// one, or the one of the oldest idle connection, which is told to
    /// close; None when every connection has a request in progress.
    pub async fn take(&self) -> Option<Slot> {
        let permit = match Arc::clone(&self.free).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let oldest = self.idle.lock().ok()?.pop_front();
                let (_, evict) = oldest?;
                evict.notify_one();
                // Its task drops the slot as soon as it runs.
                tokio::time::timeout(
                    Duration::from_secs(1),
                    Arc::clone(&self.free).acquire_owned(),
                )
                .await
                .ok()?
                .ok()?
            }
        };
        let slot = Slot {
            _permit: permit,
            id: self.next.fetch_add(1, Ordering::Relaxed),
            idle: Arc::clone(&self.idle),
            evict: Arc::new(Notify::new()),
        };
        slot.idle();
        Some(slot)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_connection_takes_the_oldest_idle_ones_slot() {
        let slots = Slots::of(2);
        let a = slots.take().await.unwrap();
        let b = slots.take().await.unwrap();
        // Both idle, all taken: the third takes a's slot once a goes.
        let (c, ()) = tokio::join!(slots.take(), async {
            a.evicted().await;
            drop(a);
        });
        let c = c.unwrap();
        // b and c busy with a request: nothing to evict, refused.
        b.busy();
        c.busy();
        assert!(slots.take().await.is_none());
        // c answered and idle again: the next one takes its slot.
        c.idle();
        let (d, ()) = tokio::join!(slots.take(), async {
            c.evicted().await;
            drop(c);
        });
        assert!(d.is_some());
        drop(b);
    }
}
