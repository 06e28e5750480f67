//! A tiny HTTP server for demos and benchmarks: answers every request with
//! `200 Service Up` or, when switched down, `503 Service Down`, and counts
//! requests. Shared by `examples/demo_backends.rs` and the pipeline bench.
#![allow(dead_code)] // each user (demo, bench) reads different fields

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One listening backend.
pub(crate) struct Backend {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Answer 200 (true) or 503 (false).
    pub(crate) up: Arc<AtomicBool>,
    /// Requests answered so far.
    pub(crate) hits: Arc<AtomicU64>,
}

impl Backend {
    /// Binds `addr` (port 0 picks one) and serves until the runtime ends.
    pub(crate) async fn start(addr: SocketAddr) -> std::io::Result<Backend> {
        let l = TcpListener::bind(addr).await?;
        let addr = l.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let hits = Arc::new(AtomicU64::new(0));
        let (u, h) = (Arc::clone(&up), Arc::clone(&hits));
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(answer(s, u.load(Ordering::Relaxed), Arc::clone(&h)));
            }
        });
        Ok(Backend { addr, up, hits })
    }

    /// Switches the answer.
    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }
}

async fn answer(mut s: TcpStream, up: bool, hits: Arc<AtomicU64>) {
    let mut buf = [0u8; 2048];
    let mut got = 0;
    // Read the request head; a check's request fits in one buffer.
    while got < buf.len() {
        match s.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got += n,
        }
        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    hits.fetch_add(1, Ordering::Relaxed);
    let reply: &[u8] = if up {
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nService Up"
    } else {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nConnection: close\r\n\r\nService Down"
    };
    let _ = s.write_all(reply).await;
    let _ = s.shutdown().await;
}
