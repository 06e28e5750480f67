//! Sending alert mails: the `smtp` setting, and a bounded queue per
//! server with retries.
//!
//! `smtp` is ldirectord's `host` (port 25) or `host:port`, or a URL for
//! what ldirectord could not do: `smtp://[user:password@]host[:port]` and
//! `smtps://...` (TLS from the first byte, port 465), with options
//! `?tls=none|opportunistic|required` and `&ca=/path/to/ca.pem` (a CA to
//! trust beside the system's). STARTTLS is used when the server offers it
//! (`opportunistic`, the default), and the server's certificate is then
//! verified. Unset: the MTA on localhost:25, as ldirectord's sendmail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

use super::{Mail, Recipient};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A parsed `smtp` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
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

impl Server {
    /// Reads an `smtp` setting; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Server, String> {
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, s),
        };
        let (mut tls, default_port) = match scheme {
            None | Some("smtp") => (TlsMode::Opportunistic, 25),
            Some("smtps") => (TlsMode::Wrapper, 465),
            Some(other) => return Err(format!("unknown scheme `{other}://` (smtp or smtps)")),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) if scheme.is_some() => (r, Some(q)),
            _ => (rest, None),
        };
        let (login, hostport) = match rest.rsplit_once('@') {
            Some((l, h)) if scheme.is_some() => {
                let (u, p) = l.split_once(':').ok_or("write user:password@host")?;
                (Some((decode(u)?, decode(p)?)), h)
            }
            _ => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("missing `]`")?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(format!("unexpected `{after}` after the address")),
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
            return Err(format!("invalid host `{host}`"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or(format!("invalid port `{p}`"))?,
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
                    return Err(format!(
                        "unknown option `{kv}` (tls=none|opportunistic|required for smtp://, ca=/absolute/path.pem)"
                    ));
                }
            }
        }
        if login.is_some() && tls == TlsMode::None {
            return Err("a password is never sent without TLS: drop tls=none".into());
        }
        Ok(Server {
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

    fn transport(&self, hello: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let params = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(self.host.clone());
            if let Some(path) = &self.ca {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("reading the CA {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("the CA {}: {e}", path.display()))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| format!("TLS: {e}"))
        };
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::Opportunistic => Tls::Opportunistic(params()?),
            TlsMode::Required => Tls::Required(params()?),
            TlsMode::Wrapper => Tls::Wrapper(params()?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)))
            .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                hello.to_owned(),
            ));
        if let Some((u, p)) = &self.login {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }
}

/// `%40` and the like in a URL's user or password.
fn decode(s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape in user or password")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "user or password is not UTF-8".into())
}

/// How many mails wait for one server before new ones are dropped.
pub const QUEUE: usize = 64;
/// A mail not delivered after this long is given up (logged).
pub const GIVE_UP: Duration = Duration::from_secs(24 * 3600);

/// The delivery queues, one task per server.
pub struct Outbox {
    director: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    queues: HashMap<Option<String>, (mpsc::Sender<Mail>, tokio::task::JoinHandle<()>)>,
}

impl Outbox {
    /// No queue yet.
    pub fn new(director: String, metrics: Option<Arc<crate::metrics::Metrics>>) -> Outbox {
        Outbox {
            director,
            metrics,
            queues: HashMap::new(),
        }
    }

    /// Queues a mail; never waits.
    pub fn send(&mut self, mail: Mail) {
        let key = mail.recipient.server.clone();
        let (tx, _) = self.queues.entry(key.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let task = tokio::spawn(deliver(
                key,
                rx,
                self.director.clone(),
                self.metrics.clone(),
            ));
            (tx, task)
        });
        match tx.try_send(mail) {
            Ok(()) => {
                if let Some(m) = &self.metrics {
                    m.alert_queued(1);
                }
            }
            Err(e) => {
                let mail = e.into_inner();
                tracing::error!(
                    "alert mail to {} dropped: {} mails already wait for {} (subject: {})",
                    mail.recipient.to,
                    QUEUE,
                    mail.recipient.server.as_deref().unwrap_or("localhost:25"),
                    mail.subject
                );
                if let Some(m) = &self.metrics {
                    m.alert_outcome("dropped");
                }
            }
        }
    }

    /// Lets the queues finish for up to `grace`.
    pub async fn close(self, grace: Duration) {
        let tasks: Vec<_> = self
            .queues
            .into_values()
            .map(|(tx, task)| {
                drop(tx);
                task
            })
            .collect();
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("alerts: mails still queued at stop are not sent");
        }
    }
}

