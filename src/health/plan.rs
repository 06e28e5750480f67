//! Pure: which checks the config calls for, each once.
//!
//! A check is everything that decides what a probe sends and how its
//! results count (protocol, address, port, request, receive, timeouts,
//! interval, counts). Reals with equal checks share one: a real in two
//! virtuals with the same check spec is probed once per interval and its
//! result feeds both (ldirectord's de-duplication by real id).
//!
//! ldirectord's rules applied here: `checktype=connect` on a UDP virtual
//! pings instead; connect, ping and external checks use `checktimeout`,
//! negotiate checks `negotiatetimeout`; a ping check sends `checkcount`
//! echo requests, each waiting `checktimeout`; `checktype=N` does connect
//! checks with a negotiate check every N; `service=none` is always up;
//! `checktype=on` and `off` need no probe at all (see `ipvs::desired`).

use core::net::IpAddr;
use core::time::Duration;
use std::collections::HashMap;

use crate::config::{
    CheckType, Config, HttpMethod, Protocol, RealServer, Service, VirtualKey, VirtualService,
};

/// One probe, as the checkers crate will be asked to make it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProbeSpec {
    /// Always up (`service=none`).
    None,
    /// TCP connect.
    Connect {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
    },
    /// ICMP echo.
    Ping {
        /// Address.
        addr: IpAddr,
        /// Echo requests per probe.
        count: u32,
        /// Wait for each reply.
        wait: Duration,
    },
    /// `service=smtp` / `submission`: greeting, EHLO, QUIT.
    Smtp {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
    },
    /// `service=pop` / `pops`, `imap` / `imaps`: greeting, login if set.
    Mail {
        /// IMAP (else POP3).
        imap: bool,
        /// TLS from the first byte (pops, imaps).
        tls: bool,
        /// Verify the certificate.
        verify: bool,
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// User and password, when `login` is set.
        login: Option<checkers::Login>,
    },
    /// `service=dns`: `request` asked of the real, an answer matches `receive`.
    Dns {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// Over TCP (a TCP virtual), else UDP.
        tcp: bool,
        /// The name (or address, for PTR) to look up.
        request: String,
        /// Pattern for an A record's address or a PTR record's name.
        receive: String,
    },
    /// `service=radius`: an Access-Request; any verified answer is up.
    Radius {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// User name and password of the request.
        login: checkers::Login,
        /// The shared secret.
        secret: checkers::Secret,
    },
    /// `service=ldap` / `ldaps`: bind, search `request` as the base.
    Ldap {
        /// ldaps.
        tls: bool,
        /// Verify the certificate.
        verify: bool,
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// Bind DN and password (anonymous when `login` is unset).
        login: Option<checkers::Login>,
        /// The base DN searched.
        request: String,
        /// Pattern for the entry's DN ("" = any).
        receive: String,
    },
    /// `service=mysql` / `pgsql`: `request` returns a row.
    Sql {
        /// Which server.
        engine: checkers::Engine,
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// User and password.
        login: checkers::Login,
        /// The database.
        database: String,
        /// The query.
        request: String,
    },
    /// `service=sip`: OPTIONS answered `200 OK`.
    Sip {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// Over TCP (a TCP virtual), else UDP.
        tcp: bool,
        /// The user of the request URI (`login`).
        user: String,
    },
    /// `service=nntp`: a 2xx greeting.
    Nntp {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
    },
    /// `service=ftp`: login, and the file `request` matched against
    /// `receive` when a file is named.
    Ftp {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// User and password (anonymous by default).
        login: checkers::Login,
        /// The file to fetch (None: log in only).
        file: Option<String>,
        /// Pattern for its content ("" = any).
        receive: String,
    },
    /// `service=simpletcp`: send `request`, a line must match `receive`.
    SimpleTcp {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// What to send.
        request: String,
        /// Pattern for a line of the answer.
        receive: String,
    },
    /// `checktype=external` / `external-perl`: `checkcommand` with
    /// ldirectord's four arguments, exit 0 = up.
    External {
        /// The command line (`perl FILE` for external-perl).
        command: String,
        /// Virtual address (or fwmark), virtual port, real address, real port.
        args: [String; 4],
    },
    /// GET or HEAD over http or https.
    Http {
        /// https.
        tls: bool,
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// Path (with leading `/`).
        path: String,
        /// Host header and SNI.
        virtualhost: Option<String>,
        /// HEAD instead of GET.
        head: bool,
        /// Pattern for the body ("" = any).
        receive: String,
        /// Verify the certificate.
        verify: bool,
    },
}

