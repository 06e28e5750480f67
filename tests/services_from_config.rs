//! Services on the operator's path: a config file written the way
//! ldirectord users write it (and its lvsd.toml twin), the lvsd binary in
//! dry run, the real server software (tests/servers/NAME, Debian's
//! packages, on 127.0.0.1). Each case follows the real up, down (frozen:
//! SIGSTOP, the deadline passes), up again (SIGCONT) and down (stopped)
//! through the ops log.
//!
//! Found by walking this path: every mysql/pgsql check from a config file
//! sent ldirectord's leading `/` with its query (checkers/tests call the
//! checker with a bare query, so they never saw it).
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// One fixture server (tests/servers/NAME), stopped when dropped.
struct Server {
    script: PathBuf,
    dir: tempfile::TempDir,
    vars: HashMap<String, String>,
}

impl Server {
    fn up(name: &str) -> Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/servers")
            .join(name);
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(&script)
            .arg("up")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Server { script, dir, vars }
    }

    fn var(&self, key: &str) -> &str {
        &self.vars[key]
    }

    fn signal(&self, sig: &str) {
        let pid = std::fs::read_to_string(self.dir.path().join("pid")).unwrap();
        assert!(
            Command::new("kill")
                .arg(sig)
                .arg(pid.trim())
                .status()
                .unwrap()
                .success()
        );
    }

    fn down(&self) {
        assert!(
            Command::new(&self.script)
                .arg("down")
                .arg(self.dir.path())
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

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
