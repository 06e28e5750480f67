//! The line-protocol checkers (smtp, pop, imap, nntp, ftp, simpletcp) and
//! the external checker against scripted servers on 127.0.0.1: the ways a
//! server misbehaves that a real one cannot be made to (garbage, a line cut
//! off, a greeting that never comes). The same checkers against the real
//! daemons are in `real_servers.rs`.
#![allow(clippy::unwrap_used)] // test setup

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use checkers::{
    Checker, External, Imap, Login, Nntp, Pop, ProbeError, SimpleTcp, Smtp, Step, run_probe,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What a scripted server does, in order, on each connection.
#[derive(Clone, Debug)]
enum Act {
    /// Send these bytes.
    Send(&'static str),
    /// Read one line from the client; it must start with this.
    Expect(&'static str),
    /// Read everything until the client closes its sending side.
    Drain,
    /// Never answer again (keep the connection open).
    Hang,
}

/// A server on 127.0.0.1 playing `script` to every client; returns its port.
async fn scripted(script: Vec<Act>) -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let script = script.clone();
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                for act in script {
                    match act {
                        Act::Send(b) => {
                            if s.get_mut().write_all(b.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Act::Expect(prefix) => {
                            let mut line = String::new();
                            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            assert!(line.starts_with(prefix), "got {line:?}, want {prefix}");
                        }
                        Act::Drain => {
                            let mut sink = Vec::new();
                            let _ = s.read_to_end(&mut sink).await;
                        }
                        Act::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                }
            });
        }
    });
    port
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    l.local_addr().unwrap().port()
}

async fn probe(c: impl Checker + 'static) -> Result<(), ProbeError> {
    run_probe(Arc::new(c), Duration::from_secs(5)).await
}

fn failed(r: Result<(), ProbeError>, step: Step, reason: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.step, step, "{e}");
    assert!(
        e.reason.contains(reason),
        "`{}` does not contain `{reason}`",
        e.reason
    );
}

fn login() -> Option<Login> {
    Some(Login {
        user: "lvsd".into(),
        password: "s3cret-do-not-log".into(),
    })
}

