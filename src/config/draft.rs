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

fn yes_no(key: &str, v: &Value, d: &mut Diagnostics) -> Option<bool> {
    match v.text.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        other => {
            d.error(
                v.loc.clone(),
                format!("{key} must be 'yes' or 'no', not `{other}`"),
            );
            None
        }
    }
}

/// The longest checktimeout, negotiatetimeout or checkinterval.
const MAX_SECONDS: u64 = 86_400;

/// The longest emailalertfreq or emailalertcoalesce.
const MAX_ALERT_SECONDS: u64 = 365 * 86_400;

/// A positive whole number; ldirectord takes the first digits it finds, we
/// take a clean number and say so when there is more.
fn number<T: TryFrom<u64>>(
    key: &str,
    v: &Value,
    allow_zero: bool,
    d: &mut Diagnostics,
) -> Option<T> {
    let t = v.text.trim();
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        d.error(
            v.loc.clone(),
            format!("invalid {key} `{t}`: a whole number is required"),
        );
        return None;
    }
    let Some(n) = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| T::try_from(n).ok().map(|x| (n, x)))
    else {
        d.error(
            v.loc.clone(),
            format!("invalid {key} `{t}`: number out of range"),
        );
        return None;
    };
    // Seconds that lvsd multiplies and adds to clocks: a day is far past
    // any check's sense and keeps every deadline computable.
    if matches!(key, "checktimeout" | "negotiatetimeout" | "checkinterval") && n.0 > MAX_SECONDS {
        d.error(
            v.loc.clone(),
            format!("invalid {key} `{t}`: at most {MAX_SECONDS} seconds (a day)"),
        );
        return None;
    }
    // The alert timers are added to clocks too (a huge one panicked the
    // mailer at the first alert); a year is far past any reminder's sense.
    if matches!(key, "emailalertfreq" | "emailalertcoalesce") && n.0 > MAX_ALERT_SECONDS {
        d.error(
            v.loc.clone(),
            format!("invalid {key} `{t}`: at most {MAX_ALERT_SECONDS} seconds (a year)"),
        );
        return None;
    }
    if n.0 == 0 && !allow_zero {
        d.error(
            v.loc.clone(),
            format!("invalid {key} `{t}`: must be greater than 0"),
        );
        return None;
    }
    if digits.len() != t.len() {
        d.warn(
            v.loc.clone(),
            format!(
                "{key}: ignoring `{}` after the number {digits}",
                &t[digits.len()..]
            ),
        )
        .hint("ldirectord reads only the leading digits too");
    }
    Some(n.1)
}

fn need_quotes(key: &str, v: &Value, d: &mut Diagnostics) {
    if !v.quoted {
        d.warn(
            v.loc.clone(),
            format!("{key} value is not in double quotes"),
        )
        .hint(format!(
            "ldirectord only accepts {key}=\"...\" and would reject this line"
        ));
    }
}

fn non_empty(key: &str, v: &Value, d: &mut Diagnostics) -> Option<String> {
    if v.text.is_empty() {
        d.error(v.loc.clone(), format!("{key} is empty"));
        None
    } else {
        Some(v.text.clone())
    }
}

fn alert_status(v: &Value, d: &mut Diagnostics) -> Option<AlertStatus> {
    let parts: Vec<&str> = v.text.split(',').map(str::trim).collect();
    let none = parts.contains(&"none");
    let mut s = AlertStatus::NONE;
    for p in &parts {
        match *p {
            "none" => continue,
            "all" => s = AlertStatus::ALL,
            "starting" => s.starting = true,
            "running" => s.running = true,
            "stopping" => s.stopping = true,
            "reloading" => s.reloading = true,
            other => {
                d.error(v.loc.clone(), format!("invalid email alert status `{other}`")).hint(
                    "use all, none, or a comma-separated list of starting, running, stopping, reloading",
                );
                return None;
            }
        }
        if none {
            d.error(
                v.loc.clone(),
                format!("invalid email alert status: `{p}` specified with `none`"),
            );
            return None;
        }
    }
    Some(s)
}

