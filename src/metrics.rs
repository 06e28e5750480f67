//! Prometheus metrics and the `/metrics` endpoint (off unless `metrics =
//! ADDR:PORT` is set). Updating a metric is an atomic operation: the
//! daemon, the mailer and failover never wait on a scrape.
//!
//! | metric | labels |
//! |---|---|
//! | `lvsd_probes_total` | virtual, real, result (ok, fail) |
//! | `lvsd_probe_duration_seconds` (histogram) | virtual, real |
//! | `lvsd_real_up` (1 up, 0 down or out) | virtual, real |
//! | `lvsd_transitions_total` | virtual, real, to (up, down) |
//! | `lvsd_reconcile_ops_total` | op (add-service, ...) |
//! | `lvsd_reconcile_errors_total` | |
//! | `lvsd_reloads_total` | result (applied, unchanged, refused) |
//! | `lvsd_alert_queue` | |
//! | `lvsd_alert_mails_total` | outcome (sent, retried, failed, dropped) |
//! | `lvsd_failover_holds` (1 held) | set (local, foreign) |
//! | `lvsd_failover_peer_alive` | |
//! | `lvsd_probes_not_counted_total` (lvsd's own trouble) | |
//! | `lvsd_failover_dropped_total` | reason (malformed, authentication, incomplete, replay, receive) |
//! | `lvsd_log_lines_dropped_total` | |

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn probe_histogram() -> Histogram {
    // 1 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// One real's probe metrics (see [`Metrics::real_probes`]); after a
/// reload forgets the real they count nowhere.
#[derive(Debug, Clone)]
pub struct RealProbes {
    seconds: Histogram,
    ok: Counter,
    fail: Counter,
}

impl RealProbes {
    /// A probe finished.
    pub fn observe(&self, ok: bool, took: std::time::Duration) {
        self.seconds.observe(took.as_secs_f64());
        if ok {
            self.ok.inc();
        } else {
            self.fail.inc();
        }
    }
}

/// `lvsd_log_lines_dropped_total`: the log writer keeps its own count
/// ([`crate::logs::dropped`]), read at each scrape.
#[derive(Debug)]
struct LogLinesDropped;

impl Collector for LogLinesDropped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = ConstCounter::new(crate::logs::dropped());
        let m = encoder.encode_descriptor(
            "log_lines_dropped",
            "logfile= lines (file or syslog) dropped: the sink did not keep up or failed",
            None,
            c.metric_type(),
        )?;
        c.encode(m)
    }
}

/// Every metric lvsd keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    probes: Family<Labels, Counter>,
    probe_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    real_up: Family<Labels, Gauge>,
    transitions: Family<Labels, Counter>,
    reconcile_ops: Family<Labels, Counter>,
    reconcile_errors: Counter,
    reloads: Family<Labels, Counter>,
    alert_queue: Gauge,
    alert_mails: Family<Labels, Counter>,
    failover_holds: Family<Labels, Gauge>,
    failover_peer_alive: Gauge,
    failover_dropped: Family<Labels, Counter>,
    not_counted: Counter,
}

