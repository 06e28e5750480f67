//! The ping checker against the loopback interface (IPv4 and IPv6).
//! Needs root, CAP_NET_RAW or a ping_group_range that includes the user.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use checkers::{Checker, IcmpSockets, Ping, run_probe};

#[tokio::test]
async fn loopback_answers_on_both_families() {
    let sockets = IcmpSockets::new();
    for addr in ["127.0.0.1", "::1"] {
        let addr: IpAddr = addr.parse().unwrap();
        let c: Arc<dyn Checker> = Arc::new(Ping::new(
            Arc::clone(&sockets),
            addr,
            1,
            Duration::from_secs(1),
        ));
        assert_eq!(c.subject(), format!("ping {addr}"));
        run_probe(c, Duration::from_secs(2)).await.unwrap();
    }
}