fn smtp_server(v: &Value, d: &mut Diagnostics) -> Option<super::SmtpServer> {
    match super::SmtpServer::parse(&v.text) {
        Ok(s) => Some(s),
        Err(e) => {
            d.error(
                v.loc.clone(),
                format!("invalid SMTP server `{}`: {e}", v.text),
            )
            .hint("write host, host:port, or smtp://user:password@host:port");
            None
        }
    }
}

/// `metrics = ADDR:PORT` (an lvsd extension): where `/metrics` listens.
fn metrics_listen(v: &Value, d: &mut Diagnostics) -> Option<std::net::SocketAddr> {
    match v.text.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            d.error(
                v.loc.clone(),
                format!("invalid metrics address `{}`: write ADDRESS:PORT", v.text),
            )
            .hint("metrics = 127.0.0.1:9114");
            None
        }
    }
}

fn emailalert(v: &Value, d: &mut Diagnostics) -> Option<Vec<String>> {
    let list: Vec<String> = v
        .text
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        d.error(v.loc.clone(), "no email address specified");
        return None;
    }
    for a in &list {
        if !a.contains('@') {
            d.warn(v.loc.clone(), format!("email address `{a}` has no `@`"))
                .hint("it will be delivered as a local user of the SMTP server");
        }
    }
    Some(list)
}

/// `fallback=host[:port] [gate|masq|ipip]`.
pub(crate) fn fallback(
    v: &Value,
    ipv6: bool,
    names: &Names,
    d: &mut Diagnostics,
) -> Option<FallbackSpec> {
    let mut words = v.text.split_whitespace();
    let Some(hostport) = words.next() else {
        d.error(v.loc.clone(), "invalid fallback server: nothing given");
        return None;
    };
    let forward = match words.next() {
        None => Forward::Gate,
        Some(w) => match Forward::parse(w) {
            Some(f) => f,
            None => {
                d.error(
                    v.loc.clone(),
                    format!("forward method must be gate, masq or ipip, not `{w}`"),
                );
                return None;
            }
        },
    };
    if let Some(extra) = words.next() {
        d.error(
            v.loc.clone(),
            format!("unexpected `{extra}` after the fallback server"),
        );
        return None;
    }
    let (host, port) = split_host_port(hostport);
    let Some(address) = names.host(host, ipv6) else {
        let fam = if ipv6 { "IPv6" } else { "IPv4" };
        d.error(
            v.loc.clone(),
            format!("invalid {fam} address or could not resolve for fallback server: {host}"),
        );
        return None;
    };
    let port = match port {
        None => None,
        Some(p) => match names.port(p, "") {
            Some(p) => Some(p),
            None => {
                d.error(
                    v.loc.clone(),
                    format!("invalid port `{p}` for fallback server"),
                );
                return None;
            }
        },
    };
    Some(FallbackSpec {
        address,
        port,
        forward,
    })
}

/// `lvs_sync_daemon = INTERFACE [id N]` (keepalived's directive, an lvsd
/// extension to ldirectord.cf).
fn sync_daemon(v: &Value, d: &mut Diagnostics) -> Option<SyncDaemonSpec> {
    let words: Vec<&str> = v.text.split_whitespace().collect();
    let Some((interface, rest)) = words.split_first() else {
        d.error(v.loc.clone(), "lvs_sync_daemon needs an interface")
            .hint("lvs_sync_daemon = eth1 id 1");
        return None;
    };
    let sync_id = match rest {
        [] => 0,
        ["id", n] => match n.parse::<u8>() {
            Ok(n) => n,
            Err(_) => {
                d.error(
                    v.loc.clone(),
                    format!("invalid lvs_sync_daemon id `{n}`: 0..255"),
                );
                return None;
            }
        },
        _ => {
            d.error(
                v.loc.clone(),
                format!(
                    "invalid lvs_sync_daemon `{}`: write INTERFACE [id N]",
                    v.text.trim()
                ),
            );
            return None;
        }
    };
    Some(SyncDaemonSpec {
        interface: (*interface).to_owned(),
        sync_id,
    })
}

/// Splits `host:port`, `[v6]:port`, `[v6]` or `host`.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            return (h, after.strip_prefix(':'));
        }
        return (s, None);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
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

