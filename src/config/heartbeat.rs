//! Readers for heartbeat 3's ha.cf, haresources and authkeys, with
//! heartbeat's units (`500ms`; a plain number is seconds), defaults and
//! checks (config.c, auth.c): deadtime > 2×keepalive, initdead ≥ deadtime,
//! at least one node and one medium, authkeys not readable by others, and
//! haresources nodes that ha.cf knows.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostic::{Diagnostics, Loc, did_you_mean};
use super::model::*;
use super::names::Names;

/// Directives heartbeat knows that lvsd keeps as written (`HaCf::other`).
const KEPT: &[&str] = &[
    "baud",
    "hopfudge",
    "msgfmt",
    "compression",
    "compression_threshold",
    "traditional_compression",
    "coredumps",
    "coreroot",
    "uuidfrom",
    "hbgenmethod",
    "rtprio",
    "conn_logd_time",
    "stonith",
    "stonith_host",
    "failfast",
    "cluster",
    "quorum_server",
    "env",
    "max_rexmit_delay",
    "memreserve",
    "log_badpack",
    "syslogmsgfmt",
    "use_apphbd",
    "crm_daemon_dir",
    "crmd_spawns_pengine",
    "record_config_changes",
    "record_pengine_inputs",
    "enable_config_writes",
    "hbaping",
];

const KNOWN: &[&str] = &[
    "keepalive",
    "deadtime",
    "warntime",
    "initdead",
    "deadping",
    "udpport",
    "bcast",
    "mcast",
    "mcast6",
    "ucast",
    "ucast6",
    "serial",
    "node",
    "autojoin",
    "auto_failback",
    "nice_failback",
    "ping",
    "ping6",
    "ping_group",
    "respawn",
    "apiauth",
    "crm",
    "pacemaker",
    "logfacility",
    "logfile",
    "debugfile",
    "use_logd",
    "debug",
    "realtime",
    "watchdog",
];

/// Builds an [`HaCf`] from directive lines (ha.cf, or lvsd.toml's `[failover]`).
pub struct HaCfParser {
    names: Names,
    keepalive: Option<u64>,
    deadtime: Option<(u64, Loc)>,
    warntime: Option<(u64, Loc)>,
    initdead: Option<(u64, Loc)>,
    deadping: Option<(u64, Loc)>,
    udpport: u16,
    udpport_loc: Option<Loc>,
    baud: u32,
    media: Vec<Medium>,
    media_seen: bool,
    nodes: Vec<String>,
    autojoin: String,
    auto_failback: Option<AutoFailback>,
    ping: Vec<IpAddr>,
    ping_groups: Vec<PingGroup>,
    respawn: Vec<Respawn>,
    apiauth: Vec<ApiAuth>,
    crm: bool,
    logfacility: Option<String>,
    logfile: Option<PathBuf>,
    debugfile: Option<PathBuf>,
    use_logd: bool,
    debug: u8,
    realtime: bool,
    watchdog: Option<PathBuf>,
    other: Vec<(String, String)>,
}

/// A heartbeat time: plain number = seconds (fractions allowed), `NNNms`.
fn time_ms(text: &str) -> Option<u64> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse::<u64>().ok();
    }
    let secs: f64 = text.parse().ok()?;
    (secs.is_finite() && (0.0..1e9).contains(&secs)).then(|| (secs * 1000.0).round() as u64)
}

fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Column (1-based) of the `n`th whitespace-separated word of `line`.
fn word_col(line: &str, n: usize) -> u32 {
    let mut idx = 0;
    let mut count = 0;
    let mut in_word = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            in_word = true;
            if count == n {
                idx = i;
                break;
            }
            count += 1;
        }
    }
    u32::try_from(line[..idx].chars().count() + 1).unwrap_or(1)
}

