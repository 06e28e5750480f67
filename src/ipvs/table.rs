//! Pure: `Service`, `Destination`, `Table`, the kernel's vocabulary, and
//! their `ipvsadm -Sn` rendering (what `ipvsadm-save -n` prints and
//! `ipvsadm-restore` reads).

use core::net::IpAddr;
use std::fmt;

use super::diff::Op;
use crate::config::{Config, Forward, Netmask, Protocol, RealServer, VirtualKey, VirtualService};

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
    /// The config's word: gate, masq or ipip.
    pub fn as_str(self) -> &'static str {
        match self {
            FwdMethod::Masq => "masq",
            FwdMethod::Tunnel => "ipip",
            FwdMethod::Route => "gate",
        }
    }

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
                    Protocol::Sctp => "--sctp-service",
                };
                write!(f, "{p} {}", sockaddr(*addr, *port))
            }
            ServiceKey::Fwmark { mark, ipv6: false } => write!(f, "-f {mark}"),
            ServiceKey::Fwmark { mark, ipv6: true } => write!(f, "-f {mark} -6"),
        }
    }
}

pub(crate) fn sockaddr(a: IpAddr, port: u16) -> String {
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
    /// Scheduler flags (`-b`), canonical: the scheduler's own names
    /// (`sh-fallback,sh-port`) or `flag-N`, in bit order; see
    /// [`canonical_sched_flags`].
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

/// The role of the kernel's connection sync daemon (`ipvsadm
/// --start-daemon master|backup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncRole {
    /// Sends the director's connection states.
    Master,
    /// Receives them.
    Backup,
}

impl SyncRole {
    /// ipvsadm's word.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }
}

/// One running connection sync daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    /// Master or backup.
    pub role: SyncRole,
    /// The interface it multicasts on (`--mcast-interface`).
    pub interface: String,
    /// The sync id (`--syncid`, 0..=255; 0 matches every id on a backup).
    pub sync_id: u8,
}

impl fmt::Display for SyncDaemon {
    /// `ipvsadm --start-daemon` arguments.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--start-daemon {} --mcast-interface {} --syncid {}",
            self.role.as_str(),
            self.interface,
            self.sync_id
        )
    }
}

/// The kernel's connection timeouts in seconds (`ipvsadm --set tcp tcpfin
/// udp`); setting 0 leaves that one unchanged, as in ipvsadm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// Established TCP sessions.
    pub tcp: u32,
    /// TCP sessions after a FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// A destination's connection and traffic counters, as the kernel counts
/// them (`ipvsadm -Ln --stats` and the ActiveConn/InActConn columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counters {
    /// Established connections now.
    pub active: u32,
    /// Other connections now (e.g. TIME_WAIT, UDP).
    pub inactive: u32,
    /// Persistence templates now.
    pub persistent: u32,
    /// Connections scheduled so far.
    pub conns: u64,
    /// Packets in.
    pub in_packets: u64,
    /// Packets out.
    pub out_packets: u64,
    /// Bytes in.
    pub in_bytes: u64,
    /// Bytes out.
    pub out_bytes: u64,
}

/// Services and their destinations, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Each service with its destinations.
    pub services: Vec<(Service, Vec<Destination>)>,
}

/// `IP_VS_SVC_F_SCHED1..3`: the bits ipvsadm's `-b` names set.
pub const SCHED_FLAG_BITS: [u32; 3] = [0x0008, 0x0010, 0x0020];

/// The scheduler-flag bits `names` (`-b` syntax, comma separated) set.
/// Unknown names set nothing (the config reader only lets known ones by).
pub fn sched_flag_bits(names: Option<&str>) -> u32 {
    names.map_or(0, |f| {
        f.split(',')
            .map(|n| match n.trim() {
                "flag-1" | "sh-fallback" | "mh-fallback" => SCHED_FLAG_BITS[0],
                "flag-2" | "sh-port" | "mh-port" => SCHED_FLAG_BITS[1],
                "flag-3" => SCHED_FLAG_BITS[2],
                _ => 0,
            })
            .fold(0, |a, b| a | b)
    })
}

/// The one spelling of a set of scheduler flags, so a service read back
/// from the kernel equals the one built from the config: ipvsadm's names
/// for sh and mh (`sh-fallback`, `sh-port`), `flag-N` otherwise.
pub fn canonical_sched_flags(scheduler: &str, bits: u32) -> Option<String> {
    let names: Vec<String> = SCHED_FLAG_BITS
        .iter()
        .enumerate()
        .filter(|(_, b)| bits & **b != 0)
        .map(|(i, _)| match (scheduler, i) {
            ("sh" | "mh", 0) => format!("{scheduler}-fallback"),
            ("sh" | "mh", 1) => format!("{scheduler}-port"),
            _ => format!("flag-{}", i + 1),
        })
        .collect();
    (!names.is_empty()).then(|| names.join(","))
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
            sched_flags: canonical_sched_flags(
                &vs.scheduler,
                sched_flag_bits(vs.schedflags.as_deref()),
            ),
        }
    }
}

