//! lvsd's own trouble is never a real's failure, through the binary: with
//! a low open files limit (as under systemd without LimitNOFILE), hundreds
//! of idle connections to /metrics used to take every descriptor, probes
//! failed with "too many open files" and healthy reals were removed. Now
//! each listener serves a bounded number of connections (a sixteenth of
//! the limit), so probes keep their descriptors, no real leaves, and
//! `lvsd status` answers throughout.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/backend.rs"]
mod support;

#[path = "support/dry.rs"]
mod dry;
use dry::{Kill, lvsd, wait_for};

/// A dry-run lvsd on `conf` allowed `files` open files (soft and hard),
/// its files in `dir`: the child, its ops log, control socket and log.
fn limited(
    dir: &std::path::Path,
    files: u32,
    conf: &std::path::Path,
) -> (
    Kill,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let (ops, sock, log) = (
        dir.join("ops.jsonl"),
        dir.join("control.sock"),
        dir.join("lvsd.log"),
    );
    let script = format!(
        "ulimit -n {files} && exec '{}' run --dry-run --ops-log '{}' --control '{}' '{}'",
        lvsd().get_program().to_string_lossy(),
        ops.display(),
        sock.display(),
        conf.display()
    );
    let child = Kill(
        Command::new("sh")
            .args(["-c", &script])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    (child, ops, sock, log)
}

#[test]
fn idle_connections_to_metrics_take_no_real_out() {
    let dir = tempfile::tempdir().unwrap();
    // 20 reals checked by connect (the kernel completes the handshakes).
    let backends: Vec<TcpListener> = (0..20)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let metrics = support::free_port();
    let mut cf = format!(
        "checkinterval=1\nfailurecount=1\nquiescent=no\nmetrics=127.0.0.1:{metrics}\nvirtual=192.0.2.10:80\n\tchecktype=connect\n"
    );
    for b in &backends {
        cf.push_str(&format!("\treal={} gate\n", b.local_addr().unwrap()));
    }
    let conf = dir.path().join("ldirectord.cf");
    std::fs::write(&conf, cf).unwrap();
    let (_child, ops, sock, log) = limited(dir.path(), 128, &conf);
    let start = Instant::now();
    while std::fs::read_to_string(&ops)
        .unwrap_or_default()
        .matches("add-dest")
        .count()
        < 20
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not every real came up:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(&log, "only 128 open files allowed");
    // A local user opens 300 connections to /metrics and sends nothing.
    let hostile: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", metrics)).ok())
        .collect();
    assert!(hostile.len() >= 100, "only {} connected", hostile.len());
    // And holds idle connections to the control socket.
    let idle_control: Vec<std::os::unix::net::UnixStream> = (0..30)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&sock).ok())
        .collect();
    // A scraper still gets its answer: it takes an idle one's slot.
    let scrape = || {
        use std::io::{Read as _, Write as _};
        let mut s = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    for _ in 0..3 {
        let out = scrape();
        assert!(out.starts_with("HTTP/1.1 200"), "scrape refused: {out:?}");
        assert!(out.contains("lvsd_"), "{out}");
    }
    let status = || {
        lvsd()
            .args(["status", "--control"])
            .arg(&sock)
            .output()
            .unwrap()
    };
    for _ in 0..6 {
        std::thread::sleep(Duration::from_secs(1));
        let out = status();
        assert!(
            out.status.success(),
            "status: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ops_text = std::fs::read_to_string(&ops).unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !ops_text.contains("del-dest") && !log_text.contains(" down after "),
        "a healthy real was taken out:\n{log_text}"
    );
    drop(hostile);
    drop(idle_control);
}

/// lvsd's own load runs it out of descriptors (60 slow HTTP checks under a
/// limit of 32 open files: lvsd allows itself 16 probes in flight, half
/// the limit, but needs 21 descriptors of its own): the probes that fail
/// with "too many open files" are lvsd's trouble, logged once as
/// "impaired" and not counted, so no real that answers is ever taken out.
#[test]
fn probes_failing_for_lack_of_descriptors_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let server = r"import http.server, socketserver, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.5)
        self.send_response(200); self.end_headers(); self.wfile.write(b'Service Up\n')
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 512
S(('0.0.0.0', int(sys.argv[1])), H).serve_forever()
";
    let _web = Kill(
        Command::new("python3")
            .args(["-c", server, &port.to_string()])
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no web server");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut cf = "checkinterval=1\nfailurecount=1\nnegotiatetimeout=5\nquiescent=no\nvirtual=192.0.2.10:80\n\tservice=http\n\trequest=\"/\"\n\treceive=\"Service Up\"\n".to_owned();
    for i in 1..=60 {
        cf.push_str(&format!("\treal=127.0.0.{i}:{port} gate\n"));
    }
    let conf = dir.path().join("ldirectord.cf");
    std::fs::write(&conf, cf).unwrap();
    let (_child, ops, _sock, log) = limited(dir.path(), 32, &conf);
    wait_for(&log, "lvsd is impaired");
    std::thread::sleep(Duration::from_secs(6));
    let ops_text = std::fs::read_to_string(&ops).unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        ops_text.contains("add-dest"),
        "no real ever came up:\n{log_text}"
    );
    assert!(
        !ops_text.contains("del-dest") && !log_text.contains(" down after "),
        "a real that answers was taken out:\n{log_text}"
    );
    assert_eq!(
        log_text.matches("lvsd is impaired").count(),
        1,
        "{log_text}"
    );
}
