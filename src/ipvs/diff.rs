//! Pure: the ops that turn the kernel's table into the desired one.
//!
//! Invariants:
//! - only services lvsd owns are touched: a service the desired table
//!   does not name is deleted only if `owned` says it is lvsd's;
//! - a destination whose weight, forwarding or thresholds differ is edited
//!   in place, never deleted and re-added (connections stay);
//! - the order keeps capacity up: new and edited services first, then
//!   destinations that gain weight (so a fallback is in place before the
//!   last real leaves, and a returning real before the fallback goes),
//!   then destinations that lose weight, then deletions of destinations,
//!   then deletions of services.

use std::fmt;

use super::table::{Destination, Service, ServiceKey, Table};

/// One change to the kernel's IPVS table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `ipvsadm -A`.
    AddService(Service),
    /// `ipvsadm -E`.
    EditService(Service),
    /// `ipvsadm -D` (the kernel drops its destinations with it).
    DelService(ServiceKey),
    /// `ipvsadm -a`.
    AddDest(ServiceKey, Destination),
    /// `ipvsadm -e`.
    EditDest(ServiceKey, Destination),
    /// `ipvsadm -d`.
    DelDest(ServiceKey, Destination),
}

impl Op {
    /// The ops-log name: `add-service`, `edit-dest`...
    pub fn kind(&self) -> &'static str {
        match self {
            Op::AddService(_) => "add-service",
            Op::EditService(_) => "edit-service",
            Op::DelService(_) => "del-service",
            Op::AddDest(..) => "add-dest",
            Op::EditDest(..) => "edit-dest",
            Op::DelDest(..) => "del-dest",
        }
    }

    /// The service the op is about.
    pub fn service(&self) -> &ServiceKey {
        match self {
            Op::AddService(s) | Op::EditService(s) => &s.key,
            Op::DelService(k) | Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _) => k,
        }
    }

    /// The destination the op is about, if any.
    pub fn dest(&self) -> Option<&Destination> {
        match self {
            Op::AddDest(_, d) | Op::EditDest(_, d) | Op::DelDest(_, d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    /// The equivalent `ipvsadm` command.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(s) => write!(f, "ipvsadm -A {}", s.args()),
            Op::EditService(s) => write!(f, "ipvsadm -E {}", s.args()),
            Op::DelService(k) => write!(f, "ipvsadm -D {k}"),
            Op::AddDest(k, d) => write!(f, "ipvsadm -a {k} {}", d.args()),
            Op::EditDest(k, d) => write!(f, "ipvsadm -e {k} {}", d.args()),
            Op::DelDest(k, d) => write!(f, "ipvsadm -d {k} -r {}", d.endpoint()),
        }
    }
}

