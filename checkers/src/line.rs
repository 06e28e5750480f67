//! What the line-oriented checkers (smtp, pop, imap, nntp, ftp, simpletcp)
//! share: a TCP connection, optionally TLS from the first byte,
//! read a line at a time with a cap on line length, and failures that name
//! the step and quote what the server said.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{ProbeError, Step, io_reason};

/// The longest line a checker reads (SMTP allows 512; be generous).
pub(crate) const MAX_LINE: usize = 4096;

/// Plain TCP or TLS over it.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// TLS settings of a check: the shared client configuration and the name
/// sent as SNI (the real's address: there is no host name to verify
/// against unless the operator's certificate names the address).
#[derive(Clone)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

impl Tls {
    /// TLS to `addr`, verifying its certificate or not.
    pub(crate) fn new(addr: SocketAddr, verify: bool) -> Result<Tls, crate::SetupError> {
        Ok(Tls {
            config: crate::tls::client_config(verify)?,
            name: ServerName::IpAddress(addr.ip().into()),
        })
    }
}

/// One connection to a real server, read a line at a time.
pub(crate) struct Conn<'a> {
    io: BufReader<Io>,
    subject: &'a str,
}

impl<'a> Conn<'a> {
    /// Connects to `addr`, with TLS from the start when `tls` is given.
    pub(crate) async fn open(
        subject: &'a str,
        addr: SocketAddr,
        tls: Option<&Tls>,
    ) -> Result<Conn<'a>, ProbeError> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| {
            ProbeError::new(subject, crate::io_step(Step::Connect, &e), io_reason(&e))
        })?;
        let io = match tls {
            None => Io::Plain(tcp),
            Some(t) => Io::Tls(Box::new(handshake(subject, tcp, t).await?)),
        };
        Ok(Conn {
            io: BufReader::new(io),
            subject,
        })
    }

    /// Wraps a connection the caller opened.
    pub(crate) fn from_tcp(subject: &'a str, tcp: TcpStream) -> Conn<'a> {
        Conn {
            io: BufReader::new(Io::Plain(tcp)),
            subject,
        }
    }

    /// A failure at `step`.
    pub(crate) fn fail(&self, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError::new(self.subject, step, reason)
    }

    /// Reads one line (without its end), waiting for `what`.
    pub(crate) async fn line(&mut self, what: &str) -> Result<String, ProbeError> {
        let mut buf = Vec::new();
        let n = (&mut self.io)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| self.fail(Step::Exchange, format!("reading {what}: {}", io_reason(&e))))?;
        if n == 0 {
            return Err(self.fail(
                Step::Exchange,
                format!("the server closed the connection before {what}"),
            ));
        }
        if !buf.ends_with(b"\n") {
            return Err(self.fail(
                Step::Exchange,
                if buf.len() > MAX_LINE {
                    format!("{what}: a line longer than {MAX_LINE} bytes")
                } else {
                    format!(
                        "the server closed the connection in the middle of {what} (`{}`)",
                        quote(&buf)
                    )
                },
            ));
        }
        Ok(quote(&buf))
    }

    /// Sends `line` and CRLF.
    pub(crate) async fn send(&mut self, line: &str, what: &str) -> Result<(), ProbeError> {
        let io = self.io.get_mut();
        let r = async {
            io.write_all(line.as_bytes()).await?;
            io.write_all(b"\r\n").await?;
            io.flush().await
        }
        .await;
        r.map_err(|e| self.fail(Step::Exchange, format!("sending {what}: {}", io_reason(&e))))
    }

    /// Sends raw bytes and closes the sending side (simpletcp).
    pub(crate) async fn send_and_shutdown(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        let io = self.io.get_mut();
        let r = async {
            io.write_all(bytes).await?;
            io.shutdown().await
        }
        .await;
        r.map_err(|e| {
            self.fail(
                Step::Exchange,
                format!("sending the request: {}", io_reason(&e)),
            )
        })
    }

    /// Reads what is left, at most `max` bytes.
    pub(crate) async fn read_to_end(&mut self, max: usize) -> Result<Vec<u8>, ProbeError> {
        let mut buf = Vec::new();
        (&mut self.io)
            .take(max as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| {
                self.fail(
                    Step::Exchange,
                    format!("reading the answer: {}", io_reason(&e)),
                )
            })?;
        Ok(buf)
    }

    /// A numbered reply (SMTP, FTP): `ddd text` or `ddd-text` lines ending
    /// with `ddd text`. Returns the code and the last line.
    pub(crate) async fn reply(&mut self, what: &str) -> Result<(u16, String), ProbeError> {
        for _ in 0..100 {
            let line = self.line(what).await?;
            let code = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse::<u16>().ok());
            let Some(code) = code else {
                return Err(self.fail(Step::Answer, format!("{what}: not a reply: `{line}`")));
            };
            match line.as_bytes().get(3) {
                Some(b'-') => continue,
                None | Some(b' ') => return Ok((code, line)),
                Some(_) => {
                    return Err(self.fail(Step::Answer, format!("{what}: not a reply: `{line}`")));
                }
            }
        }
        Err(self.fail(Step::Answer, format!("{what}: more than 100 lines")))
    }

    /// A numbered reply whose code `ok` accepts; anything else fails at
    /// `Step::Answer` quoting the server.
    pub(crate) async fn expect(
        &mut self,
        what: &str,
        ok: impl Fn(u16) -> bool,
    ) -> Result<String, ProbeError> {
        let (code, line) = self.reply(what).await?;
        if ok(code) {
            Ok(line)
        } else {
            Err(self.fail(Step::Answer, format!("{what}: `{line}`")))
        }
    }

    /// Sends QUIT-like `line` and ignores the answer: the check has
    /// already passed; a server that hangs up first is fine.
    pub(crate) async fn goodbye(&mut self, line: &str) {
        if self.send(line, "goodbye").await.is_ok() {
            let _ = self.line("the goodbye").await;
        }
    }
}

async fn handshake(
    subject: &str,
    tcp: TcpStream,
    t: &Tls,
) -> Result<TlsStream<TcpStream>, ProbeError> {
    TlsConnector::from(Arc::clone(&t.config))
        .connect(t.name.clone(), tcp)
        .await
        .map_err(|e| {
            let reason = match e.get_ref() {
                Some(inner) => inner.to_string(),
                None => io_reason(&e),
            };
            ProbeError::new(subject, Step::Tls, format!("TLS handshake: {reason}"))
        })
}

/// Bytes as text for a reason: lossy UTF-8, line end trimmed, control
/// characters escaped, at most 200 characters.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end_matches(['\r', '\n']);
    let mut out = String::new();
    for c in s.chars().take(200) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}
