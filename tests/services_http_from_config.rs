//! http, https, connect, external, external-perl and ping on the
//! operator's path: an ldirectord.cf written the way ldirectord users write
//! it (request with and without the leading `/`, a per-real
//! `"request", "receive"` on the `real=` line) and its lvsd.toml twin, the
//! lvsd binary in dry run, a real nginx (tests/servers/http) on 127.0.0.1.
//! Each follows the real up, down (frozen, a wrong answer, a missing page,
//! stopped) and up again through the ops log, and reads the reason in
//! lvsd's log. Ping runs in a network namespace of its own (root), whose
//! loopback the test takes down and up.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::Path;
use std::process::Command;

#[path = "support/servers.rs"]
mod servers;
use servers::Server;
#[path = "support/from_config.rs"]
mod from_config;
use from_config::{Lvsd, Spec, follow, keys};

/// Writes `text` as the page `name` nginx serves.
fn page(s: &Server, name: &str, text: &str) {
    std::fs::write(Path::new(s.var("DOCROOT")).join(name), text).unwrap();
}

/// A page without the receive string, then a missing page: each takes the
/// real down with its reason in lvsd's log; the right page brings it back.
fn wrong_answers(s: &Server, conf: &Path, dir: &Path, file: &str) {
    let what = conf.display().to_string();
    let d = Lvsd::start(dir, conf);
    d.wait_ops("add-dest", 1, &what);
    page(s, file, "Service Down\n");
    d.wait_ops("del-dest", 1, &format!("{what}: {file} without the string"));
    d.wait_log(
        &["down after", &format!("/{file}"), "does not match"],
        &what,
    );
    page(s, file, "Service Up\n");
    d.wait_ops("add-dest", 2, &format!("{what}: {file} right again"));
    std::fs::remove_file(Path::new(s.var("DOCROOT")).join(file)).unwrap();
    d.wait_ops("del-dest", 2, &format!("{what}: {file} missing"));
    d.wait_log(&["down after", &format!("/{file}"), "status 404"], &what);
    page(s, file, "Service Up\n");
    d.wait_ops("add-dest", 3, &format!("{what}: {file} back"));
}

#[test]
fn http_and_https_from_ldirectord_cf_and_lvsd_toml_against_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("http");
    let mut confs = Vec::new();
    for (service, port) in [("http", "HTTP_PORT"), ("https", "HTTPS_PORT")] {
        let spec = Spec::new(
            service,
            s.var(port),
            "tcp",
            keys(&[("request", "index.html"), ("receive", "Service Up")]),
        );
        confs.extend(spec.write(dir.path(), service, true));
    }
    // A wrong answer and a missing page, over HTTP and over TLS.
    wrong_answers(&s, &confs[0], dir.path(), "index.html");
    wrong_answers(&s, &confs[5], dir.path(), "index.html");
    follow(&s, &confs, dir.path());
}

#[test]
fn a_per_real_request_and_receive_override_the_virtuals() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("http");
    // The virtual's page stays right all along: only the real's own
    // request (alive.html) and receive decide.
    let mut spec = Spec::new(
        "http",
        s.var("HTTP_PORT"),
        "tcp",
        keys(&[("request", "/index.html"), ("receive", "Service Up")]),
    );
    spec.real_check = Some(("alive.html", "^Service Up$"));
    for conf in spec.write(dir.path(), "override", true) {
        wrong_answers(&s, &conf, dir.path(), "alive.html");
    }
}

#[test]
fn a_per_real_url_is_fetched_instead_of_the_real() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("http");
    let port = s.var("HTTP_PORT");
    // Nothing listens on the real's own 127.0.0.2:80: only the URL on its
    // line (ldirectord: "the IP-address and port of the real server is
    // overridden") can bring it up.
    let url = format!("http://127.0.0.1:{port}/alive.html");
    let cf = dir.path().join("url.cf");
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nnegotiatetimeout=2\nquiescent=no\n\n\
             virtual=192.0.2.10:80\n\
             \treal=127.0.0.2:80 gate 1 \"{url}\", \"Service Up\"\n\
             \tservice=http\n\trequest=\"index.html\"\n\treceive=\"Service Up\"\n"
        ),
    )
    .unwrap();
    let toml = dir.path().join("url.toml");
    std::fs::write(
        &toml,
        format!(
            "[global]\ncheckinterval = 1\nnegotiatetimeout = 2\nquiescent = false\n\n\
             [[virtual]]\naddress = \"192.0.2.10:80\"\nservice = \"http\"\n\
             request = \"index.html\"\nreceive = \"Service Up\"\n\
             real = [{{ address = \"127.0.0.2:80\", forward = \"gate\", \
             request = \"{url}\", receive = \"Service Up\" }}]\n"
        ),
    )
    .unwrap();
    for conf in [cf, toml] {
        wrong_answers(&s, &conf, dir.path(), "alive.html");
    }
}

#[test]
fn https_with_verifycert_refuses_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("http");
    let spec = Spec::new(
        "https",
        s.var("HTTPS_PORT"),
        "tcp",
        keys(&[
            ("request", "/index.html"),
            ("receive", "Service Up"),
            ("verifycert", "yes"),
        ]),
    );
    for conf in spec.write(dir.path(), "verify", false) {
        let d = Lvsd::start(dir.path(), &conf);
        let what = conf.display().to_string();
        d.wait_log(&["down at start", "GET https://", "TLS:"], &what);
        assert_eq!(d.count("add-dest"), 0, "{what}:\n{}", d.log());
    }
}

