//! Web servers for the quick start (`scripts/quickstart`): on 127.0.0.1,
//! each following a script of up/down switches.
//!
//! Usage: `demo_backends PORT=SCRIPT...`, where SCRIPT is `up` or `down`
//! followed by `,up@SECONDS` / `,down@SECONDS` switches, e.g.
//! `8083=down,up@4` (answers 503 for 4 s, then 200). Once every port
//! listens it prints `demo_backends: listening on ...` on stdout; a port it
//! cannot bind ends it with a one-line error naming the port and exit 1.
#![allow(missing_docs)]

#[path = "support/backend.rs"]
mod backend;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use backend::Backend;

fn parse(arg: &str) -> Option<(u16, Vec<(u64, bool)>)> {
    let (port, script) = arg.split_once('=')?;
    let mut steps = Vec::new();
    for (i, step) in script.split(',').enumerate() {
        let (state, at) = match step.split_once('@') {
            Some((s, t)) => (s, t.parse().ok()?),
            None if i == 0 => (step, 0),
            None => return None,
        };
        steps.push((at, state == "up"));
    }
    Some((port.parse().ok()?, steps))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut tasks = Vec::new();
    let mut ports = Vec::new();
    for arg in std::env::args().skip(1) {
        let Some((port, steps)) = parse(&arg) else {
            eprintln!("demo_backends: cannot read `{arg}` (want PORT=up|down[,up@S|,down@S...])");
            std::process::exit(2);
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let b = match Backend::start(addr).await {
            Ok(b) => b,
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::AddrInUse => "address in use".to_string(),
                    std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                    _ => e.to_string(),
                };
                eprintln!("demo_backends: cannot listen on {addr}: {why}");
                std::process::exit(1);
            }
        };
        ports.push(port.to_string());
        tasks.push(tokio::spawn(async move {
            let mut elapsed = 0;
            for (at, up) in steps {
                tokio::time::sleep(Duration::from_secs(at.saturating_sub(elapsed))).await;
                elapsed = elapsed.max(at);
                b.set_up(up);
                eprintln!(
                    "demo_backends: 127.0.0.1:{port} now answers {}",
                    if up { "200 Service Up" } else { "503" }
                );
            }
            std::future::pending::<()>().await;
        }));
    }
    // Printed once every port listens: `scripts/quickstart` waits for it.
    println!(
        "demo_backends: listening on 127.0.0.1 ports {}",
        ports.join(", ")
    );
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
