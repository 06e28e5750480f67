//! `lvsd run` as an operator runs it: the real binary, a real backend on
//! 127.0.0.1, SIGINT to stop, the ops log read back.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/backend.rs"]
mod support;
use support::backend;

#[path = "support/dry.rs"]
mod dry;
use dry::{Dry, Kill, lvsd, virtual_block, wait_for};

#[path = "support/skip.rs"]
mod skip;

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
        .arg("--control")
        .arg(dir.path().join("control.sock"))
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
fn a_check_this_build_cannot_make_is_refused_at_its_line_by_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        "virtual=192.0.2.10:3306\n\treal=127.0.0.1:3306 gate\n\tservice=mysql\n",
    )
    .unwrap();
    for cmd in [&["check"][..], &["run", "--dry-run"]] {
        let out = lvsd().args(cmd).arg(&cf).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}:1:", cf.display()))
                && err.contains("service=mysql needs login="),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn without_dry_run_on_a_kernel_without_ipvs_it_says_what_to_do() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        // Exempt from LVSD_NO_SKIP: this test's subject is a kernel without
        // IPVS, which a host that has it cannot provide (the module cannot
        // be hidden from one process); there the VM tests run lvsd against
        // the kernel instead.
        skip::skip_exempt(
            "without_dry_run_on_a_kernel_without_ipvs_it_says_what_to_do",
            "this kernel has IPVS (/proc/net/ip_vs exists)",
        );
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

/// An operator edits the config of a running lvsd: a typo is refused by
/// `lvsd reload` (file, line, "refused", exit 1) and changes nothing; a good
/// edit applied by SIGHUP adds its virtual; reloading it again changes
/// nothing.
#[test]
fn reload_refuses_a_typo_and_applies_a_good_edit() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    let good = |extra: &str| {
        format!(
            "checkinterval=1\nquiescent=no\n{}{extra}",
            virtual_block(&real, "192.0.2.10")
        )
    };
    std::fs::write(&cf, good("")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    let reload = || d.ctl(&["reload"]);

    // A typo: refused, nothing changes, not even the refused file's log
    // target or callback.
    let newlog = dir.path().join("refused.log");
    let called = dir.path().join("called");
    std::fs::write(
        &cf,
        good("").replace("quiescent=no", "quiescent=maybe")
            + &format!(
                "logfile=\"{}\"\ncallback=\"touch {}\"\n",
                newlog.display(),
                called.display()
            ),
    )
    .unwrap();
    let (code, answer) = reload();
    assert_eq!(code, Some(1), "{answer}");
    assert!(answer.contains("ldirectord.cf:2:"), "{answer}");
    assert!(
        answer.contains("reload refused, the running configuration stays"),
        "{answer}"
    );
    let before = std::fs::read_to_string(&d.ops).unwrap();

    // A good edit, by SIGHUP: a second virtual appears.
    std::fs::write(&cf, good(&virtual_block(&real, "192.0.2.11"))).unwrap();
    d.signal("-HUP");
    wait_for(&d.ops, "tcp:192.0.2.11:80");
    let added = std::fs::read_to_string(&d.ops).unwrap();
    assert!(
        added.starts_with(&before),
        "the refused reload changed the table"
    );

    // The same again: unchanged, exit 0.
    let (code, answer) = reload();
    assert_eq!(code, Some(0), "{answer}");
    assert_eq!(
        answer.trim(),
        "unchanged: the configuration in force is the same"
    );
    wait_for(&d.log, "reload: the configuration is unchanged");
    // An edit by `lvsd reload`: the answer is what the daemon applied.
    std::fs::write(&cf, good("")).unwrap();
    let (code, answer) = reload();
    assert_eq!(code, Some(0), "{answer}");
    assert!(
        answer.starts_with("applied: ") && answer.contains("0 virtual(s) added, 1 removed"),
        "{answer}"
    );
    assert!(!newlog.exists() && !called.exists());
    let (ops, log) = (d.ops.clone(), d.log.clone());
    d.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("SIGHUP: reloading"), "{text}");
    assert!(text.contains("reload refused"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&ops)
            .unwrap()
            .lines()
            .filter(|l| l.contains("add-"))
            .count(),
        4,
        "two services, two dests: {added}"
    );
}

