//! The soak: `cargo bench --bench soak [-- MINUTES]` (default 30; root,
//! iproute2 and util-linux's `unshare` and `setpriv`). Loopback only.
//!
//! Runs inside a network, UTS, PID and mount namespace of its own (the
//! bench re-executes itself under `unshare`; everything dies with it),
//! holding only `lo` and a veth pair `soak0` for the failover VIP, so
//! nothing reaches or changes the host's network:
//! - a farm of 1,000 HTTP reals in this process, each on its own address
//!   127.1.V.R:8080, answering `200 Service Up` or, while flapped down,
//!   `503 Service Down`;
//! - lvsd A, `lvsd run --dry-run --ops-log` on an ldirectord.cf of 10
//!   virtuals × 100 reals (http checks, checkinterval 1, negotiatetimeout 2,
//!   failurecount 1, quiescent=no: a real that fails is removed, `del-dest`
//!   in the ops log), with `metrics=` and a control socket of its own;
//! - lvsd B, a failover director (lvsd.toml with `[failover]`, node soak1,
//!   peer soak2 never heard, VIP 10.199.0.100/24 on soak0, `metrics=`),
//!   because `--dry-run` does not start failover: B is what opens the
//!   heartbeat port (UDP 694, medium `ucast lo 127.0.0.2`);
//! - reals flapping: every 3 s four reals that have been up for 10 s go
//!   down for 4 to 7 s;
//! - a reload every 10 s: lvsd A's file rewritten (renamed over it) with a
//!   new comment and another real at weight 2, then `lvsd reload`; when the
//!   control socket turns it away (the hostile client holds its slots),
//!   SIGHUP. Each reload must show up as lvsd's `reload: N check(s) kept`
//!   log line;
//! - a hostile client the whole time: 80 idle connections tried at once to
//!   each of the four listeners (A's and B's /metrics and control socket;
//!   lvsd serves 64 each), each reopened as soon as lvsd closes it, and
//!   3,000 datagrams/s to UDP 694 from 100 loopback addresses (garbage,
//!   wrong digests, unknown keys, cut-off messages, some of 60 KB).
//!
//! Prints one table row a minute: lvsd A's and B's open fds, RSS and
//! threads (lvsd's /metrics has no task gauge: tasks are not shown),
//! flaps made and seen, reloads applied, heartbeat datagrams dropped
//! (`lvsd_failover_dropped_total`), log lines written, hostile connections
//! held. Then a summary; exits 1 when a flap was missed, a healthy real
//! was removed, a down real was put back, a reload was not applied or an
//! lvsd died.
//!
//! Verdicts, from the ops log against the times the farm switched (the
//! same wall clock; M = checkinterval + negotiatetimeout = 3 s):
//! - a flap (down at d, up at u) is seen when a `del-dest` of its real
//!   comes in [d, u + M] and an `add-dest` after it in [u, u + M + 2 s];
//! - a removal at t is of a healthy real unless one of its flaps was down
//!   within [t - M, t] (down at d ≤ t, up at u ≥ t - M);
//! - an `add-dest` at t is early when the real was flapped down before t,
//!   removed since, and is still down at t.
//!
//! `LVSD_SOAK_SEED` fixes the flaps' random choices; `LVSD_SOAK_KEEP=1`
//! keeps the working directory (configs, ops log, both logs), which is
//! also kept whenever the soak fails. `LVSD_SOAK_SELFTEST=1` shows that
//! the verdicts can fail: it records flaps it does not make and takes a
//! real down unrecorded, and the run must end in FAIL with missed flaps
//! and one healthy real removed.
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark: a failure is a broken bench machine

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const VIRTUALS: usize = 10;
const REALS_PER_VIRTUAL: usize = 100;
const REALS: usize = VIRTUALS * REALS_PER_VIRTUAL;
const CHECK_INTERVAL: f64 = 1.0;
const CHECK_TIMEOUT: f64 = 2.0;
/// How long after a probe's answer its op may come: one check interval
/// plus the check's deadline.
const MARGIN: f64 = CHECK_INTERVAL + CHECK_TIMEOUT;
/// A real back up is re-added within M plus this.
const UP_GRACE: f64 = 2.0;
const FLAP_EVERY: Duration = Duration::from_secs(3);
const FLAPS_AT_ONCE: usize = 4;
const DOWN_MIN: f64 = 4.0;
const DOWN_MAX: f64 = 7.0;
/// A real flaps again only after being up this long.
const REST: f64 = 10.0;
const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// Connections the hostile client keeps trying to hold per listener.
const HOSTILE_PER_LISTENER: usize = 80;
const DATAGRAMS_PER_SEC: u64 = 3000;
const DATAGRAM_SENDERS: u8 = 100;
const HB_PORT: u16 = 694;
const METRICS_A: &str = "127.0.0.1:9114";
const METRICS_B: &str = "127.0.0.1:9115";
const NODE: &str = "soak1";
const PEER: &str = "soak2";
const SECRET: &str = "soak-secret";

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Real `i`'s address: 127.1.V.R:8080.
fn real_addr(i: usize) -> SocketAddrV4 {
    let v = u8::try_from(i / REALS_PER_VIRTUAL).unwrap();
    let r = u8::try_from(i % REALS_PER_VIRTUAL + 1).unwrap();
    SocketAddrV4::new(Ipv4Addr::new(127, 1, v, r), 8080)
}

/// xorshift64*: the flaps' and the garbage's randomness, seedable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------- outside

