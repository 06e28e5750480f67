//! ldirectord's `monitorfile`: one line per check result of a virtual's
//! reals, `[<local time>] [<pid>] <real id> [up|down] <message>`, where
//! the real id is ldirectord's (`check:protocol:address:port:virtualhost:
//! checkport:weight:forward:request:receive`, runs of `:` turned into one
//! space) and `%`, `|`, CR and LF in the message are %-escaped. Lines are
//! written by a task of their own (the file is opened for each batch, so
//! logrotate needs no signal); the daemon never waits on the disk.

use std::path::PathBuf;
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::config::{CheckType, RealServer, VirtualService};

/// ldirectord's real id for monitorfile lines.
pub fn real_id(vs: &VirtualService, r: &RealServer) -> String {
    let c = &vs.check;
    let check = match c.checktype {
        CheckType::Negotiate | CheckType::Combined(_) => {
            format!("{}:{}", c.checktype.to_ldirectord(), c.service.as_str())
        }
        CheckType::External | CheckType::ExternalPerl => {
            format!("{}:{}", c.checktype.to_ldirectord(), c.checkcommand)
        }
        _ => c.checktype.to_ldirectord(),
    };
    let port = if r.port == 0 { vs.key.port() } else { r.port };
    let raw = [
        check,
        vs.key.protocol_str().to_owned(),
        r.address.to_string(),
        port.to_string(),
        c.virtualhost.clone().unwrap_or_default(),
        c.checkport.map(|p| p.to_string()).unwrap_or_default(),
        r.weight.to_string(),
        r.forward.as_str().to_owned(),
        c.request.clone(),
        c.receive.as_str().to_owned(),
    ]
    .join(":");
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars().filter(|&ch| ch != '\\') {
        if ch == ':' {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// One line (with its newline).
pub fn line(at: SystemTime, id: &str, up: bool, msg: &str) -> String {
    let mut m = String::with_capacity(msg.len());
    for ch in if msg.is_empty() { "-" } else { msg }.chars() {
        match ch {
            '%' | '|' | '\r' | '\n' => m.push_str(&format!("%{:02x}", ch as u32)),
            c => m.push(c),
        }
    }
    format!(
        "[{}] [{}] {id} [{}] {m}\n",
        crate::logs::ctime(at),
        std::process::id(),
        if up { "up" } else { "down" }
    )
}

/// The writer task's inbox.
#[derive(Debug, Clone)]
pub struct Monitor(mpsc::Sender<(PathBuf, String)>);

impl Monitor {
    /// Starts the writer.
    pub fn start() -> Monitor {
        let (tx, mut rx) = mpsc::channel::<(PathBuf, String)>(4096);
        tokio::spawn(async move {
            let mut warned = std::collections::HashSet::new();
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let mut by_file: Vec<(PathBuf, String)> = Vec::new();
                for (p, l) in batch {
                    match by_file.iter_mut().find(|(q, _)| *q == p) {
                        Some((_, text)) => text.push_str(&l),
                        None => by_file.push((p, l)),
                    }
                }
                for (p, text) in by_file {
                    let path = p.clone();
                    let r =
                        tokio::task::spawn_blocking(move || crate::logs::append(&p, &text)).await;
                    match r {
                        Ok(Ok(())) => {
                            warned.remove(&path);
                        }
                        Ok(Err(e)) => {
                            if warned.insert(path.clone()) {
                                tracing::error!("monitorfile {}: {e}", path.display());
                            }
                        }
                        Err(e) => tracing::error!("monitorfile {}: {e}", path.display()),
                    }
                }
            }
        });
        Monitor(tx)
    }

    /// Queues a line; dropped (not waited for) when the writer is behind.
    pub fn write(&self, path: PathBuf, line: String) {
        let _ = self.0.try_send((path, line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped_as_ldirectord_does() {
        let l = line(
            SystemTime::now(),
            "negotiate http tcp 10.0.0.1 80 1 gate",
            false,
            "a|b%c\nd",
        );
        assert!(l.ends_with("[down] a%7cb%25c%0ad\n"), "{l}");
        let l = line(SystemTime::now(), "x", true, "");
        assert!(l.ends_with(" x [up] -\n"), "{l}");
    }
}