/// The ops that make `actual` equal `desired` on the services lvsd owns.
pub fn diff(desired: &Table, actual: &Table, owned: impl Fn(&ServiceKey) -> bool) -> Vec<Op> {
    let mut services = Vec::new();
    let mut gain = Vec::new();
    let mut lose = Vec::new();
    let mut gone = Vec::new();
    for (want, dests) in &desired.services {
        let have = actual.service(&want.key);
        match have {
            None => services.push(Op::AddService(want.clone())),
            Some((s, _)) if s != want => services.push(Op::EditService(want.clone())),
            Some(_) => {}
        }
        let have_dests: &[Destination] = have.map_or(&[], |(_, d)| d);
        for d in dests {
            match have_dests.iter().find(|h| h.same(d)) {
                None => gain.push(Op::AddDest(want.key, d.clone())),
                Some(h) if h == d => {}
                Some(h) if d.weight >= h.weight => gain.push(Op::EditDest(want.key, d.clone())),
                Some(_) => lose.push(Op::EditDest(want.key, d.clone())),
            }
        }
        for h in have_dests {
            if !dests.iter().any(|d| d.same(h)) {
                gone.push(Op::DelDest(want.key, h.clone()));
            }
        }
    }
    for (s, _) in &actual.services {
        if owned(&s.key) && desired.service(&s.key).is_none() {
            gone.push(Op::DelService(s.key));
        }
    }
    services.extend(gain);
    services.extend(lose);
    services.extend(gone);
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use crate::ipvs::table::FwdMethod;

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port,
        }
    }

    fn svc(port: u16) -> Service {
        Service {
            key: key(port),
            scheduler: "wrr".into(),
            persistence: None,
            netmask: None,
            one_packet: false,
            sched_flags: None,
        }
    }

    fn dest(last: u8, weight: u32) -> Destination {
        Destination {
            addr: format!("10.0.0.{last}").parse().unwrap(),
            port: 80,
            fwd: FwdMethod::Route,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    fn table(services: Vec<(Service, Vec<Destination>)>) -> Table {
        Table { services }
    }

    fn cmds(ops: &[Op]) -> Vec<String> {
        ops.iter().map(Op::to_string).collect()
    }

    #[test]
    fn empty_kernel_gets_everything_services_first() {
        let want = table(vec![(svc(80), vec![dest(1, 1), dest(2, 3)])]);
        let ops = diff(&want, &Table::default(), |_| true);
        assert_eq!(
            cmds(&ops),
            [
                "ipvsadm -A -t 192.0.2.10:80 -s wrr",
                "ipvsadm -a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 1",
                "ipvsadm -a -t 192.0.2.10:80 -r 10.0.0.2:80 -g -w 3",
            ]
        );
        let mut t = Table::default();
        for op in &ops {
            t.apply(op).unwrap();
        }
        assert_eq!(t, want);
        assert!(diff(&want, &t, |_| true).is_empty());
    }

    #[test]
    fn weight_change_is_an_edit_and_gains_come_before_losses() {
        let have = table(vec![(svc(80), vec![dest(1, 1), dest(2, 1), dest(3, 1)])]);
        let want = table(vec![(svc(80), vec![dest(1, 0), dest(2, 1), dest(4, 1)])]);
        assert_eq!(
            cmds(&diff(&want, &have, |_| true)),
            [
                "ipvsadm -a -t 192.0.2.10:80 -r 10.0.0.4:80 -g -w 1",
                "ipvsadm -e -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 0",
                "ipvsadm -d -t 192.0.2.10:80 -r 10.0.0.3:80",
            ]
        );
    }

    #[test]
    fn services_not_owned_are_never_touched() {
        let have = table(vec![
            (svc(80), vec![dest(1, 1)]),
            (svc(81), vec![dest(1, 1)]),
            (svc(82), vec![]),
        ]);
        let want = table(vec![]);
        let ops = diff(&want, &have, |k| *k == key(81));
        assert_eq!(cmds(&ops), ["ipvsadm -D -t 192.0.2.10:81"]);
    }

    #[test]
    fn scheduler_change_is_an_edit_of_the_service() {
        let have = table(vec![(svc(80), vec![dest(1, 1)])]);
        let mut s = svc(80);
        s.scheduler = "lc".into();
        s.persistence = Some(300);
        let want = table(vec![(s, vec![dest(1, 1)])]);
        assert_eq!(
            cmds(&diff(&want, &have, |_| true)),
            ["ipvsadm -E -t 192.0.2.10:80 -s lc -p 300"]
        );
    }

    #[test]
    fn scheduler_flags_have_one_spelling() {
        use crate::ipvs::table::{canonical_sched_flags, sched_flag_bits};
        let bits = sched_flag_bits(Some("sh-port,flag-1"));
        assert_eq!(
            canonical_sched_flags("sh", bits).as_deref(),
            Some("sh-fallback,sh-port")
        );
        assert_eq!(
            canonical_sched_flags("mh", bits).as_deref(),
            Some("mh-fallback,mh-port")
        );
        assert_eq!(
            canonical_sched_flags("wrr", bits).as_deref(),
            Some("flag-1,flag-2")
        );
        assert_eq!(canonical_sched_flags("sh", 0), None);
    }

    #[test]
    fn the_kernel_refuses_like_the_kernel() {
        let mut t = Table::default();
        assert_eq!(
            t.apply(&Op::AddDest(key(80), dest(1, 1))),
            Err("no such service")
        );
        t.apply(&Op::AddService(svc(80))).unwrap();
        assert_eq!(
            t.apply(&Op::AddService(svc(80))),
            Err("service already exists")
        );
        t.apply(&Op::AddDest(key(80), dest(1, 1))).unwrap();
        assert_eq!(
            t.apply(&Op::AddDest(key(80), dest(1, 5))),
            Err("destination already exists")
        );
        assert_eq!(
            t.apply(&Op::DelDest(key(80), dest(2, 1))),
            Err("no such destination")
        );
    }
}
