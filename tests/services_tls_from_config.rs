//! The TLS ports on the operator's path: pops and imaps (a real Dovecot)
//! and ldaps (a real slapd), each from an ldirectord.cf written the way
//! ldirectord users write it and from its lvsd.toml twin, the lvsd binary
//! in dry run. Each follows the real up, down with a wrong password (an
//! operator's edit, reloaded; the reason in lvsd's log), up again, frozen
//! (SIGSTOP: the TLS handshake never completes), thawed and stopped, through
//! the ops log; and `verifycert=yes` refuses the servers' self-signed
//! certificates (as README says: verified only when asked).
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::Path;

#[path = "support/servers.rs"]
mod servers;
use servers::Server;
#[path = "support/from_config.rs"]
mod from_config;
use from_config::{Lvsd, Spec, credentials, follow, keys, mail_logins};

/// `verifycert=yes` against a self-signed certificate: never up, and
/// lvsd's log says it was the certificate.
fn verify_refuses(spec: &Spec<'_>, dir: &Path, name: &str, subject: &str) {
    let mut keys = spec.keys.clone();
    keys.push(("verifycert", "yes".to_owned()));
    let spec = Spec::new(spec.service, spec.port, spec.protocol, keys);
    for conf in spec.write(dir, name, false) {
        let what = conf.display().to_string();
        let d = Lvsd::start(dir, &conf);
        let line = d.wait_log(&["down at start", subject], &what);
        assert!(
            line.to_lowercase().contains("certificate"),
            "{what}: {line}"
        );
        assert_eq!(d.count("add-dest"), 0, "{what}:\n{}", d.log());
    }
}

#[test]
fn pops_and_imaps_from_ldirectord_cf_and_lvsd_toml_against_dovecot() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("dovecot");
    let confs = mail_logins(
        &s,
        dir.path(),
        &[
            ("pops", "POP3S_PORT", "the answer to PASS: `-ERR"),
            ("imaps", "IMAPS_PORT", "the answer to LOGIN: `a1 NO"),
        ],
        |spec, service| {
            verify_refuses(spec, dir.path(), &format!("{service}-verify"), service);
        },
    );
    follow(&s, &confs, dir.path());
}

#[test]
fn ldaps_from_ldirectord_cf_and_lvsd_toml_against_slapd() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::up("ldap");
    let spec = Spec::new(
        "ldaps",
        s.var("LDAPS_PORT"),
        "tcp",
        keys(&[
            ("login", s.var("BIND_DN")),
            ("passwd", s.var("PASSWORD")),
            ("request", s.var("BASE")),
            ("receive", "^cn=health,"),
        ]),
    );
    credentials(
        dir.path(),
        "ldaps-login.cf",
        &spec.cf(true),
        &spec.with_passwd("wr0ng").cf(true),
        &["down after", "ldaps 127.0.0.1", "bind as `uid=checker"],
    );
    verify_refuses(&spec, dir.path(), "ldaps-verify", "ldaps");
    let confs = spec.write(dir.path(), "ldaps", true);
    follow(&s, &confs, dir.path());
}
