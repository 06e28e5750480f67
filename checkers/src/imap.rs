//! `service=imap` and `service=imaps`: the `* OK` greeting and, when a
//! login is configured, LOGIN (ldirectord's Net::IMAP::Simple), then
//! LOGOUT. imaps is TLS from the first byte.

use std::net::{IpAddr, SocketAddr};

use crate::line::{Conn, Tls};
use crate::{Login, ProbeError, Step};

/// An IMAP check of one real.
#[derive(Debug, Clone)]
pub struct Imap {
    addr: SocketAddr,
    tls: Option<Tls>,
    login: Option<Login>,
    subject: String,
}

/// An IMAP quoted string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Imap {
    /// Checks the IMAP server at `addr:port`; `tls` for imaps (verifying
    /// the certificate when `verify`); `login` to log in too.
    pub fn new(
        addr: IpAddr,
        port: u16,
        tls: bool,
        verify: bool,
        login: Option<Login>,
    ) -> Result<Imap, crate::SetupError> {
        let addr = SocketAddr::new(addr, port);
        Ok(Imap {
            addr,
            tls: tls.then(|| Tls::new(addr, verify)).transpose()?,
            login,
            subject: format!("{} {addr}", if tls { "imaps" } else { "imap" }),
        })
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut c = Conn::open(&self.subject, self.addr, self.tls.as_ref()).await?;
        let greeting = c.line("the greeting").await?;
        if !(greeting.starts_with("* OK") || greeting.starts_with("* PREAUTH")) {
            return Err(c.fail(Step::Answer, format!("the greeting: `{greeting}`")));
        }
        if let Some(l) = &self.login {
            c.send(
                &format!("a1 LOGIN {} {}", quoted(&l.user), quoted(&l.password)),
                "LOGIN",
            )
            .await?;
            // Untagged lines (capabilities) may come first.
            for _ in 0..100 {
                let line = c.line("the answer to LOGIN").await?;
                if line.starts_with("a1 OK") {
                    c.goodbye("a2 LOGOUT").await;
                    return Ok(());
                }
                if line.starts_with("a1 ") {
                    return Err(c.fail(Step::Answer, format!("the answer to LOGIN: `{line}`")));
                }
            }
            return Err(c.fail(Step::Answer, "the answer to LOGIN: more than 100 lines"));
        }
        c.goodbye("a2 LOGOUT").await;
        Ok(())
    }
}

checker_via_run!(Imap);
