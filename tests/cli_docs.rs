//! The checked-in completions (completions/) and man pages (man/) match the command line in
//! src/cli.rs, and every subcommand's `--help` ends with examples.

#[path = "../examples/gen_docs.rs"]
#[allow(dead_code)]
mod gen_docs;

use std::process::Command;

use clap::CommandFactory;

/// Every visible subcommand of `btsx` (migrate, verify, …), from the clap definition.
fn subcommands() -> Vec<String> {
    let subs: Vec<String> = btsx::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    for want in ["migrate", "verify", "status"] {
        assert!(subs.iter().any(|s| s == want), "no {want} subcommand");
    }
    subs
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let stale = gen_docs::drifted();
    assert!(
        stale.is_empty(),
        "generated files out of date: {:?}; run cargo run --example gen_docs",
        stale
    );
}

#[test]
fn every_shell_and_subcommand_is_generated() {
    let files: Vec<String> = gen_docs::render_all()
        .into_iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    let mut wanted: Vec<String> = [
        "completions/btsx.bash",
        "completions/_btsx",
        "completions/btsx.fish",
        "completions/_btsx.ps1",
        "completions/btsx.elv",
        "man/btsx.1",
    ]
    .map(String::from)
    .into();
    wanted.extend(subcommands().iter().map(|s| format!("man/btsx-{s}.1")));
    for want in &wanted {
        assert!(files.contains(want), "{want} not generated");
    }
    // The completions know the options people reach for.
    let bash = gen_docs::render_all()
        .into_iter()
        .find(|(p, _)| p.ends_with("btsx.bash"))
        .map(|(_, b)| String::from_utf8(b).expect("utf-8"))
        .expect("bash completion");
    for opt in [
        "--dry-run",
        "--delete-source",
        "--max-messages-per-second",
        "--dst-oauth2-token-file",
        "--events-file",
        "--folder-map",
    ] {
        assert!(bash.contains(opt), "bash completion lacks {opt}");
    }
}

/// `btsx SUB --help`, wide enough that clap wraps no example line.
fn help(sub: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_btsx"))
        .args([sub, "--help"])
        .env("COLUMNS", "200")
        .env_remove("NO_COLOR")
        .output()
        .expect("run btsx");
    assert_eq!(out.status.code(), Some(0), "btsx {sub} --help");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn every_subcommand_help_ends_with_examples() {
    for sub in &subcommands() {
        let sub = sub.as_str();
        let text = help(sub);
        let at = text
            .rfind("\nExamples:\n")
            .unwrap_or_else(|| panic!("btsx {sub} --help has no Examples: section:\n{text}"));
        let tail = &text[at + "\nExamples:\n".len()..];
        let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.iter().any(|l| l.contains(&format!("btsx {sub}"))),
            "btsx {sub} --help: the examples do not run btsx {sub}:\n{tail}"
        );
        // Nothing after the examples but the examples themselves (indented lines), each
        // short enough that an 80-column terminal does not break a command in two.
        for l in &lines {
            assert!(
                l.starts_with("  "),
                "btsx {sub} --help: {l:?} after the Examples: section"
            );
            assert!(
                l.chars().count() <= 80,
                "btsx {sub} --help: example line longer than 80 columns (end it with \\ and go on on the next line): {l:?}"
            );
        }
    }
}

#[test]
fn every_subcommand_has_a_man_page_with_its_options() {
    let pages = gen_docs::render_all();
    let page = |name: &str| {
        pages
            .iter()
            .find(|(p, _)| p.file_name().is_some_and(|f| f == name))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let top = page("btsx.1");
    for sub in ["migrate", "verify", "status"] {
        assert!(
            top.contains(&format!("btsx\\-{sub}(1)")),
            "btsx.1 lists {sub}"
        );
    }
    let migrate = page("btsx-migrate.1");
    for opt in ["dry\\-run", "folders\\-only", "Examples:"] {
        assert!(migrate.contains(opt), "btsx-migrate.1 lacks {opt}");
    }
}
