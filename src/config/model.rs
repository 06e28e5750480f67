//! The validated configuration: plain data, every default applied.
//!
//! Every reader (ldirectord.cf, lvsd.toml, ha.cf + haresources + authkeys)
//! produces this one model; nothing downstream knows which file a setting
//! came from. Field names here are the JSON field names of `lvsd dump
//! --json` and are listed in the README: renaming one is a breaking change.
//!
//! One room although it passes 800 lines: it is type declarations and
//! their doc comments (the operator-facing meaning of every field), with
//! small accessors; splitting it would scatter the dump schema.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use super::diagnostic::Loc;
use super::{Pattern, RealUrl};

/// Everything lvsd was told to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Settings that apply to the whole daemon.
    pub global: Global,
    /// The virtual services, in file order.
    pub virtuals: Vec<VirtualService>,
    /// Director failover (ha.cf, haresources, authkeys), when configured.
    pub failover: Option<Failover>,
}

/// Global directives (ldirectord's column-0 lines, lvsd.toml's `[global]`).
///
/// The inheritable ones (timeouts, counts, quiescent, alerts, fallback...)
/// are kept as written so `dump` can show them; each virtual carries its
/// own effective copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Global {
    /// Seconds between check rounds (ldirectord default 10).
    pub checkinterval: u64,
    /// Global `checktimeout`, if written (seconds).
    pub checktimeout: Option<u64>,
    /// Global `negotiatetimeout`, if written (seconds).
    pub negotiatetimeout: Option<u64>,
    /// Ping attempts per check (deprecated in ldirectord; default 1).
    pub checkcount: u32,
    /// Consecutive failures before a real is taken out (default 1).
    pub failurecount: u32,
    /// Consecutive successes before a real is put back (default 1; lvsd's addition).
    pub risecount: u32,
    /// Re-read the config when it changes on disk (ldirectord default no).
    pub autoreload: bool,
    /// Command run with the config file name when it changes.
    pub callback: Option<String>,
    /// Global IPv4 fallback server (port may be left to the virtual).
    pub fallback: Option<FallbackSpec>,
    /// Global IPv6 fallback server.
    pub fallback6: Option<FallbackSpec>,
    /// Command run with `start|stop vip:vport proto` when fallback engages.
    pub fallbackcommand: Option<String>,
    /// Where lvsd logs besides journald/stderr (unset: journald under
    /// systemd, else stderr).
    pub logfile: Option<LogTarget>,
    /// Mail settings (each virtual has its effective copy).
    pub alerts: Alerts,
    /// `From:` of alert mails; unset means `<user>@<hostname>`.
    pub emailalertfrom: Option<String>,
    /// The least seconds between two alert mails to one recipient; what
    /// changes meanwhile is listed in the next (an lvsd extension,
    /// default 60).
    pub emailalertcoalesce: u64,
    /// Other ldirectord configs to start alongside (`execute=`).
    pub execute: Vec<String>,
    /// Run in the foreground, log to stdout.
    pub supervised: bool,
    /// ldirectord's `fork=`: accepted for compatibility; lvsd always checks
    /// every real concurrently, so it only decides whether per-virtual
    /// `checkinterval` is honoured (as in ldirectord).
    pub fork: bool,
    /// Set failed reals to weight 0 instead of removing them (code default no).
    pub quiescent: bool,
    /// Re-add a quiescent real that was removed by hand.
    pub readdquiescent: bool,
    /// Remove the services lvsd set up when it stops (default yes).
    pub cleanstop: bool,
    /// Directory whose files force reals into maintenance (drain).
    pub maintenancedir: Option<PathBuf>,
    /// The IPVS connection sync daemon, following the failover role
    /// (keepalived's `lvs_sync_daemon`; an lvsd extension).
    pub lvs_sync_daemon: Option<SyncDaemonSpec>,
    /// Where the Prometheus `/metrics` endpoint listens (an lvsd
    /// extension; unset: no endpoint).
    pub metrics: Option<std::net::SocketAddr>,
}

/// `lvs_sync_daemon = INTERFACE [id N]`: the kernel's connection sync
/// daemon multicasts on INTERFACE with sync id N (0 on a backup accepts
/// every id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncDaemonSpec {
    /// The interface.
    pub interface: String,
    /// The sync id.
    pub sync_id: u8,
}

