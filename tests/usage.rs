//! Every bad command line, as a table: exit 2, one stderr line that names the offending
//! value, nothing on stdout; with `--json`, the run is framed like every other (`start`,
//! `error`, and the command's summary last). No server is needed: nothing here may connect.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::btsx;

const USAGE: i32 = 2;

struct Case {
    args: Vec<String>,
    /// Substrings the message must hold (the value, and the expected form).
    want: Vec<&'static str>,
}

fn case(args: &[&str], want: &[&'static str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        want: want.to_vec(),
    }
}

fn summary_type(command: &str) -> &'static str {
    match command {
        "verify" => "verify_summary",
        "batch" => "batch_summary",
        _ => "summary",
    }
}

fn check(c: &Case) -> Vec<String> {
    let mut bad = Vec::new();
    let command = c.args[0].as_str();
    for json in [false, true] {
        let mut cmd = btsx();
        cmd.args(&c.args);
        if json {
            cmd.arg("--json");
        }
        // No password prompt, no state written where the test does not look.
        let home = tempfile::tempdir().expect("tmp");
        let out = cmd
            .env("XDG_STATE_HOME", home.path())
            .env("BTSX_SRC_PASSWORD", "x")
            .env("BTSX_DST_PASSWORD", "y")
            .stdin(Stdio::null())
            .output()
            .expect("run btsx");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut fail = |what: String| {
            bad.push(format!(
                "{:?} json={json}: {what}\n  exit {:?}\n  stderr: {stderr}\n  stdout: {stdout}",
                c.args,
                out.status.code()
            ))
        };
        if out.status.code() != Some(USAGE) {
            fail("exit code is not 2".into());
        }
        if json {
            let events: Vec<Value> = stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
            if types != ["start", "error", summary_type(command)] {
                fail(format!("events {types:?}"));
                continue;
            }
            if events[0]["command"] != command {
                fail(format!("start.command {}", events[0]["command"]));
            }
            let message = events[1]["message"].as_str().unwrap_or_default();
            for w in &c.want {
                if !message.contains(w) {
                    fail(format!("error.message lacks {w:?}"));
                }
            }
            if events[2]["exit_code"] != USAGE || events[2]["status"] != "error" {
                fail(format!("summary {}", events[2]));
            }
        } else {
            if !stdout.is_empty() {
                fail("human mode wrote to stdout".into());
            }
            let lines: Vec<&str> = stderr.lines().collect();
            if lines.len() != 1 {
                fail(format!("{} stderr lines, want one", lines.len()));
            }
            for w in &c.want {
                if !stderr.contains(w) {
                    fail(format!("stderr lacks {w:?}"));
                }
            }
        }
    }
    bad
}

