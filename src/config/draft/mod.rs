//! Directives as written, before defaults: what ldirectord.cf and
//! lvsd.toml have in common.
//!
//! Both readers feed `key = value` pairs into [`set_global`] and
//! [`set_virtual`], so a directive means the same in both files and is
//! validated by the same code. [`build`] then applies ldirectord's defaults
//! and inheritance rules (its `ld_setup`) and the checks that need the whole
//! file (duplicates, fallback ports), producing the [`Config`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::diagnostic::{Diagnostics, Loc, did_you_mean};
use super::model::*;
use super::names::Names;
use super::pattern::Pattern;

mod build;
mod real;
mod values;

pub(crate) use build::{build, pattern};
use real::is_contiguous_mask;
pub(crate) use real::{parse_real, with_slash};
use values::*;
pub(crate) use values::{fallback, split_host_port};

/// A directive's value as the reader found it.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    /// The text, quotes removed.
    pub text: String,
    /// Whether it was written in double quotes (TOML strings count as quoted).
    pub quoted: bool,
    /// Where the value starts.
    pub loc: Loc,
}

/// Settings a virtual inherits from the global section unless it sets its own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inherit {
    pub checktimeout: Option<u64>,
    pub negotiatetimeout: Option<u64>,
    pub checkinterval: Option<(u64, Loc)>,
    pub checkcount: Option<u32>,
    pub failurecount: Option<u32>,
    pub risecount: Option<u32>,
    pub fallback: Option<(FallbackSpec, Loc)>,
    pub fallback6: Option<(FallbackSpec, Loc)>,
    pub fallbackcommand: Option<String>,
    pub quiescent: Option<bool>,
    pub cleanstop: Option<bool>,
    pub emailalert: Option<Vec<String>>,
    pub emailalertfreq: Option<u64>,
    pub emailalertstatus: Option<AlertStatus>,
    pub smtp: Option<super::SmtpServer>,
}

/// The global section as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobalDraft {
    pub inherit: Inherit,
    pub autoreload: Option<bool>,
    pub callback: Option<String>,
    pub logfile: Option<LogTarget>,
    pub emailalertfrom: Option<String>,
    pub emailalertcoalesce: Option<u64>,
    pub execute: Vec<String>,
    pub supervised: Option<bool>,
    pub fork: Option<bool>,
    pub readdquiescent: Option<bool>,
    pub maintenancedir: Option<PathBuf>,
    pub lvs_sync_daemon: Option<SyncDaemonSpec>,
    pub metrics: Option<std::net::SocketAddr>,
}

/// How a virtual was named, before names are resolved.
#[derive(Debug, Clone)]
pub(crate) enum KeyDraft {
    /// host or address, and port or service name.
    Address { host: String, port: String },
    /// A firewall mark.
    Fwmark(u32),
}

/// One virtual block as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct VirtualDraft {
    pub loc: Loc,
    pub ipv6: bool,
    pub key: Option<KeyDraft>,
    /// The address was already reported as invalid.
    pub key_failed: bool,
    pub protocol: Option<(String, Loc)>,
    pub checktype: Option<CheckType>,
    pub service: Option<Service>,
    pub checkport: Option<u16>,
    pub request: Option<String>,
    pub receive: Option<(String, Loc)>,
    pub virtualhost: Option<String>,
    pub verifycert: Option<bool>,
    pub httpmethod: Option<(HttpMethod, Loc)>,
    pub login: Option<String>,
    pub passwd: Option<String>,
    pub database: Option<String>,
    pub secret: Option<String>,
    pub checkcommand: Option<String>,
    pub checktype_loc: Option<Loc>,
    pub scheduler: Option<String>,
    pub persistent: Option<u32>,
    pub netmask: Option<(Netmask, Loc)>,
    pub schedflags: Option<String>,
    pub ops: Option<(bool, Loc)>,
    pub servicename: Option<String>,
    pub comment: Option<String>,
    pub monitorfile: Option<PathBuf>,
    pub reals: Vec<RealDraft>,
    pub inherit: Inherit,
}

impl VirtualDraft {
    pub(crate) fn new(loc: Loc, ipv6: bool) -> Self {
        VirtualDraft {
            loc,
            ipv6,
            ..VirtualDraft::default()
        }
    }
}

