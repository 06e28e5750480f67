//! The check room: every check's timer and probe, in one task.
//!
//! - Each check has a fixed phase within its interval (a hash of the
//!   check), so 10,000 checks spread over the interval instead of firing
//!   in the same millisecond; rounds start `interval` after the previous
//!   start, ±5% jitter, so a probe that takes long does not stretch the
//!   period (ldirectord's period is interval + every check's duration).
//! - The first round is quicker: checks new to the room (at start, or
//!   added by a reload) first run within [`first_window`], the time
//!   [`FIRST_ROUND_RATE`] probes a second take for them all (a few reals:
//!   at once, as ldirectord checks at start; 37,298 reals: in under 2 s
//!   instead of 5), then move to their phase (the next one at least half
//!   an interval later).
//! - The deadline is enforced by [`checkers::run_probe`], outside the
//!   checker, so a real that hangs costs its own probe its deadline and
//!   nothing else; a checker that panics is a failed probe.
//! - At most `max_in_flight` probes run at once; a due check waits for a
//!   free place before its deadline starts.
//!   Due checks start in the order they fell due; first rounds' probes
//!   have at most [`FIRST_IN_FLIGHT`] places while they are young
//!   ([`YOUNG`]).
//! - Checks are kept compactly (a timer heap and one small slot each, no
//!   task per check): a probe is a future only while it runs. Results go
//!   to the daemon at once after a quiet spell, else at most one batch
//!   per [`BATCH`], so 10,000 probes a second wake the daemon a few
//!   hundred times, not 10,000; the room stops starting probes while
//!   [`MAX_PENDING`] results wait for the daemon.
//! - A reload ([`Scheduler::update`]) keeps every check that is still
//!   wanted, with its timer and phase, stops the others and starts the new
//!   ones. Each check has an id never used again, which its outcomes carry.
//! - The room stops when the daemon drops the receiver or the
//!   [`Scheduler`] is dropped.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use checkers::{Checker, Connect, Http, HttpOptions, IcmpSockets, Ping, ProbeError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::plan::{Check, Probe, ProbeSpec};

/// The result of one probe of one check.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The check's id (see [`Scheduler::ids`]).
    pub check: usize,
    /// Up, or why not.
    pub result: Result<(), ProbeError>,
    /// When the probe started (after waiting for a permit).
    pub started: Instant,
    /// How long it took.
    pub took: Duration,
}

/// The checks in the room; dropping it stops them all.
pub struct Scheduler {
    /// Id -> its check (the plan's, shared).
    checks: HashMap<usize, Arc<Check>>,
    /// The id of each check, in the order of the last plan.
    ids: Vec<usize>,
    next_id: usize,
    icmp: Arc<IcmpSockets>,
    rooms: Vec<RoomHandle>,
}

/// Where the check rooms run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rooms {
    /// One room, a task of the caller's runtime (tests with paused time).
    Here,
    /// This many rooms, each on its own thread with a single-threaded
    /// runtime, so a probe's wakeups never cross threads; 0: as many as
    /// the load needs ([`rooms_for`]).
    Threads(usize),
}

/// A room as the scheduler holds it: its commands, and its task when it
/// runs on the caller's runtime. A room on its own thread stops when its
/// commands close.
struct RoomHandle {
    cmds: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
}

/// Probes a second one room is given before another is opened: a room's
/// thread then stays well under a core, so a probe's answer is read when
/// it comes (an overloaded room would see answers late and call healthy
/// reals dead).
pub const PROBES_PER_ROOM: f64 = 10_000.0;

/// How many rooms `checks` need: one per [`PROBES_PER_ROOM`] probes a
/// second, at most one per CPU.
pub fn rooms_for(checks: &[Arc<Check>]) -> usize {
    let per_second: f64 = checks
        .iter()
        .map(|c| 1.0 / c.interval.as_secs_f64().max(0.001))
        .sum();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ((per_second / PROBES_PER_ROOM).ceil() as usize).clamp(1, cpus)
}

