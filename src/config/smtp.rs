//! The `smtp` setting, read once into [`SmtpServer`] (pure; the mailer in
//! [`crate::alert::smtp`] connects with it).
//!
//! `smtp` is ldirectord's `host` (port 25) or `host:port`, or a URL for
//! what ldirectord could not do: `smtp://[user:password@]host[:port]` and
//! `smtps://...` (TLS from the first byte, port 465), with options
//! `?tls=none|opportunistic|required` and `&ca=/path/to/ca.pem` (a CA to
//! trust beside the system's). Unset: the MTA on localhost:25.

use std::path::PathBuf;

use serde::Serialize;

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsMode {
    /// Never TLS.
    None,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS, or no mail.
    Required,
    /// TLS from the first byte (`smtps://`).
    Wrapper,
}

/// An `smtp` setting, read once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SmtpServer {
    /// As written (dump and convert write it back).
    pub spec: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS.
    pub tls: TlsMode,
    /// AUTH user and password.
    pub login: Option<(String, String)>,
    /// A CA certificate (PEM) to trust beside the system's.
    pub ca: Option<PathBuf>,
}

impl SmtpServer {
    /// ldirectord's default: the MTA on localhost:25, as its sendmail.
    pub fn localhost() -> SmtpServer {
        SmtpServer {
            spec: "localhost:25".to_owned(),
            host: "localhost".to_owned(),
            port: 25,
            tls: TlsMode::Opportunistic,
            login: None,
            ca: None,
        }
    }

    /// Reads an `smtp` setting; the error says what is wrong.
    pub fn parse(s: &str) -> Result<SmtpServer, SmtpError> {
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, s),
        };
        let (mut tls, default_port) = match scheme {
            None | Some("smtp") => (TlsMode::Opportunistic, 25),
            Some("smtps") => (TlsMode::Wrapper, 465),
            Some(other) => return Err(SmtpError::Scheme(other.to_owned())),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) if scheme.is_some() => (r, Some(q)),
            _ => (rest, None),
        };
        let (login, hostport) = match rest.rsplit_once('@') {
            Some((l, h)) if scheme.is_some() => {
                let (u, p) = l.split_once(':').ok_or(SmtpError::Login)?;
                (Some((decode(u)?, decode(p)?)), h)
            }
            _ => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(SmtpError::Bracket)?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(SmtpError::AfterAddress(after.to_owned())),
            }
        } else if hostport.matches(':').count() > 1 {
            (hostport, None) // a bare IPv6 address
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
        {
            return Err(SmtpError::Host(host.to_owned()));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| SmtpError::Port(p.to_owned()))?,
            None => default_port,
        };
        let mut ca = None;
        for kv in query.into_iter().flat_map(|q| q.split('&')) {
            match kv.split_once('=') {
                Some(("tls", "none")) if tls != TlsMode::Wrapper => tls = TlsMode::None,
                Some(("tls", "opportunistic")) if tls != TlsMode::Wrapper => {
                    tls = TlsMode::Opportunistic
                }
                Some(("tls", "required")) if tls != TlsMode::Wrapper => tls = TlsMode::Required,
                Some(("ca", path)) if path.starts_with('/') => ca = Some(PathBuf::from(path)),
                _ => {
                    return Err(SmtpError::Option(kv.to_owned()));
                }
            }
        }
        if login.is_some() && tls == TlsMode::None {
            return Err(SmtpError::PasswordWithoutTls);
        }
        Ok(SmtpServer {
            spec: s.to_owned(),
            host: host.to_owned(),
            port,
            tls,
            login,
            ca,
        })
    }

    /// `host:port`, for log lines (never the password).
    pub fn name(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for SmtpServer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.spec)
    }
}

/// `%40` and the like in a URL's user or password.
fn decode(s: &str) -> Result<String, SmtpError> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(SmtpError::Escape)?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SmtpError::NotUtf8)
}

/// What is wrong with an `smtp` setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// Not smtp:// or smtps://.
    #[error("unknown scheme `{0}://` (smtp or smtps)")]
    Scheme(String),
    /// A login without `user:password`.
    #[error("write user:password@host")]
    Login,
    /// `[` without `]`.
    #[error("missing `]`")]
    Bracket,
    /// Text after `[address]`.
    #[error("unexpected `{0}` after the address")]
    AfterAddress(String),
    /// No host, or one with characters no host has.
    #[error("invalid host `{0}`")]
    Host(String),
    /// Not a port 1..65535.
    #[error("invalid port `{0}`")]
    Port(String),
    /// An unknown `?option`.
    #[error(
        "unknown option `{0}` (tls=none|opportunistic|required for smtp://, ca=/absolute/path.pem)"
    )]
    Option(String),
    /// A login with tls=none.
    #[error("a password is never sent without TLS: drop tls=none")]
    PasswordWithoutTls,
    /// A bad `%XX`.
    #[error("bad %-escape in user or password")]
    Escape,
    /// The decoded user or password is not UTF-8.
    #[error("user or password is not UTF-8")]
    NotUtf8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_settings() {
        let s = SmtpServer::parse("mail.example.org").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.org", 25, TlsMode::Opportunistic)
        );
        let s = SmtpServer::parse("192.0.2.1:2525").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("192.0.2.1", 2525));
        let s = SmtpServer::parse("[2001:db8::1]:587").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.name()),
            ("2001:db8::1", 587, "[2001:db8::1]:587".into())
        );
        let s = SmtpServer::parse("smtp://alerts:p%40ss@mx:587?tls=required&ca=/etc/lvsd/ca.pem")
            .unwrap();
        assert_eq!(s.login, Some(("alerts".into(), "p@ss".into())));
        assert_eq!((s.port, s.tls), (587, TlsMode::Required));
        assert_eq!(s.ca, Some(PathBuf::from("/etc/lvsd/ca.pem")));
        let s = SmtpServer::parse("smtps://mx").unwrap();
        assert_eq!((s.port, s.tls), (465, TlsMode::Wrapper));
        for bad in [
            "",
            "mx:0",
            "mx:99999",
            "pop3://mx",
            "smtp://mx?tls=maybe",
            "smtp://u:p@mx?tls=none",
            "smtp://user@mx",
            "mx host",
            "smtp://mx?ca=relative.pem",
        ] {
            assert!(SmtpServer::parse(bad).is_err(), "{bad}");
        }
    }
}
