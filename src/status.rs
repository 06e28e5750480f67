//! Pure: what `lvsd status` shows of the daemon — per virtual, each real
//! with its health, the kernel's weight, its last probe and last failure,
//! and the kernel's counters — as a table for people and JSON for tools.

use serde::Serialize;

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Every virtual of the running configuration, in its order.
    pub virtuals: Vec<VirtualRow>,
    /// Failover's part; None when failover does not run (no ha.cf).
    pub failover: Option<FailoverRow>,
    /// lvsd's own trouble while it lasts (probes failing for want of
    /// descriptors, memory or ports, not counted against reals).
    pub impaired: Option<String>,
}

/// What failover is doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FailoverRow {
    /// This node's name.
    pub node: String,
    /// The peer's name.
    pub peer: String,
    /// What this node holds: none, local, foreign or all.
    pub holds: String,
    /// alive, dead, or never heard.
    pub peer_state: String,
    /// Seconds since the peer was last heard (None: never).
    pub peer_heard_s_ago: Option<f64>,
    /// What the peer says it holds.
    pub peer_holds: String,
    /// Ping nodes this node reaches (None: not known yet).
    pub ping_nodes_here: Option<usize>,
    /// Ping nodes the peer reaches, as it said.
    pub ping_nodes_at_peer: Option<usize>,
    /// Why things are as they are.
    pub why: String,
}

impl FailoverRow {
    /// One `key: value` line per fact.
    pub fn text(&self) -> String {
        let peer = match self.peer_heard_s_ago {
            Some(s) => format!("{}, last heard {s:.1} s ago", self.peer_state),
            None => self.peer_state.clone(),
        };
        let count = |c: Option<usize>| c.map_or("unknown".to_owned(), |n| n.to_string());
        format!(
            "node: {} (peer {})\nholds: {}\npeer: {peer}\npeer holds: {}\nping nodes here: {}\nping nodes at the peer: {}\nwhy: {}\n",
            self.node,
            self.peer,
            self.holds,
            self.peer_holds,
            count(self.ping_nodes_here),
            count(self.ping_nodes_at_peer),
            self.why
        )
    }
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualRow {
    /// `tcp:192.0.2.10:80` or `fwm:7`.
    #[serde(rename = "virtual")]
    pub name: String,
    /// The scheduler.
    pub scheduler: String,
    /// Its reals, in the configuration's order, then a fallback in use.
    pub reals: Vec<RealRow>,
}

/// One real server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealRow {
    /// `10.0.0.5:80`.
    pub real: String,
    /// gate, masq, ipip.
    pub forward: String,
    /// up, down, starting (not checked yet), maintenance, or fallback.
    pub health: String,
    /// The weight the config gives it.
    pub configured_weight: u32,
    /// Its weight in the kernel's table (None: not in the table).
    pub weight: Option<u32>,
    /// Seconds since its check last started a probe (None: never, or
    /// not checked).
    pub last_probe_ago_s: Option<f64>,
    /// Why its last probe failed, if it did; while a down real rises
    /// (answers, not yet `risecount` times), the failure that keeps it
    /// down.
    pub last_failure: Option<String>,
    /// The kernel's counters (None where the kernel keeps none).
    pub counters: Option<crate::ipvs::table::Counters>,
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| x.to_string())
}

