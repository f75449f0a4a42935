//! Regenerates the shell completions in `completions/` and the man pages in `man/` from the
//! clap definition in `src/cli.rs` (through `src/docs.rs`, which `btsx completions` and
//! `btsx man` also use):
//!
//! ```sh
//! cargo run --example gen_docs            # write the files
//! cargo run --example gen_docs -- --check # exit 1 when a checked-in file differs
//! ```
//!
//! `tests/cli_docs.rs` includes this file and fails when the checked-in files drift from the
//! command line.

use std::path::{Path, PathBuf};

/// Every generated file: (path relative to the repository root, contents). The bytes come
/// from `btsx::docs`, which `btsx completions` and `btsx man` print.
pub fn render_all() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, name) in btsx::docs::SHELLS {
        out.push((
            Path::new("completions").join(name),
            btsx::docs::completions(shell),
        ));
    }
    for (name, page) in btsx::docs::man_pages() {
        out.push((Path::new("man").join(name), page));
    }
    out.sort();
    out
}

/// Repository root (where Cargo.toml is).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Files in completions/ and man/ that the command line no longer produces (a removed
/// subcommand's man page, say).
pub fn leftovers() -> Vec<PathBuf> {
    let made: Vec<PathBuf> = render_all().into_iter().map(|(p, _)| p).collect();
    let mut out = Vec::new();
    for dir in ["completions", "man"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = Path::new(dir).join(e.file_name());
            if e.path().is_file() && !made.contains(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The generated files that are missing or differ on disk, and the leftovers.
pub fn drifted() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = render_all()
        .into_iter()
        .filter(|(path, want)| std::fs::read(root().join(path)).ok().as_ref() != Some(want))
        .map(|(path, _)| path)
        .collect();
    out.extend(leftovers());
    out
}

#[allow(dead_code)]
fn main() {
    let check = std::env::args().skip(1).any(|a| a == "--check");
    if check {
        let stale = drifted();
        if stale.is_empty() {
            println!("completions and man pages are up to date");
            return;
        }
        for p in &stale {
            eprintln!("out of date: {}", p.display());
        }
        eprintln!("run cargo run --example gen_docs");
        std::process::exit(1);
    }
    for (path, contents) in render_all() {
        let full = root().join(&path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(&full, &contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", full.display()));
        println!("wrote {}", path.display());
    }
    for path in leftovers() {
        std::fs::remove_file(root().join(&path))
            .unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
        println!("removed {}", path.display());
    }
}