/// autoreload=yes: an editor that writes a new file and renames it over
/// the old one; the change applies within a second, no signal needed.
#[test]
fn autoreload_follows_an_edit_by_rename() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    let text = |extra: &str| {
        format!(
            "autoreload=yes\ncheckinterval=1\nquiescent=no\n{}{extra}",
            virtual_block(&real, "192.0.2.10")
        )
    };
    std::fs::write(&cf, text("")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    let tmp = dir.path().join(".ldirectord.cf.swp");
    std::fs::write(&tmp, text(&virtual_block(&real, "192.0.2.12"))).unwrap();
    std::fs::rename(&tmp, &cf).unwrap();
    wait_for(&d.ops, "tcp:192.0.2.12:80");
    wait_for(&d.log, ": reloading");
    d.stop();
}

/// lvsd.toml + conf.d with autoreload: a drop-in edited in place and a new
/// drop-in each apply within a second, and `callback` runs with the name
/// of the file that changed (as ldirectord's); rewriting a file with the
/// same bytes is no change (ldirectord compares digests, not times).
#[test]
fn autoreload_follows_conf_d_drop_ins_and_runs_callback() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let main = dir.path().join("lvsd.toml");
    let confd = dir.path().join("conf.d");
    std::fs::create_dir(&confd).unwrap();
    let cb = dir.path().join("cb.sh");
    let cb_log = dir.path().join("cb.log");
    std::fs::write(
        &cb,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", cb_log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&cb, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        &main,
        format!(
            "[global]\nautoreload = true\ncheckinterval = 1\ncallback = \"{}\"\n",
            cb.display()
        ),
    )
    .unwrap();
    let drop_in = |vip: &str, scheduler: &str| {
        format!(
            "[[virtual]]\naddress = \"{vip}:80\"\nscheduler = \"{scheduler}\"\nrequest = \"/health\"\nreceive = \"Service Up\"\nreal = [{{ address = \"{real}\", forward = \"gate\" }}]\n"
        )
    };
    let web = confd.join("web.toml");
    std::fs::write(&web, drop_in("192.0.2.10", "wrr")).unwrap();
    let d = Dry::start_with(dir.path(), &[&main, &confd]);
    // Edited in place (same inode): the scheduler changes.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&web)
            .unwrap();
        f.write_all(drop_in("192.0.2.10", "rr").as_bytes()).unwrap();
    }
    wait_for(&d.ops, "edit-service");
    wait_for(&cb_log, &web.display().to_string());
    // A new drop-in.
    let api = confd.join("api.toml");
    std::fs::write(&api, drop_in("192.0.2.11", "wrr")).unwrap();
    wait_for(&d.ops, "tcp:192.0.2.11:80");
    wait_for(&cb_log, &api.display().to_string());
    // The same bytes again (a new mtime): nothing.
    let reloads = || {
        std::fs::read_to_string(&d.log)
            .unwrap()
            .matches(": reloading")
            .count()
    };
    let before = reloads();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&api, drop_in("192.0.2.11", "wrr")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        reloads(),
        before,
        "{}",
        std::fs::read_to_string(&d.log).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&cb_log).unwrap().lines().count(),
        2,
        "callback once per change"
    );
    d.stop();
}