/// Runs `room` on a thread of its own.
///
/// The room is one task doing every probe's I/O, so tokio's cooperative
/// budget (128 operations a poll) ran out in it all the time; a probe
/// whose read was then refused for the budget could see its deadline
/// fire first (`tokio::time::timeout` polls the deadline past the
/// budget): 10,000 reals a second got bursts of hundreds of healthy reals
/// "down: no answer within 1s". The room runs unconstrained: it yields
/// whenever nothing is ready, which is the only fairness its thread needs.
fn on_thread(i: usize, room: Room, rx: mpsc::UnboundedReceiver<Command>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("lvsd-checks-{i}"))
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(tokio::task::unconstrained(room.run(rx)));
            }));
            if ran.is_err() {
                // A bug in the room itself (a checker's panic is a failed
                // probe, caught inside): its checks would stop without a
                // word while the table stays as it is. Better to stop
                // lvsd loudly, leaving the table serving, so that it is
                // restarted (systemd) and adopts the table.
                tracing::error!(
                    "check room {i} failed: lvsd stops, leaving the IPVS table as it is"
                );
                eprintln!("lvsd: check room {i} failed; exiting (the IPVS table is left as it is)");
                std::process::exit(70);
            }
        })?;
    Ok(())
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("checks", &self.checks.len())
            .finish()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for r in &self.rooms {
            if let Some(t) = &r.task {
                t.abort();
            }
        }
    }
}

/// A probe ready to run.
struct Ready {
    checker: Arc<dyn Checker>,
    deadline: Duration,
}

/// Builds the checker for one probe spec.
fn build(p: &Probe, icmp: &Arc<IcmpSockets>) -> Result<Ready, checkers::SetupError> {
    let checker: Arc<dyn Checker> = match &p.spec {
        // `service=none`: ldirectord's `check_none`, always up.
        ProbeSpec::None => Arc::new(checkers::On),
        ProbeSpec::Connect { addr, port } => Arc::new(Connect::new(*addr, *port)),
        ProbeSpec::Ping { addr, count, wait } => {
            Arc::new(Ping::new(Arc::clone(icmp), *addr, *count, *wait))
        }
        ProbeSpec::Http {
            tls,
            addr,
            port,
            path,
            virtualhost,
            head,
            receive,
            verify,
        } => {
            let mut o = HttpOptions::get(*tls, *addr, *port, path);
            o.virtualhost = virtualhost.clone();
            o.head = *head;
            o.verify_tls = *verify;
            o.receive = receive.regex();
            Arc::new(Http::new(o)?)
        }
        ProbeSpec::Smtp { addr, port } => Arc::new(checkers::Smtp::new(*addr, *port)),
        ProbeSpec::Mail {
            imap,
            tls,
            verify,
            addr,
            port,
            login,
        } => {
            if *imap {
                Arc::new(checkers::Imap::new(
                    *addr,
                    *port,
                    *tls,
                    *verify,
                    login.clone(),
                )?)
            } else {
                Arc::new(checkers::Pop::new(
                    *addr,
                    *port,
                    *tls,
                    *verify,
                    login.clone(),
                )?)
            }
        }
        ProbeSpec::Dns {
            addr,
            port,
            tcp,
            request,
            receive,
        } => Arc::new(checkers::Dns::new(
            *addr,
            *port,
            *tcp,
            request,
            receive.regex(),
        )?),
        ProbeSpec::Ldap {
            tls,
            verify,
            addr,
            port,
            login,
            request,
            receive,
        } => Arc::new(checkers::Ldap::new(
            *addr,
            *port,
            *tls,
            *verify,
            login.clone(),
            request,
            receive.regex(),
        )),
        ProbeSpec::Sql {
            engine,
            addr,
            port,
            login,
            database,
            request,
        } => Arc::new(checkers::Sql::new(
            *engine,
            *addr,
            *port,
            login.clone(),
            database,
            request,
        )),
        ProbeSpec::Sip {
            addr,
            port,
            tcp,
            user,
        } => Arc::new(checkers::Sip::new(*addr, *port, *tcp, user)),
        ProbeSpec::Radius {
            addr,
            port,
            login,
            secret,
        } => Arc::new(checkers::Radius::new(
            *addr,
            *port,
            login.clone(),
            &secret.0,
        )),
        ProbeSpec::Nntp { addr, port } => Arc::new(checkers::Nntp::new(*addr, *port)),
        ProbeSpec::Ftp {
            addr,
            port,
            login,
            file,
            receive,
        } => Arc::new(checkers::Ftp::new(
            *addr,
            *port,
            login.clone(),
            file.clone(),
            receive.regex(),
        )),
        ProbeSpec::SimpleTcp {
            addr,
            port,
            request,
            receive,
        } => Arc::new(checkers::SimpleTcp::new(
            *addr,
            *port,
            request,
            receive.regex(),
        )),
        ProbeSpec::External { command, args } => {
            Arc::new(checkers::External::new(command, args.clone()))
        }
    };
    Ok(Ready {
        checker,
        deadline: p.deadline,
    })
}

