//! lvsd beside keepalived on the shared peer benchmark (`../shared/bench`,
//! its README.md): the same loopback farm, the same ldirectord-style
//! configuration, HTTP checks, quiescent=yes, failurecount=1, failures by
//! HTTP 500, the C farm with 2 workers. Plus the floor: `minprobe.c`, the
//! least a fresh-connection HTTP check costs on this machine.
//!
//! Run (about an hour with the defaults; root, loopback only):
//!
//! ```sh
//! flock -o /tmp/cargo.lock cargo bench --bench peers
//! LVSD_PEERS_ROWS=1k LVSD_PEERS_TRIALS=2 LVSD_PEERS_WINDOW=5 \
//!     flock -o /tmp/cargo.lock cargo bench --bench peers     # a quick try
//! ```
//!
//! Rows (`LVSD_PEERS_ROWS`, a comma list, default all four):
//! - `1k`: 1,000 reals in 10 virtuals, interval 1 s, timeout 1 s
//! - `10k`: 10,000 reals in 100 virtuals, interval 1 s, timeout 1 s
//! - `10k1`: 10,000 reals in 1 virtual, interval 1 s, timeout 1 s
//! - `37k`: 37,298 reals in 2,284 virtuals, interval 5 s, timeout 2 s
//!
//! For each row:
//! 1. the floor: the farm alone, `minprobe 20000 N INTERVAL_MS 30` against
//!    it (probes/s and CPU % of one core);
//! 2. `run-peer-bench --peers keepalived,custom ...` with lvsd as the
//!    custom peer (`lvsd run --dry-run --ops-log $IPVS_STUB_LOG`, its own
//!    control socket in the run's directory): CPU %, RSS, checks/s and the
//!    period per real over the steady window, converge, detect and recover
//!    medians over the trials, misses;
//! 3. `37k` only: lvsd alone on the same configuration with
//!    `autoreload=yes`: the wall time of `lvsd check`, converge (start to
//!    every real with weight > 0 in the ops log), then, 10 s later, one
//!    real's weight 1 -> 2 written atomically (temp file + rename) and
//!    SIGHUP sent (the file watcher may see the rename first; whichever
//!    reloads first applies it): the time from the rename to that real's
//!    op in the ops log, and the ops for any other real or service within
//!    3 s of the rename (0 expected).
//!
//! Prints the machine (nproc, kernel, CPU model) and the tables; writes them
//! to `<target>/peers-bench/table.md` too (after every row, so a run cut
//! short keeps what it measured). Everything else lands in
//! `<target>/peers-bench/<row>/`: run-peer-bench's `--out` (results.json,
//! per-run directories) and `run-peer-bench.log`, `floor/`, `lvsd-alone/`.
//! `<target>` is `$CARGO_TARGET_DIR`, else the crate's `target/`.
//!
//! Ports: the farm listens on 127.0.0.1:20000..20000+N. Before each farm
//! starts this waits (up to 120 s) until every one of those ports can be
//! bound, so the previous row's probes in TIME_WAIT do not break it. At
//! 37,298 reals the range (20000-57297) overlaps the default ephemeral range
//! (32768-60999): any connection on the machine may take a farm port first.
//! The bench warns; reserve the overlap for the run to rule it out:
//! `sysctl -w net.ipv4.ip_local_reserved_ports=32768-57297` (set it back to
//! its old value, usually empty, afterwards).
//!
//! Environment:
//! - `LVSD_PEERS_ROWS` rows to run (above);
//! - `LVSD_PEERS_TRIALS` fail/heal trials for the 1 s rows (default 20),
//!   `LVSD_PEERS_TRIALS_BIG` for `37k` (default 8);
//! - `LVSD_PEERS_WINDOW` steady-state seconds (default 60);
//! - `LVSD_PEERS_PEERS` run-peer-bench's peers (default
//!   `keepalived,custom`; `custom` is lvsd, `lvsd` is accepted for it;
//!   `custom` alone runs lvsd alone);
//! - `LVSD_PEERS_NO_FLOOR=1` skips minprobe;
//! - `LVSD_PEERS_37K_COUNT=N` or `N/V`: the `37k` row with N reals in V
//!   virtuals instead (V defaults to N/20), to try that row's path quickly
//!   (e.g. `2000` = 2,000 reals in 100 virtuals);
//! - `LVSD_PEER_BENCH_DIR` the shared bench (default
//!   `<crate>/../shared/bench`); its `build/` must exist (`setup.sh`), else
//!   this exits 2.
#![allow(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

