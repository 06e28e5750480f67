//! The `lvsd` command line. Only argument parsing and printing live here;
//! everything else is in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lvsd::config::{self, Loaded, Names, Severity};
use lvsd::daemon::{self, RunOptions};
use lvsd::ipvs::DryRun;
use lvsd::ipvs::netlink::NetlinkKernel;
use lvsd::ipvs::table::Table;

/// Health-check and failover supervisor for Linux Virtual Server directors.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate config files; prints FILE:LINE:COL diagnostics, exits 1 on any error.
    Check {
        /// ldirectord.cf, lvsd.toml, a conf.d directory or ha.cf
        /// (default: /etc/lvsd/lvsd.toml and /etc/lvsd/conf.d/).
        files: Vec<PathBuf>,
    },
    /// Print the validated model with every default applied.
    Dump {
        /// As JSON (field names are listed in the README).
        #[arg(long, conflicts_with = "table")]
        json: bool,
        /// As the `ipvsadm -Sn` lines of the IPVS table the config describes (all reals up).
        #[arg(long)]
        table: bool,
        /// Config files, as for `check`.
        files: Vec<PathBuf>,
    },
    /// Run the daemon in the foreground until SIGTERM or SIGINT.
    Run {
        /// Change no kernel: apply every op to an in-memory table and log it.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run, append one JSON object per op to FILE (format in the README).
        #[arg(long, value_name = "FILE", requires = "dry_run")]
        ops_log: Option<PathBuf>,
        /// The control socket the other commands use (reload, status, drain,
        /// enable, keep-table, standby, takeover).
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
        /// Config files, as for `check`.
        files: Vec<PathBuf>,
    },
    /// Give every virtual IP to the peer director (as heartbeat's hb_standby).
    Standby {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Take every virtual IP from the peer director (as hb_takeover).
    Takeover {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Read the configuration files again: applied when valid, else the
    /// running configuration stays and the errors are printed (as SIGHUP).
    Reload {
        /// Apply the files even if they have no virtual service while the
        /// running configuration has some (every real is then removed).
        /// Without it such a reload is refused: an emptied or half-written
        /// file must not empty the IPVS table.
        #[arg(long)]
        allow_empty: bool,
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Take a real out of every virtual it serves (weight 0 or removed,
    /// as its quiescent says), as a maintenancedir file does: REAL is
    /// ADDR (every port) or ADDR:PORT.
    Drain {
        /// The real.
        real: String,
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Leave the IPVS table as it is when lvsd next stops (within 60 s),
    /// whatever cleanstop says: `lvsd keep-table && systemctl restart lvsd`
    /// restarts without dropping a connection (the package's upgrade does
    /// this). The new lvsd adopts the table it finds.
    KeepTable {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Put a drained real back (its check decides again).
    Enable {
        /// The real.
        real: String,
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// What lvsd is doing: every virtual and real (health, weight, last
    /// probe, last failure, connections), and failover's role, peer and
    /// ping nodes. Exit 0 when lvsd runs, 3 when it does not (LSB).
    Status {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Print the equivalent lvsd.toml.
    Convert {
        /// Config files, as for `check`.
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let names = Names::system();
    match cli.command {
        Command::Check { files } => {
            let loaded = config::load(&files, &names);
            report(&loaded);
            match loaded.config {
                Some(c) => {
                    let reals: usize = c.virtuals.iter().map(|v| v.reals.len()).sum();
                    let warnings = loaded.diagnostics.len();
                    let n = c.virtuals.len();
                    eprintln!(
                        "ok: {n} virtual service{}, {reals} real server{}{}, {warnings} warning{}",
                        if n == 1 { "" } else { "s" },
                        if reals == 1 { "" } else { "s" },
                        if c.failover.is_some() {
                            ", failover"
                        } else {
                            ""
                        },
                        if warnings == 1 { "" } else { "s" },
                    );
                    ExitCode::SUCCESS
                }
                None => ExitCode::FAILURE,
            }
        }
        // `--json` is the default rendering; the flag is accepted for clarity.
        Command::Dump { table, files, .. } => {
            let loaded = config::load(&files, &names);
            report(&loaded);
            let Some(c) = loaded.config else {
                return ExitCode::FAILURE;
            };
            if table {
                out(&Table::all_up(&c).to_string());
            } else {
                match serde_json::to_string_pretty(&config::dump::json(&c)) {
                    Ok(s) => out(&format!("{s}\n")),
                    Err(e) => {
                        eprintln!("lvsd: cannot render JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::Standby { control } => ask(&control, lvsd::control::Command::Standby),
        Command::Takeover { control } => ask(&control, lvsd::control::Command::Takeover),
        Command::Status { control, json } => ask(
            &control,
            if json {
                lvsd::control::Command::StatusJson
            } else {
                lvsd::control::Command::Status
            },
        ),
        Command::Reload {
            allow_empty,
            control,
        } => ask(&control, lvsd::control::Command::Reload { allow_empty }),
        Command::Drain { real, control } => match lvsd::control::Target::parse(&real) {
            Some(t) => ask(&control, lvsd::control::Command::Drain(t)),
            None => not_a_real(&real),
        },
        Command::KeepTable { control } => ask(&control, lvsd::control::Command::KeepTable),
        Command::Enable { real, control } => match lvsd::control::Target::parse(&real) {
            Some(t) => ask(&control, lvsd::control::Command::Enable(t)),
            None => not_a_real(&real),
        },
        Command::Run {
            dry_run,
            ops_log,
            control,
            files,
        } => {
            let loaded = config::load(&files, &names);
            report(&loaded);
            let Some(c) = loaded.config else {
                return ExitCode::FAILURE;
            };
            match run(c, dry_run, ops_log, &control, &files, &names) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("lvsd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Convert { files } => {
            let loaded = config::load(&files, &names);
            report(&loaded);
            let Some(c) = loaded.config else {
                return ExitCode::FAILURE;
            };
            out(&config::native::write(&c));
            ExitCode::SUCCESS
        }
    }
}

/// `lvsd run`: logs to stderr (RUST_LOG filters, default info).
fn run(
    c: config::Config,
    dry_run: bool,
    ops_log: Option<PathBuf>,
    control: &Path,
    files: &[PathBuf],
    names: &Names,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let hostname = names.hostname();
    let log_target = lvsd::logs::Target::default();
    log_target.set(c.global.logfile.clone());
    let cfgname = files.first().and_then(|f| f.file_name()).map_or_else(
        || "lvsd.toml".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    lvsd::logs::init(log_target.clone(), cfgname);
    // Failover (ha.cf) is checked before anything starts.
    let failover = match &c.failover {
        Some(f) if !dry_run => {
            lvsd::failover::run::plan(f, hostname, &lvsd::failover::routes::read())
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
    rt.block_on(async {
        // The kernel first: nothing (no VIP) starts when it cannot be had.
        enum Chosen {
            Dry(DryRun),
            None(lvsd::ipvs::MemoryKernel),
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
                    Chosen::None(lvsd::ipvs::MemoryKernel::new())
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
            let m = std::sync::Arc::new(lvsd::metrics::Metrics::new());
            let serve = std::sync::Arc::clone(&m);
            tokio::spawn(async move {
                if let Err(e) = lvsd::metrics::serve(addr, serve).await {
                    tracing::error!("metrics: cannot listen on {addr}: {e}");
                }
            });
            m
        });
        let (notices, mailer) = lvsd::alert::start(
            hostname.to_owned(),
            std::time::Duration::from_secs(c.global.emailalertcoalesce),
            metrics.clone(),
        );
        let mut failover_commands = None;
        let failover_task = failover.map(|f| {
            let me = hostname.to_owned();
            let rx = stop_rx.clone();
            let fo_metrics = metrics.clone();
            let teller = lvsd::alert::Teller {
                notices: notices.clone(),
                routes: lvsd::alert::routes(&c),
                from: c.global.emailalertfrom.clone(),
            };
            let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(8);
            failover_commands = Some(cmd_tx);
            tokio::spawn(async move {
                if let Err(e) = lvsd::failover::run::run(&f, &me, sync, stopped(rx), cmd_rx, fo_metrics, Some(teller)).await {
                    tracing::error!("failover stopped: {e}");
                }
            })
        });
        // The control socket, and SIGHUP: reloads here, failover commands
        // to failover.
        let (inbox, handle) = daemon::Inbox::new();
        let (ctl_tx, mut ctl_rx) = tokio::sync::mpsc::channel::<lvsd::control::Request>(8);
        let path = control.to_owned();
        tokio::spawn(async move {
            if let Err(e) = lvsd::control::serve(&path, ctl_tx).await {
                tracing::warn!("control socket {}: {e}", path.display());
            }
        });
        let reloader = Reloader {
            files: files.to_vec(),
            names: names.clone(),
            to: handle.reload.clone(),
            running: std::sync::Arc::new(std::sync::Mutex::new(Running::of(&c))),
            one_at_a_time: std::sync::Arc::default(),
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
        tokio::spawn(async move {
            use lvsd::control::Command as C;
            while let Some(req) = ctl_rx.recv().await {
                match (req.command, &failover_commands) {
                    (C::Reload { allow_empty }, _) => {
                        let _ = req.reply.send(reloader.reload(allow_empty).await);
                    }
                    (C::Status | C::StatusJson, _) => {
                        let json = req.command == C::StatusJson;
                        let answer =
                            status_answer(&handle.status, failover_commands.as_ref(), json).await;
                        let _ = req.reply.send(answer);
                    }
                    (C::KeepTable, _) => {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let answer = match handle.keep_table.send(tx).await {
                            Ok(()) => rx.await.unwrap_or_else(|_| "error: no answer\n".to_owned()),
                            Err(_) => "error: lvsd is stopping\n".to_owned(),
                        };
                        let _ = req.reply.send(answer);
                    }
                    (C::Drain(target) | C::Enable(target), _) => {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let d = daemon::Drain {
                            target,
                            drain: matches!(req.command, C::Drain(_)),
                            reply: tx,
                        };
                        let answer = match handle.drain.send(d).await {
                            Ok(()) => rx.await.unwrap_or_else(|_| "error: no answer\n".to_owned()),
                            Err(_) => "error: lvsd is stopping\n".to_owned(),
                        };
                        let _ = req.reply.send(answer);
                    }
                    (_, Some(to)) => {
                        let _ = to.send(req).await;
                    }
                    (_, None) => {
                        let _ = req
                            .reply
                            .send("error: failover is not configured (no ha.cf)\n".to_owned());
                    }
                }
            }
        });
        // systemd: READY once the first reconcile is done; the watchdog is
        // fed only while the daemon's loop answers.
        let ready = std::sync::Arc::new(tokio::sync::Notify::new());
        let on_ready = std::sync::Arc::clone(&ready);
        let alive = handle.alive.clone();
        tokio::spawn(async move {
            on_ready.notified().await;
            if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
                tracing::warn!("sd_notify READY: {e}");
            }
            let Some(every) = sd_notify::watchdog_enabled() else {
                return;
            };
            let every = every / 2;
            loop {
                tokio::time::sleep(every).await;
                let (tx, rx) = tokio::sync::oneshot::channel();
                if alive.send(tx).await.is_err() {
                    return;
                }
                match tokio::time::timeout(every, rx).await {
                    Ok(Ok(())) => {
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                    }
                    _ => tracing::error!("the daemon loop did not answer within {every:?}: watchdog not fed"),
                }
            }
        });
        let opts = RunOptions {
            alerts: Some(notices),
            metrics,
            monitor: Some(lvsd::monitor::Monitor::start()),
            ready: Some(ready),
            without_ipvs,
            ..RunOptions::default()
        };
        let result = match kernel {
            Chosen::Dry(k) => daemon::run_with(c, k, opts, shutdown, inbox).await,
            Chosen::None(k) => daemon::run_with(c, k, opts, shutdown, inbox).await,
            Chosen::Netlink(k) => daemon::run_with(c, k, opts, shutdown, inbox).await,
        };
        // The daemon stopped (or could not start): failover gives its VIPs
        // up before we exit.
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
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
        result?;
        Ok(())
    })
}

fn not_a_real(real: &str) -> ExitCode {
    eprintln!("lvsd: `{real}` is not ADDR or ADDR:PORT");
    ExitCode::from(2)
}

/// `lvsd status [--json]`: the daemon's report (every virtual and real),
/// then failover's lines when it runs.
async fn status_answer(
    daemon: &tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<lvsd::status::Report>>,
    failover: Option<&tokio::sync::mpsc::Sender<lvsd::control::Request>>,
    json: bool,
) -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let report = match daemon.send(tx).await {
        Ok(()) => rx.await.ok(),
        Err(_) => None,
    };
    let Some(report) = report else {
        return "error: lvsd is stopping\n".to_owned();
    };
    let failover = match failover {
        Some(to) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let req = lvsd::control::Request {
                command: lvsd::control::Command::Status,
                reply: tx,
            };
            match to.send(req).await {
                Ok(()) => rx.await.ok(),
                Err(_) => None,
            }
        }
        None => None,
    };
    if json {
        // Failover's `key: value` lines as an object.
        let fo = failover.map(|t| {
            t.lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
                .collect::<serde_json::Map<_, _>>()
        });
        let v = serde_json::json!({ "virtuals": report.virtuals, "failover": fo });
        return format!("{v}\n");
    }
    let mut text = report.text();
    if let Some(f) = failover {
        text.push_str("\nfailover:\n");
        for l in f.lines() {
            text.push_str(&format!("  {l}\n"));
        }
    }
    text
}

/// Reads the configuration files again for a reload (SIGHUP, `lvsd
/// reload`): every diagnostic is logged; a valid configuration goes to the
/// daemon, an invalid one changes nothing (and is mailed).
#[derive(Clone)]
struct Reloader {
    files: Vec<PathBuf>,
    names: Names,
    to: tokio::sync::mpsc::Sender<daemon::Reload>,
    /// What of the configuration in force the reloader itself uses.
    running: std::sync::Arc<std::sync::Mutex<Running>>,
    /// Held through a whole reload: SIGHUP, `lvsd reload` and the watcher
    /// all reload here, one at a time.
    one_at_a_time: std::sync::Arc<tokio::sync::Mutex<()>>,
    notices: lvsd::alert::Notices,
    metrics: Option<std::sync::Arc<lvsd::metrics::Metrics>>,
    log_target: lvsd::logs::Target,
    /// What the files held when the last reload read them: the watcher
    /// does not report as news a change a reload (SIGHUP, `lvsd reload`)
    /// has already read.
    last_read: std::sync::Arc<std::sync::Mutex<Fingerprint>>,
}

/// What the files read hold: each path with a hash of its content (None:
/// missing or not a regular file).
type Fingerprint = Vec<(PathBuf, Option<u64>)>;

/// The settings of the configuration in force that the reloader uses.
#[derive(Clone)]
struct Running {
    autoreload: bool,
    callback: Option<String>,
    routes: Vec<config::Alerts>,
    from: Option<String>,
    metrics: Option<std::net::SocketAddr>,
}

impl Running {
    fn of(c: &config::Config) -> Running {
        Running {
            autoreload: c.global.autoreload,
            callback: c.global.callback.clone(),
            routes: lvsd::alert::routes(c),
            from: c.global.emailalertfrom.clone(),
            metrics: c.global.metrics,
        }
    }
}

/// What the files lvsd reads hold: (path, a hash of the content, None when
/// missing) for every file, conf.d's entries listed afresh each time. As
/// ldirectord's MD5: a touch or a rewrite with the same text is no change.
fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    use std::hash::{Hash, Hasher};
    let mut paths: Vec<PathBuf> = Vec::new();
    for f in files {
        if f.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(f)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            paths.extend(entries);
        } else {
            paths.push(f.clone());
            // ha.cf brings haresources and authkeys from its directory.
            if f.file_name().is_some_and(|n| n == "ha.cf")
                && let Some(dir) = f.parent()
            {
                paths.push(dir.join("haresources"));
                paths.push(dir.join("authkeys"));
            }
        }
    }
    paths
        .into_iter()
        .map(|p| {
            // Only a regular file is read (a FIFO put there would block):
            // anything else counts as missing, and the reload it causes
            // says what is there.
            let digest = config::file::read_bytes(&p).ok().map(|bytes| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                h.finish()
            });
            (p, digest)
        })
        .collect()
}

impl Reloader {
    /// ldirectord's check of its file, four times a second: a change that
    /// has settled (the same for a quarter of a second: an editor's
    /// several writes make one) is logged, reloaded when `autoreload=yes`,
    /// and given to `callback` (with the file's name), so an edit applies
    /// within about half a second. Polling the paths (a few small reads)
    /// instead of inotify (DESIGN.md's notify) needs no dependency and
    /// follows editors that rename a new file over the old one, drop-ins
    /// that appear, and files on any filesystem.
    async fn watch(self) {
        let files = self.watched();
        // Off the runtime's threads: a file on a hung mount must not stall
        // the daemon.
        let look = |files: &Vec<PathBuf>| {
            let files = files.clone();
            async move {
                tokio::task::spawn_blocking(move || fingerprint(&files))
                    .await
                    .unwrap_or_default()
            }
        };
        let mut seen = look(&files).await;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let now = look(&files).await;
            if now == seen {
                continue;
            }
            // Settle: until two looks a quarter of a second apart agree.
            let mut last = now;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let again = look(&files).await;
                if again == last {
                    break;
                }
                last = again;
            }
            let changed: Vec<PathBuf> = last
                .iter()
                .filter(|x| !seen.contains(x))
                .map(|(p, _)| p.clone())
                .chain(
                    seen.iter()
                        .filter(|(p, _)| !last.iter().any(|(q, _)| q == p))
                        .map(|(p, _)| p.clone()),
                )
                .collect();
            let already_read = self.last_read.lock().is_ok_and(|r| *r == last);
            seen = last;
            if already_read {
                continue;
            }
            let running = self.running();
            let list: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
            if running.autoreload {
                tracing::info!("changed on disk: {}: reloading", list.join(", "));
                self.reload(false).await;
            } else {
                tracing::info!(
                    "changed on disk: {}: not reloaded (autoreload=no; lvsd reload or SIGHUP applies it)",
                    list.join(", ")
                );
            }
            if let Some(cb) = &running.callback {
                for p in &changed {
                    let line = format!("{cb} {}", p.display());
                    tracing::info!("running callback: {line}");
                    match tokio::process::Command::new("/bin/sh")
                        .arg("-c")
                        .arg(&line)
                        .status()
                        .await
                    {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::warn!("callback `{line}` failed: {s}"),
                        Err(e) => tracing::warn!("cannot run callback `{line}`: {e}"),
                    }
                }
            }
        }
    }

    /// The paths read: the named ones, else the defaults.
    fn watched(&self) -> Vec<PathBuf> {
        if self.files.is_empty() {
            config::DEFAULT_FILES.iter().map(PathBuf::from).collect()
        } else {
            self.files.clone()
        }
    }

    fn running(&self) -> Running {
        match self.running.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The answer for `lvsd reload`: the daemon's outcome. The settings
    /// the reloader itself uses (log target, alert routes, callback,
    /// autoreload) change only with a configuration the daemon applied.
    async fn reload(&self, allow_empty: bool) -> String {
        let _one = self.one_at_a_time.lock().await;
        let (files, names, watched) = (self.files.clone(), self.names.clone(), self.watched());
        let read = tokio::task::spawn_blocking(move || {
            (fingerprint(&watched), config::load(&files, &names))
        })
        .await;
        let loaded = match read {
            Ok((seen, l)) => {
                if let Ok(mut r) = self.last_read.lock() {
                    *r = seen;
                }
                l
            }
            Err(e) => return format!("error: reading the configuration failed: {e}\n"),
        };
        let mut text = String::new();
        for d in &loaded.diagnostics {
            match d.severity {
                Severity::Error => tracing::error!("reload: {d}"),
                _ => tracing::warn!("reload: {d}"),
            }
            text.push_str(&format!("{d}\n"));
        }
        match loaded.config {
            None => {
                tracing::error!("reload refused: the running configuration stays");
                if let Some(m) = &self.metrics {
                    m.reload("refused");
                }
                let running = self.running();
                let errors: Vec<String> = loaded
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(ToString::to_string)
                    .collect();
                self.notices.tell(lvsd::alert::Notice {
                    at: std::time::SystemTime::now(),
                    state: lvsd::alert::DaemonState::Reloading,
                    subject: String::new(),
                    change: lvsd::alert::Change::ReloadRefused {
                        errors: errors.join("\n"),
                    },
                    routes: running.routes,
                    from: running.from,
                    servicename: None,
                });
                format!("{text}error: reload refused, the running configuration stays\n")
            }
            Some(c) => {
                let next = Running::of(&c);
                let logfile = c.global.logfile.clone();
                let (reply, answer) = tokio::sync::oneshot::channel();
                if self
                    .to
                    .send(daemon::Reload {
                        config: c,
                        allow_empty,
                        reply,
                    })
                    .await
                    .is_err()
                {
                    return format!("{text}error: lvsd is stopping\n");
                }
                match answer.await {
                    Ok(daemon::ReloadOutcome::Applied(summary)) => {
                        if next.metrics != self.running().metrics {
                            tracing::warn!(
                                "reload: a new metrics address takes effect when lvsd restarts"
                            );
                        }
                        self.log_target.set(logfile);
                        if let Ok(mut r) = self.running.lock() {
                            *r = next;
                        }
                        format!("{text}applied: {summary}\n")
                    }
                    Ok(daemon::ReloadOutcome::Unchanged) => {
                        format!("{text}unchanged: the configuration in force is the same\n")
                    }
                    Ok(daemon::ReloadOutcome::Refused(why)) => format!(
                        "{text}{why}\nerror: reload refused, the running configuration stays\n"
                    ),
                    Err(_) => format!("{text}error: lvsd is stopping\n"),
                }
            }
        }
    }
}

/// `lvsd standby|takeover|status`: asks the running daemon. Exit 3 when
/// it does not answer (LSB "not running"), 1 on an error answer.
fn ask(control: &Path, command: lvsd::control::Command) -> ExitCode {
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(lvsd::control::ask(control, command))
                .map_err(|e| e.to_string())
        });
    match answer {
        // Every answer has at least a line: none means the daemon went
        // away before answering (it stopped mid-reload).
        Ok(a) if a.trim().is_empty() => {
            eprintln!(
                "lvsd: no answer from {} (did lvsd stop?)",
                control.display()
            );
            ExitCode::FAILURE
        }
        Ok(a) if a.lines().any(|l| l.starts_with("error:")) => {
            eprint!("lvsd: {a}");
            ExitCode::FAILURE
        }
        Ok(a) => {
            out(&a);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lvsd is not running ({}: {e})", control.display());
            ExitCode::from(3)
        }
    }
}

/// Prints to stdout; a reader that went away (`lvsd dump | head`) ends
/// the output quietly instead of a panic.
fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

/// Diagnostics go to stderr, errors and warnings alike, compiler style.
fn report(loaded: &Loaded) {
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        eprintln!(
            "lvsd: {errors} error{} found",
            if errors == 1 { "" } else { "s" }
        );
    }
}
