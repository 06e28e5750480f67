//! lvsd: a health-check and failover supervisor for Linux Virtual Server
//! (IPVS) directors, replacing ldirectord + heartbeat/ipfail.
//!
//! # Layout
//! - [`config`]: every file format (ldirectord.cf, lvsd.toml + conf.d,
//!   ha.cf + haresources + authkeys) read into one validated [`config::Config`],
//!   with compiler-style diagnostics.
//! - [`health`]: which checks to run, running them (one task per unique
//!   check, hard deadlines), and the rise/fall state of each.
//! - [`ipvs`]: the kernel's vocabulary (services, destinations), the table
//!   the config and the health call for, the diff to the kernel's table,
//!   and the [`ipvs::Kernel`] trait with its in-memory and dry-run kernels.
//! - [`daemon`]: the supervisor that owns the state and reconciles.
//!
//! The README's "Architecture" section is the full map, with the invariants
//! each module keeps.

pub mod alert;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod failover;
pub mod health;
pub mod instance;
pub mod ipvs;
pub mod listen;
pub mod logs;
pub mod metrics;
pub mod monitor;
mod reloader;
pub mod run;
pub mod status;
pub mod systemd;
mod watch;
