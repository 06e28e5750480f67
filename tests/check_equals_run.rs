//! One validation: on every config file the project ships or tests with,
//! `lvsd check` and `lvsd run --dry-run` agree — what check accepts, run
//! runs (it is still running after its first checks), and what check
//! refuses, run refuses with the same file:line.
//!
//! The dry runs probe the configs' reals (documentation and private
//! addresses), so each runs in a network namespace of its own (`unshare
//! -rn`): nothing leaves it, as the project's network rule asks.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lvsd() -> &'static str {
    env!("CARGO_BIN_EXE_lvsd")
}

/// Every file the project ships or reads in tests, as `lvsd check` takes it.
fn configs(tmp: &Path) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let list = |dir: &Path, ext: &[&str]| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| ext.iter().any(|x| e == *x)))
            .collect();
        v.sort();
        v
    };
    out.extend(list(&root.join("conf.d"), &["cf", "toml"]));
    out.extend(list(&root.join("tests/data/bad/ldirectord"), &["cf"]));
    out.extend(list(&root.join("tests/data/bad/native"), &["toml"]));
    let mut hb: Vec<PathBuf> = std::fs::read_dir(root.join("tests/data/bad/heartbeat"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("ha.cf"))
        .filter(|p| p.is_file())
        .collect();
    hb.sort();
    out.extend(hb);
    // The failover example, with its key file private as heartbeat wants.
    let fo = tmp.join("failover");
    std::fs::create_dir_all(&fo).unwrap();
    for f in ["ha.cf", "haresources", "authkeys"] {
        std::fs::copy(root.join("conf.d/failover").join(f), fo.join(f)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fo.join("authkeys"), std::fs::Permissions::from_mode(0o600)).unwrap();
    out.push(fo.join("ha.cf"));
    // What `lvsd run` used to refuse after `lvsd check` said ok.
    for (name, text) in [
        (
            "dns-bare.cf",
            "virtual=127.0.0.1:53\n\treal=127.0.0.2:53 gate\n\tservice=dns\n",
        ),
        (
            "mysql-nologin.cf",
            "virtual=127.0.0.1:3306\n\treal=127.0.0.2:3306 gate\n\tservice=mysql\n",
        ),
        (
            "pgsql-noquery.cf",
            "virtual=127.0.0.1:5432\n\treal=127.0.0.2:5432 gate\n\tservice=pgsql\n\tlogin=\"u\"\n",
        ),
        (
            "radius-nosecret.cf",
            "virtual=127.0.0.1:1812\n\tprotocol=udp\n\treal=127.0.0.2:1812 gate\n\tservice=radius\n",
        ),
        (
            "http-proxy.cf",
            "virtual=127.0.0.1:3128\n\treal=127.0.0.2:3128 gate\n\tservice=http_proxy\n",
        ),
        (
            "sctp-connect.cf",
            "virtual=127.0.0.1:9\n\tprotocol=sctp\n\treal=127.0.0.2:9 gate\n\tchecktype=connect\n",
        ),
        (
            "vhost-space.cf",
            "virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tvirtualhost=\"a b\"\n",
        ),
        (
            "dns-ok.cf",
            "virtual=127.0.0.1:53\n\treal=127.0.0.2:53 gate\n\tservice=dns\n\trequest=\"example.org\"\n\treceive=\"127.0.0.1\"\n",
        ),
        (
            "mysql-ok.cf",
            "virtual=127.0.0.1:3306\n\treal=127.0.0.2:3306 gate\n\tservice=mysql\n\tlogin=\"u\"\n\tpasswd=\"p\"\n\tdatabase=\"d\"\n\trequest=\"SELECT 1\"\n",
        ),
    ] {
        let p = tmp.join(name);
        std::fs::write(&p, text).unwrap();
        out.push(p);
    }
    out
}

/// `lvsd check FILE`: (exit code, the error lines).
fn check(f: &Path) -> (Option<i32>, Vec<String>) {
    let out = Command::new(lvsd()).arg("check").arg(f).output().unwrap();
    (
        out.status.code(),
        errors(&String::from_utf8_lossy(&out.stderr)),
    )
}

fn errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(str::to_owned)
        .collect()
}

/// `lvsd run --dry-run FILE` in a network namespace of its own: None when
/// it still runs after 2 s (then stopped), else its exit code and error
/// lines.
fn run(f: &Path, tmp: &Path, n: usize) -> Option<(Option<i32>, Vec<String>)> {
    // A socket (and so an instance lock) of its own: a run killed just
    // before may not have let go of its lock yet.
    let sock = tmp.join(format!("control-{n}.sock"));
    let log = tmp.join("run.stderr");
    let mut child = Command::new("unshare")
        .args(["-rn", "--kill-child"])
        .arg(lvsd())
        .args(["run", "--dry-run", "--control"])
        .arg(&sock)
        .arg(f)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(&log).unwrap();
            return Some((status.code(), errors(&stderr)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // unshare forwards no signal; its death takes lvsd with it
    // (--kill-child).
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn check_and_a_dry_run_agree_on_every_config_file() {
    if !Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        panic!(
            "unshare -rn (a network namespace) is needed to dry-run configs whose reals are not on loopback"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut disagree = Vec::new();
    let files = configs(tmp.path());
    let (mut ok, mut refused) = (0, 0);
    for (n, f) in files.iter().enumerate() {
        let (code, errs) = check(f);
        match (code, run(f, tmp.path(), n)) {
            (Some(0), None) => ok += 1,
            (Some(1), Some((Some(1), run_errs))) if run_errs == errs && !errs.is_empty() => {
                refused += 1
            }
            (code, r) => disagree.push(format!(
                "{}: check exit {code:?} {errs:?}, run {r:?}",
                f.display()
            )),
        }
    }
    println!(
        "{} files: {ok} accepted by both, {refused} refused by both",
        files.len()
    );
    assert!(
        disagree.is_empty(),
        "check and run disagree:\n{}",
        disagree.join("\n")
    );
    assert!(
        ok >= 10 && refused >= 20,
        "{ok} accepted, {refused} refused"
    );
}
