//! The check room through the `lvsd` binary: a stopped lvsd (SIGSTOP) does
//! not blame the reals whose answers it could not read meanwhile.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

#[path = "support/dry.rs"]
mod dry;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use dry::Dry;

/// A web server on every loopback address at one port whose `/health`
/// answers a redirect to `/health/` after 0.3 s, which answers
/// "Service Up" after 0.3 s: a probe takes two round trips, 0.6 s.
fn slow_redirecting_server() -> u16 {
    let l = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                std::thread::sleep(Duration::from_millis(300));
                let answer: &[u8] = if req.starts_with("GET /health/ ") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nService Up"
                } else {
                    b"HTTP/1.1 301 Moved\r\nLocation: /health/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = s.write_all(answer);
            });
        }
    });
    port
}

#[test]
fn a_stopped_lvsd_does_not_blame_the_reals_it_could_not_hear() {
    let port = slow_redirecting_server();
    let dir = tempfile::tempdir().unwrap();
    let reals: String = (1..=30)
        .map(|i| format!("\treal=127.0.0.{i}:{port} masq 1\n"))
        .collect();
    let cf = dir.path().join("lvsd.cf");
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nchecktimeout=2\nnegotiatetimeout=2\nfailurecount=1\nquiescent=no\nvirtual=127.0.0.1:80\n{reals}\tservice=http\n\tchecktype=negotiate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n\tprotocol=tcp\n"
        ),
    )
    .unwrap();
    let d = Dry::start(dir.path(), &cf);
    std::thread::sleep(Duration::from_secs(3));
    let ops = || std::fs::read_to_string(&d.ops).unwrap();
    assert_eq!(ops().matches("add-dest").count(), 30, "{}", ops());
    // Frozen while about 60 % of the probes are between their two round
    // trips: their deadlines pass while lvsd cannot read the answers.
    d.signal("-STOP");
    std::thread::sleep(Duration::from_secs(4));
    d.signal("-CONT");
    std::thread::sleep(Duration::from_secs(3));
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(!ops().contains("del-dest"), "{}\n{log}", ops());
    assert!(log.contains("did not run for"), "{log}");
    d.stop();
}