/// One `real=` as written (a range is still one draft).
#[derive(Debug, Clone)]
pub(crate) struct RealDraft {
    pub loc: Loc,
    pub host: String,
    pub host_end: Option<String>,
    pub port: Option<String>,
    pub forward: Forward,
    pub weight: u32,
    pub check_override: Option<RequestReceive>,
    pub lower_threshold: Option<u32>,
    pub upper_threshold: Option<u32>,
}

/// Everything one or more files said.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub global: GlobalDraft,
    pub virtuals: Vec<VirtualDraft>,
}

/// The schedulers Linux IPVS ships (`ip_vs_*.ko`).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// Directives of the global section (for "did you mean" hints).
pub(crate) const GLOBAL_DIRECTIVES: &[&str] = &[
    "checktimeout",
    "negotiatetimeout",
    "checkinterval",
    "checkcount",
    "failurecount",
    "risecount",
    "fallback",
    "fallback6",
    "fallbackcommand",
    "autoreload",
    "callback",
    "logfile",
    "execute",
    "fork",
    "supervised",
    "quiescent",
    "readdquiescent",
    "emailalert",
    "emailalertfreq",
    "emailalertstatus",
    "emailalertfrom",
    "emailalertcoalesce",
    "cleanstop",
    "smtp",
    "maintenancedir",
    "lvs_sync_daemon",
    "metrics",
];

/// Directives of a virtual block.
pub(crate) const VIRTUAL_DIRECTIVES: &[&str] = &[
    "real",
    "real6",
    "request",
    "receive",
    "checktype",
    "checkcommand",
    "checktimeout",
    "negotiatetimeout",
    "checkcount",
    "failurecount",
    "risecount",
    "checkinterval",
    "checkport",
    "login",
    "passwd",
    "database",
    "secret",
    "load",
    "scheduler",
    "persistent",
    "schedflags",
    "netmask",
    "protocol",
    "ops",
    "service",
    "httpmethod",
    "virtualhost",
    "verifycert",
    "fallback",
    "fallback6",
    "fallbackcommand",
    "quiescent",
    "emailalert",
    "emailalertfreq",
    "emailalertstatus",
    "monitorfile",
    "cleanstop",
    "smtp",
    "servicename",
    "comment",
];

/// Directives ldirectord has retired and rejects.
fn retired(key: &str) -> Option<&'static str> {
    match key {
        "connecttimeout" => {
            Some("connecttimeout directive deprecated in favour of negotiatetimeout")
        }
        "timeout" => {
            Some("timeout directive deprecated in favour of checktimeout and negotiatetimeout")
        }
        _ => None,
    }
}

/// Settings accepted both globally and in a virtual block.
fn set_inherit(
    inh: &mut Inherit,
    key: &str,
    v: &Value,
    ipv6_block: Option<bool>,
    names: &Names,
    d: &mut Diagnostics,
) -> bool {
    match key {
        "checktimeout" => inh.checktimeout = number(key, v, false, d),
        "negotiatetimeout" => inh.negotiatetimeout = number(key, v, false, d),
        "checkinterval" => inh.checkinterval = number(key, v, false, d).map(|n| (n, v.loc.clone())),
        "checkcount" => {
            inh.checkcount = number(key, v, false, d);
            d.warn(
                v.loc.clone(),
                "checkcount option is deprecated and slated for removal",
            )
            .hint("use failurecount");
        }
        "failurecount" => inh.failurecount = number(key, v, false, d),
        "risecount" => inh.risecount = number(key, v, false, d),
        "fallback" | "fallback6" => {
            let v6 = key == "fallback6";
            if let Some(block_v6) = ipv6_block
                && block_v6 != v6
            {
                let want = if block_v6 { "fallback6" } else { "fallback" };
                d.error(
                    v.loc.clone(),
                    format!("cannot specify \"{key}\" here; use \"{want}\" instead"),
                );
                return true;
            }
            let spec = fallback(v, v6, names, d).map(|f| (f, v.loc.clone()));
            if v6 {
                inh.fallback6 = spec;
            } else {
                inh.fallback = spec;
            }
        }
        "fallbackcommand" => inh.fallbackcommand = non_empty(key, v, d),
        "quiescent" => inh.quiescent = yes_no(key, v, d),
        "cleanstop" => inh.cleanstop = yes_no(key, v, d),
        "emailalert" => inh.emailalert = emailalert(v, d),
        "emailalertfreq" => inh.emailalertfreq = number(key, v, true, d),
        "emailalertstatus" => inh.emailalertstatus = alert_status(v, d),
        "smtp" => inh.smtp = smtp_server(v, d),
        _ => return false,
    }
    true
}

