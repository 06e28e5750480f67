//! `checktype=connect`: a TCP connection to the check port is enough.
//!
//! The connection is closed at once. (For UDP virtuals ldirectord pings
//! instead; the caller picks [`crate::Ping`] for those.)

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;

use crate::{Checker, Probe, ProbeError, Step, io_reason};

/// Connects to one address and port.
#[derive(Debug, Clone)]
pub struct Connect {
    addr: SocketAddr,
    subject: String,
}

impl Connect {
    /// A connect check of `addr:port`.
    pub fn new(addr: IpAddr, port: u16) -> Connect {
        let addr = SocketAddr::new(addr, port);
        Connect {
            addr,
            subject: format!("connect {addr}"),
        }
    }
}

impl Checker for Connect {
    fn subject(&self) -> &str {
        &self.subject
    }

    fn probe(&self) -> Probe<'_> {
        Box::pin(async move {
            match TcpStream::connect(self.addr).await {
                Ok(_) => Ok(()),
                Err(e) => Err(ProbeError::new(
                    &self.subject,
                    crate::io_step(Step::Connect, &e),
                    io_reason(&e),
                )),
            }
        })
    }
}
