//! The fault run: `cargo bench --bench faults [-- REPS]` (default 5
//! repetitions of each fault; root, as scripts/ipvs-vm needs).
//!
//! Boots the IPVS VM (scripts/ipvs-vm) with this binary as its command and,
//! inside, does to a running lvsd what an unlucky director sees, then
//! measures how long lvsd takes to be right again:
//! 1. One lvsd (the VM's root namespace) keeps 3 virtuals of 3 reals each
//!    (rr, wrr, lc persistent; http and connect checks against a busybox
//!    httpd on a dummy interface):
//!    - `ipvsadm -C` behind its back: `ipvsadm -Sn` polled until it is the
//!      table `lvsd dump --table` prints again;
//!    - `modprobe -r` of ip_vs while lvsd's services use it (what the
//!      kernel says), then ip_vs really unloaded (the table flushed, every
//!      `ip_vs_*` module and `ip_vs` removed), left out 2 s, and loaded
//!      again with the schedulers: the same poll, from the `modprobe`. A
//!      repetition lvsd does not repair within 30 s is counted as never,
//!      shown with its log, and lvsd is restarted for the next one.
//! 2. A failover pair (two lvsd directors in network namespaces on a
//!    bridge, heartbeat's lab timers: keepalive 500 ms, deadtime 2 s, DR
//!    reals, a client asking the VIP every 50 ms; no sync daemon): the
//!    active lvsd gets SIGSTOP for 10 s, then SIGCONT; then the same for
//!    the standby's lvsd. Timed: the other director holding the VIP, how
//!    long both hold it, and from SIGCONT until exactly one holds it with
//!    both IPVS tables right for 3 s. Printed: the holders' timeline with
//!    the client's ARP entry for the VIP (`ip monitor neigh`), the client's
//!    failed and slowest requests, and the directors' failover log lines.
//!
//! One cold start of the pair per run (a second one in this VM sometimes
//! never settles; if the first does not, the processes' state is printed).
//! Prints the table as Markdown (for the README), then the notes. Times
//! are polled (`ipvsadm -Sn`, `ip addr`) every 20 ms plus the poll's own
//! cost under emulation (printed). Nothing leaves the VM.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a broken bench machine

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LVSD: &str = env!("CARGO_BIN_EXE_lvsd");
/// How long a repetition may take to be right again before it counts as
/// never (three of lvsd's 10 s resyncs).
const NEVER: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

fn main() {
    if std::env::var_os("LVSD_FAULTS_CLIENT").is_some() {
        client();
        return;
    }
    // `cargo bench` passes `--bench`; the first number is the repetitions.
    let reps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5)
        .max(1);
    if std::env::var_os("IPVS_VM").is_none() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(root.join("scripts/ipvs-vm"));
        cmd.arg("--share").arg(root);
        // lvsd and this binary live in the target directory (TARGET/release
        // and TARGET/release/deps): share it too when it is elsewhere.
        let target = Path::new(LVSD).ancestors().nth(2).unwrap();
        if !target.starts_with(root) {
            cmd.arg("--share").arg(target);
        }
        let status = cmd
            .args(["--timeout", "1800", "--"])
            .arg(&exe)
            .arg(reps.to_string())
            .status()
            .expect("running scripts/ipvs-vm");
        std::process::exit(status.code().unwrap_or(1));
    }
    inside(reps);
}

// ------------------------------------------------------------ small tools

/// Runs `script` with sh; its stdout, or a panic with its stderr.
fn sh(script: &str) -> String {
    let (ok, out) = try_sh(script);
    assert!(ok, "`{script}` failed: {out}");
    out
}

/// Runs `script` with sh: whether it exited 0, and stdout then stderr.
fn try_sh(script: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// `ipvsadm -Sn` (in namespace `ns`, or the VM's own) as a set of lines.
/// Careful: ipvsadm loads ip_vs when it is missing.
fn ipvsadm_save(ns: Option<&str>) -> BTreeSet<String> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ipvsadm", "-Sn"]);
            c
        }
        None => {
            let mut c = Command::new("ipvsadm");
            c.arg("-Sn");
            c
        }
    };
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The table lvsd should keep for `cf`, all reals up.
fn expected_table(cf: &Path) -> BTreeSet<String> {
    let out = Command::new(LVSD)
        .args(["dump", "--table"])
        .arg(cf)
        .output()
        .unwrap();
    assert!(out.status.success(), "lvsd dump --table failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls until `f` holds; the time it took, or None after `timeout`.
fn until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (tracing's timestamp) to ms since the
/// epoch (UTC; days from the civil calendar).
fn rfc3339_ms(ts: &str) -> Option<u128> {
    let (date, time) = ts.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u128::try_from(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms).ok()
}

/// A log line as `+S.SSs LEVEL message` relative to `t0_ms` (without
/// tracing's target).
fn relative(line: &str, t0_ms: u128) -> String {
    let mut it = line.split_whitespace();
    let (Some(ts), Some(level)) = (it.next(), it.next()) else {
        return line.to_owned();
    };
    let Some(ms) = rfc3339_ms(ts) else {
        return line.to_owned();
    };
    let off = ms as f64 / 1000.0 - t0_ms as f64 / 1000.0;
    format!("{off:+7.2}s {level:<5} {}", message(line))
}

/// The id the kernel gave the "IPVS" generic netlink family now (None
/// when it has none: ip_vs not loaded). lvsd looks it up once, at start.
fn ipvs_family_id() -> Option<u16> {
    use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_generic::GenlMessage;
    use netlink_packet_generic::constants::GENL_ID_CTRL;
    use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
    use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
    let mut sock = Socket::new(NETLINK_GENERIC).ok()?;
    sock.bind_auto().ok()?;
    sock.connect(&SocketAddr::new(0, 0)).ok()?;
    let mut genl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName("IPVS".to_owned())],
    });
    genl.set_resolved_family_id(GENL_ID_CTRL);
    let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(genl));
    nl.header.flags = NLM_F_REQUEST;
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    sock.send(&buf, 0).ok()?;
    let (data, _) = sock.recv_from_full().ok()?;
    let m = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(&data).ok()?;
    let NetlinkPayload::InnerMessage(g) = m.payload else {
        return None;
    };
    g.payload.nlas.iter().find_map(|a| match a {
        GenlCtrlAttrs::FamilyId(id) => Some(*id),
        _ => None,
    })
}

