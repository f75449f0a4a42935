//! The IMAP client end to end against a scripted fake server (tests/support/fake.rs): the
//! response forms real servers will not produce on demand.

#[path = "support/fake.rs"]
mod fake;
mod support;

use std::path::Path;
use std::process::Output;

use fake::{Fake, FakeFolder, Rule, Script, assert_each_once, folder};
use serde_json::Value;
use support::{Dovecot, btsx, json_lines, summary};

const USER: &str = "alice";

/// btsx migrate from one fake to another (both plain IMAP on loopback).
fn migrate_fakes(src: &Fake, dst: &Fake, state: &Path, extra: &[&str]) -> Output {
    btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args(["--plaintext", "--json", "--jobs", "1", "--timeout", "20s"])
        .arg("--state")
        .arg(state.join("state.json"))
        .args(extra)
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", "pw")
        .env("XDG_STATE_HOME", state)
        .output()
        .expect("run btsx")
}

fn context(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn warnings(ev: &[Value]) -> Vec<String> {
    ev.iter()
        .filter(|e| e["type"] == "warning")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn escaped_literal_and_8bit_names_are_copied_to_dovecot() {
    let utf8 = "Größe".as_bytes();
    let mut list = String::from("* LIST (\\HasNoChildren) \"/\" INBOX\r\n");
    list += "* LIST (\\HasNoChildren) \"/\" \"back\\\\slash\"\r\n";
    list += "* LIST (\\HasNoChildren) \"/\" \"Say \\\"hi\\\"\"\r\n";
    list += "* LIST (\\HasNoChildren) \"/\" {9}\r\npct%star*\r\n";
    list += "* LIST (\\HasNoChildren) \"/\" \" lead space\"\r\n";
    list += &format!(
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" {{{}}}\r\nGröße (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
        utf8.len()
    );
    let src = Fake::start(Script {
        list: Some(list),
        folders: vec![
            folder(b"INBOX", 1, 1),
            folder(br"back\slash", 2, 1),
            folder(br#"Say "hi""#, 3, 1),
            folder(b"pct%star*", 4, 1),
            folder(b" lead space", 5, 1),
            folder(utf8, 6, 1),
        ],
        ..Default::default()
    });
    let dst = Dovecot::destination();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args(["--plaintext", "--json", "--jobs", "2"])
        .arg("--ca-file")
        .arg(&dst.ca_file)
        .arg("--state")
        .arg(tmp.path().join("s.json"))
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .expect("run btsx");
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let digest = dst.digest(USER);
    for name in [
        r"back\slash",
        r#"Say "hi""#,
        "pct%star*",
        " lead space",
        "Größe",
        "INBOX",
    ] {
        let f = digest.folders.get(name).unwrap_or_else(|| {
            panic!(
                "{name:?} missing on the destination: {:?}\n{ctx}",
                digest.folders.keys()
            )
        });
        assert_eq!(f.messages.len(), 1, "{name:?}\n{ctx}");
    }
    // Each name went back to the source in the form its content needs.
    let sent = src.commands();
    for want in [
        r#"EXAMINE "back\\slash""#,
        r#"EXAMINE "Say \"hi\"""#,
        r#"EXAMINE "pct%star*""#,
        r#"EXAMINE " lead space""#,
        "EXAMINE {7+}\r\nGröße",
    ] {
        assert!(
            sent.iter().any(|c| c.starts_with(want)),
            "{want:?} not sent; sent: {sent:?}"
        );
    }
    // No quoted string with 8-bit bytes, ever.
    for c in src.state().log.iter() {
        let mut in_quote = false;
        for &b in c {
            if b == b'"' {
                in_quote = !in_quote;
            }
            assert!(
                !(in_quote && b >= 0x80),
                "8-bit byte in a quoted string: {}",
                String::from_utf8_lossy(c)
            );
        }
    }
}

#[test]
fn alerts_and_untagged_no_inside_select_are_warnings() {
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 2)],
        rules: vec![Rule::always(
            "^EXAMINE",
            "* OK [ALERT] Maintenance tonight at 22:00\r\n* 2 EXISTS\r\n* OK [UIDVALIDITY 1700000000] ok\r\n* OK [UIDNEXT 3] ok\r\n{tag} OK [READ-ONLY] done\r\n",
        )],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 100, 0)],
        rules: vec![Rule::always(
            "^SELECT",
            "* NO Mailbox index is being rebuilt\r\n* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\n* OK [UIDNEXT 1] ok\r\n* BAD [BADCHARSET] stray complaint\r\n{tag} OK [READ-WRITE] done\r\n",
        )],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &[]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    assert_eq!(summary(&ev)["messages_copied"], 2, "{ctx}");
    let w = warnings(&ev);
    // Every EXAMINE (scan and copy) repeats the alert; people see it once.
    let alerts = w
        .iter()
        .filter(|m| m.contains("alert") && m.contains("Maintenance tonight at 22:00"))
        .count();
    assert_eq!(alerts, 1, "{w:?}");
    assert!(
        src.commands()
            .iter()
            .filter(|c| c.starts_with("EXAMINE"))
            .count()
            >= 2
    );
    assert!(
        w.iter()
            .any(|m| m.contains("Mailbox index is being rebuilt")),
        "{w:?}"
    );
    assert!(w.iter().any(|m| m.contains("stray complaint")), "{w:?}");
    assert_eq!(dst.folder(b"INBOX").expect("inbox").messages.len(), 2);
    // People see the alert too.
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args(["--plaintext", "--jobs", "1", "--color", "never"])
        .arg("--state")
        .arg(tmp.path().join("human.json"))
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", "pw")
        .output()
        .expect("run btsx");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Maintenance tonight at 22:00"), "{text}");
}

