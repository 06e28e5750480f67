//! The ldirectord.cf reader, with ldirectord 4.12's grammar: global
//! directives start in column 0; `virtual=` / `virtual6=` opens a block
//! whose lines are indented by at least 4 spaces or a tab; the first line
//! that is not indented (a blank line included) ends it.
//!
//! Where ldirectord has a plain bug this reader does the sensible thing and
//! says what ldirectord would have done (a `#` inside quotes, `\r` from CRLF
//! files, trailing comments on global lines).

use std::sync::Arc;

use super::diagnostic::{Diagnostics, Loc, did_you_mean};
use super::draft::{
    self, Draft, GLOBAL_DIRECTIVES, KeyDraft, VIRTUAL_DIRECTIVES, Value, VirtualDraft,
};
use super::names::Names;

/// Reads one ldirectord.cf into `draft` (several files may add to one draft).
pub(crate) fn read(
    file: &Arc<str>,
    text: &str,
    names: &Names,
    draft: &mut Draft,
    d: &mut Diagnostics,
) {
    let mut current: Option<VirtualDraft> = None;
    let mut crlf_warned = false;
    let mut blank_after_block: Option<u32> = None;

    for (i, raw) in text.split('\n').enumerate() {
        let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mut line = raw;
        if let Some(l) = line.strip_suffix('\r') {
            line = l;
            if !crlf_warned {
                crlf_warned = true;
                d.warn(Loc::new(file, lineno, 1), "file has CRLF (DOS) line endings")
                    .hint("ldirectord would keep the \\r in every value; lvsd ignores it. Convert with dos2unix");
            }
        }
        let loc = |col: usize| Loc::new(file, lineno, u32::try_from(col + 1).unwrap_or(u32::MAX));

        // Expand tabs as ldirectord does before measuring indentation.
        let expanded = line.replace('\t', "    ");
        let trimmed = expanded.trim_start();
        if trimmed.is_empty() {
            if current.is_some() {
                blank_after_block = Some(lineno);
            }
            if let Some(v) = current.take() {
                draft.virtuals.push(v);
            }
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        let indent = expanded.len() - trimmed.len();
        let (body, comment_col) = strip_comment(trimmed);
        if let Some(q) = hash_in_quotes(trimmed) {
            d.warn(loc(indent + q), "`#` inside a quoted value")
                .hint("ldirectord cuts the line at every `#`, even inside quotes; lvsd keeps it");
        }
        let body = body.trim_end();

        if indent == 0 {
            if let Some(v) = current.take() {
                draft.virtuals.push(v);
            }
            blank_after_block = None;
            let Some((key, value_col, value)) = split_directive(body) else {
                d.error(
                    loc(0),
                    format!("expected `directive = value`, found `{body}`"),
                );
                continue;
            };
            if comment_col.is_some() {
                d.warn(loc(0), format!("comment after global directive `{key}`"))
                    .hint("ldirectord does not strip comments from global lines and would read them as part of the value");
            }
            let v = make_value(value, loc(value_col), d);
            if key == "virtual" || key == "virtual6" {
                current = Some(open_virtual(key == "virtual6", &v, loc(0), d));
                continue;
            }
            if !draft::set_global(&mut draft.global, key, &v, names, d) {
                unknown(key, loc(0), false, d);
            }
            continue;
        }

        // An indented line.
        let Some(vd) = current.as_mut() else {
            let m = d.error(
                loc(indent),
                format!(
                    "`{}` is indented but not inside a virtual block",
                    first_word(body)
                ),
            );
            match blank_after_block {
                Some(b) => m.hint(format!(
                    "the blank line {b} ended the virtual block, as in ldirectord; remove it"
                )),
                None => m.hint("directives of a virtual service follow a `virtual=` line; global directives start in column 1"),
            };
            continue;
        };
        if indent < 4 {
            d.error(
                loc(indent),
                "virtual block lines must be indented by at least 4 spaces or a tab",
            )
            .hint("ldirectord would end the block here and reject the line");
            continue;
        }
        let Some((key, value_col, value)) = split_directive(body) else {
            d.error(
                loc(indent),
                format!("expected `directive = value`, found `{body}`"),
            );
            continue;
        };
        let v = make_value(value, loc(indent + value_col), d);
        match key {
            "real" | "real6" => {
                if (key == "real6") != vd.ipv6 {
                    let want = if vd.ipv6 { "real6" } else { "real" };
                    d.error(
                        loc(indent),
                        format!("cannot specify \"{key}\" here; use \"{want}\" instead"),
                    );
                    continue;
                }
                if let Some(r) = draft::parse_real(&v, vd.ipv6, d) {
                    vd.reals.push(r);
                }
            }
            "virtual" | "virtual6" => {
                d.error(loc(indent), format!("`{key}` must start in column 1"))
                    .hint("a new virtual block is not indented");
            }
            _ => {
                if !draft::set_virtual(vd, key, &v, names, d) {
                    unknown(key, loc(indent), true, d);
                }
            }
        }
    }
    if let Some(v) = current.take() {
        draft.virtuals.push(v);
    }
}

fn first_word(s: &str) -> &str {
    s.split(|c: char| c == '=' || c.is_whitespace())
        .next()
        .unwrap_or(s)
}

fn unknown(key: &str, loc: Loc, in_virtual: bool, d: &mut Diagnostics) {
    let (here, other) = if in_virtual {
        (VIRTUAL_DIRECTIVES, GLOBAL_DIRECTIVES)
    } else {
        (GLOBAL_DIRECTIVES, VIRTUAL_DIRECTIVES)
    };
    let m = d.error(loc, format!("unknown directive `{key}`"));
    if let Some(c) = did_you_mean(key, here.iter().copied()) {
        m.hint(format!("did you mean `{c}`?"));
    } else if other.contains(&key) {
        m.hint(if in_virtual {
            format!("`{key}` is a global directive: write it in column 1, outside virtual blocks")
        } else {
            format!("`{key}` belongs inside a virtual block (indent it under a `virtual=` line)")
        });
    }
}

/// `key = value` → (key, column of value, value). Keys are words with `-`/`_`.
fn split_directive(body: &str) -> Option<(&str, usize, &str)> {
    let key_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(body.len());
    let key = &body[..key_end];
    if key.is_empty() {
        return None;
    }
    let rest = &body[key_end..];
    let after_ws = rest.trim_start();
    if after_ws.is_empty() && key == "supervised" {
        // ldirectord accepts a bare `supervised`.
        return Some((key, body.len(), ""));
    }
    let after_eq = after_ws.strip_prefix('=')?;
    let value = after_eq.trim_start();
    Some((key, body.len() - value.len(), value))
}

/// Removes surrounding double quotes; reports an unterminated quote.
fn make_value(value: &str, loc: Loc, d: &mut Diagnostics) -> Value {
    if let Some(inner) = value.strip_prefix('"') {
        match inner.rfind('"') {
            Some(end) => {
                let after = inner[end + 1..].trim();
                if !after.is_empty() {
                    d.error(
                        loc.clone(),
                        format!("unexpected `{after}` after the closing quote"),
                    );
                }
                Value {
                    text: inner[..end].to_string(),
                    quoted: true,
                    loc,
                }
            }
            None => {
                d.error(loc.clone(), "unterminated quote")
                    .hint("close the value with a double quote");
                Value {
                    text: inner.to_string(),
                    quoted: true,
                    loc,
                }
            }
        }
    } else {
        Value {
            text: value.to_string(),
            quoted: false,
            loc,
        }
    }
}

/// Cuts a trailing `# comment` that is outside double quotes. Returns the
/// text before it and the comment's column, if any.
fn strip_comment(s: &str) -> (&str, Option<usize>) {
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '#' if !in_quote => return (&s[..i], Some(i)),
            _ => {}
        }
    }
    (s, None)
}

