//! [`build`]: the drafts into the [`Config`] (ldirectord's `ld_setup`:
//! defaults, inheritance, fallback ports, duplicates, real ranges), and
//! [`plannable`]: every check `lvsd run` could not make is refused here, at
//! its line, so the plan cannot fail.

use super::*;

/// Applies defaults and inheritance, resolves names, and checks what needs
/// the whole configuration. Always returns a model (possibly partial); the
/// caller looks at `d.has_errors()`.
pub(crate) fn build(
    draft: &Draft,
    names: &Names,
    d: &mut Diagnostics,
) -> (Global, Vec<VirtualService>) {
    let g = &draft.global;
    let gi = &g.inherit;
    let fork = g.fork.unwrap_or(false);
    let global_alerts = Alerts {
        emailalert: gi.emailalert.clone().unwrap_or_default(),
        emailalertfreq: gi.emailalertfreq.unwrap_or(0),
        emailalertstatus: gi.emailalertstatus.unwrap_or(AlertStatus::ALL),
        smtp: gi.smtp.clone(),
    };
    let global = Global {
        checkinterval: gi.checkinterval.as_ref().map_or(10, |c| c.0),
        checktimeout: gi.checktimeout,
        negotiatetimeout: gi.negotiatetimeout,
        checkcount: gi.checkcount.unwrap_or(1),
        failurecount: gi.failurecount.unwrap_or(1),
        risecount: gi.risecount.unwrap_or(1),
        autoreload: g.autoreload.unwrap_or(false),
        callback: g.callback.clone(),
        fallback: gi.fallback.as_ref().map(|f| f.0.clone()),
        fallback6: gi.fallback6.as_ref().map(|f| f.0.clone()),
        fallbackcommand: gi.fallbackcommand.clone(),
        logfile: g.logfile.clone(),
        alerts: global_alerts.clone(),
        emailalertfrom: g.emailalertfrom.clone(),
        emailalertcoalesce: g.emailalertcoalesce.unwrap_or(60),
        execute: g.execute.clone(),
        supervised: g.supervised.unwrap_or(false),
        fork,
        quiescent: gi.quiescent.unwrap_or(false),
        readdquiescent: g.readdquiescent.unwrap_or(false),
        cleanstop: gi.cleanstop.unwrap_or(true),
        maintenancedir: g.maintenancedir.clone(),
        lvs_sync_daemon: g.lvs_sync_daemon.clone(),
        metrics: g.metrics,
    };

    let mut out = Vec::new();
    let mut seen: HashMap<VirtualKey, Loc> = HashMap::new();
    for vd in &draft.virtuals {
        let Some(vs) = build_virtual(vd, &global, gi, names, d) else {
            continue;
        };
        if let Some(first) = seen.get(&vs.key) {
            d.error(
                vd.loc.clone(),
                format!("duplicate virtual server {}", vs.key),
            )
            .hint(format!("first defined at {first}"));
            continue;
        }
        seen.insert(vs.key, vd.loc.clone());
        out.push(vs);
    }
    (global, out)
}