const LVSD: &str = env!("CARGO_BIN_EXE_lvsd");
const BASE_PORT: u32 = 20000;
/// The floor's farm admin port when free (run-peer-bench uses 19999).
const FLOOR_ADMIN_PORT: u16 = 19998;
const MINPROBE_SECONDS: u32 = 30;

#[derive(Clone, Debug)]
struct Row {
    name: &'static str,
    reals: usize,
    virtuals: usize,
    interval: u32,
    timeout: u32,
    trials: usize,
}

struct Settings {
    bench: PathBuf,
    out: PathBuf,
    rows: Vec<Row>,
    window: u32,
    peers: Vec<String>,
    floor: bool,
}

fn env_num<T: std::str::FromStr>(key: &str, default: T) -> Result<T> {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| anyhow!("{key}={v}: not a number")),
        _ => Ok(default),
    }
}

fn settings() -> Result<Settings> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bench = std::env::var_os("LVSD_PEER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../shared/bench"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let trials = env_num("LVSD_PEERS_TRIALS", 20)?;
    let trials_big = env_num("LVSD_PEERS_TRIALS_BIG", 8)?;
    let (big_n, big_v) = match std::env::var("LVSD_PEERS_37K_COUNT") {
        Ok(v) if !v.trim().is_empty() => {
            let bad = || anyhow!("LVSD_PEERS_37K_COUNT={v}: want N or N/V");
            let mut it = v.trim().splitn(2, '/');
            let n: usize = it
                .next()
                .and_then(|x| x.trim().replace(['_', ','], "").parse().ok())
                .ok_or_else(bad)?;
            let virtuals: usize = match it.next() {
                Some(x) => x.trim().parse().map_err(|_| bad())?,
                None => (n / 20).max(1),
            };
            if n == 0 || virtuals == 0 || virtuals > n {
                return Err(bad());
            }
            (n, virtuals)
        }
        _ => (37_298, 2_284),
    };
    let all = [
        Row {
            name: "1k",
            reals: 1_000,
            virtuals: 10,
            interval: 1,
            timeout: 1,
            trials,
        },
        Row {
            name: "10k",
            reals: 10_000,
            virtuals: 100,
            interval: 1,
            timeout: 1,
            trials,
        },
        Row {
            name: "10k1",
            reals: 10_000,
            virtuals: 1,
            interval: 1,
            timeout: 1,
            trials,
        },
        Row {
            name: "37k",
            reals: big_n,
            virtuals: big_v,
            interval: 5,
            timeout: 2,
            trials: trials_big,
        },
    ];
    let rows = match std::env::var("LVSD_PEERS_ROWS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                all.iter().find(|r| r.name == name).cloned().ok_or_else(|| {
                    anyhow!("LVSD_PEERS_ROWS: unknown row {name:?} (1k, 10k, 10k1, 37k)")
                })
            })
            .collect::<Result<Vec<_>>>()?,
        _ => all.to_vec(),
    };
    let peers = std::env::var("LVSD_PEERS_PEERS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "keepalived,custom".to_owned())
        .split(',')
        .map(|p| match p.trim() {
            "lvsd" => "custom".to_owned(),
            p => p.to_owned(),
        })
        .filter(|p| !p.is_empty())
        .collect();
    Ok(Settings {
        bench,
        out: target.join("peers-bench"),
        rows,
        window: env_num("LVSD_PEERS_WINDOW", 60)?,
        peers,
        floor: std::env::var("LVSD_PEERS_NO_FLOOR").map_or(true, |v| v.trim() != "1"),
    })
}

// ------------------------------------------------------------ processes

