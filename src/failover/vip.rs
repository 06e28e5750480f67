//! The virtual IPs on this director's interfaces, as heartbeat's IPaddr2
//! keeps them: added and removed through rtnetlink, and announced on
//! takeover with gratuitous ARP (IPaddr2 sends 5, 200 ms apart) so the
//! neighbours' ARP caches follow at once.
//!
//! IPv6 VIPs are added with IFA_F_NODAD (usable at once) and announced
//! with unsolicited neighbour advertisements to all nodes (ff02::1, the
//! Override flag set, from the VIP itself, hop limit 255), as IPaddr2's
//! `send_ua` does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use futures_util::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags};
use rtnetlink::packet_route::link::LinkAttribute;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// One virtual IP: `IPaddr2::192.0.2.100/24/eth0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The interface it goes on.
    pub interface: String,
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} on {}", self.addr, self.prefix, self.interface)
    }
}

/// The rtnetlink connection the VIPs are changed through.
#[derive(Debug)]
pub struct Vips {
    handle: Handle,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for Vips {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

const ETH_P_ARP: u16 = 0x0806;

/// Why a VIP could not be looked at, added, removed or announced.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// The VIP's interface does not exist.
    #[error("no interface {0}")]
    NoInterface(String),
    /// Asking the kernel about the interface failed.
    #[error("interface {interface}: {source}")]
    Interface {
        /// Its name.
        interface: String,
        /// What the kernel said.
        source: rtnetlink::Error,
    },
    /// Listing the interface's addresses failed.
    #[error("listing addresses: {0}")]
    List(rtnetlink::Error),
    /// Adding the address failed.
    #[error("adding {vip}: {source}")]
    Add {
        /// The VIP.
        vip: String,
        /// What the kernel said.
        source: rtnetlink::Error,
    },
    /// Removing the address failed.
    #[error("removing {vip}: {source}")]
    Remove {
        /// The VIP.
        vip: String,
        /// What the kernel said.
        source: rtnetlink::Error,
    },
    /// The interface has no Ethernet address to announce from.
    #[error("{0}: no Ethernet address to announce from")]
    NoEthernet(String),
    /// Sending a gratuitous ARP or neighbour advertisement failed.
    #[error("{what} for {vip}: {source}")]
    Announce {
        /// gratuitous ARP, or neighbour advertisement.
        what: &'static str,
        /// The VIP.
        vip: String,
        /// The socket's error.
        source: std::io::Error,
    },
}

impl Vips {
    /// Opens the route netlink socket (needs a tokio runtime).
    pub fn open() -> std::io::Result<Vips> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        Ok(Vips {
            handle,
            conn: tokio::spawn(conn),
        })
    }

