//! `service=sip`: an OPTIONS request to `sip:<login>` over UDP or, for a
//! TCP virtual, TCP (ldirectord's check_sip); up when the answer's first
//! line is `SIP/2.0 200 OK`. Over UDP, provisional 1xx answers are skipped
//! and the deadline bounds the wait.

use std::net::{IpAddr, SocketAddr};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::line::{MAX_LINE, quote};
use crate::{ProbeError, Step, io_reason};

/// A SIP check of one real.
#[derive(Debug, Clone)]
pub struct Sip {
    addr: SocketAddr,
    tcp: bool,
    user: String,
    subject: String,
}

fn hex(n: u64) -> String {
    format!("{n:016x}")
}

impl Sip {
    /// Sends OPTIONS for `sip:user` to `addr:port` (TCP when `tcp`).
    pub fn new(addr: IpAddr, port: u16, tcp: bool, user: &str) -> Sip {
        let addr = SocketAddr::new(addr, port);
        Sip {
            addr,
            tcp,
            user: user.to_owned(),
            subject: format!(
                "sip OPTIONS sip:{user} @{addr}/{}",
                if tcp { "tcp" } else { "udp" }
            ),
        }
    }

    fn fail(&self, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError::new(&self.subject, step, reason)
    }

    fn request(&self, local: SocketAddr) -> String {
        let transport = if self.tcp { "TCP" } else { "UDP" };
        let (branch, tag, call): (u64, u64, u64) = (rand::random(), rand::random(), rand::random());
        format!(
            "OPTIONS sip:{user} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:{user}>\r\n\
             From: <sip:{user}>;tag={tag}\r\n\
             Call-ID: {call}@{ip}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Accept: application/sdp\r\n\
             User-Agent: lvsd\r\n\
             Content-Length: 0\r\n\r\n",
            user = self.user,
            branch = hex(branch),
            tag = hex(tag),
            call = hex(call),
            ip = local.ip(),
        )
    }

    /// Judges one answer: its status line.
    fn status(&self, answer: &[u8]) -> Result<bool, ProbeError> {
        let first = answer.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = quote(first);
        if !line.starts_with("SIP/2.0 ") {
            return Err(self.fail(Step::Answer, format!("not a SIP answer: `{line}`")));
        }
        if line.starts_with("SIP/2.0 1") {
            return Ok(false); // provisional: wait for the final answer
        }
        if line.starts_with("SIP/2.0 200 OK") {
            Ok(true)
        } else {
            Err(self.fail(Step::Answer, format!("`{line}`")))
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let io = |e: std::io::Error| self.fail(crate::io_step(Step::Connect, &e), io_reason(&e));
        if self.tcp {
            let mut s = TcpStream::connect(self.addr).await.map_err(io)?;
            let local = s.local_addr().map_err(io)?;
            s.write_all(self.request(local).as_bytes())
                .await
                .map_err(|e| self.fail(crate::io_step(Step::Exchange, &e), io_reason(&e)))?;
            let mut conn = crate::line::Conn::from_tcp(&self.subject, s);
            loop {
                let line = conn.line("the answer").await?;
                if self.status(line.as_bytes())? {
                    return Ok(());
                }
                // Skip the provisional answer's headers up to its blank line.
                while !conn.line("the answer").await?.is_empty() {}
            }
        }
        let sock = crate::connected_udp(self.addr).await.map_err(io)?;
        let local = sock.local_addr().map_err(io)?;
        sock.send(self.request(local).as_bytes())
            .await
            .map_err(io)?;
        let mut buf = vec![0; MAX_LINE * 4];
        loop {
            let n = sock.recv(&mut buf).await.map_err(io)?;
            if self.status(&buf[..n])? {
                return Ok(());
            }
        }
    }
}

checker_via_run!(Sip);
