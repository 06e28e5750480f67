//! A `real=` line (ldirectord's grammar: `host[->host][:port] [gate|masq|
//! ipip] [weight] ["request","receive"] [l:N] [u:N]`) into a [`RealDraft`].

use super::*;

/// ldirectord prepends `/` to every request (a path for http; the
/// checkers strip it again where the request is not a path).
pub(crate) fn with_slash(request: String) -> String {
    if request.starts_with('/') {
        request
    } else {
        format!("/{request}")
    }
}

pub(super) fn is_contiguous_mask(a: Ipv4Addr) -> bool {
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

pub(super) fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
}

pub(super) fn finish_real(
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
    let mut over = None;
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
        over = Some((req, recv));
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
    // The receive is compiled once the line has read well: a line that
    // fails for its syntax gets that one error, not a pattern's too.
    if let Some((req, recv)) = over {
        r.check_override = Some(RequestReceive {
            request: with_slash(req),
            receive: pattern(&recv, &v.loc, d),
            url: None,
        });
    }
    Some(r)
}

/// Splits on whitespace and on the comma between `"a","b"`, keeping quoted
/// strings (which may contain spaces) whole.
pub(super) struct Tokens<'a> {
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

pub(super) fn unquote_token(t: &str) -> Option<String> {
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.to_string())
}
