//! The daemon end to end with the in-memory kernel and paused time: real
//! HTTP backends on 127.0.0.1, real checkers, the real scheduler; only the
//! kernel is a table in memory and the clock is tokio's test clock.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use lvsd::config::{Config, Format, Names, parse_str};
use lvsd::daemon::{self, RunOptions};
use lvsd::ipvs::table::Table;
use lvsd::ipvs::{MemoryKernel, Op};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

/// An HTTP backend whose answer the test switches: a status code, or 0
/// for "accept and never answer".
struct Backend {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<(Instant, u16)>>>,
}

impl Backend {
    async fn start() -> Backend {
        let status = Arc::new(AtomicU16::new(200));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/health", get(answer))
            .with_state((Arc::clone(&status), Arc::clone(&hits)));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        Backend { addr, status, hits }
    }

    fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Times of the requests answered `status` since `since`.
    fn hits_since(&self, since: Instant) -> Vec<(Instant, u16)> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|(t, _)| *t >= since)
            .collect()
    }

    fn real(&self) -> String {
        self.addr.to_string()
    }
}

type Shared = (Arc<AtomicU16>, Arc<Mutex<Vec<(Instant, u16)>>>);

async fn answer(State((status, hits)): State<Shared>) -> (StatusCode, &'static str) {
    let s = status.load(Ordering::SeqCst);
    hits.lock().unwrap().push((Instant::now(), s));
    if s == 0 {
        std::future::pending::<()>().await;
    }
    (StatusCode::from_u16(s).unwrap(), "Service Up")
}

fn config(text: &str) -> Config {
    let l = parse_str(Format::Ldirectord, "test.cf", text, &Names::offline());
    l.config.unwrap_or_else(|| panic!("{:#?}", l.diagnostics))
}

struct Running {
    kernel: MemoryKernel,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), daemon::DaemonError>>,
    reload: tokio::sync::mpsc::Sender<daemon::Reload>,
}

impl Running {
    fn start(cfg: Config, kernel: MemoryKernel) -> Running {
        Running::start_with(
            cfg,
            kernel,
            RunOptions {
                resync: Duration::from_secs(5),
                ..RunOptions::default()
            },
        )
    }

    fn start_with(cfg: Config, kernel: MemoryKernel, opts: RunOptions) -> Running {
        let (tx, rx) = oneshot::channel::<()>();
        let (inbox, handle) = daemon::Inbox::new();
        let reload = handle.reload;
        let task = tokio::spawn(daemon::run_with(
            cfg,
            kernel.clone(),
            opts,
            async {
                let _ = rx.await;
            },
            inbox,
        ));
        Running {
            kernel,
            stop: Some(tx),
            task,
            reload,
        }
    }

    async fn reload(&self, cfg: Config) -> daemon::ReloadOutcome {
        let (reply, answer) = oneshot::channel();
        self.reload
            .send(daemon::Reload {
                config: cfg,
                allow_empty: false,
                reply,
            })
            .await
            .unwrap();
        answer.await.unwrap()
    }

    /// The ops applied at or after `since`, as ipvsadm commands.
    fn ops_since(&self, since: Instant) -> Vec<String> {
        self.kernel
            .lock()
            .ops
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, o)| o.to_string())
            .collect()
    }

    async fn stop(mut self) -> MemoryKernel {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
        self.kernel
    }

    /// The weight of `dest` in tcp:192.0.2.10:80, None when absent.
    fn weight(&self, dest: &str) -> Option<u32> {
        let t = self.kernel.table();
        let (_, ds) = t
            .services
            .iter()
            .find(|(s, _)| s.key.name() == "tcp:192.0.2.10:80")?;
        ds.iter().find(|d| d.endpoint() == dest).map(|d| d.weight)
    }

    /// When the first op matching `f` was applied at or after `since`.
    fn op_time(&self, since: Instant, f: impl Fn(&Op) -> bool) -> Option<Instant> {
        self.kernel
            .lock()
            .ops
            .iter()
            .find(|(t, op)| *t >= since && f(op))
            .map(|(t, _)| *t)
    }
}

