//! Message identity, so a re-run never copies a message twice.
//!
//! A message's key is a hash of a few identifying header fields plus its size. Keys are
//! counted as a multiset: two identical source messages need two destination copies.

use std::collections::HashMap;

/// Header fields that identify a message. Message-ID alone is not enough: different messages
/// sometimes share one, and some messages have none.
pub const KEY_HEADERS: &[&str] = &["MESSAGE-ID", "DATE", "FROM", "TO", "SUBJECT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    hash: u64,
    size: u64,
}

/// Key of a message from a block of header lines (a full message works too: only the header
/// part is read).
pub fn key(headers: &[u8], size: u64) -> Key {
    let mut fields: Vec<(String, Vec<u8>)> = header_fields(headers)
        .into_iter()
        .filter(|(name, _)| KEY_HEADERS.iter().any(|k| k.eq_ignore_ascii_case(name)))
        .map(|(n, v)| (n.to_ascii_lowercase(), normalize(&v)))
        .collect();
    // Order-independent: servers may return HEADER.FIELDS in request order.
    fields.sort();
    let mut h = Fnv::new();
    for (n, v) in &fields {
        h.write(n.as_bytes());
        h.write(b":");
        h.write(v);
        h.write(b"\n");
    }
    Key {
        hash: h.finish(),
        size,
    }
}

/// An identity that survives what servers do to a stored message (issue 15): 8-bit header
/// bytes rewritten (Cyrus turns each into 'X'), headers refolded or re-encoded as RFC 2047
/// encoded words, the arrival date replaced. Built from what servers keep: the Message-ID,
/// the Date header as an instant, and From/To/Subject reduced to their ASCII letters and
/// digits (after decoding encoded words; 'X' dropped too, as it may stand for an 8-bit
/// byte). The size is left out (a server that refolds changes it) except for a message with
/// neither Message-ID nor Date, where little else tells messages apart. Used as a multiset
/// key like [`key`]: a false match is caught by the proof before anything is deleted.
pub fn identity(headers: &[u8], size: u64) -> Key {
    let fields = header_fields(headers);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    let mut h = Fnv::new();
    let date = get("date").map(normal_date);
    for (name, value) in [
        ("message-id", get("message-id").map(reduce)),
        ("date", date.clone()),
        ("from", get("from").map(reduce)),
        ("to", get("to").map(reduce)),
        ("subject", get("subject").map(reduce)),
    ] {
        h.write(name.as_bytes());
        match value {
            Some(v) => {
                h.write(b"=");
                h.write(&v);
            }
            None => h.write(b"-"),
        }
        h.write(b"\n");
    }
    let keeps_size = get("message-id").is_none() && date.is_none();
    Key {
        hash: h.finish(),
        size: if keeps_size { size } else { 0 },
    }
}

/// The Date header as seconds since the epoch; its reduced text when it does not parse.
fn normal_date(v: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(&normalize(v)).into_owned();
    // Obsolete zone names and comments ("(UTC)") are what chrono refuses most often.
    let bare = text.split(" (").next().unwrap_or(&text).trim();
    match chrono::DateTime::parse_from_rfc2822(bare) {
        Ok(d) => d.timestamp().to_string().into_bytes(),
        Err(_) => reduce(v),
    }
}

/// ASCII letters and digits only, after decoding RFC 2047 encoded words, without 'X'.
fn reduce(v: &[u8]) -> Vec<u8> {
    decode_words(v)
        .into_iter()
        .filter(|b| b.is_ascii_alphanumeric() && *b != b'X')
        .collect()
}

/// Replace each `=?charset?Q|B?text?=` by its decoded bytes (charset ignored: only the
/// ASCII part is kept afterwards). Anything malformed stays as it is.
fn decode_words(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i..].starts_with(b"=?")
            && let Some((decoded, used)) = encoded_word(&v[i..])
        {
            out.extend_from_slice(&decoded);
            i += used;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn encoded_word(v: &[u8]) -> Option<(Vec<u8>, usize)> {
    let q1 = 2 + v[2..].iter().position(|&b| b == b'?')?;
    let enc = *v.get(q1 + 1)?;
    if v.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let start = q1 + 3;
    let len = v[start..].windows(2).position(|w| w == b"?=")?;
    let text = &v[start..start + len];
    let decoded = match enc.to_ascii_uppercase() {
        b'Q' => {
            let mut out = Vec::with_capacity(text.len());
            let mut j = 0;
            while j < text.len() {
                match text[j] {
                    b'_' => out.push(b' '),
                    b'=' => match text
                        .get(j + 1..j + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(byte) => {
                            out.push(byte);
                            j += 2;
                        }
                        None => out.push(b'='),
                    },
                    b => out.push(b),
                }
                j += 1;
            }
            out
        }
        b'B' => base64(text)?,
        _ => return None,
    };
    Some((decoded, start + len + 2))
}

fn base64(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The Message-ID value, for reports.
pub fn message_id(headers: &[u8]) -> Option<String> {
    header_fields(headers)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("message-id"))
        .map(|(_, v)| String::from_utf8_lossy(&normalize(&v)).into_owned())
        .filter(|s| !s.is_empty())
}

/// Split the header part into (name, raw value) pairs, unfolding continuation lines.
fn header_fields(msg: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in msg.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the header
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = out.last_mut() {
                last.1.push(b' ');
                last.1.extend_from_slice(line);
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            out.push((name, line[colon + 1..].to_vec()));
        }
    }
    out
}

/// Collapse white space so folding differences do not change the key.
fn normalize(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut space = false;
    for &b in v {
        if b == b' ' || b == b'\t' || b == b'\r' || b == b'\n' {
            space = !out.is_empty();
        } else {
            if space {
                out.push(b' ');
                space = false;
            }
            out.push(b);
        }
    }
    out
}