impl HaCfParser {
    /// An empty ha.cf.
    pub fn new(names: &Names) -> Self {
        HaCfParser {
            names: names.clone(),
            keepalive: None,
            deadtime: None,
            warntime: None,
            initdead: None,
            deadping: None,
            udpport: names.port("ha-cluster", "udp").unwrap_or(694),
            udpport_loc: None,
            baud: 19200,
            media: Vec::new(),
            media_seen: false,
            nodes: Vec::new(),
            autojoin: "none".into(),
            auto_failback: None,
            ping: Vec::new(),
            ping_groups: Vec::new(),
            respawn: Vec::new(),
            apiauth: Vec::new(),
            crm: false,
            logfacility: None,
            logfile: None,
            debugfile: None,
            use_logd: false,
            debug: 0,
            realtime: true,
            watchdog: None,
            other: Vec::new(),
        }
    }

    /// One ha.cf line; `loc` is where the line starts (its column, that of
    /// the directive). Comments (`#` to end of line) are removed here.
    pub fn line(&mut self, text: &str, loc: Loc, d: &mut Diagnostics) {
        let body = text.split('#').next().unwrap_or("").trim_end();
        let lead = body.len() - body.trim_start().len();
        let body = body.trim_start();
        if body.is_empty() {
            return;
        }
        let base = loc.column.max(1) + u32::try_from(lead).unwrap_or(0);
        let at = |n: usize| Loc::new(&loc.file, loc.line, base + word_col(body, n) - 1);
        let words: Vec<&str> = body.split_whitespace().collect();
        let key = words[0];
        let args = &words[1..];
        let rest = body[key.len()..].trim();
        let need = |n: usize, d: &mut Diagnostics| -> bool {
            if args.len() < n {
                d.error(
                    at(0),
                    format!("{key} needs {n} argument{}", if n == 1 { "" } else { "s" }),
                );
                false
            } else {
                true
            }
        };
        match key {
            "keepalive" | "deadtime" | "warntime" | "initdead" | "deadping" => {
                if !need(1, d) {
                    return;
                }
                let Some(ms) = time_ms(args[0]) else {
                    d.error(at(1), format!("invalid {key} `{}`", args[0]))
                        .hint("a time is seconds (`2`, `0.5`) or milliseconds (`500ms`)");
                    return;
                };
                if ms == 0 {
                    d.error(at(1), format!("{key} must be more than 0"));
                    return;
                }
                let v = Some((ms, at(1)));
                match key {
                    "keepalive" => self.keepalive = Some(ms),
                    "deadtime" => self.deadtime = v,
                    "warntime" => self.warntime = v,
                    "initdead" => self.initdead = v,
                    _ => self.deadping = v,
                }
            }
            "udpport" => {
                if !need(1, d) {
                    return;
                }
                match args[0].parse::<u16>() {
                    Ok(p) if p > 0 => {
                        if self.media_seen {
                            d.warn(
                                at(0),
                                "udpport after a medium applies only to the media written after it",
                            )
                            .hint("heartbeat reads ha.cf in order; put udpport before bcast/ucast");
                        }
                        self.udpport = p;
                        self.udpport_loc = Some(at(0));
                    }
                    _ => {
                        d.error(
                            at(1),
                            format!("invalid udpport `{}`: must be 1..65535", args[0]),
                        );
                    }
                }
            }
            "baud" => {
                if need(1, d) {
                    match args[0].parse::<u32>() {
                        Ok(b) => self.baud = b,
                        Err(_) => {
                            d.error(at(1), format!("invalid baud `{}`", args[0]));
                        }
                    }
                    self.other.push((key.into(), rest.into()));
                }
            }
            "bcast" => {
                if need(1, d) {
                    self.media_seen = true;
                    for i in args {
                        self.media.push(Medium::Bcast {
                            interface: (*i).into(),
                            port: self.udpport,
                        });
                    }
                }
            }
            "mcast" | "mcast6" => {
                if !need(5, d) {
                    return;
                }
                self.media_seen = true;
                let v6 = key == "mcast6";
                let group = match args[1].parse::<IpAddr>() {
                    Ok(a) if a.is_multicast() && a.is_ipv6() == v6 => a,
                    _ => {
                        d.error(
                            at(2),
                            format!(
                                "invalid {key} group `{}`: not an IPv{} multicast address",
                                args[1],
                                if v6 { 6 } else { 4 }
                            ),
                        );
                        return;
                    }
                };
                let Ok(port) = args[2].parse::<u16>() else {
                    d.error(at(3), format!("invalid {key} port `{}`", args[2]));
                    return;
                };
                let Ok(ttl) = args[3].parse::<u8>() else {
                    d.error(
                        at(4),
                        format!("invalid {key} ttl `{}`: must be 0..255", args[3]),
                    );
                    return;
                };
                let loopback = match args[4] {
                    "0" => false,
                    "1" => true,
                    other => {
                        d.error(
                            at(5),
                            format!("invalid {key} loop `{other}`: must be 0 or 1"),
                        );
                        return;
                    }
                };
                self.media.push(Medium::Mcast {
                    interface: args[0].into(),
                    group,
                    port,
                    ttl,
                    loopback,
                });
            }
            "ucast" | "ucast6" => {
                if !need(2, d) {
                    return;
                }
                self.media_seen = true;
                let v6 = key == "ucast6";
                let Some(peer) = self.names.host(args[1], v6) else {
                    d.error(
                        at(2),
                        format!(
                            "invalid {key} peer `{}`: not an IPv{} address or known host",
                            args[1],
                            if v6 { 6 } else { 4 }
                        ),
                    );
                    return;
                };
                self.media.push(Medium::Ucast {
                    interface: args[0].into(),
                    peer,
                    port: self.udpport,
                });
            }
            "serial" => {
                if need(1, d) {
                    self.media_seen = true;
                    d.warn(
                        at(0),
                        "serial links are not supported by lvsd; this medium is ignored",
                    )
                    .hint("use bcast, mcast or ucast");
                    for dev in args {
                        self.media.push(Medium::Serial {
                            device: (*dev).into(),
                            baud: self.baud,
                        });
                    }
                }
            }
            "node" => {
                if need(1, d) {
                    for n in args {
                        if !self.nodes.iter().any(|x| x == n) {
                            self.nodes.push((*n).into());
                        }
                    }
                }
            }
            "autojoin" => {
                if need(1, d) {
                    match args[0] {
                        "none" | "other" | "any" => self.autojoin = args[0].into(),
                        o => {
                            d.error(
                                at(1),
                                format!("invalid autojoin `{o}`: must be none, other or any"),
                            );
                        }
                    }
                }
            }
            "auto_failback" | "nice_failback" => {
                if !need(1, d) {
                    return;
                }
                let v = if args[0].eq_ignore_ascii_case("legacy") {
                    Some(AutoFailback::Legacy)
                } else {
                    boolean(args[0]).map(|b| {
                        // nice_failback on == auto_failback off.
                        if (key == "auto_failback") == b {
                            AutoFailback::On
                        } else {
                            AutoFailback::Off
                        }
                    })
                };
                match v {
                    Some(v) => {
                        if key == "nice_failback" {
                            d.warn(at(0), "nice_failback is obsolete").hint(format!(
                                "write auto_failback {}",
                                if v == AutoFailback::On { "on" } else { "off" }
                            ));
                        }
                        self.auto_failback = Some(v);
                    }
                    None => {
                        d.error(
                            at(1),
                            format!("invalid {key} `{}`: must be on, off or legacy", args[0]),
                        );
                    }
                }
            }
            "ping" | "ping6" => {
                if need(1, d) {
                    for (i, a) in args.iter().enumerate() {
                        match self.names.host(a, key == "ping6") {
                            Some(ip) => self.ping.push(ip),
                            None => {
                                d.error(
                                    at(i + 1),
                                    format!(
                                        "invalid {key} node `{a}`: not an address or known host"
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            "ping_group" => {
                if need(2, d) {
                    let mut addresses = Vec::new();
                    for (i, a) in args[1..].iter().enumerate() {
                        match a.parse::<IpAddr>() {
                            Ok(ip) => addresses.push(ip),
                            Err(_) => {
                                d.error(at(i + 2), format!("invalid ping_group member `{a}`"));
                            }
                        }
                    }
                    self.ping_groups.push(PingGroup {
                        name: args[0].into(),
                        addresses,
                    });
                }
            }
            "respawn" => {
                if need(2, d) {
                    self.respawn.push(Respawn {
                        user: args[0].into(),
                        command: args[1..].join(" "),
                    });
                }
            }
            "apiauth" => {
                if need(2, d) {
                    let mut a = ApiAuth {
                        service: args[0].into(),
                        uid: Vec::new(),
                        gid: Vec::new(),
                    };
                    for (i, w) in args[1..].iter().enumerate() {
                        if let Some(u) = w.strip_prefix("uid=") {
                            a.uid
                                .extend(u.split(',').filter(|s| !s.is_empty()).map(String::from));
                        } else if let Some(g) = w.strip_prefix("gid=") {
                            a.gid
                                .extend(g.split(',').filter(|s| !s.is_empty()).map(String::from));
                        } else {
                            d.error(
                                at(i + 2),
                                format!("invalid apiauth `{w}`: expected uid=... or gid=..."),
                            );
                        }
                    }
                    self.apiauth.push(a);
                }
            }
            "crm" | "pacemaker" => {
                if need(1, d) {
                    let on =
                        args[0].eq_ignore_ascii_case("respawn") || boolean(args[0]) == Some(true);
                    if !on && boolean(args[0]).is_none() {
                        d.error(at(1), format!("invalid {key} `{}`", args[0]));
                    } else if on {
                        d.error(at(0), format!("{key} {} is not supported", args[0]))
                            .hint("lvsd manages haresources (heartbeat R1 mode) only; remove the line or write `crm no`");
                    }
                    self.crm = on;
                }
            }
            "logfacility" => {
                if need(1, d) {
                    self.logfacility = (args[0] != "none").then(|| args[0].to_string());
                }
            }
            "logfile" => {
                if need(1, d) {
                    self.logfile = Some(rest.into());
                }
            }
            "debugfile" => {
                if need(1, d) {
                    self.debugfile = Some(rest.into());
                }
            }
            "watchdog" => {
                if need(1, d) {
                    self.watchdog = Some(rest.into());
                }
            }
            "use_logd" | "realtime" => {
                if need(1, d) {
                    match boolean(args[0]) {
                        Some(b) if key == "use_logd" => self.use_logd = b,
                        Some(b) => self.realtime = b,
                        None => {
                            d.error(
                                at(1),
                                format!("invalid {key} `{}`: must be on or off", args[0]),
                            );
                        }
                    }
                }
            }
            "debug" => {
                if need(1, d) {
                    match args[0].parse::<u8>() {
                        Ok(n) => self.debug = n,
                        Err(_) => {
                            d.error(
                                at(1),
                                format!("invalid debug level `{}`: must be 0..255", args[0]),
                            );
                        }
                    }
                }
            }
            k if KEPT.contains(&k) => self.other.push((k.into(), rest.into())),
            k => {
                let m = d.error(at(0), format!("unknown directive `{k}`"));
                if let Some(c) = did_you_mean(k, KNOWN.iter().chain(KEPT).copied()) {
                    m.hint(format!("did you mean `{c}`?"));
                }
            }
        }
    }

    /// Applies heartbeat's defaults and checks.
    pub fn finish(self, file: Loc, d: &mut Diagnostics) -> HaCf {
        let keepalive = self.keepalive.unwrap_or(1000);
        let deadtime = self.deadtime.as_ref().map_or(30_000, |x| x.0);
        if deadtime <= 2 * keepalive {
            let loc = self
                .deadtime
                .as_ref()
                .map_or_else(|| file.clone(), |x| x.1.clone());
            d.error(
                loc,
                format!(
                    "deadtime ({deadtime} ms) must be more than twice keepalive ({keepalive} ms)"
                ),
            )
            .hint("heartbeat refuses this too; raise deadtime or lower keepalive");
        }
        let warntime = self.warntime.as_ref().map_or(deadtime / 2, |x| x.0);
        if let Some((w, loc)) = &self.warntime
            && *w >= deadtime
        {
            d.warn(loc.clone(), format!("warntime ({w} ms) is not shorter than deadtime ({deadtime} ms): no late-heartbeat warning will ever be logged"));
        }
        let initdead = match &self.initdead {
            Some((i, loc)) => {
                if *i < deadtime {
                    d.error(
                        loc.clone(),
                        format!(
                            "initdead ({i} ms) must not be shorter than deadtime ({deadtime} ms)"
                        ),
                    );
                } else if *i < 10_000 {
                    d.warn(
                        loc.clone(),
                        format!("initdead ({i} ms) is shorter than 10 s"),
                    )
                    .hint("heartbeat warns that a node booting may not be seen in time");
                }
                *i
            }
            None if deadtime > 10_000 => deadtime,
            None if deadtime < 6_000 => 12_000,
            None => 2 * deadtime,
        };
        let deadping = match &self.deadping {
            Some((p, loc)) => {
                if *p <= 2 * keepalive {
                    d.error(
                        loc.clone(),
                        format!(
                            "deadping ({p} ms) must be more than twice keepalive ({keepalive} ms)"
                        ),
                    );
                }
                *p
            }
            None => deadtime,
        };
        if self.media.is_empty() {
            d.error(
                file.clone(),
                "no communication medium: add a bcast, mcast or ucast line",
            );
        }
        if self.nodes.is_empty() && self.autojoin != "any" {
            d.error(
                file.clone(),
                "no node: add `node NAME` for each director (as `uname -n` prints it)",
            );
        }
        let auto_failback = match self.auto_failback {
            Some(a) => a,
            None => {
                d.warn(
                    file,
                    "auto_failback not set: heartbeat's default is `legacy`",
                )
                .hint("Please convert to 'auto_failback on' (or off), as heartbeat asks");
                AutoFailback::Legacy
            }
        };
        HaCf {
            keepalive_ms: keepalive,
            deadtime_ms: deadtime,
            warntime_ms: warntime,
            initdead_ms: initdead,
            deadping_ms: deadping,
            udpport: self.udpport,
            media: self.media,
            nodes: self.nodes,
            autojoin: self.autojoin,
            auto_failback,
            ping: self.ping,
            ping_groups: self.ping_groups,
            respawn: self.respawn,
            apiauth: self.apiauth,
            crm: self.crm,
            logfacility: self.logfacility,
            logfile: self.logfile,
            debugfile: self.debugfile,
            use_logd: self.use_logd,
            debug: self.debug,
            realtime: self.realtime,
            watchdog: self.watchdog,
            other: self.other,
        }
    }
}

/// Reads a whole ha.cf.
pub fn parse_hacf(file: &Arc<str>, text: &str, names: &Names, d: &mut Diagnostics) -> HaCf {
    let mut p = HaCfParser::new(names);
    for (i, line) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        p.line(line, Loc::new(file, n, 1), d);
    }
    p.finish(Loc::file(file), d)
}

/// One haresources line (continuations already joined).
pub fn resource_line(
    text: &str,
    loc: Loc,
    names: &Names,
    d: &mut Diagnostics,
) -> Option<ResourceGroup> {
    let body = text.split('#').next().unwrap_or("").trim();
    let mut words = body.split_whitespace();
    let node = words.next()?;
    let mut resources = Vec::new();
    for w in words {
        if let Some(r) = resource(w, &loc, names, d) {
            resources.push(r);
        }
    }
    Some(ResourceGroup {
        origin: Origin(Some(loc)),
        node: node.into(),
        resources,
    })
}

fn resource(w: &str, loc: &Loc, names: &Names, d: &mut Diagnostics) -> Option<Resource> {
    let mut parts = w.split("::");
    let script = parts.next().unwrap_or("");
    let args: Vec<&str> = parts.collect();
    let bare_ip = script
        .split('/')
        .next()
        .and_then(|a| a.parse::<IpAddr>().ok())
        .is_some();
    if bare_ip && args.is_empty() {
        return vip("IPaddr", script, loc, names, d).map(Resource::Ip);
    }
    match script {
        "IPaddr" | "IPaddr2" => {
            let Some(spec) = args.first() else {
                d.error(
                    loc.clone(),
                    format!("{script} needs an address: {script}::192.0.2.10/24/eth0"),
                );
                return None;
            };
            vip(script, spec, loc, names, d).map(Resource::Ip)
        }
        "ldirectord" => Some(Resource::Ldirectord {
            config: args.first().map(|s| s.to_string()),
        }),
        _ => Some(Resource::Other {
            script: script.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }),
    }
}

/// `ip[/nmbits[/iface[/bcast]]]`.
fn vip(agent: &str, spec: &str, loc: &Loc, names: &Names, d: &mut Diagnostics) -> Option<VipSpec> {
    let mut f = spec.split('/');
    let addr_s = f.next().unwrap_or("");
    let address = match addr_s.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) => match names.host(addr_s, false) {
            Some(a) => a,
            None => {
                d.error(
                    loc.clone(),
                    format!("invalid address `{addr_s}` in {agent} resource `{spec}`"),
                );
                return None;
            }
        },
    };
    let max = if address.is_ipv6() { 128 } else { 32 };
    let prefix = match f.next().filter(|s| !s.is_empty()) {
        None => None,
        Some(p) => {
            match p.parse::<u8>() {
                Ok(n) if (1..=max).contains(&n) => Some(n),
                _ => {
                    d.error(loc.clone(), format!("invalid prefix length `{p}` in {agent} resource `{spec}`: must be 1..{max}"));
                    return None;
                }
            }
        }
    };
    let interface = f.next().filter(|s| !s.is_empty()).map(String::from);
    let broadcast = match f.next().filter(|s| !s.is_empty()) {
        None => None,
        Some(b) => match b.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                d.error(
                    loc.clone(),
                    format!("invalid broadcast `{b}` in {agent} resource `{spec}`"),
                );
                return None;
            }
        },
    };
    if let Some(extra) = f.next() {
        d.error(
            loc.clone(),
            format!("unexpected `/{extra}` in {agent} resource `{spec}`"),
        );
        return None;
    }
    Some(VipSpec {
        agent: agent.into(),
        address,
        prefix,
        interface,
        broadcast,
    })
}

/// Reads haresources: one group per logical line, `\` continues a line.
pub fn parse_haresources(
    file: &Arc<str>,
    text: &str,
    names: &Names,
    d: &mut Diagnostics,
) -> Vec<ResourceGroup> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0u32;
    for (i, raw) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.split('#').next().unwrap_or("");
        if pending.is_empty() {
            start = n;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(l) => {
                pending.push_str(l);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                if let Some(g) = resource_line(&pending, Loc::new(file, start, 1), names, d) {
                    out.push(g);
                }
                pending.clear();
            }
        }
    }
    if !pending.trim().is_empty()
        && let Some(g) = resource_line(&pending, Loc::new(file, start, 1), names, d)
    {
        out.push(g);
    }
    out
}

