//! Files marked `//! Pure` (shared/DESIGN.md §3.1) take inputs and return
//! decisions: they never name the runtime, sockets, files, processes or the
//! clock. This test reads them as text and fails on any such name.

use std::fs;
use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "async ",
    ".await",
    "std::net",
    "std::fs",
    "Instant::now",
    "SystemTime::now",
    "std::process",
];

fn pure_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).expect("read src").filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            pure_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && fs::read_to_string(&p).is_ok_and(|t| t.starts_with("//! Pure"))
        {
            out.push(p);
        }
    }
}

#[test]
fn pure_files_name_no_io_and_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    pure_files(&root.join("src"), &mut files);
    pure_files(&root.join("checkers/src"), &mut files);
    assert!(!files.is_empty(), "no file is marked //! Pure");
    let mut found = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).expect("read");
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for w in FORBIDDEN {
                if line.contains(w) {
                    found.push(format!(
                        "{}:{}: `{w}` in `{}`",
                        f.display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "pure files name I/O or the clock:\n{}",
        found.join("\n")
    );
}
