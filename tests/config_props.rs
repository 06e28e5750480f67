//! Property tests of the config readers.
//!
//! - `convert` then read back gives the same model, for any model a reader
//!   can produce.
//! - No reader panics on any input: arbitrary text, and text assembled from
//!   the readers' own vocabulary (which reaches much deeper than random
//!   bytes). This is the fuzzing of the readers; it runs in every
//!   `cargo test` without a nightly toolchain.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use lvsd::config::{self, heartbeat, native, *};
use proptest::prelude::*;

fn v4() -> impl Strategy<Value = IpAddr> {
    (1u8..224, any::<u8>(), any::<u8>(), 1u8..255)
        .prop_map(|(a, b, c, d)| IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

fn v6() -> impl Strategy<Value = IpAddr> {
    (any::<u16>(), 1u16..)
        .prop_map(|(a, b)| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, a, 0, 0, 0, 0, b)))
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}"
}

fn text() -> impl Strategy<Value = String> {
    // Printable, no double quote (ldirectord cannot express one), no `#`.
    "[a-zA-Z0-9 ./:=,_@-]{1,16}"
        .prop_map(|s| s.trim().to_string())
        .prop_filter("non-empty", |s| !s.is_empty())
}

fn forward() -> impl Strategy<Value = Forward> {
    prop_oneof![
        Just(Forward::Gate),
        Just(Forward::Masq),
        Just(Forward::Ipip)
    ]
}

fn alerts() -> impl Strategy<Value = Alerts> {
    (
        prop::collection::vec(word().prop_map(|w| format!("{w}@example.com")), 0..3),
        0u64..100_000,
        any::<[bool; 4]>(),
        prop::option::of(word().prop_map(|w| {
            lvsd::config::SmtpServer::parse(&format!("{w}.example.com")).expect("a host name")
        })),
    )
        .prop_map(|(emailalert, emailalertfreq, s, smtp)| Alerts {
            emailalert,
            emailalertfreq,
            emailalertstatus: AlertStatus {
                starting: s[0],
                running: s[1],
                stopping: s[2],
                reloading: s[3],
            },
            smtp,
        })
}

fn real(ipv6: bool) -> impl Strategy<Value = RealServer> {
    (
        if ipv6 { v6().boxed() } else { v4().boxed() },
        0u16..,
        forward(),
        0u32..1000,
        prop::option::of(0u32..100),
        prop::option::of(0u32..100),
        prop::option::of((word(), word())),
    )
        .prop_map(|(address, port, forward, weight, l, u, rr)| RealServer {
            origin: Origin(None),
            address,
            port,
            forward,
            weight,
            // The kernel (and so the reader) wants lower <= upper.
            lower_threshold: l.map(|l| l.min(u.unwrap_or(0))),
            upper_threshold: u,
            check_override: rr.map(|(a, b)| RequestReceive {
                request: format!("/{a}"),
                receive: Pattern::new(&b).expect("a word compiles"),
                url: None,
            }),
        })
}

fn checktype() -> impl Strategy<Value = CheckType> {
    prop_oneof![
        Just(CheckType::Connect),
        Just(CheckType::Negotiate),
        Just(CheckType::Ping),
        Just(CheckType::External),
        Just(CheckType::ExternalPerl),
        Just(CheckType::On),
        Just(CheckType::Off),
        (1u32..100).prop_map(CheckType::Combined),
    ]
}