/// Sends signal `sig` (TERM, HUP, KILL) to `pid` with kill(1).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().context("waiting for a child")? {
            return Ok(Some(st));
        }
        if start.elapsed() >= limit {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The children of `pid` (from /proc; empty when unknown).
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// SIGTERM, up to `grace` to exit, then SIGKILL.
fn stop_child(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    if let Some(st) = child.try_wait()? {
        return Ok(st);
    }
    signal(child.id(), "TERM");
    if let Some(st) = wait_timeout(child, grace)? {
        return Ok(st);
    }
    eprintln!(
        "peers: pid {} still runs {grace:?} after SIGTERM: SIGKILL",
        child.id()
    );
    child.kill().context("SIGKILL")?;
    child.wait().context("waiting after SIGKILL")
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------------------ the farm

/// Ports in `[lo, hi)` that 127.0.0.1 cannot listen on now, tried as
/// the farm's workers bind them (std sets SO_REUSEADDR, as they do).
fn ports_busy(lo: u32, hi: u32) -> usize {
    (lo..hi)
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| TcpListener::bind(("127.0.0.1", *p)).is_err())
        .count()
}

/// The farm binds 127.0.0.1:20000.. with SO_REUSEADDR, which fails on a
/// port where a client's socket (one of the previous row's probes, in
/// TIME_WAIT for 60 s) sits: wait up to 120 s for the range to be free.
/// With more than 12,768 reals the range reaches into the ephemeral range
/// (32768-60999 by default), where any connection on this machine may take
/// a port first: warn (once) unless those ports are reserved.
fn await_ports(count: usize) {
    let (lo, hi) = (BASE_PORT, BASE_PORT + count as u32);
    let eph: Vec<u32> = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if let [e_lo, e_hi] = eph[..]
        && lo <= e_hi
        && e_lo < hi
    {
        let reserved =
            fs::read_to_string("/proc/sys/net/ipv4/ip_local_reserved_ports").unwrap_or_default();
        let (o_lo, o_hi) = (lo.max(e_lo), (hi - 1).min(e_hi));
        let covered = reserved.trim().split(',').any(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            matches!((a.trim().parse::<u32>(), b.trim().parse::<u32>()),
                (Ok(a), Ok(b)) if a <= o_lo && o_hi <= b)
        });
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !covered && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "peers: WARNING: the farm's ports {lo}-{} overlap the ephemeral range {e_lo}-{e_hi}: \
                 a connection on this machine may take one first and the farm then fails \
                 (Address already in use); `sysctl -w net.ipv4.ip_local_reserved_ports={o_lo}-{o_hi}` \
                 for the run prevents it",
                hi - 1
            );
        }
    }
    let start = Instant::now();
    let mut said = false;
    loop {
        let held = ports_busy(lo, hi);
        if held == 0 {
            return;
        }
        if start.elapsed() > Duration::from_secs(120) {
            eprintln!(
                "peers: {held} ports in {lo}-{} still busy after 120 s; starting the farm anyway",
                hi - 1
            );
            return;
        }
        if !said {
            eprintln!(
                "peers: {held} ports in {lo}-{} busy (earlier probes in TIME_WAIT?): waiting until they are free",
                hi - 1
            );
            said = true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `farm.py serve --impl c --workers 2` alone (the floor, lvsd alone).
/// Stopped by `/quit`, else SIGTERM/SIGKILL to farm.py and its workers by
/// pid; also when dropped on an error path.
struct Farm {
    child: Option<Child>,
    admin: u16,
}

fn admin_port() -> Result<u16> {
    if TcpListener::bind(("127.0.0.1", FLOOR_ADMIN_PORT)).is_ok() {
        return Ok(FLOOR_ADMIN_PORT);
    }
    let l = TcpListener::bind(("127.0.0.1", 0)).context("a free loopback port")?;
    Ok(l.local_addr()?.port())
}

impl Farm {
    fn start(bench: &Path, count: usize, dir: &Path) -> Result<Farm> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ready = dir.join("farm.ready");
        let _ = fs::remove_file(&ready);
        await_ports(count);
        let out_path = dir.join("farm.out");
        let out = File::create(&out_path)?;
        let admin = admin_port()?;
        let child = Command::new("python3")
            .arg(bench.join("farm.py"))
            .args(["--admin-port", &admin.to_string(), "serve"])
            .args(["--impl", "c", "--workers", "2"])
            .args(["--count", &count.to_string()])
            .args(["--base-port", &BASE_PORT.to_string()])
            .arg("--events")
            .arg(dir.join("farm-events.jsonl"))
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting farm.py")?;
        let mut farm = Farm {
            child: Some(child),
            admin,
        };
        let start = Instant::now();
        while !ready.exists() {
            let exited = match farm.child.as_mut() {
                Some(c) => c.try_wait()?.is_some(),
                None => true,
            };
            if exited || start.elapsed() > Duration::from_secs(180) {
                bail!(
                    "the farm ({count} ports) did not start; {}:\n{}",
                    out_path.display(),
                    tail(&out_path, 10)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(farm)
    }

    fn quit_request(&self) -> std::io::Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET /quit HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let workers = children(child.id());
        if let Err(e) = self.quit_request() {
            eprintln!("peers: farm /quit: {e}");
        }
        if wait_timeout(&mut child, Duration::from_secs(15))?.is_none() {
            eprintln!("peers: the farm did not quit: SIGTERM to it and its workers");
            for pid in &workers {
                signal(*pid, "TERM");
            }
            stop_child(&mut child, Duration::from_secs(10))?;
        }
        // A worker left behind (farm.py killed before it stopped them).
        for pid in workers {
            if fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains("(farm-worker)"))
            {
                signal(pid, "KILL");
            }
        }
        Ok(())
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("peers: stopping the farm: {e:#}");
        }
    }
}

/// lvsd started here; SIGTERM, 20 s, SIGKILL when stopped or dropped.
struct Daemon(Option<Child>);

impl Daemon {
    fn stop(&mut self) -> Result<Option<ExitStatus>> {
        match self.0.take() {
            Some(mut c) => stop_child(&mut c, Duration::from_secs(20)).map(Some),
            None => Ok(None),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("peers: stopping lvsd: {e:#}");
        }
    }
}

// ------------------------------------------------------------ the floor

struct Floor {
    probes_per_s: f64,
    cpu_pct: f64,
}

/// `minprobe: D probes in T s (R/s, K ok), CPU C% (user+sys)`
fn parse_minprobe(line: &str) -> Option<Floor> {
    let rate = line.split_once('(')?.1.split_once("/s")?.0.trim();
    let cpu = line.split_once("CPU ")?.1.split_once('%')?.0.trim();
    Some(Floor {
        probes_per_s: rate.parse().ok()?,
        cpu_pct: cpu.parse().ok()?,
    })
}

fn floor(s: &Settings, row: &Row, minprobe: &Path) -> Result<Floor> {
    let dir = s.out.join(row.name).join("floor");
    eprintln!(
        "peers: {}: floor: farm of {} ports, minprobe for {MINPROBE_SECONDS} s",
        row.name, row.reals
    );
    let mut farm = Farm::start(&s.bench, row.reals, &dir)?;
    let mut child = Command::new(minprobe)
        .args([
            BASE_PORT.to_string(),
            row.reals.to_string(),
            (row.interval * 1000).to_string(),
            MINPROBE_SECONDS.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting minprobe")?;
    let done = wait_timeout(
        &mut child,
        Duration::from_secs(u64::from(MINPROBE_SECONDS) + 60),
    )?;
    if done.is_none() {
        child.kill().context("killing minprobe")?;
        child.wait()?;
        bail!("minprobe did not finish");
    }
    let mut text = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut text)?;
    }
    farm.stop()?;
    fs::write(dir.join("minprobe.out"), &text)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("minprobe:"))
        .ok_or_else(|| anyhow!("minprobe printed no result: {text:?}"))?;
    eprintln!("peers: {}: {line}", row.name);
    parse_minprobe(line).ok_or_else(|| anyhow!("cannot read {line:?}"))
}

