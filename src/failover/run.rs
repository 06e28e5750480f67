//! The failover loop: the arbiter fed by the link, the ping nodes and the
//! clock, its decisions carried out on the VIPs and told to the peer.
//! It runs beside the health checks (both directors keep their IPVS
//! tables current, so a takeover only moves addresses).

use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::arbiter::{Action, Arbiter, Input, Timers};
use super::link::{Link, LinkSpec, Received};
use super::pingnodes::{Pinger, Reach};
use super::protocol::{Identity, Meaning, Sender, meaning};
use super::vip::{Vip, Vips};
use crate::config::{Failover, Resource};

/// The VIPs of haresources, split by preferred owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sets {
    /// This node's preferred VIPs.
    pub local: Vec<Vip>,
    /// The peer's.
    pub foreign: Vec<Vip>,
}

impl Sets {
    /// How many VIPs a node holding `h` has, of how many.
    fn held(&self, h: super::arbiter::Hold) -> (usize, usize) {
        (
            self.chosen(h.local(), h.foreign()).count(),
            self.local.len() + self.foreign.len(),
        )
    }

    /// The VIPs of the sets named.
    fn chosen(&self, local: bool, foreign: bool) -> impl Iterator<Item = &Vip> {
        self.local
            .iter()
            .filter(move |_| local)
            .chain(self.foreign.iter().filter(move |_| foreign))
    }
}

/// Sends `m` on the link; a failure is logged (once until sending works
/// again: a link that is down fails every keepalive), not fatal.
async fn send(link: &Link, m: &super::wire::Message) {
    match link.send(m).await {
        Err(e) => {
            if !link.set_failing(true) {
                tracing::warn!("failover: {e} (logged once until sending works again)");
            }
        }
        Ok(()) => {
            if link.set_failing(false) {
                tracing::info!("failover: sending to the peer works again");
            }
        }
    }
}

