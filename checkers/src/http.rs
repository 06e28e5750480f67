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
//! (up to 7), but only to the same scheme, host and port: a check never
//! wanders off the real.
//!
//! One HTTP/1.1 exchange per probe on a fresh connection (`Connection:
//! close`), as ldirectord and keepalived do: the request's bytes are built
//! once per check, the answer is read into one buffer and parsed here
//! (status line, the few headers that matter, Content-Length, chunked or
//! to the end). A probe is the connect, one write, the reads and a close:
//! no client pool, no URL parsing, no task of its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use regex::bytes::Regex;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::line::{Io, quote};

mod wire;
use crate::{Checker, Probe, ProbeError, Step, host_port, io_reason};
use wire::{
    Chunks, Framing, Head, Parsed, build_request, parse_head, request_path, without_dot_segments,
};

/// Redirects followed at most (LWP's default `max_redirect`).
const MAX_REDIRECTS: usize = 7;
/// Informational (1xx) answers skipped at most before the answer.
const MAX_INFORMATIONAL: usize = 16;
/// The most bytes of status line and headers read.
const MAX_HEAD: usize = 64 * 1024;

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
    pub receive: Option<Arc<Regex>>,
    /// Verify the server's certificate against the system's CAs.
    pub verify_tls: bool,
    /// Most bytes of the body read and matched.
    pub max_body: usize,
}

impl HttpOptions {
    /// The URL a probe requests (`http://www.example.com/health` with a
    /// virtual host, else `http://10.0.0.5:8080/health`), or why the
    /// options make none: the config reader refuses such a check with
    /// this reason.
    pub fn url(&self) -> Result<String, crate::SetupError> {
        self.origin()
            .map(|o| format!("{}{}", o.url(), request_path(&self.path)))
    }