/// Where log lines go (`logfile=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "target", rename_all = "lowercase")]
pub enum LogTarget {
    /// Append to this file.
    File(PathBuf),
    /// Send to syslog with this facility (`logfile="local0"`).
    Syslog(Facility),
}

/// A syslog facility, read once from its name (`local0` = 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(u8);

impl Facility {
    const NAMES: [&'static str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "security", "console", "cron2", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];

    /// The facility of this name; None for an unknown one.
    pub fn parse(name: &str) -> Option<Facility> {
        Facility::NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(Facility)
    }

    /// Its code (`local0` = 16).
    pub fn code(self) -> u32 {
        u32::from(self.0)
    }

    /// Its name, as written.
    pub fn name(self) -> &'static str {
        Facility::NAMES
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("user")
    }
}

impl Serialize for Facility {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Mail alert settings (`emailalert*`, `smtp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alerts {
    /// Recipients; empty means no mail.
    pub emailalert: Vec<String>,
    /// Seconds between reminders while a real stays down (0 = none).
    pub emailalertfreq: u64,
    /// Daemon states in which mail is sent.
    pub emailalertstatus: AlertStatus,
    /// SMTP server: `host[:port]` or an `smtp://`/`smtps://` URL (see
    /// [`crate::alert::smtp`]); unset means localhost:25.
    pub smtp: Option<super::SmtpServer>,
}

/// The set of daemon states in which alerts are mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlertStatus {
    /// While starting.
    pub starting: bool,
    /// While running.
    pub running: bool,
    /// While stopping.
    pub stopping: bool,
    /// While reloading.
    pub reloading: bool,
}

impl AlertStatus {
    /// All states (ldirectord's default).
    pub const ALL: AlertStatus = AlertStatus {
        starting: true,
        running: true,
        stopping: true,
        reloading: true,
    };
    /// No state.
    pub const NONE: AlertStatus = AlertStatus {
        starting: false,
        running: false,
        stopping: false,
        reloading: false,
    };

    /// The ldirectord spelling: `all`, `none` or a comma list.
    pub fn to_ldirectord(self) -> String {
        if self == Self::ALL {
            return "all".into();
        }
        if self == Self::NONE {
            return "none".into();
        }
        let mut v = Vec::new();
        for (on, name) in [
            (self.starting, "starting"),
            (self.running, "running"),
            (self.stopping, "stopping"),
            (self.reloading, "reloading"),
        ] {
            if on {
                v.push(name);
            }
        }
        v.join(",")
    }
}

/// A fallback server as written: the port may be missing (then the
/// virtual's port is used), the host may have been a name (resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackSpec {
    /// Resolved address.
    pub address: IpAddr,
    /// Port, if written.
    pub port: Option<u16>,
    /// Forwarding method (default gate).
    pub forward: Forward,
}

/// The fallback ("sorry") server of one virtual, port resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// Address.
    pub address: IpAddr,
    /// Port (the virtual's when not written; 0 for fwmark services).
    pub port: u16,
    /// Forwarding method.
    pub forward: Forward,
}

/// How the director forwards packets to a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// Direct routing (`-g`).
    Gate,
    /// NAT (`-m`).
    Masq,
    /// IP-in-IP tunnel (`-i`).
    Ipip,
}

impl Forward {
    /// The ldirectord word.
    pub fn as_str(self) -> &'static str {
        match self {
            Forward::Gate => "gate",
            Forward::Masq => "masq",
            Forward::Ipip => "ipip",
        }
    }

    /// Parses the ldirectord word.
    pub fn parse(s: &str) -> Option<Forward> {
        match s {
            "gate" => Some(Forward::Gate),
            "masq" => Some(Forward::Masq),
            "ipip" => Some(Forward::Ipip),
            _ => None,
        }
    }
}

/// Transport protocol of an address-and-port virtual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
    /// SCTP (`--sctp-service`); an lvsd extension, ldirectord has no SCTP.
    Sctp,
}

impl Protocol {
    /// The ldirectord word.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// What identifies a virtual service to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VirtualKey {
    /// `virtual=ip:port` / `virtual6=[ip]:port`.
    Address {
        /// The virtual IP.
        address: IpAddr,
        /// The virtual port.
        port: u16,
        /// tcp or udp.
        protocol: Protocol,
    },
    /// `virtual=N`: a firewall mark (`protocol=fwm`).
    Fwmark {
        /// The mark.
        fwmark: u32,
        /// True for `virtual6=N`.
        ipv6: bool,
    },
}

