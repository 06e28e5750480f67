//! Two directors running the real `lvsd` binary with heartbeat's config
//! files (ha.cf, haresources, authkeys), each in a network namespace of
//! its own (hostnames d1 and d2 through a UTS namespace), and a ping node
//! in a third, all on a bridge in a fourth: cold start, the active
//! director killed (-9), its return with auto_failback, an orderly stop;
//! the active director losing its ping node (ipfail's rule) and the
//! repair, three times; the directors losing each other (split brain) and
//! finding each other again; the active director's link going down; the
//! bcast and mcast media. Gratuitous ARPs are counted on the bridge with
//! tcpdump. Needs root, iproute2 and tcpdump; nothing leaves the
//! namespaces.
#![allow(clippy::unwrap_used)] // test setup

use std::time::Duration;

#[path = "support/failover_lab.rs"]
mod lab;

use lab::{Lab, Medium, TIMERS_HEARTBEAT, cut, sigterm};

#[test]
fn two_directors_cold_start_kill_failback_and_stop() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    lab.capture_arp();
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    let mut report = Vec::new();

    // Cold start: the preferred node (d1, first in haresources) takes it.
    let t = lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    lab.wait_garps(1, 5, "cold start");
    report.push(format!("cold start -> VIP on d1: {:.2} s", t.as_secs_f64()));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        [lab.has_vip(1), lab.has_vip(2)],
        [true, false],
        "it stays put"
    );

    // kill -9 the active lvsd: its address stays behind (as with
    // heartbeat's master killed), and d2 takes the VIP after the deadtime.
    d1.kill().unwrap();
    let _ = d1.wait();
    let t = lab.wait_vip([true, true], Duration::from_secs(5), "d1 killed");
    lab.wait_garps(2, 5, "d1 killed");
    report.push(format!(
        "d1 killed -> VIP up on d2: {:.2} s (deadtime 2 s)",
        t.as_secs_f64()
    ));
    assert!(lab.log(2).contains("the peer is dead"), "{}", lab.log(2));

    // d1 comes back: auto_failback on hands the VIP back to it.
    std::thread::sleep(Duration::from_secs(3));
    let before = lab.garps_from(1);
    let mut d1 = lab.start(1);
    let t = lab.wait_vip([true, false], Duration::from_secs(10), "d1 back");
    lab.wait_garps(1, before + 5, "d1 back");
    report.push(format!(
        "d1 restarted -> VIP back on d1 only: {:.2} s",
        t.as_secs_f64()
    ));

    // An orderly stop of d1: it releases the VIP and d2 takes it.
    std::thread::sleep(Duration::from_secs(3));
    let before = lab.garps_from(2);
    sigterm(&mut d1);
    let t = lab.wait_vip([false, true], Duration::from_secs(1), "d1 stopped");
    lab.wait_garps(2, before + 5, "d1 stopped");
    report.push(format!("d1 stopped -> VIP on d2: {:.2} s", t.as_secs_f64()));
    sigterm(&mut d2);
    lab.wait_vip([false, false], Duration::from_secs(5), "both stopped");
    assert!(!lab.log(2).contains("ERROR"), "{}", lab.log(2));
    println!("failover lab:\n  {}", report.join("\n  "));
}

#[test]
fn ping_node_loss_moves_the_vip_and_the_repair_brings_it_back_every_time() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    lab.capture_arp();
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    // Both reach the ping nodes before anything is cut.
    std::thread::sleep(Duration::from_secs(3));
    let mut report = Vec::new();
    for round in 1..=3 {
        // Both ping nodes stop answering d1 (its replies are dropped).
        let garps = lab.garps_from(2);
        lab.cut_pings("10.197.0.1", true);
        let t = lab.wait_vip(
            [false, true],
            Duration::from_secs(8),
            "d1 lost its ping node",
        );
        lab.wait_garps(2, garps + 5, "d1 lost its ping node");
        report.push(format!(
            "round {round}: ping loss on d1 -> VIP on d2: {:.2} s",
            t.as_secs_f64()
        ));
        // (let d2's repeated burst, 2 s after the first, pass)
        std::thread::sleep(Duration::from_millis(2500));
        let garps = lab.garps_from(1);
        // The path comes back one ping node at a time (d1 counts 0, 1,
        // then 2): the shape that makes heartbeat's ipfail miss the
        // failback 4 times in 5.
        cut(&lab.ns[2], "10.197.0.1", false);
        std::thread::sleep(Duration::from_millis(500));
        cut(&lab.ns[4], "10.197.0.1", false);
        let t = lab.wait_vip([true, false], Duration::from_secs(8), "ping path repaired");
        lab.wait_garps(1, garps + 5, "ping path repaired");
        report.push(format!(
            "round {round}: repaired -> VIP back on d1: {:.2} s",
            t.as_secs_f64()
        ));
    }
    sigterm(&mut d1);
    sigterm(&mut d2);
    println!("ipfail lab:\n  {}", report.join("\n  "));
}