/// Applies one global directive. Returns false when the key is unknown.
pub(crate) fn set_global(
    g: &mut GlobalDraft,
    key: &str,
    v: &Value,
    names: &Names,
    d: &mut Diagnostics,
) -> bool {
    if let Some(msg) = retired(key) {
        d.error(v.loc.clone(), msg);
        return true;
    }
    if set_inherit(&mut g.inherit, key, v, None, names, d) {
        return true;
    }
    match key {
        "autoreload" => g.autoreload = yes_no(key, v, d),
        "callback" => {
            need_quotes(key, v, d);
            g.callback = non_empty(key, v, d);
        }
        "logfile" => {
            need_quotes(key, v, d);
            g.logfile = non_empty(key, v, d).and_then(|s| {
                if s.starts_with('/') {
                    Some(LogTarget::File(s.into()))
                } else if let Some(f) = super::Facility::parse(&s) {
                    Some(LogTarget::Syslog(f))
                } else {
                    d.error(
                        v.loc.clone(),
                        format!("logfile `{s}` is neither an absolute path nor a syslog facility"),
                    )
                    .hint("logfile=\"/var/log/lvsd.log\" or logfile=\"local0\"");
                    None
                }
            });
        }
        "execute" => {
            if let Some(s) = non_empty(key, v, d) {
                g.execute.push(s);
            }
        }
        "fork" => g.fork = yes_no(key, v, d),
        "supervised" => {
            if v.text.is_empty() {
                g.supervised = Some(true);
                d.warn(v.loc.clone(), "bare supervised directive")
                    .hint("write supervised=yes");
            } else {
                g.supervised = yes_no(key, v, d);
            }
        }
        "readdquiescent" => g.readdquiescent = yes_no(key, v, d),
        "emailalertfrom" => g.emailalertfrom = non_empty(key, v, d),
        "emailalertcoalesce" => g.emailalertcoalesce = number(key, v, false, d),
        "maintenancedir" => g.maintenancedir = non_empty(key, v, d).map(PathBuf::from),
        "lvs_sync_daemon" => g.lvs_sync_daemon = sync_daemon(v, d),
        "metrics" => g.metrics = metrics_listen(v, d),
        _ => return false,
    }
    true
}

