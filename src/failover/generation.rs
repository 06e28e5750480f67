//! heartbeat's `hg`: this run's generation, which must be higher than any
//! earlier run's of this node, or the peer drops every message as a
//! replay. As heartbeat keeps it in /var/lib/heartbeat/hb_generation, lvsd
//! keeps it on disk (`--state-dir`, /var/lib/lvsd by default, file
//! `generation`): read, incremented, written to a new file, fsynced and
//! renamed over the old one (and the directory fsynced) before the first
//! message goes out. Never from the clock: a clock stepped back would lock
//! the pair out. Only the first run of a node (no file yet) starts from the
//! clock, so it is above the generations lvsd took from the clock before.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The default state directory.
pub const DEFAULT_DIR: &str = "/var/lib/lvsd";

/// Why the generation cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    /// Reading, writing or syncing failed.
    #[error("keeping the heartbeat generation in {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds something else than a number.
    #[error(
        "{path} holds `{text}`, not a generation number: remove it (the next start takes one from the clock)"
    )]
    Garbled {
        /// The file.
        path: PathBuf,
        /// Its first characters.
        text: String,
    },
    /// The file holds the largest generation: no later one is possible.
    #[error(
        "{path} holds the largest generation there is ({max}): no restart can go above it, so the peer would take each for a replay; set it to the clock (`date +%s > {path}`) on this node and restart the peer too"
    )]
    Exhausted {
        /// The file.
        path: PathBuf,
        /// u64::MAX.
        max: u64,
    },
}

/// This run's generation: one more than the last one kept in `dir`
/// (`clock_secs` when there is none), kept before it is returned.
pub fn next(dir: &Path, clock_secs: u64) -> Result<u64, GenerationError> {
    let path = dir.join("generation");
    let io = |source| GenerationError::Io {
        path: path.clone(),
        source,
    };
    let last = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            text.trim()
                .parse::<u64>()
                .map_err(|_| GenerationError::Garbled {
                    path: path.clone(),
                    text: text.trim().chars().take(20).collect(),
                })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let generation = match last {
        None => clock_secs,
        Some(g) => g.checked_add(1).ok_or(GenerationError::Exhausted {
            path: path.clone(),
            max: g,
        })?,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    // Per process: two lvsd sharing a state directory (a lab) never write
    // the same new file.
    let tmp = dir.join(format!(".generation.{}.new", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    writeln!(f, "{generation}").map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_is_one_more_whatever_the_clock_says() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("lib/lvsd");
        assert_eq!(next(&state, 1_000).unwrap(), 1_000, "the first run");
        assert_eq!(next(&state, 1_000).unwrap(), 1_001);
        // The clock stepped back: still up.
        assert_eq!(next(&state, 1_000 - 900).unwrap(), 1_002);
        assert_eq!(
            std::fs::read_to_string(state.join("generation")).unwrap(),
            "1002\n"
        );
        std::fs::write(state.join("generation"), "garbage").unwrap();
        let e = next(&state, 5).unwrap_err().to_string();
        assert!(e.contains("not a generation number"), "{e}");
        // The largest: refused (it stayed there, each restart the same
        // generation, every message a replay to the peer).
        std::fs::write(state.join("generation"), format!("{}\n", u64::MAX)).unwrap();
        let e = next(&state, 5).unwrap_err().to_string();
        assert!(e.contains("largest generation"), "{e}");
    }
}
