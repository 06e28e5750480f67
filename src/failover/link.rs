//! The cluster link: heartbeat's UDP media (`ucast`, `bcast`, `mcast`) on
//! `udpport`. Every message goes out on every medium, signed with the
//! active authkeys key; what comes in is authenticated, checked against
//! the replay rules per sender, and handed over as a [`Message`].
//!
//! Like heartbeat, the receiving socket is bound to the port on all
//! addresses and, when an interface is named, to that interface
//! (SO_BINDTODEVICE); the socket sends with IPTOS_LOWDELAY. An `mcast`
//! medium joins its group on its interface and sends to it with the
//! medium's TTL and loop setting (one socket: the last medium's TTL and
//! loop win; with media on several interfaces, multicast leaves by the
//! route to the group).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::wire::{Freshness, MAX_MESSAGE, Message, ReplayGuard, WireError, open};
use crate::config::{AuthKey, Medium};

/// Where the link listens and sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// The local address and port to listen on.
    pub bind: SocketAddr,
    /// The interface to bind to, if any.
    pub device: Option<String>,
    /// Where every message goes (the peer, or a broadcast address).
    pub destinations: Vec<SocketAddr>,
    /// Sending to a broadcast address.
    pub broadcast: bool,
    /// Multicast groups to join.
    pub groups: Vec<Group>,
}

/// An `mcast dev group port ttl loop` medium's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group address.
    pub group: Ipv4Addr,
    /// Joined on this interface.
    pub interface: String,
    /// TTL of what is sent.
    pub ttl: u8,
    /// Whether our own messages come back to us.
    pub loopback: bool,
}

/// An interface's index, from sysfs.
fn ifindex(dev: &str) -> std::io::Result<u32> {
    let path = format!("/sys/class/net/{dev}/ifindex");
    std::fs::read_to_string(&path)?
        .trim()
        .parse()
        .map_err(|e| std::io::Error::other(format!("{path}: {e}")))
}

/// Why ha.cf's media make no link lvsd can open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// An IPv6 multicast medium.
    #[error("mcast6 {0}: IPv6 multicast media are not supported yet: use mcast, ucast or bcast")]
    Mcast6(IpAddr),
    /// A serial medium.
    #[error("serial {0}: lvsd talks over UDP only (ucast or bcast)")]
    Serial(String),
    /// None at all.
    #[error("ha.cf names no ucast, bcast or mcast medium")]
    None,
}

/// Why a message did not go out.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// It could not be signed and encoded.
    #[error(transparent)]
    Encode(#[from] WireError),
    /// A destination refused it (the first of those that did).
    #[error("sending to {to}: {source}")]
    Send {
        /// The destination.
        to: SocketAddr,
        /// The socket's error.
        source: std::io::Error,
    },
}

impl LinkSpec {
    /// The link of ha.cf's `ucast`/`bcast` media. A `bcast` medium sends
    /// to 255.255.255.255 on its interface (heartbeat takes the
    /// interface's broadcast address; with the socket bound to the
    /// interface the limited broadcast reaches the same hosts). IPv6
    /// groups and `serial` are refused with an error that names them.
    pub fn of(media: &[Medium], udpport: u16) -> Result<LinkSpec, MediaError> {
        let mut spec = LinkSpec {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), udpport),
            device: None,
            destinations: Vec::new(),
            broadcast: false,
            groups: Vec::new(),
        };
        let mut devices: Vec<String> = Vec::new();
        for m in media {
            match m {
                Medium::Ucast {
                    interface,
                    peer,
                    port,
                } => {
                    devices.push(interface.clone());
                    spec.destinations.push(SocketAddr::new(*peer, *port));
                }
                Medium::Bcast { interface, port } => {
                    devices.push(interface.clone());
                    spec.broadcast = true;
                    spec.destinations
                        .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), *port));
                }
                Medium::Mcast {
                    interface,
                    group: IpAddr::V4(group),
                    port,
                    ttl,
                    loopback,
                } => {
                    devices.push(interface.clone());
                    spec.destinations
                        .push(SocketAddr::new(IpAddr::V4(*group), *port));
                    spec.groups.push(Group {
                        group: *group,
                        interface: interface.clone(),
                        ttl: *ttl,
                        loopback: *loopback,
                    });
                }
                Medium::Mcast {
                    group: IpAddr::V6(group),
                    ..
                } => {
                    return Err(MediaError::Mcast6(IpAddr::V6(*group)));
                }
                Medium::Serial { device, .. } => {
                    return Err(MediaError::Serial(device.clone()));
                }
            }
        }
        if spec.destinations.is_empty() {
            return Err(MediaError::None);
        }
        // One socket: bound to the interface when every medium names the
        // same one, else listening on all of them.
        devices.dedup();
        if devices.len() == 1 {
            spec.device = devices.pop();
        }
        Ok(spec)
    }
}