    /// The index and hardware address of an interface.
    async fn link(&self, name: &str) -> Result<(u32, Vec<u8>), VipError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(l)) => {
                let mac = l
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::Address(m) => Some(m.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                Ok((l.header.index, mac))
            }
            Ok(None) => Err(VipError::NoInterface(name.to_owned())),
            Err(e) if e.to_string().contains("No such device") => {
                Err(VipError::NoInterface(name.to_owned()))
            }
            Err(e) => Err(VipError::Interface {
                interface: name.to_owned(),
                source: e,
            }),
        }
    }

    /// The address message of `v` if it is on its interface.
    async fn find(
        &self,
        v: &Vip,
    ) -> Result<Option<rtnetlink::packet_route::address::AddressMessage>, VipError> {
        let (index, _) = self.link(&v.interface).await?;
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(a) = addrs.try_next().await.map_err(VipError::List)? {
            let here = a
                .attributes
                .iter()
                .any(|x| matches!(x, AddressAttribute::Address(ip) if *ip == v.addr));
            if here && a.header.prefix_len == v.prefix {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Whether `v` is on its interface.
    pub async fn has(&self, v: &Vip) -> Result<bool, VipError> {
        Ok(self.find(v).await?.is_some())
    }

    /// Adds `v` (nothing when it is there already); true when added.
    pub async fn add(&self, v: &Vip) -> Result<bool, VipError> {
        if self.has(v).await? {
            return Ok(false);
        }
        let (index, _) = self.link(&v.interface).await?;
        let mut req = self.handle.address().add(index, v.addr, v.prefix);
        if v.addr.is_ipv6() {
            req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        req.execute().await.map_err(|e| VipError::Add {
            vip: v.to_string(),
            source: e,
        })?;
        Ok(true)
    }

    /// Removes `v` (nothing when it is not there); true when removed.
    pub async fn remove(&self, v: &Vip) -> Result<bool, VipError> {
        let Some(msg) = self.find(v).await? else {
            return Ok(false);
        };
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(|e| VipError::Remove {
                vip: v.to_string(),
                source: e,
            })?;
        Ok(true)
    }

    /// Announces `v`: `count` gratuitous ARP requests ("who-has VIP tell
    /// VIP") for IPv4, unsolicited neighbour advertisements for IPv6,
    /// `gap` apart.
    pub async fn announce(&self, v: &Vip, count: u32, gap: Duration) -> Result<(), VipError> {
        let (index, mac) = self.link(&v.interface).await?;
        let mac: [u8; 6] = mac
            .try_into()
            .map_err(|_| VipError::NoEthernet(v.interface.clone()))?;
        for i in 0..count {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            match v.addr {
                IpAddr::V4(ip) => {
                    gratuitous_arp(index, mac, ip).map_err(|e| VipError::Announce {
                        what: "gratuitous ARP",
                        vip: v.to_string(),
                        source: e,
                    })?
                }
                IpAddr::V6(ip) => unsolicited_na(&v.interface, index, mac, ip).map_err(|e| {
                    VipError::Announce {
                        what: "neighbour advertisement",
                        vip: v.to_string(),
                        source: e,
                    }
                })?,
            }
        }
        Ok(())
    }
}

/// The 28-byte ARP request announcing `ip` at `mac`.
fn arp_body(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 28] {
    let mut b = [0u8; 28];
    b[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    b[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    b[4] = 6;
    b[5] = 4;
    b[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    b[8..14].copy_from_slice(&mac);
    b[14..18].copy_from_slice(&ip.octets());
    // target hardware address: zero; target protocol address: the VIP
    b[24..28].copy_from_slice(&ip.octets());
    b
}

/// Sends one gratuitous ARP on interface `index` (the kernel adds the
/// Ethernet header: AF_PACKET, SOCK_DGRAM).
fn gratuitous_arp(index: u32, mac: [u8; 6], ip: Ipv4Addr) -> std::io::Result<()> {
    let s = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
    )?;
    let ifindex = i32::try_from(index).map_err(std::io::Error::other)?;
    // SAFETY: try_init hands us zeroed storage big enough for any socket
    // address (sockaddr_storage); sockaddr_ll fits in it, and we write
    // only its fields and the length it occupies.
    #[allow(unsafe_code)]
    let ((), dst) = unsafe {
        SockAddr::try_init(|storage, len| {
            let ll = &mut *storage.cast::<libc::sockaddr_ll>();
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_protocol = ETH_P_ARP.to_be();
            ll.sll_ifindex = ifindex;
            ll.sll_halen = 6;
            ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
            *len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })
    }?;
    s.send_to(&arp_body(mac, ip), &dst)?;
    Ok(())
}

/// The ICMPv6 neighbour advertisement announcing `ip` at `mac`: Override
/// set, not Solicited, the target link-layer address option (the kernel
/// fills the checksum of a raw ICMPv6 socket).
fn na_body(mac: [u8; 6], ip: Ipv6Addr) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = 136; // neighbour advertisement
    b[4] = 0x20; // Override
    b[8..24].copy_from_slice(&ip.octets());
    b[24] = 2; // target link-layer address
    b[25] = 1; // 8 bytes
    b[26..32].copy_from_slice(&mac);
    b
}

/// Sends one unsolicited neighbour advertisement for `ip` from `ip` to
/// all nodes on interface `dev` (index `index`).
fn unsolicited_na(dev: &str, index: u32, mac: [u8; 6], ip: Ipv6Addr) -> std::io::Result<()> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.bind_device(Some(dev.as_bytes()))?;
    // Receivers drop neighbour discovery with any other hop limit.
    s.set_multicast_hops_v6(255)?;
    s.set_multicast_if_v6(index)?;
    s.bind(&SocketAddr::new(IpAddr::V6(ip), 0).into())?;
    let all_nodes = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, index);
    s.send_to(&na_body(mac, ip), &all_nodes.into())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_na_body_announces_with_override() {
        let b = na_body(
            [2, 0, 0, 0, 0, 1],
            "2001:db8::100".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(&b[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&b[8..12], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(&b[24..], &[2, 1, 2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn the_arp_body_is_a_gratuitous_request() {
        let b = arp_body([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(
            b,
            [
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 192, 0, 2, 100, 0, 0, 0, 0, 0, 0, 192, 0,
                2, 100
            ]
        );
    }
}
