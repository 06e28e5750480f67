//! lvsd.toml and conf.d/*.toml: the same model in TOML.
//!
//! Every key is the ldirectord (or ha.cf) directive of the same name and is
//! handed to the same code that reads those files, so a directive means
//! exactly the same in both forms. `[global]` holds global directives,
//! each `[[virtual]]` one virtual service (`address = "ip:port"` or
//! `fwmark = N`, reals as ldirectord `real=` strings or as tables), and
//! `[failover]` the ha.cf directives plus `resources` (haresources lines) and
//! `authkeys` (the path of a heartbeat authkeys file, which stays 0600).
//! [`write`] prints a model in this form (`lvsd convert`).
//!
//! One room although it passes 800 lines: reading and [`write`] are the two
//! directions of one format and must change together (`convert` output
//! reads back to the same model, a property test holds it).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostics, Loc, did_you_mean};
use super::draft::{
    self, Draft, GLOBAL_DIRECTIVES, KeyDraft, VIRTUAL_DIRECTIVES, Value, VirtualDraft,
};
use super::heartbeat::{self, HaCfParser};
use super::model::*;
use super::names::Names;

/// The `[failover]` section as written: ha.cf lines, haresources lines and
/// the authkeys path, each with its location.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailoverDraft {
    /// Where `[failover]` was found (for whole-section errors).
    pub loc: Option<Loc>,
    pub hacf_lines: Vec<(String, Loc)>,
    pub resource_lines: Vec<(String, Loc)>,
    pub authkeys: Option<(String, Loc)>,
}

/// Byte offset → 1-based line and column.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    fn loc(&self, file: &Arc<str>, text: &str, offset: usize) -> Loc {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = text
            .get(start..offset.min(text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        Loc::new(
            file,
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    }
}

struct Ctx<'a> {
    file: &'a Arc<str>,
    text: &'a str,
    lines: Lines,
}

impl Ctx<'_> {
    fn at<T>(&self, s: &Spanned<T>) -> Loc {
        self.lines.loc(self.file, self.text, s.span().start)
    }
}

/// Reads one lvsd.toml (or conf.d drop-in) into `draft` and `failover`.
pub(crate) fn read(
    file: &Arc<str>,
    text: &str,
    names: &Names,
    draft: &mut Draft,
    failover: &mut FailoverDraft,
    d: &mut Diagnostics,
) {
    let cx = Ctx {
        file,
        text,
        lines: Lines::new(text),
    };
    let (root, errors) = DeTable::parse_recoverable(text);
    for e in &errors {
        let loc = e
            .span()
            .map_or_else(|| Loc::file(file), |s| cx.lines.loc(file, text, s.start));
        d.error(loc, format!("TOML syntax: {}", e.message().trim()));
    }
    if !errors.is_empty() {
        return;
    }
    for (k, v) in root.get_ref() {
        match k.get_ref().as_ref() {
            "global" => match v.get_ref() {
                DeValue::Table(t) => {
                    for (key, val) in t {
                        let kname = key.get_ref().as_ref();
                        if kname == "execute" {
                            for v in values(&cx, val, d) {
                                draft::set_global(&mut draft.global, kname, &v, names, d);
                            }
                            continue;
                        }
                        let Some(v) = value(&cx, kname, val, d) else {
                            continue;
                        };
                        if !draft::set_global(&mut draft.global, kname, &v, names, d) {
                            unknown(&cx, key, GLOBAL_DIRECTIVES, d);
                        }
                    }
                }
                _ => {
                    d.error(cx.at(k), "`global` must be a table: [global]");
                }
            },
            "virtual" => match v.get_ref() {
                DeValue::Array(a) => {
                    for item in a {
                        match item.get_ref() {
                            DeValue::Table(t) => {
                                if let Some(vd) = read_virtual(&cx, item, t, names, d) {
                                    draft.virtuals.push(vd);
                                }
                            }
                            _ => {
                                d.error(cx.at(item), "each virtual must be a table: [[virtual]]");
                            }
                        }
                    }
                }
                _ => {
                    d.error(
                        cx.at(k),
                        "`virtual` must be an array of tables: [[virtual]]",
                    );
                }
            },
            "failover" => match v.get_ref() {
                DeValue::Table(t) => read_failover(&cx, k, t, failover, d),
                _ => {
                    d.error(cx.at(k), "`failover` must be a table: [failover]");
                }
            },
            other => {
                let m = d.error(cx.at(k), format!("unknown section `{other}`"));
                if let Some(c) = did_you_mean(other, ["global", "virtual", "failover"]) {
                    m.hint(format!("did you mean `{c}`?"));
                } else {
                    m.hint("lvsd.toml has [global], [[virtual]] and [failover]");
                }
            }
        }
    }
}

