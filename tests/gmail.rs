//! A Gmail-shaped source (issue 14): Dovecot's virtual plugin gives "[Gmail]/All Mail"
//! (`\All`, every message), "[Gmail]/Starred" (`\Flagged`) and "[Gmail]/Important"
//! (`\Important`, keyword `$Important`); archived mail lives in a namespace that is not listed,
//! so it is only seen through All Mail; one message has two labels (INBOX and Work).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{Digest, Dovecot, MsgDigest, ServerOpts, json_lines, key, summary};

const USER: &str = "alice";
const ALL: &str = "[Gmail]/All Mail";

const GMAIL_CONF: &str = r#"
mail_plugins = $mail_plugins virtual
namespace archived {
  prefix = Archived/
  separator = /
  location = maildir:~/Archived:LAYOUT=fs
  list = no
}
namespace gmail {
  prefix = [Gmail]/
  separator = /
  location = virtual:~/Virtual
  mailbox "All Mail" {
    special_use = \All
  }
  mailbox Starred {
    special_use = \Flagged
  }
  mailbox Important {
    special_use = \Important
  }
}
"#;

/// The virtual mailboxes: `*` does not reach the unlisted namespace, so All Mail names it.
const VIEWS: &[(&str, &str)] = &[
    ("All Mail", "*\nArchived/*\n  all\n"),
    ("Starred", "*\nArchived/*\n  flagged\n"),
    ("Important", "*\n  keyword $Important\n"),
];

fn gmail_source() -> Dovecot {
    let src = Dovecot::start(ServerOpts {
        separator: '/',
        extra_conf: Some(GMAIL_CONF.to_string()),
        ..ServerOpts::default()
    });
    let home = src.dir.join("home").join(USER);
    for (name, spec) in VIEWS {
        let dir = home.join("Virtual").join(name);
        std::fs::create_dir_all(&dir).expect("virtual dir");
        std::fs::write(dir.join("dovecot-virtual"), spec).expect("dovecot-virtual");
    }
    // As root the mail processes run as another user: the files must be theirs.
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("--reference={}", home.display()))
        .arg(home.join("Virtual"))
        .status()
        .expect("chown");
    assert!(st.success());
    src.imap(
        USER,
        &["CREATE Work", "CREATE Receipts", "CREATE Archived/old"],
    );
    for (folder, flags, n) in [
        ("INBOX", "\\Seen", 1),
        ("INBOX", "\\Flagged $Important", 2),
        ("Work", "\\Flagged $Important", 2), // the same message, a second label
        ("Work", "", 3),
        ("Receipts", "\\Seen \\Flagged", 4),
        ("Archived/old", "\\Seen", 5),
        ("Archived/old", "\\Flagged", 6),
    ] {
        append(&src, folder, flags, n);
    }
    src
}

fn message(n: u32) -> String {
    format!(
        "From: sender{n}@example.com\r\nTo: alice@example.com\r\nSubject: message {n}\r\nMessage-ID: <m{n}@example.com>\r\nDate: Mon, 1 Jan 2024 10:00:0{} +0000\r\n\r\nbody {n}\r\n",
        n % 10
    )
}

fn append(server: &Dovecot, folder: &str, flags: &str, n: u32) {
    let body = message(n);
    let t = server.imap(
        USER,
        &[&format!(
            "APPEND \"{folder}\" ({flags}) \"0{}-Jan-2024 10:00:00 +0000\" {{{}}}\r\n{body}",
            n % 10,
            body.len()
        )],
    );
    assert!(t.contains("OK [APPENDUID"), "APPEND into {folder}: {t}");
}

fn migrate(src: &Dovecot, dst: &Dovecot, state: &Path, extra: &[&str]) -> (Output, Vec<Value>) {
    let out = support::migrate_cmd(src, dst, USER, state, extra)
        .output()
        .expect("run btsx");
    let events = if extra.contains(&"--json") {
        json_lines(&out)
    } else {
        Vec::new()
    };
    (out, events)
}

fn sorted(mut v: Vec<MsgDigest>) -> Vec<MsgDigest> {
    v.sort();
    v
}

fn folder(d: &Digest, name: &str) -> Vec<MsgDigest> {
    sorted(
        d.folders
            .get(name)
            .unwrap_or_else(|| panic!("folder {name:?} missing: {:?}", d.folders.keys()))
            .messages
            .clone(),
    )
}

