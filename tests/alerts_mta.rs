//! Alert mails through a real MTA: Debian's exim (tests/servers/smtp, on
//! 127.0.0.1, delivering to an mbox the test reads), and the real lvsd
//! binary in dry run checking real HTTP backends the test turns up and
//! down. ldirectord.cf's own directives throughout (emailalert,
//! emailalertfreq, emailalertstatus, per-virtual smtp, servicename), with
//! lvsd's URL form of `smtp` for STARTTLS and AUTH.
//!
//! One scenario, in order: three reals of one virtual fail at once (one
//! mail, every change); reminders at emailalertfreq list them again and
//! nothing else; the MTA stops for a minute while a real comes back and
//! another virtual's real fails (the check loop is not held up, and every
//! change arrives once the MTA is back); lvsd stops (the stop is mailed).
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[path = "support/backend.rs"]
mod support;
use support::switchable as backend;

#[path = "support/servers.rs"]
mod servers;
use servers::Server;

/// The exim instance (tests/servers/smtp); stopped when dropped.
struct Mta(Server);

impl Mta {
    fn up() -> Mta {
        Mta(Server::up("smtp"))
    }

    fn var(&self, k: &str) -> &str {
        self.0.var(k)
    }

    fn run(&self, cmd: &str) {
        self.0.run(cmd);
    }

    /// Every message delivered so far: (subject, body), headers unfolded
    /// and quoted-printable decoded.
    fn mails(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.var("MAILBOX")).unwrap_or_default();
        let mut out = Vec::new();
        for msg in text.split("\nFrom ").filter(|m| !m.trim().is_empty()) {
            let (head, body) = msg.split_once("\n\n").unwrap_or((msg, ""));
            let head = head.replace("\n ", " ").replace("\n\t", " ");
            let subject = head
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_owned();
            let body = if head.contains("quoted-printable") {
                unqp(body)
            } else {
                body.to_owned()
            };
            out.push((subject, body));
        }
        out
    }

    /// exim's main log (P=esmtps: STARTTLS; P=esmtpsa: STARTTLS and AUTH).
    fn mainlog(&self) -> String {
        std::fs::read_to_string(self.0.dir().join("log/mainlog")).unwrap_or_default()
    }
}

