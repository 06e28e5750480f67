//! The config watcher through the binary: an idle lvsd reads no file
//! (inotify tells it when to look), an edit through a symbolic link and a
//! drop-in still apply, and where inotify cannot be had lvsd says so and
//! polls.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[path = "support/dry.rs"]
mod dry;
use dry::{Dry, Kill, lvsd, wait_for};

/// A virtual whose real is always up (checktype=on: no probe, so the
/// daemon does nothing at all while idle).
fn config(vip: &str) -> String {
    format!("autoreload=yes\nvirtual={vip}:80\n\treal=192.0.2.50:80 gate\n\tchecktype=on\n")
}

/// Read system calls the process has made so far.
fn reads(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn an_idle_lvsd_reads_no_file_and_edits_through_a_link_still_apply() {
    let dir = tempfile::tempdir().unwrap();
    // The operator's file is a link to a file kept elsewhere.
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let target = store.join("ldirectord.cf");
    std::fs::write(&target, config("192.0.2.10")).unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let cf = etc.join("ldirectord.cf");
    std::os::unix::fs::symlink(&target, &cf).unwrap();
    let d = Dry::start(dir.path(), &cf);
    wait_for(&d.log, "started");
    let pid = d.child.0.id();
    std::thread::sleep(Duration::from_millis(500));
    let before = reads(pid);
    std::thread::sleep(Duration::from_secs(3));
    let idle = reads(pid) - before;
    // Polling looked four times a second: about 24 reads in these 3 s.
    assert!(
        idle <= 2,
        "{idle} read calls while idle: {}",
        std::fs::read_to_string(&d.log).unwrap()
    );
    // The target edited in place, through the link: applied.
    std::fs::write(&target, config("192.0.2.11")).unwrap();
    wait_for(&d.ops, "tcp:192.0.2.11:80");
    wait_for(&d.log, "reloading");
    d.stop();
}

#[test]
fn a_drop_in_written_into_conf_d_applies() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("lvsd.toml");
    std::fs::write(&main, "[global]\nautoreload = true\n").unwrap();
    let confd = dir.path().join("conf.d");
    std::fs::create_dir(&confd).unwrap();
    let drop_in = |vip: &str| {
        format!(
            "[[virtual]]\naddress = \"{vip}:80\"\nchecktype = \"on\"\nreal = [{{ address = \"192.0.2.50:80\", forward = \"gate\" }}]\n"
        )
    };
    std::fs::write(confd.join("a.toml"), drop_in("192.0.2.10")).unwrap();
    let d = Dry::start_with(dir.path(), &[&main, &confd]);
    // As a package would: written under another name, then renamed in.
    let tmp = confd.join(".b.toml.tmp");
    std::fs::write(&tmp, drop_in("192.0.2.12")).unwrap();
    std::fs::rename(&tmp, confd.join("b.toml")).unwrap();
    wait_for(&d.ops, "tcp:192.0.2.12:80");
    d.stop();
}

/// With no inotify instance left (a user namespace whose limit is 0),
/// lvsd says so and looks four times a second: an edit still applies.
#[test]
fn without_inotify_it_says_so_and_polls() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, config("192.0.2.10")).unwrap();
    let (ops, log) = (dir.path().join("ops.jsonl"), dir.path().join("lvsd.log"));
    let bin = lvsd().get_program().to_owned();
    let script = format!(
        "echo 0 > /proc/sys/user/max_inotify_instances && exec '{}' run --dry-run --ops-log '{}' --control '{}' '{}'",
        Path::new(&bin).display(),
        ops.display(),
        dir.path().join("control.sock").display(),
        cf.display()
    );
    let child = Kill(
        Command::new("unshare")
            .args(["-rn", "sh", "-c", &script])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(&ops, "add-dest");
    wait_for(&log, "no inotify");
    std::fs::write(&cf, config("192.0.2.11")).unwrap();
    wait_for(&ops, "tcp:192.0.2.11:80");
    drop(child);
}