impl VirtualKey {
    /// True for IPv6 services.
    pub fn is_ipv6(&self) -> bool {
        match self {
            VirtualKey::Address { address, .. } => address.is_ipv6(),
            VirtualKey::Fwmark { ipv6, .. } => *ipv6,
        }
    }

    /// The virtual's port (0 for fwmark).
    pub fn port(&self) -> u16 {
        match self {
            VirtualKey::Address { port, .. } => *port,
            VirtualKey::Fwmark { .. } => 0,
        }
    }

    /// The protocol word ldirectord uses: tcp, udp or fwm.
    pub fn protocol_str(&self) -> &'static str {
        match self {
            VirtualKey::Address { protocol, .. } => protocol.as_str(),
            VirtualKey::Fwmark { .. } => "fwm",
        }
    }
}

impl std::fmt::Display for VirtualKey {
    /// As ipvsadm names it: `192.0.2.1:80`, `[2001:db8::1]:80`, `1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VirtualKey::Address {
                address: IpAddr::V6(a),
                port,
                ..
            } => write!(f, "[{a}]:{port}"),
            VirtualKey::Address { address, port, .. } => write!(f, "{address}:{port}"),
            VirtualKey::Fwmark { fwmark, .. } => write!(f, "{fwmark}"),
        }
    }
}

/// Persistence granularity (`netmask=`): a dotted mask for IPv4, a prefix
/// length for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Netmask {
    /// IPv4 mask, e.g. 255.255.255.0.
    V4(std::net::Ipv4Addr),
    /// IPv6 prefix length 1..=128.
    V6(u8),
}

impl std::fmt::Display for Netmask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Netmask::V4(m) => write!(f, "{m}"),
            Netmask::V6(p) => write!(f, "{p}"),
        }
    }
}

/// One virtual service and everything needed to run it, defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualService {
    /// Where the block starts (not part of the meaning: ignored by `==`).
    #[serde(skip)]
    pub origin: Origin,
    /// Address and port, or fwmark.
    #[serde(flatten)]
    pub key: VirtualKey,
    /// IPVS scheduler (default wrr).
    pub scheduler: String,
    /// Persistence timeout in seconds.
    pub persistent: Option<u32>,
    /// Persistence netmask (only sent to the kernel with `persistent`).
    pub netmask: Option<Netmask>,
    /// Scheduler flags (`ipvsadm -b`), e.g. `sh-port`.
    pub schedflags: Option<String>,
    /// One-packet scheduling (UDP only).
    pub ops: bool,
    /// Name used in alert subjects.
    pub servicename: Option<String>,
    /// Free text used in alert bodies.
    pub comment: Option<String>,
    /// The real servers, ranges expanded, in file order.
    pub reals: Vec<RealServer>,
    /// The fallback server when no real is up.
    pub fallback: Option<Fallback>,
    /// Command run when fallback engages or disengages.
    pub fallbackcommand: Option<String>,
    /// How the reals are checked.
    pub check: CheckSpec,
    /// Weight 0 instead of removal on failure.
    pub quiescent: bool,
    /// Remove this service on stop.
    pub cleanstop: bool,
    /// Mail settings for this virtual.
    pub alerts: Alerts,
    /// Per-check result log.
    pub monitorfile: Option<PathBuf>,
}

/// Where something was written; carried for messages, ignored by `==`.
#[derive(Debug, Clone, Default)]
pub struct Origin(pub Option<Loc>);

impl PartialEq for Origin {
    /// Locations never change meaning: a converted config equals its source.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(l) => write!(f, "{l}"),
            None => f.write_str("<built-in>"),
        }
    }
}

/// One real server of a virtual.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    /// Where it was written (ignored by `==`).
    #[serde(skip)]
    pub origin: Origin,
    /// Address.
    pub address: IpAddr,
    /// Port; 0 when not written (the kernel then uses the virtual's port).
    pub port: u16,
    /// Forwarding method.
    pub forward: Forward,
    /// IPVS weight (default 1; 0 starts the real drained).
    pub weight: u32,
    /// Lower connection threshold (`l:N`, `ipvsadm -y`).
    pub lower_threshold: Option<u32>,
    /// Upper connection threshold (`u:N`, `ipvsadm -x`).
    pub upper_threshold: Option<u32>,
    /// Per-real `"request","receive"` override, as written.
    pub check_override: Option<RequestReceive>,
}

