//! The `lvsd` command line. Only argument parsing and printing live here;
//! everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lvsd::config::{self, Loaded, Names, Severity};
use lvsd::ipvs::table::Table;

/// Health-check and failover supervisor for Linux Virtual Server directors.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate config files; prints FILE:LINE:COL diagnostics, exits 1 on any error.
    Check {
        /// ldirectord.cf, lvsd.toml, a conf.d directory or ha.cf
        /// (default: /etc/lvsd/lvsd.toml and /etc/lvsd/conf.d/).
        files: Vec<PathBuf>,
    },
    /// Print the validated model with every default applied.
    Dump {
        /// As JSON (field names are listed in the README).
        #[arg(long, conflicts_with = "table")]
        json: bool,
        /// As the `ipvsadm -Sn` lines of the IPVS table the config describes (all reals up).
        #[arg(long)]
        table: bool,
        /// Config files, as for `check`.
        files: Vec<PathBuf>,
    },
    /// Print the equivalent lvsd.toml.
    Convert {
        /// Config files, as for `check`.
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let names = Names::system();
    match cli.command {
        Command::Check { files } => {
            let loaded = config::load(&files, &names);
            report(&loaded);
            match loaded.config {
                Some(c) => {
                    let reals: usize = c.virtuals.iter().map(|v| v.reals.len()).sum();
                    let warnings = loaded.diagnostics.len();
                    eprintln!(
                        "ok: {} virtual services, {reals} real servers{}, {warnings} warning{}",
                        c.virtuals.len(),
                        if c.failover.is_some() {
                            ", failover"
                        } else {
                            ""
                        },
                        if warnings == 1 { "" } else { "s" },
                    );
                    ExitCode::SUCCESS
                }
                None => ExitCode::FAILURE,
            }
        }
        // `--json` is the default rendering; the flag is accepted for clarity.
        Command::Dump { table, files, .. } => {
            let loaded = config::load(&files, &names);
            report(&loaded);
            let Some(c) = loaded.config else {
                return ExitCode::FAILURE;
            };
            if table {
                print!("{}", Table::all_up(&c));
            } else {
                match serde_json::to_string_pretty(&config::dump::json(&c)) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("lvsd: cannot render JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::Convert { files } => {
            let loaded = config::load(&files, &names);
            report(&loaded);
            let Some(c) = loaded.config else {
                return ExitCode::FAILURE;
            };
            print!("{}", config::native::write(&c));
            ExitCode::SUCCESS
        }
    }
}

/// Diagnostics go to stderr, errors and warnings alike, compiler style.
fn report(loaded: &Loaded) {
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        eprintln!(
            "lvsd: {errors} error{} found",
            if errors == 1 { "" } else { "s" }
        );
    }
}
