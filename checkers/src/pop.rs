//! `service=pop` and `service=pops`: the `+OK` greeting and, when a login
//! is configured, USER and PASS (ldirectord's Mail::POP3Client), then QUIT.
//! pops is TLS from the first byte.

use std::net::{IpAddr, SocketAddr};

use crate::line::{Conn, Tls};
use crate::{Login, ProbeError, Step};

/// A POP3 check of one real.
#[derive(Debug, Clone)]
pub struct Pop {
    addr: SocketAddr,
    tls: Option<Tls>,
    login: Option<Login>,
    subject: String,
}

impl Pop {
    /// Checks the POP3 server at `addr:port`; `tls` for pops (verifying the
    /// certificate when `verify`); `login` to log in too.
    pub fn new(
        addr: IpAddr,
        port: u16,
        tls: bool,
        verify: bool,
        login: Option<Login>,
    ) -> Result<Pop, crate::SetupError> {
        let addr = SocketAddr::new(addr, port);
        Ok(Pop {
            addr,
            tls: tls.then(|| Tls::new(addr, verify)).transpose()?,
            login,
            subject: format!("{} {addr}", if tls { "pops" } else { "pop" }),
        })
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut c = Conn::open(&self.subject, self.addr, self.tls.as_ref()).await?;
        ok(&mut c, "the greeting").await?;
        if let Some(l) = &self.login {
            c.send(&format!("USER {}", l.user), "USER").await?;
            ok(&mut c, "the answer to USER").await?;
            c.send(&format!("PASS {}", l.password), "PASS").await?;
            ok(&mut c, "the answer to PASS").await?;
        }
        c.goodbye("QUIT").await;
        Ok(())
    }
}

/// Reads one line that must start with `+OK`.
async fn ok(c: &mut Conn<'_>, what: &str) -> Result<(), ProbeError> {
    let line = c.line(what).await?;
    if line.starts_with("+OK") {
        Ok(())
    } else {
        Err(c.fail(Step::Answer, format!("{what}: `{line}`")))
    }
}

checker_via_run!(Pop);
