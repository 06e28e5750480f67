//! A real server started by its fixture script (`tests/servers/NAME up
//! DIR`, Debian's package, on 127.0.0.1) and stopped when dropped: shared
//! by checkers/tests/real_servers.rs (the checkers called directly) and
//! tests/services_from_config.rs (the lvsd binary on a config file), and
//! tests/alerts_mta.rs (exim).
#![allow(clippy::unwrap_used)] // test setup
#![allow(dead_code)] // each test file that includes it uses part of it

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One running server instance; stopped when dropped.
pub(crate) struct Server {
    script: PathBuf,
    dir: tempfile::TempDir,
    vars: HashMap<String, String>,
}

impl Server {
    pub(crate) fn up(name: &str) -> Server {
        // The fixtures are at the workspace's root (this file is shared by
        // the root crate's tests and checkers/tests).
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = if root.join("tests/servers").is_dir() {
            root
        } else {
            root.parent().unwrap()
        };
        let script = root.join("tests/servers").join(name);
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(&script)
            .arg("up")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<HashMap<_, _>>();
        eprintln!("{name}: {}", vars.get("VERSION").map_or("", String::as_str));
        Server { script, dir, vars }
    }

    pub(crate) fn var(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.vars))
    }

    pub(crate) fn port(&self, key: &str) -> u16 {
        self.var(key).parse().unwrap()
    }

    /// Signals the server: every process in DIR/pids when the fixture
    /// wrote one (a server whose workers must be stopped too), else DIR/pid.
    pub(crate) fn signal(&self, sig: &str) {
        let pids = std::fs::read_to_string(self.dir.path().join("pids"))
            .or_else(|_| std::fs::read_to_string(self.dir.path().join("pid")))
            .unwrap();
        let s = Command::new("kill")
            .arg(sig)
            .args(pids.split_whitespace())
            .status()
            .unwrap();
        assert!(s.success());
    }

    /// The instance's directory (config, logs, state).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `tests/servers/NAME CMD DIR` (down, restart...), which must succeed.
    pub(crate) fn run(&self, cmd: &str) {
        let out = Command::new(&self.script)
            .arg(cmd)
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {cmd}: {}",
            self.script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn down(&self) {
        let s = Command::new(&self.script)
            .arg("down")
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}
