//! The checkers against the real server software, from Debian's packages,
//! started on 127.0.0.1 by `tests/servers/NAME up DIR` (which installs the
//! package when missing: root needed, as for the whole suite) and stopped
//! by `down`. For each: up; wrong answer or wrong credentials where the
//! check has them; frozen (SIGSTOP: the deadline is hit); stopped (refused).
//! Garbage and cut-off answers are in `line_protocols.rs` (a real server
//! cannot be made to send them).
#![allow(clippy::unwrap_used)] // test setup

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use checkers::{Checker, Dns, Ftp, Imap, Ldap, Login, Pop, ProbeError, Sip, Smtp, Step, run_probe};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[path = "../../tests/support/servers.rs"]
mod servers;
use servers::Server;

async fn probe(c: impl Checker + 'static, deadline: Duration) -> Result<(), ProbeError> {
    run_probe(Arc::new(c), deadline).await
}

const LONG: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(1500);

fn failed(r: Result<(), ProbeError>, step: Step, reason: &str) -> ProbeError {
    let e = r.unwrap_err();
    assert_eq!(e.step, step, "{e}");
    assert!(
        e.reason.contains(reason),
        "`{e}` does not contain `{reason}`"
    );
    e
}

#[tokio::test]
async fn smtp_and_submission_against_exim() {
    let s = Server::up("smtp");
    let (smtp, submission) = (s.port("SMTP_PORT"), s.port("SUBMISSION_PORT"));
    probe(Smtp::new(LOCAL, smtp), LONG).await.unwrap();
    probe(Smtp::new(LOCAL, submission), LONG).await.unwrap();
    s.signal("-STOP");
    failed(
        probe(Smtp::new(LOCAL, smtp), SHORT).await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    probe(Smtp::new(LOCAL, smtp), LONG).await.unwrap();
    s.down();
    failed(
        probe(Smtp::new(LOCAL, smtp), LONG).await,
        Step::Connect,
        "connection refused",
    );
}

fn mail_login(s: &Server, password: &str) -> Option<Login> {
    Some(Login {
        user: s.var("USER").to_owned(),
        password: password.to_owned(),
    })
}

#[tokio::test]
async fn pop_imap_and_their_tls_ports_against_dovecot() {
    let s = Server::up("dovecot");
    let good = || mail_login(&s, s.var("PASSWORD"));
    let bad = || mail_login(&s, "wrong-password");
    for (port, tls) in [("POP3_PORT", false), ("POP3S_PORT", true)] {
        let p = s.port(port);
        probe(Pop::new(LOCAL, p, tls, false, None).unwrap(), LONG)
            .await
            .unwrap();
        probe(Pop::new(LOCAL, p, tls, false, good()).unwrap(), LONG)
            .await
            .unwrap();
        let e = failed(
            probe(Pop::new(LOCAL, p, tls, false, bad()).unwrap(), LONG).await,
            Step::Answer,
            "the answer to PASS: `-ERR",
        );
        assert!(!e.to_string().contains("wrong-password"));
    }
    for (port, tls) in [("IMAP_PORT", false), ("IMAPS_PORT", true)] {
        let p = s.port(port);
        probe(Imap::new(LOCAL, p, tls, false, None).unwrap(), LONG)
            .await
            .unwrap();
        probe(Imap::new(LOCAL, p, tls, false, good()).unwrap(), LONG)
            .await
            .unwrap();
        failed(
            probe(Imap::new(LOCAL, p, tls, false, bad()).unwrap(), LONG).await,
            Step::Answer,
            "the answer to LOGIN: `a1 NO",
        );
    }
    // The self-signed certificate fails verification when asked for.
    failed(
        probe(
            Imap::new(LOCAL, s.port("IMAPS_PORT"), true, true, None).unwrap(),
            LONG,
        )
        .await,
        Step::Tls,
        "TLS handshake",
    );
    // Plain POP3 spoken to the TLS port: no greeting comes.
    failed(
        probe(
            Pop::new(LOCAL, s.port("POP3S_PORT"), false, false, None).unwrap(),
            SHORT,
        )
        .await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-STOP");
    failed(
        probe(
            Imap::new(LOCAL, s.port("IMAP_PORT"), false, false, good()).unwrap(),
            SHORT,
        )
        .await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    s.down();
    failed(
        probe(
            Pop::new(LOCAL, s.port("POP3_PORT"), false, false, None).unwrap(),
            LONG,
        )
        .await,
        Step::Connect,
        "connection refused",
    );
}

#[tokio::test]
async fn ftp_login_and_retrieval_against_vsftpd() {
    let s = Server::up("vsftpd");
    let port = s.port("FTP_PORT");
    let file = Some(s.var("FILE").to_owned());
    let re = |p: &str| Some(std::sync::Arc::new(regex::bytes::Regex::new(p).unwrap()));
    let anonymous = || Login {
        user: "anonymous".into(),
        password: "ldirectord@lvsd".into(),
    };
    let user = |password: &str| Login {
        user: s.var("USER").to_owned(),
        password: password.to_owned(),
    };
    // ldirectord's default: anonymous, the file fetched from `/`.
    probe(
        Ftp::new(LOCAL, port, anonymous(), file.clone(), re("Service Up")),
        LONG,
    )
    .await
    .unwrap();
    probe(Ftp::new(LOCAL, port, anonymous(), None, None), LONG)
        .await
        .unwrap();
    failed(
        probe(
            Ftp::new(LOCAL, port, anonymous(), file.clone(), re("Service Down")),
            LONG,
        )
        .await,
        Step::Answer,
        "does not match `Service Down` (it starts `Service Up`)",
    );
    failed(
        probe(
            Ftp::new(LOCAL, port, anonymous(), Some("missing.txt".into()), None),
            LONG,
        )
        .await,
        Step::Answer,
        "the answer to RETR missing.txt: `550",
    );
    probe(
        Ftp::new(LOCAL, port, user(s.var("PASSWORD")), None, None),
        LONG,
    )
    .await
    .unwrap();
    failed(
        probe(Ftp::new(LOCAL, port, user("wrong"), None, None), LONG).await,
        Step::Answer,
        "the answer to PASS: `530",
    );
    s.signal("-STOP");
    failed(
        probe(Ftp::new(LOCAL, port, anonymous(), None, None), SHORT).await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    s.down();
    failed(
        probe(Ftp::new(LOCAL, port, anonymous(), None, None), LONG).await,
        Step::Connect,
        "connection refused",
    );
}

#[tokio::test]
async fn dns_over_udp_and_tcp_against_unbound() {
    let s = Server::up("dns");
    let port = s.port("DNS_PORT");
    let name = s.var("NAME").to_owned();
    let address = s.var("ADDRESS").to_owned();
    let re = |p: &str| Some(std::sync::Arc::new(regex::bytes::Regex::new(p).unwrap()));
    for tcp in [false, true] {
        probe(
            Dns::new(LOCAL, port, tcp, &name, re(&regex::escape(&address))).unwrap(),
            LONG,
        )
        .await
        .unwrap();
        // An address asks for its PTR record.
        probe(
            Dns::new(
                LOCAL,
                port,
                tcp,
                s.var("PTR_ADDRESS"),
                re(&regex::escape(&name)),
            )
            .unwrap(),
            LONG,
        )
        .await
        .unwrap();
        failed(
            probe(
                Dns::new(LOCAL, port, tcp, &name, re("^10\\.")).unwrap(),
                LONG,
            )
            .await,
            Step::Answer,
            &format!("no answer matches `^10\\.` (got {address})"),
        );
        failed(
            probe(
                Dns::new(LOCAL, port, tcp, "nosuch.lvsd.test", re(".")).unwrap(),
                LONG,
            )
            .await,
            Step::Answer,
            "answer",
        );
    }
    s.signal("-STOP");
    failed(
        probe(Dns::new(LOCAL, port, false, &name, re(".")).unwrap(), SHORT).await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    s.down();
    failed(
        probe(Dns::new(LOCAL, port, false, &name, re(".")).unwrap(), LONG).await,
        Step::Connect,
        "connection refused",
    );
    failed(
        probe(Dns::new(LOCAL, port, true, &name, re(".")).unwrap(), LONG).await,
        Step::Connect,
        "connection refused",
    );
}

#[tokio::test]
async fn radius_against_freeradius() {
    use checkers::Radius;
    let s = Server::up("radius");
    let port = s.port("RADIUS_PORT");
    let login = |password: &str| Login {
        user: s.var("USER").to_owned(),
        password: password.to_owned(),
    };
    let secret = s.var("SECRET").to_owned();
    probe(
        Radius::new(LOCAL, port, login(s.var("PASSWORD")), &secret),
        LONG,
    )
    .await
    .unwrap();
    // ldirectord's rule: an Access-Reject is an answer, so the server is up.
    probe(Radius::new(LOCAL, port, login("wrong"), &secret), LONG)
        .await
        .unwrap();
    // A wrong secret: the server stays silent.
    failed(
        probe(
            Radius::new(LOCAL, port, login(s.var("PASSWORD")), "not-the-secret"),
            SHORT,
        )
        .await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-STOP");
    failed(
        probe(
            Radius::new(LOCAL, port, login(s.var("PASSWORD")), &secret),
            SHORT,
        )
        .await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    s.down();
    failed(
        probe(
            Radius::new(LOCAL, port, login(s.var("PASSWORD")), &secret),
            LONG,
        )
        .await,
        Step::Connect,
        "connection refused",
    );
}

#[tokio::test]
async fn ldap_and_ldaps_against_slapd() {
    let s = Server::up("ldap");
    let base = s.var("BASE").to_owned();
    let re = |p: &str| Some(std::sync::Arc::new(regex::bytes::Regex::new(p).unwrap()));
    let bind = |password: &str| {
        Some(Login {
            user: s.var("BIND_DN").to_owned(),
            password: password.to_owned(),
        })
    };
    for (port, tls) in [("LDAP_PORT", false), ("LDAPS_PORT", true)] {
        let p = s.port(port);
        let ldap = |login, request: &str, receive| {
            Ldap::new(LOCAL, p, tls, false, login, request, receive)
        };
        probe(ldap(None, &base, None), LONG).await.unwrap();
        // ldirectord drops a leading `/` from request.
        probe(
            ldap(
                bind(s.var("PASSWORD")),
                &format!("/{base}"),
                re("^cn=health,"),
            ),
            LONG,
        )
        .await
        .unwrap();
        failed(
            probe(ldap(None, &base, re("^cn=other")), LONG).await,
            Step::Answer,
            "the entry `cn=health,dc=lvsd,dc=test` does not match `^cn=other`",
        );
        failed(
            probe(ldap(bind("wrong"), &base, None), LONG).await,
            Step::Answer,
            "bind as `uid=checker,ou=people,dc=lvsd,dc=test`",
        );
        failed(
            probe(ldap(None, "cn=missing,dc=lvsd,dc=test", None), LONG).await,
            Step::Answer,
            "search",
        );
        // A base with children still returns just itself (scope base).
        probe(ldap(None, "dc=lvsd,dc=test", None), LONG)
            .await
            .unwrap();
    }
    failed(
        probe(
            Ldap::new(LOCAL, s.port("LDAPS_PORT"), true, true, None, &base, None),
            LONG,
        )
        .await,
        Step::Tls,
        "",
    );
    s.signal("-STOP");
    failed(
        probe(
            Ldap::new(LOCAL, s.port("LDAP_PORT"), false, false, None, &base, None),
            SHORT,
        )
        .await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    s.down();
    failed(
        probe(
            Ldap::new(LOCAL, s.port("LDAP_PORT"), false, false, None, &base, None),
            LONG,
        )
        .await,
        Step::Connect,
        "refused",
    );
}

#[tokio::test]
async fn sip_options_against_kamailio() {
    let s = Server::up("sip");
    let port = s.port("SIP_PORT");
    for tcp in [false, true] {
        probe(Sip::new(LOCAL, port, tcp, "ldirectord@lvsd"), LONG)
            .await
            .unwrap();
    }
    s.signal("-STOP");
    for tcp in [false, true] {
        failed(
            probe(Sip::new(LOCAL, port, tcp, "ldirectord@lvsd"), SHORT).await,
            Step::Deadline,
            "no answer",
        );
    }
    s.signal("-CONT");
    probe(Sip::new(LOCAL, port, false, "ldirectord@lvsd"), LONG)
        .await
        .unwrap();
    s.down();
    for tcp in [false, true] {
        failed(
            probe(Sip::new(LOCAL, port, tcp, "ldirectord@lvsd"), LONG).await,
            Step::Connect,
            "refused",
        );
    }
}

/// One SQL server: its query returns a row; an empty result, a wrong
/// password, a missing table, frozen and stopped all fail.
async fn sql_against(name: &str, engine: checkers::Engine, port_key: &str) {
    use checkers::Sql;
    let s = Server::up(name);
    let port = s.port(port_key);
    let login = |password: &str| Login {
        user: s.var("USER").to_owned(),
        password: password.to_owned(),
    };
    let db = s.var("DATABASE").to_owned();
    let sql =
        |password: &str, query: &str| Sql::new(engine, LOCAL, port, login(password), &db, query);
    let good = s.var("PASSWORD").to_owned();
    probe(sql(&good, s.var("QUERY")), LONG).await.unwrap();
    // As ldirectord.cf's reader gives it (every request gets a leading `/`,
    // which check_sql takes off again).
    probe(sql(&good, &format!("/{}", s.var("QUERY"))), LONG)
        .await
        .unwrap();
    failed(
        probe(sql(&good, s.var("EMPTY_QUERY")), LONG).await,
        Step::Answer,
        "returned no row",
    );
    let e = failed(
        probe(sql("wrong", s.var("QUERY")), LONG).await,
        Step::Answer,
        "connecting",
    );
    assert!(!e.to_string().contains("wrong"), "{e}");
    failed(
        probe(sql(&good, "SELECT * FROM no_such_table"), LONG).await,
        Step::Answer,
        "no_such_table",
    );
    s.signal("-STOP");
    failed(
        probe(sql(&good, s.var("QUERY")), SHORT).await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    probe(sql(&good, s.var("QUERY")), LONG).await.unwrap();
    s.down();
    failed(
        probe(sql(&good, s.var("QUERY")), LONG).await,
        Step::Connect,
        "refused",
    );
}

#[tokio::test]
async fn mysql_against_mariadb() {
    sql_against("mysql", checkers::Engine::Mysql, "MYSQL_PORT").await;
}

#[tokio::test]
async fn pgsql_against_postgresql() {
    sql_against("pgsql", checkers::Engine::Pgsql, "PGSQL_PORT").await;
}

#[tokio::test]
async fn nntp_against_leafnode() {
    use checkers::Nntp;
    let s = Server::up("nntp");
    let port = s.port("NNTP_PORT");
    probe(Nntp::new(LOCAL, port), LONG).await.unwrap();
    s.signal("-STOP");
    failed(
        probe(Nntp::new(LOCAL, port), SHORT).await,
        Step::Deadline,
        "no answer",
    );
    s.signal("-CONT");
    probe(Nntp::new(LOCAL, port), LONG).await.unwrap();
    s.down();
    failed(
        probe(Nntp::new(LOCAL, port), LONG).await,
        Step::Connect,
        "refused",
    );
}
