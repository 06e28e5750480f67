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
use crate::{Checker, Probe, ProbeError, Step, host_port, io_reason};

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

/// The path and query as sent on the request line: a leading `/`, the
/// fragment dropped, and the bytes a URL escapes (space, quotes, angle
/// brackets, back quote, braces, anything not ASCII) percent-encoded, as
/// LWP and browsers send them.
fn request_path(path: &str) -> String {
    let path = path.split('#').next().unwrap_or_default();
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    for b in path.bytes() {
        if b <= b' ' || b >= 0x7f || b"\"<>`{}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
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

/// A path with its `.` and `..` segments resolved (RFC 3986 5.2.4), as a
/// URL parser leaves it; the query is kept as it is.
fn without_dot_segments(path: &str) -> String {
    let (p, query) = match path.find('?') {
        Some(i) => path.split_at(i),
        None => (path, ""),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = p.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}{query}", out.join("/"))
}

/// The request's bytes.
fn build_request(method: &str, path: &str, host: &str) -> Box<[u8]> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lvsd\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
    .into_boxed_slice()
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// At the end of the connection.
    Eof,
}

/// The status line and headers of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    location: Option<String>,
    framing: Framing,
    /// Where the body starts in the buffer parsed.
    body_at: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Head(Head),
    /// Not all of it has come yet.
    More,
    /// Not an HTTP answer, why.
    Bad(String),
}

/// Parses an answer's head from the start of `buf`.
fn parse_head(buf: &[u8]) -> Parsed {
    // Early: a server that is not speaking HTTP is told at its first bytes.
    let prefix = &buf[..buf.len().min(5)];
    if !b"HTTP/"[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return Parsed::Bad(format!("not an HTTP answer: `{}`", first_line(buf)));
    }
    let Some((end, body_at)) = head_end(buf) else {
        return Parsed::More;
    };
    let text = &buf[..end];
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line {
        [b'H' | b'h', _, _, _, b'/', b'1', b'.', _, b' ', a, b, c, ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit())
                && status_line.get(12).is_none_or(|&b| b == b' ') =>
        {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Parsed::Bad(format!("not an HTTP answer: `{}`", first_line(buf))),
    };
    let mut location = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"location") {
            location = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return Parsed::Bad(format!("bad Content-Length `{}`", quote(value))),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding decides (RFC 9112 6.3).
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::Eof,
    };
    Parsed::Head(Head {
        status,
        location,
        framing,
        body_at,
    })
}

/// The end of the head (before its empty line) and where the body starts.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + nl;
        let rest = &buf[at + 1..];
        if rest.starts_with(b"\n") {
            return Some((at, at + 2));
        }
        if rest.starts_with(b"\r\n") {
            return Some((at, at + 3));
        }
        i = at + 1;
    }
    None
}

/// The first line of what a server sent, for a reason.
fn first_line(buf: &[u8]) -> String {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    quote(&line[..line.len().min(60)])
}

/// A chunked body being decoded.
#[derive(Debug, Default)]
struct Chunks {
    /// Bytes of the current chunk's data still to come.
    left: u64,
    /// The CRLF after a chunk's data is still to come.
    crlf: bool,
    /// The last chunk has come.
    done: bool,
}

impl Chunks {
    /// Decodes what it can of `raw` into `body`; returns the bytes used.
    fn decode(&mut self, raw: &[u8], body: &mut Vec<u8>) -> Result<usize, String> {
        let mut at = 0;
        while !self.done {
            if self.left > 0 {
                let take = (raw.len() - at).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                body.extend_from_slice(&raw[at..at + take]);
                at += take;
                self.left -= take as u64;
                if self.left > 0 {
                    return Ok(at);
                }
                self.crlf = true;
            }
            if self.crlf {
                match &raw[at..] {
                    [b'\r', b'\n', ..] => at += 2,
                    [b'\n', ..] => at += 1,
                    [] | [b'\r'] => return Ok(at),
                    _ => return Err("a chunk is longer than its size".to_owned()),
                }
                self.crlf = false;
            }
            let Some(nl) = raw[at..].iter().position(|&b| b == b'\n') else {
                if raw.len() - at > 1024 {
                    return Err("a chunk size line is longer than 1 KiB".to_owned());
                }
                return Ok(at);
            };
            let line = &raw[at..at + nl];
            let size = line
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("bad chunk size `{}`", quote(line)))?;
            at += nl + 1;
            if size == 0 {
                // Trailers are not read: the body is complete.
                self.done = true;
                return Ok(at);
            }
            self.left = size;
        }
        Ok(at)
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

    fn head(s: &str) -> Head {
        match parse_head(s.as_bytes()) {
            Parsed::Head(h) => h,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn heads_are_parsed_with_their_framing() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nService Up");
        assert_eq!(
            (h.status, h.framing, h.body_at),
            (200, Framing::Length(10), 39)
        );
        let h = head("HTTP/1.0 503\nTransfer-Encoding: gzip, chunked\n\n");
        assert_eq!((h.status, h.framing), (503, Framing::Chunked));
        let h = head("http/1.1 302 Found\r\nlocation:  /x \r\n\r\n");
        assert_eq!((h.status, h.location.as_deref()), (302, Some("/x")));
        assert_eq!(head("HTTP/1.1 200 OK\r\n\r\n").framing, Framing::Eof);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
            Parsed::More
        );
        assert_eq!(parse_head(b"HT"), Parsed::More);
        assert!(matches!(parse_head(b"SSH-2.0-OpenSSH\r\n"), Parsed::Bad(_)));
        assert!(matches!(
            parse_head(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Parsed::Bad(_)
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Parsed::Bad(_)
        ));
    }

    #[test]
    fn chunks_decode_across_reads() {
        let wire = b"4\r\nServ\r\n6;x=y\r\nice Up\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut c = Chunks::default();
            let mut body = Vec::new();
            let mut raw = wire[..split].to_vec();
            let used = c
                .decode(&raw, &mut body)
                .unwrap_or_else(|e| panic!("{split}: {e}"));
            raw.drain(..used);
            raw.extend_from_slice(&wire[split..]);
            c.decode(&raw, &mut body)
                .unwrap_or_else(|e| panic!("second {split}: {e} {used}"));
            assert!(c.done, "split at {split}");
            assert_eq!(body, b"Service Up", "split at {split}");
        }
        let mut c = Chunks::default();
        assert!(c.decode(b"zz\r\n", &mut Vec::new()).is_err());
        assert!(c.decode(b"2\r\nabc\r\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn paths_are_escaped_as_a_url_would() {
        assert_eq!(request_path("health"), "/health");
        assert_eq!(request_path("/a b?q=\"x\"#frag"), "/a%20b?q=%22x%22");
        assert_eq!(request_path("/é"), "/%C3%A9");
    }

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
