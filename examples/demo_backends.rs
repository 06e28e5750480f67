//! Web servers for the quick start (`scripts/quickstart`): on 127.0.0.1,
//! each following a script of up/down switches.
//!
//! Usage: `demo_backends PORT=SCRIPT...`, where SCRIPT is `up` or `down`
//! followed by `,up@SECONDS` / `,down@SECONDS` switches, e.g.
//! `8083=down,up@4` (answers 503 for 4 s, then 200).
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
    for arg in std::env::args().skip(1) {
        let Some((port, steps)) = parse(&arg) else {
            eprintln!("demo_backends: cannot read `{arg}` (want PORT=up|down[,up@S|,down@S...])");
            std::process::exit(2);
        };
        let b = Backend::start(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
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
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