fn unknown(
    cx: &Ctx<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    known: &[&str],
    d: &mut Diagnostics,
) {
    let name = key.get_ref().as_ref();
    let m = d.error(cx.at(key), format!("unknown directive `{name}`"));
    if let Some(c) = did_you_mean(name, known.iter().copied()) {
        m.hint(format!("did you mean `{c}`?"));
    }
}

/// A scalar TOML value as directive text: booleans become yes/no.
fn scalar(v: &DeValue<'_>, yes: &str, no: &str) -> Option<(String, bool)> {
    match v {
        DeValue::String(s) => Some((s.to_string(), true)),
        DeValue::Integer(i) => Some((i.as_str().replace('_', ""), false)),
        DeValue::Boolean(b) => Some(((if *b { yes } else { no }).to_string(), false)),
        DeValue::Float(f) => Some((f.as_str().to_string(), false)),
        _ => None,
    }
}

/// One directive value. `emailalert` may be a list.
fn value(cx: &Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>, d: &mut Diagnostics) -> Option<Value> {
    let loc = cx.at(v);
    if let DeValue::Array(a) = v.get_ref()
        && key == "emailalert"
    {
        let mut parts = Vec::new();
        for item in a {
            match item.get_ref() {
                DeValue::String(s) => parts.push(s.to_string()),
                _ => {
                    d.error(cx.at(item), "emailalert entries must be strings");
                    return None;
                }
            }
        }
        return Some(Value {
            text: parts.join(", "),
            quoted: true,
            loc,
        });
    }
    match scalar(v.get_ref(), "yes", "no") {
        Some((text, quoted)) => Some(Value { text, quoted, loc }),
        None => {
            d.error(loc, format!("`{key}` must be a string, number or boolean"));
            None
        }
    }
}

/// A value that may be one scalar or a list of them.
fn values(cx: &Ctx<'_>, v: &Spanned<DeValue<'_>>, d: &mut Diagnostics) -> Vec<Value> {
    let items: Vec<&Spanned<DeValue<'_>>> = match v.get_ref() {
        DeValue::Array(a) => a.into_iter().collect(),
        _ => vec![v],
    };
    let mut out = Vec::new();
    for it in items {
        match scalar(it.get_ref(), "on", "off") {
            Some((text, quoted)) => out.push(Value {
                text,
                quoted,
                loc: cx.at(it),
            }),
            None => {
                d.error(cx.at(it), "expected a string, number or boolean");
            }
        }
    }
    out
}

