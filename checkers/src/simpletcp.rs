//! `service=simpletcp`: connect, send `request` (ldirectord drops a
//! leading `/` and turns the two characters `\n` into a newline), close
//! the sending side, and read the answer: up when some line (with its
//! newline, as Perl reads it) matches `receive` (any line, when `receive`
//! is empty: Perl's empty pattern).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use regex::bytes::Regex;

use crate::line::{Conn, quote};
use crate::{ProbeError, Step};

/// The most of an answer read.
const MAX_ANSWER: usize = 1 << 20;

/// A send/expect check of one real.
#[derive(Debug, Clone)]
pub struct SimpleTcp {
    addr: SocketAddr,
    request: Vec<u8>,
    receive: Option<Arc<Regex>>,
    subject: String,
}

impl SimpleTcp {
    /// Sends `request` to `addr:port` and matches the answer's lines
    /// against `receive`.
    pub fn new(addr: IpAddr, port: u16, request: &str, receive: Option<Arc<Regex>>) -> SimpleTcp {
        let addr = SocketAddr::new(addr, port);
        let request = request
            .strip_prefix('/')
            .unwrap_or(request)
            .replace("\\n", "\n");
        SimpleTcp {
            addr,
            request: request.into_bytes(),
            receive,
            subject: format!("simpletcp {addr}"),
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut c = Conn::open(&self.subject, self.addr, None).await?;
        c.send_and_shutdown(&self.request).await?;
        let answer = c.read_to_end(MAX_ANSWER).await?;
        if answer.is_empty() {
            return Err(c.fail(Step::Answer, "no answer"));
        }
        // Line by line with its newline, as Perl's `<$sock>` reads them.
        if answer
            .split_inclusive(|b| *b == b'\n')
            .filter(|l| *l != b"\n")
            .any(|l| {
                self.receive
                    .as_ref()
                    .is_none_or(|re| crate::perl_match(re, l))
            })
        {
            Ok(())
        } else {
            let first = answer.split(|b| *b == b'\n').next().unwrap_or_default();
            Err(c.fail(
                Step::Answer,
                format!(
                    "no line matches `{}` (first line `{}`)",
                    self.receive
                        .as_deref()
                        .map_or_else(String::new, crate::shown),
                    quote(first)
                ),
            ))
        }
    }
}

checker_via_run!(SimpleTcp);
