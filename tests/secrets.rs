//! Passwords never appear in events, the state file, logs or error messages.

mod support;

use std::path::Path;

use support::{Dovecot, ServerOpts, btsx};

const SRC_PW: &str = "Src-Recognisable-Pa55word-7f3a";
const DST_PW: &str = "Dst-Recognisable-Pa55word-91c2";

fn servers() -> (Dovecot, Dovecot) {
    let src = Dovecot::start(ServerOpts {
        separator: '/',
        users: vec![("alice".into(), SRC_PW.into())],
        ..ServerOpts::default()
    });
    let dst = Dovecot::start(ServerOpts {
        separator: '.',
        users: vec![("bob".into(), DST_PW.into())],
        ..ServerOpts::default()
    });
    (src, dst)
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for pw in [SRC_PW, DST_PW] {
        assert!(!text.contains(pw), "{what} contains a password:\n{text}");
    }
}

fn assert_dir_clean(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_dir_clean(&p);
        } else if p.extension().is_some_and(|x| x == "pw") {
            // The password file the user gave us.
        } else {
            assert_clean(&p.display().to_string(), &std::fs::read(&p).expect("read"));
        }
    }
}

#[test]
fn a_whole_migration_never_shows_a_password() {
    let (src, dst) = servers();
    src.generate("alice", &["--seed", "4", "--messages", "60"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let pwfile = tmp.path().join("dst.pw");
    std::fs::write(&pwfile, format!("{DST_PW}\n")).expect("pw file");
    let run = |extra: &[&str]| {
        btsx()
            .arg("migrate")
            .arg(src.url("alice"))
            .arg(dst.url("bob"))
            .arg("--ca-file")
            .arg(&src.ca_file)
            .arg("--state")
            .arg(tmp.path().join("state.json"))
            .arg("--dst-password-file")
            .arg(&pwfile)
            .args(extra)
            .env("BTSX_SRC_PASSWORD", SRC_PW)
            .env("XDG_STATE_HOME", tmp.path())
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run btsx")
    };
    // JSON with an events file, then human with -v, then a no-change run.
    let events = tmp.path().join("events.jsonl");
    let a = run(&["--json", "--events-file", events.to_str().expect("utf8")]);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    let b = run(&["-v"]);
    assert_eq!(b.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&b.stderr).contains("capabilities"),
        "-v shows protocol detail"
    );
    for (what, out) in [("json run", &a), ("verbose run", &b)] {
        assert_clean(&format!("{what} stdout"), &out.stdout);
        assert_clean(&format!("{what} stderr"), &out.stderr);
    }
    // The password file is 0644 by default here: the warning names the file, not its content.
    assert!(String::from_utf8_lossy(&a.stdout).contains("readable by other users"));

    // A wrong password on one side: the error says so without echoing either password.
    let bad = btsx()
        .arg("migrate")
        .arg(src.url("alice"))
        .arg(dst.url("bob"))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(tmp.path().join("other.json"))
        .arg("--json")
        .env("BTSX_SRC_PASSWORD", SRC_PW)
        .env("BTSX_DST_PASSWORD", format!("{DST_PW}-wrong"))
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .expect("run btsx");
    assert_eq!(bad.status.code(), Some(4));
    assert_clean("auth failure stdout", &bad.stdout);
    assert_clean("auth failure stderr", &bad.stderr);

    // A password command that fails: its output is not repeated.
    let cmd = btsx()
        .arg("migrate")
        .arg(src.url("alice"))
        .arg(dst.url("bob"))
        .arg("--state")
        .arg(tmp.path().join("third.json"))
        .arg("--src-password-command")
        .arg(format!("echo {SRC_PW}; exit 3"))
        .arg("--dst-password-file")
        .arg(&pwfile)
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .expect("run btsx");
    assert_eq!(cmd.status.code(), Some(2));
    assert_clean("password command failure", &cmd.stderr);

    // Every file btsx wrote: state files, lock files, the events file.
    assert_dir_clean(tmp.path().join("state.json").parent().expect("dir"));
    let status = btsx()
        .arg("status")
        .arg(tmp.path().join("state.json"))
        .arg("--json")
        .output()
        .expect("status");
    assert_clean("status", &status.stdout);
}

#[test]
fn debug_output_of_credentials_is_redacted() {
    let s = btsx::secret::Secret::new(SRC_PW.to_string());
    let c = btsx::imap::Credentials {
        user: "alice".into(),
        auth: btsx::imap::Auth::Password(s),
    };
    assert_clean("Debug", format!("{c:?}").as_bytes());
}