impl Destination {
    /// The kernel destination for a configured real, at its configured weight.
    pub fn of(vs: &VirtualService, r: &RealServer) -> Destination {
        Destination {
            addr: r.address,
            // Port 0 means "the virtual's port", as ipvsadm -r without a port.
            port: if r.port == 0 { vs.key.port() } else { r.port },
            fwd: r.forward.into(),
            weight: r.weight,
            upper_threshold: r.upper_threshold.unwrap_or(0),
            lower_threshold: r.lower_threshold.unwrap_or(0),
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
                let dests = vs.reals.iter().map(|r| Destination::of(vs, r)).collect();
                (Service::of(vs), dests)
            })
            .collect();
        Table { services }
    }
}

impl Service {
    /// ipvsadm's arguments for this service after `-A`/`-E`:
    /// `-t 10.0.0.1:80 -s wrr -p 300`.
    pub fn args(&self) -> String {
        // ipvsadm -Sn's own order (read off Debian's ipvsadm 1.31 in the
        // VM): -s, -p/-M, -o, -b.
        let mut a = format!("{} -s {}", self.key, self.scheduler);
        if let Some(p) = self.persistence {
            a.push_str(&format!(" -p {p}"));
            if let Some(m) = self.netmask {
                a.push_str(&format!(" -M {m}"));
            }
        }
        if self.one_packet {
            a.push_str(" -o");
        }
        if let Some(b) = &self.sched_flags {
            a.push_str(&format!(" -b {b}"));
        }
        a
    }
}

impl Destination {
    /// `addr:port` with brackets for IPv6.
    pub fn endpoint(&self) -> String {
        sockaddr(self.addr, self.port)
    }

    /// ipvsadm's arguments after `-a`/`-e` and the service:
    /// `-r 10.0.0.5:80 -g -w 1 -x 100`.
    pub fn args(&self) -> String {
        let mut a = format!(
            "-r {} {} -w {}",
            self.endpoint(),
            self.fwd.flag(),
            self.weight
        );
        if self.upper_threshold > 0 {
            a.push_str(&format!(" -x {}", self.upper_threshold));
        }
        if self.lower_threshold > 0 {
            a.push_str(&format!(" -y {}", self.lower_threshold));
        }
        a
    }

    /// Whether `other` is the same destination (address and port).
    pub fn same(&self, other: &Destination) -> bool {
        self.addr == other.addr && self.port == other.port
    }
}

impl ServiceKey {
    /// The short name used in logs and the ops log: `tcp:192.0.2.10:80`,
    /// `udp:[2001:db8::1]:53`, `fwm:5` (`fwm6:5` for an IPv6 fwmark).
    pub fn name(&self) -> String {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => format!("{}:{}", protocol.as_str(), sockaddr(*addr, *port)),
            ServiceKey::Fwmark { mark, ipv6: false } => format!("fwm:{mark}"),
            ServiceKey::Fwmark { mark, ipv6: true } => format!("fwm6:{mark}"),
        }
    }
}

impl Table {
    /// The service with this key and its destinations.
    pub fn service(&self, key: &ServiceKey) -> Option<&(Service, Vec<Destination>)> {
        self.services.iter().find(|(s, _)| s.key == *key)
    }

    /// Carries out one op as the kernel would, with the kernel's refusals
    /// (adding what exists, changing what does not).
    pub fn apply(&mut self, op: &Op) -> Result<(), &'static str> {
        // From the end: a table being built (a start, a big reload) adds
        // each service's destinations right after the service.
        let find =
            |t: &mut Table, k: &ServiceKey| t.services.iter().rposition(|(s, _)| s.key == *k);
        match op {
            Op::AddService(s) => match find(self, &s.key) {
                Some(_) => Err("service already exists"),
                None => {
                    self.services.push((s.clone(), Vec::new()));
                    Ok(())
                }
            },
            Op::EditService(s) => {
                let i = find(self, &s.key).ok_or("no such service")?;
                self.services[i].0 = s.clone();
                Ok(())
            }
            Op::DelService(k) => {
                let i = find(self, k).ok_or("no such service")?;
                self.services.remove(i);
                Ok(())
            }
            Op::AddDest(k, d) => {
                let i = find(self, k).ok_or("no such service")?;
                let dests = &mut self.services[i].1;
                if dests.iter().any(|x| x.same(d)) {
                    return Err("destination already exists");
                }
                dests.push(d.clone());
                Ok(())
            }
            Op::EditDest(k, d) => {
                let i = find(self, k).ok_or("no such service")?;
                let x = self.services[i]
                    .1
                    .iter_mut()
                    .find(|x| x.same(d))
                    .ok_or("no such destination")?;
                *x = d.clone();
                Ok(())
            }
            Op::DelDest(k, d) => {
                let i = find(self, k).ok_or("no such service")?;
                let dests = &mut self.services[i].1;
                let j = dests
                    .iter()
                    .position(|x| x.same(d))
                    .ok_or("no such destination")?;
                dests.remove(j);
                Ok(())
            }
        }
    }
}

impl fmt::Display for Table {
    /// `ipvsadm -Sn` lines: `-A` per service, `-a` per destination.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (s, dests) in &self.services {
            writeln!(f, "-A {}", s.args())?;
            for d in dests {
                writeln!(f, "-a {} {}", s.key, d.args())?;
            }
        }
        Ok(())
    }
}