fn read_virtual(
    cx: &Ctx<'_>,
    at: &Spanned<DeValue<'_>>,
    t: &DeTable<'_>,
    names: &Names,
    d: &mut Diagnostics,
) -> Option<VirtualDraft> {
    let get = |k: &str| {
        t.iter()
            .find(|(key, _)| key.get_ref().as_ref() == k)
            .map(|(_, v)| v)
    };
    let ipv6_flag = match get("ipv6").map(|v| v.get_ref()) {
        Some(DeValue::Boolean(b)) => *b,
        Some(_) => {
            if let Some(v) = get("ipv6") {
                d.error(cx.at(v), "ipv6 must be true or false");
            }
            false
        }
        None => false,
    };
    let (key, ipv6, key_loc) = match (get("address"), get("fwmark")) {
        (Some(a), None) => {
            let Some(DeValue::String(s)) = Some(a.get_ref()) else {
                d.error(
                    cx.at(a),
                    "address must be a string such as \"192.0.2.1:80\" or \"[2001:db8::1]:80\"",
                );
                return None;
            };
            let v6 = s.starts_with('[');
            let (host, port) = draft::split_host_port(s);
            match port {
                Some(p) if !p.is_empty() && !host.is_empty() => (
                    KeyDraft::Address {
                        host: host.to_string(),
                        port: p.to_string(),
                    },
                    v6,
                    cx.at(a),
                ),
                _ => {
                    d.error(
                        cx.at(a),
                        format!("invalid address for virtual server `{s}`: no port"),
                    )
                    .hint("write ADDRESS:PORT, or use fwmark = N");
                    return None;
                }
            }
        }
        (None, Some(f)) => match f.get_ref() {
            DeValue::Integer(i) => match i.as_str().replace('_', "").parse::<u32>() {
                Ok(m) if m > 0 => (KeyDraft::Fwmark(m), ipv6_flag, cx.at(f)),
                _ => {
                    d.error(
                        cx.at(f),
                        format!("invalid fwmark `{}`: must be 1..4294967295", i.as_str()),
                    );
                    return None;
                }
            },
            _ => {
                d.error(cx.at(f), "fwmark must be a number");
                return None;
            }
        },
        (Some(_), Some(f)) => {
            d.error(cx.at(f), "a virtual has either address or fwmark, not both");
            return None;
        }
        (None, None) => {
            d.error(cx.at(at), "virtual has neither address nor fwmark");
            return None;
        }
    };
    let mut vd = VirtualDraft::new(key_loc, ipv6);
    vd.key = Some(key);
    for (k, v) in t {
        let name = k.get_ref().as_ref();
        match name {
            "address" | "fwmark" | "ipv6" => {}
            "real" | "real6" => {
                let items: Vec<&Spanned<DeValue<'_>>> = match v.get_ref() {
                    DeValue::Array(a) => a.into_iter().collect(),
                    _ => vec![v],
                };
                for it in items {
                    if let Some(r) = real(cx, it, ipv6, d) {
                        vd.reals.push(r);
                    }
                }
            }
            _ => {
                let Some(val) = value(cx, name, v, d) else {
                    continue;
                };
                if !draft::set_virtual(&mut vd, name, &val, names, d) {
                    unknown(cx, k, VIRTUAL_DIRECTIVES, d);
                }
            }
        }
    }
    Some(vd)
}

/// A real as an ldirectord string or as a table.
fn real(
    cx: &Ctx<'_>,
    it: &Spanned<DeValue<'_>>,
    ipv6: bool,
    d: &mut Diagnostics,
) -> Option<draft::RealDraft> {
    let loc = cx.at(it);
    match it.get_ref() {
        DeValue::String(s) => draft::parse_real(
            &Value {
                text: s.to_string(),
                quoted: true,
                loc,
            },
            ipv6,
            d,
        ),
        DeValue::Table(t) => {
            const KEYS: [&str; 7] = [
                "address",
                "forward",
                "weight",
                "request",
                "receive",
                "lower_threshold",
                "upper_threshold",
            ];
            let mut address = None;
            let mut forward = "gate".to_string();
            let mut weight = None;
            let (mut request, mut receive) = (None, None);
            let (mut lower, mut upper) = (None, None);
            for (k, v) in t {
                let name = k.get_ref().as_ref();
                let text = scalar(v.get_ref(), "yes", "no").map(|s| s.0);
                match (name, text) {
                    ("address", Some(s)) => address = Some(s),
                    ("forward", Some(s)) => forward = s,
                    ("weight", Some(s)) => weight = Some((s, cx.at(v))),
                    ("request", Some(s)) => request = Some(s),
                    ("receive", Some(s)) => receive = Some(s),
                    ("lower_threshold", Some(s)) => lower = Some(s),
                    ("upper_threshold", Some(s)) => upper = Some(s),
                    (n, _) if KEYS.contains(&n) => {
                        d.error(cx.at(v), format!("`{n}` must be a string or number"));
                        return None;
                    }
                    (n, _) => {
                        unknown(cx, k, &KEYS, d);
                        let _ = n;
                    }
                }
            }
            let Some(address) = address else {
                d.error(loc, "real has no address");
                return None;
            };
            let mut line = format!("{address} {forward}");
            if let Some((w, wloc)) = &weight {
                if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
                    d.error(
                        wloc.clone(),
                        format!("invalid weight `{w}`: a whole number 0..2147483647 is required"),
                    );
                    return None;
                }
                line.push(' ');
                line.push_str(w);
            }
            for (p, v) in [("l:", &lower), ("u:", &upper)] {
                if let Some(v) = v {
                    line.push_str(&format!(" {p}{v}"));
                }
            }
            let mut r = draft::parse_real(
                &Value {
                    text: line,
                    quoted: true,
                    loc: loc.clone(),
                },
                ipv6,
                d,
            )?;
            match (request, receive) {
                (Some(req), Some(recv)) => {
                    r.check_override = Some(RequestReceive {
                        request: draft::with_slash(req),
                        receive: draft::pattern(&recv, &loc, d),
                        url: None,
                    });
                }
                (None, None) => {}
                _ => {
                    d.error(
                        loc,
                        "a real's request and receive go together: set both or neither",
                    );
                    return None;
                }
            }
            Some(r)
        }
        _ => {
            d.error(
                loc,
                "a real is a string (\"10.0.0.2:80 gate 1\") or a table",
            );
            None
        }
    }
}

