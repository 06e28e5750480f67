//! Director failover: which of two directors holds the virtual IPs,
//! decided with heartbeat 3's own messages so lvsd and heartbeat nodes can
//! form one cluster. So far the pure parts: [`wire`] (the message format
//! and its authentication), [`arbiter`] (membership, ownership,
//! auto_failback, ipfail's rule, standby/takeover) and [`protocol`] (the
//! messages as the arbiter's inputs, and the ones this node sends), and
//! the first shell, [`link`] (UDP ucast/bcast, authenticated, replays
//! dropped). Still to come: ping nodes, VIPs, and the loop that runs them.

pub mod arbiter;
pub mod link;
pub mod protocol;
pub mod wire;