#[test]
fn tagged_no_ending_in_braces_fails_that_message_only() {
    let mut broken = folder(b"Broken", 1, 1);
    broken.messages[0].uid = 7;
    broken.uid_next = 8;
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 10, 2), broken],
        // Looks like a literal announcement, but status text is text: nothing follows.
        rules: vec![Rule::always(
            r"^UID FETCH 7 \(UID BODY\.PEEK\[\]\)",
            "{tag} NO Message is unavailable {5}\r\n",
        )],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 100, 0), folder(b"Broken", 100, 0)],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &[]);
    let ctx = context(&out);
    let ev = json_lines(&out);
    let sum = summary(&ev);
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    assert_eq!(
        sum["reconnects_source"], 0,
        "nothing waited for a literal\n{ctx}"
    );
    // The source's NO is about that one message: it fails alone, with the server's words.
    assert!(
        ev.iter().any(|e| e["type"] == "message_failed"
            && e["folder"] == "Broken"
            && e["uid"] == 7
            && e["reason"]
                .as_str()
                .is_some_and(|m| m.contains("Message is unavailable {5}"))),
        "{ctx}"
    );
    assert_eq!(
        dst.folder(b"INBOX").expect("inbox").messages.len(),
        2,
        "{ctx}"
    );
}

#[test]
fn trycreate_creates_the_folder_and_stores_every_message_once() {
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 3)],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 100, 0)],
        rules: vec![Rule::once(
            "^APPEND",
            "{tag} NO [TRYCREATE] Mailbox doesn't exist\r\n",
        )],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &[]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let sent = dst.commands();
    let refused = sent
        .iter()
        .position(|c| c.starts_with("APPEND"))
        .expect("append");
    assert!(
        sent[refused..]
            .iter()
            .any(|c| c.starts_with("CREATE INBOX")),
        "CREATE after [TRYCREATE]: {sent:?}"
    );
    assert_each_once(&dst, b"INBOX", 1, 3, &ctx);
}

#[test]
fn unavailable_mid_copy_is_retried_without_loss_or_duplicates() {
    // 250 messages: two batches; the second APPEND meets [UNAVAILABLE].
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 250)],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1000, 0)],
        rules: vec![Rule::once_after(
            1,
            "^APPEND",
            "{tag} NO [UNAVAILABLE] Backend busy, try later\r\n",
        )],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &[]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    assert!(
        summary(&ev)["reconnects_destination"].as_u64().unwrap_or(0) >= 1,
        "{ctx}"
    );
    assert_each_once(&dst, b"INBOX", 1, 250, &ctx);
}

#[test]
fn a_message_with_nul_bytes_arrives_byte_exact_between_dovecots() {
    // Dovecot serves NUL as 0x80 in BODY[]; both offer BINARY, so btsx takes the bytes
    // from BINARY.PEEK[] and appends them as ~{n}.
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    let msg = "Message-ID: <nul@fake.test>\r\nSubject: nul\r\n\r\nbefore\0after\r\n";
    let put = src.imap(
        USER,
        &[&format!("APPEND INBOX ~{{{}}}\r\n{msg}", msg.len())],
    );
    assert!(put.contains("OK [APPENDUID"), "{put}");
    let seen = src.imap(USER, &["EXAMINE INBOX", "UID FETCH 1:* (BODY.PEEK[])"]);
    assert!(!seen.contains("before\0after"), "BODY[] alters NUL: {seen}");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args(["--json"])
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(tmp.path().join("s.json"))
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .expect("run btsx");
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let got = dst.imap(USER, &["EXAMINE INBOX", "UID FETCH 1:* (BINARY.PEEK[])"]);
    assert!(got.contains(&format!("~{{{}}}", msg.len())), "{got}");
    assert!(got.contains("before\0after"), "the NUL arrived: {got}");
    assert_eq!(got.matches("before").count(), 1, "{got}");
}

