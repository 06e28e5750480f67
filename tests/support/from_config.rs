//! The operator's path for tests/services_*from_config.rs: a config file
//! written the way ldirectord users write it (and its lvsd.toml twin), the
//! lvsd binary in dry run with an ops log, and helpers that follow a real
//! through the ops log and lvsd's own log.
#![allow(clippy::unwrap_used)] // test setup
#![allow(dead_code)] // each test file that includes it uses part of it

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::servers::Server;

/// How long a wait for lvsd may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// A dry-run lvsd, killed when dropped.
pub(crate) struct Lvsd {
    child: Child,
    ops: PathBuf,
    log: PathBuf,
}

impl Lvsd {
    pub(crate) fn start(dir: &Path, conf: &Path) -> Lvsd {
        Lvsd::start_with(dir, conf, &mut Command::new(env!("CARGO_BIN_EXE_lvsd")))
    }

    /// Starts lvsd through `cmd` (e.g. `ip netns exec NS lvsd`): the
    /// arguments for a dry run on `conf` are added to it.
    pub(crate) fn start_with(dir: &Path, conf: &Path, cmd: &mut Command) -> Lvsd {
        let (ops, log) = (dir.join("ops.jsonl"), dir.join("lvsd.log"));
        let _ = std::fs::remove_file(&ops);
        let child = cmd
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

    /// lvsd's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn ops_text(&self) -> String {
        std::fs::read_to_string(&self.ops).unwrap_or_default()
    }

    /// How many ops of kind `op` the ops log has.
    pub(crate) fn count(&self, op: &str) -> usize {
        self.ops_text().matches(&format!("\"op\":\"{op}\"")).count()
    }

