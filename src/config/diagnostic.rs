//! Diagnostics: every config error and warning carries file, line, column,
//! a message and an optional hint, and renders like a compiler's
//! (`FILE:LINE:COL: error: message`). Readers collect them instead of
//! stopping, so one run reports every problem in every file.

use std::fmt;
use std::sync::Arc;

/// How bad a diagnostic is. Any `Error` makes the config invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config means something, but probably not what was meant.
    Warning,
    /// The config cannot be used.
    Error,
}

/// A place in a config file. Lines and columns count from 1; line 0 means
/// "the file as a whole" (it could not be opened, or a required directive
/// is missing). The default is nowhere (no file, line 0): a placeholder
/// until a reader sets the real place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Loc {
    /// The file as the operator named it.
    pub file: Arc<str>,
    /// 1-based line, or 0 for the whole file.
    pub line: u32,
    /// 1-based column (in characters), or 0 when unknown.
    pub column: u32,
}

impl Loc {
    /// A location at `line`, `column` of `file`.
    pub fn new(file: &Arc<str>, line: u32, column: u32) -> Self {
        Loc {
            file: Arc::clone(file),
            line,
            column,
        }
    }

    /// The file as a whole.
    pub fn file(file: &Arc<str>) -> Self {
        Loc::new(file, 0, 0)
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.file),
            (l, 0) => write!(f, "{}:{l}", self.file),
            (l, c) => write!(f, "{}:{l}:{c}", self.file),
        }
    }
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is.
    pub loc: Loc,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one line.
    pub message: String,
    /// What to do about it, when we can tell.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {sev}: {}", self.loc, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  = hint: {h}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics while a reader walks its input.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error at `loc`.
    pub fn error(&mut self, loc: Loc, message: impl Into<String>) -> &mut Diagnostic {
        self.push(loc, Severity::Error, message.into())
    }

    /// Records a warning at `loc`.
    pub fn warn(&mut self, loc: Loc, message: impl Into<String>) -> &mut Diagnostic {
        self.push(loc, Severity::Warning, message.into())
    }

    fn push(&mut self, loc: Loc, severity: Severity, message: String) -> &mut Diagnostic {
        self.items.push(Diagnostic {
            loc,
            severity,
            message,
            hint: None,
        });
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// True when any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Appends everything from `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// The diagnostics in the order they were found.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// The diagnostics, sorted by file and position (stable for equal places).
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (&a.loc.file, a.loc.line, a.loc.column).cmp(&(&b.loc.file, b.loc.line, b.loc.column))
        });
        self.items
    }
}

impl Diagnostic {
    /// Attaches a hint.
    pub fn hint(&mut self, hint: impl Into<String>) -> &mut Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough
/// to be a likely typo ("wrrr" -> "wrr").
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let max = match word.chars().count() {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= max)
        // On a tie prefer a word with the same first letter (`htp` -> `http`, not `ftp`).
        .min_by_key(|(d, c)| (*d, c.chars().next() != word.chars().next()))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let f: Arc<str> = "ldirectord.cf".into();
        let mut d = Diagnostics::new();
        d.error(Loc::new(&f, 12, 5), "unknown scheduler `wrrr`")
            .hint("did you mean `wrr`?");
        d.warn(Loc::file(&f), "no virtual services");
        let out: Vec<String> = d.into_sorted().iter().map(|d| d.to_string()).collect();
        assert_eq!(out[0], "ldirectord.cf: warning: no virtual services");
        assert_eq!(
            out[1],
            "ldirectord.cf:12:5: error: unknown scheduler `wrrr`\n  = hint: did you mean `wrr`?"
        );
    }

    #[test]
    fn suggestions_are_close_words_only() {
        let s = ["rr", "wrr", "lc", "wlc", "sh", "dh"];
        assert_eq!(did_you_mean("wrrr", s), Some("wrr"));
        assert_eq!(did_you_mean("roundrobin", s), None);
        assert_eq!(did_you_mean("htp", ["ftp", "http"]), Some("http"));
        assert_eq!(
            did_you_mean("checktimout", ["checktimeout", "checkport"]),
            Some("checktimeout")
        );
    }
}