pub(super) fn build_virtual(
    vd: &VirtualDraft,
    global: &Global,
    gi: &Inherit,
    names: &Names,
    d: &mut Diagnostics,
) -> Option<VirtualService> {
    let vi = &vd.inherit;
    let Some(kd) = &vd.key else {
        if !vd.key_failed {
            d.error(vd.loc.clone(), "virtual service has no address");
        }
        return None;
    };
    // Protocol first: service-name ports are looked up per protocol.
    let key = match kd {
        KeyDraft::Fwmark(mark) => {
            if let Some((p, loc)) = &vd.protocol
                && p != "fwm"
            {
                d.error(
                    loc.clone(),
                    format!("protocol must be fwm if the virtual service is a fwmark (a number), not `{p}`"),
                );
            }
            VirtualKey::Fwmark {
                fwmark: *mark,
                ipv6: vd.ipv6,
            }
        }
        KeyDraft::Address { host, port } => {
            let protocol = match &vd.protocol {
                None if port == "53" || port == "domain" => Protocol::Udp,
                None => Protocol::Tcp,
                Some((p, loc)) => match p.as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    "sctp" => Protocol::Sctp,
                    other => {
                        d.error(
                            loc.clone(),
                            format!("protocol must be tcp, udp or sctp if the virtual service is an address and port, not `{other}`"),
                        );
                        Protocol::Tcp
                    }
                },
            };
            let Some(address) = names.host(host, vd.ipv6) else {
                let fam = if vd.ipv6 { "IPv6" } else { "IPv4" };
                d.error(
                    vd.loc.clone(),
                    format!("invalid address for virtual service: `{host}` is not an {fam} address or a resolvable host name"),
                );
                return None;
            };
            let Some(port) = names.port(port, protocol.as_str()) else {
                d.error(
                    vd.loc.clone(),
                    format!("invalid port `{port}` for virtual service"),
                )
                .hint("use a number 1..65535 or a name from /etc/services");
                return None;
            };
            if port == 0 {
                d.error(vd.loc.clone(), "invalid port 0 for virtual service");
                return None;
            }
            VirtualKey::Address {
                address,
                port,
                protocol,
            }
        }
    };

    // ldirectord: an explicit service= wins; a fwmark virtual checks
    // nothing unless told; otherwise the port decides.
    let mut service = vd.service.unwrap_or(match key {
        VirtualKey::Fwmark { .. } => Service::None,
        VirtualKey::Address { port, .. } => Service::from_port(port),
    });
    // Port 1521 means oracle to ldirectord, which lvsd cannot check: an
    // error when the check would use it, else the (unused) service is none.
    if service == Service::Oracle {
        match vd.checktype.unwrap_or(CheckType::Negotiate) {
            CheckType::Negotiate | CheckType::Combined(_) => {
                d.error(
                    vd.loc.clone(),
                    "port 1521 means service=oracle to ldirectord, which lvsd does not support: it has no Oracle client",
                )
                .hint("set checktype=connect (the listener answers), or an external check running a query");
            }
            _ => {}
        }
        service = Service::None;
    }
    // ldirectord gives ftp and sip a login only when `service=` is written;
    // with a service inferred from the port it sends an empty one (Net::FTP
    // then logs in as anonymous anyway; a SIP `OPTIONS sip:` is malformed).
    // lvsd applies the defaults to the effective service either way.
    let hostname = names.hostname();
    let login = vd.login.clone().unwrap_or_else(|| match service {
        Service::Ftp => "anonymous".into(),
        Service::Sip => format!("ldirectord@{hostname}"),
        _ => String::new(),
    });
    let passwd = vd.passwd.clone().unwrap_or_else(|| match service {
        Service::Ftp => format!("ldirectord@{hostname}"),
        _ => String::new(),
    });

    // Timeouts are each other's defaults (ld_setup).
    let checktimeout = vi
        .checktimeout
        .or(vi.negotiatetimeout)
        .or(gi.checktimeout)
        .or(gi.negotiatetimeout)
        .unwrap_or(5);
    let negotiatetimeout = vi
        .negotiatetimeout
        .or(vi.checktimeout)
        .or(gi.negotiatetimeout)
        .or(gi.checktimeout)
        .unwrap_or(30);
    let checkinterval = match &vi.checkinterval {
        Some((n, _)) if global.fork => *n,
        Some((_, loc)) => {
            d.warn(
                loc.clone(),
                "checkinterval in a virtual service is ignored when fork=no",
            )
            .hint("set fork=yes, as ldirectord requires, or set checkinterval globally");
            global.checkinterval
        }
        None => global.checkinterval,
    };

    let checktype = vd.checktype.unwrap_or(CheckType::Negotiate);
    let receive = vd
        .receive
        .as_ref()
        .map(|(r, loc)| pattern(r, loc, d))
        .unwrap_or_default();
    if let (Some((HttpMethod::Head, loc)), Some(_)) = (&vd.httpmethod, &vd.receive)
        && matches!(service, Service::Http | Service::Https | Service::HttpProxy)
    {
        d.warn(
            loc.clone(),
            "httpmethod=HEAD gets no body, so receive can never match",
        )
        .hint("remove receive, or use GET");
    }
    let checkcommand = match (&vd.checkcommand, checktype) {
        (Some(c), _) => c.clone(),
        (None, CheckType::External | CheckType::ExternalPerl) => {
            let loc = vd.checktype_loc.clone().unwrap_or_else(|| vd.loc.clone());
            d.error(loc, format!("checktype={} needs a checkcommand", checktype.to_ldirectord()))
                .hint("ldirectord would run /bin/true, so every real would always look up; add checkcommand=\"/path/to/check\"");
            "/bin/true".into()
        }
        (None, _) => "/bin/true".into(),
    };

    if let Some((true, loc)) = &vd.ops
        && !matches!(
            key,
            VirtualKey::Address {
                protocol: Protocol::Udp,
                ..
            }
        )
    {
        d.warn(loc.clone(), "ops=yes only applies to UDP services; ignored")
            .hint("ldirectord ignores it too");
    }
    if let (Some((_, loc)), None) = (&vd.netmask, vd.persistent) {
        d.warn(loc.clone(), "netmask has no effect without persistent")
            .hint("ldirectord passes -M only together with -p");
    }

    let check = CheckSpec {
        checktype,
        service,
        checkport: vd.checkport,
        request: vd.request.clone().unwrap_or_else(|| "/".into()),
        receive,
        virtualhost: vd.virtualhost.clone(),
        verifycert: vd.verifycert.unwrap_or(false),
        httpmethod: vd.httpmethod.as_ref().map_or(HttpMethod::Get, |m| m.0),
        login,
        passwd,
        database: vd.database.clone().unwrap_or_default(),
        secret: vd.secret.clone().unwrap_or_default(),
        checkcommand,
        checktimeout,
        negotiatetimeout,
        checkinterval,
        checkcount: vi.checkcount.or(gi.checkcount).unwrap_or(1),
        failurecount: vi.failurecount.or(gi.failurecount).unwrap_or(1),
        risecount: vi.risecount.or(gi.risecount).unwrap_or(1),
    };

    let fb = if key.is_ipv6() {
        vi.fallback6.as_ref().or(gi.fallback6.as_ref())
    } else {
        vi.fallback.as_ref().or(gi.fallback.as_ref())
    };
    let fallback = fb.map(|(f, _)| Fallback {
        address: f.address,
        port: f.port.unwrap_or(key.port()),
        forward: f.forward,
    });

    let alerts = Alerts {
        emailalert: vi
            .emailalert
            .clone()
            .unwrap_or_else(|| global.alerts.emailalert.clone()),
        emailalertfreq: vi.emailalertfreq.unwrap_or(global.alerts.emailalertfreq),
        emailalertstatus: vi
            .emailalertstatus
            .unwrap_or(global.alerts.emailalertstatus),
        smtp: vi.smtp.clone().or_else(|| global.alerts.smtp.clone()),
    };

    let mut reals: Vec<RealServer> = Vec::new();
    for rd in &vd.reals {
        // The URL's error, if any, after the address's: both are told.
        let over = real_override(rd, &check, d);
        let expanded = expand_real(rd, over.clone().ok().flatten(), key.is_ipv6(), names, d);
        if over.is_err() {
            continue;
        }
        for r in expanded {
            if let Some(first) = reals
                .iter()
                .find(|x| x.address == r.address && x.port == r.port)
            {
                d.warn(
                    rd.loc.clone(),
                    format!("duplicate real server {} in virtual {key}; keeping the first", real_name(&r)),
                )
                .hint(format!(
                    "first defined at {}; ldirectord would have added it twice and ipvsadm would have failed",
                    first.origin
                ));
                continue;
            }
            reals.push(r);
        }
    }

    let vs = VirtualService {
        origin: Origin(Some(vd.loc.clone())),
        key,
        scheduler: vd.scheduler.clone().unwrap_or_else(|| "wrr".into()),
        persistent: vd.persistent,
        netmask: vd.netmask.as_ref().map(|n| n.0),
        schedflags: vd.schedflags.clone(),
        ops: vd.ops.as_ref().is_some_and(|o| o.0),
        servicename: vd.servicename.clone(),
        comment: vd.comment.clone(),
        reals,
        fallback,
        fallbackcommand: vi
            .fallbackcommand
            .clone()
            .or_else(|| global.fallbackcommand.clone()),
        check,
        quiescent: vi.quiescent.unwrap_or(global.quiescent),
        cleanstop: vi.cleanstop.unwrap_or(global.cleanstop),
        alerts,
        monitorfile: vd.monitorfile.clone(),
    };
    plannable(&vs, vd, d);
    Some(vs)
}