/// auto_failback off: the ping loss moves the VIP, and the repair leaves
/// it where it is.
#[test]
fn with_auto_failback_off_the_repair_leaves_the_vip_where_it_is() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    lab.auto_failback("off");
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    std::thread::sleep(Duration::from_secs(3));
    lab.cut_pings("10.197.0.1", true);
    lab.wait_vip(
        [false, true],
        Duration::from_secs(8),
        "d1 lost its ping nodes",
    );
    lab.cut_pings("10.197.0.1", false);
    // Well past deadping + 2 x keepalive: still on d2.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        [lab.has_vip(1), lab.has_vip(2)],
        [false, true],
        "auto_failback off: the VIP stays on d2\n{}",
        lab.log(1)
    );
    sigterm(&mut d1);
    sigterm(&mut d2);
}

#[test]
fn split_brain_is_logged_and_healed() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.capture_arp();
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    lab.wait_garps(1, 5, "cold start");
    // The directors lose each other; both still see the ping node: their
    // bridge ports are isolated from each other (not from the ping node's).
    lab.isolate_directors(true);
    let t = lab.wait_vip([true, true], Duration::from_secs(5), "split");
    lab.wait_garps(2, 5, "split: d2 announces the VIP");
    // Let both bursts (and their repeats 2 s later) end before healing.
    std::thread::sleep(Duration::from_secs(3));
    let before = lab.garps_from(1);
    lab.isolate_directors(false);
    let healed = lab.wait_vip([true, false], Duration::from_secs(5), "healed");
    // d1 kept the VIP and announces it again, d2's ARPs having moved the
    // neighbours to d2.
    lab.wait_garps(1, before + 5, "healed: d1 announces the VIP again");
    assert!(
        lab.log(2).contains("split brain") || lab.log(1).contains("split brain"),
        "nobody said split brain:\n{}\n{}",
        lab.log(1),
        lab.log(2)
    );
    println!(
        "split brain lab: both held the VIP {:.2} s after the cut; healed {:.2} s after the repair",
        t.as_secs_f64(),
        healed.as_secs_f64()
    );
    sigterm(&mut d1);
    sigterm(&mut d2);
}

#[test]
fn standby_takeover_and_status_through_the_control_socket() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    // Wait for the control socket.
    let start = std::time::Instant::now();
    while lab.lvsd(1, &["status"]).0 != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no control socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out) = lab.lvsd(1, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("node: d1 (peer d2)") && out.contains("holds: local"),
        "{out}"
    );
    assert!(out.contains("peer: alive, last heard"), "{out}");
    let (code, out) = lab.lvsd(1, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failover"]["holds"], "local", "{out}");
    assert_eq!(v["virtuals"], serde_json::json!([]), "{out}");

    let (code, out) = lab.lvsd(1, &["standby"]);
    assert_eq!(code, 0, "{out}");
    let t = lab.wait_vip([false, true], Duration::from_secs(3), "standby");
    let (_, out) = lab.lvsd(1, &["status"]);
    assert!(
        out.contains("holds: none") && out.contains("standby"),
        "{out}"
    );

    let (code, out) = lab.lvsd(1, &["takeover"]);
    assert_eq!(code, 0, "{out}");
    let t2 = lab.wait_vip([true, false], Duration::from_secs(3), "takeover");
    println!(
        "control: standby moved the VIP in {:.2} s, takeover in {:.2} s",
        t.as_secs_f64(),
        t2.as_secs_f64()
    );
    sigterm(&mut d1);
    // Not running: LSB exit code 3.
    let (code, out) = lab.lvsd(1, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("lvsd is not running"), "{out}");
    sigterm(&mut d2);
}

/// The active director's link goes down: the standby takes the VIP (the
/// down director keeps its address on the dead link, harmlessly); the
/// link comes back: a split brain heals, d1 keeps the VIP (auto_failback
/// on) and announces it again.
#[test]
fn the_active_directors_link_goes_down_and_comes_back() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    lab.capture_arp();
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    lab.wait_garps(1, 5, "cold start");
    std::thread::sleep(Duration::from_secs(3));
    lab.link(1, false);
    let t = lab.wait_vip([true, true], Duration::from_secs(5), "d1's link down");
    lab.wait_garps(2, 5, "d2 took the VIP");
    std::thread::sleep(Duration::from_secs(3));
    let before = lab.garps_from(1);
    lab.link(1, true);
    let healed = lab.wait_vip([true, false], Duration::from_secs(5), "d1's link up");
    lab.wait_garps(1, before + 5, "d1 announces the VIP again");
    println!(
        "link lab: d1's link down -> VIP up on d2 {:.2} s; link up -> VIP on d1 only {:.2} s",
        t.as_secs_f64(),
        healed.as_secs_f64()
    );
    sigterm(&mut d1);
    sigterm(&mut d2);
}