/// `lvsd status` against a running daemon: the table, the JSON, and the
/// LSB code 3 when nothing answers.
#[test]
fn status_shows_every_real_and_says_when_lvsd_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nquiescent=yes\n{}\treal=127.0.0.1:9 gate 3\n",
            virtual_block(&real, "192.0.2.10")
        ),
    )
    .unwrap();
    let d = Dry::start(dir.path(), &cf);
    let status = |json: bool| {
        d.ctl(if json {
            &["status", "--json"]
        } else {
            &["status"]
        })
    };
    // Wait until the dead real (discard port, nothing listens) is judged.
    let start = Instant::now();
    let text = loop {
        let (code, text) = status(false);
        assert_eq!(code, Some(0), "{text}");
        if text
            .lines()
            .any(|l| l.contains("127.0.0.1:9 gate ") && l.contains(" down "))
        {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.starts_with("tcp:192.0.2.10:80 (wrr)\n"), "{text}");
    assert!(text.contains(&format!("{real} gate")), "{text}");
    assert!(
        text.contains("1/1"),
        "the live real at weight 1 of 1: {text}"
    );
    assert!(
        text.contains("0/3"),
        "the dead one quiescent, weight 0 of 3: {text}"
    );
    let (code, json) = status(true);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reals = &v["virtuals"][0]["reals"];
    assert_eq!(reals[0]["health"], "up", "{json}");
    assert_eq!(reals[0]["weight"], 1, "{json}");
    assert_eq!(reals[1]["health"], "down", "{json}");
    assert_eq!(reals[1]["weight"], 0, "{json}");
    assert!(
        reals[1]["last_failure"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{json}"
    );
    assert!(
        reals[0]["last_probe_ago_s"].as_f64().unwrap() < 2.0,
        "{json}"
    );
    assert_eq!(v["failover"], serde_json::Value::Null);
    // Another user may not ask (the socket is 0600): that is "unknown",
    // LSB 4, not "not running".
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_lvsd"))
        .arg("status")
        .arg("--control")
        .arg(&d.sock)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "as nobody: {said}");
    assert!(said.contains("root"), "{said}");
    let sock = d.sock.clone();
    d.stop();
    let out = lvsd()
        .arg("status")
        .arg("--control")
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "LSB: not running");
}

/// `lvsd drain REAL` takes a real out as a maintenancedir file does and
/// `lvsd enable REAL` puts it back; an unknown real is an error.
#[test]
fn drain_and_enable_a_real() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (backend(), backend());
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nquiescent=yes\n{}\treal={b} gate\n",
            virtual_block(&a, "192.0.2.10")
        ),
    )
    .unwrap();
    let d = Dry::start(dir.path(), &cf);
    // Both up first (quiescent reals start at weight 0).
    for r in [&a, &b] {
        wait_for(
            &d.ops,
            &format!("ipvsadm -e -t 192.0.2.10:80 -r {r} -g -w 1"),
        );
    }
    let run = |args: &[&str]| d.ctl(args);
    let (code, out) = run(&["drain", &a]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, format!("drained {a}: real {a} of tcp:192.0.2.10:80\n"));
    wait_for(
        &d.ops,
        &format!("ipvsadm -e -t 192.0.2.10:80 -r {a} -g -w 0"),
    );
    let (_, json) = run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["virtuals"][0]["reals"][0]["health"], "maintenance",
        "{json}"
    );
    assert_eq!(v["virtuals"][0]["reals"][1]["health"], "up", "{json}");
    let (code, out) = run(&["enable", &a]);
    assert_eq!(code, Some(0), "{out}");
    // a back at weight 1 (its second such edit); b never touched after up.
    let start = Instant::now();
    let ops = loop {
        let ops = std::fs::read_to_string(&d.ops).unwrap();
        if ops.matches(&format!("-r {a} -g -w 1")).count() == 2 {
            break ops;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{ops}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        ops.matches(&format!("-r {b} -g -w")).count(),
        2,
        "b was touched: {ops}"
    );
    let (code, out) = run(&["drain", "192.0.2.99:80"]);
    assert_eq!(
        (code, out.as_str()),
        (
            Some(1),
            "lvsd: error: no real 192.0.2.99:80 in the configuration\n"
        )
    );
    let (code, _) = run(&["drain", "not-an-address"]);
    assert_eq!(code, Some(2));
    d.stop();
}

/// Under systemd (`Type=notify`): READY=1 only once the first reconcile
/// is done (its op is in the ops log), WATCHDOG=1 while the daemon's loop
/// answers, STOPPING=1 at stop. systemd's side is a datagram socket.
#[test]
fn tells_systemd_ready_after_the_first_reconcile_and_feeds_the_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, virtual_block(&real, "192.0.2.10")).unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let ops = dir.path().join("ops.jsonl");
    let mut child = Kill(
        lvsd()
            .args(["run", "--dry-run", "--ops-log"])
            .arg(&ops)
            .arg("--control")
            .arg(dir.path().join("control.sock"))
            .arg(&cf)
            .env("NOTIFY_SOCKET", &notify)
            .env("WATCHDOG_USEC", "400000")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1\n");
    assert!(
        std::fs::read_to_string(&ops)
            .unwrap()
            .contains("add-service"),
        "READY after the first reconcile"
    );
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(next(), "WATCHDOG=1\n");
    }
    // Every WATCHDOG_USEC / 2 (0.2 s), give or take.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    while next() != "STOPPING=1\n" {}
    assert!(child.0.wait().unwrap().success());
}

