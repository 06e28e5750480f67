//! Pure: `Service`, `Destination`, `Table`, the kernel's vocabulary, and
//! their `ipvsadm -Sn` rendering (what `ipvsadm-save -n` prints and
//! `ipvsadm-restore` reads).

use core::net::IpAddr;
use std::fmt;

use crate::config::{Config, Forward, Netmask, Protocol, VirtualKey, VirtualService};

/// How the kernel forwards to a destination (`IP_VS_CONN_F_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdMethod {
    /// NAT (`-m`).
    Masq,
    /// Tunnel (`-i`).
    Tunnel,
    /// Direct routing (`-g`).
    Route,
}

impl From<Forward> for FwdMethod {
    fn from(f: Forward) -> Self {
        match f {
            Forward::Gate => FwdMethod::Route,
            Forward::Masq => FwdMethod::Masq,
            Forward::Ipip => FwdMethod::Tunnel,
        }
    }
}

impl FwdMethod {
    fn flag(self) -> &'static str {
        match self {
            FwdMethod::Masq => "-m",
            FwdMethod::Tunnel => "-i",
            FwdMethod::Route => "-g",
        }
    }
}

/// What identifies a service in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// protocol + address + port.
    Addr {
        /// tcp or udp.
        protocol: Protocol,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// Firewall mark, per address family.
    Fwmark {
        /// The mark.
        mark: u32,
        /// IPv6 family.
        ipv6: bool,
    },
}

impl From<VirtualKey> for ServiceKey {
    fn from(k: VirtualKey) -> Self {
        match k {
            VirtualKey::Address {
                address,
                port,
                protocol,
            } => ServiceKey::Addr {
                protocol,
                addr: address,
                port,
            },
            VirtualKey::Fwmark { fwmark, ipv6 } => ServiceKey::Fwmark { mark: fwmark, ipv6 },
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's service argument: `-t 10.0.0.1:80`, `-u [2001:db8::1]:53`, `-f 1 -6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let p = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                };
                write!(f, "{p} {}", sockaddr(*addr, *port))
            }
            ServiceKey::Fwmark { mark, ipv6: false } => write!(f, "-f {mark}"),
            ServiceKey::Fwmark { mark, ipv6: true } => write!(f, "-f {mark} -6"),
        }
    }
}

fn sockaddr(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V6(a) => format!("[{a}]:{port}"),
        a => format!("{a}:{port}"),
    }
}

/// A virtual service as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler name.
    pub scheduler: String,
    /// Persistence timeout (None = not persistent).
    pub persistence: Option<u32>,
    /// Persistence netmask.
    pub netmask: Option<Netmask>,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// Scheduler flags (`-b`).
    pub sched_flags: Option<String>,
}

/// A real server as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Weight (0 = quiescent).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub lower_threshold: u32,
}

/// Services and their destinations, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Each service with its destinations.
    pub services: Vec<(Service, Vec<Destination>)>,
}

impl Service {
    /// The kernel service for a configured virtual.
    pub fn of(vs: &VirtualService) -> Service {
        let is_udp = matches!(
            vs.key,
            VirtualKey::Address {
                protocol: Protocol::Udp,
                ..
            }
        );
        Service {
            key: vs.key.into(),
            scheduler: vs.scheduler.clone(),
            persistence: vs.persistent,
            // ldirectord passes -M only together with -p.
            netmask: vs.persistent.and(vs.netmask),
            one_packet: vs.ops && is_udp,
            sched_flags: vs.schedflags.clone(),
        }
    }
}

impl Table {
    /// The table `cfg` describes when every real is up (`lvsd dump --table`).
    pub fn all_up(cfg: &Config) -> Table {
        let services = cfg
            .virtuals
            .iter()
            .map(|vs| {
                let dests = vs
                    .reals
                    .iter()
                    .map(|r| Destination {
                        addr: r.address,
                        // Port 0 means "the virtual's port", as ipvsadm -r without a port.
                        port: if r.port == 0 { vs.key.port() } else { r.port },
                        fwd: r.forward.into(),
                        weight: r.weight,
                        upper_threshold: r.upper_threshold.unwrap_or(0),
                        lower_threshold: r.lower_threshold.unwrap_or(0),
                    })
                    .collect();
                (Service::of(vs), dests)
            })
            .collect();
        Table { services }
    }
}

impl fmt::Display for Table {
    /// `ipvsadm -Sn` lines: `-A` per service, `-a` per destination.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (s, dests) in &self.services {
            write!(f, "-A {}", s.key)?;
            if s.one_packet {
                write!(f, " -o")?;
            }
            write!(f, " -s {}", s.scheduler)?;
            if let Some(p) = s.persistence {
                write!(f, " -p {p}")?;
                if let Some(m) = s.netmask {
                    write!(f, " -M {m}")?;
                }
            }
            if let Some(b) = &s.sched_flags {
                write!(f, " -b {b}")?;
            }
            writeln!(f)?;
            for d in dests {
                write!(
                    f,
                    "-a {} -r {} {} -w {}",
                    s.key,
                    sockaddr(d.addr, d.port),
                    d.fwd.flag(),
                    d.weight
                )?;
                if d.upper_threshold > 0 {
                    write!(f, " -x {}", d.upper_threshold)?;
                }
                if d.lower_threshold > 0 {
                    write!(f, " -y {}", d.lower_threshold)?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}
