//! The failover lab (shared by tests/netns_failover.rs and
//! benches/failover.rs): two lvsd directors d1 and d2 (their own network
//! and UTS namespaces, heartbeat's config files), a ping node, and a
//! switch namespace with a bridge joining them. Root and iproute2 needed;
//! nothing leaves the namespaces.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // each user takes what it needs

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// heartbeat's timers as in ha.cf: the lab's default profile.
pub const TIMERS_HEARTBEAT: &str =
    "keepalive 500ms\ndeadtime 2\nwarntime 1\ninitdead 3\ndeadping 2\n";

pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "`ip {}`: {} (this test needs root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub struct Lab {
    /// d1, d2, the first ping node (also the client), the switch, the
    /// second ping node.
    pub ns: [String; 5],
    dir: tempfile::TempDir,
    /// tcpdump on the bridge, when started.
    capture: std::sync::Mutex<Option<Child>>,
}

/// How the directors talk (ha.cf's medium line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Ucast,
    Bcast,
    Mcast,
}

pub const VIP: &str = "10.197.0.100/24";

impl Lab {
    /// A lab whose ha.cf has these timer lines (ucast).
    pub fn new(timers: &str) -> Lab {
        Lab::with_medium(timers, Medium::Ucast)
    }

    /// A lab whose ha.cf has these timer lines and medium.
    pub fn with_medium(timers: &str, medium: Medium) -> Lab {
        // Unique per lab: the tests of this file run in parallel.
        static LABS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            LABS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let ns = ["f1", "f2", "fp", "fs", "fq"].map(|n| format!("lvsd-{n}-{id}"));
        for n in &ns {
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        let sw = &ns[3];
        ip(&["-n", sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", sw, "link", "set", "br0", "up"]);
        // d1 .1, d2 .2, the ping nodes .21 and .22, each on lan0, ports
        // p1..p4 on br0.
        let hosts = [
            (&ns[0], "10.197.0.1"),
            (&ns[1], "10.197.0.2"),
            (&ns[2], "10.197.0.21"),
            (&ns[4], "10.197.0.22"),
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
            let medium = match medium {
                Medium::Ucast => format!("ucast lan0 {peer}"),
                Medium::Bcast => "bcast lan0".to_owned(),
                Medium::Mcast => "mcast lan0 225.0.0.197 694 1 0".to_owned(),
            };
            std::fs::write(
                d.join("ha.cf"),
                format!(
                    "{timers}udpport 694\n{medium}\nping 10.197.0.21\nping 10.197.0.22\nauto_failback on\nnode d1\nnode d2\n"
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
        Lab {
            ns,
            dir,
            capture: std::sync::Mutex::new(None),
        }
    }

    /// Sets both directors' auto_failback (before they start).
    pub fn auto_failback(&self, value: &str) {
        for node in 1..=2 {
            let text = std::fs::read_to_string(self.conf(node)).unwrap();
            std::fs::write(
                self.conf(node),
                text.replace("auto_failback on", &format!("auto_failback {value}")),
            )
            .unwrap();
        }
    }

    /// Rewrites both directors' authkeys (before they start).
    pub fn authkeys(&self, text: &str) {
        for node in ["d1", "d2"] {
            std::fs::write(self.dir.path().join(node).join("authkeys"), text).unwrap();
        }
    }

    /// Rewrites both directors' haresources (before they start).
    pub fn haresources(&self, text: &str) {
        for node in ["d1", "d2"] {
            std::fs::write(self.dir.path().join(node).join("haresources"), text).unwrap();
        }
    }

    /// Starts tcpdump on the bridge (ARP only) and waits until it listens.
    pub fn capture_arp(&self) {
        let out = self.dir.path().join("arp.txt");
        let err = self.dir.path().join("tcpdump.err");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns[3],
                "tcpdump",
                "-i",
                "br0",
                "-l",
                "-n",
                "-e",
                "arp",
            ])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        *self.capture.lock().unwrap() = Some(child);
        let start = Instant::now();
        while !std::fs::read_to_string(&err)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "tcpdump did not start: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many gratuitous ARPs for the VIP node `dN` has sent since the
    /// capture started.
    pub fn garps_from(&self, node: usize) -> usize {
        let mac = self.mac(node);
        std::fs::read_to_string(self.dir.path().join("arp.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains(&format!("{mac} > ff:ff:ff:ff:ff:ff"))
                    && l.contains("who-has 10.197.0.100 tell 10.197.0.100")
            })
            .count()
    }

    /// Waits until node `dN` has sent at least `n` gratuitous ARPs.
    pub fn wait_garps(&self, node: usize, n: usize, what: &str) {
        let start = Instant::now();
        while self.garps_from(node) < n {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{what}: {} gratuitous ARPs from d{node} on the bridge, want {n}",
                self.garps_from(node)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Takes node `dN`'s lan0 down or up.
    pub fn link(&self, node: usize, up: bool) {
        ip(&[
            "-n",
            &self.ns[node - 1],
            "link",
            "set",
            "lan0",
            if up { "up" } else { "down" },
        ]);
    }

    pub fn conf(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("d{node}")).join("ha.cf")
    }

    /// Starts lvsd as node `dN` (1 or 2) in its namespace; killed when
    /// dropped (a failed assertion leaves no lvsd running).
    pub fn start(&self, node: usize) -> Director {
        self.start_with_env(node, &[])
    }

    /// As [`Lab::start`], with more environment (a faked clock, say).
    pub fn start_with_env(&self, node: usize, env: &[(&str, &str)]) -> Director {
        let log = std::fs::File::create(self.dir.path().join(format!("d{node}.log"))).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns[node - 1],
                "unshare",
                "--uts",
                "sh",
                "-c",
            ])
            .arg(format!(
                "hostname d{node} && exec \"$0\" run --control \"$2\" --state-dir \"$3\" \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_lvsd"))
            .arg(self.conf(node))
            .arg(self.control(node))
            .arg(self.state_dir(node))
            .env(
                "RUST_LOG",
                std::env::var("LVSD_LAB_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Director(child)
    }

    /// Node `dN`'s state directory (its heartbeat generation).
    pub fn state_dir(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("d{node}-state"))
    }

    /// Node `dN`'s control socket.
    pub fn control(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("d{node}.sock"))
    }

    /// Runs `lvsd ARGS --control <dN's socket>`; its exit code and output.
    pub fn lvsd(&self, node: usize, args: &[&str]) -> (i32, String) {
        outcome(
            Command::new(env!("CARGO_BIN_EXE_lvsd"))
                .args(args)
                .arg("--control")
                .arg(self.control(node))
                .output()
                .unwrap(),
        )
    }

    pub fn log(&self, node: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("d{node}.log"))).unwrap_or_default()
    }

    pub fn has_vip(&self, node: usize) -> bool {
        ip(&["-n", &self.ns[node - 1], "addr", "show", "dev", "lan0"])
            .contains("inet 10.197.0.100/24")
    }

    /// Waits until the VIP is where `want` says ([d1, d2]); returns how long.
    pub fn wait_vip(&self, want: [bool; 2], timeout: Duration, what: &str) -> Duration {
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
        if let Some(mut c) = self.capture.lock().map(|mut c| c.take()).unwrap_or(None) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

impl Lab {
    /// Both ping nodes stop answering `from` (a director's address), or
    /// answer again.
    pub fn cut_pings(&self, from: &str, on: bool) {
        for n in [&self.ns[2], &self.ns[4]] {
            cut(n, from, on);
        }
    }
}

/// Blackholes `to` in namespace `ns` (add), or lifts it.
pub fn cut(ns: &str, to: &str, on: bool) {
    ip(&[
        "-n",
        ns,
        "route",
        if on { "add" } else { "del" },
        "blackhole",
        &format!("{to}/32"),
    ]);
}

/// A finished command's exit code and its stdout then stderr.
pub fn outcome(out: std::process::Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A director's lvsd (`ip netns exec` execs it: the same process), killed
/// when dropped.
pub struct Director(pub Child);

impl std::ops::Deref for Director {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Director {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn sigterm(c: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let _ = c.wait();
}

impl Lab {
    /// The MAC of a node's lan0 (1, 2: directors; 3: the ping node).
    pub fn mac(&self, node: usize) -> String {
        ip(&["-n", &self.ns[node - 1], "-br", "link", "show", "lan0"])
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned()
    }

    /// The MAC the ping node has for the VIP, if any.
    pub fn vip_mac_at_ping_node(&self) -> Option<String> {
        let out = ip(&["-n", &self.ns[2], "neigh", "show", "10.197.0.100"]);
        let mut it = out.split_whitespace();
        while let Some(w) = it.next() {
            if w == "lladdr" {
                return it.next().map(str::to_owned);
            }
        }
        None
    }

    /// Lets the ping node learn neighbours from gratuitous ARP.
    pub fn ping_node_accepts_garp(&self) {
        let s = Command::new("ip")
            .args(["netns", "exec", &self.ns[2], "sh", "-c"])
            .arg("echo 1 > /proc/sys/net/ipv4/conf/all/arp_accept; echo 1 > /proc/sys/net/ipv4/conf/lan0/arp_accept")
            .status()
            .unwrap();
        assert!(s.success());
    }

    /// Isolates the directors' bridge ports from each other (both still
    /// reach the ping node), or joins them again.
    pub fn isolate_directors(&self, on: bool) {
        for port in ["p1", "p2"] {
            ip(&[
                "-n",
                &self.ns[3],
                "link",
                "set",
                port,
                "type",
                "bridge_slave",
                "isolated",
                if on { "on" } else { "off" },
            ]);
        }
    }
}

/// A real heartbeat 3.0.6 node (Debian's package, tests/servers/heartbeat)
/// as one of the lab's directors.
pub struct Heartbeat {
    /// The fixture's instance directory.
    pub dir: PathBuf,
    /// The master control process (kill -9 it for a crash).
    pub pid: u32,
    /// heartbeat's log.
    pub log: PathBuf,
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/servers/heartbeat")
}

impl Lab {
    /// Both directors' ha.cf respawn ipfail, as heartbeat sites run it
    /// (lvsd reads and ignores those lines: its arbiter is ipfail).
    pub fn with_ipfail(&self) {
        for node in 1..=2 {
            let mut text = std::fs::read_to_string(self.conf(node)).unwrap();
            text.push_str(
                "respawn hacluster /usr/libexec/heartbeat/ipfail\napiauth ipfail gid=haclient uid=hacluster\n",
            );
            std::fs::write(self.conf(node), text).unwrap();
        }
    }

    /// Starts heartbeat as director `dN` in its namespace (same ha.cf,
    /// haresources and authkeys as lvsd would read); returns once heartbeat
    /// says it runs.
    pub fn start_heartbeat(&self, node: usize) -> Heartbeat {
        let dir = self.dir.path().join(format!("hb{node}"));
        let conf = self.dir.path().join(format!("d{node}"));
        let out = Command::new(fixture())
            .arg("up")
            .arg(&dir)
            .arg(&self.ns[node - 1])
            .arg(format!("d{node}"))
            .arg(&conf)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "tests/servers/heartbeat up: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let value = |k: &str| {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {k}= in {stdout}"))
        };
        Heartbeat {
            dir,
            pid: value("PID").parse().unwrap(),
            log: PathBuf::from(value("LOG")),
        }
    }

    /// Runs a command inside heartbeat's namespaces (hb_standby...).
    pub fn heartbeat_exec(&self, hb: &Heartbeat, args: &[&str]) -> (i32, String) {
        outcome(
            Command::new(fixture())
                .arg("exec")
                .arg(&hb.dir)
                .args(args)
                .output()
                .unwrap(),
        )
    }
}

impl Heartbeat {
    /// heartbeat's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9 of the master control process (as a crash).
    pub fn kill(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
    }

    /// kill -9 of every process of the node at once (heartbeat, its
    /// children, ipfail): a power cut; nothing is released or said.
    pub fn crash(&self) {
        let s = Command::new(fixture())
            .arg("crash")
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(s.success(), "tests/servers/heartbeat crash failed");
    }

    /// An orderly stop (heartbeat gives its resources up first).
    pub fn stop(&self) {
        let s = Command::new(fixture())
            .arg("down")
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(s.success(), "tests/servers/heartbeat down failed");
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let _ = Command::new(fixture())
            .arg("down")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
