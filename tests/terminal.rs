//! The human display on a real terminal (a pty from `script`), and an interrupted run:
//! `--color never` and NO_COLOR leave no SGR sequence, bars included (NO_COLOR keeps the
//! bars); TERM=dumb gets plain lines; an interrupted run's summary says how to go on.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Dovecot, btsx, signal, wait_exit};

const USER: &str = "alice";

fn migrate_args(src: &Dovecot, dst: &Dovecot, state: &Path) -> Vec<String> {
    vec![
        "migrate".into(),
        src.url(USER),
        dst.url(USER),
        "--ca-file".into(),
        src.ca_file.display().to_string(),
        "--state".into(),
        state.display().to_string(),
    ]
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `btsx ARGS` on a 100-column pty; returns everything the terminal received.
fn on_a_terminal(src: &Dovecot, dst: &Dovecot, args: &[String], env: &[(&str, &str)]) -> Output {
    let line = std::iter::once(quote(env!("CARGO_BIN_EXE_btsx")))
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.args([
        "-qefc",
        &format!("stty cols 100 rows 40 2>/dev/null; exec {line}"),
        "/dev/null",
    ]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BTSX_") {
            c.env_remove(k);
        }
    }
    c.env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER));
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).output().expect("run script")
}

/// SGR: ESC [ params m (color, bold, dim). Cursor movement (bars redrawing) is not SGR.
fn has_sgr(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        let Some(body) = rest.strip_prefix('[') else {
            return false;
        };
        let end = body.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_some_and(|i| body[i..].starts_with('m'))
    })
}

#[test]
fn color_rules_on_a_real_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("the `script` command (util-linux) is needed for the pty test");
    }
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "5", "--messages", "60"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |name: &str, extra: &[&str], env: &[(&str, &str)]| -> String {
        let mut args = migrate_args(&src, &dst, &tmp.path().join(format!("{name}.json")));
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = on_a_terminal(&src, &dst, &args, env);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{name}: {text}");
        assert!(text.contains("Migration complete"), "{name}: {text}");
        text
    };
    // The pty works: by default a terminal gets color and bars.
    let auto = run("auto", &[], &[]);
    assert!(has_sgr(&auto), "auto on a terminal is colored: {auto:?}");
    assert!(auto.contains("msgs"), "bars on a terminal: {auto:?}");

    let never = run("never", &["--color", "never"], &[]);
    assert!(!has_sgr(&never), "--color never: {never:?}");
    assert!(
        never.contains("msgs"),
        "--color never keeps the bars: {never:?}"
    );

    let no_color = run("no-color", &[], &[("NO_COLOR", "1")]);
    assert!(!has_sgr(&no_color), "NO_COLOR: {no_color:?}");
    assert!(
        no_color.contains("msgs"),
        "NO_COLOR keeps the bars: {no_color:?}"
    );

    let dumb = run("dumb", &[], &[("TERM", "dumb")]);
    assert!(!has_sgr(&dumb), "TERM=dumb: {dumb:?}");
    assert!(!dumb.contains("msgs"), "TERM=dumb: no bars: {dumb:?}");
    assert!(
        !dumb.contains('\u{1b}'),
        "TERM=dumb: no escape at all: {dumb:?}"
    );
    assert!(
        dumb.contains("→ Copying INBOX"),
        "TERM=dumb: plain lines: {dumb}"
    );
}

/// Waits until `file` has a line containing `what` (the run reports progress there).
fn wait_for_line(file: &Path, what: &str, limit: Duration) {
    let t = Instant::now();
    while !std::fs::read_to_string(file).is_ok_and(|s| s.lines().any(|l| l.contains(what))) {
        assert!(
            t.elapsed() < limit,
            "no {what} in {} within {limit:?}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_interrupted_run_says_how_to_resume() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "7", "--messages", "300"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job state.json");
    let events = tmp.path().join("events.jsonl");
    let mut child = btsx()
        .args(migrate_args(&src, &dst, &state))
        .args(["--max-messages-per-second", "20", "--events-file"])
        .arg(&events)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn btsx");
    wait_for_line(&events, "\"type\":\"progress\"", Duration::from_secs(60));
    signal(&child, "INT");
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("Migration interrupted"), "{err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!("Resume with: btsx migrate --resume '{}'", state.display()),
        "the summary ends with the command that goes on:\n{err}"
    );
}