fn read_failover(
    cx: &Ctx<'_>,
    at: &Spanned<std::borrow::Cow<'_, str>>,
    t: &DeTable<'_>,
    f: &mut FailoverDraft,
    d: &mut Diagnostics,
) {
    f.loc = Some(cx.at(at));
    for (k, v) in t {
        let name = k.get_ref().as_ref();
        match name {
            "resources" => {
                for val in values(cx, v, d) {
                    f.resource_lines.push((val.text, val.loc));
                }
            }
            "authkeys" => match v.get_ref() {
                DeValue::String(s) => f.authkeys = Some((s.to_string(), cx.at(v))),
                _ => {
                    d.error(
                        cx.at(v),
                        "authkeys is the path of a heartbeat authkeys file (mode 0600)",
                    );
                }
            },
            _ => {
                for val in values(cx, v, d) {
                    f.hacf_lines.push((format!("{name} {}", val.text), val.loc));
                }
            }
        }
    }
}

/// Turns a `[failover]` section into the model, with heartbeat's rules.
pub(crate) fn build_failover(
    f: &FailoverDraft,
    file: &Arc<str>,
    names: &Names,
    d: &mut Diagnostics,
) -> Option<Failover> {
    let loc = f.loc.clone()?;
    let mut p = HaCfParser::new(names);
    // In file order, as heartbeat reads ha.cf (udpport applies to the
    // media after it): the TOML table hands its keys over sorted.
    let mut files: Vec<&Arc<str>> = Vec::new();
    for (_, l) in &f.hacf_lines {
        if !files.contains(&&l.file) {
            files.push(&l.file);
        }
    }
    let mut lines: Vec<&(String, Loc)> = f.hacf_lines.iter().collect();
    lines.sort_by_key(|(_, l)| (files.iter().position(|x| **x == l.file), l.line, l.column));
    for (line, l) in lines {
        p.line(line, l.clone(), d);
    }
    let ha = p.finish(loc.clone(), d);
    let resources = f
        .resource_lines
        .iter()
        .filter_map(|(line, l)| heartbeat::resource_line(line, l.clone(), names, d))
        .collect();
    let Some((path, ploc)) = &f.authkeys else {
        d.error(loc, "[failover] needs authkeys = \"/path/to/authkeys\"")
            .hint("a heartbeat authkeys file: `auth 1` and `1 sha1 SECRET`, mode 0600");
        return None;
    };
    // A relative path is relative to the file that names it.
    let path = Path::new(path);
    let path = match Path::new(&**file).parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    let authkeys = read_authkeys(&path, ploc, d)?;
    let fo = Failover {
        ha,
        resources,
        authkeys,
    };
    heartbeat::check_failover(&fo, file, d);
    Some(fo)
}