fn main() -> ExitCode {
    let minutes: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .filter(|m: &f64| *m > 0.0)
        .unwrap_or(30.0);
    if std::env::var_os("LVSD_SOAK_INSIDE").is_some() {
        return inside(minutes);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    if euid != "0" {
        eprintln!(
            "soak: needs root (it runs in network, PID and mount namespaces of its own, where the failover director takes its VIP)"
        );
        return ExitCode::FAILURE;
    }
    // The namespaces: lo up, a veth pair for the VIP, /sys and /proc of
    // these namespaces, as many open files as allowed. setpriv's death
    // signal takes unshare down with this process, unshare's
    // --kill-child the bench inside, and the PID namespace every lvsd.
    let script = "set -e; mount -t sysfs sysfs /sys; hostname soak1; ip link set lo up; \
                  ip link add soak0 type veth peer name soak0p; ip link set soak0 up; \
                  ip link set soak0p up; ulimit -n \"$(ulimit -Hn)\"; exec \"$0\" \"$@\"";
    let exe = std::env::current_exe().unwrap();
    let spawned = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", "unshare"])
        .args([
            "--net",
            "--uts",
            "--pid",
            "--mount",
            "--fork",
            "--kill-child",
        ])
        .args(["--mount-proc", "sh", "-c", script])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env("LVSD_SOAK_INSIDE", "1")
        .spawn();
    let mut child = match spawned {
        Ok(c) => Guard::new("unshare", c),
        Err(e) => {
            eprintln!("soak: cannot run setpriv/unshare (util-linux): {e}");
            return ExitCode::FAILURE;
        }
    };
    match child.wait() {
        Some(s) if s.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// A child process killed (SIGKILL) and reaped when dropped, panics
/// included.
struct Guard {
    name: &'static str,
    child: Option<Child>,
}

impl Guard {
    fn new(name: &'static str, child: Child) -> Guard {
        Guard {
            name,
            child: Some(child),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Still running?
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn wait(&mut self) -> Option<std::process::ExitStatus> {
        let s = self.child.as_mut()?.wait().ok();
        self.child = None;
        s
    }

    /// SIGINT, then up to `within` for it to exit; its status (None: it
    /// had to be killed).
    fn stop(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        if let Ok(Some(s)) = c.try_wait() {
            // Gone already (its pid may be another's by now).
            self.child = None;
            return Some(s);
        }
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(s)) = c.try_wait() {
                self.child = None;
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("soak: {} did not stop within {within:?}: killed", self.name);
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ------------------------------------------------------------ the farm

/// The reals' answers: `up[i]` is real i's.
type Flags = Arc<Vec<AtomicBool>>;

async fn start_farm(up: &Flags, hits: &Arc<AtomicU64>) {
    for i in 0..REALS {
        let addr = real_addr(i);
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("binding real {addr}: {e}"));
        let (up, hits) = (Arc::clone(up), Arc::clone(hits));
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        tokio::spawn(answer(s, Arc::clone(&up), i, Arc::clone(&hits)));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
    }
}

/// One check: the request head read, then the answer the real gives now.
async fn answer(mut s: tokio::net::TcpStream, up: Flags, i: usize, hits: Arc<AtomicU64>) {
    let mut buf = [0u8; 2048];
    let mut got = 0;
    let head = async {
        while got < buf.len() {
            match s.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got += n,
            }
            if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                return true;
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(10), head).await,
        Ok(true)
    ) {
        return;
    }
    hits.fetch_add(1, Ordering::Relaxed);
    let reply: &[u8] = if up[i].load(Ordering::SeqCst) {
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nService Up"
    } else {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nConnection: close\r\n\r\nService Down"
    };
    let _ = s.write_all(reply).await;
    let _ = s.shutdown().await;
}

// ------------------------------------------------------------- configs

/// lvsd A's ldirectord.cf; reload `k` > 0 puts one more real at weight 2.
fn ldirectord_cf(k: usize) -> String {
    let heavy = (k > 0).then(|| (k * 37) % REALS);
    let mut cf = format!(
        "# soak: {REALS} reals; reload {k}\n\
         checkinterval={CHECK_INTERVAL}\nchecktimeout={CHECK_TIMEOUT}\nnegotiatetimeout={CHECK_TIMEOUT}\n\
         failurecount=1\nquiescent=no\ncleanstop=no\nmetrics={METRICS_A}\n\n"
    );
    for v in 0..VIRTUALS {
        let _ = writeln!(cf, "virtual=192.0.2.{}:80", v + 1);
        for r in 0..REALS_PER_VIRTUAL {
            let i = v * REALS_PER_VIRTUAL + r;
            let w = if heavy == Some(i) { 2 } else { 1 };
            let _ = writeln!(cf, "\treal={} masq {w}", real_addr(i));
        }
        cf.push_str(
            "\tservice=http\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n\tscheduler=wlc\n\n",
        );
    }
    cf
}

/// lvsd B's lvsd.toml: failover only, alone (its peer never answers).
fn failover_toml() -> String {
    format!(
        "[global]\nmetrics = \"{METRICS_B}\"\n\n[failover]\nkeepalive = \"500ms\"\ndeadtime = 2\n\
         warntime = 1\ninitdead = 10\nudpport = {HB_PORT}\nucast = [\"lo 127.0.0.2\"]\n\
         node = [\"{NODE}\", \"{PEER}\"]\nauto_failback = \"on\"\n\
         resources = [\"{NODE} IPaddr2::10.199.0.100/24/soak0\"]\nauthkeys = \"authkeys\"\n"
    )
}

/// Writes `text` to `path` as an editor does: a new file renamed over it.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ------------------------------------------------------------- records

#[derive(Debug, Clone, Copy)]
struct Flap {
    real: usize,
    /// Taken just before the real switched down.
    down_at: f64,
    /// Taken just after it switched back up.
    up_at: Option<f64>,
    planned_up: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Add,
    Del,
    Edit,
}

/// The ops log as read so far.
#[derive(Default)]
struct Ops {
    /// Per real: (ts, kind), in log order.
    by_real: Vec<Vec<(f64, OpKind)>>,
    lines: u64,
    unknown_dest: u64,
    /// Bytes of an unfinished last line.
    rest: String,
    offset: u64,
}

impl Ops {
    fn new() -> Ops {
        Ops {
            by_real: vec![Vec::new(); REALS],
            ..Ops::default()
        }
    }

    /// Reads what lvsd appended since the last call.
    fn follow(&mut self, path: &Path, index: &HashMap<String, usize>) {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        let Ok(n) = f.read_to_end(&mut buf) else {
            return;
        };
        self.offset += n as u64;
        self.rest.push_str(&String::from_utf8_lossy(&buf));
        let Some(end) = self.rest.rfind('\n') else {
            return;
        };
        let complete: String = self.rest.drain(..=end).collect();
        for line in complete.lines() {
            self.lines += 1;
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("ops log line `{line}`: {e}"));
            let kind = match v["op"].as_str() {
                Some("add-dest") => OpKind::Add,
                Some("del-dest") => OpKind::Del,
                // Weight 0 takes a real out as surely as a removal
                // (quiescent=no should never give one).
                Some("edit-dest") if v["weight"].as_u64() == Some(0) => OpKind::Del,
                Some("edit-dest") => OpKind::Edit,
                _ => continue,
            };
            let ts = v["ts"].as_f64().unwrap();
            match v["dest"].as_str().and_then(|d| index.get(d)) {
                Some(&i) => self.by_real[i].push((ts, kind)),
                None => self.unknown_dest += 1,
            }
        }
    }

    /// Reals added at least once.
    fn added(&self) -> usize {
        self.by_real
            .iter()
            .filter(|ops| ops.iter().any(|(_, k)| *k == OpKind::Add))
            .count()
    }
}

/// What the ops log says of the flaps so far.
#[derive(Default)]
struct Verdict {
    made: usize,
    down_seen: usize,
    up_seen: usize,
    /// Flaps whose time is up: (real, down at, up at), never removed.
    missed_down: Vec<(usize, f64, f64)>,
    /// Removed, but not re-added in time.
    missed_up: Vec<(usize, f64, f64)>,
    /// Removals of a real up for the whole margin before: (real, ts).
    healthy_removed: Vec<(usize, f64)>,
    /// Re-adds while the real was still down: (real, ts).
    early_added: Vec<(usize, f64)>,
    down_lags: Vec<f64>,
    up_lags: Vec<f64>,
}

impl Verdict {
    fn missed(&self) -> usize {
        self.missed_down.len() + self.missed_up.len()
    }
}

fn judge(flaps: &[Flap], ops: &Ops, now: f64) -> Verdict {
    let mut v = Verdict {
        made: flaps.len(),
        ..Verdict::default()
    };
    let mut of_real: Vec<Vec<&Flap>> = vec![Vec::new(); REALS];
    for f in flaps {
        of_real[f.real].push(f);
    }
    for f in flaps {
        let ops = &ops.by_real[f.real];
        let until = f.up_at.unwrap_or(f64::INFINITY) + MARGIN;
        let del = ops
            .iter()
            .find(|(t, k)| *k == OpKind::Del && *t >= f.down_at && *t <= until)
            .map(|(t, _)| *t);
        let add = match (del, f.up_at) {
            (Some(d), Some(u)) => ops
                .iter()
                .find(|(t, k)| {
                    *k == OpKind::Add && *t > d && *t >= u && *t <= u + MARGIN + UP_GRACE
                })
                .map(|(t, _)| *t),
            _ => None,
        };
        if let Some(d) = del {
            v.down_seen += 1;
            v.down_lags.push(d - f.down_at);
        }
        if let (Some(a), Some(u)) = (add, f.up_at) {
            v.up_seen += 1;
            v.up_lags.push(a - u);
        }
        // Judged once everything it could cause has been read.
        if let Some(u) = f.up_at
            && now > u + MARGIN + UP_GRACE + 1.0
        {
            if del.is_none() {
                v.missed_down.push((f.real, f.down_at, u));
            } else if add.is_none() {
                v.missed_up.push((f.real, f.down_at, u));
            }
        }
    }
    for (real, ops) in ops.by_real.iter().enumerate() {
        for (i, &(t, k)) in ops.iter().enumerate() {
            match k {
                OpKind::Del => {
                    let justified = of_real[real]
                        .iter()
                        .any(|f| f.down_at <= t && f.up_at.unwrap_or(f64::INFINITY) >= t - MARGIN);
                    if !justified {
                        v.healthy_removed.push((real, t));
                    }
                }
                OpKind::Add => {
                    let early = of_real[real].iter().any(|f| {
                        t < f.up_at.unwrap_or(f64::INFINITY)
                            && ops[..i]
                                .iter()
                                .any(|(d, k)| *k == OpKind::Del && *d >= f.down_at)
                            && t > f.down_at
                    });
                    if early {
                        v.early_added.push((real, t));
                    }
                }
                OpKind::Edit => {}
            }
        }
    }
    v
}

// ------------------------------------------------------------- hostile

#[derive(Debug)]
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One listener under the hostile client's idle connections.
struct Pool {
    name: &'static str,
    target: Target,
    /// While true, the pool lets its connections go and makes none
    /// (so the bench's own scrape can get in).
    pause: tokio::sync::watch::Sender<bool>,
    held: AtomicUsize,
    connects: AtomicU64,
    /// Closed by lvsd within 250 ms: no slot was free.
    refused: AtomicU64,
    /// Closed by lvsd later: a deadline.
    closed_later: AtomicU64,
    min_life_ms: AtomicU64,
    max_life_ms: AtomicU64,
    errors: AtomicU64,
}

impl Pool {
    fn new(name: &'static str, target: Target) -> Arc<Pool> {
        Arc::new(Pool {
            name,
            target,
            pause: tokio::sync::watch::Sender::new(false),
            held: AtomicUsize::new(0),
            connects: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            closed_later: AtomicU64::new(0),
            min_life_ms: AtomicU64::new(u64::MAX),
            max_life_ms: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    async fn connect(&self) -> std::io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(match &self.target {
            Target::Tcp(a) => Box::new(tokio::net::TcpStream::connect(a).await?),
            Target::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
        })
    }
}

/// One of the hostile client's connections, for ever: open, send
/// nothing, and open again when lvsd closes it.
async fn hold(pool: Arc<Pool>) {
    let mut paused = pool.pause.subscribe();
    loop {
        let _ = paused.wait_for(|p| !*p).await;
        let connected = tokio::time::timeout(Duration::from_secs(2), pool.connect()).await;
        let Ok(Ok(mut conn)) = connected else {
            pool.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        pool.connects.fetch_add(1, Ordering::Relaxed);
        pool.held.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let closed_by_lvsd = tokio::select! {
            () = async {
                let mut buf = [0u8; 256];
                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
            } => true,
            _ = paused.wait_for(|p| *p) => false,
        };
        pool.held.fetch_sub(1, Ordering::Relaxed);
        if closed_by_lvsd {
            let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            if ms < 250 {
                pool.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                pool.closed_later.fetch_add(1, Ordering::Relaxed);
                pool.min_life_ms.fetch_min(ms, Ordering::Relaxed);
                pool.max_life_ms.fetch_max(ms, Ordering::Relaxed);
            }
        }
    }
}

/// A heartbeat-framed message (fields, then an authentication line with
/// key `index` and `digest`), as an attacker without the key makes one.
fn forged(fields: &[(&str, &str)], index: u32, digest: &str) -> Vec<u8> {
    let mut out = b"###\n".to_vec();
    for (n, v) in fields {
        let len = 3 + n.len() + 1 + v.len();
        out.extend_from_slice(format!("{len}:(0){n}={v},").as_bytes());
    }
    out.extend_from_slice(b"%%%\n");
    let auth = format!("{index} {digest}");
    out.extend_from_slice(format!("{}:{auth},", auth.len()).as_bytes());
    out
}

fn hex(rng: &mut Rng, digits: usize) -> String {
    (0..digits)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16)]))
        .collect()
}

/// A heartbeat status message's fields, as a node sends them.
fn status<'a>(src: &'a str, seq: &'a str) -> [(&'a str, &'a str); 9] {
    [
        ("t", "status"),
        ("st", "active"),
        ("dt", "7d0"),
        ("protocol", "1"),
        ("src", src),
        ("seq", seq),
        ("hg", "5f000000"),
        ("ts", "5f000001"),
        ("ttl", "3"),
    ]
}

/// Datagram `n` of the flood: garbage (now and then 60 KB of it), a
/// status "from the peer" with a wrong digest, one "from this node"
/// signed with an unknown key, a cut-off message, a length that lies.
fn datagram(n: u64, rng: &mut Rng) -> Vec<u8> {
    let seq = format!("{n:x}");
    // Each sender (n % 100) sends every kind in turn.
    match (n + n / u64::from(DATAGRAM_SENDERS)) % 5 {
        0 if n.is_multiple_of(199) => vec![b'#'; 60_000],
        0 => (0..1 + rng.below(512))
            .map(|_| u8::try_from(rng.below(256)).unwrap())
            .collect(),
        1 => forged(&status(PEER, &seq), 1, &hex(rng, 40)),
        2 => forged(&status(NODE, &seq), 9, &hex(rng, 32)),
        3 => {
            let whole = forged(&status(PEER, &seq), 1, &hex(rng, 40));
            let cut = 1 + rng.below(whole.len() - 1);
            whole[..cut].to_vec()
        }
        _ => {
            let mut m = b"###\n99999:(0)t=status,%%%\n".to_vec();
            m.extend_from_slice(hex(rng, 8).as_bytes());
            m
        }
    }
}

/// 3,000 datagrams a second to the heartbeat port from 100 loopback
/// addresses, until `stop`.
fn flood(stop: &AtomicBool, sent: &AtomicU64, seed: u64) {
    let socks: Vec<UdpSocket> = (1..=DATAGRAM_SENDERS)
        .map(|i| {
            UdpSocket::bind((Ipv4Addr::new(127, 3, 0, i), 0))
                .unwrap_or_else(|e| panic!("binding 127.3.0.{i}: {e}"))
        })
        .collect();
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, HB_PORT));
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let per_tick = DATAGRAMS_PER_SEC / 100;
    let mut next = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..per_tick {
            let d = datagram(n, &mut rng);
            let s = &socks[usize::try_from(n % u64::from(DATAGRAM_SENDERS)).unwrap()];
            if s.send_to(&d, to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            n += 1;
        }
        next += Duration::from_millis(10);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

// ------------------------------------------------------------- observing

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    fds: usize,
    rss_kib: u64,
    threads: u64,
}

fn sample(pid: u32) -> Option<Sample> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(Sample {
        fds,
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
    })
}

