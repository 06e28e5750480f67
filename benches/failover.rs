//! Failover timings in the namespace lab (tests/support/failover_lab.rs:
//! two lvsd directors, a ping node, a bridge; root and iproute2 needed):
//! `cargo bench --bench failover [-- RUNS]` (default 10 runs a profile).
//!
//! Each run measures, from the event to what the network sees:
//! - cold start of both directors -> the VIP up on the preferred one;
//! - kill -9 of the active lvsd -> the VIP up on the standby, and -> the
//!   ping node's ARP entry for the VIP pointing at the standby (its
//!   gratuitous ARP arrived);
//! - the active losing its ping node -> the VIP moved to the standby;
//! - the ping path repaired -> the VIP back (auto_failback on).
//!
//! Profiles: heartbeat's lab timers (keepalive 500 ms, deadtime 2 s,
//! deadping 2 s) to compare with heartbeat 3.0.6 + ipfail, and lvsd's
//! fast timers (keepalive 100 ms, deadtime 500 ms, deadping 500 ms).
//! Prints min / median / max. Times are polled every 10 ms.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark

#[path = "../tests/support/failover_lab.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::{Lab, TIMERS_HEARTBEAT};

const TIMERS_FAST: &str =
    "keepalive 100ms\ndeadtime 500ms\nwarntime 300ms\ninitdead 1\ndeadping 500ms\n";

/// Polls `f` every 10 ms until true; the time it took.
fn until(timeout: Duration, what: &str, f: impl Fn() -> bool) -> f64 {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed().as_secs_f64()
}

fn one_run(timers: &str) -> [f64; 5] {
    let lab = Lab::new(timers);
    lab.ping_node_accepts_garp();
    let t = Duration::from_secs(20);
    let start = Instant::now();
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    while !lab.has_vip(1) || lab.has_vip(2) {
        assert!(start.elapsed() < t, "cold start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let cold = start.elapsed().as_secs_f64();
    // Let the ping node learn d1's MAC for the VIP, and both count it.
    std::thread::sleep(Duration::from_secs(3));
    let d2_mac = lab.mac(2);

    let killed = Instant::now();
    d1.kill().unwrap();
    let _ = d1.wait();
    until(t, "VIP on d2", || lab.has_vip(2));
    let up = killed.elapsed().as_secs_f64();
    until(t, "the ping node follows d2", || {
        lab.vip_mac_at_ping_node().as_deref() == Some(d2_mac.as_str())
    });
    let garp = killed.elapsed().as_secs_f64();

    // d1 back, holding the VIP again (auto_failback on).
    let _ = std::process::Command::new("ip")
        .args(["-n", &lab.ns[0], "addr", "del", lab::VIP, "dev", "lan0"])
        .status();
    let mut d1 = lab.start(1);
    until(t, "failback", || lab.has_vip(1) && !lab.has_vip(2));
    std::thread::sleep(Duration::from_secs(2));

    lab.cut_pings("10.197.0.1", true);
    let moved = until(t, "ping loss", || !lab.has_vip(1) && lab.has_vip(2));
    lab.cut_pings("10.197.0.1", false);
    let back = until(t, "repair", || lab.has_vip(1) && !lab.has_vip(2));
    lab::sigterm(&mut d1);
    lab::sigterm(&mut d2);
    [up, garp, moved, back, cold]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let names = [
        "active killed -> VIP up on the standby",
        "active killed -> ping node's ARP follows",
        "ping node lost -> VIP moved",
        "ping path repaired -> failback",
        "cold start -> VIP up",
    ];
    println!();
    println!("failover in the namespace lab, {runs} runs a profile (seconds)");
    for (label, timers) in [
        (
            "keepalive 500 ms, deadtime 2 s, deadping 2 s (heartbeat lab)",
            TIMERS_HEARTBEAT,
        ),
        (
            "keepalive 100 ms, deadtime 500 ms, deadping 500 ms (fast)",
            TIMERS_FAST,
        ),
    ] {
        let mut samples: Vec<[f64; 5]> = Vec::new();
        for _ in 0..runs {
            samples.push(one_run(timers));
        }
        println!("\n{label}");
        println!("{:<44} {:>7} {:>7} {:>7}", "", "min", "median", "max");
        for (i, name) in names.iter().enumerate() {
            let mut v: Vec<f64> = samples.iter().map(|s| s[i]).collect();
            v.sort_by(f64::total_cmp);
            println!(
                "{name:<44} {:>7.2} {:>7.2} {:>7.2}",
                v[0],
                v[v.len() / 2],
                v[v.len() - 1]
            );
        }
    }
}