fn real(virtual_: &str, real: &str) -> Labels {
    vec![("virtual", virtual_.to_owned()), ("real", real.to_owned())]
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lvsd");
        let m = Metrics {
            registry: Registry::default(),
            probes: Family::default(),
            probe_seconds: Family::new_with_constructor(probe_histogram),
            real_up: Family::default(),
            transitions: Family::default(),
            reconcile_ops: Family::default(),
            reconcile_errors: Counter::default(),
            reloads: Family::default(),
            alert_queue: Gauge::default(),
            alert_mails: Family::default(),
            failover_holds: Family::default(),
            failover_peer_alive: Gauge::default(),
            failover_dropped: Family::default(),
            not_counted: Counter::default(),
        };
        registry.register("probes", "Probe results per real", m.probes.clone());
        registry.register(
            "probe_duration_seconds",
            "How long probes take per real",
            m.probe_seconds.clone(),
        );
        registry.register(
            "real_up",
            "1 when the real's check says up, 0 when down",
            m.real_up.clone(),
        );
        registry.register(
            "transitions",
            "Up/down transitions per real",
            m.transitions.clone(),
        );
        registry.register(
            "reconcile_ops",
            "IPVS changes made, by kind",
            m.reconcile_ops.clone(),
        );
        registry.register(
            "reconcile_errors",
            "IPVS changes the kernel refused",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "reloads",
            "Configuration reloads, by result",
            m.reloads.clone(),
        );
        registry.register(
            "alert_queue",
            "Alert mails waiting to be sent",
            m.alert_queue.clone(),
        );
        registry.register(
            "alert_mails",
            "Alert mail delivery attempts, by outcome",
            m.alert_mails.clone(),
        );
        registry.register(
            "failover_holds",
            "1 when this director holds the set of virtual IPs",
            m.failover_holds.clone(),
        );
        registry.register(
            "failover_peer_alive",
            "1 when the peer director is heard",
            m.failover_peer_alive.clone(),
        );
        registry.register(
            "failover_dropped",
            "Datagrams failover dropped, by reason",
            m.failover_dropped.clone(),
        );
        registry.register(
            "probes_not_counted",
            "Probes that failed for lvsd's own reasons (descriptors, memory, ports), not counted against reals",
            m.not_counted.clone(),
        );
        registry.register_collector(Box::new(LogLinesDropped));
        Metrics { registry, ..m }
    }

    /// The metrics a real's probes count in, looked up once: a probe then
    /// costs two atomic updates, no label built or hashed.
    pub fn real_probes(&self, virtual_: &str, real_: &str) -> RealProbes {
        let l = real(virtual_, real_);
        let seconds = self.probe_seconds.get_or_create(&l).clone();
        let result = |r: &str| {
            let mut x = l.clone();
            x.push(("result", r.to_owned()));
            self.probes.get_or_create(&x).clone()
        };
        RealProbes {
            seconds,
            ok: result("ok"),
            fail: result("fail"),
        }
    }

    /// A real's health (set at every change, and at start).
    pub fn real_up(&self, virtual_: &str, real_: &str, up: bool) {
        self.real_up
            .get_or_create(&real(virtual_, real_))
            .set(i64::from(up));
    }

    /// A real went up or down.
    pub fn transition(&self, virtual_: &str, real_: &str, up: bool) {
        let mut l = real(virtual_, real_);
        l.push(("to", if up { "up" } else { "down" }.to_owned()));
        self.transitions.get_or_create(&l).inc();
        self.real_up(virtual_, real_, up);
    }

    /// Forgets reals and virtuals a reload removed.
    pub fn forget_real(&self, virtual_: &str, real_: &str) {
        let l = real(virtual_, real_);
        self.real_up.remove(&l);
        self.probe_seconds.remove(&l);
        for result in ["ok", "fail"] {
            let mut x = l.clone();
            x.push(("result", result.to_owned()));
            self.probes.remove(&x);
        }
        for to in ["up", "down"] {
            let mut x = l.clone();
            x.push(("to", to.to_owned()));
            self.transitions.remove(&x);
        }
    }

    /// An IPVS change: its kind, and whether the kernel took it.
    pub fn reconcile_op(&self, kind: &str, ok: bool) {
        if ok {
            self.reconcile_ops
                .get_or_create(&vec![("op", kind.to_owned())])
                .inc();
        } else {
            self.reconcile_errors.inc();
        }
    }

    /// A reload: applied, unchanged or refused.
    pub fn reload(&self, result: &str) {
        self.reloads
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    /// Mails entering (+n) or leaving (-n) the delivery queues.
    pub fn alert_queued(&self, n: i64) {
        self.alert_queue.inc_by(n);
    }

    /// A delivery outcome: sent, retried, failed, dropped.
    pub fn alert_outcome(&self, outcome: &str) {
        self.alert_mails
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// What failover holds, and whether the peer is heard.
    pub fn failover(&self, local: bool, foreign: bool, peer_alive: bool) {
        for (set, held) in [("local", local), ("foreign", foreign)] {
            self.failover_holds
                .get_or_create(&vec![("set", set.to_owned())])
                .set(i64::from(held));
        }
        self.failover_peer_alive.set(i64::from(peer_alive));
    }

    /// A probe failed for lvsd's own reasons.
    pub fn probe_not_counted(&self) {
        self.not_counted.inc();
    }

    /// Failover dropped a datagram (`reason`: a `DropKind`'s label).
    pub fn failover_dropped(&self, reason: &str) {
        self.failover_dropped
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!("metrics: {e}");
        }
        out
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Method, Response, StatusCode};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("metrics: serving http://{addr}/metrics");
    let slots = crate::listen::Slots::new();
    let mut logged = None;
    // One rendering serves every scrape for a second: with 100,000 reals
    // a rendering is 200 MB and seconds of CPU, so scrapes at once (or a
    // local user's flood of them) share one body instead of each making
    // its own, and it is made off the runtime's threads, one at a time.
    let rendered: Rendered = Arc::default();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                crate::listen::accept_failed("metrics", &e, &mut logged).await;
                continue;
            }
        };
        // All slots taken by requests in progress: closed at once (a
        // scraper retries). An idle connection gives its slot up.
        let Some(slot) = slots.take().await else {
            continue;
        };
        let m = Arc::clone(&metrics);
        let rendered = Arc::clone(&rendered);
        tokio::spawn(async move {
            let slot = Arc::new(slot);
            let in_service = Arc::clone(&slot);
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let m = Arc::clone(&m);
                    let rendered = Arc::clone(&rendered);
                    let slot = Arc::clone(&in_service);
                    slot.busy();
                    async move {
                        // Answered (keep-alive): idle again.
                        let _idle = Idle(slot);
                        let r: Result<Response<Full<Bytes>>, hyper::http::Error> =
                            if req.method() == Method::GET && req.uri().path() == "/metrics" {
                                let body = latest(&rendered, &m).await;
                                Response::builder()
                            .header(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(body))
                            } else {
                                Response::builder()
                                    .status(StatusCode::NOT_FOUND)
                                    .body(Full::new(Bytes::from_static(
                                        b"lvsd serves /metrics only\n",
                                    )))
                            };
                        r
                    }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(io, service);
            // No connection lives longer, whatever its client does; an
            // idle one goes when a newer one needs its slot.
            tokio::select! {
                r = tokio::time::timeout(std::time::Duration::from_secs(30), conn) => match r {
                    Ok(Err(e)) => tracing::debug!("metrics: connection: {e}"),
                    Ok(Ok(())) => {}
                    Err(_) => tracing::debug!("metrics: a connection outlived 30 s: closed"),
                },
                () = slot.evicted() => tracing::debug!("metrics: an idle connection gave its slot up"),
            }
        });
    }
}

