//! The health pipeline under load: `cargo bench --bench pipeline [-- N...]`.
//!
//! For each N (default 1,000 and 10,000): starts N HTTP backends on
//! 127.0.0.1 in this process, writes an ldirectord.cf with N reals (100 per
//! virtual, checkinterval=1, failurecount=1, quiescent=yes), runs the real
//! `lvsd run --dry-run --ops-log` binary as a child, lets it converge for
//! 10 s, then measures for 60 s (`LVSD_BENCH_SECS` to change):
//! - probes per second (requests the backends answered),
//! - lvsd's CPU seconds per 1,000 probes (utime + stime from /proc),
//! - lvsd's peak RSS (VmHWM),
//! - the cores lvsd and the backends (this process) kept busy: on a
//!   2-core machine they compete, and loopback TCP charges much of the
//!   server side's kernel work to the connecting process,
//! - failure → op lag: every 2.5 s one backend starts answering 503; the
//!   lag is the time from that switch to the `edit-dest ... weight 0` line
//!   in the ops log (min / median / max over every failure).
//!
//! Prints one table row per N. Loopback only.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark: a failure is a broken bench machine

#[path = "../examples/support/backend.rs"]
mod backend;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backend::Backend;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// CPU seconds (user + system) used by `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ is 100 on Linux
}

/// Peak resident set of `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

fn total_hits(backends: &[Backend]) -> u64 {
    backends
        .iter()
        .map(|b| b.hits.load(Ordering::Relaxed))
        .sum()
}

struct Row {
    n: usize,
    probes_per_sec: f64,
    cpu_per_1000: f64,
    lvsd_cores: f64,
    backend_cores: f64,
    peak_rss: f64,
    lags: Vec<f64>,
}

async fn bench(n: usize, secs: u64, dir: &std::path::Path) -> Row {
    let mut backends = Vec::with_capacity(n);
    for _ in 0..n {
        backends.push(
            Backend::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .await
                .unwrap(),
        );
    }
    let mut cf = String::from(
        "checkinterval=1\nnegotiatetimeout=2\nfailurecount=1\nquiescent=yes\ncleanstop=no\n",
    );
    for (v, chunk) in backends.chunks(100).enumerate() {
        let _ = writeln!(cf, "virtual=192.0.2.1:{}", 1000 + v);
        for b in chunk {
            let _ = writeln!(cf, "\treal={} masq", b.addr);
        }
        cf.push_str("\tservice=http\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n\n");
    }
    let cfg = dir.join(format!("bench-{n}.cf"));
    std::fs::write(&cfg, cf).unwrap();
    let ops = dir.join(format!("ops-{n}.jsonl"));
    let _ = std::fs::remove_file(&ops);
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(["run", "--dry-run", "--ops-log"])
        .arg(&ops)
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();

    // Converge: every real's first probe falls within the first second.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let me = std::process::id();
    let (hits0, cpu0, own0) = (total_hits(&backends), cpu_seconds(pid), cpu_seconds(me));
    let start = tokio::time::Instant::now();
    let mut switched: HashMap<String, f64> = HashMap::new();
    let mut next_fail = 1usize;
    let mut tick = tokio::time::interval(Duration::from_millis(2500));
    tick.tick().await;
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        if start.elapsed() >= Duration::from_secs(secs.saturating_sub(3)) {
            break; // leave time for the last failure to be noticed
        }
        // Spread the failed reals over the virtuals.
        let b = &backends[(next_fail * 997) % n];
        next_fail += 1;
        b.set_up(false);
        switched.insert(b.addr.to_string(), unix_now());
    }
    tokio::time::sleep_until(start + Duration::from_secs(secs)).await;
    let (hits1, cpu1, own1) = (total_hits(&backends), cpu_seconds(pid), cpu_seconds(me));
    let peak_rss = peak_rss_mib(pid);
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = child.wait();

    let mut lags = Vec::new();
    for line in std::fs::read_to_string(&ops).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["op"] != "edit-dest" || v["weight"] != 0 {
            continue;
        }
        if let Some(t0) = v["dest"].as_str().and_then(|d| switched.remove(d)) {
            lags.push(v["ts"].as_f64().unwrap() - t0);
        }
    }
    if !switched.is_empty() {
        eprintln!(
            "N={n}: {} failure(s) never reached the ops log",
            switched.len()
        );
    }
    lags.sort_by(f64::total_cmp);
    let probes = (hits1 - hits0) as f64;
    Row {
        n,
        probes_per_sec: probes / secs as f64,
        cpu_per_1000: (cpu1 - cpu0) / (probes / 1000.0),
        lvsd_cores: (cpu1 - cpu0) / secs as f64,
        backend_cores: (own1 - own0) / secs as f64,
        peak_rss,
        lags,
    }
}

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ns = if ns.is_empty() {
        vec![1000, 10_000]
    } else {
        ns
    };
    let secs: u64 = std::env::var("LVSD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "health pipeline: HTTP checks on 127.0.0.1, checkinterval 1 s, failurecount 1, {secs} s measured after 10 s"
    );
    println!(
        "{:>7} | {:>9} | {:>15} | {:>10} | {:>13} | {:>12} | {:>8} | {:>28}",
        "reals",
        "probes/s",
        "CPU s/1k probes",
        "lvsd cores",
        "backend cores",
        "peak RSS MiB",
        "failures",
        "failure→op lag min/med/max s"
    );
    for n in ns {
        let r = rt.block_on(bench(n, secs, dir.path()));
        let q = |f: f64| {
            r.lags
                .get(((r.lags.len() as f64 - 1.0) * f).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "{:>7} | {:>9.0} | {:>15.4} | {:>10.2} | {:>13.2} | {:>12.1} | {:>8} | {:>8.3} / {:>6.3} / {:>6.3}",
            r.n,
            r.probes_per_sec,
            r.cpu_per_1000,
            r.lvsd_cores,
            r.backend_cores,
            r.peak_rss,
            r.lags.len(),
            q(0.0),
            q(0.5),
            q(1.0)
        );
    }
}
