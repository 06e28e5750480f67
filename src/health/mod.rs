//! Health: which checks to run ([`plan`]), running them ([`scheduler`]),
//! what their results mean ([`state`]), and which reals an operator has
//! put in maintenance ([`maintenance`]).

pub mod maintenance;
pub mod plan;
pub mod scheduler;
pub mod state;