fn check(interval: u64) -> impl Strategy<Value = CheckSpec> {
    (
        (
            checktype(),
            0..Service::ALL.len(),
            prop::option::of(1u16..),
            word(),
            prop::option::of(word()),
        ),
        (
            prop::option::of(word()),
            any::<bool>(),
            prop::option::of(text()),
            prop::option::of(text()),
        ),
        (
            prop::option::of(word()),
            prop::option::of(word()),
            prop::option::of(word()),
            any::<bool>(),
        ),
        (1u64..100, 1u64..100, 1u32..5, 1u32..5, 1u32..5),
    )
        .prop_map(
            move |(
                (checktype, svc, checkport, request, receive),
                (virtualhost, head, login, passwd),
                (database, secret, cmd, verifycert),
                (ct, nt, cc, fc, rc),
            )| {
                let external = matches!(checktype, CheckType::External | CheckType::ExternalPerl);
                // lvsd refuses oracle (no client) and http_proxy: no model
                // holds them.
                let service = match Service::ALL[svc].0 {
                    Service::Oracle => Service::None,
                    Service::HttpProxy => Service::Http,
                    s => s,
                };
                // The login defaults a reader gives ftp and sip; what the
                // reader requires of sql, radius and dns checks.
                let login = login.or(match service {
                    Service::Ftp => Some("anonymous".into()),
                    Service::Sip => Some("ldirectord@localhost".into()),
                    Service::Mysql | Service::Pgsql => Some("lvsd".into()),
                    _ => None,
                });
                let secret = secret.or((service == Service::Radius).then(|| "s3cret".into()));
                let receive = receive.or((service == Service::Dns).then(|| "192.0.2.1".into()));
                let passwd =
                    passwd.or((service == Service::Ftp).then(|| "ldirectord@localhost".into()));
                CheckSpec {
                    checktype,
                    service,
                    checkport,
                    request: format!("/{request}"),
                    receive: Pattern::new(&receive.unwrap_or_default()).expect("a word compiles"),
                    virtualhost,
                    verifycert,
                    httpmethod: if head {
                        HttpMethod::Head
                    } else {
                        HttpMethod::Get
                    },
                    login: login.unwrap_or_default(),
                    passwd: passwd.unwrap_or_default(),
                    database: database.unwrap_or_default(),
                    secret: secret.unwrap_or_default(),
                    checkcommand: match cmd {
                        Some(c) => format!("/usr/local/bin/{c}"),
                        None if external => "/usr/local/bin/check".into(),
                        None => "/bin/true".into(),
                    },
                    checktimeout: ct,
                    negotiatetimeout: nt,
                    checkinterval: interval,
                    checkcount: cc,
                    failurecount: fc,
                    risecount: rc,
                }
            },
        )
}

fn virtual_service(interval: u64) -> impl Strategy<Value = VirtualService> {
    let key = prop_oneof![
        (v4(), 1u16.., any::<bool>()).prop_map(|(address, port, udp)| VirtualKey::Address {
            address,
            port,
            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
        }),
        (v6(), 1u16..).prop_map(|(address, port)| VirtualKey::Address {
            address,
            port,
            protocol: Protocol::Tcp,
        }),
        (1u32.., any::<bool>()).prop_map(|(fwmark, ipv6)| VirtualKey::Fwmark { fwmark, ipv6 }),
    ];
    key.prop_flat_map(move |key| {
        let ipv6 = key.is_ipv6();
        (
            Just(key),
            (
                0..SCHEDULERS.len(),
                prop::option::of(0u32..10_000),
                any::<bool>(),
                0u8..=32,
            ),
            (
                prop::option::of(word()),
                any::<bool>(),
                prop::option::of(text()),
                prop::option::of(text()),
            ),
            prop::collection::vec(real(ipv6), 0..5),
            (
                prop::option::of((
                    if ipv6 { v6().boxed() } else { v4().boxed() },
                    0u16..,
                    forward(),
                )),
                prop::option::of(word()),
            ),
            check(interval),
            (
                any::<bool>(),
                any::<bool>(),
                alerts(),
                prop::option::of(word()),
            ),
        )
    })
    .prop_map(
        |(
            key,
            (sched, persistent, netmask_on, prefix),
            (schedflags, ops, servicename, comment),
            reals,
            (fb, fbc),
            check,
            (q, cs, alerts, mon),
        )| {
            let ipv6 = key.is_ipv6();
            let mut uniq: Vec<RealServer> = Vec::new();
            for r in reals {
                if !uniq
                    .iter()
                    .any(|u| u.address == r.address && u.port == r.port)
                {
                    uniq.push(r);
                }
            }
            let netmask = netmask_on.then(|| {
                if ipv6 {
                    Netmask::V6(prefix.max(1))
                } else {
                    let bits = u32::from(prefix);
                    let m = if bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits)
                    };
                    Netmask::V4(Ipv4Addr::from(m))
                }
            });
            let is_udp = matches!(
                key,
                VirtualKey::Address {
                    protocol: Protocol::Udp,
                    ..
                }
            );
            VirtualService {
                origin: Origin(None),
                key,
                scheduler: SCHEDULERS[sched].to_string(),
                persistent,
                netmask,
                schedflags,
                ops: ops && is_udp,
                servicename,
                comment,
                reals: uniq,
                fallback: fb.map(|(address, port, forward)| Fallback {
                    address,
                    port,
                    forward,
                }),
                fallbackcommand: fbc.map(|c| format!("/usr/local/bin/{c}")),
                check,
                quiescent: q,
                cleanstop: cs,
                alerts,
                monitorfile: mon.map(|m| format!("/var/log/{m}").into()),
            }
        },
    )
}