/// A per-real request/receive pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestReceive {
    /// What to ask (a path, a URL `<service>://...`, a query...).
    pub request: String,
    /// What the answer must match.
    pub receive: Pattern,
    /// For http(s) negotiate checks, the request read as ldirectord's
    /// per-real URL (fetched instead of the real), when it is one.
    #[serde(skip)]
    pub url: Option<RealUrl>,
}

impl RealServer {
    /// The port checks connect to: `checkport`, else the real's port, else
    /// the service's well-known port (ldirectord's `ld_checkport`).
    pub fn check_port(&self, vs: &VirtualService) -> Option<u16> {
        vs.check
            .checkport
            .or((self.port > 0).then_some(self.port))
            .or_else(|| vs.check.service.default_port())
    }

    /// The request this real is checked with.
    pub fn request<'a>(&'a self, vs: &'a VirtualService) -> &'a str {
        self.check_override
            .as_ref()
            .map_or(vs.check.request.as_str(), |o| o.request.as_str())
    }

    /// The pattern this real's answer must match.
    pub fn receive<'a>(&'a self, vs: &'a VirtualService) -> &'a Pattern {
        self.check_override
            .as_ref()
            .map_or(&vs.check.receive, |o| &o.receive)
    }
}

/// `checktype=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "every")]
pub enum CheckType {
    /// TCP connect (ICMP ping for UDP virtuals).
    Connect,
    /// Speak the service's protocol (default).
    Negotiate,
    /// ICMP echo.
    Ping,
    /// Run `checkcommand`.
    External,
    /// Run `checkcommand` (a Perl file in ldirectord; an executable here).
    ExternalPerl,
    /// Never check; reals always up.
    On,
    /// Never check; reals and fallback never activated.
    Off,
    /// `checktype=N`: connect checks, and a negotiate check every N.
    Combined(u32),
}

impl CheckType {
    /// The ldirectord spelling.
    pub fn to_ldirectord(self) -> String {
        match self {
            CheckType::Connect => "connect".into(),
            CheckType::Negotiate => "negotiate".into(),
            CheckType::Ping => "ping".into(),
            CheckType::External => "external".into(),
            CheckType::ExternalPerl => "external-perl".into(),
            CheckType::On => "on".into(),
            CheckType::Off => "off".into(),
            CheckType::Combined(n) => n.to_string(),
        }
    }
}

/// `service=`: the protocol a negotiate check speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Service {
    Dns,
    Ftp,
    Http,
    Https,
    HttpProxy,
    Imap,
    Imaps,
    Ldap,
    Ldaps,
    Mysql,
    Nntp,
    None,
    Oracle,
    Pgsql,
    Pop,
    Pops,
    Radius,
    Simpletcp,
    Sip,
    Smtp,
    Submission,
}

impl Service {
    /// Every service, with its ldirectord name and well-known port.
    pub const ALL: [(Service, &'static str, Option<u16>); 21] = [
        (Service::Dns, "dns", Some(53)),
        (Service::Ftp, "ftp", Some(21)),
        (Service::Http, "http", Some(80)),
        (Service::Https, "https", Some(443)),
        (Service::HttpProxy, "http_proxy", Some(3128)),
        (Service::Imap, "imap", Some(143)),
        (Service::Imaps, "imaps", Some(993)),
        (Service::Ldap, "ldap", Some(389)),
        (Service::Ldaps, "ldaps", Some(636)),
        (Service::Mysql, "mysql", Some(3306)),
        (Service::Nntp, "nntp", Some(119)),
        (Service::None, "none", None),
        (Service::Oracle, "oracle", Some(1521)),
        (Service::Pgsql, "pgsql", Some(5432)),
        (Service::Pop, "pop", Some(110)),
        (Service::Pops, "pops", Some(995)),
        (Service::Radius, "radius", Some(1812)),
        (Service::Simpletcp, "simpletcp", None),
        (Service::Sip, "sip", Some(5060)),
        (Service::Smtp, "smtp", Some(25)),
        (Service::Submission, "submission", Some(587)),
    ];

    /// The ldirectord name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _, _)| *s == self)
            .map_or("none", |(_, n, _)| n)
    }

