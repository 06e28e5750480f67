//! One lvsd per director, through the binary: a second `lvsd run` on the
//! same control socket exits 1 naming the first's pid and touches nothing;
//! a killed lvsd leaves no stale lock; and with failover, a second lvsd
//! given another control socket cannot share the heartbeat port.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::time::Duration;

#[path = "support/dry.rs"]
mod dry;
use dry::{Dry, Kill, lvsd};

#[path = "support/failover_lab.rs"]
mod lab;
use lab::{Lab, TIMERS_HEARTBEAT, sigterm};

fn config() -> String {
    "virtual=192.0.2.10:80\n\treal=192.0.2.50:80 gate\n\tchecktype=on\n".to_owned()
}

#[test]
fn a_second_lvsd_on_the_same_socket_exits_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, config()).unwrap();
    let first = Dry::start(dir.path(), &cf);
    let second_ops = dir.path().join("second.jsonl");
    let out = lvsd()
        .args(["run", "--dry-run", "--ops-log"])
        .arg(&second_ops)
        .arg("--control")
        .arg(&first.sock)
        .arg(&cf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "another lvsd runs here (pid {}",
            first.child.0.id()
        )),
        "{err}"
    );
    // It touched nothing: no op of its own, and the first still answers.
    assert!(
        std::fs::read_to_string(&second_ops)
            .unwrap_or_default()
            .is_empty()
    );
    let (code, out) = first.ctl(&["status"]);
    assert_eq!(code, Some(0), "{out}");

    // Its lock file deleted, or its socket reached through a link: the
    // lock is free, but the first still answers there: refused too (the
    // second ran, programmed the table and removed it at its stop).
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&first.sock, &link).unwrap();
    let lock = first.sock.with_extension("lock");
    for (control, remove_lock) in [(&link, false), (&first.sock, true)] {
        if remove_lock {
            std::fs::remove_file(&lock).unwrap();
        }
        // One that starts anyway is killed after 10 s (and fails).
        let log = dir.path().join("second.log");
        let mut second = Kill(
            lvsd()
                .args(["run", "--dry-run", "--ops-log"])
                .arg(&second_ops)
                .arg("--control")
                .arg(control)
                .arg(&cf)
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        let start = std::time::Instant::now();
        let code = loop {
            if let Some(s) = second.0.try_wait().unwrap() {
                break s.code();
            }
            if start.elapsed() > std::time::Duration::from_secs(10) {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let err = std::fs::read_to_string(&log).unwrap();
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("another lvsd answers on"), "{err}");
        assert!(
            std::fs::read_to_string(&second_ops)
                .unwrap_or_default()
                .is_empty()
        );
    }

    // Killed (no cleanup at all): the next lvsd starts.
    let Dry { mut child, ops, .. } = first;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    std::fs::remove_file(&ops).unwrap();
    let again = Dry::start(dir.path(), &cf);
    again.stop();
}

#[test]
fn with_failover_a_second_lvsd_cannot_share_the_heartbeat_port() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    // A second d1, with its own control socket, in d1's namespace.
    let log = lab.control(1).with_file_name("d1-second.log");
    let mut second = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ns[0], "unshare", "--uts", "sh", "-c"])
        .arg("hostname d1 && exec \"$0\" run --control \"$2\" \"$1\"")
        .arg(env!("CARGO_BIN_EXE_lvsd"))
        .arg(lab.conf(1))
        .arg(lab.control(1).with_file_name("d1-second.sock"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // It must give up at once (a second lvsd that runs is the defect).
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            sigterm(&mut second);
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(
        err.contains("opening the cluster link on port") && err.contains("in use"),
        "{err}"
    );
    // The pair is as it was.
    std::thread::sleep(Duration::from_secs(2));
    assert!(lab.has_vip(1) && !lab.has_vip(2));
    sigterm(&mut d1);
    sigterm(&mut d2);
}
