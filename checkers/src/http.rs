//! `service=http` and `service=https`: one GET or HEAD to the real itself.
//!
//! As ldirectord's `check_http`: up when the status is 2xx and, if a
//! `receive` pattern is set, the body matches it (unanchored). Unlike
//! ldirectord the pattern is a Rust regex (linear time, so a hostile body
//! cannot stall the check) and only the first [`HttpOptions::max_body`]
//! bytes are read.
//!
//! With a `virtualhost` the request carries `Host: <virtualhost>` and, over
//! TLS, the same name as SNI, while the connection still goes to the real's
//! own address and port. Certificates are not verified unless asked
//! (ldirectord never verifies them). Redirects are followed as LWP does
//! (up to 7), but only to the same host: a check never wanders off the real.

use std::net::{IpAddr, SocketAddr};
use std::sync::Once;

use regex::bytes::Regex;
use reqwest::redirect::{Attempt, Policy};

use crate::{Checker, Probe, ProbeError, Step, host_port};

/// Everything one HTTP(S) check needs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// https instead of http.
    pub tls: bool,
    /// The real's address.
    pub addr: IpAddr,
    /// The port to connect to.
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
    /// Sent as Host (and SNI); the real's address when unset.
    pub virtualhost: Option<String>,
    /// HEAD instead of GET.
    pub head: bool,
    /// Pattern the body must match; `None` accepts any body.
    pub receive: Option<Regex>,
    /// Verify the server's certificate against the system's CAs.
    pub verify_tls: bool,
    /// Most bytes of the body read and matched.
    pub max_body: usize,
}

impl HttpOptions {
    /// The URL a probe requests, and the name the client pins to the real
    /// when the virtual host is a name: the URL names the virtual host (for
    /// SNI and certificate checks) while the client's `resolve` pins the
    /// connection to the real. An error when the two do not make a URL
    /// (the config reader refuses such a check with this reason).
    #[allow(clippy::type_complexity)]
    pub fn url(&self) -> Result<(reqwest::Url, Option<(String, IpAddr)>), crate::SetupError> {
        let scheme = if self.tls { "https" } else { "http" };
        let (url_host, pin) = match self.virtualhost.as_deref().map(vhost_name) {
            Some(name) if !name.is_empty() && name.parse::<IpAddr>().is_err() => (
                host_port_name(name, self.port),
                Some((name.to_owned(), self.addr)),
            ),
            _ => (host_port(self.addr, self.port), None),
        };
        let url = format!("{scheme}://{url_host}{}", abs_path(&self.path));
        let url = reqwest::Url::parse(&url).map_err(|e| crate::SetupError::Url {
            reason: e.to_string(),
            url: url.clone(),
        })?;
        Ok((url, pin))
    }

    /// A GET of `path` from `addr:port` with ldirectord's defaults.
    pub fn get(tls: bool, addr: IpAddr, port: u16, path: &str) -> HttpOptions {
        HttpOptions {
            tls,
            addr,
            port,
            path: path.to_owned(),
            virtualhost: None,
            head: false,
            receive: None,
            verify_tls: false,
            max_body: 1 << 20,
        }
    }
}

/// An HTTP(S) checker: one client per check, no connection reuse.
#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    /// Parsed once: a check sends the same URL every interval.
    url: reqwest::Url,
    host_header: Option<String>,
    head: bool,
    receive: Option<Regex>,
    max_body: usize,
    subject: String,
}

/// Clients by the options that differ between checks: certificate
/// verification, and the virtual host name pinned to a real's address.
/// A client holds no connection between probes (no idle pool).
#[derive(Debug, Default)]
pub struct HttpClients {
    clients: std::collections::HashMap<(bool, Option<(String, IpAddr)>), reqwest::Client>,
}

impl HttpClients {
    fn get(
        &mut self,
        verify: bool,
        pin: Option<(String, IpAddr)>,
    ) -> Result<reqwest::Client, crate::SetupError> {
        if let Some(c) = self.clients.get(&(verify, pin.clone())) {
            return Ok(c.clone());
        }
        install_ring();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(0)
            .tls_danger_accept_invalid_certs(!verify)
            .redirect(Policy::custom(same_host));
        if let Some((name, addr)) = &pin {
            builder = builder.resolve(name, SocketAddr::new(*addr, 0));
        }
        let client = builder
            .build()
            .map_err(|e| crate::SetupError::HttpClient(e.to_string()))?;
        self.clients.insert((verify, pin), client.clone());
        Ok(client)
    }
}

/// The TLS provider is process-wide; installing it twice is harmless.
fn install_ring() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An Err means another part of the process installed one first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Splits `name[:port]` (the port is kept only in the Host header).
fn vhost_name(vhost: &str) -> &str {
    match vhost.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => name,
        _ => vhost,
    }
}

impl Http {
    /// Builds the checker; fails only when the TLS stack cannot be set up.
    pub fn new(o: HttpOptions) -> Result<Http, crate::SetupError> {
        Http::with_clients(o, &mut HttpClients::default())
    }

