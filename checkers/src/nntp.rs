//! `service=nntp`: the greeting must start with `2` (200 or 201, posting
//! allowed or not), as ldirectord reads it; then QUIT.

use std::net::{IpAddr, SocketAddr};

use crate::line::Conn;
use crate::{ProbeError, Step};

/// An NNTP check of one real.
#[derive(Debug, Clone)]
pub struct Nntp {
    addr: SocketAddr,
    subject: String,
}

impl Nntp {
    /// Checks the NNTP server at `addr:port`.
    pub fn new(addr: IpAddr, port: u16) -> Nntp {
        let addr = SocketAddr::new(addr, port);
        Nntp {
            addr,
            subject: format!("nntp {addr}"),
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut c = Conn::open(&self.subject, self.addr, None).await?;
        let greeting = c.line("the greeting").await?;
        if !greeting.starts_with('2') {
            return Err(c.fail(Step::Answer, format!("the greeting: `{greeting}`")));
        }
        c.goodbye("QUIT").await;
        Ok(())
    }
}

checker_via_run!(Nntp);
