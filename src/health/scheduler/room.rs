//! A check room (see the parent module): one thread's timers, slots and
//! probes in flight, and the order in which due checks start.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use checkers::ProbeError;
use futures_util::StreamExt;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Outcome, Ready, fraction};

/// How long the first result of a batch waits for others before the batch
/// goes to the daemon.
pub const BATCH: Duration = Duration::from_millis(5);

/// First rounds' young probes in flight at most in a room (and at most
/// half its places). A first round starts probes faster than a round
/// ([`FIRST_ROUND_RATE`]); on a machine that cannot keep up they wait for
/// a place here, before their deadline starts, instead of all running at
/// once and running out of time for want of CPU (at 37,298 reals on 2
/// cores, 446 were put down that way).
pub const FIRST_IN_FLIGHT: usize = 1024;

/// A first round's probe in flight this long no longer counts against
/// [`FIRST_IN_FLIGHT`]: it waits for its real (one that hangs), not for
/// lvsd's CPU, and must not hold back the reals behind it.
pub const YOUNG: Duration = Duration::from_millis(250);

/// Results waiting for the daemon beyond which no probe starts.
pub const MAX_PENDING: usize = 8192;

/// As late as a check is put off when its interval is too long for the
/// clock (a year).
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// How much earlier than due a check may start, with others that are due
/// (at 1,000 probes a second about five share a wakeup of the room).
pub const EARLY: Duration = Duration::from_millis(5);

/// How often the room's loop goes round at least while probes are in
/// flight.
const TICK: Duration = Duration::from_millis(100);

/// A gap in the room's loop this long is a stall (see [`Room::note_stall`]).
pub const STALL: Duration = Duration::from_millis(500);

/// Checks added to and removed from the room.
pub(super) struct Command {
    /// New checks.
    pub(super) add: Vec<Added>,
    /// Ids of checks stopped.
    pub(super) gone: Vec<usize>,
}

/// A check new to the room.
pub(super) struct Added {
    pub(super) id: usize,
    pub(super) slot: Slot,
    /// When it first runs, from now.
    pub(super) first: Duration,
    /// Its phase, from now: where its rounds go after the first.
    pub(super) phase: Duration,
}

/// One check in the room.
pub(super) struct Slot {
    pub(super) probe: Ready,
    /// `checktype=N`: every N good connects, this probe instead.
    pub(super) negotiate: Option<(u32, Ready)>,
    pub(super) interval: Duration,
    /// The jitter's generator.
    pub(super) seed: u64,
    /// Good connects since the last negotiate probe (MAX: negotiate next).
    pub(super) since_negotiate: u32,
    /// Its probe in flight: aborted when the check goes (a reload), so a
    /// removed check's hanging probe frees its place at once.
    pub(super) running: Option<AbortHandle>,
    /// Until its first probe ends: when its phase falls (see
    /// [`Slot::after_first`]).
    pub(super) phase_at: Option<Instant>,
}

impl Slot {
    /// When a check whose first probe started at `started` runs next: at
    /// its phase, the first one at least half an interval after that
    /// start; `None` when the first probe waited so long that the phase
    /// is past (the usual next round then).
    pub(super) fn after_first(&self, phase_at: Instant, started: Instant) -> Option<Instant> {
        let soonest = started.checked_add(self.interval / 2)?;
        if phase_at >= soonest {
            return Some(phase_at);
        }
        let next = phase_at.checked_add(self.interval)?;
        (next >= soonest).then_some(next)
    }
}

/// A probe that finished: its check, whether it negotiated, when it
/// started, its result.
type Finished = (usize, bool, Instant, Result<(), ProbeError>);

/// A probe in flight, and what it found (`None`: aborted, its check is
/// gone).
type InFlight = Pin<Box<dyn Future<Output = Option<Finished>> + Send>>;

/// A first round's probe counted as young until [`YOUNG`] has passed or
/// it ends (or is dropped: aborted), whichever comes first.
struct Young {
    count: Option<Arc<AtomicUsize>>,
}

impl Young {
    fn new(count: Arc<AtomicUsize>) -> Young {
        count.fetch_add(1, Ordering::Relaxed);
        Young { count: Some(count) }
    }