    /// Parses an ldirectord name.
    pub fn parse(name: &str) -> Option<Service> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(s, _, _)| *s)
    }

    /// The service's well-known port (`ld_service_to_port`).
    pub fn default_port(self) -> Option<u16> {
        Self::ALL
            .iter()
            .find(|(s, _, _)| *s == self)
            .and_then(|(_, _, p)| *p)
    }

    /// The service ldirectord infers from a virtual's port (`ld_port_to_service`).
    pub fn from_port(port: u16) -> Service {
        Self::ALL
            .iter()
            .find(|(_, _, p)| *p == Some(port))
            .map_or(Service::None, |(s, _, _)| *s)
    }
}

/// `httpmethod=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
}

impl HttpMethod {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// How the reals of one virtual are checked, every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckSpec {
    /// `checktype=`.
    pub checktype: CheckType,
    /// `service=` (inferred from the port when not written).
    pub service: Service,
    /// Port to check instead of the real's.
    pub checkport: Option<u16>,
    /// What to ask: a path for http (leading `/` added, as ldirectord), a
    /// base DN for ldap, a name for dns, SQL for databases, a file for ftp.
    pub request: String,
    /// Regular expression the answer must match (empty = anything).
    pub receive: Pattern,
    /// Host header and TLS server name for http(s).
    pub virtualhost: Option<String>,
    /// Verify https certificates against the system's CAs (lvsd's
    /// addition; ldirectord never verifies, so the default is no).
    pub verifycert: bool,
    /// GET or HEAD.
    pub httpmethod: HttpMethod,
    /// Login for services that take one.
    pub login: String,
    /// Password.
    pub passwd: String,
    /// Database for mysql/pgsql/oracle.
    pub database: String,
    /// RADIUS shared secret.
    pub secret: String,
    /// Command for external checks.
    pub checkcommand: String,
    /// Deadline of connect, ping and external checks (seconds).
    pub checktimeout: u64,
    /// Deadline of negotiate checks (seconds).
    pub negotiatetimeout: u64,
    /// Seconds between checks.
    pub checkinterval: u64,
    /// Ping attempts per check.
    pub checkcount: u32,
    /// Consecutive failures before down.
    pub failurecount: u32,
    /// Consecutive successes before up again.
    pub risecount: u32,
}

// ---------------------------------------------------------------- failover

/// Director failover: heartbeat's three files as one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failover {
    /// ha.cf.
    pub ha: HaCf,
    /// haresources: who prefers which resources.
    pub resources: Vec<ResourceGroup>,
    /// authkeys.
    pub authkeys: AuthKeys,
}

/// Heartbeat's `auto_failback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoFailback {
    /// Resources return to their preferred node when it comes back.
    On,
    /// Resources stay where they are.
    Off,
    /// heartbeat's legacy mode (pre-nice_failback behaviour).
    Legacy,
}

/// A heartbeat communication medium.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Medium {
    /// `bcast dev`: UDP broadcast on `udpport`.
    Bcast {
        /// Interface.
        interface: String,
        /// Port in force when the line was read.
        port: u16,
    },
    /// `mcast dev group port ttl loop` (also mcast6).
    Mcast {
        /// Interface.
        interface: String,
        /// Group address.
        group: IpAddr,
        /// Port.
        port: u16,
        /// TTL / hop limit.
        ttl: u8,
        /// Loop back to ourselves.
        #[serde(rename = "loop")]
        loopback: bool,
    },
    /// `ucast dev peer` (also ucast6).
    Ucast {
        /// Interface.
        interface: String,
        /// The peer's address.
        peer: IpAddr,
        /// Port in force when the line was read.
        port: u16,
    },
    /// `serial /dev/ttyS0`: accepted for completeness, not supported by lvsd.
    Serial {
        /// Device path.
        device: String,
        /// Baud rate in force.
        baud: u32,
    },
}

/// A group of ping nodes that counts as one (alive if any member answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PingGroup {
    /// Group name.
    pub name: String,
    /// Members.
    pub addresses: Vec<IpAddr>,
}

/// A `respawn user /path args` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Respawn {
    /// User to run as.
    pub user: String,
    /// Command line.
    pub command: String,
}

