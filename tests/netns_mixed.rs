//! One cluster of a real heartbeat 3.0.6 node (Debian's package, with
//! ipfail respawned, in its own network, mount and UTS namespaces through
//! tests/servers/heartbeat) and an lvsd node, the same ha.cf, haresources
//! and authkeys on both: a director pair upgraded one node at a time. The
//! ping node is the client: it pings the VIP every 100 ms and follows the
//! gratuitous ARPs. Needs root, iproute2, tcpdump and Debian's heartbeat
//! (installed by the fixture); nothing leaves the namespaces.
#![allow(clippy::unwrap_used)] // test setup

use std::time::Duration;

#[path = "support/failover_lab.rs"]
mod lab;

use lab::{Heartbeat, Lab, TIMERS_HEARTBEAT, sigterm};

/// A director of the mixed pair.
enum Node {
    Heartbeat(Heartbeat),
    Lvsd(lab::Director),
    Down,
}

/// The pair: which node runs what.
struct Mixed {
    lab: Lab,
    nodes: [Node; 2],
    /// Whether node dN runs heartbeat (else lvsd).
    heartbeat: [bool; 2],
    report: Vec<String>,
}

impl Mixed {
    fn new(heartbeat: [bool; 2], auto_failback: &str) -> Mixed {
        let lab = Lab::new(TIMERS_HEARTBEAT);
        lab.auto_failback(auto_failback);
        lab.with_ipfail();
        lab.ping_node_accepts_garp();
        lab.capture_arp();
        Mixed {
            lab,
            nodes: [Node::Down, Node::Down],
            heartbeat,
            report: Vec::new(),
        }
    }

