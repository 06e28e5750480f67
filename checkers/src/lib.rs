//! lvsd's service checkers: one protocol per file, one probe per call.
//!
//! This crate knows nothing of IPVS, failover or config files. Each checker
//! makes exactly one attempt and returns `Ok(())` or a one-line reason; the
//! daemon owns retries, intervals, deadlines and rise/fall state. The
//! protocols arrive with the health pipeline (see the README's map).
