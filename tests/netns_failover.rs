//! Two directors running the real `lvsd` binary with heartbeat's config
//! files (ha.cf, haresources, authkeys), each in a network namespace of
//! its own (hostnames d1 and d2 through a UTS namespace), and a ping node
//! in a third, all on a bridge in a fourth: cold start, the active
//! director killed (-9), its return with auto_failback, an orderly stop;
//! the active director losing its ping node (ipfail's rule) and the
//! repair, three times; the directors losing each other (split brain) and
//! finding each other again. Needs root and iproute2; nothing leaves the
//! namespaces.
#![allow(clippy::unwrap_used)] // test setup

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "`ip {}`: {} (this test needs root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Lab {
    /// d1, d2, the ping node, the switch.
    ns: [String; 4],
    dir: tempfile::TempDir,
}

const VIP: &str = "10.197.0.100/24";

impl Lab {
    fn new() -> Lab {
        // Unique per lab: the tests of this file run in parallel.
        static LABS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            LABS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let ns = ["f1", "f2", "fp", "fs"].map(|n| format!("lvsd-{n}-{id}"));
        for n in &ns {
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        let sw = &ns[3];
        ip(&["-n", sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", sw, "link", "set", "br0", "up"]);
        // d1 .1, d2 .2, the ping node .21, each on lan0, ports p1..p3 on br0.
        let hosts = [
            (&ns[0], "10.197.0.1"),
            (&ns[1], "10.197.0.2"),
            (&ns[2], "10.197.0.21"),
        ];
        for (i, (n, addr)) in hosts.into_iter().enumerate() {
            let port = format!("p{}", i + 1);
            ip(&[
                "-n", sw, "link", "add", &port, "type", "veth", "peer", "name", "lan0", "netns", n,
            ]);
            ip(&["-n", sw, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", n, "addr", "add", &format!("{addr}/24"), "dev", "lan0"]);
            ip(&["-n", n, "link", "set", "lan0", "up"]);
        }
        let dir = tempfile::tempdir().unwrap();
        for (i, peer) in [(1, "10.197.0.2"), (2, "10.197.0.1")] {
            let d = dir.path().join(format!("d{i}"));
            std::fs::create_dir(&d).unwrap();
            std::fs::write(
                d.join("ha.cf"),
                format!(
                    "keepalive 500ms\ndeadtime 2\nwarntime 1\ninitdead 3\ndeadping 2\nudpport 694\nucast lan0 {peer}\nping 10.197.0.21\nauto_failback on\nnode d1\nnode d2\n"
                ),
            )
            .unwrap();
            std::fs::write(d.join("haresources"), format!("d1 IPaddr2::{VIP}/lan0\n")).unwrap();
            std::fs::write(d.join("authkeys"), "auth 1\n1 sha1 lab-secret\n").unwrap();
            std::fs::set_permissions(
                d.join("authkeys"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
        }
        Lab { ns, dir }
    }

    fn conf(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("d{node}")).join("ha.cf")
    }

    /// Starts lvsd as node `dN` (1 or 2) in its namespace.
    fn start(&self, node: usize) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("d{node}.log"))).unwrap();
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns[node - 1],
                "unshare",
                "--uts",
                "sh",
                "-c",
            ])
            .arg(format!("hostname d{node} && exec \"$0\" run \"$1\""))
            .arg(env!("CARGO_BIN_EXE_lvsd"))
            .arg(self.conf(node))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self, node: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("d{node}.log"))).unwrap_or_default()
    }

    fn has_vip(&self, node: usize) -> bool {
        ip(&["-n", &self.ns[node - 1], "addr", "show", "dev", "lan0"])
            .contains("inet 10.197.0.100/24")
    }

    /// Waits until the VIP is where `want` says ([d1, d2]); returns how long.
    fn wait_vip(&self, want: [bool; 2], timeout: Duration, what: &str) -> Duration {
        let start = Instant::now();
        loop {
            let now = [self.has_vip(1), self.has_vip(2)];
            if now == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "{what}: the VIP is on {now:?}, want {want:?}\n--- d1:\n{}\n--- d2:\n{}",
                self.log(1),
                self.log(2)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Blackholes `to` in namespace `ns` (add), or lifts it.
fn cut(ns: &str, to: &str, on: bool) {
    ip(&[
        "-n",
        ns,
        "route",
        if on { "add" } else { "del" },
        "blackhole",
        &format!("{to}/32"),
    ]);
}

fn sigterm(c: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let _ = c.wait();
}

#[test]
fn two_directors_cold_start_kill_failback_and_stop() {
    let lab = Lab::new();
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    let mut report = Vec::new();

    // Cold start: the preferred node (d1, first in haresources) takes it.
    let t = lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
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
    report.push(format!(
        "d1 killed -> VIP up on d2: {:.2} s (deadtime 2 s)",
        t.as_secs_f64()
    ));
    assert!(lab.log(2).contains("the peer is dead"), "{}", lab.log(2));

    // d1 comes back: auto_failback on hands the VIP back to it.
    let mut d1 = lab.start(1);
    let t = lab.wait_vip([true, false], Duration::from_secs(10), "d1 back");
    report.push(format!(
        "d1 restarted -> VIP back on d1 only: {:.2} s",
        t.as_secs_f64()
    ));

    // An orderly stop of d1: it releases the VIP and d2 takes it.
    sigterm(&mut d1);
    let t = lab.wait_vip([false, true], Duration::from_secs(1), "d1 stopped");
    report.push(format!("d1 stopped -> VIP on d2: {:.2} s", t.as_secs_f64()));
    sigterm(&mut d2);
    lab.wait_vip([false, false], Duration::from_secs(5), "both stopped");
    assert!(!lab.log(2).contains("ERROR"), "{}", lab.log(2));
    println!("failover lab:\n  {}", report.join("\n  "));
}

#[test]
fn ping_node_loss_moves_the_vip_and_the_repair_brings_it_back_every_time() {
    let lab = Lab::new();
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    // Both reach the ping node before anything is cut.
    std::thread::sleep(Duration::from_secs(3));
    let mut report = Vec::new();
    for round in 1..=3 {
        // The ping node stops answering d1 (its replies are dropped).
        cut(&lab.ns[2], "10.197.0.1", true);
        let t = lab.wait_vip(
            [false, true],
            Duration::from_secs(8),
            "d1 lost its ping node",
        );
        report.push(format!(
            "round {round}: ping loss on d1 -> VIP on d2: {:.2} s",
            t.as_secs_f64()
        ));
        cut(&lab.ns[2], "10.197.0.1", false);
        let t = lab.wait_vip([true, false], Duration::from_secs(8), "ping path repaired");
        report.push(format!(
            "round {round}: repaired -> VIP back on d1: {:.2} s",
            t.as_secs_f64()
        ));
    }
    sigterm(&mut d1);
    sigterm(&mut d2);
    println!("ipfail lab:\n  {}", report.join("\n  "));
}

#[test]
fn split_brain_is_logged_and_healed() {
    let lab = Lab::new();
    let mut d1 = lab.start(1);
    let mut d2 = lab.start(2);
    lab.wait_vip([true, false], Duration::from_secs(10), "cold start");
    // The directors lose each other; both still see the ping node: their
    // bridge ports are isolated from each other (not from the ping node's).
    let isolate = |on: &str| {
        for port in ["p1", "p2"] {
            ip(&[
                "-n",
                &lab.ns[3],
                "link",
                "set",
                port,
                "type",
                "bridge_slave",
                "isolated",
                on,
            ]);
        }
    };
    isolate("on");
    let t = lab.wait_vip([true, true], Duration::from_secs(5), "split");
    isolate("off");
    let healed = lab.wait_vip([true, false], Duration::from_secs(5), "healed");
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