/// Refuses, at its line, every check `lvsd run` could not make: after
/// this, health::plan turns any model into probes and cannot fail (one
/// validation: what `lvsd check` accepts, `lvsd run` runs).
pub(super) fn plannable(vs: &VirtualService, vd: &VirtualDraft, d: &mut Diagnostics) {
    let c = &vs.check;
    let loc = || vd.checktype_loc.clone().unwrap_or_else(|| vd.loc.clone());
    let connects = matches!(c.checktype, CheckType::Connect | CheckType::Combined(_));
    let negotiates = matches!(c.checktype, CheckType::Negotiate | CheckType::Combined(_));
    let protocol = match vs.key {
        VirtualKey::Address { protocol, .. } => Some(protocol),
        VirtualKey::Fwmark { .. } => None,
    };
    let (sctp, udp) = (
        protocol == Some(Protocol::Sctp),
        protocol == Some(Protocol::Udp),
    );
    if connects && sctp {
        d.error(loc(), "checktype=connect cannot open SCTP associations")
            .hint("use checktype=ping, on, off, or a negotiate check of a TCP checkport");
    }
    if !negotiates && !connects {
        return;
    }
    let svc = c.service.as_str();
    if negotiates {
        match c.service {
            Service::HttpProxy => {
                d.error(
                    vd.loc.clone(),
                    "service=http_proxy checks are not supported by lvsd",
                )
                .hint("use checktype=connect, or an external check");
            }
            Service::Mysql | Service::Pgsql if c.login.is_empty() => {
                d.error(vd.loc.clone(), format!("service={svc} needs login="))
                    .hint("and passwd=, database= and request= (the SQL query that must return a row), as ldirectord");
            }
            Service::Radius if c.secret.is_empty() => {
                d.error(vd.loc.clone(), "service=radius needs secret=")
                    .hint("the RADIUS shared secret lvsd signs its Access-Request with");
            }
            _ => {}
        }
    }
    for r in &vs.reals {
        let at = || r.origin.0.clone().unwrap_or_else(|| vd.loc.clone());
        // A connect check of a UDP virtual pings; `service=none` sends nothing.
        let uses_port = (connects && !udp && !sctp) || (negotiates && c.service != Service::None);
        if uses_port && r.check_port(vs).is_none_or(|p| p == 0) {
            d.error(at(), format!("real {} has no port to check", r.address))
                .hint("set checkport=");
            continue;
        }
        if !negotiates {
            continue;
        }
        let (request, receive) = (r.request(vs), r.receive(vs));
        let bare = request.trim_start_matches('/');
        match c.service {
            Service::Dns if bare.is_empty() || receive.is_empty() => {
                d.error(at(), "service=dns needs request= and receive=")
                    .hint("request= is the name (or address) to look up, receive= what its A (or PTR) record must match; ldirectord would never count the real up without them");
            }
            Service::Dns => {
                if let Err(e) = checkers::dns::query_of(request) {
                    d.error(at(), e.to_string());
                }
            }
            Service::Mysql | Service::Pgsql if bare.is_empty() => {
                d.error(at(), format!("service={svc} needs request="))
                    .hint("the SQL query that must return a row, as ldirectord");
            }
            Service::Http | Service::Https => {
                // A per-real whole URL (read by real_override).
                if r.check_override.as_ref().is_some_and(|o| o.url.is_some()) {
                    continue;
                }
                let mut o = checkers::HttpOptions::get(
                    c.service == Service::Https,
                    r.address,
                    r.check_port(vs).unwrap_or(80),
                    request,
                );
                o.virtualhost = c.virtualhost.clone();
                if let Err(e) = o.url() {
                    d.error(at(), e.to_string())
                        .hint("check request= and virtualhost=");
                }
            }
            _ => {}
        }
    }
}