    /// Waits (up to 15 s) until the ops log has `n` lines with `op`.
    pub(crate) fn wait_ops(&self, op: &str, n: usize, what: &str) {
        let start = Instant::now();
        while self.count(op) < n {
            assert!(
                start.elapsed() < PATIENCE,
                "{what}: no {n}× {op} in the ops log:\n{}\nlvsd's log:\n{}",
                self.ops_text(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 15 s) until lvsd's log has a line containing all of
    /// `needles`; returns that line.
    pub(crate) fn wait_log(&self, needles: &[&str], what: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if let Some(l) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return l.to_owned();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{what}: no line with {needles:?} in lvsd's log:\n{log}\nops:\n{}",
                self.ops_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGHUP: lvsd reads its files again.
    pub(crate) fn reload(&self) {
        let s = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Lvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Up, frozen (down), thawed (up) for every config; the last one also
/// stopped (down), through the binary.
pub(crate) fn follow(s: &Server, confs: &[PathBuf], dir: &Path) {
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

/// Wrong credentials in an operator's edit: `right` brings the real up;
/// then `wrong` (the same config with a wrong password, written over the
/// file and reloaded) takes it down with a reason containing `reason`
/// (and never the password); then `right` again brings it back.
pub(crate) fn credentials(dir: &Path, name: &str, right: &str, wrong: &str, reason: &[&str]) {
    let conf = dir.join(name);
    std::fs::write(&conf, right).unwrap();
    let what = conf.display().to_string();
    let d = Lvsd::start(dir, &conf);
    d.wait_ops("add-dest", 1, &what);
    std::fs::write(&conf, wrong).unwrap();
    d.reload();
    d.wait_ops("del-dest", 1, &format!("{what} with a wrong password"));
    let line = d.wait_log(reason, &format!("{what}: the reason"));
    assert!(
        !line.contains("wr0ng"),
        "the password is in the log: {line}"
    );
    std::fs::write(&conf, right).unwrap();
    d.reload();
    d.wait_ops(
        "add-dest",
        2,
        &format!("{what} with the password put right"),
    );
}

/// A virtual service as an operator writes it: `service`, the real's
/// `port`, its `protocol` (tcp or udp) and the other keys (request,
/// receive, login, passwd, database, secret, checkport, checktype,
/// checkcommand, verifycert) in order; `real_check`: a per-real request
/// and receive on the real's line.
pub(crate) struct Spec<'a> {
    pub(crate) service: &'a str,
    pub(crate) port: &'a str,
    pub(crate) protocol: &'a str,
    pub(crate) keys: Vec<(&'a str, String)>,
    pub(crate) real_check: Option<(&'a str, &'a str)>,
}

/// Keys written unquoted in ldirectord.cf (and not as strings in TOML).
const BARE: [&str; 3] = ["checkport", "checktype", "verifycert"];

impl<'a> Spec<'a> {
    /// A spec without per-real request/receive.
    pub(crate) fn new(
        service: &'a str,
        port: &'a str,
        protocol: &'a str,
        keys: Vec<(&'a str, String)>,
    ) -> Spec<'a> {
        Spec {
            service,
            port,
            protocol,
            keys,
            real_check: None,
        }
    }

    /// The ldirectord.cf line of one key: strings quoted, the way
    /// ldirectord users write them; with `slash`, request gets the `/`
    /// ldirectord users often write.
    fn cf_line(key: &str, value: &str, slash: bool) -> String {
        match key {
            _ if BARE.contains(&key) => format!("\t{key}={value}\n"),
            "request" if slash => format!("\t{key}=\"/{value}\"\n"),
            _ => format!("\t{key}=\"{value}\"\n"),
        }
    }

    pub(crate) fn cf(&self, slash: bool) -> String {
        let mut real = format!("127.0.0.1:{} gate", self.port);
        if let Some((req, recv)) = self.real_check {
            // ldirectord's own form: weight, then "request", "receive".
            let s = if slash { "/" } else { "" };
            real += &format!(" 1 \"{s}{req}\", \"{recv}\"");
        }
        let mut t = format!(
            "checkinterval=1\nchecktimeout=2\nnegotiatetimeout=2\nquiescent=no\n\n\
             virtual=192.0.2.10:{port}\n\
             \treal={real}\n",
            port = self.port,
        );
        if !self.service.is_empty() {
            t += &format!("\tservice={}\n", self.service);
        }
        if self.protocol != "tcp" {
            t += &format!("\tprotocol={}\n", self.protocol);
        }
        for (k, v) in &self.keys {
            t += &Self::cf_line(k, v, slash);
        }
        t
    }

    pub(crate) fn toml(&self) -> String {
        let mut t = format!(
            "[global]\ncheckinterval = 1\nchecktimeout = 2\nnegotiatetimeout = 2\nquiescent = false\n\n\
             [[virtual]]\naddress = \"192.0.2.10:{port}\"\n",
            port = self.port,
        );
        if !self.service.is_empty() {
            t += &format!("service = \"{}\"\n", self.service);
        }
        if self.protocol != "tcp" {
            t += &format!("protocol = \"{}\"\n", self.protocol);
        }
        for (k, v) in &self.keys {
            match *k {
                "checkport" => t += &format!("{k} = {v}\n"),
                "verifycert" => t += &format!("{k} = {}\n", v == "yes"),
                // A literal string: regexes keep their backslashes.
                _ => t += &format!("{k} = '{v}'\n"),
            }
        }
        t += &match self.real_check {
            Some((req, recv)) => format!(
                "real = [{{ address = \"127.0.0.1:{}\", forward = \"gate\", \
                 request = '{req}', receive = '{recv}' }}]\n",
                self.port
            ),
            None => format!("real = [\"127.0.0.1:{} gate\"]\n", self.port),
        };
        t
    }

    /// Writes NAME.cf (and, with `slash`, NAME-slash.cf: the request with
    /// a leading `/`) and NAME.toml into `dir`; returns their paths.
    pub(crate) fn write(&self, dir: &Path, name: &str, slash: bool) -> Vec<PathBuf> {
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

    /// The same spec with `passwd` replaced (for the wrong-credentials leg).
    pub(crate) fn with_passwd(&self, passwd: &str) -> Spec<'a> {
        Spec {
            keys: self
                .keys
                .iter()
                .map(|(k, v)| {
                    if *k == "passwd" {
                        (*k, passwd.to_owned())
                    } else {
                        (*k, v.clone())
                    }
                })
                .collect(),
            ..*self
        }
    }
}

pub(crate) fn keys<'a>(pairs: &[(&'a str, &str)]) -> Vec<(&'a str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// The POP3/IMAP cases of the dovecot fixture (plain or TLS): for each
/// (service, port variable, the server's refusal), a spec with the fixture's
/// login, its wrong-password leg through [`credentials`], then `more` (a
/// TLS case's certificate check), and its config files for [`follow`].
pub(crate) fn mail_logins(
    s: &Server,
    dir: &Path,
    cases: &[(&str, &str, &str)],
    more: impl Fn(&Spec<'_>, &str),
) -> Vec<PathBuf> {
    let mut confs = Vec::new();
    for &(service, port, reason) in cases {
        let spec = Spec::new(
            service,
            s.var(port),
            "tcp",
            keys(&[("login", s.var("USER")), ("passwd", s.var("PASSWORD"))]),
        );
        credentials(
            dir,
            &format!("{service}-login.cf"),
            &spec.cf(false),
            &spec.with_passwd("wr0ng").cf(false),
            &["down after", &format!("{service} 127.0.0.1"), reason],
        );
        more(&spec, service);
        confs.extend(spec.write(dir, service, false));
    }
    confs
}
