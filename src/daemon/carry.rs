//! Pure: what a reload carries from the running configuration to the new
//! one (DESIGN.md §3.8). A check in both plans keeps its record (rise/fall
//! state, last failure, last probe; its task and timer phase stay in the
//! scheduler): no re-probe, no flap. A check only in the new plan starts as
//! at start. A virtual in both keeps its record (fallbackcommand state and
//! run, the "no real up" it told); a new virtual starts empty. And the
//! guard against a file emptied or caught half-written.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::config::Config;
use crate::ipvs::table::{Destination, ServiceKey};

/// The new plan's records, in its order, and what happened to the old.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Carried<C, V> {
    /// One record per check of the new plan.
    pub checks: Vec<C>,
    /// One record per virtual of the new configuration.
    pub virtuals: Vec<V>,
    /// Checks in both plans.
    pub kept: usize,
    /// Checks only in the new plan.
    pub started: usize,
    /// Checks only in the old plan.
    pub stopped: usize,
    /// The records of virtuals only in the old configuration, with their
    /// index there.
    pub gone: Vec<(usize, V)>,
}

/// Carries `records` (one per check of `old`) over to the checks of
/// `new`; `fresh(i)` makes the record of `new[i]` when it is new. The
/// same for virtuals by key.
pub(super) fn carry<X: Eq + Hash, C, Key: Eq + Hash, V: Default>(
    (old, records): (&[X], Vec<C>),
    new: &[X],
    mut fresh: impl FnMut(usize) -> C,
    (old_keys, virtuals): (&[Key], Vec<V>),
    new_keys: &[Key],
) -> Carried<C, V> {
    let index: HashMap<&X, usize> = old.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let mut records: Vec<Option<C>> = records.into_iter().map(Some).collect();
    let mut kept = 0;
    let checks: Vec<C> = new
        .iter()
        .enumerate()
        .map(
            |(i, c)| match index.get(c).and_then(|&o| records.get_mut(o)?.take()) {
                Some(r) => {
                    kept += 1;
                    r
                }
                None => fresh(i),
            },
        )
        .collect();
    let mut by_key: HashMap<&Key, (usize, V)> = old_keys
        .iter()
        .zip(virtuals)
        .enumerate()
        .map(|(i, (k, v))| (k, (i, v)))
        .collect();
    let virtuals = new_keys
        .iter()
        .map(|k| by_key.remove(k).map(|(_, v)| v).unwrap_or_default())
        .collect();
    let mut gone: Vec<(usize, V)> = by_key.into_values().collect();
    gone.sort_by_key(|(i, _)| *i);
    Carried {
        checks,
        virtuals,
        kept,
        started: new.len() - kept,
        stopped: old.len() - kept,
        gone,
    }
}

/// Why `new` looks like a file emptied or caught half-written next to
/// `old`: no virtual where there were some, or virtuals without one real
/// where there were reals. Taking it would empty the IPVS table; only
/// `lvsd reload --allow-empty` does that on purpose.
pub(super) fn emptied(old: &Config, new: &Config) -> Option<String> {
    let reals = |c: &Config| c.virtuals.iter().map(|v| v.reals.len()).sum::<usize>();
    if new.virtuals.is_empty() && !old.virtuals.is_empty() {
        Some(format!(
            "the new configuration has no virtual service where the running one has {}",
            old.virtuals.len()
        ))
    } else if reals(new) == 0 && reals(old) > 0 {
        Some(format!(
            "the new configuration has no real server where the running one has {}",
            reals(old)
        ))
    } else {
        None
    }
}

/// A real as alerts and metrics name it: (virtual, real, "real R of V").
pub(super) type RealName = (String, String, String);

/// The reals of `old` that `new` no longer has (their reminders and
/// metrics go).
pub(super) fn gone_reals(old: &Config, new: &Config) -> Vec<RealName> {
    // Compared by key; only the reals that went are named (formatting
    // every real's names twice cost a reload of 37,298 reals 0.2 s).
    let keys = |c: &Config| -> HashSet<(ServiceKey, core::net::IpAddr, u16)> {
        c.virtuals
            .iter()
            .flat_map(|vs| {
                vs.reals.iter().map(move |r| {
                    let d = Destination::of(vs, r);
                    (ServiceKey::from(vs.key), d.addr, d.port)
                })
            })
            .collect()
    };
    let after = keys(new);
    let mut gone: Vec<RealName> = keys(old)
        .difference(&after)
        .map(|(k, addr, port)| {
            let v = k.name();
            let real = crate::ipvs::table::sockaddr(*addr, *port);
            let who = format!("real {real} of {v}");
            (v, real, who)
        })
        .collect();
    gone.sort();
    gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, Names, parse_str};

    #[test]
    fn a_check_in_both_plans_keeps_its_record_and_a_new_one_starts_fresh() {
        let old = ["a", "b", "c"];
        let new = ["c", "d", "a"];
        let c = carry(
            (&old, vec![1, 2, 3]),
            &new,
            |i| 100 + i,
            (&["v1", "v2"], vec![Some(7), Some(8)]),
            &["v2", "v3"],
        );
        assert_eq!(
            c,
            Carried {
                checks: vec![3, 101, 1],
                virtuals: vec![Some(8), None],
                kept: 2,
                started: 1,
                stopped: 1,
                gone: vec![(0, Some(7))],
            }
        );
        // Nothing before (start-like): every check fresh.
        let c = carry(
            (&[], Vec::<u8>::new()),
            &["x"],
            |_| 9,
            (&[], Vec::<u8>::new()),
            &["v"],
        );
        assert_eq!(
            (c.checks, c.virtuals, c.kept, c.started),
            (vec![9], vec![0], 0, 1)
        );
    }

    fn cfg(text: &str) -> Config {
        let l = parse_str(Format::Ldirectord, "t.cf", text, &Names::offline());
        l.config.unwrap_or_else(|| panic!("{:?}", l.diagnostics))
    }

    #[test]
    fn an_emptied_file_is_told_apart_and_gone_reals_are_named() {
        let two = cfg("virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n");
        let one = cfg("virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate\n");
        let bare = cfg("virtual=192.0.2.10:80\n");
        let none = cfg("checktimeout=3\n");
        assert_eq!(emptied(&two, &one), None);
        assert!(
            emptied(&two, &bare)
                .is_some_and(|w| w.contains("no real server where the running one has 2"))
        );
        assert!(
            emptied(&two, &none)
                .is_some_and(|w| w.contains("no virtual service where the running one has 1"))
        );
        assert_eq!(emptied(&none, &two), None);
        assert_eq!(
            emptied(&none, &none),
            None,
            "nothing served before, nothing lost"
        );
        assert!(emptied(&bare, &none).is_some(), "a virtual is lost");
        assert_eq!(
            gone_reals(&two, &one),
            vec![(
                "tcp:192.0.2.10:80".to_owned(),
                "10.0.0.2:80".to_owned(),
                "real 10.0.0.2:80 of tcp:192.0.2.10:80".to_owned()
            )]
        );
        assert!(gone_reals(&one, &two).is_empty());
    }
}
