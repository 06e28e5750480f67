//! One directive's value read into its type (yes/no, numbers with their
//! bounds, addresses, the alert and smtp settings, fallback, the sync
//! daemon), each with its error at the value's line.

use super::*;

pub(super) fn yes_no(key: &str, v: &Value, d: &mut Diagnostics) -> Option<bool> {
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
pub(super) const MAX_SECONDS: u64 = 86_400;

/// The longest emailalertfreq or emailalertcoalesce.
pub(super) const MAX_ALERT_SECONDS: u64 = 365 * 86_400;

/// A positive whole number; ldirectord takes the first digits it finds, we
/// take a clean number and say so when there is more.
pub(super) fn number<T: TryFrom<u64>>(
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

pub(super) fn need_quotes(key: &str, v: &Value, d: &mut Diagnostics) {
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

pub(super) fn non_empty(key: &str, v: &Value, d: &mut Diagnostics) -> Option<String> {
    if v.text.is_empty() {
        d.error(v.loc.clone(), format!("{key} is empty"));
        None
    } else {
        Some(v.text.clone())
    }
}

pub(super) fn alert_status(v: &Value, d: &mut Diagnostics) -> Option<AlertStatus> {
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

pub(super) fn smtp_server(v: &Value, d: &mut Diagnostics) -> Option<crate::config::SmtpServer> {
    match crate::config::SmtpServer::parse(&v.text) {
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
pub(super) fn metrics_listen(v: &Value, d: &mut Diagnostics) -> Option<std::net::SocketAddr> {
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

pub(super) fn emailalert(v: &Value, d: &mut Diagnostics) -> Option<Vec<String>> {
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
pub(super) fn sync_daemon(v: &Value, d: &mut Diagnostics) -> Option<SyncDaemonSpec> {
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