/// 100 reloads in a row, two configurations alternating (a virtual added,
/// then removed), leak no file descriptor: the daemon holds as many after
/// as before (the fewest seen over 2 s, as probes open sockets briefly).
#[test]
fn a_hundred_reloads_leak_no_file_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    let one = format!("checkinterval=1\n{}", virtual_block(&real, "192.0.2.10"));
    let two = format!("{one}{}", virtual_block(&real, "192.0.2.11"));
    std::fs::write(&cf, &one).unwrap();
    let d = Dry::start(dir.path(), &cf);
    let fds = || {
        let path = format!("/proc/{}/fd", d.child.0.id());
        (0..20)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::read_dir(&path).unwrap().count()
            })
            .min()
            .unwrap()
    };
    let before = fds();
    for i in 0..100 {
        std::fs::write(&cf, if i % 2 == 0 { &two } else { &one }).unwrap();
        let (code, out) = d.ctl(&["reload"]);
        assert_eq!(code, Some(0), "{out}");
    }
    let after = fds();
    assert!(
        after <= before,
        "{before} fds before 100 reloads, {after} after"
    );
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert_eq!(log.matches(" check(s) kept, ").count(), 100, "{log}");
    d.stop();
}

/// `lvsd keep-table`, then a stop (as a restart does): the virtual stays
/// in the table although cleanstop is yes (the default), so the new lvsd
/// adopts it and no connection drops.
#[test]
fn keep_table_makes_the_next_stop_leave_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, virtual_block(&real, "192.0.2.10")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    let (code, out) = d.ctl(&["keep-table"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("the IPVS table stays"), "{out}");
    let (ops, log) = (d.ops.clone(), d.log.clone());
    d.signal("-TERM");
    d.stop_wait();
    let ops = std::fs::read_to_string(ops).unwrap();
    assert!(!ops.contains("del-service"), "{ops}");
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("stopping for a restart (keep-table)")
    );
}

/// `logfile="/path"` gets every log line with ldirectord's prefix
/// (`[time|config|pid]`), and `monitorfile` one line per check result in
/// ldirectord's format; both files may be rotated away at any time
/// (each write opens them again).
#[test]
fn logfile_and_monitorfile_are_written_as_ldirectord_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    let (logfile, monitor) = (
        dir.path().join("lvsd.file.log"),
        dir.path().join("monitor.log"),
    );
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nlogfile=\"{}\"\n{}\tmonitorfile=\"{}\"\n",
            logfile.display(),
            virtual_block(&real, "192.0.2.10"),
            monitor.display()
        ),
    )
    .unwrap();
    let d = Dry::start(dir.path(), &cf);
    let pid = d.child.0.id();
    wait_for(&logfile, "up after 1 success");
    wait_for(&monitor, "[up]");
    // Rotated away: written again from the next line on.
    std::fs::rename(&monitor, dir.path().join("monitor.log.1")).unwrap();
    wait_for(&monitor, "[up]");
    d.stop();
    let log = std::fs::read_to_string(&logfile).unwrap();
    let first = log.lines().next().unwrap();
    // `[Sun Nov 29 03:40:02 2026|ldirectord.cf|1234] message`
    let (prefix, _) = first.split_once("] ").unwrap();
    let fields: Vec<&str> = prefix.trim_start_matches('[').split('|').collect();
    assert_eq!(fields.len(), 3, "{first}");
    assert_eq!(fields[0].len(), 24, "Perl's localtime: {first}");
    assert_eq!(fields[1..], ["ldirectord.cf", &pid.to_string()]);
    let port = real.rsplit(':').next().unwrap();
    let line = std::fs::read_to_string(&monitor).unwrap();
    let line = line.lines().next().unwrap();
    assert!(
        line.ends_with(&format!(
            "] [{pid}] negotiate http tcp 127.0.0.1 {port} 1 gate /health Service Up [up] -"
        )),
        "{line}"
    );
}

