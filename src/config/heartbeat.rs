//! Readers for heartbeat 3's ha.cf, haresources and authkeys, with
//! heartbeat's units (`500ms`; a plain number is seconds), defaults and
//! checks (config.c, auth.c): deadtime > 2×keepalive, initdead ≥ deadtime,
//! at least one node and one medium, authkeys not readable by others, and
//! haresources nodes that ha.cf knows.
//!
//! One room although it passes 800 lines: the three files are read and
//! checked together (heartbeat's cross-file rules need all three), and
//! most of it is one `HaCfParser` directive table that lvsd.toml's
//! `[failover]` also feeds.

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

/// Serial speeds heartbeat accepts (`baud`).
const BAUDS: &[u32] = &[9600, 19200, 38400, 57600, 115200, 230400, 460800];

/// heartbeat's own words for legacy auto_failback (config.c).
const LEGACY_HINT: &str = "Please convert to 'auto_failback on' (or off), as heartbeat asks";

/// Directives lvsd reads into fields of [`HaCf`].
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
    keepalive: Option<(u64, Loc)>,
    deadtime: Option<(u64, Loc)>,
    warntime: Option<(u64, Loc)>,
    initdead: Option<(u64, Loc)>,
    deadping: Option<(u64, Loc)>,
    udpport: u16,
    baud: u32,
    media: Vec<Medium>,
    /// A bcast or ucast line was read (they take udpport when read).
    port_media_seen: bool,
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
    /// As written, with its place.
    use_logd: Option<(bool, Loc)>,
    debug: u8,
    realtime: bool,
    watchdog: Option<PathBuf>,
    other: Vec<(String, String)>,
}