#[tokio::test]
async fn smtp_greeting_ehlo_quit() {
    use Act::*;
    let good = scripted(vec![
        Send("220-mx.example ESMTP\r\n220 ready\r\n"),
        Expect("EHLO localhost.localdomain"),
        Send("250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
        Expect("QUIT"),
        Send("221 bye\r\n"),
    ])
    .await;
    probe(Smtp::new(LOCAL, good)).await.unwrap();

    // EHLO refused: HELO, as Net::SMTP falls back.
    let old = scripted(vec![
        Send("220 old\r\n"),
        Expect("EHLO"),
        Send("502 no\r\n"),
        Expect("HELO localhost.localdomain"),
        Send("250 hi\r\n"),
    ])
    .await;
    probe(Smtp::new(LOCAL, old)).await.unwrap();

    let busy = scripted(vec![Send("554 too busy\r\n")]).await;
    failed(
        probe(Smtp::new(LOCAL, busy)).await,
        Step::Answer,
        "the greeting: `554 too busy`",
    );
    let garbage = scripted(vec![Send("HTTP/1.1 400 Bad Request\r\n")]).await;
    failed(
        probe(Smtp::new(LOCAL, garbage)).await,
        Step::Answer,
        "not a reply",
    );
    let cut = scripted(vec![Send("220 half a lin")]).await;
    failed(
        probe(Smtp::new(LOCAL, cut)).await,
        Step::Exchange,
        "closed the connection in the middle of the greeting (`220 half a lin`)",
    );
    let long = scripted(vec![Send(Box::leak("2".repeat(5000).into_boxed_str()))]).await;
    failed(
        probe(Smtp::new(LOCAL, long)).await,
        Step::Exchange,
        "longer than 4096 bytes",
    );
    let rude = scripted(vec![
        Send("220 ok\r\n"),
        Expect("EHLO"),
        Send("550 go away\r\n"),
        Expect("HELO"),
        Send("550 go away\r\n"),
    ])
    .await;
    failed(
        probe(Smtp::new(LOCAL, rude)).await,
        Step::Answer,
        "the answer to HELO: `550 go away` (EHLO said `550 go away`)",
    );
    failed(
        probe(Smtp::new(LOCAL, closed_port().await)).await,
        Step::Connect,
        "refused",
    );
}

#[tokio::test]
async fn a_frozen_server_hits_the_deadline_and_delays_no_other_check() {
    let frozen = scripted(vec![Act::Hang]).await;
    let good = scripted(vec![
        Act::Send("200 news\r\n"),
        Act::Expect("QUIT"),
        Act::Send("205 bye\r\n"),
    ])
    .await;
    let slow = run_probe(
        Arc::new(Smtp::new(LOCAL, frozen)),
        Duration::from_millis(800),
    );
    let fast = run_probe(Arc::new(Nntp::new(LOCAL, good)), Duration::from_secs(5));
    tokio::pin!(slow);
    // The healthy check finishes while the frozen one is still waiting.
    tokio::select! {
        r = &mut slow => panic!("the frozen server's probe ended first: {r:?}"),
        r = fast => r.unwrap(),
    }
    failed(slow.await, Step::Deadline, "no answer within 800ms");
}

#[tokio::test]
async fn pop_greeting_and_login_never_logging_the_password() {
    use Act::*;
    let good = scripted(vec![
        Send("+OK Dovecot ready.\r\n"),
        Expect("USER lvsd"),
        Send("+OK\r\n"),
        Expect("PASS s3cret-do-not-log"),
        Send("+OK Logged in.\r\n"),
        Expect("QUIT"),
        Send("+OK Logging out.\r\n"),
    ])
    .await;
    probe(Pop::new(LOCAL, good, false, false, login()).unwrap())
        .await
        .unwrap();
    let anonymous = scripted(vec![Send("+OK ready\r\n"), Expect("QUIT")]).await;
    probe(Pop::new(LOCAL, anonymous, false, false, None).unwrap())
        .await
        .unwrap();

    let wrong = scripted(vec![
        Send("+OK ready\r\n"),
        Expect("USER"),
        Send("+OK\r\n"),
        Expect("PASS"),
        Send("-ERR [AUTH] Authentication failed.\r\n"),
    ])
    .await;
    let e = probe(Pop::new(LOCAL, wrong, false, false, login()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("pop 127.0.0.1:{wrong}: the answer to PASS: `-ERR [AUTH] Authentication failed.`")
    );
    assert!(!format!("{e} {e:?}").contains("s3cret"));
    let imap_not_pop = scripted(vec![Send("* OK IMAP ready\r\n")]).await;
    failed(
        probe(Pop::new(LOCAL, imap_not_pop, false, false, None).unwrap()).await,
        Step::Answer,
        "the greeting: `* OK IMAP ready`",
    );
    // pops against a plain server: the TLS handshake fails and says so.
    let plain = scripted(vec![Send("+OK plain\r\n")]).await;
    failed(
        probe(Pop::new(LOCAL, plain, true, false, None).unwrap()).await,
        Step::Tls,
        "TLS handshake",
    );
}

#[tokio::test]
async fn imap_greeting_and_login() {
    use Act::*;
    let good = scripted(vec![
        Send("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        Expect("a1 LOGIN \"lvsd\" \"s3cret-do-not-log\""),
        Send("* CAPABILITY IMAP4rev1 IDLE\r\na1 OK Logged in\r\n"),
        Expect("a2 LOGOUT"),
        Send("* BYE\r\na2 OK\r\n"),
    ])
    .await;
    probe(Imap::new(LOCAL, good, false, false, login()).unwrap())
        .await
        .unwrap();
    let refused = scripted(vec![
        Send("* OK ready\r\n"),
        Expect("a1 LOGIN"),
        Send("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
    ])
    .await;
    let e = probe(Imap::new(LOCAL, refused, false, false, login()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Answer);
    assert!(e.reason.contains("a1 NO [AUTHENTICATIONFAILED]"), "{e}");
    assert!(!e.to_string().contains("s3cret"));
    let bye = scripted(vec![Send("* BYE too many connections\r\n")]).await;
    failed(
        probe(Imap::new(LOCAL, bye, false, false, None).unwrap()).await,
        Step::Answer,
        "the greeting: `* BYE too many connections`",
    );
    let silent_close = scripted(vec![]).await;
    failed(
        probe(Imap::new(LOCAL, silent_close, false, false, None).unwrap()).await,
        Step::Exchange,
        "closed the connection before the greeting",
    );
}

#[tokio::test]
async fn nntp_greeting_starts_with_2() {
    let no = scripted(vec![Act::Send("502 no permission\r\n")]).await;
    failed(
        probe(Nntp::new(LOCAL, no)).await,
        Step::Answer,
        "`502 no permission`",
    );
    let posting_off = scripted(vec![Act::Send("201 read only\r\n")]).await;
    probe(Nntp::new(LOCAL, posting_off)).await.unwrap();
    let binary = scripted(vec![Act::Send("\u{1}\u{2}garbage\r\n")]).await;
    failed(
        probe(Nntp::new(LOCAL, binary)).await,
        Step::Answer,
        "\\u{1}\\u{2}garbage",
    );
}

#[tokio::test]
async fn simpletcp_sends_the_request_and_matches_a_line() {
    use Act::*;
    let port = scripted(vec![Expect("PING"), Drain, Send("hello\nService Up\n")]).await;
    let re = |s: &str| Some(std::sync::Arc::new(regex::bytes::Regex::new(s).unwrap()));
    // ldirectord drops the leading `/` and turns `\n` into a newline.
    probe(SimpleTcp::new(LOCAL, port, "/PING\\n", re("^Service Up$")))
        .await
        .unwrap();
    probe(SimpleTcp::new(LOCAL, port, "PING\\n", None))
        .await
        .unwrap();
    failed(
        probe(SimpleTcp::new(LOCAL, port, "PING\\n", re("Down"))).await,
        Step::Answer,
        "no line matches `Down` (first line `hello`)",
    );
    let mute = scripted(vec![Drain]).await;
    failed(
        probe(SimpleTcp::new(LOCAL, mute, "x", None)).await,
        Step::Answer,
        "no answer",
    );
}

fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p.to_str().unwrap().to_owned()
}

fn args() -> [String; 4] {
    ["192.0.2.10", "80", "127.0.0.1", "8080"].map(str::to_owned)
}

/// Whether `pid` still runs (a zombie, killed but not yet reaped, does not).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn gone(pid: &str) -> bool {
    for _ in 0..50 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn external_exit_status_arguments_and_hung_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("args");
    let ok = script(
        &dir,
        "ok",
        &format!("echo \"$@\" > {}; exit 0", out.display()),
    );
    probe(External::new(&ok, args())).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "192.0.2.10 80 127.0.0.1 8080\n",
        "ldirectord's arguments: vip vport rip rport"
    );
    // A command line with options of its own, as checkcommand may be.
    probe(External::new(&format!("{ok} --quick"), args()))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "--quick 192.0.2.10 80 127.0.0.1 8080\n"
    );

    let three = script(&dir, "three", "exit 3");
    let e = probe(External::new(&three, args())).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("external {three} 192.0.2.10 80 127.0.0.1 8080: exit status 3")
    );
    let missing = dir.path().join("no-such-script");
    failed(
        probe(External::new(missing.to_str().unwrap(), args())).await,
        Step::Answer,
        "exit status 127",
    );

    // checktype=external-perl: the plan runs the file with perl.
    let pl = dir.path().join("check.pl");
    std::fs::write(
        &pl,
        "exit($ARGV[2] eq '127.0.0.1' && $ARGV[3] == 8080 ? 0 : 1);\n",
    )
    .unwrap();
    probe(External::new(&format!("perl {}", pl.display()), args()))
        .await
        .unwrap();
    let mut other = args();
    other[3] = "9".into();
    failed(
        probe(External::new(&format!("perl {}", pl.display()), other)).await,
        Step::Answer,
        "exit status 1",
    );

    // Hangs: killed at the deadline, nothing left running.
    let pidfile = dir.path().join("pid");
    let hang = script(
        &dir,
        "hang",
        &format!("echo $$ > {}; exec sleep 1000", pidfile.display()),
    );
    let r = run_probe(
        Arc::new(External::new(&hang, args())),
        Duration::from_millis(700),
    )
    .await;
    failed(r, Step::Deadline, "no answer within 700ms");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(gone(&pid).await, "the hung script {pid} is still running");

    // Forks a child that hangs, then hangs itself: both killed.
    let childfile = dir.path().join("child");
    let forks = script(
        &dir,
        "forks",
        &format!("sleep 1000 & echo $! > {}; sleep 1000", childfile.display()),
    );
    let r = run_probe(
        Arc::new(External::new(&forks, args())),
        Duration::from_millis(700),
    )
    .await;
    failed(r, Step::Deadline, "no answer");
    let child = std::fs::read_to_string(&childfile).unwrap();
    assert!(
        gone(&child).await,
        "the script's child {child} is still running"
    );

    // Forks a child that hangs and exits 0 at once: up, and the child is
    // killed with the group.
    let quick = script(
        &dir,
        "quick",
        &format!("sleep 1000 & echo $! > {}; exit 0", childfile.display()),
    );
    probe(External::new(&quick, args())).await.unwrap();
    let child = std::fs::read_to_string(&childfile).unwrap();
    assert!(
        gone(&child).await,
        "the script's child {child} outlived the check"
    );
}