/// ldirectord prepends `/` to every request (a path for http; the
/// checkers strip it again where the request is not a path).
pub(crate) fn with_slash(request: String) -> String {
    if request.starts_with('/') {
        request
    } else {
        format!("/{request}")
    }
}

fn is_contiguous_mask(a: Ipv4Addr) -> bool {
    let m = u32::from(a);
    m.leading_ones() + m.trailing_zeros() == 32
}

/// Parses the value of `real=` / `real6=`:
/// `host[->host][:port] gate|masq|ipip [weight] ["request","receive"] [l:N] [u:N]`.
pub(crate) fn parse_real(v: &Value, ipv6: bool, d: &mut Diagnostics) -> Option<RealDraft> {
    let text = v.text.trim();
    let (addr, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    let (hosts, port) = if ipv6 {
        match split_host_port(addr) {
            (h, p) if addr.starts_with('[') && addr.contains(']') => (h, p),
            _ => {
                d.error(
                    v.loc.clone(),
                    format!("invalid address for real server `{addr}`"),
                )
                .hint("IPv6 real servers are written real6=[2001:db8::1]:80 gate");
                return None;
            }
        }
    } else {
        match addr.split_once("->") {
            Some((a, b)) => {
                let (b, p) = split_host_port(b);
                // `a->b:port`: the port belongs to the whole range.
                let (a2, p2) = split_host_port(a);
                if p2.is_some() {
                    d.error(
                        v.loc.clone(),
                        format!("invalid address for real server `{addr}`"),
                    )
                    .hint("write the port once, after the range: real=10.0.0.1->10.0.0.4:80 gate");
                    return None;
                }
                return finish_real(v, a2, Some(b), p, rest, d);
            }
            None => split_host_port(addr),
        }
    };
    if !ipv6 && hosts.contains(':') || !valid_host(hosts) {
        d.error(
            v.loc.clone(),
            format!("invalid address for real server `{addr}`"),
        )
        .hint("write real=ADDRESS[:PORT] gate|masq|ipip [WEIGHT]");
        return None;
    }
    if ipv6 && hosts.contains("->") {
        d.error(v.loc.clone(), "address range for IPv6 is not supported");
        return None;
    }
    finish_real(v, hosts, None, port, rest, d)
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
}

fn finish_real(
    v: &Value,
    host: &str,
    host_end: Option<&str>,
    port: Option<&str>,
    rest: &str,
    d: &mut Diagnostics,
) -> Option<RealDraft> {
    if let Some(e) = host_end
        && !valid_host(e)
    {
        d.error(
            v.loc.clone(),
            format!("invalid end address `{e}` for real server range"),
        );
        return None;
    }
    if port == Some("") {
        d.error(
            v.loc.clone(),
            format!("invalid address for real server `{host}:`: empty port"),
        );
        return None;
    }
    let mut words = Tokens::new(rest);
    let forward = match words.next() {
        None => {
            d.error(v.loc.clone(), "real server needs a forwarding method")
                .hint("add gate, masq or ipip after the address");
            return None;
        }
        Some(w) => match Forward::parse(&w) {
            Some(f) => f,
            None => {
                let m = d.error(
                    v.loc.clone(),
                    format!("forward method must be gate, masq or ipip, not `{w}`"),
                );
                if let Some(c) = did_you_mean(&w, ["gate", "masq", "ipip"]) {
                    m.hint(format!("did you mean `{c}`?"));
                }
                return None;
            }
        },
    };
    let mut r = RealDraft {
        loc: v.loc.clone(),
        host: host.to_string(),
        host_end: host_end.map(str::to_string),
        port: port.map(str::to_string),
        forward,
        weight: 1,
        check_override: None,
        lower_threshold: None,
        upper_threshold: None,
    };
    let mut tok = words.next();
    if let Some(w) = &tok
        && !w.starts_with('"')
        && !w.contains(':')
    {
        match w.parse::<u32>() {
            Ok(n) if n <= i32::MAX as u32 => r.weight = n,
            _ => {
                d.error(
                    v.loc.clone(),
                    format!("invalid weight `{w}`: a whole number 0..2147483647 is required"),
                );
                return None;
            }
        }
        tok = words.next();
    }
    if let Some(w) = &tok
        && w.starts_with('"')
    {
        let Some(req) = unquote_token(w) else {
            d.error(
                v.loc.clone(),
                format!("unterminated quote in real server line at `{w}`"),
            );
            return None;
        };
        let Some(recv_tok) = words.next() else {
            d.error(
                v.loc.clone(),
                "per-real request needs a receive string too: \"request\",\"receive\"",
            );
            return None;
        };
        let Some(recv) = unquote_token(&recv_tok) else {
            d.error(
                v.loc.clone(),
                format!("unterminated quote in real server line at `{recv_tok}`"),
            );
            return None;
        };
        r.check_override = Some(RequestReceive {
            request: with_slash(req),
            receive: pattern(&recv, &v.loc, d),
            url: None,
        });
        tok = words.next();
    }
    let mut saw_upper = false;
    while let Some(w) = tok {
        if let Some(n) = w.strip_prefix("l:") {
            let Ok(n) = n.parse::<u32>() else {
                d.error(v.loc.clone(), format!("invalid lower threshold `{w}`"));
                return None;
            };
            if saw_upper {
                d.warn(v.loc.clone(), format!("`{w}` is written after u:"))
                    .hint("ldirectord reads l: before u: and would have dropped the u: threshold");
            }
            r.lower_threshold = Some(n);
        } else if let Some(n) = w.strip_prefix("u:") {
            let Ok(n) = n.parse::<u32>() else {
                d.error(v.loc.clone(), format!("invalid upper threshold `{w}`"));
                return None;
            };
            saw_upper = true;
            r.upper_threshold = Some(n);
        } else {
            d.error(
                v.loc.clone(),
                format!("invalid real server line, around `{w}`"),
            )
            .hint(
                "after the forwarding method come [WEIGHT] [\"REQUEST\",\"RECEIVE\"] [l:N] [u:N]",
            );
            return None;
        }
        tok = words.next();
    }
    Some(r)
}

/// Splits on whitespace and on the comma between `"a","b"`, keeping quoted
/// strings (which may contain spaces) whole.
struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens { rest: s }
    }
}