fn read_authkeys(path: &Path, at: &Loc, d: &mut Diagnostics) -> Option<AuthKeys> {
    use std::os::unix::fs::PermissionsExt;
    let name: Arc<str> = path.display().to_string().into();
    match super::file::read_text(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path).ok().map(|m| m.permissions().mode());
            heartbeat::parse_authkeys(&name, path, &text, mode, d)
        }
        Err(e) => {
            d.error(at.clone(), format!("authkeys {}: {e}", path.display()));
            None
        }
    }
}

// ------------------------------------------------------------------ writer

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn host_port(a: IpAddr, port: u16) -> String {
    match (a, port) {
        (IpAddr::V6(a), 0) => format!("[{a}]"),
        (IpAddr::V6(a), p) => format!("[{a}]:{p}"),
        (a, 0) => a.to_string(),
        (a, p) => format!("{a}:{p}"),
    }
}

fn yn(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn fallback_spec(address: IpAddr, port: Option<u16>, fwd: Forward) -> String {
    // Unlike a real's, a fallback's port 0 is written out: no port means
    // "the virtual's port".
    let a = match (address, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => host_port(a, 0),
    };
    format!("{a} {}", fwd.as_str())
}

/// Prints `cfg` as lvsd.toml. Reading the result back gives the same model.
pub fn write(cfg: &Config) -> String {
    let mut o = String::new();
    let g = &cfg.global;
    o.push_str("# lvsd.toml: written by `lvsd convert`. Every value is explicit.\n\n[global]\n");
    let _ = writeln!(o, "checkinterval = {}", g.checkinterval);
    if let Some(t) = g.checktimeout {
        let _ = writeln!(o, "checktimeout = {t}");
    }
    if let Some(t) = g.negotiatetimeout {
        let _ = writeln!(o, "negotiatetimeout = {t}");
    }
    // Deprecated (a warning when read); written only when it means
    // something (the echo requests of a ping check).
    if g.checkcount != 1 {
        let _ = writeln!(o, "checkcount = {}", g.checkcount);
    }
    let _ = writeln!(o, "failurecount = {}", g.failurecount);
    let _ = writeln!(o, "risecount = {}", g.risecount);
    let _ = writeln!(o, "autoreload = {}", yn(g.autoreload));
    if let Some(c) = &g.callback {
        let _ = writeln!(o, "callback = {}", q(c));
    }
    if let Some(f) = &g.fallback {
        let _ = writeln!(
            o,
            "fallback = {}",
            q(&fallback_spec(f.address, f.port, f.forward))
        );
    }
    if let Some(f) = &g.fallback6 {
        let _ = writeln!(
            o,
            "fallback6 = {}",
            q(&fallback_spec(f.address, f.port, f.forward))
        );
    }
    if let Some(c) = &g.fallbackcommand {
        let _ = writeln!(o, "fallbackcommand = {}", q(c));
    }
    if let Some(l) = &g.logfile {
        let log = match l {
            LogTarget::File(p) => p.display().to_string(),
            LogTarget::Syslog(f) => f.name().to_owned(),
        };
        let _ = writeln!(o, "logfile = {}", q(&log));
    }
    write_alerts(&mut o, &g.alerts);
    let _ = writeln!(o, "emailalertcoalesce = {}", g.emailalertcoalesce);
    if let Some(f) = &g.emailalertfrom {
        let _ = writeln!(o, "emailalertfrom = {}", q(f));
    }
    if !g.execute.is_empty() {
        let list: Vec<String> = g.execute.iter().map(|e| q(e)).collect();
        let _ = writeln!(o, "execute = [{}]", list.join(", "));
    }
    let _ = writeln!(o, "supervised = {}", yn(g.supervised));
    let _ = writeln!(o, "fork = {}", yn(g.fork));
    let _ = writeln!(o, "quiescent = {}", yn(g.quiescent));
    let _ = writeln!(o, "readdquiescent = {}", yn(g.readdquiescent));
    let _ = writeln!(o, "cleanstop = {}", yn(g.cleanstop));
    if let Some(m) = &g.maintenancedir {
        let _ = writeln!(o, "maintenancedir = {}", q(&m.display().to_string()));
    }
    if let Some(m) = &g.metrics {
        let _ = writeln!(o, "metrics = {}", q(&m.to_string()));
    }
    if let Some(s) = &g.lvs_sync_daemon {
        let _ = writeln!(
            o,
            "lvs_sync_daemon = {}",
            q(&format!("{} id {}", s.interface, s.sync_id))
        );
    }

    for v in &cfg.virtuals {
        write_virtual(&mut o, v, g);
    }
    if let Some(f) = &cfg.failover {
        write_failover(&mut o, f);
    }
    o
}

fn write_alerts(o: &mut String, a: &Alerts) {
    if !a.emailalert.is_empty() {
        let list: Vec<String> = a.emailalert.iter().map(|e| q(e)).collect();
        let _ = writeln!(o, "emailalert = [{}]", list.join(", "));
    }
    let _ = writeln!(o, "emailalertfreq = {}", a.emailalertfreq);
    let _ = writeln!(
        o,
        "emailalertstatus = {}",
        q(&a.emailalertstatus.to_ldirectord())
    );
    if let Some(s) = &a.smtp {
        let _ = writeln!(o, "smtp = {}", q(&s.spec));
    }
}

fn write_virtual(o: &mut String, v: &VirtualService, g: &Global) {
    o.push_str("\n[[virtual]]\n");
    match v.key {
        VirtualKey::Address {
            address,
            port,
            protocol,
        } => {
            let _ = writeln!(o, "address = {}", q(&host_port(address, port)));
            let _ = writeln!(o, "protocol = {}", q(protocol.as_str()));
        }
        VirtualKey::Fwmark { fwmark, ipv6 } => {
            let _ = writeln!(o, "fwmark = {fwmark}");
            if ipv6 {
                o.push_str("ipv6 = true\n");
            }
        }
    }
    let _ = writeln!(o, "scheduler = {}", q(&v.scheduler));
    if let Some(p) = v.persistent {
        let _ = writeln!(o, "persistent = {p}");
    }
    if let Some(n) = v.netmask {
        match n {
            Netmask::V4(m) => {
                let _ = writeln!(o, "netmask = {}", q(&m.to_string()));
            }
            Netmask::V6(p) => {
                let _ = writeln!(o, "netmask = {p}");
            }
        }
    }
    if let Some(s) = &v.schedflags {
        let _ = writeln!(o, "schedflags = {}", q(s));
    }
    if v.ops {
        o.push_str("ops = true\n");
    }
    for (k, val) in [("servicename", &v.servicename), ("comment", &v.comment)] {
        if let Some(s) = val {
            let _ = writeln!(o, "{k} = {}", q(s));
        }
    }
    let c = &v.check;
    let _ = writeln!(o, "checktype = {}", q(&c.checktype.to_ldirectord()));
    let _ = writeln!(o, "service = {}", q(c.service.as_str()));
    if let Some(p) = c.checkport {
        let _ = writeln!(o, "checkport = {p}");
    }
    let _ = writeln!(o, "request = {}", q(&c.request));
    for (k, s) in [
        ("receive", c.receive.as_str()),
        ("login", c.login.as_str()),
        ("passwd", c.passwd.as_str()),
        ("database", c.database.as_str()),
        ("secret", c.secret.as_str()),
    ] {
        if !s.is_empty() {
            let _ = writeln!(o, "{k} = {}", q(s));
        }
    }
    if let Some(h) = &c.virtualhost {
        let _ = writeln!(o, "virtualhost = {}", q(h));
    }
    if c.verifycert {
        let _ = writeln!(o, "verifycert = true");
    }
    let _ = writeln!(o, "httpmethod = {}", q(c.httpmethod.as_str()));
    if c.checkcommand != "/bin/true"
        || matches!(c.checktype, CheckType::External | CheckType::ExternalPerl)
    {
        let _ = writeln!(o, "checkcommand = {}", q(&c.checkcommand));
    }
    let _ = writeln!(o, "checktimeout = {}", c.checktimeout);
    let _ = writeln!(o, "negotiatetimeout = {}", c.negotiatetimeout);
    if g.fork && c.checkinterval != g.checkinterval {
        let _ = writeln!(o, "checkinterval = {}", c.checkinterval);
    }
    if c.checkcount != g.checkcount {
        let _ = writeln!(o, "checkcount = {}", c.checkcount);
    }
    let _ = writeln!(o, "failurecount = {}", c.failurecount);
    let _ = writeln!(o, "risecount = {}", c.risecount);
    let _ = writeln!(o, "quiescent = {}", yn(v.quiescent));
    let _ = writeln!(o, "cleanstop = {}", yn(v.cleanstop));
    if let Some(f) = &v.fallback {
        let key = if v.key.is_ipv6() {
            "fallback6"
        } else {
            "fallback"
        };
        let _ = writeln!(
            o,
            "{key} = {}",
            q(&fallback_spec(f.address, Some(f.port), f.forward))
        );
    }
    if let Some(c) = &v.fallbackcommand {
        let _ = writeln!(o, "fallbackcommand = {}", q(c));
    }
    write_alerts(o, &v.alerts);
    if let Some(m) = &v.monitorfile {
        let _ = writeln!(o, "monitorfile = {}", q(&m.display().to_string()));
    }
    o.push_str("real = [\n");
    for r in &v.reals {
        let mut parts = vec![
            format!("address = {}", q(&host_port(r.address, r.port))),
            format!("forward = {}", q(r.forward.as_str())),
            format!("weight = {}", r.weight),
        ];
        if let Some(l) = r.lower_threshold {
            parts.push(format!("lower_threshold = {l}"));
        }
        if let Some(u) = r.upper_threshold {
            parts.push(format!("upper_threshold = {u}"));
        }
        if let Some(rr) = &r.check_override {
            parts.push(format!("request = {}", q(&rr.request)));
            parts.push(format!("receive = {}", q(rr.receive.as_str())));
        }
        let _ = writeln!(o, "  {{ {} }},", parts.join(", "));
    }
    o.push_str("]\n");
}

fn ms(v: u64) -> String {
    q(&format!("{v}ms"))
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| q(&s)).collect();
    format!("[{}]", v.join(", "))
}

