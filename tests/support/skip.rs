//! A test that cannot run here says so instead of passing quietly.
//!
//! `skip` writes `SKIP <test>: <why>` straight to stderr (libtest captures
//! the print!/eprint! macros, not the stream, so the line shows even when
//! the test passes) and the test then returns. `scripts/test-all` counts
//! those lines.
//!
//! With `LVSD_NO_SKIP` set (to anything; `scripts/test-all` sets it) a
//! missing prerequisite is a failure instead: `skip` panics with
//! "<test> cannot run here: <why>; unset LVSD_NO_SKIP to skip it", so the
//! full run cannot be green with a test that did not run.
//!
//! Two kinds of skip are exempt and go through `skip_exempt`, which says
//! SKIP but never panics:
//! - a skip the person running the tests asked for by name (e.g.
//!   `LVSD_SKIP_VM=1`): that variable is the request, and LVSD_NO_SKIP
//!   guards against what goes missing silently, not against what was asked;
//! - a test whose subject cannot exist on this host and that nothing the
//!   test command installs could provide (e.g. "a kernel without IPVS" on a
//!   host whose kernel has it): failing there would fail CI for the
//!   machine, not for lvsd.
//!
//! Every `skip_exempt` call says in a comment which kind it is.
//!
//! Include it as the other support files: `#[path = "support/skip.rs"] mod skip;`.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write;

/// Says `SKIP <test>: <why>`, or panics under `LVSD_NO_SKIP`. The caller
/// returns right after.
pub(crate) fn skip(test: &str, why: &str) {
    if std::env::var_os("LVSD_NO_SKIP").is_some() {
        panic!("{test} cannot run here: {why}; unset LVSD_NO_SKIP to skip it");
    }
    say(test, why);
}

/// Says `SKIP <test>: <why>` even under `LVSD_NO_SKIP` (see the module
/// comment for when that is right). The caller returns right after.
pub(crate) fn skip_exempt(test: &str, why: &str) {
    say(test, why);
}

fn say(test: &str, why: &str) {
    // One write, so the line is not cut by another test's output.
    let line = format!("SKIP {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}
