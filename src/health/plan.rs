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
use std::sync::Arc;

use crate::config::{
    CheckType, Config, HttpMethod, Pattern, Protocol, RealServer, Service, VirtualKey,
    VirtualService,
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
        receive: Pattern,
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
        receive: Pattern,
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
        receive: Pattern,
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
        receive: Pattern,
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
        receive: Pattern,
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
    pub negotiate_every: Option<(u32, Box<Probe>)>,
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
    /// The unique checks (shared with the scheduler's tasks, not copied:
    /// a check is a few hundred bytes, and there is one per real).
    pub checks: Vec<Arc<Check>>,
    /// For each check, the reals whose health it decides.
    pub members: Vec<Vec<Member>>,
    /// For each virtual and real, its check (None for checktype on/off).
    pub of_real: Vec<Vec<Option<usize>>>,
}

impl Plan {
    /// The plan for `cfg`. It cannot fail: the config reader refused, at
    /// their lines, every check that could not be made (config::draft's
    /// `plannable`), so what `lvsd check` accepts, `lvsd run` runs.
    pub fn of(cfg: &Config) -> Plan {
        let mut plan = Plan::default();
        let mut index: HashMap<Arc<Check>, usize> = HashMap::new();
        for (vi, vs) in cfg.virtuals.iter().enumerate() {
            let mut row = Vec::with_capacity(vs.reals.len());
            for (ri, r) in vs.reals.iter().enumerate() {
                match check_of(vs, r) {
                    None => row.push(None),
                    Some(c) => {
                        let c = Arc::new(c);
                        let id = *index.entry(Arc::clone(&c)).or_insert_with(|| {
                            plan.checks.push(c);
                            plan.members.push(Vec::new());
                            plan.checks.len() - 1
                        });
                        plan.members[id].push((vi, ri));
                        row.push(Some(id));
                    }
                }
            }
            plan.of_real.push(row);
        }
        plan
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
fn check_of(vs: &VirtualService, r: &RealServer) -> Option<Check> {
    let c = &vs.check;
    let probe = match c.checktype {
        CheckType::On | CheckType::Off => return None,
        CheckType::Connect => connect(vs, r),
        CheckType::Ping => ping(vs, r),
        CheckType::Negotiate => negotiate(vs, r),
        CheckType::Combined(_) => connect(vs, r),
        CheckType::External | CheckType::ExternalPerl => external(vs, r),
    };
    let negotiate_every = match c.checktype {
        CheckType::Combined(n) => Some((n, Box::new(negotiate(vs, r)))),
        _ => None,
    };
    Some(Check {
        probe,
        negotiate_every,
        interval: secs(c.checkinterval),
        failurecount: c.failurecount,
        risecount: c.risecount,
    })
}

/// The port a check connects to (the config reader refused a check
/// without one).
fn port_of(vs: &VirtualService, r: &RealServer) -> u16 {
    r.check_port(vs).unwrap_or(r.port)
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
        deadline: wait.saturating_mul(count).saturating_add(PING_GRACE),
    }
}

/// (The config reader refused connect checks of SCTP virtuals.)
fn connect(vs: &VirtualService, r: &RealServer) -> Probe {
    if is_udp(vs) {
        return ping(vs, r);
    }
    Probe {
        spec: ProbeSpec::Connect {
            addr: r.address,
            port: port_of(vs, r),
        },
        deadline: secs(vs.check.checktimeout),
    }
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
    // The real's port as written (0 when it has none), never checkport:
    // ldirectord's check_external passes `$$r{port}`, so a script written
    // for it gets the same four arguments.
    let rport = r.port;
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

fn negotiate(vs: &VirtualService, r: &RealServer) -> Probe {
    let c = &vs.check;
    let spec = match c.service {
        Service::None => ProbeSpec::None,
        Service::Http | Service::Https => {
            let request = r.request(vs);
            let tls = c.service == Service::Https;
            // ldirectord's per-real full URL, read by the config reader.
            let url = r.check_override.as_ref().and_then(|o| o.url.clone());
            let (addr, port, path) = match url {
                Some(u) => (u.addr, u.port, u.path),
                None => (
                    r.address,
                    port_of(vs, r),
                    if request.starts_with('/') {
                        request.to_owned()
                    } else {
                        format!("/{request}")
                    },
                ),
            };
            ProbeSpec::Http {
                tls,
                addr,
                port,
                path,
                virtualhost: c.virtualhost.clone(),
                head: c.httpmethod == HttpMethod::Head,
                receive: r.receive(vs).clone(),
                verify: c.verifycert,
            }
        }
        Service::Smtp | Service::Submission => ProbeSpec::Smtp {
            addr: r.address,
            port: port_of(vs, r),
        },
        Service::Pop | Service::Pops | Service::Imap | Service::Imaps => ProbeSpec::Mail {
            imap: matches!(c.service, Service::Imap | Service::Imaps),
            tls: matches!(c.service, Service::Pops | Service::Imaps),
            verify: c.verifycert,
            addr: r.address,
            port: port_of(vs, r),
            login: login_if_set(c),
        },
        Service::Nntp => ProbeSpec::Nntp {
            addr: r.address,
            port: port_of(vs, r),
        },
        Service::Ftp => {
            let request = r.request(vs);
            ProbeSpec::Ftp {
                addr: r.address,
                port: port_of(vs, r),
                login: checkers::Login {
                    user: if c.login.is_empty() {
                        "anonymous".to_owned()
                    } else {
                        c.login.clone()
                    },
                    password: c.passwd.clone(),
                },
                file: (!request.is_empty() && request != "/").then(|| request.to_owned()),
                receive: r.receive(vs).clone(),
            }
        }
        Service::Dns => {
            let (request, receive) = (r.request(vs), r.receive(vs));
            ProbeSpec::Dns {
                addr: r.address,
                port: port_of(vs, r),
                tcp: matches!(
                    vs.key,
                    VirtualKey::Address {
                        protocol: Protocol::Tcp,
                        ..
                    }
                ),
                request: request.to_owned(),
                receive: receive.clone(),
            }
        }
        Service::Ldap | Service::Ldaps => ProbeSpec::Ldap {
            tls: c.service == Service::Ldaps,
            verify: c.verifycert,
            addr: r.address,
            port: port_of(vs, r),
            // check_ldap binds as login only with a passwd too
            // (`$$v{login} && $$v{passwd}`), else anonymously.
            login: login_if_set(c).filter(|l| !l.password.is_empty()),
            request: r.request(vs).to_owned(),
            receive: r.receive(vs).clone(),
        },
        Service::Mysql | Service::Pgsql => {
            let request = r.request(vs);
            ProbeSpec::Sql {
                engine: if c.service == Service::Mysql {
                    checkers::Engine::Mysql
                } else {
                    checkers::Engine::Pgsql
                },
                addr: r.address,
                port: port_of(vs, r),
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
            port: port_of(vs, r),
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
        Service::Radius => ProbeSpec::Radius {
            addr: r.address,
            port: port_of(vs, r),
            login: checkers::Login {
                user: c.login.clone(),
                password: c.passwd.clone(),
            },
            secret: checkers::Secret(c.secret.clone()),
        },
        Service::Simpletcp => ProbeSpec::SimpleTcp {
            addr: r.address,
            port: port_of(vs, r),
            request: r.request(vs).to_owned(),
            receive: r.receive(vs).clone(),
        },
        // The config reader refuses both (no Oracle client, no proxy
        // check) at their lines, and turns an inferred oracle into none.
        Service::Oracle | Service::HttpProxy => ProbeSpec::Connect {
            addr: r.address,
            port: port_of(vs, r),
        },
    };
    // ldirectord runs ldap and radius checks whole under checktimeout.
    let deadline = match c.service {
        Service::Radius | Service::Ldap | Service::Ldaps => secs(c.checktimeout),
        _ => secs(c.negotiatetimeout),
    };
    Probe { spec, deadline }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, Names, RealUrl, parse_str, real_url};

    #[test]
    fn a_real_url_overrides_the_reals_address_port_and_path() {
        let p = plan(
            "virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate 1 \"http://10.0.0.9:8080/alive?x=1\", \"OK\"\n\treal=10.0.0.2:80 gate 1 \"alive\", \"OK\"\n\tservice=http\n\trequest=\"http://10.0.0.7/x\"\n\treceive=\"up\"\n",
        );
        let http: Vec<_> = p
            .checks
            .iter()
            .map(|c| match &c.probe.spec {
                ProbeSpec::Http {
                    addr, port, path, ..
                } => (addr.to_string(), *port, path.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(http.contains(&("10.0.0.9".into(), 8080, "/alive?x=1".into())));
        assert!(http.contains(&("10.0.0.2".into(), 80, "/alive".into())));
        // Only a real's own request is a URL, as in ldirectord.
        assert_eq!(
            real_url(true, "/http://10.0.0.9/x"),
            None,
            "an http URL is a path for https"
        );
        assert_eq!(
            real_url(true, "https://[2001:db8::1]/"),
            Some(Ok(RealUrl {
                addr: "2001:db8::1".parse().unwrap(),
                port: 443,
                path: "/".into()
            }))
        );
        assert!(matches!(
            real_url(false, "/http://www.example.com/"),
            Some(Err(_))
        ));
        let e = refused(
            "virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate 1 \"http://www.example.com/alive\", \"OK\"\n\tservice=http\n",
        );
        assert!(
            e.iter()
                .any(|e| e.contains("t.cf:2:") && e.contains("needs its host to be an address")),
            "{e:?}"
        );
    }

    #[test]
    fn ldap_binds_as_login_only_with_a_passwd() {
        let login = |extra: &str| {
            let p = plan(&format!(
                "virtual=192.0.2.10:389\n\treal=10.0.0.1 gate\n\tservice=ldap\n\trequest=\"dc=x\"\n{extra}"
            ));
            match &p.checks[0].probe.spec {
                ProbeSpec::Ldap { login, .. } => login.as_ref().map(|l| l.user.clone()),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            login("\tlogin=\"cn=a\"\n\tpasswd=\"p\"\n"),
            Some("cn=a".into())
        );
        assert_eq!(login("\tlogin=\"cn=a\"\n"), None);
        assert_eq!(login(""), None);
    }

    fn plan(text: &str) -> Plan {
        let l = parse_str(Format::Ldirectord, "t.cf", text, &Names::offline());
        Plan::of(&l.config.unwrap_or_else(|| panic!("{:?}", l.diagnostics)))
    }

    /// The errors the config reader gives `text`.
    fn refused(text: &str) -> Vec<String> {
        let l = parse_str(Format::Ldirectord, "t.cf", text, &Names::offline());
        assert!(l.config.is_none(), "{text}: accepted");
        l.diagnostics.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_real_in_two_virtuals_with_the_same_check_is_checked_once() {
        let p = plan(
            "checktimeout=3\nvirtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n\trequest=\"/h\"\n\nvirtual=192.0.2.11:80\n\treal=10.0.0.1:80 gate\n\trequest=\"/h\"\n",
        );
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
    fn connect_on_sctp_is_refused_at_its_line_with_what_to_use() {
        let e = refused(
            "virtual=192.0.2.10:9\n\tprotocol=sctp\n\treal=10.0.0.1:9 gate\n\tchecktype=connect\n",
        );
        assert!(
            e[0].starts_with("t.cf:4:") && e[0].contains("cannot open SCTP associations"),
            "{e:?}"
        );
        let p = plan(
            "virtual=192.0.2.10:9\n\tprotocol=sctp\n\treal=10.0.0.1:9 gate\n\tchecktype=ping\n",
        );
        assert!(matches!(p.checks[0].probe.spec, ProbeSpec::Ping { .. }));
    }

    #[test]
    fn external_checks_get_ldirectords_arguments_and_checktimeout() {
        let p = plan(
            "checktimeout=4\nvirtual=192.0.2.10:80\n\treal=10.0.0.1:8080 gate\n\tchecktype=external\n\tcheckport=9000\n\tcheckcommand=\"/usr/local/bin/chk --fast\"\n\nvirtual=7\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3 gate\n\tchecktype=external-perl\n\tcheckcommand=\"/etc/lvsd/chk.pl\"\n",
        );
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
                // A real written without a port: 0, as ldirectord's.
                (
                    &ProbeSpec::External {
                        command: "perl /etc/lvsd/chk.pl".into(),
                        args: ["7", "0", "10.0.0.3", "0"].map(String::from),
                    },
                    Duration::from_secs(4)
                ),
            ]
        );
    }

    #[test]
    fn connect_on_udp_pings_with_checktimeout_per_echo() {
        let p = plan(
            "virtual=192.0.2.10:53\n\tprotocol=udp\n\treal=10.0.0.1:53 gate\n\tchecktype=connect\n\tcheckcount=3\n\tchecktimeout=2\n\tservice=none\n",
        );
        let c = &p.checks[0];
        assert!(matches!(c.probe.spec, ProbeSpec::Ping { count: 3, .. }));
        assert_eq!(c.probe.deadline, Duration::from_millis(6250));
    }

    #[test]
    fn combined_has_both_probes() {
        let p = plan(
            "virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\tchecktype=4\n\tnegotiatetimeout=7\n\tchecktimeout=2\n",
        );
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
        let p = plan("virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\tchecktype=on\n");
        assert!(p.checks.is_empty());
        assert_eq!(p.of_real, [vec![None]]);
    }

    #[test]
    fn checks_that_cannot_be_made_are_refused_by_the_reader_at_their_line() {
        for (text, want) in [
            (
                "virtual=192.0.2.10:3306\n\treal=10.0.0.1:3306 gate\n",
                "t.cf:1:",
            ),
            (
                "virtual=192.0.2.10:3306\n\treal=10.0.0.1:3306 gate\n\tservice=mysql\n",
                "service=mysql needs login=",
            ),
            (
                "virtual=192.0.2.10:3306\n\treal=10.0.0.1:3306 gate\n\tservice=pgsql\n\tlogin=\"u\"\n",
                "service=pgsql needs request=",
            ),
            (
                "virtual=192.0.2.10:53\n\treal=10.0.0.1:53 gate\n\tservice=dns\n",
                "service=dns needs request=",
            ),
            (
                "virtual=192.0.2.10:53\n\treal=10.0.0.1:53 gate\n\tservice=dns\n\trequest=\"a..b\"\n\treceive=\"1\"\n",
                "is not a DNS name",
            ),
            (
                "virtual=192.0.2.10:1812\n\tprotocol=udp\n\treal=10.0.0.1:1812 gate\n\tservice=radius\n",
                "service=radius needs secret=",
            ),
            (
                "virtual=192.0.2.10:3128\n\treal=10.0.0.1:3128 gate\n\tservice=http_proxy\n",
                "service=http_proxy checks are not supported",
            ),
            (
                "virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\tvirtualhost=\"a b\"\n",
                "cannot check",
            ),
        ] {
            let e = refused(text);
            assert!(e.iter().any(|l| l.contains(want)), "{text}: {e:?}");
        }
    }
}