/// The last rendering and when it was made.
type Rendered = Arc<tokio::sync::Mutex<Option<(tokio::time::Instant, hyper::body::Bytes)>>>;

/// A rendering at most a second old: the last one, or a new one made on
/// a blocking thread (one at a time: scrapers that come meanwhile wait for
/// it and share it).
async fn latest(rendered: &Rendered, m: &Arc<Metrics>) -> hyper::body::Bytes {
    let mut last = rendered.lock().await;
    if let Some((at, body)) = &*last
        && at.elapsed() < std::time::Duration::from_secs(1)
    {
        return body.clone();
    }
    let m = Arc::clone(m);
    let body = match tokio::task::spawn_blocking(move || m.render()).await {
        Ok(text) => hyper::body::Bytes::from(text),
        Err(e) => {
            tracing::error!("metrics: rendering failed: {e}");
            hyper::body::Bytes::new()
        }
    };
    let at = tokio::time::Instant::now();
    *last = Some((at, body.clone()));
    // Not kept beyond its second (200 MB with 100,000 reals).
    let rendered = Arc::clone(rendered);
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let mut last = rendered.lock().await;
        if last.as_ref().is_some_and(|(t, _)| *t == at) {
            *last = None;
        }
    });
    body
}

/// Marks a connection idle again when its request's answer is made.
struct Idle(Arc<crate::listen::Slot>);

impl Drop for Idle {
    fn drop(&mut self) {
        self.0.idle();
    }
}