fn config_model() -> impl Strategy<Value = Config> {
    (1u64..100, any::<bool>())
        .prop_flat_map(|(interval, fork)| {
            (
                Just((interval, fork)),
                prop::collection::vec(virtual_service(interval), 0..4),
                (
                    prop::option::of(1u64..50),
                    prop::option::of(1u64..50),
                    1u32..5,
                    1u32..5,
                    1u32..5,
                ),
                (
                    any::<[bool; 5]>(),
                    alerts(),
                    prop::option::of(word()),
                    prop::option::of((v4(), prop::option::of(1u16..), forward())),
                ),
            )
        })
        .prop_map(
            |((interval, fork), vs, (ct, nt, cc, fc, rc), (b, alerts, from, fb))| {
                let mut virtuals: Vec<VirtualService> = Vec::new();
                for v in vs {
                    if !virtuals.iter().any(|x| x.key == v.key) {
                        virtuals.push(v);
                    }
                }
                // What a reader gives every virtual from the global section.
                for v in &mut virtuals {
                    if let (Some((address, port, forward)), false, None) =
                        (fb, v.key.is_ipv6(), &v.fallback)
                    {
                        v.fallback = Some(Fallback {
                            address,
                            port: port.unwrap_or(v.key.port()),
                            forward,
                        });
                    }
                    if v.alerts.emailalert.is_empty() {
                        v.alerts.emailalert = alerts.emailalert.clone();
                    }
                    if v.alerts.smtp.is_none() {
                        v.alerts.smtp = alerts.smtp.clone();
                    }
                }
                Config {
                    global: Global {
                        checkinterval: interval,
                        checktimeout: ct,
                        negotiatetimeout: nt,
                        checkcount: cc,
                        failurecount: fc,
                        risecount: rc,
                        autoreload: b[0],
                        callback: from.as_ref().map(|f| format!("/usr/local/bin/{f}")),
                        fallback: fb.map(|(address, port, forward)| FallbackSpec {
                            address,
                            port,
                            forward,
                        }),
                        fallback6: None,
                        fallbackcommand: None,
                        logfile: Some(if b[1] {
                            LogTarget::Syslog(
                                lvsd::config::Facility::parse("local0").expect("a facility"),
                            )
                        } else {
                            LogTarget::File("/var/log/lvsd.log".into())
                        }),
                        alerts,
                        emailalertfrom: from.as_ref().map(|f| format!("{f}@example.com")),
                        emailalertcoalesce: if b[3] { 60 } else { 5 },
                        execute: Vec::new(),
                        supervised: b[2],
                        fork,
                        quiescent: b[3],
                        readdquiescent: b[4],
                        cleanstop: true,
                        maintenancedir: None,
                        metrics: b[2].then(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9114))),
                        lvs_sync_daemon: from.as_ref().map(|f| SyncDaemonSpec {
                            interface: f.chars().take(15).collect(),
                            sync_id: u8::try_from(cc).unwrap_or(0),
                        }),
                    },
                    virtuals,
                    failover: None,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn convert_then_read_gives_the_same_model(cfg in config_model()) {
        let text = native::write(&cfg);
        let l = config::parse_str(Format::Native, "converted.toml", &text, &Names::offline());
        let errors: Vec<String> = l.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect();
        prop_assert!(errors.is_empty(), "{errors:?}\n{text}");
        prop_assert_eq!(l.config.as_ref(), Some(&cfg), "\n{}", text);
    }

    #[test]
    fn ldirectord_reader_never_panics(s in "\\PC*") {
        let _ = config::parse_str(Format::Ldirectord, "x.cf", &s, &Names::offline());
    }

    #[test]
    fn native_reader_never_panics(s in "\\PC*") {
        let _ = config::parse_str(Format::Native, "x.toml", &s, &Names::offline());
    }

    #[test]
    fn heartbeat_readers_never_panic(s in "\\PC*", mode in 0u32..0o1000) {
        let f: Arc<str> = "x".into();
        let mut d = Diagnostics::new();
        let names = Names::offline();
        let _ = heartbeat::parse_hacf(&f, &s, &names, &mut d);
        let _ = heartbeat::parse_haresources(&f, &s, &names, &mut d);
        let _ = heartbeat::parse_authkeys(&f, std::path::Path::new("x"), &s, Some(mode), &mut d);
    }

    #[test]
    fn ldirectord_vocabulary_never_panics(lines in prop::collection::vec(ld_line(), 0..40)) {
        let text = lines.concat();
        let l = config::parse_str(Format::Ldirectord, "x.cf", &text, &Names::offline());
        // Every diagnostic names a line inside the file.
        let n = u32::try_from(text.split('\n').count()).unwrap_or(u32::MAX);
        for d in &l.diagnostics {
            prop_assert!(d.loc.line <= n, "{} beyond {} lines", d, n);
        }
    }

    #[test]
    fn native_vocabulary_never_panics(lines in prop::collection::vec(toml_line(), 0..30)) {
        let _ = config::parse_str(Format::Native, "x.toml", &lines.concat(), &Names::offline());
    }

    #[test]
    fn heartbeat_vocabulary_never_panics(lines in prop::collection::vec(hb_line(), 0..30)) {
        let f: Arc<str> = "x".into();
        let mut d = Diagnostics::new();
        let names = Names::offline();
        let text = lines.concat();
        let _ = heartbeat::parse_hacf(&f, &text, &names, &mut d);
        let _ = heartbeat::parse_haresources(&f, &text, &names, &mut d);
        let _ = heartbeat::parse_authkeys(&f, std::path::Path::new("x"), &text, Some(0o600), &mut d);
    }
}

/// Values that hit the interesting branches: numbers at the edges, quotes,
/// ranges, brackets, comments.
fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("65536".to_string()),
        Just("4294967296".to_string()),
        Just("-1".to_string()),
        Just("yes".to_string()),
        Just("\"".to_string()),
        Just("\"a#b\"".to_string()),
        Just("192.0.2.1:80".to_string()),
        Just("192.0.2.1->192.0.2.9:http".to_string()),
        Just("[2001:db8::1]:80".to_string()),
        Just("[::1".to_string()),
        Just("gate".to_string()),
        Just("l:3 u:".to_string()),
        Just("\"/x\",\"y\"".to_string()),
        Just("(".to_string()),
        Just("ms".to_string()),
        Just("::".to_string()),
        Just("\\".to_string()),
        Just("\r".to_string()),
        "[ -~]{0,12}",
    ]
}