fn is_weight(op: &Op, dest: &str, w: u32) -> bool {
    matches!(op, Op::EditDest(_, d) | Op::AddDest(_, d) if d.endpoint() == dest && d.weight == w)
}

fn is_del(op: &Op, dest: &str) -> bool {
    matches!(op, Op::DelDest(_, d) if d.endpoint() == dest)
}

/// The n-th (1-based) hit with the given status since `since`, and the one after it.
fn nth(hits: &[(Instant, u16)], status: u16, n: usize) -> (Instant, Option<Instant>) {
    let mut it = hits
        .iter()
        .filter(|(_, s)| *s == status)
        .map(|(t, _)| *t)
        .skip(n - 1);
    (it.next().unwrap(), it.next())
}

fn two_reals(a: &Backend, b: &Backend, quiescent: &str, extra: &str) -> Config {
    config(&format!(
        "checkinterval=1\nnegotiatetimeout=2\nfailurecount=3\nrisecount=2\nquiescent={quiescent}\n{extra}\
         virtual=192.0.2.10:80\n\treal={} gate\n\treal={} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n",
        a.real(),
        b.real()
    ))
}

#[tokio::test(start_paused = true)]
async fn quiescent_real_goes_to_weight_0_after_exactly_failurecount_failures_and_back_after_risecount()
 {
    let (a, b) = (Backend::start().await, Backend::start().await);
    let d = Running::start(two_reals(&a, &b, "yes", ""), MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        (d.weight(&a.real()), d.weight(&b.real())),
        (Some(1), Some(1))
    );

    let t0 = Instant::now();
    a.set(503);
    sleep(Duration::from_secs(6)).await;
    assert_eq!(d.weight(&a.real()), Some(0));
    let when = d.op_time(t0, |op| is_weight(op, &a.real(), 0)).unwrap();
    let (third, fourth) = nth(&a.hits_since(t0), 503, 3);
    assert_eq!(when, third, "weight 0 exactly at the 3rd failure");
    assert!(fourth.is_none_or(|f| when < f));
    assert_eq!(
        d.weight(&b.real()),
        Some(1),
        "the healthy real is untouched"
    );

    let t1 = Instant::now();
    a.set(200);
    sleep(Duration::from_secs(4)).await;
    assert_eq!(d.weight(&a.real()), Some(1));
    let when = d.op_time(t1, |op| is_weight(op, &a.real(), 1)).unwrap();
    let (second, _) = nth(&a.hits_since(t1), 200, 2);
    assert_eq!(when, second, "back exactly at the 2nd success");
    // Only a's two edits happened after start-up.
    let after_start: Vec<String> = d
        .kernel
        .lock()
        .ops
        .iter()
        .filter(|(t, _)| *t >= t0)
        .map(|(_, o)| o.to_string())
        .collect();
    assert_eq!(
        after_start,
        [
            format!("ipvsadm -e -t 192.0.2.10:80 -r {} -g -w 0", a.real()),
            format!("ipvsadm -e -t 192.0.2.10:80 -r {} -g -w 1", a.real()),
        ]
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn non_quiescent_real_is_removed_and_re_added() {
    let (a, b) = (Backend::start().await, Backend::start().await);
    let d = Running::start(two_reals(&a, &b, "no", ""), MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    let t0 = Instant::now();
    a.set(500);
    sleep(Duration::from_secs(6)).await;
    assert_eq!(d.weight(&a.real()), None);
    let when = d.op_time(t0, |op| is_del(op, &a.real())).unwrap();
    assert_eq!(when, nth(&a.hits_since(t0), 500, 3).0);
    let t1 = Instant::now();
    a.set(200);
    sleep(Duration::from_secs(4)).await;
    assert_eq!(d.weight(&a.real()), Some(1));
    let when = d.op_time(t1, |op| is_weight(op, &a.real(), 1)).unwrap();
    assert_eq!(when, nth(&a.hits_since(t1), 200, 2).0);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn fallback_appears_when_all_reals_are_down_and_goes_when_one_is_up() {
    let (a, b) = (Backend::start().await, Backend::start().await);
    let cfg = two_reals(&a, &b, "no", "fallback=127.0.0.1:8080 gate\n");
    let d = Running::start(cfg, MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(d.weight("127.0.0.1:8080"), None);
    a.set(503);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(d.weight("127.0.0.1:8080"), None, "one real is still up");
    let t0 = Instant::now();
    b.set(503);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(d.weight("127.0.0.1:8080"), Some(1));
    assert_eq!(
        d.kernel.table().services[0].1.len(),
        1,
        "only the fallback is left"
    );
    // The fallback goes in before the last real leaves.
    let add_fb = d
        .op_time(t0, |op| is_weight(op, "127.0.0.1:8080", 1))
        .unwrap();
    let del_b = d.op_time(t0, |op| is_del(op, &b.real())).unwrap();
    assert_eq!(add_fb, del_b);
    let ops = d.kernel.commands();
    let i_fb = ops
        .iter()
        .position(|o| o.contains("-r 127.0.0.1:8080"))
        .unwrap();
    let i_b = ops
        .iter()
        .rposition(|o| o.starts_with("ipvsadm -d") && o.contains(&b.real()))
        .unwrap();
    assert!(i_fb < i_b, "{ops:#?}");

    b.set(200);
    sleep(Duration::from_secs(4)).await;
    assert_eq!(d.weight("127.0.0.1:8080"), None);
    assert_eq!(d.weight(&b.real()), Some(1));
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn maintenancedir_drains_and_restores_a_real() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Backend::start().await, Backend::start().await);
    let extra = format!("maintenancedir={}\n", dir.path().display());
    let d = Running::start(two_reals(&a, &b, "yes", &extra), MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(d.weight(&a.real()), Some(1));
    std::fs::write(dir.path().join(a.real()), "").unwrap();
    sleep(Duration::from_secs(3)).await;
    assert_eq!(d.weight(&a.real()), Some(0), "drained");
    assert_eq!(d.weight(&b.real()), Some(1));
    std::fs::remove_file(dir.path().join(a.real())).unwrap();
    sleep(Duration::from_secs(3)).await;
    assert_eq!(d.weight(&a.real()), Some(1), "restored");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_real_does_not_delay_any_other_check() {
    let (a, b) = (Backend::start().await, Backend::start().await);
    let cfg = config(&format!(
        "checkinterval=1\nnegotiatetimeout=30\nquiescent=yes\nvirtual=192.0.2.10:80\n\treal={} gate\n\treal={} gate\n\trequest=\"/health\"\n",
        a.real(),
        b.real()
    ));
    let d = Running::start(cfg, MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    let t0 = Instant::now();
    a.set(0);
    sleep(Duration::from_secs(40)).await;
    // b is probed every second all along, although a hangs for 30 s a time.
    let b_hits = b.hits_since(t0);
    assert!(
        (38..=42).contains(&b_hits.len()),
        "{} probes of b in 40 s",
        b_hits.len()
    );
    let gaps = b_hits.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(
        gaps <= Duration::from_millis(1100),
        "largest gap between b's probes: {gaps:?}"
    );
    // a went to weight 0 when its first hanging probe hit the deadline.
    let when = d.op_time(t0, |op| is_weight(op, &a.real(), 0)).unwrap();
    let first = a.hits_since(t0)[0].0;
    assert_eq!(when - first, Duration::from_secs(30));
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_real_shared_by_two_virtuals_is_probed_once_per_interval() {
    let a = Backend::start().await;
    let cfg = config(&format!(
        "checkinterval=1\nvirtual=192.0.2.10:80\n\treal={r} gate\n\trequest=\"/health\"\n\nvirtual=192.0.2.11:80\n\treal={r} gate\n\trequest=\"/health\"\n",
        r = a.real()
    ));
    let d = Running::start(cfg, MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    let t0 = Instant::now();
    sleep(Duration::from_secs(20)).await;
    let n = a.hits_since(t0).len();
    assert!((19..=21).contains(&n), "{n} probes in 20 s");
    // ... and its result feeds both virtuals.
    a.set(503);
    sleep(Duration::from_secs(2)).await;
    let t = d.kernel.table();
    assert_eq!(t.services.len(), 2);
    assert!(t.services.iter().all(|(_, ds)| ds.is_empty()), "{t}");
    d.stop().await;
}

fn thousand(checktype: &str) -> Config {
    let mut text =
        format!("checkinterval=1\nquiescent=yes\nvirtual=192.0.2.10:80\n\tchecktype={checktype}\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "\treal=10.1.{}.{}:80 gate\n",
            i / 250,
            i % 250 + 1
        ));
    }
    config(&text)
}

#[tokio::test(start_paused = true)]
async fn a_thousand_reals_converge_in_one_reconcile_pass() {
    let cfg = thousand("on");
    let d = Running::start(cfg.clone(), MemoryKernel::new());
    sleep(Duration::from_secs(12)).await;
    assert_eq!(d.kernel.table(), Table::all_up(&cfg));
    // One service and 1,000 destinations, each added once, and nothing since
    // (two resyncs found nothing to repair).
    assert_eq!(d.kernel.lock().ops.len(), 1001);
    assert!(d.kernel.lock().dumps >= 3);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_adopts_the_table_and_changes_nothing() {
    // lvsd was restarted: the kernel already serves both reals (one at a
    // weight the config gives it). No flush, no weight flicker, no op.
    let (a, b) = (Backend::start().await, Backend::start().await);
    let cfg = config(&format!(
        "checkinterval=1\nquiescent=yes\nvirtual=192.0.2.10:80\n\treal={} gate 3\n\treal={} gate\n\trequest=\"/health\"\n",
        a.real(),
        b.real()
    ));
    let before = Table::all_up(&cfg);
    let d = Running::start(cfg, MemoryKernel::with_table(before.clone()));
    sleep(Duration::from_secs(12)).await;
    assert!(
        a.hits_since(Instant::now() - Duration::from_secs(10)).len() >= 9,
        "checks ran"
    );
    assert!(d.kernel.lock().ops.is_empty(), "{:?}", d.kernel.commands());
    assert_eq!(d.kernel.table(), before);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn drift_is_repaired_at_the_next_resync_and_foreign_services_are_left_alone() {
    let a = Backend::start().await;
    let cfg = config(&format!(
        "checkinterval=1\nvirtual=192.0.2.10:80\n\treal={} gate\n\trequest=\"/health\"\n",
        a.real()
    ));
    // A service lvsd does not own, already in the kernel.
    let foreign = config("virtual=192.0.2.99:25\n\treal=10.9.9.9:25 gate\n\tchecktype=on\n");
    let d = Running::start(cfg, MemoryKernel::with_table(Table::all_up(&foreign)));
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(d.kernel.table().services.len(), 2);
    // Someone runs `ipvsadm -d` by hand.
    let (key, dest) = {
        let t = d.kernel.table();
        let (s, ds) = t
            .services
            .iter()
            .find(|(s, _)| s.key.name() == "tcp:192.0.2.10:80")
            .unwrap();
        (s.key, ds[0].clone())
    };
    d.kernel
        .lock()
        .table
        .apply(&Op::DelDest(key, dest))
        .unwrap();
    sleep(Duration::from_secs(6)).await;
    assert_eq!(d.weight(&a.real()), Some(1), "re-added at the resync");
    let k = d.stop().await;
    // cleanstop (default yes) removed lvsd's service, not the foreign one.
    assert_eq!(k.table(), Table::all_up(&foreign));
}

#[tokio::test(start_paused = true)]
async fn cleanstop_no_leaves_the_table_as_it_is() {
    let a = Backend::start().await;
    let cfg = config(&format!(
        "checkinterval=1\ncleanstop=no\nvirtual=192.0.2.10:80\n\treal={} gate\n\trequest=\"/health\"\n",
        a.real()
    ));
    let d = Running::start(cfg, MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    let before = d.kernel.table();
    assert_eq!(before.services[0].1.len(), 1);
    let k = d.stop().await;
    assert_eq!(k.table(), before);
}

#[tokio::test(start_paused = true)]
async fn checktype_n_negotiates_first_then_every_n_connects() {
    let a = Backend::start().await;
    let cfg = config(&format!(
        "checkinterval=1\nvirtual=192.0.2.10:80\n\treal={} gate\n\tchecktype=3\n\trequest=\"/health\"\n",
        a.real()
    ));
    let t0 = Instant::now();
    let d = Running::start(cfg, MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.hits_since(t0).len(), 1, "the first probe negotiates");
    sleep(Duration::from_secs(11)).await;
    // 12 or 13 probes (first one within the first second, then every
    // 1 s ± 5%): N C C C N C C C N C C C (N) — HTTP requests only on N.
    let n = a.hits_since(t0).len();
    assert!((3..=4).contains(&n), "{n} HTTP requests");
    assert_eq!(d.weight(&a.real()), Some(1));
    // A negotiate failure takes the real out even though connects succeed.
    a.set(503);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(d.weight(&a.real()), None);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn fallbackcommand_runs_start_when_no_real_is_up_and_stop_when_one_is() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calls");
    let script = dir.path().join("fallback.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let a = Backend::start().await;
    let cfg = config(&format!(
        "checkinterval=1\nfallbackcommand={}\nvirtual=192.0.2.10:80\n\treal={} gate\n\trequest=\"/health\"\n",
        script.display(),
        a.real()
    ));
    // The command runs outside tokio's clock: wait for it in real time,
    // without blocking the runtime (the daemon starts the commands).
    let real_pause =
        || tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)));
    let calls = async |n: usize| {
        for _ in 0..200 {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.lines().count() >= n {
                return text;
            }
            real_pause().await.unwrap();
        }
        std::fs::read_to_string(&out).unwrap_or_default()
    };
    let d = Running::start(cfg, MemoryKernel::new());
    sleep(Duration::from_millis(1500)).await;
    // At start no real was up yet (ldirectord runs the command then too).
    assert_eq!(
        calls(2).await,
        "start 192.0.2.10:80 tcp\nstop 192.0.2.10:80 tcp\n"
    );
    a.set(503);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(
        calls(3).await.lines().last(),
        Some("start 192.0.2.10:80 tcp")
    );
    sleep(Duration::from_secs(3)).await;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        calls(3).await.lines().count(),
        3,
        "once per change, not per probe"
    );
    d.stop().await;
}

/// Checks other than HTTP reach the daemon the same way (real time: an
/// external command is a real process). An external check decides one
/// real, a simpletcp check the other; each failure and recovery shows up
/// as the ops ldirectord would make.
#[tokio::test]
async fn external_and_simpletcp_checks_drive_the_table() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("down");
    let script = dir.path().join("check");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1 $2 $3 $4\" = \"192.0.2.10 80 10.0.0.7 80\" ] || exit 9\n[ ! -e {} ]\n",
            flag.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A send/expect server: answers "Service Up" while `up` is set.
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let up2 = Arc::clone(&up);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let up = up2.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut req = Vec::new();
                let _ = s.read_to_end(&mut req).await;
                if req == b"STATUS\n" {
                    let answer: &[u8] = if up {
                        b"Service Up\n"
                    } else {
                        b"Service Down\n"
                    };
                    let _ = s.write_all(answer).await;
                }
            });
        }
    });
    let cfg = config(&format!(
        "checkinterval=1\nchecktimeout=2\nnegotiatetimeout=2\nquiescent=no\n\
         virtual=192.0.2.10:80\n\treal=10.0.0.7:80 gate\n\tchecktype=external\n\tcheckcommand=\"{}\"\n\n\
         virtual=192.0.2.11:7000\n\treal=127.0.0.1:{port} gate\n\tservice=simpletcp\n\trequest=\"STATUS\\n\"\n\treceive=\"^Service Up$\"\n",
        script.display()
    ));
    let d = Running::start(cfg, MemoryKernel::new());
    let has = |d: &Running, dest: &str| {
        d.kernel
            .table()
            .services
            .iter()
            .any(|(_, ds)| ds.iter().any(|x| x.endpoint() == dest))
    };
    let simple = format!("127.0.0.1:{port}");
    // Each step: change the servers, then wait (real time) for the table.
    for (what, want_external, want_simple) in [
        ("both up", true, true),
        ("external down", false, true),
        ("both down", false, false),
        ("both back", true, true),
    ] {
        match what {
            "external down" => std::fs::write(&flag, "").unwrap(),
            "both down" => up.store(false, Ordering::SeqCst),
            "both back" => {
                std::fs::remove_file(&flag).unwrap();
                up.store(true, Ordering::SeqCst);
            }
            _ => {}
        }
        let start = std::time::Instant::now();
        while !(has(&d, "10.0.0.7:80") == want_external && has(&d, &simple) == want_simple) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what}: {}",
                d.kernel.table()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    d.stop().await;
}

// ------------------------------------------------------------ reload

fn three_reals(a: &Backend, b: &Backend, c: &Backend) -> Config {
    config(&format!(
        "checkinterval=1\nnegotiatetimeout=2\nfailurecount=3\nrisecount=2\nquiescent=no\n\
         virtual=192.0.2.10:80\n\treal={} gate\n\treal={} gate\n\treal={} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n",
        a.real(),
        b.real(),
        c.real()
    ))
}

/// The gaps between a backend's consecutive probes since `since`, in ms.
fn gaps(b: &Backend, since: Instant) -> Vec<u128> {
    let hits = b.hits_since(since);
    hits.windows(2)
        .map(|w| (w[1].0 - w[0].0).as_millis())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_reload_adds_a_real_without_touching_the_others_or_their_timers() {
    let (a, b, c) = (
        Backend::start().await,
        Backend::start().await,
        Backend::start().await,
    );
    let d = Running::start(two_reals(&a, &b, "no", ""), MemoryKernel::new());
    // Half an interval off the checks' phase: a restarted task would probe
    // at the wrong time.
    sleep(Duration::from_millis(3500)).await;
    let t0 = Instant::now();
    d.reload(three_reals(&a, &b, &c)).await;
    sleep(Duration::from_secs(4)).await;
    // The new real: probed, up after risecount (2) successes, added.
    assert_eq!(d.weight(&c.real()), Some(1));
    assert_eq!(
        d.ops_since(t0),
        [format!(
            "ipvsadm -a -t 192.0.2.10:80 -r {} -g -w 1",
            c.real()
        )],
        "nothing but the new real changed"
    );
    // The kept checks keep their rhythm: no probe early, none skipped.
    for be in [&a, &b] {
        for g in gaps(be, t0 - Duration::from_secs(2)) {
            assert!(
                (900..=1100).contains(&g),
                "a probe gap of {g} ms across the reload"
            );
        }
    }
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_reload_changes_nothing() {
    let (a, b) = (Backend::start().await, Backend::start().await);
    let d = Running::start(two_reals(&a, &b, "no", ""), MemoryKernel::new());
    sleep(Duration::from_secs(3)).await;
    let t0 = Instant::now();
    let before = a.hits_since(t0 - Duration::from_secs(3)).len();
    d.reload(two_reals(&a, &b, "no", "")).await;
    sleep(Duration::from_secs(3)).await;
    assert!(d.ops_since(t0).is_empty());
    let after = a.hits_since(t0).len();
    assert!(
        (2..=4).contains(&after),
        "{after} probes in 3 s (before: {before} in 3 s)"
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_changed_check_keeps_serving_reals_up_until_it_says_otherwise() {
    let (a, b) = (Backend::start().await, Backend::start().await);
    let d = Running::start(two_reals(&a, &b, "no", ""), MemoryKernel::new());
    sleep(Duration::from_secs(3)).await;
    let t0 = Instant::now();
    // Another receive string: new checks for both reals. They start from
    // what the kernel serves (up), so nothing flaps while they run.
    let changed = config(&format!(
        "checkinterval=1\nnegotiatetimeout=2\nfailurecount=3\nrisecount=2\nquiescent=no\n\
         virtual=192.0.2.10:80\n\treal={} gate\n\treal={} gate\n\trequest=\"/health\"\n\treceive=\"Service\"\n",
        a.real(),
        b.real()
    ));
    d.reload(changed).await;
    sleep(Duration::from_secs(3)).await;
    assert!(d.ops_since(t0).is_empty(), "{:?}", d.ops_since(t0));
    // The new check works: a failing real still goes after failurecount.
    a.set(503);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(d.weight(&a.real()), None);
    assert_eq!(d.weight(&b.real()), Some(1));
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_virtual_dropped_by_a_reload_leaves_the_kernel() {
    let (a, b) = (Backend::start().await, Backend::start().await);
    let both = config(&format!(
        "checkinterval=1\nquiescent=no\ncleanstop=no\n\
         virtual=192.0.2.10:80\n\treal={} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n\n\
         virtual=192.0.2.11:80\n\treal={} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n",
        a.real(),
        b.real()
    ));
    let one = config(&format!(
        "checkinterval=1\nquiescent=no\ncleanstop=no\n\
         virtual=192.0.2.10:80\n\treal={} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n",
        a.real()
    ));
    let d = Running::start(both, MemoryKernel::new());
    sleep(Duration::from_secs(2)).await;
    assert_eq!(d.kernel.table().services.len(), 2);
    let t0 = Instant::now();
    d.reload(one).await;
    sleep(Duration::from_secs(2)).await;
    assert_eq!(d.ops_since(t0), ["ipvsadm -D -t 192.0.2.11:80"]);
    // Its real's check stopped with it.
    let later = Instant::now();
    sleep(Duration::from_secs(3)).await;
    assert!(
        b.hits_since(later).is_empty(),
        "the dropped real is still probed"
    );
    assert_eq!(a.hits_since(later).len(), 3);
    d.stop().await;
}

/// 100 reloads back and forth: no check task is left behind (each real is
/// probed once a second after them, as before), and the table ends right.
#[tokio::test(start_paused = true)]
async fn a_hundred_reloads_leave_no_task_behind() {
    let (a, b, c) = (
        Backend::start().await,
        Backend::start().await,
        Backend::start().await,
    );
    let two = two_reals(&a, &b, "no", "");
    let three = three_reals(&a, &b, &c);
    let d = Running::start(two.clone(), MemoryKernel::new());
    sleep(Duration::from_secs(3)).await;
    for i in 0..100 {
        d.reload(if i % 2 == 0 {
            three.clone()
        } else {
            two.clone()
        })
        .await;
        sleep(Duration::from_millis(50)).await;
    }
    sleep(Duration::from_secs(2)).await;
    let t0 = Instant::now();
    sleep(Duration::from_secs(5)).await;
    for be in [&a, &b] {
        let n = be.hits_since(t0).len();
        assert!((4..=6).contains(&n), "{n} probes in 5 s after 100 reloads");
    }
    assert!(c.hits_since(t0).is_empty(), "c's check outlived its reload");
    assert_eq!(d.weight(&c.real()), None);
    assert_eq!(
        (d.weight(&a.real()), d.weight(&b.real())),
        (Some(1), Some(1))
    );
    d.stop().await;
}

/// What the daemon tells the mailer: each real's first result at start
/// (starting); after a reload, nothing about the checks it kept (no "up"
/// again), the new real's first result (reloading); a removed real is
/// gone; a failure told once with its reason, whatever the later probes
/// say, until the real is back.
#[tokio::test(start_paused = true)]
async fn notices_tell_changes_and_nothing_else() {
    use lvsd::alert::{Change, DaemonState, Notice};
    let (a, b, c) = (
        Backend::start().await,
        Backend::start().await,
        Backend::start().await,
    );
    let (notices, mut rx) = lvsd::alert::Notices::channel(64);
    let two = two_reals(&a, &b, "no", "");
    let d = Running::start_with(
        two.clone(),
        MemoryKernel::new(),
        RunOptions {
            resync: Duration::from_secs(5),
            alerts: Some(notices),
            ..RunOptions::default()
        },
    );
    let mut drain = || {
        let mut out: Vec<(DaemonState, String, Change)> = Vec::new();
        while let Ok(Notice {
            state,
            subject,
            change,
            ..
        }) = rx.try_recv()
        {
            out.push((state, subject, change));
        }
        out.sort_by(|x, y| x.1.cmp(&y.1));
        out
    };
    let of = |b: &Backend| format!("real {} of tcp:192.0.2.10:80", b.real());
    sleep(Duration::from_secs(3)).await;
    let mut want = vec![
        (DaemonState::Starting, of(&a), Change::Up),
        (DaemonState::Starting, of(&b), Change::Up),
    ];
    want.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(drain(), want);
    d.reload(three_reals(&a, &b, &c)).await;
    sleep(Duration::from_secs(3)).await;
    assert_eq!(
        drain(),
        [(DaemonState::Reloading, of(&c), Change::Up)],
        "kept checks say nothing"
    );
    d.reload(two.clone()).await;
    sleep(Duration::from_secs(1)).await;
    assert_eq!(drain(), [(DaemonState::Reloading, of(&c), Change::Gone)]);
    a.set(503);
    sleep(Duration::from_secs(10)).await;
    let told = drain();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!((told[0].0, &told[0].1), (DaemonState::Running, &of(&a)));
    assert!(
        matches!(&told[0].2, Change::Down { reason } if reason.contains("503")),
        "{told:?}"
    );
    a.set(200);
    sleep(Duration::from_secs(4)).await;
    assert_eq!(drain(), [(DaemonState::Running, of(&a), Change::Up)]);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_stops_the_probes_of_the_checks_it_removes() {
    // Two places in flight, both held by reals that never answer (a 600 s
    // deadline); a reload replaces them with a healthy real. Their probes
    // must go with them, or the new real waits ten minutes for a place.
    let (a, b, c) = (
        Backend::start().await,
        Backend::start().await,
        Backend::start().await,
    );
    a.set(0);
    b.set(0);
    let hanging = config(&format!(
        "checkinterval=1\nnegotiatetimeout=600\nquiescent=yes\nvirtual=192.0.2.10:80\n\treal={} gate\n\treal={} gate\n\trequest=\"/health\"\n",
        a.real(),
        b.real()
    ));
    let opts = RunOptions {
        max_in_flight: 2,
        ..RunOptions::default()
    };
    let d = Running::start_with(hanging, MemoryKernel::new(), opts);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(
        a.hits_since(Instant::now() - Duration::from_secs(3)).len(),
        1
    );
    let healthy = config(&format!(
        "checkinterval=1\nnegotiatetimeout=600\nquiescent=yes\nvirtual=192.0.2.10:80\n\treal={} gate\n\trequest=\"/health\"\n",
        c.real()
    ));
    assert!(matches!(
        d.reload(healthy).await,
        daemon::ReloadOutcome::Applied(_)
    ));
    sleep(Duration::from_secs(3)).await;
    assert_eq!(d.weight(&c.real()), Some(1), "the new real is in");
    d.stop().await;
}
