//! systemd: READY once the daemon's first reconcile is done, and the
//! watchdog fed only while the daemon's loop answers (at half
//! `WatchdogSec`).

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

/// Spawns the task that tells systemd: READY when `ready` is notified,
/// then a watchdog ping every half period for as long as the daemon's
/// loop answers `alive` within that half period.
pub fn start(ready: Arc<Notify>, alive: mpsc::Sender<oneshot::Sender<()>>) {
    tokio::spawn(async move {
        ready.notified().await;
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::warn!("sd_notify READY: {e}");
        }
        let Some(every) = sd_notify::watchdog_enabled() else {
            return;
        };
        let every = every / 2;
        loop {
            tokio::time::sleep(every).await;
            let (tx, rx) = oneshot::channel();
            if alive.send(tx).await.is_err() {
                return;
            }
            match tokio::time::timeout(every, rx).await {
                Ok(Ok(())) => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                _ => tracing::error!(
                    "the daemon loop did not answer within {every:?}: watchdog not fed"
                ),
            }
        }
    });
}

/// Tells systemd lvsd is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}
