//! `lvsd run`'s wiring: the kernel, signals, the control socket and its
//! routing, failover, metrics, mail, the reloader and systemd around
//! [`daemon::run_with`]. Nothing here decides anything.

use std::path::{Path, PathBuf};

use crate::config::{self, Names};
use crate::control::{Answer, Command, Reply};
use crate::daemon::{self, RunOptions};
use crate::failover::run::{Ask, Asked};
use crate::ipvs::DryRun;
use crate::ipvs::netlink::NetlinkKernel;
use crate::reloader::{Reloader, Running};

/// `lvsd run` on the configuration `c` read from `files`: logs to stderr
/// or journald (RUST_LOG filters, default info) until SIGTERM or SIGINT.
pub fn run(
    c: config::Config,
    dry_run: bool,
    ops_log: Option<PathBuf>,
    control: &Path,
    state_dir: &Path,
    files: &[PathBuf],
    names: &Names,
) -> anyhow::Result<()> {
    use anyhow::Context;
    // Before anything is touched: one lvsd per control socket.
    let _instance = crate::instance::InstanceLock::take(control)?;
    let open_files = crate::instance::raise_open_files();
    let hostname = names.hostname();
    let log_target = crate::logs::Target::default();
    log_target.set(c.global.logfile.clone());
    let cfgname = files.first().and_then(|f| f.file_name()).map_or_else(
        || "lvsd.toml".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    crate::logs::init(log_target.clone(), cfgname);
    // Probes in flight at once: half the open files lvsd may have (reals
    // that hang hold a place for their whole deadline, and the others wait
    // behind them; more than the files would fail with EMFILE), at most
    // 32,768.
    let max_in_flight = match &open_files {
        Ok((soft, _)) => usize::try_from(*soft / 2).unwrap_or(1024).clamp(16, 32_768),
        Err(_) => 1024,
    };
    match open_files {
        Ok((soft, _)) if soft < 4096 => tracing::warn!(
            "only {soft} open files allowed (the hard limit): probes of many reals may run short; raise LimitNOFILE"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    // Failover (ha.cf) is checked before anything starts.
    let failover = match &c.failover {
        Some(f) if !dry_run => {
            crate::failover::run::plan(f, hostname, &crate::failover::routes::read())
                .map_err(|e| anyhow::anyhow!("failover: {e}"))?;
            Some(f.clone())
        }
        Some(_) => {
            eprintln!("lvsd: dry run: failover (ha.cf) is not started, no VIP is changed");
            None
        }
        None => None,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let outcome = rt.block_on(async {
        // The kernel first: nothing (no VIP) starts when it cannot be had.
        enum Chosen {
            Dry(DryRun),
            None(crate::ipvs::MemoryKernel),
            Netlink(NetlinkKernel),
        }
        let kernel = if dry_run {
            tracing::info!("dry run: ops go to an in-memory table, no kernel is changed");
            Chosen::Dry(DryRun::new(ops_log.as_deref()).with_context(|| {
                format!(
                    "opening the ops log {}",
                    ops_log.as_deref().unwrap_or(Path::new("")).display()
                )
            })?)
        } else if c.virtuals.is_empty() {
            // Failover only (ha.cf without virtual services): IPVS is used
            // when the machine has it (a reload may bring virtuals), else
            // not needed.
            match NetlinkKernel::open() {
                Ok(k) => Chosen::Netlink(k),
                Err(e) => {
                    tracing::info!(
                        "no virtual services, and no IPVS here ({e}): the IPVS table is not used"
                    );
                    Chosen::None(crate::ipvs::MemoryKernel::new())
                }
            }
        } else {
            Chosen::Netlink(NetlinkKernel::open()?)
        };
        let without_ipvs = matches!(kernel, Chosen::None(_));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_tx = std::sync::Arc::new(stop_tx);
        let on_signal = std::sync::Arc::clone(&stop_tx);
        tokio::spawn(async move {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            match term {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot catch SIGTERM ({e}); stop with SIGINT");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            let _ = on_signal.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let shutdown = stopped(stop_rx.clone());
        let sync = c.global.lvs_sync_daemon.clone();
        if sync.is_some() && failover.is_none() {
            tracing::warn!(
                "lvs_sync_daemon: the sync daemon follows the failover role, and failover (ha.cf) is not running: not started"
            );
        }
        // Metrics (when `metrics =` is set), mail, monitorfile.
        let metrics = c.global.metrics.map(|addr| {
            let m = std::sync::Arc::new(crate::metrics::Metrics::new());
            let serve = std::sync::Arc::clone(&m);
            tokio::spawn(async move {
                if let Err(e) = crate::metrics::serve(addr, serve).await {
                    tracing::error!("metrics: cannot listen on {addr}: {e}");
                }
            });
            m
        });
        let (notices, mailer) = crate::alert::start(
            hostname.to_owned(),
            std::time::Duration::from_secs(c.global.emailalertcoalesce),
            metrics.clone(),
        );
        let mut failover_commands = None;
        // Failover's link and sockets before anything runs: a heartbeat
        // port another lvsd holds stops this one here.
        let failover = match failover {
            Some(f) => {
                let opened = crate::failover::run::open(&f, hostname, state_dir)
                    .map_err(|e| anyhow::anyhow!("failover: {e}"))?;
                Some((f, opened))
            }
            None => None,
        };
        let failover_task = failover.map(|(f, opened)| {
            let me = hostname.to_owned();
            let rx = stop_rx.clone();
            let fo_metrics = metrics.clone();
            let teller = crate::alert::Teller {
                notices: notices.clone(),
                routes: crate::alert::routes(&c),
                from: c.global.emailalertfrom.clone(),
            };
            let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel::<Asked>(8);
            failover_commands = Some(cmd_tx);
            tokio::spawn(async move {
                if let Err(e) = crate::failover::run::run(&f, &me, opened, sync, stopped(rx), cmd_rx, fo_metrics, Some(teller)).await {
                    tracing::error!("failover stopped: {e}");
                }
            })
        });
        // The control socket, and SIGHUP: reloads here, failover commands
        // to failover.
        let (inbox, handle) = daemon::Inbox::new();
        let handle_alive = handle.alive.clone();
        let (ctl_tx, mut ctl_rx) = tokio::sync::mpsc::channel::<crate::control::Request>(8);
        let path = control.to_owned();
        tokio::spawn(async move {
            if let Err(e) = crate::control::serve(&path, ctl_tx).await {
                tracing::warn!("control socket {}: {e}", path.display());
            }
        });
        let reloader = Reloader {
            files: files.to_vec(),
            names: names.clone(),
            to: handle.reload.clone(),
            running: std::sync::Arc::new(std::sync::Mutex::new(Running::of(&c))),
            one_at_a_time: std::sync::Arc::default(),
            started: std::sync::Arc::default(),
            notices: notices.clone(),
            metrics: metrics.clone(),
            log_target,
            last_read: std::sync::Arc::default(),
        };
        let on_change = reloader.clone();
        tokio::spawn(async move { on_change.watch().await });
        let on_hup = reloader.clone();
        tokio::spawn(async move {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(mut hup) => {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP: reloading");
                        on_hup.reload(false).await;
                    }
                }
                Err(e) => tracing::warn!("cannot catch SIGHUP ({e}); use lvsd reload"),
            }
        });
        // Each request on its own task: a reload that reads slow files
        // never holds up `lvsd status` (reloads queue in the reloader).
        tokio::spawn(async move {
            while let Some(req) = ctl_rx.recv().await {
                let (reloader, handle, failover) =
                    (reloader.clone(), handle.clone(), failover_commands.clone());
                tokio::spawn(async move {
                    let a = answer(req.command, &reloader, &handle, failover.as_ref()).await;
                    let _ = req.reply.send(a);
                });
            }
        });
        // systemd: READY once the first reconcile is done; the watchdog is
        // fed only while the daemon's loop answers.
        let ready = std::sync::Arc::new(tokio::sync::Notify::new());
        crate::systemd::start(std::sync::Arc::clone(&ready), handle_alive);
        let opts = RunOptions {
            alerts: Some(notices),
            metrics,
            monitor: Some(crate::monitor::Monitor::start()),
            ready: Some(ready),
            without_ipvs,
            rooms: check_rooms(),
            max_in_flight,
            ..RunOptions::default()
        };
        let result = match kernel {
            Chosen::Dry(k) => daemon::run_with(c, k, opts, shutdown, inbox).await,
            Chosen::None(k) => daemon::run_with(c, k, opts, shutdown, inbox).await,
            Chosen::Netlink(k) => daemon::run_with(c, k, opts, shutdown, inbox).await,
        };
        // The daemon stopped (or could not start): failover gives its VIPs
        // up before we exit.
        crate::systemd::stopping();
        let _ = stop_tx.send(true);
        if let Some(t) = failover_task
            && tokio::time::timeout(std::time::Duration::from_secs(10), t)
                .await
                .is_err()
        {
            tracing::warn!("failover did not stop within 10 s");
        }
        // The last mails (the stop notice among them) get a few seconds.
        mailer.finish(std::time::Duration::from_secs(5)).await;
        // And the last log lines reach `logfile=` (a stuck sink gets 2 s).
        crate::logs::flush(std::time::Duration::from_secs(2));
        result?;
        Ok::<(), anyhow::Error>(())
    });
    // What still runs off the runtime (a reload's reading waiting on DNS
    // or a hung mount) does not hold the exit, nor the lock, for long.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    outcome
}

/// The answer to one control command: the reloader's, the daemon's or
/// failover's.
async fn answer(
    command: Command,
    reloader: &Reloader,
    daemon: &daemon::Handle,
    failover: Option<&tokio::sync::mpsc::Sender<Asked>>,
) -> Answer {
    if command == Command::StatusJson {
        // Written out a real at a time by the control socket.
        return match status(daemon, failover).await {
            Some(report) => Answer::Report(Box::new(report)),
            None => Reply::error("lvsd is stopping").into(),
        };
    }
    reply(command, reloader, daemon, failover).await.into()
}

/// The answer to every command but `status json`.
async fn reply(
    command: Command,
    reloader: &Reloader,
    daemon: &daemon::Handle,
    failover: Option<&tokio::sync::mpsc::Sender<Asked>>,
) -> Reply {
    let stopping = || Reply::error("lvsd is stopping");
    match command {
        Command::Reload { allow_empty } => reloader.reload(allow_empty).await,
        Command::Status | Command::StatusJson => match status(daemon, failover).await {
            Some(report) => Reply::done(report.text()),
            None => stopping(),
        },
        Command::KeepTable => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            match daemon.keep_table.send(tx).await {
                Ok(()) => rx.await.unwrap_or_else(|_| stopping()),
                Err(_) => stopping(),
            }
        }
        Command::Drain(target) | Command::Enable(target) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let d = daemon::Drain {
                target,
                drain: matches!(command, Command::Drain(_)),
                reply: tx,
            };
            match daemon.drain.send(d).await {
                Ok(()) => rx.await.unwrap_or_else(|_| stopping()),
                Err(_) => stopping(),
            }
        }
        Command::Standby | Command::Takeover => {
            let Some(to) = failover else {
                return Reply::error("failover is not configured (no ha.cf)");
            };
            let ask = if command == Command::Standby {
                Ask::Standby
            } else {
                Ask::Takeover
            };
            match ask_failover(to, ask).await {
                Some(f) => Reply::done(f.text()),
                None => stopping(),
            }
        }
    }
}

/// The daemon's report (every virtual and real) with failover's part
/// when it runs; None when the daemon is stopping.
async fn status(
    daemon: &daemon::Handle,
    failover: Option<&tokio::sync::mpsc::Sender<Asked>>,
) -> Option<crate::status::Report> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    daemon.status.send(tx).await.ok()?;
    let mut report = rx.await.ok()?;
    if let Some(to) = failover {
        report.failover = ask_failover(to, Ask::Status).await;
    }
    Some(report)
}

async fn ask_failover(
    to: &tokio::sync::mpsc::Sender<Asked>,
    ask: Ask,
) -> Option<crate::status::FailoverRow> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    to.send(Asked { ask, reply: tx }).await.ok()?;
    rx.await.ok()
}

/// Where the checks run: rooms on their own threads, as many as the load
/// needs, unless `LVSD_CHECK_ROOMS` says `here` (on the daemon's runtime)
/// or a number (for benchmarks comparing runtime shapes).
fn check_rooms() -> crate::health::scheduler::Rooms {
    use crate::health::scheduler::Rooms;
    match std::env::var("LVSD_CHECK_ROOMS").as_deref() {
        Ok("here") => Rooms::Here,
        Ok(n) => match n.parse::<usize>() {
            Ok(n) => Rooms::Threads(n),
            Err(_) => {
                tracing::warn!("LVSD_CHECK_ROOMS={n:?} is neither `here` nor a number: ignored");
                Rooms::Threads(0)
            }
        },
        Err(_) => Rooms::Threads(0),
    }
}