pub(super) fn real_name(r: &RealServer) -> String {
    match r.address {
        IpAddr::V6(a) => format!("[{a}]:{}", r.port),
        a => format!("{a}:{}", r.port),
    }
}

/// `receive` compiled once, here. lvsd matches with Rust's `regex`
/// (linear time); Perl-only syntax (look-around, back-references) is
/// refused at its line rather than failing at check time. (On an error the
/// empty pattern stands in: a config with an error is never used.)
pub(crate) fn pattern(source: &str, loc: &Loc, d: &mut Diagnostics) -> Pattern {
    Pattern::new(source).unwrap_or_else(|e| {
        let first = e.to_string();
        let reason = first.lines().last().unwrap_or("invalid pattern").trim();
        let reason = reason.strip_prefix("error: ").unwrap_or(reason);
        d.error(
            loc.clone(),
            format!(
                "receive `{}` is not a valid regular expression: {reason}",
                shown(source)
            ),
        )
            .hint("lvsd uses Rust regex syntax (no look-around or back-references); escape literal characters such as `(` or `[` with `\\`");
        Pattern::default()
    })
}

/// A real's own request/receive, with its request read once as
/// ldirectord's per-real URL where an http(s) negotiate check fetches it
/// instead of the real. Err (already reported): a URL lvsd cannot check.
pub(super) fn real_override(
    rd: &RealDraft,
    check: &CheckSpec,
    d: &mut Diagnostics,
) -> Result<Option<RequestReceive>, ()> {
    let Some(mut o) = rd.check_override.clone() else {
        return Ok(None);
    };
    let negotiates = matches!(
        check.checktype,
        CheckType::Negotiate | CheckType::Combined(_)
    );
    if negotiates && matches!(check.service, Service::Http | Service::Https) {
        match crate::config::real_url(check.service == Service::Https, &o.request) {
            Some(Ok(u)) => o.url = Some(u),
            Some(Err(e)) => {
                let scheme = if check.service == Service::Https {
                    "https"
                } else {
                    "http"
                };
                d.error(rd.loc.clone(), e.to_string()).hint(format!(
                    "write the URL with the address: \"{scheme}://10.0.0.5:8080/alive\", or a path"
                ));
                return Err(());
            }
            None => {}
        }
    }
    Ok(Some(o))
}