/// The byte offset of the first `#` inside double quotes, if any.
fn hash_in_quotes(s: &str) -> Option<usize> {
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '#' if in_quote => return Some(i),
            _ => {}
        }
    }
    None
}

/// `virtual=ip:port`, `virtual=host:port`, `virtual=N` (fwmark),
/// `virtual6=[v6]:port`, `virtual6=N`.
fn open_virtual(ipv6: bool, v: &Value, loc: Loc, d: &mut Diagnostics) -> VirtualDraft {
    let mut vd = VirtualDraft::new(loc, ipv6);
    // Every early return below has reported the problem.
    vd.key_failed = true;
    let t = v.text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        match t.parse::<u32>() {
            Ok(m) if m > 0 => {
                vd.key = Some(KeyDraft::Fwmark(m));
                vd.key_failed = false;
            }
            _ => {
                d.error(
                    v.loc.clone(),
                    format!("invalid fwmark `{t}`: must be 1..4294967295"),
                );
            }
        }
        return vd;
    }
    if t.starts_with('[') && !ipv6 {
        d.error(
            v.loc.clone(),
            "cannot specify an IPv6 address here; use \"virtual6\" instead",
        );
        return vd;
    }
    if ipv6 && !t.starts_with('[') {
        d.error(
            v.loc.clone(),
            format!("invalid address for virtual6 server `{t}`"),
        )
        .hint("write virtual6=[2001:db8::1]:80, or a fwmark number");
        return vd;
    }
    let (host, port) = draft::split_host_port(t);
    match port {
        Some(p) if !p.is_empty() && !host.is_empty() => {
            vd.key = Some(KeyDraft::Address {
                host: host.to_string(),
                port: p.to_string(),
            });
            vd.key_failed = false;
        }
        _ => {
            let m = d.error(
                v.loc.clone(),
                format!("invalid address for virtual server `{t}`: no port"),
            );
            if host.split('.').count() == 4 {
                m.hint("write ADDRESS:PORT; ldirectord would read a bare address as the fwmark of its first number");
            } else {
                m.hint("write ADDRESS:PORT, or a number for a fwmark service");
            }
        }
    }
    vd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::*;

    fn read_str(text: &str) -> (Config, Vec<String>) {
        let f: Arc<str> = "ldirectord.cf".into();
        let mut d = Diagnostics::new();
        let mut draft = Draft::default();
        read(&f, text, &Names::offline(), &mut draft, &mut d);
        let (global, virtuals) = draft::build(&draft, &Names::offline(), &mut d);
        let cfg = Config {
            global,
            virtuals,
            failover: None,
        };
        let diags = d.into_sorted().iter().map(|x| x.to_string()).collect();
        (cfg, diags)
    }

    #[test]
    fn defaults_follow_ldirectord() {
        let (c, diags) = read_str("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n");
        assert!(diags.is_empty(), "{diags:?}");
        let v = &c.virtuals[0];
        assert_eq!(v.scheduler, "wrr");
        assert_eq!(v.check.checktype, CheckType::Negotiate);
        assert_eq!(v.check.service, Service::Http);
        assert_eq!(v.check.request, "/");
        assert_eq!((v.check.checktimeout, v.check.negotiatetimeout), (5, 30));
        assert_eq!(v.check.checkinterval, 10);
        assert!(!v.quiescent && v.cleanstop);
        assert_eq!(v.reals[0].weight, 1);
        // Unset: journald or stderr (ldirectord: /var/log/ldirectord.log).
        assert_eq!(c.global.logfile, None);
    }

    #[test]
    fn lvs_sync_daemon_interface_and_id() {
        let (c, diags) = read_str("lvs_sync_daemon = eth1 id 7\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            c.global.lvs_sync_daemon,
            Some(SyncDaemonSpec {
                interface: "eth1".into(),
                sync_id: 7
            })
        );
        let (c, _) = read_str("lvs_sync_daemon = eth1\n");
        assert_eq!(c.global.lvs_sync_daemon.map(|s| s.sync_id), Some(0));
        for (bad, why) in [
            (
                "lvs_sync_daemon = eth1 id 300",
                "invalid lvs_sync_daemon id `300`: 0..255",
            ),
            (
                "lvs_sync_daemon = eth1 port 8848",
                "invalid lvs_sync_daemon `eth1 port 8848`: write INTERFACE [id N]",
            ),
        ] {
            let (_, diags) = read_str(&format!("{bad}\n"));
            assert_eq!(
                diags,
                [format!("ldirectord.cf:1:19: error: {why}")],
                "{bad}"
            );
        }
    }

    #[test]
    fn timeouts_default_to_each_other() {
        let (c, _) = read_str("checktimeout=3\nvirtual=10.0.0.1:80\n\treal=10.0.0.2 gate\n");
        assert_eq!(
            (
                c.virtuals[0].check.checktimeout,
                c.virtuals[0].check.negotiatetimeout
            ),
            (3, 3)
        );
        let (c, _) = read_str("negotiatetimeout=7\nvirtual=10.0.0.1:80\n\tchecktimeout=2\n");
        assert_eq!(
            (
                c.virtuals[0].check.checktimeout,
                c.virtuals[0].check.negotiatetimeout
            ),
            (2, 2)
        );
    }

    #[test]
    fn udp_for_port_53_and_fwmark_checks_nothing() {
        let (c, _) = read_str(
            "virtual=10.0.0.1:53\n\treal=10.0.0.2 gate\nvirtual=7\n\treal=10.0.0.3 gate\n",
        );
        assert!(matches!(
            c.virtuals[0].key,
            VirtualKey::Address {
                protocol: Protocol::Udp,
                ..
            }
        ));
        assert_eq!(c.virtuals[0].check.service, Service::Dns);
        assert_eq!(
            c.virtuals[1].key,
            VirtualKey::Fwmark {
                fwmark: 7,
                ipv6: false
            }
        );
        assert_eq!(c.virtuals[1].check.service, Service::None);
    }

    #[test]
    fn ftp_login_defaults() {
        let (c, _) = read_str(
            "virtual=10.0.0.1:21\n\tservice=ftp\nvirtual=10.0.0.2:21\nvirtual=10.0.0.3:21\n\tlogin=\"u\"\n",
        );
        assert_eq!(c.virtuals[0].check.login, "anonymous");
        assert_eq!(c.virtuals[0].check.passwd, "ldirectord@localhost");
        assert_eq!(c.virtuals[1].check.login, "anonymous");
        assert_eq!(c.virtuals[2].check.login, "u");
    }

    #[test]
    fn comments_and_quotes() {
        let (c, diags) = read_str("virtual=10.0.0.1:80\n\treceive=\"a#b\" # real comment\n");
        assert_eq!(c.virtuals[0].check.receive, "a#b");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].contains("`#` inside a quoted value"));
    }

    #[test]
    fn blank_line_ends_a_block() {
        let (_, diags) =
            read_str("virtual=10.0.0.1:80\n\treal=10.0.0.2 gate\n\n\treal=10.0.0.3 gate\n");
        assert_eq!(
            diags,
            [
                "ldirectord.cf:4:5: error: `real` is indented but not inside a virtual block\n  = hint: the blank line 3 ended the virtual block, as in ldirectord; remove it"
            ]
        );
    }
}