/// 10,000 reals down at once with no `emailalert`: nobody is to be
/// mailed, so the alert channel filling up is no error (it logged one
/// "the mailer is behind" line per notice past its capacity).
#[test]
fn a_burst_of_changes_without_emailalert_logs_nothing_about_the_mailer() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let mut text = String::from("checkinterval=1\nquiescent=yes\n");
    for v in 0..40 {
        // Port 9 on loopback: nothing listens, every probe is refused.
        text += &format!(
            "virtual=192.0.2.{}:80\n\treal=127.1.{v}.1->127.1.{v}.250:9 gate\n\tchecktype=connect\n",
            v + 1
        );
    }
    std::fs::write(&cf, text).unwrap();
    let d = Dry::spawn(dir.path(), &[&cf]);
    let log = d.log.clone();
    let start = Instant::now();
    let down = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("is down at start")
            .count()
    };
    while down() < 10_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of 10,000 reals down",
            down()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("mailer"),
        "{} lines about the mailer, first: {}",
        text.matches("mailer").count(),
        text.lines().find(|l| l.contains("mailer")).unwrap_or("")
    );
}

/// What is not a command on the control socket is answered as one (not
/// UTF-8, control characters, too long): the client always hears why.
#[test]
fn the_control_socket_answers_garbage_with_an_error() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let d = always_up(dir.path());
    for garbage in [
        &b"\xff\xfe status\n"[..],
        b"stat\x1bus\n",
        &[b'x'; 2000][..],
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
        s.write_all(garbage).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(v["ok"], false, "{out}");
        assert!(
            v["text"].as_str().unwrap().contains("unknown command"),
            "{out}"
        );
        assert!(out.len() < 300, "the garbage echoed whole: {out}");
    }
    d.stop();
}

/// A down real that answers again but not yet `risecount` times is still
/// down, and status says why (it showed no failure at all while rising).
#[test]
fn a_rising_real_shows_why_it_is_still_down() {
    let dir = tempfile::tempdir().unwrap();
    let (port, up) = support::switchable();
    up.store(false, std::sync::atomic::Ordering::SeqCst);
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nrisecount=30\nquiescent=yes\nvirtual=192.0.2.10:80\n\treal=127.0.0.1:{port} gate\n\tservice=http\n\trequest=\"/\"\n\treceive=\"Service Up\"\n"
        ),
    )
    .unwrap();
    let d = Dry::start(dir.path(), &cf);
    let real = |d: &Dry| {
        let (code, json) = d.ctl(&["status", "--json"]);
        assert_eq!(code, Some(0), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["virtuals"][0]["reals"][0].clone()
    };
    let start = Instant::now();
    while real(&d)["health"] != "down" {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", real(&d));
        std::thread::sleep(Duration::from_millis(100));
    }
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_for(&d.log, "before up)");
    let r = real(&d);
    assert_eq!(r["health"], "down", "{r}");
    assert!(
        r["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("Service Up")),
        "{r}"
    );
    d.stop();
}

/// A `logfile=` lvsd cannot write (its directory is missing) is said once
/// on stderr, where systemd's journal takes it; lvsd runs on.
#[test]
fn a_logfile_that_cannot_be_written_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let missing = dir.path().join("no-such-dir").join("lvsd.log");
    std::fs::write(
        &cf,
        format!(
            "logfile=\"{}\"\nvirtual=192.0.2.10:80\n\treal=192.0.2.50:80 gate\n\tchecktype=on\n",
            missing.display()
        ),
    )
    .unwrap();
    let d = Dry::start(dir.path(), &cf);
    wait_for(&d.log, "started");
    let (code, _) = d.ctl(&["reload"]);
    assert_eq!(code, Some(0));
    wait_for(&d.log, "until it can be written");
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert_eq!(
        log.matches(&format!("cannot write {}", missing.display()))
            .count(),
        1,
        "{log}"
    );
    d.stop();
}