fn write_failover(o: &mut String, f: &Failover) {
    let h = &f.ha;
    o.push_str("\n[failover]\n");
    for (k, v) in [
        ("keepalive", h.keepalive_ms),
        ("deadtime", h.deadtime_ms),
        ("warntime", h.warntime_ms),
        ("initdead", h.initdead_ms),
        ("deadping", h.deadping_ms),
    ] {
        let _ = writeln!(o, "{k} = {}", ms(v));
    }
    let _ = writeln!(o, "udpport = {}", h.udpport);
    let (mut bcast, mut mcast, mut mcast6, mut ucast, mut ucast6, mut serial) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for m in &h.media {
        match m {
            Medium::Bcast { interface, .. } => bcast.push(interface.clone()),
            Medium::Mcast {
                interface,
                group,
                port,
                ttl,
                loopback,
            } => {
                let line = format!("{interface} {group} {port} {ttl} {}", u8::from(*loopback));
                if group.is_ipv6() {
                    mcast6.push(line)
                } else {
                    mcast.push(line)
                }
            }
            Medium::Ucast {
                interface, peer, ..
            } => {
                let line = format!("{interface} {peer}");
                if peer.is_ipv6() {
                    ucast6.push(line)
                } else {
                    ucast.push(line)
                }
            }
            Medium::Serial { device, .. } => serial.push(device.clone()),
        }
    }
    for (k, v) in [
        ("bcast", bcast),
        ("mcast", mcast),
        ("mcast6", mcast6),
        ("ucast", ucast),
        ("ucast6", ucast6),
        ("serial", serial),
    ] {
        if !v.is_empty() {
            let _ = writeln!(o, "{k} = {}", list(v));
        }
    }
    let _ = writeln!(o, "node = {}", list(h.nodes.clone()));
    if h.autojoin != "none" {
        let _ = writeln!(o, "autojoin = {}", q(&h.autojoin));
    }
    let af = match h.auto_failback {
        AutoFailback::On => "on",
        AutoFailback::Off => "off",
        AutoFailback::Legacy => "legacy",
    };
    let _ = writeln!(o, "auto_failback = {}", q(af));
    let (ping4, ping6): (Vec<IpAddr>, Vec<IpAddr>) = h.ping.iter().partition(|a| a.is_ipv4());
    if !ping4.is_empty() {
        let _ = writeln!(o, "ping = {}", list(ping4.iter().map(|a| a.to_string())));
    }
    if !ping6.is_empty() {
        let _ = writeln!(o, "ping6 = {}", list(ping6.iter().map(|a| a.to_string())));
    }
    if !h.ping_groups.is_empty() {
        let groups = h.ping_groups.iter().map(|g| {
            let addrs: Vec<String> = g.addresses.iter().map(|a| a.to_string()).collect();
            format!("{} {}", g.name, addrs.join(" "))
        });
        let _ = writeln!(o, "ping_group = {}", list(groups));
    }
    if !h.respawn.is_empty() {
        let _ = writeln!(
            o,
            "respawn = {}",
            list(
                h.respawn
                    .iter()
                    .map(|r| format!("{} {}", r.user, r.command))
            )
        );
    }
    if !h.apiauth.is_empty() {
        let lines = h.apiauth.iter().map(|a| {
            let mut s = a.service.clone();
            if !a.uid.is_empty() {
                s.push_str(&format!(" uid={}", a.uid.join(",")));
            }
            if !a.gid.is_empty() {
                s.push_str(&format!(" gid={}", a.gid.join(",")));
            }
            s
        });
        let _ = writeln!(o, "apiauth = {}", list(lines));
    }
    if let Some(f) = &h.logfacility {
        let _ = writeln!(o, "logfacility = {}", q(f));
    }
    for (k, p) in [
        ("logfile", &h.logfile),
        ("debugfile", &h.debugfile),
        ("watchdog", &h.watchdog),
    ] {
        if let Some(p) = p {
            let _ = writeln!(o, "{k} = {}", q(&p.display().to_string()));
        }
    }
    let _ = writeln!(o, "use_logd = {}", q(if h.use_logd { "yes" } else { "no" }));
    let _ = writeln!(o, "debug = {}", h.debug);
    let _ = writeln!(o, "realtime = {}", q(if h.realtime { "on" } else { "off" }));
    let mut others: Vec<(&str, Vec<String>)> = Vec::new();
    for (k, v) in &h.other {
        match others.iter_mut().find(|(n, _)| n == k) {
            Some((_, vs)) => vs.push(v.clone()),
            None => others.push((k, vec![v.clone()])),
        }
    }
    for (k, vs) in others {
        let _ = writeln!(o, "{k} = {}", list(vs));
    }
    let groups = f.resources.iter().map(|g| {
        let mut s = g.node.clone();
        for r in &g.resources {
            s.push(' ');
            s.push_str(&resource_string(r));
        }
        s
    });
    let _ = writeln!(o, "resources = {}", list(groups));
    let _ = writeln!(
        o,
        "authkeys = {}",
        q(&f.authkeys.path.display().to_string())
    );
}

/// A resource in haresources syntax.
pub(crate) fn resource_string(r: &Resource) -> String {
    match r {
        Resource::Ip(v) => {
            let mut s = format!("{}::{}", v.agent, v.address);
            let parts = [
                v.prefix.map(|p| p.to_string()),
                v.interface.clone(),
                v.broadcast.map(|b| b.to_string()),
            ];
            // haresources fields are positional: write up to the last one set.
            let last = parts.iter().rposition(Option::is_some);
            if let Some(last) = last {
                for p in &parts[..=last] {
                    s.push('/');
                    s.push_str(p.as_deref().unwrap_or(""));
                }
            }
            s
        }
        Resource::Ldirectord { config: Some(c) } => format!("ldirectord::{c}"),
        Resource::Ldirectord { config: None } => "ldirectord".into(),
        Resource::Other { script, args } => {
            let mut s = script.clone();
            for a in args {
                s.push_str("::");
                s.push_str(a);
            }
            s
        }
    }
}
