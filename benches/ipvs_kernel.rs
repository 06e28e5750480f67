//! Programming the real kernel's IPVS table: `cargo bench --bench
//! ipvs_kernel [-- N]` (default N = 10,000).
//!
//! Boots the IPVS VM (scripts/ipvs-vm: Debian's kernel under qemu, software
//! emulation on these machines, so absolute times are slower than on a
//! real director; the ratios are the point) and, inside, on an empty table
//! with one service:
//! - lvsd's netlink kernel: N destination adds, then N weight edits
//!   (`Kernel::apply`, one request and ACK each), then the same batched
//!   as the daemon's reconcile sends them (`Kernel::apply_all`: many
//!   requests per sendmsg, every ACK checked): N edits, N deletes, N adds,
//!   and a batch whose middle op fails (named, the others carried out);
//! - `ipvsadm`, one process per command (ldirectord's way): the same edits,
//!   timed over the first `LVSD_BENCH_IPVSADM` commands (default 1,000;
//!   each fork+exec is slow under emulation) and scaled to N, said so;
//! - `ipvsadm -R`: N edits restored from one file in one process;
//! - reading the table of N destinations: lvsd's dump (`Kernel::dump`)
//!   and `ipvsadm -Sn`, best and median of 5.
//!
//! Prints one table. Nothing leaves the VM.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark: a failure is a broken bench machine

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lvsd::config::Protocol;
use lvsd::ipvs::netlink::{BATCH, NetlinkKernel};
use lvsd::ipvs::table::FwdMethod;
use lvsd::ipvs::{Destination, Kernel, Op, Service, ServiceKey};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    if std::env::var_os("IPVS_VM").is_none() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/ipvs-vm"))
            .arg("--share")
            .arg(root)
            .args(["--timeout", "1500", "--"])
            .arg(std::env::current_exe().unwrap())
            .arg(n.to_string())
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    inside(n);
}

/// The op of a batched row for destination `i`.
type MakeOp = fn(ServiceKey, usize) -> Op;

fn dest(i: usize, weight: u32) -> Destination {
    // 10.100.0.0/16 and up: N distinct real addresses.
    let i = u32::try_from(i).unwrap();
    Destination {
        addr: IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + i)),
        port: 80,
        fwd: FwdMethod::Route,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

