//! Sending alert mails through the `smtp` setting (read by
//! [`crate::config::SmtpServer`]), a bounded queue per server with
//! retries. STARTTLS is used when the server offers it (`opportunistic`,
//! the default), and the server's certificate is then verified.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

use super::{Mail, Recipient};
use crate::config::{SmtpServer, TlsMode};

/// Why a mail cannot go out.
#[derive(Debug, thiserror::Error)]
enum MailError {
    /// The `ca=` file cannot be read.
    #[error("reading the CA {path}: {source}")]
    ReadCa {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The `ca=` file is no PEM certificate.
    #[error("the CA {path}: {source}")]
    BadCa {
        path: std::path::PathBuf,
        source: lettre::transport::smtp::Error,
    },
    /// TLS cannot be set up.
    #[error("TLS: {0}")]
    Tls(lettre::transport::smtp::Error),
    /// The sender's address is not one.
    #[error("from `{from}`: {source}")]
    From {
        from: String,
        source: lettre::address::AddressError,
    },
    /// A recipient's address is not one.
    #[error("recipient `{to}`: {source}")]
    To {
        to: String,
        source: lettre::address::AddressError,
    },
    /// The message cannot be built.
    #[error("{0}")]
    Build(#[from] lettre::error::Error),
    /// The server did not take it, after every retry.
    #[error("given up after {attempts} attempts: {source}")]
    GivenUp {
        attempts: u32,
        source: lettre::transport::smtp::Error,
    },
}

/// A transport for `server`, saying `hello` in EHLO.
fn transport(
    server: &SmtpServer,
    hello: &str,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let params = || -> Result<TlsParameters, MailError> {
        let mut b = TlsParameters::builder(server.host.clone());
        if let Some(path) = &server.ca {
            let pem = std::fs::read(path).map_err(|e| MailError::ReadCa {
                path: path.clone(),
                source: e,
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| MailError::BadCa {
                path: path.clone(),
                source: e,
            })?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(MailError::Tls)
    };
    let tls = match server.tls {
        TlsMode::None => Tls::None,
        TlsMode::Opportunistic => Tls::Opportunistic(params()?),
        TlsMode::Required => Tls::Required(params()?),
        TlsMode::Wrapper => Tls::Wrapper(params()?),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
        .port(server.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)))
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            hello.to_owned(),
        ));
    if let Some((u, p)) = &server.login {
        b = b.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(b.build())
}

/// How many mails wait for one server before new ones are dropped.
pub const QUEUE: usize = 64;
/// A mail not delivered after this long is given up (logged).
pub const GIVE_UP: Duration = Duration::from_secs(24 * 3600);

/// The delivery queues, one task per server.
pub struct Outbox {
    director: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    queues: HashMap<Option<SmtpServer>, (mpsc::Sender<Mail>, tokio::task::JoinHandle<()>)>,
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
                    mail.recipient
                        .server
                        .as_ref()
                        .map_or_else(|| "localhost:25".to_owned(), SmtpServer::name),
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
    server: Option<SmtpServer>,
    mut rx: mpsc::Receiver<Mail>,
    director: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) {
    let server = server.unwrap_or_else(SmtpServer::localhost);
    let name = server.name();
    let transport = match transport(&server, &director) {
        Ok(t) => t,
        Err(e) => {
            // A CA that cannot be read (the setting itself was read with
            // the config).
            tracing::error!("alerts: smtp `{name}`: {e}; its mails are dropped");
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
                Err(e) => {
                    break Err(MailError::GivenUp {
                        attempts: attempt,
                        source: e,
                    });
                }
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
fn message(mail: &Mail, director: &str) -> Result<Message, MailError> {
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
        .from(from.parse().map_err(|e| MailError::From {
            from: from.clone(),
            source: e,
        })?)
        .to(qualify(to).parse().map_err(|e| MailError::To {
            to: to.clone(),
            source: e,
        })?)
        .subject(mail.subject.clone())
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(MailError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

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
