//! Director failover: which of two directors holds the virtual IPs,
//! decided with heartbeat 3's own messages so lvsd and heartbeat nodes can
//! form one cluster. The pure parts: [`wire`] (the message format and its
//! authentication), [`arbiter`] (membership, ownership, auto_failback,
//! ipfail's rule, the ask_resources hand-over, standby/takeover),
//! [`protocol`] (the messages as the arbiter's inputs, and the ones this
//! node sends) and [`routes`] (where a VIP written without interface
//! goes); the shells [`link`] (UDP ucast/bcast/mcast, authenticated,
//! replays dropped), [`vip`] (addresses through rtnetlink, gratuitous ARP,
//! unsolicited neighbour advertisements) and [`pingnodes`] (echoes every
//! keepalive, ping groups counting once), [`sync`] (the IPVS sync daemon
//! following the role); and [`run`], the loop that runs them beside the
//! health checks.

pub mod arbiter;
pub mod drops;
pub mod generation;
pub mod link;
pub mod pingnodes;
pub mod protocol;
pub mod routes;
pub mod run;
pub mod sync;
pub mod vip;
pub mod wire;
