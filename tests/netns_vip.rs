//! Virtual IPs added, announced and removed through rtnetlink, in network
//! namespaces the test makes (root and iproute2 needed): the "director"
//! namespace gets the VIP; the "neighbour" namespace on the other end of
//! a veth pair (with arp_accept, so a gratuitous ARP creates its entry;
//! for IPv6 accept_untracked_na with forwarding, so an unsolicited
//! neighbour advertisement does) must learn the VIP's MAC from the
//! announcement alone.
#![allow(clippy::unwrap_used)] // test setup

use std::process::Command;
use std::time::Duration;

use lvsd::failover::vip::{Vip, Vips};

#[path = "support/failover_lab.rs"]
mod lab;

use lab::ip;

fn vip() -> Vip {
    Vip {
        addr: "10.198.0.100".parse().unwrap(),
        prefix: 24,
        interface: "veth0".into(),
    }
}

fn vip6() -> Vip {
    Vip {
        addr: "2001:db8:198::100".parse().unwrap(),
        prefix: 64,
        interface: "veth0".into(),
    }
}

/// Runs inside the director namespace, started by the test below.
#[tokio::test]
#[ignore = "runs inside a namespace the vip test makes"]
async fn vip_inside_namespace() {
    let step = std::env::var("LVSD_VIP_STEP").expect("LVSD_VIP_STEP");
    let vips = Vips::open().unwrap();
    let v = vip();
    match step.as_str() {
        "add" => {
            assert!(vips.add(&v).await.unwrap(), "added");
            assert!(
                !vips.add(&v).await.unwrap(),
                "the second add changes nothing"
            );
            assert!(vips.has(&v).await.unwrap());
            vips.announce(&v, 3, Duration::from_millis(100))
                .await
                .unwrap();
        }
        "add6" => {
            let v = vip6();
            assert!(vips.add(&v).await.unwrap(), "added");
            assert!(vips.has(&v).await.unwrap());
            vips.announce(&v, 3, Duration::from_millis(100))
                .await
                .unwrap();
            assert!(vips.remove(&v).await.unwrap(), "removed");
        }
        "remove" => {
            assert!(vips.remove(&v).await.unwrap(), "removed");
            assert!(
                !vips.remove(&v).await.unwrap(),
                "the second remove changes nothing"
            );
            assert!(!vips.has(&v).await.unwrap());
        }
        "errors" => {
            let bad = Vip {
                interface: "nosuch0".into(),
                ..vip()
            };
            assert_eq!(
                vips.add(&bad).await.unwrap_err().to_string(),
                "no interface nosuch0"
            );
        }
        other => panic!("unknown step {other}"),
    }
}

#[test]
fn a_vip_is_added_announced_and_removed() {
    let id = std::process::id();
    let (d, n) = (format!("lvsd-vd{id}"), format!("lvsd-vn{id}"));
    ip(&["netns", "add", &d]);
    ip(&["netns", "add", &n]);
    let run = |step: &str| {
        let status = Command::new("ip")
            .args(["netns", "exec", &d])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "vip_inside_namespace",
                "--nocapture",
                "--quiet",
            ])
            .env("LVSD_VIP_STEP", step)
            // Its "test result" lines are steps of this test, not tests;
            // a failure's panic message goes to stderr (--nocapture).
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "step {step} failed inside the namespace");
    };
    let result = std::panic::catch_unwind(|| {
        ip(&[
            "-n", &d, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", &n,
        ]);
        ip(&["-n", &d, "addr", "add", "10.198.0.1/24", "dev", "veth0"]);
        ip(&["-n", &n, "addr", "add", "10.198.0.2/24", "dev", "veth1"]);
        ip(&["-n", &d, "link", "set", "veth0", "up"]);
        ip(&["-n", &n, "link", "set", "veth1", "up"]);
        let sysctl = Command::new("ip")
            .args(["netns", "exec", &n, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/all/arp_accept; echo 1 > /proc/sys/net/ipv4/conf/veth1/arp_accept; \
                echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; echo 1 > /proc/sys/net/ipv6/conf/veth1/accept_untracked_na"])
            .status()
            .unwrap();
        assert!(sysctl.success());
        let mac = ip(&["-n", &d, "-br", "link", "show", "veth0"])
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned();
        run("add");
        assert!(ip(&["-n", &d, "addr", "show", "dev", "veth0"]).contains("inet 10.198.0.100/24"));
        // The neighbour learnt the VIP from the gratuitous ARP alone.
        let mut learnt = String::new();
        for _ in 0..20 {
            learnt = ip(&["-n", &n, "neigh", "show", "10.198.0.100"]);
            if learnt.contains(&mac) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            learnt.contains(&mac),
            "neighbour table: `{learnt}`, want {mac}"
        );
        run("remove");
        assert!(!ip(&["-n", &d, "addr", "show", "dev", "veth0"]).contains("10.198.0.100"));
        // IPv6: the neighbour learns the VIP from the unsolicited NA (once
        // its own IPv6 is up: a link-local address past its DAD).
        for _ in 0..50 {
            let a = ip(&["-n", &n, "-6", "addr", "show", "dev", "veth1"]);
            if a.contains("fe80") && !a.contains("tentative") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        run("add6");
        let mut learnt = String::new();
        for _ in 0..20 {
            learnt = ip(&["-n", &n, "-6", "neigh", "show", "2001:db8:198::100"]);
            if learnt.contains(&mac) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            learnt.contains(&mac),
            "IPv6 neighbour table: `{learnt}`, want {mac}"
        );
        run("errors");
    });
    let _ = Command::new("ip").args(["netns", "del", &d]).status();
    let _ = Command::new("ip").args(["netns", "del", &n]).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