/// The same cluster over heartbeat's other media: `bcast lan0` and
/// `mcast lan0 225.0.0.197 694 1 0`. Cold start, then kill -9 of d1. The
/// mcast lab writes the VIP bare in haresources (`d1 10.197.0.100`): its
/// prefix and interface come from the connected route, as IPaddr2's.
#[test]
fn broadcast_and_multicast_media() {
    for medium in [Medium::Bcast, Medium::Mcast] {
        let lab = Lab::with_medium(TIMERS_HEARTBEAT, medium);
        if medium == Medium::Mcast {
            lab.haresources("d1 10.197.0.100\n");
        }
        lab.capture_arp();
        let mut d1 = lab.start(1);
        let mut d2 = lab.start(2);
        let what = format!("{medium:?}: cold start");
        lab.wait_vip([true, false], Duration::from_secs(10), &what);
        lab.wait_garps(1, 5, &what);
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            lab.log(1).contains("heard the peer") && lab.log(2).contains("heard the peer"),
            "{medium:?}: the directors never heard each other\n{}\n{}",
            lab.log(1),
            lab.log(2)
        );
        d1.kill().unwrap();
        let _ = d1.wait();
        let t = lab.wait_vip(
            [true, true],
            Duration::from_secs(5),
            &format!("{medium:?}: d1 killed"),
        );
        lab.wait_garps(2, 5, &format!("{medium:?}: d2 took the VIP"));
        println!(
            "{medium:?}: d1 killed -> VIP up on d2 {:.2} s",
            t.as_secs_f64()
        );
        sigterm(&mut d2);
    }
}

/// The clock steps back a day, then d1 restarts: its generation comes
/// from disk, not the clock, so d2 takes its messages (they are no replay)
/// and auto_failback gives the VIP back. With the generation from the
/// clock, d2 dropped every message of d1 for a day.
#[test]
fn a_clock_stepped_back_before_a_restart_locks_nobody_out() {
    let faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(faketime).exists(),
        "{faketime} is missing: apt-get install faketime (scripts/test-all does)"
    );
    let lab = Lab::new(TIMERS_HEARTBEAT);
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    sigterm(&mut d1);
    lab.wait_vip([false, true], Duration::from_secs(3), "d1 stopped");
    let mut d1 = lab.start_with_env(
        1,
        &[
            ("LD_PRELOAD", faketime),
            ("FAKETIME", "-1d"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    lab.wait_vip(
        [true, false],
        Duration::from_secs(10),
        "d1 back with its clock a day behind",
    );
    assert!(!lab.log(2).contains("replayed"), "{}", lab.log(2));
    sigterm(&mut d1);
    sigterm(&mut d2);
}

/// 5,000 forged datagrams from a ping node's address to d1's heartbeat
/// port: d1 logs the first at once and then one summary for the window
/// (it wrote one WARN line per datagram), counts them in /metrics' terms,
/// and keeps the VIP.
#[test]
fn a_datagram_flood_is_logged_once_then_summed_up() {
    let lab = Lab::new(TIMERS_HEARTBEAT);
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    let flood = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(5000):\n    s.sendto(b'forged ' + str(i).encode(), ('10.197.0.1', 694))\n";
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ns[2], "python3", "-c", flood])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The window's summary comes within 10 s (and a keepalive).
    let start = std::time::Instant::now();
    while !lab
        .log(1)
        .contains("datagrams from 10.197.0.21 in the last")
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no summary:\n{}",
            lab.log(1)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = lab.log(1);
    let lines = log.lines().filter(|l| l.contains("dropped")).count();
    assert!(lines <= 3, "{lines} lines about drops:\n{log}");
    assert!(
        log.contains("dropped a datagram from 10.197.0.21: malformed"),
        "{log}"
    );
    // Then 100 senders (addresses of the ping node's), 20 datagrams each:
    // at most 8 lines told at once and 8 summary lines a window (it wrote
    // a line for each sender, and a summary each, every 10 s).
    let before = lab.log(1).lines().count();
    let mut senders = String::from(
        "import socket
for h in range(100, 200):
",
    );
    senders.push_str(
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
",
    );
    senders.push_str(
        "    s.bind(('10.197.0.%d' % h, 0))
",
    );
    senders.push_str(
        "    for i in range(20):
        s.sendto(b'forged', ('10.197.0.1', 694))
",
    );
    for h in 100..200 {
        lab::ip(&[
            "-n",
            &lab.ns[2],
            "addr",
            "add",
            &format!("10.197.0.{h}/32"),
            "dev",
            "lan0",
        ]);
    }
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ns[2], "python3", "-c", &senders])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let start = std::time::Instant::now();
    while !lab.log(1).contains("more senders in the last") {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no summary of the many senders:\n{}",
            lab.log(1)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = lab.log(1);
    let lines = log
        .lines()
        .skip(before)
        .filter(|l| l.contains("dropped"))
        .count();
    assert!(lines <= 16, "{lines} lines about 100 senders:\n{log}");
    assert!(lab.has_vip(1) && !lab.has_vip(2));
    sigterm(&mut d1);
    sigterm(&mut d2);
}
