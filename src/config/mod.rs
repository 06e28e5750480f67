//! Configuration: every file format read into one validated [`Config`].
//!
//! Readers never stop at the first problem: they collect every
//! [`Diagnostic`] with file, line and column, and nothing is repaired
//! quietly (a fix-up always comes with a warning).
//!
//! Which reader a path gets ([`Format::of`]): `*.toml` is lvsd's own
//! format, a directory is a conf.d of `*.toml` drop-ins, a file named
//! `ha.cf` brings `haresources` and `authkeys` from the same directory (as
//! heartbeat does), anything else is an ldirectord.cf.

pub mod diagnostic;
mod draft;
pub mod dump;
pub mod file;
pub mod heartbeat;
mod ldirectord;
pub mod model;
pub mod names;
pub mod native;
mod pattern;
pub mod smtp;
mod url;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics, Loc, Severity};
pub use draft::SCHEDULERS;
pub use model::*;
pub use names::Names;
pub use pattern::Pattern;
pub use smtp::{SmtpError, SmtpServer, TlsMode};
pub use url::{RealUrl, UrlError, real_url};

/// Where lvsd looks when no file is named.
pub const DEFAULT_FILES: [&str; 2] = ["/etc/lvsd/lvsd.toml", "/etc/lvsd/conf.d"];

/// The kinds of file lvsd reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ldirectord.cf.
    Ldirectord,
    /// lvsd.toml or a conf.d drop-in.
    Native,
    /// A conf.d directory of `*.toml` files, read in name order.
    NativeDir,
    /// heartbeat's ha.cf (with haresources and authkeys beside it).
    HaCf,
}

impl Format {
    /// Decides the reader from the path, as documented above.
    pub fn of(path: &Path) -> Format {
        if path.is_dir() {
            Format::NativeDir
        } else if path.extension().is_some_and(|e| e == "toml") {
            Format::Native
        } else if path.file_name().is_some_and(|n| n == "ha.cf") {
            Format::HaCf
        } else {
            Format::Ldirectord
        }
    }
}

/// The outcome of reading: a model when there was no error, and every
/// diagnostic (warnings too), sorted by file and position.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The model; `None` when any error was found.
    pub config: Option<Config>,
    /// Everything worth telling the operator.
    pub diagnostics: Vec<Diagnostic>,
}

/// Accumulates the files of one configuration.
struct Builder<'a> {
    names: &'a Names,
    draft: draft::Draft,
    native_failover: native::FailoverDraft,
    native_failover_file: Option<Arc<str>>,
    failover: Option<Failover>,
    d: Diagnostics,
}

impl<'a> Builder<'a> {
    fn new(names: &'a Names) -> Self {
        Builder {
            names,
            draft: draft::Draft::default(),
            native_failover: native::FailoverDraft::default(),
            native_failover_file: None,
            failover: None,
            d: Diagnostics::new(),
        }
    }

    fn text(&mut self, format: Format, name: &Arc<str>, text: &str) {
        match format {
            Format::Ldirectord => {
                ldirectord::read(name, text, self.names, &mut self.draft, &mut self.d)
            }
            Format::Native | Format::NativeDir => {
                let before = self.native_failover.loc.is_some();
                native::read(
                    name,
                    text,
                    self.names,
                    &mut self.draft,
                    &mut self.native_failover,
                    &mut self.d,
                );
                if !before && self.native_failover.loc.is_some() {
                    self.native_failover_file = Some(Arc::clone(name));
                }
            }
            Format::HaCf => {
                // ha.cf alone: its own diagnostics, but no failover without
                // haresources and authkeys (read_dir reads all three).
                let _ = heartbeat::parse_hacf(name, text, self.names, &mut self.d);
            }
        }
    }

    fn path(&mut self, path: &Path) {
        let name: Arc<str> = path.display().to_string().into();
        match Format::of(path) {
            // A name only a file has (ldirectord.cf, lvsd.toml, ha.cf): a
            // directory there is a mistake (or an edit half done), not a
            // conf.d to read as empty.
            Format::NativeDir if names_a_file(path) => {
                self.d.error(
                    Loc::file(&name),
                    "cannot read file: it is a directory (a conf.d directory is named without .cf, .conf or .toml)",
                );
            }
            Format::NativeDir => match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        // Every *.toml entry, whatever it is: one that is
                        // not a regular file (a FIFO, a directory, a
                        // dangling link) is an error at its name, never
                        // skipped (its virtuals would leave the kernel).
                        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                        .collect();
                    files.sort();
                    for f in files {
                        self.path(&f);
                    }
                }
                Err(e) => {
                    self.d
                        .error(Loc::file(&name), format!("cannot read directory: {e}"));
                }
            },
            Format::HaCf => {
                if let Some(f) = heartbeat::read_dir(path, self.names, &mut self.d) {
                    if self.failover.is_some() {
                        self.d.error(
                            Loc::file(&name),
                            "a second ha.cf: a director has one failover configuration",
                        );
                    }
                    self.failover = Some(f);
                }
            }
            format => match file::read_text(path) {
                Ok(text) => self.text(format, &name, &text),
                Err(e) => {
                    self.d.error(Loc::file(&name), e.to_string());
                }
            },
        }
    }

    fn finish(mut self) -> Loaded {
        let (global, virtuals) = draft::build(&self.draft, self.names, &mut self.d);
        if let Some(file) = &self.native_failover_file {
            let fo = native::build_failover(&self.native_failover, file, self.names, &mut self.d);
            if fo.is_some() && self.failover.is_some() {
                self.d.error(
                    Loc::file(file),
                    "failover is configured both here and in ha.cf; use one",
                );
            }
            if self.failover.is_none() {
                self.failover = fo;
            }
        }
        let cfg = Config {
            global,
            virtuals,
            failover: self.failover,
        };
        let ok = !self.d.has_errors();
        Loaded {
            config: ok.then_some(cfg),
            diagnostics: self.d.into_sorted(),
        }
    }
}

/// Whether `path`'s name is one only a configuration file has.
fn names_a_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "cf" || e == "conf" || e == "toml")
}

/// Reads the named files (or [`DEFAULT_FILES`] when none is named) into
/// one configuration.
pub fn load(paths: &[PathBuf], names: &Names) -> Loaded {
    let names = names.fresh();
    let Some(noting) = names.noting() else {
        return read(paths, &names);
    };
    // Host names are looked up all at once: a reading notes the names it
    // cannot resolve yet, they are looked up together, and it reads again
    // (a name can hide another: an unresolved virtual's reals). With no
    // names, the first reading is the one.
    for _ in 0..3 {
        let r = read(paths, &noting);
        let new = noting.take_noted();
        if new.is_empty() {
            return r;
        }
        names.look_up(&new);
    }
    read(paths, &names)
}

fn read(paths: &[PathBuf], names: &Names) -> Loaded {
    let mut b = Builder::new(names);
    if paths.is_empty() {
        let main = Path::new(DEFAULT_FILES[0]);
        b.path(main);
        let dropins = Path::new(DEFAULT_FILES[1]);
        if dropins.is_dir() {
            b.path(dropins);
        }
    } else {
        for p in paths {
            b.path(p);
        }
    }
    b.finish()
}

/// Reads one text as if it were a file of `format` named `name`: for
/// tests, fuzzing and tools. ha.cf text is read alone (no haresources or
/// authkeys), so its failover is incomplete.
pub fn parse_str(format: Format, name: &str, text: &str, names: &Names) -> Loaded {
    let mut b = Builder::new(names);
    let name: Arc<str> = name.into();
    b.text(format, &name, text);
    b.finish()
}
