//! A reload that resolves a host name while DNS does not answer never
//! holds the daemon, through the binary: lvsd runs in its own user, mount
//! and network namespaces whose resolver is a socket that never answers;
//! while `lvsd reload` waits on the name, `lvsd status` answers at once and
//! the checks keep their pace. The reload is then refused (the name does not
//! resolve) and the running configuration stays.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/dry.rs"]
mod dry;
use dry::{Kill, lvsd, wait_for};

/// lvsd on `conf` in its own user, mount and network namespaces: loopback
/// up, a DNS server that reads and never answers (each lookup costs the
/// resolver's `timeout` x `attempts`), the real (a listener on 8080).
/// Returns the child and its control socket, once its first real is in.
fn start_without_dns(d: &Path, conf: &Path, resolver: &str) -> (Kill, PathBuf) {
    std::fs::write(
        d.join("resolv.conf"),
        format!("nameserver 127.0.0.1\n{resolver}\n"),
    )
    .unwrap();
    let helpers = r"import socket, time
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dns.bind(('127.0.0.1', 53))
web = socket.socket(); web.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
web.bind(('127.0.0.1', 8080)); web.listen(512)
while True:
    dns.recv(4096)
";
    let (ops, sock, log) = (
        d.join("ops.jsonl"),
        d.join("control.sock"),
        d.join("lvsd.log"),
    );
    let script = format!(
        "ip link set lo up && mount --bind '{resolv}' /etc/resolv.conf && (python3 -c \"$0\" &) && sleep 0.5 && exec '{bin}' run --dry-run --ops-log '{ops}' --control '{sock}' '{conf}'",
        resolv = d.join("resolv.conf").display(),
        bin = lvsd().get_program().to_string_lossy(),
        ops = ops.display(),
        sock = sock.display(),
        conf = conf.display(),
    );
    let child = Kill(
        Command::new("unshare")
            .args([
                "-rmnp",
                "--fork",
                "--kill-child",
                "sh",
                "-c",
                &script,
                helpers,
            ])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(&ops, "add-dest");
    (child, sock)
}

/// [`start_without_dns`] on [`BASE`] in a new directory: the directory,
/// the config file, the child and its control socket.
fn on_base(resolver: &str) -> (tempfile::TempDir, PathBuf, Kill, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ldirectord.cf");
    std::fs::write(&conf, BASE).unwrap();
    let (child, sock) = start_without_dns(dir.path(), &conf, resolver);
    (dir, conf, child, sock)
}

const BASE: &str =
    "checkinterval=1\nvirtual=192.0.2.10:80\n\tchecktype=connect\n\treal=127.0.0.1:8080 gate\n";

#[test]
fn status_and_checks_keep_going_while_a_reload_waits_on_dns() {
    let (_dir, conf, _child, sock) = on_base("options timeout:4 attempts:2");
    // A real by name: resolving it waits on the silent resolver.
    std::fs::write(&conf, format!("{BASE}\treal=slow.lvsd.test:8080 gate\n")).unwrap();
    let reload = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            lvsd()
                .args(["reload", "--control"])
                .arg(&sock)
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let asked = Instant::now();
        let out = lvsd()
            .args(["status", "--json", "--control"])
            .arg(&sock)
            .output()
            .unwrap();
        let took = asked.elapsed();
        assert!(out.status.success(), "{out:?}");
        assert!(took < Duration::from_secs(2), "status took {took:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let age = v["virtuals"][0]["reals"][0]["last_probe_ago_s"]
            .as_f64()
            .unwrap();
        assert!(age < 2.5, "the last probe is {age} s old: {v}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let out = reload.join().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("slow.lvsd.test"), "{text}");
    assert!(text.contains("reload refused"), "{text}");
}

/// Ten host names while DNS does not answer: they are looked up at once,
/// so the reload waits for one resolver timeout (4 s here), not for ten
/// (40 s, past the 30 s a reading may take), and is refused naming every
/// one of them.
#[test]
fn host_names_are_looked_up_at_once() {
    let (_dir, conf, _child, sock) = on_base("options timeout:2 attempts:2");
    let names: Vec<String> = (0..10).map(|i| format!("slow{i}.lvsd.test")).collect();
    let reals: String = names
        .iter()
        .map(|n| format!("\treal={n}:8080 gate\n"))
        .collect();
    std::fs::write(&conf, format!("{BASE}{reals}")).unwrap();
    let out = lvsd()
        .args(["reload", "--control"])
        .arg(&sock)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("reload refused"), "{text}");
    for n in &names {
        assert!(text.contains(n.as_str()), "{n} not named: {text}");
    }
}

/// Ten `lvsd reload` at once while a reading waits on DNS are answered
/// together: the files are read at most twice (the reload running, then
/// one for every request that came meanwhile), not ten times.
#[test]
fn reloads_asked_together_read_the_files_at_most_twice() {
    let (dir, conf, _child, sock) = on_base("options timeout:1 attempts:1");
    let d = dir.path();
    std::fs::write(&conf, format!("{BASE}\treal=slow.lvsd.test:8080 gate\n")).unwrap();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                lvsd()
                    .args(["reload", "--control"])
                    .arg(&sock)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for c in clients {
        let out = c.join().unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("slow.lvsd.test"), "{text}");
    }
    let log = std::fs::read_to_string(d.join("lvsd.log")).unwrap();
    let reads = log.matches("reload refused").count();
    assert!((1..=2).contains(&reads), "{reads} readings:\n{log}");
}