/// `GET /metrics` over one connection.
async fn get_metrics(addr: &str) -> std::io::Result<String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        if !text.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other(format!(
                "answer: {}",
                text.lines().next().unwrap_or("nothing (closed at once)")
            )));
        }
        Ok(text)
    };
    tokio::time::timeout(Duration::from_secs(20), fetch)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("no answer within 20 s")))
}

/// A scrape as a monitoring system would make it; when lvsd turns it away
/// (its slots held by the hostile client), the hostile pool on that
/// listener lets go for a moment and the scrape is tried again. The text,
/// and whether the first try was turned away.
async fn scrape(addr: &str, pool: &Pool) -> (Option<String>, bool) {
    if let Ok(t) = get_metrics(addr).await {
        return (Some(t), false);
    }
    pool.pause.send_replace(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = None;
    for _ in 0..40 {
        if let Ok(t) = get_metrics(addr).await {
            got = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.pause.send_replace(false);
    (got, true)
}

/// The sum of a metric's samples (every label set).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `lvsd_failover_dropped_total` by reason.
fn drops_by_reason(text: &str) -> String {
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("lvsd_failover_dropped_total{reason=\"")
            && let Some((reason, n)) = rest.split_once("\"} ")
        {
            out.push(format!("{reason} {n}"));
        }
    }
    out.join(", ")
}

/// Lines in a file, counted incrementally.
struct LineCount {
    path: PathBuf,
    offset: u64,
    lines: u64,
}

impl LineCount {
    fn new(path: &Path) -> LineCount {
        LineCount {
            path: path.to_owned(),
            offset: 0,
            lines: 0,
        }
    }
    fn update(&mut self) -> u64 {
        use std::io::{Read, Seek, SeekFrom};
        if let Ok(mut f) = std::fs::File::open(&self.path)
            && f.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            let mut buf = Vec::new();
            if let Ok(n) = f.read_to_end(&mut buf) {
                self.offset += n as u64;
                self.lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
            }
        }
        self.lines
    }
}

/// The kernel's drop count on the socket bound to the heartbeat port.
fn socket_drops() -> Option<u64> {
    let port = format!(":{HB_PORT:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .ok()?
        .lines()
        .find(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&port))
        })?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SS` (UTC), the prefix of lvsd's log
/// lines' times.
fn iso_second(t: f64) -> String {
    let secs = t.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// lvsd A's log lines about `real` within a second of `t`.
fn log_lines_about(log: &Path, real: usize, t: f64) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let who = format!("real {} ", real_addr(real));
    let seconds = [iso_second(t - 1.0), iso_second(t), iso_second(t + 1.0)];
    text.lines()
        .filter(|l| l.contains(&who) && seconds.iter().any(|s| l.starts_with(s.as_str())))
        .map(str::to_owned)
        .collect()
}

fn min_med_max(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".to_owned();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    format!(
        "{:.2} / {:.2} / {:.2} s",
        s[0],
        s[s.len() / 2],
        s[s.len() - 1]
    )
}

// ------------------------------------------------------------- inside

struct Row {
    minute: String,
    a: Option<Sample>,
    b: Option<Sample>,
    v: Verdict,
    reloads: String,
    hb_sent: u64,
    hb_dropped: Option<f64>,
    not_counted: Option<f64>,
    log_a: u64,
    log_b: u64,
    held: usize,
}

fn header() {
    println!(
        "columns: A = lvsd dry run with the reals, B = lvsd failover; fds, RSS (VmRSS) and threads from /proc \
         (no task count: lvsd's /metrics has no task gauge); flaps made, flaps whose removal (↓) and re-add (↑) \
         the ops log shows, missed flaps, healthy reals removed, down reals re-added early; reloads applied \
         (by `lvsd reload` + by SIGHUP); heartbeat datagrams sent and dropped by B (its /metrics); probes lvsd A \
         did not count (its own trouble); log lines of A and B; hostile connections open on the 4 listeners"
    );
    println!(
        "{:>5} | {:>5} {:>8} {:>4} | {:>5} {:>8} {:>4} | {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} | {:>12} | {:>9} {:>9} | {:>5} | {:>7} {:>6} | {:>4}",
        "min",
        "A fds",
        "RSS KiB",
        "thr",
        "B fds",
        "RSS KiB",
        "thr",
        "flaps",
        "↓seen",
        "↑seen",
        "missed",
        "healthy",
        "early",
        "reloads c+h",
        "hb sent",
        "hb drops",
        "local",
        "A log",
        "B log",
        "held"
    );
}

fn print_row(r: &Row) {
    let s = |x: Option<Sample>, f: fn(Sample) -> String| x.map_or_else(|| "-".to_owned(), f);
    let opt = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.0}"));
    println!(
        "{:>5} | {:>5} {:>8} {:>4} | {:>5} {:>8} {:>4} | {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} | {:>12} | {:>9} {:>9} | {:>5} | {:>7} {:>6} | {:>4}",
        r.minute,
        s(r.a, |x| x.fds.to_string()),
        s(r.a, |x| x.rss_kib.to_string()),
        s(r.a, |x| x.threads.to_string()),
        s(r.b, |x| x.fds.to_string()),
        s(r.b, |x| x.rss_kib.to_string()),
        s(r.b, |x| x.threads.to_string()),
        r.v.made,
        r.v.down_seen,
        r.v.up_seen,
        r.v.missed(),
        r.v.healthy_removed.len(),
        r.v.early_added.len(),
        r.reloads,
        r.hb_sent,
        opt(r.hb_dropped),
        opt(r.not_counted),
        r.log_a,
        r.log_b,
        r.held
    );
}

#[derive(Default)]
struct Reloads {
    issued: usize,
    by_control: usize,
    by_hup: usize,
    not_confirmed: Vec<usize>,
    /// What `lvsd reload` said the first time it was turned away.
    first_refusal: Option<String>,
    lines: ReloadLines,
}

/// lvsd A's `reload: N check(s) kept, S started, T stopped; ...` lines,
/// read as the log grows.
#[derive(Default)]
struct ReloadLines {
    offset: u64,
    rest: String,
    applied: usize,
    /// Checks started or stopped by reloads (a reload that changes only a
    /// weight should start and stop none).
    restarted: u64,
}

impl ReloadLines {
    fn update(&mut self, log: &Path) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        if let Ok(mut f) = std::fs::File::open(log)
            && f.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            let mut buf = Vec::new();
            if let Ok(n) = f.read_to_end(&mut buf) {
                self.offset += n as u64;
                self.rest.push_str(&String::from_utf8_lossy(&buf));
            }
        }
        let Some(end) = self.rest.rfind('\n') else {
            return self.applied;
        };
        let complete: String = self.rest.drain(..=end).collect();
        for l in complete.lines() {
            let Some((_, rest)) = l.split_once("reload: ") else {
                continue;
            };
            if !rest.contains("check(s) kept") {
                continue;
            }
            self.applied += 1;
            let num = |word: &str| -> u64 {
                rest.split([',', ';'])
                    .map(str::trim)
                    .find(|p| p.ends_with(word))
                    .and_then(|p| p.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            };
            self.restarted += num("started") + num("stopped");
        }
        self.applied
    }
}

/// The flaps: every [`FLAP_EVERY`], [`FLAPS_AT_ONCE`] reals that have been
/// up for [`REST`] go down for [`DOWN_MIN`]..[`DOWN_MAX`] s. None starts in
/// the last 10 s before `end`; returns once the last is back up.
///
/// `selftest` (`LVSD_SOAK_SELFTEST=1`) proves the verdicts can fail: every
/// tenth flap is recorded but the real is never switched (lvsd cannot see
/// it: a missed flap), and 20 s in one real goes down for 3 s unrecorded
/// (its removal is of a "healthy" real).
async fn flap(
    flaps: Arc<Mutex<Vec<Flap>>>,
    up: Flags,
    seed: u64,
    (t0, end): (Instant, Instant),
    selftest: bool,
) {
    let mut rng = Rng(seed);
    let mut last_up = vec![f64::NEG_INFINITY; REALS];
    // The selftest's unrecorded outage: (real, back at).
    let mut unrecorded: Option<(usize, Instant)> = None;
    let mut next_flaps = Instant::now();
    let stop_new = end.checked_sub(Duration::from_secs(10)).unwrap_or(t0);
    loop {
        let now = unix_now();
        let mut pending = false;
        for f in flaps.lock().unwrap().iter_mut() {
            if f.up_at.is_none() {
                if f.planned_up <= now {
                    up[f.real].store(true, Ordering::SeqCst);
                    let t = unix_now();
                    f.up_at = Some(t);
                    last_up[f.real] = t;
                } else {
                    pending = true;
                }
            }
        }
        let i = Instant::now();
        if selftest {
            match unrecorded {
                None if i >= t0 + Duration::from_secs(20) => {
                    let r = (0..REALS)
                        .map(|_| rng.below(REALS))
                        .find(|r| up[*r].load(Ordering::SeqCst))
                        .unwrap();
                    up[r].store(false, Ordering::SeqCst);
                    unrecorded = Some((r, i + Duration::from_secs(3)));
                }
                Some((r, back)) if i >= back && !up[r].load(Ordering::SeqCst) => {
                    up[r].store(true, Ordering::SeqCst);
                    last_up[r] = unix_now();
                }
                _ => {}
            }
        }
        if i >= stop_new && !pending {
            return;
        }
        if i >= next_flaps && i < stop_new {
            next_flaps += FLAP_EVERY;
            let mut picked = 0;
            for _ in 0..100 {
                if picked == FLAPS_AT_ONCE {
                    break;
                }
                let r = rng.below(REALS);
                if !up[r].load(Ordering::SeqCst) || last_up[r] + REST > now {
                    continue;
                }
                let down_for = DOWN_MIN + rng.unit() * (DOWN_MAX - DOWN_MIN);
                // The time first, then the switch: no answer of "down"
                // comes before `down_at`.
                let down_at = unix_now();
                let mut flaps = flaps.lock().unwrap();
                if !(selftest && flaps.len() % 10 == 9) {
                    up[r].store(false, Ordering::SeqCst);
                }
                flaps.push(Flap {
                    real: r,
                    down_at,
                    up_at: None,
                    planned_up: down_at + down_for,
                });
                picked += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every [`RELOAD_EVERY`] until `end`: lvsd A's file rewritten with
/// reload k's weights, `lvsd reload`, SIGHUP when that is turned away,
/// and lvsd's log line awaited (8 s at most).
async fn reload_every(
    reloads: Arc<Mutex<Reloads>>,
    bin: String,
    cf: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    pid: u32,
    end: Instant,
) {
    let mut k = 0;
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        if Instant::now() >= end {
            return;
        }
        k += 1;
        write_atomic(&cf, &ldirectord_cf(k));
        let out = tokio::process::Command::new(&bin)
            .args(["reload", "--control"])
            .arg(&sock)
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {bin} reload: {e}"));
        let answered = String::from_utf8_lossy(&out.stdout).contains("applied:");
        if !answered {
            let said = format!(
                "exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            reloads.lock().unwrap().first_refusal.get_or_insert(said);
            let _ = tokio::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .await;
        }
        let asked = Instant::now();
        let confirmed = loop {
            if reloads.lock().unwrap().lines.update(&log) >= k {
                break true;
            }
            if asked.elapsed() > Duration::from_secs(8) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut r = reloads.lock().unwrap();
        r.issued = k;
        match (confirmed, answered) {
            (true, true) => r.by_control += 1,
            (true, false) => r.by_hup += 1,
            (false, _) => r.not_confirmed.push(k),
        }
    }
}

fn inside(minutes: f64) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let code = rt.block_on(soak(minutes));
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

#[allow(clippy::too_many_lines)] // one story, told in order
async fn soak(minutes: f64) -> ExitCode {
    let total = Duration::from_secs_f64(minutes * 60.0);
    let seed = std::env::var("LVSD_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let lvsd_bin = std::env::var("LVSD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lvsd").into());
    let dir = tempfile::Builder::new()
        .prefix("lvsd-soak-")
        .tempdir()
        .unwrap();
    let d = dir.path().to_owned();

    // The farm.
    let up: Flags = Arc::new((0..REALS).map(|_| AtomicBool::new(true)).collect());
    let hits = Arc::new(AtomicU64::new(0));
    start_farm(&up, &hits).await;
    let index: HashMap<String, usize> = (0..REALS).map(|i| (real_addr(i).to_string(), i)).collect();

    // lvsd A (dry run, the reals) and B (failover).
    let cf = d.join("ldirectord.cf");
    write_atomic(&cf, &ldirectord_cf(0));
    let ha = d.join("ha");
    std::fs::create_dir(&ha).unwrap();
    std::fs::write(ha.join("lvsd.toml"), failover_toml()).unwrap();
    std::fs::write(ha.join("authkeys"), format!("auth 1\n1 sha1 {SECRET}\n")).unwrap();
    std::fs::set_permissions(
        ha.join("authkeys"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (ops_log, log_a, log_b) = (d.join("ops.jsonl"), d.join("a.log"), d.join("b.log"));
    let (sock_a, sock_b) = (d.join("a.sock"), d.join("b.sock"));
    let spawn = |args: Vec<&std::ffi::OsStr>, log: &Path| -> Child {
        Command::new(&lvsd_bin)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {lvsd_bin}: {e}"))
    };
    let mut a = Guard::new(
        "lvsd A",
        spawn(
            vec![
                "run".as_ref(),
                "--dry-run".as_ref(),
                "--ops-log".as_ref(),
                ops_log.as_os_str(),
                "--control".as_ref(),
                sock_a.as_os_str(),
                "--state-dir".as_ref(),
                d.join("state-a").as_os_str(),
                cf.as_os_str(),
            ],
            &log_a,
        ),
    );
    let mut b = Guard::new(
        "lvsd B",
        spawn(
            vec![
                "run".as_ref(),
                "--control".as_ref(),
                sock_b.as_os_str(),
                "--state-dir".as_ref(),
                d.join("state-b").as_os_str(),
                ha.join("lvsd.toml").as_os_str(),
            ],
            &log_b,
        ),
    );
    let (pid_a, pid_b) = (a.pid(), b.pid());

    println!(
        "soak: {minutes} min; {REALS} reals on 127.1.0.0/16 ({VIRTUALS} virtuals), checkinterval {CHECK_INTERVAL} s, \
         negotiatetimeout {CHECK_TIMEOUT} s, failurecount 1, quiescent=no; seed {seed}"
    );
    println!(
        "soak: lvsd A (dry run) pid {pid_a}, lvsd B (failover) pid {pid_b}; working directory {}",
        d.display()
    );

    // Converged: every real added once.
    let ops = Arc::new(Mutex::new(Ops::new()));
    let start = Instant::now();
    loop {
        ops.lock().unwrap().follow(&ops_log, &index);
        let n = ops.lock().unwrap().added();
        if n == REALS {
            break;
        }
        if !a.alive() || start.elapsed() > Duration::from_secs(90) {
            eprintln!(
                "soak: lvsd A added {n} of {REALS} reals in {:?} (alive: {}); its log:\n{}",
                start.elapsed(),
                a.alive(),
                std::fs::read_to_string(&log_a).unwrap_or_default()
            );
            let _ = dir.keep();
            return ExitCode::FAILURE;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "soak: lvsd A added all {REALS} reals in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    loop {
        let holds = get_metrics(METRICS_B)
            .await
            .map(|t| metric(&t, "lvsd_failover_holds"))
            .unwrap_or(0.0);
        if holds > 0.0 {
            break;
        }
        if !b.alive() || start.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "soak: lvsd B holds no VIP after {:?} (alive: {}); its log:\n{}",
                start.elapsed(),
                b.alive(),
                std::fs::read_to_string(&log_b).unwrap_or_default()
            );
            let _ = dir.keep();
            return ExitCode::FAILURE;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("soak: lvsd B holds its VIP (10.199.0.100 on soak0, in the bench's namespace)");

    // The hostile client.
    let pools = [
        Pool::new("A /metrics", Target::Tcp(METRICS_A.parse().unwrap())),
        Pool::new("A control", Target::Unix(sock_a.clone())),
        Pool::new("B /metrics", Target::Tcp(METRICS_B.parse().unwrap())),
        Pool::new("B control", Target::Unix(sock_b.clone())),
    ];
    for p in &pools {
        for _ in 0..HOSTILE_PER_LISTENER {
            tokio::spawn(hold(Arc::clone(p)));
        }
    }
    let stop_flood = Arc::new(AtomicBool::new(false));
    let hb_sent = Arc::new(AtomicU64::new(0));
    let flood_thread = {
        let (stop, sent) = (Arc::clone(&stop_flood), Arc::clone(&hb_sent));
        std::thread::spawn(move || flood(&stop, &sent, seed))
    };
    tokio::time::sleep(Duration::from_secs(5)).await;

    // The clock starts: flaps, reloads, the ops log read as it grows.
    let t0 = Instant::now();
    let end = t0 + total;
    let flaps: Arc<Mutex<Vec<Flap>>> = Arc::default();
    let selftest = std::env::var_os("LVSD_SOAK_SELFTEST").is_some();
    if selftest {
        println!(
            "soak: SELFTEST: every tenth flap is not made and one real goes down unrecorded; this run must fail"
        );
    }
    let mut flapper = tokio::spawn(flap(
        Arc::clone(&flaps),
        Arc::clone(&up),
        seed,
        (t0, end),
        selftest,
    ));
    let follower = {
        let (ops, index, path) = (Arc::clone(&ops), index.clone(), ops_log.clone());
        tokio::spawn(async move {
            loop {
                ops.lock().unwrap().follow(&path, &index);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let reloads = Arc::new(Mutex::new(Reloads::default()));
    let reloader = tokio::spawn(reload_every(
        Arc::clone(&reloads),
        lvsd_bin.clone(),
        cf.clone(),
        sock_a.clone(),
        log_a.clone(),
        pid_a,
        end,
    ));

    // A row a minute.
    header();
    let mut lines_a = LineCount::new(&log_a);
    let mut lines_b = LineCount::new(&log_b);
    let mut rows: Vec<Row> = Vec::new();
    let mut turned_away = [0usize; 2];
    let mut scrapes = 0usize;
    let mut last_drops = String::new();
    let mut died = Vec::new();
    let mut minute = 0u32;
    loop {
        let at = t0 + Duration::from_secs(60 * u64::from(minute));
        let last = at >= end;
        let at = at.min(end);
        tokio::time::sleep_until(at.into()).await;
        if last {
            // Let the last flaps come back and be seen.
            let _ = (&mut flapper).await;
            tokio::time::sleep(Duration::from_secs_f64(MARGIN + UP_GRACE + 1.5)).await;
        }
        // /proc and the hostile client first: a scrape that had to make
        // the hostile pool let go changes both for a moment.
        let (sa, sb) = (sample(pid_a), sample(pid_b));
        let held = pools.iter().map(|p| p.held.load(Ordering::Relaxed)).sum();
        let (ma, away_a) = scrape(METRICS_A, &pools[0]).await;
        let (mb, away_b) = scrape(METRICS_B, &pools[2]).await;
        // Read after B's count, so a row never shows more dropped than sent.
        let sent = hb_sent.load(Ordering::Relaxed);
        scrapes += 1;
        turned_away[0] += usize::from(away_a);
        turned_away[1] += usize::from(away_b);
        if let Some(t) = &mb {
            last_drops = drops_by_reason(t);
        }
        ops.lock().unwrap().follow(&ops_log, &index);
        let v = judge(&flaps.lock().unwrap(), &ops.lock().unwrap(), unix_now());
        let reloads_now = {
            let r = reloads.lock().unwrap();
            format!(
                "{} ({}+{})",
                r.by_control + r.by_hup,
                r.by_control,
                r.by_hup
            )
        };
        let row = Row {
            minute: if last && (minutes.fract() != 0.0 || minute == 0) {
                format!("{:.1}", t0.elapsed().as_secs_f64() / 60.0)
            } else {
                minute.to_string()
            },
            a: sa,
            b: sb,
            v,
            reloads: reloads_now,
            hb_sent: sent,
            hb_dropped: mb
                .as_ref()
                .map(|t| metric(t, "lvsd_failover_dropped_total")),
            not_counted: ma
                .as_ref()
                .map(|t| metric(t, "lvsd_probes_not_counted_total")),
            log_a: lines_a.update(),
            log_b: lines_b.update(),
            held,
        };
        print_row(&row);
        rows.push(row);
        for (g, name) in [(&mut a, "lvsd A"), (&mut b, "lvsd B")] {
            if !g.alive() && !died.contains(&name) {
                eprintln!("soak: {name} is gone (pid {})", g.pid());
                died.push(name);
            }
        }
        if last || !died.is_empty() {
            break;
        }
        minute += 1;
    }

    // Stop: the hostile client first, then both lvsd (SIGINT: they must
    // stop cleanly).
    stop_flood.store(true, Ordering::Relaxed);
    let _ = flood_thread.join();
    for p in &pools {
        p.pause.send_replace(true);
    }
    reloader.abort();
    follower.abort();
    let kernel_drops = socket_drops();
    let stop_a = a.stop(Duration::from_secs(20));
    let stop_b = b.stop(Duration::from_secs(20));

    // The summary.
    let v = &rows.last().unwrap().v;
    let first = &rows[0];
    let lastr = rows.last().unwrap();
    let span = |f: fn(Sample) -> u64, pick: fn(&Row) -> Option<Sample>| -> String {
        let all: Vec<u64> = rows.iter().filter_map(|r| pick(r).map(f)).collect();
        let show = |x: Option<u64>| x.map_or_else(|| "-".to_owned(), |x| x.to_string());
        format!(
            "{} / {} / {}",
            show(pick(first).map(f)),
            show(pick(lastr).map(f)),
            show(all.iter().copied().max())
        )
    };
    println!();
    println!(
        "summary after {:.1} min (first / last / max):",
        t0.elapsed().as_secs_f64() / 60.0
    );
    for (name, pick) in [
        (
            "lvsd A (dry run, 1,000 reals)",
            (|r: &Row| r.a) as fn(&Row) -> Option<Sample>,
        ),
        ("lvsd B (failover)", |r: &Row| r.b),
    ] {
        println!(
            "  {name}: fds {}; RSS KiB {}; threads {}",
            span(|s| s.fds as u64, pick),
            span(|s| s.rss_kib, pick),
            span(|s| s.threads, pick)
        );
    }
    println!("  tasks: not shown (lvsd's /metrics has no task gauge)");
    println!(
        "  flaps: {} made, {} removals seen, {} re-adds seen; missed: {} never removed, {} not re-added within {:.0} s",
        v.made,
        v.down_seen,
        v.up_seen,
        v.missed_down.len(),
        v.missed_up.len(),
        MARGIN + UP_GRACE
    );
    println!(
        "  down → del-dest min/median/max {}; up → add-dest {}",
        min_med_max(&v.down_lags),
        min_med_max(&v.up_lags)
    );
    for (real, d, u) in v.missed_down.iter().chain(&v.missed_up).take(10) {
        println!(
            "    missed: {} down {d:.3} up {u:.3}; ops of it: {:?}",
            real_addr(*real),
            ops.lock().unwrap().by_real[*real]
        );
    }
    println!("  healthy reals removed: {}", v.healthy_removed.len());
    for (real, t) in v.healthy_removed.iter().take(10) {
        println!(
            "    {} removed at {t:.3} ({})",
            real_addr(*real),
            iso_second(*t)
        );
        for l in log_lines_about(&log_a, *real, *t) {
            println!("      {l}");
        }
    }
    // Every flap is over: every real must be in the table again.
    let out_at_end: Vec<String> = ops
        .lock()
        .unwrap()
        .by_real
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.iter()
                .rev()
                .find(|(_, k)| *k != OpKind::Edit)
                .is_none_or(|(_, k)| *k == OpKind::Del)
        })
        .map(|(i, _)| real_addr(i).to_string())
        .collect();
    println!(
        "  reals out of the table at the end: {} {:?}",
        out_at_end.len(),
        out_at_end.iter().take(10).collect::<Vec<_>>()
    );
    println!("  down reals re-added early: {}", v.early_added.len());
    for (real, t) in v.early_added.iter().take(10) {
        println!("    {} added at {t:.3}", real_addr(*real));
    }
    let mut r = reloads.lock().unwrap();
    let reloads_in_log = r.lines.update(&log_a);
    let restarted = r.lines.restarted;
    println!(
        "  reloads: {} issued, {} applied ({} answered by `lvsd reload`, {} by SIGHUP after `lvsd reload` was turned away), {} not confirmed {:?}; {} `reload:` lines in lvsd A's log, {} checks started or stopped by them",
        r.issued,
        r.by_control + r.by_hup,
        r.by_control,
        r.by_hup,
        r.not_confirmed.len(),
        r.not_confirmed,
        reloads_in_log,
        restarted
    );
    if let Some(said) = &r.first_refusal {
        println!("    `lvsd reload` turned away: {said}");
    }
    println!(
        "  heartbeat port: {} datagrams sent, lvsd B counted {} ({last_drops}); the kernel dropped {} on the socket (buffer full)",
        hb_sent.load(Ordering::Relaxed),
        lastr
            .hb_dropped
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.0}")),
        kernel_drops.map_or_else(|| "-".to_owned(), |x| x.to_string())
    );
    println!(
        "  scrapes of /metrics turned away while the hostile client held the slots: A {}/{scrapes}, B {}/{scrapes}",
        turned_away[0], turned_away[1]
    );
    for p in &pools {
        let min = p.min_life_ms.load(Ordering::Relaxed);
        println!(
            "  hostile {}: {} connections, {} closed at once (no slot), {} closed by lvsd after {:.1}..{:.1} s, {} failed to connect",
            p.name,
            p.connects.load(Ordering::Relaxed),
            p.refused.load(Ordering::Relaxed),
            p.closed_later.load(Ordering::Relaxed),
            if min == u64::MAX {
                0.0
            } else {
                min as f64 / 1000.0
            },
            p.max_life_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            p.errors.load(Ordering::Relaxed)
        );
    }
    let (op_lines, unknown) = {
        let o = ops.lock().unwrap();
        (o.lines, o.unknown_dest)
    };
    println!(
        "  farm: {} checks answered; ops log {op_lines} lines ({unknown} for unknown reals)",
        hits.load(Ordering::Relaxed)
    );
    let clean = |s: Option<std::process::ExitStatus>| s.is_some_and(|s| s.success());
    println!(
        "  stop (SIGINT): lvsd A {:?}, lvsd B {:?}",
        stop_a.map(|s| s.to_string()),
        stop_b.map(|s| s.to_string())
    );

    let mut failed = Vec::new();
    if v.missed() > 0 {
        failed.push(format!("{} flap(s) missed", v.missed()));
    }
    if !v.healthy_removed.is_empty() {
        failed.push(format!(
            "{} healthy real(s) removed",
            v.healthy_removed.len()
        ));
    }
    if !v.early_added.is_empty() {
        failed.push(format!("{} down real(s) re-added", v.early_added.len()));
    }
    if !r.not_confirmed.is_empty() {
        failed.push(format!("{} reload(s) not applied", r.not_confirmed.len()));
    }
    if !out_at_end.is_empty() {
        failed.push(format!(
            "{} real(s) out of the table at the end",
            out_at_end.len()
        ));
    }
    if !died.is_empty() {
        failed.push(format!("{} died", died.join(" and ")));
    }
    if !clean(stop_a) || !clean(stop_b) {
        failed.push("an lvsd did not stop cleanly".to_owned());
    }
    let keep = std::env::var_os("LVSD_SOAK_KEEP").is_some() || !failed.is_empty();
    if keep {
        let kept = dir.keep();
        println!("  working directory kept: {}", kept.display());
    }
    if failed.is_empty() {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
