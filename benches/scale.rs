//! Memory and `lvsd status` at scale: `cargo bench --bench scale [-- N...]`
//! (default 100,000 reals).
//!
//! For each N: writes an ldirectord.cf with N reals in virtuals of 250
//! (`real=127.A.B.1->127.A.B.250:9`, connect checks, checkinterval 60,
//! quiescent=yes, no emailalert). Port 9 on loopback: nothing listens, every
//! probe is refused at once, so every real goes down within its first
//! interval. Runs the release `lvsd run --dry-run` binary, waits until every
//! real was judged, and prints:
//! - lvsd's RSS then, and per real,
//! - `lvsd status --json` and `lvsd status`: wall time (min of 3), size of
//!   the answer, and lvsd's RSS after them (what a status costs the daemon).
//!
//! Loopback only; needs no root.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark: a failure is a broken bench machine

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn config(n: usize) -> String {
    let mut t = String::from("checkinterval=60\nquiescent=yes\n");
    for v in 0..n.div_ceil(250) {
        let (a, b) = (1 + v / 250, v % 250);
        let last = (n - v * 250).min(250);
        t += &format!(
            "virtual=192.0.{}.{}:80\n\treal=127.{a}.{b}.1->127.{a}.{b}.{last}:9 gate\n\tchecktype=connect\n",
            2 + v / 250,
            1 + v % 250
        );
    }
    t
}

/// Min wall time of 3 runs of `lvsd ARGS`, and the answer's size.
fn timed(bin: &str, args: &[&str]) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut size = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let out = Command::new(bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        best = best.min(start.elapsed().as_secs_f64());
        size = out.stdout.len();
    }
    (best, size)
}

fn one(n: usize) {
    let bin = format!("{}/target/release/lvsd", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(&cf, config(n)).unwrap();
    let sock = dir.path().join("control.sock");
    let log = dir.path().join("lvsd.log");
    let mut child = Command::new(&bin)
        .args(["run", "--dry-run", "--ops-log"])
        .arg(dir.path().join("ops.jsonl"))
        .arg("--control")
        .arg(&sock)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg(&cf)
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    loop {
        let judged = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("is down at start")
            .count();
        if judged >= n {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{judged} of {n} reals judged"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let converged = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_kib(pid, "VmRSS:");
    let s = sock.to_str().unwrap();
    let (json_s, json_bytes) = timed(&bin, &["status", "--json", "--control", s]);
    let after_json = rss_kib(pid, "VmHWM:");
    let (text_s, text_bytes) = timed(&bin, &["status", "--control", s]);
    let after_text = rss_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "| {n} | {converged:.0} | {:.1} | {:.2} | {json_s:.2} ({:.1} MB) | {:.1} | {text_s:.2} ({:.1} MB) | {:.1} |",
        rss as f64 / 1024.0,
        rss as f64 / n as f64,
        json_bytes as f64 / 1e6,
        after_json as f64 / 1024.0,
        text_bytes as f64 / 1e6,
        after_text as f64 / 1024.0,
    );
}

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace(['_', ','], "").parse().ok())
        .collect();
    let ns = if ns.is_empty() { vec![100_000] } else { ns };
    println!(
        "| reals | all judged after (s) | RSS (MiB) | KiB per real | status --json s (size) | peak RSS after (MiB) | status s (size) | peak RSS after (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in ns {
        one(n);
    }
}