/// All Mail minus every real folder's messages (a multiset): what exists only in All Mail.
fn archived(src: &Digest, real: &[&str]) -> Vec<MsgDigest> {
    let mut left = folder(src, ALL);
    for name in real {
        for m in folder(src, name) {
            let i = left
                .iter()
                .position(|x| key(x) == key(&m))
                .unwrap_or_else(|| panic!("{m:?} of {name} is not in All Mail"));
            left.remove(i);
        }
    }
    left
}

/// A JSON array of strings, sorted.
fn names(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

const REAL: &[&str] = &["INBOX", "Work", "Receipts"];

#[test]
fn gmail_views_are_not_folders_and_all_mail_gives_only_archived_mail() {
    let src = gmail_source();
    let dst = Dovecot::destination();
    // The destination has an \Archive folder: archived mail goes there.
    dst.imap(USER, &["CREATE Archive"]);
    let s = src.digest(USER);
    assert_eq!(folder(&s, ALL).len(), 7, "the fixture's All Mail");
    assert_eq!(folder(&s, "[Gmail]/Starred").len(), 4);
    assert_eq!(folder(&s, "[Gmail]/Important").len(), 2);
    let want_archived = archived(&s, REAL);
    assert_eq!(want_archived.len(), 2);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");

    // The plan says what happens, and changes nothing.
    let (out, _) = migrate(&src, &dst, &state, &["--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("views: [Gmail]/Starred, [Gmail]/Important"),
        "{err}"
    );
    assert!(
        err.contains("[Gmail]/All Mail: 2 archived messages") && err.contains("to copy → Archive"),
        "{err}"
    );
    assert!(!state.exists(), "a dry run writes no state");

    let (out, events) = migrate(&src, &dst, &state, &["--json"]);
    let sum = summary(&events);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sum["messages_copied"], 5 + 2, "{sum}");
    let views = events
        .iter()
        .find(|e| e["type"] == "views")
        .expect("a views event");
    assert_eq!(
        names(&views["views"]),
        ["[Gmail]/Important", "[Gmail]/Starred"]
    );
    assert_eq!(views["all_mail"], ALL);
    assert_eq!(views["all_mail_destination"], "Archive");
    assert_eq!(views["archived_messages"], 2);
    // All Mail was copied after every real folder was done.
    let finished: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "folder_finished")
        .filter_map(|e| e["folder"].as_str())
        .collect();
    assert_eq!(finished.last(), Some(&ALL), "{finished:?}");

    let check = |what: &str| {
        let d = dst.digest(USER);
        for name in REAL {
            // The two-label message once in each of its folders, bytes, flags and dates.
            assert_eq!(folder(&d, name), folder(&s, name), "{what}: {name}");
        }
        assert_eq!(folder(&d, "Archive"), want_archived, "{what}: Archive");
        let with_mail: Vec<&String> = d
            .folders
            .iter()
            .filter(|(_, f)| !f.messages.is_empty())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            with_mail,
            ["Archive", "INBOX", "Receipts", "Work"],
            "{what}: nothing from the views"
        );
    };
    check("first run");

    // A re-run adds nothing, All Mail pass included.
    let (out, events) = migrate(&src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(summary(&events)["messages_copied"], 0);
    check("re-run");

    // verify leaves the views out too, and says All Mail is not compared as a folder.
    let (code, events) = support::verify_json(&src, &dst, USER);
    assert_eq!(code, Some(0), "{events:#?}");
    let compared: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "verify_folder")
        .filter_map(|e| e["folder"].as_str())
        .collect();
    assert!(
        compared.iter().all(|f| !f.starts_with("[Gmail]")),
        "{compared:?}"
    );
    assert!(
        events.iter().any(|e| e["type"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("[Gmail]/All Mail' is not compared"))),
        "{events:#?}"
    );

    // New mail: one more archived message and one more in INBOX; each copied once.
    append(&src, "Archived/old", "", 7);
    append(&src, "INBOX", "", 8);
    let (out, events) = migrate(&src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let sum = summary(&events);
    assert_eq!(sum["messages_copied"], 2, "{sum}");
    let s = src.digest(USER);
    let d = dst.digest(USER);
    assert_eq!(folder(&d, "INBOX"), folder(&s, "INBOX"));
    assert_eq!(folder(&d, "Archive"), archived(&s, REAL));
    assert_eq!(folder(&d, "Archive").len(), 3);
    let (out, events) = migrate(&src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(summary(&events)["messages_copied"], 0);
}

#[test]
fn all_mail_copy_copies_the_views_as_folders_and_skip_leaves_them() {
    let src = gmail_source();
    let s = src.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");

    // copy: today's behaviour, every listed folder as a folder.
    let dst = Dovecot::destination();
    let (out, events) = migrate(
        &src,
        &dst,
        &tmp.path().join("copy.json"),
        &["--json", "--all-mail", "copy"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!events.iter().any(|e| e["type"] == "views"));
    let d = dst.digest(USER);
    for (s_name, d_name) in [
        (ALL, "[Gmail].All Mail"),
        ("[Gmail]/Starred", "[Gmail].Starred"),
        ("[Gmail]/Important", "[Gmail].Important"),
        ("INBOX", "INBOX"),
        ("Work", "Work"),
    ] {
        assert_eq!(folder(&d, d_name), folder(&s, s_name), "{s_name}");
    }
    assert_eq!(summary(&events)["messages_copied"], 7 + 4 + 2 + 5);

    // skip: neither All Mail nor the views.
    let dst = Dovecot::destination();
    let (out, events) = migrate(
        &src,
        &dst,
        &tmp.path().join("skip.json"),
        &["--json", "--all-mail", "skip"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(summary(&events)["messages_copied"], 5);
    let d = dst.digest(USER);
    for name in REAL {
        assert_eq!(folder(&d, name), folder(&s, name), "{name}");
    }
    assert!(
        d.folders.keys().all(|n| !n.starts_with("[Gmail]")),
        "{:?}",
        d.folders.keys()
    );
}

#[test]
fn a_view_on_the_destination_is_never_a_target() {
    // A Gmail-shaped destination without \Archive: All Mail's archived messages get a folder
    // of their own; the source's views are views there too and are not appended to.
    let src = gmail_source();
    let dst = gmail_source();
    let before = dst.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, events) = migrate(
        &src,
        &dst,
        &tmp.path().join("job.json"),
        &["--json", "--all-mail", "copy"],
    );
    let sum = summary(&events);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let views = events
        .iter()
        .find(|e| e["type"] == "views")
        .expect("a views event");
    assert_eq!(
        names(&views["not_copied"]),
        ["[Gmail]/All Mail", "[Gmail]/Important", "[Gmail]/Starred"],
        "{views}"
    );
    assert!(
        !sum["per_folder"]
            .as_array()
            .expect("per_folder")
            .iter()
            .any(|f| f["folder"]
                .as_str()
                .is_some_and(|n| n.starts_with("[Gmail]"))),
        "{sum}"
    );

    // Default mode: archived messages land in a plain "Archive" folder.
    let (out, events) = migrate(&src, &dst, &tmp.path().join("job2.json"), &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let views = events
        .iter()
        .find(|e| e["type"] == "views")
        .expect("a views event");
    assert_eq!(views["all_mail_destination"], "Archive");
    let d = dst.digest(USER);
    assert_eq!(folder(&d, "Archive"), archived(&before, REAL));
}

/// The transcript-driven fake IMAP server (tests/support/fake.rs).
#[path = "support/fake.rs"]
mod fake;

#[test]
fn with_x_gm_ext_1_membership_is_decided_by_x_gm_msgid_and_important_travels() {
    use fake::{Fake, FakeFolder, Rule, Script};
    let m1: &[u8] = b"From: a@example.com\r\nSubject: one\r\nMessage-ID: <1@x>\r\n\r\nbody one\r\n";
    let m2: &[u8] = b"From: b@example.com\r\nSubject: two\r\nMessage-ID: <2@x>\r\n\r\nbody two\r\n";
    let m3: &[u8] =
        b"From: c@example.com\r\nSubject: archived\r\nMessage-ID: <3@x>\r\n\r\nbody three\r\n";
    let src = Fake::start(Script {
        capabilities: "IMAP4rev1 LITERAL+ UIDPLUS NAMESPACE LIST-EXTENDED SPECIAL-USE X-GM-EXT-1"
            .into(),
        list: Some(
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n\
             * LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n\
             * LIST (\\HasNoChildren \\All) \"/\" \"[Gmail]/All Mail\"\r\n\
             * LIST (\\HasNoChildren \\Flagged) \"/\" \"[Gmail]/Starred\"\r\n"
                .into(),
        ),
        folders: vec![
            FakeFolder::new(b"INBOX", &[m1, m2]),
            FakeFolder::new(b"[Gmail]/All Mail", &[m1, m2, m3]),
            FakeFolder::new(b"[Gmail]/Starred", &[m2]),
        ],
        rules: vec![
            // Gmail's answers: the id of a message is the same in every folder.
            Rule::always(
                r"^FETCH 1:2 \(UID X-GM-MSGID\)",
                "* 1 FETCH (UID 1 X-GM-MSGID 1001)\r\n* 2 FETCH (UID 2 X-GM-MSGID 1002)\r\n{tag} OK Success\r\n",
            ),
            // "Important" is a label on Gmail; a user label may be called "\Important" too.
            Rule::always(
                r"^UID FETCH 1:2 \(UID X-GM-LABELS\)",
                "* 1 FETCH (UID 1 X-GM-LABELS (\\Inbox \"\\\\Important\"))\r\n* 2 FETCH (UID 2 X-GM-LABELS (\\Inbox \\Important))\r\n{tag} OK Success\r\n",
            ),
            Rule::always(
                r"^UID FETCH 1:3 \(UID X-GM-MSGID\)",
                "* 1 FETCH (UID 1 X-GM-MSGID 1001)\r\n* 2 FETCH (UID 2 X-GM-MSGID 1002)\r\n* 3 FETCH (UID 3 X-GM-MSGID 1003)\r\n{tag} OK Success\r\n",
            ),
        ],
    });
    let dst = Fake::start(Script {
        folders: vec![FakeFolder::new(b"INBOX", &[])],
        ..Script::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = support::btsx()
        .args([
            "migrate",
            &src.url(USER),
            &dst.url(USER),
            "--plaintext",
            "--json",
        ])
        .arg("--state")
        .arg(tmp.path().join("job.json"))
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", "pw")
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .expect("run btsx");
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{sum}\n{}\nsource: {:#?}",
        String::from_utf8_lossy(&out.stderr),
        src.commands()
    );
    assert_eq!(sum["messages_copied"], 3, "{sum}");
    let sent = src.commands();
    assert!(
        sent.iter()
            .any(|c| c.starts_with("FETCH 1:2 (UID X-GM-MSGID)")),
        "{sent:#?}"
    );
    assert!(
        sent.iter()
            .any(|c| c.starts_with("UID FETCH 1:3 (UID X-GM-MSGID)")),
        "{sent:#?}"
    );
    // No header was fetched to tell membership.
    assert!(
        !sent.iter().any(|c| c.contains("HEADER.FIELDS")),
        "{sent:#?}"
    );
    let all = dst
        .folder(b"[Gmail]/All Mail")
        .expect("All Mail on the destination");
    assert_eq!(all.messages.len(), 1);
    assert_eq!(all.messages[0].body, m3);
    let inbox = dst.folder(b"INBOX").expect("INBOX");
    assert_eq!(inbox.messages.len(), 2);
    for m in &inbox.messages {
        // Gmail's \Important label travels as the $Important keyword.
        assert_eq!(
            m.flags.contains("$Important"),
            m.body == m2,
            "{:?}: {}",
            String::from_utf8_lossy(&m.body),
            m.flags
        );
    }
    assert!(dst.folder(b"[Gmail]/Starred").is_none());
}

#[test]
fn an_all_mail_pass_killed_midway_resumes_without_loss_or_duplicates() {
    let src = gmail_source();
    src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Archived/bulk",
            "--messages",
            "600",
            "--seed",
            "14",
        ],
    );
    let dst = Dovecot::destination();
    dst.imap(USER, &["CREATE Archive"]);
    let s = src.digest(USER);
    let want = archived(&s, REAL);
    assert_eq!(want.len(), 602);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");
    let out = tmp.path().join("run1.jsonl");
    let mut child = support::migrate_cmd(&src, &dst, USER, &state, &["--json", "--jobs", "1"])
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn btsx");
    // kill -9 once the All Mail pass has settled its first batch.
    let t = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let events = support::parse_lines(&text, false);
        if events
            .iter()
            .any(|e| e["type"] == "progress" && e["folder"] == ALL)
        {
            break;
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(120),
            "no All Mail progress: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    support::signal(&child, "KILL");
    let _ = child.wait();
    let partial = folder(&dst.digest(USER), "Archive").len();
    assert!(partial < want.len(), "killed before the pass ended");

    let (out, events) = migrate(&src, &dst, &state, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = dst.digest(USER);
    assert_eq!(
        folder(&d, "Archive"),
        want,
        "each archived message exactly once"
    );
    for name in REAL {
        assert_eq!(folder(&d, name), folder(&s, name), "{name}");
    }
    let sum = summary(&events);
    assert_eq!(
        sum["messages_copied"].as_u64(),
        Some((want.len() - partial) as u64),
        "{sum}"
    );
    let (_, events) = migrate(&src, &dst, &state, &["--json"]);
    assert_eq!(summary(&events)["messages_copied"], 0);
}
