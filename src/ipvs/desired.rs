//! Pure: the IPVS table the config and the reals' health call for.
//!
//! Per virtual, as ldirectord's `_remove_service` / `_restore_service` /
//! `fallback_on`:
//!
//! | real is                       | quiescent=yes            | quiescent=no |
//! |-------------------------------|--------------------------|--------------|
//! | up (or checktype=on)          | configured weight        | same         |
//! | down, in maintenance, or checktype=off | weight 0 (see below) | absent |
//!
//! - A down quiescent real that is absent from the kernel is re-added at
//!   weight 0 only when `readdquiescent=yes`, or at start-up (ldirectord's
//!   `ld_start` adds every real): with `readdquiescent=no` an operator can
//!   remove it by hand and lvsd leaves it out.
//! - A real in maintenance (a file in `maintenancedir`) is taken out like
//!   a failed one, whatever its check says.
//! - The fallback server is in the table, at weight 1, exactly when no real
//!   of the virtual is up, except with checktype=off (nothing is ever
//!   activated). It is never quiesced. If it is also one of the reals, the
//!   fallback's weight wins while it is engaged.
//! - Thresholds and forwarding are passed through from the config.

use core::net::IpAddr;
use std::collections::HashSet;

use super::table::{Destination, Service, Table};
use crate::config::{CheckType, Config, VirtualService};
use crate::health::state::Health;

/// Reals forced out by files in `maintenancedir`: an address alone
/// (`10.0.0.5`, every port) or an address and port (`10.0.0.5:80`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance(pub HashSet<(IpAddr, Option<u16>)>);

impl Maintenance {
    /// Whether the real at `addr:port` is in maintenance.
    pub fn covers(&self, addr: IpAddr, port: u16) -> bool {
        self.0.contains(&(addr, None)) || self.0.contains(&(addr, Some(port)))
    }
}

/// What the table needs to know about one real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealStatus {
    /// The check's verdict.
    pub health: Health,
    /// In maintenance (forced out).
    pub maintenance: bool,
}

/// Whether each real of a virtual serves: `checktype=on`/`off` and
/// maintenance applied on top of the check's health.
pub fn serves(vs: &VirtualService, status: RealStatus) -> bool {
    !status.maintenance
        && match vs.check.checktype {
            CheckType::On => true,
            CheckType::Off => false,
            _ => status.health == Health::Up,
        }
}

/// The desired table. `status(v, r)` gives the state of real `r` of virtual
/// `v` (indexes into `cfg.virtuals` and its `reals`); `actual` is what the
/// kernel holds; `starting` is true for the first reconcile after start.
pub fn desired(
    cfg: &Config,
    status: impl Fn(usize, usize) -> RealStatus,
    actual: &Table,
    starting: bool,
) -> Table {
    let services = cfg
        .virtuals
        .iter()
        .enumerate()
        .map(|(vi, vs)| {
            let svc = Service::of(vs);
            let have = actual
                .service(&svc.key)
                .map(|(_, d)| d.as_slice())
                .unwrap_or(&[]);
            let mut dests: Vec<Destination> = Vec::with_capacity(vs.reals.len() + 1);
            let mut any_up = false;
            for (ri, r) in vs.reals.iter().enumerate() {
                let d = Destination::of(vs, r);
                if dests.iter().any(|x| x.same(&d)) {
                    continue; // a duplicate real (warned about by the config reader)
                }
                if serves(vs, status(vi, ri)) {
                    any_up = true;
                    dests.push(d);
                } else if let Some(d) =
                    out_of_service(vs, d, have, cfg.global.readdquiescent || starting)
                {
                    dests.push(d);
                }
            }
            if let Some(fb) = vs
                .fallback
                .as_ref()
                .filter(|_| !any_up && vs.check.checktype != CheckType::Off)
            {
                let d = Destination {
                    addr: fb.address,
                    port: if fb.port == 0 { vs.key.port() } else { fb.port },
                    fwd: fb.forward.into(),
                    weight: 1,
                    upper_threshold: 0,
                    lower_threshold: 0,
                };
                dests.retain(|x| !x.same(&d));
                dests.push(d);
            }
            (svc, dests)
        })
        .collect();
    Table { services }
}

