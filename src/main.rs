//! The `lvsd` command line: the arguments, and which of
//! [`lvsd::commands`] each subcommand is. Everything else is in the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lvsd::commands::{self, Dump};
use lvsd::config::Names;
use lvsd::control::Command as Ask;

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
    /// Run the daemon in the foreground until SIGTERM or SIGINT.
    Run {
        /// Change no kernel: apply every op to an in-memory table and log it.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run, append one JSON object per op to FILE (format in the README).
        #[arg(long, value_name = "FILE", requires = "dry_run")]
        ops_log: Option<PathBuf>,
        /// The control socket the other commands use (reload, status, drain,
        /// enable, keep-table, standby, takeover).
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
        /// Where failover keeps its heartbeat generation (as heartbeat's
        /// /var/lib/heartbeat/hb_generation), one more every start.
        #[arg(long, value_name = "DIR", default_value = lvsd::failover::generation::DEFAULT_DIR)]
        state_dir: PathBuf,
        /// Config files, as for `check`.
        files: Vec<PathBuf>,
    },
    /// Give every virtual IP to the peer director (as heartbeat's hb_standby).
    Standby {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Take every virtual IP from the peer director (as hb_takeover).
    Takeover {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Read the configuration files again: applied when valid, else the
    /// running configuration stays and the errors are printed (as SIGHUP).
    Reload {
        /// Apply the files even if they have no virtual service while the
        /// running configuration has some (every real is then removed).
        /// Without it such a reload is refused: an emptied or half-written
        /// file must not empty the IPVS table.
        #[arg(long)]
        allow_empty: bool,
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Take a real out of every virtual it serves (weight 0 or removed,
    /// as its quiescent says), as a maintenancedir file does: REAL is
    /// ADDR (every port) or ADDR:PORT.
    Drain {
        /// The real.
        real: String,
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Leave the IPVS table as it is when lvsd next stops (within 60 s),
    /// whatever cleanstop says: `lvsd keep-table && systemctl restart lvsd`
    /// restarts without dropping a connection (the package's upgrade does
    /// this). The new lvsd adopts the table it finds.
    KeepTable {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Put a drained real back (its check decides again).
    Enable {
        /// The real.
        real: String,
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// What lvsd is doing: every virtual and real (health, weight, last
    /// probe, last failure, connections), and failover's role, peer and
    /// ping nodes. Exit 0 when lvsd runs, 3 when it does not (LSB).
    Status {
        /// The running daemon's control socket.
        #[arg(long, value_name = "PATH", default_value = lvsd::control::DEFAULT_PATH)]
        control: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
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
        Command::Check { files } => commands::check(&files, &names),
        // `--json` is the default rendering; the flag is accepted for clarity.
        Command::Dump { table, files, .. } => {
            let how = if table { Dump::Table } else { Dump::Json };
            commands::dump(&files, &names, how)
        }
        Command::Convert { files } => commands::dump(&files, &names, Dump::Toml),
        Command::Run {
            dry_run,
            ops_log,
            control,
            state_dir,
            files,
        } => commands::run(&files, &names, dry_run, ops_log, &control, &state_dir),
        Command::Standby { control } => commands::ask(&control, Ask::Standby),
        Command::Takeover { control } => commands::ask(&control, Ask::Takeover),
        Command::Status { control, json } => {
            commands::ask(&control, if json { Ask::StatusJson } else { Ask::Status })
        }
        Command::Reload {
            allow_empty,
            control,
        } => commands::ask(&control, Ask::Reload { allow_empty }),
        Command::KeepTable { control } => commands::ask(&control, Ask::KeepTable),
        Command::Drain { real, control } => commands::ask_about(&control, &real, Ask::Drain),
        Command::Enable { real, control } => commands::ask_about(&control, &real, Ask::Enable),
    }
}
