//! Bad input, end to end: every case must end with the documented exit code
//! (src/exit.rs) and a one-line error naming the problem, on stderr in the
//! human display and as `summary.error` in `--json` mode (where the last line
//! is always the summary). Real Dovecot servers where a server is involved.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    Digest, Dovecot, Key, MsgDigest, ServerOpts, btsx, dest_name, json_lines, key, summary,
    total_messages,
};

const USER: &str = "alice";

// src/exit.rs
const OK: i32 = 0;
const PARTIAL: i32 = 1;
const USAGE: i32 = 2;
const CONNECTION: i32 = 3;
const AUTH: i32 = 4;
const STATE: i32 = 5;
const LOCKED: i32 = 6;
const DESTINATION: i32 = 7;

/// One bad input: `btsx migrate ARGS` with `env` must exit with `code` and
/// say `want` (every substring), and never show `secret`.
struct Case {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    code: i32,
    want: Vec<String>,
    secret: Option<&'static str>,
}

fn case(name: &'static str, code: i32, want: &[&str], args: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        code,
        want: want.iter().map(|s| s.to_string()).collect(),
        secret: None,
    }
}

impl Case {
    fn env(mut self, k: &'static str, v: impl Into<String>) -> Case {
        self.env.push((k, v.into()));
        self
    }

    /// Both passwords right for `src` and `dst`.
    fn passwords(self, src: &Dovecot, dst: &Dovecot) -> Case {
        self.env("BTSX_SRC_PASSWORD", src.password(USER))
            .env("BTSX_DST_PASSWORD", dst.password(USER))
    }

    fn secret(mut self, s: &'static str) -> Case {
        self.secret = Some(s);
        self
    }
}

