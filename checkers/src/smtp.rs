//! `service=smtp` and `service=submission`: the 220 greeting, EHLO (HELO
//! if the server refuses EHLO, as Perl's Net::SMTP falls back), QUIT.
//!
//! ldirectord counts the check good when Net::SMTP->new succeeds: the
//! greeting was 2xx and the server accepted the hello. The hello name is
//! Net::SMTP's default, `localhost.localdomain`.

use std::net::{IpAddr, SocketAddr};

use crate::ProbeError;
use crate::line::Conn;

/// The name lvsd introduces itself with, as ldirectord's Net::SMTP does.
pub const HELLO: &str = "localhost.localdomain";

/// An SMTP check of one real.
#[derive(Debug, Clone)]
pub struct Smtp {
    addr: SocketAddr,
    subject: String,
}

impl Smtp {
    /// Checks the SMTP server at `addr:port`.
    pub fn new(addr: IpAddr, port: u16) -> Smtp {
        let addr = SocketAddr::new(addr, port);
        Smtp {
            addr,
            subject: format!("smtp {addr}"),
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut c = Conn::open(&self.subject, self.addr, None).await?;
        c.expect("the greeting", |code| (200..300).contains(&code))
            .await?;
        c.send(&format!("EHLO {HELLO}"), "EHLO").await?;
        let (code, line) = c.reply("the answer to EHLO").await?;
        if !(200..300).contains(&code) {
            // Net::SMTP tries HELO when EHLO is refused.
            c.send(&format!("HELO {HELLO}"), "HELO").await?;
            c.expect("the answer to HELO", |code| (200..300).contains(&code))
                .await
                .map_err(|e| c.fail(e.step, format!("{} (EHLO said `{line}`)", e.reason)))?;
        }
        c.goodbye("QUIT").await;
        Ok(())
    }
}

checker_via_run!(Smtp);
