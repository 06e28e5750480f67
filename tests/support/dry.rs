//! A dry-run lvsd as an operator runs it (the real binary, its ops log,
//! its control socket), for the tests of `lvsd run` and `lvsd reload`.
#![allow(dead_code)] // each test file uses a part

use std::process::Command;
use std::time::{Duration, Instant};

/// The lvsd binary under test.
pub(crate) fn lvsd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lvsd"))
}

/// A child killed when the test ends, even by a failed assertion.
pub(crate) struct Kill(pub(crate) std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 10 s) until `path` contains `what`.
pub(crate) fn wait_for(path: &std::path::Path, what: &str) {
    let start = Instant::now();
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(what)
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no `{what}` in {}:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A dry-run lvsd on `cf` (in `dir`: ops.jsonl, control.sock, lvsd.log),
/// once its first real is in.
pub(crate) struct Dry {
    pub(crate) child: Kill,
    pub(crate) ops: std::path::PathBuf,
    pub(crate) sock: std::path::PathBuf,
    pub(crate) log: std::path::PathBuf,
}

impl Dry {
    pub(crate) fn start(dir: &std::path::Path, cf: &std::path::Path) -> Dry {
        Dry::start_with(dir, &[cf])
    }

    /// As `start`, on several config files (lvsd.toml and conf.d).
    pub(crate) fn start_with(dir: &std::path::Path, files: &[&std::path::Path]) -> Dry {
        let d = Dry::spawn(dir, files);
        wait_for(&d.ops, "add-dest");
        d
    }

    /// As `start_with`, without waiting for anything.
    pub(crate) fn spawn(dir: &std::path::Path, files: &[&std::path::Path]) -> Dry {
        let (ops, sock, log) = (
            dir.join("ops.jsonl"),
            dir.join("control.sock"),
            dir.join("lvsd.log"),
        );
        let child = Kill(
            lvsd()
                .args(["run", "--dry-run", "--ops-log"])
                .arg(&ops)
                .arg("--control")
                .arg(&sock)
                .args(files)
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        Dry {
            child,
            ops,
            sock,
            log,
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let pid = self.child.0.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// `lvsd ARGS --control <its socket>`: exit code, stdout then stderr.
    pub(crate) fn ctl(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = lvsd()
            .args(args)
            .arg("--control")
            .arg(&self.sock)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// SIGINT, and it must exit 0.
    pub(crate) fn stop(self) {
        self.signal("-INT");
        self.stop_wait();
    }

    /// Waits for the exit (after a signal), which must be 0.
    pub(crate) fn stop_wait(mut self) {
        assert!(self.child.0.wait().unwrap().success());
    }
}

/// A virtual on port 80 of `vip` with `real`, checked over HTTP.
pub(crate) fn virtual_block(real: &str, vip: &str) -> String {
    format!(
        "virtual={vip}:80\n\treal={real} gate\n\trequest=\"/health\"\n\treceive=\"Service Up\"\n"
    )
}
