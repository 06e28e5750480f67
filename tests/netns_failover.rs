//! Two directors running the real `lvsd` binary with heartbeat's config
//! files (ha.cf, haresources, authkeys), each in a network namespace of
//! its own (hostnames d1 and d2 through a UTS namespace), joined by a veth
//! pair: cold start, the active director killed (-9), its return with
//! auto_failback, an orderly stop. Needs root and iproute2; nothing leaves
//! the namespaces.
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
    ns: [String; 2],
    dir: tempfile::TempDir,
}

const VIP: &str = "10.197.0.100/24";

impl Lab {
    fn new() -> Lab {
        let id = std::process::id();
        let ns = [format!("lvsd-f1-{id}"), format!("lvsd-f2-{id}")];
        for n in &ns {
            ip(&["netns", "add", n]);
        }
        ip(&[
            "link", "add", "lan0", "netns", &ns[0], "type", "veth", "peer", "name", "lan0",
            "netns", &ns[1],
        ]);
        for (i, n) in ns.iter().enumerate() {
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("10.197.0.{}/24", i + 1),
                "dev",
                "lan0",
            ]);
            ip(&["-n", n, "link", "set", "lan0", "up"]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        let dir = tempfile::tempdir().unwrap();
        for (i, peer) in [(1, "10.197.0.2"), (2, "10.197.0.1")] {
            let d = dir.path().join(format!("d{i}"));
            std::fs::create_dir(&d).unwrap();
            std::fs::write(
                d.join("ha.cf"),
                format!(
                    "keepalive 500ms\ndeadtime 2\nwarntime 1\ninitdead 3\nudpport 694\nucast lan0 {peer}\nauto_failback on\nnode d1\nnode d2\n"
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
