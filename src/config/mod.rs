//! Configuration: every file format read into one validated [`Config`].
//!
//! Readers never stop at the first problem: they collect every
//! [`Diagnostic`] with file, line and column, and nothing is repaired
//! quietly (a fix-up always comes with a warning).

pub mod diagnostic;
pub mod heartbeat;
pub mod model;
pub mod names;

pub use diagnostic::{Diagnostic, Diagnostics, Loc, Severity};
pub use model::*;
pub use names::Names;
