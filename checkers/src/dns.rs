//! `service=dns`: one query sent to the real itself (not through any
//! resolver: no cache, no search list), over UDP or, for a TCP virtual,
//! TCP; a truncated UDP answer is asked again over TCP, as Perl's Net::DNS
//! does. As in ldirectord, `request` is the name to look up (an address
//! means its PTR record) and the check is up when an A record's address,
//! or a PTR record's name, matches `receive`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use regex::bytes::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ProbeError, Step, io_reason};

/// A DNS check of one real.
#[derive(Debug, Clone)]
pub struct Dns {
    addr: SocketAddr,
    tcp: bool,
    query: Query,
    receive: Option<Arc<Regex>>,
    subject: String,
}

/// The question `request` asks (ldirectord's leading `/` taken off): PTR
/// for an address, else A; an error when it is not a DNS name (the config
/// reader refuses such a check with this reason).
pub fn query_of(request: &str) -> Result<Query, crate::SetupError> {
    let request = request.strip_prefix('/').unwrap_or(request);
    Ok(match request.parse::<IpAddr>() {
        Ok(ip) => Query::query(Name::from(ip), RecordType::PTR),
        Err(_) => {
            let mut name = Name::from_ascii(request).map_err(|e| crate::SetupError::DnsName {
                request: request.to_owned(),
                reason: e.to_string(),
            })?;
            name.set_fqdn(true);
            Query::query(name, RecordType::A)
        }
    })
}

impl Dns {
    /// Asks the server at `addr:port` for `request` (A, or PTR for an
    /// address) over TCP when `tcp`, else UDP; up when an answer matches
    /// `receive` (any A or PTR answer when `None`).
    pub fn new(
        addr: IpAddr,
        port: u16,
        tcp: bool,
        request: &str,
        receive: Option<Arc<Regex>>,
    ) -> Result<Dns, crate::SetupError> {
        let addr = SocketAddr::new(addr, port);
        let query = query_of(request)?;
        let subject = format!(
            "dns {} {} @{addr}/{}",
            query.query_type(),
            query.name(),
            if tcp { "tcp" } else { "udp" }
        );
        Ok(Dns {
            addr,
            tcp,
            query,
            receive,
            subject,
        })
    }

    fn fail(&self, step: Step, reason: impl Into<String>) -> ProbeError {
        ProbeError::new(&self.subject, step, reason)
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut msg = Message::query();
        msg.metadata.recursion_desired = true;
        msg.add_query(self.query.clone());
        let request = msg
            .to_vec()
            .map_err(|e| self.fail(Step::Internal, format!("encoding the query: {e}")))?;
        let mut answer = if self.tcp {
            self.over_tcp(&request).await?
        } else {
            self.over_udp(&request, msg.metadata.id).await?
        };
        if !self.tcp && answer.metadata.truncation {
            answer = self.over_tcp(&request).await?;
        }
        if answer.metadata.id != msg.metadata.id {
            return Err(self.fail(Step::Answer, "the answer's id is not the query's"));
        }
        if answer.metadata.response_code != ResponseCode::NoError {
            return Err(self.fail(
                Step::Answer,
                format!("answer {}", answer.metadata.response_code),
            ));
        }
        let found: Vec<String> = answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                RData::PTR(p) => Some(p.0.to_string().trim_end_matches('.').to_owned()),
                _ => None,
            })
            .collect();
        if found.iter().any(|f| {
            self.receive
                .as_ref()
                .is_none_or(|re| crate::perl_match(re, f.as_bytes()))
        }) {
            return Ok(());
        }
        Err(self.fail(
            Step::Answer,
            if found.is_empty() {
                format!("no {} record in the answer", self.query.query_type())
            } else {
                format!(
                    "no answer matches `{}` (got {})",
                    self.receive
                        .as_deref()
                        .map_or_else(String::new, crate::shown),
                    found.join(", ")
                )
            },
        ))
    }

    async fn over_udp(&self, request: &[u8], id: u16) -> Result<Message, ProbeError> {
        let io = |e: std::io::Error| self.fail(crate::io_step(Step::Connect, &e), io_reason(&e));
        let sock = crate::connected_udp(self.addr).await.map_err(io)?;
        sock.send(request).await.map_err(io)?;
        let mut buf = vec![0; 65_535];
        // Skip stray datagrams (another id): the deadline bounds the wait.
        loop {
            let n = sock.recv(&mut buf).await.map_err(io)?;
            let m = Message::from_vec(&buf[..n])
                .map_err(|e| self.fail(Step::Answer, format!("unreadable answer: {e}")))?;
            if m.metadata.id == id {
                return Ok(m);
            }
        }
    }

    async fn over_tcp(&self, request: &[u8]) -> Result<Message, ProbeError> {
        let mut s = TcpStream::connect(self.addr)
            .await
            .map_err(|e| self.fail(crate::io_step(Step::Connect, &e), io_reason(&e)))?;
        let exchange =
            |e: std::io::Error| self.fail(crate::io_step(Step::Exchange, &e), io_reason(&e));
        let len = u16::try_from(request.len())
            .map_err(|_| self.fail(Step::Internal, "query too long"))?;
        s.write_all(&len.to_be_bytes()).await.map_err(exchange)?;
        s.write_all(request).await.map_err(exchange)?;
        let n = s.read_u16().await.map_err(exchange)?;
        let mut buf = vec![0; usize::from(n)];
        s.read_exact(&mut buf).await.map_err(exchange)?;
        Message::from_vec(&buf)
            .map_err(|e| self.fail(Step::Answer, format!("unreadable answer: {e}")))
    }
}

checker_via_run!(Dns);
