//! Director failover: which of two directors holds the virtual IPs,
//! decided with heartbeat 3's own messages so lvsd and heartbeat nodes can
//! form one cluster. So far the pure parts: [`wire`] (the message format
//! and its authentication), [`arbiter`] (membership, ownership,
//! auto_failback, ipfail's rule, standby/takeover) and [`protocol`] (the
//! messages as the arbiter's inputs, and the ones this node sends), and
//! the shells [`link`] (UDP ucast/bcast, authenticated, replays dropped),
//! [`vip`] (addresses through rtnetlink, gratuitous ARP) and [`pingnodes`]
//! (echoes every keepalive, ping groups counting once). Still to come: the
//! loop that runs them all beside the health checks.

pub mod arbiter;
pub mod link;
pub mod pingnodes;
pub mod protocol;
pub mod run;
pub mod vip;
pub mod wire;