/// The external check: the script ldirectord users write (VIP VPORT RIP
/// RPORT, exit 0 is up), a GET of the real's page with bash's /dev/tcp.
const EXTERNAL_SH: &str = r#"#!/bin/bash
echo "$@" >>"$(dirname "$0")/args"
exec 3<>"/dev/tcp/$3/$4" || exit 1
printf 'GET /index.html HTTP/1.0\r\n\r\n' >&3
grep -q 'Service Up' <&3
"#;

/// The same in Perl, as external-perl runs it (@ARGV, exit).
const EXTERNAL_PL: &str = r#"use IO::Socket::INET;
my ($vip, $vport, $rip, $rport) = @ARGV;
my $s = IO::Socket::INET->new(PeerAddr => $rip, PeerPort => $rport, Timeout => 2) or exit 1;
print $s "GET /index.html HTTP/1.0\r\n\r\n";
while (my $l = <$s>) { exit 0 if $l =~ /Service Up/; }
exit 2;
"#;

#[test]
fn external_and_external_perl_from_ldirectord_cf_and_lvsd_toml_against_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("http");
    let (sh, pl) = (dir.path().join("check.sh"), dir.path().join("check.pl"));
    std::fs::write(&sh, EXTERNAL_SH).unwrap();
    std::fs::write(&pl, EXTERNAL_PL).unwrap();
    Command::new("chmod").arg("+x").arg(&sh).status().unwrap();
    let port = s.var("HTTP_PORT");
    let mut confs = Vec::new();
    for (checktype, script) in [("external", &sh), ("external-perl", &pl)] {
        let spec = Spec::new(
            "",
            port,
            "tcp",
            keys(&[
                ("checktype", checktype),
                ("checkcommand", script.to_str().unwrap()),
            ]),
        );
        confs.extend(spec.write(dir.path(), checktype, false));
    }
    // A wrong answer (the script's grep and the Perl loop fail).
    for conf in [&confs[0], &confs[2]] {
        let what = conf.display().to_string();
        let d = Lvsd::start(dir.path(), conf);
        d.wait_ops("add-dest", 1, &what);
        page(&s, "index.html", "Service Down\n");
        d.wait_ops("del-dest", 1, &what);
        d.wait_log(&["down after", "external"], &what);
        page(&s, "index.html", "Service Up\n");
        d.wait_ops("add-dest", 2, &what);
    }
    // ldirectord's four arguments.
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(
        args.lines().next(),
        Some(format!("192.0.2.10 {port} 127.0.0.1 {port}").as_str())
    );
    follow(&s, &confs, dir.path());
}

#[test]
fn connect_from_ldirectord_cf_and_lvsd_toml_against_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("http");
    let port = s.var("HTTP_PORT");
    // A frozen server still completes TCP handshakes (the kernel's
    // backlog), so a connect check sees only a stopped one.
    let spec = Spec::new("", port, "tcp", keys(&[("checktype", "connect")]));
    let mut confs = spec.write(dir.path(), "connect", false);
    // checktype=N: connects, and negotiates (here http) every Nth check.
    let spec = Spec::new(
        "http",
        port,
        "tcp",
        keys(&[
            ("checktype", "3"),
            ("request", "index.html"),
            ("receive", "Service Up"),
        ]),
    );
    confs.extend(spec.write(dir.path(), "combined", false));
    for conf in &confs {
        let what = conf.display().to_string();
        let d = Lvsd::start(dir.path(), conf);
        d.wait_ops("add-dest", 1, &what);
        s.down();
        d.wait_ops("del-dest", 1, &what);
        d.wait_log(&["down after", "connection refused"], &what);
        s.run("restart");
        d.wait_ops("add-dest", 2, &what);
    }
}

/// A network namespace of the test's own, removed when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("lvsd-ping{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| panic!("this test needs iproute2's `ip`: {e}"));
        assert!(
            out.status.success(),
            "ip netns add (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    fn lo(&self, state: &str) {
        let s = Command::new("ip")
            .args(["-n", &self.0, "link", "set", "lo", state])
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn ping_and_udp_connect_from_ldirectord_cf_and_lvsd_toml_in_a_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::new();
    let mut confs = Vec::new();
    let spec = Spec::new("", "80", "tcp", keys(&[("checktype", "ping")]));
    confs.extend(spec.write(dir.path(), "ping", false));
    // A connect check of a UDP virtual pings, as ldirectord's.
    let spec = Spec::new("", "5060", "udp", keys(&[("checktype", "connect")]));
    confs.extend(spec.write(dir.path(), "udp-connect", false));
    for conf in &confs {
        let what = conf.display().to_string();
        ns.lo("up");
        let d = Lvsd::start_with(
            dir.path(),
            conf,
            Command::new("ip")
                .args(["netns", "exec", &ns.0])
                .arg(env!("CARGO_BIN_EXE_lvsd")),
        );
        d.wait_ops("add-dest", 1, &what);
        ns.lo("down");
        d.wait_ops("del-dest", 1, &what);
        d.wait_log(&["down after", "ping 127.0.0.1"], &what);
        ns.lo("up");
        d.wait_ops("add-dest", 2, &what);
    }
}
