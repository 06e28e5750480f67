//! Always up, nothing sent: `service=none` (ldirectord's `check_none`).
//!
//! `checktype=on` and `checktype=off` need no probe at all: their reals are
//! always, or never, activated, which is the caller's decision.

use crate::{Checker, Probe};

/// Always up.
#[derive(Debug, Clone, Default)]
pub struct On;

impl Checker for On {
    fn subject(&self) -> &str {
        "no check (always up)"
    }

    fn probe(&self) -> Probe<'_> {
        Box::pin(async { Ok(()) })
    }
}