#[test]
fn every_bad_input_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let file = dir.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let file = file.display().to_string();
    let missing = |n: &str| dir.join(n).display().to_string();
    let (a, b) = ("imaps://alice@old.invalid", "imaps://alice@new.invalid");
    let m = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["migrate".to_string(), a.into(), b.into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<Case> = vec![
        // Throttles: positive and finite.
        Case {
            args: m(&["--max-messages-per-second", "0"]),
            want: vec!["'0'", "positive number"],
        },
        Case {
            args: m(&["--max-messages-per-second", "NaN"]),
            want: vec!["'NaN'", "positive number"],
        },
        Case {
            args: m(&["--max-messages-per-second", "-3"]),
            want: vec!["'-3'", "positive number"],
        },
        Case {
            args: m(&["--max-messages-per-second", "inf"]),
            want: vec!["'inf'"],
        },
        Case {
            args: m(&["--max-bytes-per-second", "0"]),
            want: vec!["'0'", "above 0"],
        },
        Case {
            args: m(&["--max-bytes-per-second", "fast"]),
            want: vec!["'fast'", "25MB"],
        },
        // Sizes.
        Case {
            args: m(&["--max-size", "abc"]),
            want: vec!["'abc' is not a size", "25MB"],
        },
        Case {
            args: m(&["--max-size", "MB"]),
            want: vec!["'MB'", "25MB"],
        },
        // Timeouts.
        Case {
            args: m(&["--timeout", "0s"]),
            want: vec!["'0s'", "above 0"],
        },
        Case {
            args: m(&["--timeout", "soon"]),
            want: vec!["'soon'", "30s"],
        },
        // Dates.
        Case {
            args: m(&["--since", "yesterday-ish"]),
            want: vec!["'yesterday-ish'", "2024-01-31"],
        },
        Case {
            args: m(&["--since", "2025-01-01", "--before", "2024-01-01"]),
            want: vec!["'2025-01-01'", "'2024-01-01'", "--since", "--before"],
        },
        Case {
            args: m(&["--since", "30days", "--before", "60days"]),
            want: vec!["'30days'", "'60days'"],
        },
        // Same mailbox on both sides.
        case(
            &["migrate", a, a],
            &["same mailbox", "imaps://alice@old.invalid"],
        ),
        case(&["verify", a, a], &["same mailbox"]),
        // Files that must exist.
        Case {
            args: m(&["--ca-file", &missing("no-ca.pem")]),
            want: vec!["CA file", "no-ca.pem"],
        },
        Case {
            args: m(&["--src-ca-file", dir.to_str().unwrap()]),
            want: vec!["CA file", "is a directory"],
        },
        Case {
            args: m(&["--src-password-file", &missing("no-pw")]),
            want: vec!["password file", "no-pw"],
        },
        Case {
            args: m(&["--dst-oauth2-token-file", &missing("no-token")]),
            want: vec!["token file", "no-token"],
        },
        // Patterns, counts, maps.
        Case {
            args: m(&["--include", "re:(unclosed"]),
            want: vec!["re:(unclosed"],
        },
        Case {
            args: m(&["--jobs", "0"]),
            want: vec!["--jobs", "1..=64"],
        },
        Case {
            args: m(&["--folder-map", "nothing"]),
            want: vec!["'nothing' is not OLD=NEW"],
        },
        Case {
            args: m(&["--color", "sometimes"]),
            want: vec!["sometimes"],
        },
        case(&["migrate", "not-a-url", b], &["not-a-url"]),
        case(
            &["migrate", "--state", &missing("s.json")],
            &["SRC", "--resume"],
        ),
        case(&["migrate", a, b, "--frobnicate"], &["--frobnicate"]),
        // verify, batch, status have the same rules.
        case(&["verify", a, b, "--max-size", "lots"], &["'lots'"]),
        case(&["verify", a, b, "--timeout", "0"], &["'0'"]),
        case(&["verify", a], &["<DST>"]),
        case(&["batch", &file, "--shard", "4/3"], &["'4/3'", "K"]),
        case(
            &["batch", &file, "--state-dir", &file],
            &["plain-file", "not a directory"],
        ),
        case(&["batch", &file, "--accounts", "0"], &["--accounts"]),
        case(&["batch", &file, "--timeout", "0s"], &["'0s'"]),
        case(&["batch", &missing("accounts.csv")], &["accounts.csv"]),
        case(
            &["status", &missing("gone.json")],
            &["gone.json", "no state file"],
        ),
    ];
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases.iter().map(|c| s.spawn(move || check(c))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("check"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `btsx completions SHELL` and `btsx man PAGE` print what gen_docs checks in.
#[test]
fn completions_and_man_pages_print_what_is_checked_in() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in [
        ("bash", "btsx.bash"),
        ("zsh", "_btsx"),
        ("fish", "btsx.fish"),
    ] {
        let out = btsx().args(["completions", shell]).output().expect("run");
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            out.stdout,
            std::fs::read(root.join("completions").join(file)).unwrap()
        );
    }
    for (page, file) in [
        ("migrate", "btsx-migrate.1"),
        ("btsx", "btsx.1"),
        ("status", "btsx-status.1"),
    ] {
        let out = btsx().args(["man", page]).output().expect("run");
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            out.stdout,
            std::fs::read(root.join("man").join(file)).unwrap()
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for section in [".SH ENVIRONMENT", ".SH \"EXIT STATUS\"", ".SH FILES"] {
            assert!(text.contains(section), "{page}: {section}");
        }
    }
}

/// A state file as btsx writes it, with one folder, in `status`.
fn state_file(dir: &std::path::Path, name: &str, status: &str) -> std::path::PathBuf {
    let ep = |host: &str| serde_json::json!({"user": "alice", "host": host, "port": 993, "security": "tls"});
    let v = serde_json::json!({
        "version": 1, "tool": "btsx",
        "job": {"source": ep("old.invalid"), "destination": ep("new.invalid"), "folder_map": [],
                "max_size": null, "include": [], "exclude": [], "since": null, "before": null},
        "status": status,
        "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
        "folders": {"Lists/rust": {
            "source": "Lists/rust", "destination": "Lists.rust", "uid_validity": 7, "last_uid": 40,
            "dest_uid_validity": 9, "dest_uid_next": 41, "messages": 50, "copied": 38,
            "skipped": 1, "failed": 1, "bytes": 4096, "status": "interrupted", "failures": []
        }},
    });
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// Field names of the tables under `heading` in docs/events.md (up to the next heading).
fn documented_fields(heading: &str) -> (Vec<String>, Vec<String>) {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md")).unwrap();
    let at = doc.find(heading).expect("heading in docs/events.md");
    let section = &doc[at..];
    let end = section[heading.len()..]
        .find("\n#")
        .map_or(section.len(), |i| i + heading.len());
    let mut tables: Vec<Vec<String>> = vec![Vec::new()];
    for line in section[..end].lines() {
        if let Some(rest) = line.strip_prefix("| `") {
            let name = &rest[..rest.find('`').unwrap()];
            tables.last_mut().unwrap().push(name.to_string());
        } else if line.starts_with("Each entry") {
            tables.push(Vec::new());
        }
    }
    let mut it = tables.into_iter();
    (it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn status_exit_codes_and_documented_json() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (saved, code, shown) in [
        ("complete", 0, "complete"),
        ("interrupted", 11, "interrupted"),
        ("running", 11, "interrupted"), // saved as running, but nobody holds the lock
        ("partial", 12, "partial"),
        ("error", 12, "error"),
    ] {
        let f = state_file(tmp.path(), &format!("{saved}.json"), saved);
        let out = btsx().arg("status").arg(&f).arg("--json").output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{saved}");
        let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(v["status"], shown);
        assert_eq!(v["exit_code"], code);
        let (mut job, mut folder) = documented_fields("### The job (`btsx status FILE --json`)");
        job.sort();
        folder.sort();
        assert_eq!(keys(&v), job, "status --json: emitted vs documented");
        assert_eq!(keys(&v["folders"][0]), folder, "status --json folders");
        assert_eq!(v["folders"][0]["done"], 40);
        let human = btsx().arg("status").arg(&f).output().unwrap();
        assert_eq!(human.status.code(), Some(code), "{saved}");
        let text = String::from_utf8_lossy(&human.stdout);
        assert!(text.contains("Lists/rust → Lists.rust"), "{text}");
        if code == 0 {
            assert!(v["resume"].is_null());
            assert!(!text.contains("--resume"), "{text}");
        } else {
            let want = format!("btsx migrate --resume {}", f.display());
            assert_eq!(v["resume"].as_str(), Some(want.as_str()));
            assert!(text.trim_end().ends_with(&want), "{text}");
        }
    }
    // A directory: 0 only when every job is complete.
    let out = btsx()
        .arg("status")
        .arg(tmp.path())
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 12);
    assert_eq!(v["accounts"], 5);
}

/// A reader that went away (`btsx status F | head -1`): no panic, nothing on stderr.
#[test]
fn status_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = state_file(tmp.path(), "done.json", "complete");
    for json in [false, true] {
        let mut c = btsx();
        c.arg("status").arg(&f);
        if json {
            c.arg("--json");
        }
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The same through a shell pipeline, as people type it.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} status '{}' | head -1",
            env!("CARGO_BIN_EXE_btsx"),
            f.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
