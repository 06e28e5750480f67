//! `logfile=` never holds the daemon: the `lvsd` binary (dry run) logs
//! to a FIFO that first has no reader, then a reader that stops reading
//! (the pipe full), then a reader again. Checks keep their time throughout
//! (the ops log follows the backend down and up, `lvsd status` answers),
//! the lost lines are counted (`lvsd_log_lines_dropped_total`), and the
//! first line the FIFO takes again says how many were dropped.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "support/backend.rs"]
mod support;

#[path = "support/dry.rs"]
mod dry;
use dry::{Dry, Kill, lvsd, virtual_block};

/// How often `what` is in the file at `path`.
fn count(path: &Path, what: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(what)
        .count()
}

/// Waits (up to 10 s) until `what` is in the ops log `n` times; how long
/// it took.
fn wait_count(d: &Dry, what: &str, n: usize) -> Duration {
    let start = Instant::now();
    while count(&d.ops, what) < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} not {n} times in the ops log:\n{}\nlvsd's log:\n{}",
            std::fs::read_to_string(&d.ops).unwrap_or_default(),
            std::fs::read_to_string(&d.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// `lvsd status`, which must answer (exit 0) within 10 s.
fn status(d: &Dry) -> String {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = Kill(
        lvsd()
            .arg("status")
            .arg("--control")
            .arg(&d.sock)
            .stdout(out.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            assert!(s.success(), "lvsd status: {s}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "lvsd status did not answer within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(out.path()).unwrap()
}

/// `lvsd_log_lines_dropped_total` from `/metrics`.
fn dropped(port: u16) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("lvsd_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no lvsd_log_lines_dropped_total in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Everything the FIFO holds now (its read end is non-blocking).
fn drain(r: &mut std::fs::File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("reading the FIFO: {e}"),
        }
    }
}

/// The backend stops answering "Service Up", then starts again: the
/// real is removed, then added back, each seen in the ops log.
fn flap(d: &Dry, up: &std::sync::atomic::AtomicBool, round: usize) {
    up.store(false, Ordering::SeqCst);
    let down = wait_count(d, "\"del-dest\"", round);
    up.store(true, Ordering::SeqCst);
    let back = wait_count(d, "\"add-dest\"", round + 1);
    println!("round {round}: real removed after {down:.1?}, added back after {back:.1?}");
}

#[test]
fn a_log_fifo_that_is_not_read_drops_lines_and_never_holds_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("lvsd.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (real, up) = support::switchable();
    let port = support::free_port();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nquiescent=no\nlogfile=\"{}\"\nmetrics=127.0.0.1:{port}\n{}",
            fifo.display(),
            virtual_block(&format!("127.0.0.1:{real}"), "192.0.2.10")
        ),
    )
    .unwrap();

    // 1. Nobody reads the FIFO: every line is dropped (ENXIO), nothing
    // waits. Dry::start returns once the real is in.
    let d = Dry::start(dir.path(), &cf);
    let s = status(&d);
    assert!(s.contains(" up "), "{s}");
    flap(&d, &up, 1);
    let before = dropped(port);
    assert!(before > 0, "lines with no reader are counted");

    // 2. A reader that stops reading: the pipe is full, every write
    // EAGAIN.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut filler = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    while filler.write(&[b'#'; 4096]).is_ok() {}
    while filler.write(b"#").is_ok() {}
    flap(&d, &up, 2);
    let s = status(&d);
    assert!(s.contains(" up "), "{s}");
    let full = dropped(port);
    println!("lvsd_log_lines_dropped_total: {before} with no reader, {full} with the pipe full");
    assert!(
        full > before,
        "lines into a full pipe are counted: {before} then {full}"
    );

    // 3. The reader reads again: the next line lvsd logs is preceded by
    // the count of those it dropped.
    up.store(false, Ordering::SeqCst);
    let mut read = Vec::new();
    let start = Instant::now();
    let after = loop {
        read.extend(drain(&mut reader));
        let after = read
            .iter()
            .rposition(|b| *b == b'#')
            .map_or(&read[..], |i| &read[i + 1..]);
        let after = String::from_utf8_lossy(after).into_owned();
        if after.contains(" down after ") {
            break after;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the FIFO, read again, got:\n{after}\nlvsd's log:\n{}",
            std::fs::read_to_string(&d.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("the FIFO, read again:\n{after}");
    let first = after.lines().find(|l| !l.is_empty()).unwrap();
    let n: u64 = first
        .split_once("] lvsd: ")
        .and_then(|(_, rest)| rest.strip_suffix(" log lines dropped: the log sink did not keep up"))
        .unwrap_or_else(|| panic!("the first line says what was dropped: {first}"))
        .parse()
        .unwrap();
    assert!(n >= 1 && n <= dropped(port), "{first}");
    wait_count(&d, "\"del-dest\"", 3);
    d.stop();
}
