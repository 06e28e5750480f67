//! A blocking HTTP backend on 127.0.0.1 for tests that run the `lvsd`
//! binary: it answers "Service Up" while its flag is set, "Service Down"
//! otherwise, on its own thread, for as long as the test runs.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A backend that is always up: its `127.0.0.1:PORT`.
pub(crate) fn backend() -> String {
    format!("127.0.0.1:{}", switchable().0)
}

/// A backend and the flag that says whether it is up (initially up).
pub(crate) fn switchable() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().expect("local address").port();
    let up = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&up);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = if flag.load(Ordering::SeqCst) {
                "Service Up"
            } else {
                "Service Down"
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    (port, up)
}

/// A loopback port free now (for a listener lvsd opens, such as metrics=).
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}
