//! Director failover: which of two directors holds the virtual IPs,
//! decided with heartbeat 3's own messages so lvsd and heartbeat nodes can
//! form one cluster. So far the pure parts: [`wire`] (the message format
//! and its authentication), [`arbiter`] (membership, ownership,
//! auto_failback, ipfail's rule, standby/takeover) and [`protocol`] (the
//! messages as the arbiter's inputs, and the ones this node sends); the
//! network shells (link, ping nodes, VIPs) are still to come.

pub mod arbiter;
pub mod protocol;
pub mod wire;