/// A deterministic fraction in [0, 1) from a hash.
fn fraction(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn hash_of(c: &Check) -> u64 {
    let mut h = DefaultHasher::new();
    c.hash(&mut h);
    h.finish()
}

/// A check's phase: the fixed point within its interval, derived from
/// the check itself, at which it runs, so checks spread evenly and a
/// restart keeps each one's phase.
pub fn phase(c: &Check) -> Duration {
    c.interval.mul_f64(fraction(hash_of(c)))
}

/// How fast a first round goes at most: new checks start at this rate
/// (spread over [`first_window`]) rather than over a whole interval.
pub const FIRST_ROUND_RATE: f64 = 20_000.0;

/// The time within which `new` checks new to the room all first run:
/// what [`FIRST_ROUND_RATE`] needs for them, never more than an interval.
pub fn first_window(interval: Duration, new: usize) -> Duration {
    interval.min(Duration::from_secs_f64(new as f64 / FIRST_ROUND_RATE))
}

impl Scheduler {
    /// Starts the rooms with one slot per check (ids 0, 1, ... in order).
    /// Fails only when a checker cannot be built (the TLS stack).
    pub fn start(
        checks: &[Arc<Check>],
        tx: mpsc::Sender<Vec<Outcome>>,
        max_in_flight: usize,
        rooms: Rooms,
    ) -> Result<Scheduler, checkers::SetupError> {
        let n = match rooms {
            Rooms::Here => 1,
            Rooms::Threads(0) => rooms_for(checks),
            Rooms::Threads(n) => n,
        };
        let per_room = (max_in_flight / n).max(1);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (cmds, rx) = mpsc::unbounded_channel();
            let room = Room::new(per_room, tx.clone());
            let task = match rooms {
                Rooms::Here => Some(tokio::spawn(tokio::task::unconstrained(room.run(rx)))),
                Rooms::Threads(_) => match on_thread(i, room, rx) {
                    Ok(()) => None,
                    Err(e) => {
                        return Err(checkers::SetupError::Runtime(format!(
                            "cannot start the thread of check room {i}: {e}"
                        )));
                    }
                },
            };
            handles.push(RoomHandle { cmds, task });
        }
        let mut s = Scheduler {
            checks: HashMap::new(),
            ids: Vec::new(),
            next_id: 0,
            icmp: IcmpSockets::new(),
            rooms: handles,
        };
        s.update(checks)?;
        Ok(s)
    }

    /// Makes the room's checks those of `checks`: a check already running
    /// keeps its slot (its timer, its phase, its negotiate count), the
    /// others stop, new ones start. Nothing changes when a new checker
    /// cannot be built.
    pub fn update(&mut self, checks: &[Arc<Check>]) -> Result<(), checkers::SetupError> {
        let running: HashMap<&Check, usize> =
            self.checks.iter().map(|(id, c)| (&**c, *id)).collect();
        let mut ids = Vec::with_capacity(checks.len());
        let mut new = Vec::new();
        for c in checks {
            match running.get(&**c) {
                Some(id) => ids.push(*id),
                None => {
                    let probe = build(&c.probe, &self.icmp)?;
                    let negotiate = match &c.negotiate_every {
                        Some((n, p)) => Some((*n, build(p, &self.icmp)?)),
                        None => None,
                    };
                    let id = self.next_id + new.len();
                    ids.push(id);
                    let seed = hash_of(c);
                    new.push((
                        id,
                        Arc::clone(c),
                        Slot {
                            probe,
                            negotiate,
                            interval: c.interval,
                            seed,
                            since_negotiate: u32::MAX,
                            running: None,
                            phase_at: None,
                        },
                    ));
                }
            }
        }
        self.next_id += new.len();
        let keep: std::collections::HashSet<usize> = ids.iter().copied().collect();
        let mut gone = Vec::new();
        self.checks.retain(|id, _| {
            let kept = keep.contains(id);
            if !kept {
                gone.push(*id);
            }
            kept
        });
        let mut add = Vec::with_capacity(new.len());
        let count = new.len();
        for (id, c, slot) in new {
            let f = fraction(hash_of(&c));
            add.push(Added {
                id,
                first: first_window(c.interval, count).mul_f64(f),
                phase: c.interval.mul_f64(f),
                slot,
            });
            self.checks.insert(id, c);
        }
        // Each check lives in the room its id picks.
        let n = self.rooms.len();
        let mut cmds: Vec<Command> = (0..n)
            .map(|_| Command {
                add: Vec::new(),
                gone: Vec::new(),
            })
            .collect();
        for a in add {
            cmds[a.id % n].add.push(a);
        }
        for g in gone {
            cmds[g % n].gone.push(g);
        }
        for (room, cmd) in self.rooms.iter().zip(cmds) {
            if !cmd.add.is_empty() || !cmd.gone.is_empty() {
                // An Err: the room has stopped (the daemon is going).
                let _ = room.cmds.send(cmd);
            }
        }
        self.ids = ids;
        Ok(())
    }

    /// The id of each check of the last plan, in its order.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// Number of checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Whether there are no checks.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }
}