#[test]
fn a_nul_message_to_a_destination_without_binary_is_named_in_a_warning() {
    let src = Fake::start(Script {
        folders: vec![FakeFolder::new(
            b"INBOX",
            &[b"Message-ID: <zero@fake.test>\r\nSubject: z\r\n\r\na\0b\r\n"],
        )],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        capabilities: "IMAP4rev1 LITERAL+ UIDPLUS MULTIAPPEND NAMESPACE".into(),
        folders: vec![folder(b"INBOX", 100, 0)],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &[]);
    let ctx = context(&out);
    let ev = json_lines(&out);
    let w = warnings(&ev);
    assert!(
        w.iter()
            .any(|m| m.contains("<zero@fake.test>") && m.contains("byte-exact")),
        "{w:?}\n{ctx}"
    );
    // Nothing sent as literal8 to a server that does not know it.
    assert!(dst.commands().iter().all(|c| !c.contains("~{")), "{ctx}");
}

#[test]
fn awkward_names_are_copied_dovecot_to_dovecot() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    // Wire forms: quoted with escapes, and modified UTF-7 for "Größe".
    let names = [
        (r#""back\\slash""#, r"back\slash"),
        (r#""Say \"hi\"""#, r#"Say "hi""#),
        (r#""pct%star*""#, "pct%star*"),
        (r#"" lead space""#, " lead space"),
        ("Gr&APYA3w-e", "Größe"),
    ];
    let mut cmds = Vec::new();
    for (i, (wire, _)) in names.iter().enumerate() {
        let msg = format!("Message-ID: <awk{i}@fake.test>\r\nSubject: {i}\r\n\r\nbody {i}\r\n");
        cmds.push(format!("CREATE {wire}"));
        cmds.push(format!("APPEND {wire} {{{}}}\r\n{msg}", msg.len()));
    }
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let t = src.imap(USER, &refs);
    assert!(!t.contains("S: t1 NO") && !t.contains(" BAD "), "{t}");
    let before = src.digest(USER);
    for (_, name) in &names {
        assert!(
            before.folders.contains_key(*name),
            "{name:?} on the source: {t}"
        );
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args(["--json"])
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(tmp.path().join("s.json"))
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .expect("run btsx");
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let after = dst.digest(USER);
    for (_, name) in &names {
        let s = &before.folders[*name];
        let d = after
            .folders
            .get(*name)
            .unwrap_or_else(|| panic!("{name:?} missing: {:?}\n{ctx}", after.folders.keys()));
        assert_eq!(s.messages, d.messages, "{name:?}");
    }
}

#[test]
fn unsolicited_exists_expunge_and_flags_mid_command_change_nothing() {
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 5)],
        rules: vec![Rule::prepend(
            r"^UID FETCH",
            "* 9 EXISTS\r\n* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\n* 2 RECENT\r\n* VANISHED 40:41\r\n",
        )],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 100, 0)],
        rules: vec![Rule::prepend(r"^APPEND", "* 3 EXPUNGE\r\n* 4 EXISTS\r\n")],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &[]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    let sum = summary(&ev);
    assert_eq!(sum["messages_copied"], 5, "{ctx}");
    assert_eq!(sum["reconnects_source"], 0, "{ctx}");
    assert_eq!(sum["reconnects_destination"], 0, "{ctx}");
    assert_eq!(dst.folder(b"INBOX").expect("inbox").messages.len(), 5);
}

#[test]
fn bye_mid_copy_reconnects_and_loses_nothing() {
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 4)],
        rules: vec![Rule::once(
            r"^UID FETCH \S+ \(UID BODY\.PEEK\[\]\)",
            "* BYE Server shutting down for maintenance\r\n",
        )],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 100, 0)],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &[]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    assert!(
        summary(&ev)["reconnects_source"].as_u64().unwrap_or(0) >= 1,
        "{ctx}"
    );
    assert!(
        ev.iter().any(|e| e["type"] == "connection"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("shutting down for maintenance"))),
        "the BYE text is the reason\n{ctx}"
    );
    assert_eq!(
        dst.folder(b"INBOX").expect("inbox").messages.len(),
        4,
        "{ctx}"
    );
}
