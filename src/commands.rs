//! What the `lvsd` subcommands do, for `main.rs`'s command line: read and
//! print configurations (`check`, `dump`, `convert`), start the daemon
//! (`run`), and ask the running one (the others).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Config, Loaded, Names, Severity};
use crate::control::{Command, Target};
use crate::ipvs::table::Table;

/// `lvsd check`: every diagnostic, then a one-line summary; exit 1 on
/// any error.
pub fn check(files: &[PathBuf], names: &Names) -> ExitCode {
    let loaded = config::load(files, names);
    report(&loaded);
    let Some(c) = loaded.config else {
        return ExitCode::FAILURE;
    };
    let reals: usize = c.virtuals.iter().map(|v| v.reals.len()).sum();
    let warnings = loaded.diagnostics.len();
    let n = c.virtuals.len();
    let s = |n: usize| if n == 1 { "" } else { "s" };
    eprintln!(
        "ok: {n} virtual service{}, {reals} real server{}{}, {warnings} warning{}",
        s(n),
        s(reals),
        if c.failover.is_some() {
            ", failover"
        } else {
            ""
        },
        s(warnings),
    );
    ExitCode::SUCCESS
}

/// How `lvsd dump` prints the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// The `dump --json` document.
    Json,
    /// `ipvsadm -Sn` lines of the table the config describes.
    Table,
    /// lvsd.toml (`lvsd convert`).
    Toml,
}

/// `lvsd dump` and `lvsd convert`.
pub fn dump(files: &[PathBuf], names: &Names, how: Dump) -> ExitCode {
    let loaded = config::load(files, names);
    report(&loaded);
    let Some(c) = loaded.config else {
        return ExitCode::FAILURE;
    };
    let text = match how {
        Dump::Table => Table::all_up(&c).to_string(),
        Dump::Toml => config::native::write(&c),
        Dump::Json => match serde_json::to_string_pretty(&config::dump::json(&c)) {
            Ok(s) => format!("{s}\n"),
            Err(e) => {
                eprintln!("lvsd: cannot render JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    out(&text);
    ExitCode::SUCCESS
}

/// `lvsd run`.
pub fn run(
    files: &[PathBuf],
    names: &Names,
    dry_run: bool,
    ops_log: Option<PathBuf>,
    control: &Path,
    state_dir: &Path,
) -> ExitCode {
    let loaded = config::load(files, names);
    report(&loaded);
    let Some(c): Option<Config> = loaded.config else {
        return ExitCode::FAILURE;
    };
    match crate::run::run(c, dry_run, ops_log, control, state_dir, files, names) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lvsd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `lvsd drain|enable REAL`: REAL must be ADDR or ADDR:PORT (exit 2).
pub fn ask_about(control: &Path, real: &str, make: fn(Target) -> Command) -> ExitCode {
    match Target::parse(real) {
        Some(t) => ask(control, make(t)),
        None => {
            eprintln!("lvsd: `{real}` is not ADDR or ADDR:PORT");
            ExitCode::from(2)
        }
    }
}

/// Asks the running daemon. Exit 3 when nothing listens (LSB "not
/// running"), 4 when it cannot be asked (not allowed, or no answer in
/// time: status unknown), 1 when its reply says it failed.
pub fn ask(control: &Path, command: Command) -> ExitCode {
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|rt| rt.block_on(crate::control::ask(control, command)));
    match answer {
        // No answer: the daemon went away before answering (it stopped
        // mid-reload).
        Ok(None) => {
            eprintln!(
                "lvsd: no answer from {} (did lvsd stop?)",
                control.display()
            );
            ExitCode::FAILURE
        }
        // Busy (every connection taken): whether it did anything is
        // unknown (LSB 4).
        Ok(Some(r)) if !r.ok && r.text.contains(crate::control::BUSY) => {
            eprint!("{}", prefixed(&r.text));
            ExitCode::from(4)
        }
        Ok(Some(r)) if !r.ok => {
            eprint!("{}", prefixed(&r.text));
            ExitCode::FAILURE
        }
        Ok(Some(r)) => {
            out(&r.text);
            ExitCode::SUCCESS
        }
        // Connected, then nothing: it runs but does not answer (LSB 4,
        // status unknown).
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            eprintln!("lvsd does not answer ({}: {e})", control.display());
            ExitCode::from(4)
        }
        // Not allowed to ask (the socket is root's): whether it runs is
        // unknown to this user (LSB 4, insufficient privilege).
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!(
                "lvsd: cannot ask it ({}: {e}): the control socket is root's; run this as root",
                control.display()
            );
            ExitCode::from(4)
        }
        // Nothing there, or nothing listening: not running.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!("lvsd is not running ({}: {e})", control.display());
            ExitCode::from(3)
        }
        // Anything else (reset, a broken pipe): it may run and not answer.
        Err(e) => {
            eprintln!(
                "lvsd: cannot ask it ({}: {e}); it may be busy, try again",
                control.display()
            );
            ExitCode::from(4)
        }
    }
}

/// A failed reply on stderr: its first line says it is lvsd's.
fn prefixed(text: &str) -> String {
    format!("lvsd: {text}")
}

/// Prints to stdout; a reader that went away (`lvsd dump | head`) ends
/// the output quietly instead of a panic.
fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
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
