//! Pure: the rise/fall state of one check.
//!
//! A check is Up or Down. Results move it as ldirectord does, with lvsd's
//! `risecount` added:
//!
//! | state | result  | counters after           | verdict                                  |
//! |-------|---------|--------------------------|------------------------------------------|
//! | Up    | success | fails = 0                | `Steady` (`Recovered` if fails was > 0)  |
//! | Up    | failure | fails + 1 < failurecount | `SoftFailure { n, of }`, stays Up        |
//! | Up    | failure | fails + 1 = failurecount | `Down { after }`                         |
//! | Down  | failure | oks = 0                  | `Steady`                                 |
//! | Down  | success | oks + 1 < risecount      | `Rising { n, of }`, stays Down           |
//! | Down  | success | oks + 1 = risecount      | `Up { after }`                           |
//! | Fresh | success |                          | `Up { after: 1 }`                        |
//! | Fresh | failure |                          | `Confirmed`, becomes Down                |
//!
//! At start-up (ldirectord's `ld_start`): a real the kernel already has
//! with a weight above 0 starts **Up** without a check, so a restart never
//! takes a healthy real out; every other real starts **Fresh**: treated as
//! down, and its first result decides at once (one success is enough, as
//! ldirectord's rise of 1, so a cold start serves as soon as reals answer;
//! `risecount` applies to reals that failed while running).

/// Whether a real should receive traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Serving.
    Up,
    /// Taken out.
    Down,
}

/// What one result did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changed that is worth a log line.
    Steady,
    /// A failure while Up that does not yet take the real out.
    SoftFailure {
        /// Consecutive failures so far.
        n: u32,
        /// `failurecount`.
        of: u32,
    },
    /// An Up real succeeded after soft failures (ldirectord logs
    /// "Resetting soft failure count").
    Recovered {
        /// The soft failures forgotten.
        after: u32,
    },
    /// A success while Down that does not yet bring the real back.
    Rising {
        /// Consecutive successes so far.
        n: u32,
        /// `risecount`.
        of: u32,
    },
    /// The first result of a Fresh check was a failure: it stays out.
    Confirmed,
    /// Up → Down after `after` consecutive failures.
    Down {
        /// Consecutive failures.
        after: u32,
    },
    /// Down (or Fresh) → Up after `after` consecutive successes.
    Up {
        /// Consecutive successes.
        after: u32,
    },
}

impl Verdict {
    /// The transition, if the verdict is one.
    pub fn transition(self) -> Option<Health> {
        match self {
            Verdict::Down { .. } => Some(Health::Down),
            Verdict::Up { .. } => Some(Health::Up),
            _ => None,
        }
    }
}

/// Rise/fall counters of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    health: Health,
    fresh: bool,
    fails: u32,
    oks: u32,
    failurecount: u32,
    risecount: u32,
}

impl CheckState {
    /// A check that starts Up (the kernel already serves the real).
    pub fn up(failurecount: u32, risecount: u32) -> CheckState {
        CheckState::with(Health::Up, false, failurecount, risecount)
    }

    /// A check that starts Fresh: down until its first result.
    pub fn fresh(failurecount: u32, risecount: u32) -> CheckState {
        CheckState::with(Health::Down, true, failurecount, risecount)
    }

    fn with(health: Health, fresh: bool, failurecount: u32, risecount: u32) -> CheckState {
        CheckState {
            health,
            fresh,
            fails: 0,
            oks: 0,
            failurecount: failurecount.max(1),
            risecount: risecount.max(1),
        }
    }

    /// Up or Down (Fresh counts as Down).
    pub fn health(&self) -> Health {
        self.health
    }

    /// Whether no result has arrived since start-up.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Feeds one probe result.
    pub fn observe(&mut self, ok: bool) -> Verdict {
        if std::mem::take(&mut self.fresh) {
            return if ok {
                self.health = Health::Up;
                Verdict::Up { after: 1 }
            } else {
                self.fails = 1;
                Verdict::Confirmed
            };
        }
        match (self.health, ok) {
            (Health::Up, true) => match std::mem::take(&mut self.fails) {
                0 => Verdict::Steady,
                after => Verdict::Recovered { after },
            },
            (Health::Up, false) => {
                self.fails += 1;
                if self.fails >= self.failurecount {
                    self.health = Health::Down;
                    self.oks = 0;
                    Verdict::Down { after: self.fails }
                } else {
                    Verdict::SoftFailure {
                        n: self.fails,
                        of: self.failurecount,
                    }
                }
            }
            (Health::Down, false) => {
                self.oks = 0;
                self.fails = self.fails.saturating_add(1);
                Verdict::Steady
            }
            (Health::Down, true) => {
                self.oks += 1;
                if self.oks >= self.risecount {
                    self.health = Health::Up;
                    self.fails = 0;
                    Verdict::Up {
                        after: std::mem::take(&mut self.oks),
                    }
                } else {
                    Verdict::Rising {
                        n: self.oks,
                        of: self.risecount,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &mut CheckState, results: &str) -> Vec<Verdict> {
        results.chars().map(|c| s.observe(c == '+')).collect()
    }

    #[test]
    fn down_after_exactly_failurecount_failures() {
        let mut s = CheckState::up(3, 1);
        let v = run(&mut s, "--+---");
        assert_eq!(
            v,
            [
                Verdict::SoftFailure { n: 1, of: 3 },
                Verdict::SoftFailure { n: 2, of: 3 },
                Verdict::Recovered { after: 2 },
                Verdict::SoftFailure { n: 1, of: 3 },
                Verdict::SoftFailure { n: 2, of: 3 },
                Verdict::Down { after: 3 },
            ]
        );
        assert_eq!(s.health(), Health::Down);
    }

    #[test]
    fn up_after_exactly_risecount_successes() {
        let mut s = CheckState::up(1, 3);
        let v = run(&mut s, "-++-+++");
        assert_eq!(
            v,
            [
                Verdict::Down { after: 1 },
                Verdict::Rising { n: 1, of: 3 },
                Verdict::Rising { n: 2, of: 3 },
                Verdict::Steady,
                Verdict::Rising { n: 1, of: 3 },
                Verdict::Rising { n: 2, of: 3 },
                Verdict::Up { after: 3 },
            ]
        );
        assert_eq!(s.health(), Health::Up);
    }

    #[test]
    fn fresh_checks_decide_on_the_first_result() {
        let mut s = CheckState::fresh(3, 5);
        assert_eq!(s.health(), Health::Down);
        assert_eq!(run(&mut s, "+"), [Verdict::Up { after: 1 }]);
        let mut s = CheckState::fresh(3, 2);
        assert_eq!(
            run(&mut s, "-++"),
            [
                Verdict::Confirmed,
                Verdict::Rising { n: 1, of: 2 },
                Verdict::Up { after: 2 }
            ]
        );
    }

    #[test]
    fn zero_counts_mean_one() {
        let mut s = CheckState::up(0, 0);
        assert_eq!(
            run(&mut s, "-+"),
            [Verdict::Down { after: 1 }, Verdict::Up { after: 1 }]
        );
    }
}
