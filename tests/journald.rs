//! Under systemd lvsd logs to the journal. Tested against the real
//! systemd-journald (Debian's), started in a private mount namespace with
//! its own /run (so the host's journal, if any, is never touched), and
//! read back with journalctl: lvsd's lines arrive as journal entries with
//! their priority and identifier, and nothing goes to stderr.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::process::Command;

#[path = "support/backend.rs"]
mod support;
use support::backend;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

#[test]
fn under_systemd_lines_go_to_the_journal() {
    assert!(
        std::path::Path::new(JOURNALD).exists(),
        "{JOURNALD} missing (Debian's systemd package)"
    );
    let dir = tempfile::tempdir().unwrap();
    let real = backend();
    let cf = dir.path().join("ldirectord.cf");
    // A real that answers, and one that refuses (a warning).
    std::fs::write(
        &cf,
        format!(
            "checkinterval=1\nvirtual=192.0.2.10:80\n\treal={real} gate\n\treal=127.0.0.1:1 gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n"
        ),
    )
    .unwrap();
    let script = format!(
        r#"set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
{JOURNALD} >{d}/journald.out 2>&1 &
J=$!
i=0; while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
JOURNAL_STREAM=8:1234 {lvsd} run --dry-run --control {d}/control.sock {cf} 2>{d}/stderr &
L=$!
sleep 3
kill -INT $L; wait $L
sleep 0.3
journalctl -D /run/log/journal -o json --no-pager SYSLOG_IDENTIFIER=lvsd >{d}/journal.json
kill $J; wait $J || true
"#,
        d = dir.path().display(),
        lvsd = env!("CARGO_BIN_EXE_lvsd"),
        cf = cf.display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("journal.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |what: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"].as_str().is_some_and(|m| m.contains(what)))
            .unwrap_or_else(|| panic!("no `{what}` in the journal: {entries:#?}"))
    };
    let up = find(&format!(
        "real {real} of tcp:192.0.2.10:80 up after 1 success"
    ));
    assert_eq!(up["PRIORITY"], "6", "info");
    let down = find("real 127.0.0.1:1 of tcp:192.0.2.10:80 is down at start");
    assert_eq!(down["PRIORITY"], "4", "warning");
    assert_eq!(down["_TRANSPORT"], "journal");
    find("stopped");
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        stderr.is_empty(),
        "under the journal, nothing on stderr: {stderr}"
    );
}