    /// Where redirects may go and what Host says.
    fn origin(&self) -> Result<Origin, crate::SetupError> {
        let scheme = if self.tls { "https" } else { "http" };
        let bad = |reason: &str| crate::SetupError::Url {
            url: format!(
                "{scheme}://{}{}",
                self.virtualhost
                    .clone()
                    .unwrap_or_else(|| host_port(self.addr, self.port)),
                self.path
            ),
            reason: reason.to_owned(),
        };
        let default_port = if self.tls { 443 } else { 80 };
        let (host, header) = match self.virtualhost.as_deref() {
            Some(vh) => {
                let (name, _) = split_port(vh).ok_or_else(|| bad("invalid port"))?;
                if name.is_empty() {
                    return Err(bad("empty host"));
                }
                if let Some(c) = vh.chars().find(|c| {
                    !c.is_ascii() || c.is_ascii_control() || FORBIDDEN_IN_HOST.contains(*c)
                }) {
                    return Err(bad(&if c.is_ascii() {
                        format!("invalid host character {c:?}")
                    } else {
                        format!(
                            "invalid host character {c:?} (write an international name in its xn-- form)"
                        )
                    }));
                }
                if self.tls
                    && !name.starts_with('[')
                    && name.parse::<IpAddr>().is_err()
                    && let Err(e) = ServerName::try_from(name.to_owned())
                {
                    return Err(bad(&format!("not a name TLS can send (SNI): {e}")));
                }
                (name.to_ascii_lowercase(), vh.to_owned())
            }
            None => {
                let literal = match self.addr {
                    IpAddr::V6(a) => format!("[{a}]"),
                    a => a.to_string(),
                };
                let header = if self.port == default_port {
                    literal.clone()
                } else {
                    format!("{literal}:{}", self.port)
                };
                (literal, header)
            }
        };
        if let Some(c) = self.path.chars().find(char::is_ascii_control) {
            return Err(bad(&format!("control character {c:?} in the path")));
        }
        // The port the Host header names: a redirect built from it (as
        // Apache builds them) is to the same site.
        let named_port = match self.virtualhost.as_deref().and_then(split_port) {
            Some((_, Some(p))) => p,
            Some((_, None)) => default_port,
            None => self.port,
        };
        Ok(Origin {
            tls: self.tls,
            host,
            port: self.port,
            named_port,
            header,
        })
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

/// Characters a host never has (the URL standard's forbidden host code
/// points, and white space).
const FORBIDDEN_IN_HOST: &str = " \t#%/<>?@\\^|\"`{}";

/// The scheme, host and port a check may be redirected within, and the
/// Host header it sends.
#[derive(Debug, Clone)]
struct Origin {
    tls: bool,
    /// Lower case: the virtual host's name, or the real's address
    /// (`[v6]` in brackets).
    host: String,
    /// The port connected to.
    port: u16,
    /// The port the Host header names (the virtual host's, or the scheme's
    /// default when it names none; the real's port without one).
    named_port: u16,
    /// The Host header's value.
    header: String,
}

impl Origin {
    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// `scheme://host[:port]`.
    fn url(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            format!("{}://{}", self.scheme(), self.host)
        } else {
            format!("{}://{}:{}", self.scheme(), self.host, self.port)
        }
    }
}

/// `name[:port]` split, the port only checked; `None` when a port is
/// written and is not one. IPv6 literals keep their brackets.
fn split_port(host: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Some((&host[..end + 2], Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address: no port.
        Some((name, _)) if name.contains(':') => Some((host, None)),
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

/// An HTTP(S) checker.
pub struct Http {
    addr: SocketAddr,
    /// The TLS client and the SNI name (none for an address).
    tls: Option<(TlsConnector, ServerName<'static>)>,
    origin: Origin,
    /// The path of the first request, as sent.
    path: String,
    /// The first request's bytes, built once.
    request: Box<[u8]>,
    head: bool,
    receive: Option<Arc<Regex>>,
    max_body: usize,
    subject: String,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("subject", &self.subject)
            .finish()
    }
}

impl Http {
    /// Builds the checker; fails when the options make no URL or the TLS
    /// stack cannot be set up.
    pub fn new(o: HttpOptions) -> Result<Http, crate::SetupError> {
        let origin = o.origin()?;
        let tls = if o.tls {
            let config: Arc<ClientConfig> = crate::tls::client_config(o.verify_tls)?;
            let name = match o
                .virtualhost
                .as_deref()
                .map(|vh| split_port(vh).map(|s| s.0))
            {
                Some(Some(name)) if name.parse::<IpAddr>().is_err() && !name.starts_with('[') => {
                    ServerName::try_from(name.to_owned()).map_err(|e| crate::SetupError::Url {
                        url: o.url().unwrap_or_default(),
                        reason: e.to_string(),
                    })?
                }
                _ => ServerName::IpAddress(o.addr.into()),
            };
            Some((TlsConnector::from(config), name))
        } else {
            None
        };
        let path = request_path(&o.path);
        let real = host_port(o.addr, o.port);
        let method = if o.head { "HEAD" } else { "GET" };
        let subject = match &o.virtualhost {
            Some(vh) => format!("{method} {}://{real}{path} (Host: {vh})", origin.scheme()),
            None => format!("{method} {}://{real}{path}", origin.scheme()),
        };
        let request = build_request(method, &path, &origin.header);
        Ok(Http {
            addr: SocketAddr::new(o.addr, o.port),
            tls,
            origin,
            path,
            request,
            head: o.head,
            receive: o.receive,
            max_body: o.max_body,
            subject,
        })
    }

    fn fail(&self, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError::new(&self.subject, step, reason)
    }

    /// A fresh connection to the real, TLS over it for https.
    async fn connect(&self) -> Result<Io, ProbeError> {
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| {
            self.fail(
                crate::io_step(Step::Connect, &e),
                format!("connect: {}", io_reason(&e)),
            )
        })?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Io::Plain(tcp));
        };
        // Boxed: the handshake's state is a kilobyte that plain http probes
        // would otherwise carry.
        match Box::pin(connector.connect(name.clone(), tcp)).await {
            Ok(s) => Ok(Io::Tls(Box::new(s))),
            // A TLS error (a certificate, garbage for a handshake) is the
            // TLS step; the connection failing under it is the connect.
            Err(e) => match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(tls) => Err(self.fail(Step::Tls, format!("TLS: {tls}"))),
                None => Err(self.fail(
                    crate::io_step(Step::Connect, &e),
                    format!("connect: {}", io_reason(&e)),
                )),
            },
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut path = std::borrow::Cow::Borrowed(self.path.as_str());
        let mut request = std::borrow::Cow::Borrowed(&*self.request);
        let mut buf = Vec::with_capacity(1024);
        for hop in 0..=MAX_REDIRECTS {
            let mut io = self.connect().await?;
            io.write_all(&request).await.map_err(|e| {
                self.fail(
                    crate::io_step(Step::Exchange, &e),
                    format!("sending the request: {}", io_reason(&e)),
                )
            })?;
            buf.clear();
            let head = self.read_head(&mut io, &mut buf).await?;
            let status = head.status;
            if (300..400).contains(&status) {
                let to = head.location.as_deref().unwrap_or("nowhere");
                let next = match head.status {
                    301 | 302 | 303 | 307 | 308 if hop < MAX_REDIRECTS => {
                        head.location.as_deref().and_then(|l| self.follow(l, &path))
                    }
                    _ => None,
                };
                if let Some(next) = next {
                    request = build_request(self.method(), &next, &self.origin.header)
                        .into_vec()
                        .into();
                    path = next.into();
                    continue;
                }
                return Err(self.fail(
                    Step::Answer,
                    format!("status {status}, want 2xx (redirect to {to} not followed)"),
                ));
            }
            if !(200..300).contains(&status) {
                return Err(self.fail(Step::Answer, format!("status {status}, want 2xx")));
            }
            let Some(want) = &self.receive else {
                return Ok(());
            };
            let body = if self.head || status == 204 {
                Vec::new()
            } else {
                self.read_body(&mut io, buf, head.body_at, head.framing)
                    .await?
            };
            let cut = body.len() > self.max_body;
            let body = &body[..body.len().min(self.max_body)];
            if crate::perl_match(want, body) {
                return Ok(());
            }
            let what = if self.head {
                "HEAD has no body to match".to_owned()
            } else if cut {
                format!("the first {} bytes of the body do not match", self.max_body)
            } else {
                format!("body ({} bytes) does not match", body.len())
            };
            return Err(self.fail(
                Step::Answer,
                format!("status {status}, {what} /{}/", crate::shown(want)),
            ));
        }
        // The loop returns at its last hop: a redirect there is not followed.
        Err(self.fail(Step::Internal, "redirect loop"))
    }

    fn method(&self) -> &'static str {
        if self.head { "HEAD" } else { "GET" }
    }

