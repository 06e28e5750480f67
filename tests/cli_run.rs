//! `lvsd run` as an operator runs it: the real binary, a real backend on
//! 127.0.0.1, SIGINT to stop, the ops log read back.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lvsd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lvsd"))
}

/// A blocking HTTP backend answering "Service Up" on its own thread.
fn backend() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nService Up",
            );
        }
    });
    addr
}

#[test]
fn dry_run_converges_logs_ops_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        format!("checkinterval=1\nquiescent=no\nvirtual=192.0.2.10:80\n\treal={real} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n"),
    )
    .unwrap();
    let ops = dir.path().join("ops.jsonl");
    let mut child = lvsd()
        .args(["run", "--dry-run", "--ops-log"])
        .arg(&ops)
        .arg(&cf)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (up to 10 s) for the real to be added.
    let start = Instant::now();
    while !std::fs::read_to_string(&ops)
        .unwrap_or_default()
        .contains("add-dest")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no add-dest in the ops log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "exit {status}: {log}");
    assert!(
        log.contains(&format!(
            "real {real} of tcp:192.0.2.10:80 up after 1 success"
        )),
        "{log}"
    );
    assert!(log.contains("SIGINT: stopping"), "{log}");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&ops)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|v| v["op"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["add-service", "add-dest", "del-service"],
        "{lines:#?}"
    );
    assert_eq!(lines[1]["dest"], real.as_str());
    assert_eq!(lines[1]["weight"], 1);
    assert_eq!(lines[1]["forward"], "gate");
    assert_eq!(lines[1]["service"], "tcp:192.0.2.10:80");
    assert_eq!(
        lines[1]["ipvsadm"],
        format!("ipvsadm -a -t 192.0.2.10:80 -r {real} -g -w 1")
    );
    assert!(lines[0]["ts"].as_f64().unwrap() > 1.7e9);
}

#[test]
fn a_check_this_build_cannot_make_is_refused_naming_the_virtual() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        "virtual=192.0.2.10:3306\n\treal=127.0.0.1:3306 gate\n\tservice=mysql\n",
    )
    .unwrap();
    let out = lvsd().args(["run", "--dry-run"]).arg(&cf).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("virtual tcp:192.0.2.10:3306 ({}:1", cf.display())),
        "{err}"
    );
    assert!(err.contains("service=mysql needs login="), "{err}");
}

#[test]
fn without_dry_run_on_a_kernel_without_ipvs_it_says_what_to_do() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        // This kernel has IPVS: the VM tests run lvsd against it.
        println!("skipped: this kernel has IPVS");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, "virtual=192.0.2.10:80\n\treal=127.0.0.1:80 gate\n").unwrap();
    let out = lvsd().arg("run").arg(&cf).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lvsd: the kernel has no IPVS (ip_vs module not loaded: modprobe ip_vs)"),
        "{err}"
    );
}

#[test]
fn a_bad_config_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        "virtual=192.0.2.10:80\n\treal=127.0.0.1:80 gate\n\tscheduler=wrrr\n",
    )
    .unwrap();
    let out = lvsd().args(["run", "--dry-run"]).arg(&cf).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:", cf.display())), "{err}");
}