impl Report {
    /// The JSON of the report (exactly `serde_json::to_vec(self)`) in
    /// pieces of a real each, for writing it out as it is made: a report
    /// of 100,000 reals is never one string.
    pub fn json_chunks(&self) -> impl Iterator<Item = serde_json::Result<Vec<u8>>> + '_ {
        /// What follows `virtuals` (its fields in the report's order).
        #[derive(Serialize)]
        struct Tail<'a> {
            failover: &'a Option<FailoverRow>,
            impaired: &'a Option<String>,
        }
        let head = std::iter::once(Ok(b"{\"virtuals\":[".to_vec()));
        let virtuals = self.virtuals.iter().enumerate().flat_map(|(i, v)| {
            // The row with no reals, its closing `]}` held back: the
            // reals are its last field.
            let open = serde_json::to_vec(&VirtualRow {
                name: v.name.clone(),
                scheduler: v.scheduler.clone(),
                reals: Vec::new(),
            })
            .map(|mut b| {
                b.truncate(b.len().saturating_sub(2));
                if i > 0 {
                    b.insert(0, b',');
                }
                b
            });
            let reals = v.reals.iter().enumerate().map(|(j, r)| {
                let mut b = if j > 0 { vec![b','] } else { Vec::new() };
                serde_json::to_writer(&mut b, r).map(|()| b)
            });
            std::iter::once(open)
                .chain(reals)
                .chain(std::iter::once(Ok(b"]}".to_vec())))
        });
        let tail = std::iter::once_with(|| {
            serde_json::to_vec(&Tail {
                failover: &self.failover,
                impaired: &self.impaired,
            })
            .map(|mut b| {
                // `{"failover":...}` becomes `],"failover":...}`.
                b.splice(0..1, *b"],");
                b
            })
        });
        head.chain(virtuals).chain(tail)
    }

    /// The human table, then failover's lines.
    pub fn text(&self) -> String {
        let mut out = self
            .impaired
            .as_ref()
            .map_or_else(String::new, |i| format!("IMPAIRED: {i}\n\n"));
        out.push_str(&self.virtuals_text());
        if let Some(f) = &self.failover {
            out.push_str("\nfailover:\n");
            for l in f.text().lines() {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }

    fn virtuals_text(&self) -> String {
        if self.virtuals.is_empty() {
            return "no virtual services\n".to_owned();
        }
        let mut out = String::new();
        for v in &self.virtuals {
            out.push_str(&format!("{} ({})\n", v.name, v.scheduler));
            let mut rows = vec![[
                "real".to_owned(),
                "health".to_owned(),
                "weight".to_owned(),
                "active".to_owned(),
                "inactive".to_owned(),
                "conns".to_owned(),
                "last probe".to_owned(),
                "last failure".to_owned(),
            ]];
            for r in &v.reals {
                rows.push([
                    format!("{} {}", r.real, r.forward),
                    r.health.clone(),
                    format!("{}/{}", or_dash(r.weight), r.configured_weight),
                    or_dash(r.counters.map(|c| c.active)),
                    or_dash(r.counters.map(|c| c.inactive)),
                    or_dash(r.counters.map(|c| c.conns)),
                    r.last_probe_ago_s
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s ago")),
                    r.last_failure.clone().unwrap_or_else(|| "-".to_owned()),
                ]);
            }
            let mut widths = [0usize; 8];
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for row in &rows {
                let cells: Vec<String> = widths
                    .iter()
                    .zip(row)
                    .map(|(w, cell)| format!("{cell:<w$}"))
                    .collect();
                out.push_str("  ");
                out.push_str(cells.join("  ").trim_end());
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_says_what_is_missing() {
        let r = Report {
            virtuals: vec![VirtualRow {
                name: "tcp:192.0.2.10:80".into(),
                scheduler: "wrr".into(),
                reals: vec![
                    RealRow {
                        real: "10.0.0.5:80".into(),
                        forward: "gate".into(),
                        health: "up".into(),
                        configured_weight: 1,
                        weight: Some(1),
                        last_probe_ago_s: Some(0.42),
                        last_failure: None,
                        counters: None,
                    },
                    RealRow {
                        real: "10.0.0.16:80".into(),
                        forward: "gate".into(),
                        health: "down".into(),
                        configured_weight: 5,
                        weight: None,
                        last_probe_ago_s: Some(1.0),
                        last_failure: Some("GET /: 503".into()),
                        counters: None,
                    },
                ],
            }],
            failover: None,
            impaired: None,
        };
        assert_eq!(
            r.text(),
            "tcp:192.0.2.10:80 (wrr)\n  \
             real               health  weight  active  inactive  conns  last probe  last failure\n  \
             10.0.0.5:80 gate   up      1/1     -       -         -      0.4 s ago   -\n  \
             10.0.0.16:80 gate  down    -/5     -       -         -      1.0 s ago   GET /: 503\n"
        );
        assert_eq!(Report::default().text(), "no virtual services\n");
        let f = FailoverRow {
            node: "d1".into(),
            peer: "d2".into(),
            holds: "local".into(),
            peer_state: "alive".into(),
            peer_heard_s_ago: Some(0.25),
            peer_holds: "foreign".into(),
            ping_nodes_here: Some(2),
            ping_nodes_at_peer: None,
            why: "auto_failback".into(),
        };
        let with = Report {
            virtuals: Vec::new(),
            failover: Some(f),
            impaired: None,
        };
        assert_eq!(
            with.text(),
            "no virtual services\n\nfailover:\n  node: d1 (peer d2)\n  holds: local\n  \
             peer: alive, last heard 0.2 s ago\n  peer holds: foreign\n  ping nodes here: 2\n  \
             ping nodes at the peer: unknown\n  why: auto_failback\n"
        );
    }

    /// The pieces put together are the report's JSON, whatever it holds:
    /// no virtual, a virtual without reals, several of each, failover
    /// and impaired set or not.
    #[test]
    fn json_in_pieces_is_the_whole_json() {
        let real = |n: u8, failure: Option<&str>| RealRow {
            real: format!("10.0.0.{n}:80"),
            forward: "gate".into(),
            health: "down".into(),
            configured_weight: 2,
            weight: Some(0),
            last_probe_ago_s: Some(0.5),
            last_failure: failure.map(Into::into),
            counters: Some(crate::ipvs::table::Counters::default()),
        };
        let virt = |name: &str, reals: Vec<RealRow>| VirtualRow {
            name: name.into(),
            scheduler: "wrr".into(),
            reals,
        };
        let reports = [
            Report::default(),
            Report {
                virtuals: vec![virt("tcp:192.0.2.10:80", Vec::new())],
                failover: Some(FailoverRow::default()),
                impaired: Some("no descriptors \"left\"".into()),
            },
            Report {
                virtuals: vec![
                    virt(
                        "tcp:192.0.2.10:80",
                        vec![real(1, None), real(2, Some("x\ny"))],
                    ),
                    virt("fwm:7", Vec::new()),
                    virt("udp:[2001:db8::1]:53", vec![real(3, None)]),
                ],
                failover: None,
                impaired: None,
            },
        ];
        for r in reports {
            let pieces: Vec<u8> = r.json_chunks().flat_map(Result::unwrap).collect();
            assert_eq!(
                String::from_utf8(pieces).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }
}