fn run(args: &[String], env: &[(&str, String)], json: bool, state_home: &Path) -> Output {
    let mut c = btsx();
    c.arg("migrate").args(args);
    if json {
        c.arg("--json");
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.env("XDG_STATE_HOME", state_home)
        .stdin(Stdio::null())
        .output()
        .expect("run btsx")
}

/// Runs `c` in human and JSON mode; returns the failures (empty: all good).
fn check(c: &Case, state_home: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for json in [false, true] {
        let mode = if json { "json" } else { "human" };
        let out = run(&c.args, &c.env, json, state_home);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut fail = |what: String| {
            bad.push(format!(
                "[{}] {mode}: {what}\n  args: {:?}\n  exit: {:?}\n  stderr: {}\n  stdout tail: {}",
                c.name,
                c.args,
                out.status.code(),
                stderr.trim_end().replace('\n', "\n          "),
                stdout.lines().last().unwrap_or("")
            ))
        };
        if out.status.code() != Some(c.code) {
            fail(format!(
                "exit code {:?}, want {}",
                out.status.code(),
                c.code
            ));
        }
        if let Some(s) = c.secret
            && (stdout.contains(s) || stderr.contains(s))
        {
            fail(format!("the secret {s:?} is shown"));
        }
        if json {
            let ev: Vec<Value> = stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if ev.len() != stdout.lines().count() {
                fail("stdout has lines that are not JSON".into());
            }
            let Some(last) = ev.last().filter(|l| l["type"] == "summary") else {
                fail("the last JSON line is not a summary".into());
                continue;
            };
            if last["exit_code"] != c.code {
                fail(format!("summary.exit_code {}", last["exit_code"]));
            }
            let error = last["error"].as_str().unwrap_or_default();
            if c.code != OK && c.code != PARTIAL {
                if last["status"] != "error" {
                    fail(format!("summary.status {}", last["status"]));
                }
                if error.contains('\n') {
                    fail(format!("summary.error spans lines: {error:?}"));
                }
            }
            for w in &c.want {
                if !error.contains(w.as_str()) {
                    fail(format!("summary.error {error:?} lacks {w:?}"));
                }
            }
        } else {
            for w in &c.want {
                if !stderr.lines().any(|l| l.contains(w.as_str())) {
                    fail(format!("no stderr line contains {w:?}"));
                }
            }
            if !stdout.is_empty() {
                fail("human mode wrote to stdout".into());
            }
        }
    }
    bad
}

fn check_all(cases: &[Case], state_home: &Path) {
    assert!(cases.len() >= 8);
    // Independent processes: run them side by side (auth failures wait ~2 s each).
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|c| s.spawn(move || check(c, state_home)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("check thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// A port nothing listens on.
fn refused_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

/// A state file for the job `src` → `dst`, as btsx writes it.
fn state_json(src: &str, dst: &str) -> String {
    let ep = |url: &str| -> Value {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (user, hostport) = rest.rsplit_once('@').unwrap();
        let (host, port) = hostport.rsplit_once(':').unwrap();
        serde_json::json!({
            "user": user, "host": host, "port": port.parse::<u16>().unwrap(),
            "security": if scheme == "imaps" { "tls" } else { "starttls" },
        })
    };
    serde_json::json!({
        "version": 1, "tool": "btsx",
        "job": {"source": ep(src), "destination": ep(dst), "folder_map": [], "max_size": null,
                "include": [], "exclude": [], "since": null, "before": null},
        "status": "interrupted",
        "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
        "folders": {},
    })
    .to_string()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn table_of_bad_inputs() {
    let (src, dst, untrusted) = std::thread::scope(|sc| {
        let a = sc.spawn(|| {
            let s = Dovecot::source();
            s.generate(USER, &["--profile", "flat", "--messages", "5"]);
            s
        });
        let b = sc.spawn(Dovecot::destination);
        let c = sc.spawn(|| {
            Dovecot::start(ServerOpts {
                untrusted_cert: true,
                ..ServerOpts::default()
            })
        });
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let ca = s(&src.ca_file);
    let (su, du) = (src.url(USER), dst.url(USER));
    // Each case its own state file: the cases run side by side.
    let st = |n: &str| s(&dir.join(format!("{n}.json")));
    let refused = refused_port();

    let empty_pw = dir.join("empty-pw");
    std::fs::write(&empty_pw, "\n").unwrap();
    let good_pw = dir.join("good-pw");
    std::fs::write(&good_pw, "alice-pw\n").unwrap();
    let corrupt = dir.join("corrupt.json");
    std::fs::write(
        &corrupt,
        "{\"version\": 1, \"tool\": \"btsx\", \"job\": {\"sou",
    )
    .unwrap();
    let newer = dir.join("newer.json");
    std::fs::write(&newer, "{\"version\": 99, \"tool\": \"btsx\"}").unwrap();
    let foreign = dir.join("foreign.json");
    std::fs::write(
        &foreign,
        state_json(&su, "imaps://alice@elsewhere.example:993"),
    )
    .unwrap();
    let mine = dir.join("mine.json");
    std::fs::write(&mine, state_json(&su, &du)).unwrap();
    let locked = dir.join("locked.json");
    let lock = File::create(dir.join("locked.json.lock")).unwrap();
    lock.try_lock().expect("take the state lock");

    let good = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![su.clone(), du.clone(), "--ca-file".into(), ca.clone()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let with_state = |file: &Path| good(&["--state", &s(file)]);
    let pw_url = format!("imaps://alice:hunter2@localhost:{}", src.imaps_port);
    let untrusted_url = untrusted.url(USER);

    let cases = vec![
        // The command line and URLs.
        case(
            "malformed URL",
            USAGE,
            &["missing scheme", "not-a-url"],
            &["not-a-url", &du, "--state", &st("case1")],
        ),
        case(
            "unknown scheme",
            USAGE,
            &["unknown scheme 'ftp'"],
            &["ftp://alice@localhost", &du, "--state", &st("case2")],
        ),
        case(
            "port too large",
            USAGE,
            &["port 99999", "1 to 65535"],
            &[
                &su,
                "imaps://alice@localhost:99999",
                "--state",
                &st("case3"),
            ],
        ),
        case(
            "port not a number",
            USAGE,
            &["bad port 'imap'"],
            &["imaps://alice@localhost:imap", &du, "--state", &st("case4")],
        ),
        case(
            "password in the URL",
            USAGE,
            &["password in server URL", "BTSX_SRC_PASSWORD"],
            &[&pw_url, &du, "--state", &st("case5")],
        )
        .secret("hunter2"),
        case(
            "--jobs 0",
            USAGE,
            &["--jobs", "1..=64"],
            &[&su, &du, "--jobs", "0", "--state", &st("case6")],
        ),
        case(
            "no SRC and DST",
            USAGE,
            &["required"],
            &["--state", &st("case7")],
        ),
        // Passwords and the CA file.
        case(
            "missing password, no terminal",
            USAGE,
            &["no password for the source server", "BTSX_SRC_PASSWORD"],
            &[&su, &du, "--ca-file", &ca, "--state", &st("case8")],
        ),
        case(
            "missing destination password",
            USAGE,
            &[
                "no password for the destination server",
                "--dst-password-file",
            ],
            &[&su, &du, "--ca-file", &ca, "--state", &st("case9")],
        )
        .env("BTSX_SRC_PASSWORD", "alice-pw"),
        Case {
            args: good(&[
                "--state",
                &st("case10"),
                "--src-password-file",
                &s(&empty_pw),
            ]),
            ..case("empty password file", USAGE, &["is empty"], &[])
        }
        .env("BTSX_DST_PASSWORD", "alice-pw"),
        Case {
            args: good(&[
                "--state",
                &st("case11"),
                "--src-password-file",
                &s(&dir.join("no-such-file")),
            ]),
            ..case(
                "missing password file",
                USAGE,
                &["cannot read password file", "no-such-file"],
                &[],
            )
        }
        .env("BTSX_DST_PASSWORD", "alice-pw"),
        Case {
            args: good(&[
                "--state",
                &st("case12"),
                "--src-password-file",
                &s(&good_pw),
                "--dst-password-command",
                "echo s3cr3t-out; echo oops >&2; exit 3",
            ]),
            ..case(
                "failing password command",
                USAGE,
                &["password command failed with exit code 3", "oops"],
                &[],
            )
        }
        .secret("s3cr3t-out"),
        Case {
            args: good(&["--state", &st("case13"), "--src-password-command", "true"]),
            ..case(
                "password command prints nothing",
                USAGE,
                &["printed nothing"],
                &[],
            )
        }
        .env("BTSX_DST_PASSWORD", "alice-pw"),
        case(
            "unreadable --ca-file",
            USAGE,
            &["cannot read CA file", "no-such-ca.pem"],
            &[
                &su,
                &du,
                "--ca-file",
                &s(&dir.join("no-such-ca.pem")),
                "--state",
                &st("case14"),
            ],
        )
        .passwords(&src, &dst),
        // State files.
        Case {
            args: with_state(&corrupt),
            ..case(
                "corrupt state file",
                STATE,
                &["corrupt or truncated", "corrupt.json"],
                &[],
            )
        }
        .passwords(&src, &dst),
        Case {
            args: with_state(&newer),
            ..case("state from a newer btsx", STATE, &["newer"], &[])
        }
        .passwords(&src, &dst),
        Case {
            args: with_state(&foreign),
            ..case(
                "foreign state file",
                STATE,
                &["belongs to another job", "elsewhere.example"],
                &[],
            )
        }
        .passwords(&src, &dst),
        Case {
            args: with_state(&locked),
            ..case(
                "locked state file",
                LOCKED,
                &["another btsx is already running", "locked.json"],
                &[],
            )
        }
        .passwords(&src, &dst),
        case(
            "--resume with another SRC",
            USAGE,
            &["SRC", "disagrees with the job", "mine.json"],
            &[
                &format!("imaps://bob@localhost:{}", src.imaps_port),
                "--resume",
                &s(&mine),
                "--ca-file",
                &ca,
            ],
        )
        .passwords(&src, &dst),
        case(
            "--resume with a missing file",
            STATE,
            &["cannot read state file", "gone.json"],
            &["--resume", &s(&dir.join("gone.json"))],
        )
        .passwords(&src, &dst),
        // Reaching the servers.
        case(
            "unknown host",
            CONNECTION,
            &[
                "source server",
                "cannot resolve host 'no-such-host.invalid'",
            ],
            &[
                "imaps://alice@no-such-host.invalid",
                &du,
                "--ca-file",
                &ca,
                "--state",
                &st("case15"),
                "--timeout",
                "5s",
            ],
        )
        .passwords(&src, &dst),
        case(
            "refused port",
            CONNECTION,
            &[
                "destination server",
                &format!("cannot connect to localhost:{refused}"),
            ],
            &[
                &su,
                &format!("imaps://alice@localhost:{refused}"),
                "--ca-file",
                &ca,
                "--state",
                &st("case16"),
            ],
        )
        .passwords(&src, &dst),
        case(
            "plaintext port as imaps://",
            CONNECTION,
            &["does not speak TLS", "imap://"],
            &[
                &format!("imaps://alice@localhost:{}", src.imap_port),
                &du,
                "--ca-file",
                &ca,
                "--state",
                &st("case17"),
                "--timeout",
                "5s",
            ],
        )
        .passwords(&src, &dst),
        case(
            "untrusted certificate",
            CONNECTION,
            &["certificate", "not trusted", "--ca-file", "--insecure"],
            &[
                &untrusted_url,
                &du,
                "--ca-file",
                &ca,
                "--state",
                &st("case18"),
            ],
        )
        .passwords(&src, &dst),
        case(
            "no --ca-file for a private CA",
            CONNECTION,
            &[
                "destination server",
                "not trusted",
                "--ca-file",
                "--insecure",
            ],
            &[&su, &du, "--src-ca-file", &ca, "--state", &st("case19")],
        )
        .passwords(&src, &dst),
        Case {
            args: with_state(&dir.join("auth1.json")),
            ..case(
                "wrong source password",
                AUTH,
                &["source server", "authentication failed for 'alice'"],
                &[],
            )
        }
        .env("BTSX_SRC_PASSWORD", "wrong-pw-1")
        .env("BTSX_DST_PASSWORD", "alice-pw")
        .secret("wrong-pw-1"),
        Case {
            args: with_state(&dir.join("auth2.json")),
            ..case(
                "wrong destination password",
                AUTH,
                &["destination server", "authentication failed for 'alice'"],
                &[],
            )
        }
        .env("BTSX_SRC_PASSWORD", "alice-pw")
        .env("BTSX_DST_PASSWORD", "wrong-pw-2")
        .secret("wrong-pw-2"),
    ];
    check_all(&cases, dir);

    // Nothing was written to a state file that was refused, and the lock holder kept it.
    assert!(
        std::fs::read_to_string(&corrupt)
            .unwrap()
            .ends_with("\"sou")
    );
    assert!(!locked.exists(), "a locked run must not write the state");
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        state_json(&su, "imaps://alice@elsewhere.example:993")
    );
    assert_eq!(total_messages(&dst.digest(USER)), 0, "nothing copied");
    drop(lock);
}

/// `btsx migrate` with both passwords right and `--json`; returns the output and events.
fn migrate_json(
    src: &Dovecot,
    dst: &Dovecot,
    state: &Path,
    extra: &[&str],
) -> (Output, Vec<Value>) {
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(state)
        .arg("--json")
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", state.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .expect("run btsx");
    let ev = json_lines(&out);
    (out, ev)
}

fn migrate_human(src: &Dovecot, dst: &Dovecot, state: &Path, extra: &[&str]) -> Output {
    btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(state)
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", state.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .expect("run btsx")
}

fn show(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.contains("\"type\":\"progress\""))
        .collect();
    format!(
        "exit {:?}\nstderr:\n{}\nstdout (no progress, last 40):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        tail[tail.len().saturating_sub(40)..].join("\n")
    )
}

fn read_state(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("state file")).expect("state JSON")
}

fn keys<'a>(msgs: impl Iterator<Item = &'a MsgDigest>) -> Vec<Key> {
    let mut v: Vec<Key> = msgs.map(key).collect();
    v.sort();
    v
}

/// Every source message passing `keep` is in its destination folder exactly once; nothing else is.
fn assert_copied(src: &Digest, dst: &Digest, keep: impl Fn(&MsgDigest) -> bool) {
    let mut mapped = Vec::new();
    for (name, f) in &src.folders {
        let d = dest_name(name);
        let want = keys(f.messages.iter().filter(|m| keep(m)));
        let have = dst
            .folders
            .get(&d)
            .map(|f| keys(f.messages.iter()))
            .unwrap_or_default();
        assert_eq!(have, want, "folder {name:?} → {d:?}");
        mapped.push(d);
    }
    for (name, f) in &dst.folders {
        assert!(
            mapped.contains(name) || f.messages.is_empty(),
            "unexpected messages in {name:?}"
        );
    }
}

#[test]
fn over_quota_stops_with_code_7_and_a_consistent_state() {
    let src = Dovecot::source();
    let dst = Dovecot::start(ServerOpts {
        separator: '.',
        quota: Some("2M".into()),
        ..ServerOpts::default()
    });
    src.generate(USER, &["--seed", "3", "--messages", "200"]);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");

    let (out, ev) = migrate_json(&src, &dst, &state, &["--jobs", "1"]);
    let ctx = show(&out);
    assert_eq!(out.status.code(), Some(DESTINATION), "{ctx}");
    let sm = summary(&ev);
    assert_eq!(sm["status"], "error", "{ctx}");
    assert_eq!(sm["exit_code"], DESTINATION);
    let err = sm["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("destination server") && err.contains("quota"),
        "{err}"
    );

    // The state file says how far each folder got, and never more than is there.
    let st = read_state(&state);
    assert_eq!(st["status"], "error", "{st}");
    let dd = dst.digest(USER);
    let stored = total_messages(&dd) as u64;
    assert!(stored > 0, "something fitted before the quota");
    let mut counted = 0;
    for (name, f) in st["folders"].as_object().unwrap() {
        let copied = f["copied"].as_u64().unwrap();
        let settled = copied + f["skipped"].as_u64().unwrap() + f["failed"].as_u64().unwrap();
        assert!(settled <= f["messages"].as_u64().unwrap(), "{name}: {f}");
        assert!(
            f["status"] == "interrupted" || f["status"] == "complete",
            "{name}: {f}"
        );
        let dest = f["destination"].as_str().unwrap();
        let there = dd.folders.get(dest).map_or(0, |d| d.messages.len() as u64);
        assert!(
            copied <= there,
            "{name}: state says {copied} copied, {there} in {dest}"
        );
        counted += copied;
    }
    assert!(counted <= stored);

    // Human mode: the same code, one error line naming the quota; the lock is released.
    let out = migrate_human(&src, &dst, &state, &["--jobs", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(DESTINATION), "{}", show(&out));
    assert!(stderr.lines().any(|l| l.contains("quota")), "{stderr}");
    // Nothing was stored twice by the second run: every destination message
    // is a source message of the matching folder, at most as often.
    let sd = src.digest(USER);
    for (name, f) in &dst.digest(USER).folders {
        let from = sd
            .folders
            .iter()
            .find(|(k, _)| dest_name(k) == *name)
            .map(|(_, f)| keys(f.messages.iter()))
            .unwrap_or_default();
        let mut count: BTreeMap<&Key, (usize, usize)> = BTreeMap::new();
        for k in &from {
            count.entry(k).or_default().0 += 1;
        }
        let have = keys(f.messages.iter());
        for k in &have {
            count.entry(k).or_default().1 += 1;
        }
        for (k, (want, got)) in count {
            assert!(got <= want, "{name}: {} stored {got} times", k.0);
        }
    }
}

#[test]
fn message_over_the_destination_size_limit_is_skipped_with_a_warning() {
    let src = Dovecot::source();
    let dst = Dovecot::start(ServerOpts {
        separator: '.',
        max_mail_size: Some("100k".into()),
        ..ServerOpts::default()
    });
    src.generate(
        USER,
        &["--seed", "4", "--messages", "80", "--big-message-mb", "1"],
    );
    let sd = src.digest(USER);
    let limit = 100 * 1024;
    let big = sd
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .filter(|m| m.size > limit)
        .count();
    assert!(big >= 1);
    let tmp = tempfile::tempdir().unwrap();

    let (out, ev) = migrate_json(&src, &dst, &tmp.path().join("a.json"), &[]);
    let ctx = show(&out);
    // Per src/engine.rs a size-limit skip is reported, not a failure: exit 0.
    assert_eq!(out.status.code(), Some(OK), "{ctx}");
    let sm = summary(&ev);
    assert_eq!(sm["messages_skipped"], big as u64, "{ctx}");
    assert_eq!(sm["messages_failed"], 0, "{ctx}");
    let skips: Vec<&Value> = ev
        .iter()
        .filter(|e| e["type"] == "message_skipped")
        .collect();
    assert_eq!(skips.len(), big);
    assert!(
        skips
            .iter()
            .all(|e| e["reason"] == "size_limit" && e["size"].as_u64().unwrap() > limit)
    );
    assert_copied(&sd, &dst.digest(USER), |m| m.size <= limit);

    // Human mode says so, on one line per message.
    let out = migrate_human(&src, &dst, &tmp.path().join("b.json"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OK), "{}", show(&out));
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("Message skipped due to size limit"))
            .count(),
        big,
        "{stderr}"
    );
    assert_copied(&sd, &dst.digest(USER), |m| m.size <= limit);
}

#[test]
fn max_size_skips_larger_messages() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "5", "--messages", "60"]);
    let sd = src.digest(USER);
    let limit = 20_000;
    let over = sd
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .filter(|m| m.size > limit)
        .count();
    assert!(over >= 5 && over < total_messages(&sd), "{over}");
    let tmp = tempfile::tempdir().unwrap();
    let out = migrate_human(
        &src,
        &dst,
        &tmp.path().join("s.json"),
        &["--max-size", "20000"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OK), "{}", show(&out));
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("Message skipped due to size limit"))
            .count(),
        over,
        "{stderr}"
    );
    assert_copied(&sd, &dst.digest(USER), |m| m.size <= limit);
    // The limit is part of the job: the state remembers it.
    let st = read_state(&tmp.path().join("s.json"));
    assert_eq!(st["job"]["max_size"], limit);
}