// ------------------------------------------------------------ run-peer-bench

#[derive(Default)]
struct PeerResult {
    peer: String,
    cpu: Option<f64>,
    rss: Option<f64>,
    checks: Option<f64>,
    period: Option<f64>,
    converge: Option<f64>,
    detect: Option<f64>,
    recover: Option<f64>,
    misses: Option<i64>,
    error: Option<String>,
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Copies `from` to `to` (the terminal) and to `log`, line by line.
fn tee(
    from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    log: Arc<Mutex<File>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(from);
        let mut line = Vec::new();
        while r.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let _ = to.write_all(&line);
            let _ = to.flush();
            if let Ok(mut f) = log.lock() {
                let _ = f.write_all(&line);
            }
            line.clear();
        }
    })
}

fn peer_bench(s: &Settings, row: &Row) -> Result<Vec<PeerResult>> {
    let out = s.out.join(row.name);
    // Fresh run directories: run-peer-bench empties each but not its
    // ipvs/ subdirectory, and an IPVS log left by an earlier run shows
    // every real up at once (a converge time of 0).
    if let Ok(entries) = fs::read_dir(&out) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with("-qyes") || name.ends_with("-qno") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    fs::create_dir_all(&out)?;
    let results = out.join("results.json");
    let _ = fs::remove_file(&results);
    await_ports(row.reals);
    let log_path = out.join("run-peer-bench.log");
    let log = Arc::new(Mutex::new(File::create(&log_path)?));
    // Its own control socket: another lvsd on this machine (the default
    // /run/lvsd/control.sock) does not stop this one.
    let peer_cmd = format!(
        "{} run --dry-run --ops-log $IPVS_STUB_LOG --control {{dir}}/control.sock {{conf}}",
        shell_quote(LVSD)
    );
    let mut cmd = Command::new(s.bench.join("run-peer-bench"));
    cmd.args(["--peers", &s.peers.join(",")])
        .args(["--counts", &row.reals.to_string()])
        .args(["--virtuals", &row.virtuals.to_string()])
        .args(["--interval", &row.interval.to_string()])
        .args(["--timeout", &row.timeout.to_string()])
        .args([
            "--failures",
            "1",
            "--quiescent",
            "yes",
            "--fail-mode",
            "500",
        ])
        .args(["--window", &s.window.to_string()])
        .args(["--trials", &row.trials.to_string()])
        .args(["--farm-impl", "c", "--farm-workers", "2"])
        .args(["--conf-kind", "ldirectord", "--peer-cmd", &peer_cmd])
        .arg("--out")
        .arg(&out);
    eprintln!("peers: {}: {cmd:?}", row.name);
    if let Ok(mut f) = log.lock() {
        writeln!(f, "{cmd:?}")?;
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting run-peer-bench")?;
    let threads = [
        child
            .stdout
            .take()
            .map(|o| tee(o, std::io::stdout(), Arc::clone(&log))),
        child
            .stderr
            .take()
            .map(|e| tee(e, std::io::stderr(), Arc::clone(&log))),
    ];
    let status = child.wait().context("waiting for run-peer-bench")?;
    for t in threads.into_iter().flatten() {
        let _ = t.join();
    }
    let text = fs::read_to_string(&results).with_context(|| {
        format!(
            "run-peer-bench ({status}) wrote no {}; see {}",
            results.display(),
            log_path.display()
        )
    })?;
    if !status.success() {
        eprintln!("peers: {}: run-peer-bench exited {status}", row.name);
    }
    let v: Value = serde_json::from_str(&text).context("results.json")?;
    let list = v["results"]
        .as_array()
        .ok_or_else(|| anyhow!("results.json has no results list"))?;
    let f = |r: &Value, k: &str| r[k].as_f64();
    let med = |r: &Value, k: &str| r[k]["median"].as_f64();
    Ok(list
        .iter()
        .map(|r| PeerResult {
            peer: r["peer"].as_str().unwrap_or("?").to_owned(),
            cpu: f(r, "cpu_pct"),
            rss: f(r, "rss_mib_mean"),
            checks: f(r, "checks_per_s"),
            period: med(r, "period_per_real_s"),
            converge: f(r, "converge_s"),
            detect: med(r, "detect_s"),
            recover: med(r, "recover_s"),
            misses: r["misses"].as_i64(),
            error: r["error"].as_str().map(str::to_owned),
        })
        .collect())
}

// ------------------------------------------------------------ lvsd alone

struct Op {
    ts: f64,
    op: String,
    dest: Option<String>,
    weight: Option<i64>,
}

/// Reads the ops log's new complete lines on each poll.
struct OpsTail {
    path: PathBuf,
    pos: u64,
    partial: Vec<u8>,
}

impl OpsTail {
    fn poll(&mut self) -> Result<Vec<Op>> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context("the ops log"),
        };
        f.seek(SeekFrom::Start(self.pos))?;
        let mut data = Vec::new();
        f.read_to_end(&mut data)?;
        self.pos += data.len() as u64;
        self.partial.extend_from_slice(&data);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        Ok(whole
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
            .filter_map(|v| {
                let ts = v["ts"]
                    .as_f64()
                    .or_else(|| v["ts_ns"].as_f64().map(|n| n / 1e9))?;
                Some(Op {
                    ts,
                    op: v["op"].as_str().unwrap_or("other").replace('-', "_"),
                    dest: v["dest"].as_str().map(str::to_owned),
                    weight: v["weight"].as_i64(),
                })
            })
            .collect())
    }
}

