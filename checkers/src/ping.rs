//! `checktype=ping`: ICMP echo (IPv4 and IPv6), up when one of `checkcount`
//! requests is answered, as ldirectord's `check_ping`.
//!
//! Every ping check shares one ICMP socket per address family (an
//! [`IcmpSockets`], made once by the caller inside its runtime): 10,000
//! ping checks do not open 10,000 sockets. surge-ping tries an unprivileged
//! ICMP datagram socket first and falls back to a raw socket.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::sync::OnceCell;

use crate::{Checker, Probe, ProbeError, Step};

/// The shared ICMP sockets, opened on first use.
#[derive(Default)]
pub struct IcmpSockets {
    v4: OnceCell<Result<Client, String>>,
    v6: OnceCell<Result<Client, String>>,
    ident: AtomicU16,
}

impl std::fmt::Debug for IcmpSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IcmpSockets")
    }
}

impl IcmpSockets {
    /// Sockets opened lazily, from inside a tokio runtime.
    pub fn new() -> Arc<IcmpSockets> {
        Arc::new(IcmpSockets::default())
    }

    async fn client(&self, v6: bool) -> Result<&Client, &str> {
        let (cell, kind) = if v6 {
            (&self.v6, ICMP::V6)
        } else {
            (&self.v4, ICMP::V4)
        };
        cell.get_or_init(|| async move {
            Client::new(&Config::builder().kind(kind).build()).map_err(|e| {
                format!("cannot open an ICMP socket ({e}): needs CAP_NET_RAW or net.ipv4.ping_group_range")
            })
        })
        .await
        .as_ref()
        .map_err(String::as_str)
    }
}

/// Pings one address.
#[derive(Debug, Clone)]
pub struct Ping {
    addr: IpAddr,
    count: u32,
    wait: Duration,
    sockets: Arc<IcmpSockets>,
    subject: String,
}

impl Ping {
    /// Up to `count` (at least 1) echo requests to `addr`, each waiting up
    /// to `wait` for its reply.
    pub fn new(sockets: Arc<IcmpSockets>, addr: IpAddr, count: u32, wait: Duration) -> Ping {
        Ping {
            addr,
            count: count.max(1),
            wait,
            sockets,
            subject: format!("ping {addr}"),
        }
    }
}

/// Whether `packet` is an echo reply; else what it is.
fn echo_reply(packet: &surge_ping::IcmpPacket) -> Result<(), String> {
    let (kind, code, from, reply) = match packet {
        surge_ping::IcmpPacket::V4(p) => (
            p.get_icmp_type().0,
            p.get_icmp_code().0,
            IpAddr::V4(p.get_source()),
            0,
        ),
        surge_ping::IcmpPacket::V6(p) => (
            p.get_icmpv6_type().0,
            p.get_icmpv6_code().0,
            IpAddr::V6(p.get_source()),
            129,
        ),
    };
    if kind == reply {
        return Ok(());
    }
    let what = match (packet, kind) {
        (surge_ping::IcmpPacket::V4(_), 3) | (surge_ping::IcmpPacket::V6(_), 1) => {
            "destination unreachable"
        }
        (surge_ping::IcmpPacket::V4(_), 11) | (surge_ping::IcmpPacket::V6(_), 3) => "time exceeded",
        _ => "an ICMP error",
    };
    Err(format!("{what} (type {kind}, code {code}) from {from}"))
}

impl Checker for Ping {
    fn subject(&self) -> &str {
        &self.subject
    }

    fn probe(&self) -> Probe<'_> {
        Box::pin(async move {
            let client = self
                .sockets
                .client(self.addr.is_ipv6())
                .await
                .map_err(|e| ProbeError::new(&self.subject, Step::Internal, e))?;
            let ident = PingIdentifier(self.sockets.ident.fetch_add(1, Ordering::Relaxed));
            let mut pinger = client.pinger(self.addr, ident).await;
            pinger.timeout(self.wait);
            // The last error other than "no reply in time" (unreachable...).
            let mut other = None;
            for seq in 0..self.count {
                match pinger.ping(PingSequence(seq as u16), &[0; 56]).await {
                    // Only an echo reply: an ICMP error that quotes our
                    // request (a router's or this host's "destination
                    // unreachable") is no answer from the real.
                    Ok((packet, _)) => match echo_reply(&packet) {
                        Ok(()) => return Ok(()),
                        Err(e) => other = Some(e),
                    },
                    Err(SurgeError::Timeout { .. }) => {}
                    Err(e) => other = Some(e.to_string()),
                }
            }
            let n = self.count;
            let mut reason = format!(
                "no echo reply to {n} request{} ({:?} each)",
                if n == 1 { "" } else { "s" },
                self.wait
            );
            if let Some(e) = other {
                reason = format!("{reason}: {e}");
            }
            Err(ProbeError::new(&self.subject, Step::Exchange, reason))
        })
    }
}