/// Applies one directive of a virtual block (not `real`). Returns false when
/// the key is unknown.
pub(crate) fn set_virtual(
    vd: &mut VirtualDraft,
    key: &str,
    v: &Value,
    names: &Names,
    d: &mut Diagnostics,
) -> bool {
    if let Some(msg) = retired(key) {
        d.error(v.loc.clone(), msg);
        return true;
    }
    let ipv6 = vd.ipv6;
    if set_inherit(&mut vd.inherit, key, v, Some(ipv6), names, d) {
        return true;
    }
    match key {
        "request" => {
            need_quotes(key, v, d);
            if let Some(r) = non_empty("request string", v, d) {
                vd.request = Some(with_slash(r));
            }
        }
        "receive" => {
            need_quotes(key, v, d);
            vd.receive = non_empty("receive string", v, d).map(|r| (r, v.loc.clone()));
        }
        "checktype" => {
            vd.checktype_loc = Some(v.loc.clone());
            vd.checktype = match v.text.as_str() {
                "connect" => Some(CheckType::Connect),
                "negotiate" => Some(CheckType::Negotiate),
                "ping" => Some(CheckType::Ping),
                "external" => Some(CheckType::External),
                "external-perl" => Some(CheckType::ExternalPerl),
                "on" => Some(CheckType::On),
                "off" => Some(CheckType::Off),
                t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                    match t.parse::<u32>() {
                        Ok(n) if n > 0 => Some(CheckType::Combined(n)),
                        _ => {
                            d.error(
                                v.loc.clone(),
                                format!("invalid checktype `{t}`: the number must be 1 or more"),
                            );
                            None
                        }
                    }
                }
                t => {
                    let m = d.error(
                        v.loc.clone(),
                        format!(
                            "unknown checktype `{t}`: must be connect, negotiate, on, off, ping, external, external-perl or a positive number"
                        ),
                    );
                    if let Some(s) = did_you_mean(
                        t,
                        [
                            "connect",
                            "negotiate",
                            "ping",
                            "external",
                            "external-perl",
                            "on",
                            "off",
                        ],
                    ) {
                        m.hint(format!("did you mean `{s}`?"));
                    }
                    None
                }
            };
        }
        "checkcommand" => vd.checkcommand = non_empty("check command", v, d),
        "checkport" => {
            vd.checkport = number::<u16>(key, v, false, d);
        }
        "login" => {
            need_quotes(key, v, d);
            vd.login = non_empty("login string", v, d);
        }
        "passwd" => {
            need_quotes(key, v, d);
            vd.passwd = non_empty("password", v, d);
        }
        "database" => {
            need_quotes(key, v, d);
            vd.database = non_empty("database name", v, d);
        }
        "secret" => {
            need_quotes(key, v, d);
            vd.secret = non_empty("secret", v, d);
        }
        "load" => {
            d.warn(
                v.loc.clone(),
                "load is accepted and ignored (ldirectord never used it)",
            );
        }
        "scheduler" => {
            let s = v.text.as_str();
            if SCHEDULERS.contains(&s) {
                vd.scheduler = Some(s.to_string());
            } else {
                let m = d.error(v.loc.clone(), format!("unknown scheduler `{s}`"));
                match did_you_mean(s, SCHEDULERS.iter().copied()) {
                    Some(c) => m.hint(format!("did you mean `{c}`?")),
                    None => m.hint(format!("Linux IPVS has: {}", SCHEDULERS.join(", "))),
                };
            }
        }
        "persistent" => vd.persistent = number(key, v, true, d),
        "schedflags" => {
            let s = v.text.trim();
            if s.is_empty() || s.contains(char::is_whitespace) {
                d.error(v.loc.clone(), format!("invalid sched-flags `{s}`"));
            } else {
                vd.schedflags = Some(s.to_string());
            }
        }
        "netmask" => {
            let t = v.text.as_str();
            let m = if ipv6 {
                match t.parse::<u8>() {
                    Ok(p) if (1..=128).contains(&p) => Some(Netmask::V6(p)),
                    _ => {
                        d.error(
                            v.loc.clone(),
                            format!("invalid netmask `{t}`: a prefix length between 1 and 128 is required"),
                        );
                        None
                    }
                }
            } else {
                match t.parse::<Ipv4Addr>() {
                    Ok(a) if is_contiguous_mask(a) => Some(Netmask::V4(a)),
                    Ok(_) => {
                        d.error(
                            v.loc.clone(),
                            format!("invalid netmask `{t}`: the mask bits must be contiguous"),
                        );
                        None
                    }
                    Err(_) => {
                        d.error(
                            v.loc.clone(),
                            format!("invalid netmask `{t}`: dotted quad notation is required"),
                        );
                        None
                    }
                }
            };
            vd.netmask = m.map(|m| (m, v.loc.clone()));
        }
        "protocol" => vd.protocol = Some((v.text.clone(), v.loc.clone())),
        "ops" => vd.ops = yes_no(key, v, d).map(|b| (b, v.loc.clone())),
        "service" => match Service::parse(&v.text) {
            Some(Service::Oracle) => {
                d.error(
                    v.loc.clone(),
                    "service=oracle is not supported: lvsd has no Oracle client (ldirectord used Perl's DBD::Oracle)",
                )
                .hint("check the listener with checktype=connect, or run a query with checktype=external and sqlplus");
                // Said once: the port must not bring oracle back.
                vd.service = Some(Service::None);
            }
            Some(s) => vd.service = Some(s),
            None => {
                let names_list: Vec<&str> = Service::ALL.iter().map(|(_, n, _)| *n).collect();
                let m = d.error(v.loc.clone(), format!("unknown service `{}`", v.text));
                match did_you_mean(&v.text, names_list.iter().copied()) {
                    Some(c) => m.hint(format!("did you mean `{c}`?")),
                    None => m.hint(format!("service must be one of {}", names_list.join(", "))),
                };
            }
        },
        "httpmethod" => match v.text.to_ascii_uppercase().as_str() {
            "GET" => vd.httpmethod = Some((HttpMethod::Get, v.loc.clone())),
            "HEAD" => vd.httpmethod = Some((HttpMethod::Head, v.loc.clone())),
            _ => {
                d.error(
                    v.loc.clone(),
                    format!("httpmethod must be GET or HEAD, not `{}`", v.text),
                );
            }
        },
        "virtualhost" => vd.virtualhost = non_empty(key, v, d),
        "verifycert" => vd.verifycert = yes_no(key, v, d),
        "monitorfile" => vd.monitorfile = non_empty(key, v, d).map(PathBuf::from),
        "servicename" => vd.servicename = Some(v.text.clone()),
        "comment" => vd.comment = Some(v.text.clone()),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn val(s: &str) -> Value {
        let f: Arc<str> = "t".into();
        Value {
            text: s.into(),
            quoted: false,
            loc: Loc::new(&f, 1, 1),
        }
    }

    #[test]
    fn real_lines() {
        let mut d = Diagnostics::new();
        let r = parse_real(
            &val("10.0.0.1:80 masq 5 \"/x\",\"ok\" l:2 u:9"),
            false,
            &mut d,
        )
        .unwrap();
        assert!(!d.has_errors(), "{d:?}");
        assert_eq!(
            (r.host.as_str(), r.port.as_deref(), r.forward, r.weight),
            ("10.0.0.1", Some("80"), Forward::Masq, 5)
        );
        assert_eq!(
            r.check_override.as_ref().map(|o| o.request.as_str()),
            Some("/x")
        );
        assert_eq!((r.lower_threshold, r.upper_threshold), (Some(2), Some(9)));

        let r = parse_real(&val("10.0.0.1->10.0.0.3:http gate"), false, &mut d).unwrap();
        assert_eq!(r.host_end.as_deref(), Some("10.0.0.3"));
        assert_eq!(r.port.as_deref(), Some("http"));

        let r = parse_real(&val("[2001:db8::1]:80 gate 0"), true, &mut d).unwrap();
        assert_eq!((r.host.as_str(), r.weight), ("2001:db8::1", 0));
        assert!(!d.has_errors());

        for bad in [
            "10.0.0.1:80",
            "10.0.0.1:80 gat",
            "10.0.0.1:80 gate x",
            "10.0.0.1::80 gate",
        ] {
            let mut d = Diagnostics::new();
            assert!(parse_real(&val(bad), false, &mut d).is_none(), "{bad}");
            assert!(d.has_errors());
        }
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:80"), ("a", Some("80")));
        assert_eq!(split_host_port("[::1]:80"), ("::1", Some("80")));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("a"), ("a", None));
    }

    #[test]
    fn a_bad_real_line_gets_one_error_and_a_bad_pattern_is_shown_short() {
        let errors = |text: &str| -> Vec<String> {
            let l = crate::config::parse_str(
                crate::config::Format::Ldirectord,
                "t.cf",
                text,
                &crate::config::Names::offline(),
            );
            l.diagnostics
                .iter()
                .filter(|d| d.severity == crate::config::Severity::Error)
                .map(ToString::to_string)
                .collect()
        };
        let e = errors("virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate 1 \"x\",\"(\" bogus\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("around `bogus`"), "{e:?}");
        let e =
            errors("virtual=192.0.2.10:80\n\treal=10.0.0.1->10.0.0.200:80 gate 1 \"x\",\"(\"\n");
        assert_eq!(e.len(), 1, "a range's pattern is compiled once: {e:?}");
        let long = format!("({}", "a".repeat(10_000));
        let e = errors(&format!(
            "virtual=192.0.2.10:80\n\treceive=\"{long}\"\n\treal=10.0.0.1:80 gate\n"
        ));
        assert!(
            e.len() == 1 && e[0].len() < 300 && e[0].contains("aaa…"),
            "{e:?}"
        );
        // A refused URL and a bad address on one line: both told.
        let e = errors(
            "virtual=192.0.2.10:80\n\treal=10.0.0.1->10.0.0.x:80 gate 1 \"https://h/\",\"x\"\n\tservice=https\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
