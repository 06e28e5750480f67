//! Pure: bounded logging of datagrams failover drops. Anyone who can send
//! to the heartbeat port can make lvsd drop datagrams; one WARN line each
//! would let them fill the disk. So the first drop of a kind from a sender
//! is logged at once, the rest are counted, and a summary per sender and
//! kind goes out at most every [`WINDOW`] ("dropped 5000 datagrams from
//! 192.0.2.13 in the last 10 s: authentication failed"). A sender quiet for
//! a whole window is forgotten, so its next drop is logged at once again.
//! At most [`MAX_SENDERS`] are told apart; the rest are summed as "other
//! senders". Time is passed in.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::BTreeMap;

/// How often a summary may go out.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Senders told apart (more are summed together).
pub const MAX_SENDERS: usize = 64;
/// Lines a window may write: first drops told at once, and summaries (the
/// senders that dropped most, the rest summed in one more line). A flood
/// from many senders writes at most this many lines per [`WINDOW`] each.
pub const MAX_LINES: usize = 8;

/// Why a datagram was dropped: a closed set (counted in /metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropKind {
    /// Too long, or not heartbeat's framing.
    Malformed,
    /// Signed with another secret or an unknown key.
    Authentication,
    /// No `src` or `hg`.
    Incomplete,
    /// Seen before, or from an older generation.
    Replay,
    /// The socket reported an error.
    Receive,
}

impl DropKind {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::Malformed => "malformed",
            DropKind::Authentication => "authentication",
            DropKind::Incomplete => "incomplete",
            DropKind::Replay => "replay",
            DropKind::Receive => "receive",
        }
    }
}

#[derive(Debug)]
struct Count {
    /// Drops since the last summary (beyond the one logged at once).
    n: u64,
    /// The latest reason, for the summary.
    reason: String,
    /// Windows in a row without a drop.
    quiet: u32,
}

/// The drops of the current window.
#[derive(Debug, Default)]
pub struct DropLog {
    counts: BTreeMap<(Option<IpAddr>, DropKind), Count>,
    last_summary: Option<Duration>,
    /// First drops told at once in this window.
    told: usize,
}

impl DropLog {
    /// A drop at `now`: the line to log at once, if any.
    pub fn note(
        &mut self,
        now: Duration,
        from: Option<IpAddr>,
        kind: DropKind,
        reason: &str,
    ) -> Option<String> {
        self.last_summary.get_or_insert(now);
        let senders = self.counts.len();
        let key = match from {
            Some(_) if senders >= MAX_SENDERS && !self.counts.contains_key(&(from, kind)) => {
                (None, kind)
            }
            f => (f, kind),
        };
        match self.counts.get_mut(&key) {
            Some(c) => {
                c.n += 1;
                c.quiet = 0;
                reason.clone_into(&mut c.reason);
                None
            }
            None => {
                // Past the window's lines: counted, summed up later.
                let told = self.told < MAX_LINES;
                self.counts.insert(
                    key,
                    Count {
                        n: u64::from(!told),
                        reason: reason.to_owned(),
                        quiet: 0,
                    },
                );
                if !told {
                    return None;
                }
                self.told += 1;
                Some(format!(
                    "dropped a datagram from {}: {reason} (more are summed up every {} s)",
                    who(key.0),
                    WINDOW.as_secs()
                ))
            }
        }
    }

    /// The summaries due at `now` (none until a window has passed).
    pub fn summary(&mut self, now: Duration) -> Vec<String> {
        let Some(last) = self.last_summary else {
            return Vec::new();
        };
        if now.saturating_sub(last) < WINDOW {
            return Vec::new();
        }
        let span = now.saturating_sub(last).as_secs();
        self.last_summary = Some(now);
        self.told = 0;
        let mut dropped: Vec<(u64, Option<IpAddr>, String)> = Vec::new();
        self.counts.retain(|(from, _), c| {
            if c.n > 0 {
                dropped.push((c.n, *from, std::mem::take(&mut c.reason)));
                c.n = 0;
                c.quiet = 0;
                true
            } else {
                c.quiet += 1;
                c.quiet < 2
            }
        });
        if self.counts.is_empty() {
            self.last_summary = None;
        }
        // The senders that dropped most, one line each; the rest in one.
        dropped.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let (top, rest) = if dropped.len() > MAX_LINES {
            dropped.split_at(MAX_LINES - 1)
        } else {
            (&dropped[..], &[][..])
        };
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let mut out: Vec<String> = top
            .iter()
            .map(|(n, from, reason)| {
                format!(
                    "dropped {n} datagram{} from {} in the last {span} s: {reason}",
                    plural(*n),
                    who(*from)
                )
            })
            .collect();
        if !rest.is_empty() {
            let n: u64 = rest.iter().map(|r| r.0).sum();
            out.push(format!(
                "dropped {n} datagram{} from {} more senders in the last {span} s",
                plural(n),
                rest.len()
            ));
        }
        out
    }
}

fn who(from: Option<IpAddr>) -> String {
    from.map_or_else(|| "other or unknown senders".to_owned(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_flood_is_one_line_then_a_summary_per_window() {
        let mut log = DropLog::default();
        let a: IpAddr = "192.0.2.13".parse().unwrap();
        let first = log.note(
            s(0),
            Some(a),
            DropKind::Authentication,
            "authentication failed (key 1)",
        );
        assert!(
            first.is_some_and(|l| l.contains("192.0.2.13") && l.contains("authentication failed"))
        );
        for _ in 0..4999 {
            assert_eq!(
                log.note(
                    s(1),
                    Some(a),
                    DropKind::Authentication,
                    "authentication failed (key 1)"
                ),
                None
            );
        }
        assert!(log.summary(s(5)).is_empty(), "not before the window ends");
        assert_eq!(
            log.summary(s(10)),
            vec![
                "dropped 4999 datagrams from 192.0.2.13 in the last 10 s: authentication failed (key 1)"
            ]
        );
        // Quiet for two windows: forgotten, and the next drop is told at once.
        assert!(log.summary(s(20)).is_empty());
        assert!(log.summary(s(30)).is_empty());
        assert!(
            log.note(s(31), Some(a), DropKind::Authentication, "x")
                .is_some()
        );
    }

    #[test]
    fn senders_beyond_the_cap_are_summed_together() {
        let mut log = DropLog::default();
        let mut told = 0;
        for i in 0..1000u32 {
            let from = IpAddr::from(core::net::Ipv4Addr::from(0xc000_0200 + i));
            if log
                .note(s(0), Some(from), DropKind::Malformed, "malformed")
                .is_some()
            {
                told += 1;
            }
        }
        assert_eq!(told, MAX_LINES, "at most MAX_LINES lines at once");
        // Past the first lines, each told-apart sender's drop is counted
        // (56 of one each), and the senders past the cap are summed as
        // other senders (936): 1,000 less the 8 told at once, all counted.
        let summary = log.summary(s(10));
        assert_eq!(summary.len(), MAX_LINES, "{summary:?}");
        assert!(
            summary[0].starts_with("dropped 936 datagrams from other or unknown senders"),
            "{summary:?}"
        );
        assert!(
            summary[MAX_LINES - 1].starts_with("dropped 50 datagrams from 50 more senders"),
            "{summary:?}"
        );
        // The next window may tell first drops at once again.
        let new: IpAddr = "198.51.100.1".parse().unwrap();
        log.summary(s(20));
        log.summary(s(30));
        assert!(
            log.note(s(31), Some(new), DropKind::Replay, "replay")
                .is_some()
        );
    }
}