    /// The path a redirect to `location` from `current` goes to, when it
    /// stays on the check's scheme, host and port; `None` otherwise.
    fn follow(&self, location: &str, current: &str) -> Option<String> {
        let location = location.trim();
        let lower = location.to_ascii_lowercase();
        let rest = if let Some(r) = location.strip_prefix("//") {
            Some(r)
        } else if let Some(i) = lower
            .find("://")
            .filter(|i| !lower[..*i].contains(['/', '?']))
        {
            if lower[..i] != *self.origin.scheme() {
                return None;
            }
            Some(&location[i + 3..])
        } else {
            None
        };
        let path = match rest {
            Some(r) => {
                let end = r.find(['/', '?', '#']).unwrap_or(r.len());
                let (authority, path) = r.split_at(end);
                if authority.contains('@') {
                    return None;
                }
                let (host, port) = split_port(authority)?;
                let default = if self.origin.tls { 443 } else { 80 };
                let port = port.unwrap_or(default);
                if !host.eq_ignore_ascii_case(&self.origin.host)
                    || (port != self.origin.port && port != self.origin.named_port)
                {
                    return None;
                }
                path.to_owned()
            }
            None if location.starts_with('/') => location.to_owned(),
            None => {
                // Relative to the current path's directory (or its query).
                let current = current.split('?').next().unwrap_or("/");
                if location.starts_with('?') {
                    format!("{current}{location}")
                } else {
                    let dir = &current[..current.rfind('/').map_or(0, |i| i + 1)];
                    format!("{dir}{location}")
                }
            }
        };
        Some(request_path(&without_dot_segments(&path)))
    }