fn sh(script: &str) {
    let s = Command::new("sh").arg("-c").arg(script).status().unwrap();
    assert!(s.success(), "{script}");
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn inside(n: usize) {
    let ipvsadm_n: usize = std::env::var("LVSD_BENCH_IPVSADM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
        .min(n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "10.1.0.1".parse().unwrap(),
        port: 80,
    };
    let svc = Service {
        key,
        scheduler: "wrr".into(),
        persistence: None,
        netmask: None,
        one_packet: false,
        sched_flags: None,
    };
    let mut rows: Vec<(String, usize, f64, f64)> = Vec::new(); // what, ops, measured, for N
    sh("ipvsadm -C");
    let mut k = NetlinkKernel::open().unwrap();
    rt.block_on(async {
        k.apply(&Op::AddService(svc.clone())).await.unwrap();
        let t = Instant::now();
        for i in 0..n {
            k.apply(&Op::AddDest(key, dest(i, 1))).await.unwrap();
        }
        let s = secs(t.elapsed());
        rows.push((format!("lvsd netlink: add {n} destinations"), n, s, s));
        let t = Instant::now();
        for i in 0..n {
            k.apply(&Op::EditDest(key, dest(i, 2))).await.unwrap();
        }
        let s = secs(t.elapsed());
        rows.push((format!("lvsd netlink: edit {n} weights"), n, s, s));
        // As the daemon reconciles: batched (Kernel::apply_all).
        let batched: [(String, MakeOp); 3] = [
            (
                format!("lvsd netlink, batched ({BATCH} a sendmsg): edit {n} weights"),
                |key, i| Op::EditDest(key, dest(i, 5)),
            ),
            (
                format!("lvsd netlink, batched: delete {n} destinations"),
                |key, i| Op::DelDest(key, dest(i, 5)),
            ),
            (
                format!("lvsd netlink, batched: add {n} destinations"),
                |key, i| Op::AddDest(key, dest(i, 2)),
            ),
        ];
        for (what, op) in batched {
            let ops: Vec<Op> = (0..n).map(|i| op(key, i)).collect();
            let t = Instant::now();
            let results = k.apply_all(&ops).await;
            let s = secs(t.elapsed());
            assert!(results.iter().all(Result::is_ok));
            rows.push((what, n, s, s));
        }
        // A failed op in the middle of a batch is named, and the others
        // are carried out: a second add of destination 0 fails (exists).
        let ops = [
            Op::EditDest(key, dest(1, 7)),
            Op::AddDest(key, dest(0, 2)),
            Op::EditDest(key, dest(2, 7)),
        ];
        let results = k.apply_all(&ops).await;
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        let e = results[1].as_ref().unwrap_err().to_string();
        assert!(e.contains(&dest(0, 2).endpoint()), "{e}");
        println!("a failed op in a batch: {e}");
    });

    // Reading N destinations back.
    let mut lvsd_dump = Vec::new();
    let mut ipvsadm_dump = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let table = rt.block_on(k.dump()).unwrap();
        lvsd_dump.push(secs(t.elapsed()));
        assert_eq!(table.services[0].1.len(), n);
        let t = Instant::now();
        let out = Command::new("ipvsadm").arg("-Sn").output().unwrap();
        ipvsadm_dump.push(secs(t.elapsed()));
        assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), n + 1);
    }

    // ipvsadm, one process per edit (weight 3), as ldirectord runs it.
    let t = Instant::now();
    for i in 0..ipvsadm_n {
        let d = dest(i, 3);
        let st = Command::new("ipvsadm")
            .args(["-e", "-t", "10.1.0.1:80", "-r"])
            .arg(d.endpoint())
            .args(["-g", "-w", "3"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let s = secs(t.elapsed());
    rows.push((
        format!("ipvsadm -e, one process each ({ipvsadm_n} run, scaled to {n})"),
        ipvsadm_n,
        s,
        s * n as f64 / ipvsadm_n as f64,
    ));

    // ipvsadm -R: every edit (weight 4) from one file.
    let rules: String = (0..n)
        .map(|i| format!("-e -t 10.1.0.1:80 -r {} -g -w 4\n", dest(i, 4).endpoint()))
        .collect();
    std::fs::write("/tmp/rules", rules).unwrap();
    let t = Instant::now();
    sh("ipvsadm -R < /tmp/rules");
    let s = secs(t.elapsed());
    rows.push((format!("ipvsadm -R: {n} edits from one file"), n, s, s));
    let table = rt.block_on(k.dump()).unwrap();
    assert!(table.services[0].1.iter().all(|d| d.weight == 4));

    lvsd_dump.sort_by(f64::total_cmp);
    ipvsadm_dump.sort_by(f64::total_cmp);
    println!();
    println!(
        "IPVS in the VM (Debian kernel {}, qemu {}), one service, {n} destinations",
        String::from_utf8_lossy(&Command::new("uname").arg("-r").output().unwrap().stdout).trim(),
        if Path::new("/sys/module/kvm").exists() {
            "KVM"
        } else {
            "TCG (software emulation)"
        },
    );
    println!(
        "{:<58} {:>7} {:>10} {:>10} {:>10}",
        "changes", "ops run", "seconds", "for N (s)", "ops/s"
    );
    for (what, ops, s, scaled) in &rows {
        println!(
            "{what:<58} {ops:>7} {s:>10.3} {scaled:>10.3} {:>10.0}",
            *ops as f64 / s
        );
    }
    println!(
        "{:<58} {:>10} {:>10}",
        "reading the table", "best (s)", "median (s)"
    );
    println!(
        "{:<58} {:>10.3} {:>10.3}",
        format!("lvsd netlink dump of {n} destinations"),
        lvsd_dump[0],
        lvsd_dump[2]
    );
    println!(
        "{:<58} {:>10.3} {:>10.3}",
        format!("ipvsadm -Sn of {n} destinations"),
        ipvsadm_dump[0],
        ipvsadm_dump[2]
    );
    sh("ipvsadm -C");
}