/// FNV-1a: stable across processes and releases, unlike std's hasher.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// What a destination folder already holds, as a multiset of keys, each copy with its
/// destination UID (so a message found there can have its flags kept in step).
#[derive(Debug, Default)]
pub struct Index {
    copies: HashMap<Key, Vec<u32>>,
}

impl Index {
    pub fn add(&mut self, k: Key, uid: u32) {
        self.copies.entry(k).or_default().push(uid);
    }

    /// Claim one copy of `k`: its destination UID when the destination already had it.
    pub fn take(&mut self, k: &Key) -> Option<u32> {
        self.copies.get_mut(k)?.pop()
    }

    /// Claim one copy of `k` that `ok` accepts (copies it refuses are dropped: another
    /// reader of the same folder took them).
    pub fn take_where(&mut self, k: &Key, mut ok: impl FnMut(u32) -> bool) -> Option<u32> {
        let copies = self.copies.get_mut(k)?;
        while let Some(uid) = copies.pop() {
            if ok(uid) {
                return Some(uid);
            }
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.copies.values().all(Vec::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_headers_same_key_regardless_of_order_and_folding() {
        let a = b"Message-ID: <1@x>\r\nSubject: hi\r\n there\r\nFrom: a@b\r\n\r\nbody";
        let b = b"From: a@b\r\nSubject: hi there\r\nMessage-ID: <1@x>\r\n\r\n";
        assert_eq!(key(a, 10), key(b, 10));
        assert_ne!(key(a, 10), key(a, 11));
    }

    #[test]
    fn shared_message_id_with_different_subject_differs() {
        let a = b"Message-ID: <1@x>\r\nSubject: one\r\n\r\n";
        let b = b"Message-ID: <1@x>\r\nSubject: two\r\n\r\n";
        assert_ne!(key(a, 5), key(b, 5));
    }

    #[test]
    fn multiset_counts() {
        let k = key(b"Subject: x\r\n\r\n", 3);
        let mut idx = Index::default();
        idx.add(k, 7);
        idx.add(k, 9);
        assert!(idx.take(&k).is_some());
        assert!(idx.take(&k).is_some());
        assert_eq!(idx.take(&k), None);
    }

    #[test]
    fn identity_survives_what_servers_do() {
        let original = b"Message-ID: <u@x>\r\nDate: Tue, 2 Mar 2021 10:00:00 +0000\r\nFrom: J\xc3\xbcrgen Gro\xc3\x9f <j@example.org>\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\n";
        // Cyrus: every 8-bit byte became 'X'.
        let munged = b"Message-ID: <u@x>\r\nDate: Tue, 2 Mar 2021 10:00:00 +0000\r\nFrom: JXXrgen GroXX <j@example.org>\r\nSubject: GrXXXXe\r\n\r\n";
        // Re-encoded as encoded words, refolded, another zone for the same instant.
        let encoded = b"Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\r\nFrom: =?UTF-8?B?SsO8cmdlbiBHcm/Dnw==?=\r\n <j@example.org>\r\nDate: Tue, 2 Mar 2021 11:00:00 +0100 (CET)\r\nMessage-ID: <u@x>\r\n\r\n";
        let k = identity(original, 100);
        assert_eq!(identity(munged, 100), k);
        assert_eq!(identity(encoded, 140), k, "size ignored with a Message-ID");
        // A different message with the same Message-ID is not the same.
        let other = b"Message-ID: <u@x>\r\nDate: Tue, 2 Mar 2021 10:00:00 +0000\r\nFrom: a@b\r\nSubject: other\r\n\r\n";
        assert_ne!(identity(other, 100), k);
        // Without Message-ID and Date the size counts.
        let bare = b"From: a@b\r\nSubject: s\r\n\r\n";
        assert_ne!(identity(bare, 10), identity(bare, 11));
        let dated = b"From: a@b\r\nSubject: s\r\nDate: Tue, 2 Mar 2021 10:00:00 +0000\r\n\r\n";
        assert_eq!(identity(dated, 10), identity(dated, 11));
        assert_ne!(identity(dated, 10), identity(bare, 10));
    }

    #[test]
    fn uids_follow_the_multiset() {
        let k = identity(b"Message-ID: <a@b>\r\n\r\n", 3);
        let mut idx = Index::default();
        idx.add(k, 7);
        idx.add(k, 9);
        idx.add(identity(b"Subject: z\r\n\r\n", 1), 4);
        let mut got = vec![idx.take(&k), idx.take(&k)];
        got.sort();
        assert_eq!(got, vec![Some(7), Some(9)]);
        assert_eq!(idx.take(&k), None);
        assert_eq!(idx.take(&identity(b"Subject: z\r\n\r\n", 1)), Some(4));
        assert!(idx.is_empty());
    }

    #[test]
    fn malformed_encoded_words_do_not_panic() {
        for v in [
            &b"=?"[..],
            b"=?x",
            b"=?x?Q",
            b"=?x?Q?",
            b"=?x?Q?=",
            b"=?x?Q?a=?=",
            b"=?x?B?***?=",
            b"=?x?Q?=4?=",
        ] {
            let _ = reduce(v);
        }
        assert_eq!(reduce(b"=?x?Q?a_b?="), b"ab");
    }

    #[test]
    fn message_id_extracted() {
        assert_eq!(
            message_id(b"Subject: a\r\nMessage-Id:  <abc@d>\r\n\r\n"),
            Some("<abc@d>".to_string())
        );
        assert_eq!(message_id(b"Subject: a\r\n\r\nMessage-ID: <no>\r\n"), None);
    }
}