/// One server's queue: each mail until it is sent, with backoff.
async fn deliver(
    server: Option<String>,
    mut rx: mpsc::Receiver<Mail>,
    director: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) {
    let spec = server.as_deref().unwrap_or("localhost:25");
    let transport = Server::parse(spec).and_then(|s| Ok((s.name(), s.transport(&director)?)));
    let (name, transport) = match transport {
        Ok(t) => t,
        Err(e) => {
            // The config check refuses what parse refuses; a CA that
            // cannot be read ends here.
            tracing::error!("alerts: smtp `{spec}`: {e}; its mails are dropped");
            while let Some(m) = rx.recv().await {
                tracing::error!("alert mail to {} dropped: {}", m.recipient.to, m.subject);
                if let Some(mx) = &metrics {
                    mx.alert_queued(-1);
                    mx.alert_outcome("dropped");
                }
            }
            return;
        }
    };
    while let Some(mail) = rx.recv().await {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_secs(1);
        let mut attempt = 1u32;
        let outcome = loop {
            let msg = match message(&mail, &director) {
                Ok(m) => m,
                Err(e) => break Err(e),
            };
            match transport.send(msg).await {
                Ok(_) => break Ok(()),
                Err(e) if started.elapsed() < GIVE_UP => {
                    tracing::warn!(
                        "alert mail to {} via {name} not sent (attempt {attempt}): {e}; retrying in {} s",
                        mail.recipient.to,
                        backoff.as_secs()
                    );
                    if let Some(m) = &metrics {
                        m.alert_outcome("retried");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    attempt += 1;
                }
                Err(e) => break Err(format!("given up after {attempt} attempts: {e}")),
            }
        };
        if let Some(m) = &metrics {
            m.alert_queued(-1);
            m.alert_outcome(if outcome.is_ok() { "sent" } else { "failed" });
        }
        match outcome {
            Ok(()) => tracing::info!(
                "alert mail sent to {} via {name}: {}",
                mail.recipient.to,
                mail.subject
            ),
            Err(e) => tracing::error!(
                "alert mail to {} via {name} not sent: {e} (subject: {})",
                mail.recipient.to,
                mail.subject
            ),
        }
    }
}

/// The message; a bare local part gets `@director` (as sendmail
/// qualifies it).
fn message(mail: &Mail, director: &str) -> Result<Message, String> {
    let qualify = |a: &str| {
        if a.contains('@') {
            a.to_owned()
        } else {
            format!("{a}@{director}")
        }
    };
    let Recipient { from, to, .. } = &mail.recipient;
    let from = qualify(from.as_deref().unwrap_or("root"));
    Message::builder()
        .from(from.parse().map_err(|e| format!("from `{from}`: {e}"))?)
        .to(qualify(to)
            .parse()
            .map_err(|e| format!("recipient `{to}`: {e}"))?)
        .subject(mail.subject.clone())
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_settings() {
        let s = Server::parse("mail.example.org").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.org", 25, TlsMode::Opportunistic)
        );
        let s = Server::parse("192.0.2.1:2525").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("192.0.2.1", 2525));
        let s = Server::parse("[2001:db8::1]:587").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.name()),
            ("2001:db8::1", 587, "[2001:db8::1]:587".into())
        );
        let s =
            Server::parse("smtp://alerts:p%40ss@mx:587?tls=required&ca=/etc/lvsd/ca.pem").unwrap();
        assert_eq!(s.login, Some(("alerts".into(), "p@ss".into())));
        assert_eq!((s.port, s.tls), (587, TlsMode::Required));
        assert_eq!(s.ca, Some(PathBuf::from("/etc/lvsd/ca.pem")));
        let s = Server::parse("smtps://mx").unwrap();
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
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bare_recipient_is_qualified_with_the_director() {
        let mail = Mail {
            recipient: Recipient {
                server: None,
                from: None,
                to: "root".into(),
            },
            subject: "s".into(),
            body: "b".into(),
        };
        let m = message(&mail, "d1").unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("To: root@d1"), "{text}");
        assert!(text.contains("From: root@d1"), "{text}");
    }
}