/// Reads authkeys. `mode` is the file's permission bits when it came from a
/// file; heartbeat refuses a key file group or others can read.
pub fn parse_authkeys(
    file: &Arc<str>,
    path: &Path,
    text: &str,
    mode: Option<u32>,
    d: &mut Diagnostics,
) -> Option<AuthKeys> {
    let mut ok = true;
    if let Some(m) = mode
        && m & 0o044 != 0
    {
        d.error(
            Loc::file(file),
            format!(
                "Bad permissions on keyfile [{}], 600 recommended.",
                path.display()
            ),
        )
        .hint(format!("chmod 600 {}", path.display()));
        ok = false;
    }
    let mut active: Option<(u8, Loc)> = None;
    let mut keys: Vec<AuthKey> = Vec::new();
    // Keys whose line was already reported; `auth N` naming one is not
    // reported again.
    let mut bad: Vec<u8> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        let at = |k: usize| Loc::new(file, n, word_col(line, k));
        if *first == "auth" {
            match words.get(1).map(|s| s.parse::<u8>()) {
                Some(Ok(k)) if (1..=15).contains(&k) => active = Some((k, at(1))),
                _ => {
                    d.error(at(1.min(words.len() - 1)), "auth needs a key index 1..15");
                    ok = false;
                }
            }
            continue;
        }
        let index = match first.parse::<u8>() {
            Ok(k) if (1..=15).contains(&k) => k,
            _ => {
                d.error(at(0), format!("invalid key index `{first}`: must be 1..15"));
                ok = false;
                continue;
            }
        };
        if keys.iter().any(|k| k.index == index) {
            d.error(at(0), format!("key {index} is defined twice"));
            ok = false;
            continue;
        }
        let secret = words.get(2..).map(|w| w.join(" ")).unwrap_or_default();
        let method = match words.get(1).copied() {
            Some("crc") => {
                d.warn(at(1), "crc authenticates nothing (integrity only)")
                    .hint("use sha1 with a shared secret");
                AuthMethod::Crc
            }
            Some(m @ ("md5" | "sha1")) => {
                if secret.is_empty() {
                    d.error(at(1), format!("{m} needs a secret: `{index} {m} SECRET`"));
                    bad.push(index);
                    ok = false;
                    continue;
                }
                if m == "md5" {
                    AuthMethod::Md5(secret)
                } else {
                    AuthMethod::Sha1(secret)
                }
            }
            Some(other) => {
                let m = d.error(at(1), format!("unknown authentication method `{other}`"));
                m.hint("use sha1 (best), md5 or crc");
                bad.push(index);
                ok = false;
                continue;
            }
            None => {
                d.error(at(0), format!("key {index} has no method"));
                bad.push(index);
                ok = false;
                continue;
            }
        };
        keys.push(AuthKey { index, method });
    }
    let Some((active, loc)) = active else {
        d.error(
            Loc::file(file),
            "no `auth N` line: which key signs packets?",
        );
        return None;
    };
    if !keys.iter().any(|k| k.index == active) {
        if !bad.contains(&active) {
            d.error(
                loc,
                format!("auth {active} names a key that is not defined"),
            );
        }
        return None;
    }
    ok.then(|| AuthKeys {
        path: path.to_path_buf(),
        active,
        keys,
    })
}

