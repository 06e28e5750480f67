//! Ping checks that fail and recover, IPv4 and IPv6, without touching the
//! host's network: two network namespaces joined by a veth pair; lvsd runs
//! (dry run) in one, the "real" is the other, which the test makes ignore
//! and then answer echo requests. Needs root and iproute2.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Lab {
    director: String,
    real: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("this test needs iproute2's `ip`: {e}"));
    assert!(
        out.status.success(),
        "`ip {}` failed (this test needs root for network namespaces): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    fn new() -> Lab {
        // One lab per test, tests in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let lab = Lab {
            director: format!("lvsd-d{id}"),
            real: format!("lvsd-r{id}"),
        };
        let (d, r) = (lab.director.as_str(), lab.real.as_str());
        ip(&["netns", "add", d]);
        ip(&["netns", "add", r]);
        ip(&[
            "-n", d, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", r,
        ]);
        ip(&["-n", d, "addr", "add", "10.199.0.1/30", "dev", "veth0"]);
        ip(&["-n", r, "addr", "add", "10.199.0.2/30", "dev", "veth1"]);
        ip(&[
            "-n",
            d,
            "addr",
            "add",
            "fd00:199::1/64",
            "dev",
            "veth0",
            "nodad",
        ]);
        ip(&[
            "-n",
            r,
            "addr",
            "add",
            "fd00:199::2/64",
            "dev",
            "veth1",
            "nodad",
        ]);
        for (ns, dev) in [(d, "veth0"), (r, "veth1")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    /// Makes the real namespace answer echo requests, or ignore them.
    fn echo(&self, answer: bool) {
        let v = if answer { "0" } else { "1" };
        for key in [
            "net.ipv4.icmp_echo_ignore_all",
            "net.ipv6.icmp.echo_ignore_all",
        ] {
            ip(&[
                "netns",
                "exec",
                &self.real,
                "sysctl",
                "-q",
                "-w",
                &format!("{key}={v}"),
            ]);
        }
    }
}

impl Lab {
    /// A dry-run lvsd on `cf` in the director namespace, its files in
    /// `dir`: the child, its ops log and its log.
    fn run(&self, dir: &std::path::Path, cf: &std::path::Path) -> (Kill, PathBuf, PathBuf) {
        let (ops, log) = (dir.join("ops.jsonl"), dir.join("lvsd.log"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.director,
                env!("CARGO_BIN_EXE_lvsd"),
                "run",
                "--dry-run",
                "--ops-log",
            ])
            .arg(&ops)
            .arg("--control")
            .arg(dir.join("control.sock"))
            .arg(cf)
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        (Kill(child), ops, log)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.director, &self.real] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn wait_for(path: &std::path::Path, what: &str, n: usize) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(what).count() >= n {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "waited 20 s for {n}× `{what}` in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ping_checks_fail_and_recover_on_both_families() {
    let lab = Lab::new();
    lab.echo(false);
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        "checkinterval=1\nchecktimeout=1\nquiescent=yes\n\
         virtual=192.0.2.10:80\n\treal=10.199.0.2:80 gate\n\tchecktype=ping\n\n\
         virtual6=[2001:db8::10]:80\n\treal6=[fd00:199::2]:80 gate\n\tchecktype=ping\n",
    )
    .unwrap();
    let (child, ops, log) = lab.run(dir.path(), &cf);
    let mut child = child;

    // Ignored echoes: both reals stay at weight 0, and the log says why.
    let text = wait_for(&log, "is down at start", 2);
    assert!(
        text.contains("ping 10.199.0.2: no echo reply to 1 request (1s each)"),
        "{text}"
    );
    assert!(
        text.contains("ping fd00:199::2: no echo reply to 1 request (1s each)"),
        "{text}"
    );

    // Answered: both come up.
    lab.echo(true);
    let ops_text = wait_for(&ops, "\"weight\":1", 2);
    assert!(ops_text.contains("-r 10.199.0.2:80 -g -w 1"), "{ops_text}");
    assert!(
        ops_text.contains("-r [fd00:199::2]:80 -g -w 1"),
        "{ops_text}"
    );

    // Ignored again: both go back to weight 0 (failurecount 1).
    lab.echo(false);
    let ops_text = wait_for(&ops, "\"edit-dest\"", 4);
    let last: Vec<&str> = ops_text.lines().rev().take(2).collect();
    assert!(
        last.iter().all(|l| l.contains("\"weight\":0")),
        "{ops_text}"
    );

    assert!(
        Command::new("kill")
            .args(["-INT", &child.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.0.wait().unwrap();
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(status.success(), "{text}");
}

/// An on-link address nobody has: the director's own kernel answers the
/// echo request with "destination unreachable" (ARP failed), which quotes
/// the request. That is no reply from the real: it never comes up (it
/// used to flap up after each such error).
#[test]
fn an_unreachable_address_is_never_up() {
    let lab = Lab::new();
    ip(&[
        "-n",
        &lab.director,
        "addr",
        "add",
        "10.199.1.1/24",
        "dev",
        "veth0",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    std::fs::write(
        &cf,
        "checkinterval=1\nchecktimeout=1\nquiescent=yes\n\
         virtual=192.0.2.10:80\n\treal=10.199.1.254:80 gate\n\tchecktype=ping\n",
    )
    .unwrap();
    let (child, ops, log) = lab.run(dir.path(), &cf);
    let _child = child;
    wait_for(&log, "is down at start", 1);
    // ARP gives up after about 3 s; then the kernel's errors arrive.
    std::thread::sleep(std::time::Duration::from_secs(8));
    let text = std::fs::read_to_string(&log).unwrap();
    let ops_text = std::fs::read_to_string(&ops).unwrap();
    assert!(
        !ops_text.contains("\"weight\":1") && !text.contains(" up after "),
        "an address nobody has came up:\n{text}"
    );
}