impl Op {
    fn is_write(&self) -> bool {
        matches!(self.op.as_str(), "add_dest" | "edit_dest" | "del_dest")
    }
    fn is_up(&self) -> bool {
        self.is_write() && self.op != "del_dest" && self.weight.unwrap_or(0) > 0
    }
}

struct Extras {
    reals: usize,
    virtuals: usize,
    check_s: f64,
    converge_s: f64,
    reload_s: Option<f64>,
    reload_op: String,
    other_ops: usize,
}

fn lvsd_alone(s: &Settings, row: &Row) -> Result<Extras> {
    let dir = s.out.join(row.name).join("lvsd-alone");
    fs::create_dir_all(&dir)?;
    let conf = dir.join("ldirectord.cf");
    let ops_path = dir.join("ops.jsonl");
    let _ = fs::remove_file(&ops_path);
    eprintln!(
        "peers: {}: lvsd alone, {} reals in {} virtuals",
        row.name, row.reals, row.virtuals
    );
    let mut farm = Farm::start(&s.bench, row.reals, &dir)?;

    // The configuration run-peer-bench writes, with autoreload=yes.
    let gen_out = Command::new("python3")
        .arg(s.bench.join("gen-conf.py"))
        .args(["ldirectord", "--count", &row.reals.to_string()])
        .args(["--base-port", &BASE_PORT.to_string()])
        .args(["--interval", &row.interval.to_string()])
        .args(["--timeout", &row.timeout.to_string()])
        .args(["--quiescent", "yes", "--failures", "1", "--fork", "no"])
        .args(["--virtuals", &row.virtuals.to_string()])
        .output()
        .context("gen-conf.py")?;
    if !gen_out.status.success() {
        bail!("gen-conf.py: {}", String::from_utf8_lossy(&gen_out.stderr));
    }
    let text = String::from_utf8(gen_out.stdout).context("gen-conf.py's output")?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("autoreload="))
        .map(str::to_owned)
        .collect();
    let first_global = lines
        .iter()
        .position(|l| !l.starts_with('#'))
        .unwrap_or(lines.len());
    lines.insert(first_global, "autoreload=yes".to_owned());
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(&conf, &text)?;

    let start = Instant::now();
    let checked = Command::new(LVSD)
        .arg("check")
        .arg(&conf)
        .output()
        .context("lvsd check")?;
    let check_s = start.elapsed().as_secs_f64();
    if !checked.status.success() {
        bail!(
            "lvsd check {}: {}\n{}",
            conf.display(),
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    eprintln!("peers: {}: lvsd check: {check_s:.2} s", row.name);

    let log_path = dir.join("lvsd.out");
    let log = File::create(&log_path)?;
    let t_start = now_s();
    let mut lvsd = Daemon(Some(
        Command::new(LVSD)
            .args(["run", "--dry-run", "--ops-log"])
            .arg(&ops_path)
            .arg("--control")
            .arg(dir.join("control.sock"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting lvsd")?,
    ));
    let pid = lvsd.0.as_ref().map_or(0, Child::id);
    let alive = |d: &mut Daemon| -> Result<()> {
        if let Some(c) = d.0.as_mut()
            && let Some(st) = c.try_wait()?
        {
            bail!(
                "lvsd exited ({st}); {}:\n{}",
                log_path.display(),
                tail(&log_path, 10)
            );
        }
        Ok(())
    };

    // Converge: every real with weight > 0 (its latest write).
    let want: HashSet<String> = (0..row.reals)
        .map(|i| format!("127.0.0.1:{}", BASE_PORT as usize + i))
        .collect();
    let mut up: HashMap<String, bool> = HashMap::new();
    let mut n_up = 0usize;
    let mut ops = OpsTail {
        path: ops_path.clone(),
        pos: 0,
        partial: Vec::new(),
    };
    let mut converge_s = None;
    let limit = Instant::now() + Duration::from_secs(900);
    while converge_s.is_none() {
        alive(&mut lvsd)?;
        for op in ops.poll()? {
            let Some(dest) = op
                .dest
                .as_ref()
                .filter(|d| op.is_write() && want.contains(*d))
            else {
                continue;
            };
            let now_up = op.is_up();
            let was = up.insert(dest.clone(), now_up).unwrap_or(false);
            match (was, now_up) {
                (false, true) => n_up += 1,
                (true, false) => n_up -= 1,
                _ => {}
            }
            if n_up == want.len() {
                converge_s = Some(op.ts - t_start);
            }
        }
        if Instant::now() > limit {
            bail!("lvsd: {n_up}/{} reals up after 900 s", want.len());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let converge_s = converge_s.unwrap_or(f64::NAN);
    eprintln!("peers: {}: lvsd converged in {converge_s:.2} s", row.name);

    // 10 s of steady state, then one real's weight 1 -> 2.
    let settle = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle {
        alive(&mut lvsd)?;
        ops.poll()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    ops.poll()?;
    let port = BASE_PORT as usize + row.reals / 2;
    let real = format!("127.0.0.1:{port}");
    let old = format!("real={real} masq 1");
    let mut hits = 0;
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim() == old {
                hits += 1;
                l.replace(&old, &format!("real={real} masq 2"))
            } else {
                l.to_owned()
            }
        })
        .collect();
    if hits != 1 {
        bail!("{old:?} is on {hits} lines of {}", conf.display());
    }
    let tmp = dir.join(".ldirectord.cf.tmp");
    fs::write(&tmp, edited.join("\n") + "\n")?;
    let t_edit = now_s();
    fs::rename(&tmp, &conf).context("renaming the edited config into place")?;
    signal(pid, "HUP");

    let mut after: Vec<Op> = Vec::new();
    let mut applied: Option<(f64, String)> = None;
    let wait_until = t_edit + 30.0;
    loop {
        alive(&mut lvsd)?;
        for op in ops.poll()? {
            if op.ts < t_edit {
                continue;
            }
            if applied.is_none()
                && op.dest.as_deref() == Some(real.as_str())
                && op.weight == Some(2)
            {
                applied = Some((op.ts - t_edit, op.op.clone()));
            }
            after.push(op);
        }
        let now = now_s();
        if (applied.is_some() && now > t_edit + 3.5) || now > wait_until {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let other_ops = after
        .iter()
        .filter(|o| o.ts <= t_edit + 3.0 && o.dest.as_deref() != Some(real.as_str()))
        .count();
    let status = lvsd.stop()?;
    eprintln!(
        "peers: {}: reload of {real} weight 2: {}; {other_ops} other ops within 3 s; lvsd stopped ({})",
        row.name,
        applied
            .as_ref()
            .map_or("not applied within 30 s".to_owned(), |(s, op)| format!(
                "{op} after {s:.3} s"
            )),
        status.map_or("-".to_owned(), |s| s.to_string())
    );
    farm.stop()?;
    Ok(Extras {
        reals: row.reals,
        virtuals: row.virtuals,
        check_s,
        converge_s,
        reload_s: applied.as_ref().map(|a| a.0),
        reload_op: applied.map_or_else(|| "-".to_owned(), |a| a.1),
        other_ops,
    })
}

// ------------------------------------------------------------ report

struct RowResult {
    row: Row,
    floor: Option<Result<Floor, String>>,
    peers: Result<Vec<PeerResult>, String>,
    extras: Option<Result<Extras, String>>,
}

fn fmt(x: Option<f64>, p: usize) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "-".to_owned(), |v| format!("{v:.p$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("?", |(_, m)| m.trim());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "machine: nproc {nproc}, kernel {}, CPU {model}",
        kernel.trim()
    )
}

fn report(s: &Settings, done: &[RowResult]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}\n", machine());
    let _ = writeln!(
        o,
        "peers {}, window {} s, failures 1, quiescent yes, fail-mode 500, farm c × 2 workers; lvsd {LVSD}",
        s.peers.join(","),
        s.window
    );
    for r in done {
        let r = &r.row;
        let _ = writeln!(
            o,
            "- {}: {} reals in {} virtuals, interval {} s, timeout {} s, {} trials",
            r.name, r.reals, r.virtuals, r.interval, r.timeout, r.trials
        );
    }
    let _ = writeln!(
        o,
        "\n| row | peer | CPU % | RSS MiB | checks/s (period s) | converge s | detect med s | recover med s | misses | CPU / keepalived | CPU / floor | RSS / keepalived |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in done {
        let floor_cpu = match &r.floor {
            Some(Ok(f)) => Some(f.cpu_pct),
            _ => None,
        };
        match &r.peers {
            Ok(peers) => {
                let ka = peers.iter().find(|p| p.peer == "keepalived");
                let (ka_cpu, ka_rss) = (ka.and_then(|k| k.cpu), ka.and_then(|k| k.rss));
                for p in peers {
                    let name = if p.peer == "custom" { "lvsd" } else { &p.peer };
                    let err = p
                        .error
                        .as_ref()
                        .map_or_else(String::new, |e| format!(" (ERROR: {e})"));
                    let _ = writeln!(
                        o,
                        "| {} | {name}{err} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} |",
                        r.row.name,
                        fmt(p.cpu, 2),
                        fmt(p.rss, 1),
                        fmt(p.checks, 0),
                        fmt(p.period, 2),
                        fmt(p.converge, 2),
                        fmt(p.detect, 2),
                        fmt(p.recover, 2),
                        p.misses.map_or("-".to_owned(), |m| m.to_string()),
                        fmt(ratio(p.cpu, ka_cpu), 2),
                        fmt(ratio(p.cpu, floor_cpu), 2),
                        fmt(ratio(p.rss, ka_rss), 2),
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(
                    o,
                    "| {} | ERROR: {} | - | - | - | - | - | - | - | - | - | - |",
                    r.row.name,
                    e.replace('\n', " ")
                );
            }
        }
        match &r.floor {
            Some(Ok(f)) => {
                let _ = writeln!(
                    o,
                    "| {} | floor (minprobe) | {:.2} | - | {:.0} | - | - | - | - | - | - | - |",
                    r.row.name, f.cpu_pct, f.probes_per_s
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(
                    o,
                    "| {} | floor (minprobe) ERROR: {} | - | - | - | - | - | - | - | - | - | - |",
                    r.row.name,
                    e.replace('\n', " ")
                );
            }
            None => {}
        }
    }
    let extras: Vec<_> = done
        .iter()
        .filter_map(|r| r.extras.as_ref().map(|e| (&r.row, e)))
        .collect();
    if !extras.is_empty() {
        let _ = writeln!(
            o,
            "\nlvsd alone (autoreload=yes; one real's weight 1 -> 2 by rename + SIGHUP, 10 s after converge):\n"
        );
        let _ = writeln!(
            o,
            "| row | reals / virtuals | `lvsd check` s | converge s | reload apply s (op) | other ops within 3 s |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for (row, e) in extras {
            match e {
                Ok(e) => {
                    let _ = writeln!(
                        o,
                        "| {} | {} / {} | {:.2} | {:.2} | {} ({}) | {} |",
                        row.name,
                        e.reals,
                        e.virtuals,
                        e.check_s,
                        e.converge_s,
                        fmt(e.reload_s, 3),
                        e.reload_op,
                        e.other_ops
                    );
                }
                Err(err) => {
                    let _ = writeln!(
                        o,
                        "| {} | ERROR: {} | - | - | - | - |",
                        row.name,
                        err.replace('\n', " ")
                    );
                }
            }
        }
    }
    o
}

fn main() -> ExitCode {
    let s = match settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peers: {e:#}");
            return ExitCode::from(2);
        }
    };
    if !s.bench.join("build").is_dir() {
        eprintln!(
            "peers: {} is missing: run `sudo ../shared/bench/setup.sh` first",
            s.bench.join("build").display()
        );
        return ExitCode::from(2);
    }
    if let Err(e) = fs::create_dir_all(&s.out) {
        eprintln!("peers: {}: {e}", s.out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("peers: {}", machine());
    let minprobe = s.out.join("minprobe");
    let mut floor_ok = s.floor;
    if s.floor {
        let built = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&minprobe)
            .arg(s.bench.join("minprobe.c"))
            .status();
        if !built.is_ok_and(|st| st.success()) {
            eprintln!("peers: cannot build minprobe (cc -O2): the floor is skipped");
            floor_ok = false;
        }
    }
    let table = s.out.join("table.md");
    let mut done: Vec<RowResult> = Vec::new();
    let mut failed = false;
    for row in &s.rows {
        let floor = floor_ok.then(|| floor(&s, row, &minprobe).map_err(|e| format!("{e:#}")));
        let peers = peer_bench(&s, row).map_err(|e| format!("{e:#}"));
        let extras = (row.name == "37k").then(|| lvsd_alone(&s, row).map_err(|e| format!("{e:#}")));
        failed |= floor.as_ref().is_some_and(Result::is_err)
            || extras.as_ref().is_some_and(Result::is_err)
            || peers
                .as_ref()
                .map_or(true, |p| p.iter().any(|r| r.error.is_some()));
        done.push(RowResult {
            row: row.clone(),
            floor,
            peers,
            extras,
        });
        if let Err(e) = fs::write(&table, report(&s, &done)) {
            eprintln!("peers: {}: {e}", table.display());
        }
    }
    println!("\n{}", report(&s, &done));
    eprintln!("peers: also in {}", table.display());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