/// A probe and its hard deadline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Probe {
    /// What to send.
    pub spec: ProbeSpec,
    /// When to give up.
    pub deadline: Duration,
}

/// One unique check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Check {
    /// The probe made every interval.
    pub probe: Probe,
    /// `checktype=N`: every N successful probes, this one instead (and
    /// after any failure, and first).
    pub negotiate_every: Option<(u32, Probe)>,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// Failures before down.
    pub failurecount: u32,
    /// Successes before up.
    pub risecount: u32,
}

/// Which real of which virtual: indexes into `Config::virtuals` and its reals.
pub type Member = (usize, usize);

/// Every check the config needs, and who uses each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The unique checks.
    pub checks: Vec<Check>,
    /// For each check, the reals whose health it decides.
    pub members: Vec<Vec<Member>>,
    /// For each virtual and real, its check (None for checktype on/off).
    pub of_real: Vec<Vec<Option<usize>>>,
}

/// Why a virtual cannot be checked by this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The virtual (`tcp:192.0.2.10:80`) and where it was written.
    pub virtual_name: String,
    /// What is missing.
    pub reason: String,
}

impl Plan {
    /// The plan for `cfg`, or every virtual whose checks cannot be made.
    pub fn of(cfg: &Config) -> Result<Plan, Vec<Unsupported>> {
        let mut plan = Plan::default();
        let mut index: HashMap<Check, usize> = HashMap::new();
        let mut bad = Vec::new();
        for (vi, vs) in cfg.virtuals.iter().enumerate() {
            let mut row = Vec::with_capacity(vs.reals.len());
            for (ri, r) in vs.reals.iter().enumerate() {
                match check_of(vs, r) {
                    Ok(None) => row.push(None),
                    Ok(Some(c)) => {
                        let id = *index.entry(c.clone()).or_insert_with(|| {
                            plan.checks.push(c);
                            plan.members.push(Vec::new());
                            plan.checks.len() - 1
                        });
                        plan.members[id].push((vi, ri));
                        row.push(Some(id));
                    }
                    Err(reason) => {
                        let name = format!(
                            "{} ({})",
                            crate::ipvs::ServiceKey::from(vs.key).name(),
                            vs.origin
                        );
                        if !bad.iter().any(|b: &Unsupported| b.virtual_name == name) {
                            bad.push(Unsupported {
                                virtual_name: name,
                                reason,
                            });
                        }
                        row.push(None);
                    }
                }
            }
            plan.of_real.push(row);
        }
        if bad.is_empty() { Ok(plan) } else { Err(bad) }
    }
}

/// Time a ping check gets beyond its echo waits to report.
const PING_GRACE: Duration = Duration::from_millis(250);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s.max(1))
}

fn is_udp(vs: &VirtualService) -> bool {
    matches!(
        vs.key,
        VirtualKey::Address {
            protocol: Protocol::Udp,
            ..
        }
    )
}

/// The check of one real, None when it needs none.
fn check_of(vs: &VirtualService, r: &RealServer) -> Result<Option<Check>, String> {
    let c = &vs.check;
    let probe = match c.checktype {
        CheckType::On | CheckType::Off => return Ok(None),
        CheckType::Connect => connect(vs, r)?,
        CheckType::Ping => ping(vs, r),
        CheckType::Negotiate => negotiate(vs, r)?,
        CheckType::Combined(_) => connect(vs, r)?,
        CheckType::External | CheckType::ExternalPerl => external(vs, r),
    };
    let negotiate_every = match c.checktype {
        CheckType::Combined(n) => Some((n, negotiate(vs, r)?)),
        _ => None,
    };
    Ok(Some(Check {
        probe,
        negotiate_every,
        interval: secs(c.checkinterval),
        failurecount: c.failurecount,
        risecount: c.risecount,
    }))
}

fn port_of(vs: &VirtualService, r: &RealServer) -> Result<u16, String> {
    r.check_port(vs)
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("real {} has no port to check: set checkport", r.address))
}

