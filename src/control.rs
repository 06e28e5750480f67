//! The control socket: a unix stream socket (mode 0600: root only) where
//! `lvsd standby`, `lvsd takeover`, `lvsd status`, `lvsd reload` and the
//! other commands reach the running daemon. One request line, then one
//! [`Reply`] as a JSON line (`{"ok":true,"text":"..."}`), then the daemon
//! closes. Whether a command succeeded is the reply's `ok`, never read
//! from its text.

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// How long a client has to send its request line.
const REQUEST_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a client has to take its answer.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The reply when every connection slot is taken.
pub const BUSY: &str = "lvsd is busy: every control connection is taken; try again";

/// Where `lvsd run` listens unless told otherwise.
pub const DEFAULT_PATH: &str = "/run/lvsd/control.sock";

/// A real named on the command line: `10.0.0.5` (every port) or
/// `10.0.0.5:80`, as a maintenancedir file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The address.
    pub addr: IpAddr,
    /// The port, or every port.
    pub port: Option<u16>,
}

impl Target {
    /// `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address, read as
    /// a maintenancedir file name is (host names are not taken here).
    pub fn parse(s: &str) -> Option<Target> {
        match crate::health::maintenance::parse(s)? {
            crate::health::maintenance::Entry::Addr(addr, port) => Some(Target { addr, port }),
            crate::health::maintenance::Entry::Name(..) => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.addr, self.port) {
            (a, None) => write!(f, "{a}"),
            (a, Some(p)) => write!(f, "{}", std::net::SocketAddr::new(a, p)),
        }
    }
}

/// What can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Give every VIP to the peer.
    Standby,
    /// Take every VIP from the peer.
    Takeover,
    /// Say what the daemon and failover are doing.
    Status,
    /// The same as JSON.
    StatusJson,
    /// Read the configuration files again and apply them if valid;
    /// `allow_empty`: even if they remove every virtual service.
    Reload {
        /// Take a configuration without virtual services in place of one
        /// with some (refused otherwise: an emptied or half-written file).
        allow_empty: bool,
    },
    /// Take a real out, as a maintenancedir file does.
    Drain(Target),
    /// Put a drained real back.
    Enable(Target),
    /// Leave the IPVS table as it is at the next stop (a restart).
    KeepTable,
}

impl Command {
    fn parse(line: &str) -> Option<Command> {
        let line = line.trim();
        if let Some(t) = line.strip_prefix("drain ") {
            return Target::parse(t.trim()).map(Command::Drain);
        }
        if let Some(t) = line.strip_prefix("enable ") {
            return Target::parse(t.trim()).map(Command::Enable);
        }
        Some(match line {
            "standby" => Command::Standby,
            "takeover" => Command::Takeover,
            "status" => Command::Status,
            "status json" => Command::StatusJson,
            "reload" => Command::Reload { allow_empty: false },
            "reload allow-empty" => Command::Reload { allow_empty: true },
            "keep-table" => Command::KeepTable,
            _ => return None,
        })
    }

    /// The request line on the socket.
    pub fn line(self) -> String {
        match self {
            Command::Drain(t) => format!("drain {t}"),
            Command::Enable(t) => format!("enable {t}"),
            Command::Reload { allow_empty: true } => "reload allow-empty".to_owned(),
            other => other.as_str().to_owned(),
        }
    }

    /// The command's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Drain(_) => "drain",
            Command::Enable(_) => "enable",
            Command::Standby => "standby",
            Command::Takeover => "takeover",
            Command::Status => "status",
            Command::StatusJson => "status json",
            Command::Reload { .. } => "reload",
            Command::KeepTable => "keep-table",
        }
    }
}

/// The answer to a command: whether it did what was asked, and what to
/// print (lines for people; `status json`'s is one JSON object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Done (exit 0); false: failed or refused (exit 1).
    pub ok: bool,
    /// What to print: on stdout when ok, else on stderr.
    pub text: String,
}