    fn release(&mut self) {
        if let Some(c) = self.count.take() {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Young {
    fn drop(&mut self) {
        self.release();
    }
}

/// The room: every check's slot, the timers and the probes in flight.
pub(super) struct Room {
    slots: HashMap<usize, Slot>,
    /// When each idle check runs next (earliest first). An entry whose
    /// check is gone is skipped.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Due checks waiting for a place in flight, with when they fell due.
    waiting: VecDeque<(Instant, usize)>,
    /// Due checks in their first round waiting (see [`FIRST_IN_FLIGHT`]).
    waiting_first: VecDeque<(Instant, usize)>,
    in_flight: FuturesUnordered<InFlight>,
    max_in_flight: usize,
    /// First rounds' young probes in flight (see [`Young`]).
    young: Arc<AtomicUsize>,
    /// How many of them may be.
    first_cap: usize,
    /// When the loop last went round (see [`STALL`]).
    last_loop: Instant,
    /// When the room last found it had not run for [`STALL`] or more: a
    /// probe started before then that ran out of time is not counted.
    stalled_at: Option<Instant>,
    /// Results not yet sent, and when they go.
    pending: Vec<Outcome>,
    tx: mpsc::Sender<Vec<Outcome>>,
}

impl Room {
    pub(super) fn new(max_in_flight: usize, tx: mpsc::Sender<Vec<Outcome>>) -> Room {
        Room {
            slots: HashMap::new(),
            due: BinaryHeap::new(),
            waiting: VecDeque::new(),
            waiting_first: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
            max_in_flight: max_in_flight.max(1),
            young: Arc::new(AtomicUsize::new(0)),
            first_cap: FIRST_IN_FLIGHT.min(max_in_flight / 2).max(1),
            last_loop: Instant::now(),
            stalled_at: None,
            pending: Vec::new(),
            tx,
        }
    }

    pub(super) async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Command>) {
        let mut send_at: Option<Instant> = None;
        let mut last_sent: Option<Instant> = None;
        // While probes are in flight the loop goes round at least this
        // often, so a longer gap means the room did not run.
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = Instant::now();
            self.note_stall(now);
            while let Some(&Reverse((at, id))) = self.due.peek() {
                // Checks due within EARLY start with the first: one wakeup
                // for a few probes rather than one each.
                if at > now + EARLY {
                    break;
                }
                self.due.pop();
                match self.slots.get(&id) {
                    Some(s) if s.phase_at.is_some() => self.waiting_first.push_back((at, id)),
                    Some(_) => self.waiting.push_back((at, id)),
                    None => {}
                }
            }
            while self.in_flight.len() < self.max_in_flight && self.pending.len() < MAX_PENDING {
                let Some(id) = self.next_waiting() else {
                    break;
                };
                self.start(id);
            }
            let next_due = self.due.peek().map(|Reverse((at, _))| *at);
            let tx = self.tx.clone();
            tokio::select! {
                biased;
                cmd = cmds.recv() => match cmd {
                    Some(c) => self.apply(c),
                    None => return,
                },
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    let Some(done) = done else {
                        continue; // aborted: its check is gone
                    };
                    if self.finish(done) && send_at.is_none() {
                        // At once after a quiet spell; else one batch per BATCH.
                        let now = Instant::now();
                        send_at = Some(last_sent.map_or(now, |t| (t + BATCH).max(now)));
                    }
                }
                permit = async move {
                    tokio::time::sleep_until(send_at.unwrap_or_else(Instant::now)).await;
                    tx.reserve_owned().await
                }, if send_at.is_some() => match permit {
                    Ok(p) => {
                        p.send(std::mem::take(&mut self.pending));
                        send_at = None;
                        last_sent = Some(Instant::now());
                    }
                    Err(_) => return,
                },
                () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
                _ = tick.tick(), if !self.in_flight.is_empty() => {}
            }
        }
    }

    fn apply(&mut self, c: Command) {
        for id in c.gone {
            if let Some(Slot {
                running: Some(probe),
                ..
            }) = self.slots.remove(&id)
            {
                probe.abort();
            }
        }
        let now = Instant::now();
        for Added {
            id,
            mut slot,
            first,
            phase,
        } in c.add
        {
            slot.phase_at = now.checked_add(phase);
            self.slots.insert(id, slot);
            self.due
                .push(Reverse((now.checked_add(first).unwrap_or(now + FAR), id)));
        }
    }

