//! Where a virtual IP written without prefix and interface goes
//! (haresources' `192.0.2.100` or `IPaddr2::192.0.2.100`): as IPaddr2's
//! findif, on the interface of the most specific directly connected route
//! (no gateway) that contains it, with that route's prefix. The routes
//! come from /proc/net/route and /proc/net/ipv6_route (the main table);
//! the parsing is pure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A directly connected route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The network.
    pub net: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The interface.
    pub dev: String,
}

const RTF_GATEWAY: u32 = 0x2;

/// The directly connected IPv4 routes of a /proc/net/route text.
pub fn parse_v4(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, dest, flags, mask) = (f.first()?, f.get(1)?, f.get(3)?, f.get(7)?);
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let (dest, flags, mask) = (hex(dest)?, hex(flags)?, hex(mask)?);
            // The kernel prints the network-order word as a native one.
            (flags & RTF_GATEWAY == 0).then(|| Route {
                net: IpAddr::V4(Ipv4Addr::from(dest.to_ne_bytes())),
                prefix: u8::try_from(mask.count_ones()).unwrap_or(0),
                dev: (*dev).to_owned(),
            })
        })
        .collect()
}

/// The directly connected IPv6 routes of a /proc/net/ipv6_route text.
pub fn parse_v6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, prefix, flags, dev) = (f.first()?, f.get(1)?, f.get(8)?, f.get(9)?);
            let dest = u128::from_str_radix(dest, 16).ok()?;
            let prefix = u8::from_str_radix(prefix, 16).ok()?;
            let flags = u32::from_str_radix(flags, 16).ok()?;
            (flags & RTF_GATEWAY == 0).then(|| Route {
                net: IpAddr::V6(Ipv6Addr::from(dest)),
                prefix,
                dev: (*dev).to_owned(),
            })
        })
        .collect()
}

/// This host's directly connected routes (empty where /proc says nothing).
pub fn read() -> Vec<Route> {
    let mut r = parse_v4(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
    r.extend(parse_v6(
        &std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default(),
    ));
    r
}

fn contains(r: &Route, addr: IpAddr) -> bool {
    match (r.net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) if r.prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(r.prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if r.prefix <= 128 => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(r.prefix))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The prefix and interface for `addr`: the most specific directly
/// connected route containing it (not a default route, not loopback).
pub fn find(routes: &[Route], addr: IpAddr) -> Option<(u8, String)> {
    routes
        .iter()
        .filter(|r| r.prefix > 0 && r.dev != "lo" && contains(r, addr))
        .max_by_key(|r| r.prefix)
        .map(|r| (r.prefix, r.dev.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth1\t800200C0\t00000000\t0001\t0\t0\t0\t80FFFFFF\t0\t0\t0
eth2\t0000A8C0\t0100000A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
";

    const V6: &str = "\
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003     eth0
";

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!("a test address"))
    }

    #[test]
    fn the_most_specific_connected_route_names_the_interface() {
        let mut routes = parse_v4(V4);
        routes.extend(parse_v6(V6));
        assert_eq!(routes.len(), 5, "gateway routes are left out: {routes:?}");
        assert_eq!(find(&routes, addr("10.0.2.100")), Some((24, "eth0".into())));
        assert_eq!(find(&routes, addr("192.0.2.10")), Some((24, "eth1".into())));
        assert_eq!(
            find(&routes, addr("192.0.2.200")),
            Some((25, "eth1".into()))
        );
        assert_eq!(
            find(&routes, addr("192.168.1.1")),
            None,
            "via a gateway only"
        );
        assert_eq!(
            find(&routes, addr("203.0.113.1")),
            None,
            "the default route does not count"
        );
        assert_eq!(
            find(&routes, addr("2001:db8::100")),
            Some((64, "eth0".into()))
        );
        assert_eq!(find(&routes, addr("2001:db9::100")), None);
    }

    #[test]
    fn garbage_lines_are_skipped() {
        assert!(parse_v4("header\nnonsense\neth0 zz 0 1 0 0 0 ff\n").is_empty());
        assert!(parse_v6("short line\n").is_empty());
    }
}