#[test]
fn folder_name_the_destination_refuses_fails_that_folder_only() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--profile", "flat", "--messages", "10"]);
    // Fine as three directories on the source (LAYOUT=fs); one 302-character
    // directory name under Maildir++ on the destination, which it refuses.
    let long = ["v".repeat(100), "w".repeat(100), "x".repeat(100)].join("/");
    src.generate(
        USER,
        &["--profile", "flat", "--folder", &long, "--messages", "3"],
    );
    let sd = src.digest(USER);
    assert!(sd.folders.contains_key(&long));
    let tmp = tempfile::tempdir().unwrap();

    let (out, ev) = migrate_json(&src, &dst, &tmp.path().join("a.json"), &[]);
    let ctx = show(&out);
    assert_eq!(out.status.code(), Some(PARTIAL), "{ctx}");
    let sm = summary(&ev);
    assert_eq!(sm["status"], "partial", "{ctx}");
    assert_eq!(sm["folders_failed"], 1, "{ctx}");
    let per: Vec<&Value> = sm["per_folder"].as_array().unwrap().iter().collect();
    let f = per
        .iter()
        .find(|f| f["folder"] == long.as_str())
        .expect("in the summary");
    assert_eq!(f["status"], "failed");
    assert_eq!(f["failed"], 3);
    let inbox = per.iter().find(|f| f["folder"] == "INBOX").unwrap();
    assert_eq!(inbox["status"], "complete");
    assert_eq!(inbox["copied"], 10);
    assert!(
        ev.iter().any(|e| e["type"] == "error"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("refused to create folder"))),
        "{ctx}"
    );
    let dd = dst.digest(USER);
    assert_eq!(dd.folders["INBOX"].messages.len(), 10);
    assert_eq!(total_messages(&dd), 10);

    let out = migrate_human(&src, &dst, &tmp.path().join("b.json"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(PARTIAL), "{}", show(&out));
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("refused to create folder") && l.contains("vvvv")),
        "{stderr}"
    );
    assert_eq!(total_messages(&dst.digest(USER)), 10, "nothing duplicated");
}

