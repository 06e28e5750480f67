//! The Debian package, end to end (packaging/test-package, as root): built
//! from this build's binary, installed into a clean debootstrapped Debian
//! 12 root, the upgrade path with a valid and a broken configuration,
//! purge, `systemd-analyze verify` on the unit, lintian (an error fails),
//! and both man pages rendered without a warning.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

#[test]
fn the_debian_package_installs_upgrades_and_purges_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("packaging/test-package"))
        .current_dir(root)
        .env("LVSD_BIN", env!("CARGO_BIN_EXE_lvsd"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Its report (lintian's remaining tags among it) goes to the test log.
    println!("{text}");
    assert!(
        out.status.success(),
        "packaging/test-package failed:\n{text}"
    );
}