mod room;
use room::{Added, Command, Room, Slot};
pub use room::{BATCH, EARLY, FIRST_IN_FLIGHT, MAX_PENDING, STALL, YOUNG};

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_check(port: u16, interval: Duration) -> Check {
        Check {
            probe: Probe {
                spec: ProbeSpec::Connect {
                    addr: "127.0.0.1".parse().unwrap(),
                    port,
                },
                deadline: Duration::from_secs(1),
            },
            negotiate_every: None,
            interval,
            failurecount: 1,
            risecount: 1,
        }
    }

    #[test]
    fn a_first_round_is_as_quick_as_its_rate_allows_and_never_longer_than_an_interval() {
        let i = Duration::from_secs(5);
        assert_eq!(first_window(i, 3), Duration::from_micros(150));
        assert_eq!(first_window(i, 37_298), Duration::from_secs_f64(1.8649));
        assert_eq!(first_window(i, 1_000_000), i);
    }

    #[test]
    fn after_the_first_probe_a_check_moves_to_its_phase_at_least_half_an_interval_on() {
        let slot = |interval| Slot {
            probe: build(&connect_check(1, interval).probe, &IcmpSockets::new()).unwrap(),
            negotiate: None,
            interval,
            seed: 0,
            since_negotiate: 0,
            running: None,
            phase_at: None,
        };
        let s = slot(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        // Phase 8 s, first probe at 1 s: the phase is 7 s on.
        assert_eq!(s.after_first(at(8_000), at(1_000)), Some(at(8_000)));
        // Phase 3 s, first probe at 0.1 s: 2.9 s is too soon, 12.9 s it is.
        assert_eq!(s.after_first(at(3_000), at(100)), Some(at(13_000)));
        // The first probe waited past its phase and the next one: the
        // usual round instead.
        assert_eq!(s.after_first(at(3_000), at(9_000)), None);
    }

    /// The room on the test's runtime, real time: three checks with a 2 s
    /// interval start within milliseconds (ldirectord checks every real at
    /// start), then each runs at its phase.
    #[tokio::test]
    async fn new_checks_run_at_once_then_at_their_phase() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let i = Duration::from_secs(2);
        let checks: Vec<Arc<Check>> = (0..3u32)
            .map(|n| {
                let mut c = connect_check(port, i);
                c.failurecount = n + 1; // three different checks
                Arc::new(c)
            })
            .collect();
        let (tx, mut rx) = mpsc::channel(16);
        let t0 = Instant::now();
        let s = Scheduler::start(&checks, tx, 64, Rooms::Here).unwrap();
        let ids = s.ids().to_vec();
        let mut starts: HashMap<usize, Vec<Instant>> = HashMap::new();
        while starts.values().map(Vec::len).sum::<usize>() < 6 {
            let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("probes within 10 s")
                .expect("the room runs");
            for o in batch {
                assert!(o.result.is_ok(), "{:?}", o.result);
                let v = starts.entry(o.check).or_default();
                if v.len() < 2 {
                    v.push(o.started);
                }
            }
        }
        drop(s);
        for (id, c) in ids.into_iter().zip(&checks) {
            let v = &starts[&id];
            let first = v[0] - t0;
            assert!(
                first < Duration::from_millis(100),
                "first probe {first:?} after start"
            );
            let gap = v[1] - v[0];
            assert!(
                gap >= i / 2 && gap < i * 3 / 2,
                "second probe {gap:?} after the first"
            );
            // At its phase (or a whole interval later), to the millisecond
            // the runtime's timer keeps.
            let at = (v[1] - t0).as_secs_f64() % i.as_secs_f64();
            let want = phase(c).as_secs_f64();
            let off = (at - want).abs();
            let off = off.min(i.as_secs_f64() - off);
            assert!(off < 0.05, "second probe at phase {at}, want {want}");
        }
        drop(listener);
    }

    /// Hanging reals on their round fill every place again as soon as
    /// one frees; a real added by a reload still gets its first probe
    /// (it fell due before them), instead of waiting for ever.
    #[tokio::test]
    async fn a_new_check_is_not_starved_by_hanging_reals_on_their_round() {
        // A "mail server" that never greets: every SMTP probe runs out of
        // time. And one that accepts: the new check's connect passes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let second = Duration::from_secs(1);
        let hanging: Vec<Arc<Check>> = (0..6u32)
            .map(|n| {
                Arc::new(Check {
                    probe: Probe {
                        spec: ProbeSpec::Smtp {
                            addr: "127.0.0.1".parse().unwrap(),
                            port: silent.local_addr().unwrap().port(),
                        },
                        deadline: second,
                    },
                    negotiate_every: None,
                    interval: second,
                    failurecount: n + 1,
                    risecount: 1,
                })
            })
            .collect();
        let (tx, mut rx) = mpsc::channel(64);
        // Four places: the six hanging checks keep them all busy.
        let mut s = Scheduler::start(&hanging, tx, 4, Rooms::Here).unwrap();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let _ = tokio::time::timeout_at(until, rx.recv()).await;
        }
        let mut all = hanging.clone();
        all.push(Arc::new(connect_check(
            open.local_addr().unwrap().port(),
            Duration::from_secs(1),
        )));
        s.update(&all).unwrap();
        let new_id = s.ids()[6];
        let t = Instant::now();
        loop {
            let batch = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("the new check probed within 5 s")
                .expect("the room runs");
            if let Some(o) = batch.iter().find(|o| o.check == new_id) {
                assert!(o.result.is_ok(), "{:?}", o.result);
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(5), "the new check waits");
        }
        drop((silent, open));
    }

    #[test]
    fn ten_thousand_checks_spread_over_their_interval() {
        let mut per_ms = vec![0u32; 1000];
        for port in 1..=10_000u16 {
            let c = Check {
                probe: Probe {
                    spec: ProbeSpec::Connect {
                        addr: "10.0.0.5".parse().unwrap(),
                        port,
                    },
                    deadline: Duration::from_secs(5),
                },
                negotiate_every: None,
                interval: Duration::from_secs(1),
                failurecount: 1,
                risecount: 1,
            };
            let off = phase(&c);
            assert!(off < c.interval);
            per_ms[off.as_millis() as usize] += 1;
        }
        // Uniform would be 10 a millisecond; no millisecond gets a crowd
        // and none is left empty.
        let (min, max) = (per_ms.iter().min().unwrap(), per_ms.iter().max().unwrap());
        assert!(*max <= 30, "{max} checks in one millisecond");
        assert!(*min >= 1, "an empty millisecond");
    }
}