impl Iterator for Tokens<'_> {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        let s = self
            .rest
            .trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        if let Some(body) = s.strip_prefix('"') {
            match body.find('"') {
                Some(i) => {
                    self.rest = &body[i + 1..];
                    Some(format!("\"{}\"", &body[..i]))
                }
                None => {
                    self.rest = "";
                    Some(s.to_string())
                }
            }
        } else {
            let end = s
                .find(|c: char| c.is_whitespace() || c == ',')
                .unwrap_or(s.len());
            self.rest = &s[end..];
            Some(s[..end].to_string())
        }
    }
}

fn unquote_token(t: &str) -> Option<String> {
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.to_string())
}

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

fn build_virtual(
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
        let Ok(over) = real_override(rd, &check, d) else {
            continue;
        };
        for r in expand_real(rd, over, key.is_ipv6(), names, d) {
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
fn plannable(vs: &VirtualService, vd: &VirtualDraft, d: &mut Diagnostics) {
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
                    d.error(at(), e);
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
                    d.error(at(), e).hint("check request= and virtualhost=");
                }
            }
            _ => {}
        }
    }
}

fn real_name(r: &RealServer) -> String {
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
        d.error(loc.clone(), format!("receive `{source}` is not a valid regular expression: {reason}"))
            .hint("lvsd uses Rust regex syntax (no look-around or back-references); escape literal characters such as `(` or `[` with `\\`");
        Pattern::default()
    })
}

/// A real's own request/receive, with its request read once as
/// ldirectord's per-real URL where an http(s) negotiate check fetches it
/// instead of the real. Err (already reported): a URL lvsd cannot check.
fn real_override(
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
        match super::real_url(check.service == Service::Https, &o.request) {
            Some(Ok(u)) => o.url = Some(u),
            Some(Err(e)) => {
                d.error(rd.loc.clone(), e).hint(
                    "write the URL with the address: \"http://10.0.0.5:8080/alive\", or a path",
                );
                return Err(());
            }
            None => {}
        }
    }
    Ok(Some(o))
}

fn expand_real(
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
}
