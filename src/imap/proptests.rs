//! Property tests of the reader and parser: no byte sequence makes them panic, and valid
//! responses mutated at random are read or refused, never misread into a panic. Bounded
//! so they run in every `cargo test`.

use proptest::prelude::*;

use super::parse::parse;
use super::reader::{Frame, read_frame};

const VALID: &[&[u8]] = &[
    b"* LIST (\\HasNoChildren) \"/\" \"back\\\\slash\"\r\n",
    b"* LIST () NIL {9}\r\npct%star*\r\n",
    b"* LIST (\\Subscribed) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Bar\"))\r\n",
    b"* STATUS \"Say \\\"hi\\\"\" (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 7 UNSEEN 2)\r\n",
    b"* 12 FETCH (FLAGS (\\Seen $L) UID 55 RFC822.SIZE 44827 INTERNALDATE \" 7-Feb-1994 21:52:25 -0800\")\r\n",
    b"* 1 FETCH (UID 3 BODY[HEADER.FIELDS (MESSAGE-ID DATE)] {4}\r\nab\r\n)\r\n",
    b"* 1 FETCH (UID 3 BODY[] {5}\r\nhello FLAGS (\\Seen))\r\n",
    b"* 1 FETCH (UID 3 BINARY[] ~{3}\r\na\0b)\r\n",
    b"* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared/\" \"/\"))\r\n",
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
    b"B1 OK [APPENDUID 38505 3955:3960] done\r\n",
    b"B2 NO [TRYCREATE] no such mailbox {5}\r\n",
    b"* NO [ALERT] maintenance\r\n",
    b"* ESEARCH (TAG \"B1\") UID ALL 1:3 COUNT 3\r\n",
    b"* VANISHED (EARLIER) 300:310\r\n",
    b"* CAPABILITY IMAP4rev1 LITERAL+ BINARY\r\n",
    b"+ go ahead\r\n",
];

/// Frame and parse everything in `input`, as the session would, with a body sink.
fn read_all(mut input: &[u8]) {
    let mut sink = Vec::new();
    let mut frame = Frame::default();
    for _ in 0..64 {
        if input.is_empty() {
            return;
        }
        if read_frame(&mut input, &mut frame, Some(&mut sink), "fuzz").is_err() {
            return;
        }
        let _ = parse(&frame);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_all(&bytes);
    }

    #[test]
    fn arbitrary_lines_after_a_star_never_panic(body in "[ -~\\r\\n{}()\\[\\]\"\\\\0-9]{0,200}") {
        let line = format!("* {body}\r\n");
        read_all(line.as_bytes());
    }

    #[test]
    fn mutated_valid_responses_never_panic(
        which in 0..VALID.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..8),
    ) {
        let mut bytes = VALID[which].to_vec();
        for (at, b, op) in edits {
            if bytes.is_empty() {
                bytes.push(b);
                continue;
            }
            let i = at % bytes.len();
            match op {
                0 => bytes[i] = b,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, b),
            }
        }
        read_all(&bytes);
    }
}

#[test]
fn every_valid_sample_parses() {
    for v in VALID {
        let mut input: &[u8] = v;
        let mut frame = Frame::default();
        read_frame(&mut input, &mut frame, None, "t").unwrap();
        assert!(input.is_empty(), "{}", String::from_utf8_lossy(v));
        parse(&frame).unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(v)));
    }
}
