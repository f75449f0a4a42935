//! Shell completions and man pages, generated from the command line in [`crate::cli`]:
//! `btsx completions SHELL` and `btsx man [PAGE]` print them, and `examples/gen_docs.rs`
//! writes the same bytes into `completions/` and `man/` (a test keeps those in step).

use clap::CommandFactory;
use clap_complete::Shell;

use crate::exit;

/// The shells we ship completions for, with their file names under `completions/`.
pub const SHELLS: [(Shell, &str); 5] = [
    (Shell::Bash, "btsx.bash"),
    (Shell::Zsh, "_btsx"),
    (Shell::Fish, "btsx.fish"),
    (Shell::PowerShell, "_btsx.ps1"),
    (Shell::Elvish, "btsx.elv"),
];

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "btsx", &mut buf);
    buf
}

/// Every man page: `btsx.1` and one per subcommand (`btsx-migrate.1`, …), as (file name,
/// roff text).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = crate::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    collect(cmd, &mut out);
    out.sort();
    out
}

/// The man page called `name` (`btsx`, `btsx-migrate`, `migrate` or `btsx-migrate.1`).
pub fn man_page(name: &str) -> Option<Vec<u8>> {
    let stem = name.trim_end_matches(".1");
    let want = if stem.starts_with("btsx") {
        format!("{stem}.1")
    } else {
        format!("btsx-{stem}.1")
    };
    man_pages()
        .into_iter()
        .find(|(f, _)| *f == want)
        .map(|(_, b)| b)
}

fn collect(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        collect(sub, out);
    }
    let man = clap_mangen::Man::new(cmd);
    let mut buf = Vec::new();
    // Rendering into memory cannot fail.
    let _ = man.render(&mut buf);
    let page = String::from_utf8_lossy(&buf).into_owned();
    out.push((man.get_filename(), with_sections(page).into_bytes()));
}

/// Adds ENVIRONMENT, FILES, EXIT STATUS and SEE ALSO before the VERSION section.
fn with_sections(page: String) -> String {
    let extra = extra_sections();
    match page.find("\n.SH VERSION") {
        Some(at) => format!("{}\n{}{}", &page[..at], extra, &page[at + 1..]),
        None => format!("{page}{extra}"),
    }
}

/// Text for roff: backslashes, hyphens and line-leading control characters escaped.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

fn tagged(out: &mut String, tag: &str, text: &str) {
    out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(tag), roff(text)));
}

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "BTSX_SRC_PASSWORD, BTSX_DST_PASSWORD",
        "The source and destination passwords, when no --src-password-file / --src-password-command (or the dst equivalents) is given. Passwords are never taken from the command line.",
    ),
    (
        "XDG_STATE_HOME",
        "Where state files go by default: $XDG_STATE_HOME/btsx/ (else ~/.local/state/btsx/).",
    ),
    (
        "NO_COLOR",
        "When set and not empty, the human display uses no color; progress bars stay on a terminal. --color always overrides it.",
    ),
    (
        "TERM",
        "TERM=dumb: plain lines, no progress bars and no color (unless --color always).",
    ),
    (
        "JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID",
        "Read by btsx batch --shard-from-env VAR (any variable name works).",
    ),
];

const FILES: &[(&str, &str)] = &[
    (
        "~/.local/state/btsx/USER@HOST-to-USER@HOST-HASH.json",
        "A job's state file (default; --state FILE chooses another): what is copied, so --resume continues and a rerun copies nothing twice. Holds no secrets.",
    ),
    (
        "STATEFILE.lock",
        "Beside each state file: an OS lock that keeps two runs off the same job.",
    ),
    (
        "~/.local/state/btsx/batch/",
        "btsx batch: one state file per account (default; --state-dir DIR chooses another).",
    ),
];

fn extra_sections() -> String {
    let mut out = String::from(".SH ENVIRONMENT\n");
    for (k, v) in ENVIRONMENT {
        tagged(&mut out, k, v);
    }
    out.push_str(".SH FILES\n");
    for (k, v) in FILES {
        tagged(&mut out, k, v);
    }
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in exit::TABLE {
        tagged(&mut out, &code.to_string(), meaning);
    }
    out.push_str(".SH \"JSON EVENTS\"\n");
    out.push_str(&roff(
        "With --json, btsx prints one JSON object per line on stdout: start first, then phase, connection, folder_found, folder_created, folder_started, progress, message_skipped, message_failed, folder_finished, warning, error, detail and views events, and last a summary (verify_summary for btsx verify, batch_summary for btsx batch), also after an error. Every field is described in docs/events.md, shipped with the btsx sources.",
    ));
    out.push_str("\n.SH \"SEE ALSO\"\n");
    out.push_str(&roff(
        "btsx(1), btsx-migrate(1), btsx-verify(1), btsx-batch(1), btsx-status(1), btsx-completions(1), btsx-man(1)",
    ));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_the_sections_people_look_for() {
        let page = String::from_utf8(man_page("migrate").expect("btsx-migrate.1")).unwrap();
        for s in [
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH \"EXIT STATUS\"",
            "BTSX_SRC_PASSWORD",
        ] {
            assert!(page.contains(s), "btsx-migrate.1 lacks {s}");
        }
        assert!(man_page("btsx").is_some());
        assert!(man_page("btsx-status.1").is_some());
        assert!(man_page("nonsense").is_none());
    }
}
