//! Director failover: which of two directors holds the virtual IPs,
//! decided with heartbeat 3's own messages so lvsd and heartbeat nodes can
//! form one cluster. So far: [`wire`], the message format and its
//! authentication.

pub mod wire;
