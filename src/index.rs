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
    fn message_id_extracted() {
        assert_eq!(
            message_id(b"Subject: a\r\nMessage-Id:  <abc@d>\r\n\r\n"),
            Some("<abc@d>".to_string())
        );
        assert_eq!(message_id(b"Subject: a\r\n\r\nMessage-ID: <no>\r\n"), None);
    }
}
