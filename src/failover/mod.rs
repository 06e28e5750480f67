//! Director failover: which of two directors holds the virtual IPs,
//! decided with heartbeat 3's own messages so lvsd and heartbeat nodes can
//! form one cluster. So far the pure parts: [`wire`] (the message format
//! and its authentication) and [`arbiter`] (membership, ownership,
//! auto_failback, ipfail's rule, standby/takeover); the network shells
//! (link, ping nodes, VIPs) are still to come.

pub mod arbiter;
pub mod wire;