/// A real that does not serve: weight 0 if quiescent (and present or
/// re-addable), otherwise absent.
fn out_of_service(
    vs: &VirtualService,
    mut d: Destination,
    have: &[Destination],
    readd: bool,
) -> Option<Destination> {
    if !vs.quiescent || !(readd || have.iter().any(|h| h.same(&d))) {
        return None;
    }
    d.weight = 0;
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, Names, parse_str};

    fn cfg(text: &str) -> Config {
        let l = parse_str(Format::Ldirectord, "t.cf", text, &Names::offline());
        l.config.unwrap_or_else(|| panic!("{:?}", l.diagnostics))
    }

    const CF: &str = "virtual=192.0.2.10:80\n\treal=10.0.0.1:80 gate 2\n\treal=10.0.0.2:80 masq 1 u:100\n\tfallback=127.0.0.1:80\n\tquiescent=QQ\n\tchecktype=CT\n";

    fn conf(quiescent: &str, checktype: &str) -> Config {
        cfg(&CF.replace("QQ", quiescent).replace("CT", checktype))
    }

    fn st(up: &[bool], maint: &[bool]) -> impl Fn(usize, usize) -> RealStatus {
        let up = up.to_vec();
        let maint = maint.to_vec();
        move |_, r| RealStatus {
            health: if up[r] { Health::Up } else { Health::Down },
            maintenance: maint[r],
        }
    }

    fn render(t: &Table) -> String {
        t.to_string()
    }

    /// The desired table from an empty kernel.
    fn want(c: &Config, up: &[bool], maint: &[bool], starting: bool) -> Table {
        desired(c, st(up, maint), &Table::default(), starting)
    }

    #[test]
    fn quiescent_down_real_gets_weight_0_and_fallback_waits() {
        let c = conf("yes", "negotiate");
        let t = want(&c, &[true, false], &[false, false], true);
        assert_eq!(
            render(&t),
            "-A -t 192.0.2.10:80 -s wrr\n-a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 2\n-a -t 192.0.2.10:80 -r 10.0.0.2:80 -m -w 0 -x 100\n"
        );
    }

    #[test]
    fn not_quiescent_down_real_is_absent_and_fallback_engages_when_none_is_up() {
        let c = conf("no", "negotiate");
        let t = want(&c, &[false, false], &[false, false], false);
        assert_eq!(
            render(&t),
            "-A -t 192.0.2.10:80 -s wrr\n-a -t 192.0.2.10:80 -r 127.0.0.1:80 -g -w 1\n"
        );
    }

    #[test]
    fn readdquiescent_no_leaves_a_hand_removed_real_out_after_start() {
        let c = cfg(&format!(
            "readdquiescent=no\n{}",
            CF.replace("QQ", "yes").replace("CT", "connect")
        ));
        let t = want(&c, &[true, false], &[false, false], false);
        assert_eq!(t.services[0].1.len(), 1);
        let t = want(&c, &[true, false], &[false, false], true);
        assert_eq!(t.services[0].1.len(), 2);
        let c = cfg(&format!(
            "readdquiescent=yes\n{}",
            CF.replace("QQ", "yes").replace("CT", "connect")
        ));
        let t = want(&c, &[true, false], &[false, false], false);
        assert_eq!(t.services[0].1.len(), 2);
    }

    #[test]
    fn maintenance_takes_an_up_real_out() {
        let c = conf("no", "negotiate");
        let t = want(&c, &[true, true], &[false, true], false);
        assert_eq!(
            render(&t),
            "-A -t 192.0.2.10:80 -s wrr\n-a -t 192.0.2.10:80 -r 10.0.0.1:80 -g -w 2\n"
        );
    }

    #[test]
    fn checktype_on_and_off() {
        let c = conf("no", "on");
        let t = want(&c, &[false, false], &[false, false], false);
        assert_eq!(t.services[0].1.len(), 2);
        let c = conf("no", "off");
        let t = want(&c, &[true, true], &[false, false], false);
        assert_eq!(render(&t), "-A -t 192.0.2.10:80 -s wrr\n");
    }
}