    fn what(&self, node: usize) -> &'static str {
        if self.heartbeat[node - 1] {
            "heartbeat"
        } else {
            "lvsd"
        }
    }

    fn start(&mut self, node: usize) {
        // A killed heartbeat's handle is left behind without its `down`
        // (which would stop the new instance of the same directory): the
        // fixture's `up` cleans up what the crash left.
        if let Node::Heartbeat(old) = std::mem::replace(&mut self.nodes[node - 1], Node::Down) {
            std::mem::forget(old);
        }
        self.nodes[node - 1] = if self.heartbeat[node - 1] {
            Node::Heartbeat(self.lab.start_heartbeat(node))
        } else {
            Node::Lvsd(self.lab.start(node))
        };
    }

    fn kill(&mut self, node: usize) {
        match std::mem::replace(&mut self.nodes[node - 1], Node::Down) {
            Node::Heartbeat(h) => {
                h.kill();
                // The fixture's down cleans up what the crash left (its
                // ipfail, the holder) when the handle goes.
                self.nodes[node - 1] = Node::Heartbeat(h);
            }
            Node::Lvsd(mut c) => {
                c.kill().unwrap();
                let _ = c.wait();
            }
            Node::Down => {}
        }
    }

    /// A power cut: every process of the node killed at once and its link
    /// down (the VIP it held stays configured on the dead node).
    fn crash(&mut self, node: usize) {
        match &self.nodes[node - 1] {
            Node::Heartbeat(h) => h.crash(),
            _ => self.kill(node),
        }
        self.lab.link(node, false);
    }

    fn stop(&mut self, node: usize) {
        match std::mem::replace(&mut self.nodes[node - 1], Node::Down) {
            Node::Heartbeat(h) => h.stop(),
            Node::Lvsd(mut c) => sigterm(&mut c),
            Node::Down => {}
        }
    }

    /// hb_standby on a heartbeat node, `lvsd standby` on an lvsd one.
    fn standby(&self, node: usize) {
        match &self.nodes[node - 1] {
            Node::Heartbeat(h) => {
                let (code, out) = self.lab.heartbeat_exec(h, &["hb_standby", "all"]);
                assert_eq!(code, 0, "hb_standby: {out}");
            }
            Node::Lvsd(_) => {
                let (code, out) = self.lab.lvsd(node, &["standby"]);
                assert_eq!(code, 0, "lvsd standby: {out}");
            }
            Node::Down => panic!("d{node} is down"),
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for node in 1..=2 {
            let log = match &self.nodes[node - 1] {
                Node::Heartbeat(h) => h.log(),
                _ => self.lab.log(node),
            };
            s.push_str(&format!("--- d{node} ({}):\n{log}\n", self.what(node)));
        }
        s
    }

    /// Waits for the VIP to be where `want` says; the ping node must then
    /// reach it at the holder's MAC. Records the time under `what`.
    fn expect(&mut self, want: [bool; 2], timeout: Duration, what: &str) {
        let t = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.lab.wait_vip(want, timeout, what)
        })) {
            Ok(t) => t,
            Err(_) => panic!("{what}: the VIP is not where wanted\n{}", self.logs()),
        };
        self.report
            .push(format!("{what}: {:.2} s", t.as_secs_f64()));
    }

    /// The VIP stays where it is for `d`.
    fn stays(&mut self, want: [bool; 2], d: Duration, what: &str) {
        let start = std::time::Instant::now();
        while start.elapsed() < d {
            let now = [self.lab.has_vip(1), self.lab.has_vip(2)];
            assert_eq!(now, want, "{what}: the VIP moved\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.report
            .push(format!("{what}: stayed {:.0} s", d.as_secs_f64()));
    }
}

impl Drop for Mixed {
    /// The nodes go before the lab (fields drop in order, `lab` first):
    /// a heartbeat node's `down` needs its directory, which the lab's
    /// temporary directory holds. A failed test left heartbeat running.
    fn drop(&mut self) {
        for node in 1..=2 {
            match std::mem::replace(&mut self.nodes[node - 1], Node::Down) {
                Node::Lvsd(mut c) => {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                Node::Heartbeat(h) => drop(h),
                Node::Down => {}
            }
        }
    }
}

impl Mixed {
    /// Starts both: the lvsd node first (it does not wait), then the
    /// heartbeat node (its fixture returns once heartbeat runs).
    fn start_both(&mut self) {
        for node in [1, 2] {
            if !self.heartbeat[node - 1] {
                self.start(node);
            }
        }
        for node in [1, 2] {
            if self.heartbeat[node - 1] {
                self.start(node);
            }
        }
    }

    /// Waits until every heartbeat node's resources are out of transition
    /// (`cl_status rscstatus`): heartbeat ignores hb_standby before that
    /// (for up to 10 s after a start, its RQSTDELAY).
    fn wait_stable(&mut self) {
        let start = std::time::Instant::now();
        for node in 1..=2 {
            if let Node::Heartbeat(h) = &self.nodes[node - 1] {
                loop {
                    let (_, out) = self.lab.heartbeat_exec(h, &["cl_status", "rscstatus"]);
                    if !out.contains("transition") {
                        break;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "d{node}'s resources stay in transition\n{}",
                        self.logs()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        let waited = start.elapsed().as_secs_f64();
        if waited > 0.5 {
            self.report.push(format!(
                "(heartbeat's resources in transition for {waited:.1} s more)"
            ));
        }
    }

    /// The VIP moves to `node` only (within `timeout`), and the client
    /// reaches it there.
    fn moves_to(&mut self, node: usize, timeout: Duration, what: &str) {
        self.expect([node == 1, node == 2], timeout, what);
        self.client_reaches(node, what);
    }

    /// Both start; the VIP must come up on d1 only and reach the client.
    fn cold_start(&mut self) {
        let t0 = std::time::Instant::now();
        self.start_both();
        self.lab
            .wait_vip([true, false], Duration::from_secs(30), "cold start of both");
        self.report.push(format!(
            "cold start of both -> VIP on d1: {:.2} s",
            t0.elapsed().as_secs_f64()
        ));
        self.client_reaches(1, "cold start");
    }

    /// d1 (holding the VIP) is killed: d2 must take it over (d1's copy
    /// stays on the dead node). Then d1 comes back as after a reboot: the
    /// address the killed process left is gone (heartbeat's IPaddr2 would
    /// find it "running" and send no ARP).
    fn kill_and_restart_d1(&mut self) {
        let w1 = self.what(1);
        self.kill(1);
        self.expect(
            [true, true],
            Duration::from_secs(10),
            &format!("d1 ({w1}) killed -> VIP up on d2 (d1's copy stays on the dead node)"),
        );
        self.client_reaches(2, "d1 killed");
        self.reboot_cleanup(1);
        self.start(1);
    }

    /// What a reboot clears: the VIP a killed director left on its link.
    fn reboot_cleanup(&self, node: usize) {
        let _ = std::process::Command::new("ip")
            .args([
                "-n",
                &self.lab.ns[node - 1],
                "addr",
                "del",
                lab::VIP,
                "dev",
                "lan0",
            ])
            .status();
    }

    /// The ping node (the client) reaches the VIP at the MAC of `node`.
    fn client_reaches(&mut self, node: usize, what: &str) {
        let mac = self.lab.mac(node);
        let start = std::time::Instant::now();
        loop {
            let ok = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.lab.ns[2],
                    "ping",
                    "-c",
                    "1",
                    "-W",
                    "1",
                    "10.197.0.100",
                ])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
                .success();
            if ok && self.lab.vip_mac_at_ping_node().as_deref() == Some(mac.as_str()) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{what}: the client does not reach the VIP at d{node} ({mac}): ping {ok}, its ARP entry {:?}; gratuitous ARPs seen from d1 {}, d2 {}\n{}",
                self.lab.vip_mac_at_ping_node(),
                self.lab.garps_from(1),
                self.lab.garps_from(2),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The cases of a mixed pair with auto_failback on, as the issue lists
/// them; `heartbeat` says which node runs heartbeat.
fn mixed_pair(heartbeat: [bool; 2]) {
    let mut m = Mixed::new(heartbeat, "on");
    let label = format!("d1 {} / d2 {}", m.what(1), m.what(2));
    let (w1, w2) = (m.what(1), m.what(2));
    let settle = || std::thread::sleep(Duration::from_secs(3));

    m.cold_start();
    m.stays([true, false], Duration::from_secs(3), "both up: the VIP");
    m.wait_stable();
    // Manual hand-overs both ways.
    m.standby(1);
    m.moves_to(
        2,
        Duration::from_secs(10),
        &format!("standby on d1 ({w1}) -> VIP on d2"),
    );
    settle();
    m.wait_stable();
    m.standby(2);
    m.moves_to(
        1,
        Duration::from_secs(10),
        &format!("standby on d2 ({w2}) -> VIP on d1"),
    );
    settle();
    // Ping loss on the holder, then on the other.
    m.lab.cut_pings("10.197.0.1", true);
    m.moves_to(
        2,
        Duration::from_secs(15),
        &format!("d1 ({w1}) loses its ping nodes -> VIP on d2"),
    );
    m.lab.cut_pings("10.197.0.1", false);
    if heartbeat == [true, true] {
        // Two heartbeat nodes: ipfail's failback race (both ping nodes
        // come back, d1's ipfail reports twice, d2 aborts its own giveup).
        // Recorded, not asserted; a standby puts the VIP back on d1.
        let back = (0..150).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            m.lab.has_vip(1) && !m.lab.has_vip(2)
        });
        if back {
            m.report
                .push("d1's ping paths repaired -> VIP back on d1 (within 15 s)".to_owned());
        } else {
            m.report.push(
                "d1's ping paths repaired -> no failback within 15 s (ipfail's race)".to_owned(),
            );
            m.wait_stable();
            m.standby(2);
            m.moves_to(1, Duration::from_secs(10), "(standby on d2 to go on)");
        }
    } else {
        m.moves_to(
            1,
            Duration::from_secs(15),
            "d1's ping paths repaired -> VIP back on d1",
        );
    }
    settle();
    m.lab.cut_pings("10.197.0.2", true);
    m.stays(
        [true, false],
        Duration::from_secs(5),
        &format!("d2 ({w2}) loses its ping nodes"),
    );
    m.lab.cut_pings("10.197.0.2", false);
    settle();
    // Each side killed in turn.
    m.kill(2);
    m.stays(
        [true, false],
        Duration::from_secs(4),
        &format!("d2 ({w2}) killed"),
    );
    m.start(2);
    settle();
    m.kill_and_restart_d1();
    if heartbeat == [true, true] {
        // Two heartbeat nodes: recorded, not asserted. When d1 dies inside
        // the second its peer's ipfail waits to give up "foreign", heartbeat
        // starts a standby nobody answers and then ignores d1's hand-back
        // for 10 s, sometimes for good (seen once in CI under load).
        let back = (0..300).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            m.lab.has_vip(1) && !m.lab.has_vip(2)
        });
        m.report.push(format!(
            "d1 ({w1}) restarted -> {}",
            if back {
                "VIP back on d1 (within 30 s)"
            } else {
                "VIP not back on d1 within 30 s (heartbeat's standby race)"
            }
        ));
    } else {
        m.moves_to(
            1,
            Duration::from_secs(30),
            &format!("d1 ({w1}) restarted -> VIP back on d1 only"),
        );
    }
    println!(
        "mixed lab, {label}, auto_failback on:\n  {}",
        m.report.join("\n  ")
    );
    m.stop(2);
    m.stop(1);
}

/// auto_failback off: a director that comes back does not take its VIP
/// back; a standby on the holder hands it over.
fn mixed_pair_auto_failback_off(heartbeat: [bool; 2], authkeys: Option<&str>) {
    let mut m = Mixed::new(heartbeat, "off");
    if let Some(a) = authkeys {
        m.lab.authkeys(a);
    }
    let label = format!(
        "d1 {} / d2 {}, auto_failback off{}",
        m.what(1),
        m.what(2),
        authkeys.map_or(String::new(), |a| format!(
            ", authkeys `{}`",
            a.lines().nth(1).unwrap_or("")
        ))
    );
    let (w1, w2) = (m.what(1), m.what(2));
    m.cold_start();
    std::thread::sleep(Duration::from_secs(3));
    m.kill_and_restart_d1();
    m.stays(
        [false, true],
        Duration::from_secs(6),
        &format!("d1 ({w1}) restarted: the VIP"),
    );
    m.wait_stable();
    m.standby(2);
    m.moves_to(
        1,
        Duration::from_secs(10),
        &format!("standby on d2 ({w2}) -> VIP on d1"),
    );
    println!("mixed lab, {label}:\n  {}", m.report.join("\n  "));
    m.stop(2);
    m.stop(1);
}

/// Restarts and crashes of a heartbeat d1 beside an lvsd d2, then d1 loses
/// its ping nodes: every hand-over must leave heartbeat stable (a
/// `resource isstable=1` from the peer after each one), else ipfail's
/// giveup() waits for it forever and the VIP stays on the node that
/// cannot reach its clients.
fn restarts_then_ping_loss(heartbeat: [bool; 2]) {
    let mut m = Mixed::new(heartbeat, "on");
    let label = format!("d1 {} / d2 {}", m.what(1), m.what(2));
    let w1 = m.what(1);
    m.cold_start();
    m.wait_stable();
    let mut last_start = std::time::Instant::now();
    for round in 1..=3 {
        m.kill_and_restart_d1();
        last_start = std::time::Instant::now();
        m.moves_to(
            1,
            Duration::from_secs(30),
            &format!("kill {round}: d1 ({w1}) restarted -> VIP back on d1"),
        );
    }
    for round in 1..=3 {
        m.crash(1);
        m.expect(
            [true, true],
            Duration::from_secs(10),
            &format!(
                "crash {round}: d1 ({w1}) down -> VIP up on d2 (d1's copy stays on the dead node)"
            ),
        );
        m.client_reaches(2, "d1 crashed");
        // The reboot: the address is gone, the link comes back, then the
        // director starts.
        m.reboot_cleanup(1);
        m.lab.link(1, true);
        m.start(1);
        last_start = std::time::Instant::now();
        m.moves_to(
            1,
            Duration::from_secs(30),
            &format!("crash {round}: d1 ({w1}) rebooted -> VIP back on d1"),
        );
    }
    // About 14 s after the last start, as the reproduction.
    let wait = Duration::from_secs(14).saturating_sub(last_start.elapsed());
    std::thread::sleep(wait);
    m.lab.cut_pings("10.197.0.1", true);
    m.moves_to(
        2,
        Duration::from_secs(15),
        &format!("then d1 ({w1}) loses its ping nodes -> VIP on d2"),
    );
    m.lab.cut_pings("10.197.0.1", false);
    m.moves_to(
        1,
        Duration::from_secs(20),
        "d1's ping paths repaired -> VIP back on d1",
    );
    println!(
        "mixed lab, {label}, restarts and crashes then ping loss:\n  {}",
        m.report.join("\n  ")
    );
    if std::env::var_os("LVSD_LAB_LOGS").is_some() {
        println!("{}", m.logs());
    }
    m.stop(2);
    m.stop(1);
}

#[test]
fn heartbeat_d1_lvsd_d2_restarts_crashes_then_ping_loss() {
    restarts_then_ping_loss([true, false]);
}

#[test]
fn heartbeat_d1_lvsd_d2() {
    mixed_pair([true, false]);
}

#[test]
fn lvsd_d1_heartbeat_d2() {
    mixed_pair([false, true]);
}

#[test]
fn auto_failback_off_heartbeat_d1_lvsd_d2_md5() {
    mixed_pair_auto_failback_off([true, false], Some("auth 3\n3 md5 mixed-lab\n"));
}

#[test]
fn auto_failback_off_lvsd_d1_heartbeat_d2_crc() {
    mixed_pair_auto_failback_off([false, true], Some("auth 2\n2 crc\n"));
}

/// The same cases with two heartbeat nodes and with two lvsd nodes, for
/// the comparison table.
#[test]
fn two_heartbeat_nodes_for_comparison() {
    mixed_pair([true, true]);
}

#[test]
fn two_lvsd_nodes_for_comparison() {
    mixed_pair([false, false]);
}