impl Reply {
    /// Done; `text` is printed as it is.
    pub fn done(text: impl Into<String>) -> Reply {
        Reply {
            ok: true,
            text: text.into(),
        }
    }

    /// Failed; `text` (whole lines) is printed as it is.
    pub fn failed(text: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            text: text.into(),
        }
    }

    /// Failed with one line `error: {what}`.
    pub fn error(what: impl std::fmt::Display) -> Reply {
        Reply::failed(format!("error: {what}\n"))
    }

    /// The reply on the wire: one JSON line.
    fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"ok":false,"text":"error: the answer could not be encoded\n"}"#.to_owned()
        });
        s.push('\n');
        s
    }

    /// What a daemon sent. An lvsd from before typed replies (an upgrade
    /// asks the old daemon `keep-table`) sent bare text, failed when a line
    /// starts `error:`.
    fn read(wire: String) -> Reply {
        if let Some(rest) = wire.strip_prefix(JSON_HEAD) {
            return match rest.strip_suffix("}\n") {
                Some(json) => Reply::done(format!("{json}\n")),
                None => Reply::error("the answer was cut short"),
            };
        }
        match serde_json::from_str::<Reply>(wire.trim_end()) {
            Ok(r) => r,
            Err(_) => Reply {
                ok: !wire.lines().any(|l| l.starts_with("error:")),
                text: wire,
            },
        }
    }
}

/// How a JSON report's reply starts on the wire; the report follows and
/// `}` and a newline end it. (Its text is not a JSON string in a
/// [`Reply`]: 100,000 reals would be escaped and held twice.)
const JSON_HEAD: &str = r#"{"ok":true,"json":"#;

/// What the daemon answers a request with.
#[derive(Debug)]
pub enum Answer {
    /// A reply, sent as one JSON line.
    Reply(Reply),
    /// `status json`: the report, written out a real at a time as
    /// `{"ok":true,"json":REPORT}`.
    Report(Box<crate::status::Report>),
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Answer {
        Answer::Reply(r)
    }
}

impl Answer {
    /// Writes the answer out (a report in pieces through a buffer).
    async fn write<W: tokio::io::AsyncWrite + Unpin>(&self, w: W) -> std::io::Result<()> {
        let mut w = tokio::io::BufWriter::with_capacity(64 * 1024, w);
        match self {
            Answer::Reply(r) => w.write_all(r.line().as_bytes()).await?,
            Answer::Report(report) => {
                w.write_all(JSON_HEAD.as_bytes()).await?;
                for piece in report.json_chunks() {
                    w.write_all(&piece.map_err(std::io::Error::other)?).await?;
                }
                w.write_all(b"}\n").await?;
            }
        }
        w.flush().await
    }
}

/// A request and where its answer goes.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// The answer.
    pub reply: oneshot::Sender<Answer>,
}

