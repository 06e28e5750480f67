//! Pure: a `receive` regular expression, compiled once when the config is
//! read and carried in the model, so no later code compiles it again.

use core::fmt;
use core::hash::{Hash, Hasher};

use serde::{Serialize, Serializer};

/// `receive=`: what a check's answer must match; empty matches anything.
/// Equal (and hashed) by its source text.
#[derive(Clone, Default)]
pub struct Pattern(Option<std::sync::Arc<regex::bytes::Regex>>);

impl Pattern {
    /// Compiles `source` ("" is the empty pattern). lvsd matches with
    /// Rust's `regex` (linear time): Perl-only syntax (look-around,
    /// back-references) is an error here, never at check time.
    pub fn new(source: &str) -> Result<Pattern, regex::Error> {
        if source.is_empty() {
            return Ok(Pattern(None));
        }
        regex::bytes::Regex::new(source).map(|re| Pattern(Some(std::sync::Arc::new(re))))
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        self.0.as_ref().map_or("", |re| re.as_str())
    }

    /// Whether nothing was written (anything matches).
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The compiled expression, shared; `None` when empty. (Shared, not
    /// cloned: each clone of a `Regex` has its own cache pool, about
    /// 1.5 KiB, and 10,000 reals with the same `receive` need one.)
    pub fn regex(&self) -> Option<std::sync::Arc<regex::bytes::Regex>> {
        self.0.clone()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl PartialEq<&str> for Pattern {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_matches_anything_and_equality_is_by_text() {
        let e = Pattern::new("").expect("empty compiles");
        assert!(e.is_empty() && e.regex().is_none() && e == Pattern::default());
        let a = Pattern::new("^Service Up$").expect("compiles");
        assert_eq!(a, Pattern::new("^Service Up$").expect("compiles"));
        assert_eq!(a, "^Service Up$");
        assert_ne!(a, e);
        assert!(a.regex().is_some_and(|re| re.is_match(b"Service Up")));
        assert!(Pattern::new("a(?=b)").is_err());
        assert_eq!(
            serde_json::to_string(&a).expect("serializes"),
            "\"^Service Up$\""
        );
    }
}
