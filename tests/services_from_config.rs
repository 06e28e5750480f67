//! Services on the operator's path: a config file written the way
//! ldirectord users write it (and its lvsd.toml twin), the lvsd binary in
//! dry run, the real server software (tests/servers/NAME, Debian's
//! packages, on 127.0.0.1). Each case follows the real up, down (frozen:
//! SIGSTOP, the deadline passes), up again (SIGCONT) and down (stopped)
//! through the ops log. Covered: mysql, pgsql, dns (UDP and TCP), ldap,
//! ftp, smtp, pop, imap, nntp, radius, sip (UDP and TCP), simpletcp; where
//! ldirectord users write request with or without a leading `/`, both.
//!
//! Found by walking this path: every mysql/pgsql check from a config file
//! sent ldirectord's leading `/` with its query (checkers/tests call the
//! checker with a bare query, so they never saw it).
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[path = "support/servers.rs"]
mod servers;
use servers::Server;

/// A dry-run lvsd, killed when dropped.
struct Lvsd {
    child: Child,
    ops: PathBuf,
    log: PathBuf,
}

impl Lvsd {
    fn start(dir: &Path, conf: &Path) -> Lvsd {
        let (ops, log) = (dir.join("ops.jsonl"), dir.join("lvsd.log"));
        let _ = std::fs::remove_file(&ops);
        let child = Command::new(env!("CARGO_BIN_EXE_lvsd"))
            .args(["run", "--dry-run", "--ops-log"])
            .arg(&ops)
            .arg("--control")
            .arg(dir.join("control.sock"))
            .arg(conf)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Lvsd { child, ops, log }
    }

    /// Waits (up to 15 s) until the ops log has `n` lines with `op`.
    fn wait_ops(&self, op: &str, n: usize, what: &str) {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.ops).unwrap_or_default();
            if text.matches(&format!("\"op\":\"{op}\"")).count() >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{what}: no {n}× {op} in the ops log:\n{text}\nlvsd's log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ldirectord.cf an operator writes for a SQL real, the query with or
/// without ldirectord's `/`, and its lvsd.toml twin.
fn sql_configs(service: &str, s: &Server, port: &str, dir: &Path) -> Vec<PathBuf> {
    let (user, pass, db, query) = (
        s.var("USER"),
        s.var("PASSWORD"),
        s.var("DATABASE"),
        s.var("QUERY"),
    );
    let mut out = Vec::new();
    for (name, request) in [
        ("plain.cf", query.to_owned()),
        ("slash.cf", format!("/{query}")),
    ] {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                "checkinterval=1\nchecktimeout=2\nnegotiatetimeout=2\nquiescent=no\n\n\
                 virtual=192.0.2.10:{port}\n\
                 \treal=127.0.0.1:{port} gate\n\
                 \tservice={service}\n\
                 \tlogin=\"{user}\"\n\
                 \tpasswd=\"{pass}\"\n\
                 \tdatabase=\"{db}\"\n\
                 \trequest=\"{request}\"\n"
            ),
        )
        .unwrap();
        out.push(p);
    }
    let p = dir.join("lvsd.toml");
    std::fs::write(
        &p,
        format!(
            "[global]\ncheckinterval = 1\nchecktimeout = 2\nnegotiatetimeout = 2\nquiescent = false\n\n\
             [[virtual]]\naddress = \"192.0.2.10:{port}\"\nservice = \"{service}\"\n\
             login = \"{user}\"\npasswd = \"{pass}\"\ndatabase = \"{db}\"\nrequest = \"{query}\"\n\
             real = [\"127.0.0.1:{port} gate\"]\n"
        ),
    )
    .unwrap();
    out.push(p);
    out
}

/// Up, frozen (down), thawed (up), stopped (down), through the binary.
fn follow(s: &Server, confs: &[PathBuf], dir: &Path) {
    let last = confs.len() - 1;
    for (i, conf) in confs.iter().enumerate() {
        let what = conf.display().to_string();
        let d = Lvsd::start(dir, conf);
        d.wait_ops("add-dest", 1, &what);
        s.signal("-STOP");
        d.wait_ops("del-dest", 1, &what);
        s.signal("-CONT");
        d.wait_ops("add-dest", 2, &what);
        if i == last {
            s.down();
            d.wait_ops("del-dest", 2, &what);
        }
    }
}

