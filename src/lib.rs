//! lvsd: a health-check and failover supervisor for Linux Virtual Server
//! (IPVS) directors, replacing ldirectord + heartbeat/ipfail.
//!
//! # Layout
//! - [`config`]: every file format (ldirectord.cf, lvsd.toml + conf.d,
//!   ha.cf + haresources + authkeys) read into one validated [`config::Config`],
//!   with compiler-style diagnostics.
//! - [`ipvs`]: the kernel's vocabulary (services, destinations) and the
//!   table a config describes.
//!
//! The README's "Architecture" section is the full map, with the invariants
//! each module keeps.

pub mod config;
pub mod ipvs;