/// Checks across the three files.
pub fn check_failover(f: &Failover, hacf_file: &Arc<str>, d: &mut Diagnostics) {
    for g in &f.resources {
        let loc = g.origin.0.clone().unwrap_or_else(|| Loc::file(hacf_file));
        if !f.ha.nodes.contains(&g.node) && f.ha.autojoin == "none" {
            d.error(
                loc.clone(),
                format!("node `{}` is not a node in {hacf_file}", g.node),
            )
            .hint(format!("ha.cf names: {}", f.ha.nodes.join(", ")));
        }
    }
    if f.ha.nodes.len() > 2 {
        d.warn(
            Loc::file(hacf_file),
            format!(
                "{} nodes: lvsd, like ipfail, runs two-node clusters",
                f.ha.nodes.len()
            ),
        );
    }
}

/// Reads ha.cf and, from the same directory, haresources and authkeys.
pub fn read_dir(hacf: &Path, names: &Names, d: &mut Diagnostics) -> Option<Failover> {
    use std::os::unix::fs::PermissionsExt;
    let dir = hacf.parent().unwrap_or(Path::new("."));
    let read = |p: &Path, d: &mut Diagnostics| -> Option<(Arc<str>, String)> {
        let name: Arc<str> = p.display().to_string().into();
        match std::fs::read_to_string(p) {
            Ok(t) => Some((name, t)),
            Err(e) => {
                d.error(Loc::file(&name), format!("cannot read file: {e}"));
                None
            }
        }
    };
    let (hname, htext) = read(hacf, d)?;
    let ha = parse_hacf(&hname, &htext, names, d);
    let resources = read(&dir.join("haresources"), d)
        .map(|(n, t)| parse_haresources(&n, &t, names, d))
        .unwrap_or_default();
    let kpath = dir.join("authkeys");
    let (kname, ktext) = read(&kpath, d)?;
    let mode = std::fs::metadata(&kpath)
        .ok()
        .map(|m| m.permissions().mode());
    let authkeys = parse_authkeys(&kname, &kpath, &ktext, mode, d)?;
    let f = Failover {
        ha,
        resources,
        authkeys,
    };
    check_failover(&f, &hname, d);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hacf(text: &str) -> (HaCf, Vec<String>) {
        let f: Arc<str> = "ha.cf".into();
        let mut d = Diagnostics::new();
        let h = parse_hacf(&f, text, &Names::offline(), &mut d);
        (h, d.into_sorted().iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn defaults_and_units() {
        let (h, diags) = hacf("bcast eth0\nnode a b\nauto_failback on\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            (
                h.keepalive_ms,
                h.deadtime_ms,
                h.warntime_ms,
                h.initdead_ms,
                h.deadping_ms,
                h.udpport
            ),
            (1000, 30_000, 15_000, 30_000, 30_000, 694)
        );
        let (h, _) = hacf("keepalive 500ms\ndeadtime 2\nbcast eth0\nnode a\nauto_failback off\n");
        assert_eq!(
            (h.keepalive_ms, h.deadtime_ms, h.initdead_ms),
            (500, 2000, 12_000)
        );
        let (h, _) = hacf("deadtime 8\nbcast eth0\nnode a\nauto_failback on\n");
        assert_eq!(h.initdead_ms, 16_000);
    }

    #[test]
    fn heartbeat_checks() {
        let (_, diags) = hacf("keepalive 2\ndeadtime 3\nbcast eth0\nnode a\nauto_failback on\n");
        assert_eq!(
            diags,
            [
                "ha.cf:2:10: error: deadtime (3000 ms) must be more than twice keepalive (2000 ms)\n  = hint: heartbeat refuses this too; raise deadtime or lower keepalive"
            ]
        );
        let (_, diags) = hacf("");
        assert_eq!(diags.len(), 3, "{diags:?}");
    }

    #[test]
    fn udpport_applies_to_later_media() {
        let (h, diags) =
            hacf("ucast eth0 10.0.0.2\nudpport 1694\nbcast eth1\nnode a\nauto_failback on\n");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(matches!(h.media[0], Medium::Ucast { port: 694, .. }));
        assert!(matches!(h.media[1], Medium::Bcast { port: 1694, .. }));
    }

    #[test]
    fn haresources_lines() {
        let f: Arc<str> = "haresources".into();
        let mut d = Diagnostics::new();
        let g = parse_haresources(
            &f,
            "# c\nlb1 192.0.2.1 IPaddr2::192.0.2.2/24/eth0:vip/192.0.2.255 \\\n  ldirectord::ldirectord.cf MailTo::a@b::sub\n",
            &Names::offline(),
            &mut d,
        );
        assert!(!d.has_errors(), "{d:?}");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].resources.len(), 4);
        assert_eq!(
            g[0].resources[1],
            Resource::Ip(VipSpec {
                agent: "IPaddr2".into(),
                address: "192.0.2.2".parse().unwrap(),
                prefix: Some(24),
                interface: Some("eth0:vip".into()),
                broadcast: Some("192.0.2.255".parse().unwrap()),
            })
        );
    }

    #[test]
    fn authkeys_rules() {
        let f: Arc<str> = "authkeys".into();
        let p = Path::new("/etc/ha.d/authkeys");
        let mut d = Diagnostics::new();
        let k =
            parse_authkeys(&f, p, "auth 2\n1 crc\n2 sha1 s e c\n", Some(0o600), &mut d).unwrap();
        assert_eq!(k.active, 2);
        assert_eq!(k.keys[1].method, AuthMethod::Sha1("s e c".into()));
        let mut d = Diagnostics::new();
        assert!(parse_authkeys(&f, p, "auth 1\n1 sha1 x\n", Some(0o640), &mut d).is_none());
        assert!(
            d.items()[0]
                .message
                .starts_with("Bad permissions on keyfile [/etc/ha.d/authkeys]")
        );
    }
}