/// What `lvsd status --json` says of lvsd's own state and its reals.
fn status_summary(dir: &Path) -> String {
    let out = Command::new(LVSD)
        .args(["status", "--json", "--control"])
        .arg(dir.join("control.sock"))
        .output()
        .unwrap();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return format!(
            "`lvsd status` answered {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        );
    };
    let mut health: std::collections::BTreeMap<String, usize> = Default::default();
    for virt in v["virtuals"].as_array().into_iter().flatten() {
        for r in virt["reals"].as_array().into_iter().flatten() {
            let h = format!(
                "{} weight {}",
                r["health"].as_str().unwrap_or("?"),
                r["weight"]
            );
            *health.entry(h).or_default() += 1;
        }
    }
    format!(
        "`lvsd status` (exit {}): impaired {}, reals {:?}",
        out.status.code().unwrap_or(-1),
        v["impaired"],
        health
    )
}

// ------------------------------------------------------------ lvsd

struct Lvsd {
    child: Child,
    log: PathBuf,
}

impl Lvsd {
    /// `lvsd run` on `files`, in namespace `ns` with hostname `host`
    /// when given, its control socket and state in `dir`.
    fn start(dir: &Path, ns: Option<(&str, &str)>, files: &[PathBuf], log: &Path) -> Lvsd {
        let mut cmd = match ns {
            Some((ns, host)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "unshare", "-u", "sh", "-c"])
                    .arg(format!("hostname {host} && exec \"$0\" \"$@\""))
                    .arg(LVSD);
                c
            }
            None => Command::new(LVSD),
        };
        let child = cmd
            .arg("run")
            .arg("--control")
            .arg(dir.join("control.sock"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(files)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Lvsd {
            child,
            log: log.to_owned(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log, read lossily.
    fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// How far the log is now: `since` gives what comes after.
    fn mark(&self) -> usize {
        std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    fn since(&self, mark: usize) -> Vec<String> {
        let b = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&b[mark.min(b.len())..])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// SIGCONT (in case), SIGTERM, and wait; the exit status as text.
    fn stop(mut self) -> String {
        let _ = try_sh(&format!("kill -CONT {0}; kill -TERM {0}", self.child.id()));
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.to_string();
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return "did not stop within 20 s of SIGTERM: killed".to_owned();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What each process that burnt CPU is doing: for a start that does not
/// settle (the known cold-start problem in this VM).
fn where_lvsd_waits() -> String {
    try_sh(
        "cat /proc/loadavg
         for s in /proc/[0-9]*/stat; do awk '{ if ($14+$15 > 50) print \"stat:\", $0 }' $s 2>/dev/null; done
         for p in $(pidof lvsd); do echo \"pid $p: $(cat /proc/$p/wchan)\"
             for t in /proc/$p/task/*; do
                 echo \"  task ${t##*/} $(cat $t/comm) wchan=$(cat $t/wchan) stat=$(cut -d' ' -f3,14,15 $t/stat)\"
                 sed 's/^/    /' $t/stack 2>/dev/null | head -8
             done
         done",
    )
    .1
}

// ------------------------------------------------------------ the table

struct Row {
    fault: String,
    reps: String,
    /// Seconds, of the repetitions that got right again.
    times: Vec<f64>,
    /// Said instead of the times.
    time_text: Option<String>,
    did: String,
    failures: String,
}

fn min_med_max(times: &[f64]) -> String {
    if times.is_empty() {
        return "never".to_owned();
    }
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    let med = if n % 2 == 1 {
        t[n / 2]
    } else {
        f64::midpoint(t[n / 2 - 1], t[n / 2])
    };
    format!("{:.2} / {:.2} / {:.2}", t[0], med, t[n - 1])
}

fn print_table(rows: &[Row]) {
    println!(
        "| fault | reps | right again after, s (min / median / max) | what lvsd did | failures |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.fault,
            r.reps,
            r.time_text.clone().unwrap_or_else(|| min_med_max(&r.times)),
            r.did,
            r.failures
        );
    }
}

// ------------------------------------------------------------ inside

fn inside(reps: usize) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let poll = {
        let t = Instant::now();
        for _ in 0..5 {
            ipvsadm_save(None);
        }
        t.elapsed() / 5
    };
    notes.push(format!(
        "kernel {}, {}; one `ipvsadm -Sn` poll costs {} ms here (plus {} ms sleep)",
        sh("uname -r").trim(),
        if Path::new("/sys/module/kvm").exists() {
            "KVM"
        } else {
            "qemu TCG (software emulation, 1 vCPU)"
        },
        poll.as_millis(),
        POLL.as_millis()
    ));
    one_director(reps, &mut rows, &mut notes);
    failover_pair(reps, &mut rows, &mut notes);
    println!();
    print_table(&rows);
    println!();
    for n in &notes {
        println!("{n}");
    }
}

/// Part 1: one lvsd, its table flushed, ip_vs unloaded and loaded.
fn one_director(reps: usize, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    sh("ipvsadm -C
        ip link add lvs0 type dummy
        ip link set lvs0 up
        for i in 1 2 3; do ip addr add 10.2.0.$i/24 dev lvs0; done
        mkdir -p /tmp/www-faults
        echo real > /tmp/www-faults/index.html
        echo 'Service Up' > /tmp/www-faults/health");
    let httpd = Command::new("busybox")
        .args(["httpd", "-f", "-p", "80", "-h", "/tmp/www-faults"])
        .spawn()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let mut text =
        String::from("checkinterval=1\nnegotiatetimeout=1\nquiescent=no\ncleanstop=yes\n");
    for (vip, fwd, sched, check) in [
        (
            "10.1.0.1:80",
            "gate",
            "rr",
            "service=http\n\trequest=\"/health\"\n\treceive=\"Service Up\"",
        ),
        (
            "10.1.0.2:80",
            "masq",
            "wrr",
            "service=http\n\trequest=\"/health\"\n\treceive=\"Service Up\"",
        ),
        (
            "10.1.0.3:8080",
            "gate",
            "lc",
            "checktype=connect\n\tpersistent=300",
        ),
    ] {
        text.push_str(&format!("virtual={vip}\n"));
        for i in 1..=3 {
            text.push_str(&format!("\treal=10.2.0.{i}:80 {fwd} {i}\n"));
        }
        text.push_str(&format!("\t{check}\n\tscheduler={sched}\n"));
    }
    std::fs::write(&cf, text).unwrap();
    let want = expected_table(&cf);
    let right = || ipvsadm_save(None) == want;
    let mut n_start = 0;
    let mut start = || {
        n_start += 1;
        let d = Lvsd::start(
            dir.path(),
            None,
            std::slice::from_ref(&cf),
            &dir.path().join(format!("lvsd{n_start}.log")),
        );
        let t = Instant::now();
        assert!(
            until(Duration::from_secs(60), right).is_some(),
            "lvsd's first table is not {want:#?} after 60 s but {:#?}\n{}\n{}",
            ipvsadm_save(None),
            d.log(),
            where_lvsd_waits()
        );
        (d, t.elapsed())
    };
    let (mut d, first) = start();
    notes.push(format!(
        "one director: 3 virtuals, 9 reals ({} lines in `ipvsadm -Sn`); lvsd's start to a right table: {:.2} s",
        want.len(),
        first.as_secs_f64()
    ));

    // (a) ipvsadm -C behind lvsd's back.
    let mut times = Vec::new();
    let mut never = 0;
    let mut did = BTreeSet::new();
    for rep in 0..reps {
        // A different phase of lvsd's 10 s resync each time.
        std::thread::sleep(Duration::from_millis(500 + (rep as u64 * 3700) % 10_000));
        let mark = d.mark();
        let t0 = now_ms();
        let t = Instant::now();
        sh("ipvsadm -C");
        let back = until(NEVER, right);
        let lines = d.since(mark);
        did.insert(summary(&lines));
        match back {
            Some(_) => times.push(t.elapsed().as_secs_f64()),
            None => never += 1,
        }
        if rep == 0 || back.is_none() {
            notes.push(format!(
                "`ipvsadm -C`, repetition {}: {}; lvsd logged:\n{}",
                rep + 1,
                back.map_or("not right again within 30 s".to_owned(), |_| format!(
                    "right again after {:.2} s",
                    t.elapsed().as_secs_f64()
                )),
                excerpt(&lines, t0)
            ));
        }
    }
    rows.push(Row {
        fault: "`ipvsadm -C` behind lvsd's back (3 virtuals, 9 reals)".to_owned(),
        reps: reps.to_string(),
        times,
        time_text: None,
        did: did.into_iter().collect::<Vec<_>>().join("; "),
        failures: if never == 0 {
            "none".to_owned()
        } else {
            format!("{never} not right within 30 s")
        },
    });

    // (b) modprobe -r while lvsd's services use ip_vs.
    let (_, refused) = try_sh(
        "for m in ip_vs ip_vs_rr; do
             modprobe -r $m; echo \"modprobe -r $m: exit $?, /sys/module/$m $(test -d /sys/module/$m && echo still there || echo gone)\"
         done 2>&1",
    );
    let refused_line = refused
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let table_kept = right();
    notes.push(format!(
        "`modprobe -r` with lvsd's services in the kernel: {refused_line}; the table is {}",
        if table_kept { "untouched" } else { "CHANGED" }
    ));
    rows.push(Row {
        fault: "`modprobe -r ip_vs` / `ip_vs_rr` while lvsd's services use them".to_owned(),
        reps: "1".to_owned(),
        times: vec![],
        time_text: Some(if table_kept {
            "never wrong".to_owned()
        } else {
            "the table changed".to_owned()
        }),
        did: format!("nothing to do: the kernel refuses ({refused_line})"),
        failures: if table_kept {
            "none".to_owned()
        } else {
            "the table changed".to_owned()
        },
    });

    // (c) ip_vs unloaded for real, then loaded again.
    let mut times = Vec::new();
    let mut failures = Vec::new();
    let mut did = BTreeSet::new();
    let mut restarts = Vec::new();
    let mut families = Vec::new();
    let mut stuck_status = BTreeSet::new();
    for rep in 0..reps {
        if !right() {
            until(NEVER, right);
        }
        std::thread::sleep(Duration::from_millis(1700));
        let family_before = ipvs_family_id();
        let mark = d.mark();
        let t0 = now_ms();
        // The table flushed and every module out in one go, so lvsd has no
        // time to put a service back in between; tried 3 times if it did.
        let mut unloaded = false;
        let mut unload_out = String::new();
        for _ in 0..3 {
            let (_, out) = try_sh(
                "ipvsadm -C
                 for m in $(awk '$1 ~ /^ip_vs_/ { print $1 }' /proc/modules); do modprobe -r $m; done
                 modprobe -r ip_vs
                 test -d /sys/module/ip_vs && echo 'ip_vs still loaded:' && lsmod | grep ip_vs
                 true",
            );
            unload_out = out;
            if !Path::new("/sys/module/ip_vs").exists() {
                unloaded = true;
                break;
            }
        }
        if !unloaded {
            failures.push(format!("rep {}: could not unload ip_vs", rep + 1));
            notes.push(format!(
                "ip_vs unload, repetition {}: ip_vs stayed loaded: {unload_out}",
                rep + 1
            ));
            continue;
        }
        // Out for 2 s (no ipvsadm meanwhile: it would load ip_vs itself).
        std::thread::sleep(Duration::from_secs(2));
        let t1 = now_ms();
        let t = Instant::now();
        sh("modprobe ip_vs && for s in rr wrr lc; do modprobe ip_vs_$s; done");
        let family_after = ipvs_family_id();
        let back = until(NEVER, right);
        let lines = d.since(mark);
        did.insert(summary(&lines));
        families.push((family_before, family_after));
        if back.is_some() {
            times.push(t.elapsed().as_secs_f64());
        }
        if rep == 0 || back.is_none() {
            notes.push(format!(
                "ip_vs unloaded at +0.00s, loaded again at +{:.2}s, repetition {}: {}; lvsd logged:\n{}",
                (t1 - t0) as f64 / 1000.0,
                rep + 1,
                back.map_or("NOT right again within 30 s".to_owned(), |_| format!(
                    "right again {:.2} s after the modprobe",
                    t.elapsed().as_secs_f64()
                )),
                excerpt(&lines, t0)
            ));
        }
        if back.is_none() {
            failures.push(format!("rep {}: not right within 30 s", rep + 1));
            let table = ipvsadm_save(None);
            let status = status_summary(dir.path());
            notes.push(format!(
                "  the table then ({} lines): {}; {status}",
                table.len(),
                table.iter().cloned().collect::<Vec<_>>().join(" | "),
            ));
            stuck_status.insert(status);
            let status = d.stop();
            let (nd, took) = start();
            restarts.push(took.as_secs_f64());
            notes.push(format!(
                "  lvsd stopped ({status}) and started again: right after {:.2} s",
                took.as_secs_f64()
            ));
            d = nd;
        }
    }
    let families_text = families
        .iter()
        .map(|(b, a)| match (b, a) {
            (Some(b), Some(a)) => format!("{b}→{a}"),
            _ => format!("{b:?}→{a:?}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    notes.push(format!(
        "the IPVS generic netlink family's id, before the unload → after the load, per repetition: {families_text}"
    ));
    let mut did: Vec<String> = did.into_iter().collect();
    if families.iter().any(|(b, a)| b != a) {
        did.push(format!(
            "the kernel gave the IPVS netlink family a new id at each load ({families_text})"
        ));
    }
    did.extend(
        stuck_status
            .into_iter()
            .map(|s| format!("while wrong: {s}")),
    );
    if !restarts.is_empty() {
        failures.push(format!(
            "a restart of lvsd repaired it every time ({} restarts, {})",
            restarts.len(),
            min_med_max(&restarts)
        ));
    }
    rows.push(Row {
        fault: "ip_vs unloaded (table flushed, `modprobe -r` every ip_vs module) 2 s, then `modprobe ip_vs` + rr, wrr, lc".to_owned(),
        reps: reps.to_string(),
        times,
        time_text: None,
        did: did.join("; "),
        failures: if failures.is_empty() {
            "none".to_owned()
        } else {
            failures.join("; ")
        },
    });
    let status = d.stop();
    notes.push(format!("one director: lvsd stopped: {status}"));
    end(httpd);
    let _ = try_sh("ipvsadm -C; ip link del lvs0; rm -rf /tmp/www-faults");
}

/// What lvsd did in these log lines, in one line.
fn summary(lines: &[String]) -> String {
    let info_op = |l: &&String| l.contains(" INFO ") && l.contains("ipvsadm -");
    let ops: Vec<String> = lines.iter().filter(info_op).map(|l| message(l)).collect();
    let svc = ops.iter().filter(|m| m.starts_with("ipvsadm -A ")).count();
    let dst = ops.iter().filter(|m| m.starts_with("ipvsadm -a ")).count();
    let other = ops.len() - svc - dst;
    let mut parts = Vec::new();
    let behind = lines
        .iter()
        .filter(|l| l.contains("behind lvsd's back"))
        .count();
    if behind > 0 {
        parts.push(format!(
            "warned \"the IPVS table changed behind lvsd's back\" ×{behind}"
        ));
    }
    if !ops.is_empty() {
        parts.push(format!(
            "re-added {svc} services and {dst} reals{}",
            if other > 0 {
                format!(" (+{other} other ops)")
            } else {
                String::new()
            }
        ));
    }
    let mut trouble: std::collections::BTreeMap<String, usize> = Default::default();
    for l in lines {
        if (l.contains(" ERROR ") || l.contains(" WARN ")) && !l.contains("behind lvsd's back") {
            *trouble.entry(message(l)).or_default() += 1;
        }
    }
    for (m, n) in trouble.iter().take(3) {
        parts.push(format!("logged `{m}` ×{n}"));
    }
    if trouble.len() > 3 {
        parts.push(format!("and {} other warnings/errors", trouble.len() - 3));
    }
    if parts.is_empty() {
        "nothing logged".to_owned()
    } else {
        parts.join(", ")
    }
}

/// A log line without tracing's timestamp, level and target.
fn message(line: &str) -> String {
    let rest: Vec<&str> = line.split_whitespace().skip(2).collect();
    match rest.first() {
        Some(t) if t.ends_with(':') && (t.contains("::") || *t == "lvsd:") => rest[1..].join(" "),
        _ => rest.join(" "),
    }
}

/// Up to 30 log lines relative to `t0_ms`, indented.
fn excerpt(lines: &[String], t0_ms: u128) -> String {
    let mut out: Vec<String> = lines
        .iter()
        .take(30)
        .map(|l| format!("    {}", relative(l, t0_ms)))
        .collect();
    if lines.len() > 30 {
        out.push(format!("    ... {} more lines", lines.len() - 30));
    }
    if out.is_empty() {
        out.push("    (nothing)".to_owned());
    }
    out.join("\n")
}

fn end(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

// ------------------------------------------------------------ the pair

/// The traffic client, run by the pair's part in namespace `client`
/// (`LVSD_FAULTS_CLIENT=1`): a GET of the VIP every 50 ms, one line per
/// request to `LVSD_FAULTS_OUT` (`start-ms ok BODY` or `start-ms fail
/// REASON`) until `LVSD_FAULTS_STOP` exists.
fn client() {
    use std::io::{Read, Write};
    let out = std::env::var("LVSD_FAULTS_OUT").unwrap();
    let stop = std::env::var("LVSD_FAULTS_STOP").unwrap();
    let vip: std::net::SocketAddr = std::env::var("LVSD_FAULTS_VIP").unwrap().parse().unwrap();
    let mut log = std::fs::File::create(out).unwrap();
    while !Path::new(&stop).exists() {
        let start = now_ms();
        let answer = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)?;
            match buf.split_once("\r\n\r\n") {
                Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200") => {
                    Ok(body.trim().to_owned())
                }
                _ => Err(std::io::Error::other(format!("bad answer {buf:?}"))),
            }
        })();
        let took = now_ms() - start;
        let line = match answer {
            Ok(body) => format!("{start} {took} ok {body}\n"),
            Err(e) => format!("{start} {took} fail {e}\n"),
        };
        log.write_all(line.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The client's requests started in [from, to].
struct Requests {
    total: usize,
    /// `+S.SSs REASON`, from `from`.
    failed: Vec<String>,
    /// The slowest answered one: ms, and when it started (s from `from`).
    slowest: (u128, f64),
}

fn requests(out: &Path, from: u128, to: u128) -> Requests {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut r = Requests {
        total: 0,
        failed: Vec::new(),
        slowest: (0, 0.0),
    };
    for l in text.lines() {
        let mut it = l.splitn(4, ' ');
        let (Some(Ok(t)), Some(Ok(took)), Some(kind)) = (
            it.next().map(str::parse::<u128>),
            it.next().map(str::parse::<u128>),
            it.next(),
        ) else {
            continue;
        };
        if t < from || t > to {
            continue;
        }
        r.total += 1;
        let at = (t - from) as f64 / 1000.0;
        if kind != "ok" {
            r.failed
                .push(format!("{at:+.2}s {}", it.next().unwrap_or("")));
        } else if took > r.slowest.0 {
            r.slowest = (took, at);
        }
    }
    r
}

/// Who holds the VIP: (dir1, dir2).
fn holders() -> (bool, bool) {
    let has = |ns: &str| {
        let out = Command::new("ip")
            .args(["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("inet 10.50.0.100/")
    };
    (has("dir1"), has("dir2"))
}

fn holder_name(h: (bool, bool)) -> &'static str {
    match h {
        (true, true) => "both",
        (true, false) => "d1",
        (false, true) => "d2",
        (false, false) => "none",
    }
}

/// Log messages with their time in seconds from an event.
type Logged = Vec<(f64, String)>;

/// Part 2: a failover pair, the active lvsd frozen 10 s.
fn failover_pair(reps: usize, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    sh("set -e
        modprobe bridge
        ip link add br0 type bridge
        ip link set br0 up
        for n in dir1 dir2 client rs1 rs2; do
            ip netns add $n
            ip link add v$n type veth peer name eth0 netns $n
            ip link set v$n master br0 up
            ip -n $n link set eth0 up
            ip -n $n link set lo up
        done
        ip -n dir1 addr add 10.50.0.1/24 dev eth0
        ip -n dir2 addr add 10.50.0.2/24 dev eth0
        ip -n client addr add 10.50.0.9/24 dev eth0
        for n in 1 2; do
            ip -n rs$n addr add 10.50.0.1$n/24 dev eth0
            ip -n rs$n addr add 10.50.0.100/32 dev lo
            ip netns exec rs$n sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore
                echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce'
            mkdir -p /tmp/www-rs$n
            echo rs$n > /tmp/www-rs$n/index.html
            echo 'Service Up' > /tmp/www-rs$n/health
        done");
    let servers: Vec<Child> = (1..=2)
        .map(|n| {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &format!("rs{n}"),
                    "busybox",
                    "httpd",
                    "-f",
                    "-p",
                    "80",
                    "-h",
                ])
                .arg(format!("/tmp/www-rs{n}"))
                .spawn()
                .unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut directors = Vec::new();
    let mut want = BTreeSet::new();
    for (i, peer) in [(1, "10.50.0.2"), (2, "10.50.0.1")] {
        let d = dir.path().join(format!("d{i}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("ha.cf"),
            format!(
                "keepalive 500ms\ndeadtime 2\nwarntime 1\ninitdead 3\ndeadping 2\nudpport 694\n\
                 ucast eth0 {peer}\nping 10.50.0.9\nauto_failback on\nnode d1\nnode d2\n"
            ),
        )
        .unwrap();
        std::fs::write(d.join("haresources"), "d1 IPaddr2::10.50.0.100/24/eth0\n").unwrap();
        std::fs::write(d.join("authkeys"), "auth 1\n1 sha1 vm-secret\n").unwrap();
        sh(&format!("chmod 600 {}/authkeys", d.display()));
        let cf = d.join("ldirectord.cf");
        std::fs::write(
            &cf,
            "checkinterval=1\nnegotiatetimeout=1\nquiescent=no\ncleanstop=yes\n\
             virtual=10.50.0.100:80\n\treal=10.50.0.11:80 gate\n\treal=10.50.0.12:80 gate\n\
             \tservice=http\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n\tscheduler=rr\n",
        )
        .unwrap();
        want = expected_table(&cf);
        directors.push(Lvsd::start(
            &d,
            Some((&format!("dir{i}"), &format!("d{i}"))),
            &[d.join("ha.cf"), cf],
            &d.join("lvsd.log"),
        ));
    }
    let tables_right = || tables_right(&want);
    // Cold start: d1 takes the VIP, both tables right.
    let cold = until(Duration::from_secs(60), || {
        holders() == (true, false) && tables_right() == (true, true)
    });
    let Some(cold) = cold else {
        let evidence = where_lvsd_waits();
        notes.push(format!(
            "failover pair: the cold start did not settle in 60 s (holders {}, tables right {:?}):\n--- d1\n{}\n--- d2\n{}\n--- where lvsd waits\n{evidence}",
            holder_name(holders()),
            tables_right(),
            directors[0].log(),
            directors[1].log()
        ));
        rows.push(Row {
            fault: "failover pair: cold start".to_owned(),
            reps: "1".to_owned(),
            times: vec![],
            time_text: None,
            did: "did not settle within 60 s (see the notes)".to_owned(),
            failures: "the SIGSTOP runs could not be made".to_owned(),
        });
        for d in directors {
            d.stop();
        }
        for s in servers {
            end(s);
        }
        return;
    };
    notes.push(format!(
        "failover pair: cold start to d1 holding the VIP, both tables right: {:.2} s",
        cold.as_secs_f64()
    ));
    // The client.
    let out = dir.path().join("client.log");
    let stop = dir.path().join("client.stop");
    let mut client = Command::new("ip")
        .args(["netns", "exec", "client"])
        .arg(std::env::current_exe().unwrap())
        .env("LVSD_FAULTS_CLIENT", "1")
        .env("LVSD_FAULTS_OUT", &out)
        .env("LVSD_FAULTS_STOP", &stop)
        .env("LVSD_FAULTS_VIP", "10.50.0.100:80")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = now_ms();
    let answered = until(Duration::from_secs(15), || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        ["rs1", "rs2"].iter().all(|rs| {
            text.lines().any(|l| {
                l.split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u128>().ok())
                    > Some(t)
                    && l.ends_with(&format!(" ok {rs}"))
            })
        })
    });
    if answered.is_none() {
        notes.push(
            "failover pair: the client did not get answers from both reals within 15 s".to_owned(),
        );
    }

    let active = freeze_reps(true, reps, &directors, &want, &out, notes);
    let standby = freeze_reps(false, reps, &directors, &want, &out, notes);
    rows.push(Row {
        fault: "failover pair, active lvsd SIGSTOPped: the standby takes the VIP (its `took` log line, from the SIGSTOP)"
            .to_owned(),
        reps: active.took_logged.len().to_string(),
        times: active.took_logged.clone(),
        time_text: None,
        did: format!(
            "{}; polled, the VIP seen on the standby after {} s",
            active.said(false),
            min_med_max(&active.took)
        ),
        failures: String::new(),
    });
    rows.push(Row {
        fault: "… both hold the VIP (from the standby taking it until one lets go)".to_owned(),
        reps: active.both.len().to_string(),
        times: active.both.clone(),
        time_text: None,
        did: "polled; the frozen lvsd cannot let go: the address stays in its kernel until it runs again (split brain for the rest of the freeze)".to_owned(),
        failures: String::new(),
    });
    let polled = |f: &Freeze| {
        format!(
            "polled: the first poll after SIGCONT came {} s after it (one busy vCPU), so this is a ceiling",
            min_med_max(&f.first_poll)
        )
    };
    rows.push(Row {
        fault:
            "… SIGCONT after 10 s: the running one lets go (its `released` log line, from SIGCONT)"
                .to_owned(),
        reps: active.released.len().to_string(),
        times: active.released.clone(),
        time_text: None,
        did: active.said(true),
        failures: String::new(),
    });
    rows.push(Row {
        fault: "… exactly one holds the VIP and both IPVS tables are right, for 3 s (polled, from SIGCONT)"
            .to_owned(),
        reps: active.done.to_string(),
        times: active.one.clone(),
        time_text: None,
        did: polled(&active),
        failures: active.failures(),
    });
    rows.push(Row {
        fault: "failover pair, standby lvsd SIGSTOPped 10 s, then SIGCONT: it takes the VIP and lets it go again (its `took` to its `released`)".to_owned(),
        reps: format!("{} of {}", standby.frozen_took, standby.done),
        times: standby.frozen_split.clone(),
        time_text: None,
        did: standby.said(true),
        failures: String::new(),
    });
    rows.push(Row {
        fault: "… exactly one holds the VIP and both IPVS tables are right, for 3 s (polled, from SIGCONT)"
            .to_owned(),
        reps: standby.done.to_string(),
        times: standby.one.clone(),
        time_text: None,
        did: polled(&standby),
        failures: standby.failures(),
    });
    std::fs::write(&stop, "").unwrap();
    let _ = client.wait();
    for d in directors {
        let st = d.stop();
        notes.push(format!("failover pair: lvsd stopped: {st}"));
    }
    for s in servers {
        end(s);
    }
    let _ = try_sh(
        "for n in dir1 dir2 client rs1 rs2; do ip link del v$n; ip netns del $n; done; ip link del br0; rm -rf /tmp/www-rs1 /tmp/www-rs2",
    );
}

/// What the freezes of one kind measured.
#[derive(Default)]
struct Freeze {
    done: usize,
    /// From the SIGSTOP until the director that did not hold the VIP holds
    /// it (the standby, or, when the standby is frozen, the frozen one).
    took: Vec<f64>,
    /// How long both held it.
    both: Vec<f64>,
    /// From the SIGCONT until exactly one holds it (tables right), for 3 s.
    one: Vec<f64>,
    never: usize,
    failed: Vec<usize>,
    /// From the SIGSTOP until the running director logged `took`.
    took_logged: Vec<f64>,
    /// From the SIGCONT until the last `released` a director logged.
    released: Vec<f64>,
    /// The frozen lvsd's own `took` to its `released`, after SIGCONT.
    frozen_split: Vec<f64>,
    /// From the SIGCONT to the first poll after it (the polled times'
    /// floor: the VM's one CPU is busy with the resumed lvsd).
    first_poll: Vec<f64>,
    /// Wrong reads of d1's and d2's table, and reads.
    wrong: [usize; 3],
    /// The slowest answered client request, ms.
    slowest: u128,
    /// How often the client's ARP entry for the VIP changed, per rep.
    arp_moves: Vec<usize>,
    /// Repetitions in which the frozen lvsd logged `took` (after SIGCONT).
    frozen_took: usize,
    /// The repetition shown: the first, or the first in which the frozen
    /// lvsd took the VIP when rep 1 did not.
    shown: Option<Shown>,
}

/// One repetition, as the table shows it.
struct Shown {
    rep: usize,
    frozen: usize,
    /// When SIGCONT was sent, s from the SIGSTOP.
    cont: f64,
    /// What each director logged of failover, s from the SIGSTOP.
    logs: [Logged; 2],
    timeline: String,
    frozen_took: bool,
}

impl Freeze {
    /// What each director logged in the repetition shown, before or after
    /// the SIGCONT; with its holders' timeline after it.
    fn said(&self, after_cont: bool) -> String {
        let Some(Shown {
            rep,
            frozen,
            cont,
            logs,
            timeline,
            ..
        }) = &self.shown
        else {
            return String::new();
        };
        let mut parts = Vec::new();
        for (i, lines) in logs.iter().enumerate() {
            let picked: Vec<String> = lines
                .iter()
                .filter(|(t, _)| (*t >= *cont) == after_cont)
                .map(|(t, m)| format!("+{t:.2}s {m}"))
                .collect();
            if !picked.is_empty() {
                let who = if i == *frozen { "frozen" } else { "running" };
                parts.push(format!("d{} ({who}): {}", i + 1, picked.join("; ")));
            }
        }
        if parts.is_empty() {
            parts.push("nothing about failover".to_owned());
        }
        let timeline = if after_cont {
            format!("; holders: {timeline}")
        } else {
            String::new()
        };
        format!(
            "rep {}, from the SIGSTOP: {}{timeline}",
            rep + 1,
            parts.join(" / ")
        )
    }

    fn failures(&self) -> String {
        let requests = if self.failed.iter().all(|f| *f == 0) {
            "no client request failed".to_owned()
        } else {
            format!("client requests failed per rep: {:?}", self.failed)
        };
        let never = if self.never > 0 {
            format!("; {} reps NOT settled within 60 s of SIGCONT", self.never)
        } else {
            String::new()
        };
        format!(
            "{requests} (slowest answered: {} ms){never}; IPVS table reads wrong: d1 {} of {}, d2 {} of {}; the client's ARP entry for the VIP changed per rep: {:?}",
            self.slowest,
            self.wrong[0],
            self.wrong[2],
            self.wrong[1],
            self.wrong[2],
            self.arp_moves
        )
    }
}

fn tables_right(want: &BTreeSet<String>) -> (bool, bool) {
    (
        ipvsadm_save(Some("dir1")) == *want,
        ipvsadm_save(Some("dir2")) == *want,
    )
}

/// The MAC address of `eth0` in namespace `ns`.
fn mac(ns: &str) -> String {
    sh(&format!("ip -n {ns} -o link show dev eth0"))
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or("")
        .to_owned()
}

/// Sends `sig` (STOP, CONT) to `pid` with kill(1), no shell between.
fn kill(sig: &str, pid: u32) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// `reps` times: the active director's lvsd (`active`) or the standby's
/// frozen with SIGSTOP for 10 s, then SIGCONT, and watched until exactly
/// one director holds the VIP and both tables are right for 3 s.
fn freeze_reps(
    active: bool,
    reps: usize,
    directors: &[Lvsd],
    want: &BTreeSet<String>,
    out: &Path,
    notes: &mut Vec<String>,
) -> Freeze {
    let kind = if active { "active" } else { "standby" };
    let mut f = Freeze::default();
    let macs = [mac("dir1"), mac("dir2")];
    let who = |m: &str| match macs.iter().position(|x| x == m) {
        Some(i) => format!("d{}", i + 1),
        None => m.to_owned(),
    };
    for rep in 0..reps {
        // Steady for 2 s first.
        let mut since: Option<Instant> = None;
        let ok = until(Duration::from_secs(60), || {
            let h = holders();
            if h.0 != h.1 && tables_right(want) == (true, true) {
                let s = *since.get_or_insert_with(Instant::now);
                s.elapsed() >= Duration::from_secs(2)
            } else {
                since = None;
                false
            }
        });
        if ok.is_none() {
            notes.push(format!(
                "failover pair, {kind} frozen, repetition {}: not steady within 60 s before the freeze (holders {}, tables {:?}); stopped here",
                rep + 1,
                holder_name(holders()),
                tables_right(want)
            ));
            break;
        }
        f.done += 1;
        let h = holders();
        let holder = if h.0 { 0 } else { 1 };
        let frozen = if active { holder } else { 1 - holder };
        let marks = [directors[0].mark(), directors[1].mark()];
        // The client's ARP entry for the VIP: where its packets go.
        let arp_log = out.with_file_name(format!("arp-{kind}-{rep}"));
        let mut monitor = Command::new("ip")
            .args(["-n", "client", "-ts", "monitor", "neigh"])
            .stdout(std::fs::File::create(&arp_log).unwrap())
            .spawn()
            .unwrap();
        let arp_before = sh("ip -n client neigh show 10.50.0.100");
        let mut arp_last = arp_before
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let t0_ms = now_ms();
        let t0 = Instant::now();
        kill("STOP", directors[frozen].pid());
        let mut timeline = vec![(0.0, holder_name(h).to_owned())];
        let mut last = h;
        let mut wrong = [0usize, 0];
        let mut samples = 0usize;
        let mut took: Option<f64> = None;
        let mut both_from: Option<f64> = None;
        let mut both_until: Option<f64> = None;
        // One sample: who holds the VIP (timed as soon as it is read) and,
        // when asked, whether both tables are right (true when not read:
        // each read costs two `ipvsadm -Sn` in a namespace).
        let mut observe = |timeline: &mut Vec<(f64, String)>, check_tables: bool| {
            let h = holders();
            let at = t0.elapsed().as_secs_f64();
            if h != last {
                timeline.push((at, holder_name(h).to_owned()));
                last = h;
            }
            let other_holds = if holder == 0 { h.1 } else { h.0 };
            if took.is_none() && other_holds {
                took = Some(at);
            }
            if h == (true, true) && both_from.is_none() {
                both_from = Some(at);
            }
            if h != (true, true) && both_from.is_some() && both_until.is_none() {
                both_until = Some(at);
            }
            let mut tables_ok = true;
            if check_tables {
                samples += 1;
                let t = tables_right(want);
                wrong[0] += usize::from(!t.0);
                wrong[1] += usize::from(!t.1);
                tables_ok = t == (true, true);
            }
            (h, at, tables_ok)
        };
        // Frozen 10 s: the tables read every third sample, and not in the
        // last second (a read would make the SIGCONT late).
        let freeze = Duration::from_secs(10);
        let mut n = 0usize;
        while t0.elapsed() + POLL < freeze {
            let tables = n.is_multiple_of(3) && t0.elapsed() + Duration::from_secs(1) < freeze;
            observe(&mut timeline, tables);
            n += 1;
            std::thread::sleep(POLL.min(freeze.saturating_sub(t0.elapsed())));
        }
        std::thread::sleep(freeze.saturating_sub(t0.elapsed()));
        let cont = t0.elapsed().as_secs_f64();
        kill("CONT", directors[frozen].pid());
        timeline.push((cont, "SIGCONT".to_owned()));
        // Until exactly one holds it, with no wrong table read meanwhile,
        // for 3 s: settled from the first sample of that stretch.
        let mut stable_from: Option<f64> = None;
        let mut first_poll = None;
        let settled = loop {
            n += 1;
            let (h, at, tables_ok) = observe(&mut timeline, n.is_multiple_of(3));
            first_poll.get_or_insert(at - cont);
            if h.0 != h.1 && tables_ok {
                let s = *stable_from.get_or_insert(at);
                if at - s >= 3.0 {
                    break Some(s);
                }
            } else {
                stable_from = None;
            }
            if at - cont > 60.0 {
                break None;
            }
            std::thread::sleep(POLL);
        };
        let end_ms = now_ms();
        let _ = monitor.kill();
        let _ = monitor.wait();
        let mut arp_moves = 0;
        for l in std::fs::read_to_string(&arp_log)
            .unwrap_or_default()
            .lines()
        {
            // [2026-12-03T14:09:26.366991] 10.50.0.100 dev eth0 lladdr MAC STATE
            let mut w = l.split_whitespace();
            let (Some(ts), Some("10.50.0.100")) = (w.next(), w.next()) else {
                continue;
            };
            let Some(m) = w.skip_while(|x| *x != "lladdr").nth(1) else {
                continue;
            };
            let Some(ms) = rfc3339_ms(&format!("{}Z", ts.trim_matches(['[', ']']))) else {
                continue;
            };
            if m != arp_last {
                arp_moves += 1;
                arp_last = m.to_owned();
                timeline.push((
                    (ms as f64 - t0_ms as f64) / 1000.0,
                    format!("client-ARP→{}", who(m)),
                ));
            }
        }
        timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
        f.arp_moves.push(arp_moves);
        let frozen_took = directors[frozen]
            .since(marks[frozen])
            .iter()
            .any(|l| l.contains("failover: took "));
        f.frozen_took += usize::from(frozen_took);
        if let Some(t) = took {
            f.took.push(t);
        }
        if let (Some(a), Some(b)) = (both_from, both_until) {
            f.both.push(b - a);
        }
        match settled {
            Some(s) => f.one.push(s - cont),
            None => f.never += 1,
        }
        let Requests {
            total,
            failed,
            slowest,
        } = requests(out, t0_ms, end_ms);
        f.failed.push(failed.len());
        f.slowest = f.slowest.max(slowest.0);
        f.wrong[0] += wrong[0];
        f.wrong[1] += wrong[1];
        f.wrong[2] += samples;
        let line = timeline
            .iter()
            .map(|(t, s)| format!("{s}@{t:.2}"))
            .collect::<Vec<_>>()
            .join(" → ");
        notes.push(format!(
            "failover pair, {kind} (d{}) frozen, repetition {}: holders {line}; {}; client: {} of {total} requests failed{}, the slowest answered took {} ms (sent at +{:.2}s); table reads wrong: d1 {}/{samples}, d2 {}/{samples}",
            frozen + 1,
            rep + 1,
            match settled {
                Some(s) => format!("exactly one holder, tables right from +{s:.2}s"),
                None => "NOT settled within 60 s of SIGCONT".to_owned(),
            },
            failed.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    failed.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
                )
            },
            slowest.0,
            slowest.1,
            wrong[0],
            wrong[1]
        ));
        let failover_lines = |i: usize| -> Logged {
            directors[i]
                .since(marks[i])
                .iter()
                .filter(|l| l.contains("failover:") && !l.contains("ping node(s) reachable"))
                .filter_map(|l| {
                    let ms = rfc3339_ms(l.split_whitespace().next()?)?;
                    let m = message(l);
                    let m = m.strip_prefix("failover: ").unwrap_or(&m).to_owned();
                    Some(((ms as f64 - t0_ms as f64) / 1000.0, m))
                })
                .collect()
        };
        f.first_poll.extend(first_poll);
        let logs = [failover_lines(0), failover_lines(1)];
        let after = |i: usize, what: &str| {
            logs[i]
                .iter()
                .filter(|(t, m)| *t >= cont - 0.05 && m.starts_with(what))
                .map(|(t, _)| *t)
                .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))))
        };
        if let Some(r) = after(0, "released ")
            .into_iter()
            .chain(after(1, "released "))
            .reduce(f64::max)
        {
            f.released.push(r - cont);
        }
        if let Some((t, _)) = logs[1 - frozen]
            .iter()
            .find(|(t, m)| *t < cont && m.starts_with("took "))
        {
            f.took_logged.push(*t);
        }
        if let (Some(t), Some(r)) = (after(frozen, "took "), after(frozen, "released ")) {
            f.frozen_split.push(r - t);
        }
        let show = match &f.shown {
            None => true,
            Some(s) => !s.frozen_took && frozen_took,
        };
        if show {
            f.shown = Some(Shown {
                rep,
                frozen,
                cont,
                logs,
                timeline: line.clone(),
                frozen_took,
            });
        }
        if show || settled.is_none() {
            for (i, d) in directors.iter().enumerate() {
                let lines: Vec<String> = d
                    .since(marks[i])
                    .into_iter()
                    .filter(|l| !l.contains("ping node(s) reachable"))
                    .collect();
                notes.push(format!(
                    "  d{} logged (time from the SIGSTOP; SIGCONT sent at +{cont:.2}s):\n{}",
                    i + 1,
                    excerpt(&lines, t0_ms)
                ));
            }
        }
    }
    f
}