    /// Reads the status line and headers (skipping 1xx answers) into
    /// `buf`.
    async fn read_head(&self, io: &mut Io, buf: &mut Vec<u8>) -> Result<Head, ProbeError> {
        let mut informational = 0;
        loop {
            match parse_head(buf) {
                Parsed::Head(h) => {
                    if (100..200).contains(&h.status) {
                        // Dropped once read: a server sending 1xx answers
                        // without end costs no memory, and gets a limit.
                        informational += 1;
                        if informational > MAX_INFORMATIONAL {
                            return Err(self.fail(
                                Step::Exchange,
                                format!(
                                    "more than {MAX_INFORMATIONAL} informational (1xx) answers before the answer"
                                ),
                            ));
                        }
                        buf.drain(..h.body_at);
                        continue;
                    }
                    return Ok(h);
                }
                Parsed::Bad(why) => return Err(self.fail(Step::Exchange, why)),
                Parsed::More if buf.len() > MAX_HEAD => {
                    return Err(self.fail(
                        Step::Exchange,
                        format!(
                            "the answer's headers are longer than {} KiB",
                            MAX_HEAD / 1024
                        ),
                    ));
                }
                Parsed::More => {}
            }
            if buf.capacity() - buf.len() < 512 {
                buf.reserve(4096);
            }
            let n = io.read_buf(buf).await.map_err(|e| {
                self.fail(
                    crate::io_step(Step::Exchange, &e),
                    format!("reading the answer: {}", io_reason(&e)),
                )
            })?;
            if n == 0 {
                return Err(self.fail(
                    Step::Exchange,
                    if buf.is_empty() {
                        "the server closed the connection without an answer".to_owned()
                    } else {
                        format!(
                            "the server closed the connection in the middle of the headers (`{}`)",
                            quote(&buf[..buf.len().min(60)])
                        )
                    },
                ));
            }
        }
    }