/// Listens on `path` until dropped, handing requests to `to`. A stale
/// socket file is replaced; anything that is not a socket is left alone
/// (an error says so); the parent directory is created. (Whether another
/// lvsd answers there was settled before: [`crate::instance::InstanceLock`]
/// refuses to start then.)
pub async fn serve(path: &Path, to: mpsc::Sender<Request>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Only a stale socket is replaced: anything else there (a file an
    // operator keeps, a directory) is left and said.
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            let _ = std::fs::remove_file(path);
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "something that is not a socket is there: left alone (remove it, or give --control PATH)",
            ));
        }
        Err(_) => {}
    }
    let mut listener = bind(path)?;
    let slots = crate::listen::Slots::new();
    let mut logged = None;
    // The socket file removed (a cleanup of /run, a hand): made again, or
    // lvsd would run on with no way to ask it.
    let mut look = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = look.tick() => {
                if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                    match bind(path) {
                        Ok(l) => {
                            tracing::warn!("control socket {} was removed: made again", path.display());
                            listener = l;
                        }
                        Err(e) => tracing::warn!("control socket {} was removed and cannot be made again: {e}", path.display()),
                    }
                }
                continue;
            }
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                crate::listen::accept_failed("control socket", &e, &mut logged).await;
                continue;
            }
        };
        let Some(slot) = slots.take().await else {
            // Said, if the socket takes it now, rather than a bare close
            // the client would read as "not running".
            let _ = stream.try_write(Reply::error(BUSY).line().as_bytes());
            continue;
        };
        let to = to.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut bytes = Vec::new();
            let mut r = BufReader::new(r).take(1024);
            // The request line within 5 s, or the connection goes (and
            // sooner when a newer connection needs its slot).
            tokio::select! {
                read = tokio::time::timeout(REQUEST_WITHIN, r.read_until(b'\n', &mut bytes)) => match read {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => return,
                },
                () = slot.evicted() => return,
            }
            slot.busy();
            // Not UTF-8: an unknown command, said so (shown escaped).
            let line = String::from_utf8_lossy(&bytes).into_owned();
            let answer = match Command::parse(&line) {
                None => Reply::error(format!(
                    "unknown command `{}`",
                    line.trim()
                        .escape_debug()
                        .to_string()
                        .chars()
                        .take(80)
                        .collect::<String>()
                ))
                .into(),
                Some(command) => {
                    let (tx, rx) = oneshot::channel();
                    if to.send(Request { command, reply: tx }).await.is_err() {
                        Reply::error("lvsd is stopping").into()
                    } else {
                        rx.await
                            .unwrap_or_else(|_| Reply::error("no answer").into())
                    }
                }
            };
            // A client that does not read its answer is let go.
            let _ = tokio::time::timeout(ANSWER_WITHIN, answer.write(&mut w)).await;
        });
    }
}

/// The control socket at `path`, root's only (0600).
fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(listener)
}

/// Sends `command` to the daemon at `path` and returns its answer (None:
/// the daemon closed without one, as when it stops mid-reload).
pub async fn ask(path: &Path, command: Command) -> std::io::Result<Option<Reply>> {
    // A daemon that is stopped (SIGSTOP) or wedged gets a minute (a
    // reload may read files for 30 s), not forever.
    let asked = async {
        let mut s = UnixStream::connect(path).await?;
        s.write_all(format!("{}\n", command.line()).as_bytes())
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), asked)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 60 s")
        })??;
    Ok((!out.trim().is_empty()).then(|| Reply::read(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_cross_the_wire_typed_and_old_daemons_are_understood() {
        for r in [
            Reply::done("applied: 1 check(s) kept\n"),
            Reply::error("no real 10.0.0.9 in the configuration"),
            Reply::done("{\"virtuals\":[]}\n"),
        ] {
            assert_eq!(Reply::read(r.line()), r);
        }
        // A done reply whose text has an `error:` line is still done.
        let r = Reply::done("error: just a word\n");
        assert!(Reply::read(r.line()).ok);
        // Bare text from an older lvsd.
        assert!(Reply::read("the IPVS table stays\n".into()).ok);
        assert!(!Reply::read("x\nerror: reload refused\n".into()).ok);
    }

    #[tokio::test]
    async fn a_report_crosses_the_wire_as_its_json() {
        let report = crate::status::Report {
            impaired: Some("a \"quoted\"\nreason".into()),
            ..crate::status::Report::default()
        };
        let mut wire = Vec::new();
        Answer::Report(Box::new(report.clone()))
            .write(&mut wire)
            .await
            .unwrap();
        let r = Reply::read(String::from_utf8(wire.clone()).unwrap());
        assert!(r.ok);
        assert_eq!(
            r.text,
            format!("{}\n", serde_json::to_string(&report).unwrap())
        );
        // Cut short (the daemon stopped while writing): an error.
        wire.truncate(wire.len() - 4);
        assert!(!Reply::read(String::from_utf8(wire).unwrap()).ok);
    }
}