    /// Builds the checker, sharing a client with the checks in `clients`
    /// that need the same client options (most do: 10,000 plain http checks
    /// share one client instead of holding 10,000).
    pub fn with_clients(
        o: HttpOptions,
        clients: &mut HttpClients,
    ) -> Result<Http, crate::SetupError> {
        let (url, pin) = o.url()?;
        let client = clients.get(o.verify_tls, pin)?;
        let real = host_port(o.addr, o.port);
        let scheme = url.scheme();
        let path = abs_path(&o.path);
        let method = if o.head { "HEAD" } else { "GET" };
        let subject = match &o.virtualhost {
            Some(vh) => format!("{method} {scheme}://{real}{path} (Host: {vh})"),
            None => format!("{method} {scheme}://{real}{path}"),
        };
        Ok(Http {
            client,
            url,
            host_header: o.virtualhost,
            head: o.head,
            receive: o.receive,
            max_body: o.max_body,
            subject,
        })
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let fail = |step, reason: String| ProbeError::new(&self.subject, step, reason);
        let mut req = if self.head {
            self.client.head(self.url.clone())
        } else {
            self.client.get(self.url.clone())
        };
        if let Some(h) = &self.host_header {
            req = req.header(reqwest::header::HOST, h);
        }
        let mut resp = req.send().await.map_err(|e| classify(&e, &self.subject))?;
        let status = resp.status();
        if status.is_redirection() {
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("nowhere");
            return Err(fail(
                Step::Answer,
                format!(
                    "status {}, want 2xx (redirect to {to} not followed)",
                    status.as_u16()
                ),
            ));
        }
        if !status.is_success() {
            return Err(fail(
                Step::Answer,
                format!("status {}, want 2xx", status.as_u16()),
            ));
        }
        let Some(want) = &self.receive else {
            return Ok(());
        };
        let mut body = Vec::new();
        while body.len() < self.max_body {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => {
                    return Err(fail(
                        Step::Exchange,
                        format!("reading the body: {}", root_cause(&e).0),
                    ));
                }
            }
        }
        let cut = body.len() > self.max_body;
        body.truncate(self.max_body);
        if crate::perl_match(want, &body) {
            return Ok(());
        }
        let what = if self.head {
            "HEAD has no body to match".to_owned()
        } else if cut {
            format!("the first {} bytes of the body do not match", self.max_body)
        } else {
            format!("body ({} bytes) does not match", body.len())
        };
        Err(fail(
            Step::Answer,
            format!(
                "status {}, {what} /{}/",
                status.as_u16(),
                crate::shown(want)
            ),
        ))
    }
}

/// The path with its leading `/`.
fn abs_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn host_port_name(name: &str, port: u16) -> String {
    format!("{name}:{port}")
}

/// Follows a redirect only to the host the check started on, at most 7.
fn same_host(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let first = attempt
        .previous()
        .first()
        .map(|u| (u.host_str().map(str::to_owned), u.port_or_known_default()));
    let next = (
        attempt.url().host_str().map(str::to_owned),
        attempt.url().port_or_known_default(),
    );
    if attempt.previous().len() > 7 || first.as_ref() != Some(&next) {
        attempt.stop()
    } else {
        attempt.follow()
    }
}

/// The innermost cause of an error, which is the part worth reading, and
/// whether TLS produced it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> (String, bool) {
    let (reason, tls, _) = root_cause_local(e);
    (reason, tls)
}

/// [`root_cause`], and whether it is this host's trouble
/// ([`crate::is_local`]).
fn root_cause_local(e: &(dyn std::error::Error + 'static)) -> (String, bool, bool) {
    let mut cur = e;
    let mut tls = false;
    loop {
        tls |= cur.downcast_ref::<rustls::Error>().is_some();
        if let Some(io) = cur.downcast_ref::<std::io::Error>() {
            // io::Error::source skips the error it wraps; look inside.
            match io.get_ref() {
                Some(inner) => {
                    cur = inner;
                    continue;
                }
                None => return (crate::io_reason(io), tls, crate::is_local(io)),
            }
        }
        match cur.source() {
            Some(next) => cur = next,
            None => return (cur.to_string(), tls, false),
        }
    }
}

/// Maps a reqwest error to the step that failed.
fn classify(e: &reqwest::Error, subject: &str) -> ProbeError {
    let (reason, tls, local) = root_cause_local(e);
    if local {
        ProbeError::new(subject, Step::Local, format!("connect: {reason}"))
    } else if tls {
        ProbeError::new(subject, Step::Tls, format!("TLS: {reason}"))
    } else if e.is_connect() {
        ProbeError::new(subject, Step::Connect, format!("connect: {reason}"))
    } else if e.is_timeout() {
        ProbeError::new(subject, Step::Deadline, "timed out")
    } else {
        ProbeError::new(subject, Step::Exchange, reason)
    }
}

impl Checker for Http {
    fn subject(&self) -> &str {
        &self.subject
    }

    fn probe(&self) -> Probe<'_> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_port_is_split_off() {
        assert_eq!(vhost_name("www.example.com:8080"), "www.example.com");
        assert_eq!(vhost_name("www.example.com"), "www.example.com");
        assert_eq!(vhost_name("2001:db8::1"), "2001:db8::1");
    }
}