    /// The body after the headers, decoded, at most `max_body + 1` bytes
    /// (one more tells that it was cut).
    async fn read_body(
        &self,
        io: &mut Io,
        mut buf: Vec<u8>,
        at: usize,
        framing: Framing,
    ) -> Result<Vec<u8>, ProbeError> {
        let limit = self.max_body.saturating_add(1);
        buf.drain(..at);
        let mut chunks = match framing {
            Framing::Chunked => Some(Chunks::default()),
            _ => None,
        };
        let mut body = Vec::new();
        let mut raw = buf;
        loop {
            // What has been read so far, into the body.
            match &mut chunks {
                Some(c) => {
                    let used = c.decode(&raw, &mut body).map_err(|why| {
                        self.fail(Step::Exchange, format!("reading the body: {why}"))
                    })?;
                    raw.drain(..used);
                    if c.done {
                        return Ok(body);
                    }
                }
                None => {
                    body.append(&mut raw);
                    if let Framing::Length(n) = framing
                        && body.len() as u64 >= n
                    {
                        body.truncate(usize::try_from(n).unwrap_or(usize::MAX));
                        return Ok(body);
                    }
                }
            }
            if body.len() >= limit {
                return Ok(body);
            }
            raw.reserve(8192);
            let n = match io.read_buf(&mut raw).await {
                Ok(n) => n,
                // A TLS server that closes without close_notify ends a
                // body that runs to the end of the connection (curl and
                // LWP take it so too); with a length it is a cut body.
                Err(e)
                    if e.kind() == std::io::ErrorKind::UnexpectedEof && framing == Framing::Eof =>
                {
                    0
                }
                Err(e) => {
                    return Err(self.fail(
                        crate::io_step(Step::Exchange, &e),
                        format!("reading the body: {}", io_reason(&e)),
                    ));
                }
            };
            if n == 0 {
                return match framing {
                    Framing::Eof => Ok(body),
                    _ => Err(self.fail(
                        Step::Exchange,
                        "reading the body: the server closed the connection before its end",
                    )),
                };
            }
        }
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
    fn redirects_stay_on_the_origin() {
        let mut o = HttpOptions::get(false, "10.0.0.5".parse().unwrap(), 8080, "/a/b?c");
        let h = Http::new(o.clone()).unwrap();
        assert_eq!(h.follow("/x", "/a/b").as_deref(), Some("/x"));
        assert_eq!(h.follow("y", "/a/b?c").as_deref(), Some("/a/y"));
        assert_eq!(h.follow("../ok", "/a/b").as_deref(), Some("/ok"));
        assert_eq!(h.follow("../../../ok", "/a/b").as_deref(), Some("/ok"));
        assert_eq!(h.follow("./x/./y/..", "/a/b").as_deref(), Some("/a/x/"));
        assert_eq!(h.follow("?d", "/a/b?c").as_deref(), Some("/a/b?d"));
        assert_eq!(
            h.follow("http://10.0.0.5:8080/z", "/").as_deref(),
            Some("/z")
        );
        assert_eq!(h.follow("HTTP://10.0.0.5:8080", "/").as_deref(), Some("/"));
        assert_eq!(h.follow("http://10.0.0.5/z", "/"), None);
        assert_eq!(h.follow("https://10.0.0.5:8080/z", "/"), None);
        assert_eq!(h.follow("//192.0.2.1:8080/z", "/"), None);
        assert_eq!(h.follow("http://u@10.0.0.5:8080/z", "/"), None);
        o.virtualhost = Some("WWW.Example.com".into());
        o.port = 80;
        let h = Http::new(o).unwrap();
        assert_eq!(
            h.follow("http://www.example.com/z", "/").as_deref(),
            Some("/z")
        );
        assert_eq!(
            h.follow("http://www.example.com:80/z", "/").as_deref(),
            Some("/z")
        );
        assert_eq!(h.follow("http://10.0.0.5/z", "/"), None);
        // The virtual host on the real's own port 8080: a redirect built
        // from the Host header (port 80) is to the same site.
        let mut o = HttpOptions::get(false, "10.0.0.5".parse().unwrap(), 8080, "/");
        o.virtualhost = Some("www.example.com".into());
        let h = Http::new(o).unwrap();
        assert_eq!(
            h.follow("http://www.example.com/z", "/").as_deref(),
            Some("/z")
        );
        assert_eq!(
            h.follow("http://www.example.com:8080/z", "/").as_deref(),
            Some("/z")
        );
        assert_eq!(h.follow("http://www.example.com:81/z", "/"), None);
    }

    #[test]
    fn the_host_header_is_the_virtual_host_or_the_real() {
        let o = HttpOptions::get(false, "10.0.0.5".parse().unwrap(), 80, "/");
        assert_eq!(o.origin().unwrap().header, "10.0.0.5");
        let o = HttpOptions::get(true, "2001:db8::1".parse().unwrap(), 8443, "/");
        assert_eq!(o.origin().unwrap().header, "[2001:db8::1]:8443");
        assert_eq!(o.url().unwrap(), "https://[2001:db8::1]:8443/");
        let mut o = HttpOptions::get(false, "10.0.0.5".parse().unwrap(), 80, "/");
        o.virtualhost = Some("www.example.com:8080".into());
        assert_eq!(o.origin().unwrap().header, "www.example.com:8080");
        for bad in ["a b", "", "x/y", "bücher.de", "h:port"] {
            o.virtualhost = Some(bad.into());
            assert!(o.url().is_err(), "{bad}");
        }
        // Over TLS the name is also sent as SNI, which must be a DNS name.
        o.tls = true;
        for bad in ["a..b", "-bad-.example"] {
            o.virtualhost = Some(bad.into());
            assert!(o.url().is_err(), "{bad}");
        }
        o.virtualhost = Some("www.example.com".into());
        assert!(o.url().is_ok());
    }

    #[test]
    fn vhost_port_is_split_off() {
        assert_eq!(
            split_port("www.example.com:8080"),
            Some(("www.example.com", Some(8080)))
        );
        assert_eq!(
            split_port("www.example.com"),
            Some(("www.example.com", None))
        );
        assert_eq!(split_port("2001:db8::1"), Some(("2001:db8::1", None)));
        assert_eq!(
            split_port("[2001:db8::1]:80"),
            Some(("[2001:db8::1]", Some(80)))
        );
    }
}