    /// Notes a stall: the loop has not gone round for [`STALL`] although
    /// it should have every [`TICK`] while probes are in flight (SIGSTOP,
    /// a suspended machine, a starved CPU). The deadlines of the probes in
    /// flight ran out while their answers could not be read.
    fn note_stall(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last_loop);
        if gap >= STALL && !self.in_flight.is_empty() {
            tracing::warn!(
                "the checks did not run for {:.1} s (lvsd stopped or starved of CPU): probes that ran out of time meanwhile are not counted against their reals",
                gap.as_secs_f64()
            );
            self.stalled_at = Some(now);
        }
        self.last_loop = now;
    }

    /// The due check to start next: the one that fell due first, but a
    /// first round's only while its young probes are under the cap (so
    /// neither kind can hold the other back for good).
    fn next_waiting(&mut self) -> Option<usize> {
        let first_ok = self.young.load(Ordering::Relaxed) < self.first_cap;
        let take_first = match (self.waiting.front(), self.waiting_first.front()) {
            (_, None) => false,
            (None, Some(_)) => first_ok,
            (Some((a, _)), Some((b, _))) => first_ok && b <= a,
        };
        let q = if take_first {
            &mut self.waiting_first
        } else {
            &mut self.waiting
        };
        q.pop_front().map(|(_, id)| id)
    }

    /// Starts a probe of check `id`.
    fn start(&mut self, id: usize) {
        let Some(slot) = self.slots.get(&id) else {
            return;
        };
        // checktype=N: the first probe negotiates, then every N good connects.
        let negotiate = match &slot.negotiate {
            Some((n, _)) => slot.since_negotiate >= *n,
            None => false,
        };
        let ready = match (&slot.negotiate, negotiate) {
            (Some((_, neg)), true) => neg,
            _ => &slot.probe,
        };
        let checker = Arc::clone(&ready.checker);
        let deadline = ready.deadline;
        let started = Instant::now();
        let (abort, registration) = AbortHandle::new_pair();
        let young = slot
            .phase_at
            .is_some()
            .then(|| Young::new(Arc::clone(&self.young)));
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.running = Some(abort);
        }
        let probe = Abortable::new(
            async move {
                let probe = checkers::run_probe(checker, deadline);
                let result = match young {
                    None => probe.await,
                    Some(mut young) => {
                        tokio::pin!(probe);
                        tokio::select! {
                            r = &mut probe => r,
                            () = tokio::time::sleep(YOUNG) => {
                                young.release();
                                probe.await
                            }
                        }
                    }
                };
                (id, negotiate, started, result)
            },
            registration,
        );
        self.in_flight
            .push(Box::pin(async move { probe.await.ok() }));
    }

    /// A probe finished: its check's next run is set and its result kept
    /// for the daemon. False when its check is gone (the result is not
    /// sent).
    fn finish(&mut self, (id, negotiated, started, mut result): Finished) -> bool {
        let now = Instant::now();
        let took = now.saturating_duration_since(started);
        self.note_stall(now);
        if let Err(e) = &result
            && e.step == checkers::Step::Deadline
            && self.stalled_at.is_some_and(|at| started < at)
        {
            result = Err(ProbeError {
                subject: e.subject.clone(),
                step: checkers::Step::Local,
                reason: format!(
                    "{}, but lvsd itself did not run meanwhile (stopped or starved of CPU): not counted",
                    e.reason
                ),
            });
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            return false;
        };
        slot.running = None;
        slot.since_negotiate = match (&result, negotiated) {
            (Err(_), _) => u32::MAX,
            (Ok(()), true) => 0,
            (Ok(()), false) => slot.since_negotiate.saturating_add(1),
        };
        // ±5% so checks that started together drift apart.
        slot.seed = slot
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let jitter = slot.interval.mul_f64(0.1 * fraction(slot.seed));
        let first = slot
            .phase_at
            .take()
            .and_then(|at| slot.after_first(at, started));
        // Checked: an absurd interval (years) must not panic the room, which
        // holds every check; such a check waits a year.
        let next = first
            .or_else(|| {
                started
                    .checked_add(slot.interval.saturating_add(jitter))
                    .and_then(|t| t.checked_sub(slot.interval / 20))
            })
            .unwrap_or_else(|| started + FAR)
            .max(Instant::now());
        self.due.push(Reverse((next, id)));
        self.pending.push(Outcome {
            check: id,
            result,
            started,
            took,
        });
        true
    }
}
