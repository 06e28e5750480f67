//! Services on the operator's path: a config file written the way
//! ldirectord users write it (and its lvsd.toml twin), the lvsd binary in
//! dry run, the real server software (tests/servers/NAME, Debian's
//! packages, on 127.0.0.1). Each case follows the real up, down (frozen:
//! SIGSTOP, the deadline passes), up again (SIGCONT) and down (stopped)
//! through the ops log. Covered: mysql, pgsql, dns (UDP and TCP), ldap,
//! ftp, smtp, submission, pop, imap, nntp, radius, sip (UDP and TCP),
//! simpletcp; where ldirectord users write request with or without a
//! leading `/`, both. Where a check logs in (mysql, pgsql, ldap, ftp, pop,
//! imap), a wrong password (an operator's edit, reloaded) takes the real
//! down with the server's refusal in lvsd's log, and the right one brings
//! it back. (TLS ports: services_tls_from_config.rs; http, https,
//! connect, external, ping: services_http_from_config.rs.)
//!
//! Found by walking this path: every mysql/pgsql check from a config file
//! sent ldirectord's leading `/` with its query (checkers/tests call the
//! checker with a bare query, so they never saw it).
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::{Path, PathBuf};

#[path = "support/servers.rs"]
mod servers;
use servers::Server;
#[path = "support/from_config.rs"]
mod from_config;
use from_config::{Lvsd, Spec, credentials, follow, keys, mail_logins};

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

/// A wrong password in an operator's edit of a SQL check: down with the
/// server's refusal in lvsd's log, up again once put right.
fn sql_credentials(service: &str, s: &Server, port: &str, dir: &Path, reason: &str) {
    let spec = Spec::new(
        service,
        port,
        "tcp",
        keys(&[
            ("login", s.var("USER")),
            ("passwd", s.var("PASSWORD")),
            ("database", s.var("DATABASE")),
            ("request", s.var("QUERY")),
        ]),
    );
    credentials(
        dir,
        "login.cf",
        &spec.cf(true),
        &spec.with_passwd("wr0ng").cf(true),
        &["down after", "connecting", reason],
    );
}

#[test]
fn mysql_from_ldirectord_cf_and_lvsd_toml_against_mariadb() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("mysql");
    let port = s.var("MYSQL_PORT");
    sql_credentials("mysql", &s, port, dir.path(), "Access denied");
    let confs = sql_configs("mysql", &s, port, dir.path());
    follow(&s, &confs, dir.path());
}

#[test]
fn pgsql_from_ldirectord_cf_and_lvsd_toml_against_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("pgsql");
    let port = s.var("PGSQL_PORT");
    sql_credentials(
        "pgsql",
        &s,
        port,
        dir.path(),
        "password authentication failed",
    );
    let confs = sql_configs("pgsql", &s, port, dir.path());
    follow(&s, &confs, dir.path());
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
            real_check: None,
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
        real_check: None,
    };
    credentials(
        dir.path(),
        "ldap-login.cf",
        &spec.cf(false),
        &spec.with_passwd("wr0ng").cf(false),
        &["down after", "ldap 127.0.0.1", "bind as `uid=checker"],
    );
    // login without passwd: check_ldap binds anonymously then (slapd
    // refuses a DN with an empty password: "unauthenticated bind").
    let anon = Spec::new(
        "ldap",
        s.var("LDAP_PORT"),
        "tcp",
        keys(&[("login", s.var("BIND_DN")), ("request", s.var("BASE"))]),
    );
    let conf = dir.path().join("ldap-anon.cf");
    std::fs::write(&conf, anon.cf(false)).unwrap();
    let d = Lvsd::start(dir.path(), &conf);
    d.wait_ops("add-dest", 1, "login without passwd");
    drop(d);
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
        real_check: None,
    };
    // vsftpd's PAM answers a wrong password after its failure delay (about
    // 2 s): the check waits longer than that, so the reason is the 530.
    let slow = |t: String| t.replace("negotiatetimeout=2", "negotiatetimeout=6");
    credentials(
        dir.path(),
        "ftp-login.cf",
        &slow(spec.cf(false)),
        &slow(spec.with_passwd("wr0ng").cf(false)),
        &["down after", "ftp 127.0.0.1", "the answer to PASS: `530"],
    );
    let confs = spec.write(dir.path(), "ftp", true);
    follow(&s, &confs, dir.path());
}

#[test]
fn smtp_and_submission_from_ldirectord_cf_and_lvsd_toml_against_exim() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("smtp");
    let mut confs = Vec::new();
    // submission: exim's port 587-style listener (STARTTLS and AUTH
    // offered); ldirectord's check_smtp, like lvsd's, only greets.
    for (service, port) in [("smtp", "SMTP_PORT"), ("submission", "SUBMISSION_PORT")] {
        let spec = Spec::new(service, s.var(port), "tcp", Vec::new());
        confs.extend(spec.write(dir.path(), service, false));
    }
    follow(&s, &confs, dir.path());
}

#[test]
fn pop_and_imap_from_ldirectord_cf_and_lvsd_toml_against_dovecot() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("dovecot");
    let confs = mail_logins(
        &s,
        dir.path(),
        &[
            ("pop", "POP3_PORT", "the answer to PASS: `-ERR"),
            ("imap", "IMAP_PORT", "the answer to LOGIN: `a1 NO"),
        ],
        |_, _| {},
    );
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
        real_check: None,
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
        real_check: None,
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
            real_check: None,
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
        real_check: None,
    };
    let confs = spec.write(dir.path(), "simpletcp", true);
    follow(&s, &confs, dir.path());
}
