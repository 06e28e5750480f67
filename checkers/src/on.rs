//! `checktype=on`: the real is always up and nothing is sent to it.
//!
//! (`checktype=off` has no checker: its reals are never activated, which is
//! the caller's decision, not a probe's.)

use crate::{Checker, Probe};

/// Always up.
#[derive(Debug, Clone, Default)]
pub struct On;

impl Checker for On {
    fn subject(&self) -> &str {
        "checktype=on"
    }

    fn probe(&self) -> Probe<'_> {
        Box::pin(async { Ok(()) })
    }
}