/// An `apiauth service [uid=..] [gid=..]` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiAuth {
    /// Client service name (ipfail, ccm, ...).
    pub service: String,
    /// Allowed users.
    pub uid: Vec<String>,
    /// Allowed groups.
    pub gid: Vec<String>,
}

/// ha.cf, heartbeat's units applied (all times in milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HaCf {
    /// Interval between heartbeats.
    pub keepalive_ms: u64,
    /// Silence after which a node is dead.
    pub deadtime_ms: u64,
    /// Silence after which a late heartbeat is logged.
    pub warntime_ms: u64,
    /// deadtime used right after start.
    pub initdead_ms: u64,
    /// Silence after which a ping node is dead.
    pub deadping_ms: u64,
    /// `udpport` (last one written; each medium records its own).
    pub udpport: u16,
    /// Communication media.
    pub media: Vec<Medium>,
    /// Cluster members (`node`).
    pub nodes: Vec<String>,
    /// `autojoin`: none, other or any.
    pub autojoin: String,
    /// `auto_failback`.
    pub auto_failback: AutoFailback,
    /// Ping nodes, each counting as one.
    pub ping: Vec<IpAddr>,
    /// Ping groups.
    pub ping_groups: Vec<PingGroup>,
    /// Processes heartbeat keeps running (ipfail...).
    pub respawn: Vec<Respawn>,
    /// API client permissions.
    pub apiauth: Vec<ApiAuth>,
    /// `crm` / `pacemaker` (lvsd manages haresources only; must be off).
    pub crm: bool,
    /// `logfacility` (None = `none` / unset).
    pub logfacility: Option<String>,
    /// `logfile`.
    pub logfile: Option<PathBuf>,
    /// `debugfile`.
    pub debugfile: Option<PathBuf>,
    /// `use_logd`.
    pub use_logd: bool,
    /// `debug` level.
    pub debug: u8,
    /// `realtime`.
    pub realtime: bool,
    /// `watchdog` device.
    pub watchdog: Option<PathBuf>,
    /// Every other directive heartbeat knows, kept as written (name, value)
    /// so nothing in an operator's file is lost.
    pub other: Vec<(String, String)>,
}

/// One haresources line: a preferred node and its resources, started
/// left to right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceGroup {
    /// Where it was written (ignored by `==`).
    #[serde(skip)]
    pub origin: Origin,
    /// The preferred owner.
    pub node: String,
    /// The resources in start order.
    pub resources: Vec<Resource>,
}

impl Eq for Origin {}

/// A haresources resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Resource {
    /// `IPaddr::` / `IPaddr2::` / a bare address: a virtual IP.
    Ip(VipSpec),
    /// `ldirectord::cfg`: lvsd itself with that config.
    Ldirectord {
        /// The config named (None = ldirectord's default).
        config: Option<String>,
    },
    /// Anything else (`MailTo::...`, an init script): kept by name.
    Other {
        /// The script name.
        script: String,
        /// Its `::` arguments.
        args: Vec<String>,
    },
}

/// A virtual IP from haresources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipSpec {
    /// `IPaddr` or `IPaddr2` (a bare address is `IPaddr`).
    pub agent: String,
    /// The address.
    pub address: IpAddr,
    /// Prefix length (from the route to the address when not written).
    pub prefix: Option<u8>,
    /// Interface (from the route when not written); `eth0:label` keeps the label.
    pub interface: Option<String>,
    /// Broadcast address (IPv4).
    pub broadcast: Option<IpAddr>,
}

/// authkeys: which key signs, and every key accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthKeys {
    /// Where the keys were read (a secret file, 0600).
    pub path: PathBuf,
    /// `auth N`: the key used to sign.
    pub active: u8,
    /// All keys (1..=15).
    pub keys: Vec<AuthKey>,
}

/// One authkeys line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthKey {
    /// Key index 1..=15.
    pub index: u8,
    /// Method and secret.
    #[serde(flatten)]
    pub method: AuthMethod,
}

/// An authkeys method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", content = "secret", rename_all = "lowercase")]
pub enum AuthMethod {
    /// CRC-32 (integrity only, no secret).
    Crc,
    /// HMAC-MD5 with the secret.
    Md5(#[serde(serialize_with = "redact")] String),
    /// HMAC-SHA1 with the secret.
    Sha1(#[serde(serialize_with = "redact")] String),
}

/// Secrets never appear in dumps.
fn redact<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}
