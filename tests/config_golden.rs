//! Golden tests of the config readers: every shipped example parses (and
//! its ldirectord and TOML forms mean the same), every broken input gives
//! exactly its expected diagnostics, and Debian's own sample files read as
//! ldirectord and heartbeat read them.
//!
//! `LVSD_BLESS=1 cargo test --test config_golden` rewrites the `.expected`
//! files; review the diff before committing it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lvsd::config::{self, Config, Format, Names, Severity, native};

#[path = "support/skip.rs"]
mod skip;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn render(diags: &[config::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string().lines().next().unwrap_or_default().to_string() + "\n")
        .collect()
}

/// Loads one file and insists it is valid and warning-free.
fn load_clean(paths: &[PathBuf]) -> Config {
    let l = config::load(paths, &Names::offline());
    assert!(
        l.diagnostics.is_empty(),
        "{:?} should load without diagnostics:\n{}",
        paths,
        render(&l.diagnostics)
    );
    l.config.expect("valid")
}

/// The failover example with authkeys at 0600, in a temporary copy (git
/// cannot store the mode).
fn failover_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for f in ["ha.cf", "haresources", "authkeys", "lvsd.toml"] {
        fs::copy(root().join("conf.d/failover").join(f), tmp.path().join(f)).expect("copy");
    }
    fs::set_permissions(
        tmp.path().join("authkeys"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    tmp
}

#[test]
fn every_example_is_valid() {
    let dir = root().join("conf.d");
    let mut n = 0;
    for f in files(&dir, "cf").into_iter().chain(files(&dir, "toml")) {
        let c = load_clean(std::slice::from_ref(&f));
        assert!(
            !c.virtuals.is_empty(),
            "{}: no virtual services",
            f.display()
        );
        n += 1;
    }
    assert!(n >= 15, "only {n} examples");
    // The TOML examples also work together, as one conf.d.
    let all = load_clean(&[dir]);
    assert!(all.virtuals.len() >= 8, "{}", all.virtuals.len());
}

#[test]
fn ldirectord_and_toml_examples_mean_the_same() {
    let dir = root().join("conf.d");
    let mut pairs = 0;
    for cf in files(&dir, "cf") {
        let toml = cf.with_extension("toml");
        if !toml.exists() {
            continue;
        }
        let a = load_clean(std::slice::from_ref(&cf));
        let b = load_clean(&[toml]);
        assert_eq!(a, b, "{} and its .toml differ", cf.display());
        pairs += 1;
    }
    assert!(pairs >= 7, "only {pairs} pairs");
}

#[test]
fn failover_example_in_both_forms() {
    let tmp = failover_dir();
    let a = load_clean(&[tmp.path().join("ha.cf")]);
    let b = load_clean(&[tmp.path().join("lvsd.toml")]);
    let (fa, fb) = (
        a.failover.expect("ha.cf failover"),
        b.failover.expect("toml failover"),
    );
    assert_eq!(fa, fb);
    assert_eq!(fa.ha.keepalive_ms, 500);
    assert_eq!(fa.ha.nodes, ["lb1", "lb2"]);
    assert_eq!(fa.resources[0].node, "lb1");
    assert_eq!(fa.resources[0].resources.len(), 3);
}

/// lvsd.toml's `[failover]` keys are read in file order, as ha.cf's
/// lines: `udpport` written before `ucast` applies to it (the TOML table
/// hands its keys over sorted, which once put `udpport` after `ucast`).
#[test]
fn failover_udpport_in_toml_applies_to_the_media_after_it() {
    let tmp = failover_dir();
    let toml = tmp.path().join("lvsd.toml");
    let text = fs::read_to_string(&toml).expect("read");
    fs::write(&toml, text.replace("ucast = [", "udpport = 700\nucast = [")).expect("write");
    let c = load_clean(&[toml]);
    let media = c.failover.expect("failover").ha.media;
    assert!(!media.is_empty());
    for m in media {
        match m {
            lvsd::config::Medium::Ucast { port, .. } => assert_eq!(port, 700),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn failover_refuses_readable_authkeys() {
    let tmp = failover_dir();
    fs::set_permissions(
        tmp.path().join("authkeys"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let l = config::load(&[tmp.path().join("ha.cf")], &Names::offline());
    assert!(l.config.is_none());
    let text = render(&l.diagnostics);
    assert!(text.contains("Bad permissions on keyfile"), "{text}");
}

#[test]
fn convert_round_trips_every_example() {
    let dir = root().join("conf.d");
    let tmp = failover_dir();
    let mut inputs: Vec<PathBuf> = files(&dir, "cf")
        .into_iter()
        .chain(files(&dir, "toml"))
        .collect();
    inputs.push(tmp.path().join("ha.cf"));
    for f in inputs {
        let c = load_clean(std::slice::from_ref(&f));
        let text = native::write(&c);
        // Written beside the failover files so a relative authkeys resolves.
        let out = tmp.path().join("converted.toml");
        fs::write(&out, &text).expect("write");
        let back = config::load(&[out], &Names::offline());
        assert!(
            back.diagnostics
                .iter()
                .all(|d| d.severity != Severity::Error),
            "{}: converted form has errors:\n{}\n{text}",
            f.display(),
            render(&back.diagnostics)
        );
        assert_eq!(
            back.config.as_ref(),
            Some(&c),
            "{}: convert changed the meaning:\n{text}",
            f.display()
        );
    }
}

fn check_expected(case: &Path, got: &str) {
    let expected = case.with_extension("expected");
    if std::env::var_os("LVSD_BLESS").is_some() {
        fs::write(&expected, got).expect("bless");
        return;
    }
    let want = fs::read_to_string(&expected).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with LVSD_BLESS=1 to create it)",
            expected.display()
        )
    });
    assert_eq!(got, want, "diagnostics of {} changed", case.display());
}

#[test]
fn broken_inputs_give_their_diagnostics() {
    let mut n = 0;
    for (sub, ext, format) in [
        ("ldirectord", "cf", Format::Ldirectord),
        ("native", "toml", Format::Native),
    ] {
        let dir = root().join("tests/data/bad").join(sub);
        for case in files(&dir, ext) {
            let text = fs::read_to_string(&case).expect("read");
            let name = case.file_name().and_then(|n| n.to_str()).expect("name");
            let l = config::parse_str(format, name, &text, &Names::offline());
            assert!(
                !l.diagnostics.is_empty(),
                "{} gave no diagnostic",
                case.display()
            );
            check_expected(&case, &render(&l.diagnostics));
            n += usize::from(l.config.is_none());
        }
    }
    assert!(n >= 30, "only {n} inputs rejected");
}

#[test]
fn broken_heartbeat_files_give_their_diagnostics() {
    let dir = root().join("tests/data/bad/heartbeat");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("cases")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "only {} heartbeat cases", cases.len());
    for case in cases {
        // git keeps no file modes: 0600 unless the case is about permissions.
        let tmp = tempfile::tempdir().expect("tempdir");
        for f in ["ha.cf", "haresources", "authkeys"] {
            fs::copy(case.join(f), tmp.path().join(f)).expect("copy");
        }
        let perm = case.to_string_lossy().contains("perm");
        let mode = if perm { 0o644 } else { 0o600 };
        fs::set_permissions(
            tmp.path().join("authkeys"),
            fs::Permissions::from_mode(mode),
        )
        .expect("chmod");
        let l = config::load(&[tmp.path().join("ha.cf")], &Names::offline());
        assert!(l.config.is_none(), "{} was accepted", case.display());
        let got = render(&l.diagnostics).replace(&format!("{}/", tmp.path().display()), "");
        check_expected(&case.join("case"), &got);
    }
}

/// Debian's sample files, extracted from the `ldirectord` and `heartbeat`
/// packages by the test setup (`scripts/test-all` sets
/// LVSD_DEBIAN_SAMPLES). Without them this test says SKIP and checks
/// nothing (fails under LVSD_NO_SKIP).
#[test]
fn debian_samples() {
    let Some(dir) = std::env::var_os("LVSD_DEBIAN_SAMPLES").map(PathBuf::from) else {
        skip::skip(
            "debian_samples",
            "LVSD_DEBIAN_SAMPLES is not set (scripts/test-all sets it)",
        );
        return;
    };
    let names = Names::offline();

    // ldirectord.cf as shipped: one http virtual, checktimeout 3 for both timeouts.
    let cf = dir.join("ldirectord.cf");
    let c = load_clean(std::slice::from_ref(&cf));
    assert_eq!(c.virtuals.len(), 1);
    let v = &c.virtuals[0];
    assert_eq!(v.key.to_string(), "192.168.6.240:80");
    assert_eq!(v.scheduler, "rr");
    assert_eq!(
        (
            v.check.checktimeout,
            v.check.negotiatetimeout,
            v.check.checkinterval
        ),
        (3, 3, 1)
    );
    assert_eq!(v.check.request, "/index.html");
    assert_eq!(v.check.virtualhost.as_deref(), Some("www.x.y.z"));
    assert_eq!(v.reals.len(), 3);
    assert!(c.global.autoreload && !c.global.quiescent);

    // With every commented sample enabled (`#virtual` -> `virtual`, `#\t` -> `\t`).
    let text = fs::read_to_string(&cf).expect("read sample");
    let enabled: String = text
        .lines()
        .map(|l| {
            let l = l
                .strip_prefix("#virtual")
                .map_or_else(|| l.to_string(), |r| format!("virtual{r}"));
            let l = l
                .strip_prefix("#\t")
                .map_or(l.clone(), |r| format!("\t{r}"));
            l + "\n"
        })
        .collect();
    let l = config::parse_str(
        Format::Ldirectord,
        "ldirectord.cf+samples",
        &enabled,
        &names,
    );
    let got = render(&l.diagnostics);
    check_expected(
        &root().join("tests/data/debian/ldirectord-samples-enabled.txt"),
        &got,
    );

    // heartbeat's sample ha.cf / haresources / authkeys as shipped (all
    // commented out: heartbeat itself refuses them for want of a node, a
    // medium and a key), then with every commented directive enabled
    // (`#keepalive 2` -> `keepalive 2`; prose comments start `# `).
    let hb = dir.join("heartbeat");
    for (enable, expected) in [
        (false, "heartbeat-samples.txt"),
        (true, "heartbeat-samples-enabled.txt"),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        for f in ["ha.cf", "haresources", "authkeys"] {
            let text = fs::read_to_string(hb.join(f)).expect("read sample");
            let text: String = text
                .lines()
                .map(|l| match l.strip_prefix('#') {
                    Some(r) if enable && r.starts_with(|c: char| c.is_ascii_alphanumeric()) => {
                        r.to_string() + "\n"
                    }
                    _ => l.to_string() + "\n",
                })
                .collect();
            fs::write(tmp.path().join(f), text).expect("write");
        }
        fs::set_permissions(
            tmp.path().join("authkeys"),
            fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        let l = config::load(&[tmp.path().join("ha.cf")], &names);
        let got = render(&l.diagnostics).replace(&tmp.path().display().to_string(), "heartbeat");
        check_expected(&root().join("tests/data/debian").join(expected), &got);
    }
}