/// A heartbeat time: `2` or `1.7` seconds, `500ms` milliseconds (HA.CF(5)).
fn time_ms(text: &str) -> Option<u64> {
    let (num, scale) = match text.len().checked_sub(2).and_then(|i| text.get(i..)) {
        Some(u) if u.eq_ignore_ascii_case("ms") => (&text[..text.len() - 2], 1.0),
        _ => (text, 1000.0),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || int.len() > 12 {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    Some((v * scale).round() as u64)
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
            baud: 19200,
            media: Vec::new(),
            port_media_seen: false,
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
            use_logd: None,
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
        let trimmed = body.trim_start();
        if trimmed.is_empty() {
            return;
        }
        let lead = body[..body.len() - trimmed.len()].chars().count();
        let body = trimmed;
        let base = loc.column.max(1) + u32::try_from(lead).unwrap_or(0);
        let at = |n: usize| Loc::new(&loc.file, loc.line, base + word_col(body, n) - 1);
        let words: Vec<&str> = body.split_whitespace().collect();
        let Some((&key, args)) = words.split_first() else {
            return;
        };
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
                    "keepalive" => self.keepalive = v,
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
                        if self.port_media_seen {
                            d.warn(
                                at(0),
                                format!("udpport {p} applies only to the bcast/ucast lines after it"),
                            )
                            .hint("heartbeat reads ha.cf in order; put udpport before bcast and ucast");
                        }
                        self.udpport = p;
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
                        Ok(b) if BAUDS.contains(&b) => self.baud = b,
                        _ => {
                            d.error(at(1), format!("invalid baud `{}`", args[0]))
                                .hint("one of 9600, 19200, 38400, 57600, 115200, 230400, 460800");
                        }
                    }
                    self.other.push((key.into(), rest.into()));
                }
            }
            "bcast" => {
                if need(1, d) {
                    self.port_media_seen = true;
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
                self.port_media_seen = true;
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
                        // heartbeat compares node names without case.
                        if !self.nodes.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                            self.nodes.push((*n).into());
                        }
                    }
                }
            }
            "autojoin" => {
                if need(1, d) {
                    match args[0] {
                        "none" => self.autojoin = args[0].into(),
                        "other" | "any" => {
                            // config.c refuses autojoin when heartbeat
                            // manages haresources, which is all lvsd does.
                            d.error(
                                at(1),
                                format!("autojoin {} is not supported with haresources", args[0]),
                            )
                            .hint("list every director with `node NAME`; heartbeat refuses autojoin in haresources (R1) mode too");
                            self.autojoin = args[0].into();
                        }
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
                        } else if v == AutoFailback::Legacy {
                            d.warn(at(1), "auto_failback legacy is deprecated")
                                .hint(LEGACY_HINT);
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
                        match self.names.host(a, false) {
                            Some(ip) => addresses.push(ip),
                            None => {
                                d.error(
                                    at(i + 2),
                                    format!(
                                        "invalid ping_group member `{a}`: not an IPv4 address or known host"
                                    ),
                                );
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
                        d.error(
                            at(0),
                            format!(
                                "{key} {}: lvsd manages haresources (heartbeat R1) only, not a CRM",
                                args[0]
                            ),
                        )
                        .hint("remove the line or write `crm no`");
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
                        Some(b) if key == "use_logd" => self.use_logd = Some((b, at(1))),
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
        let keepalive = self.keepalive.as_ref().map_or(1000, |x| x.0);
        let deadtime = self.deadtime.as_ref().map_or(30_000, |x| x.0);
        if deadtime <= 2 * keepalive {
            // At deadtime when written, else at the keepalive that is too long.
            let loc = self
                .deadtime
                .as_ref()
                .or(self.keepalive.as_ref())
                .map_or_else(|| file.clone(), |x| x.1.clone());
            d.error(
                loc,
                format!(
                    "deadtime ({deadtime} ms) must be more than twice keepalive ({keepalive} ms)"
                ),
            )
            .hint("heartbeat refuses this too; raise deadtime or lower keepalive");
        }
        // heartbeat's check_logd_usage: with no logfile, debugfile or
        // logfacility it logs through ha_logd (use_logd defaults to yes),
        // and refuses use_logd off.
        // (kern is facility 0, which heartbeat takes for none: `<= 0`.)
        let facility = self.logfacility.as_deref().filter(|f| *f != "kern");
        let no_log = self.logfile.is_none() && self.debugfile.is_none() && facility.is_none();
        let use_logd = match &self.use_logd {
            None => no_log,
            Some((false, loc)) if no_log => {
                d.error(
                    loc.clone(),
                    "use_logd off with no logfile, debugfile or logfacility: heartbeat would log nowhere",
                )
                .hint("heartbeat refuses this too (\"No log entry found in ha.cf and use_logd is set to off\"); name a logfile, or a logfacility other than none or kern");
                false
            }
            Some((b, _)) => *b,
        };
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
        } else if self
            .media
            .iter()
            .all(|m| matches!(m, Medium::Serial { .. }))
        {
            d.error(
                file.clone(),
                "no medium lvsd can use: serial links are not supported",
            )
            .hint("add a bcast, mcast or ucast line");
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
                .hint(LEGACY_HINT);
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
            // heartbeat's init_config: with a facility, an unnamed
            // logfile or debugfile is /dev/null (syslog gets the lines).
            logfile: self
                .logfile
                .or_else(|| facility.is_some().then(|| "/dev/null".into())),
            debugfile: self
                .debugfile
                .or_else(|| facility.is_some().then(|| "/dev/null".into())),
            logfacility: self.logfacility,
            use_logd,
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

/// One haresources line (continuations already joined); `loc` is where
/// the line starts. `#` starts a comment.
pub fn resource_line(
    text: &str,
    loc: Loc,
    names: &Names,
    d: &mut Diagnostics,
) -> Option<ResourceGroup> {
    let body = text.split('#').next().unwrap_or("");
    group(words_at(body, &loc), names, d)
}

/// The words of `text` with where each starts, `loc` being where `text` does.
fn words_at<'t>(text: &'t str, loc: &Loc) -> Vec<(&'t str, Loc)> {
    let base = loc.column.max(1);
    let at = |col: usize| {
        let col = u32::try_from(col).unwrap_or(u32::MAX - base);
        Loc::new(&loc.file, loc.line, base + col)
    };
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (col, (i, c)) in text.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (true, Some((s, sc))) => {
                out.push((&text[s..i], at(sc)));
                start = None;
            }
            (false, None) => start = Some((i, col)),
            _ => {}
        }
    }
    if let Some((s, sc)) = start {
        out.push((&text[s..], at(sc)));
    }
    out
}

/// A resource group from its words: the preferred node, then resources.
fn group(words: Vec<(&str, Loc)>, names: &Names, d: &mut Diagnostics) -> Option<ResourceGroup> {
    let mut words = words.into_iter();
    let (node, loc) = words.next()?;
    let mut resources = Vec::new();
    let mut any = false;
    for (w, at) in words {
        any = true;
        if let Some(r) = resource(w, &at, names, d) {
            resources.push(r);
        }
    }
    if !any {
        d.warn(loc.clone(), format!("node `{node}` is given no resources"));
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
    // heartbeat splits every word at `::`, which breaks IPv6 addresses
    // written with `::` into several arguments. Read them whole, and warn.
    let v6_split = |spec: &str, d: &mut Diagnostics| {
        d.warn(
            loc.clone(),
            format!("heartbeat would split the address in `{spec}` at `::`"),
        )
        .hint(
            "write the IPv6 address without `::` (2001:db8:0:0:0:0:0:1) so heartbeat reads it too",
        );
    };
    // A bare address means IPaddr; a dotted quad that does not parse is a
    // mistyped address, not a script named `192.0.2.312`.
    let head = w.split('/').next().unwrap_or("");
    let dotted = head.contains('.')
        && head
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let bare_ip = dotted || head.parse::<IpAddr>().is_ok();
    if bare_ip {
        if !args.is_empty() {
            v6_split(w, d);
        }
        return vip("IPaddr", w, loc, names, d).map(Resource::Ip);
    }
    match script {
        "IPaddr" | "IPaddr2" => {
            if args.is_empty() {
                d.error(
                    loc.clone(),
                    format!("{script} needs an address: {script}::192.0.2.10/24/eth0"),
                );
                return None;
            }
            let spec = args.join("::");
            if args.len() > 1 {
                v6_split(&spec, d);
            }
            vip(script, &spec, loc, names, d).map(Resource::Ip)
        }
        "ldirectord" => Some(Resource::Ldirectord {
            config: args.first().map(|s| s.to_string()),
        }),
        _ => {
            d.warn(
                loc.clone(),
                format!("resource `{w}` is not run by lvsd: only the addresses move with failover"),
            )
            .hint("start it from the director's service manager (lvsd runs no resource scripts)");
            Some(Resource::Other {
                script: script.into(),
                args: args.iter().map(|s| s.to_string()).collect(),
            })
        }
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

/// Reads haresources: one group per logical line, `\\` continues a line.
/// Each word keeps its own line and column, also across continuations.
pub fn parse_haresources(
    file: &Arc<str>,
    text: &str,
    names: &Names,
    d: &mut Diagnostics,
) -> Vec<ResourceGroup> {
    let mut out = Vec::new();
    let mut pending: Vec<(&str, Loc)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.split('#').next().unwrap_or("");
        let (line, more) = match line.trim_end().strip_suffix('\\') {
            Some(l) => (l, true),
            None => (line, false),
        };
        pending.extend(words_at(line, &Loc::new(file, n, 1)));
        if !more && let Some(g) = group(std::mem::take(&mut pending), names, d) {
            out.push(g);
        }
    }
    if let Some(g) = group(pending, names, d) {
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
    // An `auth` line was written (valid or not): no "missing" error then.
    let mut auth_seen = false;
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
            auth_seen = true;
            match words.get(1).map(|s| s.parse::<u8>()) {
                Some(Ok(k)) if (1..=15).contains(&k) => {
                    if let Some((prev, _)) = &active {
                        d.warn(
                            at(0),
                            format!("a second auth line: key {k} signs, not {prev}"),
                        )
                        .hint("heartbeat uses the last auth line; keep one");
                    }
                    active = Some((k, at(1)));
                }
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
            Some("crc") if !secret.is_empty() => {
                // heartbeat's auth_crc refuses one too.
                d.error(at(2), "auth method crc doesn't use a key")
                    .hint(format!("write `{index} crc`, or use sha1 with this secret"));
                bad.push(index);
                ok = false;
                continue;
            }
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
        if !auth_seen {
            d.error(
                Loc::file(file),
                "no `auth N` line: which key signs packets?",
            )
            .hint("add `auth 1` naming the key that signs, e.g. `1 sha1 SECRET`");
        }
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
        let known = f.ha.nodes.iter().any(|n| n.eq_ignore_ascii_case(&g.node));
        if !known && f.ha.autojoin == "none" {
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
        match super::file::read_text(p) {
            Ok(t) => Some((name, t)),
            Err(e) => {
                d.error(Loc::file(&name), e.to_string());
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

    /// First line of each diagnostic (no hint), sorted, as `lvsd check` prints.
    fn lines(d: Diagnostics) -> Vec<String> {
        d.into_sorted()
            .iter()
            .map(|x| x.to_string().lines().next().unwrap_or_default().to_string())
            .collect()
    }

    fn hacf(text: &str) -> (HaCf, Vec<String>) {
        let f: Arc<str> = "ha.cf".into();
        let mut d = Diagnostics::new();
        let h = parse_hacf(&f, text, &Names::offline(), &mut d);
        (h, lines(d))
    }

    /// A valid minimal ha.cf (3 lines) followed by `extra` from line 4.
    fn with(extra: &str) -> Vec<String> {
        hacf(&format!(
            "bcast eth0\nnode a b\nauto_failback on\n{extra}\n"
        ))
        .1
    }

    fn hares(text: &str) -> (Vec<ResourceGroup>, Vec<String>) {
        let f: Arc<str> = "haresources".into();
        let mut d = Diagnostics::new();
        let g = parse_haresources(&f, text, &Names::offline(), &mut d);
        (g, lines(d))
    }

    fn keys(text: &str, mode: Option<u32>) -> (Option<AuthKeys>, Vec<String>) {
        let f: Arc<str> = "authkeys".into();
        let mut d = Diagnostics::new();
        let k = parse_authkeys(&f, Path::new("/etc/ha.d/authkeys"), text, mode, &mut d);
        (k, lines(d))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
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
        assert_eq!(h.auto_failback, AutoFailback::On);
        assert_eq!(h.autojoin, "none");
        // No log line at all: heartbeat's default is ha_logd.
        assert!(h.realtime && !h.crm && h.use_logd);
        assert_eq!(
            h.media,
            [Medium::Bcast {
                interface: "eth0".into(),
                port: 694
            }]
        );
        // initdead: deadtime < 6 s -> 12 s; 6..=10 s -> 2×deadtime; > 10 s -> deadtime.
        let (h, _) = hacf("keepalive 500ms\ndeadtime 2\nbcast eth0\nnode a\nauto_failback off\n");
        assert_eq!(
            (
                h.keepalive_ms,
                h.deadtime_ms,
                h.warntime_ms,
                h.initdead_ms,
                h.deadping_ms
            ),
            (500, 2000, 1000, 12_000, 2000)
        );
        let (h, _) = hacf("deadtime 8\nbcast eth0\nnode a\nauto_failback on\n");
        assert_eq!(h.initdead_ms, 16_000);
        let (h, _) = hacf("deadtime 10\nbcast eth0\nnode a\nauto_failback on\n");
        assert_eq!(h.initdead_ms, 20_000);
        let (h, _) = hacf("deadtime 11\nbcast eth0\nnode a\nauto_failback on\n");
        assert_eq!(h.initdead_ms, 11_000);
    }

    #[test]
    fn time_syntax() {
        // HA.CF(5): "2", "1.7", "2000ms", "1700ms".
        assert_eq!(time_ms("2"), Some(2000));
        assert_eq!(time_ms("1.7"), Some(1700));
        assert_eq!(time_ms("2000ms"), Some(2000));
        assert_eq!(time_ms("1700MS"), Some(1700));
        assert_eq!(time_ms("0.25"), Some(250));
        for bad in [
            "", "ms", "500us", "-1", "+2", "1e3", "inf", "2s", "1.5ms.", ".5", "1 000",
        ] {
            assert_eq!(time_ms(bad), None, "{bad}");
        }
        assert_eq!(
            with("keepalive 500us"),
            ["ha.cf:4:11: error: invalid keepalive `500us`"]
        );
        assert_eq!(
            with("warntime 0"),
            ["ha.cf:4:10: error: warntime must be more than 0"]
        );
        assert_eq!(
            with("deadtime"),
            ["ha.cf:4:1: error: deadtime needs 1 argument"]
        );
    }

    /// The exact lab configuration of reference/heartbeat-3.0.6.md.
    const LAB_HACF: &str = "\
logfile         /var/log/ha-lab/ha-log
debugfile       /var/log/ha-lab/ha-debug
use_logd        no
debug           0
keepalive       500ms
deadtime        2
warntime        1
initdead        10
deadping        2
udpport         694
ucast           eth0 192.0.2.11
ucast           eth0 192.0.2.12
auto_failback   on            # \"off\" for the auto_failback-off runs
node            d1
node            d2
ping            192.0.2.21    # PINGMODE=group instead: ping_group pingers 192.0.2.21 192.0.2.22
ping            192.0.2.22
respawn         hacluster /usr/libexec/heartbeat/ipfail
apiauth         ipfail gid=haclient uid=hacluster
crm             no
";

    #[test]
    fn lab_configuration() {
        let (h, diags) = hacf(LAB_HACF);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            (
                h.keepalive_ms,
                h.deadtime_ms,
                h.warntime_ms,
                h.initdead_ms,
                h.deadping_ms
            ),
            (500, 2000, 1000, 10_000, 2000)
        );
        assert_eq!(h.udpport, 694);
        assert_eq!(
            h.media,
            [
                Medium::Ucast {
                    interface: "eth0".into(),
                    peer: ip("192.0.2.11"),
                    port: 694
                },
                Medium::Ucast {
                    interface: "eth0".into(),
                    peer: ip("192.0.2.12"),
                    port: 694
                },
            ]
        );
        assert_eq!(h.auto_failback, AutoFailback::On);
        assert_eq!(h.nodes, ["d1", "d2"]);
        assert_eq!(h.ping, [ip("192.0.2.21"), ip("192.0.2.22")]);
        assert!(h.ping_groups.is_empty());
        assert_eq!(
            h.respawn,
            [Respawn {
                user: "hacluster".into(),
                command: "/usr/libexec/heartbeat/ipfail".into()
            }]
        );
        assert_eq!(
            h.apiauth,
            [ApiAuth {
                service: "ipfail".into(),
                uid: vec!["hacluster".into()],
                gid: vec!["haclient".into()],
            }]
        );
        assert!(!h.crm && !h.use_logd);
        assert_eq!(h.debug, 0);
        assert_eq!(h.logfile, Some(PathBuf::from("/var/log/ha-lab/ha-log")));
        assert_eq!(h.debugfile, Some(PathBuf::from("/var/log/ha-lab/ha-debug")));
        assert!(h.other.is_empty(), "{:?}", h.other);

        // PINGMODE=group.
        let text = LAB_HACF
            .lines()
            .filter(|l| !l.starts_with("ping "))
            .chain(["ping_group pingers 192.0.2.21 192.0.2.22"])
            .collect::<Vec<_>>()
            .join("\n");
        let (h, diags) = hacf(&text);
        assert!(diags.is_empty(), "{diags:?}");
        assert!(h.ping.is_empty());
        assert_eq!(
            h.ping_groups,
            [PingGroup {
                name: "pingers".into(),
                addresses: vec![ip("192.0.2.21"), ip("192.0.2.22")]
            }]
        );

        let (g, diags) = hares("d1 IPaddr2::192.0.2.100/24/eth0\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(g[0].node, "d1");
        assert_eq!(
            g[0].resources,
            [Resource::Ip(VipSpec {
                agent: "IPaddr2".into(),
                address: ip("192.0.2.100"),
                prefix: Some(24),
                interface: Some("eth0".into()),
                broadcast: None,
            })]
        );
        let (k, diags) = keys("auth 1\n1 sha1 ha-lab-secret\n", Some(0o100600));
        assert!(diags.is_empty(), "{diags:?}");
        let k = k.expect("valid authkeys");
        assert_eq!(k.active, 1);
        assert_eq!(
            k.keys,
            [AuthKey {
                index: 1,
                method: AuthMethod::Sha1("ha-lab-secret".into())
            }]
        );
        assert_eq!(k.path, Path::new("/etc/ha.d/authkeys"));
    }

    #[test]
    fn timing_checks() {
        let (_, diags) = hacf("keepalive 2\ndeadtime 3\nbcast eth0\nnode a\nauto_failback on\n");
        assert_eq!(
            diags,
            ["ha.cf:2:10: error: deadtime (3000 ms) must be more than twice keepalive (2000 ms)"]
        );
        // Default deadtime: the error points at the keepalive that is too long.
        assert_eq!(
            with("keepalive 20"),
            ["ha.cf:4:11: error: deadtime (30000 ms) must be more than twice keepalive (20000 ms)"]
        );
        assert_eq!(
            with("deadtime 30\ninitdead 20"),
            ["ha.cf:5:10: error: initdead (20000 ms) must not be shorter than deadtime (30000 ms)"]
        );
        assert_eq!(
            with("deadtime 3\ninitdead 5"),
            ["ha.cf:5:10: warning: initdead (5000 ms) is shorter than 10 s"]
        );
        assert_eq!(
            with("deadping 2"),
            ["ha.cf:4:10: error: deadping (2000 ms) must be more than twice keepalive (1000 ms)"]
        );
        assert_eq!(
            with("warntime 30"),
            [
                "ha.cf:4:10: warning: warntime (30000 ms) is not shorter than deadtime (30000 ms): no late-heartbeat warning will ever be logged"
            ]
        );
    }

    #[test]
    fn required_directives() {
        let (_, diags) = hacf("");
        assert_eq!(
            diags,
            [
                "ha.cf: error: no communication medium: add a bcast, mcast or ucast line",
                "ha.cf: error: no node: add `node NAME` for each director (as `uname -n` prints it)",
                "ha.cf: warning: auto_failback not set: heartbeat's default is `legacy`",
            ]
        );
        let (h, _) = hacf("bcast eth0\nnode a\n");
        assert_eq!(h.auto_failback, AutoFailback::Legacy);
        let (_, diags) = hacf("serial /dev/ttyS0\nnode a\nauto_failback on\n");
        assert_eq!(
            diags,
            [
                "ha.cf: error: no medium lvsd can use: serial links are not supported",
                "ha.cf:1:1: warning: serial links are not supported by lvsd; this medium is ignored",
            ]
        );
    }

    #[test]
    fn media() {
        let (h, diags) = hacf(
            "bcast eth0 eth1\nmcast eth2 239.0.0.1 694 1 0\nmcast6 eth3 ff02::1:2 695 2 1\n\
             ucast6 eth4 2001:db8::2\nbaud 38400\nserial /dev/ttyS0\nnode a\nauto_failback on\n",
        );
        assert_eq!(
            diags,
            ["ha.cf:6:1: warning: serial links are not supported by lvsd; this medium is ignored"]
        );
        assert_eq!(
            h.media,
            [
                Medium::Bcast {
                    interface: "eth0".into(),
                    port: 694
                },
                Medium::Bcast {
                    interface: "eth1".into(),
                    port: 694
                },
                Medium::Mcast {
                    interface: "eth2".into(),
                    group: ip("239.0.0.1"),
                    port: 694,
                    ttl: 1,
                    loopback: false,
                },
                Medium::Mcast {
                    interface: "eth3".into(),
                    group: ip("ff02::1:2"),
                    port: 695,
                    ttl: 2,
                    loopback: true,
                },
                Medium::Ucast {
                    interface: "eth4".into(),
                    peer: ip("2001:db8::2"),
                    port: 694
                },
                Medium::Serial {
                    device: "/dev/ttyS0".into(),
                    baud: 38400
                },
            ]
        );
        assert_eq!(h.other, [("baud".to_string(), "38400".to_string())]);
        assert_eq!(
            with("mcast eth0 192.0.2.1 694 1 0"),
            ["ha.cf:4:12: error: invalid mcast group `192.0.2.1`: not an IPv4 multicast address"]
        );
        assert_eq!(
            with("mcast6 eth0 239.0.0.1 694 1 0"),
            ["ha.cf:4:13: error: invalid mcast6 group `239.0.0.1`: not an IPv6 multicast address"]
        );
        assert_eq!(
            with("mcast eth0 239.0.0.1 x 1 0"),
            ["ha.cf:4:22: error: invalid mcast port `x`"]
        );
        assert_eq!(
            with("mcast eth0 239.0.0.1 694 256 0"),
            ["ha.cf:4:26: error: invalid mcast ttl `256`: must be 0..255"]
        );
        assert_eq!(
            with("mcast eth0 239.0.0.1 694 1 2"),
            ["ha.cf:4:28: error: invalid mcast loop `2`: must be 0 or 1"]
        );
        assert_eq!(
            with("mcast eth0 239.0.0.1"),
            ["ha.cf:4:1: error: mcast needs 5 arguments"]
        );
        assert_eq!(
            with("ucast eth0 192.0.2.312"),
            [
                "ha.cf:4:12: error: invalid ucast peer `192.0.2.312`: not an IPv4 address or known host"
            ]
        );
        assert_eq!(
            with("ucast eth0 2001:db8::1"),
            [
                "ha.cf:4:12: error: invalid ucast peer `2001:db8::1`: not an IPv4 address or known host"
            ]
        );
        assert_eq!(
            with("ucast eth0"),
            ["ha.cf:4:1: error: ucast needs 2 arguments"]
        );
        assert_eq!(with("baud 1234"), ["ha.cf:4:6: error: invalid baud `1234`"]);
    }

    #[test]
    fn udpport_applies_to_later_media() {
        let (h, diags) = hacf(
            "mcast eth2 239.0.0.1 694 1 0\nudpport 1694\nucast eth0 10.0.0.2\nudpport 1695\nbcast eth1\nnode a\nauto_failback on\n",
        );
        // Only udpport after a bcast/ucast is suspicious (mcast has its own port).
        assert_eq!(
            diags,
            ["ha.cf:4:1: warning: udpport 1695 applies only to the bcast/ucast lines after it"]
        );
        assert!(matches!(h.media[1], Medium::Ucast { port: 1694, .. }));
        assert!(matches!(h.media[2], Medium::Bcast { port: 1695, .. }));
        assert_eq!(h.udpport, 1695);
        assert_eq!(
            with("udpport 69400"),
            ["ha.cf:4:9: error: invalid udpport `69400`: must be 1..65535"]
        );
        assert_eq!(
            with("udpport 0"),
            ["ha.cf:4:9: error: invalid udpport `0`: must be 1..65535"]
        );
        assert_eq!(
            with("udpport ha-cluster"),
            ["ha.cf:4:9: error: invalid udpport `ha-cluster`: must be 1..65535"]
        );
    }

    #[test]
    fn booleans_and_failback() {
        for (word, want) in [
            ("true", true),
            ("on", true),
            ("YES", true),
            ("y", true),
            ("1", true),
            ("false", false),
            ("off", false),
            ("no", false),
            ("n", false),
            ("0", false),
        ] {
            assert_eq!(boolean(word), Some(want), "{word}");
        }
        assert_eq!(boolean("maybe"), None);
        assert_eq!(
            with("use_logd maybe"),
            ["ha.cf:4:10: error: invalid use_logd `maybe`: must be on or off"]
        );
        let (h, diags) = hacf("bcast eth0\nnode a\nauto_failback yes\nrealtime off\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(h.auto_failback, AutoFailback::On);
        assert!(!h.realtime);
        // No logfile, debugfile or logfacility: heartbeat logs through
        // ha_logd, and refuses use_logd off.
        assert!(h.use_logd && h.logfile.is_none());
        let (h, _) = hacf("bcast eth0\nnode a\nauto_failback on\nlogfacility local0\n");
        assert!(!h.use_logd);
        assert_eq!(h.logfile, Some(PathBuf::from("/dev/null")));
        assert_eq!(h.debugfile, Some(PathBuf::from("/dev/null")));
        // kern is facility 0, which heartbeat takes for none.
        let (h, diags) = hacf("bcast eth0\nnode a\nauto_failback on\nlogfacility kern\n");
        assert!(h.use_logd && h.logfile.is_none(), "{diags:?}");
        let (_, diags) = hacf("bcast eth0\nnode a\nauto_failback on\nuse_logd off\n");
        assert_eq!(
            diags,
            [
                "ha.cf:4:10: error: use_logd off with no logfile, debugfile or logfacility: heartbeat would log nowhere"
            ]
        );
        let (h, diags) = hacf("bcast eth0\nnode a\nauto_failback legacy\n");
        assert_eq!(h.auto_failback, AutoFailback::Legacy);
        assert_eq!(
            diags,
            ["ha.cf:3:15: warning: auto_failback legacy is deprecated"]
        );
        // nice_failback on is auto_failback off.
        let (h, diags) = hacf("bcast eth0\nnode a\nnice_failback on\n");
        assert_eq!(h.auto_failback, AutoFailback::Off);
        assert_eq!(diags, ["ha.cf:3:1: warning: nice_failback is obsolete"]);
        assert_eq!(
            with("auto_failback sometimes"),
            ["ha.cf:4:15: error: invalid auto_failback `sometimes`: must be on, off or legacy"]
        );
    }

    #[test]
    fn crm_and_autojoin_are_refused() {
        for v in ["on", "respawn", "yes"] {
            assert_eq!(
                with(&format!("crm {v}")),
                [format!(
                    "ha.cf:4:1: error: crm {v}: lvsd manages haresources (heartbeat R1) only, not a CRM"
                )]
            );
        }
        assert_eq!(
            with("pacemaker on"),
            [
                "ha.cf:4:1: error: pacemaker on: lvsd manages haresources (heartbeat R1) only, not a CRM"
            ]
        );
        assert!(with("crm off").is_empty());
        assert_eq!(
            with("crm sometimes"),
            ["ha.cf:4:5: error: invalid crm `sometimes`"]
        );
        assert_eq!(
            with("autojoin any"),
            ["ha.cf:4:10: error: autojoin any is not supported with haresources"]
        );
        assert!(with("autojoin none").is_empty());
        assert_eq!(
            with("autojoin all"),
            ["ha.cf:4:10: error: invalid autojoin `all`: must be none, other or any"]
        );
    }

    #[test]
    fn unknown_and_kept_directives() {
        let f: Arc<str> = "ha.cf".into();
        let mut d = Diagnostics::new();
        parse_hacf(
            &f,
            "bcast eth0\nnode a\nauto_failback on\nkeepalve 2\nfrobnicate 1\n",
            &Names::offline(),
            &mut d,
        );
        let items = d.into_sorted();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].to_string(),
            "ha.cf:4:1: error: unknown directive `keepalve`\n  = hint: did you mean `keepalive`?"
        );
        assert_eq!(
            items[1].to_string(),
            "ha.cf:5:1: error: unknown directive `frobnicate`"
        );
        let (h, diags) = hacf(
            "bcast eth0\nnode a\nauto_failback on\nhbgenmethod time\nstonith_host *  baytech 10.0.0.3 mylogin pw\ncompression bz2\nlogfacility local0\nwatchdog /dev/watchdog\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            h.other,
            [
                ("hbgenmethod".to_string(), "time".to_string()),
                (
                    "stonith_host".to_string(),
                    "*  baytech 10.0.0.3 mylogin pw".to_string()
                ),
                ("compression".to_string(), "bz2".to_string()),
            ]
        );
        assert_eq!(h.logfacility.as_deref(), Some("local0"));
        assert_eq!(h.watchdog, Some(PathBuf::from("/dev/watchdog")));
    }

    #[test]
    fn nodes_pings_respawn_apiauth() {
        let (h, diags) = hacf(
            "bcast eth0\nnode a b\nnode A c\nauto_failback on\nping 10.0.0.1 10.0.0.2\nping6 2001:db8::9\n\
             ping_group g 10.0.0.3 10.0.0.4\nrespawn hacluster /usr/lib/heartbeat/ipfail -x\n\
             apiauth ping gid=haclient uid=alanr,root\ndebug 3\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(h.nodes, ["a", "b", "c"]);
        assert_eq!(h.ping, [ip("10.0.0.1"), ip("10.0.0.2"), ip("2001:db8::9")]);
        assert_eq!(h.ping_groups[0].addresses, [ip("10.0.0.3"), ip("10.0.0.4")]);
        assert_eq!(h.respawn[0].command, "/usr/lib/heartbeat/ipfail -x");
        assert_eq!(h.apiauth[0].uid, ["alanr", "root"]);
        assert_eq!(h.debug, 3);
        assert_eq!(
            with("ping 10.0.0.1 10.0.0.x"),
            ["ha.cf:4:15: error: invalid ping node `10.0.0.x`: not an address or known host"]
        );
        assert_eq!(
            with("ping6 10.0.0.1"),
            ["ha.cf:4:7: error: invalid ping6 node `10.0.0.1`: not an address or known host"]
        );
        assert_eq!(
            with("ping_group g 10.0.0.1 nosuchhost"),
            [
                "ha.cf:4:23: error: invalid ping_group member `nosuchhost`: not an IPv4 address or known host"
            ]
        );
        assert_eq!(
            with("ping_group g"),
            ["ha.cf:4:1: error: ping_group needs 2 arguments"]
        );
        assert_eq!(
            with("respawn hacluster"),
            ["ha.cf:4:1: error: respawn needs 2 arguments"]
        );
        assert_eq!(
            with("apiauth ipfail user=x"),
            ["ha.cf:4:16: error: invalid apiauth `user=x`: expected uid=... or gid=..."]
        );
        assert_eq!(
            with("debug 256"),
            ["ha.cf:4:7: error: invalid debug level `256`: must be 0..255"]
        );
    }

    #[test]
    fn line_api_keeps_columns() {
        // The TOML reader feeds lines one at a time, at its own columns.
        let f: Arc<str> = "lvsd.toml".into();
        let mut d = Diagnostics::new();
        let mut p = HaCfParser::new(&Names::offline());
        p.line("\t deadtime 1  # comment", Loc::new(&f, 7, 5), &mut d);
        p.line("# only a comment", Loc::new(&f, 8, 1), &mut d);
        p.line("   ", Loc::new(&f, 9, 1), &mut d);
        p.line("bcast eth0", Loc::new(&f, 10, 3), &mut d);
        p.line("node a", Loc::new(&f, 11, 3), &mut d);
        p.line("auto_failback on", Loc::new(&f, 12, 3), &mut d);
        let h = p.finish(Loc::file(&f), &mut d);
        assert_eq!(h.deadtime_ms, 1000);
        assert_eq!(
            lines(d),
            [
                "lvsd.toml:7:16: error: deadtime (1000 ms) must be more than twice keepalive (1000 ms)"
            ]
        );
    }

    #[test]
    fn haresources_lines() {
        let (g, diags) = hares(
            "# c\nlb1 192.0.2.1 IPaddr2::192.0.2.2/24/eth0:vip/192.0.2.255 \\\n  ldirectord::ldirectord.cf MailTo::a@b::sub\nlb2 ldirectord 10.0.0.1/8 IPaddr2::2001:db8:0:0:0:0:0:5/64\n",
        );
        // lvsd runs no resource scripts: said at the word.
        assert_eq!(
            diags,
            [
                "haresources:3:29: warning: resource `MailTo::a@b::sub` is not run by lvsd: only the addresses move with failover"
            ]
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].origin.0.as_ref().map(|l| l.line), Some(2));
        assert_eq!(
            g[0].resources,
            [
                Resource::Ip(VipSpec {
                    agent: "IPaddr".into(),
                    address: ip("192.0.2.1"),
                    prefix: None,
                    interface: None,
                    broadcast: None,
                }),
                Resource::Ip(VipSpec {
                    agent: "IPaddr2".into(),
                    address: ip("192.0.2.2"),
                    prefix: Some(24),
                    interface: Some("eth0:vip".into()),
                    broadcast: Some(ip("192.0.2.255")),
                }),
                Resource::Ldirectord {
                    config: Some("ldirectord.cf".into())
                },
                Resource::Other {
                    script: "MailTo".into(),
                    args: vec!["a@b".into(), "sub".into()]
                },
            ]
        );
        assert_eq!(g[1].resources[0], Resource::Ldirectord { config: None });
        assert!(
            matches!(&g[1].resources[1], Resource::Ip(v) if v.agent == "IPaddr" && v.prefix == Some(8))
        );
        assert!(matches!(&g[1].resources[2], Resource::Ip(v) if v.prefix == Some(64)));
        // Not an address: the sample haresources' `node-name resource1 ... resourceN`.
        let (g, diags) = hares("node-name resource1 ... resourceN");
        assert_eq!(diags.len(), 3, "one warning per script: {diags:?}");
        assert_eq!(
            g[0].resources[1],
            Resource::Other {
                script: "...".into(),
                args: vec![]
            }
        );
    }

    #[test]
    fn haresources_errors_point_at_the_resource() {
        let cases = [
            (
                "lb1 IPaddr2::192.0.2.10/33/eth0",
                "haresources:1:5: error: invalid prefix length `33` in IPaddr2 resource `192.0.2.10/33/eth0`: must be 1..32",
            ),
            (
                "lb1 IPaddr2::2001:db8:0:0:0:0:0:1/129",
                "haresources:1:5: error: invalid prefix length `129` in IPaddr2 resource `2001:db8:0:0:0:0:0:1/129`: must be 1..128",
            ),
            (
                "lb1 IPaddr2::192.0.2.10/0",
                "haresources:1:5: error: invalid prefix length `0` in IPaddr2 resource `192.0.2.10/0`: must be 1..32",
            ),
            (
                "lb1  192.0.2.312",
                "haresources:1:6: error: invalid address `192.0.2.312` in IPaddr resource `192.0.2.312`",
            ),
            (
                "lb1 IPaddr::vip.example/24",
                "haresources:1:5: error: invalid address `vip.example` in IPaddr resource `vip.example/24`",
            ),
            (
                "lb1 IPaddr::192.0.2.1/24/eth0/192.0.2.x",
                "haresources:1:5: error: invalid broadcast `192.0.2.x` in IPaddr resource `192.0.2.1/24/eth0/192.0.2.x`",
            ),
            (
                "lb1 IPaddr::192.0.2.1/24/eth0/192.0.2.255/x",
                "haresources:1:5: error: unexpected `/x` in IPaddr resource `192.0.2.1/24/eth0/192.0.2.255/x`",
            ),
            (
                "lb1 IPaddr2",
                "haresources:1:5: error: IPaddr2 needs an address: IPaddr2::192.0.2.10/24/eth0",
            ),
            (
                "lb1",
                "haresources:1:1: warning: node `lb1` is given no resources",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(hares(text).1, [want], "{text}");
        }
        // heartbeat splits words at `::`: an IPv6 `::` is read whole, with a warning.
        for text in ["lb1 IPaddr2::2001:db8::1/64", "lb1 2001:db8::1"] {
            let (g, diags) = hares(text);
            assert_eq!(diags.len(), 1, "{diags:?}");
            assert!(
                diags[0].starts_with(
                    "haresources:1:5: warning: heartbeat would split the address in `2001:db8::1"
                ),
                "{diags:?}"
            );
            assert!(
                matches!(&g[0].resources[0], Resource::Ip(v) if v.address == ip("2001:db8::1"))
            );
        }
        // Across a continuation each word keeps its own line and column.
        let (g, diags) = hares("\n  lb1 httpd \\\n\t  IPaddr2::192.0.2.10/40 \\\n  # note\n");
        assert_eq!(
            diags,
            [
                "haresources:2:7: warning: resource `httpd` is not run by lvsd: only the addresses move with failover",
                "haresources:3:4: error: invalid prefix length `40` in IPaddr2 resource `192.0.2.10/40`: must be 1..32"
            ]
        );
        assert_eq!(
            g[0].origin.0.as_ref().map(|l| (l.line, l.column)),
            Some((2, 3))
        );
        // resource_line alone, at a column of its own.
        let f: Arc<str> = "lvsd.toml".into();
        let mut d = Diagnostics::new();
        let g = resource_line(
            "lb1 IPaddr2::1.2.3.4/99",
            Loc::new(&f, 3, 14),
            &Names::offline(),
            &mut d,
        );
        assert_eq!(g.map(|g| g.node), Some("lb1".to_string()));
        assert_eq!(d.items()[0].loc, Loc::new(&f, 3, 18));
        assert!(
            resource_line("  # nothing", Loc::new(&f, 1, 1), &Names::offline(), &mut d).is_none()
        );
    }

    #[test]
    fn authkeys_rules() {
        let (k, diags) = keys(
            "# keys\nauth 2\n1 crc\n2 sha1 s e c\n3 md5 m\n",
            Some(0o600),
        );
        let k = k.expect("valid");
        assert_eq!(k.active, 2);
        assert_eq!(
            k.keys,
            [
                AuthKey {
                    index: 1,
                    method: AuthMethod::Crc
                },
                AuthKey {
                    index: 2,
                    method: AuthMethod::Sha1("s e c".into())
                },
                AuthKey {
                    index: 3,
                    method: AuthMethod::Md5("m".into())
                },
            ]
        );
        assert_eq!(
            diags,
            ["authkeys:3:3: warning: crc authenticates nothing (integrity only)"]
        );
        let cases = [
            (
                "1 sha1 x\n",
                Some(0o600),
                "authkeys: error: no `auth N` line: which key signs packets?",
            ),
            (
                "auth 2\n1 sha1 x\n",
                Some(0o600),
                "authkeys:1:6: error: auth 2 names a key that is not defined",
            ),
            (
                "auth 1\n1 md5\n",
                Some(0o600),
                "authkeys:2:3: error: md5 needs a secret: `1 md5 SECRET`",
            ),
            (
                "auth 1\n1 sha1\n",
                Some(0o600),
                "authkeys:2:3: error: sha1 needs a secret: `1 sha1 SECRET`",
            ),
            (
                "auth 1\n1 crc k\n",
                Some(0o600),
                "authkeys:2:7: error: auth method crc doesn't use a key",
            ),
            (
                "auth 1\n1 sha1 a\n1 md5 b\n",
                Some(0o600),
                "authkeys:3:1: error: key 1 is defined twice",
            ),
            (
                "auth 1\n1 sha256 a\n",
                Some(0o600),
                "authkeys:2:3: error: unknown authentication method `sha256`",
            ),
            (
                "auth 16\n1 sha1 a\n",
                Some(0o600),
                "authkeys:1:6: error: auth needs a key index 1..15",
            ),
            (
                "auth\n1 sha1 a\n",
                Some(0o600),
                "authkeys:1:1: error: auth needs a key index 1..15",
            ),
            (
                "auth 1\n1 sha1 a\n0 sha1 b\n",
                Some(0o600),
                "authkeys:3:1: error: invalid key index `0`: must be 1..15",
            ),
            (
                "auth 1\n1\n",
                Some(0o600),
                "authkeys:2:1: error: key 1 has no method",
            ),
            (
                "auth 1\n1 sha1 x\n",
                Some(0o100644),
                "authkeys: error: Bad permissions on keyfile [/etc/ha.d/authkeys], 600 recommended.",
            ),
            (
                "auth 1\n1 sha1 x\n",
                Some(0o640),
                "authkeys: error: Bad permissions on keyfile [/etc/ha.d/authkeys], 600 recommended.",
            ),
        ];
        for (text, mode, want) in cases {
            let (k, diags) = keys(text, mode);
            assert!(k.is_none(), "{text}");
            assert_eq!(diags, [want], "{text}");
        }
        // Group/world write or execute bits alone are not what heartbeat checks.
        assert!(keys("auth 1\n1 sha1 x\n", Some(0o622)).0.is_some());
        assert!(keys("auth 1\n1 sha1 x\n", None).0.is_some());
        let (k, diags) = keys("auth 1\nauth 2\n1 sha1 x\n2 sha1 y\n", Some(0o400));
        assert_eq!(k.map(|k| k.active), Some(2));
        assert_eq!(
            diags,
            ["authkeys:2:1: warning: a second auth line: key 2 signs, not 1"]
        );
        let f: Arc<str> = "authkeys".into();
        let mut d = Diagnostics::new();
        parse_authkeys(
            &f,
            Path::new("/etc/ha.d/authkeys"),
            "auth 1\n1 sha1 x\n",
            Some(0o644),
            &mut d,
        );
        assert_eq!(
            d.items()[0].hint.as_deref(),
            Some("chmod 600 /etc/ha.d/authkeys")
        );
    }

    fn failover(hacf_text: &str, hares_text: &str) -> Vec<String> {
        let (ha, _) = hacf(hacf_text);
        let (resources, _) = hares(hares_text);
        let (k, _) = keys("auth 1\n1 sha1 x\n", None);
        let f = Failover {
            ha,
            resources,
            authkeys: k.expect("keys"),
        };
        let mut d = Diagnostics::new();
        check_failover(&f, &"ha.cf".into(), &mut d);
        lines(d)
    }

    #[test]
    fn cross_file_checks() {
        let base = "ucast eth0 10.0.0.2\nauto_failback on\nping 10.0.0.254\n";
        assert!(
            failover(
                &format!("{base}node lb1 lb2\n"),
                "lb1 10.0.0.10\nLB2 10.0.0.11\n"
            )
            .is_empty()
        );
        assert_eq!(
            failover(
                &format!("{base}node lb1 lb2\n"),
                "lb1 10.0.0.10\n\n lb3 10.0.0.11\n"
            ),
            ["haresources:3:2: error: node `lb3` is not a node in ha.cf"]
        );
        assert_eq!(
            failover(&format!("{base}node lb1 lb2 lb3\n"), "lb1 10.0.0.10\n"),
            ["ha.cf: warning: 3 nodes: lvsd, like ipfail, runs two-node clusters"]
        );
    }

    #[test]
    fn read_dir_reports_missing_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let hacf = tmp.path().join("ha.cf");
        std::fs::write(&hacf, "ucast eth0 10.0.0.2\nnode a\nauto_failback on\n").expect("write");
        let mut d = Diagnostics::new();
        assert!(read_dir(&hacf, &Names::offline(), &mut d).is_none());
        let prefix = format!("{}/", tmp.path().display());
        let got: Vec<String> = lines(d).iter().map(|l| l.replace(&prefix, "")).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("authkeys: error: cannot read file:"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("haresources: error: cannot read file:"),
            "{got:?}"
        );
    }
}