/// Why failover cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// This host is not one of ha.cf's nodes.
    #[error("this host is `{me}`, which ha.cf's node lines do not name ({nodes})")]
    NotANode {
        /// This host's name.
        me: String,
        /// ha.cf's nodes, comma-separated.
        nodes: String,
    },
    /// Not two nodes.
    #[error("lvsd runs two-node clusters; ha.cf names {0} node(s)")]
    NotTwoNodes(usize),
    /// A VIP without prefix or interface, and no connected route to it.
    #[error(
        "{at}: no interface of this host has a connected route to {addr}: write its prefix and interface ({agent}::{addr}/PREFIX/IFACE)"
    )]
    NoRoute {
        /// Where the VIP is written.
        at: String,
        /// The VIP.
        addr: IpAddr,
        /// Its resource agent (IPaddr, IPaddr2).
        agent: String,
    },
    /// authkeys' `auth N` names no key.
    #[error("authkeys: no key {0}")]
    NoKey(u8),
    /// The media make no link.
    #[error(transparent)]
    Media(#[from] super::link::MediaError),
    /// The cluster link's socket cannot be opened.
    #[error("opening the cluster link on port {port}: {source}")]
    Open {
        /// ha.cf's udpport.
        port: u16,
        /// The socket's error.
        source: std::io::Error,
    },
    /// The route netlink socket cannot be opened.
    #[error("opening rtnetlink: {0}")]
    Rtnetlink(std::io::Error),
    /// The generation cannot be kept on disk.
    #[error(transparent)]
    Generation(#[from] super::generation::GenerationError),
}

/// This node's and its peer's names, and the VIP sets, from the config;
/// `me` is this host's name (`uname -n`). A VIP written without prefix or
/// interface takes them from `routes` (this host's connected routes), as
/// IPaddr2 does.
pub fn plan(
    f: &Failover,
    me: &str,
    routes: &[super::routes::Route],
) -> Result<(String, Sets), FailoverError> {
    let me = me.to_ascii_lowercase();
    let nodes: Vec<String> = f.ha.nodes.iter().map(|n| n.to_ascii_lowercase()).collect();
    if !nodes.contains(&me) {
        return Err(FailoverError::NotANode {
            me,
            nodes: nodes.join(", "),
        });
    }
    let peers: Vec<&String> = nodes.iter().filter(|n| **n != me).collect();
    let [peer] = peers.as_slice() else {
        return Err(FailoverError::NotTwoNodes(nodes.len()));
    };
    let mut sets = Sets::default();
    for g in &f.resources {
        for r in &g.resources {
            let Resource::Ip(v) = r else { continue };
            let found = super::routes::find(routes, v.address);
            let (prefix, interface) = match (v.prefix, &v.interface, &found) {
                (Some(p), Some(i), _) => (p, i.clone()),
                (p, i, Some((rp, ri))) => (p.unwrap_or(*rp), i.clone().unwrap_or(ri.clone())),
                (_, _, None) => {
                    return Err(FailoverError::NoRoute {
                        at: g.origin.0.as_ref().map_or("haresources".to_owned(), |l| {
                            format!("{}:{}", l.file, l.line)
                        }),
                        addr: v.address,
                        agent: v.agent.to_string(),
                    });
                }
            };
            let vip = Vip {
                addr: v.address,
                prefix,
                // `eth0:label`: the address goes on eth0.
                interface: interface.split(':').next().unwrap_or(&interface).to_owned(),
            };
            if g.node.eq_ignore_ascii_case(&me) {
                sets.local.push(vip);
            } else {
                sets.foreign.push(vip);
            }
        }
    }
    Ok(((*peer).clone(), sets))
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A node UUID, the same for every run of this host (from its hostname
/// and machine-id), so heartbeat peers see one node.
fn uuid(me: &str) -> [u8; 16] {
    use md5::Digest;
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let mut h = md5::Md5::new();
    h.update(me.as_bytes());
    h.update(machine.trim().as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// What the control socket asks of failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Give every VIP to the peer (hb_standby).
    Standby,
    /// Take every VIP (hb_takeover).
    Takeover,
    /// Only say what failover is doing.
    Status,
}

/// An [`Ask`] and where failover's status goes after it.
#[derive(Debug)]
pub struct Asked {
    /// What is asked.
    pub ask: Ask,
    /// The status after it.
    pub reply: tokio::sync::oneshot::Sender<crate::status::FailoverRow>,
}

/// Failover ready to run: its plan, its cluster link (the heartbeat port
/// bound: a second lvsd or a heartbeat on this port fails here), and the
/// route netlink socket.
pub struct Opened {
    generation: u64,
    peer: String,
    sets: Sets,
    link: Link,
    vips: Arc<Vips>,
}

/// Everything failover needs before it runs, each failure an error that
/// stops lvsd from starting (needs a tokio runtime).
pub fn open(f: &Failover, me: &str, state_dir: &Path) -> Result<Opened, FailoverError> {
    let (peer, sets) = plan(f, me, &super::routes::read())?;
    let active = f
        .authkeys
        .keys
        .iter()
        .find(|k| k.index == f.authkeys.active)
        .cloned()
        .ok_or(FailoverError::NoKey(f.authkeys.active))?;
    let spec = LinkSpec::of(&f.ha.media, f.ha.udpport)?;
    let link =
        Link::open(spec, f.authkeys.keys.clone(), active).map_err(|e| FailoverError::Open {
            port: f.ha.udpport,
            source: e,
        })?;
    let vips = Arc::new(Vips::open().map_err(FailoverError::Rtnetlink)?);
    // Last: a run that fails above takes no generation.
    let generation = super::generation::next(state_dir, unix_secs())?;
    Ok(Opened {
        generation,
        peer,
        sets,
        link,
        vips,
    })
}

/// Runs failover for node `me` until `shutdown`, then gives the VIPs up;
/// `commands` brings `lvsd standby`, `takeover` and `status`; each is
/// answered with what failover does then.
#[allow(clippy::too_many_arguments)] // the wiring's one call
pub async fn run(
    f: &Failover,
    me: &str,
    opened: Opened,
    sync: Option<crate::config::SyncDaemonSpec>,
    shutdown: impl Future<Output = ()>,
    mut commands: tokio::sync::mpsc::Receiver<Asked>,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    alerts: Option<crate::alert::Teller>,
) -> Result<(), FailoverError> {
    let Opened {
        generation,
        peer,
        sets,
        mut link,
        vips,
    } = opened;
    let me = me.to_ascii_lowercase();
    let nodes: Vec<String> = f.ha.nodes.iter().map(|n| n.to_ascii_lowercase()).collect();
    let timers = Timers::of(&f.ha);
    let groups: Vec<Vec<IpAddr>> =
        f.ha.ping_groups
            .iter()
            .map(|g| g.addresses.clone())
            .collect();
    let mut reach = Reach::new(&f.ha.ping, &groups, Duration::from_millis(f.ha.deadping_ms));
    let pinger = Arc::new(Pinger::new(
        checkers::IcmpSockets::new(),
        &reach.addresses(),
        timers.keepalive,
    ));
    let mut sender = Sender::new(Identity {
        node: me.clone(),
        uuid: uuid(&me),
        generation,
        ttl: 1 + 2 + u32::try_from(reach.total()).unwrap_or(0),
    });
    let start = Instant::now();
    let since = |t: Instant| t.duration_since(start);
    let mut drops = super::drops::DropLog::default();
    let mut arbiter = Arbiter::new(timers, f.ha.auto_failback, Duration::ZERO);
    let mut keepalive = tokio::time::interval(timers.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<Vec<IpAddr>>(4);
    let mut last_count: Option<usize> = None;
    // To an lvsd peer, a resource report and the ping count every few
    // keepalives as well as on every change: a peer that lost us, or was
    // not up yet, learns them. A heartbeat peer gets them on change and
    // when it (re)appears only, as heartbeat and ipfail send them (each
    // count makes its ipfail compare again, and with auto_failback on
    // start a hand-over).
    const REPORT_EVERY: u32 = 4;
    let mut beats: u32 = 0;
    let mut peer_is_lvsd = false;
    let mut peer_heard = false;
    let mut said_starting = false;
    tracing::info!(
        "failover: {me} with peer {peer}; local VIPs {:?}, foreign {:?}",
        sets.local
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        sets.foreign
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    let mut sync = sync.map(super::sync::Follower::new);
    let mut held = arbiter.holds();
    // Role changes are mailed; holding nothing at start is not one.
    let mut told = arbiter.holds();
    let mut sync_checked = Instant::now();
    if let Some(s) = &mut sync {
        let (n, total) = sets.held(held);
        s.follow(n, total);
    }
    tokio::pin!(shutdown);
    // The loop waits at most a keepalive: a timer that fires much later
    // than that found this node stopped (SIGSTOP, a starved machine), and
    // its tick must not judge the peer by this node's own silence (nor a
    // message read then: its input ticks too).
    let stall_after = timers.keepalive + timers.deadtime / 2;
    loop {
        let turn = Instant::now();
        let now = since(turn);
        let wake = arbiter
            .poll_timeout(now)
            .map_or(start + Duration::from_secs(3600), |t| start + t);
        let actions = tokio::select! {
            () = &mut shutdown => break,
            _ = keepalive.tick() => {
                let now = since(Instant::now());
                stalled(&mut arbiter, turn, stall_after, now);
                for line in drops.summary(now) {
                    tracing::warn!("failover: {line}");
                }
                let status = sender.status(timers.deadtime, unix_secs(), &loadavg());
                send(&link, &status).await;
                beats = beats.wrapping_add(1);
                if peer_is_lvsd && beats.is_multiple_of(REPORT_EVERY) {
                    // Also our ping count: the peer may have missed the
                    // message of the last change (it was not up yet).
                    let mut again = vec![sender.resource(arbiter.holds(), unix_secs(), &loadavg())];
                    if let Some(n) = last_count {
                        again.push(sender.ping_count(n, &peer, unix_secs(), &loadavg()));
                    }
                    for m in &again {
                        send(&link, m).await;
                    }
                }
                if reach.total() > 0 {
                    let (p, tx) = (Arc::clone(&pinger), ping_tx.clone());
                    tokio::spawn(async move { let _ = tx.send(p.round().await).await; });
                }
                arbiter.tick(now)
            }
            Some(answered) = ping_rx.recv() => {
                let now = since(Instant::now());
                for a in answered {
                    reach.answered(a, now);
                }
                let count = reach.count(now);
                let mut out = Vec::new();
                if last_count != Some(count) {
                    last_count = Some(count);
                    tracing::info!("failover: {count} of {} ping node(s) reachable", reach.total());
                    let m = sender.ping_count(count, &peer, unix_secs(), &loadavg());
                    send(&link, &m).await;
                }
                out.extend(arbiter.input(now, Input::MyPing(count)));
                out
            }
            r = link.recv() => {
                let now = since(Instant::now());
                stalled(&mut arbiter, turn, stall_after, now);
                match r {
                    Ok(Received::Message { message, restarted, .. }) => {
                        let from_peer = message.get("src").is_some_and(|s| s.eq_ignore_ascii_case(&peer));
                        if from_peer && message.get("t") == Some("status") {
                            peer_is_lvsd = message.get(super::protocol::LVSD_FIELD).is_some();
                        }
                        // The peer (re)appears: it learns our ping count.
                        if from_peer && (restarted || !peer_heard) {
                            peer_heard = true;
                            if !said_starting {
                                said_starting = true;
                                let m = sender.starting(unix_secs(), &loadavg());
                                send(&link, &m).await;
                            }
                            if let Some(n) = last_count {
                                let m = sender.ping_count(n, &peer, unix_secs(), &loadavg());
                                send(&link, &m).await;
                            }
                        }
                        let mut out = if from_peer && restarted {
                            arbiter.input(now, Input::PeerRestarted)
                        } else {
                            Vec::new()
                        };
                        out.extend(match meaning(&message, &me, &peer) {
                            Meaning::Inputs(inputs) => inputs.into_iter().flat_map(|i| arbiter.input(now, i)).collect(),
                            Meaning::PeerLeft => arbiter.input(now, Input::PeerLeft),
                            // As ipfail answers a peer's ipfail that signs
                            // on: our count, for it to compare.
                            Meaning::IpfailJoined => {
                                if let Some(n) = last_count {
                                    let m = sender.ping_count(n, &peer, unix_secs(), &loadavg());
                                    send(&link, &m).await;
                                }
                                Vec::new()
                            }
                            Meaning::NodesRequested(uuid) => {
                                let m = sender.repnodes(&peer, uuid, &nodes, unix_secs(), &loadavg());
                                send(&link, &m).await;
                                Vec::new()
                            }
                            Meaning::Ignored(why) => {
                                tracing::debug!("failover: ignored a message: {why}");
                                Vec::new()
                            }
                        });
                        out
                    }
                    Ok(Received::Dropped { from, kind, reason }) => {
                        if let Some(m) = &metrics {
                            m.failover_dropped(kind.as_str());
                        }
                        if let Some(line) = drops.note(since(Instant::now()), Some(from.ip()), kind, &reason) {
                            tracing::warn!("failover: {line}");
                        }
                        Vec::new()
                    }
                    Err(e) => {
                        let kind = super::drops::DropKind::Receive;
                        if let Some(m) = &metrics {
                            m.failover_dropped(kind.as_str());
                        }
                        if let Some(line) = drops.note(since(Instant::now()), None, kind, &format!("receiving: {e}")) {
                            tracing::warn!("failover: {line}");
                        }
                        Vec::new()
                    }
                }
            }
            () = tokio::time::sleep_until(wake) => {
                let now = since(Instant::now());
                stalled(&mut arbiter, turn, stall_after, now);
                arbiter.tick(now)
            }
            Some(req) = commands.recv() => {
                let now = since(Instant::now());
                let acts = match req.ask {
                    Ask::Standby => arbiter.input(now, Input::Standby),
                    Ask::Takeover => arbiter.input(now, Input::Takeover),
                    Ask::Status => Vec::new(),
                };
                let _ = req.reply.send(crate::status::FailoverRow {
                    node: me.clone(),
                    peer: peer.clone(),
                    ..arbiter.status(now)
                });
                acts
            }
        };
        let to = Peer {
            name: &peer,
            lvsd: peer_is_lvsd,
        };
        carry_out(&actions, &sets, &vips, &link, &mut sender, to).await;
        if !arbiter.peer_alive() {
            peer_heard = false;
        }
        if let Some(t) = &alerts
            && told != arbiter.holds()
        {
            let h = arbiter.holds();
            told = h;
            let vips: Vec<String> = sets
                .chosen(h.local(), h.foreign())
                .map(ToString::to_string)
                .collect();
            let why = arbiter.reason();
            let text = if vips.is_empty() {
                format!("{me} holds no virtual IP ({why})")
            } else {
                format!("{me} holds {} ({why})", vips.join(", "))
            };
            t.notices.tell(crate::alert::Notice {
                at: std::time::SystemTime::now(),
                state: crate::alert::DaemonState::Running,
                subject: format!("failover on {me}"),
                change: crate::alert::Change::Holds {
                    hold: h.as_str(),
                    text,
                },
                routes: t.routes.clone(),
                from: t.from.clone(),
                servicename: None,
            });
        }
        if let Some(m) = &metrics {
            let h = arbiter.holds();
            m.failover(
                matches!(h, super::arbiter::Hold::Local | super::arbiter::Hold::All),
                matches!(h, super::arbiter::Hold::Foreign | super::arbiter::Hold::All),
                arbiter.peer_alive(),
            );
        }
        // The sync daemon follows the role: at once when it changes, and
        // every 10 s (repairing a daemon stopped by hand).
        if let Some(s) = &mut sync
            && (arbiter.holds() != held || sync_checked.elapsed() >= Duration::from_secs(10))
        {
            held = arbiter.holds();
            sync_checked = Instant::now();
            let (n, total) = sets.held(held);
            s.follow(n, total);
        }
    }
    // Leaving: the VIPs go, and the peer is told at once.
    for v in sets.local.iter().chain(&sets.foreign) {
        match vips.remove(v).await {
            Ok(true) => tracing::info!("failover: released {v} (stopping)"),
            Ok(false) => {}
            Err(e) => tracing::error!("failover: {e}"),
        }
    }
    let bye = sender.resource(super::arbiter::Hold::None, unix_secs(), &loadavg());
    let _ = link.send(&bye).await;
    let gone = sender.leaving(unix_secs(), &loadavg());
    let _ = link.send(&gone).await;
    if let Some(s) = &mut sync {
        let (_, total) = sets.held(super::arbiter::Hold::None);
        s.follow(0, total);
    }
    Ok(())
}

/// Tells the arbiter when this node did not run for longer than `after`
/// since `since` (until `now`): a stall of its own, not the peer's silence.
fn stalled(arbiter: &mut super::arbiter::Arbiter, since: Instant, after: Duration, now: Duration) {
    let gap = since.elapsed();
    if gap > after && arbiter.stalled(now) {
        tracing::warn!(
            "failover: this node did not run for {} ms: the peer gets its deadtime afresh",
            gap.as_millis()
        );
    }
}

/// Announces `v` beside the loop (keepalives must not wait): 5 gratuitous
/// ARPs 200 ms apart as IPaddr2, and the same again 2 s later for
/// neighbours that missed them. Each one only while `v` is still on its
/// interface: a VIP given away meanwhile is never announced again (that
/// would pull the neighbours back from its new holder).
fn announce(vips: &Arc<Vips>, v: &Vip) {
    let (vips, v) = (Arc::clone(vips), v.clone());
    tokio::spawn(async move {
        for pause in [Duration::ZERO, Duration::from_secs(2)] {
            tokio::time::sleep(pause).await;
            for i in 0..5 {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if !matches!(vips.has(&v).await, Ok(true)) {
                    return;
                }
                if let Err(e) = vips.announce(&v, 1, Duration::ZERO).await {
                    tracing::warn!("failover: {e}");
                    return;
                }
            }
        }
    });
}

/// Who the messages go to.
#[derive(Clone, Copy)]
struct Peer<'a> {
    name: &'a str,
    /// An lvsd node (it compares both ping counts itself), else heartbeat.
    lvsd: bool,
}

async fn carry_out(
    actions: &[Action],
    sets: &Sets,
    vips: &Arc<Vips>,
    link: &Link,
    sender: &mut Sender,
    peer: Peer<'_>,
) {
    for a in actions {
        match a {
            Action::Acquire { local, foreign } => {
                for v in sets.chosen(*local, *foreign) {
                    match vips.add(v).await {
                        Ok(_) => {
                            tracing::info!("failover: took {v}");
                            announce(vips, v);
                        }
                        Err(e) => tracing::error!("failover: {e}"),
                    }
                }
            }
            Action::Announce { local, foreign } => {
                for v in sets.chosen(*local, *foreign) {
                    tracing::info!("failover: announcing {v} again (the peer let it go)");
                    announce(vips, v);
                }
            }
            Action::Release { local, foreign } => {
                for v in sets.chosen(*local, *foreign) {
                    match vips.remove(v).await {
                        Ok(_) => tracing::info!("failover: released {v}"),
                        Err(e) => tracing::error!("failover: {e}"),
                    }
                }
            }
            Action::Report(h) => {
                let m = sender.resource(*h, unix_secs(), &loadavg());
                send(link, &m).await;
            }
            Action::Releasing(h) => {
                let m = sender.releasing(*h, unix_secs(), &loadavg());
                send(link, &m).await;
            }
            Action::Offer { hold, ipfail } => {
                let m = sender.ask_resources(*hold, "me", *ipfail, unix_secs(), &loadavg());
                send(link, &m).await;
            }
            Action::Accept(hold) => {
                let m = sender.ask_resources(*hold, "other", false, unix_secs(), &loadavg());
                send(link, &m).await;
            }
            Action::Done(hold) => {
                let m = sender.ask_resources(*hold, "done", false, unix_secs(), &loadavg());
                send(link, &m).await;
            }
            Action::AskPeerForAll => {
                let m = sender.takeover(unix_secs(), &loadavg());
                send(link, &m).await;
            }
            // ipfail's answers, to a heartbeat peer only.
            Action::AnswerPing(o) if !peer.lvsd => {
                let t = match o {
                    std::cmp::Ordering::Greater => "you_are_dead",
                    std::cmp::Ordering::Equal => "abort_giveup",
                    std::cmp::Ordering::Less => continue,
                };
                let m = sender.ping_answer(t, peer.name, unix_secs(), &loadavg());
                send(link, &m).await;
            }
            Action::AnswerPing(_) => {}
            Action::Log { warn: true, text } => tracing::warn!("failover: {text}"),
            Action::Log { warn: false, text } => tracing::info!("failover: {text}"),
        }
    }
}
