//! `maintenancedir`: a file named after a real takes it out of service.
//!
//! As ldirectord, a file may be named `rip:rport`, `rip`, `host:rport` or
//! `host` (a name is resolved, and covers every address it resolves to).
//! IPv6 addresses are written `[2001:db8::5]:80` or bare. The directory is
//! scanned every second; a name is resolved once when its file appears.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::ipvs::desired::Maintenance;

/// What a file name asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An address, with or without a port.
    Addr(IpAddr, Option<u16>),
    /// A host name, with or without a port.
    Name(String, Option<u16>),
}

/// Reads one file name; None for names that cannot name a real (dot files,
/// editor backups).
pub fn parse(file: &str) -> Option<Entry> {
    if file.starts_with('.') || file.ends_with('~') || file.is_empty() {
        return None;
    }
    if let Ok(sa) = file.parse::<SocketAddr>() {
        return Some(Entry::Addr(sa.ip(), Some(sa.port())));
    }
    if let Ok(ip) = file
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Some(Entry::Addr(ip, None));
    }
    match file.rsplit_once(':') {
        Some((host, port)) => Some(Entry::Name(host.to_owned(), Some(port.parse().ok()?))),
        None => Some(Entry::Name(file.to_owned(), None)),
    }
}

/// Scans `dir` now, resolving names not seen before.
pub async fn scan(dir: &Path, names: &mut HashMap<String, Vec<IpAddr>>) -> Maintenance {
    let mut set = HashSet::new();
    let Ok(mut rd) = tokio::fs::read_dir(dir).await else {
        return Maintenance(set);
    };
    while let Ok(Some(e)) = rd.next_entry().await {
        let Some(entry) = e.file_name().to_str().and_then(parse) else {
            continue;
        };
        match entry {
            Entry::Addr(ip, port) => {
                set.insert((ip, port));
            }
            Entry::Name(host, port) => {
                if !names.contains_key(&host) {
                    let ips = match tokio::net::lookup_host((host.as_str(), 0)).await {
                        Ok(a) => a.map(|s| s.ip()).collect(),
                        Err(err) => {
                            tracing::warn!("maintenancedir: cannot resolve `{host}`: {err}");
                            Vec::new()
                        }
                    };
                    names.insert(host.clone(), ips);
                }
                for ip in &names[&host] {
                    set.insert((*ip, port));
                }
            }
        }
    }
    Maintenance(set)
}

/// Scans `dir` every `every` and sends the set whenever it changes.
pub async fn watch(
    dir: PathBuf,
    every: Duration,
    mut last: Maintenance,
    tx: mpsc::Sender<Maintenance>,
) {
    let mut names = HashMap::new();
    loop {
        tokio::time::sleep(every).await;
        let now = scan(&dir, &mut names).await;
        if now != last {
            last = now.clone();
            if tx.send(now).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse("10.0.0.5:80"),
            Some(Entry::Addr(ip("10.0.0.5"), Some(80)))
        );
        assert_eq!(parse("10.0.0.5"), Some(Entry::Addr(ip("10.0.0.5"), None)));
        assert_eq!(
            parse("[2001:db8::5]:80"),
            Some(Entry::Addr(ip("2001:db8::5"), Some(80)))
        );
        assert_eq!(
            parse("2001:db8::5"),
            Some(Entry::Addr(ip("2001:db8::5"), None))
        );
        assert_eq!(
            parse("web1.example.com:443"),
            Some(Entry::Name("web1.example.com".into(), Some(443)))
        );
        assert_eq!(parse("web1"), Some(Entry::Name("web1".into(), None)));
        assert_eq!(parse(".swp"), None);
        assert_eq!(parse("web1:http"), None);
    }
}
