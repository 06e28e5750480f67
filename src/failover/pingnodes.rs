//! Ping nodes (ha.cf `ping` and `ping_group`): one ICMP echo to each
//! address every keepalive; an address is alive while it has answered
//! within `deadping`; a ping group counts as one node, alive while any
//! member is. The count is what ipfail compares between the directors.
//!
//! [`Reach`] is the bookkeeping (pure, time passed in); [`Pinger`] sends
//! the echoes with the checkers' ICMP sockets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use checkers::{Checker, IcmpSockets, Ping};

/// What counts: single ping nodes and groups of addresses.
#[derive(Debug, Clone)]
pub struct Reach {
    /// Each counted unit: one address, or a group's members.
    units: Vec<Vec<IpAddr>>,
    /// When each address last answered.
    answered: Vec<(IpAddr, Option<Duration>)>,
    deadping: Duration,
}

impl Reach {
    /// `ping` addresses and `ping_group` members, with ha.cf's deadping.
    pub fn new(singles: &[IpAddr], groups: &[Vec<IpAddr>], deadping: Duration) -> Reach {
        let units: Vec<Vec<IpAddr>> = singles
            .iter()
            .map(|a| vec![*a])
            .chain(groups.iter().cloned())
            .collect();
        let mut answered: Vec<(IpAddr, Option<Duration>)> =
            units.iter().flatten().map(|a| (*a, None)).collect();
        answered.dedup_by_key(|(a, _)| *a);
        Reach {
            units,
            answered,
            deadping,
        }
    }

    /// Every address to ping.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.answered.iter().map(|(a, _)| *a).collect()
    }

    /// `addr` answered at `now`.
    pub fn answered(&mut self, addr: IpAddr, now: Duration) {
        for (a, t) in &mut self.answered {
            if *a == addr {
                *t = Some(now);
            }
        }
    }

    fn alive(&self, addr: IpAddr, now: Duration) -> bool {
        self.answered
            .iter()
            .any(|(a, t)| *a == addr && t.is_some_and(|t| now < t + self.deadping))
    }

    /// How many units are reachable at `now`.
    pub fn count(&self, now: Duration) -> usize {
        self.units
            .iter()
            .filter(|members| members.iter().any(|a| self.alive(*a, now)))
            .count()
    }

    /// How many units there are.
    pub fn total(&self) -> usize {
        self.units.len()
    }
}

/// Sends the echoes: one probe per address, each with `wait` to answer.
#[derive(Debug)]
pub struct Pinger {
    probes: Vec<(IpAddr, Arc<Ping>)>,
    wait: Duration,
}

impl Pinger {
    /// Echoes to `addrs`, each waiting `wait` (a keepalive) for its reply.
    pub fn new(sockets: Arc<IcmpSockets>, addrs: &[IpAddr], wait: Duration) -> Pinger {
        Pinger {
            probes: addrs
                .iter()
                .map(|a| (*a, Arc::new(Ping::new(Arc::clone(&sockets), *a, 1, wait))))
                .collect(),
            wait,
        }
    }

    /// One round: the addresses that answered.
    pub async fn round(&self) -> Vec<IpAddr> {
        let rounds = self.probes.iter().map(|(a, p)| {
            let p: Arc<dyn Checker> = Arc::clone(p) as Arc<dyn Checker>;
            let a = *a;
            async move {
                checkers::run_probe(p, self.wait + Duration::from_millis(100))
                    .await
                    .ok()
                    .map(|()| a)
            }
        });
        futures_util::future::join_all(rounds)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!("a test address"))
    }

    #[test]
    fn a_group_counts_once_and_lives_while_any_member_answers() {
        let mut r = Reach::new(
            &[a("192.0.2.21")],
            &[vec![a("192.0.2.31"), a("192.0.2.32")]],
            1000 * MS,
        );
        assert_eq!((r.count(Duration::ZERO), r.total()), (0, 2));
        r.answered(a("192.0.2.21"), 100 * MS);
        r.answered(a("192.0.2.31"), 100 * MS);
        r.answered(a("192.0.2.32"), 100 * MS);
        assert_eq!(r.count(200 * MS), 2);
        r.answered(a("192.0.2.32"), 900 * MS);
        assert_eq!(
            r.count(1150 * MS),
            1,
            "the single node is dead after deadping; the group lives"
        );
        assert_eq!(r.count(1950 * MS), 0);
        assert_eq!(r.addresses().len(), 3);
    }

    /// Echoes to 127.0.0.1 (the loopback answers): one round, one answer.
    #[tokio::test]
    async fn pinger_on_loopback() {
        let p = Pinger::new(IcmpSockets::new(), &[a("127.0.0.1")], 1000 * MS);
        assert_eq!(p.round().await, vec![a("127.0.0.1")]);
    }
}