pub(super) fn expand_real(
    rd: &RealDraft,
    check_override: Option<RequestReceive>,
    ipv6: bool,
    names: &Names,
    d: &mut Diagnostics,
) -> Vec<RealServer> {
    let Some(first) = names.host(&rd.host, ipv6) else {
        d.error(
            rd.loc.clone(),
            format!(
                "invalid address ({}) for real server (could not resolve host)",
                rd.host
            ),
        );
        return Vec::new();
    };
    let port = match &rd.port {
        None => 0,
        Some(p) => match names.port(p, "") {
            Some(p) => p,
            None => {
                d.error(
                    rd.loc.clone(),
                    format!("invalid port ({p}) for real server (could not resolve port)"),
                )
                .hint("use a number 1..65535 or a name from /etc/services");
                return Vec::new();
            }
        },
    };
    // The kernel refuses a lower threshold above the upper one, and "no
    // upper threshold" (0) counts as 0 there (ERANGE).
    if let Some(l) = rd.lower_threshold.filter(|l| *l > 0) {
        let u = rd.upper_threshold.unwrap_or(0);
        if l > u {
            let m = d.error(
                rd.loc.clone(),
                format!("lower threshold l:{l} is above the upper threshold u:{u}: the kernel refuses it"),
            );
            if u == 0 {
                m.hint(
                    "a lower threshold needs an upper one at least as high, e.g. u:{l}"
                        .replace("{l}", &l.to_string()),
                );
            }
            return Vec::new();
        }
    }
    let mk = |address| RealServer {
        origin: Origin(Some(rd.loc.clone())),
        address,
        port,
        forward: rd.forward,
        weight: rd.weight,
        lower_threshold: rd.lower_threshold,
        upper_threshold: rd.upper_threshold,
        check_override: check_override.clone(),
    };
    let Some(end) = &rd.host_end else {
        return vec![mk(first)];
    };
    let Some(last) = names.host(end, false) else {
        d.error(
            rd.loc.clone(),
            format!("invalid address ({end}) for real server (could not resolve end host)"),
        );
        return Vec::new();
    };
    let (IpAddr::V4(a), IpAddr::V4(b)) = (first, last) else {
        d.error(rd.loc.clone(), "address range for IPv6 is not supported");
        return Vec::new();
    };
    let (a, b) = (u32::from(a), u32::from(b));
    if a > b {
        d.error(
            rd.loc.clone(),
            format!(
                "invalid range {first}->{last}: the first address must not be greater than the last"
            ),
        );
        return Vec::new();
    }
    if b - a >= 4096 {
        d.error(
            rd.loc.clone(),
            format!(
                "range {first}->{last} has {} addresses; at most 4096 are allowed",
                u64::from(b - a) + 1
            ),
        );
        return Vec::new();
    }
    (a..=b).map(|i| mk(IpAddr::V4(Ipv4Addr::from(i)))).collect()
}

/// A pattern as a message shows it: its first 60 characters, control
/// characters escaped (a message never carries a 5 MB pattern or a
/// terminal escape).
fn shown(source: &str) -> String {
    let mut out: String = source
        .chars()
        .take(60)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if source.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}
