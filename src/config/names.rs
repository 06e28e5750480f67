//! Name resolution used while reading configs: service names
//! (`/etc/services`, as ldirectord's `getservbyname`), host names
//! (getaddrinfo, as ldirectord's `gethostbyname`) and this host's name.
//!
//! Readers take a `&Names` so tests and fuzzers run with [`Names::offline`],
//! which never touches the network or the machine's files.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

/// Resolves the names a config may contain.
#[derive(Debug, Clone)]
pub struct Names {
    /// (name, protocol) -> port; protocol "tcp" or "udp".
    services: HashMap<(String, String), u16>,
    hostname: String,
    online: bool,
    /// Host names looked up for this reading (None: it does not resolve).
    answers: Arc<Mutex<HashMap<String, Option<Vec<IpAddr>>>>>,
    /// Some: a first reading, which only notes the host names it meets.
    asked: Option<Arc<Mutex<BTreeSet<String>>>>,
}

/// At most this many host names are looked up at once.
const LOOKUPS_AT_ONCE: usize = 64;

/// Services every Debian machine has in /etc/services (netbase); used when
/// the file is missing and by [`Names::offline`].
const BUILTIN_SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("pop3", 110),
    ("nntp", 119),
    ("imap2", 143),
    ("imap", 143),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("ldaps", 636),
    ("ha-cluster", 694),
    ("imaps", 993),
    ("pop3s", 995),
    ("radius", 1812),
    ("mysql", 3306),
    ("sip", 5060),
    ("postgresql", 5432),
];

impl Names {
    /// Resolution as the running system does it: /etc/services, getaddrinfo
    /// and the kernel's host name.
    pub fn system() -> Names {
        let mut n = Names::offline();
        if let Ok(text) = std::fs::read_to_string("/etc/services") {
            n.services = parse_services(&text);
        }
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            n.hostname = h.trim().to_string();
        }
        n.online = true;
        n
    }

    /// Resolution without the machine: a built-in services table, only
    /// literal addresses and `localhost`, host name `localhost`.
    pub fn offline() -> Names {
        let mut services = HashMap::new();
        for (name, port) in BUILTIN_SERVICES {
            for proto in ["tcp", "udp"] {
                services.insert((name.to_string(), proto.to_string()), *port);
            }
        }
        Names {
            services,
            hostname: "localhost".into(),
            online: false,
            answers: Arc::default(),
            asked: None,
        }
    }

    /// The same resolution with nothing looked up yet (each reading asks
    /// the resolver afresh).
    pub(crate) fn fresh(&self) -> Names {
        Names {
            answers: Arc::default(),
            asked: None,
            ..self.clone()
        }
    }

    /// For readings that look nothing up themselves: a host name already
    /// looked up (by [`Names::look_up`] on this or a `noting` Names)
    /// resolves, any other is noted and does not; None offline, where no
    /// name is looked up.
    pub(crate) fn noting(&self) -> Option<Names> {
        self.online.then(|| Names {
            asked: Some(Arc::default()),
            ..self.clone()
        })
    }

    /// The host names a [`Names::noting`] reading met and could not
    /// resolve, forgotten as they are taken.
    pub(crate) fn take_noted(&self) -> BTreeSet<String> {
        self.asked
            .as_ref()
            .and_then(|a| a.lock().ok().map(|mut a| std::mem::take(&mut *a)))
            .unwrap_or_default()
    }

    /// Looks `names` up all at once (up to 64 at a time, each on its own
    /// thread), so a reading waits for the slowest name, not for their
    /// sum: with DNS down, ten names cost one resolver timeout, not ten.
    pub(crate) fn look_up(&self, names: &BTreeSet<String>) {
        let names: Vec<&String> = names.iter().collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..names.len().min(LOOKUPS_AT_ONCE) {
                s.spawn(|| {
                    while let Some(name) =
                        names.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let ips = lookup(name);
                        if let Ok(mut a) = self.answers.lock() {
                            a.insert((*name).clone(), ips);
                        }
                    }
                });
            }
        });
    }

    /// This host's name (used in ldirectord's default ftp/sip logins).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// A port number or service name for `protocol` ("tcp", "udp", or ""
    /// for either, as ldirectord asks for reals).
    pub fn port(&self, text: &str, protocol: &str) -> Option<u16> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse::<u32>().ok().and_then(|p| u16::try_from(p).ok());
        }
        let get = |p: &str| {
            self.services
                .get(&(text.to_string(), p.to_string()))
                .copied()
        };
        match protocol {
            "" => get("tcp").or_else(|| get("udp")),
            p => get(p),
        }
    }

    /// An address literal or a host name, in the wanted family.
    pub fn host(&self, text: &str, ipv6: bool) -> Option<IpAddr> {
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(a) = bare.parse::<IpAddr>() {
            return (a.is_ipv6() == ipv6).then_some(a);
        }
        if bare == "localhost" {
            return Some(if ipv6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            });
        }
        if !self.online || !is_hostname(bare) {
            return None;
        }
        let known = self.answers.lock().ok()?.get(bare).cloned();
        let ips = match (known, &self.asked) {
            (Some(ips), _) => ips,
            (None, Some(asked)) => {
                if let Ok(mut a) = asked.lock() {
                    a.insert(bare.to_owned());
                }
                return None;
            }
            (None, None) => {
                let ips = lookup(bare);
                if let Ok(mut a) = self.answers.lock() {
                    a.insert(bare.to_owned(), ips.clone());
                }
                ips
            }
        };
        ips?.into_iter().find(|ip| ip.is_ipv6() == ipv6)
    }
}

/// getaddrinfo: every address of `name` (None: it does not resolve).
fn lookup(name: &str) -> Option<Vec<IpAddr>> {
    (name, 0u16)
        .to_socket_addrs()
        .ok()
        .map(|it| it.map(|sa| sa.ip()).collect())
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Parses /etc/services: `name port/proto [aliases...] [# comment]`.
fn parse_services(text: &str) -> HashMap<(String, String), u16> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(pp)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, proto)) = pp.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        for n in std::iter::once(name).chain(words) {
            map.entry((n.to_string(), proto.to_string()))
                .or_insert(port);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_with_aliases() {
        let m = parse_services("http 80/tcp www # WorldWideWeb\ndomain 53/udp\n#x 1/tcp\n");
        assert_eq!(m.get(&("www".into(), "tcp".into())), Some(&80));
        assert_eq!(m.get(&("domain".into(), "udp".into())), Some(&53));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn ports_and_hosts_offline() {
        let n = Names::offline();
        assert_eq!(n.port("80", "tcp"), Some(80));
        assert_eq!(n.port("65536", "tcp"), None);
        assert_eq!(n.port("https", ""), Some(443));
        assert_eq!(n.port("nosuch", ""), None);
        assert_eq!(n.host("10.0.0.1", false), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(n.host("10.0.0.1", true), None);
        assert_eq!(
            n.host("[2001:db8::1]", true),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(n.host("web1.example", false), None);
    }
}
