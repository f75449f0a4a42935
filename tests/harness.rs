//! Tests of the test harness itself (tests/support, scripts/*): real Dovecot
//! instances, the generator and the digest.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;

use support::{Digest, Dovecot, MsgDigest, ServerOpts, python3, script, total_messages};

const T2015: i64 = 1_420_070_400;

fn names(d: &Digest) -> BTreeSet<&str> {
    d.folders.keys().map(String::as_str).collect()
}

fn all_messages(d: &Digest) -> impl Iterator<Item = &MsgDigest> {
    d.folders.values().flat_map(|f| f.messages.iter())
}

#[test]
fn realistic_profile_on_source() {
    let src = Dovecot::source();
    let summary = src.generate("alice", &["--seed", "1", "--messages", "300"]);
    assert_eq!(summary["messages"], 300, "{summary}");
    assert_eq!(summary["folders"], 13, "{summary}");

    let d = src.digest("alice");
    assert_eq!(d.separator, '/');
    let expected: BTreeSet<&str> = [
        "INBOX",
        "Sent Messages",
        "Drafts",
        "Deleted Messages",
        "Archive",
        "Archive/2019",
        "Archive/2020",
        "Archive/2020/Q1",
        "Entwürfe",
        "日本語",
        "Old Mail",
        "Empty",
        "a.b",
    ]
    .into_iter()
    .collect();
    assert_eq!(names(&d), expected);
    assert_eq!(total_messages(&d), 300);
    let bytes: u64 = all_messages(&d).map(|m| m.size).sum();
    assert_eq!(summary["bytes"], bytes);

    // every non-empty folder got messages, INBOX the most
    assert!(d.folders["Empty"].messages.is_empty());
    let inbox = &d.folders["INBOX"];
    for (name, f) in &d.folders {
        if name != "Empty" {
            assert!(!f.messages.is_empty(), "{name} is empty");
            assert!(f.messages.len() <= inbox.messages.len(), "{name} > INBOX");
        }
    }

    // special-use and subscriptions
    assert_eq!(d.folders["Sent Messages"].special_use, ["\\Sent"]);
    assert_eq!(d.folders["Drafts"].special_use, ["\\Drafts"]);
    assert_eq!(d.folders["Deleted Messages"].special_use, ["\\Trash"]);
    assert!(d.folders["INBOX"].special_use.is_empty());
    assert!(!d.folders["Old Mail"].subscribed);
    assert!(d.folders["Archive/2020/Q1"].subscribed);
    assert!(d.folders["INBOX"].subscribed);

    // duplicate pair: two byte-identical messages in INBOX
    let mut by_hash: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &inbox.messages {
        *by_hash.entry(&m.sha256).or_default() += 1;
    }
    assert_eq!(by_hash.values().filter(|&&n| n == 2).count(), 1);
    // two different messages sharing one Message-ID
    let shared: Vec<&MsgDigest> = inbox
        .messages
        .iter()
        .filter(|m| m.message_id.as_deref() == Some("<shared-1@gen.example.com>"))
        .collect();
    assert_eq!(shared.len(), 2);
    assert_ne!(shared[0].sha256, shared[1].sha256);
    // messages without Message-ID
    assert!(inbox.messages.iter().any(|m| m.message_id.is_none()));

    // flags and keywords
    let flags: BTreeSet<&str> = all_messages(&d)
        .flat_map(|m| m.flags.iter().map(String::as_str))
        .collect();
    for f in [
        "\\Seen",
        "\\Answered",
        "\\Flagged",
        "\\Draft",
        "$Forwarded",
        "Work",
        "$label1",
    ] {
        assert!(flags.contains(f), "no message has {f}: {flags:?}");
    }
    assert!(!flags.contains("\\Recent"));
    assert!(all_messages(&d).any(|m| m.flags.is_empty()));

    // dates: 2009..2024, some before 2015; the year folders hold their year
    let dates: Vec<i64> = all_messages(&d).map(|m| m.internaldate).collect();
    assert!(dates.iter().any(|&t| t < T2015));
    assert!(
        dates
            .iter()
            .all(|&t| (1_230_768_000..1_735_689_600).contains(&t))
    );
    assert!(
        d.folders["Archive/2019"]
            .messages
            .iter()
            .all(|m| (1_546_300_800..1_577_836_800).contains(&m.internaldate))
    );

    // sizes: one big message (>= 512 KiB) in 250, the rest small
    let big = all_messages(&d).filter(|m| m.size >= 512 * 1024).count();
    assert_eq!(big, 1);

    // the raw Latin-1 Subject byte arrived unchanged
    let t = src.imap(
        "alice",
        &[
            "EXAMINE INBOX",
            "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        ],
    );
    assert!(t.contains("Caf\u{FFFD} cr\u{FFFD}me"), "{t}");

    // digest is read-only: a second digest is identical (no \Seen set)
    assert_eq!(src.digest("alice"), d);
}

#[test]
fn generation_is_deterministic() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            let a = Dovecot::source();
            a.generate("alice", &["--seed", "7", "--messages", "150"]);
            a
        });
        let b = s.spawn(|| {
            let b = Dovecot::source();
            b.generate("alice", &["--seed", "7", "--messages", "150"]);
            b
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    let (da, db) = (a.digest("alice"), b.digest("alice"));
    assert_eq!(total_messages(&da), 150);
    assert_eq!(da, db);

    let c = Dovecot::source();
    c.generate("alice", &["--seed", "8", "--messages", "150"]);
    assert_ne!(c.digest("alice"), da);
}

#[test]
fn destination_uses_dot_separator() {
    let dst = Dovecot::destination();
    assert!(dst.imaps_port != dst.imap_port);
    let summary = dst.generate("alice", &["--messages", "60"]);
    assert_eq!(summary["folders"], 12, "no a.b when the separator is '.'");
    let d = dst.digest("alice");
    assert_eq!(d.separator, '.');
    assert!(d.folders.contains_key("Archive.2020.Q1"), "{:?}", names(&d));
    assert!(!d.folders.contains_key("a.b"));
    assert!(d.folders.contains_key("Entwürfe"));
    // destination defaults: Sent/Drafts/Trash/Junk/Archive special-use
    assert_eq!(d.folders["Archive"].special_use, ["\\Archive"]);
    assert_eq!(d.folders["Drafts"].special_use, ["\\Drafts"]);
    assert!(d.folders["Sent Messages"].special_use.is_empty());
    assert_eq!(total_messages(&d), 60);
}

#[test]
fn empty_account_digest() {
    let dst = Dovecot::destination();
    let d = dst.digest("alice");
    assert_eq!(d.separator, '.');
    assert_eq!(names(&d), BTreeSet::from(["INBOX"]));
    assert_eq!(total_messages(&d), 0);
}

#[test]
fn namespace_prefix_and_custom_special_use() {
    let s = Dovecot::start(ServerOpts {
        separator: '.',
        ns_prefix: Some("INBOX.".into()),
        special_use: vec![("Sent Messages".into(), "\\Sent".into())],
        ..ServerOpts::default()
    });
    s.generate("alice", &["--messages", "40"]);
    let d = s.digest("alice");
    assert_eq!(d.separator, '.');
    assert!(d.folders.contains_key("INBOX"));
    assert!(
        d.folders.contains_key("INBOX.Archive.2020.Q1"),
        "{:?}",
        names(&d)
    );
    assert!(d.folders.keys().all(|n| n.starts_with("INBOX")));
    assert_eq!(d.folders["INBOX.Sent Messages"].special_use, ["\\Sent"]);
    assert!(d.folders["INBOX.Drafts"].special_use.is_empty());
}

#[test]
fn flat_profile_and_big_message() {
    let s = Dovecot::source();
    let summary = s.generate(
        "alice",
        &[
            "--profile",
            "flat",
            "--folder",
            "Bench/Flat",
            "--messages",
            "50",
            "--big-message-mb",
            "3",
        ],
    );
    assert_eq!(summary["messages"], 51);
    let d = s.digest("alice");
    assert_eq!(d.folders["Bench/Flat"].messages.len(), 50);
    let inbox = &d.folders["INBOX"].messages;
    assert_eq!(inbox.len(), 1);
    let mb = inbox[0].size as f64 / (1024.0 * 1024.0);
    assert!((2.8..3.2).contains(&mb), "big message is {mb} MB");
}

#[test]
fn users_urls_and_raw_imap() {
    let s = Dovecot::start(ServerOpts {
        users: vec![
            ("bob@example.com".into(), "s3cret pw".into()),
            ("carol".into(), "c-pw".into()),
        ],
        ..ServerOpts::default()
    });
    assert_eq!(
        s.url("bob@example.com"),
        format!("imaps://bob%40example.com@localhost:{}", s.imaps_port)
    );
    assert_eq!(
        s.starttls_url("carol"),
        format!("imap://carol@localhost:{}", s.imap_port)
    );
    assert_eq!(s.password("carol"), "c-pw");

    let msg = "Subject: hi\r\nMessage-ID: <x@y>\r\n\r\nhello\r\n";
    let append = format!(
        "APPEND \"My Folder\" (\\Flagged Work) \"01-Feb-2010 10:00:00 +0100\" {{{}}}\r\n{msg}",
        msg.len()
    );
    let t = s.imap(
        "bob@example.com",
        &[
            "CREATE \"My Folder\"",
            &append,
            "APPEND \"My Folder\" {4}\r\nxx\r\n",
        ],
    );
    assert!(t.contains("S: t2 OK"), "{t}");
    let d = s.digest("bob@example.com");
    let f = &d.folders["My Folder"];
    assert_eq!(f.messages.len(), 2);
    let m = f.messages.iter().find(|m| m.message_id.is_some()).unwrap();
    assert_eq!(m.flags, ["Work", "\\Flagged"]);
    assert_eq!(m.internaldate, 1_265_014_800);
    assert_eq!(m.size, msg.len() as u64);
    assert!(!f.subscribed);

    // delete a message, then the folder
    let t = s.imap(
        "bob@example.com",
        &[
            "SELECT \"My Folder\"",
            "STORE 1 +FLAGS.SILENT (\\Deleted)",
            "EXPUNGE",
        ],
    );
    assert!(t.contains("* 1 EXPUNGE"), "{t}");
    assert_eq!(
        s.digest("bob@example.com").folders["My Folder"]
            .messages
            .len(),
        1
    );
    let t = s.imap("carol", &["DELETE \"No Such\""]);
    assert!(t.contains("S: t1 NO"), "{t}");
    // users are separate accounts
    assert_eq!(total_messages(&s.digest("carol")), 0);
    assert!(s.log().contains("Login: user=<bob@example.com>"));
}

#[test]
fn quota_and_appendlimit() {
    let s = Dovecot::start(ServerOpts {
        quota: Some("1M".into()),
        max_mail_size: Some("100k".into()),
        ..ServerOpts::default()
    });
    let t = s.imap("alice", &["CAPABILITY"]);
    assert!(t.contains("APPENDLIMIT=102400"), "{t}");
    assert!(t.contains(" QUOTA"), "{t}");

    let body = |n: usize| format!("Subject: q\r\n\r\n{}\r\n", "x".repeat(n));
    let big = body(150 * 1024);
    let t = s.imap(
        "alice",
        &[&format!("APPEND INBOX {{{}}}\r\n{big}", big.len())],
    );
    let tail: Vec<&str> = t.lines().rev().take(3).collect();
    assert!(t.contains("S: t1 NO [LIMIT]"), "{tail:?}");

    let m = body(90 * 1024);
    let cmd = format!("APPEND INBOX {{{}}}\r\n{m}", m.len());
    let cmds: Vec<&str> = (0..13).map(|_| cmd.as_str()).collect();
    let t = s.imap("alice", &cmds);
    assert!(t.contains("NO [OVERQUOTA]"), "no OVERQUOTA");
    let n = total_messages(&s.digest("alice"));
    assert!((10..13).contains(&n), "{n} messages fit in 1M");
}

#[test]
fn tls_certificates() {
    let s = Dovecot::source();
    let digest_tls = |port: u16| {
        python3()
            .arg(script("digest.py"))
            .args(["--host", "localhost", "--tls", "--ca-file"])
            .arg(&s.ca_file)
            .args(["--port", &port.to_string()])
            .args(["--user", "alice", "--password", "alice-pw"])
            .output()
            .unwrap()
    };
    let out = digest_tls(s.imaps_port);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.ca_file.is_absolute() && s.ca_file.ends_with("tests/fixtures/ca.pem"));

    let u = Dovecot::start(ServerOpts {
        untrusted_cert: true,
        ..ServerOpts::default()
    });
    let out = python3()
        .arg(script("digest.py"))
        .args(["--host", "localhost", "--tls", "--ca-file"])
        .arg(&u.ca_file)
        .args(["--port", &u.imaps_port.to_string()])
        .args(["--user", "alice", "--password", "alice-pw"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn servers_stop_on_drop_and_on_panic() {
    let (port, dir) = {
        let s = Dovecot::source();
        assert!(TcpStream::connect(("127.0.0.1", s.imap_port)).is_ok());
        (s.imap_port, s.dir.clone())
    };
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists());

    let r = std::panic::catch_unwind(|| {
        let s = Dovecot::destination();
        std::panic::panic_any(s.imaps_port);
    });
    let port = *r.unwrap_err().downcast::<u16>().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
#[should_panic(expected = "testserver.sh start failed")]
fn broken_config_panics_with_log() {
    let _s = Dovecot::start(ServerOpts {
        extra_conf: Some("this_is_not_a_setting = 1\n".into()),
        ..ServerOpts::default()
    });
}

#[test]
fn btsx_command_has_clean_environment() {
    let cmd = support::btsx();
    assert!(std::path::Path::new(cmd.get_program()).exists());
    let removed: Vec<_> = cmd
        .get_envs()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert!(removed.contains(&"NO_COLOR".to_string()), "{removed:?}");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("BTSX_") {
            assert!(removed.contains(&k), "{k} is passed to btsx");
        }
    }
}