#[test]
fn source_folder_deleted_during_the_run_fails_that_folder_only() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    // A big INBOX is copied first (largest first, one worker); "Doomed" after it.
    src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--messages",
            "400",
            "--big-message-mb",
            "8",
        ],
    );
    src.generate(
        USER,
        &["--profile", "flat", "--folder", "Doomed", "--messages", "3"],
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut child = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(tmp.path().join("s.json"))
        .args(["--json", "--jobs", "1"])
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn btsx");
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut deleted_at = None;
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        let v: Value = serde_json::from_str(&line).expect("JSON line");
        if deleted_at.is_none() && v["type"] == "folder_started" && v["folder"] == "INBOX" {
            let t = src.imap(USER, &["DELETE Doomed"]);
            assert!(t.contains("S: t1 OK"), "{t}");
            deleted_at = Some(lines.len());
        }
        lines.push(v);
        assert!(started.elapsed() < Duration::from_secs(300), "btsx hangs");
    }
    let status = child.wait().expect("wait");
    let ctx = format!(
        "{status}\n{}",
        lines
            .iter()
            .filter(|e| e["type"] != "progress")
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let at = deleted_at.expect("INBOX started");
    // Only meaningful if INBOX was still being copied when the folder went away.
    let inbox_done = lines
        .iter()
        .position(|e| e["type"] == "folder_finished" && e["folder"] == "INBOX")
        .expect("INBOX finished");
    if inbox_done <= at {
        eprintln!("INBOX finished before the DELETE reached the server; nothing to check");
        return;
    }
    assert_eq!(status.code(), Some(PARTIAL), "{ctx}");
    let sm = summary(&lines);
    let per = sm["per_folder"].as_array().unwrap();
    let doomed = per
        .iter()
        .find(|f| f["folder"] == "Doomed")
        .expect("Doomed");
    assert_eq!(doomed["status"], "failed", "{ctx}");
    let inbox = per.iter().find(|f| f["folder"] == "INBOX").unwrap();
    assert_eq!(inbox["status"], "complete", "{ctx}");
    let reason = lines
        .iter()
        .find(|e| e["type"] == "folder_finished" && e["folder"] == "Doomed")
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("source server"), "{reason}\n{ctx}");
    assert_eq!(
        dst.digest(USER).folders["INBOX"].messages.len(),
        401,
        "INBOX complete"
    );
}