#[test]
fn mysql_from_ldirectord_cf_and_lvsd_toml_against_mariadb() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("mysql");
    let confs = sql_configs("mysql", &s, s.var("MYSQL_PORT"), dir.path());
    follow(&s, &confs, dir.path());
}

#[test]
fn pgsql_from_ldirectord_cf_and_lvsd_toml_against_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("pgsql");
    let confs = sql_configs("pgsql", &s, s.var("PGSQL_PORT"), dir.path());
    follow(&s, &confs, dir.path());
}

/// A virtual service as an operator writes it: `service`, the real's
/// `port`, its `protocol` (tcp or udp) and the other keys (request,
/// receive, login, passwd, database, secret, checkport) in order.
struct Spec<'a> {
    service: &'a str,
    port: &'a str,
    protocol: &'a str,
    keys: Vec<(&'a str, String)>,
}

impl Spec<'_> {
    /// The ldirectord.cf line of one key: strings quoted, the way
    /// ldirectord users write them; with `slash`, request gets the `/`
    /// ldirectord users often write.
    fn cf_line(key: &str, value: &str, slash: bool) -> String {
        match key {
            "checkport" => format!("\t{key}={value}\n"),
            "request" if slash => format!("\t{key}=\"/{value}\"\n"),
            _ => format!("\t{key}=\"{value}\"\n"),
        }
    }

    fn cf(&self, slash: bool) -> String {
        let mut t = format!(
            "checkinterval=1\nchecktimeout=2\nnegotiatetimeout=2\nquiescent=no\n\n\
             virtual=192.0.2.10:{port}\n\
             \treal=127.0.0.1:{port} gate\n\
             \tservice={service}\n",
            port = self.port,
            service = self.service
        );
        if self.protocol != "tcp" {
            t += &format!("\tprotocol={}\n", self.protocol);
        }
        for (k, v) in &self.keys {
            t += &Self::cf_line(k, v, slash);
        }
        t
    }

    fn toml(&self) -> String {
        let mut t = format!(
            "[global]\ncheckinterval = 1\nchecktimeout = 2\nnegotiatetimeout = 2\nquiescent = false\n\n\
             [[virtual]]\naddress = \"192.0.2.10:{port}\"\nservice = \"{service}\"\n",
            port = self.port,
            service = self.service
        );
        if self.protocol != "tcp" {
            t += &format!("protocol = \"{}\"\n", self.protocol);
        }
        for (k, v) in &self.keys {
            if *k == "checkport" {
                t += &format!("{k} = {v}\n");
            } else {
                // A literal string: regexes keep their backslashes.
                t += &format!("{k} = '{v}'\n");
            }
        }
        t += &format!("real = [\"127.0.0.1:{} gate\"]\n", self.port);
        t
    }

    /// Writes NAME.cf (and, with `slash`, NAME-slash.cf: the request with
    /// a leading `/`) and NAME.toml into `dir`; returns their paths.
    fn write(&self, dir: &Path, name: &str, slash: bool) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut put = |file: String, text: String| {
            let p = dir.join(file);
            std::fs::write(&p, text).unwrap();
            out.push(p);
        };
        put(format!("{name}.cf"), self.cf(false));
        if slash {
            put(format!("{name}-slash.cf"), self.cf(true));
        }
        put(format!("{name}.toml"), self.toml());
        out
    }
}

fn keys<'a>(pairs: &[(&'a str, &str)]) -> Vec<(&'a str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

#[test]
fn dns_from_ldirectord_cf_and_lvsd_toml_against_unbound() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("dns");
    let port = s.var("DNS_PORT");
    let mut confs = Vec::new();
    for protocol in ["udp", "tcp"] {
        let spec = Spec {
            service: "dns",
            port,
            protocol,
            keys: keys(&[("request", s.var("NAME")), ("receive", s.var("ADDRESS"))]),
        };
        confs.extend(spec.write(dir.path(), protocol, true));
    }
    follow(&s, &confs, dir.path());
}

