//! A reload never empties the IPVS table by accident: an emptied file, one
//! cut after its `virtual=` line, a directory or a FIFO where the config
//! file was, a conf.d drop-in that is not a file, through `lvsd reload`,
//! SIGHUP and autoreload, against the binary in dry run. Found by a hostile
//! try: each of them was read as a valid configuration without virtual
//! services (or, for the FIFO, wedged the daemon) and the reload removed
//! every real.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/backend.rs"]
mod support;
use support::backend;

#[path = "support/dry.rs"]
mod dry;
use dry::{Dry, virtual_block, wait_for};

fn good(real: &str, head: &str) -> String {
    format!(
        "{head}checkinterval=1\nquiescent=no\n{}",
        virtual_block(real, "192.0.2.10")
    )
}

fn ops(d: &Dry) -> String {
    std::fs::read_to_string(&d.ops).unwrap()
}

#[test]
fn an_emptied_file_a_directory_or_a_fifo_is_refused_and_the_table_stays() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, good(&real, "")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    let before = ops(&d);

    // Emptied (a truncating editor, a full disk, a bad deploy).
    std::fs::write(&cf, "").unwrap();
    let (code, answer) = d.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{answer}");
    assert!(
        answer.contains("no virtual service where the running one has 1")
            && answer.contains("--allow-empty")
            && answer.contains("reload refused, the running configuration stays"),
        "{answer}"
    );
    // Comments and globals only: the same.
    std::fs::write(&cf, "# being rewritten\ncheckinterval=1\n").unwrap();
    d.signal("-HUP");
    wait_for(&d.log, "no virtual service where the running one has 1");

    // Cut after the `virtual=` line: a virtual, not one real.
    std::fs::write(
        &cf,
        "checkinterval=1\nquiescent=no\nvirtual=192.0.2.10:80\n",
    )
    .unwrap();
    let (code, answer) = d.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{answer}");
    assert!(
        answer.contains("no real server where the running one has 1"),
        "{answer}"
    );

    // A directory where the file was.
    std::fs::remove_file(&cf).unwrap();
    std::fs::create_dir(&cf).unwrap();
    let (code, answer) = d.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{answer}");
    assert!(answer.contains("it is a directory"), "{answer}");
    std::fs::remove_dir(&cf).unwrap();

    // A FIFO nobody writes: refused at once, the daemon not wedged.
    assert!(Command::new("mkfifo").arg(&cf).status().unwrap().success());
    let t = Instant::now();
    let (code, answer) = d.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{answer}");
    assert!(answer.contains("it is a FIFO"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let (code, status) = d.ctl(&["status"]);
    assert_eq!(code, Some(0), "{status}");
    std::fs::remove_file(&cf).unwrap();

    // Nothing of that reached the table.
    assert_eq!(ops(&d), before, "a refused reload changed the table");

    // The file back: nothing to do.
    std::fs::write(&cf, good(&real, "")).unwrap();
    let (code, answer) = d.ctl(&["reload"]);
    assert_eq!(code, Some(0), "{answer}");
    assert!(answer.starts_with("unchanged:"), "{answer}");

    // Removing every virtual on purpose: said so, and done.
    std::fs::write(&cf, "checkinterval=1\n").unwrap();
    let (code, answer) = d.ctl(&["reload", "--allow-empty"]);
    assert_eq!(code, Some(0), "{answer}");
    assert!(
        answer.starts_with("applied: ") && answer.contains("1 removed"),
        "{answer}"
    );
    wait_for(&d.ops, "del-service");
    d.stop();
}

/// autoreload=yes sees the file emptied and refuses it by itself; the
/// table stays until the file is good again.
#[test]
fn autoreload_refuses_an_emptied_file() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, good(&real, "autoreload=yes\n")).unwrap();
    let d = Dry::start(dir.path(), &cf);
    let before = ops(&d);
    std::fs::write(&cf, "").unwrap();
    wait_for(&d.log, "no virtual service where the running one has 1");
    assert_eq!(ops(&d), before, "the emptied file changed the table");
    // Written again with a second virtual: applied by itself.
    std::fs::write(
        &cf,
        good(&real, "autoreload=yes\n") + &virtual_block(&real, "192.0.2.11"),
    )
    .unwrap();
    wait_for(&d.ops, "tcp:192.0.2.11:80");
    assert!(ops(&d).starts_with(&before));
    d.stop();
}

/// A conf.d drop-in replaced by a FIFO or a directory is an error at its
/// name, not skipped (its virtual would leave the kernel).
#[test]
fn a_drop_in_that_is_not_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let main = dir.path().join("lvsd.toml");
    std::fs::write(&main, "[global]\ncheckinterval = 1\nquiescent = false\n").unwrap();
    let confd = dir.path().join("conf.d");
    std::fs::create_dir(&confd).unwrap();
    let drop_in = |vip: &str| {
        format!(
            "[[virtual]]\naddress = \"{vip}:80\"\nrequest = \"/health\"\nreceive = \"Service Up\"\nreal = [\"{real} gate\"]\n"
        )
    };
    std::fs::write(confd.join("a.toml"), drop_in("192.0.2.10")).unwrap();
    std::fs::write(confd.join("b.toml"), drop_in("192.0.2.11")).unwrap();
    let d = Dry::start_with(dir.path(), &[&main, &confd]);
    wait_for(&d.ops, "tcp:192.0.2.11:80");
    let before = ops(&d);
    let b = confd.join("b.toml");
    std::fs::remove_file(&b).unwrap();
    assert!(Command::new("mkfifo").arg(&b).status().unwrap().success());
    let (code, answer) = d.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{answer}");
    assert!(
        answer.contains("b.toml") && answer.contains("it is a FIFO"),
        "{answer}"
    );
    std::fs::remove_file(&b).unwrap();
    std::fs::create_dir(&b).unwrap();
    let (code, answer) = d.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{answer}");
    assert!(answer.contains("it is a directory"), "{answer}");
    assert_eq!(ops(&d), before, "a refused reload changed the table");
    d.stop();
}