/// A virtual whose fallbackcommand ran `start` (no real up) and that a
/// reload removes gets its `stop`; added back, it starts afresh: start,
/// stop, start (it ran start twice and never stop).
#[test]
fn a_removed_virtual_gets_its_fallbackcommand_stop() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let script = dir.path().join("fallback.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1 $2\" >> '{}'\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let keep = "virtual=192.0.2.20:80\n\treal=192.0.2.50:80 gate\n\tchecktype=on\n";
    let dead = "virtual=192.0.2.10:80\n\treal=127.0.0.1:9 gate\n\tchecktype=connect\n";
    let head = format!(
        "checkinterval=1\nfallbackcommand=\"{}\"\n",
        script.display()
    );
    std::fs::write(&cf, format!("{head}{keep}{dead}")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    wait_for(&calls, "start 192.0.2.10:80");
    let reload = |text: String| {
        std::fs::write(&cf, text).unwrap();
        let (code, out) = d.ctl(&["reload"]);
        assert_eq!(code, Some(0), "{out}");
    };
    reload(format!("{head}{keep}"));
    wait_for(&calls, "stop 192.0.2.10:80");
    reload(format!("{head}{keep}{dead}"));
    let start = Instant::now();
    while std::fs::read_to_string(&calls)
        .unwrap()
        .matches("start 192.0.2.10:80")
        .count()
        < 2
    {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
    }
    let got: Vec<String> = std::fs::read_to_string(&calls)
        .unwrap()
        .lines()
        .filter(|l| l.contains("192.0.2.10"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        got,
        [
            "start 192.0.2.10:80",
            "stop 192.0.2.10:80",
            "start 192.0.2.10:80"
        ],
        "{}",
        std::fs::read_to_string(&d.log).unwrap()
    );
    d.stop();
}

/// The control socket's file removed while lvsd runs (a cleanup of /run):
/// lvsd makes it again within seconds, and `lvsd status` answers (it said
/// "not running" for as long as lvsd ran).
#[test]
fn a_removed_control_socket_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = always_up(dir.path());
    std::fs::remove_file(&d.sock).unwrap();
    let start = Instant::now();
    loop {
        let (code, out) = d.ctl(&["status"]);
        if code == Some(0) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{out}");
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_for(&d.log, "was removed: made again");
    d.stop();
}

/// A dry-run lvsd in `dir` with one virtual whose real is always up
/// (checktype=on), once its real is in.
fn always_up(dir: &std::path::Path) -> Dry {
    let cf = dir.join("ldirectord.cf");
    std::fs::write(
        &cf,
        "virtual=192.0.2.10:80\n\treal=192.0.2.50:80 gate\n\tchecktype=on\n",
    )
    .unwrap();
    Dry::start(dir, &cf)
}

/// A file that is not a socket where the control socket goes is left
/// alone and said (it was deleted at start).
#[test]
fn a_file_where_the_control_socket_goes_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        "virtual=192.0.2.10:80\n\treal=192.0.2.50:80 gate\n\tchecktype=on\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("control.sock"), "precious\n").unwrap();
    let d = Dry::spawn(dir.path(), &[&cf]);
    wait_for(&d.log, "not a socket");
    assert_eq!(
        std::fs::read_to_string(&d.sock).unwrap(),
        "precious\n",
        "{}",
        std::fs::read_to_string(&d.log).unwrap()
    );
    let sock = d.sock.clone();
    d.stop();
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "precious\n");
}

/// A start that builds a big table logs the first ops one by one and the
/// rest in one line; the ops themselves all happen.
#[test]
fn a_big_table_is_logged_as_its_first_hundred_ops_and_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let mut text = "virtual=192.0.2.10:80\n\tchecktype=on\n".to_owned();
    for i in 0..150 {
        text.push_str(&format!("\treal=198.51.100.{}:80 gate\n", i + 1));
    }
    std::fs::write(&cf, text).unwrap();
    let d = Dry::spawn(dir.path(), &[&cf]);
    let start = Instant::now();
    while std::fs::read_to_string(&d.ops)
        .unwrap_or_default()
        .lines()
        .count()
        < 151
    {
        assert!(start.elapsed() < Duration::from_secs(10), "151 ops in 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ops, log) = (d.ops.clone(), d.log.clone());
    d.stop();
    let log = std::fs::read_to_string(log).unwrap();
    let one_by_one = log.lines().filter(|l| l.contains("ipvsadm -a ")).count();
    assert_eq!(one_by_one, 99, "{log}");
    assert!(log.contains("ipvsadm -A -t 192.0.2.10:80"), "{log}");
    assert!(
        log.contains("and 51 more op(s) applied: 51 add-dest (each at log level debug)"),
        "{log}"
    );
    let kinds = std::fs::read_to_string(&ops).unwrap();
    assert_eq!(
        kinds.lines().filter(|l| l.contains("\"add-dest\"")).count(),
        150
    );
}