/// A UDP SIP responder on 127.0.0.1 answering each request with `answers`
/// (one datagram each); returns its port.
async fn sip_udp(answers: Vec<&'static str>) -> u16 {
    let s = tokio::net::UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0; 4096];
        loop {
            let Ok((n, from)) = s.recv_from(&mut buf).await else {
                return;
            };
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(
                req.starts_with("OPTIONS sip:lvsd@example.test SIP/2.0\r\n"),
                "{req}"
            );
            assert!(
                req.contains("\r\nCSeq: 1 OPTIONS\r\n") && req.ends_with("\r\n\r\n"),
                "{req}"
            );
            for a in &answers {
                let _ = s.send_to(a.as_bytes(), from).await;
            }
        }
    });
    port
}

#[tokio::test]
async fn sip_options_over_udp_and_tcp() {
    use checkers::Sip;
    let ok = sip_udp(vec![
        "SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n",
        "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    ])
    .await;
    probe(Sip::new(LOCAL, ok, false, "lvsd@example.test"))
        .await
        .unwrap();
    let not_found = sip_udp(vec!["SIP/2.0 404 Not Found\r\n\r\n"]).await;
    failed(
        probe(Sip::new(LOCAL, not_found, false, "lvsd@example.test")).await,
        Step::Answer,
        "`SIP/2.0 404 Not Found`",
    );
    let http = sip_udp(vec!["HTTP/1.1 400 Bad Request\r\n\r\n"]).await;
    failed(
        probe(Sip::new(LOCAL, http, false, "lvsd@example.test")).await,
        Step::Answer,
        "not a SIP answer: `HTTP/1.1 400 Bad Request`",
    );
    let silent = sip_udp(vec![]).await;
    let r = run_probe(
        Arc::new(Sip::new(LOCAL, silent, false, "lvsd@example.test")),
        Duration::from_millis(500),
    )
    .await;
    failed(r, Step::Deadline, "no answer");
    use Act::*;
    let tcp = scripted(vec![
        Expect("OPTIONS sip:lvsd@example.test SIP/2.0"),
        Send("SIP/2.0 100 Trying\r\nVia: x\r\n\r\nSIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ])
    .await;
    probe(Sip::new(LOCAL, tcp, true, "lvsd@example.test"))
        .await
        .unwrap();
}

/// A UDP server on 127.0.0.1 answering every datagram with `answer`,
/// its second byte replaced by the request's (the RADIUS identifier) when
/// `echo_id`.
async fn udp_garbage(answer: &'static [u8], echo_id: bool) -> u16 {
    let s = tokio::net::UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0; 4096];
        loop {
            let Ok((n, from)) = s.recv_from(&mut buf).await else {
                return;
            };
            let mut a = answer.to_vec();
            if echo_id && n > 1 && a.len() > 1 {
                a[1] = buf[1];
            }
            let _ = s.send_to(&a, from).await;
        }
    });
    port
}

/// The checkers built on libraries (dns, radius, ldap, mysql, pgsql) given
/// garbage: each fails that probe with a reason, quickly, without panicking.
#[tokio::test]
async fn library_checkers_fail_cleanly_on_garbage() {
    use checkers::{Dns, Engine, Ldap, Radius, Sql};
    let junk: &'static [u8] = b"\x00\x01garbage that is no protocol at all\r\n";
    let re = Some(std::sync::Arc::new(regex::bytes::Regex::new(".").unwrap()));
    let login = Login {
        user: "u".into(),
        password: "p".into(),
    };
    let tcp_junk = scripted(vec![Act::Send("\u{0}\u{1}garbage\r\n")]).await;
    let cases: Vec<(&str, Arc<dyn Checker>)> = vec![
        (
            "dns udp",
            Arc::new(
                Dns::new(
                    LOCAL,
                    udp_garbage(junk, false).await,
                    false,
                    "www.lvsd.test",
                    re.clone(),
                )
                .unwrap(),
            ),
        ),
        (
            "dns tcp",
            Arc::new(Dns::new(LOCAL, tcp_junk, true, "www.lvsd.test", re.clone()).unwrap()),
        ),
        (
            "radius short",
            Arc::new(Radius::new(
                LOCAL,
                udp_garbage(b"\x02\x00", true).await,
                login.clone(),
                "s",
            )),
        ),
        (
            "radius forged",
            Arc::new(Radius::new(
                LOCAL,
                udp_garbage(
                    &[2, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    true,
                )
                .await,
                login.clone(),
                "s",
            )),
        ),
        (
            "ldap",
            Arc::new(Ldap::new(LOCAL, tcp_junk, false, false, None, "dc=x", None)),
        ),
        (
            "mysql",
            Arc::new(Sql::new(
                Engine::Mysql,
                LOCAL,
                tcp_junk,
                login.clone(),
                "d",
                "SELECT 1",
            )),
        ),
        (
            "pgsql",
            Arc::new(Sql::new(
                Engine::Pgsql,
                LOCAL,
                tcp_junk,
                login.clone(),
                "d",
                "SELECT 1",
            )),
        ),
    ];
    for (what, c) in cases {
        let e = run_probe(c, Duration::from_secs(3)).await.unwrap_err();
        assert_ne!(e.step, Step::Internal, "{what}: {e}");
        assert_ne!(e.step, Step::Deadline, "{what}: {e}");
        assert!(!e.reason.is_empty(), "{what}");
        eprintln!("{what}: {e}");
    }
}