/// The places a config lives can change under it: a link pointed at
/// another file whose later edits must count, a config directory renamed
/// away and made again, a conf.d deleted and made again at once. Each
/// later edit still applies.
#[test]
fn moved_links_and_directories_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A link pointed elsewhere, then the new target edited.
    std::fs::write(d.join("a.cf"), config("192.0.2.10")).unwrap();
    std::fs::write(d.join("b.cf"), config("192.0.2.10")).unwrap();
    let link = d.join("lv.cf");
    std::os::unix::fs::symlink(d.join("a.cf"), &link).unwrap();
    let run = d.join("run1");
    std::fs::create_dir(&run).unwrap();
    let first = Dry::start(&run, &link);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(d.join("b.cf"), &link).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(d.join("b.cf"), config("192.0.2.11")).unwrap();
    wait_for(&first.ops, "tcp:192.0.2.11:80");
    first.stop();

    // The config's directory renamed away and made again.
    let cfg = d.join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(cfg.join("lv.cf"), config("192.0.2.10")).unwrap();
    let run = d.join("run2");
    std::fs::create_dir(&run).unwrap();
    let second = Dry::start(&run, &cfg.join("lv.cf"));
    std::fs::rename(&cfg, d.join("cfg.old")).unwrap();
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(cfg.join("lv.cf"), config("192.0.2.12")).unwrap();
    wait_for(&second.ops, "tcp:192.0.2.12:80");
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(cfg.join("lv.cf"), config("192.0.2.13")).unwrap();
    wait_for(&second.ops, "tcp:192.0.2.13:80");
    second.stop();

    // conf.d deleted and made again at once, then a drop-in added.
    let main = d.join("lvsd.toml");
    std::fs::write(&main, "[global]\nautoreload = true\n").unwrap();
    let confd = d.join("conf.d");
    std::fs::create_dir(&confd).unwrap();
    let drop_in = |vip: &str| {
        format!(
            "[[virtual]]\naddress = \"{vip}:80\"\nchecktype = \"on\"\nreal = [{{ address = \"192.0.2.50:80\", forward = \"gate\" }}]\n"
        )
    };
    std::fs::write(confd.join("a.toml"), drop_in("192.0.2.20")).unwrap();
    let run = d.join("run3");
    std::fs::create_dir(&run).unwrap();
    let third = Dry::start_with(&run, &[&main, &confd]);
    std::fs::remove_dir_all(&confd).unwrap();
    std::fs::create_dir(&confd).unwrap();
    std::fs::write(confd.join("a.toml"), drop_in("192.0.2.21")).unwrap();
    wait_for(&third.ops, "tcp:192.0.2.21:80");
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(confd.join("b.toml"), drop_in("192.0.2.22")).unwrap();
    wait_for(&third.ops, "tcp:192.0.2.22:80");
    third.stop();
}

/// An edit undone while it settles (a quarter of a second) is no change:
/// nothing is logged, least of all "changed on disk: :" with no name.
/// With autoreload off, a first edit is told and not read; later edits
/// undone land at several delays so one of them falls inside the
/// settling look.
#[test]
fn a_change_undone_while_settling_is_no_news() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let off = |vip: &str| config(vip).replace("autoreload=yes", "autoreload=no");
    std::fs::write(&cf, off("192.0.2.10")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    wait_for(&d.log, "started");
    std::fs::write(&cf, off("192.0.2.11")).unwrap();
    wait_for(&d.log, "not reloaded");
    for ms in [280, 330, 380, 430, 480] {
        std::fs::write(&cf, off("192.0.2.12")).unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        std::fs::write(&cf, off("192.0.2.11")).unwrap();
        std::thread::sleep(Duration::from_millis(1200));
    }
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(
        !log.contains("changed on disk: :"),
        "a change with no file named:\n{log}"
    );
    d.stop();
}

/// A callback that takes its time (20 s here) delays no reload: the next
/// edit applies while it still runs.
#[test]
fn a_slow_callback_delays_no_reload() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let with_callback = |vip: &str| format!("callback=\"sleep 20; true\"\n{}", config(vip));
    std::fs::write(&cf, with_callback("192.0.2.10")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    std::fs::write(&cf, with_callback("192.0.2.11")).unwrap();
    wait_for(&d.ops, "tcp:192.0.2.11:80");
    wait_for(&d.log, "running callback");
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(&cf, with_callback("192.0.2.12")).unwrap();
    wait_for(&d.ops, "tcp:192.0.2.12:80");
    d.stop();
}