fn ld_line() -> impl Strategy<Value = String> {
    let keys: Vec<&'static str> = [
        "virtual",
        "virtual6",
        "real",
        "real6",
        "fallback",
        "fallback6",
        "checktype",
        "service",
        "scheduler",
        "netmask",
        "persistent",
        "protocol",
        "request",
        "receive",
        "checktimeout",
        "emailalertstatus",
        "supervised",
        "quiescent",
        "checkport",
        "httpmethod",
    ]
    .to_vec();
    (
        prop::sample::select(keys),
        prop::sample::select(vec!["", "\t", "    ", "  ", "#"]),
        atom(),
        atom(),
    )
        .prop_map(|(k, indent, a, b)| format!("{indent}{k}={a} {b}\n"))
}

fn toml_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[global]\n".to_string()),
        Just("[[virtual]]\n".to_string()),
        Just("[failover]\n".to_string()),
        Just("[[virtual.real]]\n".to_string()),
        (
            prop::sample::select(vec![
                "address",
                "fwmark",
                "real",
                "scheduler",
                "node",
                "authkeys",
                "ipv6",
                "checktype"
            ]),
            atom()
        )
            .prop_map(|(k, a)| format!("{k} = {}\n", toml_value(&a))),
        (
            prop::sample::select(vec!["real", "ucast", "emailalert"]),
            atom(),
            atom()
        )
            .prop_map(|(k, a, b)| format!(
                "{k} = [{}, {{ address = {} }}]\n",
                toml_value(&a),
                toml_value(&b)
            )),
    ]
}

fn toml_value(a: &str) -> String {
    if a.parse::<i64>().is_ok() || a == "true" {
        a.to_string()
    } else {
        format!("{a:?}")
    }
}

fn hb_line() -> impl Strategy<Value = String> {
    let keys: Vec<&'static str> = [
        "keepalive",
        "deadtime",
        "warntime",
        "initdead",
        "deadping",
        "udpport",
        "bcast",
        "mcast",
        "ucast",
        "node",
        "ping",
        "ping_group",
        "auto_failback",
        "respawn",
        "apiauth",
        "auth",
        "1",
        "16",
        "lb1",
    ]
    .to_vec();
    (
        prop::sample::select(keys),
        atom(),
        atom(),
        prop::sample::select(vec!["", "\\", " #c"]),
    )
        .prop_map(|(k, a, b, tail)| format!("{k} {a} {b}{tail}\n"))
}