/// What came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An authentic, fresh message; `restarted` when its sender's
    /// generation went up (the sender restarted).
    Message {
        /// Who sent the datagram.
        from: SocketAddr,
        /// The message.
        message: Message,
        /// The sender restarted.
        restarted: bool,
    },
    /// Dropped, and why (for the log: bad digest, replay...).
    Dropped {
        /// Who sent the datagram.
        from: SocketAddr,
        /// Why, as a kind (counted).
        kind: super::drops::DropKind,
        /// Why it was dropped.
        reason: String,
    },
}

/// An open link.
#[derive(Debug)]
pub struct Link {
    sock: UdpSocket,
    spec: LinkSpec,
    keys: Vec<AuthKey>,
    active: AuthKey,
    guards: HashMap<String, ReplayGuard>,
    /// The receive buffer, kept between datagrams.
    buf: Vec<u8>,
    /// Whether the last send failed (so a dead link is logged once).
    failing: std::sync::atomic::AtomicBool,
}

impl Link {
    /// Opens the socket. `keys` are authkeys' keys; `active` signs.
    pub fn open(spec: LinkSpec, keys: Vec<AuthKey>, active: AuthKey) -> std::io::Result<Link> {
        let domain = if spec.bind.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        // No SO_REUSEADDR: a second lvsd (or heartbeat) on this port must
        // fail to bind, not share the port and take the VIPs too.
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if let Some(dev) = &spec.device {
            s.bind_device(Some(dev.as_bytes()))?;
        }
        if spec.broadcast {
            s.set_broadcast(true)?;
        }
        for g in &spec.groups {
            let index = ifindex(&g.interface).map_err(|e| {
                std::io::Error::new(e.kind(), format!("mcast {}: {e}", g.interface))
            })?;
            s.join_multicast_v4_n(&g.group, &socket2::InterfaceIndexOrAddress::Index(index))
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("joining {} on {}: {e}", g.group, g.interface),
                    )
                })?;
            s.set_multicast_ttl_v4(u32::from(g.ttl))?;
            s.set_multicast_loop_v4(g.loopback)?;
        }
        if spec.bind.is_ipv4() {
            // IPTOS_LOWDELAY, as heartbeat; best effort.
            let _ = s.set_tos_v4(0x10);
        }
        s.set_nonblocking(true)?;
        s.bind(&spec.bind.into())?;
        let sock = UdpSocket::from_std(s.into())?;
        Ok(Link {
            sock,
            spec,
            keys,
            active,
            guards: HashMap::new(),
            buf: vec![0; MAX_MESSAGE + 1],
            failing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The local address (its port, when bound to port 0 in tests).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Signs `m` and sends it on every medium. Errors of one destination
    /// do not stop the others; the first is returned.
    pub async fn send(&self, m: &Message) -> Result<(), SendError> {
        let bytes = m.encode(&self.active)?;
        let mut first = None;
        for d in &self.spec.destinations {
            if let Err(e) = self.sock.send_to(&bytes, d).await {
                first.get_or_insert(SendError::Send { to: *d, source: e });
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Records whether sending fails now; returns whether it did before.
    pub fn set_failing(&self, now: bool) -> bool {
        self.failing.swap(now, std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits for the next datagram and judges it.
    pub async fn recv(&mut self) -> std::io::Result<Received> {
        let (n, from) = self.sock.recv_from(&mut self.buf).await?;
        let bytes = self.buf[..n].to_vec();
        Ok(self.judge(from, &bytes))
    }

    fn judge(&mut self, from: SocketAddr, bytes: &[u8]) -> Received {
        use super::drops::DropKind;
        let dropped = |kind, reason: String| Received::Dropped { from, kind, reason };
        let message = match open(bytes, &self.keys) {
            Ok(m) => m,
            Err(e @ (WireError::BadDigest(_) | WireError::UnknownKey(_))) => {
                return dropped(
                    DropKind::Authentication,
                    format!("{e}: check authkeys on both directors"),
                );
            }
            Err(e) => return dropped(DropKind::Malformed, e.to_string()),
        };
        let (Some(src), Some(hg)) = (message.get("src"), message.hex("hg")) else {
            return dropped(
                DropKind::Incomplete,
                "a message without src or hg".to_owned(),
            );
        };
        let guard = self.guards.entry(src.to_ascii_lowercase()).or_default();
        match guard.check(hg, message.hex("seq")) {
            Freshness::Replay => dropped(
                DropKind::Replay,
                format!(
                    "a replayed or duplicate message from {}",
                    src.chars().take(64).collect::<String>()
                ),
            ),
            fresh => Received::Message {
                from,
                restarted: fresh == Freshness::Restarted,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthMethod;

    fn key() -> AuthKey {
        AuthKey {
            index: 1,
            method: AuthMethod::Sha1("k".into()),
        }
    }

    fn spec(bind: &str, to: &str) -> LinkSpec {
        LinkSpec {
            bind: bind
                .parse()
                .unwrap_or_else(|_| unreachable!("a test address")),
            device: None,
            destinations: vec![
                to.parse()
                    .unwrap_or_else(|_| unreachable!("a test address")),
            ],
            broadcast: false,
            groups: Vec::new(),
        }
    }

    /// Two links on loopback addresses of their own, the same port, as
    /// two directors: status goes across, authenticated; a replayed
    /// datagram and one signed with another key are dropped.
    #[tokio::test]
    async fn two_nodes_on_loopback() {
        let port = {
            let probe = std::net::UdpSocket::bind("127.0.0.2:0").unwrap_or_else(|e| panic!("{e}"));
            probe.local_addr().unwrap_or_else(|e| panic!("{e}")).port()
        };
        let mut a = Link::open(
            spec(&format!("127.0.0.2:{port}"), &format!("127.0.0.3:{port}")),
            vec![key()],
            key(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut b = Link::open(
            spec(&format!("127.0.0.3:{port}"), &format!("127.0.0.2:{port}")),
            vec![key()],
            key(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let m = Message::of(&[("t", "status"), ("src", "a"), ("seq", "1"), ("hg", "10")]);
        a.send(&m).await.unwrap_or_else(|e| panic!("{e}"));
        match b.recv().await.unwrap_or_else(|e| panic!("{e}")) {
            Received::Message {
                message, restarted, ..
            } => {
                assert_eq!(message, m);
                assert!(!restarted);
            }
            other => panic!("{other:?}"),
        }
        // The same datagram again: a replay.
        a.send(&m).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(b.recv().await.unwrap_or_else(|e| panic!("{e}")), Received::Dropped { reason, .. } if reason.contains("replayed"))
        );
        // Another secret.
        let other = AuthKey {
            index: 1,
            method: AuthMethod::Sha1("other".into()),
        };
        let forged = Message::of(&[("t", "status"), ("src", "a"), ("seq", "2"), ("hg", "10")])
            .encode(&other)
            .unwrap_or_else(|e| panic!("{e}"));
        let raw = std::net::UdpSocket::bind("127.0.0.2:0").unwrap_or_else(|e| panic!("{e}"));
        raw.send_to(&forged, ("127.0.0.3", port))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(b.recv().await.unwrap_or_else(|e| panic!("{e}")), Received::Dropped { reason, .. } if reason.contains("authentication failed"))
        );
        // b answers a; a restart of b (higher hg) is flagged.
        let r = Message::of(&[("t", "status"), ("src", "b"), ("seq", "1"), ("hg", "20")]);
        b.send(&r).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            a.recv().await.unwrap_or_else(|e| panic!("{e}")),
            Received::Message {
                restarted: false,
                ..
            }
        ));
        let r2 = Message::of(&[("t", "status"), ("src", "b"), ("seq", "1"), ("hg", "21")]);
        b.send(&r2).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            a.recv().await.unwrap_or_else(|e| panic!("{e}")),
            Received::Message {
                restarted: true,
                ..
            }
        ));
    }

    #[test]
    fn media_of_ha_cf() {
        let media = vec![
            Medium::Ucast {
                interface: "eth0".into(),
                peer: "192.0.2.12".parse().unwrap_or_else(|_| unreachable!()),
                port: 694,
            },
            Medium::Bcast {
                interface: "eth1".into(),
                port: 694,
            },
        ];
        let s = LinkSpec::of(&media, 694).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.device, None, "two interfaces: listen on all");
        let one = LinkSpec::of(&media[..1], 694).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.device.as_deref(), Some("eth0"));
        assert!(s.broadcast);
        assert_eq!(s.destinations.len(), 2);
        let mcast = [Medium::Mcast {
            interface: "eth0".into(),
            group: "225.0.0.1".parse().unwrap_or_else(|_| unreachable!()),
            port: 694,
            ttl: 1,
            loopback: false,
        }];
        let m = LinkSpec::of(&mcast, 694).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.destinations,
            ["225.0.0.1:694".parse().unwrap_or_else(|_| unreachable!())]
        );
        assert_eq!(m.groups[0].group, Ipv4Addr::new(225, 0, 0, 1));
        let mcast6 = [Medium::Mcast {
            interface: "eth0".into(),
            group: "ff02::1:2".parse().unwrap_or_else(|_| unreachable!()),
            port: 694,
            ttl: 1,
            loopback: false,
        }];
        assert!(
            LinkSpec::of(&mcast6, 694)
                .unwrap_err()
                .to_string()
                .contains("mcast6")
        );
        let serial = [Medium::Serial {
            device: "/dev/ttyS0".into(),
            baud: 19200,
        }];
        assert!(
            LinkSpec::of(&serial, 694)
                .unwrap_err()
                .to_string()
                .contains("UDP only")
        );
    }
}
