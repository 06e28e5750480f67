//! `service=ftp`: the 220 greeting, USER/PASS, and, when `request` names a
//! file, ldirectord's retrieval: `CWD /`, `TYPE I`, `PASV`, `RETR request`
//! read to the end, the content matched against `receive`; then QUIT.
//!
//! The passive data connection goes to the real's own address whatever
//! address the server puts in its 227 reply (a server behind NAT often
//! names an address the director cannot or must not reach).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use regex::bytes::Regex;

use crate::line::{Conn, quote};
use crate::{Login, ProbeError, Step};

/// The most of a file read.
const MAX_FILE: usize = 1 << 20;

/// An FTP check of one real.
#[derive(Debug, Clone)]
pub struct Ftp {
    addr: SocketAddr,
    login: Login,
    /// The file to fetch; None: log in only.
    file: Option<String>,
    receive: Option<Arc<Regex>>,
    subject: String,
}

impl Ftp {
    /// Logs in to `addr:port` and, with `file`, fetches it and matches it
    /// against `receive`.
    pub fn new(
        addr: IpAddr,
        port: u16,
        login: Login,
        file: Option<String>,
        receive: Option<Arc<Regex>>,
    ) -> Ftp {
        let addr = SocketAddr::new(addr, port);
        Ftp {
            addr,
            login,
            file,
            receive,
            subject: format!("ftp {addr}"),
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let positive = |code: u16| (200..300).contains(&code);
        let mut c = Conn::open(&self.subject, self.addr, None).await?;
        c.expect("the greeting", positive).await?;
        c.send(&format!("USER {}", self.login.user), "USER").await?;
        let (code, line) = c.reply("the answer to USER").await?;
        match code {
            230 => {}
            331 | 332 => {
                c.send(&format!("PASS {}", self.login.password), "PASS")
                    .await?;
                c.expect("the answer to PASS", |code| code == 230 || code == 202)
                    .await?;
            }
            _ => return Err(c.fail(Step::Answer, format!("the answer to USER: `{line}`"))),
        }
        if let Some(file) = &self.file {
            self.fetch(&mut c, file).await?;
        }
        c.goodbye("QUIT").await;
        Ok(())
    }

    async fn fetch(&self, c: &mut Conn<'_>, file: &str) -> Result<(), ProbeError> {
        let positive = |code: u16| (200..300).contains(&code);
        c.send("CWD /", "CWD").await?;
        c.expect("the answer to CWD /", positive).await?;
        c.send("TYPE I", "TYPE").await?;
        c.expect("the answer to TYPE I", positive).await?;
        c.send("PASV", "PASV").await?;
        let pasv = c.expect("the answer to PASV", |code| code == 227).await?;
        let port = pasv_port(&pasv)
            .ok_or_else(|| c.fail(Step::Answer, format!("the answer to PASV: `{pasv}`")))?;
        let data_addr = SocketAddr::new(self.addr.ip(), port);
        let mut data = Conn::open(&self.subject, data_addr, None)
            .await
            .map_err(|e| {
                c.fail(
                    e.step,
                    format!("data connection to {data_addr}: {}", e.reason),
                )
            })?;
        c.send(&format!("RETR {file}"), "RETR").await?;
        c.expect(&format!("the answer to RETR {file}"), |code| {
            code == 125 || code == 150
        })
        .await?;
        let content = data.read_to_end(MAX_FILE).await?;
        drop(data);
        c.expect(&format!("the end of RETR {file}"), positive)
            .await?;
        match &self.receive {
            Some(re) if !crate::perl_match(re, &content) => Err(c.fail(
                Step::Answer,
                format!(
                    "{file} does not match `{}` (it starts `{}`)",
                    crate::shown(re),
                    quote(content.split(|b| *b == b'\n').next().unwrap_or_default())
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The port of a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply.
fn pasv_port(line: &str) -> Option<u16> {
    // After the code; inside the parentheses when there are some.
    let rest = line.get(4..)?;
    let rest = rest.split_once('(').map_or(rest, |(_, r)| r);
    let numbers: Vec<u16> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    match numbers[..] {
        [_, _, _, _, p1, p2] if p1 < 256 && p2 < 256 => Some(p1 * 256 + p2),
        _ => None,
    }
}

checker_via_run!(Ftp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasv_replies() {
        assert_eq!(
            pasv_port("227 Entering Passive Mode (127,0,0,1,195,80)."),
            Some(195 * 256 + 80)
        );
        assert_eq!(pasv_port("227 =127,0,0,1,4,1"), Some(1025));
        assert_eq!(
            pasv_port("227 Entering Passive Mode (127,0,0,1,999,1)"),
            None
        );
        assert_eq!(pasv_port("227 nothing here"), None);
    }
}
