//! `/metrics` of a running lvsd (the binary, dry run, a real backend),
//! scraped over HTTP and parsed by the Prometheus project's own
//! OpenMetrics parser (python's prometheus_client, which scripts/test-all
//! installs): every family is well formed, and the values say what
//! happened (probes, latency, up, ops, reloads).
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/backend.rs"]
mod support;

/// GET `path`: (status line, content-type, body).
fn get(port: u16, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_owned();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, ctype, body.to_owned())
}

/// Parses with prometheus_client's OpenMetrics parser; one line per
/// sample: `name {labels as sorted k=v,...} value`.
fn parse(text: &str) -> Vec<String> {
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
             for f in p(sys.stdin.read()):\n\
             \x20   for s in f.samples:\n\
             \x20       print(f.type, s.name, ','.join(f'{k}={v}' for k, v in sorted(s.labels.items())), s.value)\n",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the text (is prometheus-client installed? scripts/test-all does it):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn value(samples: &[String], name: &str, labels: &str) -> Option<f64> {
    samples.iter().find_map(|l| {
        let mut w = l.split(' ');
        let (_, n, lab, v) = (w.next()?, w.next()?, w.next()?, w.next()?);
        (n == name && lab == labels).then(|| v.parse().ok())?
    })
}

#[test]
fn metrics_are_scraped_and_parse_as_openmetrics() {
    let dir = tempfile::tempdir().unwrap();
    let real = support::switchable().0;
    let port = support::free_port();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nmetrics=127.0.0.1:{port}\nvirtual=192.0.2.10:80\n\treal=127.0.0.1:{real} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n"
        ),
    )
    .unwrap();
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_lvsd"))
            .args(["run", "--dry-run", "--control"])
            .arg(dir.path().join("control.sock"))
            .arg(&cf)
            .stderr(std::fs::File::create(dir.path().join("lvsd.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let virt = "tcp:192.0.2.10:80";
    // Labels sorted by name, as parse() prints them.
    let who = format!("real=127.0.0.1:{real},virtual={virt}");
    let with = |k: &str, v: &str| format!("real=127.0.0.1:{real},{k}={v},virtual={virt}");
    let scrape = || {
        let (status, ctype, body) = get(port, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        parse(&body)
    };
    // Up, and two probes seen.
    let start = Instant::now();
    let samples = loop {
        let s = if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            scrape()
        } else {
            Vec::new()
        };
        if value(&s, "lvsd_probes_total", &with("result", "ok")).unwrap_or(0.0) >= 2.0 {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{s:#?}\n{}",
            std::fs::read_to_string(dir.path().join("lvsd.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(value(&samples, "lvsd_real_up", &who), Some(1.0));
    assert_eq!(
        value(&samples, "lvsd_transitions_total", &with("to", "up")),
        Some(1.0)
    );
    // The latency histogram: every probe in the +Inf bucket and the count.
    let count = value(&samples, "lvsd_probe_duration_seconds_count", &who).unwrap();
    assert!(count >= 2.0, "{samples:#?}");
    assert_eq!(
        value(
            &samples,
            "lvsd_probe_duration_seconds_bucket",
            &format!("le=+Inf,{who}")
        ),
        Some(count)
    );
    assert!(value(&samples, "lvsd_probe_duration_seconds_sum", &who).unwrap() > 0.0);
    assert_eq!(
        value(&samples, "lvsd_reconcile_ops_total", "op=add-service"),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "lvsd_reconcile_errors_total", ""),
        Some(0.0)
    );
    assert_eq!(value(&samples, "lvsd_alert_queue", ""), Some(0.0));
    // A reload of the same files: counted as unchanged.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    while value(&scrape(), "lvsd_reloads_total", "result=unchanged") != Some(1.0) {
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Anything but /metrics is a 404.
    assert_eq!(get(port, "/").0, "HTTP/1.1 404 Not Found");
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    assert!(child.0.wait().unwrap().success());
}

/// The daemon, killed if the test fails before it stops it.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