fn ping(vs: &VirtualService, r: &RealServer) -> Probe {
    let wait = secs(vs.check.checktimeout);
    let count = vs.check.checkcount.max(1);
    Probe {
        spec: ProbeSpec::Ping {
            addr: r.address,
            count,
            wait,
        },
        // The checker times each echo itself; the hard deadline leaves it a
        // moment to say so before cutting it off.
        deadline: wait * count + PING_GRACE,
    }
}

fn connect(vs: &VirtualService, r: &RealServer) -> Result<Probe, String> {
    if is_udp(vs) {
        return Ok(ping(vs, r));
    }
    if matches!(
        vs.key,
        VirtualKey::Address {
            protocol: Protocol::Sctp,
            ..
        }
    ) {
        return Err(
            "checktype=connect cannot open SCTP associations yet; use checktype=ping, on, off, or a negotiate check of a TCP checkport".to_owned(),
        );
    }
    Ok(Probe {
        spec: ProbeSpec::Connect {
            addr: r.address,
            port: port_of(vs, r)?,
        },
        deadline: secs(vs.check.checktimeout),
    })
}

/// ldirectord's `check_external`: the command, killed at `checktimeout`.
fn external(vs: &VirtualService, r: &RealServer) -> Probe {
    let c = &vs.check;
    let command = if c.checktype == CheckType::ExternalPerl {
        format!("perl {}", c.checkcommand)
    } else {
        c.checkcommand.clone()
    };
    let (vip, vport) = match vs.key {
        VirtualKey::Address { address, port, .. } => (address.to_string(), port.to_string()),
        VirtualKey::Fwmark { fwmark, .. } => (fwmark.to_string(), "0".to_owned()),
    };
    let rport = r.check_port(vs).unwrap_or(r.port);
    Probe {
        spec: ProbeSpec::External {
            command,
            args: [vip, vport, r.address.to_string(), rport.to_string()],
        },
        deadline: secs(c.checktimeout),
    }
}

/// The login of a check that logs in only when `login` is set.
fn login_if_set(c: &crate::config::CheckSpec) -> Option<checkers::Login> {
    (!c.login.is_empty()).then(|| checkers::Login {
        user: c.login.clone(),
        password: c.passwd.clone(),
    })
}