#[test]
fn ldap_from_ldirectord_cf_and_lvsd_toml_against_slapd() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("ldap");
    let spec = Spec {
        service: "ldap",
        port: s.var("LDAP_PORT"),
        protocol: "tcp",
        keys: keys(&[
            ("login", s.var("BIND_DN")),
            ("passwd", s.var("PASSWORD")),
            ("request", s.var("BASE")),
            ("receive", "^cn=health,"),
        ]),
    };
    let confs = spec.write(dir.path(), "ldap", true);
    follow(&s, &confs, dir.path());
}

#[test]
fn ftp_from_ldirectord_cf_and_lvsd_toml_against_vsftpd() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("vsftpd");
    let spec = Spec {
        service: "ftp",
        port: s.var("FTP_PORT"),
        protocol: "tcp",
        keys: keys(&[
            ("login", s.var("USER")),
            ("passwd", s.var("PASSWORD")),
            ("request", s.var("FILE")),
            ("receive", "Service Up"),
        ]),
    };
    let confs = spec.write(dir.path(), "ftp", true);
    follow(&s, &confs, dir.path());
}

#[test]
fn smtp_from_ldirectord_cf_and_lvsd_toml_against_exim() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("smtp");
    let spec = Spec {
        service: "smtp",
        port: s.var("SMTP_PORT"),
        protocol: "tcp",
        keys: Vec::new(),
    };
    let confs = spec.write(dir.path(), "smtp", false);
    follow(&s, &confs, dir.path());
}

#[test]
fn pop_and_imap_from_ldirectord_cf_and_lvsd_toml_against_dovecot() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("dovecot");
    let mut confs = Vec::new();
    for (service, port) in [("pop", "POP3_PORT"), ("imap", "IMAP_PORT")] {
        let spec = Spec {
            service,
            port: s.var(port),
            protocol: "tcp",
            keys: keys(&[("login", s.var("USER")), ("passwd", s.var("PASSWORD"))]),
        };
        confs.extend(spec.write(dir.path(), service, false));
    }
    follow(&s, &confs, dir.path());
}

#[test]
fn nntp_from_ldirectord_cf_and_lvsd_toml_against_leafnode() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("nntp");
    let spec = Spec {
        service: "nntp",
        port: s.var("NNTP_PORT"),
        protocol: "tcp",
        keys: Vec::new(),
    };
    let confs = spec.write(dir.path(), "nntp", false);
    follow(&s, &confs, dir.path());
}

#[test]
fn radius_from_ldirectord_cf_and_lvsd_toml_against_freeradius() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("radius");
    let spec = Spec {
        service: "radius",
        port: s.var("RADIUS_PORT"),
        protocol: "udp",
        keys: keys(&[
            ("login", s.var("USER")),
            ("passwd", s.var("PASSWORD")),
            ("secret", s.var("SECRET")),
        ]),
    };
    let confs = spec.write(dir.path(), "radius", false);
    follow(&s, &confs, dir.path());
}

#[test]
fn sip_from_ldirectord_cf_and_lvsd_toml_against_kamailio() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("sip");
    let mut confs = Vec::new();
    for protocol in ["udp", "tcp"] {
        let spec = Spec {
            service: "sip",
            port: s.var("SIP_PORT"),
            protocol,
            keys: keys(&[("login", "ldirectord@lvsd")]),
        };
        confs.extend(spec.write(dir.path(), protocol, false));
    }
    follow(&s, &confs, dir.path());
}

#[test]
fn simpletcp_from_ldirectord_cf_and_lvsd_toml_against_leafnode() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("nntp");
    // The request's `\n` as ldirectord.cf users write it (two characters);
    // 205 answers QUIT, so the request was sent and read.
    let spec = Spec {
        service: "simpletcp",
        port: s.var("NNTP_PORT"),
        protocol: "tcp",
        keys: keys(&[("request", "QUIT\\n"), ("receive", "^205")]),
    };
    let confs = spec.write(dir.path(), "simpletcp", true);
    follow(&s, &confs, dir.path());
}