fn unqp(s: &str) -> String {
    let s = s.replace("=\n", "");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Lvsd {
    child: Child,
    ops: PathBuf,
    log: PathBuf,
}

impl Drop for Lvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `f`; on timeout the failure shows lvsd's log and exim's.
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() >= limit {
            let logs = CONTEXT.with(|c| {
                c.borrow()
                    .iter()
                    .map(|p| {
                        format!(
                            "--- {}:\n{}",
                            p.display(),
                            std::fs::read_to_string(p).unwrap_or_default()
                        )
                    })
                    .collect::<String>()
            });
            panic!("waited {limit:?} for {what}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

thread_local! {
    /// Logs shown when a wait fails.
    static CONTEXT: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn count(path: &Path, what: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(what)
        .count()
}

#[test]
fn alert_mails_through_a_real_mta() {
    let mta = Mta::up();
    let cert = mta.var("CA").to_owned();
    let web: Vec<(u16, Arc<AtomicBool>)> = (0..3).map(|_| backend()).collect();
    let (api_port, api_up) = backend();
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("ldirectord.cf");
    let reals: String = web
        .iter()
        .map(|(p, _)| format!("\treal=127.0.0.1:{p} gate\n"))
        .collect();
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nquiescent=yes\nemailalert=\"lvsd@localhost\"\nemailalertfreq=4\n\
             emailalertstatus=running,stopping,reloading\nemailalertcoalesce=3\n\
             smtp=\"smtp://127.0.0.1:{smtp}?ca={cert}\"\n\
             virtual=192.0.2.10:80\n{reals}\trequest=\"/health\"\n\treceive=\"Service Up\"\n\tservicename=\"web\"\n\
             virtual=192.0.2.20:80\n\treal=127.0.0.1:{api_port} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n\
             \temailalertfreq=0\n\tsmtp=\"smtp://lvsd:s3cret@127.0.0.1:{sub}?tls=required&ca={cert}\"\n",
            smtp = mta.var("SMTP_PORT"),
            sub = mta.var("SUBMISSION_PORT"),
        ),
    )
    .unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .arg("check")
        .arg(&cf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let (ops, log) = (dir.path().join("ops.jsonl"), dir.path().join("lvsd.log"));
    let mut lvsd = Lvsd {
        child: Command::new(env!("CARGO_BIN_EXE_lvsd"))
            .args(["run", "--dry-run", "--ops-log"])
            .arg(&ops)
            .arg("--control")
            .arg(dir.path().join("control.sock"))
            .arg(&cf)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        ops: ops.clone(),
        log: log.clone(),
    };
    CONTEXT.with(|c| {
        c.borrow_mut().extend([
            log.clone(),
            mta.0.dir().join("log/mainlog"),
            mta.0.dir().join("log/rejectlog"),
        ])
    });
    wait_until("every real in", Duration::from_secs(10), || {
        count(&lvsd.ops, "add-dest") == 4
    });
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        mta.mails().is_empty(),
        "emailalertstatus has no `starting`: the start is not mailed: {:?}",
        mta.mails()
    );

    // 1. Three reals of `web` fail together: one mail with every change.
    for (_, up) in &web {
        up.store(false, Ordering::SeqCst);
    }
    wait_until("the first mail", Duration::from_secs(15), || {
        !mta.mails().is_empty()
    });
    let mails = mta.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let (subject, body) = &mails[0];
    assert!(
        subject.contains("] [web] 4 changes: 3 down, 1 fallback"),
        "{subject}"
    );
    for (p, _) in &web {
        assert!(
            body.contains(&format!(
                "real 127.0.0.1:{p} of tcp:192.0.2.10:80 is down: "
            )),
            "{body}"
        );
    }
    assert!(
        body.contains("tcp:192.0.2.10:80 has no real up and no fallback server"),
        "{body}"
    );
    assert!(body.contains("Daemon-Status: running"), "{body}");
    assert!(
        mta.mainlog().contains("P=esmtps "),
        "STARTTLS used: {}",
        mta.mainlog()
    );

    // 2. Reminders every 4 s list the three again, and only them.
    wait_until("a reminder", Duration::from_secs(15), || {
        mta.mails().len() >= 2
    });
    let (subject, body) = &mta.mails()[1];
    assert!(subject.contains("3 changes: 3 still down"), "{subject}");
    assert_eq!(body.matches("is still down (since ").count(), 3, "{body}");
    assert!(!body.contains(" is down: "), "no repeated change: {body}");

    // 3. The MTA stops for a minute. Meanwhile a web real comes back and
    // the api real fails: the checks go on (its weight is back within
    // seconds), and every change is delivered once the MTA returns.
    mta.run("down");
    let stopped = Instant::now();
    let restored_before = count(&lvsd.ops, "\"weight\":1");
    web[0].1.store(true, Ordering::SeqCst);
    api_up.store(false, Ordering::SeqCst);
    wait_until(
        "the check loop to restore a real while mail fails",
        Duration::from_secs(5),
        || count(&lvsd.ops, "\"weight\":1") > restored_before,
    );
    let back_after = stopped.elapsed();
    std::thread::sleep(Duration::from_secs(60).saturating_sub(stopped.elapsed()));
    let before_restart = mta.mails().len();
    mta.run("restart");
    let w0 = format!("real 127.0.0.1:{} of tcp:192.0.2.10:80 is up", web[0].0);
    let api_down = format!("real 127.0.0.1:{api_port} of tcp:192.0.2.20:80 is down: ");
    wait_until(
        "the changes made during the outage",
        Duration::from_secs(60),
        || {
            let all: String = mta
                .mails()
                .iter()
                .map(|(s, b)| format!("{s}\n{b}"))
                .collect();
            all.contains(&w0) && all.contains(&api_down)
        },
    );
    let mails = mta.mails();
    let all: String = mails.iter().map(|(s, b)| format!("{s}\n{b}")).collect();
    assert!(
        all.contains("tcp:192.0.2.10:80 has a real up again"),
        "{all}"
    );
    assert_eq!(all.matches(&w0).count(), 1, "told once: {all}");
    assert_eq!(all.matches(&api_down).count(), 1, "told once: {all}");
    assert!(
        mta.mainlog().contains("P=esmtpsa "),
        "the api virtual's own smtp, with STARTTLS and AUTH: {}",
        mta.mainlog()
    );
    let lvsd_log = std::fs::read_to_string(&lvsd.log).unwrap();
    assert!(
        lvsd_log.contains("not sent (attempt 1)"),
        "the outage is logged: {lvsd_log}"
    );
    eprintln!(
        "real restored {back_after:?} after the MTA stopped; {before_restart} mails before the restart, {} after",
        mails.len()
    );

    // 4. A typo on reload: refused, the running configuration stays, and
    // one mail says where the error is.
    let good = std::fs::read_to_string(&cf).unwrap();
    std::fs::write(&cf, format!("{good}\tscheduler=wrrr\n")).unwrap();
    let typo_line = good.lines().count() + 1;
    let reload = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(["reload", "--control"])
        .arg(dir.path().join("control.sock"))
        .output()
        .unwrap();
    assert_eq!(reload.status.code(), Some(1));
    let at = format!("{}:{typo_line}:", cf.display());
    wait_until("the refused-reload mail", Duration::from_secs(15), || {
        mta.mails()
            .iter()
            .any(|(_, b)| b.contains("reload refused"))
    });
    std::thread::sleep(Duration::from_secs(2));
    let refused: Vec<(String, String)> = mta
        .mails()
        .into_iter()
        .filter(|(_, b)| b.contains("reload refused"))
        .collect();
    assert_eq!(refused.len(), 1, "one mail for one address: {refused:#?}");
    assert!(
        refused[0].1.contains(&at) && refused[0].1.contains("wrrr"),
        "{refused:#?}"
    );
    std::fs::write(&cf, good).unwrap();

    // 5. Stop: the stop is mailed before lvsd exits.
    let pid = lvsd.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(lvsd.child.wait().unwrap().success());
    wait_until("the stop mail", Duration::from_secs(10), || {
        mta.mails().iter().any(|(_, b)| {
            b.contains("lvsd stopped and removed (cleanstop): tcp:192.0.2.10:80, tcp:192.0.2.20:80")
        })
    });
}