fn negotiate(vs: &VirtualService, r: &RealServer) -> Result<Probe, String> {
    let c = &vs.check;
    let spec = match c.service {
        Service::None => ProbeSpec::None,
        Service::Http | Service::Https => {
            let request = r.request(vs);
            ProbeSpec::Http {
                tls: c.service == Service::Https,
                addr: r.address,
                port: port_of(vs, r)?,
                path: if request.starts_with('/') {
                    request.to_owned()
                } else {
                    format!("/{request}")
                },
                virtualhost: c.virtualhost.clone(),
                head: c.httpmethod == HttpMethod::Head,
                receive: r.receive(vs).to_owned(),
                verify: c.verifycert,
            }
        }
        Service::Smtp | Service::Submission => ProbeSpec::Smtp {
            addr: r.address,
            port: port_of(vs, r)?,
        },
        Service::Pop | Service::Pops | Service::Imap | Service::Imaps => ProbeSpec::Mail {
            imap: matches!(c.service, Service::Imap | Service::Imaps),
            tls: matches!(c.service, Service::Pops | Service::Imaps),
            verify: c.verifycert,
            addr: r.address,
            port: port_of(vs, r)?,
            login: login_if_set(c),
        },
        Service::Nntp => ProbeSpec::Nntp {
            addr: r.address,
            port: port_of(vs, r)?,
        },
        Service::Ftp => {
            let request = r.request(vs);
            ProbeSpec::Ftp {
                addr: r.address,
                port: port_of(vs, r)?,
                login: checkers::Login {
                    user: if c.login.is_empty() {
                        "anonymous".to_owned()
                    } else {
                        c.login.clone()
                    },
                    password: c.passwd.clone(),
                },
                file: (!request.is_empty() && request != "/").then(|| request.to_owned()),
                receive: r.receive(vs).to_owned(),
            }
        }
        Service::Dns => {
            let (request, receive) = (r.request(vs), r.receive(vs));
            if request.trim_start_matches('/').is_empty() || receive.is_empty() {
                return Err(format!(
                    "service=dns needs request= (the name to look up) and receive= (what its A or PTR record must match); ldirectord would never count real {} up without them",
                    r.address
                ));
            }
            ProbeSpec::Dns {
                addr: r.address,
                port: port_of(vs, r)?,
                tcp: matches!(
                    vs.key,
                    VirtualKey::Address {
                        protocol: Protocol::Tcp,
                        ..
                    }
                ),
                request: request.to_owned(),
                receive: receive.to_owned(),
            }
        }
        Service::Ldap | Service::Ldaps => ProbeSpec::Ldap {
            tls: c.service == Service::Ldaps,
            verify: c.verifycert,
            addr: r.address,
            port: port_of(vs, r)?,
            login: login_if_set(c),
            request: r.request(vs).to_owned(),
            receive: r.receive(vs).to_owned(),
        },
        Service::Mysql | Service::Pgsql => {
            let request = r.request(vs);
            if c.login.is_empty() || request.trim_start_matches('/').is_empty() {
                return Err(format!(
                    "service={} needs login= (and passwd=, database=) and request= (the SQL query that must return a row), as ldirectord",
                    c.service.as_str()
                ));
            }
            ProbeSpec::Sql {
                engine: if c.service == Service::Mysql {
                    checkers::Engine::Mysql
                } else {
                    checkers::Engine::Pgsql
                },
                addr: r.address,
                port: port_of(vs, r)?,
                login: checkers::Login {
                    user: c.login.clone(),
                    password: c.passwd.clone(),
                },
                database: c.database.clone(),
                request: request.to_owned(),
            }
        }
        Service::Sip => ProbeSpec::Sip {
            addr: r.address,
            port: port_of(vs, r)?,
            tcp: matches!(
                vs.key,
                VirtualKey::Address {
                    protocol: Protocol::Tcp,
                    ..
                }
            ),
            user: if c.login.is_empty() {
                "lvsd".to_owned()
            } else {
                c.login.clone()
            },
        },
        Service::Radius => {
            if c.secret.is_empty() {
                return Err(
                    "service=radius needs secret= (the RADIUS shared secret lvsd signs its request with)"
                        .to_owned(),
                );
            }
            ProbeSpec::Radius {
                addr: r.address,
                port: port_of(vs, r)?,
                login: checkers::Login {
                    user: c.login.clone(),
                    password: c.passwd.clone(),
                },
                secret: checkers::Secret(c.secret.clone()),
            }
        }
        Service::Simpletcp => ProbeSpec::SimpleTcp {
            addr: r.address,
            port: port_of(vs, r)?,
            request: r.request(vs).to_owned(),
            receive: r.receive(vs).to_owned(),
        },
        // The config reader never lets oracle through (no client).
        Service::Oracle => {
            return Err("service=oracle is not supported: lvsd has no Oracle client".to_owned());
        }
        Service::HttpProxy => {
            return Err(
                "service=http_proxy checks are not built yet in this version of lvsd; use checktype=connect meanwhile"
                    .to_owned(),
            );
        }
    };
    // ldirectord runs ldap and radius checks whole under checktimeout.
    let deadline = match c.service {
        Service::Radius | Service::Ldap | Service::Ldaps => secs(c.checktimeout),
        _ => secs(c.negotiatetimeout),
    };
    Ok(Probe { spec, deadline })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, Names, parse_str};

    fn plan(text: &str) -> Result<Plan, Vec<Unsupported>> {
        let l = parse_str(Format::Ldirectord, "t.cf", text, &Names::offline());
        Plan::of(&l.config.unwrap_or_else(|| panic!("{:?}", l.diagnostics)))
    }

    #[test]
    fn a_real_in_two_virtuals_with_the_same_check_is_checked_once() {
        let p = plan(
            "checktimeout=3\nvirtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n\trequest=\"/h\"\n\nvirtual=192.0.2.11:80\n\treal=10.0.0.1:80 gate\n\trequest=\"/h\"\n",
        )
        .unwrap();
        assert_eq!(p.checks.len(), 2);
        assert_eq!(p.members[0], [(0, 0), (1, 0)]);
        assert_eq!(p.of_real, [vec![Some(0), Some(1)], vec![Some(0)]]);
        let ProbeSpec::Http { path, .. } = &p.checks[0].probe.spec else {
            panic!()
        };
        assert_eq!(path, "/h");
        assert_eq!(p.checks[0].probe.deadline, Duration::from_secs(3));
    }

    #[test]
    fn connect_on_sctp_is_refused_with_what_to_use() {
        let e = plan(
            "virtual=192.0.2.10:9\n\tprotocol=sctp\n\treal=10.0.0.1:9 gate\n\tchecktype=connect\n",
        )
        .unwrap_err();
        assert!(
            e[0].reason.contains("cannot open SCTP associations yet"),
            "{}",
            e[0].reason
        );
        let p = plan(
            "virtual=192.0.2.10:9\n\tprotocol=sctp\n\treal=10.0.0.1:9 gate\n\tchecktype=ping\n",
        )
        .unwrap();
        assert!(matches!(p.checks[0].probe.spec, ProbeSpec::Ping { .. }));
    }

    #[test]
    fn external_checks_get_ldirectords_arguments_and_checktimeout() {
        let p = plan("checktimeout=4\nvirtual=192.0.2.10:80\n\treal=10.0.0.1:8080 gate\n\tchecktype=external\n\tcheckcommand=\"/usr/local/bin/chk --fast\"\n\nvirtual=7\n\treal=10.0.0.2:80 gate\n\tchecktype=external-perl\n\tcheckcommand=\"/etc/lvsd/chk.pl\"\n").unwrap();
        let specs: Vec<_> = p
            .checks
            .iter()
            .map(|c| (&c.probe.spec, c.probe.deadline))
            .collect();
        assert_eq!(
            specs,
            [
                (
                    &ProbeSpec::External {
                        command: "/usr/local/bin/chk --fast".into(),
                        args: ["192.0.2.10", "80", "10.0.0.1", "8080"].map(String::from),
                    },
                    Duration::from_secs(4)
                ),
                (
                    &ProbeSpec::External {
                        command: "perl /etc/lvsd/chk.pl".into(),
                        args: ["7", "0", "10.0.0.2", "80"].map(String::from),
                    },
                    Duration::from_secs(4)
                ),
            ]
        );
    }

    #[test]
    fn connect_on_udp_pings_with_checktimeout_per_echo() {
        let p = plan("virtual=192.0.2.10:53\n\tprotocol=udp\n\treal=10.0.0.1:53 gate\n\tchecktype=connect\n\tcheckcount=3\n\tchecktimeout=2\n\tservice=none\n").unwrap();
        let c = &p.checks[0];
        assert!(matches!(c.probe.spec, ProbeSpec::Ping { count: 3, .. }));
        assert_eq!(c.probe.deadline, Duration::from_millis(6250));
    }

    #[test]
    fn combined_has_both_probes() {
        let p = plan("virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\tchecktype=4\n\tnegotiatetimeout=7\n\tchecktimeout=2\n").unwrap();
        let c = &p.checks[0];
        assert!(matches!(c.probe.spec, ProbeSpec::Connect { port: 80, .. }));
        assert_eq!(c.probe.deadline, Duration::from_secs(2));
        let (n, neg) = c.negotiate_every.as_ref().unwrap();
        assert_eq!(*n, 4);
        assert!(matches!(neg.spec, ProbeSpec::Http { .. }));
        assert_eq!(neg.deadline, Duration::from_secs(7));
    }

    #[test]
    fn on_and_off_need_no_probe() {
        let p = plan("virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\tchecktype=on\n").unwrap();
        assert!(p.checks.is_empty());
        assert_eq!(p.of_real, [vec![None]]);
    }

    #[test]
    fn checks_that_cannot_be_made_are_refused_with_the_virtual_named() {
        let e = plan("virtual=192.0.2.10:3306\n\treal=10.0.0.1:3306 gate\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].virtual_name.starts_with("tcp:192.0.2.10:3306 (t.cf:1"),
            "{e:?}"
        );
        for (text, want) in [
            (
                "virtual=192.0.2.10:3306\n\treal=10.0.0.1:3306 gate\n\tservice=mysql\n",
                "service=mysql needs login=",
            ),
            (
                "virtual=192.0.2.10:53\n\treal=10.0.0.1:53 gate\n\tservice=dns\n",
                "service=dns needs request=",
            ),
            (
                "virtual=192.0.2.10:1812\n\tprotocol=udp\n\treal=10.0.0.1:1812 gate\n\tservice=radius\n",
                "service=radius needs secret=",
            ),
        ] {
            let e = plan(text).unwrap_err();
            assert!(e[0].reason.starts_with(want), "{text}: {e:?}");
        }
    }
}
